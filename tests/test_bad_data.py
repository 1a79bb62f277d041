"""Malformed values from the API: the sync completes, and each value gets its policy.

The simulator's `bad_data` switch corrupts every fifth user, cycling through the kinds in
`tests.simulator.data.BAD_DATA_KINDS`. Item-level corruption is in each stream's first item.
The policy is the table in `tap_continu.normalize` and the README: convert what parses,
set the rest to null with a WARNING that names the stream, the field and the record's ids.
"""

from __future__ import annotations

import logging
import re
import typing as t
from collections import defaultdict

import pytest
import requests

from tap_continu.normalize import WARNINGS_PER_FIELD, parse_datetime
from tests.simulator import STREAMS, Simulator, SimulatorConfig
from tests.support import PRIMARY_KEYS, assert_matches_dataset, run_tap, tap_config

if t.TYPE_CHECKING:
    from tests.simulator import Dataset
    from tests.support import SyncResult

USERS = 150
USERS_WITHOUT_EMAIL = 5
MIDNIGHT = "2020-04-28T00:00:00+00:00"

# Fields set to null, per kind, as (stream, field). A user-level field is in "users", an
# item-level one in that stream's first item.
NULLED: dict[str, tuple[tuple[str, str], ...]] = {
    "unparseable_date": (
        ("users", "last_login"),
        ("assessments", "start_date"),
        ("workshops", "date"),
    ),
    "year_one": (("users", "hired_on"), ("assignments", "due_date"), ("tracks", "completed_date")),
    "year_out_of_range": (
        ("users", "first_login"),
        ("assessments", "passed_date"),
        ("assignments", "completed_date"),
    ),
    "empty_string": (("users", "suspended_on"), ("tracks", "start_date"), ("workshops", "date")),
    "unparseable_updated_at": (("users", "updated_at"),),
}
DATE_ONLY: tuple[tuple[str, str], ...] = (
    ("users", "hired_on"),
    ("users", "updated_at"),
    ("assignments", "assigned_date"),
    ("workshops", "date"),
)
NULL_WARNING = re.compile(r"^(\w+): set (\S+) to null for record \((.*?)\)")
NO_EMAIL_WARNING = re.compile(r"(\d+) user\(s\) have no usable email")


@pytest.fixture(scope="module")
def bad_sync() -> t.Iterator[tuple[Simulator, SyncResult, list[logging.LogRecord]]]:
    """Run one sync against bad data and keep its WARNING records."""
    config = SimulatorConfig(
        users=USERS,
        bad_data=True,
        users_without_email=USERS_WITHOUT_EMAIL,
        leak_credentials=True,
        rate_limit=None,
    )
    handler = _ListHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.INFO)
    try:
        with Simulator(config) as simulator:
            result = run_tap(tap_config(simulator))
            yield simulator, result, handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def users_of_kind(dataset: Dataset, kind: str) -> list[int]:
    return [
        index
        for index in range(len(dataset))
        if dataset.bad_data_kind(index) == kind and dataset.has_email(index)
    ]


def record_key(stream: str, dataset: Dataset, index: int) -> tuple[str, ...]:
    """Return the primary key of the user, or of the user's first item in `stream`."""
    user_id = dataset.object_id(index)
    if stream == "users":
        return (user_id,)
    first_item = dataset.completion_items(index)[stream][0]
    return (user_id, first_item[PRIMARY_KEYS[stream][1]])


def null_warnings(records: list[logging.LogRecord]) -> dict[tuple[str, str], list[str]]:
    """Map (stream, field) to the record-id text of each null WARNING."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for record in records:
        match = NULL_WARNING.match(record.getMessage())
        if match and record.levelno == logging.WARNING:
            found[match.group(1), match.group(2)].append(match.group(3))
    return found


def ids_text(stream: str, key: tuple[str, ...]) -> str:
    return ", ".join(
        f"{name}={value}" for name, value in zip(PRIMARY_KEYS[stream], key, strict=True)
    )


def test_all_keys_arrive(bad_sync) -> None:
    simulator, result, _ = bad_sync
    assert_matches_dataset(result, simulator.dataset)


def expected_nulls(dataset: Dataset) -> dict[tuple[str, str], set[str]]:
    """Map (stream, field) to the record-id text of every value that must become null."""
    expected: dict[tuple[str, str], set[str]] = defaultdict(set)
    for kind, fields in NULLED.items():
        for index in users_of_kind(dataset, kind):
            for stream, field in fields:
                expected[stream, field].add(ids_text(stream, record_key(stream, dataset, index)))
    return expected


@pytest.mark.parametrize("kind", sorted(NULLED))
def test_unusable_values_nulled(bad_sync, kind: str) -> None:
    simulator, result, _ = bad_sync
    dataset = simulator.dataset
    indices = users_of_kind(dataset, kind)
    assert indices, f"the dataset has no user of kind {kind}"
    for stream, field in NULLED[kind]:
        by_key = result.by_key(stream)
        for index in indices:
            key = record_key(stream, dataset, index)
            assert key in by_key, f"{stream} {key} is missing"
            assert field in by_key[key], f"{stream}.{field} was dropped, not set to null"
            assert by_key[key][field] is None, f"{stream}.{field} of {key} is not null"


def test_each_null_has_warning(bad_sync) -> None:
    simulator, _, records = bad_sync
    expected = expected_nulls(simulator.dataset)
    logged = null_warnings(records)
    # No value outside the corrupted ones was set to null.
    assert set(logged) <= set(expected)
    for stream_field, ids in expected.items():
        warned = logged.get(stream_field, [])
        assert set(warned) <= ids, f"{stream_field}: WARNING for a record that was not nulled"
        assert len(warned) == min(len(ids), WARNINGS_PER_FIELD), stream_field


def test_null_warning_names_record(bad_sync) -> None:
    simulator, _, records = bad_sync
    dataset = simulator.dataset
    index = users_of_kind(dataset, "unparseable_updated_at")[0]
    user_id = dataset.object_id(index)
    lines = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    expected = f"users: set updated_at to null for record (id={user_id})"
    assert any(line.startswith(expected) for line in lines)


def test_warnings_capped_per_field(bad_sync) -> None:
    _, _, records = bad_sync
    warnings = null_warnings(records)
    # workshops.date is nulled for two kinds, more often than the cap.
    assert len(warnings["workshops", "date"]) == WARNINGS_PER_FIELD
    last = [
        r.getMessage() for r in records if r.getMessage().startswith("workshops: set date to null")
    ][-1]
    assert "not logged" in last
    for logged in warnings.values():
        assert len(logged) <= WARNINGS_PER_FIELD


def test_date_only_is_midnight_utc(bad_sync) -> None:
    simulator, result, records = bad_sync
    dataset = simulator.dataset
    indices = users_of_kind(dataset, "date_only")
    assert indices
    warnings = null_warnings(records)
    for stream, field in DATE_ONLY:
        by_key = result.by_key(stream)
        for index in indices:
            key = record_key(stream, dataset, index)
            assert by_key[key][field] == MIDNIGHT, f"{stream}.{field} of {key}"
            assert ids_text(stream, key) not in warnings[stream, field]


def test_numbers_as_strings_converted(bad_sync) -> None:
    simulator, result, _ = bad_sync
    dataset = simulator.dataset
    indices = users_of_kind(dataset, "numbers_as_strings")
    assert indices
    checked = 0
    for stream, fields in (("assessments", ("score", "attempts")), ("tracks", ("progress",))):
        by_key = result.by_key(stream)
        id_field = PRIMARY_KEYS[stream][1]
        for index in indices:
            for item in dataset.completions(stream, index):
                record = by_key[dataset.object_id(index), item[id_field]]
                for field in fields:
                    assert isinstance(item[field], str), "the simulator sent no string"
                    assert record[field] == int(item[field])
                    assert not isinstance(record[field], str)
                    checked += 1
    assert checked >= 6


def test_unknown_fields_dropped(bad_sync) -> None:
    simulator, result, records = bad_sync
    dataset = simulator.dataset
    indices = users_of_kind(dataset, "unknown_field")
    assert indices
    ids = {dataset.object_id(index) for index in indices}
    for stream in ("users", *STREAMS):
        owner = "id" if stream == "users" else "user_id"
        matching = [r for r in result.records(stream) if r[owner] in ids]
        assert matching, f"no {stream} record of an unknown_field user"
        for record in matching:
            assert "legacy_flag" not in record
    for stream in ("users", *STREAMS):
        mentions = [r for r in records if "legacy_flag" in r.getMessage() and stream in r.name]
        assert len(mentions) == 1, f"{stream}: the dropped field is not logged once"


def test_null_arrays_kept(bad_sync) -> None:
    simulator, result, records = bad_sync
    dataset = simulator.dataset
    indices = users_of_kind(dataset, "null_arrays")
    assert indices
    users = result.by_key("users")
    assignments = result.by_key("assignments")
    for index in indices:
        user_id = dataset.object_id(index)
        assert "linked_teams" in users[user_id,]
        assert users[user_id,]["linked_teams"] is None
        for item in dataset.completions("assignments", index):
            record = assignments[user_id, item["assignment_id"]]
            assert "assigned_content" in record
            assert record["assigned_content"] is None
    warnings = null_warnings(records)
    assert ("users", "linked_teams") not in warnings
    assert ("assignments", "assigned_content") not in warnings


def test_unparseable_bookmark_ignored(bad_sync) -> None:
    simulator, result, _ = bad_sync
    dataset = simulator.dataset
    newest = max(dataset.entry(index).epochs["updated_at"] or 0.0 for index in range(len(dataset)))
    bookmark = result.final_state["bookmarks"]["users"]["replication_key_value"]
    assert parse_datetime(bookmark).timestamp() == pytest.approx(newest)


def test_emails_and_names_exact(bad_sync) -> None:
    simulator, result, _ = bad_sync
    dataset = simulator.dataset
    users = result.by_key("users")
    kinds = {"plus": 0, "apostrophe": 0, "capitals": 0, "non_ascii_name": 0}
    for index in range(len(dataset)):
        user = dataset.user(index)
        record = users[user["id"],]
        for field in ("email", "first_name", "last_name", "full_name"):
            assert record[field] == user[field], f"{field} of {user['id']}"
        email = user["email"] or ""
        kinds["plus"] += "+" in email
        kinds["apostrophe"] += "'" in email
        kinds["capitals"] += email != email.lower()
        kinds["non_ascii_name"] += not user["full_name"].isascii()
    assert all(kinds.values()), kinds


def test_odd_emails_get_completions(bad_sync) -> None:
    simulator, result, _ = bad_sync
    dataset = simulator.dataset
    with_tracks = {key[0] for key in result.keys("tracks")}
    checks = {
        "plus": lambda email: "+" in email,
        "apostrophe": lambda email: "'" in email,
        "capitals": lambda email: email != email.lower(),
    }
    for name, condition in checks.items():
        matching = [
            dataset.object_id(index)
            for index in range(len(dataset))
            if (email := dataset.email_of(index))
            and condition(email)
            and dataset.completion_items(index)["tracks"]
        ]
        assert matching, f"no user with a {name} email has tracks"
        assert set(matching) <= with_tracks, f"a user with a {name} email lost their tracks"


def test_users_without_email(bad_sync) -> None:
    simulator, result, records = bad_sync
    dataset = simulator.dataset
    without = [index for index in range(len(dataset)) if not dataset.has_email(index)]
    assert len(without) == USERS_WITHOUT_EMAIL
    users = result.by_key("users")
    for index in without:
        assert users[dataset.object_id(index),]["email"] is None
    counts = [
        int(match.group(1)) for r in records if (match := NO_EMAIL_WARNING.search(r.getMessage()))
    ]
    assert counts == [USERS_WITHOUT_EMAIL]


def test_credentials_removed(bad_sync) -> None:
    simulator, result, _ = bad_sync
    # The simulator really sends them.
    token = requests.post(
        simulator.auth_url,
        json={
            "client_id": simulator.config.client_id,
            "client_secret": simulator.config.client_secret,
        },
        timeout=10,
    ).json()["access_token"]
    page = requests.get(
        f"{simulator.api_url}/data/users",
        params={"list_type": "full", "list_size": 50},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    assert "password" in page[0]
    assert "provisioning_key" in page[0]
    for record in result.records("users"):
        assert "password" not in record
        assert "provisioning_key" not in record


def test_warnings_hold_no_email(bad_sync) -> None:
    simulator, _, records = bad_sync
    dataset = simulator.dataset
    text = "\n".join(r.getMessage() for r in records).lower()
    assert text, "no WARNING was logged"
    for index in range(len(dataset)):
        email = dataset.email_of(index)
        if email:
            assert email.lower() not in text
