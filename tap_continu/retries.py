"""The one retry policy for every request: data pages, email batches and tokens."""

from __future__ import annotations

import random
import typing as t

if t.TYPE_CHECKING:
    import logging

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_continu.budget import API_WINDOW_SECONDS, Clock, RequestBudget
from tap_continu.errors import (
    APIRequestError,
    RateLimitedError,
    RateLimitExceededError,
    UnauthorizedError,
)

# Waits in seconds before the second, third, ... attempt after a 5xx response, a timeout,
# a dropped connection or a truncated body. They add up to 182 s, which outlasts the
# API's one-minute rate-limit window three times over.
RETRY_DELAYS: tuple[float, ...] = (2, 4, 8, 16, 32, 60, 60)

# Each wait is stretched by a random fraction up to this, so parallel runs spread out.
RETRY_JITTER = 0.1

# Network faults that a new attempt may cure. Their messages contain the request URL,
# query string included, so only the class name of one is ever logged or re-raised.
TRANSIENT_NETWORK_ERRORS: tuple[type[Exception], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    ConnectionResetError,
)

RETRIABLE_ERRORS: tuple[type[Exception], ...] = (RetriableAPIError, *TRANSIENT_NETWORK_ERRORS)

_T = t.TypeVar("_T")


class RetryPolicy:
    """Run a request until it succeeds, waiting out faults and the rate limit.

    - 429: every request pauses for a whole API window (the API sends no Retry-After),
      then the request is tried again. The run fails once the 429 waits of one request
      add up to more than `max_rate_limit_wait` seconds.
    - 5xx, timeouts, dropped connections, truncated bodies: tried again after each of
      `RETRY_DELAYS`, then the run fails.
    - 401 on a token the tap believes valid: `on_unauthorized` renews the token once, and
      the request is tried again at once. A second 401 fails the run.
    - Anything else (other 4xx) is raised to the caller unchanged.
    """

    def __init__(  # noqa: PLR0913 - keyword-only
        self,
        *,
        budget: RequestBudget,
        clock: Clock,
        max_rate_limit_wait: float,
        logger: logging.Logger,
        delays: t.Sequence[float] = RETRY_DELAYS,
        rng: t.Callable[[], float] = random.random,
    ) -> None:
        """Create a policy that paces through `budget` and waits on `clock`."""
        self.budget = budget
        self.clock = clock
        self.max_rate_limit_wait = max_rate_limit_wait
        self.logger = logger
        self.delays = tuple(delays)
        self.rng = rng
        self.retries = 0
        self.rate_limited_responses = 0

    def call(
        self,
        send: t.Callable[[], _T],
        *,
        endpoint: str,
        on_unauthorized: t.Callable[[], None] | None = None,
    ) -> _T:
        """Return what `send` returns, trying again as the class docstring describes.

        Args:
            send: Sends the request once and raises the errors of `tap_continu.errors`
                (or a requests exception) on failure.
            endpoint: Method and path, such as ``GET /data/users``, for messages. It
                must not contain a query string.
            on_unauthorized: Renews the access token. Without it a 401 is final.

        Raises:
            APIRequestError: When retries or the rate-limit wait run out, or after a
                second 401.
        """
        attempt = 0
        rate_limit_waited = 0.0
        renewed_token = False
        while True:
            try:
                return send()
            except RateLimitedError:  # noqa: PERF203 - a retry loop
                self.rate_limited_responses += 1
                if rate_limit_waited + API_WINDOW_SECONDS > self.max_rate_limit_wait:
                    msg = (
                        f"{endpoint} still returned 429 Too Many Requests after "
                        f"waiting {rate_limit_waited:.0f} s; another client may share this "
                        "client_id's rate limit. Raise max_rate_limit_wait or lower "
                        "requests_per_minute."
                    )
                    raise RateLimitExceededError(msg) from None
                rate_limit_waited += API_WINDOW_SECONDS
                self.logger.warning(
                    "%s returned 429 Too Many Requests; pausing all requests for %.0f s",
                    endpoint,
                    API_WINDOW_SECONDS,
                )
                self.budget.pause(API_WINDOW_SECONDS)
                # Wait here rather than in the transport, so that the token is checked
                # for expiry after the pause, not before it.
                self.budget.wait_for_slot()
            except UnauthorizedError:
                if renewed_token or on_unauthorized is None:
                    msg = (
                        f"{endpoint} returned 401 Unauthorized for a newly issued access "
                        "token; check that the client_id may read this endpoint."
                    )
                    raise APIRequestError(msg) from None
                self.logger.info(
                    "%s returned 401 Unauthorized; renewing the access token", endpoint
                )
                renewed_token = True
                on_unauthorized()
            except RETRIABLE_ERRORS as exc:
                reason = describe_failure(exc)
                if attempt >= len(self.delays):
                    msg = f"{endpoint} failed after {attempt + 1} attempts; last error: {reason}"
                    if isinstance(exc, requests.exceptions.ConnectionError):
                        msg += (
                            ". Check that the host in api_url or auth_url is right and reachable."
                        )
                    raise APIRequestError(msg) from None
                delay = self.delays[attempt] * (1 + RETRY_JITTER * self.rng())
                attempt += 1
                self.retries += 1
                self.logger.warning(
                    "%s failed (%s); attempt %d of %d in %.1f s",
                    endpoint,
                    reason,
                    attempt + 1,
                    len(self.delays) + 1,
                    delay,
                )
                self.clock.sleep(delay)


def describe_failure(exc: BaseException) -> str:
    """Return a short reason for `exc` that contains no URL, query string or body."""
    if isinstance(exc, RetriableAPIError) and exc.response is not None:
        response = exc.response
        return f"{response.status_code} {response.reason}".strip()
    if isinstance(exc, RetriableAPIError):
        return exc.args[0] if exc.args else type(exc).__name__
    return type(exc).__name__
