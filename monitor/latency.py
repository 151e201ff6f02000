"""End-to-end latency histograms: Prometheus buckets for export, fine log-spaced bins for quantiles.

A delivery's latency is its arrival time minus the send time carried in its messageId. Each batch
is binned in one numpy pass (no per-message Python work). The fine histogram has 32 bins per
doubling (each bin spans 2.2%), so a quantile read from it lies well inside one Prometheus bucket.
"""

from __future__ import annotations

import numpy as np

BUCKETS_SECONDS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
)
"""Prometheus bucket bounds: milliseconds to four hours (the pipeline's retry horizon)."""

_BUCKETS_MS = np.array(BUCKETS_SECONDS) * 1000.0
BINS_PER_DOUBLING = 32
_MAX_DOUBLINGS = 27  # 2**27 ms is about 37 hours; anything later lands in the last bin
FINE_BINS = BINS_PER_DOUBLING * _MAX_DOUBLINGS + 1
QUANTILES = (0.5, 0.9, 0.95, 0.99)


def fine_bin_upper_ms(index: np.ndarray | int) -> np.ndarray:
    """The upper edge in ms of fine bin `index`: bin i holds [2**(i/32), 2**((i+1)/32)) ms, and bin 0
    also everything below 1 ms."""
    return np.power(2.0, (np.asarray(index, dtype=np.float64) + 1) / BINS_PER_DOUBLING)


class LatencyHistogram:
    """Latency counts of one (run, destination): Prometheus buckets, sum, and fine bins."""

    __slots__ = ("buckets", "count", "fine", "max_ms", "sum_ms")

    def __init__(self) -> None:
        self.buckets = np.zeros(len(BUCKETS_SECONDS) + 1, dtype=np.int64)  # last: above 4 h (+Inf)
        self.fine = np.zeros(FINE_BINS, dtype=np.int64)
        self.count = 0
        self.sum_ms = 0.0
        self.max_ms = 0.0

    def observe_many(self, latency_ms: np.ndarray) -> None:
        """Add a batch of latencies in milliseconds (negative ones, from clock skew, count as 0)."""
        if not len(latency_ms):
            return
        lat = np.maximum(latency_ms, 0.0)
        self.buckets += np.bincount(np.searchsorted(_BUCKETS_MS, lat), minlength=len(self.buckets))
        fine = (np.log2(np.maximum(lat, 1.0)) * BINS_PER_DOUBLING).astype(np.int64)
        self.fine += np.bincount(np.minimum(fine, FINE_BINS - 1), minlength=FINE_BINS)
        self.count += len(lat)
        self.sum_ms += float(lat.sum())
        self.max_ms = max(self.max_ms, float(lat.max()))

    def merge(self, other: LatencyHistogram) -> None:
        self.buckets += other.buckets
        self.fine += other.fine
        self.count += other.count
        self.sum_ms += other.sum_ms
        self.max_ms = max(self.max_ms, other.max_ms)

    def quantile_seconds(self, q: float) -> float | None:
        """The upper edge of the fine bin holding quantile q (None when empty); error < 2.2%."""
        if self.count == 0:
            return None
        rank = max(1, int(np.ceil(q * self.count)))
        index = int(np.searchsorted(np.cumsum(self.fine), rank, side="left"))
        return min(float(fine_bin_upper_ms(index)), self.max_ms) / 1000.0

    def quantiles(self) -> dict[str, float | None]:
        """p50, p90, p95, p99 and max in seconds, as the run summary reports them."""
        doc: dict[str, float | None] = {f"p{round(q * 100)}": self.quantile_seconds(q) for q in QUANTILES}
        doc["max"] = self.max_ms / 1000.0 if self.count else None
        return doc

    def cumulative_buckets(self) -> list[tuple[str, float]]:
        """(le, cumulative count) pairs for a Prometheus histogram, ending with +Inf."""
        cumulative = np.cumsum(self.buckets)
        bounds = [repr(b) for b in BUCKETS_SECONDS] + ["+Inf"]
        return [(b, float(c)) for b, c in zip(bounds, cumulative, strict=True)]
