"""The request budget against the simulator's rate limit, on one fake clock for both."""

from __future__ import annotations

import logging
import re

from tests.fakes import FakeClock
from tests.support import assert_matches_dataset, run_tap, tap_config


def test_paced_sync_gets_no_429(start_simulator) -> None:
    clock = FakeClock()
    simulator = start_simulator(clock=clock, users=2000, rate_limit=50, window_seconds=60)
    result = run_tap(tap_config(simulator, requests_per_minute=50), clock=clock)
    assert_matches_dataset(result, simulator.dataset)
    stats = simulator.stats
    assert stats["requests_by_status"].get("429", 0) == 0
    assert stats["max_requests_in_window"] <= 50
    minimum_seconds = (stats["requests_total"] - 1) * 60 / 50
    assert clock.slept >= minimum_seconds


def test_shortened_window_scaled_rate(start_simulator) -> None:
    clock = FakeClock()
    simulator = start_simulator(clock=clock, users=2000, rate_limit=5, window_seconds=1)
    result = run_tap(tap_config(simulator, requests_per_minute=300), clock=clock)
    assert_matches_dataset(result, simulator.dataset)
    assert simulator.stats["requests_by_status"].get("429", 0) == 0


def test_unpaced_sync_is_rate_limited(start_simulator) -> None:
    clock = FakeClock()
    simulator = start_simulator(clock=clock, users=2000, rate_limit=5, window_seconds=60)
    result = run_tap(tap_config(simulator, requests_per_minute=1000), clock=clock)
    assert_matches_dataset(result, simulator.dataset)
    assert simulator.stats["requests_by_status"]["429"] > 0


def test_progress_line_per_batch(start_simulator, caplog) -> None:
    simulator = start_simulator(users=700)
    with caplog.at_level(logging.INFO):
        run_tap(tap_config(simulator))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Completions:")]
    batches = simulator.stats["requests_by_path"]["/v3/completion/tracks"]
    assert len(lines) == batches
    assert re.search(r"batch \d+ done, 700 users of 700; \d+ requests sent", lines[-1])
    for line in lines:
        assert "@" not in line
