"""No secret, token or email in the logs, the STATE or the records, even at DEBUG and under faults.

The console script runs as a subprocess with TAP_CONTINU_LOGLEVEL=debug, so everything the
tap, the SDK and urllib3 write to stderr is checked. Runs with injected faults start the
same command line through a wrapper that gives the tap a fake clock, so retry delays cost
no real time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path
from urllib.parse import quote, quote_plus

from tap_continu.tap import TapContinu
from tests.support import assert_matches_dataset, run_tap, tap_config

if t.TYPE_CHECKING:
    from tests.simulator import Simulator

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
TAP_EXECUTABLE = REPOSITORY_ROOT / ".venv" / "bin" / "tap-continu"
SECRET = "s3cret-Zq81-never-print"  # noqa: S105 - a test credential
CREDENTIAL_FIELDS = ("password", "provisioning_key")

# Runs tap_continu.cli.main, the console script's entry point, on a fake clock that starts
# at the current time, so that the simulator's real-time token expiry still holds.
FAKE_CLOCK_CONSOLE = """
import sys, time
import tap_continu.tap
from tests.fakes import FakeClock
tap_continu.tap.SystemClock = lambda: FakeClock(start=time.time())
from tap_continu.cli import main
sys.argv[0] = "tap-continu"
main()
"""


def run_debug(config: dict[str, t.Any], tmp_path: Path, *, fake_clock: bool) -> tuple[str, str]:
    """Run a sync at DEBUG and return its stdout and stderr."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_CONTINU_")}
    env["TAP_CONTINU_LOGLEVEL"] = "debug"
    if fake_clock:
        command = [sys.executable, "-c", FAKE_CLOCK_CONSOLE, "--config", str(config_path)]
    else:
        command = [str(TAP_EXECUTABLE), "--config", str(config_path)]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=REPOSITORY_ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout, completed.stderr


def email_forms(email: str) -> set[str]:
    """Return the email as written and as a URL may encode it, for example with %40 or %2B."""
    return {
        email,
        quote(email, safe=""),
        quote(email, safe="@"),
        quote_plus(email, safe="@,"),
        quote_plus(email, safe=""),
    }


def assert_no_personal_data(text: str, simulator: Simulator, where: str) -> None:
    lowered = text.lower()
    assert SECRET.lower() not in lowered, f"{where} contains the client secret"
    tokens = simulator.issued_tokens
    assert tokens, "the simulator issued no token, so the token check is empty"
    for token in tokens:
        assert token not in text, f"{where} contains an access token"
    dataset = simulator.dataset
    checked = 0
    for index in range(len(dataset)):
        email = dataset.email_of(index)
        if not email:
            continue
        for form in email_forms(email):
            assert form.lower() not in lowered, f"{where} contains email #{index} as {form!r}"
        checked += 1
    assert checked > 0


def messages_of(stdout: str) -> list[dict[str, t.Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def assert_state_and_records_clean(stdout: str, simulator: Simulator) -> None:
    messages = messages_of(stdout)
    states = [m for m in messages if m["type"] == "STATE"]
    assert states
    assert_no_personal_data(json.dumps(states), simulator, "STATE")
    users = [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == "users"]
    assert len(users) == len(simulator.dataset)
    for record in users:
        for field in CREDENTIAL_FIELDS:
            assert field not in record


def secret_config(simulator: Simulator, **overrides: t.Any) -> dict[str, t.Any]:
    simulator.configure(client_secret=SECRET)
    return tap_config(simulator, client_secret=SECRET, **overrides)


def test_debug_log_clean(start_simulator, tmp_path: Path) -> None:
    simulator = start_simulator(users=200, users_without_email=3, leak_credentials=True)
    stdout, stderr = run_debug(secret_config(simulator), tmp_path, fake_clock=False)
    assert " DEBUG " in stderr
    # urllib3 logged its request lines, with the query string removed.
    assert "completion/tracks?<redacted>" in stderr
    assert_no_personal_data(stderr, simulator, "stderr")
    assert "sim-password" not in stderr
    assert_state_and_records_clean(stdout, simulator)


def test_debug_log_clean_under_faults(start_simulator, tmp_path: Path) -> None:
    simulator = start_simulator(
        users=300,
        leak_credentials=True,
        error_rate=0.15,
        drop_rate=0.05,
        revoke_after_requests=9,
        max_request_target=1500,
        fault_seed=5,
    )
    dataset = simulator.dataset
    unknown = tuple(t.cast("str", dataset.email_of(index)) for index in (4, 150))
    simulator.configure(unknown_to_completions=unknown)
    stdout, stderr = run_debug(secret_config(simulator), tmp_path, fake_clock=True)
    stats = simulator.stats
    assert stats["faults"]["error"] > 0
    assert stats["faults"]["drop"] > 0
    assert stats["requests_by_status"].get("401", 0) > 0
    assert stats["requests_by_status"].get("404", 0) > 0
    assert stats["requests_by_status"].get("414", 0) > 0
    assert_no_personal_data(stderr, simulator, "stderr")
    assert "sim-password" not in stderr
    assert_state_and_records_clean(stdout, simulator)


def test_credentials_removed_when_selected(start_simulator) -> None:
    simulator = start_simulator(users=120, leak_credentials=True)
    config = tap_config(simulator)
    catalog = TapContinu(config=config).catalog_dict
    users_entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "users")
    for field in CREDENTIAL_FIELDS:
        users_entry["schema"]["properties"][field] = {"type": ["string", "null"]}
        users_entry["metadata"].append(
            {
                "breadcrumb": ["properties", field],
                "metadata": {"inclusion": "available", "selected": True},
            }
        )
    result = run_tap(config, catalog=catalog)
    assert_matches_dataset(result, simulator.dataset)
    for record in result.records("users"):
        for field in CREDENTIAL_FIELDS:
            assert field not in record


def test_about_marks_credentials_secret() -> None:
    completed = subprocess.run(
        [str(TAP_EXECUTABLE), "--about", "--format=json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    properties = json.loads(completed.stdout)["settings"]["properties"]
    secret = {name for name, schema in properties.items() if schema.get("secret")}
    assert secret == {"client_id", "client_secret"}
    for name in secret:
        assert properties[name].get("writeOnly") is True
