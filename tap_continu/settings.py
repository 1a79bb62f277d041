"""The tap's settings: their JSON schema, defaults, and checks with one-line errors."""

from __future__ import annotations

import decimal
import math
import typing as t
from urllib.parse import urlsplit, urlunsplit

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
        th.IntegerType,
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
        th.IntegerType,
        default=DEFAULT_REQUEST_TIMEOUT,
        title="Request timeout",
        description="Seconds to wait for a response before the request is retried.",
    ),
    th.Property(
        "max_rate_limit_wait",
        th.IntegerType,
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


# Bounds of the whole-number settings: (minimum, maximum, default). They are integers, as
# in meltano.yml, because the SDK converts only integer settings from TAP_CONTINU_* variables.
NUMBER_BOUNDS: dict[str, tuple[float, float, float]] = {
    "requests_per_minute": (1, 1_000_000, DEFAULT_REQUESTS_PER_MINUTE),
    "request_timeout": (1, 3600, DEFAULT_REQUEST_TIMEOUT),
    "max_rate_limit_wait": (0, 86_400, DEFAULT_MAX_RATE_LIMIT_WAIT),
}


def check_settings(config: t.Mapping[str, t.Any]) -> None:
    """Raise SettingError for the first invalid setting, naming it and the fix."""
    for name, env in (
        ("client_id", "TAP_CONTINU_CLIENT_ID"),
        ("client_secret", "TAP_CONTINU_CLIENT_SECRET"),
    ):
        value = config.get(name)
        if value is not None and not isinstance(value, str):
            msg = f"Setting {name} must be a string; quote it in the config."
            raise SettingError(msg)
        if not value or not value.strip():
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
    if user_agent is not None and (not isinstance(user_agent, str) or not user_agent.isprintable()):
        msg = (
            "Setting user_agent must be a string of printable characters, without line "
            "breaks; remove it to use the default."
        )
        raise SettingError(msg)


def check_connection_settings(config: t.Mapping[str, t.Any]) -> None:
    """Raise SettingError for an invalid setting that the streams are built from.

    Discovery builds the streams, with the request budget and the email batcher, but needs
    no credentials, so it checks only these settings.
    """
    for name in NUMBER_BOUNDS:
        number_setting(config, name)
    max_url_length_setting(config)


def number_setting(config: t.Mapping[str, t.Any], name: str) -> float:
    """Return the whole-number setting `name`, or raise SettingError naming its bounds."""
    minimum, maximum, default = NUMBER_BOUNDS[name]
    value = _as_number(config.get(name, default))
    if value is None or not value.is_integer() or not minimum <= value <= maximum:
        msg = (
            f"Setting {name} must be a whole number from {minimum:g} to {maximum:g}, got "
            f"{config.get(name)!r}. Set it in that range or remove it to use the default, "
            f"{default}."
        )
        raise SettingError(msg)
    return value


def max_url_length_setting(config: t.Mapping[str, t.Any]) -> int:
    """Return `max_url_length`, or raise SettingError if it leaves no room for an email."""
    raw = config.get("max_url_length", DEFAULT_MAX_URL_LENGTH)
    value = _as_number(raw)
    if value is None or not value.is_integer():
        msg = (
            f"Setting max_url_length must be a whole number of bytes, got {raw!r}. "
            f"Remove it to use the default, {DEFAULT_MAX_URL_LENGTH}."
        )
        raise SettingError(msg)
    api_url = _redacted_url(str(config.get("api_url") or DEFAULT_API_URL)).rstrip("/")
    needed = len(str(config.get("api_url") or DEFAULT_API_URL).rstrip("/"))
    needed += len(LONGEST_COMPLETION_QUERY) + MIN_EMAIL_BYTES
    if value < needed:
        msg = (
            f"Setting max_url_length={int(value)} leaves no room for an email: requests to "
            f"{api_url} need {needed - MIN_EMAIL_BYTES} bytes before the first email. "
            f"Set it to at least {needed} (default {DEFAULT_MAX_URL_LENGTH})."
        )
        raise SettingError(msg)
    return int(value)


def _as_number(value: object) -> float | None:
    """Return `value` as a finite float, or None if it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float, decimal.Decimal)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _redacted_url(url: str) -> str:
    """Return `url` without a user name, password, query string or fragment, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _check_url(config: t.Mapping[str, t.Any], name: str) -> None:
    value = config.get(name)
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        has_host = parts is not None and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an invalid port number
        parts, has_host = None, False
    shown = _redacted_url(value) if isinstance(value, str) and parts is not None else repr(value)
    if parts is None or parts.scheme not in {"http", "https"} or not has_host:
        msg = (
            f"Setting {name} is not an http(s) URL: {shown}. Set it to a URL such as "
            f"{DEFAULT_API_URL if name == 'api_url' else DEFAULT_API_URL + TOKEN_PATH}."
        )
        raise SettingError(msg)
    if parts.query or parts.fragment or parts.username or parts.password:
        msg = (
            f"Setting {name} must not contain a user name, password, query string or "
            f"fragment: {shown}. Remove them."
        )
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
