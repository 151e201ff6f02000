"""Benchmark: messages/s and requests/s per generator core, the harness against Locust's clients and wrk.

Method: one null sink (nginx from Debian answering every POST with `{"success": true}`, its
stub_status counting requests) pinned to the last CPU; each contender in turn pinned to the first
CPU, for the same duration:
  (a) naive    a naive locustfile (HttpUser, one `json=` dict per event): bench/locustfiles/naive.py
  (b) fasthttp stock FastHttpUser posting pre-built requests of the default profile's mix
               (bench/locustfiles/prebuilt.py)
  (c) wrk      wrk (C) posting the same pre-built requests from a Lua script: the limit
  (d) scenarios `locust -f scenarios` with the default profile (bad inputs, duplicates and replay
               included), open model: target rates from --start-rate up by --step while it keeps its
               schedule (missed sends < 1%, so the profile's mix is what was sent); the highest such
               run is reported. --latency-budget 0.03 sizes the user pool for a fast local sink.
  (e) client only  the same pre-built requests through the harness's own HTTP client with no Locust
               and no generation (bench/client_loop.py), one greenlet per connection
  (f) engine only  the same pre-built requests through the sending engine (harness/engine.py) with
               no Locust and no generation (bench/client_loop.py --engine): the floor of the
               scenarios' sending path in Python
The scenarios send through the engine (d), so (d) / (f) is what generation, pacing, the ledger and
the statistics cost on top of sending.
After a warm-up, a window of --seconds is measured: requests from the sink's counter, the
contender's CPU seconds from /proc (user + system, all its processes). "Per core" is per CPU second
of the generator, which other work on the machine changes far less than wall rates (printed too).
Messages per request: 1 for (a), the mix's mean for (b) and (c), the run summary's for (d) (new
events, replays and duplicate re-sends; bad-input requests count as requests carrying no message).
With --scale-out, (d) runs once more at twice that rate with `--processes 2` (two workers and the
master, unpinned, sharing the 2 cores with the sink) for the 1 → 2 worker figure (wall msg/s).

Run: python bench/throughput.py [--seconds S] [--start-rate R] [--scale-out]. Needs Debian's
nginx-light (or nginx) and wrk. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from harness.processes import ChildServer, cpu_seconds, descendants, free_port
from loadgen.profile import DEFAULT_PROFILE, load_profile
from loadgen.traffic import TrafficGenerator

ROOT = Path(__file__).resolve().parent.parent

GENERATOR_CPU = 0
SINK_CPU = (os.cpu_count() or 2) - 1
MIX_REQUESTS = 2000
WARMUP = 6.0
SCENARIOS_WARMUP = 12.0  # the scenarios build the traffic model (event pools, users) at test start
USERS = 50
MAX_MISSED = 0.01  # the scenarios keep their schedule (and so the profile's mix) below this

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
events {{ worker_connections 30000; }}
http {{
  access_log off;
  client_body_temp_path {dir};
  client_max_body_size 20m;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{port} backlog=8192;
    location = /nginx_status {{ stub_status; }}
    location / {{ default_type application/json; return 200 '{{"success": true}}'; }}
  }}
}}
"""


@dataclasses.dataclass
class Row:
    name: str
    requests: int
    messages: float
    cpu_seconds: float
    wall_seconds: float

    @property
    def msgs_per_core(self) -> float:
        return self.messages / self.cpu_seconds

    @property
    def reqs_per_core(self) -> float:
        return self.requests / self.cpu_seconds


class Sink:
    """nginx answering {"success": true}, pinned to its own CPU, counting requests."""

    def __init__(self, workdir: Path) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise SystemExit("bench/throughput.py needs nginx: apt-get install nginx-light")
        self.port = free_port()
        conf = workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=workdir, port=self.port))
        argv = ["taskset", "-c", str(SINK_CPU), nginx, "-p", str(workdir), "-c", str(conf),
                "-e", str(workdir / "error.log")]  # fmt: skip
        self.server = ChildServer("null sink (nginx)", self.port, argv, workdir / "nginx.log",
                                  health_path="/nginx_status")  # fmt: skip

    @property
    def url(self) -> str:
        return self.server.url

    def requests(self) -> int:
        text = httpx.get(self.url + "/nginx_status", timeout=5).text
        return int(text.splitlines()[2].split()[2]) - 1  # accepts handled requests: minus this one

    def __enter__(self) -> Sink:
        self.server.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.stop()


def runqueue_wait_seconds(pid: int) -> float:
    """Seconds the threads of `pid` and its descendants waited for a CPU while runnable (schedstat):
    on a shared machine, the time other work took from the contender."""
    total = 0.0
    for process in (pid, *descendants(pid)):
        for stat in Path(f"/proc/{process}/task").glob("*/schedstat"):
            try:
                total += int(stat.read_text().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                continue
    return total


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants (from /proc)."""
    return sum(cpu_seconds(p) or 0.0 for p in (pid, *descendants(pid)))


def build_mix(path: Path, lua_path: Path) -> float:
    """Write MIX_REQUESTS requests of the default profile's mix; return their mean messages per request."""
    profile = dataclasses.replace(load_profile(DEFAULT_PROFILE), bad_input_share=0.0)
    generator = TrafficGenerator(
        profile, seed=5, run=1, stream=1, write_keys={s: "k" for s in profile.sources}
    )
    names = list(generator.sources)
    weights = np.array([generator.sources[s] / generator.mean_messages_per_request(s) for s in names])
    order = np.random.default_rng(5).choice(len(names), size=MIX_REQUESTS, p=weights / weights.sum())
    requests = [generator.next_request(names[i]) for i in order]
    with path.open("w") as out:
        for r in requests:
            row = {"path": r.path, "headers": r.headers, "body": base64.b64encode(r.body).decode()}
            out.write(json.dumps(row) + "\n")
    lines = ["local requests = {}"]
    for i, r in enumerate(requests, 1):
        headers = "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in r.headers.items()) + "}"
        lines.append(f"requests[{i}] = wrk.format('POST', {_lua(r.path)}, {headers}, {_lua(r.body)})")
    lines += [
        "local i = 0",
        "function request()",
        f"  i = i % {len(requests)} + 1",
        "  return requests[i]",
        "end",
    ]
    lua_path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return sum(r.message_count for r in requests) / len(requests)


def _lua(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}" for b in data) + '"'


def measure(name: str, argv: list[str], sink: Sink, seconds: float, env: dict | None = None,
            pin: bool = True, warmup: float = WARMUP) -> tuple[int, float, float, subprocess.Popen]:  # fmt: skip
    """Start a contender, skip the warm-up, measure a window; returns (requests, cpu, wall, process)."""
    if pin:
        argv = ["taskset", "-c", str(GENERATOR_CPU), *argv]
    log = open(Path(tempfile.gettempdir()) / f"throughput-{name}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        time.sleep(warmup)
        if process.poll() is not None:
            raise SystemExit(f"{name} exited early; see {log.name}")
        requests0, cpu0, wall0 = sink.requests(), tree_cpu_seconds(process.pid), time.monotonic()
        waited0 = runqueue_wait_seconds(process.pid)
        time.sleep(seconds)
        requests1, cpu1, wall1 = sink.requests(), tree_cpu_seconds(process.pid), time.monotonic()
        waited = runqueue_wait_seconds(process.pid) - waited0
        print(f"  {name}: waited {waited / (wall1 - wall0):.0%} of the window for a CPU (others' work)")
    except BaseException:
        _stop(process)
        raise
    return requests1 - requests0, cpu1 - cpu0, wall1 - wall0, process


def _stop(process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait for a contender to end by itself, else stop its process group."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def locust_argv(locustfile: str, sink: Sink, run_time: float, *extra: str) -> list[str]:
    locust = str(Path(sys.executable).with_name("locust"))
    return [locust, "-f", locustfile, "--headless", "--only-summary", "--host", sink.url,
            "-t", f"{run_time:.0f}s", *extra]  # fmt: skip


@dataclasses.dataclass
class ScenariosRun:
    target_rate: float
    row: Row
    missed_ratio: float
    missed_sends: int

    @property
    def sustained(self) -> bool:
        return self.missed_ratio < MAX_MISSED


def run_scenarios(name: str, sink: Sink, args: argparse.Namespace, rate: float, report_dir: Path,
                  *extra: str, pin: bool = True) -> ScenariosRun:  # fmt: skip
    """One `locust -f scenarios` run at `rate`; messages per request from its own run summary."""
    run_time = SCENARIOS_WARMUP + args.seconds + 4
    argv = locust_argv(str(ROOT / "scenarios"), sink, run_time, "--write-key", "bench-write-key",
                       "--target-rate", f"{rate:.0f}", "--latency-budget", str(args.latency_budget),
                       "--report-dir", str(report_dir), "--metrics-port", "0", *extra)  # fmt: skip
    requests, cpu, wall, process = measure(name, argv, sink, args.seconds, pin=pin, warmup=SCENARIOS_WARMUP)
    _stop(process)
    summaries = sorted(report_dir.glob("*/summary.json"), key=os.path.getmtime)
    if not summaries:
        raise SystemExit(f"{name}: no run summary in {report_dir}")
    load = json.loads(summaries[-1].read_text())["load"]
    # bad-input requests are sent but not counted as messages: one carries 2,501 invalid ones
    per_request = (load["messages"] - load["bad_input_messages"]) / max(1, load["requests"])
    row = Row(name, requests, requests * per_request, cpu, wall)
    run = ScenariosRun(rate, row, load["missed_ratio"], load["missed_sends"])
    print(f"  {name} at {rate:,.0f} msg/s: {run.row.messages / wall:,.0f} msg/s sent, missed sends "
          f"{run.missed_ratio:.1%} ({run.missed_sends:,}), generator CPU {cpu / wall:.0%} busy, "
          f"{run.row.msgs_per_core:,.0f} msg/s per CPU second")  # fmt: skip
    return run


def highest_sustained(sink: Sink, args: argparse.Namespace, workdir: Path) -> ScenariosRun:
    """Raise the target rate by --step while the scenarios keep their schedule on one core."""
    best: ScenariosRun | None = None
    rate = args.start_rate
    for attempt in range(args.max_probes):
        run = run_scenarios("scenarios", sink, args, rate, workdir / f"reports-{attempt}")
        if not run.sustained:
            break
        best = run
        rate *= args.step
    if best is None:
        raise SystemExit(
            f"the scenarios missed more than {MAX_MISSED:.0%} of sends at --start-rate {args.start_rate:g}"
        )
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured window per contender")
    parser.add_argument(
        "--start-rate", type=float, default=10_000, help="scenarios' first target rate (msg/s)"
    )
    parser.add_argument("--step", type=float, default=1.2, help="factor between the scenarios' target rates")
    parser.add_argument("--max-probes", type=int, default=8)
    parser.add_argument("--latency-budget", type=float, default=0.03,
                        help="the scenarios' --latency-budget (the sink answers in ~1 ms; queueing adds more)")  # fmt: skip
    parser.add_argument("--scale-out", action="store_true", help="also run scenarios with --processes 2")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/throughput.py needs wrk: apt-get install wrk")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp, Sink(Path(tmp)) as sink:
        workdir = Path(tmp)
        mix, lua = workdir / "mix.jsonl", workdir / "mix.lua"
        mean = build_mix(mix, lua)
        print(f"sink: nginx on CPU {SINK_CPU} at {sink.url}; generators on CPU {GENERATOR_CPU}")
        print(f"mix: {MIX_REQUESTS} requests of the default profile, {mean:.2f} messages per request")
        run_time = WARMUP + args.seconds + 4
        users = ["-u", str(USERS), "-r", str(USERS)]

        requests, cpu, wall, process = measure(
            "naive",
            locust_argv(str(ROOT / "bench/locustfiles/naive.py"), sink, run_time, *users),
            sink,
            args.seconds,
        )
        _stop(process)
        rows.append(Row("naive", requests, requests, cpu, wall))

        env = dict(os.environ, THROUGHPUT_MIX=str(mix))
        argv = locust_argv(str(ROOT / "bench/locustfiles/prebuilt.py"), sink, run_time, *users)
        requests, cpu, wall, process = measure("fasthttp", argv, sink, args.seconds, env=env)
        _stop(process)
        rows.append(Row("fasthttp", requests, requests * mean, cpu, wall))

        argv = ["wrk", "-t1", f"-c{USERS}", f"-d{run_time:.0f}s", "-s", str(lua), sink.url]
        requests, cpu, wall, process = measure("wrk", argv, sink, args.seconds)
        _stop(process)
        rows.append(Row("wrk", requests, requests * mean, cpu, wall))

        argv = [sys.executable, str(ROOT / "bench/client_loop.py"), sink.url, "--connections", str(USERS),
                "--seconds", f"{run_time:.0f}"]  # fmt: skip
        requests, cpu, wall, process = measure("client only", argv, sink, args.seconds, env=env)
        _stop(process)
        rows.append(Row("client only", requests, requests * mean, cpu, wall))

        requests, cpu, wall, process = measure("engine only", [*argv, "--engine"], sink, args.seconds, env=env)
        _stop(process)
        rows.append(Row("engine only", requests, requests * mean, cpu, wall))

        best = highest_sustained(sink, args, workdir)
        rows.append(best.row)
        scale_out = None
        if args.scale_out:
            scale_out = run_scenarios("scenarios x2", sink, args, 2 * best.target_rate, workdir / "reports-x2",
                                      "--processes", "2", pin=False)  # fmt: skip
            rows.append(scale_out.row)

    by_name = {row.name: row for row in rows}
    naive = by_name["naive"].msgs_per_core
    print(
        f"\n{'contender':14} {'msg/s/core':>12} {'req/s/core':>12} {'msg/s wall':>12} {'CPU s':>7} {'vs naive':>9}"
    )
    for row in rows:
        print(f"{row.name:14} {row.msgs_per_core:12,.0f} {row.reqs_per_core:12,.0f} "
              f"{row.messages / row.wall_seconds:12,.0f} {row.cpu_seconds:7.2f} {row.msgs_per_core / naive:8.1f}x")  # fmt: skip
    scenarios = by_name["scenarios"]
    figures = {
        "naive_msgs_per_sec_per_core": round(naive),
        "fasthttp_msgs_per_sec_per_core": round(by_name["fasthttp"].msgs_per_core),
        "wrk_msgs_per_sec_per_core": round(by_name["wrk"].msgs_per_core),
        "scenarios_msgs_per_sec_per_core": round(scenarios.msgs_per_core),
        "scenarios_reqs_per_sec_per_core": round(scenarios.reqs_per_core),
        "scenarios_vs_naive": round(scenarios.msgs_per_core / naive, 1),
        "scenarios_vs_fasthttp": round(scenarios.msgs_per_core / by_name["fasthttp"].msgs_per_core, 2),
        "scenarios_vs_wrk": round(scenarios.msgs_per_core / by_name["wrk"].msgs_per_core, 3),
        "client_only_msgs_per_sec_per_core": round(by_name["client only"].msgs_per_core),
        "engine_only_msgs_per_sec_per_core": round(by_name["engine only"].msgs_per_core),
        "scenarios_vs_engine_only": round(scenarios.msgs_per_core / by_name["engine only"].msgs_per_core, 3),
        "scenarios_missed_sends": best.missed_sends,
        "mix_messages_per_request": round(mean, 3),
        "seconds": args.seconds,
        "scenarios_target_rate": best.target_rate,
        "scenarios_missed_ratio": round(best.missed_ratio, 4),
        "latency_budget": args.latency_budget,
    }
    if scale_out is not None:
        one_wall = scenarios.messages / scenarios.wall_seconds
        two_wall = scale_out.row.messages / scale_out.row.wall_seconds
        figures["scale_out_1_worker_msgs_per_sec"] = round(one_wall)
        figures["scale_out_2_workers_msgs_per_sec"] = round(two_wall)
        figures["scale_out_2_workers_missed_ratio"] = round(scale_out.missed_ratio, 4)
        figures["scale_out_factor"] = round(two_wall / one_wall, 2)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
