"""OAuth client-credentials authentication with Continu's JSON token request."""

from __future__ import annotations

import typing as t
from http import HTTPStatus

from requests.auth import AuthBase

from tap_continu.errors import CredentialsError, InvalidResponseError, RateLimitedError

if t.TYPE_CHECKING:
    import logging

    import requests

    from tap_continu.budget import Clock
    from tap_continu.retries import RetryPolicy

# An `expires_in` above this is a Unix time in seconds (this one is 2001-09-09); below it,
# a lifetime in seconds. The API reference shows the field only as `<epoch>`.
ABSOLUTE_EXPIRY_THRESHOLD = 1_000_000_000

# An `expires_in` above this is a Unix time in milliseconds.
MILLISECONDS_EXPIRY_THRESHOLD = 100_000_000_000

# A token is renewed this long before it expires, but never earlier than after 90% of
# its lifetime, so that short-lived tokens are not renewed on every request.
RENEWAL_MARGIN_SECONDS = 60.0
RENEWAL_MARGIN_FRACTION = 0.1

# How long a token whose absolute expiry already lies in the past is used anyway. That
# happens when this machine's clock runs ahead of the API's; a 401 still renews it.
SKEWED_TOKEN_SECONDS = 30.0


def expiry_from_response(expires_in: object, issued_at: float) -> float | None:
    """Return the Unix time at which a token expires, or None when the lifetime is unknown.

    Args:
        expires_in: The token response's `expires_in`: a Unix time in seconds or
            milliseconds, or a lifetime in seconds. Strings of digits are accepted.
        issued_at: Unix time at which the token was received.
    """
    if isinstance(expires_in, bool):
        return None
    if isinstance(expires_in, str):
        try:
            expires_in = float(expires_in.strip())
        except ValueError:
            return None
    if not isinstance(expires_in, (int, float)) or expires_in <= 0:
        return None
    value = float(expires_in)
    if value > MILLISECONDS_EXPIRY_THRESHOLD:
        return value / 1000
    if value > ABSOLUTE_EXPIRY_THRESHOLD:
        return value
    return issued_at + value


class ContinuAuthenticator(AuthBase):
    """Bearer-token authenticator that fetches and renews Continu access tokens.

    The token request posts `{"client_id", "client_secret"}` as a JSON body, which the
    SDK's `OAuthAuthenticator` cannot do. One instance serves every stream of a run, so
    all streams share one token. It only sets the Authorization header and leaves the
    query string exactly as the stream encoded it.
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        auth_url: str,
        client_id: str,
        client_secret: str,
        session: requests.Session,
        retry_policy: RetryPolicy,
        clock: Clock,
        timeout: float,
        logger: logging.Logger,
        url_setting: str = "auth_url",
    ) -> None:
        """Create an authenticator that posts to `auth_url` through `session`.

        `url_setting` names the setting that `auth_url` came from, for error messages.
        """
        self.auth_url = auth_url
        self.url_setting = url_setting
        self._client_id = client_id
        self._client_secret = client_secret
        self._session = session
        self._retry_policy = retry_policy
        self._clock = clock
        self._timeout = timeout
        self._logger = logger
        self._access_token: str | None = None
        self._renew_at = float("-inf")
        self.tokens_issued = 0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Set the Authorization header of `request`, fetching a token first if needed."""
        if not self.is_token_valid():
            self.renew()
        request.headers["Authorization"] = f"Bearer {self._access_token}"
        return request

    def __repr__(self) -> str:
        """Return a representation that leaves out the credentials and the token."""
        return f"ContinuAuthenticator(auth_url={self.auth_url!r})"

    def is_token_valid(self) -> bool:
        """Return whether the current token can be sent without renewing it first."""
        return self._access_token is not None and self._clock.time() < self._renew_at

    def invalidate(self) -> None:
        """Forget the current token, so that the next request fetches a new one."""
        self._access_token = None
        self._renew_at = float("-inf")

    def renew(self) -> None:
        """Fetch a new access token.

        Raises:
            CredentialsError: If the token endpoint rejects the credentials or responds
                without a usable token.
        """
        body = self._retry_policy.call(self._request_token, endpoint=f"POST {self.auth_url}")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            msg = (
                f"The token endpoint {self.auth_url} returned no access_token; "
                f"check that {self.url_setting} points at Continu's API."
            )
            raise CredentialsError(msg)
        issued_at = self._clock.time()
        expires_at = expiry_from_response(body.get("expires_in"), issued_at)
        self._access_token = token
        self._renew_at = self._renewal_time(issued_at, expires_at)
        self.tokens_issued += 1
        self._logger.info("Fetched an access token (%s)", _describe_lifetime(issued_at, expires_at))

    def _renewal_time(self, issued_at: float, expires_at: float | None) -> float:
        if expires_at is None:
            # No known lifetime: keep the token until the API responds with 401.
            return float("inf")
        lifetime = expires_at - issued_at
        if lifetime <= 0:
            self._logger.warning(
                "The access token's expiry lies %.0f s in the past by this machine's "
                "clock; check the system clock. Using the token for %.0f s.",
                -lifetime,
                SKEWED_TOKEN_SECONDS,
            )
            return issued_at + SKEWED_TOKEN_SECONDS
        margin = min(RENEWAL_MARGIN_SECONDS, lifetime * RENEWAL_MARGIN_FRACTION)
        return expires_at - margin

    def _request_token(self) -> dict[str, t.Any]:
        response = self._session.post(
            self.auth_url,
            json={"client_id": self._client_id, "client_secret": self._client_secret},
            headers={"Accept": "application/json"},
            timeout=self._timeout,
        )
        status = response.status_code
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            msg = f"POST access token: {status}"
            raise RateLimitedError(msg, response)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            msg = f"{status} {response.reason}"
            raise InvalidResponseError(msg)
        if status in {HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
            msg = (
                f"The token endpoint {self.auth_url} rejected the credentials with "
                f"{status} {response.reason}; check client_id and client_secret."
            )
            raise CredentialsError(msg)
        if status != HTTPStatus.OK:
            msg = (
                f"The token endpoint {self.auth_url} returned {status} {response.reason}; "
                f"check {self.url_setting}."
            )
            raise CredentialsError(msg)
        try:
            body = response.json()
        except ValueError:
            msg = "token response is not JSON (truncated?)"
            raise InvalidResponseError(msg) from None
        if not isinstance(body, dict):
            msg = f"The token endpoint {self.auth_url} returned JSON that is not an object."
            raise CredentialsError(msg)
        return body


def _describe_lifetime(issued_at: float, expires_at: float | None) -> str:
    if expires_at is None:
        return "no expiry given; it is renewed on a 401"
    return f"valid for {expires_at - issued_at:.0f} s"
