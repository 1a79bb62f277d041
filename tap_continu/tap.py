"""tap-continu: the tap class, which wires the settings, the connection and the streams."""

from __future__ import annotations

import json
import typing as t
from functools import cached_property
from pathlib import Path

from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities
from typing_extensions import override

from tap_continu import __version__
from tap_continu.auth import ContinuAuthenticator
from tap_continu.batching import EmailBatcher
from tap_continu.budget import Clock, RequestBudget, SystemClock, budgeted_session
from tap_continu.client import Connection
from tap_continu.errors import SettingError
from tap_continu.logs import redact_request_logs
from tap_continu.output import SingerOutput
from tap_continu.progress import BatchProgress
from tap_continu.retries import RetryPolicy
from tap_continu.settings import (
    CONFIG_SCHEMA,
    check_connection_settings,
    check_settings,
    max_url_length_setting,
    number_setting,
    resolved_auth_url,
)
from tap_continu.streams import COMPLETION_STREAMS, UsersStream

if t.TYPE_CHECKING:
    from tap_continu.client import ContinuStream


class TapContinu(Tap):
    """Singer tap for the Continu API: users and their learning completions."""

    name = "tap-continu"
    package_name = "tap-continu"
    plugin_version = __version__
    config_jsonschema: t.ClassVar[dict[str, t.Any]] = CONFIG_SCHEMA

    message_writer_class = SingerOutput

    # Set while the command line runs a sync: the tap then fetches its first access token
    # when it is created.
    fetch_token_on_start: t.ClassVar[bool] = False

    # The SDK's defaults minus BATCH messages and ACTIVATE_VERSION, which this tap does
    # not test.
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
    ]

    def __init__(self, *args: t.Any, clock: Clock | None = None, **kwargs: t.Any) -> None:  # noqa: ANN401
        """Create the tap; `clock` replaces the system clock, for tests.

        Raises:
            SettingError: If a setting is missing or invalid, with a one-line message.
        """
        self.clock: Clock = clock or SystemClock()
        redact_request_logs()
        try:
            super().__init__(*args, **kwargs)
        except ValueError as exc:
            # The SDK converts TAP_CONTINU_* integer, array and object settings itself.
            msg = (
                f"A TAP_CONTINU_* environment variable has an invalid value: {exc}. "
                "Check the TAP_CONTINU_* variables."
            )
            raise SettingError(msg) from None
        except ConfigValidationError as exc:
            check_settings(self.config)
            first = exc.errors[0] if exc.errors else str(exc)
            msg = f"Invalid setting: {first}. Fix it in the tap's config."
            raise SettingError(msg) from None
        if kwargs.get("validate_config", True):
            check_settings(self.config)
            if self.fetch_token_on_start:
                self.connection.authenticator.renew()

    @cached_property
    def connection(self) -> Connection:
        """Return the budget, session, retry policy and token that all streams share."""
        config = self.config
        budget = RequestBudget(number_setting(config, "requests_per_minute"), self.clock)
        user_agent = str(config.get("user_agent") or f"tap-continu/{__version__}")
        session = budgeted_session(budget, user_agent)
        retry_policy = RetryPolicy(
            budget=budget,
            clock=self.clock,
            max_rate_limit_wait=number_setting(config, "max_rate_limit_wait"),
            logger=self.logger,
        )
        authenticator = ContinuAuthenticator(
            auth_url=resolved_auth_url(config),
            client_id=str(config.get("client_id", "")),
            client_secret=str(config.get("client_secret", "")),
            # A session of its own, because the SDK sets the data session's `auth` to this
            # authenticator, which would then authenticate its own token requests.
            session=budgeted_session(budget, user_agent),
            retry_policy=retry_policy,
            clock=self.clock,
            timeout=number_setting(config, "request_timeout"),
            logger=self.logger,
            url_setting="auth_url" if config.get("auth_url") else "api_url",
        )
        return Connection(
            budget=budget,
            session=session,
            retry_policy=retry_policy,
            authenticator=authenticator,
            request_timeout=number_setting(config, "request_timeout"),
        )

    @classmethod
    @override
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        """Run the command line's sync, checking the credentials before any stream starts.

        The SDK logs an extra ERROR line for any exception raised inside a stream's sync,
        so rejected credentials are found while the tap is created instead, and fail the
        run with one line.
        """
        cls.fetch_token_on_start = True
        try:
            super().invoke(*args, **kwargs)
        finally:
            cls.fetch_token_on_start = False

    @classmethod
    @override
    def cb_config(cls, ctx: t.Any, param: t.Any, value: tuple[str, ...]) -> t.Any:
        """Read the --config files, failing with one line for a missing or invalid file."""
        for path in value:
            if path == "ENV":
                continue
            _check_config_file(path)
        return super().cb_config(ctx, param, value)

    @override
    def discover_streams(self) -> list[ContinuStream]:
        check_connection_settings(self.config)
        batcher = EmailBatcher(max_url_length_setting(self.config))
        progress = BatchProgress(self.logger)
        users = UsersStream(self, self.connection, batcher, progress)
        completions = [stream(self, self.connection, batcher) for stream in COMPLETION_STREAMS]
        return [users, *completions]


def _reject_constant(name: str) -> t.NoReturn:
    msg = f"{name} is not a JSON number"
    raise ValueError(msg)


def _check_config_file(path: str) -> None:
    """Raise SettingError unless `path` is a readable UTF-8 file with a JSON object."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"Config file {path} was not found. Check the path given to --config."
        raise SettingError(msg) from None
    except (OSError, UnicodeDecodeError) as exc:
        msg = (
            f"Config file {path} cannot be read as UTF-8 text ({type(exc).__name__}). "
            "Check the path given to --config."
        )
        raise SettingError(msg) from None
    try:
        content = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        # The position only: the file's text may contain the client secret.
        msg = (
            f"Config file {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}. Check the file given to --config."
        )
        raise SettingError(msg) from None
    except ValueError:
        msg = (
            f"Config file {path} contains NaN or Infinity, which JSON does not allow. "
            "Check the file given to --config."
        )
        raise SettingError(msg) from None
    if not isinstance(content, dict):
        kind = type(content).__name__
        msg = (
            f"Config file {path} must contain a JSON object of settings, not a JSON {kind}. "
            "Check the file given to --config."
        )
        raise SettingError(msg)
