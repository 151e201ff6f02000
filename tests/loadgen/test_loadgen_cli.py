"""`harness traffic` prints one parseable JSON request a line, the same for the same seed."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest


def _traffic(*args: str) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "harness", "traffic", *args], capture_output=True, check=True, timeout=60
    ).stdout
    return [orjson.loads(line) for line in out.splitlines()]


@pytest.mark.e2e
def test_traffic_output_parses_and_repeats():
    first = _traffic("--profile", "default", "--count", "60", "--seed", "4", "--at", "1795000000")
    assert len(first) == 60
    for line in first:
        assert line["method"] == "POST" and line["path"].startswith("/v1/")
        assert isinstance(line["headers"], dict) and "Content-Type" in line["headers"]
        assert isinstance(line["body"], dict)
        items = line["body"]["batch"] if "batch" in line["body"] else [line["body"]]
        assert len(items) == len(line["seqs"])
    assert len({line["source"] for line in first}) >= 4
    assert first == _traffic("--profile", "default", "--count", "60", "--seed", "4", "--at", "1795000000")
    assert first != _traffic("--profile", "default", "--count", "60", "--seed", "5", "--at", "1795000000")


@pytest.mark.e2e
def test_bad_profile_is_reported(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("sources: {}\ncall_types: {}\nevents: {}\nwat: 1\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "traffic", "--profile", str(bad)], capture_output=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert f"{bad}:4: wat: unknown key" in proc.stderr.decode()
