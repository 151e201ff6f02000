"""`harness gate` as a real process: table, exit codes 0/1/2, JUnit and JSON output, baselines."""

from __future__ import annotations

import copy
import json

import pytest

SLO = "thresholds:\n  loss.ratio{destination:warehouse}: ['== 0']\n  throughput: ['>= 500/s']\n  delivery.latency: ['p99 < 10s']\n"


def test_passing_thresholds_exit_0_with_a_table(gate, write, summary):
    result = gate("--slo", str(write("slo.yaml", SLO)), str(write("s.json", summary)))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert any("loss.ratio{destination:warehouse} == 0" in line and "PASS" in line for line in lines)
    assert any("throughput >= 500/s" in line and "1,000.0/s" in line for line in lines)
    assert any("delivery.latency p99 < 10s" in line and "3.000s" in line for line in lines)
    assert "Verdict: PASS" in result.out


def test_a_failing_threshold_exits_1_and_names_it(gate, write, summary):
    slo = write("slo.yaml", SLO + "  loss.ratio: ['== 0']\n")
    result = gate("--slo", str(slo), str(write("s.json", summary)))
    assert result.code == 1
    assert "Verdict: FAIL: loss.ratio == 0 (was 0.5000%)" in result.out


def test_the_bundled_thresholds_are_the_default(gate, write, summary):
    result = gate(str(write("s.json", summary)))
    assert result.code == 1  # the fixture loses and duplicates messages
    assert "duplicates.count == 0" in result.out and "thresholds.yaml" not in result.err


def test_junit_and_json_outputs(gate, write, summary, tmp_path, validate_junit):
    slo = write("slo.yaml", SLO + "  loss.ratio: ['== 0']\n")
    result = gate(
        "--slo", str(slo), str(write("s.json", summary)), "--junit", "out.xml", "--json", "verdict.json"
    )
    assert result.code == 1
    root = validate_junit(tmp_path / "out.xml")
    assert root.get("tests") == "4" and root.get("failures") == "1"
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["passed"] is False and len(verdict["results"]) == 4


def test_a_baseline_regression_fails(gate, write, summary):
    slo = write("slo.yaml", SLO)
    run = copy.deepcopy(summary)
    run["load"]["throughput"] = 850.0
    base, current = str(write("base.json", summary)), str(write("run.json", run))
    result = gate("--slo", str(slo), current, "--baseline", base, "--max-regression", "0.1")
    assert result.code == 1
    assert "throughput >= 900.0/s (baseline 1,000.0/s −10%)" in result.out
    assert gate("--slo", str(slo), current, "--baseline", base, "--max-regression", "0.2").code == 0


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda w, s: ["--slo", str(w("slo.yaml", "thresholds:\n  bogus: ['== 0']\n")), str(w("s.json", s))],
         "slo.yaml:2: unknown metric 'bogus'"),
        (lambda w, s: ["--slo", "missing.yaml", str(w("s.json", s))], "missing.yaml: cannot read the thresholds"),
        (lambda w, s: [str(w("s.json", '{"format": "cdp-harness/run-summary",\n "version": 1,\n oops}'))],
         "s.json:3:2: the summary is not valid JSON"),
        (lambda w, s: ["nowhere.json"], "nowhere.json: cannot read the summary"),
        (lambda w, s: [str(w("s.json", {**s, "format": "k6"}))], "s.json: key 'format' is 'k6'"),
        (lambda w, s: [str(w("s.json", {**s, "version": 9}))], "s.json: key 'version' is 9"),
        (lambda w, s: [str(w("s.json", {k: v for k, v in s.items() if k != "load"}))],
         "s.json: key 'load' is missing"),
        (lambda w, s: [str(w("s.json", [1, 2]))], "must be a JSON object"),
        (lambda w, s: [str(w("s.json", s)), "--baseline", str(w("b.json", "{"))], "b.json:1:2: the baseline is not valid JSON"),
        (lambda w, s: [str(w("s.json", s)), "--baseline", str(w("b.json", s)), "--max-regression", "2"],
         "--max-regression must be a share"),
        (lambda w, s: [str(w("s.json", s)), "--baseline", str(w("b.json", s)), "--latency-floor", "soon"],
         "--latency-floor: cannot read duration"),
        (lambda w, s: [], "give a run summary (SUMMARY.json) or --prometheus URL"),
        (lambda w, s: [str(w("s.json", s)), "--junit", "no/such/dir/out.xml"], "no/such/dir/out.xml: cannot write it"),
    ],
)  # fmt: skip
def test_unusable_input_exits_2_naming_the_file_and_line(gate, write, summary, setup, message):
    result = gate(*setup(write, summary))
    assert result.code == 2, (result.out, result.err)
    assert message in result.err


def test_list_metrics(gate):
    result = gate("--list-metrics")
    assert result.code == 0
    assert (
        "errors.ratio{status_class,source}" in result.out and "canary.availability{destination}" in result.out
    )
    for name in (
        "refused.ratio{source,answer}",
        "lenient.count{case}",
        "late.ratio{destination}",
        "out_of_order.ratio",
    ):
        assert name in result.out, result.out
