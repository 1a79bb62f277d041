"""The Meltano Hub definition and meltano.yml agree with `tap-continu --about`.

`hub/extractors/tap-continu.yml` is what the Meltano Hub would serve to `meltano add`, and the
tap-continu entry of meltano.yml is what this repository runs. Both must declare the settings,
labels, descriptions, defaults, sensitive flags, capabilities and required settings that the
tap itself reports.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml

from tests.support import ALL_STREAMS

REPO_ROOT = Path(__file__).resolve().parent.parent
HUB_FILE = REPO_ROOT / "hub" / "extractors" / "tap-continu.yml"
# The console script of the environment that runs the tests.
TAP_EXECUTABLE = Path(sys.executable).with_name("tap-continu")

# Setting kinds that the Meltano Hub's plugin definition schema allows.
HUB_KINDS = {
    "oauth", "hidden", "password", "date_iso8601", "file", "email", "integer", "options",
    "object", "array", "boolean", "string", "decimal",
}  # fmt: skip
# Both definitions leave out the SDK's `faker_config`, because it works only with the faker
# package, which tap-continu does not install.
LEFT_OUT = {"faker_config"}
# Fields of a setting that meltano.yml and the Hub definition must both state alike.
SETTING_FIELDS = ("name", "kind", "label", "description", "value", "sensitive")
# Inherited environment variables that would change what Meltano or the tap does.
PREFIXES = ("MELTANO_", "TAP_CONTINU_", "TARGET_")


@functools.cache
def about() -> dict[str, t.Any]:
    result = subprocess.run(
        [str(TAP_EXECUTABLE), "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@functools.cache
def hub() -> dict[str, t.Any]:
    return yaml.safe_load(HUB_FILE.read_text(encoding="utf-8"))


@functools.cache
def meltano_entry() -> dict[str, t.Any]:
    project = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    extractors = {plugin["name"]: plugin for plugin in project["plugins"]["extractors"]}
    return extractors["tap-continu"]


DEFINITIONS = {"hub": hub, "meltano.yml": meltano_entry}


def expected_kinds(schema: dict[str, t.Any]) -> set[str]:
    """Return the Meltano setting kinds that fit a setting's JSON schema from `--about`."""
    if schema.get("format") == "date-time":
        return {"date_iso8601"}
    types = set(schema["type"]) - {"null"}
    (json_type,) = types
    if json_type == "number":
        # NOTE: Meltano 4.4.1 fails on a `decimal` setting set from an environment variable,
        # so the definitions declare the tap's number settings as `integer`.
        return {"integer", "decimal"}
    return {json_type}


def settings_by_name(definition: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    return {setting["name"]: setting for setting in definition["settings"]}


@pytest.mark.parametrize("source", DEFINITIONS)
def test_identity_matches_about(source: str) -> None:
    definition = DEFINITIONS[source]()
    assert definition["name"] == about()["name"]
    assert definition["namespace"] == "tap_continu"
    assert definition["executable"] == TAP_EXECUTABLE.name


@pytest.mark.parametrize("source", DEFINITIONS)
def test_capabilities_match_about(source: str) -> None:
    assert sorted(DEFINITIONS[source]()["capabilities"]) == sorted(about()["capabilities"])


@pytest.mark.parametrize("source", DEFINITIONS)
def test_setting_names_match_about(source: str) -> None:
    names = set(settings_by_name(DEFINITIONS[source]()))
    assert names == set(about()["settings"]["properties"]) - LEFT_OUT


@pytest.mark.parametrize("source", DEFINITIONS)
def test_setting_kinds_match_about(source: str) -> None:
    properties = about()["settings"]["properties"]
    for name, setting in settings_by_name(DEFINITIONS[source]()).items():
        assert setting["kind"] in expected_kinds(properties[name]), f"{name}: {setting['kind']}"


@pytest.mark.parametrize("source", DEFINITIONS)
def test_sensitive_flags_match_about(source: str) -> None:
    properties = about()["settings"]["properties"]
    for name, setting in settings_by_name(DEFINITIONS[source]()).items():
        secret = bool(properties[name].get("secret"))
        assert setting.get("sensitive", False) is secret, f"{name}: sensitive"


@pytest.mark.parametrize("source", DEFINITIONS)
def test_labels_match_about(source: str) -> None:
    properties = about()["settings"]["properties"]
    for name, setting in settings_by_name(DEFINITIONS[source]()).items():
        assert setting.get("label") == properties[name].get("title"), f"{name}: label"


@pytest.mark.parametrize("source", DEFINITIONS)
def test_descriptions_match_about(source: str) -> None:
    properties = about()["settings"]["properties"]
    for name, setting in settings_by_name(DEFINITIONS[source]()).items():
        assert setting.get("description") == properties[name].get("description"), name


@pytest.mark.parametrize("source", DEFINITIONS)
def test_defaults_match_about(source: str) -> None:
    properties = about()["settings"]["properties"]
    for name, setting in settings_by_name(DEFINITIONS[source]()).items():
        assert setting.get("value") == properties[name].get("default"), f"{name}: default"


@pytest.mark.parametrize("source", DEFINITIONS)
def test_required_settings_match_about(source: str) -> None:
    groups = [sorted(group) for group in DEFINITIONS[source]()["settings_group_validation"]]
    assert groups == [sorted(about()["settings"]["required"])]


def test_hub_kinds_allowed() -> None:
    for setting in hub()["settings"]:
        assert setting["kind"] in HUB_KINDS, f"{setting['name']}: kind {setting['kind']}"


def test_hub_python_versions_match_about() -> None:
    assert hub()["supported_python_versions"] == about()["supported_python_versions"]


def test_hub_has_required_fields() -> None:
    definition = hub()
    for field in ("name", "namespace", "variant", "label", "description", "pip_url", "repo"):
        assert definition.get(field), f"{field} is missing or empty"


def test_meltano_yml_matches_hub() -> None:
    local, published = meltano_entry(), hub()
    for field in ("label", "description", "settings_group_validation"):
        assert local[field] == published[field], field
    local_settings = settings_by_name(local)
    published_settings = settings_by_name(published)
    assert list(local_settings) == list(published_settings)
    for name, setting in local_settings.items():
        for field in SETTING_FIELDS:
            assert setting.get(field) == published_settings[name].get(field), f"{name}.{field}"


def test_meltano_yml_installs_checkout() -> None:
    # The repository's project runs the tap from this checkout, so tests and the demo use
    # the code under review rather than a published release.
    assert meltano_entry()["pip_url"] == "-e ."


@pytest.mark.slow
def test_hub_definition_adds_to_project(tmp_path: Path) -> None:
    # The README's steps for an existing project. Add the plugin from this definition, point
    # pip_url at a checkout, install it, and discover with credentials from the environment.
    meltano = Path(sys.executable).with_name("meltano")
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith(PREFIXES)},
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_CONTINU_CLIENT_ID": "unused",
        "TAP_CONTINU_CLIENT_SECRET": "unused",
    }
    project = tmp_path / "existing"

    def meltano_command(*args: str, cwd: Path) -> str:
        result = subprocess.run(
            [str(meltano), *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert result.returncode == 0, f"meltano {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result.stdout

    meltano_command("init", str(project), "--no-usage-stats", cwd=tmp_path)
    meltano_command("add", "--no-install", "--from-ref", str(HUB_FILE), "tap-continu", cwd=project)
    config_path = project / "meltano.yml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    (entry,) = config["plugins"]["extractors"]
    assert entry["settings"] == hub()["settings"]
    entry["pip_url"] = str(REPO_ROOT)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    meltano_command("install", "tap-continu", cwd=project)
    catalog = json.loads(meltano_command("invoke", "tap-continu", "--discover", cwd=project))
    streams = sorted(stream["tap_stream_id"] for stream in catalog["streams"])
    assert streams == sorted(ALL_STREAMS)
