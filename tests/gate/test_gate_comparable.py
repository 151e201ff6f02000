"""Issue 17, finding 10: runs that differ in what was asked of them are said to differ before any
"regression" (`harness gate --baseline`, `harness compare`); `harness --version`."""

from __future__ import annotations

import copy

import pytest

from gate.comparable import differences


def test_like_for_like_runs_have_no_differences(summary):
    assert differences(summary, copy.deepcopy(summary)) == []


def test_rate_profile_target_and_duration_differences_are_named(summary):
    other = copy.deepcopy(summary)
    other["run"].update(target_rate=250.0, profile="server.yaml", target="http://elsewhere:8080")
    other["run"]["duration_seconds"] = summary["run"]["duration_seconds"] * 2
    found = "\n".join(differences(summary, other))
    assert "target rate differs" in found and "250" in found
    assert "profile differs" in found and "server.yaml" in found
    assert "target differs" in found and "duration differs" in found


@pytest.mark.e2e
def test_gate_baseline_says_not_like_for_like_before_the_verdict(gate, write, summary):
    summary["run"]["target_rate"] = 1000.0
    slower = copy.deepcopy(summary)
    slower["run"]["target_rate"] = 250.0
    slower["load"]["throughput"] = summary["load"]["throughput"] / 4
    base, run = write("base.json", summary), write("run.json", slower)
    result = gate(str(run), "--baseline", str(base))
    assert result.out.index("Not like for like") < result.out.index("SLO verdict")
    assert "target rate differs" in result.out


@pytest.mark.e2e
def test_compare_prints_side_by_side_and_withholds_regressions_between_unlike_runs(run_cmd, write, summary):
    summary["run"]["target_rate"] = 1000.0
    slower = copy.deepcopy(summary)
    slower["run"]["target_rate"] = 250.0
    slower["load"]["throughput"] = summary["load"]["throughput"] / 4
    base, run = write("a.json", summary), write("b.json", slower)
    code, out, err = run_cmd("python", "-m", "harness", "compare", str(base), str(run), "--html", "cmp.html")
    assert code == 0, err  # not like for like: nothing called a regression
    assert out.index("Not like for like") < out.index("throughput")
    assert "not called regressions because the runs differ" in out
    code, out, _err = run_cmd("python", "-m", "harness", "compare", str(base), str(base))
    assert code == 0 and "Like for like" in out and "Regressions beyond 10%" in out
    code, out, _err = run_cmd("python", "-m", "harness", "compare", str(base), str(write("c.json", {
        **slower, "run": summary["run"]})))  # fmt: skip
    assert code == 1 and "throughput" in out and "FAIL" in out


@pytest.mark.e2e
def test_harness_version(run_cmd):
    code, out, _err = run_cmd("python", "-m", "harness", "--version")
    assert code == 0 and out.startswith("harness 0.") and "locust 2." in out
