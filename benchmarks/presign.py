"""Measure presigning against the bundled emulator: rate-limit throughput, client overhead, tokens, memory."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
PRESIGN = "/cgi/crm/v2/file/getPresignedUrl"
#: Connection whose client-side limit equals the emulator's enforced limit.
LIMITED_CONN_ID = "fxiaoke_benchmark_limited"
#: Connection whose client-side limit never makes a call wait; used while the emulator enforces no limit.
UNLIMITED_CONN_ID = "fxiaoke_benchmark_unlimited"
#: Client-side limit of the unlimited connection: more calls than any run makes, in a window short enough
#: that the shared state file contains about as many timestamps as under the API's real limit.
UNLIMITED_CALLS = 100_000
UNLIMITED_WINDOW = 0.4
#: Upper bound of one memory subprocess, in seconds.
CHILD_TIMEOUT = 3600
#: Goals the figures are compared with.
GOAL_THROUGHPUT_RATIO = 0.95
GOAL_OVERHEAD_RATIO = 1.2
GOAL_TOKEN_CALLS = 1
GOAL_GROWTH_MB = 100.0


def bench_path(index: int) -> str:
    """
    Return the npath of benchmark file ``index``, 48 characters long like a real one.

    :param index: position of the path in the input, from 0.
    """
    return f"N_202410_22_{index:032x}.pdf"


def bench_paths(count: int) -> list[str]:
    """
    Return the first ``count`` benchmark npaths.

    :param count: how many paths.
    """
    return [bench_path(index) for index in range(count)]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is below 1; pass a whole number of at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value >= 0.001:
        raise argparse.ArgumentTypeError(
            f"{text!r} is below 0.001; pass a number of seconds of at least 0.001"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser; ``--help`` states what each option sets and its unit."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.presign",
        description=(
            "Start the bundled emulator on loopback and measure PresignFilesOperator and FxiaokeHook: "
            "throughput against the enforced rate limit, client overhead over a bare requests loop, "
            "token calls, and peak memory for a small and a large path list. Run it from the repository "
            "root. The defaults use the API's real limit (100 calls per 20 s) and took about 3 minutes "
            "on a 2-core machine. To shorten the throughput run, divide --calls and --window by the "
            "same factor, which keeps the ceiling in paths per second."
        ),
    )
    parser.add_argument(
        "--paths",
        type=_positive_int,
        default=50_000,
        help="paths (count) presigned in the throughput run; needs more than CALLS x BATCH_SIZE to give "
        "a ratio (default: 50000, five windows at the defaults)",
    )
    parser.add_argument(
        "--calls",
        type=_positive_int,
        default=100,
        help="calls (count) allowed per window, set on both the emulator and the client's rate_limit_calls "
        "extra (default: 100, the API's limit)",
    )
    parser.add_argument(
        "--window",
        type=_positive_float,
        default=20.0,
        help="window length (seconds), set on both the emulator and the client's rate_limit_window extra "
        "(default: 20, the API's limit)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=100,
        help="paths (count) per getPresignedUrl call, for every part of the run (default: 100)",
    )

    parser.add_argument(
        "--overhead-calls",
        type=_positive_int,
        default=1000,
        help="calls (count) per side in the overhead comparison, hook and bare loop alternating call by "
        "call (default: 1000)",
    )

    parser.add_argument(
        "--memory-small",
        type=_positive_int,
        default=10_000,
        help="paths (count) of the small memory run, reported as peak_rss_mb_10k (default: 10000)",
    )
    parser.add_argument(
        "--memory-large",
        type=_positive_int,
        default=1_000_000,
        help="paths (count) of the large memory run, reported as peak_rss_mb_1m (default: 1000000)",
    )

    parser.add_argument(
        "--json", action="store_true", help="also print every figure as one JSON object on the last line"
    )
    # Internal: the memory runs start this script again in a fresh process with these options.
    parser.add_argument("--memory-child", type=_positive_int, help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    return parser


def _progress(message: str) -> None:
    print(f"[benchmark] {message}", file=sys.stderr, flush=True)


def _rss_mb() -> float:
    """Return this process's resident memory now, in MiB (its peak so far where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as stream:
            pages = int(stream.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return _peak_rss_mb()


def _peak_rss_mb() -> float:
    """Return this process's peak resident memory since it started its program, in MiB."""
    # ru_maxrss counts from fork, so it would report the parent's size when the parent was the larger.
    # VmHWM restarts at exec, so it is read where /proc has it.
    try:
        with open("/proc/self/status", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _connection_json(base_json: str, cache_dir: Path, calls: int, window: float) -> str:
    conn = json.loads(base_json)
    conn["extra"].update(
        {"cache_dir": str(cache_dir), "rate_limit_calls": calls, "rate_limit_window": window}
    )
    return json.dumps(conn)


def _env_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def _seed(emulator: Any, start: int, stop: int) -> None:
    for index in range(start, stop):
        emulator.add_file(bench_path(index), b"x")


def measure_throughput(emulator: Any, args: argparse.Namespace) -> dict[str, Any]:
    """
    Presign ``args.paths`` paths through the operator with the emulator's rate limit enforced.

    The ratio compares the sustained call rate with the allowed one. For each accepted call ``i``, the
    time until call ``i + calls`` is the length of one full window as the client used it; the API allows
    ``window``. So the ratio is ``window / mean(t[i + calls] - t[i])``, which equals achieved paths per
    second over the ceiling (calls per second times batch size) for full batches, and is not inflated by
    the first window's burst.
    """
    from fxiaoke_provider.operators.files import PresignFilesOperator

    emulator.settings.enforce_rate_limit = True
    paths = bench_paths(args.paths)
    operator = PresignFilesOperator(
        task_id="presign_throughput",
        paths=paths,
        fxiaoke_conn_id=LIMITED_CONN_ID,
        batch_size=args.batch_size,
    )
    errors_before = emulator.rate_limit_errors
    started_at = emulator.clock.now()
    started = time.perf_counter()
    results = operator.execute({})  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    accepted = sorted(
        request.at
        for request in emulator.requests
        if request.path == PRESIGN and request.error_code == 0 and request.at >= started_at
    )
    calls = len(accepted)
    ceiling = args.calls / args.window * args.batch_size
    ratio = None
    sustained = None
    if calls > args.calls:
        spans = [accepted[index + args.calls] - accepted[index] for index in range(calls - args.calls)]
        mean_span = statistics.fmean(spans)
        ratio = args.window / mean_span
        sustained = args.calls / mean_span * (len(results) / calls)
    return {
        "throughput_ratio": ratio,
        "paths_per_second": sustained,
        "wall_paths_per_second": len(results) / elapsed,
        "ceiling_paths_per_second": ceiling,
        "throughput_seconds": elapsed,
        "throughput_windows": elapsed / args.window,
        "presign_calls": calls,
        "presigned_paths": len(results),
        "rate_limit_errors": emulator.rate_limit_errors - errors_before,
    }


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure_overhead(emulator: Any, args: argparse.Namespace) -> dict[str, Any]:
    """
    Compare the time per call of ``FxiaokeHook.presign_batch`` with a bare ``requests`` loop.

    Both send the same body and headers, each with a new ``thirdTraceId``, to the same emulator with its
    limits off. The two alternate call by call, and which goes first alternates too, so that load from
    other processes falls on both alike. The bare loop also parses the JSON body, because any client
    must. The ratio is that of the median times per call; the ratio of the means is reported beside it.
    """
    from fxiaoke_provider.api.auth import apply_auth
    from fxiaoke_provider.hooks.fxiaoke import FxiaokeHook

    emulator.settings.enforce_rate_limit = False
    batch = bench_paths(args.batch_size)
    hook = FxiaokeHook(fxiaoke_conn_id=UNLIMITED_CONN_ID)
    client = hook.client
    _, headers = apply_auth(client.config, client.tokens.get(), {}, {})
    body = {"data": {"paths": batch, "expire": 1}}
    url = client.config.base_url + PRESIGN
    session = requests.Session()

    def bare() -> None:
        response = session.post(
            url,
            params={"thirdTraceId": str(uuid.uuid4())},
            json=body,
            headers=headers,
            timeout=client.config.timeout,
        )
        code = response.json()["errorCode"]
        if code != 0:
            raise RuntimeError(f"the bare loop got errorCode {code}")

    def through_hook() -> None:
        hook.presign_batch(batch, expire_hours=1)

    # Warm both sides up: connections, token file, imports.
    for _ in range(10):
        bare()
        through_hook()
    bare_times: list[float] = []
    hook_times: list[float] = []
    for index in range(args.overhead_calls):
        if index % 2 == 0:
            bare_times.append(_timed(bare))
            hook_times.append(_timed(through_hook))
        else:
            hook_times.append(_timed(through_hook))
            bare_times.append(_timed(bare))
    session.close()
    hook.close()
    bare_median = statistics.median(bare_times)
    hook_median = statistics.median(hook_times)
    return {
        "overhead_ratio": hook_median / bare_median,
        "overhead_ratio_mean": statistics.fmean(hook_times) / statistics.fmean(bare_times),
        "hook_ms_per_call": hook_median * 1000,
        "bare_ms_per_call": bare_median * 1000,
        "overhead_calls": args.overhead_calls,
    }


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            yield json.loads(line)


def _check_output(path: Path, count: int, base_url: str) -> bool:
    """Tell whether the JSON Lines file holds one URL of the emulator per path, in input order."""
    seen = 0
    for index, row in enumerate(_read_jsonl(path)):
        if row["path"] != bench_path(index) or not row["url"].startswith(base_url + "/"):
            return False
        seen += 1
    return seen == count


def measure_memory(emulator: Any, count: int, batch_size: int, work_dir: Path) -> dict[str, Any]:
    """
    Run the operator with ``output_path`` on ``count`` paths in a fresh process and return its memory.

    The emulator, with its limits off, stays in this process, so the child's memory is the operator's,
    its input list and Airflow's.
    """
    emulator.settings.enforce_rate_limit = False
    output = work_dir / f"presigned-{count}.jsonl"
    command = [
        sys.executable,
        "-m",
        "benchmarks.presign",
        "--memory-child",
        str(count),
        "--output",
        output.as_uri(),
        "--batch-size",
        str(batch_size),
    ]
    completed = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"memory run of {count} paths exited with status {completed.returncode}:\n{completed.stderr[-3000:]}"
        )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    report["output_verified"] = _check_output(output, count, emulator.base_url)
    output.unlink()
    return report


def memory_child(count: int, output: str, batch_size: int) -> None:
    """
    Presign ``count`` paths with ``output_path`` set, then print memory figures as JSON on the last line.

    :param count: number of paths.
    :param output: the ``output_path`` URL.
    :param batch_size: paths per call.
    """
    from fxiaoke_provider.operators.files import PresignFilesOperator

    baseline = _rss_mb()
    paths = bench_paths(count)
    with_input = _rss_mb()
    operator = PresignFilesOperator(
        task_id="presign_memory",
        paths=paths,
        fxiaoke_conn_id=UNLIMITED_CONN_ID,
        batch_size=batch_size,
        output_path=output,
    )
    started = time.perf_counter()
    summary = operator.execute({})  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "paths": count,
                "count": summary["count"],
                "seconds": elapsed,
                "baseline_rss_mb": baseline,
                "input_rss_mb": with_input - baseline,
                "peak_rss_mb": _peak_rss_mb(),
            }
        ),
        flush=True,
    )


def machine() -> dict[str, Any]:
    """Describe the machine and software versions, and the date of the run."""
    import airflow

    from fxiaoke_provider import __version__

    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_count": os.cpu_count(),
        "python_version": platform.python_version(),
        "airflow_version": airflow.__version__,
        "provider_version": __version__,
        "platform": platform.platform(),
        # Other processes on the machine slow both sides of every comparison; this says how busy it was.
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "NOT met")


def print_table(report: dict[str, Any]) -> None:
    """Print the figures as an aligned table."""
    rows = [
        (
            "Throughput ratio",
            _fmt(report["throughput_ratio"], ".3f"),
            f">= {GOAL_THROUGHPUT_RATIO}",
            _verdict(report["goals"]["throughput"]),
        ),
        ("  sustained paths/s", _fmt(report["paths_per_second"], ".1f"), "", ""),
        ("  ceiling paths/s", _fmt(report["ceiling_paths_per_second"], ".1f"), "", ""),
        ("  wall-clock paths/s", _fmt(report["wall_paths_per_second"], ".1f"), "", ""),
        ("  run time (s)", _fmt(report["throughput_seconds"], ".1f"), "", ""),
        ("Rate-limit errors", str(report["rate_limit_errors"]), "0", ""),
        (
            "Overhead ratio",
            _fmt(report["overhead_ratio"], ".3f"),
            f"<= {GOAL_OVERHEAD_RATIO}",
            _verdict(report["goals"]["overhead"]),
        ),
        ("  hook ms/call (median)", _fmt(report["hook_ms_per_call"], ".3f"), "", ""),
        ("  bare ms/call (median)", _fmt(report["bare_ms_per_call"], ".3f"), "", ""),
        ("  ratio of the means", _fmt(report["overhead_ratio_mean"], ".3f"), "", ""),
        (
            "Token calls",
            str(report["token_calls"]),
            f"{GOAL_TOKEN_CALLS}",
            _verdict(report["goals"]["tokens"]),
        ),
        (
            f"Peak RSS, {report['memory_paths_small']} paths (MiB)",
            _fmt(report["peak_rss_mb_10k"], ".1f"),
            "",
            "",
        ),
        (
            f"Peak RSS, {report['memory_paths_large']} paths (MiB)",
            _fmt(report["peak_rss_mb_1m"], ".1f"),
            "",
            "",
        ),
        (
            "Growth (MiB)",
            _fmt(report["rss_growth_mb"], ".1f"),
            f"< {GOAL_GROWTH_MB:g}",
            _verdict(report["goals"]["memory"]),
        ),
        ("  of which the input list", _fmt(report["input_growth_mb"], ".1f"), "", ""),
        (
            "  growth without the input",
            _fmt(report["operator_growth_mb"], ".1f"),
            f"< {GOAL_GROWTH_MB:g}",
            _verdict(report["goals"]["memory_without_input"]),
        ),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"{'Figure':<{width}}  {'Value':>12}  {'Goal':>8}  Verdict")
    for name, value, goal, verdict in rows:
        print(f"{name:<{width}}  {value:>12}  {goal:>8}  {verdict}")
    print(
        f"Machine: {report['cpu_count']} CPU(s), Python {report['python_version']}, "
        f"Airflow {report['airflow_version']}, {report['platform']}; load average "
        f"{_fmt(report['load_average_1m'], '.2f')}; date {report['date']}"
    )


def run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    """
    Run every measurement against one emulator and return the report.

    Every process of the run shares one token folder, so the whole run needs a single token call.
    """
    from fxiaoke_provider.testing import EmulatorSettings, FxiaokeEmulator

    calls_needed = -(-args.paths // args.batch_size)
    settings = EmulatorSettings(
        rate_limit_calls=args.calls,
        rate_limit_window_seconds=args.window,
        max_paths_per_call=max(args.batch_size, 100),
        # Keeps the throughput run's calls; later runs push them out, so memory stays bounded.
        request_log_size=calls_needed * 2 + 100,
    )
    cache_dir = work_dir / "cache"
    largest = max(args.paths, args.batch_size, args.memory_small, args.memory_large)
    with FxiaokeEmulator(settings=settings) as emulator:
        _progress(f"seeding the emulator with {largest} files")
        _seed(emulator, 0, largest)
        base_json = emulator.connection_json()
        os.environ[_env_name(LIMITED_CONN_ID)] = _connection_json(
            base_json, cache_dir, args.calls, args.window
        )
        os.environ[_env_name(UNLIMITED_CONN_ID)] = _connection_json(
            base_json, cache_dir, UNLIMITED_CALLS, UNLIMITED_WINDOW
        )
        _progress(
            f"throughput: {args.paths} paths at {args.calls} calls per {args.window:g} s, "
            f"about {calls_needed / args.calls * args.window:.0f} s"
        )
        report: dict[str, Any] = measure_throughput(emulator, args)
        _progress(f"overhead: {args.overhead_calls} calls per side, alternating")
        report.update(measure_overhead(emulator, args))
        memory = {}
        for count in (args.memory_small, args.memory_large):
            _progress(f"memory: {count} paths in a fresh process")
            memory[count] = measure_memory(emulator, count, args.batch_size, work_dir)
        report["token_calls"] = emulator.token_calls
    small, large = memory[args.memory_small], memory[args.memory_large]
    report.update(
        {
            "memory_paths_small": args.memory_small,
            "memory_paths_large": args.memory_large,
            "peak_rss_mb_10k": small["peak_rss_mb"],
            "peak_rss_mb_1m": large["peak_rss_mb"],
            "rss_growth_mb": large["peak_rss_mb"] - small["peak_rss_mb"],
            "input_growth_mb": large["input_rss_mb"] - small["input_rss_mb"],
            "memory_seconds_1m": large["seconds"],
            "memory_output_verified": small["output_verified"] and large["output_verified"],
        }
    )
    report["operator_growth_mb"] = report["rss_growth_mb"] - report["input_growth_mb"]
    ratio = report["throughput_ratio"]
    report["goals"] = {
        "throughput": None
        if ratio is None
        else ratio >= GOAL_THROUGHPUT_RATIO and report["rate_limit_errors"] == 0,
        "overhead": report["overhead_ratio"] <= GOAL_OVERHEAD_RATIO,
        "tokens": report["token_calls"] == GOAL_TOKEN_CALLS,
        "memory": report["rss_growth_mb"] < GOAL_GROWTH_MB,
        "memory_without_input": report["operator_growth_mb"] < GOAL_GROWTH_MB,
    }
    report["settings"] = {
        "paths": args.paths,
        "calls": args.calls,
        "window": args.window,
        "batch_size": args.batch_size,
        "overhead_calls": args.overhead_calls,
    }
    return report


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the benchmark and print the report."""
    args = build_parser().parse_args(argv)
    if args.memory_child is not None:
        memory_child(args.memory_child, args.output, args.batch_size)
        return 0
    with tempfile.TemporaryDirectory(prefix="fxiaoke-benchmark-") as work:
        work_dir = Path(work)
        # A private Airflow home, so the run neither reads nor writes the user's.
        os.environ["AIRFLOW_HOME"] = str(work_dir / "airflow_home")
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        started = time.perf_counter()
        report = run(args, work_dir)
        report.update(machine())
        report["total_seconds"] = time.perf_counter() - started
    if args.paths // args.batch_size <= args.calls:
        _progress("the throughput run made no more calls than one window allows, so it has no ratio")
    print_table(report)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
