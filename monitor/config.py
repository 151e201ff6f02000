"""The monitor's configuration: destinations, behaviours, audit deadline, canary and probes.

Read from a YAML file (`monitor/default.yaml` documents every key); secrets come from environment
variables named in the file (`secret_env`, `write_key_env`), never from the file itself unless the
operator chooses to write a literal `secret`. Every error names the file and the key that is wrong.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config_reader import TOP, Reader
from config_reader import ConfigError as _ConfigError
from monitor.ledger_store import LedgerLimits

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
BEHAVIOUR_KINDS = ("healthy", "slow", "flaky", "rate_limited", "rejecting", "down")
DISTRIBUTIONS = ("fixed", "uniform", "exponential", "lognormal")
_LIMITS = LedgerLimits()
_DEFAULT_SHARE = {"flaky": 0.2, "rate_limited": 0.3, "rejecting": 0.1}


class ConfigError(_ConfigError):
    """A configuration that cannot be used; the message names the file, line and key."""


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
    ledger_limits: LedgerLimits = field(default_factory=LedgerLimits)
    snapshot_interval_seconds: float = 30.0
    foreign_unclaimed_max_ids: int = 1_000_000
    """Per destination: foreign arrivals kept (16 bytes each) until a registration claims them."""
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)


_TOP_KEYS = (
    "destinations",
    "lost_after_seconds",
    "seed",
    "max_body_bytes",
    "lost_samples",
    "metrics_runs",
    "sweep_interval_seconds",
    "max_runs",
    "max_ledger_bytes_per_run",
    "max_ledger_bytes",
    "snapshot_interval_seconds",
    "foreign_unclaimed_max_ids",
    "canary",
    "probes",
)
_DESTINATION_KEYS = ("secret", "secret_env", "sources", "behaviour", "sla_seconds")
_BEHAVIOUR_KEYS = tuple(f for f in BehaviourConfig.__slots__)
_CANARY_KEYS = (
    "enabled",
    "ingest_url",
    "write_key",
    "write_key_env",
    "interval_seconds",
    "run_name",
    "timeout_seconds",
)
_PROBES_KEYS = ("interval_seconds", "timeout_seconds", "targets")
_TARGET_KEYS = ("name", "url", "method", "expect_status")


def _secret(
    r: Reader, doc: dict[str, Any], key: str, literal_key: str, env_key: str, *, required: bool
) -> str | None:
    """A secret given literally or, preferably, by the name of an environment variable.

    With `required`, naming a variable that is not set is an error (a destination must never
    silently lose its signature check); otherwise the secret is just absent.
    """
    if env_key in doc:
        name = r.text(doc[env_key], f"{key}.{env_key}")
        value = os.environ.get(name)
        if not value and required:
            raise r.fail(f"{key}.{env_key}", f"names environment variable {name!r}, which is not set")
        return value or None
    if literal_key in doc:
        return r.text(doc[literal_key], f"{key}.{literal_key}") or None
    return None


def parse_behaviour(
    data: Any, source: str = "behaviour", where: str = "", reader: Reader | None = None
) -> BehaviourConfig:
    """A behaviour from its mapping form, e.g. `{kind: flaky, share: 0.2, status: 503}`."""
    r = reader or Reader(source, error=ConfigError)
    at = f"{where}." if where else ""
    doc = r.mapping(data, where or TOP, _BEHAVIOUR_KEYS)
    kind = r.text(doc.get("kind", "healthy"), f"{at}kind", BEHAVIOUR_KINDS)
    default_status = {"flaky": 500, "rate_limited": 429, "rejecting": 400, "down": 503}.get(kind, 0)
    status = r.integer(doc.get("status", default_status), f"{at}status", maximum=599)
    if kind == "flaky" and not 500 <= status <= 599:
        raise r.fail(f"{at}status", f"must be a 5xx status for a flaky destination, got {status}")
    if kind == "rejecting" and not 400 <= status <= 499:
        raise r.fail(f"{at}status", f"must be a 4xx status for a rejecting destination, got {status}")
    if kind == "down" and not 500 <= status <= 599:
        raise r.fail(f"{at}status", f"must be a 5xx status for a down destination, got {status}")

    def number(key: str, default: float, maximum: float = math.inf) -> float:
        return r.number(doc.get(key, default), f"{at}{key}", maximum=maximum)

    seed = doc.get("seed")
    behaviour = BehaviourConfig(
        kind=kind,
        share=number("share", _DEFAULT_SHARE.get(kind, 0.0), maximum=1.0),
        status=status,
        retry_after_seconds=number("retry_after_seconds", 1.0),
        seconds=number("seconds", 0.0),
        distribution=r.text(doc.get("distribution", "fixed"), f"{at}distribution", DISTRIBUTIONS),
        low=number("low", 0.0),
        high=number("high", 0.0),
        mean=number("mean", 0.0),
        median=number("median", 0.0),
        sigma=number("sigma", 0.0),
        seed=None if seed is None else r.integer(seed, f"{at}seed"),
    )
    if behaviour.distribution == "uniform" and behaviour.high < behaviour.low:
        raise r.fail(f"{at}high", f"must be >= low ({behaviour.low}), got {behaviour.high}")
    return behaviour


def _parse_destination(r: Reader, data: Any, name: str) -> DestinationConfig:
    key = f"destinations.{name}"
    doc = r.mapping(data, key, _DESTINATION_KEYS)
    sources = doc.get("sources")
    if sources is not None and sources != "all":
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise r.fail(f"{key}.sources", "must be a list of source names or 'all'")
        sources = tuple(sources)
    else:
        sources = None
    return DestinationConfig(
        name=name,
        secret=_secret(r, doc, key, "secret", "secret_env", required=True),
        sources=sources,
        behaviour=parse_behaviour(doc.get("behaviour"), r.source, f"{key}.behaviour", r),
        sla_seconds=r.number(doc.get("sla_seconds", 30.0), f"{key}.sla_seconds"),
    )


def _parse_target(r: Reader, data: Any, key: str) -> ProbeTarget:
    doc = r.mapping(data, key, _TARGET_KEYS)
    url = r.text(doc.get("url", ""), f"{key}.url")
    if not url.startswith(("http://", "https://")):
        raise r.fail(f"{key}.url", f"must be an http(s) URL, got {url!r}")
    expect = doc.get("expect_status", [200])
    if isinstance(expect, int):
        expect = [expect]
    if not isinstance(expect, list) or not all(isinstance(s, int) for s in expect):
        raise r.fail(f"{key}.expect_status", "must be a status code or a list of them")
    return ProbeTarget(
        name=r.text(doc.get("name", url), f"{key}.name"),
        url=url,
        method=r.text(doc.get("method", "GET"), f"{key}.method").upper(),
        expect_status=tuple(expect),
    )


def parse_config(data: Any, source: str = "config", reader: Reader | None = None) -> MonitorConfig:
    """A `MonitorConfig` from the parsed YAML document; `source` names it in errors."""
    r = reader or Reader(source, error=ConfigError)
    top = r.mapping(data, TOP, _TOP_KEYS)
    dests = r.mapping(top.get("destinations"), "destinations")
    if not dests:
        raise r.fail("destinations", "must name at least one destination")
    destinations: dict[str, DestinationConfig] = {}
    for name, body in dests.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise r.fail(f"destinations.{name}", "is not a usable destination name (non-empty, no '/')")
        destinations[name] = _parse_destination(r, body, name)

    canary = r.mapping(top.get("canary"), "canary", _CANARY_KEYS)
    probes = r.mapping(top.get("probes"), "probes", _PROBES_KEYS)
    raw_targets = probes.get("targets") or []
    if not isinstance(raw_targets, list):
        raise r.fail("probes.targets", "must be a list")
    return MonitorConfig(
        destinations=destinations,
        lost_after_seconds=r.number(top.get("lost_after_seconds", 60.0), "lost_after_seconds"),
        seed=r.integer(top.get("seed", 0), "seed"),
        max_body_bytes=r.integer(top.get("max_body_bytes", 16 * 1024 * 1024), "max_body_bytes", minimum=1024),
        lost_samples=r.integer(top.get("lost_samples", 10), "lost_samples", maximum=10_000),
        metrics_runs=r.integer(top.get("metrics_runs", 4), "metrics_runs", minimum=1, maximum=64),
        sweep_interval_seconds=r.number(
            top.get("sweep_interval_seconds", 0.5), "sweep_interval_seconds", minimum=0.01
        ),
        ledger_limits=LedgerLimits(
            max_runs=r.integer(top.get("max_runs", _LIMITS.max_runs), "max_runs", minimum=1),
            max_run_bytes=r.integer(
                top.get("max_ledger_bytes_per_run", _LIMITS.max_run_bytes),
                "max_ledger_bytes_per_run",
                minimum=1 << 20,
                maximum=1 << 40,
            ),
            max_total_bytes=r.integer(
                top.get("max_ledger_bytes", _LIMITS.max_total_bytes),
                "max_ledger_bytes",
                minimum=1 << 20,
                maximum=1 << 40,
            ),
        ),
        snapshot_interval_seconds=r.number(
            top.get("snapshot_interval_seconds", 30.0), "snapshot_interval_seconds", minimum=0.1
        ),
        foreign_unclaimed_max_ids=r.integer(
            top.get("foreign_unclaimed_max_ids", 1_000_000), "foreign_unclaimed_max_ids", maximum=1 << 32
        ),
        canary=CanaryConfig(
            enabled=r.flag(canary.get("enabled", False), "canary.enabled"),
            ingest_url=r.text(canary.get("ingest_url", "http://127.0.0.1:8080"), "canary.ingest_url").rstrip(
                "/"
            ),
            write_key=_secret(r, canary, "canary", "write_key", "write_key_env", required=False),
            interval_seconds=r.number(
                canary.get("interval_seconds", 5.0), "canary.interval_seconds", minimum=0.01
            ),
            run_name=r.text(canary.get("run_name", ""), "canary.run_name"),
            timeout_seconds=r.number(
                canary.get("timeout_seconds", 5.0), "canary.timeout_seconds", minimum=0.01
            ),
        ),
        probes=ProbesConfig(
            interval_seconds=r.number(
                probes.get("interval_seconds", 15.0), "probes.interval_seconds", minimum=0.01
            ),
            timeout_seconds=r.number(
                probes.get("timeout_seconds", 5.0), "probes.timeout_seconds", minimum=0.01
            ),
            targets=tuple(_parse_target(r, t, f"probes.targets[{i}]") for i, t in enumerate(raw_targets)),
        ),
    )


def load_config(path: str | Path | None) -> MonitorConfig:
    """Read and check a YAML config file (the bundled default when `path` is None)."""
    path = Path(path) if path else DEFAULT_CONFIG
    data, reader = Reader.load(path, ConfigError)
    config = parse_config(data, str(path), reader)
    if config.canary.enabled and not config.canary.write_key:
        raise reader.fail(
            "canary.write_key_env", "must name a set environment variable holding the write key"
        )
    return config
