"""Writes the Load, Delivery and Sandbox dashboards in `grafana/dashboards/` (Grafana schema 39).

The JSON files are committed and provisioned as they are; this script is their source, so the
panels stay consistent (one datasource reference, one way to write a quantile or a rate). Grafana
has no Python dashboard builder that is kept up to date with its schema (grafanalib lags behind),
so the few helpers needed are in `grafana/panels.py`. Run `python -m grafana.generate` after changing it;
`tests/dashboards` fails when the committed files differ from its output.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from grafana.panels import (
    DASHBOARDS,
    RATE,
    dashboard,
    heatmap,
    panel,
    quantiles,
    query_variable,
    row,
    stat,
    table,
    target,
    timeseries,
)

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
            "Accepted and refused messages/s by source",
            [
                target(
                    f'sum by (source) (rate(loadgen_accepted_messages_total{{source=~"$source"}}{RATE}))',
                    "accepted {{source}}",
                ),
                target(
                    f'sum by (source, answer) (rate(loadgen_refused_messages_total{{source=~"$source"}}{RATE}))'
                    " or on() vector(0)",
                    "refused {{source}} {{answer}}",
                ),
            ],
            description="Valid messages the ingest accepted, and those it refused for good with a 4xx other "
            "than 429 (by answer): refused.ratio, whose default threshold is 0.",
        ),
        timeseries(
            "Bad-input requests/s by case and outcome",
            [target(f"sum by (case, answer) (rate(loadgen_bad_inputs_total{RATE}))", "{{case}} {{answer}}")],
            "reqps",
            description="expected: refused as it should be; lenient: accepted (2xx) instead; error: a 5xx or "
            "no answer (never retried); unexpected: another answer.",
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
        run_stat("Pending", "monitor_run_pending_messages", w=3),
        run_stat(
            "Lost",
            "monitor_run_lost_messages",
            w=3,
            defaults={"color": {"mode": "thresholds"}, "thresholds": _bad_above_zero()},
            description="Never arrived by the loss deadline (a message arriving later moves to Late).",
        ),
        run_stat(
            "Late",
            "monitor_run_late_messages",
            w=3,
            defaults={"color": {"mode": "thresholds"}, "thresholds": _bad_above_zero()},
            description="First delivered after the loss deadline: late, not lost.",
        ),
        run_stat(
            "Dedupe leaks",
            "monitor_run_dedupe_leaks",
            w=3,
            defaults={"color": {"mode": "thresholds"}, "thresholds": _bad_above_zero()},
            description="Seqs delivered from a re-send (new sentAt, same messageId) that passed the dedupe; "
            "the pipeline delivering one send twice counts as a duplicate instead.",
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
                run_column("monitor_run_late_messages"),
                run_column("monitor_run_dedupe_leaks"),
                run_column("monitor_run_out_of_order_messages"),
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
                "late",
                "dedupe leaks",
                "out of order",
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
            "Out-of-order share by destination",
            [
                target(
                    f"sum by (destination) (rate(monitor_out_of_order_deliveries_total{{{dest}}}{RATE}))"
                    f" / sum by (destination) (rate(monitor_delivered_messages_total{{{dest}}}{RATE}))",
                    "{{destination}}",
                )
            ],
            "percentunit",
            description="Deliveries that came before an earlier message of the same user and source, over "
            "distinct messages delivered (out_of_order.ratio; no default threshold).",
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
