"""The import graph of docs/architecture.md, enforced: every import of every module, top-level or local."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("scenarios", "harness", "loadgen", "monitor", "gate", "sandbox", "config_reader")

ALLOWED: dict[str, set[str]] = {
    "scenarios": {"harness", "loadgen"},
    "harness": {"loadgen", "monitor", "gate", "config_reader"},
    "monitor": {"loadgen.ids", "loadgen.ledger", "gate.summary_format", "config_reader"},
    "loadgen": {"config_reader"},
    "gate": {"config_reader"},
    "sandbox": set(),
    "config_reader": set(),
}
"""Part -> what of the other parts it may import (a part, or one module of it)."""


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) for every absolute import in one file, including `from x import y` as x.y."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _allowed(part: str, module: str) -> bool:
    target = module.split(".")[0]
    if target not in PARTS or target == part:
        return True
    return any(module == rule or module.startswith(rule + ".") for rule in ALLOWED[part]) or (
        # `from loadgen import ids` names loadgen itself first: allowed when one of its names is allowed.
        module == target and any(rule.startswith(target + ".") for rule in ALLOWED[part])
    )


def _violations(part: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line}: {part} imports {module}"
        for path in sorted((ROOT / part).rglob("*.py"))
        for line, module in _imports(path)
        if not _allowed(part, module)
    ]


@pytest.mark.parametrize("part", PARTS)
def test_imports_follow_the_graph(part: str) -> None:
    assert (ROOT / part).is_dir()
    assert _violations(part) == []


def test_the_checker_catches_an_edge_against_the_graph(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom monitor.audit import Audit\ndef f():\n    from harness import hooks\n")
    found = [m for _line, m in _imports(module)]
    assert not _allowed("monitor", "harness.hooks") and "harness.hooks" in found
    assert not _allowed("loadgen", "monitor.audit") and "monitor.audit" in found
    assert not _allowed("monitor", "loadgen.traffic") and _allowed("monitor", "loadgen.ids")
    assert _allowed("harness", "gate.thresholds") and not _allowed("gate", "loadgen.ids")


def test_the_old_plugin_package_is_gone() -> None:
    assert not (ROOT / "loadgen" / "plugin").exists()
