"""Test doubles shared by the test modules."""

from __future__ import annotations

import threading


class FakeClock:
    """Clock whose sleep advances time at once, for the tap and the simulator alike."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)

    @property
    def slept(self) -> float:
        return sum(self.sleeps)
