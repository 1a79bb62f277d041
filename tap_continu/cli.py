"""Console entry point: the SDK's command line, with one-line errors for known failures."""

from __future__ import annotations

import sys

from singer_sdk.exceptions import MappingError

from tap_continu.errors import TapContinuError
from tap_continu.tap import TapContinu


def main() -> None:
    """Run the tap's command line.

    A bad setting, rejected credentials or an API that keeps failing end the run with one
    ERROR line and exit code 1, and no traceback. Other exceptions are bugs and keep the
    SDK's traceback.
    """
    try:
        TapContinu.cli()
    except TapContinuError as exc:
        TapContinu.logger.error("%s", exc)
        sys.exit(1)
    except MappingError as exc:
        TapContinu.logger.error("Setting stream_maps is invalid: %s. Fix the map.", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
