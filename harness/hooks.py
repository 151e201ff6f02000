"""Locust event listeners: importing this module plugs the harness into `locust -f scenarios`."""

from __future__ import annotations

import logging

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness import webui, worker
from harness.controller import Controller
from harness.options import add_options, exit_on_bad_options
from harness.plugin import Harness

log = logging.getLogger("harness")
_HARNESSES: list[Harness] = []
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per monitor poll is noise


@events.init_command_line_parser.add_listener
def _on_parser(parser, **_kwargs) -> None:
    add_options(parser)


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs) -> None:
    harness = environment.harness = Harness(environment)
    _HARNESSES.append(harness)  # the `quit` event carries no environment
    # Worker reports carry no environment, so their listeners close over this one.
    environment.events.report_to_master.add_listener(lambda data, **_kw: worker.stats_report(harness, data))
    if isinstance(environment.runner, WorkerRunner):
        worker.register_worker_messages(harness)
        return
    exit_on_bad_options(harness)
    controller = harness.controller = Controller(harness)
    environment.events.worker_report.add_listener(lambda data, **_kw: controller.merge_worker_report(data))
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(
            worker.FINAL_MESSAGE,
            lambda msg, **_kw: controller.merge_final_report(msg.node_id, msg.data),
        )
    try:
        controller.start()
    except Exception:
        controller.stop()
        raise
    webui.install(harness)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kwargs) -> None:
    harness = Harness.of(environment)
    if not isinstance(environment.runner, MasterRunner):
        worker.start_stream(harness)
    if harness.controller is not None:
        harness.controller.on_test_start()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kwargs) -> None:
    harness = Harness.of(environment)
    if not isinstance(environment.runner, MasterRunner):
        worker.finish_stream(harness)
    if harness.controller is not None:
        harness.controller.on_test_stop()
        if environment.web_ui is not None:
            harness.controller.finish_in_background()  # stopped in the web UI: verdict and report now


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kwargs) -> None:
    controller = Harness.of(environment).controller
    if controller is None:
        return
    try:
        # The verdict, not Locust's count of failed requests, decides the exit code.
        environment.process_exit_code = controller.finish()
    finally:
        controller.stop()


@events.quit.add_listener
def _on_quit(**_kwargs) -> None:
    # Locust prints its request tables between `quitting` and `quit`: the verdict goes after them.
    for harness in _HARNESSES:
        if harness.controller is not None:
            harness.controller.print_last()
