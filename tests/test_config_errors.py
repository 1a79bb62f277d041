"""Bad settings through the console script: one ERROR line, exit code 1, no traceback.

Each message must name the setting and the fix, and never print the client secret.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import typing as t
from pathlib import Path

import pytest

from tests.support import tap_config

TAP_EXECUTABLE = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "tap-continu"
SECRET = "cfg-test-secret-7Q2x"  # noqa: S105 - a test credential
# An address on which nothing listens: no case below gets as far as sending a request.
UNUSED_API_URL = "http://127.0.0.1:9/v3"
FIX_WORDS = re.compile(r"\b(set|use|check|remove|raise)\b", re.IGNORECASE)
STREAM_NAMES = {"users", "assessments", "assignments", "tracks", "workshops"}


def run_console(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_CONTINU_")}
    clean_env.update(env or {})
    return subprocess.run(
        [str(TAP_EXECUTABLE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=clean_env,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "ERROR" in line]


def assert_one_line_error(completed: subprocess.CompletedProcess[str], setting: str) -> str:
    """Assert that the run failed with one ERROR line naming `setting`, and return the line."""
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr, completed.stderr
    errors = error_lines(completed.stderr)
    assert len(errors) == 1, completed.stderr
    assert setting in errors[0]
    assert FIX_WORDS.search(errors[0]), f"the message gives no fix: {errors[0]}"
    assert SECRET not in completed.stderr
    assert SECRET not in completed.stdout
    return errors[0]


def config_file(tmp_path: Path, config: dict[str, t.Any]) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


def base_config(**overrides: t.Any) -> dict[str, t.Any]:
    config: dict[str, t.Any] = {
        "client_id": "cfg-test-client",
        "client_secret": SECRET,
        "api_url": UNUSED_API_URL,
    }
    config.update(overrides)
    return {key: value for key, value in config.items() if value is not None}


BAD_SETTINGS = [
    pytest.param("client_id", {"client_id": None}, id="client_id-missing"),
    pytest.param("client_id", {"client_id": "  "}, id="client_id-blank"),
    pytest.param("client_secret", {"client_secret": None}, id="client_secret-missing"),
    pytest.param("client_secret", {"client_secret": ""}, id="client_secret-empty"),
    pytest.param("api_url", {"api_url": "not a url"}, id="api_url-text"),
    pytest.param("api_url", {"api_url": "usw2-api.continu.co/v3"}, id="api_url-no-scheme"),
    pytest.param("auth_url", {"auth_url": "ftp://127.0.0.1/token"}, id="auth_url-ftp"),
    pytest.param("start_date", {"start_date": "yesterday"}, id="start_date-text"),
    pytest.param("start_date", {"start_date": "2024-13-45"}, id="start_date-invalid"),
    pytest.param("requests_per_minute", {"requests_per_minute": 0}, id="rpm-zero"),
    pytest.param("requests_per_minute", {"requests_per_minute": -5}, id="rpm-negative"),
    pytest.param("requests_per_minute", {"requests_per_minute": "fifty"}, id="rpm-text"),
    pytest.param("request_timeout", {"request_timeout": 0}, id="timeout-zero"),
    pytest.param("max_rate_limit_wait", {"max_rate_limit_wait": -1}, id="max-wait-negative"),
    pytest.param("max_url_length", {"max_url_length": 100}, id="url-length-small"),
]


@pytest.mark.parametrize(("setting", "overrides"), BAD_SETTINGS)
def test_bad_setting_one_line(tmp_path: Path, setting: str, overrides: dict[str, t.Any]) -> None:
    completed = run_console("--config", config_file(tmp_path, base_config(**overrides)))
    assert_one_line_error(completed, setting)
    assert completed.stdout == ""


@pytest.mark.parametrize(("setting", "overrides"), BAD_SETTINGS)
def test_bad_setting_discover(tmp_path: Path, setting: str, overrides: dict[str, t.Any]) -> None:
    # Discovery needs no credentials and sends no request, so it may print the catalog.
    # If it checks a setting, it must fail as cleanly as a sync does.
    completed = run_console(
        "--config", config_file(tmp_path, base_config(**overrides)), "--discover"
    )
    assert "Traceback" not in completed.stderr, completed.stderr
    assert SECRET not in completed.stderr
    assert SECRET not in completed.stdout
    if completed.returncode == 0:
        catalog = json.loads(completed.stdout)
        assert {entry["tap_stream_id"] for entry in catalog["streams"]} == STREAM_NAMES
    else:
        assert_one_line_error(completed, setting)


def test_max_url_length_message_gives_minimum(tmp_path: Path) -> None:
    completed = run_console("--config", config_file(tmp_path, base_config(max_url_length=100)))
    line = assert_one_line_error(completed, "max_url_length")
    # The longest completion URL without emails, plus room for one 64-byte email.
    needed = len(UNUSED_API_URL) + len("/completion/assessments?for_users=&from=0000000000") + 64
    assert f"at least {needed}" in line


def test_missing_secret_from_env(tmp_path: Path) -> None:
    completed = run_console(
        "--config",
        "ENV",
        env={"TAP_CONTINU_CLIENT_ID": "cfg-test-client", "TAP_CONTINU_API_URL": UNUSED_API_URL},
    )
    line = assert_one_line_error(completed, "client_secret")
    assert "TAP_CONTINU_CLIENT_SECRET" in line


def test_wrong_credentials_one_line(start_simulator, tmp_path: Path) -> None:
    simulator = start_simulator(users=20)
    config = tap_config(simulator, client_secret=SECRET)
    completed = run_console("--config", config_file(tmp_path, config))
    line = assert_one_line_error(completed, "client_secret")
    assert "client_id" in line
    assert "401" in line
    assert simulator.stats["token_requests"] == 1
    assert simulator.stats["requests_total"] == 1
    assert "RECORD" not in completed.stdout


def test_wrong_credentials_discover(start_simulator, tmp_path: Path) -> None:
    simulator = start_simulator(users=20)
    config = tap_config(simulator, client_secret=SECRET)
    completed = run_console("--config", config_file(tmp_path, config), "--discover")
    assert completed.returncode == 0, completed.stderr
    catalog = json.loads(completed.stdout)
    assert {entry["tap_stream_id"] for entry in catalog["streams"]} == STREAM_NAMES
    assert simulator.stats["requests_total"] == 0
    assert SECRET not in completed.stderr


@pytest.mark.parametrize(
    "setting", ["requests_per_minute", "request_timeout", "max_rate_limit_wait"]
)
def test_fractional_setting_one_line(tmp_path: Path, setting: str) -> None:
    # JSON config files are parsed with decimal floats, so 2.5 arrives as Decimal("2.5").
    completed = run_console("--config", config_file(tmp_path, base_config(**{setting: 2.5})))
    line = assert_one_line_error(completed, setting)
    assert "whole number" in line


def test_config_not_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"client_id": "cfg-test-client", "client_secret": "' + SECRET + '",\n')
    completed = run_console("--config", str(path))
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr, completed.stderr
    errors = error_lines(completed.stderr)
    assert len(errors) == 1, completed.stderr
    assert str(path) in errors[0]
    assert SECRET not in completed.stderr


def test_config_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "no-such-config.json"
    completed = run_console("--config", str(path))
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr, completed.stderr
    errors = error_lines(completed.stderr)
    assert len(errors) == 1, completed.stderr
    assert str(path) in errors[0]


def test_number_settings_from_env(start_simulator) -> None:
    simulator = start_simulator(users=40)
    completed = run_console(
        "--config",
        "ENV",
        env={
            "TAP_CONTINU_CLIENT_ID": simulator.config.client_id,
            "TAP_CONTINU_CLIENT_SECRET": simulator.config.client_secret,
            "TAP_CONTINU_API_URL": simulator.api_url,
            "TAP_CONTINU_REQUESTS_PER_MINUTE": "100000",
            "TAP_CONTINU_REQUEST_TIMEOUT": "30",
            "TAP_CONTINU_MAX_RATE_LIMIT_WAIT": "600",
            "TAP_CONTINU_MAX_URL_LENGTH": "5000",
        },
    )
    assert completed.returncode == 0, completed.stderr
    records = [line for line in completed.stdout.splitlines() if '"type":"RECORD"' in line]
    assert len(records) >= 40


def test_invalid_integer_from_env() -> None:
    completed = run_console(
        "--config",
        "ENV",
        env={
            "TAP_CONTINU_CLIENT_ID": "id",
            "TAP_CONTINU_CLIENT_SECRET": SECRET,
            "TAP_CONTINU_API_URL": UNUSED_API_URL,
            "TAP_CONTINU_MAX_URL_LENGTH": "abc",
        },
    )
    assert_one_line_error(completed, "TAP_CONTINU_")


@pytest.mark.parametrize(
    ("name", "content"),
    [("array", "[1, 2]"), ("string", '"config"'), ("nan", '{"request_timeout": NaN}')],
)
def test_config_file_not_an_object(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(content)
    completed = run_console("--config", str(path))
    assert_one_line_error(completed, str(path))


def test_config_path_is_directory(tmp_path: Path) -> None:
    completed = run_console("--config", str(tmp_path))
    assert_one_line_error(completed, str(tmp_path))


def test_invalid_stream_map_one_line(start_simulator, tmp_path: Path) -> None:
    simulator = start_simulator(users=5)
    config = tap_config(simulator, stream_maps={"users": {"email": "md5("}})
    config["client_secret"] = simulator.config.client_secret
    completed = run_console("--config", config_file(tmp_path, config))
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    errors = error_lines(completed.stderr)
    assert len(errors) == 1, completed.stderr
    assert "stream_maps" in errors[0]


def test_user_agent_line_break(tmp_path: Path) -> None:
    completed = run_console("--config", config_file(tmp_path, base_config(user_agent="a\nb")))
    assert_one_line_error(completed, "user_agent")


def test_users_endpoint_not_found_one_line(start_simulator, tmp_path: Path) -> None:
    simulator = start_simulator(users=5)
    config = tap_config(
        simulator,
        api_url=simulator.base_url + "/v9",
        auth_url=simulator.auth_url,
    )
    completed = run_console("--config", config_file(tmp_path, config))
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    errors = error_lines(completed.stderr)
    assert len(errors) == 1, completed.stderr
    assert "GET /data/users returned 404" in errors[0]
    assert "api_url" in errors[0]
