"""Shared fixtures for the traffic model's tests."""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from loadgen.profile import DEFAULT_PROFILE, Profile, load_profile
from loadgen.traffic import PreparedRequest, TrafficGenerator

FIXED_TIME = 1_795_000_000.123


@pytest.fixture(scope="session")
def profile() -> Profile:
    return load_profile(DEFAULT_PROFILE)


@pytest.fixture
def make_gen(profile: Profile) -> Callable[..., TrafficGenerator]:
    def make(
        seed: int = 1, stream: int = 3, run: int = 77, prof: Profile | None = None, clock=None
    ) -> TrafficGenerator:
        prof = prof or profile
        return TrafficGenerator(
            prof,
            seed=seed,
            run=run,
            stream=stream,
            write_keys={s: f"wk-{s}" for s in prof.sources},
            clock=clock or (lambda: FIXED_TIME),
        )

    return make


def _decode(req: PreparedRequest) -> Any:
    raw = zlib.decompress(req.body, 31) if req.headers.get("Content-Encoding") == "gzip" else req.body
    return orjson.loads(raw)


def _messages(req: PreparedRequest) -> list[dict[str, Any]]:
    doc = _decode(req)
    return doc.get("batch", [doc])


@pytest.fixture(scope="session")
def decode() -> Callable[[PreparedRequest], Any]:
    """The request body, gunzipped where the headers say so, parsed."""
    return _decode


@pytest.fixture(scope="session")
def messages_of() -> Callable[[PreparedRequest], list[dict[str, Any]]]:
    """The messages a request carries (the batch items, or the single message)."""
    return _messages


@pytest.fixture
def sandbox(tmp_path, profile):
    """The bundled sandbox (`python -m harness sandbox`) on a free loopback port, one write key per source."""
    import yaml

    from harness.processes import ChildServer, free_port

    port = free_port()
    config = tmp_path / "sandbox.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "seed": 1,
                "sources": [{"name": s, "write_key": f"wk-{s}"} for s in profile.sources],
                "delivery": {"spool_path": str(tmp_path / "spool.jsonl")},
                "destinations": [],
            }
        )
    )
    argv = [sys.executable, "-m", "harness", "sandbox", "--config", str(config), "--port", str(port)]
    with ChildServer("sandbox", port, [*argv, "--log-level", "warning"], tmp_path / "sandbox.log") as server:
        yield server.url
