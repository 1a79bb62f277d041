"""The tap's settings: their JSON schema, defaults, and checks with one-line errors."""

from __future__ import annotations

import decimal
import typing as t
from urllib.parse import urlsplit

from singer_sdk import typing as th

from tap_continu.errors import SettingError
from tap_continu.normalize import UnusableValueError, parse_datetime

DEFAULT_API_URL = "https://usw2-api.continu.co/v3"
TOKEN_PATH = "/oauth2/access-token"  # noqa: S105 - a URL path, not a secret
DEFAULT_REQUESTS_PER_MINUTE = 50
DEFAULT_MAX_URL_LENGTH = 6000
DEFAULT_REQUEST_TIMEOUT = 300
DEFAULT_MAX_RATE_LIMIT_WAIT = 600

# `max_url_length` must leave room for one email of this many encoded bytes after the
# longest completion URL's other parts. Few real addresses are longer.
MIN_EMAIL_BYTES = 64

# The longest completion path and a `from` parameter, for the `max_url_length` check.
LONGEST_COMPLETION_QUERY = "/completion/assessments?for_users=&from=0000000000"

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "client_id",
        th.StringType,
        required=True,
        secret=True,
        title="Client ID",
        description="OAuth client ID that Continu issued for API access.",
    ),
    th.Property(
        "client_secret",
        th.StringType,
        required=True,
        secret=True,
        title="Client secret",
        description="OAuth client secret that Continu issued with the client ID.",
    ),
    th.Property(
        "api_url",
        th.URIType,
        default=DEFAULT_API_URL,
        title="API base URL",
        description=(
            "Base URL of the Continu API, without a trailing slash. Later API editions use "
            "https://usw2-oapi.continu.co/api/v1 (or the apse2 host in Australia)."
        ),
    ),
    th.Property(
        "auth_url",
        th.URIType,
        title="Token URL",
        description=f"URL of the OAuth token endpoint. Defaults to api_url + {TOKEN_PATH}.",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description=(
            "Earliest date to extract, as ISO 8601. Sent to the completion endpoints as "
            "`from` (which filters on the start or assigned date) and used as the users "
            "stream's first bookmark when no completion stream is selected."
        ),
    ),
    th.Property(
        "requests_per_minute",
        th.NumberType,
        default=DEFAULT_REQUESTS_PER_MINUTE,
        title="Requests per minute",
        description=(
            "Maximum requests per minute for the whole run, token requests and retries "
            "included. The API allows 50 per client."
        ),
    ),
    th.Property(
        "max_url_length",
        th.IntegerType,
        default=DEFAULT_MAX_URL_LENGTH,
        title="Maximum URL length",
        description=(
            "Maximum length in bytes of a whole request URL. Completion requests carry as "
            "many emails as fit; a 414 response splits a batch."
        ),
    ),
    th.Property(
        "request_timeout",
        th.NumberType,
        default=DEFAULT_REQUEST_TIMEOUT,
        title="Request timeout",
        description="Seconds to wait for a response before the request is retried.",
    ),
    th.Property(
        "max_rate_limit_wait",
        th.NumberType,
        default=DEFAULT_MAX_RATE_LIMIT_WAIT,
        title="Maximum rate-limit wait",
        description=(
            "Seconds one request may spend waiting out 429 responses before the run fails."
        ),
    ),
    th.Property(
        "user_agent",
        th.StringType,
        title="User agent",
        description="User-Agent header to send. Defaults to tap-continu/<version>.",
    ),
).to_dict()


def resolved_auth_url(config: t.Mapping[str, t.Any]) -> str:
    """Return the token URL: `auth_url` if set, else `api_url` + the token path."""
    auth_url = config.get("auth_url")
    if auth_url:
        return str(auth_url)
    return str(config.get("api_url") or DEFAULT_API_URL).rstrip("/") + TOKEN_PATH


def start_timestamp(config: t.Mapping[str, t.Any]) -> int | None:
    """Return `start_date` as Unix seconds, or None when it is not set."""
    value = config.get("start_date")
    if not value:
        return None
    return int(parse_datetime(str(value)).timestamp())


def check_settings(config: t.Mapping[str, t.Any]) -> None:
    """Raise SettingError for the first invalid setting, naming it and the fix."""
    for name, env in (
        ("client_id", "TAP_CONTINU_CLIENT_ID"),
        ("client_secret", "TAP_CONTINU_CLIENT_SECRET"),
    ):
        value = config.get(name)
        if not isinstance(value, str) or not value.strip():
            msg = (
                f"Setting {name} is missing: set it to the value Continu issued "
                f"(in meltano config or as {env})."
            )
            raise SettingError(msg)
    _check_url(config, "api_url")
    if config.get("auth_url") is not None:
        _check_url(config, "auth_url")
    _check_start_date(config.get("start_date"))
    check_connection_settings(config)
    user_agent = config.get("user_agent")
    if user_agent is not None and not isinstance(user_agent, str):
        msg = "Setting user_agent must be a string; remove it to use the default."
        raise SettingError(msg)


def check_connection_settings(config: t.Mapping[str, t.Any]) -> None:
    """Raise SettingError for an invalid setting that the streams are built from.

    Discovery builds the streams, with the request budget and the email batcher, but needs
    no credentials, so it checks only these settings.
    """
    _check_positive(config, "requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE)
    _check_positive(config, "request_timeout", DEFAULT_REQUEST_TIMEOUT)
    _check_number(config, "max_rate_limit_wait", minimum=0, default=DEFAULT_MAX_RATE_LIMIT_WAIT)
    _check_max_url_length(config)


def _check_url(config: t.Mapping[str, t.Any], name: str) -> None:
    value = config.get(name)
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = (
            f"Setting {name} is not an http(s) URL: {value!r}. Set it to a URL such as "
            f"{DEFAULT_API_URL if name == 'api_url' else DEFAULT_API_URL + TOKEN_PATH}."
        )
        raise SettingError(msg)
    if parts.query or parts.fragment:
        msg = f"Setting {name} must not contain a query string or fragment: {value!r}."
        raise SettingError(msg)


def _check_start_date(value: object) -> None:
    if value is None:
        return
    try:
        parse_datetime(value if isinstance(value, str) else "")
    except UnusableValueError:
        msg = (
            f"Setting start_date is not an ISO 8601 date: {value!r}. "
            "Use a date such as 2024-01-31 or 2024-01-31T00:00:00Z, or remove it."
        )
        raise SettingError(msg) from None


def _number(config: t.Mapping[str, t.Any], name: str) -> float | None:
    value = config.get(name)
    # The SDK reads JSON config files with decimal.Decimal for every fraction.
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        return None
    return float(value)


def _check_number(config: t.Mapping[str, t.Any], name: str, minimum: float, default: float) -> None:
    value = _number(config, name)
    if value is None or value < minimum:
        msg = (
            f"Setting {name} must be a number of at least {minimum:g}, got "
            f"{config.get(name)!r}. Set it to such a number or remove it to use the "
            f"default, {default}."
        )
        raise SettingError(msg)


def _check_positive(config: t.Mapping[str, t.Any], name: str, default: float) -> None:
    value = _number(config, name)
    if value is None or value <= 0:
        msg = (
            f"Setting {name} must be a number greater than 0, got {config.get(name)!r}. "
            f"Set it to a positive value or remove it to use the default, {default}."
        )
        raise SettingError(msg)


def _check_max_url_length(config: t.Mapping[str, t.Any]) -> None:
    value = config.get("max_url_length")
    api_url = str(config.get("api_url") or DEFAULT_API_URL).rstrip("/")
    needed = len(api_url) + len(LONGEST_COMPLETION_QUERY) + MIN_EMAIL_BYTES
    if isinstance(value, bool) or not isinstance(value, int) or value < needed:
        msg = (
            f"Setting max_url_length={value!r} leaves no room for an email: requests to "
            f"{api_url} need {needed - MIN_EMAIL_BYTES} bytes before the first email. "
            f"Set it to at least {needed} (default {DEFAULT_MAX_URL_LENGTH})."
        )
        raise SettingError(msg)
