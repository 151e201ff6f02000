"""Prometheus side, for real: promtool on the config, rules and every /metrics, and every dashboard
panel's query answered with data by a Prometheus server scraping a short real run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def run_promtool(promtool: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool, *args], input=stdin, capture_output=True, text=True, cwd=DEPLOY, timeout=60, check=False
    )


# promtool ---------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_promtool_check_config(promtool):
    result = run_promtool(promtool, "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout + result.stderr


@pytest.mark.e2e
def test_promtool_check_rules(promtool):
    files = sorted(str(p.relative_to(DEPLOY)) for p in (DEPLOY / "rules").glob("*.yml"))
    assert files == ["rules/alerts.yml", "rules/recording.yml"]
    result = run_promtool(promtool, "check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
def test_promtool_rule_unit_tests_cover_every_alert(promtool):
    tests = sorted((DEPLOY / "rules" / "tests").glob("*.yml"))
    result = run_promtool(promtool, "test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {
        r["alert"]
        for g in yaml.safe_load((DEPLOY / "rules" / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    for alert in alerts:
        firing = [
            case
            for path in tests
            for test in yaml.safe_load(path.read_text())["tests"]
            for case in test.get("alert_rule_test", [])
            if case["alertname"] == alert
        ]
        assert any(case["exp_alerts"] for case in firing), f"no unit test shows {alert} firing"
        assert any(not case["exp_alerts"] for case in firing), f"no unit test shows {alert} silent"


@pytest.mark.e2e
def test_promtool_rule_unit_tests_can_fail(promtool, tmp_path):
    """A healthy series wrongly expected to alert makes `promtool test rules` fail (the tests have teeth)."""
    test = yaml.safe_load((DEPLOY / "rules" / "tests" / "alerts_test.yml").read_text())
    test["rule_files"] = [str(DEPLOY / "rules" / "recording.yml"), str(DEPLOY / "rules" / "alerts.yml")]
    probe = next(
        t for t in test["tests"] if t["alert_rule_test"][0]["alertname"] == "DestinationProbeFailing"
    )
    probe["alert_rule_test"][1]["exp_alerts"][0]["exp_labels"]["target"] = "status-page"
    test["tests"] = [probe]
    path = tmp_path / "broken_test.yml"
    path.write_text(yaml.safe_dump(test))
    result = run_promtool(promtool, "test", "rules", str(path))
    assert result.returncode != 0 and "status-page" in result.stdout + result.stderr


@pytest.mark.parametrize("job", ["loadgen", "monitor", "sandbox"])
def test_promtool_check_metrics_on_each_real_endpoint(promtool, live_run, job):
    text = live_run.exposition[job]
    prefix = f"{job}_"
    assert any(line.startswith(prefix) for line in text.splitlines()), f"{job}: no {prefix}* samples"
    result = run_promtool(promtool, "check", "metrics", stdin=text)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        f"{job} /metrics is not promtool-clean:\n{result.stdout}{result.stderr}"
    )


# every panel against the real Prometheus -------------------------------------------------------


def test_every_variable_has_values(dashboards, live_run):
    values = {name: live_run.variable_values(d) for name, d in dashboards.items()}
    assert values["delivery.json"]["destination"] == ["warehouse", "webhook"]
    assert len(values["delivery.json"]["run"]) == 1
    assert values["sandbox.json"]["source"] == ["canary", "everyone"]
    assert {"android", "ios", "web", "node"} <= set(values["load.json"]["source"])


def test_grafana_style_substitution(live_run):
    values = {"source": ["a.b", "c"], "run": ["7"]}
    expr = 'x{source=~"$source", run="${run}"}[$__rate_interval]'
    assert live_run.substitute(expr, values) == 'x{source=~"(a\\\\.b|c)", run="7"}[15s]'


def test_every_panel_query_returns_data(dashboards, live_run):
    queries = list(live_run.panel_queries(dashboards))
    assert len(queries) > 60
    empty = [f"{where}: {expr}" for where, expr in queries if not live_run.has_data(expr)]
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_a_query_for_a_missing_series_is_caught(live_run):
    """The check above can fail: a misspelt metric gives no data."""
    assert not live_run.has_data("sum(rate(loadgen_messagez_total[15s]))")
    assert not live_run.has_data("histogram_quantile(0.99, sum by (le) (rate(loadgen_messages_total[15s])))")


def test_panels_show_the_injected_faults(live_run):
    """The faulty run shows up where it should: 5xx and 429 answers, client retries, lost and duplicate
    deliveries, refused webhooks, a probe down, and the faults the sandbox counted."""
    classes = {
        r["metric"]["status_class"] for r in live_run.query("sum by (status_class) (loadgen_requests_total)")
    }
    assert {"2xx", "5xx", "429"} <= classes
    assert live_run.query("sum(loadgen_retries_total) > 0")
    assert live_run.query("sum(monitor_run_lost_messages{destination='webhook'}) > 0")
    assert live_run.query("sum(monitor_duplicate_deliveries_total{destination='webhook'}) > 0")
    codes = {r["metric"]["code"] for r in live_run.query("sum by (code) (monitor_webhook_requests_total)")}
    assert {"200", "500", "400"} <= codes
    probes = {r["metric"]["target"]: r["value"][1] for r in live_run.query("monitor_probe_success")}
    assert probes == {"sandbox": "1", "closed-port": "0"}
    kinds = {r["metric"]["kind"] for r in live_run.query("sum by (kind) (sandbox_faults_injected_total)")}
    assert {"error_5xx", "error_429", "accept_then_5xx", "drop", "duplicate", "delay"} <= kinds


def test_recording_rules_produce_series(live_run):
    groups = yaml.safe_load((DEPLOY / "rules" / "recording.yml").read_text())["groups"]
    records = [rule["record"] for group in groups for rule in group["rules"]]
    assert len(records) == 13
    missing = [record for record in records if not live_run.has_data(record)]
    assert not missing, f"recording rules without a series: {missing}"
    # the SLIs agree with the raw series they summarise
    (errors,) = live_run.query("job:loadgen_request_errors:ratio_rate1m")
    assert 0.02 < float(errors["value"][1]) < 0.2, errors  # ~6 % of requests get an injected fault
    loss = {
        r["metric"]["destination"]: float(r["value"][1])
        for r in live_run.query("run_destination:monitor_delivery_loss:ratio")
    }
    # webhook drops 1% of deliveries; warehouse has no sandbox faults (its monitor refuses 2% with a 400,
    # which a pipeline must discard and the audit does not count as lost).
    assert loss["webhook"] > 0 and loss["warehouse"] == 0


def test_alert_rules_were_evaluated_on_the_run(live_run):
    """The rules loaded into the real server evaluate without error; MessagesLost and
    DestinationProbeFailing are at least pending for the faults injected."""
    import httpx

    rules = httpx.get(f"{live_run.prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    states = {r["name"]: r for g in rules for r in g["rules"] if r["type"] == "alerting"}
    assert {
        "DeliveryLatencyHigh",
        "MessagesLost",
        "DedupeLeak",
        "DestinationDown",
        "IngestErrorRateHigh",
    } <= set(states)
    assert all(r["health"] == "ok" for g in rules for r in g["rules"]), [
        (r["name"], r.get("lastError")) for g in rules for r in g["rules"] if r["health"] != "ok"
    ]
    assert states["MessagesLost"]["state"] in ("pending", "firing")
    assert states["DestinationProbeFailing"]["state"] in ("pending", "firing")


def test_every_metric_the_rules_use_is_exported(live_run):
    """Rules name raw metrics the exporters must keep serving (a rename upstream fails here, not in production)."""
    text = "\n".join(live_run.exposition.values())
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"}
    exported = samples | {re.sub(r"_(bucket|sum|count)$", "", name) for name in samples}
    for path in ("recording.yml", "alerts.yml"):
        rules = [
            r for g in yaml.safe_load((DEPLOY / "rules" / path).read_text())["groups"] for r in g["rules"]
        ]
        used = {m for r in rules for m in re.findall(r"(?<![:\w])(?:loadgen|monitor|sandbox)_\w+", r["expr"])}
        assert used, path
        assert used <= exported, f"{path}: not exported: {sorted(used - exported)}"
