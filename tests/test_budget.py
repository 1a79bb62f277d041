"""Request pacing on a fake clock."""

from __future__ import annotations

import pytest

from tap_continu.budget import API_WINDOW_SECONDS, PACING_SLACK, RequestBudget
from tests.fakes import FakeClock


def sent_times(budget: RequestBudget, clock: FakeClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        budget.acquire()
        times.append(clock.monotonic())
    return times


@pytest.mark.parametrize("per_minute", [50, 3000])
def test_no_window_exceeds_limit(per_minute: int) -> None:
    clock = FakeClock()
    budget = RequestBudget(per_minute, clock)
    times = sent_times(budget, clock, per_minute * 3)
    for window in (API_WINDOW_SECONDS, API_WINDOW_SECONDS / 60):
        limit = per_minute * window / API_WINDOW_SECONDS
        for index, start in enumerate(times):
            in_window = [t for t in times[index:] if t < start + window]
            assert len(in_window) <= max(1, limit)


def test_pacing_rate_is_close_to_limit() -> None:
    clock = FakeClock()
    budget = RequestBudget(50, clock)
    times = sent_times(budget, clock, 101)
    elapsed = times[-1] - times[0]
    assert elapsed == pytest.approx(100 * 60 / 50 * (1 + PACING_SLACK))


def test_first_request_does_not_wait() -> None:
    clock = FakeClock()
    budget = RequestBudget(50, clock)
    assert budget.acquire() == 0
    assert clock.sleeps == []


def test_pause_holds_next_request() -> None:
    clock = FakeClock()
    budget = RequestBudget(50, clock)
    budget.acquire()
    budget.pause(60)
    start = clock.monotonic()
    budget.acquire()
    assert clock.monotonic() - start == pytest.approx(60)
    assert budget.requests_sent == 2


def test_idle_time_counts_toward_spacing() -> None:
    clock = FakeClock()
    budget = RequestBudget(50, clock)
    budget.acquire()
    clock.advance(10)
    assert budget.acquire() == 0


def test_rejects_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        RequestBudget(0, FakeClock())
