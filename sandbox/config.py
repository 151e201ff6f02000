"""Load and check the sandbox's YAML configuration (sources, destinations, dedupe, delivery, faults).

Every problem raises `ConfigError` naming the key path (e.g. `destinations[1].url`), so a bad file
is reported precisely instead of failing later at run time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
DELAY_KINDS = ("fixed", "uniform", "exponential", "lognormal")


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the key."""


@dataclass(frozen=True)
class Source:
    name: str
    write_key: str = field(repr=False)


@dataclass(frozen=True)
class RateLimit:
    requests_per_second: float = 0.0  # 0 disables the limit
    burst: float = 0.0


@dataclass(frozen=True)
class IngestConfig:
    max_message_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    max_batch_events: int = 2500
    rate_limit: RateLimit = field(default_factory=RateLimit)


@dataclass(frozen=True)
class DedupeConfig:
    enabled: bool = True
    """False: every accepted message is delivered, re-sends too (to see a harness catch dedupe leaks)."""
    window_seconds: float = 86400.0
    max_ids: int = 5_000_000
    state_path: str | None = None


@dataclass(frozen=True)
class DeliveryConfig:
    max_age_seconds: float = 4 * 3600.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 60.0
    spool_path: str = "sandbox.spool"
    shutdown_grace_seconds: float = 5.0


@dataclass(frozen=True)
class Destination:
    name: str
    url: str
    secret: str = field(repr=False)
    batch_size: int = 1
    timeout_seconds: float = 5.0
    concurrency: int = 1
    linger_seconds: float = 0.05  # batch_size > 1: wait this long for a batch to fill
    sources: tuple[str, ...] | None = None  # None: every source


@dataclass(frozen=True)
class Delay:
    share: float = 0.0
    kind: str = "fixed"
    params: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DestinationFaults:
    drop: float = 0.0
    duplicate: float = 0.0
    delay: Delay = field(default_factory=Delay)


@dataclass(frozen=True)
class IngestFaults:
    error_5xx: float = 0.0
    error_429: float = 0.0
    accept_then_5xx: float = 0.0


@dataclass(frozen=True)
class Faults:
    ingest: IngestFaults = field(default_factory=IngestFaults)
    destinations: dict[str, DestinationFaults] = field(default_factory=dict)

    def for_destination(self, name: str) -> DestinationFaults:
        return self.destinations.get(name, _NO_DEST_FAULTS)


_NO_DEST_FAULTS = DestinationFaults()


@dataclass(frozen=True)
class Config:
    sources: tuple[Source, ...]
    destinations: tuple[Destination, ...]
    ingest: IngestConfig = field(default_factory=IngestConfig)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read a YAML file (the bundled default when `path` is None) and check every key."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    try:
        return parse_config(raw if raw is not None else {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def parse_config(raw: Any) -> Config:
    """Build a `Config` from already-parsed YAML/JSON data."""
    root = _mapping(
        raw, "config", {"seed", "sources", "ingest", "dedupe", "delivery", "destinations", "faults"}
    )
    sources = tuple(_source(s, f"sources[{i}]") for i, s in enumerate(_list(root.get("sources"), "sources")))
    if not sources:
        raise ConfigError("sources: at least one source (name + write key) is required")
    _unique([s.name for s in sources], "sources", "name")
    _unique([s.write_key for s in sources], "sources", "write key")
    names = {s.name for s in sources}
    destinations = tuple(
        _destination(d, f"destinations[{i}]", names)
        for i, d in enumerate(_list(root.get("destinations", []), "destinations"))
    )
    _unique([d.name for d in destinations], "destinations", "name")
    seed = root.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ConfigError(f"seed: expected an integer, got {seed!r}")
    return Config(
        sources=sources,
        destinations=destinations,
        ingest=_ingest(root.get("ingest", {})),
        dedupe=_dedupe(root.get("dedupe", {})),
        delivery=_delivery(root.get("delivery", {})),
        faults=parse_faults(root.get("faults", {}), {d.name for d in destinations}),
        seed=seed,
    )


def parse_faults(raw: Any, destination_names: set[str], where: str = "faults") -> Faults:
    """Check a `faults` mapping (from the config file or `PUT /admin/faults`)."""
    root = _mapping(raw, where, {"ingest", "destinations"})
    ing = _mapping(root.get("ingest", {}), f"{where}.ingest", {"error_5xx", "error_429", "accept_then_5xx"})
    ingest = IngestFaults(**{k: _share(v, f"{where}.ingest.{k}") for k, v in ing.items()})
    if ingest.error_5xx + ingest.error_429 + ingest.accept_then_5xx > 1.0:
        raise ConfigError(f"{where}.ingest: the shares add up to more than 1")
    dests: dict[str, DestinationFaults] = {}
    for name, spec in _mapping(root.get("destinations", {}), f"{where}.destinations").items():
        here = f"{where}.destinations.{name}"
        if name not in destination_names:
            raise ConfigError(f"{here}: no destination named {name!r} (known: {sorted(destination_names)})")
        d = _mapping(spec, here, {"drop", "duplicate", "delay"})
        dests[name] = DestinationFaults(
            drop=_share(d.get("drop", 0.0), f"{here}.drop"),
            duplicate=_share(d.get("duplicate", 0.0), f"{here}.duplicate"),
            delay=_delay(d.get("delay", {}), f"{here}.delay"),
        )
    return Faults(ingest=ingest, destinations=dests)


def faults_to_dict(faults: Faults) -> dict[str, Any]:
    """The JSON shape `GET /admin/faults` returns and `PUT /admin/faults` accepts."""
    return {
        "ingest": {
            "error_5xx": faults.ingest.error_5xx,
            "error_429": faults.ingest.error_429,
            "accept_then_5xx": faults.ingest.accept_then_5xx,
        },
        "destinations": {
            name: {
                "drop": f.drop,
                "duplicate": f.duplicate,
                "delay": {"share": f.delay.share, "kind": f.delay.kind, **f.delay.params},
            }
            for name, f in faults.destinations.items()
        },
    }


_DELAY_PARAMS = {
    "fixed": ("seconds",),
    "uniform": ("low", "high"),
    "exponential": ("mean",),
    "lognormal": ("mu", "sigma"),
}


def _delay(raw: Any, where: str) -> Delay:
    d = _mapping(raw, where)
    kind = d.get("kind", "fixed")
    if kind not in _DELAY_PARAMS:
        raise ConfigError(f"{where}.kind: expected one of {list(DELAY_KINDS)}, got {kind!r}")
    allowed = {"share", "kind", *_DELAY_PARAMS[kind]}
    extra = set(d) - allowed
    if extra:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(extra)} for kind {kind!r} (allowed: {sorted(allowed)})"
        )
    share = _share(d.get("share", 0.0), f"{where}.share")
    params: dict[str, float] = {}
    for p in _DELAY_PARAMS[kind]:
        if p not in d:
            if share > 0:
                raise ConfigError(f"{where}.{p}: required for kind {kind!r}")
            params[p] = 0.0 if p != "sigma" else 1.0
            continue
        params[p] = _number(d[p], f"{where}.{p}", minimum=None if p == "mu" else 0.0)
    if kind == "uniform" and params["low"] > params["high"]:
        raise ConfigError(f"{where}: low must not exceed high")
    return Delay(share=share, kind=kind, params=params)


def _source(raw: Any, where: str) -> Source:
    s = _mapping(raw, where, {"name", "write_key", "write_key_env"})
    return Source(name=_name(s.get("name"), f"{where}.name"), write_key=_secret(s, where, "write_key"))


def _destination(raw: Any, where: str, source_names: set[str]) -> Destination:
    allowed = {
        "name",
        "url",
        "secret",
        "secret_env",
        "batch_size",
        "timeout_seconds",
        "concurrency",
        "linger_seconds",
        "sources",
    }
    d = _mapping(raw, where, allowed)
    url = d.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.url: expected an http:// or https:// URL, got {url!r}")
    sources = d.get("sources")
    if sources is not None:
        sources = tuple(_list(sources, f"{where}.sources"))
        for i, s in enumerate(sources):
            if s not in source_names:
                raise ConfigError(
                    f"{where}.sources[{i}]: no source named {s!r} (known: {sorted(source_names)})"
                )
    return Destination(
        name=_name(d.get("name"), f"{where}.name"),
        url=url,
        secret=_secret(d, where, "secret"),
        batch_size=_int(d.get("batch_size", 1), f"{where}.batch_size", 1, 2500),
        timeout_seconds=_number(d.get("timeout_seconds", 5.0), f"{where}.timeout_seconds", minimum=0.001),
        concurrency=_int(d.get("concurrency", 1), f"{where}.concurrency", 1, 64),
        linger_seconds=_number(d.get("linger_seconds", 0.05), f"{where}.linger_seconds", minimum=0.0),
        sources=sources,
    )


def _ingest(raw: Any) -> IngestConfig:
    d = _mapping(raw, "ingest", {"max_message_bytes", "max_batch_bytes", "max_batch_events", "rate_limit"})
    rl = _mapping(d.get("rate_limit", {}), "ingest.rate_limit", {"requests_per_second", "burst"})
    rps = _number(rl.get("requests_per_second", 0.0), "ingest.rate_limit.requests_per_second", minimum=0.0)
    return IngestConfig(
        max_message_bytes=_int(
            d.get("max_message_bytes", 32 * 1024), "ingest.max_message_bytes", 64, 1 << 24
        ),
        max_batch_bytes=_int(d.get("max_batch_bytes", 500 * 1024), "ingest.max_batch_bytes", 64, 1 << 26),
        max_batch_events=_int(d.get("max_batch_events", 2500), "ingest.max_batch_events", 1, 1 << 20),
        rate_limit=RateLimit(rps, _number(rl.get("burst", rps), "ingest.rate_limit.burst", minimum=0.0)),
    )


def _dedupe(raw: Any) -> DedupeConfig:
    d = _mapping(raw, "dedupe", {"enabled", "window_seconds", "max_ids", "state_path"})
    enabled = d.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"dedupe.enabled: expected true or false, got {enabled!r}")
    state_path = d.get("state_path")
    if state_path is not None and not isinstance(state_path, str):
        raise ConfigError(f"dedupe.state_path: expected a path string, got {state_path!r}")
    return DedupeConfig(
        enabled=enabled,
        window_seconds=_number(d.get("window_seconds", 86400.0), "dedupe.window_seconds", minimum=0.1),
        max_ids=_int(d.get("max_ids", 5_000_000), "dedupe.max_ids", 1000, 1 << 31),
        state_path=state_path,
    )


def _delivery(raw: Any) -> DeliveryConfig:
    keys = {
        "max_age_seconds",
        "backoff_initial_seconds",
        "backoff_max_seconds",
        "spool_path",
        "shutdown_grace_seconds",
    }
    d = _mapping(raw, "delivery", keys)
    spool = d.get("spool_path", "sandbox.spool")
    if not isinstance(spool, str) or not spool:
        raise ConfigError(f"delivery.spool_path: expected a path string, got {spool!r}")
    return DeliveryConfig(
        max_age_seconds=_number(d.get("max_age_seconds", 14400.0), "delivery.max_age_seconds", minimum=0.0),
        backoff_initial_seconds=_number(
            d.get("backoff_initial_seconds", 0.5), "delivery.backoff_initial_seconds", minimum=0.0
        ),
        backoff_max_seconds=_number(
            d.get("backoff_max_seconds", 60.0), "delivery.backoff_max_seconds", minimum=0.0
        ),
        spool_path=spool,
        shutdown_grace_seconds=_number(
            d.get("shutdown_grace_seconds", 5.0), "delivery.shutdown_grace_seconds", minimum=0.0
        ),
    )


def _secret(d: dict[str, Any], where: str, key: str) -> str:
    """A secret comes from the environment variable named by `<key>_env`, else from `<key>`."""
    env_name = d.get(f"{key}_env")
    if env_name is not None:
        if not isinstance(env_name, str) or not env_name:
            raise ConfigError(f"{where}.{key}_env: expected an environment variable name")
        value = os.environ.get(env_name)
        if value:
            return value
        if key not in d:
            raise ConfigError(f"{where}.{key}_env: environment variable {env_name} is not set")
    value = d.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: needs {key} (a non-empty string) or {key}_env")
    return value


def _mapping(raw: Any, where: str, allowed: set[str] | None = None) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    if allowed is not None:
        extra = set(raw) - allowed
        if extra:
            raise ConfigError(
                f"{where}: unknown key(s) {sorted(map(str, extra))} (allowed: {sorted(allowed)})"
            )
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list, got {type(raw).__name__}")
    return raw


def _name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw or not raw.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"{where}: expected a name of letters, digits, '-' or '_', got {raw!r}")
    return raw


def _number(raw: Any, where: str, minimum: float | None = None) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ConfigError(f"{where}: expected a number, got {raw!r}")
    if minimum is not None and raw < minimum:
        raise ConfigError(f"{where}: must be at least {minimum}, got {raw!r}")
    return float(raw)


def _int(raw: Any, where: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise ConfigError(f"{where}: expected an integer from {low} to {high}, got {raw!r}")
    return raw


def _share(raw: Any, where: str) -> float:
    value = _number(raw, where, minimum=0.0)
    if value > 1.0:
        raise ConfigError(f"{where}: a share must be between 0 and 1, got {raw!r}")
    return value


def _unique(values: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            # never echo a write key: it is a secret
            shown = "" if what == "write key" else f" {v!r}"
            raise ConfigError(f"{where}: duplicate {what}{shown}")
        seen.add(v)
