"""The measurements behind each figure of the benchmark page.

Each function starts its own simulator (and proxy), runs the tap and the baseline as
processes, and returns plain results. `benchmarks.run` calls them and renders the page.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.minimum import RequestBounds, dataset_emails, request_bounds
from benchmarks.processes import (
    BASELINE_COMMAND,
    PYTHON,
    REPOSITORY,
    TAP_COMMAND,
    ProcessRun,
    RunningSimulator,
    child_environment,
    run_singer_process,
    simulator_process,
    write_config,
)
from benchmarks.replay import replay_proxy

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

# Pacing off: the simulator's limit is off too, so requests go as fast as the tap sends them.
UNLIMITED_REQUESTS_PER_MINUTE = 1_000_000
MAX_URL_LENGTH = 6000
SEED = 1
STATS_POLL_SECONDS = 0.05


def log(message: str) -> None:
    """Print a progress line to stderr, so that a long run shows where it is."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# Machine


@dataclasses.dataclass(frozen=True)
class Machine:
    cpu_model: str
    cores: int
    memory_gib: float
    python: str
    system: str
    singer_sdk: str
    commit: str
    load_before: tuple[float, float, float]


def describe_machine() -> Machine:
    return Machine(
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 0,
        memory_gib=_memory_gib(),
        python=platform.python_version(),
        system=f"{platform.system()} {platform.release()}",
        singer_sdk=metadata.version("singer-sdk"),
        commit=_git_commit(),
        load_before=os.getloadavg(),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _git_commit() -> str:
    """Return the short commit, marked when the tap's code differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--", "tap_continu", "schemas"],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} with uncommitted changes to the tap" if changes else commit


# Requests per full sync


@dataclasses.dataclass(frozen=True)
class RequestCount:
    """One full sync without a rate limit, counted at the simulator."""

    bounds: RequestBounds
    requests: int
    requests_by_path: dict[str, int]
    responses_429: int
    max_request_target_length: int
    base_url_length: int
    records: int
    expected_records: int
    runs: list[ProcessRun]

    @property
    def ratio_to_minimum(self) -> float:
        return self.requests / self.bounds.minimum


def measure_request_count(work: Path, users: int, runs: int) -> RequestCount:
    """Run `runs` full syncs of `users` users; the counts of the first are reported.

    Raises:
        RuntimeError: If a later run sends a different number of requests, or a run
            writes a different number of records than the simulator holds.
    """
    emails = dataset_emails(users, SEED)
    with simulator_process(work, users=users, seed=SEED) as simulator:
        config = write_config(
            work / f"count-{users}.json",
            simulator.api_url,
            requests_per_minute=UNLIMITED_REQUESTS_PER_MINUTE,
            max_url_length=MAX_URL_LENGTH,
        )
        expected = sum(simulator.admin.expected().values())
        process_runs = []
        first_stats: dict[str, Any] | None = None
        for number in range(1, runs + 1):
            log(f"requests: tap, {users:,} users, run {number} of {runs}")
            simulator.admin.reset_stats()
            run = run_singer_process(TAP_COMMAND, config, work / f"count-{users}-{number}.log")
            stats = simulator.admin.stats()
            _check_records(run, expected, f"tap at {users:,} users")
            if first_stats is None:
                first_stats = stats
            elif stats["requests_total"] != first_stats["requests_total"]:
                msg = (
                    f"the tap sent {stats['requests_total']} requests at {users:,} users in "
                    f"run {number}, but {first_stats['requests_total']} in run 1"
                )
                raise RuntimeError(msg)
            process_runs.append(run)
        bounds = request_bounds(emails, users, simulator.api_url, MAX_URL_LENGTH)
    if first_stats is None:
        msg = "runs must be at least 1"
        raise ValueError(msg)
    return RequestCount(
        bounds=bounds,
        requests=first_stats["requests_total"],
        requests_by_path=dict(first_stats["requests_by_path"]),
        responses_429=first_stats["responses_429"],
        max_request_target_length=first_stats["max_request_target_length"],
        base_url_length=len(simulator.base_url),
        records=process_runs[0].records,
        expected_records=expected,
        runs=process_runs,
    )


def _check_records(run: ProcessRun, expected: int, what: str) -> None:
    if run.records != expected:
        msg = f"{what} wrote {run.records} records, but the simulator holds {expected}"
        raise RuntimeError(msg)


# Output check


@dataclasses.dataclass(frozen=True)
class OutputCheck:
    users: int
    tap_records: int
    baseline_records: int
    identical: bool
    differing_records: int


class RecordDigests:
    """Multiset of RECORD messages, each reduced to a hash of its stream and record.

    `time_extracted` is left out, since it differs between any two runs.
    """

    def __init__(self) -> None:
        self.counts: collections.Counter[bytes] = collections.Counter()

    def add_line(self, line: bytes) -> None:
        if not line.startswith(b'{"type":"RECORD"'):
            return
        message = json.loads(line)
        canonical = json.dumps([message["stream"], message["record"]], sort_keys=True)
        self.counts[hashlib.sha256(canonical.encode()).digest()] += 1


def check_same_output(work: Path, users: int) -> OutputCheck:
    """Run the tap and the baseline once each and compare their RECORD messages."""
    with simulator_process(work, users=users, seed=SEED) as simulator:
        config = write_config(
            work / f"check-{users}.json",
            simulator.api_url,
            requests_per_minute=UNLIMITED_REQUESTS_PER_MINUTE,
            max_url_length=MAX_URL_LENGTH,
        )
        tap = RecordDigests()
        baseline = RecordDigests()
        log(f"output check: tap and baseline, {users:,} users")
        tap_run = run_singer_process(
            TAP_COMMAND, config, work / "check-tap.log", on_line=tap.add_line
        )
        baseline_run = run_singer_process(
            BASELINE_COMMAND, config, work / "check-baseline.log", on_line=baseline.add_line
        )
    difference = (tap.counts - baseline.counts) + (baseline.counts - tap.counts)
    return OutputCheck(
        users=users,
        tap_records=tap_run.records,
        baseline_records=baseline_run.records,
        identical=not difference,
        differing_records=sum(difference.values()),
    )


# Records per second


@dataclasses.dataclass(frozen=True)
class RatePair:
    """A tap run and a baseline run made one after the other."""

    tap: ProcessRun
    baseline: ProcessRun
    tap_first: bool

    @property
    def tap_rate(self) -> float:
        return self.tap.records / self.tap.wall_seconds

    @property
    def baseline_rate(self) -> float:
        return self.baseline.records / self.baseline.wall_seconds

    @property
    def ratio(self) -> float:
        return self.tap_rate / self.baseline_rate


@dataclasses.dataclass(frozen=True)
class Throughput:
    """Records-per-second pairs, and the times that explain them.

    Attributes:
        tap_startup_seconds: wall times of `tap-continu --about`, which imports the tap
            and the SDK and exits.
        baseline_startup_seconds: wall times of `python -m benchmarks.baseline --help`.
    """

    users: int
    replay_pairs: list[RatePair]
    live_pairs: list[RatePair]
    simulator_alone_seconds: list[float]
    replay_alone_seconds: list[float]
    requests: int
    response_bytes: int
    tap_startup_seconds: list[float]
    baseline_startup_seconds: list[float]

    @staticmethod
    def pair_ratio(pairs: list[RatePair]) -> float:
        return median([pair.ratio for pair in pairs])


def measure_throughput(work: Path, users: int, runs: int) -> Throughput:
    """Time the tap and the baseline in alternating pairs, directly and via the replay proxy.

    First the simulator is timed alone, after one untimed pass that builds its email index.
    Then the pairs run against it directly, and then through the replay proxy.
    """
    with simulator_process(work, users=users, seed=SEED) as simulator:
        expected = sum(simulator.admin.expected().values())
        log(f"simulator alone: {users:,} users, untimed run that builds its email index")
        serve_result = _time_server(simulator.api_url)
        simulator_alone = []
        for number in range(1, runs + 1):
            log(f"simulator alone: {users:,} users, run {number} of {runs}")
            serve_result = _time_server(simulator.api_url)
            simulator_alone.append(serve_result["seconds"])

        live_config = write_config(
            work / f"live-{users}.json",
            simulator.api_url,
            requests_per_minute=UNLIMITED_REQUESTS_PER_MINUTE,
            max_url_length=MAX_URL_LENGTH,
        )
        live_pairs = _alternate(
            work,
            label="live",
            config=live_config,
            runs=runs,
            expected=expected,
            simulator=simulator,
        )

        with replay_proxy(simulator.base_url) as proxy:
            replay_api_url = proxy.base_url + "/v3"
            replay_config = write_config(
                work / f"replay-{users}.json",
                replay_api_url,
                requests_per_minute=UNLIMITED_REQUESTS_PER_MINUTE,
                max_url_length=MAX_URL_LENGTH,
            )
            log("replay proxy: filling the cache with one baseline run")
            run_singer_process(BASELINE_COMMAND, replay_config, work / "replay-fill.log")
            replay_alone = []
            for number in range(1, runs + 1):
                log(f"replay proxy alone: run {number} of {runs}")
                replay_alone.append(_time_server(replay_api_url)["seconds"])
            proxy.reset_counts()

            def check_no_misses(what: str) -> None:
                if proxy.misses:
                    msg = f"{what} sent {proxy.misses} requests that the baseline did not send"
                    raise RuntimeError(msg)

            replay_pairs = _alternate(
                work,
                label="replay",
                config=replay_config,
                runs=runs,
                expected=expected,
                simulator=None,
                after_run=check_no_misses,
            )
    tap_startup = []
    baseline_startup = []
    for number in range(1, runs + 1):
        log(f"start-up: tap --about and baseline --help, run {number} of {runs}")
        tap_startup.append(_time_command([*TAP_COMMAND, "--about"]))
        baseline_startup.append(_time_command([*BASELINE_COMMAND, "--help"]))
    return Throughput(
        users=users,
        tap_startup_seconds=tap_startup,
        baseline_startup_seconds=baseline_startup,
        replay_pairs=replay_pairs,
        live_pairs=live_pairs,
        simulator_alone_seconds=simulator_alone,
        replay_alone_seconds=replay_alone,
        requests=serve_result["requests"],
        response_bytes=serve_result["response_bytes"],
    )


def _alternate(
    work: Path,
    *,
    label: str,
    config: Path,
    runs: int,
    expected: int,
    simulator: RunningSimulator | None,
    after_run: Callable[[str], None] | None = None,
) -> list[RatePair]:
    """Run `runs` pairs; the tap goes first in odd-numbered pairs, the baseline in even."""
    pairs = []
    reference_requests: int | None = None
    for number in range(1, runs + 1):
        tap_first = number % 2 == 1
        order = ("tap", "baseline") if tap_first else ("baseline", "tap")
        results: dict[str, ProcessRun] = {}
        for who in order:
            log(f"records per second ({label}): {who}, pair {number} of {runs}")
            command = TAP_COMMAND if who == "tap" else BASELINE_COMMAND
            if simulator is not None:
                simulator.admin.reset_stats()
            run = run_singer_process(command, config, work / f"{label}-{who}-{number}.log")
            _check_records(run, expected, f"{who} ({label}, pair {number})")
            if simulator is not None:
                requests = simulator.admin.stats()["requests_total"]
                if reference_requests is None:
                    reference_requests = requests
                elif requests != reference_requests:
                    msg = (
                        f"{who} ({label}, pair {number}) sent {requests} requests, but the "
                        f"first run sent {reference_requests}"
                    )
                    raise RuntimeError(msg)
            if after_run is not None:
                after_run(f"{who} ({label}, pair {number})")
            results[who] = run
        pairs.append(RatePair(results["tap"], results["baseline"], tap_first))
    return pairs


def _time_command(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command,
        cwd=REPOSITORY,
        env=child_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def _time_server(api_url: str) -> dict[str, Any]:
    completed = subprocess.run(
        [PYTHON, "-m", "benchmarks.serve_time", "--api-url", api_url],
        cwd=REPOSITORY,
        env=child_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        msg = f"benchmarks.serve_time failed:\n{completed.stderr[-2000:]}"
        raise RuntimeError(msg)
    return dict(json.loads(completed.stdout))


# Wall time under the rate limit


@dataclasses.dataclass(frozen=True)
class PacedRun:
    """One sync under the simulator's rate limit.

    Attributes:
        span_seconds: from the first to the last API request the simulator counted, as
            seen by polling its stats every 50 ms.
    """

    run: ProcessRun
    span_seconds: float
    requests: int
    responses_429: int
    max_requests_in_window: int


@dataclasses.dataclass(frozen=True)
class RateLimited:
    users: int
    rate_limit: int
    window_seconds: float
    requests_per_minute: int
    runs: list[PacedRun]

    @property
    def requests(self) -> int:
        return self.runs[0].requests

    @property
    def ideal_seconds(self) -> float:
        """Requests divided by the limit's rate."""
        return self.requests / (self.rate_limit / self.window_seconds)

    @property
    def wall_ratio(self) -> float:
        return median([paced.run.wall_seconds for paced in self.runs]) / self.ideal_seconds

    @property
    def span_ratio(self) -> float:
        return median([paced.span_seconds for paced in self.runs]) / self.ideal_seconds


def measure_rate_limited(
    work: Path, users: int, rate_limit: int, window_seconds: float, runs: int
) -> RateLimited:
    """Time full syncs under a rolling-window limit, with the tap paced to match it.

    Each run gets a new simulator, so that no request of the previous run is still in
    the window.
    """
    # The tap's setting is a whole number, rounded down here to stay under the limit.
    requests_per_minute = math.floor(rate_limit * 60 / window_seconds)
    if requests_per_minute < 1:
        msg = f"{rate_limit} requests per {window_seconds:g} s is under 1 request per minute"
        raise ValueError(msg)
    paced_runs = []
    for number in range(1, runs + 1):
        with simulator_process(
            work,
            users=users,
            seed=SEED,
            rate_limit=rate_limit,
            window_seconds=window_seconds,
        ) as simulator:
            expected = sum(simulator.admin.expected().values())
            config = write_config(
                work / f"paced-{users}.json",
                simulator.api_url,
                requests_per_minute=requests_per_minute,
                max_url_length=MAX_URL_LENGTH,
            )
            log(
                f"rate limit {rate_limit} per {window_seconds:g} s: tap, {users:,} users, "
                f"run {number} of {runs}"
            )
            poller = _RequestSpan(simulator)
            poller.start()
            try:
                run = run_singer_process(TAP_COMMAND, config, work / f"paced-{number}.log")
            finally:
                poller.stop()
            _check_records(run, expected, f"tap under the rate limit (run {number})")
            stats = simulator.admin.stats()
            paced_runs.append(
                PacedRun(
                    run=run,
                    span_seconds=poller.span_seconds,
                    requests=stats["requests_total"],
                    responses_429=stats["responses_429"],
                    max_requests_in_window=stats["max_requests_in_window"],
                )
            )
    return RateLimited(users, rate_limit, window_seconds, requests_per_minute, paced_runs)


class _RequestSpan:
    """Poller of the simulator's request count that notes when it first and last changed."""

    def __init__(self, simulator: RunningSimulator) -> None:
        self.admin = simulator.admin
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="request-span")

    @property
    def span_seconds(self) -> float:
        if self.first_at is None or self.last_at is None:
            return 0.0
        return self.last_at - self.first_at

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._check()

    def _poll(self) -> None:
        while not self._stop.wait(STATS_POLL_SECONDS):
            self._check()

    def _check(self) -> None:
        total = self.admin.stats()["requests_total"]
        if total > self._seen:
            now = time.perf_counter()
            if self.first_at is None:
                self.first_at = now
            self.last_at = now
            self._seen = total
