"""What each unit responds to: per-unit statistics and top-k frames, in a reducer that merges exactly.

One :class:`UnitReducer` serves the live window (one :meth:`~UnitReducer.update`
per frame), one Dask task (a part of a video collection) and the final
reduction (:meth:`~UnitReducer.merge`, in any order or tree).

Per unit (channel) of each layer it keeps, over every value of the unit's
map on every frame seen (frames x H x W values):

* ``count``, ``mean`` and ``m2`` (the sum of squared deviations), merged
  with Chan et al.'s parallel update, so ``std`` is exact up to float64
  rounding whatever the split;
* ``max``, ``nonpos`` (values <= 0, for the sparsity) and a histogram on
  the fixed bins :data:`HIST_EDGES` (powers of two, the same for every unit
  and run), which merge exactly;
* the top-k frames: the score of a frame is the unit's spatial maximum; the
  time line of each source is cut into windows of ``gap_s`` seconds and a
  unit keeps at most one frame (its best) per (source, window). Records are
  ordered by score descending, then (source, frame) ascending, a total
  order. The top-k is then the k best of the per-window bests, which a
  reducer can keep in k slots and merge exactly: a window's best frame that
  is not among a part's k best is beaten by k other windows' frames, so it
  cannot be among the k best of the whole.

Thumbnails (the frame under the unit's receptive field) are made only for
units whose top-k changed on that frame; units sharing a box share one
read-only thumbnail array. A box small enough to need no scaling is copied
at once; a larger one is scaled (``cv2.INTER_AREA``, about 0.5 ms for a
480 x 480 box) only when first read (:meth:`LayerUnits.top`, a save, a
pickle): until then the update keeps one copy of the part of the frame
its pending boxes cover (never the caller's frame itself), and a record
that leaves the top-k before it is read is never scaled at all. Those
copies are bounded (:attr:`UnitReducer.pending_bytes`): past the bound, the
oldest frames' thumbnails still in a top-k are cut and their pixels freed.
The thumbnails are the same, pixel for pixel, whenever they are cut.

Pure numpy, and cv2 for resizing and writing thumbnails; no Qt, no Dask.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import tempfile
import weakref
import zipfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from live.errors import LiveError, OutputError, UsageError
from live.files import printable
from live.output import default_mode, write_failed
from live.receptive import BoxMap

__all__ = [
    "HIST_EDGES",
    "FrameInfo",
    "LayerUnits",
    "Record",
    "StateError",
    "UnitOptions",
    "UnitReducer",
    "hist_bins",
]

MAX_K = 1000
MIN_THUMB, MAX_THUMB = 8, 512
STATE_FORMAT = "live-units"
STATE_VERSION = 1
_HIST_OCTAVES = 12  # bins of magnitude (2^(e-1), 2^e] for e = -11 .. 12, one per octave (about 3.3 per decade)


def _edges() -> np.ndarray:
    pos = [2.0**e for e in range(-_HIST_OCTAVES, _HIST_OCTAVES + 1)]
    edges = np.array([-math.inf, *(-p for p in reversed(pos)), 0.0, *pos, math.inf], dtype=np.float64)
    edges.setflags(write=False)
    return edges


HIST_EDGES: np.ndarray = _edges()
"""float64 (53,): the histogram's bin edges, the same for every unit and every run, so histograms merge exactly.

``-inf, -2^12, ..., -2^-12, 0, 2^-12, ..., 2^12, +inf``: sign-symmetric, one bin per power of two (about 3.3 per
decade). Bin ``i`` lies between ``HIST_EDGES[i]`` and ``HIST_EDGES[i + 1]``: a value ``v >= 0`` (and ``-0.0``)
falls in the bin with ``E[i] < v <= E[i + 1]``, a negative one in the bin with ``E[i] <= v < E[i + 1]`` (so the bin
of ``-v`` mirrors that of ``v``; zero is in the bin ``(-2^-12, 0]``); ``-inf`` and ``+inf`` are in the outermost
bins. NaN values are counted nowhere (nor in any other statistic).
"""
HIST_BINS = len(HIST_EDGES) - 1
_ZERO_BIN = int(np.searchsorted(HIST_EDGES, 0.0)) - 1


def _key_bins() -> np.ndarray:
    """The bin of each of the 512 magnitude keys of float32 values: int64 (512,).

    A float32 ``v``'s key is ``(bits(v) + 0x7FFFFF) >> 23``: the sign bit, then an exponent field ``e`` such that
    ``|v|`` is in ``(2^(e-128), 2^(e-127)]`` (``e = 0``: ``v`` is zero; ``e = 255``: beyond 2^127, infinity).
    Every bin of :data:`HIST_EDGES` lies between powers of two, so a key falls in exactly one bin. (NaN values
    get keys too, wrongly: they are kept out before.)
    """
    bins = np.empty(512, np.int64)
    for key in range(512):
        negative, e = key >> 8, key & 255
        mag = 0.0 if e == 0 else math.inf if e == 255 else 2.0 ** (e - 127)
        if negative and e != 0:
            bins[key] = int(np.searchsorted(HIST_EDGES, -mag, side="right")) - 1
        else:
            bins[key] = int(np.searchsorted(HIST_EDGES, mag, side="left")) - 1
    assert len(np.unique(bins)) == HIST_BINS, "every bin must own a key"
    return bins


_KEY_BIN = _key_bins()
_KEY_ORDER = np.r_[511:255:-1, 0:256]  # the keys by bin: negative magnitudes falling, then positive ones rising
_KEY_STARTS = np.flatnonzero(np.diff(_KEY_BIN[_KEY_ORDER], prepend=-1))  # where each bin's keys start there
assert np.array_equal(_KEY_BIN[_KEY_ORDER][_KEY_STARTS], np.arange(HIST_BINS)), "each bin's keys must be adjacent"
_EXACT_F32 = 1 << 24  # float32 counts are whole numbers below this
_FEW_VALUES = 512  # below this many values per unit, a bincount of (unit, bin) pairs beats counting every key


def hist_bins(values: np.ndarray) -> np.ndarray:
    """The bin of each value on :data:`HIST_EDGES` (the reference rule, for any float array): int64, same shape.

    NaN values get -1.
    """
    v = np.asarray(values, np.float64)
    left = np.searchsorted(HIST_EDGES, v, side="left") - 1
    right = np.searchsorted(HIST_EDGES, v, side="right") - 1
    out = np.where(v < 0, right, left)
    out = np.clip(out, 0, HIST_BINS - 1)
    return np.where(np.isnan(v), -1, out)


class StateError(LiveError):
    """A saved unit state is missing or damaged (one line, naming the folder and what is wrong)."""


def _int_option(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise UsageError(f"unit option {name} must be a whole number from {lo} to {hi}, got {value!r}")


def _float_option(name: str, value: Any, lo: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not math.isfinite(value):
        raise UsageError(f"unit option {name} must be a finite number, got {value!r}")
    if lo is not None and value < lo:
        raise UsageError(f"unit option {name} must be {lo} or more, got {value!r}")


@dataclasses.dataclass(frozen=True)
class UnitOptions:
    """What a :class:`UnitReducer` keeps.

    Attributes:
        k: top-k frames per unit, 1..1000.
        gap_s: >= 0; the time line of each source is cut into windows of ``gap_s`` seconds and each unit keeps
            at most one frame (its best) per (source, window); 0: every frame is its own window.
        dead_at: a unit whose maximum never exceeded this is dead.
        thumb: longest side of a stored thumbnail in pixels, 8..512.
    """

    k: int = 9
    gap_s: float = 1.0
    dead_at: float = 0.0
    thumb: int = 64

    def __post_init__(self) -> None:
        _int_option("k", self.k, 1, MAX_K)
        _float_option("gap_s", self.gap_s, 0.0)
        _float_option("dead_at", self.dead_at)
        _int_option("thumb", self.thumb, MIN_THUMB, MAX_THUMB)

    def window(self, frame: int, time_s: float) -> int:
        """The window a frame falls in: ``floor(time_s / gap_s)``, or the frame index when ``gap_s`` is 0."""
        return frame if self.gap_s == 0 else math.floor(time_s / self.gap_s)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"k": self.k, "gap_s": self.gap_s, "dead_at": self.dead_at, "thumb": self.thumb}


@dataclasses.dataclass(frozen=True)
class FrameInfo:
    """Where a frame comes from.

    Attributes:
        source: the source's name as given (a path string, ``"camera 0"``, ...).
        frame: 0-based index of the decoded frame within the source.
        time_s: time in the source, seconds (frame / fps for a video; 0.0 for a still image).
        size: the frame's (width, height), for boxes when no image is given; None: taken from the image.
    """

    source: str
    frame: int
    time_s: float
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.source, str):
            raise UsageError(f"frame source must be a string, got {self.source!r}")
        if isinstance(self.frame, bool) or not isinstance(self.frame, int | np.integer) or self.frame < 0:
            raise UsageError(f"frame index must be a whole number >= 0, got {self.frame!r}")
        if isinstance(self.time_s, bool) or not isinstance(self.time_s, int | float | np.number):
            raise UsageError(f"frame time must be a number, got {self.time_s!r}")
        if not math.isfinite(self.time_s):
            raise UsageError(f"frame time must be finite, got {self.time_s!r}")


@dataclasses.dataclass(frozen=True)
class Record:
    """One of a unit's top frames.

    Attributes:
        score: the unit's spatial maximum on that frame (computed in float32, widened).
        source: the source's name as given.
        frame: 0-based frame index within the source.
        time_s: time in the source, seconds.
        y, x: row and column of the maximum in the unit's map (the first in row-major order on ties).
        box: ``(x0, y0, x1, y1)`` in frame pixels: the unit's receptive field there, clipped to the frame
            (``(0, 0, 0, 0)`` when the frame's size was not known).
        thumb: uint8 BGR (h, w, 3), h, w <= ``options.thumb``: the frame under ``box``; None without one.
            Read-only, and shared by the records that show the same box of the same frame.
    """

    score: float
    source: str
    frame: int
    time_s: float
    y: int
    x: int
    box: tuple[int, int, int, int]
    thumb: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON form without the pixels."""
        return {
            "source": self.source,
            "frame": self.frame,
            "time_s": self.time_s,
            "score": _json_float(self.score),
            "y": self.y,
            "x": self.x,
            "box": list(self.box),
        }


# ----------------------------------------------------------------------------- thumbnails cut when read


class _Pixels:
    """A copy of the part of one frame that pending thumbnails are cut from.

    Attributes:
        image: uint8 (h, w, 3), C-contiguous; None once every thumbnail of it is cut.
        origin: (x, y) of ``image``'s top-left pixel in the frame.
        thumbs: weak references to the :class:`_Thumb` objects cut from it (those no top-k holds are gone).
    """

    __slots__ = ("__weakref__", "image", "origin", "thumbs")

    def __init__(self, image: np.ndarray, origin: tuple[int, int]) -> None:
        self.image: np.ndarray | None = image
        self.origin = origin
        self.thumbs: list[weakref.ref[_Thumb]] = []

    @property
    def nbytes(self) -> int:
        return 0 if self.image is None else self.image.nbytes

    def cut(self) -> None:
        """Cut every thumbnail still held by a top-k, then let the pixels go."""
        for ref in self.thumbs:
            thumb = ref()
            if thumb is not None:
                thumb.get()
        self.thumbs = []
        self.image = None


class _Thumb:
    """A thumbnail scaled when first read: :func:`_thumbnail` of a box of a frame kept as :class:`_Pixels`.

    The same object stands in every top-k slot that shows this box of this frame, so they share one array.
    """

    __slots__ = ("__weakref__", "array", "box", "pixels", "side")

    def __init__(self, pixels: _Pixels, box: tuple[int, int, int, int], side: int) -> None:
        self.pixels: _Pixels | None = pixels
        self.box = box
        self.side = side
        self.array: np.ndarray | None = None

    def get(self) -> np.ndarray | None:
        """The thumbnail: uint8 BGR (h, w, 3), read-only (cut now if it was not yet).

        Idempotent: a reducer and its :meth:`~UnitReducer.copy` may share this object across threads; a
        :meth:`_Pixels.cut` under way has set ``array`` before it lets the pixels go.
        """
        pixels = self.pixels
        if pixels is not None:
            image = pixels.image
            if image is not None:
                ox, oy = pixels.origin
                x0, y0, x1, y1 = self.box
                self.array = _thumbnail(image, (x0 - ox, y0 - oy, x1 - ox, y1 - oy), self.side)
            self.pixels = None
        return self.array


class _Cuts:
    """The thumbnails of one update's boxes, made once per box for every layer and unit of that frame.

    A box needing no scaling (its longest side within ``side``) is copied at once; the others become
    :class:`_Thumb` objects cut from one :class:`_Pixels` copy of the frame region they cover.
    """

    def __init__(self, image: np.ndarray | None, side: int) -> None:
        self.image = image
        self.side = side
        self.pixels: list[_Pixels] = []
        self._made: dict[tuple[int, ...], np.ndarray | _Thumb | None] = {}

    def thumbs(self, boxes: np.ndarray) -> np.ndarray:
        """object (n,): the thumbnail (array, :class:`_Thumb` or None) of each box, int64 (n, 4) (x0, y0, x1, y1)."""
        out = np.full(len(boxes), None, dtype=object)
        if self.image is None or len(boxes) == 0:
            return out
        unique, inverse = np.unique(boxes, axis=0, return_inverse=True)
        keys = [tuple(box) for box in unique.tolist()]
        large = []
        for key in keys:
            if key in self._made:
                continue
            x0, y0, x1, y1 = key
            if x1 <= x0 or y1 <= y0 or max(x1 - x0, y1 - y0) <= self.side:
                self._made[key] = _thumbnail(self.image, key, self.side)  # a copy (or None): as cheap as deferring
            else:
                large.append(key)
        if large:
            boxes_of = np.array(large)
            x0, y0 = boxes_of[:, :2].min(axis=0).tolist()
            x1, y1 = boxes_of[:, 2:].max(axis=0).tolist()
            pixels = _Pixels(np.ascontiguousarray(self.image[y0:y1, x0:x1]), (x0, y0))
            self.pixels.append(pixels)
            for key in large:
                thumb = _Thumb(pixels, key, self.side)  # type: ignore[arg-type]
                pixels.thumbs.append(weakref.ref(thumb))
                self._made[key] = thumb
        made = np.empty(len(keys), dtype=object)
        for i, key in enumerate(keys):
            made[i] = self._made[key]
        out[:] = made[inverse.reshape(-1)]
        return out


def _thumb_array(value: object) -> np.ndarray | None:
    """A top-k slot's thumbnail as an array (cut now when it is a :class:`_Thumb`), or None."""
    return value.get() if isinstance(value, _Thumb) else value  # type: ignore[return-value]


def _cut_all(thumbs: np.ndarray) -> np.ndarray:
    """object (C, k) of thumbnails as arrays or None (every :class:`_Thumb` cut): a new array."""
    out = thumbs.copy()
    flat = out.reshape(-1)
    for i, value in enumerate(flat.tolist()):
        if isinstance(value, _Thumb):
            flat[i] = value.get()
    return out


# ----------------------------------------------------------------------------- the top-k of one layer


_TOP_FIELDS = ("score", "sid", "frame", "win", "time", "y", "x")


class _Top:
    """The top-k of every unit of one layer as (C, k) arrays, best first; empty slots have ``sid == -1``.

    Attributes:
        score: float64 (C, k); sid: int64 (C, k) source ids; frame, win, y, x: int64 (C, k); time: float64
        (C, k); box: int64 (C, k, 4); thumb: object (C, k) of read-only uint8 arrays, :class:`_Thumb`
        (cut when read) or None.
    """

    def __init__(self, units: int, k: int) -> None:
        self.score = np.full((units, k), -math.inf)
        self.sid = np.full((units, k), -1, np.int64)
        self.frame = np.zeros((units, k), np.int64)
        self.win = np.zeros((units, k), np.int64)
        self.time = np.zeros((units, k))
        self.y = np.zeros((units, k), np.int64)
        self.x = np.zeros((units, k), np.int64)
        self.box = np.zeros((units, k, 4), np.int64)
        self.thumb = np.full((units, k), None, dtype=object)

    def copy(self) -> _Top:
        out = _Top.__new__(_Top)
        for name in (*_TOP_FIELDS, "box", "thumb"):
            setattr(out, name, getattr(self, name).copy())
        return out


def _better(
    s1: np.ndarray, r1: np.ndarray | int, f1: np.ndarray | int, s2: np.ndarray, r2: np.ndarray, f2: np.ndarray
) -> np.ndarray:
    """Whether record 1 comes before record 2: a higher score, then a lower source rank, then a lower frame."""
    return (s1 > s2) | ((s1 == s2) & ((r1 < r2) | ((r1 == r2) & (f1 < f2))))


def _select(cand: dict[str, np.ndarray], ranks: np.ndarray, k: int, dedupe: bool) -> dict[str, np.ndarray]:
    """The k best of candidate rows (n, m), keeping one record per (source, window) when ``dedupe``.

    ``cand`` holds the :class:`_Top` fields as (n, m) arrays (``box`` (n, m, 4)); empty slots have sid -1.
    """
    valid = cand["sid"] >= 0
    rank = np.where(valid, ranks[np.maximum(cand["sid"], 0)], 0)
    neg = np.where(valid, -cand["score"], math.inf)
    if dedupe:  # within a (source, window) group, every record after the group's best is dropped
        order = np.lexsort((cand["frame"], rank, neg, ~valid, cand["win"], cand["sid"]), axis=-1)
        sid = np.take_along_axis(cand["sid"], order, 1)
        win = np.take_along_axis(cand["win"], order, 1)
        ok = np.take_along_axis(valid, order, 1)
        dup = np.zeros_like(ok)
        dup[:, 1:] = ok[:, 1:] & (sid[:, 1:] == sid[:, :-1]) & (win[:, 1:] == win[:, :-1])
        drop = np.zeros_like(ok)
        np.put_along_axis(drop, order, dup, 1)
        valid = valid & ~drop
        neg = np.where(valid, neg, math.inf)
    order = np.lexsort((cand["frame"], rank, neg, ~valid), axis=-1)[:, :k]
    out = {}
    for name, arr in cand.items():
        idx = order[:, :, None] if arr.ndim == 3 else order
        out[name] = np.take_along_axis(arr, idx, 1)
    keep = np.take_along_axis(valid, order, 1)
    out["sid"] = np.where(keep, out["sid"], -1)
    out["score"] = np.where(keep, out["score"], -math.inf)
    out["thumb"] = np.where(keep, out["thumb"], None)
    return out


def _columns(top: _Top, rows: np.ndarray | slice) -> dict[str, np.ndarray]:
    return {name: getattr(top, name)[rows] for name in (*_TOP_FIELDS, "box", "thumb")}


def _store(top: _Top, rows: np.ndarray | slice, values: Mapping[str, np.ndarray]) -> None:
    for name, arr in values.items():
        getattr(top, name)[rows] = arr


# ----------------------------------------------------------------------------- one layer


class LayerUnits:
    """The state of one layer: per-unit statistics and top-k. Arrays are per unit (C,).

    Attributes:
        name: the layer's name.
        units: C, the number of units (channels).
        frames: frames seen.
        count: int64 (C,): values seen per unit (frames x H x W, less NaNs).
        mean: float64 (C,).
        m2: float64 (C,): the sum of squared deviations from the mean.
        max: float64 (C,): -inf before any value.
        nonpos: int64 (C,): values <= 0.
        hist: int64 (C, len(HIST_EDGES) - 1): values per bin of :data:`HIST_EDGES`.
    """

    def __init__(self, name: str, units: int, k: int, sources: list[str]) -> None:
        self.name = name
        self.units = units
        self.k = k
        self._sources = sources  # the reducer's source table, shared
        self.frames = 0
        self.count = np.zeros(units, np.int64)
        self.mean = np.zeros(units)
        self.m2 = np.zeros(units)
        self.max = np.full(units, -math.inf)
        self.nonpos = np.zeros(units, np.int64)
        self.hist = np.zeros((units, HIST_BINS), np.int64)
        self._top = _Top(units, k)
        self._scratch: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_scratch"] = None  # work arrays: not part of the state
        top = self._top.copy()
        top.thumb = _cut_all(top.thumb)  # arrays, not frames' pixels (one object per thumbnail: still shared)
        state["_top"] = top
        return state

    def std(self) -> np.ndarray:
        """float64 (C,): the population standard deviation (0 for a unit with no values)."""
        return np.sqrt(np.maximum(self.m2, 0.0) / np.maximum(self.count, 1))

    def sparsity(self) -> np.ndarray:
        """float64 (C,): the share of values <= 0 (0 for a unit with no values)."""
        return self.nonpos / np.maximum(self.count, 1)

    def dead(self, dead_at: float) -> np.ndarray:
        """bool (C,): units whose maximum never exceeded ``dead_at`` (units with no values are dead)."""
        return ~(self.max > dead_at)

    def top(self, unit: int) -> list[Record]:
        """The unit's top frames, best first, at most k."""
        if not 0 <= unit < self.units:
            raise UsageError(f"layer {self.name!r} has units 0..{self.units - 1}, not {unit}")
        t = self._top
        n = int(np.count_nonzero(t.sid[unit] >= 0))
        scores, times = t.score[unit, :n].tolist(), t.time[unit, :n].tolist()
        sids, frames = t.sid[unit, :n].tolist(), t.frame[unit, :n].tolist()
        ys, xs, boxes = t.y[unit, :n].tolist(), t.x[unit, :n].tolist(), t.box[unit, :n].tolist()
        return [
            Record(
                scores[j],
                self._sources[sids[j]],
                frames[j],
                times[j],
                ys[j],
                xs[j],
                tuple(boxes[j]),
                _thumb_array(t.thumb[unit, j]),
            )
            for j in range(n)
        ]

    def reset(self) -> None:
        """Forget everything seen."""
        self.__init__(self.name, self.units, self.k, self._sources)  # type: ignore[misc]

    # ------------------------------------------------------------- statistics of one frame
    def _add_stats(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fold one frame's maps (C, n) float32 C-contiguous into the statistics.

        Returns the per-unit (argmax, score) of the frame (score NaN for a unit whose values are all NaN).
        """
        units, n = x.shape
        with np.errstate(invalid="ignore", over="ignore"):  # infinite values make inf - inf
            return self._add_stats_of(x, units, n)

    def _scratch_for(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Work arrays for frames of ``n`` values per unit, kept from frame to frame.

        float64 (C, n) for the deviations, uint32 (C, n) for the values' magnitude keys, and uint8 (min(C, 256), n)
        holding each row's unit number (mod 256) for the histogram. (Fresh arrays of a few MB each frame cost more
        in page faults than the arithmetic done in them.)
        """
        work = self._scratch
        if work is None or work[0].shape[1] != n:
            rows = min(self.units, 256)
            ids = np.repeat(np.arange(rows, dtype=np.uint8), n).reshape(rows, n)
            work = (np.empty((self.units, n)), np.empty((self.units, n), np.uint32), ids)
            self._scratch = work
        return work

    def _add_stats_of(self, x: np.ndarray, units: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        x64, bits, ids = self._scratch_for(n)
        np.copyto(x64, x)
        total = x64.sum(axis=1)
        if np.isnan(total).any() and np.isnan(x).any():
            return self._add_stats_nan(x)
        mu = total / n
        np.subtract(x64, mu[:, None], out=x64)
        self._chan(np.full(units, n, np.int64), mu, np.einsum("ij,ij->i", x64, x64))
        if _FEW_VALUES <= n < _EXACT_F32:
            self._add_hist(self._key_hist(x, bits, ids))
        else:  # a few values per unit (one count per key would cost more), or float32 counts would round
            self._add_hist(self._key_hist_nan(x, None))
        arg = x.argmax(axis=1)
        score = x[np.arange(units), arg].astype(np.float64)
        np.fmax(self.max, score, out=self.max)
        self.frames += 1
        return arg, score

    def _add_stats_nan(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_add_stats_of` for maps with NaN values, which are left out of everything."""
        units, n = x.shape
        nan = np.isnan(x)
        cnt = n - np.count_nonzero(nan, axis=1)
        x64 = np.where(nan, 0.0, x.astype(np.float64))
        mu = x64.sum(axis=1) / np.maximum(cnt, 1)
        x64 -= mu[:, None]
        x64[nan] = 0.0
        self._chan(cnt, mu, np.einsum("ij,ij->i", x64, x64))
        self._add_hist(self._key_hist_nan(x, nan))
        masked = np.where(nan, -np.inf, x)
        arg = masked.argmax(axis=1)
        score = masked[np.arange(units), arg].astype(np.float64)
        score[cnt == 0] = math.nan
        np.fmax(self.max, score, out=self.max)
        self.frames += 1
        return arg, score

    @staticmethod
    def _key_hist(x: np.ndarray, bits: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The histogram of ``x`` (C, n) float32 without NaN, C-contiguous: int64 (C, bins).

        Each value's magnitude key (see :func:`_key_bins`) is the top 9 bits of ``bits(v) + 0x7FFFFF`` (no
        NaN, so no carry out of 32 bits): its byte 3 and the top bit of byte 2. One 8-bit cv2.calcHist over
        (unit, byte 3, byte 2 >> 7) counts the keys of up to 256 units at once (table look-ups, no
        arithmetic per value); each bin's keys are adjacent in :data:`_KEY_ORDER`, so one ``add.reduceat``
        sums them into bins (exact: float32 counts below 2^24).
        """
        units, n = x.shape
        np.add(x.view(np.uint32), np.uint32(0x7FFFFF), out=bits)
        planes = bits.view(np.uint8).reshape(units, n, 4)
        counts = np.empty((units, 512), np.float32)
        for lo in range(0, units, 256):
            hi = min(units, lo + 256)
            rows = hi - lo
            hist = cv2.calcHist([ids[:rows], planes[lo:hi]], [0, 4, 3], None, [rows, 256, 2], [0, rows, 0, 256, 0, 256])
            counts[lo:hi] = hist.reshape(rows, 512)
        return np.add.reduceat(counts[:, _KEY_ORDER], _KEY_STARTS, axis=1).astype(np.int64)

    @staticmethod
    def _key_hist_nan(x: np.ndarray, nan: np.ndarray | None) -> np.ndarray:
        """:meth:`_key_hist` for any ``x`` (C, n) float32, leaving out the values where ``nan``: int64 (C, bins)."""
        units = x.shape[0]
        pairs = units * HIST_BINS
        keys = (x.view(np.uint32).astype(np.int64) + 0x7FFFFF) >> 23
        bins = _KEY_BIN[keys]
        bins += (np.arange(units, dtype=np.int64) * HIST_BINS)[:, None]
        if nan is not None:
            bins[nan] = pairs  # one past the end, dropped
        return np.bincount(bins.ravel(), minlength=pairs + 1)[:pairs].reshape(units, HIST_BINS)

    def _add_hist(self, hist: np.ndarray) -> None:
        """Add one frame's histograms int64 (C, bins) and the non-positive counts they hold."""
        self.hist += hist
        self.nonpos += hist[:, : _ZERO_BIN + 1].sum(axis=1)  # the bins up to (-2^-12, 0] hold exactly v <= 0

    def _chan(self, cnt: np.ndarray, mu: np.ndarray, m2: np.ndarray) -> None:
        """Chan et al.'s parallel update of (count, mean, m2) with another part's."""
        n_a, n_b = self.count, cnt
        total = n_a + n_b
        safe = np.maximum(total, 1)
        delta = mu - self.mean
        self.mean = np.where(total > 0, self.mean + delta * (n_b / safe), 0.0)
        self.m2 = self.m2 + m2 + delta * delta * (n_a * (n_b / safe))
        self.m2 = np.where(total > 0, self.m2, 0.0)
        self.count = total


# ----------------------------------------------------------------------------- the reducer


class UnitReducer:
    """Per-unit statistics and top-k frames of some layers; see the module's description.

    ``pending_bytes`` (a class attribute; set it on an instance to change one reducer) bounds the pixels kept
    for thumbnails not cut yet: past it, :meth:`update` cuts the oldest frames' thumbnails still in a top-k
    and frees their pixels. 0 cuts every thumbnail in the update that makes it.

    Args:
        layers: layer name -> number of units (channels).
        options: what to keep.
    Attributes:
        options: the :class:`UnitOptions`.
        layers: layer name -> :class:`LayerUnits`, in the order given.
    """

    pending_bytes: int = 32 << 20
    """Bytes of frame pixels kept at most for thumbnails not cut yet (about 48 frames' 480 x 480 centres)."""

    def __init__(self, layers: Mapping[str, int], options: UnitOptions = UnitOptions()) -> None:
        if not isinstance(options, UnitOptions):
            raise UsageError(f"unit options must be a UnitOptions, got {options!r}")
        self.options = options
        self._pending: deque[weakref.ref[_Pixels]] = deque()  # frames' pixels with thumbnails not cut, oldest first
        self._sources: list[str] = []
        self._source_ids: dict[str, int] = {}
        self._ranks = np.zeros(0, np.int64)
        self.layers: dict[str, LayerUnits] = {}
        for name, units in layers.items():
            if not isinstance(name, str):
                raise UsageError(f"a layer name must be a string, got {name!r}")
            if isinstance(units, bool) or not isinstance(units, int | np.integer) or units < 1:
                raise UsageError(f"layer {name!r} needs a whole number of units >= 1, got {units!r}")
            self.layers[name] = LayerUnits(name, int(units), options.k, self._sources)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pending"] = deque()  # the layers' states carry their thumbnails cut (LayerUnits.__getstate__)
        return state

    @property
    def sources(self) -> list[str]:
        """The sources seen, in the order first seen."""
        return list(self._sources)

    def _source_id(self, source: str) -> int:
        sid = self._source_ids.get(source)
        if sid is None:
            sid = len(self._sources)
            self._sources.append(source)
            self._source_ids[source] = sid
            order = sorted(range(len(self._sources)), key=self._sources.__getitem__)
            self._ranks = np.empty(len(order), np.int64)
            self._ranks[order] = np.arange(len(order))
        return sid

    # ------------------------------------------------------------- update
    def update(
        self,
        frame: FrameInfo,
        maps: Mapping[str, np.ndarray],
        image: np.ndarray | None,
        boxes: Mapping[str, BoxMap] | None = None,
    ) -> None:
        """Fold one frame's maps into the state.

        Args:
            frame: where the frame comes from.
            maps: layer -> float32 (C, H, W) maps of this frame (``live.maps.blob_to_maps`` of a tap); layers
                of the reducer missing here are not updated.
            image: the BGR uint8 frame (H, W, 3) the thumbnails are cut from; None: no thumbnails.
            boxes: layer -> how a map cell (y, x) becomes a frame box (:func:`live.receptive.box_maps`);
                default: the proportional cell (the frame split into H x W cells).
        Raises:
            UsageError: an unknown layer, maps of the wrong shape or type, an image that is not uint8.
        """
        if not isinstance(frame, FrameInfo):
            raise UsageError(f"update needs a FrameInfo, got {frame!r}")
        prepared = {name: self._prepare(name, arr) for name, arr in maps.items()}
        image = _check_image(image)
        frame_size = (image.shape[1], image.shape[0]) if image is not None else frame.size
        sid = self._source_id(frame.source)
        win = self.options.window(int(frame.frame), float(frame.time_s))
        cuts = _Cuts(image, self.options.thumb)
        for name, x in prepared.items():
            layer = self.layers[name]
            arg, score = layer._add_stats(x.reshape(x.shape[0], -1))
            boxer = boxes.get(name) if boxes is not None else None
            if boxer is None and frame_size is not None:
                boxer = BoxMap.proportional(frame_size)
            self._add_top(layer, frame, sid, win, arg, score, x.shape[1:], boxer, cuts)
        if cuts.pixels:
            self._pending.extend(weakref.ref(pixels) for pixels in cuts.pixels)
            del cuts  # the thumbnails no top-k took go now, and with them the pixels nobody needs
            self._trim(self.pending_bytes)

    def _trim(self, limit: int) -> None:
        """Cut the oldest pending frames' thumbnails until the pixels kept for the rest are ``limit`` bytes at most."""
        alive = [pixels for ref in self._pending if (pixels := ref()) is not None and pixels.image is not None]
        total = sum(pixels.nbytes for pixels in alive)
        kept: deque[weakref.ref[_Pixels]] = deque()
        for pixels in alive:  # oldest first
            if total > limit:
                total -= pixels.nbytes
                pixels.cut()
            else:
                kept.append(weakref.ref(pixels))
        self._pending = kept

    def _prepare(self, name: str, maps: np.ndarray) -> np.ndarray:
        layer = self.layers.get(name)
        if layer is None:
            raise UsageError(f"maps for layer {name!r}, which this reducer does not keep ({', '.join(self.layers)})")
        arr = np.asarray(maps)
        if arr.ndim != 3 or arr.shape[0] != layer.units or arr.shape[1] < 1 or arr.shape[2] < 1:
            raise UsageError(f"maps of layer {name!r} must be ({layer.units}, H, W), got shape {arr.shape}")
        if arr.dtype.kind not in "fiub":
            raise UsageError(f"maps of layer {name!r} must be numbers, got dtype {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def _add_top(
        self,
        layer: LayerUnits,
        frame: FrameInfo,
        sid: int,
        win: int,
        arg: np.ndarray,
        score: np.ndarray,
        map_hw: tuple[int, int],
        boxer: BoxMap | None,
        cuts: _Cuts,
    ) -> None:
        t, k, ranks = layer._top, self.options.k, self._ranks
        rank, fno = int(ranks[sid]), int(frame.frame)
        valid = t.sid >= 0
        match = valid & (t.sid == sid) & (t.win == win)
        has = match.any(axis=1)
        rows = np.arange(layer.units)
        col = np.where(has, match.argmax(axis=1), k - 1)
        other_sid = t.sid[rows, col]
        other_rank = ranks[np.maximum(other_sid, 0)]
        beats = _better(score, rank, fno, t.score[rows, col], other_rank, t.frame[rows, col])
        changed = np.where(has, beats, (other_sid < 0) | beats) & ~np.isnan(score)
        units = np.flatnonzero(changed)
        if units.size == 0:
            return
        ys, xs = np.divmod(arg[units], map_hw[1])
        no_box = np.zeros((units.size, 4), np.int64)
        new_boxes = boxer.boxes(ys, xs, map_hw) if boxer is not None else no_box
        thumbs = cuts.thumbs(new_boxes)
        cand = _columns(t, units)
        cand["sid"] = np.where(match[units], -1, cand["sid"])  # the window's old record, now beaten
        new = {
            "score": score[units],
            "sid": np.full(units.size, sid, np.int64),
            "frame": np.full(units.size, fno, np.int64),
            "win": np.full(units.size, win, np.int64),
            "time": np.full(units.size, float(frame.time_s)),
            "y": ys,
            "x": xs,
            "box": new_boxes,
            "thumb": thumbs,
        }
        for name, arr in new.items():
            cand[name] = np.concatenate([cand[name], arr[:, None]], axis=1)
        _store(t, units, _select(cand, ranks, k, dedupe=False))

    # ------------------------------------------------------------- merge and reset
    def merge(self, other: UnitReducer) -> UnitReducer:
        """A new reducer holding both states: exact (as one pass over both parts' frames), associative, commutative.

        Mean and m2 are equal to one pass up to float64 rounding (Chan's update); everything else is exactly equal.

        Raises:
            UsageError: the layers, their units or the options differ.
        """
        if not isinstance(other, UnitReducer):
            raise UsageError(f"can only merge a UnitReducer, got {type(other).__name__}")
        if other.options != self.options:
            raise UsageError(f"cannot merge unit states with different options: {self.options} and {other.options}")
        mine = {name: layer.units for name, layer in self.layers.items()}
        theirs = {name: layer.units for name, layer in other.layers.items()}
        if mine != theirs:
            raise UsageError(f"cannot merge unit states of different layers: {mine} and {theirs}")
        out = UnitReducer(mine, self.options)
        out._pending = deque([*self._pending, *other._pending])  # shared thumbnails not cut yet: bounded there too
        for source in (*self._sources, *other._sources):
            out._source_id(source)
        remap_a = np.array([out._source_ids[s] for s in self._sources] + [-1], np.int64)
        remap_b = np.array([out._source_ids[s] for s in other._sources] + [-1], np.int64)
        for name, layer in out.layers.items():
            a, b = self.layers[name], other.layers[name]
            layer.frames = a.frames + b.frames
            layer.count, layer.mean, layer.m2 = a.count.copy(), a.mean.copy(), a.m2.copy()
            layer._chan(b.count, b.mean, b.m2)
            layer.max = np.fmax(a.max, b.max)
            layer.nonpos = a.nonpos + b.nonpos
            layer.hist = a.hist + b.hist
            ca, cb = _columns(a._top, slice(None)), _columns(b._top, slice(None))
            ca["sid"] = remap_a[ca["sid"]]  # -1 stays -1 (the last entry)
            cb["sid"] = remap_b[cb["sid"]]
            cand = {key: np.concatenate([ca[key], cb[key]], axis=1) for key in ca}
            _store(layer._top, slice(None), _select(cand, out._ranks, self.options.k, dedupe=True))
        return out

    def copy(self) -> UnitReducer:
        """An independent copy, e.g. for another thread to read while this one goes on updating.

        The arrays are copied; the thumbnails, read-only, are shared.
        """
        out = UnitReducer({name: layer.units for name, layer in self.layers.items()}, self.options)
        out._pending = deque(self._pending)
        for source in self._sources:
            out._source_id(source)
        for name, layer in out.layers.items():
            mine = self.layers[name]
            layer.frames = mine.frames
            for key in ("count", "mean", "m2", "max", "nonpos", "hist"):
                setattr(layer, key, getattr(mine, key).copy())
            layer._top = mine._top.copy()
        return out

    def reset(self, layer: str | None = None) -> None:
        """Forget what one layer (or, with None, every layer) has seen."""
        if layer is not None and layer not in self.layers:
            raise UsageError(f"no layer {layer!r} in this unit state ({', '.join(self.layers)})")
        for name, state in self.layers.items():
            if layer is None or name == layer:
                state.reset()

    # ------------------------------------------------------------- files
    def save(self, folder: Path) -> None:
        """Write the state to ``folder``, atomically: a temporary folder beside it, renamed into place.

        ``state.json`` (options, sources, layers, the records without pixels), ``arrays.npz`` (the statistics;
        no pickles) and the thumbnails as ``thumbs/LAYER_INDEX/UNIT/RANK.png`` (the layer's position, so any
        layer name is safe; records sharing a thumbnail share one file, hard-linked). An existing unit state
        there is replaced; any other existing folder or file is left alone.

        Raises:
            UsageError: ``folder`` is a file, or a folder that is not a unit state, or its parent is missing.
            OutputError: the write failed (a full disk names the folder); nothing is left half-written.
        """
        folder = Path(folder)
        if folder.exists() and not (folder.is_dir() and (not any(folder.iterdir()) or (folder / STATE).is_file())):
            raise UsageError(f"unit state folder {_shown(folder)} exists and is not a unit state: not replaced")
        if not folder.parent.is_dir():
            raise UsageError(f"cannot write unit state {_shown(folder)}: folder {_shown(folder.parent)} does not exist")
        tmp: Path | None = None
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
            self._write(tmp)
            tmp.chmod(_dir_mode())
            _fsync_dir(tmp)
            if folder.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
                folder.replace(old)  # renames over the empty placeholder
                tmp.replace(folder)
                tmp = None
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.replace(folder)
                tmp = None
            _fsync_dir(folder.parent)
        except OSError as exc:
            raise OutputError(write_failed("unit state", folder, exc)) from exc
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def _write(self, folder: Path) -> None:
        """Write the state's files into the (new, empty) ``folder``."""
        written: dict[int, Path] = {}  # id of a thumbnail array -> the file it went to
        layers = []
        arrays: dict[str, np.ndarray] = {}
        for li, (name, layer) in enumerate(self.layers.items()):
            top = []
            for unit in range(layer.units):
                records = []
                for rank, record in enumerate(layer.top(unit)):
                    entry = record.to_dict()
                    entry["score"] = _json_float(record.score, strings=True)
                    entry["thumb"] = None
                    if record.thumb is not None:
                        entry["thumb"] = self._thumb_path(li, unit, rank)
                        _write_thumb(folder / entry["thumb"], record.thumb, written)
                    records.append(entry)
                top.append(records)
            layers.append({"name": name, "units": layer.units, "frames": layer.frames, "top": top})
            for key in ("count", "mean", "m2", "max", "nonpos", "hist"):
                arrays[f"{li}.{key}"] = getattr(layer, key)
        state = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "options": self.options.to_dict(),
            "sources": self._sources,
            "layers": layers,
        }
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        _write_synced(folder / ARRAYS, buffer.getvalue())
        _write_synced(folder / STATE, (json.dumps(state, allow_nan=False) + "\n").encode())

    @classmethod
    def load(cls, folder: Path) -> UnitReducer:
        """Read a state :meth:`save` wrote.

        Raises:
            StateError: the folder, ``state.json``, ``arrays.npz`` or a thumbnail is missing or damaged (one
                line naming the folder and what is wrong).
        """
        folder = Path(folder)
        try:
            return _load(folder)
        except StateError:
            raise
        except LiveError as exc:  # an option out of range
            raise StateError(f"cannot read unit state {_shown(folder)}: {exc}") from None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise StateError(f"cannot read unit state {_shown(folder)}: state.json is damaged ({_what(exc)})") from None

    # ------------------------------------------------------------- JSON views
    def _thumb_path(self, layer_index: int, unit: int, rank: int) -> str:
        return f"thumbs/{layer_index}/{unit}/{rank}.png"

    def to_manifest(self) -> dict[str, Any]:
        """The top-k as JSON: ``{"layers": {name: {"units", "k", "top": [[record, ...] per unit]}}}``.

        Each record is ``{"source", "frame", "time_s", "score", "y", "x", "thumb"}``, best first; ``thumb`` is
        the path :meth:`save` writes the thumbnail to, relative to the saved folder (None without one).
        """
        layers = {}
        for li, (name, layer) in enumerate(self.layers.items()):
            top = []
            for unit in range(layer.units):
                top.append(
                    [
                        {
                            "source": r.source,
                            "frame": r.frame,
                            "time_s": r.time_s,
                            "score": _json_float(r.score),
                            "y": r.y,
                            "x": r.x,
                            "thumb": self._thumb_path(li, unit, rank) if r.thumb is not None else None,
                        }
                        for rank, r in enumerate(layer.top(unit))
                    ]
                )
            layers[name] = {"units": layer.units, "k": self.options.k, "top": top}
        return {"layers": layers}

    def stats_dict(self) -> dict[str, Any]:
        """The statistics as JSON (non-finite numbers as None; the histogram's ±inf edges as "-inf"/"inf").

        ``{"layers": {name: {"frames", "units": [{"unit", "count", "mean", "std", "max", "sparsity", "dead"}, ...],
        "hist_edges": [...], "hist": [[...] per unit]}}}``
        """
        edges = [_json_float(e, strings=True) for e in HIST_EDGES]
        layers = {}
        for name, layer in self.layers.items():
            std, sparsity, dead = layer.std(), layer.sparsity(), layer.dead(self.options.dead_at)
            units = [
                {
                    "unit": u,
                    "count": int(layer.count[u]),
                    "mean": _json_float(layer.mean[u]) if layer.count[u] else None,
                    "std": _json_float(std[u]) if layer.count[u] else None,
                    "max": _json_float(layer.max[u]),
                    "sparsity": float(sparsity[u]) if layer.count[u] else None,
                    "dead": bool(dead[u]),
                }
                for u in range(layer.units)
            ]
            layers[name] = {
                "frames": layer.frames,
                "units": units,
                "hist_edges": edges,
                "hist": layer.hist.tolist(),
            }
        return {"layers": layers}


STATE = "state.json"
ARRAYS = "arrays.npz"


def _shown(path: Path) -> str:
    return printable(str(path))


def _what(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no key {exc.args[0]!r}" if exc.args else "a key is missing"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _dir_mode() -> int:
    """The mode a new folder gets: 0o777 less the process umask."""
    mode = default_mode()
    return mode | ((mode & 0o444) >> 2)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _write_thumb(path: Path, thumb: np.ndarray, written: dict[int, Path]) -> None:
    """Write a thumbnail PNG, or hard-link the file an identical (the same) array went to."""
    path.parent.mkdir(parents=True, exist_ok=True)
    first = written.get(id(thumb))
    if first is not None:
        try:
            os.link(first, path)
            return
        except OSError:
            pass  # no hard links here: write it again
    ok, encoded = cv2.imencode(".png", thumb)
    if not ok:
        raise OutputError(f"OpenCV could not encode a thumbnail ({thumb.shape[1]}x{thumb.shape[0]}) as PNG")
    path.write_bytes(encoded.tobytes())
    written.setdefault(id(thumb), path)


def _fail(folder: Path, what: str) -> StateError:
    return StateError(f"cannot read unit state {_shown(folder)}: {what}")


def _load(folder: Path) -> UnitReducer:
    """:meth:`UnitReducer.load`'s work; shape and type errors of the JSON surface as KeyError, TypeError, ..."""
    if not folder.is_dir():
        raise _fail(folder, "no such folder" if not folder.exists() else "not a folder")
    try:
        text = (folder / STATE).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(folder, f"{STATE} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(folder, f"{STATE} cannot be read ({_what(exc)})") from None
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(folder, f"{STATE} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise _fail(folder, f"{STATE} is not a live unit state")
    if state.get("version") != STATE_VERSION:
        raise _fail(folder, f"{STATE} has version {state.get('version')!r}; this live reads version {STATE_VERSION}")
    options = UnitOptions(**state["options"])
    sources = state["sources"]
    if (
        not isinstance(sources, list)
        or not all(isinstance(s, str) for s in sources)
        or len(set(sources)) != len(sources)
    ):
        raise _fail(folder, f"{STATE} has a damaged source list")
    layers = state["layers"]
    names = [layer["name"] for layer in layers]
    if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
        raise _fail(folder, f"{STATE} has a damaged layer list")
    reducer = UnitReducer({layer["name"]: layer["units"] for layer in layers}, options)
    for source in sources:
        reducer._source_id(source)
    try:
        with np.load(folder / ARRAYS, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise _fail(folder, f"{ARRAYS} is missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _fail(folder, f"{ARRAYS} is damaged ({_what(exc)})") from None
    thumbs: dict[tuple[int, int], np.ndarray] = {}  # (device, inode) -> the array: hard links stay shared
    for li, entry in enumerate(layers):
        layer = reducer.layers[entry["name"]]
        c = layer.units
        frames = entry["frames"]
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 0:
            raise _fail(folder, f"layer {entry['name']!r} has a damaged frame count {frames!r}")
        layer.frames = frames
        for key, dtype, shape in (
            ("count", np.int64, (c,)),
            ("mean", np.float64, (c,)),
            ("m2", np.float64, (c,)),
            ("max", np.float64, (c,)),
            ("nonpos", np.int64, (c,)),
            ("hist", np.int64, (c, HIST_BINS)),
        ):
            arr = arrays.get(f"{li}.{key}")
            if arr is None or arr.shape != shape or arr.dtype != dtype:
                got = "missing" if arr is None else f"{arr.dtype} {arr.shape}"
                raise _fail(
                    folder, f"{ARRAYS} has no {dtype.__name__} {shape} {key} for layer {entry['name']!r} ({got})"
                )
            setattr(layer, key, arr.copy())
        top = entry["top"]
        if not isinstance(top, list) or len(top) != c:
            raise _fail(folder, f"layer {entry['name']!r} needs {c} top lists in {STATE}")
        for unit, records in enumerate(top):
            if not isinstance(records, list) or len(records) > options.k:
                raise _fail(folder, f"layer {entry['name']!r} unit {unit} has a damaged top list")
            for rank, rec in enumerate(records):
                _put_record(folder, reducer, layer, li, unit, rank, rec, thumbs)
            _check_order(folder, reducer, layer, unit)
    return reducer


def _put_record(
    folder: Path,
    reducer: UnitReducer,
    layer: LayerUnits,
    li: int,
    unit: int,
    rank: int,
    rec: dict[str, Any],
    thumbs: dict[tuple[int, int], np.ndarray],
) -> None:
    """Check one record of ``state.json`` and put it in the layer's top-k slot (unit, rank)."""
    where = f"layer {layer.name!r} unit {unit} record {rank}"
    score = _read_float(rec["score"])
    frame, y, x, box = rec["frame"], rec["y"], rec["x"], rec["box"]
    time_s = float(rec["time_s"])
    ints = [frame, y, x, *box]
    if any(isinstance(v, bool) or not isinstance(v, int) for v in ints) or frame < 0 or len(box) != 4:
        raise _fail(folder, f"{where} is damaged")
    if math.isnan(score) or not math.isfinite(time_s) or rec["source"] not in reducer._source_ids:
        raise _fail(folder, f"{where} is damaged")
    t = layer._top
    t.score[unit, rank] = score
    t.sid[unit, rank] = reducer._source_ids[rec["source"]]
    t.frame[unit, rank] = frame
    t.win[unit, rank] = reducer.options.window(frame, time_s)
    t.time[unit, rank] = time_s
    t.y[unit, rank], t.x[unit, rank] = y, x
    t.box[unit, rank] = box
    path = rec.get("thumb")
    if path is None:
        return
    if path != reducer._thumb_path(li, unit, rank):
        raise _fail(folder, f"{where} names thumbnail {path!r}, not {reducer._thumb_path(li, unit, rank)!r}")
    file = folder / path
    try:
        info = file.stat()
        key = (info.st_dev, info.st_ino)
        image = thumbs.get(key)
        if image is None:
            image = cv2.imdecode(np.frombuffer(file.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise _fail(folder, f"thumbnail {path} is not a readable PNG")
            image.setflags(write=False)
            thumbs[key] = image
    except OSError as exc:
        raise _fail(folder, f"thumbnail {path} cannot be read ({exc.strerror or exc})") from None
    t.thumb[unit, rank] = image


def _check_order(folder: Path, reducer: UnitReducer, layer: LayerUnits, unit: int) -> None:
    """A unit's records must be best first and hold one frame per (source, window)."""
    t, ranks = layer._top, reducer._ranks
    n = int(np.count_nonzero(t.sid[unit] >= 0))
    for j in range(1, n):
        a, b = j - 1, j
        if not _better(
            t.score[unit, a],
            ranks[t.sid[unit, a]],
            t.frame[unit, a],
            t.score[unit, b],
            ranks[t.sid[unit, b]],
            t.frame[unit, b],
        ):
            raise _fail(folder, f"layer {layer.name!r} unit {unit}: records are not best first")
    groups = set(zip(t.sid[unit, :n].tolist(), t.win[unit, :n].tolist(), strict=True))
    if len(groups) != n:
        raise _fail(folder, f"layer {layer.name!r} unit {unit}: two records of one (source, window)")


def _read_float(value: Any) -> float:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _json_float(value: float, strings: bool = False) -> float | str | None:
    """A float for JSON: non-finite values become None (or "inf", "-inf", "nan" with ``strings``)."""
    value = float(value)
    if math.isfinite(value):
        return value
    if not strings:
        return None
    return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"


def _check_image(image: np.ndarray | None) -> np.ndarray | None:
    if image is None:
        return None
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise UsageError(f"the frame image must be uint8 (H, W, 3), got {arr.dtype} {arr.shape}")
    if arr.ndim == 2 or arr.shape[2] == 1:
        return cv2.cvtColor(arr.reshape(arr.shape[0], arr.shape[1]), cv2.COLOR_GRAY2BGR)
    if arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2BGR)
    return arr


def _thumbnail(image: np.ndarray, box: tuple[int, ...], side: int) -> np.ndarray | None:
    """The BGR uint8 image under ``box`` (x0, y0, x1, y1), scaled down to at most ``side`` a side; read-only."""
    x0, y0, x1, y1 = box
    crop = image[y0:y1, x0:x1]
    h, w = crop.shape[:2]
    if h == 0 or w == 0:
        return None
    longest = max(h, w)
    if longest > side:
        size = (max(1, round(w * side / longest)), max(1, round(h * side / longest)))
        out = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    else:
        out = crop.copy()
    out.setflags(write=False)
    return out
