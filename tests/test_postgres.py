"""Load the simulator's data into a real, throwaway PostgreSQL server through Meltano.

A PostgreSQL 15 cluster from the machine's binaries (see `tests/postgres.py`) receives three
runs against one simulator, in one Meltano project, so each run reads the state the previous
one left:

1. all streams, without state;
2. all streams again, with the first run's state;
3. the users stream alone, with state, so that the tap sends the bookmark as
   `updated_at_from`.

Afterwards every table must hold exactly the simulator's rows, with typed columns.
meltanolabs-target-postgres 0.8.1 creates every date-time column as `timestamp without time
zone` and writes the session's local time into it. The server's default time zone is
America/Chicago on purpose, so the columns hold UTC instants only because meltano.yml sets
PGTZ=UTC for target-postgres and the tap sends UTC.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import typing as t
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.meltano_project import (
    MeltanoProject,
    actual_value,
    expected_instant,
    expected_rows,
    install_plugins,
    is_datetime,
    property_types,
    stream_schemas,
    tap_env,
)
from tests.postgres import PostgresCluster, PostgresUnavailableError
from tests.simulator import STREAMS, Simulator, SimulatorConfig
from tests.support import ALL_STREAMS, PRIMARY_KEYS, expected_keys

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.simulator import Dataset

pytestmark = pytest.mark.slow

DATABASE = "warehouse"
# A server default other than UTC, so that only the target's PGTZ can make the values UTC.
SERVER_TIMEZONE = "America/Chicago"
SCHEMA = "continu"  # default_target_schema of target-postgres in meltano.yml
STATE_ID = "dev:tap-continu-to-target-postgres"
USERS_PATH = "/v3/data/users"

# PostgreSQL column types by the kind of value they hold, from information_schema.columns.
POSTGRES_FAMILIES = {
    "timestamp without time zone": "timestamp",
    "boolean": "boolean",
    "bigint": "integer",
    "integer": "integer",
    "smallint": "integer",
    "numeric": "number",
    "double precision": "number",
    "text": "string",
    "character varying": "string",
    "jsonb": "json",
    "json": "json",
}
# target-postgres 0.8.1 stores an array of strings as text[] and an array of objects as
# jsonb[]. A plain json or jsonb column would hold them as well.
ARRAY_FAMILIES = {"_text": "string array", "_jsonb": "json array"}


@dataclasses.dataclass
class PostgresRuns:
    """What the three runs left behind, and what the simulator saw."""

    cluster: PostgresCluster
    dataset: Dataset
    state_after_first: dict[str, t.Any]
    second_run_log: str
    users_queries_of_third: list[dict[str, list[str]]]
    paths_of_third: list[str]


class RequestRecorder:
    """Wraps `Simulator.respond` to record every request target it receives."""

    def __init__(self, simulator: Simulator) -> None:
        self.targets: list[str] = []
        self._lock = threading.Lock()
        self._respond = simulator.respond
        simulator.respond = self._record  # type: ignore[method-assign]

    def _record(self, method: str, target: str, *args: t.Any) -> t.Any:
        with self._lock:
            self.targets.append(target)
        return self._respond(method, target, *args)

    def take(self) -> list[str]:
        """Return the targets recorded so far and start a new list."""
        with self._lock:
            targets, self.targets = self.targets, []
        return targets


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    try:
        started = PostgresCluster(timezone=SERVER_TIMEZONE).start()
    except PostgresUnavailableError as error:
        pytest.fail(str(error))
    try:
        with psycopg.connect(**started.connection_kwargs(), autocommit=True) as connection:
            connection.execute(f"create database {DATABASE}")
        yield started
    finally:
        started.stop()


def postgres_env(cluster: PostgresCluster) -> dict[str, str]:
    return {
        "TARGET_POSTGRES_HOST": cluster.host,
        "TARGET_POSTGRES_PORT": str(cluster.port),
        "TARGET_POSTGRES_USER": cluster.user,
        "TARGET_POSTGRES_PASSWORD": cluster.password,
        "TARGET_POSTGRES_DATABASE": DATABASE,
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, cluster: PostgresCluster) -> PostgresRuns:
    install_plugins("tap-continu", "target-postgres")
    project = MeltanoProject.create(tmp_path_factory.mktemp("postgres") / "project")
    config = SimulatorConfig(users=300, bad_data=True, users_without_email=3, rate_limit=None)
    with Simulator(config) as simulator:
        recorder = RequestRecorder(simulator)
        env = {**tap_env(simulator), **postgres_env(cluster)}
        run = ("run", "--no-install", "tap-continu", "target-postgres")

        project.check(*run, env=env)
        state = json.loads(project.check("state", "get", STATE_ID).stdout)

        second = project.check(*run, env=env)

        recorder.take()
        users_only = {**env, "TAP_CONTINU__SELECT": json.dumps(["users.*"])}
        project.check(*run, env=users_only)
        third_targets = recorder.take()

    paths = [urlsplit(target).path for target in third_targets]
    users_queries = [
        parse_qs(urlsplit(target).query)
        for target in third_targets
        if target.startswith(USERS_PATH)
    ]
    return PostgresRuns(
        cluster=cluster,
        dataset=simulator.dataset,
        state_after_first=state,
        second_run_log=second.stderr + second.stdout,
        users_queries_of_third=users_queries,
        paths_of_third=paths,
    )


def read_table(runs: PostgresRuns, stream: str) -> list[dict[str, t.Any]]:
    kwargs = runs.cluster.connection_kwargs(DATABASE)
    with psycopg.connect(**kwargs, row_factory=dict_row) as connection:
        return connection.execute(f'select * from {SCHEMA}."{stream}"').fetchall()  # noqa: S608


def read_column_types(runs: PostgresRuns, stream: str) -> dict[str, tuple[str, str]]:
    kwargs = runs.cluster.connection_kwargs(DATABASE)
    with psycopg.connect(**kwargs) as connection:
        rows = connection.execute(
            "select column_name, data_type, udt_name from information_schema.columns "
            "where table_schema = %s and table_name = %s",
            (SCHEMA, stream),
        ).fetchall()
    return {name: (data_type, udt_name) for name, data_type, udt_name in rows}


def users_bookmark(state: dict[str, t.Any]) -> str:
    return state["singer_state"]["bookmarks"]["users"]["replication_key_value"]


def latest_updated_at(dataset: Dataset) -> dt.datetime:
    instants = [expected_instant(user["updated_at"]) for user in dataset]
    return max(instant for instant in instants if instant is not None)


def column_family(data_type: str, udt_name: str) -> str:
    if data_type == "ARRAY":
        return ARRAY_FAMILIES.get(udt_name, udt_name)
    return POSTGRES_FAMILIES.get(data_type, data_type)


def allowed_families(schema: t.Mapping[str, t.Any]) -> set[str]:
    """Return the column families that hold a property's values with their type."""
    if is_datetime(schema):
        return {"timestamp"}
    types = property_types(schema)
    if "array" in types:
        item_types = property_types(schema.get("items", {}))
        return {"json", "json array" if "object" in item_types else "string array"}
    if "object" in types:
        return {"json"}
    return types


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_postgres_keys_match_simulator(runs: PostgresRuns, stream: str) -> None:
    rows = read_table(runs, stream)
    got = [tuple(row[name] for name in PRIMARY_KEYS[stream]) for row in rows]
    expected = expected_keys(runs.dataset, stream)
    assert len(expected) > 0, f"{stream}: the simulator has no rows, so the check is empty"
    assert len(got) == len(set(got)), f"{stream}: duplicate primary keys after three runs"
    assert sorted(got) == sorted(expected)


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_postgres_values_match_simulator(runs: PostgresRuns, stream: str) -> None:
    properties = stream_schemas()[stream]["properties"]
    expected = expected_rows(runs.dataset, stream)
    differences = []
    for row in read_table(runs, stream):
        key = tuple(row[name] for name in PRIMARY_KEYS[stream])
        if key not in expected:
            differences.append(f"{key}: no such row in the simulator")
            continue
        for name, schema in properties.items():
            got = actual_value(row.get(name), schema)
            if got != expected[key][name]:
                differences.append(f"{key} {name}: expected {expected[key][name]!r}, got {got!r}")
    assert differences == [], f"{len(differences)} values differ, first: {differences[:5]}"


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_postgres_column_types(runs: PostgresRuns, stream: str) -> None:
    columns = read_column_types(runs, stream)
    for name, schema in stream_schemas()[stream]["properties"].items():
        assert name in columns, f"{stream}.{name}: no column"
        family = column_family(*columns[name])
        assert family in allowed_families(schema), f"{stream}.{name}: column type {columns[name]}"


def test_server_zone_is_not_utc(runs: PostgresRuns) -> None:
    with psycopg.connect(**runs.cluster.connection_kwargs(DATABASE)) as connection:
        (zone,) = connection.execute("show timezone").fetchone() or ("",)
    assert zone == SERVER_TIMEZONE


def test_timestamps_hold_utc_instants(runs: PostgresRuns) -> None:
    # Spot checks with the offsets written out. The source values carry offsets such as
    # -06:00 and +05:30, and the column must hold the same instant in UTC.
    rows = {row["id"]: row for row in read_table(runs, "users")}
    checked = 0
    for user in runs.dataset:
        source = user["created_at"]
        if source.endswith(("Z", "+00:00")):
            continue
        local = dt.datetime.fromisoformat(source)
        utc = local.astimezone(dt.timezone.utc).replace(tzinfo=None)
        assert rows[user["id"]]["created_at"] == utc, f"{user['id']}: created_at {source}"
        checked += 1
        if checked == 20:
            break
    assert checked == 20


def test_first_run_bookmarks_latest_update(runs: PostgresRuns) -> None:
    bookmark = dt.datetime.fromisoformat(users_bookmark(runs.state_after_first))
    assert bookmark.utcoffset() == dt.timedelta(0)
    assert bookmark.replace(tzinfo=None) == latest_updated_at(runs.dataset)


def test_second_run_reads_state(runs: PostgresRuns) -> None:
    bookmark = users_bookmark(runs.state_after_first)
    expected = f"Starting incremental sync of 'users' with bookmark value: {bookmark}"
    assert expected in runs.second_run_log


def test_users_only_run_sends_bookmark(runs: PostgresRuns) -> None:
    bookmark = dt.datetime.fromisoformat(users_bookmark(runs.state_after_first))
    queries = runs.users_queries_of_third
    assert len(queries) > 0
    # The tap requests users updated from one second before the bookmark, so that users
    # updated in that second are read again.
    for query in queries:
        assert query.get("updated_at_from") == [str(int(bookmark.timestamp()) - 1)]


def test_users_only_run_skips_completions(runs: PostgresRuns) -> None:
    for stream in STREAMS:
        assert f"/v3/completion/{stream}" not in runs.paths_of_third, stream
