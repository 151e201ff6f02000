"""Issue 17: what a Locust user expects of `locust -f scenarios`, tried as the issue's findings were.

Each test runs Locust for real (short runs) and reads what a user would read: the help, the
terminal's last lines, the exit code, the files written.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.processes import run_command
from loadgen.profile import DEFAULT_PROFILE

pytestmark = pytest.mark.e2e
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def run_merged(folder: Path, *args: str, timeout: float = 120.0) -> tuple[int, str]:
    """`locust -f scenarios --headless ARGS` with stderr into stdout, so the order is what a terminal shows."""
    argv = [
        "sh",
        "-c",
        'exec "$0" "$@" 2>&1',
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(SCENARIOS),
        "--headless",
    ]
    result = run_command([*argv, *args], cwd=folder, timeout=timeout)
    return result.code, result.out


def test_help_lists_every_harness_option_in_its_own_group():
    """Finding 3: the options show in `locust -f scenarios --help`, under their own heading."""
    result = run_command([sys.executable, "-m", "locust", "-f", str(SCENARIOS), "--help"], timeout=60)
    assert result.code == 0, result.err[-2000:]
    heading = result.out.index("Harness options")
    end = result.out.find("\nExamples:", heading)
    group = result.out[heading : end if end > 0 else None]
    for flag in ("--traffic-profile", "--target-rate", "--load-shape", "--sandbox-faults", "--metrics-port"):
        assert flag in group
    assert "--harness-wiring" not in result.out  # internal
    assert "--target-rate" not in result.out[:heading]


def test_target_rate_from_env_var_config_file_and_profile(locust_run, tmp_path: Path):
    """Finding 5: LOCUST_TARGET_RATE and locust.conf set the rate; without either, the profile's does."""
    common = ("-t", "3s", "--delivery-wait", "3", "--metrics-port", "0", "--startup-check", "0")
    by_env = locust_run(*common, "--run-id", "by-env", env={"LOCUST_TARGET_RATE": "250"})
    assert by_env.code == 0, by_env.output[-3000:]
    run = json_run(tmp_path, "by-env")
    assert (run["target_rate"], run["target_rate_source"]) == (250, "--target-rate")

    (tmp_path / "locust.conf").write_text("target-rate = 120\nrun-id = by-conf\n")
    by_conf = locust_run(*common)
    assert by_conf.code == 0, by_conf.output[-3000:]
    assert json_run(tmp_path, "by-conf")["target_rate"] == 120
    (tmp_path / "locust.conf").unlink()

    profile = yaml.safe_load(DEFAULT_PROFILE.read_text())
    profile["rate"]["messages_per_second"] = 90
    (tmp_path / "slow.yaml").write_text(yaml.safe_dump(profile))
    by_profile = locust_run(*common, "--run-id", "by-profile", "--traffic-profile", "slow.yaml")
    run = json_run(tmp_path, "by-profile")
    assert (run["target_rate"], run["target_rate_source"]) == (90, "profile"), by_profile.output[-2000:]


def json_run(folder: Path, name: str) -> dict:
    return json.loads((folder / "reports" / name / "summary.json").read_text())["run"]


def test_the_bundled_profile_names_the_real_flag():
    header = DEFAULT_PROFILE.read_text().split("\n\n")[0]
    assert "--traffic-profile" in header
    assert "pass it with --profile" not in header


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("faults:\n  destinations:\n    webhook: {drop: 0.1\n", r"faults\.yaml:\d+: not valid YAML"),
        (
            "faults:\n  destinations:\n    webhook:\n      dorp: 0.1\n",
            r"faults\.yaml:3: faults\.destinations\.webhook: .*dorp",
        ),
    ],
)
def test_sandbox_faults_mistakes_name_the_users_file_and_line(locust_run, tmp_path: Path, text, expected):
    """Finding 6: exit 2 before anything starts, the user's file and line, no traceback."""
    (tmp_path / "faults.yaml").write_text(text)
    started = time.monotonic()
    run = locust_run("-t", "20s", "--sandbox-faults", "faults.yaml", timeout=60)
    assert run.code == 2, run.output[-3000:]
    assert "--sandbox-faults" in run.output and re.search(expected, run.output), run.output[-2000:]
    assert "Traceback" not in run.output and "harness-stack" not in run.output
    assert "Starting Locust" in run.output and "Shape test starting" not in run.output
    assert time.monotonic() - started < 30


def test_a_busy_metrics_port_names_the_option(locust_run):
    """Finding 1: the bind error says which option to change."""
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = locust_run("-t", "5s", "--metrics-port", str(port), timeout=60)
    assert run.code == 2
    assert f"--metrics-port {port}: cannot listen" in run.output and "Traceback" not in run.output


def test_a_dead_target_stops_early_with_one_message_and_one_note_per_cause(tmp_path: Path):
    """Finding 8: no 10 s of load against nothing, one clear message, no repeated notes, the paths last.

    The preflight (on by default) stops a dead target before any load with exit 2; this is the check
    behind it, for runs with `--preflight off`."""
    started = time.monotonic()
    code, output = run_merged(
        tmp_path, "-t", "40s", "--host", "http://127.0.0.1:1", "--write-key", "k", "--startup-check", "2",
        "--metrics-port", "0", "--preflight", "off", timeout=90,
    )  # fmt: skip
    assert time.monotonic() - started < 30, "the startup check must end the run well before -t"
    assert code == 1, output[-3000:]
    assert output.count("accepted no message in the first 2s") == 2  # the log line and the closing line
    notes = [line for line in output.splitlines() if line.strip().startswith("note (")]
    # two causes, one note each: nothing was accepted or refused, and the monitor had no data
    assert len(notes) == 2, notes
    assert "refused.ratio" in notes[0] and "load has no accepted or refused messages" in notes[0]
    assert "loss.ratio" in notes[1] and "pending.count" in notes[1] and "no monitor data" in notes[1]
    verdict = next(line for line in output.splitlines() if line.startswith("Verdict: "))
    assert len(verdict) < 250 and verdict.count("no data") == 1
    assert _lines(output)[-1].startswith("Report: ")
    assert re.search(r"against http://127.0.0.1:1: [0-5]s", output), "stopped without a 10 s graceful stop"


def test_headless_run_prints_progress_reconciles_and_ends_with_the_verdict(tmp_path: Path):
    """Findings 4, 7, 10: progress lines while it runs; sent = paced + re-sent + bad-input; verdict last."""
    code, output = run_merged(
        tmp_path, "-t", "9s", "--target-rate", "200", "--bad-input-share", "0.05", "--duplicate-share", "0.05",
        "--progress-interval", "1", "--delivery-wait", "10", "--metrics-port", "0",
    )  # fmt: skip
    assert code == 0, output[-3000:]
    progress = [line for line in output.splitlines() if "harness: delivery " in line]
    assert len(progress) >= 2 and "webhook delivered" in progress[-1] and " p99 " in progress[-1]
    lines = _lines(output)
    assert lines[-1].startswith("Report: ") and lines[-2].startswith("Verdict: PASS")
    assert output.rindex("Response time percentiles") < output.rindex("SLO verdict")
    sent = next(line for line in lines if line.startswith("  sent "))
    numbers = [int(n.replace(",", "")) for n in re.findall(r"(\d[\d,]*) (?:messages|\(|\+|$)", sent)]
    load = json.loads(next(tmp_path.glob("reports/*/summary.json")).read_text())["load"]
    kinds = load["messages_by_kind"]
    assert load["messages"] == kinds["paced"] + kinds["duplicate"] + kinds["bad"]
    assert f"{load['messages']:,} messages" in sent and f"bad-input {kinds['bad']:,}" in sent, sent
    assert numbers  # the line carries the figures, not only words
