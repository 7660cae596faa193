"""Blobs to feature maps to a normalized, tiled uint8 grid. Pure numpy.

The pipeline for one tapped blob::

    blob (any rank) --blob_to_maps--> maps (C, H, W) float32
         --GridBuilder.build--> Grid: uint8 index image (rows*(H+pad), cols*(W+pad))
         --colorize--> RGB uint8 image, or hand the index image and
                       colormap_lut() to an image widget.

Everything is vectorized (no Python loop per channel), and a
:class:`GridBuilder` reuses its buffers from one frame to the next: keep one
per display, and copy a grid's image before building the next one if it must
live on. No Qt and no cv2.dnn here; cv2 core serves the colormap tables and
the colormap.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from live.errors import UsageError

Norm = Literal["map", "layer", "robust", "fixed"]
NORMS: dict[str, str] = {
    "map": "each map min-max on its own (the original sample's default)",
    "layer": "layer-wide min and max-min, one scale for all maps (DIGITS)",
    "robust": "layer-wide percentiles (default 1-99 %), outliers saturate",
    "fixed": "a fixed value range given by the user",
}
COLORMAPS: dict[str, int | None] = {
    "viridis": cv2.COLORMAP_VIRIDIS,
    "jet": cv2.COLORMAP_JET,
    "gray": None,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "turbo": cv2.COLORMAP_TURBO,
    "hot": cv2.COLORMAP_HOT,
}
MAP_LAYOUTS = ("auto", "nchw", "nhwc")
PAD_RGB = (40, 40, 40)
_ROBUST_SAMPLE = 1 << 14  # values the robust percentiles are estimated from


_LUTS: dict[str, np.ndarray] = {}


def colormap_lut(name: str) -> np.ndarray:
    """The 256-entry RGB lookup table of a colormap: (256, 3) uint8, read-only.

    Made once per colormap and shared: the window asks for it on every frame.
    """
    lut = _LUTS.get(name)
    if lut is not None:
        return lut
    if name not in COLORMAPS:
        raise UsageError(f"unknown colormap {name!r}; choose from {', '.join(COLORMAPS)}")
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    code = COLORMAPS[name]
    if code is None:
        lut = np.repeat(ramp, 3, axis=1)
    else:
        lut = np.ascontiguousarray(cv2.applyColorMap(ramp, code).reshape(256, 3)[:, ::-1])
    lut.setflags(write=False)
    _LUTS[name] = lut
    return lut


def _lut3(name: str) -> np.ndarray:
    """The colormap as the (256, 1, 3) table cv2.applyColorMap takes (a view of the cached LUT)."""
    return colormap_lut(name).reshape(256, 1, 3)


def _guess_nhwc(shape: tuple[int, ...]) -> bool:
    """NHWC when H == W but C differs and is larger (e.g. (1, 56, 56, 64))."""
    _, a, b, c = shape
    return a == b and c != b and c > a


def blob_to_maps(blob: np.ndarray, batch: int = 0, layout: str = "auto") -> np.ndarray:
    """Split a tapped blob into feature maps.

    Args:
        blob: an output blob of any rank: (N, C, H, W) conv maps, (N, C)
            vectors, (N, C, L) sequences, (N, C, D, H, W) volumes, ...
        batch: which batch item to show (rank >= 2).
        layout: ``nchw``, ``nhwc`` or ``auto``, rank 4 only. ``auto`` is a
            heuristic: NHWC when dims 1 and 2 are equal and dim 3 is larger
            ((1, 56, 56, 64)); an NCHW blob with C == H < W, e.g.
            (1, 8, 8, 16), needs ``nchw`` given explicitly.
    Returns:
        (C, H, W) maps, float32 where the blob is float32 (a view when
        possible): rank 4 -> C maps H x W; rank 2 -> C maps 1 x 1; rank 3 ->
        C maps 1 x L; rank 5 -> C*D maps H x W; rank 1 -> C maps 1 x 1.
    """
    arr = np.asarray(blob)
    if layout not in MAP_LAYOUTS:
        raise UsageError(f"map layout must be one of {', '.join(MAP_LAYOUTS)}, got {layout!r}")
    if arr.dtype.kind not in "fiub":
        raise UsageError(f"cannot show a blob of dtype {arr.dtype}")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    if arr.ndim == 0:
        return arr.reshape(1, 1, 1)
    if arr.ndim == 1:
        return arr.reshape(-1, 1, 1)
    if not 0 <= batch < arr.shape[0]:
        raise UsageError(f"batch index {batch} is out of range for a blob of shape {arr.shape}")
    item = arr[batch]
    if arr.ndim == 4 and (layout == "nhwc" or (layout == "auto" and _guess_nhwc(arr.shape))):
        return item.transpose(2, 0, 1)
    if item.ndim == 1:
        return item.reshape(-1, 1, 1)
    if item.ndim == 2:
        return item.reshape(item.shape[0], 1, item.shape[1])
    if item.ndim == 3:
        return item
    return item.reshape(-1, *item.shape[-2:])


@dataclasses.dataclass(frozen=True)
class GridLayout:
    """Where each map sits in the grid.

    Attributes:
        count: number of maps C.
        map_h, map_w: size of one tile after any downscaling.
        rows, cols: grid size in tiles.
        pad: pixels between tiles (also after the last row and column).
        step: downscale factor applied to each map (1 = none).
        order: channel shown at each tile position (length C).
    """

    count: int
    map_h: int
    map_w: int
    rows: int
    cols: int
    pad: int
    step: int
    order: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the grid image in pixels."""
        return self.rows * (self.map_h + self.pad), self.cols * (self.map_w + self.pad)

    def tile_at(self, x: float, y: float) -> int | None:
        """The channel shown at grid pixel (x, y), or None on padding/outside."""
        if x < 0 or y < 0:
            return None
        col, cx = divmod(int(x), self.map_w + self.pad)
        row, cy = divmod(int(y), self.map_h + self.pad)
        if cx >= self.map_w or cy >= self.map_h or col >= self.cols:
            return None
        pos = row * self.cols + col
        return self.order[pos] if pos < self.count else None

    def tile_rect(self, channel: int) -> tuple[int, int, int, int]:
        """(x, y, w, h) of the tile that shows ``channel``."""
        pos = self.order.index(channel)
        row, col = divmod(pos, self.cols)
        return col * (self.map_w + self.pad), row * (self.map_h + self.pad), self.map_w, self.map_h


@dataclasses.dataclass
class Grid:
    """A built grid.

    Attributes:
        image: uint8 (H, W) values 0..255, ready for a LUT or colorize().
            Owned by the builder: overwritten by its next build().
        layout: where each map sits.
        lo, hi: (C,) float32, the values mapped to 0 and 255, per channel
            (in channel order, not tile order).
        finite: False when the blob held NaN or Inf (they show as 0 / 255).
    """

    image: np.ndarray
    layout: GridLayout
    lo: np.ndarray
    hi: np.ndarray
    finite: bool


def grid_shape(count: int, map_h: int, map_w: int, pad: int, aspect: float = 1.0) -> tuple[int, int]:
    """Rows and columns for ``count`` tiles so that the grid is near ``aspect`` (w/h)."""
    if count <= 0:
        raise UsageError("a grid needs at least one map")
    cols = max(1, round(math.sqrt(count * aspect * (map_h + pad) / (map_w + pad))))
    cols = min(cols, count)
    rows = -(-count // cols)
    return rows, cols


def _downscale(maps: np.ndarray, step: int) -> np.ndarray:
    """Block-mean downscale of (C, H, W) maps by ``step`` on each axis.

    An axis shorter than ``step`` collapses to one pixel (1 x L strips keep
    their single row); H and W are cropped to multiples of the block.
    """
    c, h, w = maps.shape
    sh, sw = min(step, h), min(step, w)
    h2, w2 = h // sh, w // sw
    blocks = maps[:, : h2 * sh, : w2 * sw].reshape(c, h2, sh, w2, sw)
    return blocks.mean(axis=(2, 4), dtype=np.float32)


ORDERS: dict[str, str] = {
    "index": "tiles in channel order",
    "mean": "highest mean activation first",
    "running": "highest running mean first (the permutation the caller passes to build; channel order until then)",
}
MAX_PAD = 64  # pixels between tiles: more only wastes the grid
MAX_GRID_SIZE = 16384  # the largest grid side in pixels (a 16k x 16k uint8 grid is 256 MiB)


@dataclasses.dataclass(frozen=True)
class GridOptions:
    """How a tapped blob becomes a picture: one value, built once and passed down.

    The command line builds it (``live run``, ``live snapshot``), the
    pipeline's view carries it, the window and the recorder read their
    colormap from it, and the benchmarks and the Python API make their own.
    Invalid values raise :class:`~live.errors.UsageError` naming the value.

    Attributes:
        norm: ``map``, ``layer``, ``robust`` or ``fixed`` (see :data:`NORMS`).
            Maps of 1 x 1 (vector outputs) cannot be normalized alone;
            ``map`` falls back to ``layer`` for them.
        value_range: (lo, hi) for ``fixed``.
        percentiles: (low, high) percent for ``robust``.
        pad: pixels between tiles.
        order: ``index`` (channel order), ``mean`` (highest mean activation
            first) or ``running`` (the order the caller passes to
            :meth:`GridBuilder.build`, e.g. by the units' running means).
        max_size: largest grid side in pixels; larger grids are made by
            block-mean downscaling each map by an integer factor.
        cmap: colormap name (see :data:`COLORMAPS`).
        batch: which batch item of the blob to show.
        layout: layout of the tapped blob, ``auto``, ``nchw`` or ``nhwc``
            (see :func:`blob_to_maps`).
        aspect: wanted grid width/height.
    """

    norm: str = "map"
    value_range: tuple[float, float] | None = None
    percentiles: tuple[float, float] = (1.0, 99.0)
    pad: int = 1
    order: str = "index"
    max_size: int = 4096
    cmap: str = "viridis"
    batch: int = 0
    layout: str = "auto"
    aspect: float = 1.0

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise UsageError(f"unknown normalization {self.norm!r}; choose from {', '.join(NORMS)}")
        if self.value_range is not None:
            lo, hi = (float(v) for v in self.value_range)
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise UsageError(f"value range must be finite with lo < hi, got {lo} {hi}")
            object.__setattr__(self, "value_range", (lo, hi))
        elif self.norm == "fixed":
            raise UsageError("normalization 'fixed' needs a value range (lo, hi)")
        plo, phi = (float(v) for v in self.percentiles)
        if not 0 <= plo < phi <= 100:
            raise UsageError(f"percentiles must satisfy 0 <= low < high <= 100, got {plo} {phi}")
        object.__setattr__(self, "percentiles", (plo, phi))
        if not 0 <= self.pad <= MAX_PAD:
            raise UsageError(f"padding must be 0 to {MAX_PAD} pixels, got {self.pad}")
        if self.order not in ORDERS:
            raise UsageError(f"tile order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if not 1 <= self.max_size <= MAX_GRID_SIZE:
            raise UsageError(f"maximum grid size must be 1 to {MAX_GRID_SIZE} pixels, got {self.max_size}")
        if self.cmap not in COLORMAPS:
            raise UsageError(f"unknown colormap {self.cmap!r}; choose from {', '.join(COLORMAPS)}")
        if self.batch < 0:
            raise UsageError(f"batch index must be >= 0, got {self.batch}")
        if self.layout not in MAP_LAYOUTS:
            raise UsageError(f"map layout must be one of {', '.join(MAP_LAYOUTS)}, got {self.layout!r}")
        if not (math.isfinite(self.aspect) and self.aspect > 0):
            raise UsageError(f"grid aspect must be positive, got {self.aspect}")

    def replace(self, **changes: object) -> GridOptions:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def builder(self) -> GridBuilder:
        """A :class:`GridBuilder` for these options (keep one per display: it reuses its buffers)."""
        return GridBuilder(options=self)

    def to_dict(self) -> dict[str, object]:
        """JSON form (snapshots, stats)."""
        data = dataclasses.asdict(self)
        data["value_range"] = list(self.value_range) if self.value_range is not None else None
        data["percentiles"] = list(self.percentiles)
        return data


class GridBuilder:
    """Builds normalized uint8 grids, reusing buffers between calls.

    Give either ``options`` (a :class:`GridOptions`) or the same fields as
    keyword arguments (``GridBuilder("layer", pad=0)``); see
    :class:`GridOptions` for their meaning.
    """

    def __init__(self, norm: str = "map", *, options: GridOptions | None = None, **fields: object) -> None:
        if options is None:
            options = GridOptions(norm, **fields)  # type: ignore[arg-type]
        elif fields or norm != "map":
            raise TypeError("give GridBuilder either options or keyword fields, not both")
        self.options = options
        self.norm = options.norm
        self.percentiles = options.percentiles
        self.value_range = options.value_range
        self.pad = options.pad
        self.order = options.order
        self.max_size = options.max_size
        self.aspect = options.aspect
        self._image: np.ndarray | None = None
        self._work: np.ndarray | None = None
        self._layout_key: tuple[int, ...] | None = None

    # -------------------------------------------------------------- ranges
    def _ranges(self, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Per-channel (lo, hi) float32 arrays, and whether all values are finite."""
        c = maps.shape[0]
        lo = maps.min(axis=(1, 2))
        hi = maps.max(axis=(1, 2))
        finite = bool(np.isfinite(lo).all() and np.isfinite(hi).all())
        empty = None
        if not finite:
            ok = np.isfinite(maps)
            lo = np.where(ok, maps, np.inf).min(axis=(1, 2))
            hi = np.where(ok, maps, -np.inf).max(axis=(1, 2))
            empty = ~np.isfinite(lo)  # maps with no finite value at all
            lo[empty] = 0.0
            hi[empty] = 0.0
        norm = self.norm
        if norm == "map" and maps.shape[1] * maps.shape[2] == 1:
            norm = "layer"
        if norm == "map":
            return lo, hi, finite
        if norm == "layer":
            if empty is not None and not empty.all():
                lo_all, hi_all = lo[~empty].min(), hi[~empty].max()
            else:
                lo_all, hi_all = lo.min(), hi.max()
            return np.full(c, lo_all, np.float32), np.full(c, hi_all, np.float32), finite
        if norm == "fixed":
            assert self.value_range is not None
            vlo, vhi = self.value_range
            return np.full(c, vlo, np.float32), np.full(c, vhi, np.float32), finite
        flat = maps.reshape(-1)
        if flat.size > _ROBUST_SAMPLE:
            flat = flat[:: flat.size // _ROBUST_SAMPLE]
        if not finite:
            flat = flat[np.isfinite(flat)]
        if flat.size == 0:
            plo = phi = 0.0
        else:
            plo, phi = np.percentile(flat, self.percentiles)
        return np.full(c, plo, np.float32), np.full(c, phi, np.float32), finite

    # -------------------------------------------------------------- layout
    def _plan(self, maps: np.ndarray, given: Sequence[int] | None = None) -> GridLayout:
        c, h, w = maps.shape
        step = 1
        while True:
            mh, mw = max(1, h // step), max(1, w // step)
            rows, cols = grid_shape(c, mh, mw, self.pad, self.aspect)
            if max(rows * (mh + self.pad), cols * (mw + self.pad)) <= self.max_size or (mh == 1 and mw == 1):
                break
            step += 1
        order: tuple[int, ...]
        if self.order == "mean":
            means = np.nan_to_num(maps.mean(axis=(1, 2)), nan=-np.inf)
            order = tuple(int(i) for i in np.argsort(-means, kind="stable"))
        elif self.order == "running" and given is not None and len(given) == c:
            order = tuple(given)
        else:
            order = tuple(range(c))
        return GridLayout(c, mh, mw, rows, cols, self.pad, step, order)

    def _buffers(self, layout: GridLayout) -> tuple[np.ndarray, np.ndarray]:
        shape = layout.shape
        key = (layout.count, layout.map_h, layout.map_w, layout.rows, layout.cols, layout.pad)
        if self._image is None or self._image.shape != shape:
            self._image = np.zeros(shape, np.uint8)
        elif key != self._layout_key:
            self._image.fill(0)  # padding and empty tiles are never written, only cleared here
        self._layout_key = key
        work_shape = (layout.count, layout.map_h, layout.map_w)
        if self._work is None or self._work.shape != work_shape:
            self._work = np.empty(work_shape, np.float32)
        return self._image, self._work

    # --------------------------------------------------------------- build
    def build(
        self, blob: np.ndarray, batch: int | None = None, layout: str | None = None, order: Sequence[int] | None = None
    ) -> Grid:
        """Normalize and tile one blob (see :func:`blob_to_maps`); batch and layout default to the options'.

        ``order``: with the ``running`` order, the channel to show at each
        tile position, a permutation of ``range(C)`` (ignored otherwise, and
        when its length is not C: then tiles are in channel order).
        """
        options = self.options
        maps = blob_to_maps(blob, options.batch if batch is None else batch, layout or options.layout)
        return self.build_maps(maps, order)

    def build_maps(self, maps: np.ndarray, order: Sequence[int] | None = None) -> Grid:
        """Normalize and tile (C, H, W) float32 maps into a uint8 grid (``order``: as :meth:`build`)."""
        plan = self._plan(maps, order)
        if plan.step > 1:
            maps = _downscale(maps, plan.step)
        if plan.order != tuple(range(plan.count)):
            maps = maps[list(plan.order)]
        lo, hi, finite = self._ranges(maps)
        image, work = self._buffers(plan)
        span = hi.astype(np.float64) - lo
        scale = np.divide(255.0, span, out=np.zeros_like(span), where=span > 0).astype(np.float32)
        # (v - lo) * scale + 0.5, subtracting first: v * scale + offset
        # cancels badly for a small range far from zero (e.g. 3e5 +- 1).
        with np.errstate(invalid="ignore", over="ignore"):
            np.subtract(maps, lo[:, None, None], out=work)
            np.multiply(work, scale[:, None, None], out=work)
        np.add(work, 0.5, out=work)
        if not finite:
            np.copyto(work, 0.0, where=np.isnan(maps) | np.isneginf(maps))
            np.copyto(work, 255.0, where=np.isposinf(maps))
        if not finite or self.norm in ("robust", "fixed"):
            np.clip(work, 0.0, 255.0, out=work)
        self._tile(work, image, plan)
        if plan.order != tuple(range(plan.count)):
            inverse = np.argsort(plan.order)
            lo, hi = lo[inverse], hi[inverse]
        return Grid(image, plan, lo, hi, finite)

    @staticmethod
    def _tile(work: np.ndarray, image: np.ndarray, plan: GridLayout) -> None:
        """Copy (C, h, w) float values into their tiles, casting to uint8 on the way."""
        c, h, w = work.shape
        cells = image.reshape(plan.rows, h + plan.pad, plan.cols, w + plan.pad)
        full, rest = divmod(c, plan.cols)
        if full:
            src = work[: full * plan.cols].reshape(full, plan.cols, h, w).transpose(0, 2, 1, 3)
            np.copyto(cells[:full, :h, :, :w], src, casting="unsafe")
        if rest:
            src = work[full * plan.cols :].transpose(1, 0, 2)
            np.copyto(cells[full, :h, :rest, :w], src, casting="unsafe")


def colorize(image: np.ndarray, cmap: str = "viridis", layout: GridLayout | None = None) -> np.ndarray:
    """Apply a colormap to a uint8 (H, W) image -> RGB uint8 (H, W, 3).

    With ``layout``, padding and empty tiles are painted :data:`PAD_RGB`.
    """
    rgb = cv2.applyColorMap(image, _lut3(cmap))
    if layout is not None and layout.pad >= 0:
        h, w = layout.map_h, layout.map_w
        cells = rgb.reshape(layout.rows, h + layout.pad, layout.cols, w + layout.pad, 3)
        cells[:, h:] = PAD_RGB
        cells[:, :, :, w:] = PAD_RGB
        full, rest = divmod(layout.count, layout.cols)
        if full < layout.rows:
            cells[full, :, rest:] = PAD_RGB
            cells[full + 1 :] = PAD_RGB
    return rgb
