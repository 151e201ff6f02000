"""Issue 17, findings 7 and 8: the terminal tables never run numbers together and explain the 4xx;
the verdict gives one note per cause."""

from __future__ import annotations

import re

import pytest

from gate.thresholds import Result, Threshold, Verdict
from harness.locust_help import wants_harness_help
from harness.tables import DESTINATION_COLUMNS, answers_text, text_table
from harness.units import DURATION_WIDTH, duration_text


@pytest.mark.parametrize(
    "seconds", [0.0004, 0.0314, 0.9999, 1.0, 9.99, 43.4254, 131.3787, 599.9, 3600, 43425.4, 1e7]
)
def test_durations_fit_their_width(seconds):
    text = duration_text(seconds)
    assert len(text) <= DURATION_WIDTH and re.fullmatch(r"[\d.]+(ms|s)|\d+m\d\ds|\d+h", text), text


def test_big_counts_and_long_latencies_stay_in_separate_columns():
    row = {"destination": "webhook", "expected": 1_313_787_000, "delivered_expected": 43_425, "lost": 131_378,
           "pending": 7, "duplicates": 0, "dedupe_leaks": 0, "p50": 13.1, "p95": 131.3787, "p99": 43425.4}  # fmt: skip
    header, line = text_table(DESTINATION_COLUMNS, [row])
    cells = line.split()
    assert cells == [
        "webhook",
        "1,313,787,000",
        "43,425",
        "131,378",
        "0",
        "7",
        "0",
        "0",
        "-",
        "13.1s",
        "131.4s",
        "723m45s",
    ]
    assert len(header.split()) == len(cells)


def test_the_4xx_of_bad_input_is_explained():
    assert (
        answers_text({"2xx": 592, "4xx": 8}, 8)
        == "2xx 592, 4xx 8 (8 of them bad-input requests refused as designed)"
    )
    assert answers_text({"2xx": 5}, 0) == "2xx 5"


def test_one_note_per_cause():
    note = "the summary has no 'delivery' section (no monitor data)"
    results = [
        Result(Threshold(m, {}, None, "==", 0.0, "== 0"), None, False, note)
        for m in ("loss.ratio", "pending.count")
    ]
    verdict = Verdict(results)
    assert verdict.notes() == [f"  note (loss.ratio, pending.count): {note}"]
    assert verdict.status_line().count("no data") == 1 and note not in verdict.status_line()


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["locust", "-f", "scenarios", "--help"], True),
        (["/venv/bin/locust", "--locustfile=scenarios/shape.py", "-h"], True),
        (["locust", "-f", "scenarios"], False),
        (["locust", "-f", "elsewhere.py", "--help"], False),
        (["python", "-f", "scenarios", "--help"], False),
    ],
)
def test_the_help_hook_only_wakes_for_locust_help_on_the_scenarios(argv, wanted, monkeypatch):
    from harness import locust_help

    monkeypatch.chdir(locust_help.SCENARIOS.parent)
    monkeypatch.delenv("LOCUST_LOCUSTFILE", raising=False)
    assert wants_harness_help(argv) is wanted
