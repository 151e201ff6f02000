"""The one YAML reader: errors name the file, the line, the key path and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from config_reader import TOP, ConfigError, Reader

DOC = """\
name: demo
rate:
  messages_per_second: 100
sources:
  - url: http://a
  - url: ftp://b
"""


def test_errors_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(DOC)
    doc, r = Reader.load(path)
    with pytest.raises(ConfigError, match=rf"^{path}:3: rate.messages_per_second: 100 is above the maximum 10$"):
        r.number(doc["rate"]["messages_per_second"], "rate.messages_per_second", maximum=10)
    with pytest.raises(ConfigError, match=rf"^{path}:6: sources\[1\]: must be one of"):
        r.text(doc["sources"][1]["url"], "sources[1]", ("http://a",))


def test_unknown_keys_list_the_allowed_ones() -> None:
    doc, r = Reader.parse(DOC, "inline.yaml")
    with pytest.raises(ConfigError, match=r"^inline.yaml:4: sources: unknown key; allowed: name, rate$"):
        r.mapping(doc, TOP, ("name", "rate"))
    with pytest.raises(ConfigError, match=r"^inline.yaml:2: rate.burst: missing"):
        raise r.fail("rate.burst", "missing")  # a missing key points at its parent's line


def test_bad_yaml_names_the_line_and_each_part_keeps_its_error_type() -> None:
    class PartError(ConfigError):
        pass

    with pytest.raises(PartError, match=r"^x.yaml:3: not valid YAML"):
        Reader.parse("a: 1\nb: [2,\nc: {", "x.yaml", PartError)
    with pytest.raises(PartError, match=r"absent.yaml: cannot read"):
        Reader.load(Path("/nonexistent/absent.yaml"), PartError)


def test_shares_and_spans() -> None:
    r = Reader("s.yaml")
    assert r.shares({"a": 0.25, "b": 0.75}, "mix", ("a", "b"), "thing") == {"a": 0.25, "b": 0.75}
    with pytest.raises(ConfigError, match=r"mix: shares sum to 0.5, not 1"):
        r.shares({"a": 0.5}, "mix", ("a",), "thing")
    with pytest.raises(ConfigError, match=r"mix.c: unknown thing; known: a"):
        r.shares({"c": 1.0}, "mix", ("a",), "thing")
    assert r.span([1, 2], "s") == (1.0, 2.0)
    with pytest.raises(ConfigError, match=r"s: max 1 is below min 2"):
        r.span([2, 1], "s")
    with pytest.raises(ConfigError, match=r"f: must be true or false"):
        r.flag("yes", "f")
