"""The gallery ``live analyze`` writes, opened in a real headless chromium from ``file://``.

The reducer is fed real maps and frames here (no Dask: the gallery only
needs a finished state); chromium's ``--dump-dom`` gives the document after
its inline script ran, so sorting by the address (``#sort=-mean``) exercises
the page's own JavaScript.
"""

from __future__ import annotations

import html.parser
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import cv2
import numpy as np
import pytest

from live.gallery import write_analysis
from live.units import FrameInfo, UnitOptions, UnitReducer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed (CI installs it)"
)
LAYERS = {"conv/1": 6, "head": 3}  # a name with a slash: the thumbnails' folders must not care


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished analysis folder: two sources, 12 frames each; unit 5 of ``conv/1`` never fires (dead)."""
    out = tmp_path_factory.mktemp("gallery")
    reducer = UnitReducer(LAYERS, UnitOptions(k=4, gap_s=0.2, thumb=32))
    rng = np.random.default_rng(3)
    for source in ("clips/a b.avi", "clips/<c>.avi"):  # a space and markup in names: escaped, quoted
        for frame in range(12):
            image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            conv = rng.standard_normal((6, 8, 8)).astype(np.float32) * np.arange(1, 7, dtype=np.float32)[:, None, None]
            conv[5] = -np.abs(conv[5])  # never above 0
            head = rng.standard_normal((3, 2, 2)).astype(np.float32)
            reducer.update(FrameInfo(source, frame, frame / 25.0), {"conv/1": conv, "head": head}, image)
    report = {
        "model": "nets/test.onnx",
        "inputs": ["clips"],
        "skipped": [{"source": "clips/broken.avi", "reason": "is not a video OpenCV can read"}],
        "frames": 24,
        "options": {**reducer.options.to_dict(), "every": 1, "chunk": 1500},
    }
    write_analysis(out, reducer, report)
    return out


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run Debian's chromium headless, without the network, sync or a sandbox (tests may run as root)."""
    assert CHROMIUM is not None, "chromium is missing: CI installs it (.ci/run)"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


class _Dom(html.parser.HTMLParser):
    """The elements of a dumped document that the tests look at, in document order, with their text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = {"tag": tag, **{k: v or "" for k, v in attrs}, "text": ""}
        self.elements.append(element)
        if tag not in ("img", "meta", "br", "input", "link"):
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element["text"] += data

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.elements if e["tag"] == tag and (cls is None or cls in e.get("class", "").split())]


def dump(tmp_path: Path, page: Path, fragment: str = "") -> _Dom:
    result = chromium(tmp_path, "--dump-dom", page.resolve().as_uri() + fragment)
    assert result.returncode == 0, result.stderr
    assert "<table" in result.stdout, result.stdout[:500]
    dom = _Dom()
    dom.feed(result.stdout)
    return dom


def test_gallery_draws_every_unit_with_its_thumbnails_and_scores(analysis: Path, tmp_path: Path) -> None:
    manifest = json.loads((analysis / "manifest.json").read_text())
    dom = dump(tmp_path, analysis / "index.html")
    cards = dom.find("div", "unit")
    assert len(cards) == sum(LAYERS.values())
    assert [c["data-unit"] for c in cards] == [str(u) for n in LAYERS.values() for u in range(n)]
    dead = [c["id"] for c in cards if "dead" in c["class"].split()]
    assert dead == ["L0-u5"]
    figures = dom.find("figure", "top")
    images = dom.find("img")
    records = [r for layer in manifest["layers"].values() for unit in layer["top"] for r in unit]
    assert len(figures) == len(images) == len(records) == sum(LAYERS.values()) * 4
    for figure, image, record in zip(figures, images, records, strict=True):
        source = analysis / unquote(image["src"])
        assert source.is_file(), image["src"]
        assert cv2.imread(str(source)) is not None
        assert unquote(image["src"]) == record["thumb"]
        assert float(figure["data-score"]) == record["score"]
        assert int(figure["data-frame"]) == record["frame"]
        assert figure["data-source"] == record["source"]
        assert f"{record['score']:.4g}" in figure["text"]
        assert f"(frame {record['frame']})" in figure["text"]
        assert f"{record['time_s']:.2f} s" in figure["text"]
    assert "&lt;c&gt;.avi" not in " ".join(f["text"] for f in figures)  # escaped once, shown as written
    assert any("<c>.avi" in f["text"] for f in figures)
    assert "1 skipped" in " ".join(e["text"] for e in dom.find("summary"))


@pytest.mark.parametrize(
    ("fragment", "key", "descending"), [("#sort=-mean", "mean", True), ("#sort=max", "max", False)]
)
def test_statistics_table_sorts_by_the_address(
    analysis: Path, tmp_path: Path, fragment: str, key: str, descending: bool
) -> None:
    stats = json.loads((analysis / "stats.json").read_text())
    dom = dump(tmp_path, analysis / "index.html", fragment)
    tables = dom.find("table", "stats")
    assert [t["data-layer"] for t in tables] == list(LAYERS)
    assert all(t.get("data-sort") == ("-" if descending else "") + key for t in tables)
    moved = False
    for name in LAYERS:
        units = stats["layers"][name]["units"]
        want = [u["unit"] for u in sorted(units, key=lambda u: (-u[key] if descending else u[key], u["unit"]))]
        assert _rows_of(dom, name) == want, (name, key)
        index = list(LAYERS).index(name)
        cards = [c["data-unit"] for c in dom.find("div", "unit") if c["id"].startswith(f"L{index}-")]
        assert cards == [str(u) for u in want], "the unit cards follow the table"
        moved |= want != sorted(want)
    assert moved, "the test's statistics were already in that order: the sort is not exercised"


def _rows_of(dom: _Dom, layer: str) -> list[int]:
    """The unit numbers of one layer's statistics rows, in the order they are drawn."""
    units: list[int] = []
    inside = False
    for element in dom.elements:
        if element["tag"] == "table":
            inside = element.get("data-layer") == layer
        elif inside and element["tag"] == "tr" and element.get("data-unit"):
            units.append(int(element["data-unit"]))
    return units


def test_unsorted_table_is_in_unit_order_and_a_screenshot_draws(analysis: Path, tmp_path: Path) -> None:
    dom = dump(tmp_path, analysis / "index.html")
    assert _rows_of(dom, "conv/1") == list(range(6))
    assert all("data-sort" not in t for t in dom.find("table", "stats"))
    png = tmp_path / "gallery.png"
    result = chromium(tmp_path, f"--screenshot={png}", "--window-size=1000,700", (analysis / "index.html").as_uri())
    assert result.returncode == 0, result.stderr
    picture = cv2.imread(str(png))
    assert picture is not None and picture.shape[:2] == (700, 1000)
    assert picture.std() > 10  # drawn: text, tables and thumbnails, not a blank page
