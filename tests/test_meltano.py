"""End-to-end runs through real Meltano against the simulator, into DuckDB and JSON Lines.

Each run uses its own temporary Meltano project (see `tests/meltano_project.py`), so state,
catalog cache and output files never leak between tests. The target-snowflake tests stay
offline. They compare its settings with meltano.yml, and run its config validation inside an
empty network namespace, so that nothing can leave the machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing as t

import duckdb
import pytest
import yaml

from tests.meltano_project import (
    REPO_ROOT,
    MeltanoProject,
    actual_value,
    expected_rows,
    install_plugins,
    is_datetime,
    property_types,
    stream_schemas,
    tap_env,
)
from tests.simulator import STREAMS, Simulator, SimulatorConfig
from tests.support import ALL_STREAMS, PRIMARY_KEYS, expected_keys

if t.TYPE_CHECKING:
    from pathlib import Path

    from tests.simulator import Dataset

pytestmark = pytest.mark.slow

PLUGINS = ("tap-continu", "target-duckdb", "target-jsonl", "target-snowflake")
SCHEMA = "continu"  # default_target_schema of target-duckdb in meltano.yml

# DuckDB column types by the kind of value they hold.
DUCKDB_FAMILIES = {
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
    "BIGINT": "integer",
    "HUGEINT": "integer",
    "INTEGER": "integer",
    "DOUBLE": "number",
    "VARCHAR": "string",
    "JSON": "json",
}


@pytest.fixture(scope="module")
def plugins() -> None:
    install_plugins(*PLUGINS)


@pytest.fixture
def project(tmp_path: Path, plugins: None) -> MeltanoProject:
    return MeltanoProject.create(tmp_path / "project")


@dataclasses.dataclass
class Table:
    """Columns, their types and all rows of one warehouse table."""

    types: dict[str, str]
    rows: list[dict[str, t.Any]]

    def keys(self, stream: str) -> list[tuple[t.Any, ...]]:
        return [tuple(row[name] for name in PRIMARY_KEYS[stream]) for row in self.rows]


@dataclasses.dataclass
class WarehouseRun:
    """The tables one `meltano run` produced, and the data the simulator served."""

    dataset: Dataset
    tables: dict[str, Table]


def read_duckdb(path: Path) -> dict[str, Table]:
    tables = {}
    with duckdb.connect(str(path), read_only=True) as connection:
        for stream in ALL_STREAMS:
            columns = connection.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [SCHEMA, stream],
            ).fetchall()
            # The catalog is named after the file, continu, like the schema, so the table
            # name needs all three parts.
            table = f'"{path.stem}"."{SCHEMA}"."{stream}"'
            cursor = connection.execute(f"select * from {table}")  # noqa: S608
            names = [description[0] for description in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            tables[stream] = Table(types=dict(columns), rows=rows)
    return tables


def read_jsonl(directory: Path) -> dict[str, Table]:
    tables = {}
    for stream in ALL_STREAMS:
        path = directory / f"{stream}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        tables[stream] = Table(types={}, rows=[json.loads(line) for line in lines])
    return tables


@pytest.fixture(scope="module")
def duckdb_run(tmp_path_factory: pytest.TempPathFactory, plugins: None) -> WarehouseRun:
    project = MeltanoProject.create(tmp_path_factory.mktemp("duckdb") / "project")
    config = SimulatorConfig(
        users=300, edition="later", bad_data=True, users_without_email=4, rate_limit=None
    )
    with Simulator(config) as simulator:
        project.check("run", "--no-install", "tap-continu", "target-duckdb", env=tap_env(simulator))
    return WarehouseRun(dataset=simulator.dataset, tables=read_duckdb(project.duckdb_path))


@pytest.fixture(scope="module")
def jsonl_run(tmp_path_factory: pytest.TempPathFactory, plugins: None) -> WarehouseRun:
    project = MeltanoProject.create(tmp_path_factory.mktemp("jsonl") / "project")
    with Simulator(SimulatorConfig(users=300, rate_limit=None)) as simulator:
        project.check("run", "--no-install", "tap-continu", "target-jsonl", env=tap_env(simulator))
    return WarehouseRun(dataset=simulator.dataset, tables=read_jsonl(project.output_dir))


def differing_values(run: WarehouseRun, stream: str) -> list[str]:
    """Describe every value of `stream` that differs from the simulator's, by primary key."""
    properties = stream_schemas()[stream]["properties"]
    expected = expected_rows(run.dataset, stream)
    differences = []
    for row in run.tables[stream].rows:
        key = tuple(row[name] for name in PRIMARY_KEYS[stream])
        if key not in expected:
            differences.append(f"{stream} {key}: no such row in the simulator")
            continue
        for name, schema in properties.items():
            got = actual_value(row.get(name), schema)
            want = expected[key][name]
            if got != want:
                differences.append(f"{stream} {key} {name}: expected {want!r}, got {got!r}")
    return differences


def schema_family(schema: t.Mapping[str, t.Any]) -> str:
    """Return the kind of column a property needs, which is timestamp, json or its JSON type."""
    if is_datetime(schema):
        return "timestamp"
    types = property_types(schema)
    if types & {"array", "object"}:
        return "json"
    (json_type,) = types
    return json_type


# DuckDB


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_duckdb_keys_match_simulator(duckdb_run: WarehouseRun, stream: str) -> None:
    got = duckdb_run.tables[stream].keys(stream)
    expected = expected_keys(duckdb_run.dataset, stream)
    assert len(expected) > 0, f"{stream}: the simulator has no rows, so the check is empty"
    assert len(got) == len(set(got)), f"{stream}: duplicate primary keys"
    assert sorted(got) == sorted(expected)


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_duckdb_values_match_simulator(duckdb_run: WarehouseRun, stream: str) -> None:
    differences = differing_values(duckdb_run, stream)
    assert differences == [], f"{len(differences)} values differ, first: {differences[:5]}"


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_duckdb_column_types(duckdb_run: WarehouseRun, stream: str) -> None:
    types = duckdb_run.tables[stream].types
    for name, schema in stream_schemas()[stream]["properties"].items():
        assert name in types, f"{stream}.{name}: no column"
        family = DUCKDB_FAMILIES.get(types[name], types[name])
        assert family == schema_family(schema), f"{stream}.{name}: column type {types[name]}"


# JSON Lines


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_jsonl_keys_match_simulator(jsonl_run: WarehouseRun, stream: str) -> None:
    got = jsonl_run.tables[stream].keys(stream)
    expected = expected_keys(jsonl_run.dataset, stream)
    assert len(expected) > 0, f"{stream}: the simulator has no rows, so the check is empty"
    assert len(got) == len(set(got)), f"{stream}: duplicate primary keys"
    assert sorted(got) == sorted(expected)


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_jsonl_line_count(jsonl_run: WarehouseRun, stream: str) -> None:
    expected = jsonl_run.dataset.expected_counts()[stream]
    assert len(jsonl_run.tables[stream].rows) == expected


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_jsonl_values_match_simulator(jsonl_run: WarehouseRun, stream: str) -> None:
    differences = differing_values(jsonl_run, stream)
    assert differences == [], f"{len(differences)} values differ, first: {differences[:5]}"


def test_select_users_only(project: MeltanoProject, start_simulator: t.Any) -> None:
    simulator = start_simulator(users=120)
    env = {**tap_env(simulator), "TAP_CONTINU__SELECT": json.dumps(["users.*"])}
    project.check("run", "--no-install", "tap-continu", "target-jsonl", env=env)
    tables = read_jsonl(project.output_dir)
    assert sorted(tables["users"].keys("users")) == sorted(
        expected_keys(simulator.dataset, "users")
    )
    for stream in STREAMS:
        assert not (project.output_dir / f"{stream}.jsonl").exists(), stream
    requested = simulator.stats["requests_by_path"]
    for stream in STREAMS:
        assert f"/v3/completion/{stream}" not in requested, stream


def test_select_one_completion_stream(project: MeltanoProject, start_simulator: t.Any) -> None:
    # The users stream is read for the emails but not emitted, and a property can be left out.
    simulator = start_simulator(users=120)
    selection = ["assessments.*", "!assessments.email"]
    env = {**tap_env(simulator), "TAP_CONTINU__SELECT": json.dumps(selection)}
    project.check("run", "--no-install", "tap-continu", "target-jsonl", env=env)
    tables = read_jsonl(project.output_dir)
    written = sorted(path.name for path in project.output_dir.iterdir())
    assert written == ["assessments.jsonl"]
    got = tables["assessments"].keys("assessments")
    assert sorted(got) == sorted(expected_keys(simulator.dataset, "assessments"))
    assert all("email" not in row for row in tables["assessments"].rows)
    requested = simulator.stats["requests_by_path"]
    for stream in ("assignments", "tracks", "workshops"):
        assert f"/v3/completion/{stream}" not in requested, stream


def test_stream_maps_hash_emails(project: MeltanoProject, start_simulator: t.Any) -> None:
    # The README's example hashes the users' emails and drops them from the completion streams.
    simulator = start_simulator(users=200, users_without_email=3)
    maps: dict[str, dict[str, str]] = {"users": {"email": "md5(email) if email else None"}}
    maps.update({stream: {"email": "__NULL__"} for stream in STREAMS})
    env = {**tap_env(simulator), "TAP_CONTINU_STREAM_MAPS": json.dumps(maps)}
    project.check("run", "--no-install", "tap-continu", "target-jsonl", env=env)
    tables = read_jsonl(project.output_dir)
    dataset = simulator.dataset
    users = {row["id"]: row for row in tables["users"].rows}
    for index in range(len(dataset)):
        email = dataset.email_of(index)
        digest = hashlib.md5(email.encode()).hexdigest() if email else None  # noqa: S324
        assert users[dataset.object_id(index)]["email"] == digest, f"user {index}"
    for stream in STREAMS:
        rows = tables[stream].rows
        assert sorted(tables[stream].keys(stream)) == sorted(expected_keys(dataset, stream))
        assert all("email" not in row for row in rows), f"{stream}: email kept"


def test_config_test_passes(project: MeltanoProject, start_simulator: t.Any) -> None:
    simulator = start_simulator(users=50)
    result = project.check("config", "test", "--no-install", "tap-continu", env=tap_env(simulator))
    assert "Plugin configuration is valid" in result.stdout + result.stderr
    assert simulator.stats["tokens_issued"] == 1


def test_config_test_rejects_secret(project: MeltanoProject, start_simulator: t.Any) -> None:
    simulator = start_simulator(users=50)
    wrong_secret = "not-the-simulator-secret-7f3a"  # noqa: S105
    env = {**tap_env(simulator), "TAP_CONTINU_CLIENT_SECRET": wrong_secret}
    result = project.meltano("config", "test", "--no-install", "tap-continu", env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Plugin configuration is invalid" in output
    assert "401" in output
    assert wrong_secret not in output


def test_discover_lists_streams(project: MeltanoProject, start_simulator: t.Any) -> None:
    simulator = start_simulator(users=10)
    result = project.check(
        "invoke", "--no-install", "tap-continu", "--discover", env=tap_env(simulator)
    )
    catalog = json.loads(result.stdout)
    entries = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    assert sorted(entries) == sorted(ALL_STREAMS)
    for stream, entry in entries.items():
        assert tuple(entry["key_properties"]) == PRIMARY_KEYS[stream], stream
    assert entries["users"]["replication_key"] == "updated_at"
    assert simulator.stats["requests_total"] == 0


# target-snowflake, offline


def snowflake_definition() -> dict[str, t.Any]:
    meltano_yml = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    loaders = {plugin["name"]: plugin for plugin in meltano_yml["plugins"]["loaders"]}
    return loaders["target-snowflake"]


@pytest.fixture(scope="module")
def snowflake_about(tmp_path_factory: pytest.TempPathFactory, plugins: None) -> dict[str, t.Any]:
    project = MeltanoProject.create(tmp_path_factory.mktemp("snowflake") / "project")
    result = project.check("invoke", "--no-install", "target-snowflake", "--about", "--format=json")
    return json.loads(result.stdout)


def no_network_prefix() -> list[str]:
    """Return a command prefix that runs a program in a new, empty network namespace.

    That namespace has only a loopback interface, which is down, so target-snowflake cannot
    reach Snowflake even if it tried to connect.
    """
    if os.geteuid() == 0:
        return ["unshare", "--net"]
    return ["unshare", "--map-root-user", "--net"]


SNOWFLAKE_ENV = {
    "TARGET_SNOWFLAKE_ACCOUNT": "myorg-account1",
    "TARGET_SNOWFLAKE_USER": "LOADER",
    "TARGET_SNOWFLAKE_PASSWORD": "not-a-real-password",
    "TARGET_SNOWFLAKE_DATABASE": "ANALYTICS",
    "TARGET_SNOWFLAKE_WAREHOUSE": "LOADING",
    "TARGET_SNOWFLAKE_ROLE": "LOADER_ROLE",
}


def test_snowflake_settings_exist(snowflake_about: dict[str, t.Any]) -> None:
    known = snowflake_about["settings"]["properties"]
    for setting in snowflake_definition()["settings"]:
        assert setting["name"] in known, f"target-snowflake has no setting {setting['name']}"


def test_snowflake_groups_cover_required(snowflake_about: dict[str, t.Any]) -> None:
    required = set(snowflake_about["settings"]["required"])
    declared = {setting["name"] for setting in snowflake_definition()["settings"]}
    groups = snowflake_definition()["settings_group_validation"]
    assert len(groups) > 0
    for group in groups:
        assert required <= set(group), f"group {group} lacks {sorted(required - set(group))}"
        assert set(group) <= declared, f"group {group} names an undeclared setting"


def test_snowflake_config_validates(project: MeltanoProject) -> None:
    result = project.meltano(
        "invoke",
        "--no-install",
        "target-snowflake",
        env=SNOWFLAKE_ENV,
        stdin="",
        prefix=no_network_prefix(),
    )
    assert result.returncode == 0, result.describe()
    assert "completed processing 0 lines" in result.stderr


def test_snowflake_config_missing_database(project: MeltanoProject) -> None:
    env = {**SNOWFLAKE_ENV}
    del env["TARGET_SNOWFLAKE_DATABASE"]
    result = project.meltano(
        "invoke",
        "--no-install",
        "target-snowflake",
        env=env,
        stdin="",
        prefix=no_network_prefix(),
    )
    assert result.returncode != 0
    assert "'database' is a required property" in result.stderr
