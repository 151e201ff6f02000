"""Building blocks for the harness's Grafana dashboards: panels, queries, variables, layout (schema 39).

Grafana has no Python dashboard builder that is kept up to date with its schema (grafanalib lags
behind), so the few helpers the dashboards need are here; `grafana/generate.py` composes them.
"""

from __future__ import annotations

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
