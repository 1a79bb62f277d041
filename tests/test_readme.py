"""The README's settings table must match what the tap reports about itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
SDK_SETTINGS = ("stream_maps", "stream_map_config", "faker_config", "flattening_", "batch_config")


def about_rows() -> list[str]:
    about = subprocess.run(
        [sys.executable, "-m", "tap_continu.cli", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line for line in about.splitlines() if line.startswith("| ")]
    sdk_prefixes = tuple(f"| {name}" for name in SDK_SETTINGS)
    return [row for row in rows[1:] if not row.startswith(sdk_prefixes)]


def test_readme_settings_table_matches_about() -> None:
    rows = about_rows()
    assert len(rows) >= 10
    readme = README.read_text(encoding="utf-8").splitlines()
    start = readme.index(rows[0])
    assert readme[start : start + len(rows)] == rows
