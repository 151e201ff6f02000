"""The master's side of a run (or the only process's, in local mode).

It decides the run's wiring (run id, write keys, monitor), starts the bundled sandbox and monitor
when no `--host` is given, sizes users, merges the workers' statistics, keeps a history for the
report, polls the monitor's live audit, and at the end waits for deliveries, writes the report and
sets the exit code from the verdict.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
from locust.runners import MasterRunner

from gate.thresholds import Verdict, aborting_failures, evaluate
from harness.monitor_client import MonitorClient, MonitorError
from harness.options import HarnessOptions, sandbox_faults
from harness.report import RunReport, write_report
from harness.stack import SandboxStack
from harness.stats import LoadStats, RequestLatencyHistogram
from harness.stream import Wiring, build_plan
from harness.worker import STOP_MESSAGE
from loadgen.ids import run_id_from_name

if TYPE_CHECKING:
    from harness.plugin import Harness

HISTORY_INTERVAL = 1.0
GRACEFUL_STOP_SECONDS = 10.0
FINAL_REPORT_GRACE = 15.0
"""Seconds beyond the stop timeout the master waits for workers' final statistics."""
log = logging.getLogger("harness")


def new_run_name() -> str:
    return f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class Controller:
    """Runs on the master (or the local runner) for the whole Locust process lifetime."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.environment = harness.environment
        self.stats = LoadStats()
        self.history: list[dict[str, Any]] = []
        self.delivery: dict[str, Any] | None = None
        self.stack: SandboxStack | None = None
        self.started_at: float | None = None
        self.streams = 1
        self.ended_at: float | None = None
        self.verdict: Verdict | None = None
        self.thresholds = harness.thresholds()
        self._greenlets: list[gevent.Greenlet] = []
        self._final_from: set[str] = set()
        self._finished = False

    @property
    def options(self) -> HarnessOptions:
        return self.harness.options

    # Setup -----------------------------------------------------------------------------------

    def start(self) -> None:
        options = self.options
        _warn_on_more_processes_than_cores(getattr(self.environment.parsed_options, "processes", None))
        run_name = options.run_id or new_run_name()
        seed = options.seed if options.seed is not None else run_id_from_name(run_name)
        profile = self.harness.profile()
        sources = tuple(profile.sources)
        if options.host:
            write_keys = {source: options.write_key for source in sources}
            monitor_url = options.monitor_url
        else:
            faults = sandbox_faults(options.sandbox_faults) if options.sandbox_faults else None
            self.stack = SandboxStack.start(
                sources, faults, options.loss_deadline, options.canary_interval, options.monitor_workers
            )
            self.environment.host = self.environment.parsed_options.host = self.stack.ingest_url
            options = self.harness.refresh_options()
            write_keys = dict(self.stack.write_keys)
            monitor_url = self.stack.monitor_url
        self.wiring = Wiring(run_name=run_name, seed=seed, monitor_url=monitor_url, write_keys=write_keys)
        self.environment.parsed_options.harness_wiring = self.wiring.to_option()  # travels to the workers
        self.plan = build_plan(profile, options)
        self.monitor = MonitorClient(monitor_url) if monitor_url else None
        if self.monitor is not None:
            try:
                self.monitor.summary(run=self.wiring.run)
            except MonitorError as exc:
                sys.stderr.write(
                    f"locust: error: --monitor-url {monitor_url} is not a harness monitor: {exc}\n"
                )
                raise SystemExit(2) from None
        if not self.environment.stop_timeout:
            # Let a request in flight at the end finish and reach the ledger instead of being killed.
            self.environment.stop_timeout = GRACEFUL_STOP_SECONDS
        log.info(
            "run %s (monitor run %d): %s msg/s %s to %s, monitor %s",
            run_name,
            self.wiring.run,
            f"{options.target_rate:g}",
            options.load_shape,
            f"the bundled sandbox at {options.host}" if self.stack else options.host,
            monitor_url or "none",
        )

    def user_counts(self) -> dict[type, int]:
        """User class → users, from the plan (classes whose source has no share get none)."""
        counts = {}
        for user_class in self.environment.user_classes:
            schedule = self.plan.get(getattr(user_class, "source", ""))
            if schedule is not None:
                counts[user_class] = schedule.users
        return counts

    # During the run --------------------------------------------------------------------------

    def on_test_start(self) -> None:
        runner = self.environment.runner
        self.streams = max(1, runner.worker_count) if isinstance(runner, MasterRunner) else 1
        self.started_at = time.time()
        self.ended_at = None
        self._greenlets.append(gevent.spawn(self._sample_forever))

    def merge_worker_report(self, data: dict[str, Any]) -> None:
        if "harness" in data:
            self.stats.merge(data["harness"])

    def collect_local(self) -> None:
        """In local mode the stream lives in this process: fold its stats in directly."""
        stream = self.harness.stream
        if stream is not None and not isinstance(self.environment.runner, MasterRunner):
            self.stats.merge(stream.stats.take())

    def poll_delivery(self) -> dict[str, Any] | None:
        if self.monitor is None:
            return None
        try:
            self.delivery = self.monitor.summary(run=self.wiring.run)
        except MonitorError as exc:
            log.debug("monitor summary unavailable: %s", exc)
        return self.delivery

    def _sample_forever(self) -> None:
        previous = self._sample_point()
        watch_aborts = any(t.abort_on_fail for t in self.thresholds)
        while True:
            gevent.sleep(HISTORY_INTERVAL)
            self.collect_local()
            self.poll_delivery()
            point = self._sample_point()
            self.history.append(_history_row(previous, point))
            previous = point
            if watch_aborts and self._abort_on_failed_threshold():
                return

    def _abort_on_failed_threshold(self) -> bool:
        """Stop the run once a threshold marked abort_on_fail fails (k6's abortOnFail)."""
        now = time.time()
        failing = aborting_failures(
            self.thresholds, self._report(now).summary(), elapsed=now - self.started_at
        )
        if not failing:
            return False
        log.error("abort_on_fail: stopping the run: %s", "; ".join(r.message() for r in failing))
        self.environment.runner.quit()
        return True

    def _report(self, ended_at: float) -> RunReport:
        return RunReport(
            run_name=self.wiring.run_name,
            run_id=self.wiring.run,
            options=self.options,
            target="sandbox (bundled)" if self.stack else self.options.host,
            started_at=self.started_at,
            ended_at=ended_at,
            streams=self.streams,
            stats=self.stats,
            delivery=self.delivery,
            history=self.history,
        )

    def _sample_point(self) -> dict[str, Any]:
        measured = self.stats.combined_latency("measured")
        corrected = self.stats.combined_latency("corrected")
        return {
            "t": time.time(),
            "messages": self.stats.total_messages(),
            "requests": self.stats.total_requests(),
            "measured_counts": measured.counts.copy(),
            "corrected_counts": corrected.counts.copy(),
            "delivered": _delivered_by_destination(self.delivery),
        }

    # The end ---------------------------------------------------------------------------------

    def finish(self) -> int:
        """Wait for deliveries, write the report, print the verdict; returns the exit code."""
        if self._finished or self.started_at is None:
            return 0
        self._finished = True
        self.ended_at = self.ended_at or time.time()
        self._wait_for_deliveries()
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        self.collect_local()
        report = self._report(self.ended_at)
        summary = report.summary()
        if self.stack is not None:
            summary["sandbox"] = self.stack.sandbox_stats()
        self.verdict = evaluate(self.thresholds, summary)
        summary["verdict"] = self.verdict.to_dict()
        paths = write_report(summary, Path(self.options.report_dir))
        print(report.terminal_table(self.verdict), flush=True)
        print(f"Report: {paths.html}  Summary: {paths.json}", flush=True)
        return self.verdict.exit_code

    def on_test_stop(self) -> None:
        self.ended_at = time.time()
        if isinstance(self.environment.runner, MasterRunner):
            self._collect_final_reports()

    def _collect_final_reports(self) -> None:
        """Ask every worker to stop and wait for its last statistics (see worker.register_worker_messages)."""
        runner = self.environment.runner
        expected = runner.worker_count
        self._final_from.clear()
        runner.send_message(STOP_MESSAGE)
        deadline = time.monotonic() + (self.environment.stop_timeout or 0.0) + FINAL_REPORT_GRACE
        while len(self._final_from) < expected and time.monotonic() < deadline:
            gevent.sleep(0.1)
        if len(self._final_from) < expected:
            log.warning(
                "%d of %d workers sent no final statistics: the load figures miss their last seconds",
                expected - len(self._final_from),
                expected,
            )

    def merge_final_report(self, worker_id: str, data: dict[str, Any]) -> None:
        self._final_from.add(worker_id)
        self.merge_worker_report(data)

    def _wait_for_deliveries(self) -> None:
        """Poll the monitor until every stream's final ledger is in and nothing is pending."""
        if self.monitor is None:
            return
        deadline = time.monotonic() + self.options.delivery_wait
        while True:
            self.collect_local()
            delivery = self.poll_delivery()
            if delivery is not None and _settled(delivery, self.wiring.run, self.streams):
                return
            if time.monotonic() >= deadline:
                log.warning(
                    "delivery wait of %gs ended with messages still pending", self.options.delivery_wait
                )
                return
            gevent.sleep(0.5)

    def stop(self) -> None:
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        if self.stack is not None:
            self.stack.stop()
            self.stack = None


def _warn_on_more_processes_than_cores(processes: int | None) -> None:
    cores = os.cpu_count() or 1
    if processes is not None and processes > cores:
        log.warning(
            "--processes %d is more than this machine's %d cores: the workers share the cores, each sends "
            "less, and a starved worker can miss its heartbeat; --processes %d (or -1) uses each core once",
            processes, cores, cores,
        )  # fmt: skip


def _delivered_by_destination(delivery: dict[str, Any] | None) -> dict[str, int]:
    destinations = (delivery or {}).get("destinations") or {}
    return {name: d.get("delivered", 0) for name, d in destinations.items()}


def _settled(delivery: dict[str, Any], run: int, streams: int) -> bool:
    """Every stream's final ledger has arrived and nothing expected is still in flight."""
    runs = [r for r in delivery.get("runs", []) if r.get("run") == run]
    if not runs:
        return False
    final = [s for s in runs[0].get("streams", []) if s.get("final")]
    if len(final) < streams:
        return False
    return all(d.get("pending", 0) == 0 for d in delivery.get("destinations", {}).values())


def _history_row(previous: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    seconds = max(point["t"] - previous["t"], 1e-9)
    row: dict[str, Any] = {
        "t": round(point["t"], 3),
        "messages_per_sec": (point["messages"] - previous["messages"]) / seconds,
        "requests_per_sec": (point["requests"] - previous["requests"]) / seconds,
        "delivered_per_sec": {
            name: (count - previous["delivered"].get(name, 0)) / seconds
            for name, count in point["delivered"].items()
        },
    }
    for kind in ("measured", "corrected"):
        window = RequestLatencyHistogram()
        window.counts = point[f"{kind}_counts"] - previous[f"{kind}_counts"]
        row[f"p95_{kind}_seconds"] = window.quantile(0.95)
    return row
