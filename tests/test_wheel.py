"""The built wheel, installed into a fresh virtual environment, works on its own.

Run from a folder outside the repository, it discovers all five streams from the schemas it
carries.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import typing as t
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from tests.support import ALL_STREAMS, PRIMARY_KEYS

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).with_name("uv")
COMMAND_TIMEOUT_SECONDS = 600


@dataclasses.dataclass(frozen=True)
class InstalledWheel:
    """A wheel built from this checkout and the virtual environment it is installed in."""

    wheel: Path
    venv: Path
    workdir: Path  # outside the repository
    config: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def tap(self) -> Path:
        return self.venv / "bin" / "tap-continu"


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `command` without the test environment's Python path, and check that it passes."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    run([str(UV), "build", "--wheel", "--out-dir", str(dist), str(REPO_ROOT)], cwd=root)
    (wheel,) = dist.glob("*.whl")
    venv = root / "venv"
    run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=root)
    python = venv / "bin" / "python"
    run([str(UV), "pip", "install", "--quiet", "--python", str(python), str(wheel)], cwd=root)
    workdir = root / "elsewhere"
    workdir.mkdir()
    config = workdir / "config.json"
    config.write_text(json.dumps({"client_id": "unused", "client_secret": "unused"}))
    return InstalledWheel(wheel=wheel, venv=venv, workdir=workdir, config=config)


def discover(installed: InstalledWheel) -> dict[str, dict[str, t.Any]]:
    command = [str(installed.tap), "--config", str(installed.config), "--discover"]
    catalog = json.loads(run(command, cwd=installed.workdir).stdout)
    return {entry["tap_stream_id"]: entry for entry in catalog["streams"]}


@pytest.fixture(scope="module")
def catalog(installed: InstalledWheel) -> dict[str, dict[str, t.Any]]:
    return discover(installed)


def wheel_schema(installed: InstalledWheel, stream: str) -> dict[str, t.Any]:
    with zipfile.ZipFile(installed.wheel) as archive:
        return json.loads(archive.read(f"tap_continu/schemas/{stream}.json"))


def test_wheel_contains_schemas(installed: InstalledWheel) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        names = set(archive.namelist())
    for stream in ALL_STREAMS:
        assert f"tap_continu/schemas/{stream}.json" in names, stream


def test_wheel_leaves_out_tests(installed: InstalledWheel) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        top_levels = {name.split("/", 1)[0] for name in archive.namelist()}
    assert top_levels == {"tap_continu", f"tap_continu-{metadata.version('tap-continu')}.dist-info"}


def test_package_imported_from_venv(installed: InstalledWheel) -> None:
    command = [str(installed.python), "-c", "import tap_continu; print(tap_continu.__file__)"]
    location = Path(run(command, cwd=installed.workdir).stdout.strip())
    assert location.is_relative_to(installed.venv)


def test_about_reports_version(installed: InstalledWheel) -> None:
    command = [str(installed.tap), "--about", "--format=json"]
    about = json.loads(run(command, cwd=installed.workdir).stdout)
    assert about["version"] == metadata.version("tap-continu")


def test_discover_lists_streams(catalog: dict[str, dict[str, t.Any]]) -> None:
    assert sorted(catalog) == sorted(ALL_STREAMS)


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_discover_key_properties(catalog: dict[str, dict[str, t.Any]], stream: str) -> None:
    assert tuple(catalog[stream]["key_properties"]) == PRIMARY_KEYS[stream]


def test_discover_replication_keys(catalog: dict[str, dict[str, t.Any]]) -> None:
    for stream, entry in catalog.items():
        expected = "updated_at" if stream == "users" else None
        assert entry.get("replication_key") == expected, stream


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_discover_uses_wheel_schema(
    installed: InstalledWheel, catalog: dict[str, dict[str, t.Any]], stream: str
) -> None:
    assert catalog[stream]["schema"] == wheel_schema(installed, stream)


def test_discover_reads_installed_files(installed: InstalledWheel) -> None:
    # A property added to the installed copy of a schema must show up in discovery, which
    # proves that the tap reads the files installed from the wheel and no other copy.
    command = [
        str(installed.python),
        "-c",
        "import importlib.resources as r; print(r.files('tap_continu') / 'schemas')",
    ]
    schemas_dir = Path(run(command, cwd=installed.workdir).stdout.strip())
    assert schemas_dir.is_relative_to(installed.venv)
    path = schemas_dir / "workshops.json"
    original = path.read_text(encoding="utf-8")
    marked = json.loads(original)
    marked["properties"]["installed_copy_marker"] = {"type": ["string", "null"]}
    path.write_text(json.dumps(marked), encoding="utf-8")
    try:
        properties = discover(installed)["workshops"]["schema"]["properties"]
    finally:
        path.write_text(original, encoding="utf-8")
    assert "installed_copy_marker" in properties
