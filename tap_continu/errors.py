"""Exceptions that tap-continu raises, and the SDK error classes they extend.

Every message is safe to print: it names the setting or the endpoint at fault and never
contains a token, a secret, a query string or an email address.
"""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError


class TapContinuError(Exception):
    """Error that ends a run with one log line and exit code 1, without a traceback."""


class SettingError(TapContinuError):
    """A setting is missing or invalid. The message names the setting and the fix."""


class CredentialsError(TapContinuError):
    """The token endpoint rejected the client credentials or could not issue a token."""


class APIRequestError(TapContinuError):
    """A request failed for good: retries ran out, or the API rejected it."""


class RateLimitExceededError(APIRequestError):
    """The API kept responding with 429 for longer than the `max_rate_limit_wait` setting."""


# The classes below classify one response inside the retry loop. Each carries a message
# built from the method, the endpoint path and the status only.


class RateLimitedError(RetriableAPIError):
    """The API responded with 429 Too Many Requests."""


class UnauthorizedError(FatalAPIError):
    """The API responded with 401 Unauthorized to a request that carried a token."""


class URLTooLongError(FatalAPIError, APIRequestError):
    """The API responded with 414 URI Too Long. A completion stream splits the batch."""


class NotFoundError(FatalAPIError, APIRequestError):
    """The API responded with 404 Not Found. A completion stream splits the batch."""


class InvalidResponseError(RetriableAPIError):
    """A 2xx response whose body is not the expected JSON, for example a truncated one."""
