"""Tests of the Continu API simulator itself, through real HTTP requests on 127.0.0.1."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.simulator import STREAMS, Dataset, Simulator, SimulatorConfig
from tests.simulator.data import (
    BAD_DATA_KINDS,
    COMPACT_FIELDS,
    FULL_FIELDS,
    SUMMARY_FIELDS,
    parse_timestamp,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
CREDENTIALS = {"client_id": "sim-client", "client_secret": "sim-secret"}
RATE_HEADERS = ("X-REQUESTS-PER-MINUTE", "X-REQUESTS-PER-DAY")


class FakeClock:
    """A clock that moves only when a test advances it."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(rate_limit=0)) as simulator:
        yield simulator


def authorized_session(simulator: Simulator) -> requests.Session:
    session = requests.Session()
    response = session.post(simulator.auth_url, json=CREDENTIALS, timeout=5)
    assert response.status_code == 200, response.text
    session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return session


def get_users(session: requests.Session, simulator: Simulator, **params: Any) -> requests.Response:
    return session.get(f"{simulator.api_url}/data/users", params=params, timeout=5)


def get_completions(
    session: requests.Session,
    simulator: Simulator,
    stream: str,
    **params: Any,
) -> requests.Response:
    return session.get(f"{simulator.api_url}/completion/{stream}", params=params, timeout=5)


def first_index(dataset: Dataset, condition: Callable[[int], object]) -> int:
    return next(index for index in range(len(dataset)) if condition(index))


def email_at(dataset: Dataset, index: int) -> str:
    email = dataset.email_of(index)
    assert email is not None, f"user {index} has no email"
    return email


def timestamp(value: object) -> float:
    moment = parse_timestamp(value)
    assert moment is not None, f"{value!r} is not a date"
    return moment


# Token endpoint


def test_token_json_body_returns_bearer_token(sim: Simulator) -> None:
    response = requests.post(sim.auth_url, json=CREDENTIALS, timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"  # noqa: S105 - a token type, not a password
    assert isinstance(body["access_token"], str)
    assert len(body["access_token"]) >= 20


def test_token_form_body_rejected(sim: Simulator) -> None:
    response = requests.post(sim.auth_url, data=CREDENTIALS, timeout=5)
    assert response.status_code == 400
    assert "JSON" in response.text


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"client_id": "sim-client"}, 400),
        ({"client_secret": "sim-secret"}, 400),
        ({"client_id": "sim-client", "client_secret": "wrong"}, 401),
        ({"client_id": "other", "client_secret": "sim-secret"}, 401),
    ],
)
def test_token_bad_payload_rejected(sim: Simulator, payload: dict[str, str], status: int) -> None:
    response = requests.post(sim.auth_url, json=payload, timeout=5)
    assert response.status_code == status


def test_token_non_json_body_rejected(sim: Simulator) -> None:
    response = requests.post(
        sim.auth_url,
        data=b"client_id=sim-client",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400


@pytest.mark.parametrize(("mode", "expected"), [("absolute", 1_700_003_600), ("relative", 3600)])
def test_token_expires_in_modes(mode: str, expected: int) -> None:
    config = SimulatorConfig(expires_in_mode=mode, token_lifetime=3600)
    with Simulator(config, wall_clock=lambda: 1_700_000_000.0) as simulator:
        response = requests.post(simulator.auth_url, json=CREDENTIALS, timeout=5)
    assert response.json()["expires_in"] == expected


# Authorization


def test_missing_or_unknown_token_rejected(sim: Simulator) -> None:
    url = f"{sim.api_url}/data/users"
    missing = requests.get(url, timeout=5)
    unknown = requests.get(url, headers={"Authorization": "Bearer not-issued"}, timeout=5)
    wrong_scheme = requests.get(url, headers={"Authorization": "Basic abc"}, timeout=5)
    assert missing.status_code == 401
    assert unknown.status_code == 401
    assert wrong_scheme.status_code == 401
    assert unknown.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_rejected() -> None:
    wall_clock = FakeClock(1_700_000_000.0)
    config = SimulatorConfig(token_lifetime=60)
    with Simulator(config, wall_clock=wall_clock) as simulator:
        session = authorized_session(simulator)
        before = get_users(session, simulator)
        wall_clock.advance(60)
        after = get_users(session, simulator)
    assert before.status_code == 200
    assert after.status_code == 401
    assert "expired" in after.text


def test_revoke_after_requests_forces_new_token() -> None:
    with Simulator(SimulatorConfig(revoke_after_requests=3)) as simulator:
        session = authorized_session(simulator)
        statuses = [get_users(session, simulator).status_code for _ in range(4)]
        refreshed = authorized_session(simulator)
        after_refresh = get_users(refreshed, simulator).status_code
        revocations = simulator.stats["token_revocations"]
    assert statuses == [200, 200, 200, 401]
    assert after_refresh == 200
    assert revocations == 1


# Rate limit


def test_rate_limit_rolling_window() -> None:
    clock = FakeClock()
    config = SimulatorConfig(rate_limit=50, window_seconds=60)
    with Simulator(config, clock=clock) as simulator:
        session = authorized_session(simulator)  # request 1 at t=0
        first_half = [get_users(session, simulator).status_code for _ in range(24)]
        clock.advance(30)
        second_half = [get_users(session, simulator).status_code for _ in range(25)]
        limited = get_users(session, simulator)
        clock.advance(29.9)
        still_limited = get_users(session, simulator).status_code
        clock.advance(0.1)  # the 25 requests made at t=0 leave the window
        reopened = [get_users(session, simulator).status_code for _ in range(25)]
        limited_again = get_users(session, simulator).status_code
        stats = simulator.stats
    assert first_half == [200] * 24
    assert second_half == [200] * 25
    assert limited.status_code == 429
    assert limited.headers["X-REQUESTS-PER-MINUTE"] == "50"
    assert "Retry-After" not in limited.headers
    assert still_limited == 429
    assert reopened == [200] * 25
    assert limited_again == 429
    assert stats["responses_429"] == 3
    assert stats["max_requests_in_window"] == 50


def test_rate_limit_counts_token_requests() -> None:
    config = SimulatorConfig(rate_limit=3)
    with Simulator(config, clock=FakeClock()) as simulator:
        statuses = [
            requests.post(simulator.auth_url, json=CREDENTIALS, timeout=5).status_code
            for _ in range(4)
        ]
    assert statuses == [200, 200, 200, 429]


def test_rate_headers_on_every_status() -> None:
    config = SimulatorConfig(rate_limit=6, max_request_target=100)
    with Simulator(config, clock=FakeClock()) as simulator:
        session = authorized_session(simulator)
        responses = {
            200: get_users(session, simulator),
            401: requests.get(f"{simulator.api_url}/data/users", timeout=5),
            404: session.get(f"{simulator.api_url}/no/such/path", timeout=5),
            405: session.delete(f"{simulator.api_url}/data/users", timeout=5),
            414: get_users(session, simulator, email="x" * 200),
        }
        simulator.configure(error_rate=1.0)
        responses[500] = get_users(session, simulator)
        simulator.configure(error_rate=0.0)
        responses[429] = get_users(session, simulator)
    for status, response in responses.items():
        assert response.status_code == status
        for header in RATE_HEADERS:
            assert header in response.headers, f"{header} missing from the {status} response"
    assert responses[200].headers["X-REQUESTS-PER-MINUTE"] == "2"
    assert responses[414].headers["X-REQUESTS-PER-MINUTE"] == "5"  # 414 does not count
    assert responses[429].headers["X-REQUESTS-PER-DAY"] == "6"


def test_storm_answers_429_until_deadline() -> None:
    clock = FakeClock()
    with Simulator(SimulatorConfig(), clock=clock) as simulator:
        session = authorized_session(simulator)
        simulator.configure(storm_429_until=clock.now + 10)
        during = [get_users(session, simulator).status_code for _ in range(3)]
        clock.advance(10)
        after = get_users(session, simulator).status_code
    assert during == [429, 429, 429]
    assert after == 200


# Users


@pytest.mark.parametrize("mode", ["exclusive", "inclusive"])
def test_users_paging_covers_every_user_once(mode: str) -> None:
    with Simulator(SimulatorConfig(rate_limit=0, users=230, id_from_mode=mode)) as simulator:
        session = authorized_session(simulator)
        seen: list[str] = []
        first_ids: list[str] = []
        id_from: str | None = None
        for _ in range(20):
            params: dict[str, Any] = {"list_size": 50}
            if id_from is not None:
                params["id_from"] = id_from
            page = get_users(session, simulator, **params).json()
            if page:
                first_ids.append(page[0]["id"])
            new = [user["id"] for user in page if user["id"] != id_from]
            if not new:
                break
            seen.extend(new)
            id_from = new[-1]
        expected = [simulator.dataset.object_id(index) for index in range(230)]
    assert seen == expected
    if mode == "inclusive":
        assert first_ids[1] == expected[49]  # the id_from user opens the next page
    else:
        assert first_ids[1] == expected[50]


def test_users_sorted_by_increasing_id(sim: Simulator) -> None:
    ids = [user["id"] for user in get_users(authorized_session(sim), sim, list_size=500).json()]
    assert ids == sorted(ids)
    assert len(ids) == 200
    assert all(len(user_id) == 24 for user_id in ids)


@pytest.mark.parametrize(
    ("list_type", "fields"),
    [("compact", COMPACT_FIELDS), ("summary", SUMMARY_FIELDS), ("full", FULL_FIELDS)],
)
def test_users_list_type_field_sets(
    sim: Simulator, list_type: str, fields: tuple[str, ...]
) -> None:
    page = get_users(authorized_session(sim), sim, list_type=list_type, list_size=100).json()
    assert len(page) == 100
    for user in page:
        assert set(user) == set(fields)


def test_users_defaults_compact_and_50(sim: Simulator) -> None:
    page = get_users(authorized_session(sim), sim).json()
    assert len(page) == 50
    assert set(page[0]) == set(COMPACT_FIELDS)


@pytest.mark.parametrize(
    "params",
    [
        {"list_size": 1000},
        {"list_size": 10},
        {"list_size": "abc"},
        {"list_type": "detailed"},
        {"id_from": "not-an-object-id"},
        {"is_manager": "maybe"},
        {"updated_at_from": "yesterday"},
    ],
)
def test_users_invalid_parameter_rejected(sim: Simulator, params: dict[str, Any]) -> None:
    assert get_users(authorized_session(sim), sim, **params).status_code == 400


def test_users_later_edition_allows_1000() -> None:
    with Simulator(SimulatorConfig(rate_limit=0, users=1200, edition="later")) as simulator:
        page = get_users(authorized_session(simulator), simulator, list_size=1000).json()
    assert len(page) == 1000


def test_users_filters(sim: Simulator) -> None:
    session = authorized_session(sim)
    dataset = sim.dataset
    users = [dataset.user(index) for index in range(len(dataset))]

    managers = get_users(session, sim, is_manager="t", list_size=500, list_type="full").json()
    assert managers
    assert [user["id"] for user in managers] == [u["id"] for u in users if u["is_manager"]]

    roles = get_users(session, sim, role="admin,external", list_size=500, list_type="full").json()
    assert {user["role"] for user in roles} == {"admin", "external"}
    assert len(roles) == sum(u["role"] in ("admin", "external") for u in users)

    since, until = 1_577_836_800, 1_640_995_200  # 2020-01-01 to 2022-01-01
    ranged = get_users(
        session, sim, updated_at_from=since, updated_at_until=until, list_size=500
    ).json()
    expected_ids = [
        u["id"] for u in users if since <= (parse_timestamp(u["updated_at"]) or -1) <= until
    ]
    assert ranged
    assert [user["id"] for user in ranged] == expected_ids

    shouted = users[3]["email"].upper()
    by_email = get_users(session, sim, email=f"{shouted},nobody@example.com").json()
    assert [user["id"] for user in by_email] == [users[3]["id"]]


def test_users_leak_credentials_switch(sim: Simulator) -> None:
    session = authorized_session(sim)
    clean = get_users(session, sim, list_type="full").json()[0]
    sim.configure(leak_credentials=True)
    leaked = get_users(session, sim, list_type="full").json()[0]
    compact = get_users(session, sim).json()[0]
    assert "password" not in clean
    assert "password" in leaked
    assert "provisioning_key" in leaked
    assert "password" not in compact


def test_user_by_id_shapes() -> None:
    for edition, expected_type in (("2020", list), ("later", dict)):
        with Simulator(SimulatorConfig(edition=edition)) as simulator:
            session = authorized_session(simulator)
            user_id = simulator.dataset.object_id(7)
            found = session.get(f"{simulator.api_url}/data/users/{user_id}", timeout=5)
            missing = session.get(f"{simulator.api_url}/data/users/{'0' * 24}", timeout=5)
        body = found.json()
        assert isinstance(body, expected_type)
        record = body[0] if isinstance(body, list) else body
        assert record["id"] == user_id
        assert missing.status_code == 404


# Completions


def test_completions_percent_encoded_plus_and_capitals(sim: Simulator) -> None:
    dataset = sim.dataset
    tagged = first_index(dataset, lambda i: "+" in (dataset.email_of(i) or ""))
    capital = first_index(
        dataset, lambda i: (dataset.email_of(i) or "").lower() != dataset.email_of(i)
    )
    emails = [email_at(dataset, tagged), email_at(dataset, capital).lower()]
    response = get_completions(
        authorized_session(sim), sim, "assessments", for_users=",".join(emails)
    )
    assert "%2B" in (response.request.url or "")
    assert response.status_code == 200
    body = response.json()
    assert [user["user_id"] for user in body] == [
        dataset.object_id(tagged),
        dataset.object_id(capital),
    ]
    assert body[1]["email"] == dataset.email_of(capital)  # stored case, not request case


def test_completions_raw_plus_is_a_space(sim: Simulator) -> None:
    dataset = sim.dataset
    tagged = dataset.email_of(first_index(dataset, lambda i: "+" in (dataset.email_of(i) or "")))
    url = f"{sim.api_url}/completion/tracks?for_users={tagged}"
    session = authorized_session(sim)
    strict = session.get(url, timeout=5)
    sim.configure(unknown_email="omit")
    lenient = session.get(url, timeout=5)
    assert "+" in (strict.request.url or "")
    assert strict.status_code == 404
    assert lenient.status_code == 200
    assert lenient.json() == []


def test_completions_raw_comma_and_at_accepted(sim: Simulator) -> None:
    emails = [sim.dataset.email_of(index) for index in (0, 1)]
    plain = [email for email in emails if email and "+" not in email]
    url = f"{sim.api_url}/completion/workshops?for_users={','.join(plain)}"
    response = authorized_session(sim).get(url, timeout=5)
    assert response.status_code == 200
    assert len(response.json()) == len(plain)


def test_completions_unknown_email_modes(sim: Simulator) -> None:
    known = sim.dataset.email_of(0)
    for_users = f"{known},nobody@example.com"
    session = authorized_session(sim)
    strict = get_completions(session, sim, "assignments", for_users=for_users)
    sim.configure(unknown_email="omit")
    lenient = get_completions(session, sim, "assignments", for_users=for_users)
    assert strict.status_code == 404
    assert "nobody" not in strict.text
    assert lenient.status_code == 200
    assert [user["email"] for user in lenient.json()] == [known]


@pytest.mark.parametrize("for_users", [None, "", " , "])
def test_completions_without_for_users_rejected(sim: Simulator, for_users: str | None) -> None:
    params = {} if for_users is None else {"for_users": for_users}
    assert get_completions(authorized_session(sim), sim, "tracks", **params).status_code == 400


def test_completions_response_shape(sim: Simulator) -> None:
    dataset = sim.dataset
    index = first_index(dataset, lambda i: len(dataset.completions("assignments", i)) >= 2)
    empty = first_index(dataset, lambda i: not dataset.completions("assignments", i))
    emails = f"{dataset.email_of(index)},{dataset.email_of(empty)},{dataset.email_of(index)}"
    body = get_completions(authorized_session(sim), sim, "assignments", for_users=emails).json()
    assert len(body) == 2  # one object per user, duplicates dropped
    assert set(body[0]) == {"email", "first_name", "last_name", "user_id", "assignments"}
    assert body[0]["assignments"] == dataset.completions("assignments", index)
    assert body[1]["assignments"] == []
    assignment_fields = {
        "assigned_content",
        "assigned_date",
        "assignment_id",
        "completed",
        "completed_date",
        "completion_status",
        "due_date",
    }
    assert set(body[0]["assignments"][0]) == assignment_fields


def test_completions_from_until_inclusive_in_milliseconds(sim: Simulator) -> None:
    dataset = sim.dataset
    indices = [i for i in range(len(dataset)) if dataset.completions("tracks", i)][:40]
    dates = sorted(
        timestamp(item["start_date"]) for i in indices for item in dataset.completions("tracks", i)
    )
    since = math.floor(dates[len(dates) // 3])
    until = math.floor(dates[2 * len(dates) // 3])
    emails = ",".join(email_at(dataset, i) for i in indices)
    body = get_completions(
        authorized_session(sim), sim, "tracks", for_users=emails, **{"from": since, "until": until}
    ).json()
    returned = sorted(timestamp(item["start_date"]) for user in body for item in user["tracks"])
    expected = [moment for moment in dates if since <= moment <= until]
    upper = dates[2 * len(dates) // 3]
    assert returned == expected
    assert dates[len(dates) // 3] in returned  # the lower bound is inclusive
    assert upper % 1 > 0
    assert upper not in returned  # until=12:00:00 excludes 12:00:00.123
    assert len(body) == len(indices)  # users with no item in range still appear


def test_completions_later_edition_uses_started_date() -> None:
    with Simulator(SimulatorConfig(edition="later")) as simulator:
        dataset = simulator.dataset
        index = first_index(dataset, lambda i: dataset.completions("assessments", i))
        body = get_completions(
            authorized_session(simulator),
            simulator,
            "assessments",
            for_users=dataset.email_of(index),
        ).json()
    item = body[0]["assessments"][0]
    assert "started_date" in item
    assert "start_date" not in item
    assert dataset.completion_date_field("assessments") == "started_date"
    assert Dataset().completion_date_field("assessments") == "start_date"
    assert dataset.completion_date_field("workshops") == "date"


def test_request_target_too_long_414() -> None:
    with Simulator(SimulatorConfig(max_request_target=300)) as simulator:
        session = authorized_session(simulator)
        emails = ",".join(email_at(simulator.dataset, i) for i in range(30))
        response = get_completions(session, simulator, "workshops", for_users=emails)
        stats = simulator.stats
    assert response.status_code == 414
    assert stats["max_request_target_length"] > 300
    assert stats["max_emails_per_request"] == 0  # rejected before the emails were read


def test_unknown_path_and_wrong_method(sim: Simulator) -> None:
    session = authorized_session(sim)
    assert session.get(f"{sim.api_url}/data/teams", timeout=5).status_code == 404
    assert session.get(f"{sim.base_url}/data/users", timeout=5).status_code == 404
    wrong = session.post(f"{sim.api_url}/data/users", json={}, timeout=5)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET"
    assert session.get(sim.auth_url, timeout=5).status_code == 405


# Faults


def test_error_rate_answers_500(sim: Simulator) -> None:
    session = authorized_session(sim)
    sim.configure(error_rate=1.0)
    assert get_users(session, sim).status_code == 500
    assert requests.post(sim.auth_url, json=CREDENTIALS, timeout=5).status_code == 500
    assert requests.get(f"{sim.base_url}/_sim/stats", timeout=5).status_code == 200


def test_drop_rate_truncates_body(sim: Simulator) -> None:
    session = authorized_session(sim)
    sim.configure(drop_rate=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get_users(session, sim, list_size=500)
    sim.configure(drop_rate=0.0)
    assert get_users(session, sim).status_code == 200  # the session reconnects


def test_slow_rate_delays_response(sim: Simulator) -> None:
    session = authorized_session(sim)
    sim.configure(slow_rate=1.0, slow_seconds=0.2)
    started = time.perf_counter()
    response = get_users(session, sim)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert elapsed >= 0.2
    assert sim.stats["faults"]["slow"] == 1


# Admin endpoints


def test_admin_endpoints(sim: Simulator) -> None:
    session = authorized_session(sim)
    get_users(session, sim)
    stats = requests.get(f"{sim.base_url}/_sim/stats", timeout=5).json()
    expected = requests.get(f"{sim.base_url}/_sim/expected", timeout=5).json()
    configured = requests.post(
        f"{sim.base_url}/_sim/config",
        json={"rate_limit": 7, "id_from_mode": "inclusive"},
        timeout=5,
    )
    invalid = requests.post(f"{sim.base_url}/_sim/config", json={"users": 5}, timeout=5)
    misspelt = requests.post(f"{sim.base_url}/_sim/config", json={"rate_limt": 5}, timeout=5)
    reset = requests.post(f"{sim.base_url}/_sim/reset-stats", timeout=5).json()
    assert stats["requests_total"] == 2
    assert stats["token_requests"] == 1
    assert stats["requests_by_path"]["/v3/data/users"] == 1
    assert stats["requests_by_status"] == {"200": 2}
    assert expected == sim.dataset.expected_counts()
    assert configured.status_code == 200
    assert sim.config.rate_limit == 7
    assert sim.config.id_from_mode == "inclusive"
    assert invalid.status_code == 400
    assert misspelt.status_code == 400
    assert "rate_limt" in misspelt.text
    assert reset["requests_total"] == 0


def test_configure_rejects_invalid_values(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="error_rate"):
        sim.configure(error_rate=2)
    with pytest.raises(ValueError, match="id_from_mode"):
        sim.configure(id_from_mode="sideways")
    with pytest.raises(ValueError, match="seed"):
        sim.configure(seed=2)
    assert sim.config == SimulatorConfig(rate_limit=0)


# Dataset


def test_dataset_same_seed_same_data() -> None:
    first = Dataset(seed=7, users=50)
    second = Dataset(seed=7, users=50)
    other = Dataset(seed=8, users=50)
    assert list(first) == list(second)
    assert [first.completions("tracks", i) for i in range(50)] == [
        second.completions("tracks", i) for i in range(50)
    ]
    assert list(first) != list(other)


def test_dataset_large_is_lazy() -> None:
    dataset = Dataset(users=100_000)
    late = dataset.user(99_999)
    assert len(dataset) == 100_000
    assert late["id"] == dataset.object_id(99_999)
    assert dataset.index_of_id(late["id"]) == 99_999
    assert dataset.object_id(99_998) < late["id"]
    assert dataset.bisect_id(late["id"], inclusive=True) == 99_999
    assert dataset.bisect_id(late["id"], inclusive=False) == 100_000


def test_dataset_emails_unique_case_insensitively() -> None:
    dataset = Dataset(users=5000)  # more users than distinct name pairs
    emails = [dataset.email_of(index) for index in range(len(dataset))]
    lowered = [email.lower() for email in emails if email]
    assert len(set(lowered)) == len(dataset)
    assert any("+" in email for email in lowered)
    assert any("'" in email for email in lowered)
    assert any(email != email.lower() for email in emails if email)
    assert dataset.index_of_email(email_at(dataset, 4321).upper()) == 4321


def test_dataset_realistic_values() -> None:
    dataset = Dataset(users=200)
    users = list(dataset)
    names = "".join(user["first_name"] + user["last_name"] for user in users)
    assert not names.isascii()
    for field in ("hired_on", "suspended_on", "last_login", "job_title", "userid"):
        assert any(user[field] is None for user in users), f"no user has a null {field}"
    offsets = {user["created_at"][23:] for user in users}
    assert {"Z", "-06:00", "+05:30", "+00:00"} <= offsets
    years = {user["updated_at"][:4] for user in users}
    assert len(years) >= 4
    assert any(user["linked_teams"] == [] for user in users)
    without_any = sum(
        all(not dataset.completions(stream, i) for stream in STREAMS) for i in range(len(dataset))
    )
    assert 0.1 < without_any / len(dataset) < 0.35


def test_dataset_users_without_email() -> None:
    dataset = Dataset(users=100, users_without_email=5)
    missing = [index for index in range(100) if dataset.user(index)["email"] is None]
    assert len(missing) == 5
    for index in missing:
        assert all(dataset.completions(stream, index) == [] for stream in STREAMS)


def test_dataset_bad_data_kinds_present() -> None:
    dataset = Dataset(users=200, bad_data=True)
    kinds = {dataset.bad_data_kind(index) for index in range(len(dataset))} - {None}
    assert kinds == set(BAD_DATA_KINDS)
    users = list(dataset)
    assert any(user["last_login"] == "not a date" for user in users)
    assert any(user["hired_on"] == "0001-01-01T00:00:00Z" for user in users)
    assert any(user["first_login"] == "51502-01-01T00:00:00Z" for user in users)
    assert any(user["suspended_on"] == "" for user in users)
    assert any(user["updated_at"] == "2020-04-28" for user in users)
    assert any(user["linked_teams"] is None for user in users)
    assert any(user.get("legacy_flag") is True for user in users)
    index = first_index(dataset, lambda i: dataset.bad_data_kind(i) == "numbers_as_strings")
    assert all(isinstance(item["score"], str) for item in dataset.completions("assessments", index))
    index = first_index(dataset, lambda i: dataset.bad_data_kind(i) == "null_arrays")
    assert dataset.completions("assignments", index)[0]["assigned_content"] is None
    assert Dataset(users=200).bad_data_kind(index) is None


def test_expected_counts_match_api(sim: Simulator) -> None:
    dataset = sim.dataset
    session = authorized_session(sim)
    emails = [email_at(dataset, index) for index in range(len(dataset))]
    counts = dict.fromkeys(STREAMS, 0)
    for stream in STREAMS:
        for start in range(0, len(emails), 50):
            batch = ",".join(emails[start : start + 50])
            body = get_completions(session, sim, stream, for_users=batch).json()
            counts[stream] += sum(len(user[stream]) for user in body)
    assert counts == {
        key: value for key, value in dataset.expected_counts().items() if key != "users"
    }
    assert dataset.expected_counts()["users"] == 200


# Command line


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.simulator", "--users", "20", "--url-file", str(url_file)],
        cwd=REPOSITORY_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not url_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        base_url = url_file.read_text(encoding="utf-8").strip()
        expected = requests.get(f"{base_url}/_sim/expected", timeout=5).json()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert base_url.startswith("http://127.0.0.1:")
    assert expected["users"] == 20
    assert process.returncode == 0, stderr
    assert "listening on" in stderr
    assert not url_file.exists()
