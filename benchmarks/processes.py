"""Processes that the benchmarks start: the simulator, the tap and the baseline.

Every process listens on or talks to 127.0.0.1 only, and is stopped by its pid when the
block that started it ends. Child processes get an environment without proxy variables,
so that no HTTP client routes a request to another host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

HOST = "127.0.0.1"
REPOSITORY = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TAP_COMMAND = (str(Path(PYTHON).with_name("tap-continu")),)
BASELINE_COMMAND = (PYTHON, "-m", "benchmarks.baseline")

SIMULATOR_START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 10.0
RSS_POLL_SECONDS = 0.02
ADMIN_TIMEOUT_SECONDS = 30.0
PIPE_CHUNK_BYTES = 1 << 20

# The tap and the baseline write compact JSON, so every RECORD line starts with this. The
# benchmarks compare the count with the simulator's, so a change of format fails loudly.
RECORD_PREFIX = b'{"type":"RECORD"'

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")


def child_environment() -> dict[str, str]:
    """Return the environment for child processes: no proxies, buffered stdout.

    PYTHONUNBUFFERED is removed so that the tap and the baseline both write through
    Python's default buffered stdout, as they would in a pipeline.
    """
    environment = {
        name: value
        for name, value in os.environ.items()
        if name.lower() not in PROXY_VARIABLES and name != "PYTHONUNBUFFERED"
    }
    environment["NO_PROXY"] = HOST
    environment["no_proxy"] = HOST
    # `benchmarks` and `tests.simulator` are imported from this checkout.
    environment["PYTHONPATH"] = str(REPOSITORY)
    return environment


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Stop one child process by its pid: SIGTERM, then SIGKILL if it does not exit."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


class AdminClient:
    """Client of the simulator's admin endpoints (`/_sim/...`), which are never counted."""

    def __init__(self, port: int) -> None:
        self.port = port

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def post(self, path: str) -> Any:
        return self._request("POST", path)

    def _request(self, method: str, path: str) -> Any:
        # http.client ignores proxy variables, unlike urllib and requests.
        connection = http.client.HTTPConnection(HOST, self.port, timeout=ADMIN_TIMEOUT_SECONDS)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != http.client.OK:
            msg = f"simulator admin {method} {path} answered {response.status}: {body[:200]!r}"
            raise RuntimeError(msg)
        return json.loads(body)

    def stats(self) -> dict[str, Any]:
        return dict(self.get("/_sim/stats"))

    def expected(self) -> dict[str, int]:
        return dict(self.get("/_sim/expected"))

    def reset_stats(self) -> None:
        self.post("/_sim/reset-stats")


@dataclasses.dataclass(frozen=True)
class RunningSimulator:
    """A simulator process and the addresses it serves."""

    process: subprocess.Popen[bytes]
    base_url: str
    users: int
    seed: int

    @property
    def api_url(self) -> str:
        return self.base_url + "/v3"

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def admin(self) -> AdminClient:
        return AdminClient(self.port)


@contextlib.contextmanager
def simulator_process(
    work_directory: Path,
    *,
    users: int,
    seed: int = 1,
    rate_limit: int = 0,
    window_seconds: float = 60.0,
) -> Iterator[RunningSimulator]:
    """Run `python -m tests.simulator` on 127.0.0.1 for the duration of the block.

    Args:
        work_directory: folder for the URL file and the simulator's log.
        users: number of users in the dataset.
        seed: dataset seed.
        rate_limit: requests per window; 0 disables the limit.
        window_seconds: length of the rolling rate-limit window.
    """
    url_file = work_directory / f"simulator-{users}-{time.monotonic_ns()}.url"
    log_path = url_file.with_suffix(".log")
    command = [
        PYTHON,
        "-m",
        "tests.simulator",
        "--users",
        str(users),
        "--seed",
        str(seed),
        "--url-file",
        str(url_file),
        "--rate-limit",
        str(rate_limit),
        "--window-seconds",
        str(window_seconds),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPOSITORY,
            env=child_environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base_url = _wait_for_url(process, url_file, log_path)
            yield RunningSimulator(process, base_url, users, seed)
        finally:
            stop_process(process)


def _wait_for_url(process: subprocess.Popen[bytes], url_file: Path, log_path: Path) -> str:
    deadline = time.monotonic() + SIMULATOR_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if url_file.exists():
            return url_file.read_text(encoding="utf-8").strip()
        if process.poll() is not None:
            log = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            msg = f"the simulator exited with status {process.returncode} before listening:\n{log}"
            raise RuntimeError(msg)
        time.sleep(0.05)
    msg = f"the simulator did not write {url_file} within {SIMULATOR_START_TIMEOUT_SECONDS:.0f} s"
    raise TimeoutError(msg)


@dataclasses.dataclass(frozen=True)
class ProcessRun:
    """Measurements of one tap or baseline process.

    Attributes:
        wall_seconds: from start to exit, as seen by the parent.
        cpu_seconds: user plus system CPU time of the process.
        peak_rss_kib: the process's VmHWM, read from /proc while it runs.
        records: RECORD lines written to stdout.
        lines: all lines written to stdout.
    """

    wall_seconds: float
    cpu_seconds: float
    peak_rss_kib: int
    records: int
    lines: int


def write_config(path: Path, api_url: str, **settings: Any) -> Path:
    """Write a tap config for the simulator's credentials and return its path."""
    config = {"client_id": "sim-client", "client_secret": "sim-secret", "api_url": api_url}
    config.update(settings)
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def run_singer_process(
    command: Sequence[str],
    config_path: Path,
    log_path: Path,
    *,
    on_line: Callable[[bytes], None] | None = None,
) -> ProcessRun:
    """Run a tap-like command with `--config`, count its output and measure it.

    Stdout goes into a pipe that this process reads and counts, so nothing is stored.
    Stderr goes to `log_path`. When `on_line` is given, it is called with every complete
    stdout line (bytes), for output checks; timed runs leave it out.

    Raises:
        RuntimeError: If the process exits with a non-zero status.
    """
    full_command = [*command, "--config", str(config_path)]
    peak = [0]
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            full_command,
            cwd=REPOSITORY,
            env=child_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            watcher = threading.Thread(target=_watch_peak_rss, args=(process.pid, peak))
            watcher.start()
            records, lines = _count_output(process.stdout, on_line)
            # Wait for the exit but leave the process a zombie until the watcher has seen
            # it, so that its pid cannot be reused by another process in between.
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
            wall = time.perf_counter() - started
            watcher.join()
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        finally:
            stop_process(process)
    if process.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        msg = f"{' '.join(full_command)} exited with status {process.returncode}:\n{tail}"
        raise RuntimeError(msg)
    return ProcessRun(
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_kib=peak[0],
        records=records,
        lines=lines,
    )


def _count_output(
    stream: IO[bytes] | None, on_line: Callable[[bytes], None] | None
) -> tuple[int, int]:
    """Return the RECORD lines and all lines read from `stream` until it closes."""
    if stream is None:
        return 0, 0
    records = 0
    lines = 0
    pending = b""
    while chunk := stream.read(PIPE_CHUNK_BYTES):
        # `pending` is the unfinished last line of the previous chunk.
        complete, newline, pending = (pending + chunk).rpartition(b"\n")
        if not newline:
            continue
        lines += complete.count(b"\n") + 1
        records += complete.startswith(RECORD_PREFIX) + complete.count(b"\n" + RECORD_PREFIX)
        if on_line is not None:
            for line in complete.split(b"\n"):
                on_line(line)
    if pending:
        lines += 1
        records += pending.startswith(RECORD_PREFIX)
        if on_line is not None:
            on_line(pending)
    return records, lines


def _watch_peak_rss(pid: int, peak: list[int]) -> None:
    """Store the process's VmHWM in `peak[0]` until /proc no longer reports it.

    `ru_maxrss` from wait4 is not used: at exec, Linux folds the replaced address space's
    peak into it, and a child that subprocess starts with vfork replaces the parent's. It
    reported 56 MB for a baseline whose VmHWM was 36 MB.
    """
    status_path = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status_path.read_text(encoding="ascii", errors="replace")
        except OSError:
            return
        value = None
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                value = int(line.split()[1])
                break
        if value is None:  # a zombie: its memory is gone
            return
        peak[0] = max(peak[0], value)
        time.sleep(RSS_POLL_SECONDS)
