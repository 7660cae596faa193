"""Receptive fields: which input pixels a cell of a layer's map sees, and which frame box that is.

* :class:`Field`: the receptive field of every cell of one tensor, as the
  classic (size, jump, start) triple per axis, composed from the input along
  every path through the ONNX graph (the union over branches).
* :func:`fields`: read those from an ONNX graph.
* :class:`BoxMap`: turns a cell (y, x) of a layer's (H, W) map into a box in
  frame pixels, through the network's input size and the frame region its
  preprocessing shows (the crop).
* :func:`box_maps`: the :class:`BoxMap` of each tapped layer of a loaded
  model.

Coordinates: input pixel ``i`` spans ``[i, i + 1)``; a box ``(x0, y0, x1,
y1)`` covers pixels ``x0 <= x < x1`` and ``y0 <= y < y1``.

onnx and numpy only; a :class:`~live.model.Model` is only read.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

_EPS = 1e-6  # float noise allowed when rounding a box outwards to whole pixels


@dataclasses.dataclass(frozen=True)
class Field:
    """The receptive field of the cells of one map, in network-input pixels.

    Attributes:
        size: (h, w) extent in input pixels (the union over branches).
        stride: (h, w) input pixels between neighbouring cells (the "jump"); fractional after an upsampling.
        start: (y, x) centre of cell (0, 0) in input pixel coordinates (pixel ``i``'s centre is ``i``).
        whole: every cell sees the whole input (after a global pool, a flatten, a fully connected layer, a
            squeeze-and-excitation gate); ``box`` is then unbounded and clipping makes it the input.
    """

    size: tuple[float, float]
    stride: tuple[float, float]
    start: tuple[float, float]
    whole: bool = False

    def box(self, y: int, x: int) -> tuple[float, float, float, float]:
        """The field of cell (y, x) as ``(x0, y0, x1, y1)`` in input pixels, unclipped (may lie partly outside)."""
        if self.whole:
            return (-math.inf, -math.inf, math.inf, math.inf)
        cy = self.start[0] + y * self.stride[0]
        cx = self.start[1] + x * self.stride[1]
        y0 = cy - (self.size[0] - 1) / 2
        x0 = cx - (self.size[1] - 1) / 2
        return (x0, y0, x0 + self.size[1], y0 + self.size[0])


@dataclasses.dataclass(frozen=True)
class BoxMap:
    """How cell (y, x) of a layer's (H, W) map becomes a box in frame pixels.

    Attributes:
        field: the layer's receptive field; None: proportional cells (the input split into H x W cells).
        input_size: network input (width, height).
        crop: (x, y, w, h) of the frame region the input shows (``model.preprocess.crop_rect``); it may reach
            outside the frame (letterbox).
        frame_size: (width, height) of the frame.
    """

    field: Field | None
    input_size: tuple[int, int]
    crop: tuple[int, int, int, int]
    frame_size: tuple[int, int]

    @classmethod
    def proportional(cls, frame_size: tuple[int, int]) -> BoxMap:
        """Proportional cells over the whole frame: the frame split into H x W cells."""
        w, h = frame_size
        return cls(None, (max(1, w), max(1, h)), (0, 0, max(1, w), max(1, h)), (w, h))

    def box(self, y: int, x: int, map_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """The frame box ``(x0, y0, x1, y1)`` of cell (y, x), clipped to the frame (at least one pixel there)."""
        out = self.boxes(np.array([y]), np.array([x]), map_hw)[0]
        return (int(out[0]), int(out[1]), int(out[2]), int(out[3]))

    def boxes(self, ys: np.ndarray, xs: np.ndarray, map_hw: tuple[int, int]) -> np.ndarray:
        """:meth:`box` for many cells at once.

        Args:
            ys, xs: int arrays (n,) of cell rows and columns.
            map_hw: the map's (H, W).
        Returns:
            int64 (n, 4): ``(x0, y0, x1, y1)`` per cell, in frame pixels, clipped to the frame.
        """
        ys = np.asarray(ys, np.float64)
        xs = np.asarray(xs, np.float64)
        iw, ih = self.input_size
        mh, mw = max(1, map_hw[0]), max(1, map_hw[1])
        field = self.field
        if field is None:
            ix0, ix1 = xs * iw / mw, (xs + 1) * iw / mw
            iy0, iy1 = ys * ih / mh, (ys + 1) * ih / mh
        elif field.whole:
            ix0, ix1 = np.zeros_like(xs), np.full_like(xs, iw)
            iy0, iy1 = np.zeros_like(ys), np.full_like(ys, ih)
        else:
            cy = field.start[0] + ys * field.stride[0]
            cx = field.start[1] + xs * field.stride[1]
            iy0 = cy - (field.size[0] - 1) / 2
            ix0 = cx - (field.size[1] - 1) / 2
            iy1, ix1 = iy0 + field.size[0], ix0 + field.size[1]
        ix0, ix1 = np.clip(ix0, 0, iw), np.clip(ix1, 0, iw)
        iy0, iy1 = np.clip(iy0, 0, ih), np.clip(iy1, 0, ih)
        cx0, cy0, cw, ch = self.crop
        fw, fh = self.frame_size
        x0 = _clip_floor(cx0 + ix0 * cw / iw, fw)
        x1 = _clip_ceil(cx0 + ix1 * cw / iw, fw)
        y0 = _clip_floor(cy0 + iy0 * ch / ih, fh)
        y1 = _clip_ceil(cy0 + iy1 * ch / ih, fh)
        x0 = np.minimum(x0, np.maximum(fw - 1, 0))  # at least one pixel of the frame, where it has any
        y0 = np.minimum(y0, np.maximum(fh - 1, 0))
        x1 = np.maximum(x1, np.minimum(x0 + 1, fw))
        y1 = np.maximum(y1, np.minimum(y0 + 1, fh))
        return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)


def _clip_floor(v: np.ndarray, hi: int) -> np.ndarray:
    return np.clip(np.floor(v + _EPS), 0, hi).astype(np.int64)


def _clip_ceil(v: np.ndarray, hi: int) -> np.ndarray:
    return np.clip(np.ceil(v - _EPS), 0, hi).astype(np.int64)


def _pairs(values: Sequence[float]) -> tuple[float, float]:
    return (values[0], values[1])
