"""Benchmark: the full loop on this machine, the highest sustained message rate and where the CPU goes.

Method: each run is `locust -f scenarios --headless -t S --target-rate R` with no --host, so Locust
starts the bundled sandbox (ingest → dedupe → delivery to `webhook` and `warehouse`) and the monitor
(receiver with the audit on) as its child processes; no faults are injected, so any lost message is
unexplained. Nothing is pinned: the three processes share the machine's cores, which is the point.
A run SUSTAINS R when, in its run summary (`summary.json`, after the --delivery-wait):
  - the generator kept the schedule: missed sends ratio < --max-missed (1%),
  - the ingest never failed: no request answered 5xx or 429 or not at all (connection errors),
  - nothing is unexplained: lost + still pending, summed over the destinations, is 0, and the
    monitor has the stream's final ledger (every accepted message was delivered to each destination).
Search: probe runs of --probe-seconds at --start-rate, multiplied by --factor while a run sustains
(or divided while it fails), then --bisections bisections between the last rate that sustained and
the first that did not; then one confirming run of --duration (180 s) at the best rate found. If the
confirming run fails, more follow (--confirm-attempts in all), each at 0.85× the last (at least
--step lower).
`sustained_msgs_per_sec` is the confirming run's achieved paced rate (the summary's
`load.throughput`: new events and replays over the run's duration; bad-input messages and duplicate
re-sends are not counted); `unexplained_loss` is that run's lost + pending over the destinations.
CPU: every 0.25 s this script reads utime + stime (/proc/<pid>/stat, all threads) of the Locust
process and of every descendant (from /proc/<pid>/task/*/children), each classed by its command line
as locust, sandbox or monitor. A process's CPU over the run is its last reading minus its reading at
the test start (the summary's `run.started_at`), so start-up is left out and the delivery wait is in;
per million messages is that over the run's paced messages sent (each is delivered to 2 destinations).
`cores` is each process's CPU seconds while the load ran (`started_at` to `ended_at`) over those
wall seconds: on 2 cores, a total near 2 means the machine is the limit. The machine may be shared
with other work, so the 1-minute load average is printed with each run.

Run: python bench/loop.py [--start-rate 5000] [--probe-seconds 40] [--duration 180]
[--traffic-profile loadgen/profiles/server.yaml]. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.processes import CommandResult, cpu_seconds, descendants, run_command

ROOT = Path(__file__).resolve().parent.parent

ROLES = ("locust", "sandbox", "monitor")
INGEST_ERROR_CLASSES = ("5xx", "429", "error")
SAMPLE_INTERVAL = 0.25
CONFIRM_STEP_DOWN = 0.85
# Locust starts, then the run, the delivery wait, the report and the stop: generous room for all.
RUN_OVERHEAD_SECONDS = 120.0


# Processes and their CPU -------------------------------------------------------------------------


def role_of(pid: int) -> str:
    """sandbox or monitor for `python -m harness sandbox|monitor ...`, else locust (master or worker)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "locust"
    if b"harness" in argv:
        command = argv[argv.index(b"harness") + 1 : argv.index(b"harness") + 2]
        if command and command[0].decode() in ("sandbox", "monitor"):
            return command[0].decode()
    return "locust"


@dataclass
class CpuSampler:
    """Samples the CPU of this process's child (Locust) and its descendants until stopped."""

    samples: list[tuple[float, dict[int, float]]] = field(default_factory=list)
    roles: dict[int, str] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            pids = descendants(os.getpid())
            readings = {}
            for pid in pids:
                seconds = cpu_seconds(pid)
                if seconds is not None:
                    readings[pid] = seconds
                    # Read again until it names a server: between fork and exec a child shows Locust's.
                    if self.roles.get(pid, "locust") == "locust":
                        self.roles[pid] = role_of(pid)
            self.samples.append((time.time(), readings))
            self.stop.wait(SAMPLE_INTERVAL)

    def cpu_between(self, start: float, end: float | None = None) -> dict[str, float]:
        """CPU seconds per role from wall time `start` to `end` (None: each process's last reading)."""
        baseline: dict[int, float] = {}
        last: dict[int, float] = {}
        for t, readings in self.samples:
            if t <= start:
                baseline = readings
            if end is None or t <= end:
                last.update(readings)
        out = dict.fromkeys(ROLES, 0.0)
        for pid, seconds in last.items():
            out[self.roles[pid]] += seconds - baseline.get(pid, 0.0)
        return out

    def cpu_by_process(self, start: float, end: float | None = None) -> dict[str, float]:
        """CPU seconds per process, named role[k] in order of start (monitor[0] is the primary)."""
        baseline: dict[int, float] = {}
        last: dict[int, float] = {}
        first_seen: dict[int, float] = {}
        for t, readings in self.samples:
            for pid in readings:
                first_seen.setdefault(pid, t)
            if t <= start:
                baseline = readings
            if end is None or t <= end:
                last.update(readings)
        out: dict[str, float] = {}
        counts = dict.fromkeys(ROLES, 0)
        for pid in sorted(last, key=lambda p: (first_seen[p], p)):
            role = self.roles[pid]
            out[f"{role}[{counts[role]}]"] = last[pid] - baseline.get(pid, 0.0)
            counts[role] += 1
        return out

    def leftovers(self) -> list[int]:
        """Processes seen during the run that are still alive (there should be none)."""
        return [pid for pid in self.roles if cpu_seconds(pid) is not None]


# One run ---------------------------------------------------------------------------------------


@dataclass
class RunResult:
    kind: str
    target_rate: float
    seconds: float
    exit_code: int | None = None
    achieved: float = 0.0
    messages: float = 0.0
    missed_ratio: float | None = None
    ingest_errors: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    pending: int = 0
    duplicates: int = 0
    delivery_p99: float | None = None
    verdict: str = "-"
    failed_thresholds: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_while_sending: dict[str, float] = field(default_factory=dict)
    cpu_processes: dict[str, float] = field(default_factory=dict)
    send_seconds: float = 0.0
    load_average: float = 0.0
    reasons: list[str] = field(default_factory=list)

    @property
    def unexplained_loss(self) -> int:
        return self.lost + self.pending

    @property
    def sustained(self) -> bool:
        return not self.reasons

    def cpu_per_million(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {
            role: (self.cpu[role] / self.messages * 1e6 if self.messages else None) for role in self.cpu
        }
        if self.messages and self.cpu:
            out["total"] = sum(self.cpu.values()) / self.messages * 1e6
        return out

    def cpu_per_million_by_process(self) -> dict[str, float | None]:
        """As `cpu_per_million`, one entry per process (Locust workers, sandbox and monitor workers)."""
        return {
            name: (s / self.messages * 1e6 if self.messages else None)
            for name, s in self.cpu_processes.items()
        }

    def cores(self) -> dict[str, float]:
        """Cores each process used while the load ran (CPU seconds over the test's wall seconds)."""
        if not self.send_seconds:
            return {}
        return {role: round(s / self.send_seconds, 2) for role, s in self.cpu_while_sending.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target_rate": self.target_rate,
            "seconds": self.seconds,
            "sustained": self.sustained,
            "reasons": self.reasons,
            "achieved_msgs_per_sec": round(self.achieved),
            "missed_ratio": self.missed_ratio,
            "ingest_errors": self.ingest_errors,
            "expected": self.expected,
            "delivered": self.delivered,
            "lost": self.lost,
            "pending": self.pending,
            "unexplained_loss": self.unexplained_loss,
            "duplicates": self.duplicates,
            "delivery_p99_seconds": self.delivery_p99,
            "verdict": self.verdict,
            "failed_thresholds": self.failed_thresholds,
            "cpu_seconds": {k: round(v, 2) for k, v in self.cpu.items()},
            "cpu_seconds_per_million": {k: _round(v, 2) for k, v in self.cpu_per_million().items()},
            "cpu_seconds_per_million_by_process": {
                k: _round(v, 2) for k, v in self.cpu_per_million_by_process().items()
            },
            "cores": self.cores(),
            "load_average_1m": round(self.load_average, 2),
            "exit_code": self.exit_code,
        }


def locust_argv(rate: float, seconds: float, report_dir: Path, args: argparse.Namespace) -> list[str]:
    argv = [str(Path(sys.executable).with_name("locust")), "-f", str(ROOT / "scenarios"), "--headless",
            "--only-summary", "-t", f"{seconds:g}s", "--target-rate", f"{rate:g}",
            "--delivery-wait", f"{args.delivery_wait:g}", "--report-dir", str(report_dir),
            "--metrics-port", "0", "--latency-budget", f"{args.latency_budget:g}"]  # fmt: skip
    if args.processes > 1:
        argv += ["--processes", str(args.processes)]
    if args.traffic_profile:
        argv += ["--traffic-profile", args.traffic_profile]
    if args.monitor_workers:
        argv += ["--monitor-workers", str(args.monitor_workers)]
    return argv


def run_once(kind: str, rate: float, seconds: float, args: argparse.Namespace, workdir: Path) -> RunResult:
    """One `locust -f scenarios` run at `rate` for `seconds`, its summary read and its CPU sampled."""
    result = RunResult(kind, rate, seconds)
    report_dir = workdir / f"{kind}-{rate:g}-{time.monotonic_ns()}"
    argv = locust_argv(rate, seconds, report_dir, args)
    sampler = CpuSampler()
    sampling = threading.Thread(target=sampler.run, daemon=True)
    sampling.start()
    outcome: CommandResult | Exception
    try:
        outcome = run_command(argv, timeout=seconds + args.delivery_wait + RUN_OVERHEAD_SECONDS, cwd=ROOT)
    except TimeoutError as exc:
        outcome = exc
    finally:
        sampler.stop.set()
        sampling.join()
    result.load_average = os.getloadavg()[0]
    _stop_leftovers(sampler)
    if isinstance(outcome, Exception):
        result.reasons.append(f"timed out: {outcome}")
        return result
    result.exit_code = outcome.code
    summaries = list(report_dir.glob("*/summary.json"))
    if not summaries:
        tail = (outcome.out + outcome.err)[-2000:]
        result.reasons.append(f"no run summary (exit {outcome.code}); output ends:\n{tail}")
        return result
    summary = json.loads(summaries[0].read_text())
    read_summary(result, summary, args)
    started_at = datetime.fromisoformat(summary["run"]["started_at"]).timestamp()
    ended_at = datetime.fromisoformat(summary["run"]["ended_at"]).timestamp()
    result.cpu = sampler.cpu_between(started_at)
    result.cpu_processes = sampler.cpu_by_process(started_at)
    result.cpu_while_sending = sampler.cpu_between(started_at, ended_at)
    result.send_seconds = ended_at - started_at
    return result


def read_summary(result: RunResult, summary: dict[str, Any], args: argparse.Namespace) -> None:
    """Fill the result from a run summary and decide whether the run sustained its rate."""
    load, delivery = summary["load"], summary.get("delivery") or {}
    result.achieved = load["throughput"]
    result.messages = sum(row.get("paced_messages", 0) for row in load["by_source"].values())
    result.missed_ratio = load["missed_ratio"]
    errors = {c: load["requests_by_class"].get(c, 0) for c in INGEST_ERROR_CLASSES}
    result.ingest_errors = sum(errors.values())
    destinations = delivery.get("destinations") or {}
    for d in destinations.values():
        result.expected += d["expected"]
        result.delivered += d["delivered_expected"]
        result.lost += d["lost"]
        result.pending += d["pending"]
        result.duplicates += d["duplicates"]
    p99s = [
        d["latency_seconds"]["p99"] for d in destinations.values() if d["latency_seconds"]["p99"] is not None
    ]
    result.delivery_p99 = max(p99s) if p99s else None
    verdict = summary.get("verdict") or {}
    result.verdict = "PASS" if verdict.get("passed") else "FAIL"
    result.failed_thresholds = [
        f"{r['metric']} {r['expression']} ({r.get('value_text', '')})"
        for r in verdict.get("results", [])
        if not r["passed"]
    ]
    if result.missed_ratio >= args.max_missed:
        result.reasons.append(f"missed sends {result.missed_ratio:.2%} ≥ {args.max_missed:.0%}")
    if result.ingest_errors:
        classes = ", ".join(f"{c} {n:,}" for c, n in errors.items() if n)
        result.reasons.append(f"ingest errors: {classes} ('error': no answer, e.g. a connection error)")
    if not destinations:
        result.reasons.append("no delivery figures from the monitor")
    if result.unexplained_loss:
        result.reasons.append(
            f"unexplained loss {result.unexplained_loss} (lost {result.lost}, pending {result.pending})"
        )
    runs = [r for r in delivery.get("runs", []) if r.get("run") == summary["run"]["id"]]
    if not runs or not runs[0].get("all_final"):
        result.reasons.append("the monitor never got the stream's final ledger")


def _stop_leftovers(sampler: CpuSampler, grace: float = 15.0) -> None:
    """Every process seen during the run must end with Locust (run_command stops its group on a
    timeout, and a server may take a moment to stop); one still alive after `grace` is stopped by pid."""
    deadline = time.monotonic() + grace
    leftovers = sampler.leftovers()
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.2)
        leftovers = sampler.leftovers()
    for pid in leftovers:
        print(f"  leftover process {pid} ({sampler.roles[pid]}) alive {grace:g}s after Locust: killing it")
        os.kill(pid, signal.SIGKILL)


# The search ------------------------------------------------------------------------------------


HEADER = (
    f"{'run':8} {'target':>8} {'achieved':>9} {'missed':>7} {'delivered':>10} {'lost':>6} {'pending':>8} "
    f"{'dupes':>6} {'p99':>7} {'locust':>7} {'sandbox':>8} {'monitor':>8} {'total':>7} {'cores':>5} "
    f"{'load':>5}  result"
)


def row(result: RunResult) -> str:
    per_million = result.cpu_per_million()

    def cpu(role: str) -> str:
        value = per_million.get(role)
        return "-" if value is None else f"{value:.1f}"

    missed = "-" if result.missed_ratio is None else f"{result.missed_ratio:.2%}"
    p99 = "-" if result.delivery_p99 is None else f"{result.delivery_p99:.2f}s"
    cores = sum(result.cores().values())
    outcome = (
        "sustained" if result.sustained else "FAILED: " + "; ".join(r.splitlines()[0] for r in result.reasons)
    )
    return (
        f"{result.kind:8} {result.target_rate:8,.0f} {result.achieved:9,.0f} {missed:>7} {result.delivered:10,} "
        f"{result.lost:6,} {result.pending:8,} {result.duplicates:6,} {p99:>7} {cpu('locust'):>7} "
        f"{cpu('sandbox'):>8} {cpu('monitor'):>8} {cpu('total'):>7} {cores:5.2f} {result.load_average:5.2f}  "
        f"{outcome} (verdict {result.verdict})"
    )


def report(result: RunResult, runs: list[RunResult]) -> RunResult:
    runs.append(result)
    print(row(result), flush=True)
    by_process = result.cpu_per_million_by_process()
    if by_process:
        parts = ", ".join(f"{name} {v:.1f}" for name, v in by_process.items() if v is not None)
        print(f"{'':8} CPU s per million by process: {parts}", flush=True)
    for reason in result.reasons:
        if "\n" in reason:
            print("    " + reason.replace("\n", "\n    "), flush=True)
    return result


def _round_rate(rate: float, step: float) -> float:
    return max(step, round(rate / step) * step)


def _next_rate(rate: float, multiplier: float, step: float) -> float:
    """`rate` × `multiplier` rounded to `step`, always at least one step away from `rate`."""
    moved = round(rate * multiplier / step) * step
    return max(moved, rate + step) if multiplier > 1 else min(moved, rate - step)


def search(
    args: argparse.Namespace, workdir: Path, runs: list[RunResult]
) -> tuple[float | None, float | None]:
    """Probe runs: (highest rate that sustained, lowest that did not); either may be None."""
    good: float | None = None
    bad: float | None = None
    rate = args.start_rate
    while args.min_rate <= rate <= args.max_rate:
        if report(run_once("probe", rate, args.probe_seconds, args, workdir), runs).sustained:
            good = rate
            if bad is not None:
                break
            rate = _next_rate(rate, args.factor, args.step)
        else:
            bad = rate
            if good is not None:
                break
            rate = _next_rate(rate, 1 / args.factor, args.step)
    for _ in range(args.bisections):
        if good is None or bad is None:
            break
        rate = _round_rate((good + bad) / 2, args.step)
        if rate in (good, bad):
            break
        if report(run_once("bisect", rate, args.probe_seconds, args, workdir), runs).sustained:
            good = rate
        else:
            bad = rate
    return good, bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start-rate", type=float, default=5000, help="first probe's target (msg/s)")
    parser.add_argument("--factor", type=float, default=2.0, help="probe rates move by this factor")
    parser.add_argument("--bisections", type=int, default=2, help="bisections after the first bad rate")
    parser.add_argument("--probe-seconds", type=float, default=40, help="length of each probe run")
    parser.add_argument("--duration", type=float, default=180, help="length of the confirming run")
    parser.add_argument("--confirm-attempts", type=int, default=2, help="confirming runs at most")
    parser.add_argument("--delivery-wait", type=float, default=30, help="Locust's --delivery-wait (s)")
    parser.add_argument("--max-missed", type=float, default=0.01, help="missed sends ratio allowed")
    parser.add_argument("--min-rate", type=float, default=500, help="give up below this rate")
    parser.add_argument("--max-rate", type=float, default=400_000, help="never probe above this rate")
    parser.add_argument("--step", type=float, default=500, help="rates are rounded to this many msg/s")
    parser.add_argument("--processes", type=int, default=1, help="Locust --processes (1: none)")
    parser.add_argument("--traffic-profile", default=None,
                        help="Locust --traffic-profile (default: the bundled default profile)")  # fmt: skip
    parser.add_argument("--monitor-workers", type=int, default=0,
                        help="Locust --monitor-workers (0: the bundled stack sizes it to the machine)")  # fmt: skip
    parser.add_argument("--latency-budget", type=float, default=0.1,
                        help="Locust --latency-budget (its default): users = requests/s x this")  # fmt: skip
    args = parser.parse_args()
    if args.factor <= 1 or min(args.probe_seconds, args.duration, args.step, args.min_rate) <= 0:
        parser.error("--factor must be > 1; --probe-seconds, --duration, --step and --min-rate > 0")
    if args.confirm_attempts < 1 or args.bisections < 0:
        parser.error("--confirm-attempts must be ≥ 1 and --bisections ≥ 0")
    started = time.monotonic()
    own_cpu = time.process_time()
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start; nothing pinned"
    )
    example = locust_argv(args.start_rate, args.probe_seconds, Path("DIR"), args)
    print(f"each run: {shlex.join(example[1:])} (no --host: bundled sandbox and monitor, no faults)")
    print("columns: msg/s target and achieved (paced), missed sends ratio, delivered/lost/pending/duplicates "
          "summed over 2 destinations, worst destination's delivery p99, CPU seconds per million messages "
          "sent per process and in total, cores used while sending (all processes), 1-minute load average")  # fmt: skip
    print(HEADER, flush=True)
    runs: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        workdir = Path(tmp)
        good, bad = search(args, workdir, runs)
        confirmed: RunResult | None = None
        rate = good
        for _ in range(args.confirm_attempts):
            if rate is None or rate < args.min_rate:
                break
            confirmed = report(run_once("confirm", rate, args.duration, args, workdir), runs)
            if confirmed.sustained:
                break
            rate = _next_rate(rate, CONFIRM_STEP_DOWN, args.step)
    ok = confirmed is not None and confirmed.sustained
    print(
        f"\nprobes: highest sustained {_rate_text(good)}, lowest failed {_rate_text(bad)}; "
        + (
            f"confirmed over {args.duration:g}s at target {confirmed.target_rate:,.0f}: "
            f"{confirmed.achieved:,.0f} msg/s paced, unexplained loss {confirmed.unexplained_loss}"
            if ok
            else "no rate sustained over the confirming run"
        )
    )
    print(
        f"this script's own CPU (sampling /proc): {time.process_time() - own_cpu:.1f}s over "
        f"{time.monotonic() - started:.0f}s of wall time; load average at the end {os.getloadavg()[0]:.2f}"
    )
    final = confirmed  # the last confirming run, sustained or not (None: no rate to confirm)
    figures = {
        "sustained_msgs_per_sec": round(final.achieved) if ok else 0,
        "sustained_target_rate": final.target_rate if ok else None,
        "unexplained_loss": final.unexplained_loss if final is not None else None,
        "cpu_seconds_per_million": (
            {k: _round(v, 2) for k, v in final.cpu_per_million().items()} if final is not None else None
        ),
        "cores": final.cores() if final is not None else None,
        "confirmed": ok,
        "duration_seconds": args.duration,
        "probe_seconds": args.probe_seconds,
        "highest_probe_sustained": good,
        "lowest_probe_failed": bad,
        "processes": args.processes,
        "runs": [r.to_dict() for r in runs],
    }
    print(json.dumps(figures))
    return 0 if ok else 1


def _rate_text(rate: float | None) -> str:
    return "none" if rate is None else f"{rate:,.0f} msg/s"


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


if __name__ == "__main__":
    raise SystemExit(main())
