"""One reader for the harness's YAML files (profiles, monitor config, SLO thresholds).

Every error names the file, the line, the key path (`sources.mobile.share`) and what is wrong; an
unknown key lists the allowed ones. Each part raises its own subclass of `ConfigError`. This package
imports nothing of ours, so `loadgen`, `monitor` and `gate` can all use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

TOP = "(top level)"
SHARE_TOLERANCE = 1e-6


class ConfigError(ValueError):
    """A file that cannot be used: `file:line: key: problem`."""


def _key_lines(node: yaml.Node, prefix: str, out: dict[str, int]) -> None:
    """Record the 1-based line of every key path below `node` (`a.b`, `a.list[2].c`)."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            out[path] = key_node.start_mark.line + 1
            _key_lines(value_node, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = f"{prefix}[{index}]"
            out[path] = item.start_mark.line + 1
            _key_lines(item, path, out)


class Reader:
    """Typed, checked access to the values of one YAML document, naming `file:line: key` in errors."""

    def __init__(
        self,
        source: str | Path,
        lines: Mapping[str, int] | None = None,
        error: type[ConfigError] = ConfigError,
    ) -> None:
        self.source = str(source)
        self.lines = dict(lines or {})
        self.error = error

    @classmethod
    def load(cls, path: str | Path, error: type[ConfigError] = ConfigError) -> tuple[Any, Reader]:
        """Read and parse a YAML file: (its document, a reader that knows its lines)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
        return cls.parse(text, path, error)

    @classmethod
    def parse(
        cls, text: str, source: str | Path, error: type[ConfigError] = ConfigError
    ) -> tuple[Any, Reader]:
        """Parse YAML text named `source`: (its document, a reader that knows its lines)."""
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark is not None else str(source)
            problem = getattr(exc, "problem", None) or str(exc)
            raise error(f"{where}: not valid YAML: {problem}") from None
        lines: dict[str, int] = {}
        if node is not None:
            lines[TOP] = node.start_mark.line + 1
            _key_lines(node, "", lines)
        return document, cls(source, lines, error)

    # Errors ----------------------------------------------------------------------------------

    def where(self, key: str) -> str:
        line = self.lines.get(key)
        if line is None and "." in key:  # a missing key: point at its parent
            line = self.lines.get(key.rsplit(".", 1)[0])
        return f"{self.source}:{line}" if line else self.source

    def fail(self, key: str, problem: str) -> ConfigError:
        return self.error(f"{self.where(key)}: {key}: {problem}")

    # Values ----------------------------------------------------------------------------------

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
        """A mapping (None reads as empty); with `allowed`, any other key is an error listing them."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a mapping, got {type(value).__name__}")
        for name in value:
            if allowed is not None and name not in allowed:
                where = str(name) if key == TOP else f"{key}.{name}"
                raise self.fail(where, f"unknown key; allowed: {', '.join(allowed)}")
        return dict(value)

    def number(self, value: Any, key: str, *, minimum: float = 0.0, maximum: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise self.fail(key, f"must be a number, got {value!r}")
        if value < minimum:
            what = "negative" if minimum == 0 else f"below {minimum:g}"
            raise self.fail(key, f"{value!r} is {what}; it must be at least {minimum:g}")
        if value > maximum:
            raise self.fail(key, f"{value!r} is above the maximum {maximum:g}")
        return float(value)

    def integer(self, value: Any, key: str, *, minimum: int = 0, maximum: int = 2**31) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {value!r}")
        return int(self.number(value, key, minimum=minimum, maximum=maximum))

    def text(self, value: Any, key: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def flag(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def span(self, value: Any, key: str) -> tuple[float, float]:
        """A `[min, max]` pair of numbers, min ≤ max."""
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise self.fail(key, f"must be a [min, max] pair, got {value!r}")
        low = self.number(value[0], f"{key}[0]")
        high = self.number(value[1], f"{key}[1]")
        if high < low:
            raise self.fail(key, f"max {high:g} is below min {low:g}")
        return low, high

    def shares(self, value: Any, key: str, allowed: tuple[str, ...], what: str) -> dict[str, float]:
        """A non-empty mapping of known names to shares in 0..1 that sum to 1."""
        if not isinstance(value, Mapping) or not value:
            raise self.fail(key, "must be a non-empty mapping of name -> share")
        out: dict[str, float] = {}
        for name, share in value.items():
            if name not in allowed:
                raise self.fail(f"{key}.{name}", f"unknown {what}; known: {', '.join(allowed)}")
            out[name] = self.number(share, f"{key}.{name}", maximum=1.0)
        total = sum(out.values())
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise self.fail(key, f"shares sum to {total:.6g}, not 1")
        return out
