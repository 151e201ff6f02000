"""Issue 17, finding 8: the loop benchmark's CPU figures never go negative as workers exit."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _loop():
    spec = importlib.util.spec_from_file_location("bench_loop", ROOT / "bench" / "loop.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_cpu_between_ignores_exited_workers_and_reused_pids():
    loop = _loop()
    sampler = loop.CpuSampler()
    sampler.roles = {10: "locust", 11: "locust", 12: "sandbox"}
    sampler.samples = [
        (100.0, {10: 5.0, 11: 400.0, 12: 1.0}),  # the start: worker 11 has used 400 s already
        (101.0, {10: 5.5, 11: 401.0, 12: 1.5}),
        (102.0, {10: 6.0, 12: 2.0}),  # worker 11 exited
        (103.0, {10: 6.5, 11: 0.2, 12: 2.5}),  # its pid reused by a new, short process
    ]
    cpu = sampler.cpu_between(100.0, 103.0)
    assert cpu["locust"] == 1.5 and cpu["sandbox"] == 1.5
    assert all(value >= 0 for value in cpu.values())
    assert sampler.cpu_between(100.0, 101.0)["locust"] == 1.5  # both workers while both ran
