"""Writes the Load, Delivery and Sandbox dashboards in `grafana/dashboards/` (Grafana schema 39).

The JSON files are committed and provisioned as they are; this script is their source, so the
panels stay consistent (one datasource reference, one way to write a quantile or a rate). Grafana
has no Python dashboard builder that is kept up to date with its schema (grafanalib lags behind),
so the few helpers needed are here. Run `python grafana/generate.py` after changing it;
`tests/dashboards` fails when the committed files differ from its output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DATASOURCE_UID = "harness-prometheus"
"""The uid of the Prometheus datasource in `grafana/provisioning/datasources/prometheus.yaml`."""
SCHEMA_VERSION = 39
DASHBOARDS = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "[$__rate_interval]"
QUANTILES = (0.5, 0.95, 0.99)


# Building blocks -----------------------------------------------------------------------------


def target(expr: str, legend: str = "", *, instant: bool = False, fmt: str = "time_series") -> dict:
    return {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "format": fmt,
    }


def panel(kind: str, title: str, targets: list[dict], w: int, h: int, **extra: Any) -> dict:
    unit = extra.pop("unit", "short")
    description = extra.pop("description", "")
    defaults: dict[str, Any] = {"unit": unit}
    defaults.update(extra.pop("defaults", {}))
    options = extra.pop("options", {})
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [dict(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "gridPos": {"w": w, "h": h},
        **extra,
    }


def timeseries(title: str, targets: list[dict], unit: str = "short", w: int = 12, **extra: Any) -> dict:
    extra.setdefault("defaults", {}).setdefault("custom", {"drawStyle": "line", "fillOpacity": 10})
    return panel(
        "timeseries",
        title,
        targets,
        w,
        8,
        unit=unit,
        options={"legend": {"displayMode": "table", "placement": "right", "calcs": ["mean", "max"]}},
        **extra,
    )


def stat(title: str, expr: str, unit: str = "short", w: int = 4, **extra: Any) -> dict:
    """A single figure; `noValue` 0 because a counter that never moved has no series yet."""
    extra.setdefault("defaults", {})
    extra["defaults"].setdefault("noValue", "0")
    return panel(
        "stat",
        title,
        [target(expr, instant=True)],
        w,
        4,
        unit=unit,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        },
        **extra,
    )


def table(
    title: str, targets: list[dict], w: int = 12, h: int = 8, columns: tuple[str, ...] = (), **extra: Any
) -> dict:
    """Instant queries merged into one row per label set; `columns` names each query's value column."""
    names = {f"Value #{chr(ord('A') + i)}": name for i, name in enumerate(columns)}
    if len(targets) == 1 and columns:
        names = {"Value": columns[0]}
    return panel(
        "table",
        title,
        targets,
        w,
        h,
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": names}},
        ],
        options={"showHeader": True},
        **extra,
    )


def heatmap(title: str, expr: str, w: int = 12, **extra: Any) -> dict:
    """A Prometheus histogram as a heatmap: per-bucket increases, buckets kept as Grafana's rows."""
    return panel(
        "heatmap",
        title,
        [target(expr, "{{le}}", fmt="heatmap")],
        w,
        9,
        options={
            "calculate": False,
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Spectral", "steps": 64, "scale": "exponential"},
            "yAxis": {"axisPlacement": "left", "unit": "s"},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"mode": "single", "yHistogram": True},
            "cellValues": {"unit": "short"},
            "legend": {"show": True},
        },
        **extra,
    )


def quantiles(metric: str, by: str, selector: str, qs: tuple[float, ...] = QUANTILES) -> list[dict]:
    """histogram_quantile targets over `rate(<metric>_bucket[$__rate_interval])`, one per quantile."""
    group = f"le, {by}" if by else "le"
    legend = " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(",") if label.strip())
    return [
        target(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{selector}}}{RATE})))",
            f"p{round(q * 100)} {legend}".strip(),
        )
        for q in qs
    ]


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def query_variable(name: str, label: str, query: str, *, multi: bool = True) -> dict:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
        "options": [],
        "hide": 0,
        "regex": "",
        "skipUrlSync": False,
    }


DATASOURCE_VARIABLE = {
    "type": "datasource",
    "name": "datasource",
    "label": "Prometheus",
    "query": "prometheus",
    "current": {"selected": False, "text": "Prometheus", "value": DATASOURCE_UID},
    "options": [],
    "refresh": 1,
    "regex": "",
    "hide": 0,
    "includeAll": False,
    "multi": False,
    "skipUrlSync": False,
}


def layout(items: list[dict]) -> list[dict]:
    """Give each panel an id and a gridPos x/y, flowing left to right in rows 24 units wide."""
    x = y = line_height = 0
    for number, item in enumerate(items, start=1):
        pos = item["gridPos"]
        if item["type"] == "row" or x + pos["w"] > 24:
            x, y, line_height = 0, y + line_height, 0
        pos["x"], pos["y"] = x, y
        item["id"] = number
        x += pos["w"]
        line_height = max(line_height, pos["h"])
        if item["type"] == "row":
            x, y, line_height = 0, y + pos["h"], 0
    return items


def dashboard(uid: str, title: str, description: str, variables: list[dict], panels: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["cdp-harness"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "",
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "type": "dashboards",
                "tags": ["cdp-harness"],
                "asDropdown": False,
                "title": "",
                "targetBlank": False,
            }
        ],
        "templating": {"list": [DATASOURCE_VARIABLE, *variables]},
        "panels": layout(panels),
    }


# The dashboards ---------------------------------------------------------------------------------


def load_dashboard() -> dict:
    sel = 'source=~"$source", library=~"$library"'
    lib = 'library=~"$library"'
    errors = f'status_class=~"5xx|429|error", {sel}'
    panels = [
        row("Overview"),
        stat("Messages/s", f"sum(rate(loadgen_messages_total{{{sel}}}{RATE}))", "short"),
        stat("Requests/s", f"sum(rate(loadgen_requests_total{{{sel}}}{RATE}))", "reqps"),
        stat(
            "Error ratio (5xx, 429, no answer)",
            f"sum(rate(loadgen_requests_total{{{errors}}}{RATE})) / sum(rate(loadgen_requests_total{{{sel}}}{RATE}))",
            "percentunit",
            description="Requests answered 5xx or 429 or not at all, over all requests. Deliberate bad "
            "inputs answered 4xx are not errors.",
        ),
        stat(
            "p99 request latency (corrected)",
            f'histogram_quantile(0.99, sum by (le) (rate(loadgen_request_duration_seconds_bucket{{kind="corrected", {lib}}}{RATE})))',
            "s",
        ),
        stat("Workers", "max(loadgen_workers)", "short", w=2),
        stat("Users", "max(loadgen_users)", "short", w=2),
        stat(
            "Missed sends",
            'sum(increase(loadgen_missed_sends_total{source=~"$source"}[$__range]))',
            "short",
            description="Sends dropped because they could not start within --max-lag of their intended "
            "time: the generator fell behind the target rate.",
        ),
        row("Throughput"),
        timeseries(
            "Messages/s by source",
            [target(f"sum by (source) (rate(loadgen_messages_total{{{sel}}}{RATE}))", "{{source}}")],
        ),
        timeseries(
            "Messages/s by library",
            [target(f"sum by (library) (rate(loadgen_messages_total{{{sel}}}{RATE}))", "{{library}}")],
        ),
        timeseries(
            "Messages/s by kind",
            [target(f"sum by (kind) (rate(loadgen_messages_total{{{sel}}}{RATE}))", "{{kind}}")],
            description="event: first sends; duplicate: deliberate re-sends with the same messageId; "
            "replay: historical traffic; bad: the bad-input catalogue.",
        ),
        timeseries(
            "Messages/s by call type",
            [target(f"sum by (type) (rate(loadgen_calls_total{{{sel}}}{RATE}))", "{{type}}")],
            description="New messages (live events and replay) by Segment call: track, identify, page, "
            "screen, group, alias.",
        ),
        timeseries(
            "Requests/s by status class",
            [
                target(
                    f"sum by (status_class) (rate(loadgen_requests_total{{{sel}}}{RATE}))", "{{status_class}}"
                )
            ],
            "reqps",
        ),
        timeseries(
            "Failures/s by status class",
            [
                target(
                    f'sum by (status_class, source) (rate(loadgen_requests_total{{status_class!="2xx", {sel}}}{RATE}))',
                    "{{status_class}} {{source}}",
                )
            ],
            "reqps",
            description="Every answer other than 2xx (4xx includes the deliberate bad inputs).",
        ),
        timeseries(
            "Bytes sent/s by source",
            [target(f"sum by (source) (rate(loadgen_sent_bytes_total{{{sel}}}{RATE}))", "{{source}}")],
            "Bps",
        ),
        timeseries(
            "Client retries/s by library",
            [target(f"sum by (library) (rate(loadgen_retries_total{{{sel}}}{RATE}))", "{{library}}")],
            "reqps",
        ),
        timeseries(
            "Missed sends/s by source",
            [
                target(
                    f'sum by (source) (rate(loadgen_missed_sends_total{{source=~"$source"}}{RATE}))',
                    "{{source}}",
                )
            ],
        ),
        row("Request latency"),
        timeseries(
            "Request latency: measured and corrected",
            quantiles("loadgen_request_duration_seconds", "kind", lib),
            "s",
            w=24,
            description="measured: from the request's start; corrected: from its intended send time under "
            "the target rate (coordinated omission corrected, as wrk2 does).",
        ),
        timeseries(
            "p99 corrected latency by library",
            quantiles("loadgen_request_duration_seconds", "library", f'kind="corrected", {lib}', (0.99,)),
            "s",
        ),
        heatmap(
            "Corrected request latency",
            f'sum by (le) (increase(loadgen_request_duration_seconds_bucket{{kind="corrected", {lib}}}{RATE}))',
        ),
        row("Fleet and bad inputs"),
        timeseries(
            "Workers and users",
            [target("max(loadgen_workers)", "workers"), target("max(loadgen_users)", "users")],
        ),
        table(
            "Bad inputs by case and answer",
            [
                target(
                    "sum by (case, answer) (increase(loadgen_bad_inputs_total[$__range]))",
                    instant=True,
                    fmt="table",
                )
            ],
            columns=("requests",),
            description="expected: the ingest answered the bad input as a real ingest API must.",
        ),
    ]
    variables = [
        query_variable("source", "Source", "label_values(loadgen_messages_total, source)"),
        query_variable(
            "library", "Library", 'label_values(loadgen_messages_total{source=~"$source"}, library)'
        ),
    ]
    return dashboard(
        "harness-load",
        "CDP harness: Load",
        "What the load generator sends: rates, answers, request latency, missed sends (loadgen_* on the Locust master).",
        variables,
        panels,
    )


def delivery_dashboard() -> dict:
    dest = 'destination=~"$destination"'
    run = f'run="$run", {dest}'

    def run_stat(title: str, metric: str, **extra: Any) -> dict:
        return stat(title, f"sum({metric}{{{run}}})", **extra)

    def run_column(metric: str) -> dict:
        return target(f"sum by (destination) ({metric}{{{run}}})", instant=True, fmt="table")

    panels = [
        row("Run audit ($run)"),
        run_stat("Expected", "monitor_run_expected_messages"),
        run_stat("Delivered", "monitor_run_delivered_messages"),
        run_stat("Pending", "monitor_run_pending_messages"),
        run_stat(
            "Lost",
            "monitor_run_lost_messages",
            defaults={"color": {"mode": "thresholds"}, "thresholds": _bad_above_zero()},
        ),
        run_stat(
            "Dedupe leaks",
            "monitor_run_dedupe_leaks",
            defaults={"color": {"mode": "thresholds"}, "thresholds": _bad_above_zero()},
        ),
        stat(
            "Delivery success ratio",
            f"sum(monitor_run_delivered_expected_messages{{{run}}})"
            f" / (sum(monitor_run_delivered_expected_messages{{{run}}}) + sum(monitor_run_lost_messages{{{run}}}))",
            "percentunit",
            description="Of this run's expected messages whose fate is known (delivered or lost), the share delivered "
            "(the recording rule run_destination:monitor_delivery_success:ratio).",
        ),
        table(
            "Run audit by destination",
            [
                run_column("monitor_run_expected_messages"),
                run_column("monitor_run_delivered_messages"),
                run_column("monitor_run_delivered_expected_messages"),
                run_column("monitor_run_pending_messages"),
                run_column("monitor_run_lost_messages"),
                run_column("monitor_run_dedupe_leaks"),
                run_column("monitor_run_rejected_delivered_messages"),
            ],
            w=24,
            h=6,
            columns=(
                "expected",
                "delivered",
                "delivered of expected",
                "pending",
                "lost",
                "dedupe leaks",
                "rejected but delivered",
            ),
            description="delivered counts every distinct seq that arrived; delivered of expected only those the "
            "ledger says the ingest accepted.",
        ),
        row("End-to-end latency"),
        timeseries(
            "Delivery latency quantiles by destination",
            quantiles("monitor_delivery_latency_seconds", "destination", dest),
            "s",
            w=24,
            description="Arrival at the destination minus the send time carried in the messageId.",
        ),
        heatmap(
            "Delivery latency: $destination",
            f"sum by (le) (increase(monitor_delivery_latency_seconds_bucket{{{dest}}}{RATE}))",
            repeat="destination",
            repeatDirection="h",
            maxPerRow=2,
        ),
        row("Deliveries"),
        timeseries(
            "Delivered messages/s",
            [
                target(
                    f"sum by (destination) (rate(monitor_delivered_messages_total{{{dest}}}{RATE}))",
                    "{{destination}}",
                )
            ],
        ),
        timeseries(
            "Duplicate, late and out-of-order deliveries/s",
            [
                target(
                    f"sum by (destination) (rate(monitor_duplicate_deliveries_total{{{dest}}}{RATE}))",
                    "duplicate {{destination}}",
                ),
                target(
                    f"sum by (destination) (rate(monitor_late_deliveries_total{{{dest}}}{RATE}))",
                    "late {{destination}}",
                ),
                target(
                    f"sum by (destination) (rate(monitor_out_of_order_deliveries_total{{{dest}}}{RATE}))",
                    "out of order {{destination}}",
                ),
            ],
        ),
        timeseries(
            "Webhook request success ratio",
            [
                target(
                    f'sum by (destination) (rate(monitor_webhook_requests_total{{code=~"2..", {dest}}}{RATE}))'
                    f" / sum by (destination) (rate(monitor_webhook_requests_total{{{dest}}}{RATE}))",
                    "{{destination}}",
                )
            ],
            "percentunit",
            description="Share of the pipeline's webhook POSTs the destination accepted (below 1 when a "
            "destination behaviour refuses on purpose).",
        ),
        timeseries(
            "Webhook requests/s by answer",
            [
                target(
                    f"sum by (destination, code, reason) (rate(monitor_webhook_requests_total{{{dest}}}{RATE}))",
                    "{{destination}} {{code}} {{reason}}",
                )
            ],
            "reqps",
        ),
        timeseries(
            "Retries seen: refused messages/s by reason",
            [
                target(
                    f"sum by (destination, reason) (rate(monitor_refused_messages_total{{{dest}}}{RATE}))",
                    "{{destination}} {{reason}}",
                ),
                target(
                    f"sum by (destination) (rate(monitor_redelivered_after_400_total{{{dest}}}{RATE}))",
                    "redelivered after 4xx {{destination}}",
                ),
            ],
            description="Messages the destination refused on purpose: 429/5xx must come back (retries), "
            "other 4xx must never come back (redelivered after 4xx is a pipeline bug).",
        ),
        timeseries(
            "Audit input problems/s",
            [
                target(
                    f"sum by (destination) (rate(monitor_foreign_ids_total{{{dest}}}{RATE}))",
                    "foreign ids {{destination}}",
                ),
                target(
                    f"sum by (destination) (rate(monitor_malformed_bodies_total{{{dest}}}{RATE}))",
                    "malformed bodies {{destination}}",
                ),
                target(
                    f"sum by (destination) (rate(monitor_bad_signatures_total{{{dest}}}{RATE}))",
                    "bad signatures {{destination}}",
                ),
            ],
        ),
        row("Canary and destination probes"),
        stat(
            "Canary availability",
            f"min(monitor_canary_availability_ratio{{{dest}}})",
            "percentunit",
            description="Canaries delivered within their SLA ÷ canaries settled, worst destination.",
        ),
        stat("Probes up", "sum(monitor_probe_success)", "short"),
        stat("Probes down", "count(monitor_probe_success == 0)", "short", defaults={"noValue": "0"}),
        timeseries(
            "Canary p99 latency",
            quantiles("monitor_canary_latency_seconds", "destination", dest, (0.99,)),
            "s",
        ),
        panel(
            "state-timeline",
            "Destination probe status",
            [target("max by (target) (monitor_probe_success)", "{{target}}")],
            12,
            8,
            defaults={
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "DOWN", "color": "red", "index": 0},
                            "1": {"text": "UP", "color": "green", "index": 1},
                        },
                    }
                ],
                "color": {"mode": "thresholds"},
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                },
            },
            options={"showValue": "auto", "mergeValues": True, "rowHeight": 0.9},
        ),
        timeseries(
            "Probe duration",
            [target("max by (target) (monitor_probe_duration_seconds)", "{{target}}")],
            "s",
        ),
        table(
            "Probes: last status and failures",
            [
                target("max by (target) (monitor_probe_http_status_code)", instant=True, fmt="table"),
                target(
                    "sum by (target) (increase(monitor_probe_failures_total[$__range]))",
                    instant=True,
                    fmt="table",
                ),
                target(
                    "sum by (target) (increase(monitor_probe_checks_total[$__range]))",
                    instant=True,
                    fmt="table",
                ),
            ],
            columns=("last HTTP status", "failures", "checks"),
            description="Last HTTP status (0: no answer), failures and checks in the time range.",
        ),
        row("Monitor"),
        timeseries(
            "Ledger deltas/s",
            [
                target(f"sum(rate(monitor_ledger_deltas_total{RATE}))", "accepted"),
                target(f"sum(rate(monitor_ledger_rejected_total{RATE}))", "rejected"),
            ],
        ),
        timeseries(
            "Audit memory",
            [
                target("max(monitor_audit_memory_bytes)", "audit total"),
                target("max(monitor_audit_user_table_bytes)", "per-user tables"),
            ],
            "bytes",
        ),
    ]
    variables = [
        query_variable("run", "Run", "label_values(monitor_run_expected_messages, run)", multi=False),
        query_variable(
            "destination", "Destination", "label_values(monitor_delivery_arrivals_total, destination)"
        ),
    ]
    return dashboard(
        "harness-delivery",
        "CDP harness: Delivery",
        "Exact delivery audit from the monitor: loss, duplicates, dedupe leaks, end-to-end latency, canaries, probes (monitor_*).",
        variables,
        panels,
    )


def sandbox_dashboard() -> dict:
    dest = 'destination=~"$destination"'
    src = 'source=~"$source"'
    panels = [
        row("Ingest"),
        timeseries(
            "Ingest requests/s by endpoint and status",
            [
                target(
                    f"sum by (endpoint, status) (rate(sandbox_requests_total{RATE}))",
                    "{{endpoint}} {{status}}",
                )
            ],
            "reqps",
        ),
        timeseries(
            "Messages accepted and rejected/s by source",
            [
                target(
                    f"sum by (source) (rate(sandbox_messages_accepted_total{{{src}}}{RATE}))",
                    "accepted {{source}}",
                ),
                target(
                    f"sum by (source, reason) (rate(sandbox_messages_rejected_total{RATE}))",
                    "rejected {{source}} {{reason}}",
                ),
            ],
            description="Rejections are not filtered by source: a request with a bad write key has source "
            '"unknown".',
        ),
        timeseries(
            "Dedupe hits/s by source",
            [target(f"sum by (source) (rate(sandbox_dedupe_hits_total{{{src}}}{RATE}))", "{{source}}")],
            description="Accepted messages dropped because their messageId was seen before.",
        ),
        timeseries(
            "Dedupe window",
            [
                target("max(sandbox_dedupe_remembered_ids)", "remembered ids"),
                target(f"sum(rate(sandbox_dedupe_evicted_total{RATE}))", "evicted/s"),
            ],
        ),
        row("Queues and delivery"),
        timeseries(
            "Queue depth",
            [target(f"sum by (destination) (sandbox_queue_depth{{{dest}}})", "{{destination}}")],
        ),
        timeseries(
            "Oldest queued message age",
            [target(f"max by (destination) (sandbox_queue_oldest_age_seconds{{{dest}}})", "{{destination}}")],
            "s",
        ),
        timeseries(
            "Delivery attempts/s by outcome",
            [
                target(
                    f"sum by (destination, outcome) (rate(sandbox_delivery_attempts_total{{{dest}}}{RATE}))",
                    "{{destination}} {{outcome}}",
                )
            ],
            "reqps",
        ),
        timeseries(
            "Messages enqueued, delivered and discarded/s",
            [
                target(
                    f"sum by (destination) (rate(sandbox_messages_enqueued_total{{{dest}}}{RATE}))",
                    "enqueued {{destination}}",
                ),
                target(
                    f"sum by (destination) (rate(sandbox_messages_delivered_total{{{dest}}}{RATE}))",
                    "delivered {{destination}}",
                ),
                target(
                    f"sum by (destination, reason) (rate(sandbox_messages_discarded_total{{{dest}}}{RATE}))",
                    "discarded {{destination}} {{reason}}",
                ),
            ],
        ),
        timeseries(
            "Pipeline delivery latency (receivedAt to 2xx)",
            quantiles("sandbox_delivery_latency_seconds", "destination", dest),
            "s",
            w=24,
        ),
        row("Injected faults"),
        timeseries(
            "Injected faults/s by kind and target",
            [
                target(
                    f"sum by (kind, target) (rate(sandbox_faults_injected_total{RATE}))",
                    "{{kind}} {{target}}",
                )
            ],
            description="Every fault the sandbox injected on purpose (target: ingest or a destination).",
        ),
        table(
            "Injected faults in the time range",
            [
                target(
                    "sum by (kind, target) (increase(sandbox_faults_injected_total[$__range]))",
                    instant=True,
                    fmt="table",
                )
            ],
            columns=("faults",),
        ),
        timeseries(
            "Injected delay (seconds of delay added per second)",
            [
                target(
                    f"sum by (destination) (rate(sandbox_fault_delay_seconds_total{{{dest}}}{RATE}))",
                    "{{destination}}",
                )
            ],
        ),
        stat("Sandbox uptime", "max(sandbox_up_seconds)", "s"),
    ]
    variables = [
        query_variable("source", "Source", "label_values(sandbox_messages_accepted_total, source)"),
        query_variable(
            "destination", "Destination", "label_values(sandbox_messages_enqueued_total, destination)"
        ),
    ]
    return dashboard(
        "harness-sandbox",
        "CDP harness: Sandbox",
        "The bundled reference pipeline: ingest, dedupe, queues, delivery attempts and injected faults (sandbox_*).",
        variables,
        panels,
    )


def _bad_above_zero() -> dict:
    return {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}]}


BUILDERS = {
    "load.json": load_dashboard,
    "delivery.json": delivery_dashboard,
    "sandbox.json": sandbox_dashboard,
}


def render(builder) -> str:
    return json.dumps(builder(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    DASHBOARDS.mkdir(exist_ok=True)
    for name, builder in BUILDERS.items():
        (DASHBOARDS / name).write_text(render(builder), encoding="utf-8")
        print(f"wrote {DASHBOARDS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
