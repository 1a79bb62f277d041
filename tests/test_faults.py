"""Syncs against a faulty simulator: the output must still be the simulator's data, once each.

Tap and simulator share one FakeClock, so retry delays, 429 pauses, pacing and token expiry
cost no real time. Only the timeout test waits in real time, for a few seconds.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import typing as t
from pathlib import Path

import pytest

from tap_continu.errors import APIRequestError, RateLimitExceededError
from tests.fakes import FakeClock
from tests.simulator import STREAMS
from tests.support import (
    ALL_STREAMS,
    assert_matches_dataset,
    expected_keys,
    run_tap,
    tap_config,
)

if t.TYPE_CHECKING:
    from tests.simulator import Dataset, Simulator
    from tests.support import SyncResult

TAP_EXECUTABLE = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "tap-continu"

# A URL budget this small makes batches of up to 50 emails, so a sync of 300 users sends
# about 30 requests and meets enough injected faults.
SMALL_URL_LENGTH = 1500

# 50 requests per minute on the fake clock: each request moves it on by about 1.2 s.
API_RATE = 50

UNKNOWN_404 = re.compile(r"^(\w+): skipped (\d+) email\(s\).*\(404\)")


def fault_count(simulator: Simulator, name: str) -> int:
    return int(simulator.stats["faults"][name])


def status_count(simulator: Simulator, status: int) -> int:
    return int(simulator.stats["requests_by_status"].get(str(status), 0))


def first_user_where(dataset: Dataset, condition: t.Callable[[str], bool]) -> int:
    """Return the index of the first user with tracks whose email meets `condition`."""
    for index in range(len(dataset)):
        email = dataset.email_of(index)
        if email and condition(email) and dataset.completion_items(index)["tracks"]:
            return index
    msg = "no user in the dataset matches the condition"
    raise AssertionError(msg)


def assert_matches_except(result: SyncResult, dataset: Dataset, skipped: set[str]) -> None:
    """Assert every stream has the simulator's keys, less the completions of `skipped` users."""
    assert sorted(result.keys("users")) == sorted(expected_keys(dataset, "users"))
    for stream in STREAMS:
        got = result.keys(stream)
        expected = [key for key in expected_keys(dataset, stream) if key[0] not in skipped]
        assert len(got) == len(set(got)), f"{stream}: duplicate primary keys"
        assert sorted(got) == sorted(expected), f"{stream}: keys differ from the simulator's"


def skipped_per_stream(caplog: pytest.LogCaptureFixture) -> dict[str, int]:
    skipped = dict.fromkeys(STREAMS, 0)
    for record in caplog.records:
        match = UNKNOWN_404.match(record.getMessage())
        if match and record.levelno == logging.WARNING:
            skipped[match.group(1)] += int(match.group(2))
    return skipped


def test_500s_and_dropped_connections(start_simulator) -> None:
    clock = FakeClock()
    simulator = start_simulator(
        clock=clock, users=300, error_rate=0.15, drop_rate=0.05, fault_seed=7
    )
    result = run_tap(tap_config(simulator, max_url_length=SMALL_URL_LENGTH), clock=clock)
    assert_matches_dataset(result, simulator.dataset)
    errors = fault_count(simulator, "error")
    drops = fault_count(simulator, "drop")
    assert errors >= 3
    assert drops >= 2
    # Each fault costs exactly one more attempt: no request is sent twice after success.
    assert result.tap.connection.retry_policy.retries == errors + drops


@pytest.mark.parametrize("mode", ["absolute", "relative"])
def test_token_expires_mid_run(start_simulator, mode: str) -> None:
    clock = FakeClock()
    start = clock.time()
    lifetime = 20
    simulator = start_simulator(
        clock=clock, users=300, token_lifetime=lifetime, expires_in_mode=mode
    )
    config = tap_config(simulator, max_url_length=SMALL_URL_LENGTH, requests_per_minute=API_RATE)
    result = run_tap(config, clock=clock)
    assert_matches_dataset(result, simulator.dataset)
    # About 30 requests at 1.2 s each: the first token expired before the run ended.
    assert clock.time() - start > lifetime
    assert simulator.stats["tokens_issued"] >= 2
    assert result.tap.connection.authenticator.tokens_issued == simulator.stats["tokens_issued"]
    # Renewed before expiry, so the server never rejected a token.
    assert status_count(simulator, 401) == 0


def test_token_revoked_while_valid(start_simulator) -> None:
    clock = FakeClock()
    simulator = start_simulator(clock=clock, users=300, revoke_after_requests=7)
    result = run_tap(tap_config(simulator, max_url_length=SMALL_URL_LENGTH), clock=clock)
    assert_matches_dataset(result, simulator.dataset)
    rejected = status_count(simulator, 401)
    assert rejected >= 3
    # One renewal per 401, and no second 401 for the same request.
    assert simulator.stats["tokens_issued"] == 1 + rejected


def test_id_from_included_in_next_page(start_simulator) -> None:
    simulator = start_simulator(users=1100, id_from_mode="inclusive")
    result = run_tap(tap_config(simulator))
    assert_matches_dataset(result, simulator.dataset)
    assert simulator.stats["requests_by_path"]["/v3/data/users"] == 3


def test_429_storm_waited_out(start_simulator, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    storm_end = clock.monotonic() + 150
    simulator = start_simulator(clock=clock, users=300, storm_429_until=storm_end)
    with caplog.at_level(logging.WARNING):
        result = run_tap(tap_config(simulator), clock=clock)
    assert_matches_dataset(result, simulator.dataset)
    # The first request meets the storm at 0 s, 60 s and 120 s and gets through at 180 s.
    assert simulator.stats["responses_429"] == 3
    assert clock.monotonic() > storm_end
    pauses = [r for r in caplog.records if "429" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(pauses) == 3


def test_429_storm_beyond_max_wait(start_simulator) -> None:
    clock = FakeClock()
    simulator = start_simulator(clock=clock, users=300, storm_429_until=clock.monotonic() + 1e6)
    with pytest.raises(RateLimitExceededError) as raised:
        run_tap(tap_config(simulator, max_rate_limit_wait=120), clock=clock)
    message = str(raised.value)
    assert "429" in message
    assert "max_rate_limit_wait" in message
    assert "120 s" in message
    assert simulator.stats["responses_429"] == 3


def run_console_expecting_one_error(tmp_path: Path, config: dict) -> list[str]:
    """Run the console script with `config`, assert it failed with one ERROR line, return it."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    completed = subprocess.run(
        [str(TAP_EXECUTABLE), "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, completed.stderr
    return errors


def test_429_storm_console_one_line(start_simulator, tmp_path: Path) -> None:
    # The console script runs on the real clock, so max_rate_limit_wait=0 fails at the
    # first 429 instead of waiting a minute.
    simulator = start_simulator(users=50, storm_429_until=1e12)
    errors = run_console_expecting_one_error(tmp_path, tap_config(simulator, max_rate_limit_wait=0))
    assert "max_rate_limit_wait" in errors[0]
    assert "429" in errors[0]
    assert simulator.stats["responses_429"] == 1


def test_failure_mid_run_console_one_line(start_simulator, tmp_path: Path) -> None:
    # Every email of the only batch is unknown, so the run fails inside a completion
    # stream, after the token and the users page succeeded.
    simulator = start_simulator(users=3)
    emails = tuple(t.cast("str", simulator.dataset.email_of(index)) for index in range(3))
    simulator.configure(unknown_to_completions=emails)
    errors = run_console_expecting_one_error(tmp_path, tap_config(simulator))
    assert "404" in errors[0]
    assert "api_url" in errors[0]
    assert status_count(simulator, 404) > 0


def test_slow_responses_time_out(start_simulator) -> None:
    # Real time: a slow response takes 1.5 s, the tap gives up after 1 s and tries again
    # at once on the fake clock. With seed 2, one of the first seven requests is slow.
    clock = FakeClock()
    simulator = start_simulator(
        clock=clock, users=60, slow_rate=0.3, slow_seconds=1.5, fault_seed=2
    )
    result = run_tap(tap_config(simulator, request_timeout=1), clock=clock)
    assert_matches_dataset(result, simulator.dataset)
    slow = fault_count(simulator, "slow")
    assert slow >= 1
    assert result.tap.connection.retry_policy.retries == slow


def test_unknown_emails_skipped(start_simulator, caplog: pytest.LogCaptureFixture) -> None:
    simulator = start_simulator(users=300)
    dataset = simulator.dataset
    chosen = {
        first_user_where(dataset, lambda email: "+" in email),
        first_user_where(dataset, lambda email: email != email.lower()),
        first_user_where(dataset, lambda email: "'" in email),
    }
    emails = [t.cast("str", dataset.email_of(index)) for index in chosen]
    simulator.configure(unknown_to_completions=tuple(emails))
    with caplog.at_level(logging.INFO):
        result = run_tap(tap_config(simulator, max_url_length=SMALL_URL_LENGTH))
    skipped_ids = {dataset.object_id(index) for index in chosen}
    assert_matches_except(result, dataset, skipped_ids)
    assert status_count(simulator, 404) > 0
    assert skipped_per_stream(caplog) == dict.fromkeys(STREAMS, len(chosen))
    for email in emails:
        assert email.lower() not in caplog.text.lower()
        assert email.split("@")[0].lower() not in caplog.text.lower()


def test_every_email_unknown_fails(start_simulator) -> None:
    simulator = start_simulator(users=3)
    emails = tuple(t.cast("str", simulator.dataset.email_of(index)) for index in range(3))
    simulator.configure(unknown_to_completions=emails)
    with pytest.raises(APIRequestError) as raised:
        run_tap(tap_config(simulator))
    assert "404" in str(raised.value)
    assert "api_url" in str(raised.value)
    for email in emails:
        assert email not in str(raised.value)


def test_all_faults_at_once(start_simulator, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    simulator = start_simulator(
        clock=clock,
        users=1100,
        error_rate=0.15,
        drop_rate=0.05,
        slow_rate=0.015,
        slow_seconds=1.5,
        token_lifetime=45,
        expires_in_mode="relative",
        revoke_after_requests=11,
        id_from_mode="inclusive",
        storm_429_until=clock.monotonic() + 150,
        fault_seed=10,
    )

    dataset = simulator.dataset
    chosen = {
        first_user_where(dataset, lambda email: "+" in email),
        first_user_where(dataset, lambda email: email != email.lower()),
    }
    simulator.configure(
        unknown_to_completions=tuple(t.cast("str", dataset.email_of(i)) for i in chosen)
    )

    config = tap_config(
        simulator,
        max_url_length=2000,
        requests_per_minute=API_RATE,
        request_timeout=1,
    )
    with caplog.at_level(logging.INFO):
        result = run_tap(config, clock=clock)

    assert_matches_except(result, dataset, {dataset.object_id(index) for index in chosen})
    assert skipped_per_stream(caplog) == dict.fromkeys(STREAMS, len(chosen))
    # Every kind of fault happened at least once.
    stats = simulator.stats
    assert stats["faults"]["error"] > 0
    assert stats["faults"]["drop"] > 0
    assert stats["faults"]["slow"] > 0
    assert stats["responses_429"] > 0
    assert stats["token_revocations"] > 0
    assert stats["tokens_issued"] > 2
    assert status_count(simulator, 404) > 0
    bookmarks = result.final_state["bookmarks"]
    assert set(bookmarks) == set(ALL_STREAMS)
