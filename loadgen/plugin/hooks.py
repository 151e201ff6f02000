"""Locust event listeners: importing this module plugs the harness into `locust -f scenarios`."""

from __future__ import annotations

import logging

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadgen.plugin import webui, worker
from loadgen.plugin.controller import Controller
from loadgen.plugin.options import add_options, exit_on_bad_options

log = logging.getLogger("harness")
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per monitor poll is noise


def _controller(environment: Environment) -> Controller | None:
    return getattr(environment, "harness_controller", None)


@events.init_command_line_parser.add_listener
def _on_parser(parser, **_kwargs) -> None:
    add_options(parser)


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs) -> None:
    # Worker reports carry no environment, so their listeners close over this one.
    environment.events.report_to_master.add_listener(
        lambda data, **_kw: worker.stats_report(environment, data)
    )
    if isinstance(environment.runner, WorkerRunner):
        worker.register_worker_messages(environment)
        return
    exit_on_bad_options(environment.parsed_options)
    controller = Controller(environment)
    environment.harness_controller = controller
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
    webui.install(environment, controller)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kwargs) -> None:
    if not isinstance(environment.runner, MasterRunner):
        worker.start_stream(environment)
    if controller := _controller(environment):
        controller.on_test_start()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kwargs) -> None:
    if not isinstance(environment.runner, MasterRunner):
        worker.finish_stream(environment)
    if controller := _controller(environment):
        controller.on_test_stop()


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kwargs) -> None:
    controller = _controller(environment)
    if controller is None:
        return
    try:
        # The verdict, not Locust's count of failed requests, decides the exit code.
        environment.process_exit_code = controller.finish()
    finally:
        controller.stop()
