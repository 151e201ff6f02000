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
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
from locust.runners import MasterRunner

from gate.thresholds import Verdict, aborting_failures, evaluate
from harness.delivery_wait import DeliveryWait, delivered_by_destination
from harness.locust_stats import endpoint_rows, failure_rows
from harness.monitor_client import MonitorClient, MonitorError
from harness.options import HarnessOptions, OptionError, option_errors, sandbox_faults
from harness.preflight import PREFLIGHT_STREAM, plan_probes, refusal_message, run_preflight
from harness.preflight import table as preflight_table
from harness.progress import progress_line
from harness.report import PACED_KINDS, ReportPaths, RunReport, write_report
from harness.sdks import SdkUnavailable, sdk_module
from harness.stack import SandboxStack
from harness.stats import LoadStats, RequestLatencyHistogram
from harness.stream import Wiring, build_plan
from harness.worker import STOP_MESSAGE
from loadgen.ids import run_id_from_name
from loadgen.ledger import SentLedger
from loadgen.profile import Profile
from monitor.auth import TOKEN_ENV as MONITOR_TOKEN_ENV

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
        self.preflight_stats = LoadStats()
        """What the preflight's probes did, folded into the first test's statistics when it starts."""
        self.history: list[dict[str, Any]] = []
        self.delivery: dict[str, Any] | None = None
        self.stack: SandboxStack | None = None
        self.started_at: float | None = None
        self.streams = 1
        self.ledger_streams_extra = 0  # the preflight's own ledger stream, when it sent one
        self.ended_at: float | None = None
        self.verdict: Verdict | None = None
        self.thresholds = harness.thresholds()
        self.tests = 0
        self.closing_lines: list[str] = []
        """The verdict block and report paths, printed after Locust's own end tables (`print_last`)."""
        self._greenlets: list[gevent.Greenlet] = []
        self.startup_failure = ""
        self._finishing: gevent.Greenlet | None = None
        self.last_paths: ReportPaths | None = None
        self.last_verdict: dict[str, Any] | None = None
        self.last_run_name = ""
        self._final_from: set[str] = set()
        self._finished = False
        self.delivery_wait: dict[str, Any] | None = None

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
        for library in profile.real_sdks:
            try:
                sdk_module(library)
            except SdkUnavailable as exc:
                sys.stderr.write(f"locust: error: the profile's real_sdks.{library} has users, but {exc}\n")
                raise SystemExit(2) from None
        if options.host:
            write_keys = {source: options.write_key for source in sources}
            monitor_url = options.monitor_url
            monitor_token = os.environ.get(MONITOR_TOKEN_ENV, "")
        else:
            faults = sandbox_faults(options.sandbox_faults) if options.sandbox_faults else None
            self.stack = SandboxStack.start(sources, faults, options.loss_deadline, options.canary_interval,
                                            options.sandbox_dialect)  # fmt: skip
            self.environment.host = self.environment.parsed_options.host = self.stack.ingest_url
            options = self.harness.refresh_options()
            write_keys = dict(self.stack.write_keys)
            monitor_url = self.stack.monitor_url
            monitor_token = self.stack.token
        self.wiring = Wiring(
            run_name=run_name,
            seed=seed,
            monitor_url=monitor_url,
            write_keys=write_keys,
            monitor_token=monitor_token,
        )
        self.environment.parsed_options.harness_wiring = self.wiring.to_option()  # travels to the workers
        self.plan = self._build_plan()
        self.monitor = MonitorClient(monitor_url, token=monitor_token or None) if monitor_url else None
        if self.monitor is not None:
            try:
                self.monitor.summary(run=self.wiring.run)
            except MonitorError as exc:
                sys.stderr.write(
                    f"locust: error: --monitor-url {monitor_url} is not a harness monitor: {exc}\n"
                )
                raise SystemExit(2) from None
        if options.preflight != "off":
            self._preflight(profile, seed, write_keys, options)
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

    def _preflight(
        self, profile: Profile, seed: int, write_keys: dict[str, str], options: HarnessOptions
    ) -> None:
        """One request of every kind the profile sends; stop before the load if the target refuses one."""
        probes = plan_probes(profile, seed=seed, run=self.wiring.run, write_keys=write_keys)
        ledger = SentLedger(self.wiring.run, PREFLIGHT_STREAM, self.wiring.run_name)
        refused = run_preflight(probes, options.host, ledger)
        print(preflight_table(probes, options.host, profile.dialect), flush=True)
        for probe in probes:  # the monitor expects them like any accepted message
            if probe.accepted and probe.request is not None:
                self.preflight_stats.record_accepted(probe.request.source, probe.request.message_count)
        if self.monitor is not None:
            try:
                self.monitor.post_ledger(ledger.take_delta(final=True))
                self.ledger_streams_extra = 1
            except MonitorError as exc:
                log.warning("could not send the preflight's ledger to the monitor: %s", exc)
        if not refused:
            return
        message = refusal_message(refused, profile.dialect, sandbox=self.stack is not None)
        if options.preflight == "warn":
            log.warning("%s", message)
            return
        sys.stderr.write(message + "\n")
        self.stop()
        raise SystemExit(2)

    def _build_plan(self):
        return build_plan(self.harness.profile(), self.options)

    def prepare_test(self) -> list[str]:
        """Before a test's first tick: take the options again (the web UI's form may have changed
        them), size the users for the new rate, and give a second test in this process its own run.

        Returns the problems with the new options; the shape starts no users when there are any."""
        try:
            self.harness.refresh_options()
        except OptionError as exc:
            return [str(exc)]
        errors = option_errors(self.harness, stack_running=self.stack is not None)
        if errors:
            return errors
        self.thresholds = self.harness.thresholds()
        if self.tests and self.ended_at is None:
            # Locust may reset the shape more than once as one test starts (the master does): same run.
            self.plan = self._build_plan()
            return []
        self.tests += 1
        base = self.options.run_id or self.wiring.run_name.rsplit("~", 1)[0]
        name = base if self.tests == 1 else f"{base}~{self.tests}"
        seed = self.options.seed if self.options.seed is not None else run_id_from_name(name)
        self.wiring = replace(self.wiring, run_name=name, seed=seed)
        self.environment.parsed_options.harness_wiring = self.wiring.to_option()
        self.plan = self._build_plan()
        return []

    def user_counts(self) -> dict[type, int]:
        """User class → users, from the plan (classes whose source has no share get none) and the
        profile's `real_sdks` (real-SDK user classes name their library in `sdk`)."""
        counts = {}
        real_sdks = self.harness.profile().real_sdks
        for user_class in self.environment.user_classes:
            schedule = self.plan.get(getattr(user_class, "source", ""))
            if schedule is not None:
                counts[user_class] = schedule.users
            elif (sdk := real_sdks.get(getattr(user_class, "sdk", ""))) is not None:
                counts[user_class] = sdk.users
        return counts

    # During the run --------------------------------------------------------------------------

    def on_test_start(self) -> None:
        runner = self.environment.runner
        self.streams = max(1, runner.worker_count) if isinstance(runner, MasterRunner) else 1
        self.started_at = time.time()
        self.ended_at = None
        self.stats = LoadStats()
        self.stats.merge(self.preflight_stats.take())  # the preflight's accepted probes count in the first test
        self.history = []
        self.delivery = None
        self.verdict = None
        self.last_verdict = None  # the panel shows this test as running, not the last one's verdict
        self._finished = False
        self._greenlets.append(gevent.spawn(self._sample_forever))
        if self.headless and self.options.progress_interval > 0:
            self._greenlets.append(gevent.spawn(self._print_progress_forever))

    @property
    def headless(self) -> bool:
        return self.environment.web_ui is None

    def _print_progress_forever(self) -> None:
        while True:
            gevent.sleep(self.options.progress_interval)
            log.info("%s", progress_line(time.time() - self.started_at, self.stats, self.delivery))

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
        check_at = self.options.startup_check
        while True:
            gevent.sleep(HISTORY_INTERVAL)
            self.collect_local()
            self.poll_delivery()
            point = self._sample_point()
            self.history.append(_history_row(previous, point, self.delivery))
            previous = point
            if check_at and time.time() - self.started_at >= check_at:
                check_at = 0.0
                if self._stop_on_dead_target():
                    return
            if watch_aborts and self._abort_on_failed_threshold():
                return

    def _stop_on_dead_target(self) -> bool:
        """A target that accepted nothing in the first --startup-check seconds ends the run, once."""
        if sum(self.stats.accepted.values()) or (not self.stats.total_requests() and not self.stats.missed):
            return False
        answers = ", ".join(f"{k} {v:,}" for k, v in sorted(self.stats.requests_by_class().items()))
        self.startup_failure = (
            f"{self.options.host or 'the target'} accepted no message in the first "
            f"{self.options.startup_check:g}s ({self.stats.total_requests():,} requests; answers: "
            f"{answers or 'none'}): is --host right and the target up? Stopping the run "
            "(--startup-check 0 turns this check off)."
        )
        log.error("%s", self.startup_failure)
        self.environment.stop_timeout = 0  # nothing was accepted: no send in flight is worth waiting for
        self.environment.runner.quit()
        return True

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
            target_rate_source=self.harness.target_rate_source,
            users=sum(schedule.users for schedule in self.plan.values()),
            requests={
                "endpoints": endpoint_rows(self.environment.stats),
                "failures": failure_rows(self.environment.stats),
            },
        )

    def _sample_point(self) -> dict[str, Any]:
        measured = self.stats.combined_latency("measured")
        corrected = self.stats.combined_latency("corrected")
        return {
            "t": time.time(),
            "messages": self.stats.total_messages(),
            "accepted": sum(self.stats.accepted.values()),
            "paced": self.stats.total_messages(PACED_KINDS),
            "requests": self.stats.total_requests(),
            "measured_counts": measured.counts.copy(),
            "corrected_counts": corrected.counts.copy(),
            "delivered": delivered_by_destination(self.delivery),
        }

    # The end ---------------------------------------------------------------------------------

    def finish(self) -> int:
        """Wait for deliveries, write the report, print the verdict; returns the exit code."""
        finishing = self._finishing
        if finishing is not None and not finishing.dead and gevent.getcurrent() is not finishing:
            finishing.join()  # quitting while the web UI's stop is still writing the report
        if self._finished or self.started_at is None:
            return self.verdict.exit_code if self.verdict is not None else 0
        self._finished = True
        self.ended_at = self.ended_at or time.time()
        self._wait_for_deliveries()
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        self.collect_local()
        report = self._report(self.ended_at)
        summary = report.summary()
        if self.delivery_wait is not None:
            summary["run"]["delivery_wait"] = self.delivery_wait
        if self.stack is not None:
            summary["sandbox"] = self.stack.sandbox_stats()
        self.verdict = evaluate(self.thresholds, summary)
        summary["verdict"] = self.verdict.to_dict()
        if self.startup_failure:
            summary["verdict"]["stopped"] = self.startup_failure
        paths = write_report(summary, Path(self.options.report_dir))
        self.last_paths = paths
        self.last_verdict = summary["verdict"]
        self.last_run_name = self.wiring.run_name
        self.closing_lines = [
            report.terminal_table(self.verdict),
            *([f"Stopped early: {self.startup_failure}"] if self.startup_failure else []),
            f"Report: {paths.html}  Summary: {paths.json}",
        ]
        if not self.headless:
            print("\n".join(self.closing_lines), flush=True)
        return self.verdict.exit_code

    def live(self) -> dict[str, Any]:
        """What the web UI's Delivery panel shows: the current test's history and the last verdict."""
        destinations = (self.delivery or {}).get("destinations") or {}
        return {
            "state": self.environment.runner.state,
            "run": self.wiring.run_name,
            "target_rate": self.options.target_rate,
            "users": sum(schedule.users for schedule in self.plan.values()),
            "history": self.history,
            "destinations": sorted(destinations),
            "verdict": self.last_verdict,
            "last_run": self.last_run_name,
            "report": "./report" if self.last_paths is not None else None,
        }

    def print_last(self) -> None:
        """Print the verdict block and report paths (headless: after Locust's end tables, the `quit` event)."""
        if self.headless and self.closing_lines:
            print("\n".join(self.closing_lines), flush=True)

    def finish_in_background(self) -> None:
        """The web UI's stop: deliveries, verdict and report now, not when the process quits."""
        self._finishing = gevent.spawn(self._finish_quietly)

    def _finish_quietly(self) -> None:
        try:
            self.environment.process_exit_code = self.finish()
        except Exception:
            log.exception("could not write the verdict and report of the stopped test")

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
        """Poll the monitor until the wait is over (see `harness.delivery_wait`)."""
        if self.monitor is None:
            return
        wait = DeliveryWait(
            time.monotonic(), self.options.delivery_wait, self.wiring.run, self.streams + self.ledger_streams_extra
        )
        while True:
            self.collect_local()
            if wait.over(time.monotonic(), self.poll_delivery()):
                break
            gevent.sleep(0.5)
        self.delivery_wait = wait.summary(time.monotonic())

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


def _history_row(
    previous: dict[str, Any], point: dict[str, Any], delivery: dict[str, Any] | None = None
) -> dict[str, Any]:
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
    destinations = (delivery or {}).get("destinations") or {}
    row["accepted_per_sec"] = (point["accepted"] - previous["accepted"]) / seconds
    row["paced_per_sec"] = (point["paced"] - previous["paced"]) / seconds
    for key in ("pending", "lost", "late"):
        row[key] = {name: d.get(key, 0) for name, d in destinations.items()}
    row["delivery_latency_seconds"] = {
        name: {q: (d.get("latency_seconds") or {}).get(q) for q in ("p50", "p95", "p99")}
        for name, d in destinations.items()
    }
    for kind in ("measured", "corrected"):
        window = RequestLatencyHistogram()
        window.counts = point[f"{kind}_counts"] - previous[f"{kind}_counts"]
        row[f"p95_{kind}_seconds"] = window.quantile(0.95)
    return row
