"""Fixtures for the CI gate: run summaries built in code, thresholds files, `harness gate` as a process."""

from __future__ import annotations

import copy
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import processes

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
XSD = Path(__file__).with_name("junit.xsd")


def _latency(p50: float, p90: float, p95: float, p99: float, top: float, count: int = 1000) -> dict[str, Any]:
    return {"count": count, "p50": p50, "p90": p90, "p95": p95, "p99": p99, "max": top}


def _destination(expected: int, **counts: Any) -> dict[str, Any]:
    row = dict.fromkeys(
        (
            "pending", "lost", "late", "duplicates", "dedupe_leaks", "rejected_delivered",
            "abandoned_delivered", "redelivered_after_400", "refused_retry", "refused_retry_redelivered",
            "refused_400", "out_of_order",
        ),
        0,
    )  # fmt: skip
    row.update(expected=expected, delivered=expected, delivered_expected=expected, arrivals=expected)
    row.update(counts)
    row["latency_seconds"] = counts.get("latency_seconds") or _latency(0.05, 0.2, 0.4, 0.8, 1.2)
    row["lost_samples"] = []
    return row


def base_summary() -> dict[str, Any]:
    """A run summary shaped like `harness/report.py` writes, with round known numbers."""
    return {
        "format": "cdp-harness/run-summary",
        "version": 1,
        "run": {"name": "run-test", "id": 4242, "target": "sandbox (bundled)", "duration_seconds": 10.0},
        "load": {
            "messages": 10_000,
            "accepted": 9_900,
            "refused": 100,
            "refused_by_answer": {"401": 60, "404": 40},
            "bad_inputs": {
                "expected": 8,
                "lenient": 3,
                "error": 1,
                "unexpected": 0,
                "by_case": {
                    "track_without_event": {"expected": 0, "lenient": 3, "error": 0, "unexpected": 0},
                    "bad_gzip": {"expected": 8, "lenient": 0, "error": 1, "unexpected": 0},
                },
            },
            "requests": 2_000,
            "throughput": 1000.0,
            "request_rate": 200.0,
            "requests_by_class": {"2xx": 1940, "4xx": 20, "429": 10, "5xx": 20, "error": 10},
            "error_ratio": 0.02,
            "latency_seconds": {
                "measured": {"p50": 0.010, "p90": 0.040, "p95": 0.060, "p99": 0.100, "max": 0.250},
                "corrected": {"p50": 0.012, "p90": 0.050, "p95": 0.080, "p99": 0.300, "max": 0.900},
            },
            "missed_sends": 40,
            "missed_ratio": 0.02,
            "retries": 40,
            "by_source": {
                "ios": {
                    "messages": 4000,
                    "accepted": 3960,
                    "refused": 40,
                    "refused_by_answer": {"404": 40},
                    "requests": 500,
                    "bytes": 1,
                    "missed_sends": 0,
                },
                "web": {
                    "messages": 6000,
                    "accepted": 5940,
                    "refused": 60,
                    "refused_by_answer": {"401": 60},
                    "requests": 1500,
                    "bytes": 1,
                    "missed_sends": 40,
                },
            },
        },
        "delivery": {
            "format": "cdp-harness/monitor-summary",
            "version": 1,
            "lost_after_seconds": 20.0,
            "destinations": {
                "webhook": _destination(9900, lost=99, duplicates=30, dedupe_leaks=2, pending=5, late=1),
                "warehouse": _destination(
                    9900, latency_seconds=_latency(0.1, 0.5, 1.0, 3.0, 6.0), out_of_order=7
                ),
            },
            "receiver": {
                "bad_signatures": 3,
                "foreign": {"foreign_ids": 1, "unknown_run_deliveries": 1, "total": 2},
            },
            "canary": {
                "webhook": {"availability": 0.95, "latency_seconds": _latency(0.05, 0.1, 0.2, 0.5, 0.6)},
                "warehouse": {"availability": 1.0, "latency_seconds": _latency(0.05, 0.1, 0.2, 0.7, 0.9)},
            },
        },
        "history": [],
    }


@pytest.fixture
def summary() -> dict[str, Any]:
    return copy.deepcopy(base_summary())


@pytest.fixture
def write(tmp_path: Path):
    """Write text (or a JSON-able object) to a file under tmp_path; returns the path."""

    def _write(name: str, content: Any) -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
        return path

    return _write


@dataclass
class Gate:
    code: int
    out: str
    err: str


def run_process(args: list[str], cwd: Path, timeout: float) -> tuple[int, str, str]:
    """A process in its own group, stopped by pid on timeout."""
    result = processes.run_command(
        args, cwd=cwd, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    return result.code, result.out, result.err


@pytest.fixture
def gate(tmp_path: Path):
    """`harness gate ARGS` as a real process (`python -m harness`)."""

    def _gate(*args: str, timeout: float = 60.0) -> Gate:
        return Gate(*run_process([sys.executable, "-m", "harness", "gate", *args], tmp_path, timeout))

    return _gate


@pytest.fixture
def free_port():
    """A function returning a free loopback port."""
    return processes.free_port


@pytest.fixture
def run_cmd(tmp_path: Path):
    """Run a command in tmp_path (own process group, stopped by pid on timeout): (code, out, err)."""

    def _run(*args: str, timeout: float = 60.0) -> tuple[int, str, str]:
        return run_process(list(args), tmp_path, timeout)

    return _run


@pytest.fixture
def locust_args():
    """The start of a `locust -f scenarios --headless` command line."""
    return [sys.executable, "-m", "locust", "-f", str(SCENARIOS), "--headless"]


@pytest.fixture
def validate_junit():
    """Validate a JUnit file against tests/gate/junit.xsd with libxml2 (lxml); returns the root element."""
    from lxml import etree

    schema = etree.XMLSchema(etree.parse(str(XSD)))

    def _validate(path: Path):
        doc = etree.parse(str(path))
        if not schema.validate(doc):
            pytest.fail(f"{path} does not validate against {XSD.name}: {schema.error_log}")
        return doc.getroot()

    return _validate
