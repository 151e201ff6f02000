"""The dashboards' JSON: loadable by Grafana 10/11, every reference resolvable, and up to date with its generator."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
SCHEMA_VERSIONS = range(36, 42)  # Grafana 10.0 writes 38, 11.x writes 39–41; all load them
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))|\[\[(\w+)\]\]")
BUILTIN = re.compile(r"__\w+")
PANEL_TYPES = {"row", "timeseries", "stat", "heatmap", "table", "state-timeline"}
EXPECTED_UIDS = {
    "load.json": "harness-load",
    "delivery.json": "harness-delivery",
    "sandbox.json": "harness-sandbox",
}


def provisioned_datasource_uid() -> str:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    return source["uid"]


def referenced_variables(text: str) -> set[str]:
    names = {a or b or c for a, b, c in VARIABLE.findall(text)}
    return {n for n in names if not BUILTIN.fullmatch(n)}


def test_the_three_dashboards_exist_with_stable_uids(dashboards):
    assert {name: d["uid"] for name, d in dashboards.items()} == EXPECTED_UIDS
    assert len({d["title"] for d in dashboards.values()}) == 3


def test_schema_version_is_one_grafana_10_and_11_load(dashboards):
    for name, d in dashboards.items():
        assert d["schemaVersion"] in SCHEMA_VERSIONS, f"{name}: schemaVersion {d['schemaVersion']}"
        assert isinstance(d["panels"], list) and d["panels"], name
        assert isinstance(d["templating"]["list"], list), name


def test_every_datasource_reference_is_the_provisioned_uid_or_the_variable(dashboards, all_panels):
    uid = provisioned_datasource_uid()
    for name, d in dashboards.items():
        (ds_var,) = [v for v in d["templating"]["list"] if v["type"] == "datasource"]
        assert ds_var["query"] == "prometheus" and ds_var["current"]["value"] == uid, name
        allowed = {uid, "${" + ds_var["name"] + "}", "$" + ds_var["name"]}
        holders = [v for v in d["templating"]["list"] if v["type"] == "query"]
        for panel in all_panels(d["panels"]):
            if panel["type"] != "row":
                holders.append(panel)
                holders.extend(panel["targets"])
        for holder in holders:
            ds = holder.get("datasource")
            assert isinstance(ds, dict), (
                f"{name}: {holder.get('title') or holder.get('expr')} has no datasource"
            )
            assert ds["type"] == "prometheus" and ds["uid"] in allowed, f"{name}: dangling datasource {ds}"


def test_every_variable_used_is_defined(dashboards, all_panels):
    for name, d in dashboards.items():
        defined = {v["name"] for v in d["templating"]["list"]}
        used: set[str] = set()
        for variable in d["templating"]["list"]:
            if variable["type"] == "query":
                used |= referenced_variables(variable["query"]["query"])
        for panel in all_panels(d["panels"]):
            used |= referenced_variables(panel.get("title", ""))
            used |= {panel["repeat"]} if panel.get("repeat") else set()
            for target in panel.get("targets", []):
                used |= referenced_variables(target["expr"])
                used |= referenced_variables(target.get("legendFormat", ""))
        assert used <= defined, f"{name}: undefined variables {sorted(used - defined)}"


def test_panels_have_unique_ids_a_grid_position_and_a_known_type(dashboards, all_panels):
    for name, d in dashboards.items():
        panels = list(all_panels(d["panels"]))
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for p in panels:
            pos = p["gridPos"]
            assert {"x", "y", "w", "h"} <= pos.keys(), f"{name}: panel {p['id']} gridPos {pos}"
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, f"{name}: panel {p['id']}"
            assert p["type"] in PANEL_TYPES, f"{name}: panel {p['id']} type {p['type']}"
            if p["type"] != "row":
                assert p["targets"], f"{name}: panel {p['title']!r} has no query"
                refs = [t["refId"] for t in p["targets"]]
                assert len(refs) == len(set(refs)), f"{name}: panel {p['title']!r} repeats a refId"


def test_panels_do_not_overlap(dashboards, all_panels):
    for name, d in dashboards.items():
        cells: dict[tuple[int, int], str] = {}
        for p in all_panels(d["panels"]):
            pos = p["gridPos"]
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{name}: {p.get('title')!r} overlaps {cells[(x, y)]!r}"
                    cells[x, y] = p.get("title", "")


def test_quantiles_use_rate_over_the_rate_interval(dashboards, all_panels):
    for name, d in dashboards.items():
        for p in all_panels(d["panels"]):
            for t in p.get("targets", []):
                if "histogram_quantile" in t["expr"]:
                    assert re.search(r"rate\(\w+_bucket\{[^}]*\}\[\$__rate_interval\]\)", t["expr"]), (
                        f"{name}: {p['title']!r}: {t['expr']}"
                    )
                if p["type"] == "heatmap":
                    assert t["format"] == "heatmap" and "_bucket" in t["expr"], f"{name}: {p['title']!r}"


def test_committed_dashboards_match_the_generator():
    from grafana import generate

    for name, builder in generate.BUILDERS.items():
        committed = (GRAFANA / "dashboards" / name).read_text(encoding="utf-8")
        assert committed == generate.render(builder), f"{name} is stale: run python -m grafana.generate"


def test_provisioning_points_grafana_at_the_dashboards():
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "harness.yaml").read_text())
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"].startswith("/")
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(
        m.endswith(":" + entry["options"]["path"] + ":ro") and "grafana/dashboards" in m for m in mounts
    ), mounts
    assert any(m.endswith(":/etc/grafana/provisioning:ro") and "grafana/provisioning" in m for m in mounts), (
        mounts
    )


def json_paths(value, path: str = "") -> set[str]:
    """Every key path in a JSON document (list items collapsed to `[]`)."""
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in {f"{path}/{k}"} | json_paths(v, f"{path}/{k}")}
    if isinstance(value, list):
        return {p for v in value for p in json_paths(v, f"{path}[]")}
    return set()


def schema_round_trip(document: dict) -> set[str]:
    """Key paths of `document` that Grafana's own dashboard schema types (grafana-foundation-sdk, generated
    from Grafana 11.6's schemas, panel and query types included) do not know: they drop them on parsing."""
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()
    parsed = Dashboard.from_json(json.loads(json.dumps(document)))
    back = json.loads(JSONEncoder(sort_keys=True).encode(parsed))
    return json_paths(document) - json_paths(back)


def test_dashboards_parse_in_grafana_11_schema_types_without_losing_a_key(dashboards):
    for name, d in dashboards.items():
        assert schema_round_trip(d) == set(), f"{name}: keys unknown to Grafana's schema"


def test_the_schema_check_catches_a_misspelt_key(dashboards):
    broken = json.loads(json.dumps(dashboards["load.json"]))
    broken["panels"][1]["fieldConfg"] = {}
    broken["panels"][1]["options"]["reduceOption"] = {}
    assert schema_round_trip(broken) == {"/panels[]/fieldConfg", "/panels[]/options/reduceOption"}
