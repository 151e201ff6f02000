"""What the harness adds to Locust's web UI and to headless runs: `/metrics`, and the Delivery and
Messages tabs (Locust's `extendedTabs` mechanism: tables filled from `/stats/requests`)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import orjson
from locust.env import Environment
from locust.runners import MasterRunner
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server

from harness.metrics import LoadCollector, load_registry
from harness.report_html import asset, panel_html

if TYPE_CHECKING:
    from harness.controller import Controller
    from harness.plugin import Harness

log = logging.getLogger("harness")

DELIVERY_COLUMNS = [
    ("destination", "Destination"),
    ("expected", "Expected"),
    ("delivered_expected", "Delivered"),
    ("delivered", "Arrived (incl. not yet in the ledger)"),
    ("pending", "Pending"),
    ("lost", "Lost"),
    ("late", "Late (after the loss deadline)"),
    ("duplicates", "Duplicate deliveries"),
    ("dedupe_leaks", "Dedupe leaks"),
    ("out_of_order", "Out of order"),
    ("p50", "p50 latency (s)"),
    ("p95", "p95 latency (s)"),
    ("p99", "p99 latency (s)"),
]
MESSAGE_COLUMNS = [
    ("source", "Source"),
    ("library", "Library"),
    ("messages", "Messages"),
    ("requests", "Requests"),
    ("messages_per_request", "Messages/request"),
    ("bytes", "Body bytes"),
]


def delivery_rows(delivery: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for name, d in sorted(((delivery or {}).get("destinations") or {}).items()):
        latency = d.get("latency_seconds") or {}
        rows.append(
            {
                "destination": name,
                **{key: d.get(key, 0) for key, _title in DELIVERY_COLUMNS[1:10]},
                **{q: _round(latency.get(q)) for q in ("p50", "p95", "p99")},
            }
        )
    return rows


INGEST_COLUMNS = [
    ("source", "Source (ingest answers)"),
    ("accepted", "Accepted"),
    ("refused", "Refused (4xx, not 429)"),
    ("answers", "Refused by answer"),
]


def ingest_rows(controller: Controller) -> list[dict[str, Any]]:
    """Per source: messages the ingest accepted and refused, and the refusals by status code."""
    stats = controller.stats
    sources = sorted({s for s, _l, _k in stats.messages} | set(stats.accepted))
    rows = []
    for source in sources:
        answers = {code: n for (s, code), n in sorted(stats.refused.items()) if s == source}
        rows.append(
            {
                "source": source,
                "accepted": stats.accepted.get(source, 0),
                "refused": sum(answers.values()),
                "answers": ", ".join(f"{code} ×{n}" for code, n in answers.items()),
            }
        )
    return rows


def message_rows(controller: Controller) -> list[dict[str, Any]]:
    stats = controller.stats
    per: dict[tuple[str, str], dict[str, int]] = {}
    for (source, library, _kind), value in stats.messages.items():
        per.setdefault((source, library), {"messages": 0, "requests": 0})["messages"] += value
    for (source, library, _cls), value in stats.requests.items():
        per.setdefault((source, library), {"messages": 0, "requests": 0})["requests"] += value
    return [
        {
            "source": source,
            "library": library,
            "messages": v["messages"],
            "requests": v["requests"],
            "messages_per_request": _round(v["messages"] / v["requests"]) if v["requests"] else 0,
            "bytes": stats.bytes.get((source, library), 0),
        }
        for (source, library), v in sorted(per.items())
    ]


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 4)


def _registry(environment: Environment, controller: Controller):
    runner = environment.runner
    return load_registry(
        LoadCollector(
            lambda: controller.stats,
            workers=lambda: runner.worker_count if isinstance(runner, MasterRunner) else 1,
            users=lambda: runner.user_count,
            run=lambda: (controller.wiring.run, controller.wiring.run_name),
        )
    )


def _derive_users_from_the_rate(web_ui: Any) -> None:
    """Users and ramp-up come from --target-rate: the form shows them disabled ("Disabled for tests
    using LoadTestShape class"), never as fields that are silently ignored. The shape still reads
    -t, which is why it declares use_common_options."""
    update = web_ui.update_template_args

    def update_template_args() -> None:
        update()
        web_ui.template_args["hide_common_options"] = True

    web_ui.update_template_args = update_template_args
    update_template_args()


def install(harness: Harness) -> None:
    """Serve `/metrics` (on the web UI, or on --metrics-port when headless) and add the tabs."""
    environment, controller, options = harness.environment, harness.controller, harness.options
    registry = _registry(environment, controller)
    web_ui = environment.web_ui
    if web_ui is None:
        if options.metrics_port != 0:
            host = {"": "127.0.0.1", "*": "0.0.0.0"}.get(options.web_host, options.web_host)
            try:
                server, _ = start_http_server(options.metrics_port or 0, addr=host, registry=registry)
            except OSError as exc:
                sys.stderr.write(
                    f"locust: error: --metrics-port {options.metrics_port}: cannot listen on {host}: "
                    f"{exc.strerror or exc}; pass another --metrics-port, or leave it out for a free port\n"
                )
                raise SystemExit(2) from None
            shown = f"[{host}]" if ":" in host else host
            log.info("loadgen metrics at http://%s:%d/metrics", shown, server.server_port)
        return

    from flask import Response, request, send_file

    _derive_users_from_the_rate(web_ui)

    @web_ui.app.route("/harness/panel")
    def _panel() -> Response:
        return Response(panel_html(), mimetype="text/html")

    @web_ui.app.route("/harness/live.json")
    def _live() -> Response:
        controller.collect_local()
        return Response(
            orjson.dumps(controller.live(), option=orjson.OPT_SERIALIZE_NUMPY), mimetype="application/json"
        )

    @web_ui.app.route("/harness/report")
    def _report() -> Response:
        paths = controller.last_paths
        if paths is None or not paths.html.exists():
            return Response(
                "No report yet: it is written when a test stops.\n", status=404, mimetype="text/plain"
            )
        return send_file(paths.html.resolve(), mimetype="text/html")

    @web_ui.app.route("/harness/inject.js")
    def _inject() -> Response:
        return Response(asset("inject.js"), mimetype="text/javascript")

    @web_ui.app.route("/metrics")
    def _metrics() -> Response:
        controller.collect_local()
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    web_ui.template_args["extendedTabs"] = [
        {"title": "Delivery", "key": "delivery"},
        {"title": "Ingest answers", "key": "ingest"},
        {"title": "Messages", "key": "messages"},
    ]
    web_ui.template_args["extendedTables"] = [
        {"key": "delivery", "structure": [{"key": k, "title": t} for k, t in DELIVERY_COLUMNS]},
        {"key": "ingest", "structure": [{"key": k, "title": t} for k, t in INGEST_COLUMNS]},
        {"key": "messages", "structure": [{"key": k, "title": t} for k, t in MESSAGE_COLUMNS]},
    ]

    @web_ui.app.after_request
    def _extend_stats(response):
        if request.path == "/" and response.status_code == 200 and response.mimetype == "text/html":
            page = response.get_data(as_text=True)
            response.set_data(
                page.replace("</body>", '<script src="./harness/inject.js"></script></body>', 1)
            )
            return response
        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        controller.collect_local()
        body = orjson.loads(response.get_data())
        body["extended_stats"] = [
            {"key": "delivery", "data": delivery_rows(controller.delivery)},
            {"key": "ingest", "data": ingest_rows(controller)},
            {"key": "messages", "data": message_rows(controller)},
        ]
        response.set_data(orjson.dumps(body))
        return response
