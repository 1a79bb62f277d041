"""The SDK's standard tap tests, against a simulator started for this module."""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_continu.tap import TapContinu
from tests.simulator import Simulator, SimulatorConfig

# The standard tests build the tap class at import time, so the simulator starts here and
# stops when the interpreter exits.
_SIMULATOR = Simulator(SimulatorConfig(users=120, rate_limit=None)).start()

CONFIG = {
    "client_id": _SIMULATOR.config.client_id,
    "client_secret": _SIMULATOR.config.client_secret,
    "api_url": _SIMULATOR.api_url,
    "requests_per_minute": 1_000_000,
}

TestTapContinu = get_tap_test_class(
    tap_class=TapContinu,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=None),
)


def teardown_module() -> None:
    _SIMULATOR.stop()
