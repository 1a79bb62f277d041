"""Run the Continu API simulator as a process: ``python -m tests.simulator --url-file PATH``.

The server binds 127.0.0.1, writes its base URL (``http://127.0.0.1:PORT``) to ``--url-file``
once it is listening, and runs until SIGTERM or SIGINT. It then stops, deletes the URL file
so that no later reader finds a dead address, and exits with status 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tests.simulator.server import Simulator, SimulatorConfig

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

logger = logging.getLogger("tests.simulator")


def _build_parser() -> argparse.ArgumentParser:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m tests.simulator",
        description="Serve a seeded simulation of the Continu API on 127.0.0.1.",
    )

    server = parser.add_argument_group("server")
    server.add_argument(
        "--port", type=int, default=defaults.port, help="TCP port on 127.0.0.1; 0 picks a free one"
    )
    server.add_argument(
        "--url-file",
        type=Path,
        help="file that receives the base URL once the server listens (written atomically)",
    )
    server.add_argument(
        "--api-prefix", default=defaults.api_prefix, help="path prefix of the API endpoints"
    )
    server.add_argument("--verbose", action="store_true", help="log every request to stderr")

    data = parser.add_argument_group("data")
    data.add_argument("--users", type=int, default=defaults.users, help="number of users")
    data.add_argument("--seed", type=int, default=defaults.seed, help="dataset seed")
    data.add_argument(
        "--edition",
        choices=("2020", "later"),
        default=defaults.edition,
        help="API edition: field names, allowed list sizes and the single-user response shape",
    )
    data.add_argument(
        "--bad-data", action="store_true", help="inject malformed values into some users"
    )
    data.add_argument(
        "--users-without-email",
        type=int,
        default=defaults.users_without_email,
        help="number of users with a null email",
    )

    auth = parser.add_argument_group("authentication")
    auth.add_argument("--client-id", default=defaults.client_id, help="accepted OAuth client id")
    auth.add_argument(
        "--client-secret", default=defaults.client_secret, help="accepted OAuth client secret"
    )
    auth.add_argument(
        "--token-lifetime",
        type=float,
        default=defaults.token_lifetime,
        help="seconds until an access token expires",
    )
    auth.add_argument(
        "--expires-in-mode",
        choices=("absolute", "relative"),
        default=defaults.expires_in_mode,
        help="send expires_in as a Unix time or as a lifetime in seconds",
    )
    auth.add_argument(
        "--revoke-after-requests",
        type=int,
        default=defaults.revoke_after_requests,
        help="after every N authorized requests, revoke all tokens issued so far (default: never)",
    )

    behaviour = parser.add_argument_group("API behaviour")
    behaviour.add_argument(
        "--rate-limit",
        type=int,
        default=defaults.rate_limit,
        help="maximum requests per window, token requests included; 0 disables the limit",
    )
    behaviour.add_argument(
        "--window-seconds",
        type=float,
        default=defaults.window_seconds,
        help="length of the rolling rate-limit window in seconds",
    )
    behaviour.add_argument(
        "--id-from-mode",
        choices=("exclusive", "inclusive"),
        default=defaults.id_from_mode,
        help="whether a users page starts after the id_from user or with it",
    )
    behaviour.add_argument(
        "--unknown-email",
        choices=("404", "omit"),
        default=defaults.unknown_email,
        help="respond to a completion request with an unknown email with 404, or omit the email",
    )
    behaviour.add_argument(
        "--leak-credentials",
        action="store_true",
        help="add password and provisioning_key to full user records",
    )
    behaviour.add_argument(
        "--max-request-target",
        type=int,
        default=defaults.max_request_target,
        help="maximum length of path plus query in characters; longer requests get 414",
    )

    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--error-rate",
        type=float,
        default=defaults.error_rate,
        help="fraction of API requests that get a 500 response (0 to 1)",
    )
    faults.add_argument(
        "--drop-rate",
        type=float,
        default=defaults.drop_rate,
        help="fraction of API requests whose connection closes after half the body (0 to 1)",
    )
    faults.add_argument(
        "--slow-rate",
        type=float,
        default=defaults.slow_rate,
        help="fraction of API requests delayed by --slow-seconds (0 to 1)",
    )
    faults.add_argument(
        "--slow-seconds",
        type=float,
        default=defaults.slow_seconds,
        help="delay of a slow request in seconds",
    )
    faults.add_argument(
        "--fault-seed", type=int, default=defaults.fault_seed, help="seed of the fault draws"
    )
    return parser


def _config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        port=args.port,
        api_prefix=args.api_prefix,
        seed=args.seed,
        users=args.users,
        edition=args.edition,
        bad_data=args.bad_data,
        users_without_email=args.users_without_email,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime=args.token_lifetime,
        expires_in_mode=args.expires_in_mode,
        revoke_after_requests=args.revoke_after_requests,
        rate_limit=args.rate_limit,
        window_seconds=args.window_seconds,
        id_from_mode=args.id_from_mode,
        unknown_email=args.unknown_email,
        leak_credentials=args.leak_credentials,
        max_request_target=args.max_request_target,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        slow_rate=args.slow_rate,
        slow_seconds=args.slow_seconds,
        fault_seed=args.fault_seed,
        verbose=args.verbose,
    )


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGTERM or SIGINT and return the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = _config_from_args(args)
    except ValueError as error:
        parser.error(str(error))
    if args.url_file is not None and not args.url_file.parent.is_dir():
        parser.error(f"--url-file: folder {args.url_file.parent} does not exist")

    stop_requested = threading.Event()

    received: list[str] = []

    def request_stop(signal_number: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signal_number).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    simulator = Simulator(config)
    simulator.start()
    try:
        if args.url_file is not None:
            _write_atomically(args.url_file, simulator.base_url + "\n")
        dataset = simulator.dataset
        logger.info(
            "Continu API simulator listening on %s (API %s, %d users, seed %d, edition %s, "
            "rate limit %s)",
            simulator.base_url,
            simulator.api_url,
            len(dataset),
            dataset.seed,
            dataset.edition,
            config.rate_limit or "off",
        )
        while not stop_requested.wait(timeout=0.5):
            pass
    finally:
        simulator.stop()
        if args.url_file is not None:
            args.url_file.unlink(missing_ok=True)
    logger.info("stopped after %s", received[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
