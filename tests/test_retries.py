"""RetryPolicy and ContinuAuthenticator on a fake clock, with scripted responses."""

from __future__ import annotations

import itertools
import json
import logging
import typing as t

import pytest
import requests

from tap_continu.auth import ContinuAuthenticator
from tap_continu.budget import API_WINDOW_SECONDS, RequestBudget
from tap_continu.errors import (
    APIRequestError,
    CredentialsError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    RateLimitExceededError,
    UnauthorizedError,
    URLTooLongError,
)
from tap_continu.retries import RETRY_DELAYS, RETRY_JITTER, RetryPolicy
from tests.fakes import FakeClock

ENDPOINT = "GET /completion/tracks"
SECRET = "unit-test-secret-0042"  # noqa: S105 - a test credential
AUTH_URL = "http://127.0.0.1:9/v3/oauth2/access-token"
LOGGER = logging.getLogger("tests.retries")


def make_policy(
    clock: FakeClock,
    *,
    max_rate_limit_wait: float = 600,
    jitter: float = 0.0,
) -> RetryPolicy:
    budget = RequestBudget(60, clock)
    return RetryPolicy(
        budget=budget,
        clock=clock,
        max_rate_limit_wait=max_rate_limit_wait,
        logger=LOGGER,
        rng=lambda: jitter,
    )


def http_response(status: int, body: object = None, reason: str = "") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = reason or {200: "OK", 429: "Too Many Requests"}.get(status, "Status")
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return response


class ScriptedSend:
    """Callable for RetryPolicy.call that raises or returns the scripted outcomes in turn.

    Each call first takes a slot from the budget, as the session's adapter does, and
    records the fake clock's time.
    """

    def __init__(self, policy: RetryPolicy, outcomes: t.Sequence[object]) -> None:
        self.policy = policy
        self.outcomes = list(outcomes)
        self.sent_at: list[float] = []

    def __call__(self) -> object:
        self.policy.budget.acquire()
        self.sent_at.append(self.policy.clock.monotonic())
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def rate_limited() -> RateLimitedError:
    return RateLimitedError(f"{ENDPOINT} returned 429", http_response(429))


# Retry schedule for 5xx, timeouts, dropped connections and truncated bodies


def test_schedule_waits_and_count() -> None:
    clock = FakeClock()
    policy = make_policy(clock)
    failures = [InvalidResponseError("500 Internal Server Error")] * len(RETRY_DELAYS)
    send = ScriptedSend(policy, [*failures, "body"])
    assert policy.call(send, endpoint=ENDPOINT) == "body"
    assert len(send.sent_at) == 8
    assert policy.retries == 7
    retry_sleeps = [s for s in clock.sleeps if s > policy.budget.interval]
    assert retry_sleeps == [2, 4, 8, 16, 32, 60, 60]


def test_schedule_jitter_at_most_ten_percent() -> None:
    clock = FakeClock()
    policy = make_policy(clock, jitter=1.0)
    send = ScriptedSend(policy, [InvalidResponseError("502 Bad Gateway")] * 3 + ["body"])
    policy.call(send, endpoint=ENDPOINT)
    gaps = [later - earlier for earlier, later in itertools.pairwise(send.sent_at)]
    expected = [delay * (1 + RETRY_JITTER) for delay in RETRY_DELAYS[:3]]
    assert gaps == pytest.approx(expected)


def test_schedule_exhausted_raises() -> None:
    clock = FakeClock()
    policy = make_policy(clock)
    send = ScriptedSend(policy, [InvalidResponseError("503 Service Unavailable")] * 9)
    with pytest.raises(APIRequestError) as raised:
        policy.call(send, endpoint=ENDPOINT)
    assert len(send.sent_at) == 8
    assert "after 8 attempts" in str(raised.value)
    assert "503 Service Unavailable" in str(raised.value)
    assert ENDPOINT in str(raised.value)


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectionError("Connection aborted"),
        requests.exceptions.ReadTimeout("Read timed out"),
        requests.exceptions.ConnectTimeout("Connect timed out"),
        requests.exceptions.ChunkedEncodingError("IncompleteRead(10 bytes read)"),
        requests.exceptions.ContentDecodingError("bad gzip"),
        ConnectionResetError(104, "Connection reset by peer"),
        InvalidResponseError("truncated or invalid JSON body"),
    ],
    ids=type,
)
def test_network_fault_retried(error: Exception) -> None:
    clock = FakeClock()
    policy = make_policy(clock)
    send = ScriptedSend(policy, [error, "body"])
    assert policy.call(send, endpoint=ENDPOINT) == "body"
    assert policy.retries == 1
    assert send.sent_at[1] - send.sent_at[0] == pytest.approx(RETRY_DELAYS[0])


def test_network_fault_message_hides_url(caplog: pytest.LogCaptureFixture) -> None:
    url = "http://127.0.0.1:9/v3/completion/tracks?for_users=ann.lee%2Btag@example.com"
    error = requests.exceptions.ConnectionError(f"Max retries exceeded with url: {url}")
    policy = make_policy(FakeClock())
    send = ScriptedSend(policy, [error] * 8)
    with caplog.at_level(logging.DEBUG), pytest.raises(APIRequestError) as raised:
        policy.call(send, endpoint=ENDPOINT)
    assert "ConnectionError" in str(raised.value)
    assert "ann.lee" not in str(raised.value)
    assert "for_users" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    retry_warnings = [r for r in caplog.records if r.name == LOGGER.name]
    assert len(retry_warnings) == 7
    assert "ann.lee" not in caplog.text
    assert "for_users" not in caplog.text


@pytest.mark.parametrize(
    "error",
    [
        NotFoundError(f"{ENDPOINT} returned 404 Not Found"),
        URLTooLongError(f"{ENDPOINT} returned 414 URI Too Long"),
        APIRequestError(f"{ENDPOINT} returned 400 Bad Request; the request was rejected."),
    ],
    ids=type,
)
def test_other_errors_not_retried(error: Exception) -> None:
    clock = FakeClock()
    policy = make_policy(clock)
    send = ScriptedSend(policy, [error, "body"])
    with pytest.raises(type(error)) as raised:
        policy.call(send, endpoint=ENDPOINT)
    assert raised.value is error
    assert len(send.sent_at) == 1
    assert policy.retries == 0


# 429: a window-long pause for every request, bounded by max_rate_limit_wait


def test_429_pauses_one_window() -> None:
    clock = FakeClock()
    policy = make_policy(clock)
    send = ScriptedSend(policy, [rate_limited(), rate_limited(), "body"])
    assert policy.call(send, endpoint=ENDPOINT) == "body"
    gaps = [later - earlier for earlier, later in itertools.pairwise(send.sent_at)]
    assert gaps == pytest.approx([API_WINDOW_SECONDS, API_WINDOW_SECONDS])
    assert policy.rate_limited_responses == 2
    assert policy.retries == 0


def test_429_pause_is_in_shared_budget() -> None:
    clock = FakeClock()
    policy = make_policy(clock)
    sent_at: list[float] = []

    def send() -> object:
        policy.budget.acquire()
        sent_at.append(clock.monotonic())
        if len(sent_at) == 1:
            raise rate_limited()
        return "body"

    policy.call(send, endpoint=ENDPOINT)
    # The retry waits out the pause before it is sent, so its token is checked afterwards.
    assert sent_at[1] - sent_at[0] == pytest.approx(API_WINDOW_SECONDS)
    assert policy.budget.seconds_waited == pytest.approx(API_WINDOW_SECONDS)
    # Every other request of the run waits for the same pause until it is over.
    policy.budget.pause(API_WINDOW_SECONDS)
    assert policy.budget.seconds_until_next_request() == pytest.approx(API_WINDOW_SECONDS)


@pytest.mark.parametrize(
    ("max_wait", "responses_429", "waited"),
    [(0, 1, 0), (59, 1, 0), (60, 2, 60), (90, 2, 60), (120, 3, 120), (600, 11, 600)],
)
def test_429_max_rate_limit_wait(max_wait: float, responses_429: int, waited: float) -> None:
    clock = FakeClock()
    policy = make_policy(clock, max_rate_limit_wait=max_wait)
    send = ScriptedSend(policy, [rate_limited() for _ in range(20)])
    start = clock.monotonic()
    with pytest.raises(RateLimitExceededError) as raised:
        policy.call(send, endpoint=ENDPOINT)
    assert len(send.sent_at) == responses_429
    assert send.sent_at[-1] - start == pytest.approx(waited)
    message = str(raised.value)
    assert "429" in message
    assert "max_rate_limit_wait" in message
    assert f"waiting {waited:.0f} s" in message


def test_429_wait_counted_per_request() -> None:
    clock = FakeClock()
    policy = make_policy(clock, max_rate_limit_wait=300)
    for _ in range(3):
        send = ScriptedSend(policy, [rate_limited() for _ in range(5)] + ["body"])
        assert policy.call(send, endpoint=ENDPOINT) == "body"
    assert policy.rate_limited_responses == 15


def test_429_and_faults_counted_apart() -> None:
    clock = FakeClock()
    policy = make_policy(clock, max_rate_limit_wait=120)
    outcomes: list[object] = []
    for _ in range(2):
        outcomes += [rate_limited(), InvalidResponseError("500 Internal Server Error")]
    send = ScriptedSend(policy, [*outcomes, "body"])
    assert policy.call(send, endpoint=ENDPOINT) == "body"
    assert policy.rate_limited_responses == 2
    assert policy.retries == 2


# 401: renew the token once


def test_401_renews_once_then_succeeds() -> None:
    clock = FakeClock()
    policy = make_policy(clock)
    renewals: list[float] = []
    send = ScriptedSend(policy, [UnauthorizedError(f"{ENDPOINT} returned 401"), "body"])
    result = policy.call(send, endpoint=ENDPOINT, on_unauthorized=lambda: renewals.append(1))
    assert result == "body"
    assert len(renewals) == 1
    assert len(send.sent_at) == 2
    assert policy.retries == 0


def test_second_401_fails() -> None:
    policy = make_policy(FakeClock())
    renewals: list[float] = []
    send = ScriptedSend(policy, [UnauthorizedError(f"{ENDPOINT} returned 401")] * 3)
    with pytest.raises(APIRequestError) as raised:
        policy.call(send, endpoint=ENDPOINT, on_unauthorized=lambda: renewals.append(1))
    assert len(renewals) == 1
    assert len(send.sent_at) == 2
    assert "401" in str(raised.value)
    assert ENDPOINT in str(raised.value)


def test_401_without_renewal_fails_at_once() -> None:
    policy = make_policy(FakeClock())
    send = ScriptedSend(policy, [UnauthorizedError(f"{ENDPOINT} returned 401"), "body"])
    with pytest.raises(APIRequestError):
        policy.call(send, endpoint=ENDPOINT)
    assert len(send.sent_at) == 1


# ContinuAuthenticator


class TokenServer:
    """Session double for the token request: scripted responses, recorded bodies.

    Every post takes a slot from the budget, as the run's budgeted session does.
    """

    def __init__(self, budget: RequestBudget, responses: t.Sequence[requests.Response]) -> None:
        self.budget = budget
        self.responses = list(responses)
        self.bodies: list[dict[str, t.Any]] = []
        self.urls: list[str] = []

    def post(self, url: str, **kwargs: t.Any) -> requests.Response:
        self.budget.acquire()
        self.urls.append(url)
        self.bodies.append(kwargs["json"])
        return self.responses.pop(0)


def token_response(token: str, expires_in: object = None) -> requests.Response:
    body: dict[str, object] = {"access_token": token, "token_type": "bearer"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    return http_response(200, body)


def make_authenticator(
    clock: FakeClock,
    responses: t.Sequence[requests.Response],
) -> tuple[ContinuAuthenticator, TokenServer]:
    policy = make_policy(clock)
    server = TokenServer(policy.budget, responses)
    authenticator = ContinuAuthenticator(
        auth_url=AUTH_URL,
        client_id="unit-client",
        client_secret=SECRET,
        session=server,  # type: ignore[arg-type]
        retry_policy=policy,
        clock=clock,
        timeout=30,
        logger=LOGGER,
    )
    return authenticator, server


def authorize(authenticator: ContinuAuthenticator, url: str = "http://127.0.0.1:9/v3/x") -> str:
    prepared = requests.Request("GET", url).prepare()
    authenticator(prepared)
    return prepared.headers["Authorization"]


def test_token_request_body_and_header() -> None:
    clock = FakeClock()
    authenticator, server = make_authenticator(clock, [token_response("tok-1", 3600)])
    assert authorize(authenticator) == "Bearer tok-1"
    assert server.bodies == [{"client_id": "unit-client", "client_secret": SECRET}]
    assert server.urls == [AUTH_URL]


def test_auth_leaves_query_string_alone() -> None:
    clock = FakeClock()
    authenticator, _ = make_authenticator(clock, [token_response("tok-1", 3600)])
    url = "http://127.0.0.1:9/v3/completion/tracks?for_users=a%2Bb@example.com,c@example.com"
    prepared = requests.Request("GET", url).prepare()
    authenticator(prepared)
    assert prepared.url == url


@pytest.mark.parametrize("mode", ["relative", "absolute", "absolute_ms", "relative_string"])
def test_token_renewed_before_expiry(mode: str) -> None:
    clock = FakeClock()
    lifetime = 3600
    now = clock.time()
    expires_in: object = {
        "relative": lifetime,
        "absolute": int(now) + lifetime,
        "absolute_ms": (int(now) + lifetime) * 1000,
        "relative_string": str(lifetime),
    }[mode]
    responses = [token_response("tok-1", expires_in), token_response("tok-2", expires_in)]
    authenticator, server = make_authenticator(clock, responses)
    assert authorize(authenticator) == "Bearer tok-1"
    issued_at = clock.time()
    # Renewed 60 s before expiry: still valid just before, renewed at that point.
    clock.advance(issued_at + lifetime - 60 - clock.time() - 1)
    assert authorize(authenticator) == "Bearer tok-1"
    clock.advance(1)
    assert authorize(authenticator) == "Bearer tok-2"
    assert len(server.bodies) == 2
    assert authenticator.tokens_issued == 2


def test_short_token_renewed_at_ninety_percent() -> None:
    clock = FakeClock()
    responses = [token_response("tok-1", 100), token_response("tok-2", 100)]
    authenticator, _ = make_authenticator(clock, responses)
    authorize(authenticator)
    clock.advance(89)
    assert authorize(authenticator) == "Bearer tok-1"
    clock.advance(1)
    assert authorize(authenticator) == "Bearer tok-2"


def test_expiry_in_past_used_briefly(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    past = int(clock.time()) - 500
    responses = [token_response("tok-1", past), token_response("tok-2", past)]
    authenticator, _ = make_authenticator(clock, responses)
    with caplog.at_level(logging.WARNING):
        assert authorize(authenticator) == "Bearer tok-1"
    assert "in the past" in caplog.text
    assert "system clock" in caplog.text
    clock.advance(29)
    assert authorize(authenticator) == "Bearer tok-1"
    clock.advance(1)
    assert authorize(authenticator) == "Bearer tok-2"


@pytest.mark.parametrize("expires_in", [None, "soon", 0, -1])
def test_unknown_expiry_kept_until_401(expires_in: object) -> None:
    clock = FakeClock()
    responses = [token_response("tok-1", expires_in), token_response("tok-2", expires_in)]
    authenticator, server = make_authenticator(clock, responses)
    assert authorize(authenticator) == "Bearer tok-1"
    clock.advance(10 * 365 * 86_400)
    assert authorize(authenticator) == "Bearer tok-1"
    assert len(server.bodies) == 1
    authenticator.invalidate()
    assert authorize(authenticator) == "Bearer tok-2"


def test_401_on_data_request_renews_token() -> None:
    clock = FakeClock()
    responses = [token_response("tok-1", 3600), token_response("tok-2", 3600)]
    authenticator, server = make_authenticator(clock, responses)
    policy = authenticator._retry_policy
    headers_sent: list[str] = []

    def send() -> str:
        header = authorize(authenticator)
        headers_sent.append(header)
        if header == "Bearer tok-1":
            msg = f"{ENDPOINT} returned 401"
            raise UnauthorizedError(msg)
        return "body"

    result = policy.call(send, endpoint=ENDPOINT, on_unauthorized=authenticator.invalidate)
    assert result == "body"
    assert headers_sent == ["Bearer tok-1", "Bearer tok-2"]
    assert len(server.bodies) == 2


@pytest.mark.parametrize("status", [400, 401, 403])
def test_rejected_credentials_name_settings(status: int) -> None:
    clock = FakeClock()
    rejected = http_response(status, b"invalid client_id or client_secret", "Unauthorized")
    authenticator, server = make_authenticator(clock, [rejected])
    with pytest.raises(CredentialsError) as raised:
        authorize(authenticator)
    message = str(raised.value)
    assert "client_id" in message
    assert "client_secret" in message
    assert str(status) in message
    assert SECRET not in message
    assert len(server.bodies) == 1


def test_token_endpoint_faults_retried() -> None:
    clock = FakeClock()
    responses = [
        http_response(500, b"oops", "Internal Server Error"),
        http_response(200, b'{"access_token": "tok-1", "expi'),
        http_response(429, b"slow down"),
        token_response("tok-1", 3600),
    ]
    authenticator, server = make_authenticator(clock, responses)
    start = clock.monotonic()
    assert authorize(authenticator) == "Bearer tok-1"
    assert len(server.bodies) == 4
    policy = authenticator._retry_policy
    assert policy.retries == 2
    assert policy.rate_limited_responses == 1
    assert clock.monotonic() - start >= RETRY_DELAYS[0] + RETRY_DELAYS[1] + API_WINDOW_SECONDS


@pytest.mark.parametrize(
    "body",
    [{"token_type": "bearer"}, {"access_token": ""}, {"access_token": 42}, ["tok"]],
)
def test_token_response_without_token(body: object) -> None:
    authenticator, _ = make_authenticator(FakeClock(), [http_response(200, body)])
    with pytest.raises(CredentialsError) as raised:
        authorize(authenticator)
    assert AUTH_URL in str(raised.value)


def test_authenticator_repr_hides_secret() -> None:
    authenticator, _ = make_authenticator(FakeClock(), [token_response("tok-1", 3600)])
    authorize(authenticator)
    text = repr(authenticator)
    assert AUTH_URL in text
    assert SECRET not in text
    assert "tok-1" not in text
