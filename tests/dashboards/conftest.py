"""One short real run scraped by a real Prometheus, shared by every test of the module that asks for it.

The sandbox and the monitor run as `harness` subprocesses with faults and refusals turned on (ingest
5xx/429, dropped and duplicated deliveries, a flaky and a rejecting destination, a probe of a closed
port), so that every panel has something true to show; `locust -f scenarios` drives real traffic at
the sandbox; Debian's `prometheus` scrapes all three every second with the recording and alert rules
of `deploy/rules` loaded. Every process is stopped by its own pid.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from harness.processes import HOST, ChildServer, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GRAFANA = ROOT / "grafana"
SCENARIOS = ROOT / "scenarios"
MIN_SCRAPED_SECONDS = 15.0
"""The run is scraped at least this long before the queries are evaluated (all at one fixed time)."""
DATA_TIMEOUT = 75.0
RATE_INTERVAL = "15s"
"""What `$__rate_interval` becomes (Grafana: at least 4 scrape intervals; the test scrapes every second)."""
LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?(\w+)\)$")
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
READY_QUERIES = (
    # the series whose first sample comes last (after a ledger delta, a loss deadline, a fault, a miss)
    "count(up == 1) == 3",
    "monitor_run_expected_messages",
    "monitor_run_lost_messages > 0",
    "monitor_canary_availability_ratio",
    "monitor_probe_success == 0",
    "monitor_webhook_requests_total{code='400'}",
    "monitor_webhook_requests_total{code='500'}",
    "loadgen_requests_total{status_class='5xx'}",
    "loadgen_requests_total{status_class='429'}",
    "loadgen_retries_total",
    "loadgen_missed_sends_total",
    "loadgen_bad_inputs_total",
    "sandbox_messages_discarded_total",
    "count(count by (kind) (sandbox_faults_injected_total)) == 6",
)
DESTINATIONS = {
    # name: (monitor behaviour, sandbox delivery faults, batch size)
    "webhook": (
        {"kind": "flaky", "share": 0.05, "status": 500},
        {"drop": 0.01, "duplicate": 0.01, "delay": {"share": 0.05, "kind": "fixed", "seconds": 0.2}},
        10,
    ),
    "warehouse": ({"kind": "rejecting", "share": 0.02, "status": 400}, {}, 50),
}
INGEST_FAULTS = {"error_5xx": 0.03, "error_429": 0.02, "accept_then_5xx": 0.01}


def require_tool(name: str) -> str:
    """The path of a Prometheus tool, or a failure that says how to install it (never a silent pass)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not installed: these tests need Debian's prometheus package "
            "(`apt-get install -y prometheus`; .ci/run installs it)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool")


@dataclass
class LiveRun:
    """A scraped real run: where Prometheus answers, and the time every query is evaluated at."""

    prometheus_url: str
    eval_time: float
    scrape_urls: dict[str, str]
    exposition: dict[str, str]
    """Each job's `/metrics` text, fetched once the run shows every kind of series."""
    scraped_seconds: float

    def query(self, expr: str) -> list[dict]:
        """An instant query at `eval_time`; a PromQL error fails the test with the query in the message."""
        answer = httpx.post(
            f"{self.prometheus_url}/api/v1/query",
            data={"query": expr, "time": f"{self.eval_time:.3f}"},
            timeout=10.0,
        )
        body = answer.json()
        assert answer.status_code == 200 and body.get("status") == "success", f"{expr!r}: {answer.text}"
        return body["data"]["result"]

    def has_data(self, expr: str) -> bool:
        """At least one series with a finite value (a quantile of no observations is NaN: no data)."""
        return any(math.isfinite(float(sample["value"][1])) for sample in self.query(expr))

    def label_values(self, label: str, match: str) -> list[str]:
        answer = httpx.get(
            f"{self.prometheus_url}/api/v1/label/{label}/values",
            params={"match[]": match, "start": f"{self.eval_time - 120:.3f}", "end": f"{self.eval_time:.3f}"},
            timeout=10.0,
        )
        answer.raise_for_status()
        return answer.json()["data"]

    def variable_values(self, dashboard: dict) -> dict[str, list[str]]:
        """Each query variable's values from its label_values() query, as Grafana would list them:
        all of them for a multi-value variable (Grafana's "All"), the first for a single-value one."""
        values: dict[str, list[str]] = {}
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = variable["query"]["query"]
            match = LABEL_VALUES.match(query)
            assert match, f"{dashboard['uid']}: variable {variable['name']} is not label_values(): {query}"
            selector, label = match.groups()
            found = sorted(self.label_values(label, self.substitute(selector or "{__name__=~'.+'}", values)))
            values[variable["name"]] = found if variable["multi"] else found[:1]
        return values

    def substitute(self, expr: str, values: dict[str, list[str]]) -> str:
        """`expr` as Grafana sends it: variables regex-escaped and joined as (a|b), built-ins filled in."""
        builtins = {
            "__rate_interval": RATE_INTERVAL,
            "__interval": "2s",
            "__range": f"{int(self.scraped_seconds)}s",
        }

        def replace(match: re.Match) -> str:
            name = next(g for g in match.groups() if g)
            if name in builtins:
                return builtins[name]
            assert values.get(name), f"variable ${name} has no value"
            escaped = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", v) for v in values[name]]
            return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

        return VARIABLE.sub(replace, expr)

    def panel_queries(self, dashboards: dict[str, dict]) -> Iterator[tuple[str, str]]:
        """(where, PromQL) for every panel target of every dashboard, once per value of a repeat variable."""
        for name, dashboard in dashboards.items():
            values = self.variable_values(dashboard)
            for panel in iter_panels(dashboard["panels"]):
                if panel["type"] == "row":
                    continue
                repeat = panel.get("repeat")
                settings = [{**values, repeat: [v]} for v in values[repeat]] if repeat else [values]
                for setting in settings:
                    for target in panel["targets"]:
                        where = f"{name}: {panel['title']} [{target['refId']}] {setting.get(repeat, '')}"
                        yield where, self.substitute(target["expr"], setting)

    def without_data(self, dashboards: dict[str, dict]) -> list[str]:
        """Every panel query, recording rule and READY_QUERIES entry that has no data at `eval_time`."""
        missing = [q for q in READY_QUERIES if not self.has_data(q)]
        missing += [r for r in recorded_series() if not self.has_data(r)]
        for dashboard in dashboards.values():
            missing += [
                f"{dashboard['uid']}: ${v} has no values"
                for v, found in self.variable_values(dashboard).items()
                if not found
            ]
        if not missing:
            missing += [
                f"{where}: {expr}"
                for where, expr in self.panel_queries(dashboards)
                if not self.has_data(expr)
            ]
        return missing


def recorded_series() -> list[str]:
    groups = yaml.safe_load((DEPLOY / "rules" / "recording.yml").read_text())["groups"]
    return [rule["record"] for group in groups for rule in group["rules"]]


def _configs(
    folder: Path, env: dict[str, str], sandbox_port: int, monitor_port: int
) -> tuple[Path, Path, str]:
    """Sandbox and monitor configs for the faulty run; secrets go to `env`, never into the files."""
    keys = {"everyone": secrets.token_hex(16), "canary": secrets.token_hex(16)}
    for i, key in enumerate(keys.values()):
        env[f"DASH_KEY_{i}"] = key
    for i, _ in enumerate(DESTINATIONS):
        env[f"DASH_SECRET_{i}"] = secrets.token_hex(16)
    monitor_url = f"http://{HOST}:{monitor_port}"
    sandbox = {
        "seed": 7,
        "sources": [{"name": name, "write_key_env": f"DASH_KEY_{i}"} for i, name in enumerate(keys)],
        "delivery": {"spool_path": str(folder / "spool.jsonl"), "backoff_initial_seconds": 0.1},
        "faults": {
            "ingest": INGEST_FAULTS,
            "destinations": {name: faults for name, (_b, faults, _s) in DESTINATIONS.items() if faults},
        },
        "destinations": [
            {
                "name": name,
                "url": f"{monitor_url}/webhook/{name}",
                "secret_env": f"DASH_SECRET_{i}",
                "batch_size": batch,
                "concurrency": 2,
            }
            for i, (name, (_b, _f, batch)) in enumerate(DESTINATIONS.items())
        ],
    }
    monitor = {
        "lost_after_seconds": 3,
        "destinations": {
            name: {"secret_env": f"DASH_SECRET_{i}", "behaviour": behaviour}
            for i, (name, (behaviour, _f, _s)) in enumerate(DESTINATIONS.items())
        },
        "canary": {
            "enabled": True,
            "ingest_url": f"http://{HOST}:{sandbox_port}",
            "write_key_env": "DASH_KEY_1",
            "interval_seconds": 1,
        },
        "probes": {
            "interval_seconds": 1,
            "timeout_seconds": 1,
            "targets": [
                {"name": "sandbox", "url": f"http://{HOST}:{sandbox_port}/healthz"},
                # nothing listens here: a destination that is down
                {"name": "closed-port", "url": f"http://{HOST}:{free_port()}/health"},
            ],
        },
    }
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(sandbox, sort_keys=False))
    (folder / "monitor.yaml").write_text(yaml.safe_dump(monitor, sort_keys=False))
    return folder / "sandbox.yaml", folder / "monitor.yaml", keys["everyone"]


def _prometheus_config(folder: Path, targets: dict[str, int]) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "rules" / "recording.yml"), str(DEPLOY / "rules" / "alerts.yml")],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"{HOST}:{port}"]}]}
            for job, port in targets.items()
        ],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _wait_for_data(
    prometheus_url: str, scrape_urls: dict[str, str], started: float, locust: ChildServer
) -> LiveRun:
    """Wait until every panel, recording rule and kind of series has data (counters that first move late,
    such as a retry or a bad input, need two scrapes inside the rate window), then fix the evaluation time.
    After DATA_TIMEOUT the run is handed over as it is, and the tests name what has no data."""
    dashboards = load_dashboards()
    run = LiveRun(prometheus_url, started, scrape_urls, {}, 0.0)
    while True:
        time.sleep(1.0)
        assert locust.process is not None and locust.process.poll() is None, (
            f"locust stopped early:\n{locust.log_tail()}"
        )
        run.eval_time = time.time() - 0.5
        run.scraped_seconds = run.eval_time - started
        if run.scraped_seconds < MIN_SCRAPED_SECONDS:
            continue
        if not run.without_data(dashboards) or time.time() > started + DATA_TIMEOUT:
            run.exposition = {job: httpx.get(url, timeout=5.0).text for job, url in scrape_urls.items()}
            return run


@pytest.fixture(scope="module")
def live_run() -> Iterator[LiveRun]:
    prometheus_bin = require_tool("prometheus")
    workdir = tempfile.TemporaryDirectory(prefix="harness-dashboards-")
    folder = Path(workdir.name)
    env = dict(os.environ)
    sandbox_port, monitor_port, metrics_port, prom_port = free_port(), free_port(), free_port(), free_port()
    sandbox_config, monitor_config, write_key = _configs(folder, env, sandbox_port, monitor_port)
    targets = {"loadgen": metrics_port, "monitor": monitor_port, "sandbox": sandbox_port}
    harness = [sys.executable, "-m", "harness"]
    locust_argv = [
        sys.executable, "-m", "locust", "-f", str(SCENARIOS), "--headless", "-t", "120s",
        "--target-rate", "400", "--max-lag", "0.002", "--duplicate-share", "0.05", "--delivery-wait", "0",
        "--host", f"http://{HOST}:{sandbox_port}", "--monitor-url", f"http://{HOST}:{monitor_port}",
        "--metrics-port", str(metrics_port), "--web-host", HOST,
    ]  # fmt: skip
    servers = [
        ChildServer(
            name="monitor",
            port=monitor_port,
            argv=[*harness, "monitor", "--config", str(monitor_config), "--port", str(monitor_port)],
            log_path=folder / "monitor.log",
            env=env,
        ),
        ChildServer(
            name="sandbox",
            port=sandbox_port,
            argv=[*harness, "sandbox", "--config", str(sandbox_config), "--port", str(sandbox_port)],
            log_path=folder / "sandbox.log",
            env=env,
        ),
        ChildServer(
            name="prometheus",
            port=prom_port,
            argv=[
                prometheus_bin,
                f"--config.file={_prometheus_config(folder, targets)}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address={HOST}:{prom_port}",
                "--log.level=warn",
            ],
            log_path=folder / "prometheus.log",
            health_path="/-/ready",
        ),
        # with --host, Locust starts no sandbox or monitor of its own: one process, stopped by its pid
        ChildServer(
            name="locust",
            port=metrics_port,
            argv=locust_argv,
            log_path=folder / "locust.log",
            env={**env, "HARNESS_WRITE_KEY": write_key},
            health_path="/metrics",
            cwd=folder,
        ),
    ]
    try:
        for server in servers:
            server.start(timeout=60.0)
        prometheus, locust = servers[2], servers[3]
        scrape_urls = {job: f"http://{HOST}:{port}/metrics" for job, port in targets.items()}
        yield _wait_for_data(prometheus.url, scrape_urls, time.time(), locust)
    finally:
        for server in reversed(servers):
            server.stop()
        workdir.cleanup()


def load_dashboards() -> dict[str, dict]:
    """Every dashboard JSON in grafana/dashboards, by file name."""
    found = {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((GRAFANA / "dashboards").glob("*.json"))
    }
    assert found, "no dashboards in grafana/dashboards"
    return found


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict]:
    return load_dashboards()


def iter_panels(panels: list[dict]) -> Iterator[dict]:
    """Every panel, including those nested in collapsed rows."""
    for item in panels:
        yield item
        yield from iter_panels(item.get("panels", []))


@pytest.fixture(scope="session")
def all_panels():
    return iter_panels
