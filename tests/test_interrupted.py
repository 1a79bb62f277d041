"""Runs of the console script killed part-way, then resumed from the last STATE they wrote.

The simulator runs in this process. The tap runs as `.venv/bin/tap-continu` with real pacing
slow enough to stop it in the middle of the sync: a signal arrives after the first
completion batch, or after the first page of users.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import typing as t
from pathlib import Path

import pytest

from tap_continu.normalize import parse_datetime
from tap_continu.tap import TapContinu
from tests.simulator import STREAMS
from tests.support import ALL_STREAMS, PRIMARY_KEYS, expected_keys, tap_config

if t.TYPE_CHECKING:
    from tests.simulator import Dataset, Simulator

TAP_EXECUTABLE = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "tap-continu"

# No run here takes more than a few seconds. A run that is still going after this long is
# killed, so that a hanging tap fails the test instead of blocking the suite.
WATCHDOG_SECONDS = 60

# A state that contains one bookmark per stream is a few hundred bytes.
MAX_STATE_BYTES = 2000


class TapRun:
    """A console-script run whose stdout is read line by line as it arrives."""

    def __init__(self, tmp_path: Path, name: str, args: list[str]) -> None:
        self.stderr_path = tmp_path / f"{name}.stderr"
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                [str(TAP_EXECUTABLE), *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.messages: list[dict[str, t.Any]] = []
        self.watchdog = threading.Timer(WATCHDOG_SECONDS, self.process.kill)
        self.watchdog.daemon = True
        self.watchdog.start()

    def read_until(self, stop: t.Callable[[list[dict[str, t.Any]]], bool]) -> None:
        """Read messages until `stop` returns True for those read so far, or stdout ends."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.messages.append(json.loads(line))
            if stop(self.messages):
                return

    def interrupt(self, signal_number: int) -> int:
        """Send `signal_number`, read what the tap still writes, and return its exit code."""
        self.process.send_signal(signal_number)
        assert self.process.stdout is not None
        rest = self.process.stdout.read()
        for line in rest.splitlines(keepends=True):
            # SIGKILL may cut the last line short, and a cut line is not a message.
            if line.endswith("\n"):
                self.messages.append(json.loads(line))
        return self.finish()

    def finish(self) -> int:
        """Read to the end of stdout and return the exit code."""
        self.read_until(lambda _: False)
        code = self.process.wait()
        self.watchdog.cancel()
        return code

    def stop(self) -> None:
        """Kill the process if it still runs, as when a test failed half-way."""
        self.watchdog.cancel()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    def keys(self, stream: str) -> set[tuple[t.Any, ...]]:
        names = PRIMARY_KEYS[stream]
        return {
            tuple(m["record"].get(name) for name in names)
            for m in self.messages
            if m["type"] == "RECORD" and m["stream"] == stream
        }


@pytest.fixture
def start_tap(tmp_path: Path) -> t.Iterator[t.Callable[[str, list[str]], TapRun]]:
    """Return a function that starts a console-script run, stopped when the test ends."""
    runs: list[TapRun] = []

    def start(name: str, args: list[str]) -> TapRun:
        run = TapRun(tmp_path, name, args)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.stop()


def write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path


def records_after_states(states: int, records: int) -> t.Callable[[list[dict[str, t.Any]]], bool]:
    """Stop after `states` STATE messages and then `records` more RECORDs."""

    def stop(messages: list[dict[str, t.Any]]) -> bool:
        seen_states = 0
        records_since = 0
        for message in messages:
            if message["type"] == "STATE":
                seen_states += 1
            elif message["type"] == "RECORD" and seen_states >= states:
                records_since += 1
        return records_since >= records

    return stop


def assert_state_small_and_clean(state: dict[str, t.Any], dataset: Dataset) -> None:
    text = json.dumps(state)
    assert len(text.encode()) < MAX_STATE_BYTES
    bookmarks = state["bookmarks"]
    assert set(bookmarks) <= set(ALL_STREAMS)
    assert "users" in bookmarks
    for stream, bookmark in bookmarks.items():
        assert "partitions" not in bookmark, f"{stream}: state contains one entry per batch"
        assert "context" not in bookmark, f"{stream}: state contains a batch context"
    lowered = text.lower()
    for index in range(len(dataset)):
        email = dataset.email_of(index)
        if email:
            assert email.lower() not in lowered


def users_only_catalog(config: dict[str, t.Any]) -> dict[str, t.Any]:
    catalog = TapContinu(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == "users"
    return catalog


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_killed_sync_resumes(
    start_simulator, start_tap, tmp_path: Path, signal_number: int
) -> None:
    simulator: Simulator = start_simulator(users=600)
    # About 40 requests at 10 per second: the first batch ends after about 0.7 s.
    paced = tap_config(simulator, max_url_length=2000, requests_per_minute=600)
    first = start_tap("first", ["--config", str(write_json(tmp_path / "paced.json", paced))])
    # The SDK writes STATE when each completion stream first finishes a batch, then not
    # until the end. Stop part-way through the second batch.
    first.read_until(records_after_states(len(STREAMS), 20))
    first.interrupt(signal_number)

    dataset = simulator.dataset
    assert first.states, "the first run wrote no STATE before it was stopped"
    assert 0 < len(first.keys("users")) < len(dataset)
    for stream in STREAMS:
        assert len(first.keys(stream)) < len(expected_keys(dataset, stream))
    last_state = first.states[-1]
    assert_state_small_and_clean(last_state, dataset)

    state_path = write_json(tmp_path / "state.json", last_state)
    fast = write_json(tmp_path / "fast.json", tap_config(simulator))
    second = start_tap("second", ["--config", str(fast), "--state", str(state_path)])
    assert second.finish() == 0, second.stderr_path.read_text()

    for stream in ALL_STREAMS:
        expected = set(expected_keys(dataset, stream))
        assert first.keys(stream) | second.keys(stream) == expected, stream
        # With a completion stream selected, a resumed run reads every user again.
        assert second.keys(stream) == expected, stream
    assert_state_small_and_clean(second.states[-1], dataset)


def test_killed_users_sync_keeps_bookmark(start_simulator, start_tap, tmp_path: Path) -> None:
    simulator: Simulator = start_simulator(users=1500)
    start_date = "2022-01-01T00:00:00Z"
    # One request every two seconds: token, then three pages of 500 users.
    paced = tap_config(simulator, requests_per_minute=30, start_date=start_date)
    catalog_path = write_json(tmp_path / "catalog.json", users_only_catalog(paced))
    config_path = write_json(tmp_path / "paced.json", paced)
    args = ["--config", str(config_path), "--catalog", str(catalog_path)]
    first = start_tap("first", args)
    first.read_until(lambda messages: sum(m["type"] == "RECORD" for m in messages) >= 400)
    first.interrupt(signal.SIGTERM)

    dataset = simulator.dataset
    # The tap requests the users updated since one second before start_date.
    since = parse_datetime(start_date).timestamp() - 1
    expected = set()
    for index in range(len(dataset)):
        updated_at = dataset.entry(index).epochs["updated_at"]
        if updated_at is not None and updated_at >= since:
            expected.add((dataset.object_id(index),))
    assert 0 < len(first.keys("users")) < len(expected)
    assert first.states, "SIGTERM wrote no STATE"
    last_state = first.states[-1]
    assert_state_small_and_clean(last_state, dataset)
    # The users stream is unsorted, so a stopped run must not move its bookmark.
    assert "replication_key_value" not in last_state["bookmarks"]["users"]

    state_path = write_json(tmp_path / "state.json", last_state)
    fast = write_json(tmp_path / "fast.json", tap_config(simulator, start_date=start_date))
    second = start_tap(
        "second",
        ["--config", str(fast), "--catalog", str(catalog_path), "--state", str(state_path)],
    )
    assert second.finish() == 0, second.stderr_path.read_text()
    assert first.keys("users") | second.keys("users") == expected
    # The bookmark did not move, so the resumed run starts again from start_date.
    assert second.keys("users") == expected
