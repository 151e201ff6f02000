"""A JSON Schema inferred from sample values, carrying shapes and statistics, never the values.

`Shape.add(value)` folds one value in; `Shape.schema(privacy)` writes the schema. Strings become a
format (email, uuid, date-time, ...), a pattern of character classes and run lengths (`^[A-Z]{3}-[0-9]{5}$`,
no literal letters or digits), or a length range; a string value is kept only as an `enum` member
when the property has few distinct values (`Privacy.enum_max_values`), each seen at least
`Privacy.enum_min_count` times, and none looks like an email, id, URL, phone number or long digit run.
Objects with many distinct keys (maps keyed by ids) keep no key names; number ranges are widened to
two significant digits.
"""

from __future__ import annotations

import ipaddress
import math
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Privacy:
    """What a fitted schema may keep of the sample: the user-settable thresholds."""

    enum_max_values: int = 20  # a property with more distinct strings than this keeps none of them
    enum_min_count: int = 5  # a value seen fewer times is never kept
    enum_min_coverage: float = 0.9  # kept values must cover this share of the property's strings
    map_max_keys: int = 64  # an object with more distinct keys is a map: its key names are dropped


_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")),
    ("uuid", re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    ("date-time", re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")),
    ("date", re.compile(r"^\d{4}-\d{2}-\d{2}$")),
    ("uri", re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^\s]+$")),
)
_PERSONAL = re.compile(
    r"@|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-|://|\d{6,}|^\+?[\d\s().-]{7,}$"
)  # email, uuid, URL, long digit run, phone number
_MAX_SHAPES = 64
_MAX_VALUES = 256
_MAX_RUNS = 16
_FORMAT_SHARE = 0.95
_SHAPE_SAMPLE = 500  # strings per property whose format and shape are examined; lengths and values use all


def looks_personal(text: str) -> bool:
    """True for strings that may identify someone: emails, uuids, URLs, phone numbers, long digit runs."""
    return bool(_PERSONAL.search(text))


def round_out(low: float, high: float) -> tuple[float, float]:
    """A range widened to two significant digits (123,456,789 -> 120,000,000), so its bounds are not
    the sample's own values (a customer number, an exact order total)."""

    def step(x: float) -> float:
        return 10.0 ** max(0, math.floor(math.log10(abs(x))) - 1) if x else 1.0

    return math.floor(low / step(low)) * step(low), math.ceil(high / step(high)) * step(high)


def _char_class(ch: str) -> str:
    if ch.isdigit() and ch.isascii():
        return "9"
    if ch.isalpha():
        return "A" if ch.isupper() else "a"
    if ch.isspace():
        return " "
    return ch if ch.isascii() and ch.isprintable() else "?"


_REGEX_SPECIAL = frozenset("\\^$.|?*+()[]{}/")
_CLASS_REGEX = {"9": "[0-9]", "A": "[A-Z]", "a": "[a-z]", " ": " ", "?": "."}


_ASCII_CLASSES = str.maketrans(
    {**{c: "9" for c in string.digits}, **{c: "A" for c in string.ascii_uppercase},
     **{c: "a" for c in string.ascii_lowercase}, **{c: " " for c in string.whitespace}}
)  # fmt: skip
_RUN = re.compile(r"(.)\1*", re.DOTALL)


def _runs(text: str) -> tuple[tuple[str, int], ...]:
    """`text` as runs of character classes: 'ORD-0042' -> (('A', 3), ('-', 1), ('9', 4))."""
    classes = text.translate(_ASCII_CLASSES)
    if not classes.isascii() or not classes.isprintable():
        classes = "".join(_char_class(ch) for ch in text)
    return tuple((m.group(1), m.end() - m.start()) for m in _RUN.finditer(classes))


@dataclass(slots=True)
class _Strings:
    count: int = 0
    min_len: int = 1 << 30
    max_len: int = 0
    values: Counter[str] | None = field(default_factory=Counter)  # None once too many distinct
    formats: Counter[str] = field(default_factory=Counter)
    shapes: dict[tuple[str, ...], list[list[int]]] | None = field(default_factory=dict)
    shape_counts: Counter[tuple[str, ...]] = field(default_factory=Counter)

    def add(self, text: str) -> None:
        self.count += 1
        size = len(text)
        self.min_len = min(self.min_len, size)
        self.max_len = max(self.max_len, size)
        if self.values is not None:
            self.values[text] += 1
            if len(self.values) > _MAX_VALUES:
                self.values = None
        if self.count > _SHAPE_SAMPLE:
            return
        for name, pattern in _FORMATS:
            if pattern.match(text):
                self.formats[name] += 1
                break
        else:
            if name := _ipv4(text):
                self.formats[name] += 1
        if self.shapes is None:
            return
        runs = _runs(text)
        key = tuple(c for c, _ in runs)
        if len(key) > _MAX_RUNS:
            return
        spans = self.shapes.get(key)
        if spans is None:
            if len(self.shapes) >= _MAX_SHAPES:
                self.shapes = None
                return
            spans = self.shapes[key] = [[n, n] for _, n in runs]
        else:
            for span, (_, n) in zip(spans, runs, strict=True):
                if n < span[0]:
                    span[0] = n
                elif n > span[1]:
                    span[1] = n
        self.shape_counts[key] += 1

    def schema(self, privacy: Privacy, dropped: Counter[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.values is not None and len(self.values) <= privacy.enum_max_values:
            kept = [
                (v, n)
                for v, n in self.values.most_common()
                if n >= privacy.enum_min_count and not looks_personal(v)
            ]
            if kept and sum(n for _, n in kept) >= privacy.enum_min_coverage * self.count:
                dropped["rare or personal-looking enum values left out"] += len(self.values) - len(kept)
                return {"type": "string", "enum": [v for v, _ in kept], "x-weights": [n for _, n in kept]}
        dropped["string properties kept as a format, pattern or length only"] += 1
        if self.formats:
            name, n = self.formats.most_common(1)[0]
            if n >= _FORMAT_SHARE * min(self.count, _SHAPE_SAMPLE):
                out["format"] = name
                return out
        if self.shapes:
            key, n = self.shape_counts.most_common(1)[0]
            if n >= _FORMAT_SHARE * min(self.count, _SHAPE_SAMPLE) and key:
                parts = []
                for c, (low, high) in zip(key, self.shapes[key], strict=True):
                    atom = _CLASS_REGEX.get(c) or ("\\" + c if c in _REGEX_SPECIAL else c)
                    if low == high:
                        parts.append(atom if low == 1 else f"{atom}{{{low}}}")
                    else:
                        parts.append(f"{atom}{{{low},{high}}}")
                out["pattern"] = "^" + "".join(parts) + "$"
                return out
        out["minLength"] = self.min_len
        out["maxLength"] = max(self.max_len, self.min_len)
        return out


def _ipv4(text: str) -> str | None:
    if text.count(".") != 3:
        return None
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return None
    return "ipv4"


@dataclass(slots=True)
class Shape:
    """Everything seen at one place of a document: counts by JSON type and each type's statistics."""

    seen: int = 0
    nulls: int = 0
    booleans: int = 0
    integers: int = 0
    numbers: int = 0
    low: float = float("inf")
    high: float = float("-inf")
    strings: _Strings | None = None
    objects: int = 0
    keys: dict[str, Shape] | None = field(default_factory=dict)  # None: a map, key names dropped
    key_counts: Counter[str] = field(default_factory=Counter)
    map_values: Shape | None = None
    arrays: int = 0
    items: Shape | None = None
    min_items: int = 1 << 30
    max_items: int = 0

    def add(self, value: Any, privacy: Privacy) -> None:
        self.seen += 1
        if value is None:
            self.nulls += 1
        elif value is True or value is False:
            self.booleans += 1
        elif isinstance(value, int | float):
            if isinstance(value, int) or value.is_integer():
                self.integers += 1
            else:
                self.numbers += 1
            self.low = min(self.low, value)
            self.high = max(self.high, value)
        elif isinstance(value, str):
            if self.strings is None:
                self.strings = _Strings()
            self.strings.add(value)
        elif isinstance(value, dict):
            self.add_object(value, privacy)
        elif isinstance(value, list):
            self.arrays += 1
            self.min_items = min(self.min_items, len(value))
            self.max_items = max(self.max_items, len(value))
            if self.items is None:
                self.items = Shape()
            for item in value:
                self.items.add(item, privacy)

    def add_object(self, value: dict[str, Any], privacy: Privacy) -> None:
        self.objects += 1
        if self.keys is not None:
            for key in value:
                if key not in self.keys:
                    if len(self.keys) >= privacy.map_max_keys:
                        self.keys = None  # too many distinct keys: a map; fold its values together
                        break
                    self.keys[key] = Shape()
        if self.keys is None:
            if self.map_values is None:
                self.map_values = Shape()
            for item in value.values():
                self.map_values.add(item, privacy)
            return
        for key, item in value.items():
            self.key_counts[key] += 1
            self.keys[key].add(item, privacy)

    def schema(self, privacy: Privacy, dropped: Counter[str]) -> dict[str, Any]:
        """The inferred JSON Schema; `dropped` counts what was left out for privacy, by reason."""
        branches: list[dict[str, Any]] = []
        if self.objects:
            branches.append(self._object_schema(privacy, dropped))
        if self.arrays:
            branches.append({"type": "array", "items": self.items.schema(privacy, dropped) if self.items and self.items.seen else {},
                             "minItems": self.min_items, "maxItems": self.max_items})  # fmt: skip
        if self.strings is not None:
            branches.append(self.strings.schema(privacy, dropped))
        if self.integers and not self.numbers:
            low, high = round_out(self.low, self.high)
            branches.append({"type": "integer", "minimum": int(low), "maximum": int(high)})
        elif self.numbers:
            low, high = round_out(self.low, self.high)
            branches.append({"type": "number", "minimum": low, "maximum": high})
        if self.booleans:
            branches.append({"type": "boolean"})
        if not branches:
            return {"type": "null"} if self.nulls else {}
        if len(branches) == 1:
            out = branches[0]
            if self.nulls:
                out["type"] = [out["type"], "null"]
            return out
        if self.nulls:
            branches.append({"type": "null"})
        return {"anyOf": branches}

    def _object_schema(self, privacy: Privacy, dropped: Counter[str]) -> dict[str, Any]:
        if self.keys is None:
            dropped["map key names (objects keyed by ids)"] += 1
            values = (
                self.map_values.schema(privacy, dropped) if self.map_values and self.map_values.seen else {}
            )
            return {"type": "object", "additionalProperties": values}
        props: dict[str, Any] = {}
        required: list[str] = []
        for key, shape in self.keys.items():
            if looks_personal(key):
                dropped["property names that look personal"] += 1
                continue
            sub = shape.schema(privacy, dropped)
            present = self.key_counts[key] / self.objects
            if present >= 1.0:
                required.append(key)
            else:
                sub["x-presence"] = round(present, 4)
            props[key] = sub
        out: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        return out
