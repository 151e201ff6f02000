"""JSON Schema compiled into a value generator: `compile_schema(schema)(rng)` returns a value that
satisfies the schema.

A tracking plan's event schemas are compiled once; the traffic model calls the compiled function only
while it builds its pool of sessions at start-up, so the per-request path never walks a schema.
Covered: type (one or a list), enum, const, format (email, uuid, date-time, date, time, uri, hostname,
ipv4), pattern (via rstr), string lengths, numeric ranges and multipleOf, nested objects (properties,
required) and arrays (items, minItems, maxItems, uniqueItems of enums), allOf/anyOf/oneOf, local $ref.
Keywords a generator cannot honour (`not`, `if`, `patternProperties` ...) raise `SchemaError`.

Two annotations of ours, which validators ignore: `x-presence` (how often an optional property
appears, 0..1; default 0.7) and `x-weights` (relative weights of `enum` values), as written by
`harness profile fit`.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections.abc import Callable, Mapping
from typing import Any

import rstr

ValueMaker = Callable[[random.Random], Any]

OPTIONAL_PRESENCE = 0.7  # assumption: how often an optional property without x-presence is sent
NULL_SHARE = 0.1  # assumption: how often a nullable value is null
_ANNOTATIONS = frozenset({
    "$schema", "$id", "id", "$comment", "title", "description", "examples", "default", "readOnly",
    "writeOnly", "deprecated", "additionalProperties", "x-presence", "x-weights", "definitions", "$defs",
    "contentMediaType", "contentEncoding", "unevaluatedProperties",
})  # fmt: skip
_HANDLED = frozenset({
    "type", "enum", "const", "format", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "properties", "required", "items",
    "minItems", "maxItems", "uniqueItems", "allOf", "anyOf", "oneOf", "$ref", "minProperties",
    "maxProperties",
})  # fmt: skip
_WORDS = ("alpha", "bravo", "cedar", "delta", "ember", "fjord", "gamma", "harbor", "indigo", "juniper",
          "kestrel", "lumen", "meadow", "nectar", "orbit", "prism", "quartz", "river", "sierra", "tundra")  # fmt: skip
_FORMATS: dict[str, Callable[[random.Random], str]] = {
    "email": lambda r: f"{r.choice(_WORDS)}.{r.randrange(10**6)}@example.com",
    "uuid": lambda r: _uuid4(r),
    "date-time": lambda r: _iso(r, time=True),
    "date": lambda r: _iso(r, time=False),
    "time": lambda r: f"{r.randrange(24):02d}:{r.randrange(60):02d}:{r.randrange(60):02d}Z",
    "uri": lambda r: f"https://www.example.com/{r.choice(_WORDS)}/{r.randrange(10**6)}",
    "uri-reference": lambda r: f"/{r.choice(_WORDS)}/{r.randrange(10**6)}",
    "hostname": lambda r: f"{r.choice(_WORDS)}{r.randrange(1000)}.example.com",
    "ipv4": lambda r: f"192.0.2.{r.randrange(1, 255)}",  # TEST-NET-1: documentation addresses only
}


class SchemaError(ValueError):
    """A schema the generator cannot satisfy; the message names the keyword's path."""


def _uuid4(r: random.Random) -> str:
    h = f"{r.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def _iso(r: random.Random, *, time: bool) -> str:
    day = f"2026-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}"
    if not time:
        return day
    return f"{day}T{r.randrange(24):02d}:{r.randrange(60):02d}:{r.randrange(60):02d}.{r.randrange(1000):03d}Z"


def compile_schema(schema: Any, where: str = "#", root: Mapping[str, Any] | None = None) -> ValueMaker:
    """A function of a `random.Random` returning a value valid against `schema` (raises SchemaError)."""
    return _Compiler(root if root is not None else schema).compile(schema, where)


class _Compiler:
    def __init__(self, root: Any) -> None:
        self.root = root

    def compile(self, schema: Any, where: str) -> ValueMaker:
        if schema is True or schema == {}:
            return lambda r: r.choice(_WORDS)
        if not isinstance(schema, Mapping):
            raise SchemaError(f"{where}: a schema must be an object, got {schema!r}")
        unknown = set(schema) - _ANNOTATIONS - _HANDLED
        if unknown:
            raise SchemaError(f"{where}: cannot generate values for keyword(s) {', '.join(sorted(unknown))}")
        if "$ref" in schema:
            return self.compile(self.resolve(schema["$ref"], where), f"{where}/$ref")
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for i, part in enumerate(schema["allOf"]):
                if isinstance(part, Mapping) and "$ref" in part:
                    part = self.resolve(part["$ref"], f"{where}/allOf/{i}")
                merged = _merge(merged, part, f"{where}/allOf/{i}")
            return self.compile(merged, where)
        for key in ("anyOf", "oneOf"):  # the first branch: oneOf branches rarely overlap in plans
            if key in schema:
                rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
                branch = schema[key][0] if schema[key] else {}
                return self.compile(_merge(rest, branch, f"{where}/{key}/0"), where)
        if "const" in schema:
            value = schema["const"]
            return lambda r: value
        if "enum" in schema:
            return _enum(schema, where)
        types = schema.get("type")
        if types is None:
            types = _implied_type(schema)
        types = [types] if isinstance(types, str) else list(types)
        if not types:
            raise SchemaError(f"{where}/type: empty type list")
        concrete = [t for t in types if t != "null"]
        if not concrete:
            return lambda r: None
        makers = [self.typed(t, schema, where) for t in concrete]
        maker = makers[0] if len(makers) == 1 else (lambda r: r.choice(makers)(r))
        if "null" in types:
            return lambda r: None if r.random() < NULL_SHARE else maker(r)
        return maker

    def resolve(self, ref: str, where: str) -> Any:
        if not ref.startswith("#"):
            raise SchemaError(f"{where}/$ref: only local references (#/...) are supported, got {ref!r}")
        node: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise SchemaError(f"{where}/$ref: {ref!r} does not resolve")
            node = node[part]
        return node

    def typed(self, kind: str, schema: Mapping[str, Any], where: str) -> ValueMaker:
        if kind == "string":
            return _string(schema, where)
        if kind in ("integer", "number"):
            return _number(schema, where, integer=kind == "integer")
        if kind == "boolean":
            return lambda r: r.random() < 0.5
        if kind == "object":
            return self.object(schema, where)
        if kind == "array":
            return self.array(schema, where)
        raise SchemaError(f"{where}/type: unknown type {kind!r}")

    def object(self, schema: Mapping[str, Any], where: str) -> ValueMaker:
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fields: list[tuple[str, float, ValueMaker]] = []
        for name, sub in props.items():
            presence = 1.0 if name in required else float(_get(sub, "x-presence", OPTIONAL_PRESENCE))
            fields.append((name, presence, self.compile(sub, f"{where}/properties/{name}")))
        for name in sorted(required - set(props)):  # required but not described: any value
            fields.append((name, 1.0, lambda r: r.choice(_WORDS)))
        least = int(schema.get("minProperties", 0))

        def make(r: random.Random) -> dict[str, Any]:
            out = {
                name: maker(r) for name, presence, maker in fields if presence >= 1 or r.random() < presence
            }
            for name, _, maker in fields:  # minProperties: add optional ones in order
                if len(out) >= least:
                    break
                out.setdefault(name, maker(r))
            return out

        return make

    def array(self, schema: Mapping[str, Any], where: str) -> ValueMaker:
        items = schema.get("items", {})
        if isinstance(items, list):
            raise SchemaError(f"{where}/items: tuple-style items are not supported")
        item = self.compile(items, f"{where}/items")
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, 3)))
        if high < low:
            raise SchemaError(f"{where}: maxItems {high} is below minItems {low}")
        unique = bool(schema.get("uniqueItems"))

        def make(r: random.Random) -> list[Any]:
            count = r.randint(low, high)
            if not unique:
                return [item(r) for _ in range(count)]
            out: list[Any] = []
            for _ in range(count * 8):
                if len(out) >= count:
                    break
                value = item(r)
                if value not in out:
                    out.append(value)
            return out

        return make


def _get(schema: Any, key: str, default: Any) -> Any:
    return schema.get(key, default) if isinstance(schema, Mapping) else default


def _implied_type(schema: Mapping[str, Any]) -> str:
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def _merge(a: Mapping[str, Any], b: Any, where: str) -> dict[str, Any]:
    if not isinstance(b, Mapping):
        raise SchemaError(f"{where}: a schema must be an object, got {b!r}")
    out = dict(a)
    for key, value in b.items():
        if key == "properties":
            out["properties"] = {**out.get("properties", {}), **value}
        elif key == "required":
            out["required"] = sorted(set(out.get("required", ())) | set(value))
        else:
            out[key] = value
    return out


def _enum(schema: Mapping[str, Any], where: str) -> ValueMaker:
    values = list(schema["enum"])
    if not values:
        raise SchemaError(f"{where}/enum: empty")
    weights = schema.get("x-weights")
    if weights is not None:
        if len(weights) != len(values) or any(not isinstance(w, int | float) or w < 0 for w in weights):
            raise SchemaError(f"{where}/x-weights: needs one non-negative weight per enum value")
        return lambda r: r.choices(values, weights)[0]
    return lambda r: r.choice(values)


def _string(schema: Mapping[str, Any], where: str) -> ValueMaker:
    low = int(schema.get("minLength", 0))
    high = int(schema.get("maxLength", max(low, 16)))
    if high < low:
        raise SchemaError(f"{where}: maxLength {high} is below minLength {low}")
    if "pattern" in schema:
        pattern = schema["pattern"]
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise SchemaError(f"{where}/pattern: not a regular expression: {exc}") from None

        pattern_high = int(schema.get("maxLength", 1 << 30))

        def from_pattern(r: random.Random) -> str:
            xeger = rstr.Rstr(r).xeger
            for _ in range(50):
                value = xeger(pattern)
                if compiled.search(value) and low <= len(value) <= pattern_high:
                    return value
            raise SchemaError(
                f"{where}/pattern: no value of length {low}..{pattern_high} found for {pattern!r}"
            )

        return from_pattern
    fmt = schema.get("format")
    if fmt in _FORMATS:
        return _FORMATS[fmt]
    if fmt is not None and fmt not in ("regex", "json-pointer"):
        raise SchemaError(f"{where}/format: cannot generate format {fmt!r}; known: {', '.join(_FORMATS)}")
    lower = string.ascii_lowercase

    def words(r: random.Random) -> str:
        size = r.randint(low, high) if high > low else low
        text = ""
        while len(text) < size:
            text += (" " if text else "") + r.choice(_WORDS)
        text = text[:size]
        if text.endswith(" "):  # a trailing space reads like a bug; keep the length
            text = text[:-1] + r.choice(lower)
        return text

    return words


def _number(schema: Mapping[str, Any], where: str, *, integer: bool) -> ValueMaker:
    low = schema.get("minimum", -math.inf)
    high = schema.get("maximum", math.inf)
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(ex_low, bool):  # draft-04: a flag on minimum
        ex_low = low if ex_low else None
    if isinstance(ex_high, bool):
        ex_high = high if ex_high else None
    step = schema.get("multipleOf")
    if integer:
        lo = math.ceil(low) if low != -math.inf else -math.inf
        hi = math.floor(high) if high != math.inf else math.inf
        if ex_low is not None:
            lo = max(lo, math.floor(ex_low) + 1)
        if ex_high is not None:
            hi = min(hi, math.ceil(ex_high) - 1)
        lo = (0 if hi == math.inf else min(0, hi)) if lo == -math.inf else lo
        hi = lo + 1000 if hi == math.inf else hi
        if hi < lo:
            raise SchemaError(f"{where}: no integer between the minimum and maximum")
        if step:
            first, last = math.ceil(lo / step), math.floor(hi / step)
            if last < first:
                raise SchemaError(f"{where}: no multiple of {step} in range")
            return lambda r: int(r.randint(first, last) * step)
        return lambda r: r.randint(lo, hi)
    lo = low if ex_low is None else max(low, ex_low)
    hi = high if ex_high is None else min(high, ex_high)
    lo = (0.0 if hi == math.inf else min(0.0, hi)) if lo == -math.inf else float(lo)
    hi = lo + 1000.0 if hi == math.inf else float(hi)
    if hi < lo:
        raise SchemaError(f"{where}: maximum is below minimum")
    if step:
        first, last = math.ceil(lo / step), math.floor(hi / step)
        if last < first:
            raise SchemaError(f"{where}: no multiple of {step} in range")
        return lambda r: round(r.randint(first, last) * step, 10)

    def make(r: random.Random) -> float:
        for _ in range(20):
            value = round(r.uniform(lo, hi), 2)
            if lo <= value <= hi and value != ex_low and value != ex_high:
                return value
        return (lo + hi) / 2

    return make
