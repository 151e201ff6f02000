"""The JUnit XML validates against the common JUnit schema and shows failed thresholds as failures."""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree

from gate.baseline import regression_thresholds
from gate.junit import junit_xml
from gate.thresholds import Verdict, evaluate, parse_thresholds

SLO = """thresholds:
  loss.ratio: ["== 0"]
  throughput: [">= 500/s"]
  delivery.latency{destination:nowhere}: ["p99 < 1s"]
  errors.ratio{status_class:5xx}: ["< 5% & <tag>"]
"""


def _verdict(summary) -> Verdict:
    thresholds = parse_thresholds(SLO.replace(" & <tag>", ""), "slo.yaml")
    checks, _ = regression_thresholds(summary, 0.1)
    run = {**summary, "load": {**summary["load"], "throughput": 10.0}}
    return Verdict(evaluate(thresholds, run).results + evaluate(checks, run).results)


def test_junit_validates_and_shows_failures_as_failures(tmp_path, summary, validate_junit):
    verdict = _verdict(summary)
    path = tmp_path / "junit.xml"
    path.write_bytes(
        junit_xml(
            verdict, properties={"run": "run-test"}, timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        )
    )
    root = validate_junit(path)
    assert root.tag == "testsuites"
    assert root.get("tests") == str(len(verdict.results)) == "14"
    slo, baseline = root.findall("testsuite")
    assert slo.get("name") == "cdp-harness SLO thresholds" and slo.get("timestamp") == "2026-01-02T03:04:05"
    assert (slo.get("tests"), slo.get("failures"), slo.get("errors")) == ("4", "3", "0")
    assert (baseline.get("tests"), baseline.get("failures")) == ("10", "1")
    cases = {case.get("name"): case for case in slo.iter("testcase")}
    assert set(cases) == {r.threshold.text() for r in verdict.results if r.threshold.origin == "slo"}
    loss = cases["loss.ratio == 0"].find("failure")
    assert loss is not None and loss.get("type") == "ThresholdFailed"
    assert loss.get("message") == "loss.ratio == 0 (was 0.5000%)"
    assert "defined at: slo.yaml:2" in loss.text
    missing = cases["delivery.latency{destination:nowhere} p99 < 1s"].find("failure")
    assert "no data: destination 'nowhere'" in missing.get("message")
    assert cases["errors.ratio{status_class:5xx} < 5%"].find("failure") is None
    (regression,) = [c for c in baseline.iter("testcase") if c.find("failure") is not None]
    assert regression.get("name").startswith("throughput >= 900.0/s")
    assert regression.get("classname") == "cdp-harness.baseline.throughput"
    assert slo.find("properties/property").attrib == {"name": "run", "value": "run-test"}


def test_special_characters_are_escaped_and_a_pass_only_verdict_validates(tmp_path, summary, validate_junit):
    thresholds = parse_thresholds(
        'thresholds:\n  "errors.ratio{status_class:5xx}": ["< 5%"]\n  throughput: [">= 1/s"]\n', "a&b<c>.yaml"
    )
    path = tmp_path / "pass.xml"
    path.write_bytes(junit_xml(evaluate(thresholds, summary)))
    root = validate_junit(path)
    assert root.get("failures") == "0"
    assert root.find("testsuite/testcase").get("name") == "errors.ratio{status_class:5xx} < 5%"
    assert "a&b<c>.yaml:2" in root.find("testsuite/testcase/system-out").text


def test_an_empty_verdict_is_still_a_valid_document(tmp_path, validate_junit):
    path = tmp_path / "empty.xml"
    path.write_bytes(junit_xml(Verdict([])))
    root = validate_junit(path)
    assert root.get("tests") == "0" and len(root.findall("testsuite")) == 1


def test_the_schema_rejects_what_ci_readers_reject(tmp_path):
    """The XSD is a real check: a testsuite without its counts, or a stray element, fails it."""
    from pathlib import Path

    schema = etree.XMLSchema(etree.parse(str(Path(__file__).with_name("junit.xsd"))))
    bad = [
        b'<testsuites><testsuite name="x" tests="1"><testcase name="a"/></testsuite></testsuites>',
        b'<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><case name="a"/></testsuite></testsuites>',
        b'<testsuites><testsuite name="x" tests="-1" failures="0" errors="0"/></testsuites>',
        b'<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase/></testsuite></testsuites>',
    ]
    for document in bad:
        assert not schema.validate(etree.fromstring(document)), document
