"""Fuzz every endpoint of the sandbox and the monitor: N hypothesis-made requests each, answers by class.

How: both servers run as child processes on loopback with their bearer tokens set (so the 401 path
and the authorized path are both reached); the sandbox delivers to a null receiver. For each endpoint
in `tests/fuzzing.py`, hypothesis generates `--per-endpoint` requests (generation phase only, no
shrinking) and one httpx client sends them in turn. Printed per endpoint: requests sent, answers by
class (2xx, 4xx, 5xx, no answer), the most frequent 4xx codes, and every problem (a 5xx, or an
error that is not JSON naming a code and message). After the fuzz: each server's RSS (VmRSS), and
the monitor's ledger and audit bytes, against the ledger bound of the fuzz config. Exit 1 on any
problem.

    python bench/fuzz.py [--per-endpoint 10000] [--only monitor|sandbox]
"""

from __future__ import annotations

import argparse
import http.server
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.processes import ChildServer, free_port  # noqa: E402
from tests import fuzzing  # noqa: E402


class _NullHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def rss_bytes(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) * 1024


def metric(text: str, name: str) -> float | None:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def fuzz_endpoint(
    client: httpx.Client, name: str, strategy, count: int
) -> tuple[Counter, Counter, list[str]]:
    classes: Counter = Counter()
    codes: Counter = Counter()
    problems: list[str] = []

    def count_answer(request: fuzzing.Request, response: fuzzing.Answer) -> None:
        problem = fuzzing.answer_problem(request, response)
        if problem:
            problems.append(problem)
        if isinstance(response, httpx.HTTPError):
            classes["no answer"] += 1
            return
        classes[f"{response.status_code // 100}xx"] += 1
        if 400 <= response.status_code < 500 and request.method == "HEAD":
            codes[f"{response.status_code} (HEAD, no body)"] += 1
        elif 400 <= response.status_code < 500:
            try:
                codes[f"{response.status_code} {response.json().get('code')}"] += 1
            except ValueError:
                codes[f"{response.status_code} (no JSON)"] += 1

    started = time.perf_counter()
    fuzzing.fuzz(client, strategy, count, count_answer)
    elapsed = time.perf_counter() - started
    sent = sum(classes.values())
    top = ", ".join(f"{c}: {n}" for c, n in codes.most_common(6))
    print(
        f"  {name:<40} {sent:>6} requests in {elapsed:5.0f} s  "
        + "  ".join(f"{k} {classes.get(k, 0)}" for k in ("2xx", "3xx", "4xx", "5xx", "no answer"))
    )
    if top:
        print(f"  {'':<40} top 4xx codes: {top}")
    for problem in problems[:5]:
        print(f"  {'':<40} PROBLEM {problem}")
    return classes, codes, problems


def start_servers(folder: Path) -> tuple[ChildServer, ChildServer, http.server.ThreadingHTTPServer]:
    null = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NullHandler)
    null.daemon_threads = True
    threading.Thread(target=null.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HARNESS_MONITOR_TOKEN": fuzzing.MONITOR_TOKEN,
        "HARNESS_SANDBOX_TOKEN": fuzzing.SANDBOX_TOKEN,
    }
    (folder / "monitor.yaml").write_text(yaml.safe_dump(fuzzing.MONITOR_CONFIG))
    sandbox_config = fuzzing.sandbox_config(
        f"http://127.0.0.1:{null.server_address[1]}/", str(folder / "spool")
    )
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(sandbox_config))
    servers = []
    for part in ("monitor", "sandbox"):
        port = free_port()
        argv = [sys.executable, "-m", part, "--config", str(folder / f"{part}.yaml"), "--port", str(port)]
        servers.append(ChildServer(part, port, argv, folder / f"{part}.log", env=env, cwd=ROOT).start())
    return servers[0], servers[1], null


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-endpoint", type=int, default=10_000)
    parser.add_argument("--only", choices=["monitor", "sandbox"])
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        monitor, sandbox, null = start_servers(Path(tmp))
        try:
            base = {"monitor": rss_bytes(monitor.pid), "sandbox": rss_bytes(sandbox.pid)}
            for part, server, endpoints in (
                ("monitor", monitor, fuzzing.MONITOR_ENDPOINTS),
                ("sandbox", sandbox, fuzzing.SANDBOX_ENDPOINTS),
            ):
                if args.only and part != args.only:
                    continue
                print(f"{part} (pid {server.pid}, {args.per_endpoint} inputs per endpoint):")
                with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client:
                    for name, strategy in endpoints.items():
                        _, _, problems = fuzz_endpoint(client, name, strategy, args.per_endpoint)
                        failures += len(problems)
                    if part == "sandbox":
                        auth = {"authorization": f"Bearer {fuzzing.SANDBOX_TOKEN}"}
                        assert client.put("/admin/faults", json={}, headers=auth).status_code == 200
            auth = {"authorization": f"Bearer {fuzzing.MONITOR_TOKEN}"}
            text = httpx.get(f"{monitor.url}/metrics", timeout=60).text
            summary_status = httpx.get(f"{monitor.url}/api/summary", headers=auth, timeout=60).status_code
            limit = fuzzing.MONITOR_CONFIG["max_ledger_bytes"]
            print("after the fuzz:")
            for name, server in (("monitor", monitor), ("sandbox", sandbox)):
                now = rss_bytes(server.pid)
                print(f"  {name} RSS {now / 2**20:.0f} MiB (started at {base[name] / 2**20:.0f} MiB)")
            ledger_bytes = metric(text, "monitor_ledger_memory_bytes") or 0.0
            audit_bytes = metric(text, "monitor_audit_memory_bytes") or 0.0
            print(
                f"  monitor ledgers {ledger_bytes / 2**10:.0f} KiB of the {limit / 2**20:.0f} MiB bound "
                f"(max_ledger_bytes), audit {audit_bytes / 2**20:.1f} MiB, "
                f"ledger deltas accepted {metric(text, 'monitor_ledger_deltas_total'):.0f}, "
                f"refused {metric(text, 'monitor_ledger_rejected_total'):.0f}; /api/summary answers {summary_status}"
            )
            if summary_status != 200 or ledger_bytes > limit:
                failures += 1
        finally:
            monitor.stop()
            sandbox.stop()
            null.shutdown()
    print("result:", "no problem" if not failures else f"{failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
