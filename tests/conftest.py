"""Fixtures: simulators on 127.0.0.1 that are stopped when the test ends."""

from __future__ import annotations

import typing as t

import pytest

from tests.simulator import Simulator, SimulatorConfig

if t.TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def start_simulator() -> Iterator[t.Callable[..., Simulator]]:
    """Return a function that starts a simulator with the given switches."""
    started: list[Simulator] = []

    def start(*, clock: t.Any = None, **switches: t.Any) -> Simulator:
        switches.setdefault("rate_limit", None)
        kwargs: dict[str, t.Any] = {}
        if clock is not None:
            kwargs = {"clock": clock.monotonic, "wall_clock": clock.time}
        simulator = Simulator(SimulatorConfig(**switches), **kwargs)
        simulator.start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()
