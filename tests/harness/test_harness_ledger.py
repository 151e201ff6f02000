"""`harness ids` and `harness ledger`: reading sent ids from files and registering them with a monitor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from harness.sent_files import SentFileError, parse_time_ms, read_sent_ids
from loadgen import ids

ROOT = Path(__file__).resolve().parents[2]


def _harness(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], input=stdin, capture_output=True, cwd=ROOT, timeout=60
    )


def test_ids_file_one_a_line(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("# sent on Tuesday\nabc-1\n\n  abc-2  \nü-3\n")
    sent = read_sent_ids(str(path))
    assert sent.accepted == ["abc-1", "abc-2", "ü-3"] and sent.sent_ms == [None] * 3


def test_events_file_with_statuses_and_times(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [
        {"messageId": "a", "timestamp": "2026-12-04T10:00:00.250Z", "status": 200},
        {"batch": [{"messageId": "b"}, {"messageId": "c", "originalTimestamp": "2026-12-04T10:00:01"}],
         "sentAt": "2026-12-04T10:00:02+00:00"},
        {"messageId": "d", "status": 400},
        {"messageId": "e", "status": 503},
        {"messageId": "f", "status": None},
        {"type": "track"},
    ]  # fmt: skip
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    sent = read_sent_ids(str(path))
    base = parse_time_ms("2026-12-04T10:00:00Z")
    assert sent.accepted == ["a", "b", "c"] and sent.sent_ms == [base + 250, base + 2000, base + 1000]
    assert sent.rejected == ["d"] and sent.abandoned == ["e", "f"] and sent.without_id == 1


@pytest.mark.e2e
def test_capture_from_harness_traffic(tmp_path):
    traffic = _harness("traffic", "--count", "40", "--run", "9", "--seed", "3", "--at", "1795000000")
    assert traffic.returncode == 0, traffic.stderr
    path = tmp_path / "capture.jsonl"
    path.write_bytes(traffic.stdout)
    sent = read_sent_ids(str(path))
    requests = [orjson.loads(line) for line in traffic.stdout.splitlines()]
    good = [r for r in requests if r["kind"] != "bad"]
    expected = sum(len(r["seqs"]) - len(r["rejected_seqs"] or []) for r in good)
    assert len(set(sent.accepted)) == expected > 0
    assert all(ids.decode_message_id(m).run == 9 for m in sent.accepted)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"messageId": "a"}\n{"messageId": ', ":2: not JSON"),
        ('{"batch": 3}', ":1: 'batch' must be a list"),
        ('{"messageId": "a"}\n[1, 2]', ":2: must be a JSON object"),
        ('{"messageId": "a"}\n{"batch": [5]}', ":2: event 0 is not a JSON object"),
        ("{oops", ":1: starts like JSON but is not"),
    ],
)
def test_bad_files_name_the_line(tmp_path, content, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(SentFileError, match=problem.replace("[", r"\[")):
        read_sent_ids(str(path))


@pytest.mark.e2e
def test_missing_file_and_bad_format_are_clear(tmp_path):
    with pytest.raises(SentFileError, match="cannot read"):
        read_sent_ids(str(tmp_path / "nope.txt"))
    with pytest.raises(SentFileError, match="unknown format"):
        read_sent_ids("-", "xml")
    proc = _harness("ledger", "--run", "r", str(tmp_path / "nope.txt"))
    assert proc.returncode == 2 and b"nope.txt: cannot read" in proc.stderr


@pytest.mark.e2e
def test_harness_ids_prints_fresh_ids():
    proc = _harness("ids", "--run", "cli-run", "--count", "5", "--stream", "2222", "--first-seq", "10")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().split()
    parts = [ids.decode_message_id(m) for m in lines]
    assert [p.seq for p in parts] == [10, 11, 12, 13, 14] and {p.stream for p in parts} == {2222}
    assert b"--first-seq 15" in proc.stderr
    bad = _harness("ids", "--run", "cli-run", "--stream", "9999")
    assert bad.returncode == 2 and b"stream 9999" in bad.stderr
