"""Running Meltano in tests, and the rows a warehouse must hold after a run.

`install_plugins` installs plugins into the repository's `.meltano/`, once per test process.
Each test then runs Meltano in its own temporary project, which `MeltanoProject.create` lays
out. It contains a copy of `meltano.yml`, links `.meltano/extractors` and `.meltano/loaders` to the
repository's installed plugins, and has its own system database, catalog cache and output
files. So no state, catalog or table leaks between tests, and a `meltano run` in the repository
at the same time does not disturb a test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import typing as t
from decimal import Decimal
from pathlib import Path

from tap_continu.tap import TapContinu
from tests.simulator.data import parse_timestamp
from tests.support import PRIMARY_KEYS, expected_keys

if t.TYPE_CHECKING:
    from tests.simulator import Dataset, Simulator

REPO_ROOT = Path(__file__).resolve().parent.parent
# The meltano of the environment that runs the tests (`.venv/bin/meltano` under `make test`).
MELTANO = Path(sys.executable).with_name("meltano")
RUN_TIMEOUT_SECONDS = 600
INHERITED_PREFIXES_DROPPED = ("MELTANO_", "TAP_CONTINU_", "TARGET_")

_installed: set[str] = set()
_install_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class MeltanoResult:
    """Exit status and output of one Meltano command."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        """Return the command, its exit status and the end of its output, for failures."""
        tail = "\n".join((self.stderr + self.stdout).splitlines()[-60:])
        return f"meltano {' '.join(self.args)} exited with {self.returncode}:\n{tail}"


def _clean_environment() -> dict[str, str]:
    """Return this process's environment without Meltano, tap and target settings.

    A developer's shell may set TAP_CONTINU_* or TARGET_* variables, which would otherwise
    change every test run.
    """
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(INHERITED_PREFIXES_DROPPED)
    }


def _run_meltano(
    args: t.Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdin: str | None = None,
    timeout: float = RUN_TIMEOUT_SECONDS,
    prefix: t.Sequence[str] = (),
) -> MeltanoResult:
    """Run meltano in its own process group, killed as a whole when `timeout` passes."""
    if not MELTANO.exists():
        msg = f"meltano not found at {MELTANO}; run `make setup` to install the dev tools"
        raise FileNotFoundError(msg)
    process = subprocess.Popen(
        [*prefix, str(MELTANO), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        stderr += f"\nmeltano timed out after {timeout:g} s and was killed"
    return MeltanoResult(tuple(args), process.returncode, stdout, stderr)


def install_plugins(*names: str) -> None:
    """Install plugins into the repository's `.meltano/`, each once per test process.

    Raises:
        AssertionError: If `meltano install` fails, with the end of its output.
    """
    with _install_lock:
        missing = [name for name in names if name not in _installed]
        if not missing:
            return
        with tempfile.TemporaryDirectory(prefix="tap-continu-meltano-install-") as scratch:
            env = _clean_environment()
            env["MELTANO_DATABASE_URI"] = f"sqlite:///{scratch}/meltano.db"
            env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
            result = _run_meltano(["install", *missing], cwd=REPO_ROOT, env=env)
        if result.returncode != 0:
            raise AssertionError(result.describe())
        _installed.update(missing)


class MeltanoProject:
    """A temporary Meltano project that uses the repository's `meltano.yml` and plugins."""

    def __init__(self, root: Path) -> None:
        """Use the existing project at `root`, which `create` lays out."""
        self.root = root
        self.output_dir = root / "output"
        self.env = _clean_environment()
        self.env.update(
            {
                "MELTANO_PROJECT_ROOT": str(root),
                "MELTANO_DATABASE_URI": f"sqlite:///{root}/.meltano/meltano.db",
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "TARGET_DUCKDB_FILEPATH": str(self.duckdb_path),
                "TARGET_JSONL_DESTINATION_PATH": str(self.output_dir),
            }
        )

    @classmethod
    def create(cls, root: Path) -> MeltanoProject:
        """Lay out a project in the empty or missing folder `root` and return it."""
        system_dir = root / ".meltano"
        system_dir.mkdir(parents=True)
        (root / "output").mkdir()
        shutil.copy2(REPO_ROOT / "meltano.yml", root / "meltano.yml")
        for kind in ("extractors", "loaders"):
            installed = REPO_ROOT / ".meltano" / kind
            installed.mkdir(parents=True, exist_ok=True)
            (system_dir / kind).symlink_to(installed, target_is_directory=True)
        return cls(root)

    @property
    def duckdb_path(self) -> Path:
        """DuckDB file that target-duckdb writes in this project."""
        return self.output_dir / "continu.duckdb"

    def meltano(
        self,
        *args: str,
        env: t.Mapping[str, str] | None = None,
        stdin: str | None = None,
        prefix: t.Sequence[str] = (),
    ) -> MeltanoResult:
        """Run `meltano ARGS` in this project with extra environment variables `env`."""
        full_env = {**self.env, **(env or {})}
        return _run_meltano(args, cwd=self.root, env=full_env, stdin=stdin, prefix=prefix)

    def check(self, *args: str, env: t.Mapping[str, str] | None = None) -> MeltanoResult:
        """Run `meltano ARGS` like `meltano`, and raise AssertionError unless it succeeds."""
        result = self.meltano(*args, env=env)
        if result.returncode != 0:
            raise AssertionError(result.describe())
        return result


def tap_env(simulator: Simulator) -> dict[str, str]:
    """Return the TAP_CONTINU_* variables that point the tap at `simulator`, unpaced."""
    return {
        "TAP_CONTINU_CLIENT_ID": simulator.config.client_id,
        "TAP_CONTINU_CLIENT_SECRET": simulator.config.client_secret,
        "TAP_CONTINU_API_URL": simulator.api_url,
        "TAP_CONTINU_REQUESTS_PER_MINUTE": "1000000",
    }


# Expected warehouse rows: the simulator's data as the tap must deliver it.

# Go's zero time, 0001-01-01T00:00:00Z, in Unix seconds. The tap sends it as null.
ZERO_TIME_SECONDS = -62_135_596_800.0
_EPOCH = dt.datetime(1970, 1, 1)  # noqa: DTZ001 - naive UTC, as `timestamp` columns store it


@functools.cache
def stream_schemas() -> dict[str, dict[str, t.Any]]:
    """Return the JSON schema of each stream, from the tap's discovery (no request is sent)."""
    tap = TapContinu(config={"client_id": "unused", "client_secret": "unused"})
    return {stream.name: stream.schema for stream in tap.streams.values()}


def property_types(schema: t.Mapping[str, t.Any]) -> set[str]:
    """Return the JSON types of a property schema, without `null`."""
    declared = schema.get("type", [])
    types = {declared} if isinstance(declared, str) else set(declared)
    return types - {"null"}


def is_datetime(schema: t.Mapping[str, t.Any]) -> bool:
    """Return whether a property schema is a date-time string."""
    return schema.get("format") == "date-time"


def expected_instant(value: object) -> dt.datetime | None:
    """Return an API date-time as a naive UTC datetime, or None where the tap sends null.

    The simulator's own parser reads the value, so this does not reuse the tap's code.
    """
    seconds = parse_timestamp(value)
    if seconds is None or seconds == ZERO_TIME_SECONDS:
        return None
    return _EPOCH + dt.timedelta(seconds=seconds)


def _expected_number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except ValueError:
        return None


def expected_value(value: object, schema: t.Mapping[str, t.Any]) -> object:
    """Return the value a warehouse column must hold for the API value `value`.

    Date-times become naive UTC datetimes, numbers floats, and arrays and objects are
    converted item by item and property by property. Other values stay as they are.
    """
    if value is None:
        return None
    if is_datetime(schema):
        return expected_instant(value)
    types = property_types(schema)
    if types & {"integer", "number"}:
        return _expected_number(value)
    if types & {"array", "object"}:
        return _convert_nested(value, schema, expected_value)
    return value


def actual_value(value: object, schema: t.Mapping[str, t.Any]) -> object:
    """Return a value read from a warehouse or a JSON line in the form of `expected_value`.

    Numbers become floats, JSON text is parsed, and date-time strings are read as UTC
    instants.
    """
    if value is None:
        return None
    types = property_types(schema)
    if is_datetime(schema) and isinstance(value, str):
        moment = dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc)
        value = moment.replace(tzinfo=None)
    elif types & {"integer", "number"} and isinstance(value, (int, float, Decimal)):
        value = float(value)
    elif types & {"array", "object"}:
        parsed = json.loads(value) if isinstance(value, str) else value
        value = _convert_nested(parsed, schema, actual_value)
    return value


def _convert_nested(
    value: object,
    schema: t.Mapping[str, t.Any],
    convert: t.Callable[[object, t.Mapping[str, t.Any]], object],
) -> object:
    """Apply `convert` to each item of an array or property of an object, else return None."""
    types = property_types(schema)
    if "array" in types and isinstance(value, list):
        return [convert(item, schema.get("items", {})) for item in value]
    if "object" in types and isinstance(value, dict):
        properties = schema.get("properties", {})
        return {name: convert(value.get(name), properties[name]) for name in properties}
    return None


def source_records(dataset: Dataset, stream: str) -> dict[tuple[t.Any, ...], dict[str, t.Any]]:
    """Return the simulator's records of `stream` by primary key, as the tap emits them.

    Completion records carry the user's `user_id` and `email`, as the tap adds them.
    """
    records: dict[tuple[t.Any, ...], dict[str, t.Any]] = {}
    key_fields = PRIMARY_KEYS[stream]
    for index in range(len(dataset)):
        user = dataset.user(index)
        if stream == "users":
            records[(user["id"],)] = user
            continue
        if not dataset.has_email(index):
            continue
        for item in dataset.completions(stream, index):
            record = {**item, "user_id": user["id"], "email": user["email"]}
            records[tuple(record[name] for name in key_fields)] = record
    assert sorted(records) == sorted(expected_keys(dataset, stream))
    return records


def expected_rows(dataset: Dataset, stream: str) -> dict[tuple[t.Any, ...], dict[str, t.Any]]:
    """Return every row a warehouse table of `stream` must hold, by primary key."""
    properties = stream_schemas()[stream]["properties"]
    return {
        key: {name: expected_value(record.get(name), properties[name]) for name in properties}
        for key, record in source_records(dataset, stream).items()
    }
