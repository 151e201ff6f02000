"""deploy/: the docker-compose file and the Kubernetes manifests, checked for the structure their tools
expect (no Docker engine or cluster runs here), and the configs they mount loaded by the real loaders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

import monitor.config
import sandbox.config
from harness.processes import HOST, ChildServer, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SECRETS = {
    "HARNESS_WRITE_KEY",
    "HARNESS_CANARY_WRITE_KEY",
    "HARNESS_WEBHOOK_SECRET",
    "HARNESS_WAREHOUSE_SECRET",
}
TOKENS = {"HARNESS_MONITOR_TOKEN", "HARNESS_SANDBOX_TOKEN"}
"""Bearer tokens of the control APIs, required because the containers bind beyond loopback."""
SERVICES = {"sandbox", "monitor", "locust-master", "locust-worker", "prometheus", "grafana"}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def scrape_targets() -> dict[str, str]:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    return {
        job["job_name"]: target
        for job in config["scrape_configs"]
        for target in job["static_configs"][0]["targets"]
    }


def listen_port(command: list[str]) -> int:
    """The port a harness server or the Locust web UI listens on, from its command line."""
    if command[0] == "locust":
        return int(command[command.index("--web-port") + 1]) if "--web-port" in command else 8089
    return int(command[command.index("--port") + 1])


def test_deployed_configs_load_with_the_real_loaders(monkeypatch):
    for name in SECRETS:
        monkeypatch.setenv(name, "test-" + name.lower())
    sandbox_config = sandbox.config.load_config(DEPLOY / "config" / "sandbox.yaml")
    monitor_config = monitor.config.load_config(DEPLOY / "config" / "monitor.yaml")
    assert [d.name for d in sandbox_config.destinations] == list(monitor_config.destinations)
    for d in sandbox_config.destinations:
        assert d.url == f"http://monitor:8090/webhook/{d.name}"
    text = (DEPLOY / "config" / "sandbox.yaml").read_text() + (DEPLOY / "config" / "monitor.yaml").read_text()
    assert set(re.findall(r"_env: (\w+)", text)) == SECRETS


def test_compose_has_the_services_compose_expects():
    doc = compose()
    assert set(doc) <= {"services", "volumes", "networks", "configs", "secrets", "name"} | {
        k for k in doc if k.startswith("x-")
    }
    services = doc["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        assert isinstance(service.get("command", []), list), f"{name}: command must be an exec-form list"
        for port in service.get("ports", []):
            assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port), (
                f"{name}: port {port!r} (publish on loopback only)"
            )
        depends = service.get("depends_on", [])
        assert set(depends) <= set(services), f"{name}: depends on unknown {set(depends) - set(services)}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: mounts missing {source}"
            else:
                assert source in doc["volumes"], f"{name}: undeclared volume {source}"
    assert services["locust-worker"]["deploy"]["replicas"] >= 2
    assert (
        DEPLOY / services["sandbox"]["build"]["context"] / services["sandbox"]["build"]["dockerfile"]
    ).is_file()


def test_compose_secrets_come_from_the_environment_only():
    for name in ("sandbox", "monitor", "locust-master", "locust-worker"):
        environment = compose()["services"][name]["environment"]
        assert set(environment) == SECRETS | TOKENS, name
        for key, value in environment.items():
            assert re.fullmatch(rf"\$\{{{key}:\?[^}}]+\}}", value), (
                f"{name}: {key} must be required from the environment"
            )


def test_prometheus_scrapes_what_compose_runs():
    services = compose()["services"]
    assert set(scrape_targets()) == {"loadgen", "monitor", "sandbox"}
    for job, target in scrape_targets().items():
        host, port = target.split(":")
        assert host in services, f"{job}: {host} is not a compose service"
        assert listen_port(services[host]["command"]) == int(port), f"{job}: {host} does not listen on {port}"
        assert "0.0.0.0" in services[host]["command"], f"{host} must listen beyond its container's loopback"
    mounts = services["prometheus"]["volumes"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./rules:/etc/prometheus/rules:ro" in mounts


def kubernetes_documents() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def test_kubernetes_manifests_are_consistent():
    docs = kubernetes_documents()
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    listed = {str(DEPLOY / r) for r in kustomization["resources"]}
    assert listed == {str(p) for p in (DEPLOY / "kubernetes").glob("*.yaml")}
    for generator in kustomization["configMapGenerator"]:
        for file in generator["files"]:
            assert (DEPLOY / file).is_file(), file
    config_maps = {g["name"] for g in kustomization["configMapGenerator"]}
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {"sandbox", "monitor", "locust-master", "locust-worker", "prometheus"}
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys() and doc["metadata"]["name"]
    for name, d in deployments.items():
        assert d["apiVersion"] == "apps/v1"
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        for volume in d["spec"]["template"]["spec"].get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, f"{name}: unknown ConfigMap"
        for container in d["spec"]["template"]["spec"]["containers"]:
            for source in container.get("envFrom", []):
                assert source["secretRef"]["name"] == "harness-secrets", name
    for service in (d for d in docs if d["kind"] == "Service"):
        name = service["metadata"]["name"]
        (target,) = [
            d
            for d in deployments.values()
            if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        port_names = {
            p.get("name")
            for c in target["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"Service {name}: targetPort {port['targetPort']}"
    # the same deploy/prometheus.yml works in the cluster: its hosts are Service names on those ports
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for job, target in scrape_targets().items():
        host, port = target.split(":")
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, job


@pytest.mark.e2e
def test_kustomize_builds_the_manifests():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: kustomize build not run (the structure test above still ran)")
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    built = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = sorted(d["kind"] for d in built)
    assert kinds.count("ConfigMap") == 3 and kinds.count("Deployment") == 5 and kinds.count("Service") == 4
    assert all(d["metadata"].get("namespace") == "cdp-harness" for d in built if d["kind"] != "Namespace")


@pytest.mark.e2e
def test_deployed_configs_run_and_deliver(tmp_path):
    """deploy/config with the service names pointed at loopback (as docs/dashboards.md does it): a real
    sandbox delivers a tracked event, signed, to both destinations of a real monitor."""
    sandbox_port, monitor_port = free_port(), free_port()
    env = {**os.environ, **{name: "deploy-test-" + name.lower() for name in SECRETS}}
    for name in ("sandbox", "monitor"):
        text = (DEPLOY / "config" / f"{name}.yaml").read_text()
        text = text.replace("//monitor:8090", f"//{HOST}:{monitor_port}").replace(
            "//sandbox:8088", f"//{HOST}:{sandbox_port}"
        )
        text = text.replace("/tmp/sandbox-spool.jsonl", str(tmp_path / "spool.jsonl"))
        (tmp_path / f"{name}.yaml").write_text(text)
    harness = [sys.executable, "-m", "harness"]
    servers = [
        ChildServer(
            name=name,
            port=port,
            argv=[*harness, name, "--config", str(tmp_path / f"{name}.yaml"), "--port", str(port)],
            log_path=tmp_path / f"{name}.log",
            env=env,
        )
        for name, port in (("monitor", monitor_port), ("sandbox", sandbox_port))
    ]
    try:
        for server in servers:
            server.start()
        event = {"type": "track", "event": "Deploy Checked", "userId": "u1", "messageId": "deploy-check-1"}
        answer = httpx.post(
            f"{servers[1].url}/v1/track", json=event, auth=(env["HARNESS_WRITE_KEY"], ""), timeout=5
        )
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            metrics = httpx.get(f"{servers[0].url}/metrics", timeout=5).text
            arrived = {
                d
                for d in ("webhook", "warehouse")
                if f'monitor_foreign_ids_total{{destination="{d}"}} 1.0' in metrics
            }
            if arrived == {"webhook", "warehouse"}:
                break
            time.sleep(0.2)
        assert arrived == {"webhook", "warehouse"}, metrics
        assert 'monitor_bad_signatures_total{destination="webhook"} 0.0' in metrics
    finally:
        for server in reversed(servers):
            server.stop()
