"""Load-side counters and latency histograms that merge across workers.

Each worker records into its own `LoadStats`, ships `take()` snapshots to the master with Locust's
worker reports, and the master `merge()`s them; the merged totals feed `/metrics`, the report and the
verdict. Latency is kept twice, as measured and from the intended send time (wrk2's coordinated
omission correction), in fine log-spaced buckets that contain the Prometheus buckets exactly, so
quantiles are accurate to ~4% and the exported histogram loses nothing.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

PROMETHEUS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
FINE_BUCKETS = np.unique(np.concatenate([np.geomspace(0.00005, 120.0, 400), PROMETHEUS_BUCKETS]))
"""Upper bounds in seconds; one more bucket after the last holds everything slower."""
_PROMETHEUS_INDEX = np.searchsorted(FINE_BUCKETS, PROMETHEUS_BUCKETS)
_FINE_BOUNDS = FINE_BUCKETS.tolist()  # bisect on a list beats numpy for one value at a time


BAD_INPUT_OUTCOMES = ("expected", "lenient", "error", "unexpected")
"""How the target answered a bad-input case: as expected, accepted it (2xx: lenient), a target error
(5xx or no answer), or another answer."""


def bad_input_outcome(status: int | None, expected_status: int | None) -> str:
    """The outcome of one bad-input request (one of `BAD_INPUT_OUTCOMES`)."""
    if status == expected_status:
        return "expected"
    if status is not None and 200 <= status < 300:
        return "lenient"
    if status is None or status >= 500:
        return "error"
    return "unexpected"


def status_class(status: int | None) -> str:
    """A bounded label for an answer: 2xx, 3xx, 4xx, 429, 5xx, or error (no answer)."""
    if status is None or status <= 0:
        return "error"
    if status == 429:
        return "429"
    return f"{status // 100}xx"


class RequestLatencyHistogram:
    """Counts of latencies in `FINE_BUCKETS`, plus their sum, for quantiles and Prometheus."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = np.zeros(len(FINE_BUCKETS) + 1, dtype=np.int64)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(_FINE_BOUNDS, seconds)] += 1
        self.total += seconds

    def merge(self, counts: list[int], total: float) -> None:
        self.counts += np.asarray(counts, dtype=np.int64)
        self.total += total

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the q-quantile (None when empty)."""
        n = self.count
        if n == 0:
            return None
        index = int(np.searchsorted(np.cumsum(self.counts), q * n, side="left"))
        return float(FINE_BUCKETS[min(index, len(FINE_BUCKETS) - 1)])

    def prometheus_buckets(self) -> list[tuple[str, int]]:
        """Cumulative (le, count) pairs at `PROMETHEUS_BUCKETS` and +Inf."""
        cumulative = np.cumsum(self.counts)
        pairs = [
            (repr(le), int(cumulative[i]))
            for le, i in zip(PROMETHEUS_BUCKETS, _PROMETHEUS_INDEX, strict=True)
        ]
        pairs.append(("+Inf", int(cumulative[-1])))
        return pairs


class LoadStats:
    """What the load generator did, keyed by bounded labels (source, library, kind, status class)."""

    def __init__(self) -> None:
        self.messages: dict[tuple[str, str, str], int] = defaultdict(int)
        self.bytes: dict[tuple[str, str], int] = defaultdict(int)
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.retries: dict[tuple[str, str], int] = defaultdict(int)
        self.missed: dict[str, int] = defaultdict(int)
        self.accepted: dict[str, int] = defaultdict(int)
        self.refused: dict[tuple[str, str], int] = defaultdict(int)
        """(source, status code) → valid messages the ingest refused with a non-429 4xx."""
        self.call_types: dict[tuple[str, str, int], int] = defaultdict(int)
        self.bad_inputs: dict[tuple[str, str], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], RequestLatencyHistogram] = defaultdict(RequestLatencyHistogram)

    def record_request(
        self,
        *,
        source: str,
        library: str,
        kind: str,
        messages: int,
        body_bytes: int,
        status: int | None,
        measured: float,
        corrected: float,
    ) -> None:
        self.messages[source, library, kind] += messages
        self.bytes[source, library] += body_bytes
        self.requests[source, library, status_class(status)] += 1
        self.latency[library, "measured"].observe(measured)
        self.latency[library, "corrected"].observe(corrected)

    def record_call_types(self, source: str, library: str, call_types: Sequence[int]) -> None:
        """New messages by call type (indexes into loadgen.traffic.CALL_TYPES)."""
        table = self.call_types
        for call_type in call_types:
            table[source, library, call_type] += 1

    def record_retry(self, source: str, library: str) -> None:
        self.retries[source, library] += 1

    def record_accepted(self, source: str, messages: int) -> None:
        """Messages the ingest accepted for the first time (what the monitor must see delivered)."""
        self.accepted[source] += messages

    def record_refused(self, source: str, status: int, messages: int) -> None:
        """Valid messages the ingest refused for good (a non-429 4xx to a request expected to succeed)."""
        self.refused[source, str(status)] += messages

    def record_missed(self, source: str, sends: int) -> None:
        self.missed[source] += sends

    def record_bad_input(self, case: str, outcome: str) -> None:
        """One bad-input request by its outcome (see `bad_input_outcome`)."""
        self.bad_inputs[case, outcome] += 1

    def take(self) -> dict[str, Any]:
        """A snapshot for the master (plain lists and strings, msgpack-safe); this object starts empty."""
        snapshot = {
            "messages": [[*k, v] for k, v in self.messages.items()],
            "bytes": [[*k, v] for k, v in self.bytes.items()],
            "requests": [[*k, v] for k, v in self.requests.items()],
            "retries": [[*k, v] for k, v in self.retries.items()],
            "missed": [[k, v] for k, v in self.missed.items()],
            "accepted": [[k, v] for k, v in self.accepted.items()],
            "refused": [[*k, v] for k, v in self.refused.items()],
            "call_types": [[*k, v] for k, v in self.call_types.items()],
            "bad_inputs": [[*k, v] for k, v in self.bad_inputs.items()],
            "latency": [[*k, h.counts.tolist(), h.total] for k, h in self.latency.items()],
        }
        self.__init__()
        return snapshot

    def merge(self, snapshot: dict[str, Any]) -> None:
        for name in ("messages", "bytes", "requests", "retries", "bad_inputs", "call_types", "refused"):
            table = getattr(self, name)
            for *key, value in snapshot.get(name, []):
                table[tuple(key)] += value
        for source, value in snapshot.get("missed", []):
            self.missed[source] += value
        for source, value in snapshot.get("accepted", []):
            self.accepted[source] += value
        for library, kind, counts, total in snapshot.get("latency", []):
            self.latency[library, kind].merge(counts, total)

    # Aggregates used by the report, the verdict and /metrics.

    def total_messages(self, kinds: tuple[str, ...] = ("event", "duplicate", "replay", "bad")) -> int:
        return sum(v for (_s, _l, kind), v in self.messages.items() if kind in kinds)

    def total_requests(self) -> int:
        return sum(self.requests.values())

    def requests_by_class(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for (_s, _l, cls), v in self.requests.items():
            out[cls] += v
        return dict(out)

    def combined_latency(self, kind: str) -> RequestLatencyHistogram:
        combined = RequestLatencyHistogram()
        for (_library, k), histogram in self.latency.items():
            if k == kind:
                combined.merge(histogram.counts, histogram.total)
        return combined
