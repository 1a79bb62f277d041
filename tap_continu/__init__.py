"""Singer tap for the Continu learning platform."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tap-continu")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
