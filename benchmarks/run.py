"""Run the tap's benchmarks against the simulator and write docs/benchmarks.md.

``make bench`` runs ``.venv/bin/python -m benchmarks.run``: request counts at 1,000, 10,000
and 100,000 users, wall time under a scaled-down rate limit, records per second against
``benchmarks/baseline.py``, and peak memory at 10,000 and 100,000 users. ``--quick`` runs a
subset in a few minutes and prints the page instead of writing it. Every server it starts
listens on 127.0.0.1 and is stopped before it returns.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import (
    RequestCount,
    Throughput,
    check_same_output,
    describe_machine,
    log,
    measure_rate_limited,
    measure_request_count,
    measure_throughput,
)
from benchmarks.processes import REPOSITORY
from benchmarks.report import Results, render

DEFAULT_OUTPUT = REPOSITORY / "docs" / "benchmarks.md"


@dataclasses.dataclass(frozen=True)
class Plan:
    """The measurements of one invocation and their sizes.

    Attributes:
        count_sizes: user counts whose full-sync requests are counted, once each below
            `large_users`, since the counts are deterministic.
        runs: repetitions of every timed measurement.
        large_runs: repetitions of the count (and peak RSS) at `large_users` and above.
        large_users: the size from which counts run `large_runs` times.
        memory_sizes: the two sizes whose peak RSS is compared, smaller first.
        throughput_users: users in the records-per-second runs.
        check_users: users in the tap-against-baseline output check.
        paced_users: users in the rate-limited runs.
        rate_limit: requests per window in the rate-limited runs.
        window_seconds: the simulator's rolling window in the rate-limited runs.
    """

    count_sizes: tuple[int, ...]
    runs: int
    large_runs: int
    large_users: int
    memory_sizes: tuple[int, int] | None
    throughput_users: int
    check_users: int
    paced_users: int
    rate_limit: int
    window_seconds: float

    def runs_for(self, users: int) -> int:
        return self.large_runs if users >= self.large_users else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=(
            "Benchmark tap-continu against the simulator on 127.0.0.1 and write docs/benchmarks.md."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            "run 1,000 and 10,000 users only, one run per timing, and print the page "
            "instead of writing it (unless --output is given)"
        ),
    )
    parser.add_argument(
        "--runs",
        type=int,
        help="repetitions of each timed figure (default 5, or 1 with --quick)",
    )
    parser.add_argument(
        "--large-runs",
        type=int,
        default=1,
        help="full syncs of 100,000 users, for the request count and peak RSS (default 1)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"file to write the page to (default {DEFAULT_OUTPUT.relative_to(REPOSITORY)})",
    )
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    if args.large_runs < 1:
        parser.error(f"--large-runs must be at least 1, got {args.large_runs}")
    return args


def make_plan(args: argparse.Namespace) -> Plan:
    runs = args.runs or (1 if args.quick else 5)
    if args.quick:
        return Plan(
            count_sizes=(1_000, 10_000),
            runs=runs,
            large_runs=args.large_runs,
            large_users=100_000,
            memory_sizes=None,
            throughput_users=10_000,
            check_users=1_000,
            paced_users=1_000,
            rate_limit=25,
            window_seconds=20.0,
        )
    return Plan(
        count_sizes=(1_000, 10_000, 100_000),
        runs=runs,
        large_runs=args.large_runs,
        large_users=100_000,
        memory_sizes=(10_000, 100_000),
        throughput_users=10_000,
        check_users=1_000,
        paced_users=2_000,
        rate_limit=25,
        window_seconds=20.0,
    )


def run_benchmarks(plan: Plan, command: str) -> Results:
    started = dt.datetime.now(dt.timezone.utc)
    clock_started = time.monotonic()
    machine = describe_machine()
    with tempfile.TemporaryDirectory(prefix="tap-continu-bench-") as directory:
        work = Path(directory)
        counts = [
            measure_request_count(work, users, plan.runs_for(users)) for users in plan.count_sizes
        ]
        output_check = check_same_output(work, plan.check_users)
        throughput = measure_throughput(work, plan.throughput_users, plan.runs)
        rate_limited = measure_rate_limited(
            work, plan.paced_users, plan.rate_limit, plan.window_seconds, plan.runs
        )
    memory_small, memory_large, extra = _memory_runs(plan, counts, throughput)
    return Results(
        machine=machine,
        load_after=os.getloadavg(),
        started=started,
        elapsed_seconds=time.monotonic() - clock_started,
        command=command,
        runs=plan.runs,
        counts=counts,
        output_check=output_check,
        throughput=throughput,
        rate_limited=rate_limited,
        memory_small=memory_small,
        memory_large=memory_large,
        memory_small_extra_kib=extra,
    )


def _memory_runs(
    plan: Plan, counts: list[RequestCount], throughput: Throughput
) -> tuple[RequestCount | None, RequestCount | None, list[int]]:
    """Pick the runs whose peak RSS is compared.

    The tap runs directly against the simulator in the records-per-second pairs use the
    same settings as the request-count run at that size, so their peak RSS counts too.
    """
    if plan.memory_sizes is None:
        return None, None, []
    by_users = {count.bounds.users: count for count in counts}
    small = by_users.get(plan.memory_sizes[0])
    large = by_users.get(plan.memory_sizes[1])
    extra: list[int] = []
    if throughput.users == plan.memory_sizes[0]:
        extra = [pair.tap.peak_rss_kib for pair in throughput.live_pairs]
    return small, large, extra


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    options = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m benchmarks.run", *options])
    results = run_benchmarks(plan, command)
    page = render(results)
    output = args.output or (None if args.quick else DEFAULT_OUTPUT)
    if output is None:
        sys.stdout.write(page)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
        log(f"wrote {output}")
    log(f"done in {results.elapsed_seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
