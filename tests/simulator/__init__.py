"""A local simulator of the Continu API: a seeded dataset and an HTTP server on 127.0.0.1.

Run it in-process with ``Simulator`` (a context manager), or as a process with
``python -m tests.simulator --url-file PATH``. Only the standard library is used.
"""

from __future__ import annotations

from tests.simulator.data import STREAMS, Dataset
from tests.simulator.server import Simulator, SimulatorConfig

__all__ = ["STREAMS", "Dataset", "Simulator", "SimulatorConfig"]
