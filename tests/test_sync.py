"""Full syncs in-process against the simulator, compared with its data by primary key."""

from __future__ import annotations

import json
import logging
import math
from urllib.parse import quote_plus

import pytest

from tap_continu.normalize import format_datetime, parse_datetime
from tap_continu.tap import TapContinu
from tests.simulator import STREAMS
from tests.support import (
    ALL_STREAMS,
    assert_matches_dataset,
    expected_keys,
    run_tap,
    tap_config,
)

COMPLETION_PATH = "/completion/assessments"


def greedy_batches(emails: list[str], capacity: int) -> int:
    """Count batches when emails are packed in order; each needs its encoded length."""
    batches, used = 0, None
    for email in emails:
        size = len(quote_plus(email, safe="@,"))
        if used is not None and used + 1 + size <= capacity:
            used += 1 + size
        else:
            batches += 1
            used = size
    return batches


@pytest.mark.parametrize("id_from_mode", ["exclusive", "inclusive"])
def test_sync_matches_simulator(start_simulator, id_from_mode: str) -> None:
    simulator = start_simulator(users=1100, id_from_mode=id_from_mode)
    result = run_tap(tap_config(simulator))
    assert_matches_dataset(result, simulator.dataset)


def test_users_page_boundary_exact_multiple(start_simulator) -> None:
    simulator = start_simulator(users=1000, id_from_mode="inclusive")
    result = run_tap(tap_config(simulator))
    assert_matches_dataset(result, simulator.dataset)
    assert simulator.stats["requests_by_path"]["/v3/data/users"] == 3


def test_request_count_is_minimal(start_simulator) -> None:
    simulator = start_simulator(users=2000)
    config = tap_config(simulator)
    run_tap(config)
    dataset = simulator.dataset
    emails = [dataset.email_of(index) for index in range(len(dataset))]
    capacity = 6000 - len(simulator.api_url + COMPLETION_PATH + "?for_users=")
    per_endpoint = greedy_batches([e for e in emails if e], capacity)
    by_path = simulator.stats["requests_by_path"]
    for stream in STREAMS:
        assert by_path[f"/v3/completion/{stream}"] == per_endpoint
    encoded_total = sum(len(quote_plus(e, safe="@,")) + 1 for e in emails if e)
    fewest_batches = math.ceil(encoded_total / (capacity + 1))
    minimum = 1 + (len(dataset) // 500 + 1) + len(STREAMS) * fewest_batches
    assert simulator.stats["requests_total"] <= 1.05 * minimum
    assert simulator.stats["max_request_target_length"] + len(simulator.base_url) <= 6000


def test_completion_records_carry_user_and_utc_dates(start_simulator) -> None:
    simulator = start_simulator(users=300)
    result = run_tap(tap_config(simulator))
    dataset = simulator.dataset
    assignments = result.by_key("assignments")
    checked = 0
    for index in range(len(dataset)):
        user = dataset.user(index)
        for item in dataset.completions("assignments", index):
            record = assignments[(user["id"], item["assignment_id"])]
            assert record["email"] == user["email"]
            if item["assigned_date"]:
                expected = format_datetime(parse_datetime(item["assigned_date"]))
                assert record["assigned_date"] == expected
                assert record["assigned_date"].endswith("+00:00")
            assert isinstance(record["assigned_content"], list)
            assert len(record["assigned_content"]) == len(item["assigned_content"])
            checked += 1
    assert checked > 50


def test_state_is_one_flat_bookmark_per_stream(start_simulator) -> None:
    simulator = start_simulator(users=600)
    result = run_tap(tap_config(simulator))
    state_text = json.dumps(result.states)
    for index in range(len(simulator.dataset)):
        email = simulator.dataset.email_of(index)
        if email:
            assert email not in state_text
    bookmarks = result.final_state["bookmarks"]
    assert set(bookmarks) == set(ALL_STREAMS)
    for stream in STREAMS:
        assert "partitions" not in bookmarks[stream]
    newest = max(parse_datetime(u["updated_at"]) for u in simulator.dataset if u["updated_at"])
    assert bookmarks["users"]["replication_key_value"] == format_datetime(newest)


def test_users_only_sync_sends_bookmark(start_simulator) -> None:
    simulator = start_simulator(users=800)
    config = tap_config(simulator)
    catalog = users_only_catalog(config)
    first = run_tap(config, catalog=catalog)
    assert len(first.records("users")) == 800
    bookmark = parse_datetime(first.final_state["bookmarks"]["users"]["replication_key_value"])
    simulator.reset_stats()
    second = run_tap(config, catalog=catalog, state=first.final_state)
    recent = {
        u["id"]
        for u in simulator.dataset
        if u["updated_at"]
        and parse_datetime(u["updated_at"]).timestamp() >= bookmark.timestamp() - 1
    }
    assert {r["id"] for r in second.records("users")} == recent
    assert simulator.stats["requests_by_path"].get("/v3/completion/assessments", 0) == 0


def test_completions_selected_reads_every_user_again(start_simulator) -> None:
    simulator = start_simulator(users=300)
    config = tap_config(simulator)
    first = run_tap(config)
    second = run_tap(config, state=first.final_state)
    assert_matches_dataset(second, simulator.dataset)


def test_credentials_never_emitted(start_simulator) -> None:
    simulator = start_simulator(users=120, leak_credentials=True)
    result = run_tap(tap_config(simulator))
    users = result.records("users")
    assert len(users) == 120
    for record in users:
        assert "password" not in record
        assert "provisioning_key" not in record
    schema = next(m for m in result.messages if m["type"] == "SCHEMA" and m["stream"] == "users")
    assert "password" not in schema["schema"]["properties"]


def test_url_too_long_splits_batches(start_simulator, caplog) -> None:
    simulator = start_simulator(users=400, max_request_target=1500)
    with caplog.at_level(logging.INFO):
        result = run_tap(tap_config(simulator))
    assert_matches_dataset(result, simulator.dataset)
    assert simulator.stats["requests_by_status"]["414"] > 0
    assert "414 URI Too Long; splitting a batch" in caplog.text


def test_small_url_budget_makes_more_batches(start_simulator) -> None:
    simulator = start_simulator(users=300)
    run_tap(tap_config(simulator, max_url_length=2000))
    assert simulator.stats["max_request_target_length"] + len(simulator.base_url) <= 2000
    assert simulator.stats["requests_by_status"].get("414", 0) == 0


def test_start_date_sent_as_from(start_simulator) -> None:
    simulator = start_simulator(users=300)
    result = run_tap(tap_config(simulator, start_date="2023-01-01T00:00:00Z"))
    since = parse_datetime("2023-01-01T00:00:00Z")
    got = set(result.keys("workshops"))
    expected = set()
    for index in range(len(simulator.dataset)):
        user_id = simulator.dataset.object_id(index)
        for item in simulator.dataset.completions("workshops", index):
            if item["date"] and parse_datetime(item["date"]) >= since:
                expected.add((user_id, item["id"]))
    assert expected
    assert got >= expected
    assert len(got) < len(expected_keys(simulator.dataset, "workshops"))


def test_stream_map_hashes_email_but_keeps_completions(start_simulator) -> None:
    simulator = start_simulator(users=300)
    maps = {"users": {"email": "md5(email) if email else None"}}
    for stream in STREAMS:
        maps[stream] = {"email": "__NULL__"}
    result = run_tap(tap_config(simulator, stream_maps=maps))
    assert_matches_dataset(result, simulator.dataset)
    emails = {simulator.dataset.email_of(i) for i in range(len(simulator.dataset))}
    for record in result.records("users"):
        assert record["email"] not in emails
    for record in result.records("tracks"):
        assert "email" not in record


def test_stream_map_filter_dropping_last_user(start_simulator) -> None:
    simulator = start_simulator(users=300)
    last_id = simulator.dataset.object_id(299)
    maps = {"users": {"__filter__": f"id != '{last_id}'"}}
    result = run_tap(tap_config(simulator, stream_maps=maps))
    assert last_id not in {r["id"] for r in result.records("users")}
    for stream in STREAMS:
        expected = [key for key in expected_keys(simulator.dataset, stream) if key[0] != last_id]
        assert sorted(result.keys(stream)) == sorted(expected)


def users_only_catalog(config: dict) -> dict:
    catalog = TapContinu(config=config).catalog_dict
    for entry in catalog["streams"]:
        selected = entry["tap_stream_id"] == "users"
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = selected
    return catalog
