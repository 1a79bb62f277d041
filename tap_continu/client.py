"""Base stream for the Continu API: transport, error policy and record conformance."""

from __future__ import annotations

import dataclasses
import logging
import sys
import typing as t
from functools import cached_property
from http import HTTPStatus
from importlib import resources
from pathlib import Path

from singer_sdk import RESTStream, SchemaDirectory, StreamSchema
from singer_sdk.exceptions import MaxRecordsLimitException
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_continu import __version__
from tap_continu.errors import (
    APIRequestError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    TapContinuError,
    UnauthorizedError,
    URLTooLongError,
)
from tap_continu.normalize import RecordNormalizer

if t.TYPE_CHECKING:
    from importlib.abc import Traversable

    import requests
    from singer_sdk.helpers.types import Context

    from tap_continu.auth import ContinuAuthenticator
    from tap_continu.budget import RequestBudget
    from tap_continu.retries import RetryPolicy

JSONBody = t.Any

# Fields of the API's user entity that carry credentials (the create-user body has both).
# They are removed from every record, whatever the catalog declares.
CREDENTIAL_FIELDS = ("password", "provisioning_key")

_PARSED_BODY_ATTRIBUTE = "_tap_continu_body"


def _schemas_directory() -> Path | Traversable:
    """Return the folder of stream schemas: inside the installed wheel, else the repo's."""
    packaged = resources.files("tap_continu") / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "schemas"


SCHEMAS = SchemaDirectory(_schemas_directory())


@dataclasses.dataclass
class Connection:
    """What every stream of one run shares to talk to the API.

    One budget paces all requests, one authenticator keeps the one token, and one retry
    policy handles faults, so that the rate limit applies across streams.
    """

    budget: RequestBudget
    session: requests.Session
    retry_policy: RetryPolicy
    authenticator: ContinuAuthenticator
    request_timeout: float


def parsed_body(response: requests.Response) -> JSONBody:
    """Return the JSON body of a response, parsed once and kept on the response.

    Raises:
        ValueError: If the body is not JSON, for example because it was cut short.
    """
    if not hasattr(response, _PARSED_BODY_ATTRIBUTE):
        setattr(response, _PARSED_BODY_ATTRIBUTE, response.json())
    return getattr(response, _PARSED_BODY_ATTRIBUTE)


class ContinuStream(RESTStream[t.Any]):
    """A stream of the Continu API.

    Subclasses set `name`, `path`, `primary_keys` and, for incremental streams,
    `replication_key`. The schema is `schemas/<name>.json`.
    """

    schema = StreamSchema(SCHEMAS)
    records_jsonpath = "$[*]"
    # `post_process` conforms every record to the schema (see normalize.py), so the SDK's
    # own, slower pass over each record is skipped.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: t.Any, connection: Connection) -> None:  # noqa: ANN401
        """Create the stream for `tap`, sending its requests over `connection`."""
        self.connection = connection
        super().__init__(tap=tap)

    @override
    @property
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @override
    @property
    def requests_session(self) -> requests.Session:
        return self.connection.session

    @override
    @property
    def authenticator(self) -> ContinuAuthenticator:
        return self.connection.authenticator

    @override
    @property
    def timeout(self) -> float:  # type: ignore[override]
        # requests accepts fractions of a second; int() would turn 0.5 into no wait at all.
        return self.connection.request_timeout

    @override
    @cached_property
    def user_agent(self) -> str:
        return str(self.config.get("user_agent") or f"tap-continu/{__version__}")

    @override
    @property
    def http_headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    @override
    def log(self, message: str, *args: t.Any, level: int = logging.INFO, **kwargs: t.Any) -> None:
        # The SDK logs "An unhandled error occurred while syncing" at ERROR for any exception
        # that leaves a stream's sync. A TapContinuError is handled: the command line logs its
        # one-line message, so the SDK's line for it (once per stream it passes) is DEBUG. So
        # is the line for the record limit that ends a dry run (`--test`) as intended.
        handled = (TapContinuError, MaxRecordsLimitException)
        if level >= logging.ERROR and isinstance(sys.exc_info()[1], handled):
            level = logging.DEBUG
        super().log(message, *args, level=level, **kwargs)

    @property
    def endpoint(self) -> str:
        """Return the method and path of this stream's requests, for messages."""
        return f"GET {self.path}"

    @override
    def request_decorator(
        self,
        func: t.Callable[..., requests.Response],
    ) -> t.Callable[..., requests.Response]:
        """Wrap `func` in the run's retry policy instead of the SDK's backoff."""
        policy = self.connection.retry_policy

        def send_with_retries(
            prepared_request: requests.PreparedRequest,
            context: Context | None,
        ) -> requests.Response:
            return policy.call(
                lambda: func(prepared_request, context),
                endpoint=self.endpoint,
                on_unauthorized=self.authenticator.invalidate,
            )

        return send_with_retries

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Classify a response by its status code; 2xx bodies must be JSON.

        Error bodies are never read into messages: they may echo the emails of the
        request.
        """
        status = response.status_code
        described = f"{self.endpoint} returned {status} {response.reason}"
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            raise RateLimitedError(described, response)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            msg = f"{status} {response.reason}"
            raise InvalidResponseError(msg)
        if status == HTTPStatus.UNAUTHORIZED:
            raise UnauthorizedError(described)
        if status == HTTPStatus.REQUEST_URI_TOO_LONG:
            msg = f"{described}; lower max_url_length."
            raise URLTooLongError(msg)
        if status == HTTPStatus.NOT_FOUND:
            msg = f"{described}; check api_url."
            raise NotFoundError(msg)
        if status >= HTTPStatus.BAD_REQUEST:
            msg = f"{described}; the request was rejected."
            raise APIRequestError(msg)
        try:
            parsed_body(response)
        except ValueError:
            msg = "truncated or invalid JSON body"
            raise InvalidResponseError(msg) from None

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        body = parsed_body(response)
        if isinstance(body, dict):
            # Later API editions return one object from some endpoints, not a list.
            body = [body]
        if not isinstance(body, list):
            msg = f"{self.endpoint} returned JSON that is not a list"
            raise APIRequestError(msg)
        yield from (item for item in body if isinstance(item, dict))

    @cached_property
    def normalizer(self) -> RecordNormalizer:
        """Return the conformance policy for this stream's records."""
        return RecordNormalizer(self.name, self.schema, self.primary_keys or (), self.logger)

    @override
    def post_process(
        self,
        row: dict[str, t.Any],
        context: Context | None = None,
    ) -> dict[str, t.Any] | None:
        for field in CREDENTIAL_FIELDS:
            row.pop(field, None)
        return self.normalizer.normalize(row)
