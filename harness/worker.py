"""The worker side of a run: set up this process's stream, ship its ledger and its stats."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import gevent
import gevent.event
from locust.env import Environment

from harness.monitor_client import MonitorClient, MonitorError
from harness.request_log import RequestLog
from harness.stream import Stream, Wiring
from harness.stream_feed import start_engine

if TYPE_CHECKING:
    from harness.plugin import Harness


LEDGER_INTERVAL = 2.0
"""Seconds between ledger deltas: the granularity of the monitor's loss deadline."""
STOP_MESSAGE = "harness_stop"
"""Master → workers when the test stops: stop now, then answer with FINAL_MESSAGE."""
FINAL_MESSAGE = "harness_final"
"""Worker → master: the stream's last statistics, sent after its users stopped and its ledger closed."""

log = logging.getLogger("harness")


def start_stream(harness: Harness) -> Stream:
    """Create this process's stream (once per test) and start shipping its ledger."""
    environment = harness.environment
    options = harness.refresh_options()
    wiring = Wiring.from_option(environment.parsed_options.harness_wiring)
    stream = Stream(options, wiring, environment.runner.worker_index, harness.profile())
    stream.request_log = RequestLog(environment.stats)
    stream.request_log.start()
    stream.engine = start_engine(stream, environment.host)
    harness.stream = stream
    if wiring.monitor_url:  # without a monitor (--host and no --monitor-url) nobody audits the ledger
        monitor = MonitorClient(wiring.monitor_url, token=wiring.monitor_token or None)
        harness.shipper = LedgerShipper(stream, monitor)
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
        shipped = True
        for ledger in self.stream.ledgers():  # the stream's own, then each real SDK's
            delta = ledger.take_delta(final=final)
            if delta.is_empty() and not final:
                continue
            try:
                self.monitor.post_ledger(delta)
            except MonitorError as exc:
                # Put the delta back so nothing the ingest accepted is forgotten; the next post retries it.
                ledger.restore(delta)
                log.warning("could not send the sent ledger to the monitor: %s", exc)
                shipped = False
        return shipped

    def finish(self, attempts: int = 5) -> None:
        self._stopping.set()
        self._greenlet.join()
        for _attempt in range(attempts):
            if self._ship(final=True):
                return
            gevent.sleep(1.0)


def finish_stream(harness: Harness) -> None:
    """Fold the last requests into Locust's statistics, stop shipping on a schedule, send the final ledger."""
    stream = harness.stream
    if stream is not None and stream.engine is not None:
        stream.engine.stop()  # the answers in flight are read and accounted first
    if stream is not None and stream.request_log is not None:
        stream.request_log.stop()
    shipper, harness.shipper = harness.shipper, None
    if shipper is not None:
        shipper.finish()


def stats_report(harness: Harness, data: dict) -> None:
    """Add this worker's load statistics to its report to the master."""
    stream = harness.stream
    if stream is not None:
        data["harness"] = stream.stats.take()


def register_worker_messages(harness: Harness) -> None:
    """On a worker: when the master says the test stops, stop and send back the last statistics.

    Locust's master waits only half a second for workers' final reports when it quits, less than
    users may take to finish their requests in flight; this lets the master wait for each worker.
    """
    runner = harness.environment.runner

    def on_stop(environment: Environment, msg, **_kwargs) -> None:
        runner.stop()  # users finish the requests in flight; test_stop sends the final ledger
        stream = harness.stream
        runner.send_message(FINAL_MESSAGE, {"harness": stream.stats.take() if stream else {}})

    runner.register_message(STOP_MESSAGE, on_stop, concurrent=True)
