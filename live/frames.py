"""The values that travel between threads: a captured :class:`Frame`, the :class:`View` asked for, a :class:`Result`.

Low in the rooms so that sources, the pipeline, outputs and the window all
name the same types. Each is immutable once published: the thread that made
it never writes to it again, so it can cross threads without a copy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from live.cam import CamOptions, CamResult
from live.maps import GridLayout, GridOptions
from live.preprocess import Preprocess


@dataclasses.dataclass(frozen=True, eq=False)
class Frame:
    """One frame from a source.

    Attributes:
        image: (H, W, 3) uint8 BGR, C-contiguous, owned: the source never
            writes to it or hands it out again.
        index: 0-based count of frames this source object has delivered; it
            keeps increasing across loops of a file.
        t_capture: ``time.perf_counter()`` when the frame was read (for
            paced sources, after the pacing wait).
        pos_ms: position in the file or stream in milliseconds, when known.
        blob: the network's input made from ``image`` by the capture thread
            (float32, the model's input shape), or None; ``preprocess`` is
            what made it. The forward thread uses it when its model still
            preprocesses the same way, so that preprocessing overlaps the
            previous frame's forward pass.
    """

    image: np.ndarray
    index: int
    t_capture: float
    pos_ms: float | None
    blob: np.ndarray | None = None
    preprocess: Preprocess | None = None


@dataclasses.dataclass(frozen=True)
class View:
    """What the forward thread computes for display (switchable while running).

    Attributes:
        layer: the tapped layer's name (as :meth:`live.model.Model.layer` accepts it).
        grid: how its blob becomes a picture.
        cam: the class activation map to compute with it, or None (off).
    """

    layer: str
    grid: GridOptions = dataclasses.field(default_factory=GridOptions)
    cam: CamOptions | None = None
    pins: tuple[str, ...] = ()

    def replace(self, **changes: Any) -> View:
        """A copy with ``layer``, ``cam`` (a :class:`CamOptions` or None), ``pins`` and/or :class:`GridOptions` fields.

        (``norm="layer"``, ``pad=0``, ``cam=CamOptions(cls="tabby")``, ``pins=("conv1", "relu2")``, ...)
        """
        layer = changes.pop("layer", self.layer)
        grid = changes.pop("grid", self.grid)
        cam = changes.pop("cam", self.cam)
        pins = tuple(changes.pop("pins", self.pins))
        return View(layer, grid.replace(**changes) if changes else grid, cam, pins)

    @property
    def shown_layers(self) -> tuple[str, ...]:
        """The layers whose grids are shown side by side: the pins, led by the shown layer when it is not pinned.

        One layer (the shown one) when nothing is pinned.
        """
        if not self.pins:
            return (self.layer,)
        return self.pins if self.layer in self.pins else (self.layer, *self.pins)


@dataclasses.dataclass(frozen=True, eq=False)
class PinnedGrid:
    """One pinned layer's grid, tapped in the same forward pass as the shown layer.

    Attributes:
        layer: the layer's name.
        blob: its raw output (float32, any rank, e.g. (N, C, H, W)), owned.
        grid: uint8 (Hg, Wg) index image, normalized on its own (its own lo/hi).
        layout: where each map sits.
        lo, hi: (C,) float32, the values mapped to 0 and 255.
    """

    layer: str
    blob: np.ndarray
    grid: np.ndarray
    layout: GridLayout
    lo: np.ndarray
    hi: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Difference:
    """The shown layer on a second configuration, compared with this one (the window's compare mode).

    Attributes:
        label: the second configuration as it ran (``onnxruntime/cpu``).
        layer: the compared layer.
        diff: float32 |a - b|, the layer's shape (e.g. (N, C, H, W)); None when they cannot be compared.
        grid: uint8 (Hg, Wg) index image of ``diff`` (one range for the whole layer), or None.
        layout: where each map sits, or None.
        lo, hi: (C,) float32, the values mapped to 0 and 255, or None.
        max_abs: the largest |a - b|, or None.
        max_rel: ``max_abs`` / the largest |value| of both, or None.
        error: why there is no difference map (shapes differ, the second side failed), or None.
    """

    label: str
    layer: str
    diff: np.ndarray | None = None
    grid: np.ndarray | None = None
    layout: GridLayout | None = None
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class Result:
    """One processed frame, ready to show. Arrays are owned by the result.

    Attributes:
        seq: result number (1, 2, ...).
        frame: the captured frame.
        layer: the tapped layer's name; ``blob`` its raw output (float32,
            any rank) and ``outputs`` the network's final outputs.
        grid: uint8 (Hg, Wg) index image (LUT-ready); ``layout`` where each
            map sits; ``lo``/``hi`` (C,) float32, the values mapped to 0 and 255.
        seen: what the network sees, BGR uint8 (h, w, 3).
        crop: (x, y, w, h) of the frame region the blob shows.
        view: the view it was computed for (its ``grid.cmap`` colours it).
        forward_ms: preprocess + forward + grid time.
        t_done: ``time.perf_counter()`` when it was published.
        engine, backend, target: what really ran.
        top: the best classes ``[{"label", "score", "index"}]`` when the
            model has labels, else empty.
        cam: the class activation map, when the view asks for one and it
            could be made (its ``heat`` smoothed over time as the view says).
        cam_error: why the view's class activation map could not be made, or None.
        pinned: one :class:`PinnedGrid` per layer of ``view.shown_layers`` when
            layers are pinned (the shown layer's entry shares ``blob`` and
            ``grid`` with the result), else empty.
        difference: the compare mode's difference map of the shown layer, or None (off).
    """

    seq: int
    frame: Frame
    layer: str
    blob: np.ndarray
    outputs: dict[str, np.ndarray]
    grid: np.ndarray
    layout: GridLayout
    lo: np.ndarray
    hi: np.ndarray
    seen: np.ndarray
    crop: tuple[int, int, int, int]
    view: View
    forward_ms: float
    t_done: float
    engine: str
    backend: str
    target: str
    top: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    cam: CamResult | None = None
    cam_error: str | None = None
    pinned: tuple[PinnedGrid, ...] = ()
    difference: Difference | None = None
