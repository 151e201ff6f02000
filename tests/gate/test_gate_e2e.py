"""End to end: a short real load test with a failing threshold, then `harness gate --junit` on its summary."""

from __future__ import annotations

import json
import sys

# Passes on a healthy run of the bundled sandbox, except the throughput floor nobody reaches at 300 msg/s.
SLO = """thresholds:
  loss.ratio: ["== 0"]
  duplicates.count{destination:webhook}: ["== 0"]
  delivery.latency{destination:warehouse}: ["p99 < 30s"]
  errors.ratio{status_class:5xx}: ["< 1%"]
  throughput: [">= 1000000/s"]
"""


def test_a_failing_threshold_fails_the_run_and_the_gate(
    tmp_path, validate_junit, run_cmd, locust_args, free_port
):
    slo = tmp_path / "slo.yaml"
    slo.write_text(SLO)
    code, out, err = run_cmd(
        *locust_args, "-t", "8s", "--target-rate", "300", "--slo", str(slo),
        "--metrics-port", str(free_port()), "--delivery-wait", "20",
        timeout=150,
    )  # fmt: skip
    output = out + err
    assert code == 1, output[-4000:]
    table = output[output.index("SLO verdict") :]
    rows = {line.split()[0] + " " + line.split()[1]: line for line in table.splitlines()[2:7]}
    assert "PASS" in rows["loss.ratio =="] and "0.0000%" in rows["loss.ratio =="]
    assert "PASS" in rows["duplicates.count{destination:webhook} =="]
    assert "FAIL" in rows["throughput >="]
    assert "Verdict: FAIL: throughput >= 1000000/s (was " in table

    (summary_path,) = tmp_path.glob("reports/*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["verdict"]["passed"] is False
    assert [r["passed"] for r in summary["verdict"]["results"]] == [True, True, True, True, False]

    junit = tmp_path / "slo-junit.xml"
    code, out, err = run_cmd(
        sys.executable, "-m", "harness", "gate", "--slo", str(slo), str(summary_path), "--junit", str(junit)
    )
    assert code == 1, out + err
    assert "Verdict: FAIL: throughput >= 1000000/s" in out
    root = validate_junit(junit)
    assert (root.get("tests"), root.get("failures")) == ("5", "1")
    failed = [case for case in root.iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failed] == ["throughput >= 1000000/s"]
    assert f"defined at: {slo}:6" in failed[0].find("failure").text
    assert root.find("testsuite/properties/property[@name='run']").get("value") == summary["run"]["name"]

    # The same summary against its own baseline passes the regression checks.
    code, out, err = run_cmd(
        sys.executable, "-m", "harness", "gate", "--slo", str(slo), str(summary_path),
        "--baseline", str(summary_path),
    )  # fmt: skip
    assert code == 1 and out.count("(baseline ") >= 6, out + err
    assert "FAIL" not in "".join(line for line in out.splitlines() if "(baseline " in line)
