"""Locust's request statistics, fed in batches instead of one `events.request` per request.

Firing Locust's request event and logging into its per-name and total entries costs more per
request than the harness's own HTTP path. Here each request appends to a per-name tally, and
`flush()` folds the tallies into `environment.stats` with Locust's own `StatsEntry.extend`, several
times a second and when the test stops, so the console, web UI, CSV files and worker reports show the
same numbers, up to FLUSH_INTERVAL late. Failures are still logged one by one (they are rare and
Locust keeps each one's message).
"""

from __future__ import annotations

import time
from collections import Counter

import gevent
from locust import stats as locust_stats
from locust.stats import RequestStats, StatsEntry

FLUSH_INTERVAL = 0.5
METHOD = "POST"


class _Tally:
    __slots__ = ("content_length", "failures", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.content_length = 0
        self.failures: list[str] = []


class RequestLog:
    """Per-name tallies of requests since the last flush into Locust's `RequestStats`."""

    def __init__(self, stats: RequestStats) -> None:
        self.stats = stats
        self._tallies: dict[str, _Tally] = {}
        self._greenlet: gevent.Greenlet | None = None

    def record(self, name: str, response_time_ms: float, content_length: int, failure: str | None) -> None:
        tally = self._tallies.get(name)
        if tally is None:
            tally = self._tallies[name] = _Tally()
        tally.times.append(response_time_ms)
        tally.content_length += content_length
        if failure is not None:
            tally.failures.append(failure)

    def flush(self) -> None:
        """Fold every tally into Locust's per-name entry and total, as `StatsEntry.log` would."""
        tallies, self._tallies = self._tallies, {}
        now = time.time()
        for name, tally in tallies.items():
            batch = StatsEntry(self.stats, name, METHOD)
            times = tally.times
            batch.num_requests = len(times)
            batch.total_response_time = sum(times)
            batch.min_response_time = min(times)
            batch.max_response_time = max(times)
            batch.total_content_length = tally.content_length
            batch.response_times = dict(Counter(map(locust_stats.bucket_response_time, times)))
            batch.num_reqs_per_sec = {int(now): len(times)}
            batch.last_request_timestamp = now
            self.stats.get(name, METHOD).extend(batch)
            self.stats.total.extend(batch)
            for failure in tally.failures:
                self.stats.log_error(METHOD, name, failure)

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._flush_forever)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
        self.flush()

    def _flush_forever(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL)
            self.flush()
