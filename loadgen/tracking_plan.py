"""Tracking plans as event catalogs: a team's own event names and property schemas, in place of (or
beside) the built-in semantic catalogs.

Three formats are read, told apart by their shape:
- Segment Protocols: the Config API's tracking plan (`rules.events[]` with `name` and `rules`, a JSON
  Schema of the whole message) or the Public API's rules (`rules[]`, or `data.rules[]`, with `type`
  TRACK, `key` and `jsonSchema`);
- RudderStack: a tracking plan with `events[]`, each with `name`, `eventType` and `rules` (a JSON
  Schema of the message or of its properties);
- a short YAML: `events:` mapping each event name to `{weight, properties}` (property -> type name,
  `name?` for optional, a list for an enum, or a JSON Schema) or to `{weight, schema}`.
Only track events are used; identify/page/group rules and context schemas are left to the built-in
population. Plans without weights give every event the same weight.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from loadgen.events import Catalog, Event
from loadgen.schema_values import SchemaError, ValueMaker, compile_schema

ALL_KINDS = ("web", "mobile", "server", "http")
SESSION_EVENTS = 4  # events in one generated session of a plan
DECK_SIZE = 1024  # events dealt per pass: each planned event appears about weight * 1024 times
DECK_FLOOR = 2  # and at least twice (about 0.2% of the plan's events), so a rare event is still sent
SHORTHAND_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer", "minimum": 0, "maximum": 1000},
    "number": {"type": "number", "minimum": 0, "maximum": 1000},
    "boolean": {"type": "boolean"},
    "object": {"type": "object"},
    "array": {"type": "array", "items": {"type": "string"}},
    "email": {"type": "string", "format": "email"},
    "uuid": {"type": "string", "format": "uuid"},
    "date-time": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "uri": {"type": "string", "format": "uri"},
}


class PlanError(ValueError):
    """A tracking plan that cannot be used; the message names the file and the event or key."""


@dataclass(frozen=True, slots=True)
class PlanEvent:
    """One planned track event: its weight, its properties' JSON Schema and the message schema."""

    name: str
    weight: float
    properties_schema: dict[str, Any]
    message_schema: dict[str, Any]
    """A JSON Schema the whole message must satisfy (the plan's own, or one built around properties)."""
    make_properties: ValueMaker


@dataclass(frozen=True, slots=True)
class TrackingPlan:
    name: str
    format: str  # "segment", "segment-public-api", "rudderstack" or "yaml"
    events: tuple[PlanEvent, ...]
    kinds: frozenset[str]

    def catalog(self, name: str | None = None) -> Catalog:
        """This plan as an event catalog the traffic model builds its session pool from."""
        return Catalog(name or self.name, self.kinds, _PlanSessions(self))


class _PlanSessions:
    """`make_session` of a plan: each generator (one `random.Random` per pool) deals sessions from a
    shuffled deck holding every event in proportion to its weight, so a pool of sessions carries each
    planned event, and the weights hold to within 1/DECK_SIZE; an event rarer than DECK_FLOOR/DECK_SIZE
    is raised to that share, so that it is still sent in a short run."""

    def __init__(self, plan: TrackingPlan) -> None:
        total = sum(e.weight for e in plan.events)
        self.deck = [
            i
            for i, e in enumerate(plan.events)
            for _ in range(max(DECK_FLOOR, round(e.weight / total * DECK_SIZE)))
        ]
        self.events = plan.events
        self.cursors: weakref.WeakKeyDictionary[random.Random, list[int]] = weakref.WeakKeyDictionary()

    def __call__(self, rng: random.Random, funnel: Mapping[str, float]) -> list[Event]:
        dealt = self.cursors.get(rng)
        if dealt is None or not dealt:
            dealt = self.deck[:]
            rng.shuffle(dealt)
            self.cursors[rng] = dealt
        picks = [dealt.pop() for _ in range(min(SESSION_EVENTS, len(dealt)))]
        return [Event(self.events[i].name, self.events[i].make_properties(rng)) for i in picks]


def load_plan(path: str | Path, name: str | None = None) -> TrackingPlan:
    """Read a plan file (JSON or YAML, any of the three formats); raises PlanError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise PlanError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None
    return parse_plan(doc, str(path), name or path.stem)


def parse_plan(doc: Any, origin: str, name: str) -> TrackingPlan:
    """Check an already-parsed plan document; `origin` names it in errors (a path or profile key)."""
    if not isinstance(doc, Mapping):
        raise PlanError(f"{origin}: a tracking plan must be a mapping, got {type(doc).__name__}")
    kinds = _kinds(doc.get("kinds", ALL_KINDS), origin)
    if isinstance(doc.get("data"), Mapping) and "rules" in doc["data"]:
        doc = doc["data"]
    rules = doc.get("rules")
    if isinstance(rules, Mapping) and isinstance(rules.get("events"), list):
        fmt, raw = (
            "segment",
            [(e.get("name"), 1.0, e.get("rules", {}), True) for e in _items(rules["events"], origin)],
        )
    elif isinstance(rules, list):
        fmt = "segment-public-api"
        raw = [(r.get("key"), 1.0, r.get("jsonSchema", {}), True) for r in _items(rules, origin)
               if str(r.get("type", "TRACK")).upper() == "TRACK"]  # fmt: skip
    elif isinstance(doc.get("events"), list):
        fmt = "rudderstack"
        raw = [(e.get("name"), 1.0, e.get("rules", {}), _message_level(e.get("rules", {})))
               for e in _items(doc["events"], origin) if str(e.get("eventType", "track")).lower() == "track"]  # fmt: skip
    elif isinstance(doc.get("events"), Mapping):
        fmt, raw = "yaml", [_short_event(event, body, origin) for event, body in doc["events"].items()]
    else:
        raise PlanError(
            f"{origin}: not a tracking plan: expected Segment's rules.events[] or rules[], RudderStack's "
            "events[] or the short YAML's events: mapping"
        )
    events = []
    seen: set[str] = set()
    for event, weight, schema, message_level in raw:
        if not isinstance(event, str) or not event:
            raise PlanError(f"{origin}: an event without a name")
        if event in seen:
            raise PlanError(f"{origin}: event {event!r}: listed twice")
        seen.add(event)
        events.append(_compile_event(event, weight, schema, message_level, f"{origin}: event {event!r}"))
    if not events:
        raise PlanError(f"{origin}: the plan has no track events")
    return TrackingPlan(str(doc.get("name") or doc.get("display_name") or name), fmt, tuple(events), kinds)


def _items(value: list[Any], origin: str) -> list[Mapping[str, Any]]:
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise PlanError(f"{origin}: item {i} must be a mapping, got {type(item).__name__}")
    return value


def _kinds(value: Any, origin: str) -> frozenset[str]:
    if not isinstance(value, list | tuple) or not value or any(k not in ALL_KINDS for k in value):
        raise PlanError(f"{origin}: kinds: must be a non-empty list of {', '.join(ALL_KINDS)}; got {value!r}")
    return frozenset(value)


def _message_level(schema: Any) -> bool:
    """True when a RudderStack rule describes the whole message (properties under `properties`)."""
    inner = schema.get("properties", {}).get("properties") if isinstance(schema, Mapping) else None
    return isinstance(inner, Mapping) and (
        inner.get("type") in ("object", ["object"]) or "properties" in inner or inner == {}
    )


def _short_event(event: Any, body: Any, origin: str) -> tuple[Any, float, dict[str, Any], bool]:
    where = f"{origin}: event {event!r}"
    if body is None:
        body = {}
    if isinstance(body, int | float) and not isinstance(body, bool):
        body = {"weight": body}
    if not isinstance(body, Mapping):
        raise PlanError(f"{where}: must be a mapping with weight and properties, or a weight")
    unknown = set(body) - {"weight", "properties", "schema", "description"}
    if unknown:
        raise PlanError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: weight, properties, schema"
        )
    weight = body.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
        raise PlanError(f"{where}: weight: must be a number above 0, got {weight!r}")
    if "schema" in body and "properties" in body:
        raise PlanError(f"{where}: give either properties (short types) or schema (JSON Schema), not both")
    if "schema" in body:
        return event, float(weight), body["schema"], False
    props = body.get("properties") or {}
    if not isinstance(props, Mapping):
        raise PlanError(f"{where}: properties: must be a mapping of property -> type")
    schema: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    for prop, spec in props.items():
        optional = isinstance(spec, str) and spec.endswith("?")
        if optional:
            spec = spec[:-1]
        if isinstance(spec, str):
            if spec not in SHORTHAND_TYPES:
                raise PlanError(
                    f"{where}: property {prop!r}: unknown type {spec!r}; known: {', '.join(SHORTHAND_TYPES)}"
                    " (or a list of enum values, or a JSON Schema mapping)"
                )
            spec = SHORTHAND_TYPES[spec]
        elif isinstance(spec, list):
            spec = {"enum": spec}
        elif not isinstance(spec, Mapping):
            raise PlanError(f"{where}: property {prop!r}: must be a type name, a list or a mapping")
        schema["properties"][prop] = dict(spec)
        if not optional:
            schema["required"].append(prop)
    return event, float(weight), schema, False


def _compile_event(event: str, weight: float, schema: Any, message_level: bool, where: str) -> PlanEvent:
    if not isinstance(schema, Mapping):
        raise PlanError(f"{where}: the schema must be a mapping, got {type(schema).__name__}")
    if message_level:
        message_schema = dict(schema)
        props = (
            schema.get("properties", {}).get("properties", {})
            if isinstance(schema.get("properties"), Mapping)
            else {}
        )
        root: Mapping[str, Any] = schema
    else:
        props = schema
        root = schema
        message_schema = {"type": "object", "properties": {"event": {"const": event}, "properties": dict(schema)},
                          "required": ["event", "properties"]}  # fmt: skip
        for key in ("definitions", "$defs"):  # local $refs resolve against the message schema too
            if key in schema:
                message_schema[key] = schema[key]
        message_schema["properties"]["properties"] = {
            k: v for k, v in schema.items() if k not in ("definitions", "$defs")
        }
    if not isinstance(props, Mapping):
        raise PlanError(f"{where}: the properties schema must be a mapping")
    props = dict(props)
    kind = props.setdefault("type", "object")
    if kind not in ("object", ["object"]):
        raise PlanError(f"{where}: properties must be described as an object, got type {kind!r}")
    try:
        make = compile_schema(props, "properties", root=root)
    except SchemaError as exc:
        raise PlanError(f"{where}: {exc}") from None
    return PlanEvent(event, weight, props, message_schema, make)
