"""Demo: load the Continu API simulator into DuckDB with Meltano, and check the row counts.

Run with `make demo`. The script starts the simulator as a process on 127.0.0.1 with the real
API limit of 50 requests per minute. It runs `meltano install` and `meltano run tap-continu
target-duckdb` in this repository, then prints the rows of each stream in
`output/continu.duckdb` beside the simulator's expected counts. It exits with status 1 if a
count differs or a step fails, and stops the simulator in every case, Ctrl-C included.
"""

# This command-line script lives outside any package, prints a report and runs fixed commands.

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = REPO_ROOT / ".venv" / "bin"
RUN_DIR = REPO_ROOT / ".run"
URL_FILE = RUN_DIR / "sim-url"
SIMULATOR_LOG = RUN_DIR / "demo-sim.log"
DUCKDB_FILE = REPO_ROOT / "output" / "continu.duckdb"
SCHEMA = "continu"  # default_target_schema of target-duckdb in meltano.yml
STREAMS = ("users", "assessments", "assignments", "tracks", "workshops")
PRIMARY_KEYS = {
    "users": ("id",),
    "assessments": ("user_id", "id"),
    "assignments": ("user_id", "assignment_id"),
    "tracks": ("user_id", "id"),
    "workshops": ("user_id", "id"),
}
USERS = 400
REQUESTS_PER_MINUTE = 50  # the limit of the real API, which the simulator enforces too
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 10


def start_simulator() -> subprocess.Popen[bytes]:
    """Start the simulator process, logging to .run/demo-sim.log."""
    RUN_DIR.mkdir(exist_ok=True)
    URL_FILE.unlink(missing_ok=True)  # a file left by a killed run names a dead port
    command = [
        str(VENV_BIN / "python"),
        "-m",
        "tests.simulator",
        "--users",
        str(USERS),
        "--url-file",
        str(URL_FILE),
        "--rate-limit",
        str(REQUESTS_PER_MINUTE),
        "--window-seconds",
        "60",
    ]
    with SIMULATOR_LOG.open("wb") as log:
        return subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)


def wait_for_url(simulator: subprocess.Popen[bytes]) -> str:
    """Return the simulator's base URL once it has written the URL file."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if URL_FILE.exists():
            return URL_FILE.read_text(encoding="utf-8").strip()
        if simulator.poll() is not None:
            msg = f"the simulator exited with status {simulator.returncode}; see {SIMULATOR_LOG}"
            raise RuntimeError(msg)
        time.sleep(0.1)
    msg = f"the simulator wrote no URL within {START_TIMEOUT_SECONDS} s; see {SIMULATOR_LOG}"
    raise RuntimeError(msg)


def stop_simulator(simulator: subprocess.Popen[bytes]) -> None:
    """Stop the simulator by its pid: SIGTERM, then SIGKILL if it does not exit in time."""
    if simulator.poll() is not None:
        return
    simulator.terminate()
    try:
        simulator.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        simulator.kill()
        simulator.wait()


def meltano(*args: str, env: dict[str, str]) -> None:
    """Run `.venv/bin/meltano ARGS` in the repository, its output going to this terminal."""
    print(f"\n$ meltano {' '.join(args)}", flush=True)
    subprocess.run([str(VENV_BIN / "meltano"), *args], cwd=REPO_ROOT, env=env, check=True)


def meltano_env(api_url: str) -> dict[str, str]:
    """Return this process's environment plus the settings that point the tap at `api_url`."""
    # Settings inherited from the shell, such as a start_date, would change the counts.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TAP_CONTINU_", "TARGET_DUCKDB_"))
    }
    env.update(
        {
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            # The simulator accepts these fixed test credentials and no others.
            "TAP_CONTINU_CLIENT_ID": "sim-client",
            "TAP_CONTINU_CLIENT_SECRET": "sim-secret",
            "TAP_CONTINU_API_URL": api_url,
            "TAP_CONTINU_REQUESTS_PER_MINUTE": str(REQUESTS_PER_MINUTE),
            "TARGET_DUCKDB_FILEPATH": str(DUCKDB_FILE),
            "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": SCHEMA,
        }
    )
    return env


def expected_counts(base_url: str) -> dict[str, int]:
    """Return the rows per stream that the simulator serves, from `GET /_sim/expected`."""
    with urllib.request.urlopen(f"{base_url}/_sim/expected", timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def loaded_counts(path: Path) -> dict[str, tuple[int, int]]:
    """Return the rows and distinct primary keys of each stream's table in the DuckDB file."""
    counts = {}
    with duckdb.connect(str(path), read_only=True) as connection:
        for stream in STREAMS:
            # The catalog is named after the file, continu, like the schema, so the table name
            # needs all three parts.
            table = f'"{path.stem}"."{SCHEMA}"."{stream}"'
            keys = ", ".join(f'"{name}"' for name in PRIMARY_KEYS[stream])
            query = f"select count(*), count(distinct ({keys})) from {table}"  # noqa: S608
            rows, distinct = connection.execute(query).fetchone() or (0, 0)
            counts[stream] = (rows, distinct)
    return counts


def print_table(loaded: dict[str, tuple[int, int]], expected: dict[str, int]) -> bool:
    """Print rows per stream beside the expected counts, and return whether all match."""
    print(f"\nRows per stream in {DUCKDB_FILE.relative_to(REPO_ROOT)} (schema {SCHEMA}):\n")
    print(f"{'stream':<12} {'rows':>8} {'distinct keys':>14} {'expected':>9}  result")
    all_match = True
    for stream in STREAMS:
        rows, distinct = loaded[stream]
        want = expected[stream]
        match = rows == want and distinct == want
        all_match = all_match and match
        result = "ok" if match else "MISMATCH"
        print(f"{stream:<12} {rows:>8} {distinct:>14} {want:>9}  {result}")
    return all_match


def main() -> int:
    """Run the demo and return the exit status."""
    simulator = start_simulator()
    try:
        base_url = wait_for_url(simulator)
        print(f"Continu API simulator: {base_url}, {USERS} users, {REQUESTS_PER_MINUTE}/min limit")
        DUCKDB_FILE.parent.mkdir(exist_ok=True)
        for stale in (DUCKDB_FILE, DUCKDB_FILE.with_name(DUCKDB_FILE.name + ".wal")):
            stale.unlink(missing_ok=True)
        env = meltano_env(f"{base_url}/v3")
        meltano("install", "tap-continu", "target-duckdb", env=env)
        # The DuckDB file is new, so the state of an earlier run does not describe it.
        meltano("run", "--full-refresh", "tap-continu", "target-duckdb", env=env)
        all_match = print_table(loaded_counts(DUCKDB_FILE), expected_counts(base_url))
    except subprocess.CalledProcessError as error:
        print(f"\nDemo failed: meltano {' '.join(error.cmd[1:])} exited with {error.returncode}.")
        return 1
    except (RuntimeError, OSError, duckdb.Error) as error:
        print(f"\nDemo failed: {error}")
        return 1
    except KeyboardInterrupt:
        print("\nDemo interrupted.")
        return 130
    finally:
        stop_simulator(simulator)
    if not all_match:
        print("\nDemo failed: the DuckDB tables differ from the simulator's data.")
        return 1
    print("\nEvery stream matches the simulator.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
