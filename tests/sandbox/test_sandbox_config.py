"""Config loading: the bundled default, precise errors naming the key, secrets from the environment."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from sandbox.config import DEFAULT_CONFIG, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "sources": [{"name": "web", "write_key": "k1"}],
    "destinations": [{"name": "d", "url": "http://127.0.0.1:1/x", "secret": "s"}],
}


def with_(path: str, value) -> dict:
    cfg = yaml.safe_load(yaml.safe_dump(BASE))
    node = cfg
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node.setdefault(k, {})
    node[keys[-1]] = value
    return cfg


def test_default_config_loads_and_every_key_is_commented():
    cfg = load_config()
    assert [s.name for s in cfg.sources] == ["web", "server"]
    assert cfg.dedupe.window_seconds == 86400 and cfg.delivery.max_age_seconds == 14400
    assert cfg.ingest.max_message_bytes == 32768 and cfg.ingest.max_batch_events == 2500
    for line in DEFAULT_CONFIG.read_text().splitlines():
        stripped = line.strip()
        if (
            stripped
            and not stripped.startswith("#")
            and not stripped.startswith("- name")
            and ":" in stripped
        ):
            assert "#" in line or stripped.endswith(":"), f"uncommented key: {line}"


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        ("destinations.0.url", "ftp://x", "destinations[0].url"),
        ("destinations.0.batch_size", 0, "destinations[0].batch_size"),
        ("destinations.0.sources", ["nope"], "destinations[0].sources[0]"),
        ("destinations.0.bogus", 1, "unknown key(s) ['bogus']"),
        ("dedupe.window_seconds", "long", "dedupe.window_seconds"),
        ("dedupe.enabled", "no", "dedupe.enabled: expected true, false or null"),
        ("ingest.rate_limit.requests_per_second", -1, "ingest.rate_limit.requests_per_second"),
        ("faults.destinations.zzz", {"drop": 0.1}, "faults.destinations.zzz"),
        ("faults.destinations.d", {"drop": 1.5}, "faults.destinations.d.drop"),
        ("faults.destinations.d", {"delay": {"share": 0.5, "kind": "uniform", "low": 1}}, "delay.high"),
        ("faults.ingest", {"error_5xx": 0.6, "error_429": 0.6}, "add up to more than 1"),
        ("seed", "x", "seed"),
    ],
)
def test_errors_name_the_key(path, value, needle):
    with pytest.raises(ConfigError) as err:
        parse_config(with_(path, value))
    assert needle in str(err.value)


def test_secrets_from_environment_and_never_in_repr(monkeypatch):
    cfg = with_("destinations.0.secret_env", "SB_TEST_SECRET")
    del cfg["destinations"][0]["secret"]
    with pytest.raises(ConfigError, match="SB_TEST_SECRET is not set"):
        parse_config(cfg)
    monkeypatch.setenv("SB_TEST_SECRET", "from-env-secret")
    parsed = parse_config(cfg)
    assert parsed.destinations[0].secret == "from-env-secret"
    assert "from-env-secret" not in repr(parsed) and "k1" not in repr(parsed)
    dup = with_("sources", [{"name": "a", "write_key": "same"}, {"name": "b", "write_key": "same"}])
    with pytest.raises(ConfigError) as err:
        parse_config(dup)
    assert "duplicate write key" in str(err.value) and "same" not in str(err.value)


@pytest.mark.e2e
def test_bad_config_file_exits_2_with_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [{name: web}]\n")
    out = subprocess.run(
        [sys.executable, "-m", "sandbox", "--config", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "sources[0]: needs write_key" in out.stderr and str(bad) in out.stderr
    bad.write_text("sources: [\n")
    out = subprocess.run(
        [sys.executable, "-m", "sandbox", "--config", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "invalid YAML" in out.stderr


@pytest.mark.e2e
def test_harness_sandbox_command_serves_and_stops_on_sigint(tmp_path):
    """`harness sandbox` (the documented entry point) with the bundled default config."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sandbox", "--port", str(port)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/track",
            auth=("sandbox-web-key", ""),
            json={"event": "E", "userId": "u", "messageId": "one"},
        )
        assert r.json() == {"success": True}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        # the default destination (the monitor's receiver) is not running: the message is spooled
        assert '"messageId":"one"' in (tmp_path / "sandbox.spool").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


@pytest.mark.e2e
def test_busy_port_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "sandbox", "--port", str(port)],
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert out.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in out.stderr
