"""Running the tap in-process against the simulator, and the simulator's expected output."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import typing as t

from tap_continu.tap import TapContinu
from tests.simulator import STREAMS

if t.TYPE_CHECKING:
    from tests.fakes import FakeClock
    from tests.simulator import Dataset, Simulator

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "users": ("id",),
    "assessments": ("user_id", "id"),
    "assignments": ("user_id", "assignment_id"),
    "tracks": ("user_id", "id"),
    "workshops": ("user_id", "id"),
}
ALL_STREAMS = ("users", *STREAMS)


def tap_config(simulator: Simulator, **overrides: t.Any) -> dict[str, t.Any]:
    """Return a config for the tap that points at `simulator`, with no real pacing."""
    config: dict[str, t.Any] = {
        "client_id": simulator.config.client_id,
        "client_secret": simulator.config.client_secret,
        "api_url": simulator.api_url,
        "requests_per_minute": 1_000_000,
    }
    config.update(overrides)
    return config


@dataclasses.dataclass
class SyncResult:
    """The Singer messages of one in-process sync."""

    messages: list[dict[str, t.Any]]
    tap: TapContinu

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [
            message["record"]
            for message in self.messages
            if message["type"] == "RECORD" and message["stream"] == stream
        ]

    def keys(self, stream: str) -> list[tuple[t.Any, ...]]:
        names = PRIMARY_KEYS[stream]
        return [tuple(record.get(name) for name in names) for record in self.records(stream)]

    def by_key(self, stream: str) -> dict[tuple[t.Any, ...], dict[str, t.Any]]:
        names = PRIMARY_KEYS[stream]
        return {tuple(r.get(name) for name in names): r for r in self.records(stream)}

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [message["value"] for message in self.messages if message["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, t.Any]:
        return self.states[-1]


def run_tap(
    config: dict[str, t.Any],
    *,
    clock: FakeClock | None = None,
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
) -> SyncResult:
    """Run a full sync in this process and return the messages it wrote."""
    tap = TapContinu(config=config, state=state, catalog=catalog, clock=clock)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        tap.sync_all()
    messages = [json.loads(line) for line in output.getvalue().splitlines() if line.strip()]
    return SyncResult(messages=messages, tap=tap)


def expected_keys(dataset: Dataset, stream: str) -> list[tuple[t.Any, ...]]:
    """Return the primary keys the tap must emit for `stream`, from the simulator's data."""
    if stream == "users":
        return [(dataset.object_id(index),) for index in range(len(dataset))]
    id_field = PRIMARY_KEYS[stream][1]
    keys = []
    for index in range(len(dataset)):
        if not dataset.has_email(index):
            continue
        user_id = dataset.object_id(index)
        keys.extend(
            (user_id, item.get(id_field)) for item in dataset.completion_items(index)[stream]
        )
    return keys


def assert_matches_dataset(result: SyncResult, dataset: Dataset) -> None:
    """Assert that every stream contains exactly the simulator's keys, each once."""
    for stream in ALL_STREAMS:
        got = result.keys(stream)
        expected = expected_keys(dataset, stream)
        assert len(expected) > 0, f"{stream}: the dataset has no rows, so the check is empty"
        assert len(got) == len(set(got)), f"{stream}: duplicate primary keys"
        assert sorted(got) == sorted(expected), f"{stream}: keys differ from the simulator's"
