"""Completion batches: unknown emails and URL limits found once, for every stream."""

from __future__ import annotations

import logging

from tests.simulator import STREAMS
from tests.support import assert_matches_dataset, expected_keys, run_tap, tap_config


def emails_of(dataset, indexes) -> list[str]:
    return [dataset.email_of(index) for index in indexes]


def test_unknown_emails_isolated_once(start_simulator, caplog) -> None:
    simulator = start_simulator(users=600)
    dataset = simulator.dataset
    unknown_indexes = [index for index in range(5, 600, 100) if dataset.has_email(index)]
    simulator.configure(unknown_to_completions=tuple(emails_of(dataset, unknown_indexes)))
    with caplog.at_level(logging.WARNING):
        result = run_tap(tap_config(simulator))
    unknown_ids = {dataset.object_id(index) for index in unknown_indexes}
    statuses = simulator.stats["requests_by_status"]
    assert statuses["404"] > 0
    by_path = simulator.stats["requests_by_path"]
    first = by_path["/v3/completion/assessments"]
    for stream in STREAMS[1:]:
        assert by_path[f"/v3/completion/{stream}"] < first
    for stream in STREAMS:
        expected = [key for key in expected_keys(dataset, stream) if key[0] not in unknown_ids]
        assert sorted(result.keys(stream)) == sorted(expected)
        assert f"{len(unknown_indexes)} skipped in this stream so far" in caplog.text


def test_last_batch_all_unknown(start_simulator) -> None:
    simulator = start_simulator(users=402)
    dataset = simulator.dataset
    last = [index for index in range(394, 402) if dataset.has_email(index)]
    simulator.configure(unknown_to_completions=tuple(emails_of(dataset, last)))
    result = run_tap(tap_config(simulator, max_url_length=5000))
    assert len(result.records("users")) == 402
    unknown_ids = {dataset.object_id(index) for index in last}
    for stream in STREAMS:
        expected = [key for key in expected_keys(dataset, stream) if key[0] not in unknown_ids]
        assert sorted(result.keys(stream)) == sorted(expected)


def test_url_limit_learned_after_414(start_simulator) -> None:
    simulator = start_simulator(users=600, max_request_target=1000)
    result = run_tap(tap_config(simulator))
    assert_matches_dataset(result, simulator.dataset)
    rejected = simulator.stats["requests_by_status"]["414"]
    accepted = simulator.stats["requests_by_status"]["200"]
    assert rejected > 0
    # Splitting every batch from 6,000 bytes down to 1,000 would cost at least two 414s
    # per batch and stream. Learning the limit costs a few in all.
    assert rejected < accepted / 4
