"""Checked rules about the code itself: Qt stays in the window modules, rooms point down, ruff is clean."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

QT_PACKAGES = {"PyQt5", "PyQt6", "pyqtgraph"}
WINDOW_MODULES = ("qt", "window", "gui")  # live/qt_window.py or a live/qt/ package


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_qt_is_imported_only_by_window_modules() -> None:
    offenders = []
    for path in sorted((REPO / "live").rglob("*.py")):
        rel = path.relative_to(REPO / "live")
        if any(part.startswith(WINDOW_MODULES) for part in rel.parts):
            continue
        if _imported_roots(path) & QT_PACKAGES:
            offenders.append(str(rel))
    assert not offenders, f"Qt imported outside the window modules: {offenders}"


def test_import_linter_contracts_hold() -> None:
    pytest.importorskip("importlinter")
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and "0 broken" in result.stdout


def test_ruff_is_clean() -> None:
    pytest.importorskip("ruff")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "live", "tests", "benchmarks", "tools"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
