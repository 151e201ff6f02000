"""A verdict as JUnit XML, the test-report format every CI system reads.

One `<testsuite>` per origin (`slo` thresholds, `baseline` regression checks), one `<testcase>` per
threshold, a failed threshold as `<failure>` with what was required and what was found. The layout
follows the common Ant/Jenkins JUnit schema (`tests/gate/junit.xsd` checks it).
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from gate.thresholds import Result, Verdict

SUITE_NAMES = {"slo": "SLO thresholds", "baseline": "baseline regression"}


def _testcase(result: Result) -> ET.Element:
    threshold = result.threshold
    case = ET.Element(
        "testcase",
        name=threshold.text(),
        classname=f"cdp-harness.{threshold.origin}.{threshold.metric}",
        time="0",
    )
    details = [
        f"threshold: {threshold.text()}",
        f"value: {result.value_text}",
        f"defined at: {threshold.source or '-'}",
    ]
    if result.note:
        details.append(f"no data: {result.note}")
    if not result.passed:
        failure = ET.SubElement(case, "failure", message=result.message(), type="ThresholdFailed")
        failure.text = "\n".join(details)
    else:
        ET.SubElement(case, "system-out").text = "\n".join(details)
    return case


def junit_xml(
    verdict: Verdict,
    *,
    name: str = "cdp-harness",
    properties: dict[str, str] | None = None,
    timestamp: datetime | None = None,
) -> bytes:
    """The verdict as a JUnit XML document (UTF-8 bytes with an XML declaration)."""
    stamp = (
        (timestamp or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    )
    root = ET.Element(
        "testsuites",
        name=name,
        tests=str(len(verdict.results)),
        failures=str(len(verdict.failures())),
        errors="0",
        time="0",
    )
    origins = list(dict.fromkeys(r.threshold.origin for r in verdict.results)) or ["slo"]
    for origin in origins:
        results = [r for r in verdict.results if r.threshold.origin == origin]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{name} {SUITE_NAMES.get(origin, origin)}",
            tests=str(len(results)),
            failures=str(sum(not r.passed for r in results)),
            errors="0",
            skipped="0",
            time="0",
            timestamp=stamp,
            hostname=socket.gethostname(),
        )
        if properties:
            props = ET.SubElement(suite, "properties")
            for key, value in properties.items():
                ET.SubElement(props, "property", name=key, value=str(value))
        suite.extend(_testcase(r) for r in results)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
