"""An analysis read back for the window: ``DIR/manifest.json`` checked, its thumbnails loaded on demand.

``live analyze ... --out DIR`` writes ``DIR/manifest.json``::

    {"model": ..., "layers": {name: {"units": C, "k": k, "top": [[record, ...] per unit]}}, ...}

each record ``{"source", "frame", "time_s", "score", "y", "x", "thumb": "thumbs/....png"}``,
best first. ``live run --units DIR`` shows a unit's records in the window's
top-k panel (:mod:`live.qt_window`). Everything is checked here, once, at
start: a missing or damaged manifest is one :class:`~live.errors.UsageError`
naming what is wrong. A thumbnail that is missing or unreadable later is
not an error: it shows as an empty cell.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from live.errors import LiveError, UsageError
from live.files import printable, read_bounded
from live.sources import read_image

MAX_MANIFEST_BYTES = 512 * 1024 * 1024
"""The largest manifest.json read: 512 MiB (about 2 million records)."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One record of a unit's top-k in an analysis.

    Attributes:
        score: the unit's spatial maximum on that frame.
        source: the source's name as the analysis gives it.
        frame: the frame's index in its source (0-based).
        time_s: its time in the source, seconds.
        y, x: the cell of the maximum in the unit's map.
        thumb: the thumbnail file (absolute, inside the analysis folder), or None.
    """

    score: float
    source: str
    frame: int
    time_s: float
    y: int
    x: int
    thumb: Path | None


@dataclasses.dataclass(frozen=True)
class AnalysisLayer:
    """One layer of an analysis: ``units`` C, ``k``, and ``top``: per unit, its entries best first."""

    units: int
    k: int
    top: tuple[tuple[Entry, ...], ...]


@dataclasses.dataclass(frozen=True, eq=False)
class Analysis:
    """A finished analysis: its folder, the model it ran, and its layers by name."""

    folder: Path
    model: str | None
    layers: dict[str, AnalysisLayer]

    def thumb(self, entry: Entry) -> np.ndarray | None:
        """The entry's thumbnail, BGR uint8 (h, w, 3), or None when it is missing or unreadable."""
        if entry.thumb is None:
            return None
        try:
            return read_image(entry.thumb, "thumbnail")
        except LiveError:
            return None


def read_analysis(folder: Path) -> Analysis:
    """Read and check ``folder/manifest.json``.

    Raises:
        UsageError: the folder or its manifest is missing, unreadable, not
            JSON, or not shaped as ``live analyze`` writes it (the message
            names the value).
    """
    shown = printable(str(folder))
    if not folder.is_dir():
        raise UsageError(f"--units {shown}: no such folder (an analysis folder written by `live analyze --out`)")
    path = folder / "manifest.json"
    where = printable(str(path))
    data = read_bounded(path, "analysis manifest", UsageError, MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"analysis manifest {where} is not valid JSON: {str(exc).splitlines()[0]}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), dict) or not manifest["layers"]:
        raise UsageError(f'analysis manifest {where} has no "layers" object naming at least one layer')
    model = manifest.get("model")
    layers = {
        str(name): _layer(folder, where, str(name), value) for name, value in manifest["layers"].items()
    }  # fmt: skip
    return Analysis(folder, str(model) if model is not None else None, layers)


def _layer(folder: Path, where: str, name: str, value: Any) -> AnalysisLayer:
    shown = printable(name)
    if not isinstance(value, dict):
        raise UsageError(f"analysis manifest {where}: layer {shown!r} is not an object")
    units, k, top = value.get("units"), value.get("k"), value.get("top")
    if not _count(units) or not _count(k):
        raise UsageError(f'analysis manifest {where}: layer {shown!r} needs positive integers "units" and "k"')
    if not isinstance(top, list) or len(top) != units:
        raise UsageError(
            f'analysis manifest {where}: layer {shown!r} needs "top", a list of {units} lists, one per unit'
        )
    entries = []
    for unit, records in enumerate(top):
        if not isinstance(records, list) or len(records) > k:
            raise UsageError(
                f'analysis manifest {where}: layer {shown!r} unit {unit}: "top" must be a list of at most {k} records'
            )
        entries.append(tuple(_entry(folder, where, shown, unit, record) for record in records))
    return AnalysisLayer(int(units), int(k), tuple(entries))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _entry(folder: Path, where: str, layer: str, unit: int, record: Any) -> Entry:
    what = f"analysis manifest {where}: layer {layer!r} unit {unit}"
    if not isinstance(record, dict):
        raise UsageError(f"{what}: a record is not an object")
    try:
        score, time_s = float(record["score"]), float(record["time_s"])
        frame, y, x = (_int(record[key]) for key in ("frame", "y", "x"))
        source = record["source"]
    except KeyError as exc:
        raise UsageError(f"{what}: a record lacks {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{what}: a record has a bad value ({exc})") from exc
    if not isinstance(source, str) or math.isnan(score) or not math.isfinite(time_s):
        raise UsageError(f'{what}: a record needs a string "source", a number "score" and a finite "time_s"')
    thumb = record.get("thumb")
    if thumb is not None and not isinstance(thumb, str):
        raise UsageError(f'{what}: "thumb" must be a relative path, got {printable(repr(thumb))}')
    return Entry(score, source, frame, time_s, y, x, _inside(folder, what, thumb) if thumb else None)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{printable(repr(value))} is not an integer")
    return value


def _inside(folder: Path, what: str, thumb: str) -> Path:
    """The thumbnail's path under ``folder``; a path that leaves the folder is refused."""
    rel = PurePosixPath(thumb)
    if rel.is_absolute() or ".." in rel.parts or "\\" in thumb or not rel.parts:
        raise UsageError(f"{what}: thumbnail path {printable(thumb)!r} is not a relative path inside the folder")
    return folder.joinpath(*rel.parts)
