"""One worker process's share of a run: its messageId stream, traffic generator, ledger and stats."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import orjson

from harness.options import HarnessOptions
from harness.plan import Pacer, SourceSchedule, plan_sources
from harness.rate_curves import rate_at, shape_duration
from harness.request_log import RequestLog
from harness.stats import LoadStats
from loadgen.ids import MAX_STREAM, run_id_from_name
from loadgen.ledger import SentLedger
from loadgen.profile import Profile
from loadgen.traffic import TrafficGenerator, messages_per_request


@dataclass(frozen=True)
class Wiring:
    """What the master decides once and every worker needs: the run, its write keys, the monitor."""

    run_name: str
    seed: int
    monitor_url: str
    write_keys: dict[str, str] = field(repr=False)

    def to_option(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_option(cls, text: str) -> Wiring:
        return cls(**orjson.loads(text))

    @property
    def run(self) -> int:
        return run_id_from_name(self.run_name)


def build_plan(profile: Profile, options: HarnessOptions) -> dict[str, SourceSchedule]:
    """Users per source for the peak rate; the same on every process for the same options."""
    per_request = {source: messages_per_request(profile, source) for source in profile.sources}
    return plan_sources(profile.sources, per_request, options.target_rate, options.latency_budget)


class Stream:
    """The traffic this process sends. Locust's worker index is the stream number."""

    def __init__(self, options: HarnessOptions, wiring: Wiring, stream: int, profile: Profile) -> None:
        if not 0 <= stream < MAX_STREAM:
            raise ValueError(f"worker index {stream} is beyond the {MAX_STREAM} streams a run can have")
        self.options = options
        self.wiring = wiring
        self.number = stream
        self.generator = TrafficGenerator(
            profile,
            seed=wiring.seed,
            run=wiring.run,
            stream=stream,
            write_keys=wiring.write_keys,
        )
        self.ledger = SentLedger(wiring.run, stream, wiring.run_name)
        self.stats = LoadStats()
        self.request_log: RequestLog | None = None  # Locust's statistics, set by worker.start_stream
        self.plan = build_plan(profile, options)
        self.pacers = {source: Pacer(schedule) for source, schedule in self.plan.items()}
        self.duration = shape_duration(options.load_shape, options.run_time)
        self.started = time.monotonic()

    def rate_now(self) -> float:
        """The whole test's target message rate at this moment of the run."""
        elapsed = time.monotonic() - self.started
        return rate_at(self.options.load_shape, self.options.target_rate, elapsed, self.duration)
