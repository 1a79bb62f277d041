"""Rendering of the benchmark results as the Markdown page docs/benchmarks.md."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from benchmarks.measure import MAX_URL_LENGTH, median

if TYPE_CHECKING:
    import datetime as dt

    from benchmarks.measure import (
        Machine,
        OutputCheck,
        RateLimited,
        RatePair,
        RequestCount,
        Throughput,
    )

REQUEST_RATIO_TARGET = 1.05
WALL_RATIO_TARGET = 1.05
RATE_RATIO_TARGET = 0.5
MEMORY_RATIO_TARGET = 1.2
API_SECONDS_PER_REQUEST = 60 / 50  # the API's limit: 50 requests per minute

# Profile findings. The page is regenerated on every run, so they are kept here.
PROFILE_NOTES = """\
At commit d34a18a the tap missed the records-per-second target: one pair through the
replay proxy measured 0.33 of the baseline's rate. A pyinstrument 5.1.3 profile of a
10,000-user sync against the simulator (`pyinstrument .venv/bin/tap-continu --config
CONFIG.json`) found three costs per record that the baseline does not have. The shares
are of the profiled run.

- The SDK conformed every record to the schema (`conform_record_data_types`, 18%), after
  the tap's `RecordNormalizer` had already conformed it.
- `RecordNormalizer` worked out each field's schema types again for every value (19%).
- The SDK's writer encoded each message with simplejson and a Python `default` hook and
  flushed stdout after every message (`SimpleSingerWriter.write_message`, 11%).

The tap now turns the SDK's pass off (`TYPE_CONFORMANCE_LEVEL = NONE`) and drops
undeclared fields itself, compiles each schema into one converter per field, and writes
with msgspec, flushing stdout only after messages other than RECORD. What remains is
mostly HTTP, date-time parsing and formatting, the SDK's own work per record
(`pop_deselected_record_properties`, message objects, counters) and the start-up above.
"""


@dataclasses.dataclass(frozen=True)
class Results:
    """Everything one run of `benchmarks.run` measured."""

    machine: Machine
    load_after: tuple[float, float, float]
    started: dt.datetime
    elapsed_seconds: float
    command: str
    runs: int
    counts: list[RequestCount]
    output_check: OutputCheck | None
    throughput: Throughput | None
    rate_limited: RateLimited | None
    memory_small: RequestCount | None
    memory_large: RequestCount | None
    memory_small_extra_kib: list[int]


def verdict(met: bool) -> str:  # noqa: FBT001
    return "met" if met else "**missed**"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def memory_samples(results: Results) -> tuple[list[int], list[int]]:
    small = results.memory_small
    large = results.memory_large
    small_samples = [run.peak_rss_kib for run in small.runs] if small else []
    small_samples += results.memory_small_extra_kib
    large_samples = [run.peak_rss_kib for run in large.runs] if large else []
    return small_samples, large_samples


def render(results: Results) -> str:
    sections = [
        _header(results),
        _summary(results),
        _machine(results),
        _requests(results),
        _rate_limited(results),
        _throughput(results),
        _simulator(results),
        _memory(results),
        _commands(results),
        "## Profile notes\n\n" + PROFILE_NOTES,
    ]
    return "\n".join(section for section in sections if section)


def _header(results: Results) -> str:
    started = results.started.strftime("%Y-%m-%d %H:%M UTC")
    command = f"`{results.command}`"
    if results.command == "python -m benchmarks.run":
        command = f"`make bench` ({command})"
    return (
        "# Benchmarks\n\n"
        f"Written by {command} on {started} at commit {results.machine.commit}, "
        f"in {duration(results.elapsed_seconds)}. Rerun the command to update this page; "
        "do not edit it by hand.\n\n"
        "Every figure comes from tap processes run against the simulator "
        "(`tests/simulator`) on 127.0.0.1 during this run. "
        + (
            f"Timings are medians of {results.runs} runs.\n"
            if results.runs > 1
            else "Each timing comes from a single run.\n"
        )
    )


def _summary(results: Results) -> str:
    rows = ["| Figure | Measured | Target | Result |", "|---|---|---|---|"]
    for count in results.counts:
        bounds = count.bounds
        rows.append(
            f"| Requests per full sync, {bounds.users:,} users | {count.requests:,} requests, "
            f"{count.ratio_to_minimum:.3f} times the minimum of {bounds.minimum:,} | "
            f"≤ {REQUEST_RATIO_TARGET} times the minimum | "
            f"{verdict(count.ratio_to_minimum <= REQUEST_RATIO_TARGET)} |"
        )
    paced = results.rate_limited
    if paced is not None:
        errors = sum(run.responses_429 for run in paced.runs)
        wall = median([run.run.wall_seconds for run in paced.runs])
        met = paced.wall_ratio <= WALL_RATIO_TARGET and errors == 0
        rows.append(
            f"| Wall time under the rate limit, {paced.users:,} users | {wall:.1f} s, "
            f"{paced.wall_ratio:.3f} times requests / limit; {errors} responses 429 | "
            f"≤ {WALL_RATIO_TARGET} times, no 429 | {verdict(met)} |"
        )
    throughput = results.throughput
    if throughput is not None:
        pairs = throughput.replay_pairs
        ratio = throughput.pair_ratio(pairs)
        rows.append(
            f"| Records per second without a rate limit, {throughput.users:,} users | "
            f"tap {median([p.tap_rate for p in pairs]):,.0f}/s, baseline "
            f"{median([p.baseline_rate for p in pairs]):,.0f}/s; median ratio of the pairs "
            f"{ratio:.2f} | ≥ {RATE_RATIO_TARGET} of the baseline's rate "
            f"| {verdict(ratio >= RATE_RATIO_TARGET)} |"
        )
    small, large = memory_samples(results)
    if small and large and results.memory_small and results.memory_large:
        ratio = median(large) / median(small)
        rows.append(
            f"| Peak RSS, {results.memory_large.bounds.users:,} against "
            f"{results.memory_small.bounds.users:,} users | {mib(median(large))} against "
            f"{mib(median(small))}: {ratio:.2f} times | ≤ {MEMORY_RATIO_TARGET} times | "
            f"{verdict(ratio <= MEMORY_RATIO_TARGET)} |"
        )
    return "## Summary\n\n" + "\n".join(rows) + "\n"


def _machine(results: Results) -> str:
    machine = results.machine
    before = ", ".join(f"{value:.2f}" for value in machine.load_before)
    after = ", ".join(f"{value:.2f}" for value in results.load_after)
    return (
        "## Machine\n\n"
        "| CPU | Cores | RAM | Python | OS | Singer SDK |\n"
        "|---|---|---|---|---|---|\n"
        f"| {machine.cpu_model} | {machine.cores} | {machine.memory_gib:.1f} GiB | "
        f"{machine.python} | {machine.system} | {machine.singer_sdk} |\n\n"
        f"Load average (1, 5 and 15 minutes) before the run: {before}; after: {after}. "
        "Other processes change the timings, so the tap and the baseline alternate, both "
        "seeing the same load, and each timing is a median.\n"
    )


def _requests(results: Results) -> str:
    if not results.counts:
        return ""
    rows = [
        (
            "| Users | Tap | Token | Users pages | Completion requests | Minimum "
            "| Tap / minimum | In user order | One request per user | At 50/min: tap "
            "| At 50/min: per user |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    longest = 0
    for count in results.counts:
        bounds = count.bounds
        by_path = count.requests_by_path
        token = sum(n for path, n in by_path.items() if path.endswith("/oauth2/access-token"))
        pages = sum(n for path, n in by_path.items() if path.endswith("/data/users"))
        completions = sum(n for path, n in by_path.items() if "/completion/" in path)
        longest = max(longest, count.max_request_target_length + count.base_url_length)
        rows.append(
            f"| {bounds.users:,} | {count.requests:,} | {token} | {pages:,} | {completions:,} "
            f"| {bounds.minimum:,} | {count.ratio_to_minimum:.3f} | {bounds.in_order:,} "
            f"| {bounds.per_user:,} | {duration(count.requests * API_SECONDS_PER_REQUEST)} "
            f"| {duration(bounds.per_user * API_SECONDS_PER_REQUEST)} |"
        )
    runs = ", ".join(
        f"{len(count.runs)} {'run' if len(count.runs) == 1 else 'runs'} at "
        f"{count.bounds.users:,} users"
        for count in results.counts
    )
    return (
        "## Requests per full sync\n\n"
        "Counted by the simulator (`GET /_sim/stats`, `requests_total`) for a full sync "
        "with all five streams, no rate limit and the default `max_url_length` of "
        f"{MAX_URL_LENGTH} bytes. Counts are deterministic: {runs}, and repeated runs must "
        "send the same number.\n\n"
        "- *Minimum*: 1 token request, floor(N / 500) + 1 users pages, and a lower bound "
        "of batches for each of the 4 completion endpoints. That bound is "
        "ceil((encoded bytes of all emails + number of emails) / (bytes left for "
        "`for_users` in that endpoint's URL + 1)), from the simulator's emails encoded as "
        "the tap encodes them. No grouping of the emails needs fewer requests.\n"
        "- *In user order*: the same, with the emails packed greedily in the order the "
        "users arrive, which is the fewest for a tap that streams users.\n"
        "- *One request per user*: the SDK's usual child-stream pattern, 4N + pages + 1.\n"
        "- *At 50/min*: the time those requests need at the API's 50 requests per minute.\n\n"
        + "\n".join(rows)
        + f"\n\nThe longest request URL was {longest:,} bytes.\n"
    )


def _rate_limited(results: Results) -> str:
    paced = results.rate_limited
    if paced is None:
        return ""
    rows = [
        (
            "| Run | Wall time | First to last request | Requests | 429 responses "
            "| Most requests in one window |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for number, run in enumerate(paced.runs, start=1):
        rows.append(
            f"| {number} | {run.run.wall_seconds:.2f} s | {run.span_seconds:.2f} s "
            f"| {run.requests} | {run.responses_429} | {run.max_requests_in_window} |"
        )
    wall = median([run.run.wall_seconds for run in paced.runs])
    span = median([run.span_seconds for run in paced.runs])
    return (
        "## Wall time under the rate limit\n\n"
        f"The simulator allows {paced.rate_limit} requests per rolling "
        f"{paced.window_seconds:g}-second window, a shorter window than the API's minute so "
        f"that a run of {paced.users:,} users takes under a minute. The tap's "
        f"`requests_per_minute` is {paced.requests_per_minute} ({paced.rate_limit} * 60 / "
        f"{paced.window_seconds:g}, rounded down). Each run starts a new simulator, so no "
        "request of an earlier run is still in the window. Wall time is the tap process "
        "from start to exit, start-up included. The span from the first to the last "
        "request comes from polling the simulator's stats every 50 ms.\n\n"
        + "\n".join(rows)
        + "\n\n"
        f"Requests divided by the limit: {paced.requests} / ({paced.rate_limit} / "
        f"{paced.window_seconds:g} s) = {paced.ideal_seconds:.2f} s. Median wall time "
        f"{wall:.2f} s is {paced.wall_ratio:.3f} times that; the median span {span:.2f} s is "
        f"{paced.span_ratio:.3f} times. The tap spaces requests "
        "60 / requests_per_minute seconds apart plus 2% slack, so n requests take at "
        "least (n - 1) intervals; the rest is start-up and the last response.\n"
    )


def _pair_rows(pairs: list[RatePair]) -> list[str]:
    rows = [
        (
            "| Pair | First | Tap wall | Tap records/s | Tap CPU | Baseline wall "
            "| Baseline records/s | Baseline CPU | Tap / baseline |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for number, pair in enumerate(pairs, start=1):
        first = "tap" if pair.tap_first else "baseline"
        rows.append(
            f"| {number} | {first} | {pair.tap.wall_seconds:.2f} s | {pair.tap_rate:,.0f} "
            f"| {pair.tap.cpu_seconds:.2f} s | {pair.baseline.wall_seconds:.2f} s "
            f"| {pair.baseline_rate:,.0f} | {pair.baseline.cpu_seconds:.2f} s "
            f"| {pair.ratio:.2f} |"
        )
    tap_cpu = median([pair.tap.cpu_seconds for pair in pairs])
    baseline_cpu = median([pair.baseline.cpu_seconds for pair in pairs])
    rows.append(
        f"| median | | {median([p.tap.wall_seconds for p in pairs]):.2f} s "
        f"| {median([p.tap_rate for p in pairs]):,.0f} | {tap_cpu:.2f} s "
        f"| {median([p.baseline.wall_seconds for p in pairs]):.2f} s "
        f"| {median([p.baseline_rate for p in pairs]):,.0f} | {baseline_cpu:.2f} s "
        f"| {median([p.ratio for p in pairs]):.2f} |"
    )
    return rows


def _throughput(results: Results) -> str:
    throughput = results.throughput
    if throughput is None:
        return ""
    records = throughput.replay_pairs[0].tap.records
    check = results.output_check
    if check is None:
        check_text = "The output check did not run."
    elif check.identical:
        check_text = (
            f"Output check: at {check.users:,} users the tap and the baseline wrote the same "
            f"{check.tap_records:,} RECORD messages (compared as stream and record, without "
            "`time_extracted`)."
        )
    else:
        check_text = (
            f"**Output check failed**: at {check.users:,} users, {check.differing_records} "
            f"RECORD messages differ between the tap ({check.tap_records:,}) and the "
            f"baseline ({check.baseline_records:,})."
        )
    return (
        "## Records per second\n\n"
        f"A full sync of {throughput.users:,} users ({records:,} records) without a rate "
        "limit, by the tap with `requests_per_minute` set to 1,000,000 and by "
        "`benchmarks/baseline.py`. The baseline is a plain `requests` script that sends "
        "the same requests (token, users pages, the same email batches) and writes the same "
        "RECORD lines, with fields outside the schema dropped and date-times converted to "
        "UTC. Both write to a pipe that the benchmark reads and counts. Records per second "
        "is records divided by the process's wall time, start-up included. The two "
        "alternate: the tap goes first in odd pairs, the baseline in even ones. The target "
        "is judged on the median of the pairs' ratios.\n\n"
        f"{check_text}\n\n"
        f"Start-up, included in every run: `tap-continu --about` takes "
        f"{median(throughput.tap_startup_seconds):.2f} s (importing the tap and the Singer "
        f"SDK), `python -m benchmarks.baseline --help` "
        f"{median(throughput.baseline_startup_seconds):.2f} s.\n\n"
        "### Through the replay proxy\n\n"
        "`benchmarks/replay.py` is a caching proxy on 127.0.0.1: one baseline run fills it "
        "from the simulator, after which it serves every request from memory, and the runs "
        "below reached the simulator with no request. This takes the simulator's data "
        "generation out of the measurement (see the next section).\n\n"
        + "\n".join(_pair_rows(throughput.replay_pairs))
        + "\n\n### Directly against the simulator\n\n"
        "The same pairs with the simulator in the loop. Its serving time is in both "
        "columns, which narrows the gap.\n\n" + "\n".join(_pair_rows(throughput.live_pairs)) + "\n"
    )


def _simulator(results: Results) -> str:
    throughput = results.throughput
    if throughput is None:
        return ""
    simulator_alone = median(throughput.simulator_alone_seconds)
    replay_alone = median(throughput.replay_alone_seconds)
    live_baseline = median([pair.baseline.wall_seconds for pair in throughput.live_pairs])
    replay_baseline = median([pair.baseline.wall_seconds for pair in throughput.replay_pairs])
    replay_tap = median([pair.tap.wall_seconds for pair in throughput.replay_pairs])
    size = throughput.response_bytes / 1024 / 1024
    return (
        "## Is the simulator the bottleneck?\n\n"
        "`benchmarks/serve_time.py` sends the same "
        f"{throughput.requests:,} requests with `http.client` on one keep-alive connection, "
        f"reads the {size:.1f} MiB of responses and parses only the users pages.\n\n"
        "| Server | Alone | Baseline's wall time through it | Share |\n"
        "|---|---|---|---|\n"
        f"| simulator | {simulator_alone:.2f} s | {live_baseline:.2f} s "
        f"| {simulator_alone / live_baseline:.0%} |\n"
        f"| replay proxy | {replay_alone:.2f} s | {replay_baseline:.2f} s "
        f"| {replay_alone / replay_baseline:.0%} |\n\n"
        "The simulator generates users and completions on request, so it takes a large "
        "share of a fast client's time and would hide most of the difference between two "
        "clients. The replay proxy takes "
        f"{replay_alone / replay_baseline:.0%} of the baseline's time and "
        f"{replay_alone / replay_tap:.0%} of the tap's, so the records-per-second target "
        "is judged through it.\n"
    )


def _memory(results: Results) -> str:
    small, large = memory_samples(results)
    if not small or not large or results.memory_small is None or results.memory_large is None:
        return ""
    small_users = results.memory_small.bounds.users
    large_users = results.memory_large.bounds.users
    return (
        "## Peak memory\n\n"
        "Peak RSS is the tap process's `VmHWM` from `/proc/<pid>/status`, read every 20 ms "
        "while it runs (`ru_maxrss` is not used: with vfork it includes the parent's "
        "memory). Syncs run without a rate limit.\n\n"
        "| Users | Runs | Median peak RSS | Lowest | Highest |\n"
        "|---|---|---|---|---|\n"
        f"| {small_users:,} | {len(small)} | {mib(median(small))} | {mib(min(small))} "
        f"| {mib(max(small))} |\n"
        f"| {large_users:,} | {len(large)} | {mib(median(large))} | {mib(min(large))} "
        f"| {mib(max(large))} |\n\n"
        f"Ratio: {median(large) / median(small):.2f}. The tap keeps one open email batch and "
        "the batch being synced, not the users, so memory does not grow with the number of "
        "users.\n"
    )


def _commands(results: Results) -> str:
    paced = results.rate_limited
    paced_options = (
        f" (for the paced runs, `--rate-limit {paced.rate_limit} "
        f"--window-seconds {paced.window_seconds:g}`)"
        if paced is not None
        else ""
    )
    return (
        "## Commands\n\n"
        f"- This page: `make bench` ({duration(results.elapsed_seconds)} for this run, "
        "after `make setup`). `.venv/bin/python -m benchmarks.run --quick` runs a subset "
        "(1,000 and 10,000 users, one run each) and prints the page without writing it; "
        "`--help` lists the other options.\n"
        "- Simulator: `.venv/bin/python -m tests.simulator --users N --seed 1 "
        f"--url-file URL_FILE --rate-limit 0`{paced_options}.\n"
        "- Tap: `.venv/bin/tap-continu --config CONFIG.json`, with `client_id` sim-client, "
        "`client_secret` sim-secret, `api_url` the simulator's URL plus `/v3`, and "
        "`requests_per_minute`.\n"
        "- Baseline: `.venv/bin/python -m benchmarks.baseline --config CONFIG.json` (the "
        "same config).\n"
        "- Server alone: `.venv/bin/python -m benchmarks.serve_time --api-url URL/v3`.\n"
    )
