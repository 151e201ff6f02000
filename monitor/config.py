"""The monitor's configuration: destinations, behaviours, audit deadline, canary and probes.

Read from a YAML file (`monitor/default.yaml` documents every key); secrets come from environment
variables named in the file (`secret_env`, `write_key_env`), never from the file itself unless the
operator chooses to write a literal `secret`. Every error names the file and the key that is wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
BEHAVIOUR_KINDS = ("healthy", "slow", "flaky", "rate_limited", "rejecting", "down")
DISTRIBUTIONS = ("fixed", "uniform", "exponential", "lognormal")
_DEFAULT_SHARE = {"flaky": 0.2, "rate_limited": 0.3, "rejecting": 0.1}


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file and key."""


@dataclass(frozen=True, slots=True)
class BehaviourConfig:
    """How a destination answers deliveries (see `monitor/behaviours.py`)."""

    kind: str = "healthy"
    share: float = 0.0
    status: int = 0
    retry_after_seconds: float = 1.0
    seconds: float = 0.0
    distribution: str = "fixed"
    low: float = 0.0
    high: float = 0.0
    mean: float = 0.0
    median: float = 0.0
    sigma: float = 0.0
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class DestinationConfig:
    name: str
    secret: str | None = None
    sources: tuple[str, ...] | None = None
    """Ledger sources that feed this destination; None means all of them."""
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)
    sla_seconds: float = 30.0
    """Canary latency SLA: a canary counts as available when delivered within this time."""


@dataclass(frozen=True, slots=True)
class CanaryConfig:
    enabled: bool = False
    ingest_url: str = "http://127.0.0.1:8080"
    write_key: str | None = None
    interval_seconds: float = 5.0
    run_name: str = ""
    """Empty: a fresh random run per monitor process, so a restart never mixes old canaries in."""
    timeout_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    name: str
    url: str
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)


@dataclass(frozen=True, slots=True)
class ProbesConfig:
    interval_seconds: float = 15.0
    timeout_seconds: float = 5.0
    targets: tuple[ProbeTarget, ...] = ()


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    destinations: dict[str, DestinationConfig]
    lost_after_seconds: float = 60.0
    seed: int = 0
    max_body_bytes: int = 16 * 1024 * 1024
    lost_samples: int = 10
    metrics_runs: int = 4
    sweep_interval_seconds: float = 0.5
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)


class _Reader:
    """Typed access to one mapping of the YAML document, naming the key path in every error."""

    def __init__(self, source: str, where: str, data: Any) -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {where or 'top level'} must be a mapping")
        self.source, self.where, self.data = source, where, data

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.path(key)} {message}")

    def child(self, key: str) -> _Reader:
        return _Reader(self.source, self.path(key), self.data.get(key))

    def number(self, key: str, default: float, *, low: float = 0.0, high: float | None = None) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, got {value!r}")
        if value < low or (high is not None and value > high):
            limit = f"{low}..{high}" if high is not None else f">= {low}"
            raise self.fail(key, f"must be {limit}, got {value!r}")
        return float(value)

    def integer(self, key: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if value < low or (high is not None and value > high):
            raise self.fail(key, f"must be between {low} and {high}, got {value!r}")
        return value

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def secret(self, literal_key: str, env_key: str, *, required: bool = True) -> str | None:
        """A secret given literally or, preferably, by the name of an environment variable.

        With `required`, naming a variable that is not set is an error (a destination must never
        silently lose its signature check); otherwise the secret is just absent.
        """
        if env_key in self.data:
            name = self.text(env_key, "")
            value = os.environ.get(name)
            if not value and not required:
                return None
            if not value:
                raise self.fail(env_key, f"names environment variable {name!r}, which is not set")
            return value
        if literal_key in self.data:
            return self.text(literal_key, "") or None
        return None


def parse_behaviour(data: Any, source: str = "behaviour", where: str = "") -> BehaviourConfig:
    """A behaviour from its mapping form, e.g. `{kind: flaky, share: 0.2, status: 503}`."""
    r = _Reader(source, where, data)
    kind = r.text("kind", "healthy")
    if kind not in BEHAVIOUR_KINDS:
        raise r.fail("kind", f"must be one of {', '.join(BEHAVIOUR_KINDS)}, got {kind!r}")
    default_status = {"flaky": 500, "rate_limited": 429, "rejecting": 400, "down": 503}.get(kind, 0)
    status = r.integer("status", default_status, low=0, high=599)
    if kind == "flaky" and not 500 <= status <= 599:
        raise r.fail("status", f"must be a 5xx status for a flaky destination, got {status}")
    if kind == "rejecting" and not 400 <= status <= 499:
        raise r.fail("status", f"must be a 4xx status for a rejecting destination, got {status}")
    if kind == "down" and not 500 <= status <= 599:
        raise r.fail("status", f"must be a 5xx status for a down destination, got {status}")
    distribution = r.text("distribution", "fixed")
    if distribution not in DISTRIBUTIONS:
        raise r.fail("distribution", f"must be one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}")
    seed = data.get("seed") if isinstance(data, dict) else None
    if seed is not None:
        seed = r.integer("seed", 0)
    behaviour = BehaviourConfig(
        kind=kind,
        share=r.number("share", _DEFAULT_SHARE.get(kind, 0.0), high=1.0),
        status=status,
        retry_after_seconds=r.number("retry_after_seconds", 1.0),
        seconds=r.number("seconds", 0.0),
        distribution=distribution,
        low=r.number("low", 0.0),
        high=r.number("high", 0.0),
        mean=r.number("mean", 0.0),
        median=r.number("median", 0.0),
        sigma=r.number("sigma", 0.0),
        seed=seed,
    )
    if distribution == "uniform" and behaviour.high < behaviour.low:
        raise r.fail("high", f"must be >= low ({behaviour.low}), got {behaviour.high}")
    return behaviour


def _parse_destination(r: _Reader, name: str) -> DestinationConfig:
    sources = r.data.get("sources")
    if sources is not None and sources != "all":
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise r.fail("sources", "must be a list of source names or 'all'")
        sources = tuple(sources)
    else:
        sources = None
    return DestinationConfig(
        name=name,
        secret=r.secret("secret", "secret_env"),
        sources=sources,
        behaviour=parse_behaviour(r.data.get("behaviour"), r.source, r.path("behaviour")),
        sla_seconds=r.number("sla_seconds", 30.0),
    )


def parse_config(data: Any, source: str = "config") -> MonitorConfig:
    """A `MonitorConfig` from the parsed YAML document; `source` names it in errors."""
    top = _Reader(source, "", data)
    dests = top.child("destinations")
    if not dests.data:
        raise top.fail("destinations", "must name at least one destination")
    destinations: dict[str, DestinationConfig] = {}
    for name in dests.data:
        if not isinstance(name, str) or not name or "/" in name:
            raise dests.fail(str(name), "is not a usable destination name (non-empty, no '/')")
        destinations[name] = _parse_destination(dests.child(name), name)

    canary = top.child("canary")
    probes = top.child("probes")
    targets = []
    raw_targets = probes.data.get("targets") or []
    if not isinstance(raw_targets, list):
        raise probes.fail("targets", "must be a list")
    for i, item in enumerate(raw_targets):
        t = _Reader(source, probes.path(f"targets[{i}]"), item)
        url = t.text("url", "")
        if not url.startswith(("http://", "https://")):
            raise t.fail("url", f"must be an http(s) URL, got {url!r}")
        expect = t.data.get("expect_status", [200])
        if isinstance(expect, int):
            expect = [expect]
        if not isinstance(expect, list) or not all(isinstance(s, int) for s in expect):
            raise t.fail("expect_status", "must be a status code or a list of them")
        targets.append(
            ProbeTarget(
                name=t.text("name", url),
                url=url,
                method=t.text("method", "GET").upper(),
                expect_status=tuple(expect),
            )
        )
    return MonitorConfig(
        destinations=destinations,
        lost_after_seconds=top.number("lost_after_seconds", 60.0),
        seed=top.integer("seed", 0),
        max_body_bytes=top.integer("max_body_bytes", 16 * 1024 * 1024, low=1024),
        lost_samples=top.integer("lost_samples", 10, high=10_000),
        metrics_runs=top.integer("metrics_runs", 4, low=1, high=64),
        sweep_interval_seconds=top.number("sweep_interval_seconds", 0.5, low=0.01),
        canary=CanaryConfig(
            enabled=canary.flag("enabled", False),
            ingest_url=canary.text("ingest_url", "http://127.0.0.1:8080").rstrip("/"),
            write_key=canary.secret("write_key", "write_key_env", required=False),
            interval_seconds=canary.number("interval_seconds", 5.0, low=0.01),
            run_name=canary.text("run_name", ""),
            timeout_seconds=canary.number("timeout_seconds", 5.0, low=0.01),
        ),
        probes=ProbesConfig(
            interval_seconds=probes.number("interval_seconds", 15.0, low=0.01),
            timeout_seconds=probes.number("timeout_seconds", 5.0, low=0.01),
            targets=tuple(targets),
        ),
    )


def load_config(path: str | Path | None) -> MonitorConfig:
    """Read and check a YAML config file (the bundled default when `path` is None)."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    config = parse_config(data, str(path))
    if config.canary.enabled and not config.canary.write_key:
        raise ConfigError(
            f"{path}: canary.write_key_env must name a set environment variable holding the write key"
        )
    return config
