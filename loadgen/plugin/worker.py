"""The worker side of a run: set up this process's stream, ship its ledger and its stats."""

from __future__ import annotations

import logging

import gevent
import gevent.event
from locust.env import Environment

from loadgen.plugin.stream import Stream, Wiring
from monitor.client import MonitorClient, MonitorError

LEDGER_INTERVAL = 2.0
"""Seconds between ledger deltas: the granularity of the monitor's loss deadline."""

log = logging.getLogger("harness")


def start_stream(environment: Environment) -> Stream:
    """Create this process's stream (once per test) and start shipping its ledger."""
    options = environment.parsed_options
    wiring = Wiring.from_option(options.harness_wiring)
    stream = Stream(options, wiring, environment.runner.worker_index)
    environment.harness_stream = stream
    environment.harness_shipper = LedgerShipper(stream, MonitorClient(wiring.monitor_url))
    return stream


class LedgerShipper:
    """Posts the stream's ledger deltas every LEDGER_INTERVAL, and the final one when told to stop.

    A delta is taken out of the ledger before it is posted, so the loop is stopped with a flag and
    joined, never killed mid-post: a killed post would lose what the ingest accepted in that delta.
    """

    def __init__(self, stream: Stream, monitor: MonitorClient) -> None:
        self.stream = stream
        self.monitor = monitor
        self._stopping = gevent.event.Event()
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while not self._stopping.wait(LEDGER_INTERVAL):
            self._ship(final=False)

    def _ship(self, *, final: bool) -> bool:
        delta = self.stream.ledger.take_delta(final=final)
        if delta.is_empty() and not final:
            return True
        try:
            self.monitor.post_ledger(delta)
            return True
        except MonitorError as exc:
            # Put the delta back so nothing the ingest accepted is forgotten; the next post retries it.
            self.stream.ledger.restore(delta)
            log.warning("could not send the sent ledger to the monitor: %s", exc)
            return False

    def finish(self, attempts: int = 5) -> None:
        self._stopping.set()
        self._greenlet.join()
        for _attempt in range(attempts):
            if self._ship(final=True):
                return
            gevent.sleep(1.0)


def finish_stream(environment: Environment) -> None:
    """Stop shipping on a schedule and send the final ledger delta."""
    shipper: LedgerShipper | None = getattr(environment, "harness_shipper", None)
    if shipper is not None:
        environment.harness_shipper = None
        shipper.finish()


def stats_report(environment: Environment, data: dict) -> None:
    """Add this worker's load statistics to its report to the master."""
    stream: Stream | None = getattr(environment, "harness_stream", None)
    if stream is not None:
        data["harness"] = stream.stats.take()
