"""A local HTTP server that behaves like the Continu API, for tests, demos and benchmarks.

The server implements the endpoints of the API reference: the OAuth token endpoint with a JSON
body, ``/data/users`` with ``id_from`` paging and filters, and the four ``/completion/*``
endpoints. Switches cover what the reference leaves open and what goes wrong in production:
the meaning of ``expires_in``, whether ``id_from`` is inclusive, unknown emails, URL length
limits, token revocation, rate limiting and injected faults. It listens on 127.0.0.1 only.

Admin endpoints outside the API prefix control and observe the server: ``GET /_sim/stats``,
``GET /_sim/expected``, ``GET /_sim/config``, ``GET /_sim/clock``, ``POST /_sim/config`` and
``POST /_sim/reset-stats``. They need no token, are not rate limited, never fail by injected
faults and are not counted in the stats.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.simulator.data import (
    LIST_TYPE_FIELDS,
    STREAMS,
    Dataset,
    is_object_id,
    parse_timestamp,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from email.message import Message
    from types import TracebackType

    from tests.simulator.data import UserEntry

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
ADMIN_PREFIX = "/_sim/"
MAX_BODY_BYTES = 1_000_000
IDLE_CONNECTION_TIMEOUT_SECONDS = 120.0

LIST_SIZES_2020: tuple[int, ...] = (50, 100, 500)
LIST_SIZES_LATER: tuple[int, ...] = (50, 100, 500, 1000, 5000)
DEFAULT_LIST_SIZE = 50
DEFAULT_LIST_TYPE = "compact"
BOOLEAN_VALUES: dict[str, bool] = {
    "true": True,
    "t": True,
    "1": True,
    "false": False,
    "f": False,
    "0": False,
}
USER_FLAG_FILTERS: tuple[str, ...] = ("is_manager", "is_collaborator", "is_suspended")
USER_RANGE_FILTERS: tuple[str, ...] = (
    "suspended_on",
    "first_login",
    "last_login",
    "updated_at",
    "created_at",
)
DATASET_FIELDS: frozenset[str] = frozenset(
    {"seed", "users", "edition", "bad_data", "users_without_email"}
)
CONSTRUCTION_FIELDS: frozenset[str] = DATASET_FIELDS | {"port", "api_prefix"}

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class SimulatorConfig:
    """Switches of the simulator. All can change at run time except ``CONSTRUCTION_FIELDS``.

    Attributes:
        port: TCP port on 127.0.0.1. 0 picks a free port.
        api_prefix: path prefix of every API endpoint.
        seed: dataset seed, used when no ``Dataset`` is passed to ``Simulator``.
        users: number of users in that dataset.
        edition: ``"2020"`` or ``"later"``. It changes field names, the allowed list sizes and
            the shape of ``GET /data/users/{id}``. A passed ``Dataset`` overrides it.
        bad_data: inject malformed values into that dataset (see ``Dataset.bad_data_kind``).
        users_without_email: number of users with ``email: null`` in that dataset.
        client_id: the only accepted OAuth client id.
        client_secret: the only accepted OAuth client secret.
        token_lifetime: seconds from issue until a token expires, on ``wall_clock``.
        expires_in_mode: ``"absolute"`` sends ``expires_in`` as a Unix time, ``"relative"``
            as a lifetime in seconds.
        revoke_after_requests: number of authorized requests after which all tokens issued so
            far stop working (401) although they have not expired. The count restarts after
            each revocation. None never revokes.
        rate_limit: maximum requests per ``window_seconds`` (rolling window, ``clock``), token
            requests included. 0 or None disables the limit.
        window_seconds: length of the rate-limit window.
        storm_429_until: while ``clock()`` is below this value, every API request gets 429.
        id_from_mode: ``"exclusive"`` pages start after the ``id_from`` user, ``"inclusive"``
            pages start with it.
        unknown_email: ``"404"`` fails a completion request that names an unknown email,
            ``"omit"`` leaves that email out of the response.
        unknown_to_completions: emails (compared case-insensitively) that the completion
            endpoints treat as unknown although ``/data/users`` lists them, as when the
            completion service lacks a user or a client mis-encodes an address. A list is
            stored as a tuple.
        leak_credentials: add ``password`` and ``provisioning_key`` to full user records.
        max_request_target: maximum length of the request target (path and query) in
            characters. Longer requests get 414.
        error_rate: fraction of API requests that get a 500 response before any work.
        drop_rate: fraction of API requests whose connection closes after half the body.
        slow_rate: fraction of API requests delayed by ``slow_seconds`` (real sleep).
        slow_seconds: delay of a slow request.
        fault_seed: seed of the fault draws. Setting it at run time restarts the sequence.
        verbose: log every request at INFO.
    """

    port: int = 0
    api_prefix: str = "/v3"
    seed: int = 1
    users: int = 200
    edition: str = "2020"
    bad_data: bool = False
    users_without_email: int = 0
    client_id: str = "sim-client"
    client_secret: str = "sim-secret"  # noqa: S105 - a fixed test credential
    token_lifetime: float = 3600.0
    expires_in_mode: str = "absolute"
    revoke_after_requests: int | None = None
    rate_limit: int | None = 50
    window_seconds: float = 60.0
    storm_429_until: float | None = None
    id_from_mode: str = "exclusive"
    unknown_email: str = "404"
    unknown_to_completions: tuple[str, ...] = ()
    leak_credentials: bool = False
    max_request_target: int = 8000
    error_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    fault_seed: int = 0
    verbose: bool = False

    def __post_init__(self) -> None:
        """Raise ValueError when a switch has the wrong type or an invalid value."""
        if isinstance(self.unknown_to_completions, list):
            # JSON from POST /_sim/config has no tuples. The dataclass is frozen.
            object.__setattr__(self, "unknown_to_completions", tuple(self.unknown_to_completions))
        for config_field in dataclasses.fields(self):
            _check_type(config_field.name, getattr(self, config_field.name), config_field.type)
        self._check_choices()
        self._check_ranges()

    def _check_choices(self) -> None:
        choices = {
            "edition": ("2020", "later"),
            "expires_in_mode": ("absolute", "relative"),
            "id_from_mode": ("exclusive", "inclusive"),
            "unknown_email": ("404", "omit"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                msg = f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                raise ValueError(msg)
        if not self.api_prefix.startswith("/") or self.api_prefix.endswith("/"):
            msg = f"api_prefix must start with '/' and not end with it, got {self.api_prefix!r}"
            raise ValueError(msg)

    def _check_ranges(self) -> None:
        for name in ("error_rate", "drop_rate", "slow_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                msg = f"{name} must be between 0 and 1, got {getattr(self, name)}"
                raise ValueError(msg)
        non_negative = ("port", "users", "users_without_email", "slow_seconds", "token_lifetime")
        for name in non_negative:
            if getattr(self, name) < 0:
                msg = f"{name} must not be negative, got {getattr(self, name)}"
                raise ValueError(msg)
        if self.window_seconds <= 0:
            msg = f"window_seconds must be positive, got {self.window_seconds}"
            raise ValueError(msg)
        if self.rate_limit is not None and self.rate_limit < 0:
            msg = f"rate_limit must be 0 or positive (0 disables it), got {self.rate_limit}"
            raise ValueError(msg)
        if self.revoke_after_requests is not None and self.revoke_after_requests < 1:
            msg = f"revoke_after_requests must be at least 1, got {self.revoke_after_requests}"
            raise ValueError(msg)
        if self.max_request_target < 1:
            msg = f"max_request_target must be at least 1, got {self.max_request_target}"
            raise ValueError(msg)


_TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
}


def _check_type(name: str, value: object, annotation: object) -> None:
    """Raise ValueError unless ``value`` matches a simple annotation such as ``'int | None'``."""
    allowed = [part.strip() for part in str(annotation).split("|")]
    if value is None and "None" in allowed:
        return
    if "tuple[str, ...]" in allowed:
        if isinstance(value, tuple) and all(isinstance(item, str) for item in value):
            return
        msg = f"{name} must be a list of strings, got {value!r}"
        raise ValueError(msg)
    for type_name in allowed:
        types = _TYPE_CHECKS.get(type_name)
        if types is None:
            continue
        # bool is a subclass of int, but True is no valid port or rate.
        if isinstance(value, bool) and type_name != "bool":
            continue
        if isinstance(value, types):
            return
    msg = f"{name} must be of type {' or '.join(allowed)}, got {value!r}"
    raise ValueError(msg)


@dataclass
class SimResponse:
    """An HTTP response before it is written to the socket."""

    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop_connection: bool = False  # send half the body, then close


@dataclass(frozen=True)
class _Request:
    method: str
    query: str
    headers: Message | Mapping[str, str]
    body: bytes


@dataclass
class _Token:
    serial: int
    expires_at: float  # on wall_clock


@dataclass
class _Stats:
    requests_total: int = 0
    requests_by_path: collections.Counter[str] = field(default_factory=collections.Counter)
    requests_by_status: collections.Counter[str] = field(default_factory=collections.Counter)
    responses_429: int = 0
    token_requests: int = 0
    tokens_issued: int = 0
    token_revocations: int = 0
    max_emails_per_request: int = 0
    max_request_target_length: int = 0
    max_requests_in_window: int = 0
    faults: collections.Counter[str] = field(default_factory=collections.Counter)

    def snapshot(self) -> JsonObject:
        return {
            "requests_total": self.requests_total,
            "requests_by_path": dict(self.requests_by_path),
            "requests_by_status": dict(self.requests_by_status),
            "responses_429": self.responses_429,
            "token_requests": self.token_requests,
            "tokens_issued": self.tokens_issued,
            "token_revocations": self.token_revocations,
            "max_emails_per_request": self.max_emails_per_request,
            "max_request_target_length": self.max_request_target_length,
            "max_requests_in_window": self.max_requests_in_window,
            "faults": {name: self.faults[name] for name in ("error", "drop", "slow")},
        }


@dataclass(frozen=True)
class _Route:
    name: str  # "token", "users", "user" or a completion stream
    stats_key: str
    methods: tuple[str, ...]
    user_id: str | None = None


class _BadRequestError(ValueError):
    """A query parameter is invalid. The message becomes the 400 response body."""


class Simulator:
    """The Continu API simulator: an HTTP server on 127.0.0.1 plus its state.

    Use it as a context manager, or call ``start()`` and ``stop()``. Handler threads share
    one lock for tokens, the rate-limit window, fault draws and stats.

    Args:
        config: switches. Defaults to ``SimulatorConfig()``.
        dataset: the data to serve. Defaults to a ``Dataset`` built from the config's seed,
            users, edition, bad_data and users_without_email. A passed dataset's edition wins
            over the config's.
        clock: monotonic seconds for the rate-limit window and ``storm_429_until``. Tests pass
            a fake clock to cross the window without sleeping.
        wall_clock: Unix seconds for token expiry and the per-day request count.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        dataset: Dataset | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config or SimulatorConfig()
        self.dataset = dataset or Dataset(
            seed=self._config.seed,
            users=self._config.users,
            edition=self._config.edition,
            bad_data=self._config.bad_data,
            users_without_email=self._config.users_without_email,
        )
        self.clock = clock
        self.wall_clock = wall_clock
        self._lock = threading.Lock()
        self._stats = _Stats()
        self._tokens: dict[str, _Token] = {}
        self._token_serial = 0
        self._revoked_through_serial = 0
        self._authorized_since_revocation = 0
        self._window: collections.deque[float] = collections.deque()
        self._day = -1
        self._requests_today = 0
        self._fault_rng = random.Random(self._config.fault_seed)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # Life cycle

    def start(self) -> Simulator:
        """Bind 127.0.0.1 and serve in a daemon thread. Returns self."""
        if self._server is not None:
            msg = "the simulator is already running"
            raise RuntimeError(msg)
        server = _Server((HOST, self._config.port), _Handler)
        server.simulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"continu-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open keep-alive connections and release the port."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for connection in server.open_connections():
            with contextlib.suppress(OSError):  # the client closed it already
                connection.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Simulator:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Addresses

    @property
    def port(self) -> int:
        """The bound TCP port. Raises RuntimeError before ``start()``."""
        if self._server is None:
            msg = "the simulator is not running, so it has no port; call start() first"
            raise RuntimeError(msg)
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash."""
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        """``base_url`` plus the API prefix, for example ``http://127.0.0.1:PORT/v3``."""
        return self.base_url + self._config.api_prefix

    @property
    def auth_url(self) -> str:
        """URL of the token endpoint."""
        return self.api_url + "/oauth2/access-token"

    # Switches and stats

    @property
    def config(self) -> SimulatorConfig:
        """The current switches (an immutable snapshot)."""
        return self._config

    def configure(self, **switches: Any) -> SimulatorConfig:
        """Change switches at run time and return the new config.

        Raises:
            ValueError: a switch is unknown, fixed at construction (``CONSTRUCTION_FIELDS``)
                or invalid. No switch changes then.
        """
        known = {config_field.name for config_field in dataclasses.fields(SimulatorConfig)}
        unknown = sorted(set(switches) - known)
        if unknown:
            msg = (
                f"unknown switches: {', '.join(unknown)}. "
                f"Valid switches: {', '.join(sorted(known))}"
            )
            raise ValueError(msg)
        fixed = sorted(set(switches) & CONSTRUCTION_FIELDS)
        if fixed:
            msg = f"switches fixed at construction cannot change at run time: {', '.join(fixed)}"
            raise ValueError(msg)
        with self._lock:
            new_config = dataclasses.replace(self._config, **switches)
            if "fault_seed" in switches:
                self._fault_rng = random.Random(new_config.fault_seed)
            if "revoke_after_requests" in switches:
                self._authorized_since_revocation = 0
            self._config = new_config
        return new_config

    @property
    def stats(self) -> JsonObject:
        """A snapshot of the request counters of the API (admin requests are not counted)."""
        with self._lock:
            return self._stats.snapshot()

    @property
    def issued_tokens(self) -> tuple[str, ...]:
        """Every access token issued since the server was created, expired or not."""
        with self._lock:
            return tuple(self._tokens)

    def reset_stats(self) -> None:
        """Zero every counter in ``stats``. Tokens and the rate-limit window are kept."""
        with self._lock:
            self._stats = _Stats()

    # Request handling

    def respond(
        self, method: str, target: str, headers: Message | Mapping[str, str], body: bytes
    ) -> SimResponse:
        """Compute the response to one request. The HTTP handler calls this for every request.

        Args:
            method: HTTP method.
            target: request target as received, path plus query.
            headers: request headers (case-insensitive lookup by ``get``).
            body: request body.
        """
        path, query = _split_target(target)
        if path.startswith(ADMIN_PREFIX):
            return self._respond_admin(method, path, body)

        config = self._config
        route = _match_route(path, config.api_prefix)
        if len(target) > config.max_request_target:
            # Proxies reject long URLs before the application, so 414 uses no rate-limit slot.
            response = _error(
                HTTPStatus.REQUEST_URI_TOO_LONG,
                f"request target is {len(target)} characters, the limit is "
                f"{config.max_request_target}",
            )
            response.headers.extend(self._rate_headers(count=False, config=config)[1])
        else:
            request = _Request(method, query, headers, body)
            response = self._respond_api(request, route, config)
        with self._lock:
            stats = self._stats
            stats.requests_total += 1
            stats.requests_by_path[route.stats_key if route else path[:200]] += 1
            stats.requests_by_status[str(response.status)] += 1
            stats.max_request_target_length = max(stats.max_request_target_length, len(target))
            if route is not None and route.name == "token":
                stats.token_requests += 1
            if response.status == HTTPStatus.TOO_MANY_REQUESTS.value:
                stats.responses_429 += 1
        return response

    def _respond_api(
        self, request: _Request, route: _Route | None, config: SimulatorConfig
    ) -> SimResponse:
        admitted, rate_headers = self._rate_headers(count=True, config=config)
        if not admitted:
            storm = config.storm_429_until is not None and self.clock() < config.storm_429_until
            reason = (
                "the storm_429_until switch is on"
                if storm
                else f"the limit is {config.rate_limit} requests per {config.window_seconds:g} "
                "seconds"
            )
            response = _error(HTTPStatus.TOO_MANY_REQUESTS, f"too many requests: {reason}")
        elif route is None:
            response = _error(HTTPStatus.NOT_FOUND, "no such endpoint")
        elif request.method not in route.methods:
            response = _error(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"{request.method} is not allowed, use {route.methods[0]}",
            )
            response.headers.append(("Allow", ", ".join(route.methods)))
        else:
            response = self._respond_route(request, route, config)
        response.headers.extend(rate_headers)
        return response

    def _respond_route(
        self, request: _Request, route: _Route, config: SimulatorConfig
    ) -> SimResponse:
        slow, error, drop = self._draw_faults(config)
        if slow:
            time.sleep(config.slow_seconds)
        if error:
            return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "injected fault")
        if route.name == "token":
            response = self._issue_token(request.headers, request.body, config)
        else:
            response = self._authorize(request.headers, config) or self._respond_data(
                route, request.query, config
            )
        response.drop_connection = drop
        return response

    def _respond_data(self, route: _Route, query: str, config: SimulatorConfig) -> SimResponse:
        params = parse_qs(query, keep_blank_values=True)
        try:
            if route.name == "users":
                return _json_response(self._list_users(params, config))
            if route.name == "user":
                return self._get_user(route.user_id or "", config)
            return self._list_completions(route.name, params, config)
        except _BadRequestError as error:
            return _error(HTTPStatus.BAD_REQUEST, str(error))

    # Rate limit, faults and tokens

    def _rate_headers(
        self, *, count: bool, config: SimulatorConfig
    ) -> tuple[bool, list[tuple[str, str]]]:
        """Count one request in the rolling window unless limited, and build the rate headers.

        Returns:
            Whether the request is admitted, and the ``X-REQUESTS-PER-MINUTE`` (requests in the
            current window) and ``X-REQUESTS-PER-DAY`` (requests this UTC day) headers.
        """
        with self._lock:
            now = self.clock()
            while self._window and self._window[0] <= now - config.window_seconds:
                self._window.popleft()
            day = int(self.wall_clock() // 86_400)
            if day != self._day:
                self._day = day
                self._requests_today = 0
            storm = config.storm_429_until is not None and now < config.storm_429_until
            limited = bool(config.rate_limit) and len(self._window) >= (config.rate_limit or 0)
            admitted = not (storm or limited)
            if count and admitted:
                self._window.append(now)
                self._requests_today += 1
                self._stats.max_requests_in_window = max(
                    self._stats.max_requests_in_window, len(self._window)
                )
            headers = [
                ("X-REQUESTS-PER-MINUTE", str(len(self._window))),
                ("X-REQUESTS-PER-DAY", str(self._requests_today)),
            ]
        return admitted, headers

    def _draw_faults(self, config: SimulatorConfig) -> tuple[bool, bool, bool]:
        """Draw whether this request is slow, fails with 500, or drops its connection.

        Three numbers are drawn for every request, so the sequence for a given ``fault_seed``
        does not depend on which rates are set.
        """
        with self._lock:
            draws = [self._fault_rng.random() for _ in range(3)]
            slow = draws[0] < config.slow_rate
            error = draws[1] < config.error_rate
            drop = not error and draws[2] < config.drop_rate
            for name, happened in (("slow", slow), ("error", error), ("drop", drop)):
                if happened:
                    self._stats.faults[name] += 1
        return slow, error, drop

    def _issue_token(
        self, headers: Message | Mapping[str, str], body: bytes, config: SimulatorConfig
    ) -> SimResponse:
        content_type = (headers.get("Content-Type") or "").lower()
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            return _error(
                HTTPStatus.BAD_REQUEST,
                "the token request body must be JSON, not a form; send "
                '{"client_id": ..., "client_secret": ...}',
            )
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _error(HTTPStatus.BAD_REQUEST, "the token request body is not valid JSON")
        if not isinstance(payload, dict):
            return _error(HTTPStatus.BAD_REQUEST, "the token request body must be a JSON object")
        for name in ("client_id", "client_secret"):
            if not isinstance(payload.get(name), str) or not payload[name]:
                return _error(HTTPStatus.BAD_REQUEST, f"{name} is missing from the token request")
        valid_id = secrets.compare_digest(payload["client_id"], config.client_id)
        valid_secret = secrets.compare_digest(payload["client_secret"], config.client_secret)
        if not (valid_id and valid_secret):
            return _error(HTTPStatus.UNAUTHORIZED, "invalid client_id or client_secret")

        token = secrets.token_urlsafe(32)
        issued_at = self.wall_clock()
        with self._lock:
            self._token_serial += 1
            self._tokens[token] = _Token(self._token_serial, issued_at + config.token_lifetime)
            self._stats.tokens_issued += 1
        if config.expires_in_mode == "absolute":
            expires_in = int(issued_at + config.token_lifetime)
        else:
            expires_in = int(config.token_lifetime)
        return _json_response(
            {"access_token": token, "token_type": "bearer", "expires_in": expires_in}
        )

    def _authorize(
        self, headers: Message | Mapping[str, str], config: SimulatorConfig
    ) -> SimResponse | None:
        """Return a 401 response unless the request carries a valid bearer token."""
        scheme, _, token = (headers.get("Authorization") or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _unauthorized("missing or malformed Authorization header, send 'Bearer <token>'")
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None:
                return _unauthorized("unknown access token")
            if issued.serial <= self._revoked_through_serial:
                return _unauthorized("access token revoked")
            if self.wall_clock() >= issued.expires_at:
                return _unauthorized("access token expired")
            self._authorized_since_revocation += 1
            limit = config.revoke_after_requests
            if limit is not None and self._authorized_since_revocation >= limit:
                self._revoked_through_serial = self._token_serial
                self._authorized_since_revocation = 0
                self._stats.token_revocations += 1
        return None

    # Data endpoints

    def _list_users(
        self, params: dict[str, list[str]], config: SimulatorConfig
    ) -> list[JsonObject]:
        dataset = self.dataset
        list_size = _parse_list_size(_param(params, "list_size"), dataset.edition)
        list_type = _param(params, "list_type") or DEFAULT_LIST_TYPE
        if list_type not in LIST_TYPE_FIELDS:
            msg = f"list_type must be one of {', '.join(LIST_TYPE_FIELDS)}, got {list_type!r}"
            raise _BadRequestError(msg)
        id_from = _param(params, "id_from")
        start = 0
        if id_from:
            if not is_object_id(id_from):
                msg = f"id_from must be a 24-character hex ObjectId, got {id_from!r}"
                raise _BadRequestError(msg)
            start = dataset.bisect_id(id_from, inclusive=config.id_from_mode == "inclusive")
        predicates = _user_predicates(params)

        candidates: range | list[int] = range(start, len(dataset))
        emails = _split_list(_param(params, "email"))
        if emails:
            found = {dataset.index_of_email(email) for email in emails}
            candidates = sorted(index for index in found if index is not None and index >= start)
        page: list[JsonObject] = []
        # NOTE: filters other than email scan users in id order, so a selective filter on a
        # large dataset costs a pass over every user after id_from.
        for index in candidates:
            entry = dataset.entry(index)
            if all(predicate(entry) for predicate in predicates):
                page.append(self._project(entry, list_type, config))
                if len(page) >= list_size:
                    break
        return page

    def _get_user(self, user_id: str, config: SimulatorConfig) -> SimResponse:
        index = self.dataset.index_of_id(user_id)
        if index is None:
            return _error(HTTPStatus.NOT_FOUND, "no user with this id")
        record = self._project(self.dataset.entry(index), "full", config)
        return _json_response(record if self.dataset.edition == "later" else [record])

    def _project(self, entry: UserEntry, list_type: str, config: SimulatorConfig) -> JsonObject:
        fields = LIST_TYPE_FIELDS[list_type]
        record = entry.record
        if fields is not None:
            return {name: record[name] for name in fields}
        projected = dict(record)
        if config.leak_credentials:
            projected["password"] = f"sim-password-{record['id'][-6:]}"
            projected["provisioning_key"] = f"sim-provisioning-{record['id'][:8]}"
        return projected

    def _list_completions(
        self, stream: str, params: dict[str, list[str]], config: SimulatorConfig
    ) -> SimResponse:
        emails = _split_list(_param(params, "for_users"))
        if not emails:
            msg = "for_users is required: a comma-separated list of emails"
            raise _BadRequestError(msg)
        with self._lock:
            self._stats.max_emails_per_request = max(
                self._stats.max_emails_per_request, len(emails)
            )
        since = _parse_epoch(params, "from")
        until = _parse_epoch(params, "until")

        dataset = self.dataset
        indices: list[int] = []
        unknown = 0
        unknown_here = {email.lower() for email in config.unknown_to_completions}
        for email in emails:
            index = dataset.index_of_email(email)
            if index is None or email.lower() in unknown_here:
                unknown += 1
            elif index not in indices:
                indices.append(index)
        if unknown and config.unknown_email == "404":
            # The message gives no addresses, because clients log error bodies.
            return _error(
                HTTPStatus.NOT_FOUND,
                f"{unknown} of the {len(emails)} emails in for_users match no user",
            )

        date_field = dataset.completion_date_field(stream)
        result = []
        for index in indices:
            record = dataset.entry(index).record
            items = dataset.completion_items(index)[stream]
            if since is not None or until is not None:
                items = [
                    item
                    for item in items
                    if _in_range(parse_timestamp(item.get(date_field)), since, until)
                ]
            result.append(
                {
                    "email": record["email"],
                    "first_name": record["first_name"],
                    "last_name": record["last_name"],
                    "user_id": record["id"],
                    stream: items,
                }
            )
        return _json_response(result)

    # Admin endpoints

    def _respond_admin(self, method: str, path: str, body: bytes) -> SimResponse:
        routes: dict[str, tuple[str, Callable[[bytes], SimResponse]]] = {
            "/_sim/stats": ("GET", lambda _: _json_response(self.stats)),
            "/_sim/expected": ("GET", lambda _: _json_response(self.dataset.expected_counts())),
            "/_sim/config": ("GET", lambda _: _json_response(dataclasses.asdict(self._config))),
            "/_sim/clock": (
                "GET",
                lambda _: _json_response({"clock": self.clock(), "wall_clock": self.wall_clock()}),
            ),
            "/_sim/reset-stats": ("POST", self._admin_reset_stats),
        }
        if path == "/_sim/config" and method == "POST":
            return self._admin_configure(body)
        if path not in routes:
            return _error(HTTPStatus.NOT_FOUND, "no such admin endpoint")
        allowed, handler = routes[path]
        if method != allowed:
            allowed_methods = "GET, POST" if path == "/_sim/config" else allowed
            response = _error(HTTPStatus.METHOD_NOT_ALLOWED, f"use {allowed_methods}")
            response.headers.append(("Allow", allowed_methods))
            return response
        return handler(body)

    def _admin_configure(self, body: bytes) -> SimResponse:
        try:
            switches = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _error(HTTPStatus.BAD_REQUEST, "the body must be a JSON object of switches")
        if not isinstance(switches, dict):
            return _error(HTTPStatus.BAD_REQUEST, "the body must be a JSON object of switches")
        try:
            config = self.configure(**switches)
        except (TypeError, ValueError) as error:
            return _error(HTTPStatus.BAD_REQUEST, str(error))
        return _json_response(dataclasses.asdict(config))

    def _admin_reset_stats(self, _body: bytes) -> SimResponse:
        self.reset_stats()
        return _json_response(self.stats)


# Request parsing helpers


def _split_target(target: str) -> tuple[str, str]:
    parts = urlsplit(target)
    return parts.path, parts.query


def _match_route(path: str, prefix: str) -> _Route | None:
    if not path.startswith(prefix + "/"):
        return None
    rest = path[len(prefix) :]
    if rest == "/oauth2/access-token":
        return _Route("token", path, ("POST",))
    if rest == "/data/users":
        return _Route("users", path, ("GET",))
    if rest.startswith("/data/users/"):
        user_id = rest.removeprefix("/data/users/")
        if user_id and "/" not in user_id:
            return _Route("user", f"{prefix}/data/users/{{id}}", ("GET",), unquote(user_id))
    stream = rest.removeprefix("/completion/")
    if stream != rest and stream in STREAMS:
        return _Route(stream, path, ("GET",))
    return None


def _param(params: dict[str, list[str]], name: str) -> str | None:
    """Return the first value of a query parameter, or None when it is absent or blank."""
    values = params.get(name)
    if not values or not values[0].strip():
        return None
    return values[0]


def _split_list(value: str | None) -> list[str]:
    """Split a comma-separated parameter, dropping blanks and surrounding whitespace."""
    if value is None:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def _parse_list_size(value: str | None, edition: str) -> int:
    if value is None:
        return DEFAULT_LIST_SIZE
    allowed = LIST_SIZES_LATER if edition == "later" else LIST_SIZES_2020
    if not value.isdigit() or int(value) not in allowed:
        msg = f"list_size must be one of {', '.join(map(str, allowed))}, got {value!r}"
        raise _BadRequestError(msg)
    return int(value)


def _parse_epoch(params: dict[str, list[str]], name: str) -> int | None:
    value = _param(params, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        msg = f"{name} must be an integer Unix time in seconds, got {value!r}"
        raise _BadRequestError(msg) from None


def _parse_flag(params: dict[str, list[str]], name: str) -> bool | None:
    value = _param(params, name)
    if value is None:
        return None
    flag = BOOLEAN_VALUES.get(value.strip().lower())
    if flag is None:
        msg = f"{name} must be true/false, t/f or 1/0, got {value!r}"
        raise _BadRequestError(msg)
    return flag


def _in_range(moment: float | None, since: int | None, until: int | None) -> bool:
    """Return whether a parsed date lies in the inclusive range, compared in milliseconds.

    A date of 12:00:00.500 is after ``until`` = 12:00:00, as in a database query on
    millisecond timestamps. Null and unparseable dates (None) are never in range.
    """
    if moment is None:
        return False
    if since is not None and moment < since:
        return False
    return until is None or moment <= until


def _user_predicates(params: dict[str, list[str]]) -> list[Callable[[UserEntry], bool]]:
    """Build one test per user filter in the query. ``email`` is handled by the caller."""
    predicates: list[Callable[[UserEntry], bool]] = []
    roles = set(_split_list(_param(params, "role")))
    if roles:
        predicates.append(lambda entry: entry.record["role"] in roles)
    userid = _param(params, "userid")
    if userid is not None:
        predicates.append(lambda entry: entry.record["userid"] == userid)
    locations = set(_split_list(_param(params, "locations")))
    if locations:
        predicates.append(
            lambda entry: bool(locations.intersection(entry.record["linked_locations"] or ()))
        )
    for name in USER_FLAG_FILTERS:
        flag = _parse_flag(params, name)
        if flag is not None:
            predicates.append(_flag_predicate(name, flag))
    for name in USER_RANGE_FILTERS:
        since = _parse_epoch(params, f"{name}_from")
        until = _parse_epoch(params, f"{name}_until")
        if since is not None or until is not None:
            predicates.append(_range_predicate(name, since, until))
    return predicates


def _flag_predicate(name: str, flag: bool) -> Callable[[UserEntry], bool]:
    return lambda entry: entry.record[name] is flag


def _range_predicate(
    name: str, since: int | None, until: int | None
) -> Callable[[UserEntry], bool]:
    return lambda entry: _in_range(entry.epochs[name], since, until)


# Responses


def _json_response(payload: object) -> SimResponse:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return SimResponse(HTTPStatus.OK.value, body.encode("utf-8"))


def _error(status: HTTPStatus, message: str) -> SimResponse:
    """Build an error response with a plain-text body, since the API documents no error format."""
    body = f"{status.value} {status.phrase}: {message}\n".encode()
    return SimResponse(status.value, body, content_type="text/plain; charset=utf-8")


def _unauthorized(message: str) -> SimResponse:
    response = _error(HTTPStatus.UNAUTHORIZED, message)
    response.headers.append(("WWW-Authenticate", 'Bearer realm="continu-simulator"'))
    return response


# HTTP plumbing


class _Server(ThreadingHTTPServer):
    """Threading HTTP server that tracks open connections, so ``stop()`` can close them."""

    daemon_threads = True
    simulator: Simulator

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def add_connection(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def remove_connection(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def open_connections(self) -> list[socket.socket]:
        with self._connections_lock:
            return list(self._connections)


class _Handler(BaseHTTPRequestHandler):
    """Handler of one keep-alive connection, which may carry many requests.

    For each request it reads the body, gets the response from the simulator and writes it
    with ``Content-Length``.
    """

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes. Nagle's algorithm would hold back the second until
    # the client acknowledges the first, and delayed acknowledgements make that slow.
    disable_nagle_algorithm = True
    timeout = IDLE_CONNECTION_TIMEOUT_SECONDS
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.add_connection(self.connection)

    def finish(self) -> None:
        self.server.remove_connection(self.connection)
        with contextlib.suppress(OSError):  # the client left before the response was flushed
            super().finish()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class name
        if self.server.simulator.config.verbose:
            logger.info("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        try:
            response = self.server.simulator.respond(self.command, self.path, self.headers, body)
        except Exception:
            logger.exception("simulator failed on %s %s", self.command, self.path[:200])
            response = _error(HTTPStatus.INTERNAL_SERVER_ERROR, "simulator bug, see its log")
        try:
            self._write(response)
        except (BrokenPipeError, ConnectionResetError) as error:
            logger.debug("client left before the response to %s was sent: %s", self.command, error)
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        """Return the request body.

        On a chunked, oversized or invalid body, send 400 or 413, close the connection and
        return None.
        """
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._reject(HTTPStatus.BAD_REQUEST, "chunked request bodies are not supported")
            return None
        length_header = self.headers.get("Content-Length") or "0"
        if not length_header.isdigit():
            self._reject(HTTPStatus.BAD_REQUEST, f"invalid Content-Length {length_header!r}")
            return None
        length = int(length_header)
        if length > MAX_BODY_BYTES:
            self._reject(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes")
            return None
        return self.rfile.read(length) if length else b""

    def _reject(self, status: HTTPStatus, message: str) -> None:
        response = _error(status, message)
        response.headers.append(("Connection", "close"))
        self.close_connection = True
        self._write(response)

    def _write(self, response: SimResponse) -> None:
        body = response.body
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if response.drop_connection:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(body)
