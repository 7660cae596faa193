"""The live window (pyqtgraph on PyQt5 or PyQt6): the only module that imports Qt.

Results cross into the GUI thread in exactly one place: :meth:`LiveWindow._pull`,
run when the forward thread's queued "published" signal arrives (and by a QTimer),
takes the newest :class:`live.pipeline.Result`; a few times a
second it also reads the units thread's newest :class:`live.unitfeed.UnitsState`
and, with the timing panel on, the forward thread's newest
:class:`live.pipeline.Timing` (immutable values, replaced whole). No widget is touched from a worker thread and nothing
here waits on the workers.
"""

from __future__ import annotations

import logging
import math
import re
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from live import compare, explain, keys
from live.cam import METHODS, CamOptions, overlay, resolve_class
from live.engines import BACKENDS, TARGETS
from live.errors import LiveError
from live.frames import Difference, PinnedGrid, Result
from live.manifest import Analysis, Entry
from live.maps import COLORMAPS, NORMS, ORDERS, GridLayout, blob_to_maps, colorize, colormap_lut
from live.output import Recorder, write_snapshot
from live.pipeline import MAX_PINS, Phase, Pipeline, Timing
from live.unitfeed import UnitsState
from live.units import Record, UnitOptions

log = logging.getLogger("live.window")


_TOP1 = "top-1 of each frame"
"""The class box's first entry: CAM for each frame's best class."""


def _class_text(cls: int | str, labels: list[str]) -> str:
    """How the class box shows a class: ``"281: tabby, tabby cat"`` for an index with a label, else as given."""
    if isinstance(cls, int) and 0 <= cls < len(labels):
        return f"{cls}: {labels[cls]}"
    return str(cls)


def _key_code(key: int | QtCore.Qt.Key) -> int:
    """A key as an int: PyQt6's ``QKeyEvent.key()`` is an int, its ``Qt.Key`` an IntEnum; PyQt5's both ints."""
    return int(getattr(key, "value", key))


def _qt_key(name: str) -> int:
    """A :mod:`live.keys` key name (``"PageUp"``) as the int of ``QtCore.Qt.Key.Key_PageUp``."""
    return _key_code(getattr(QtCore.Qt.Key, "Key_" + name))


def _rgb(image_bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 (H, W, 3) -> a new RGB array (cv2 is ~10x faster than a numpy stride copy)."""
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)


# What the window shows every frame is handed to pyqtgraph as RGBA uint8, with no levels and no lookup table:
# pyqtgraph then wraps the array in a 32-bit QImage as it is, which Qt draws 5x faster than the 8-bit indexed
# image a LUT makes, or 3x faster than 24-bit RGB (a 684 px grid drawn at 600 px: 0.20 ms against 1.08 and 0.64).


def _rgba(image_bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 (H, W, 3) -> a new RGBA uint8 (H, W, 4) array, opaque."""
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGBA)


def _colormapped(indices: np.ndarray, cmap: str) -> np.ndarray:
    """uint8 (H, W) colour indices (a grid, a map) through the colormap -> a new RGBA uint8 (H, W, 4) array."""
    return cv2.cvtColor(colorize(indices, cmap), cv2.COLOR_RGB2RGBA)


def _set_rgba(item: pg.ImageItem, rgba: np.ndarray) -> None:
    """Show an RGBA uint8 array as it is (no levels, no lookup table)."""
    item.setImage(rgba, autoLevels=False, levels=None, lut=None)


def _ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten at or above ``value`` (a plot's round top); 1.0 for 0 or less."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1.0, 2.0, 5.0, 10.0) if step * power >= value * (1 - 1e-9))


def _shrink(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` (uint8 (H, W, 3)) scaled by ``factor`` (<= 1) for the screen, without cv2's slow general area path.

    Halves with area averaging (cv2's fast path for exact halves: 0.07 ms for
    640x480 on the 2-core machine) while a half is still at least the size
    asked for, then scales the rest bilinearly (a factor above one half);
    a general ``INTER_AREA`` takes 0.9 ms. Unchanged when ``factor`` > 0.9.
    """
    if factor > 0.9:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    while image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]:
        h, w = image.shape[:2]
        image = cv2.resize(image[: h - h % 2, : w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    if image.shape[1] != size[0] or image.shape[0] != size[1]:
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return image


def _image_view(layout: pg.GraphicsLayout, row: int, col: int) -> tuple[pg.ViewBox, pg.ImageItem]:
    """An aspect-locked, y-down view in ``layout`` at (row, col), holding one image item."""
    view = layout.addViewBox(row=row, col=col, lockAspect=True, invertY=True, enableMenu=False)
    item = pg.ImageItem()
    view.addItem(item)
    return view, item


class _FreeLabel(pg.LabelItem):
    """A label that never widens its layout column: a text longer than the column is clipped at its edge."""

    def __init__(self, text: str = "", **args: Any) -> None:
        super().__init__(text, **args)
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)

    def updateMin(self) -> None:  # noqa: N802 - pyqtgraph's name
        super().updateMin()
        height = self.itemRect().height()
        self.setMinimumWidth(0)
        self._sizeHint[QtCore.Qt.SizeHint.MinimumSize] = (0, height)
        self._sizeHint[QtCore.Qt.SizeHint.PreferredSize] = (0, height)
        self.updateGeometry()


def _label(layout: pg.GraphicsLayout, row: int, col: int, size: str = "8pt") -> _FreeLabel:
    """A :class:`_FreeLabel` in ``layout`` at (row, col)."""
    label = _FreeLabel("", size=size, justify="left")
    layout.addItem(label, row=row, col=col)
    return label


def _outline(view: pg.ViewBox, color: tuple[int, int, int]) -> QtWidgets.QGraphicsRectItem:
    """A rectangle outline in ``view`` (2 px wide whatever the zoom), placed later with ``setRect``."""
    box = QtWidgets.QGraphicsRectItem()
    box.setPen(pg.mkPen(color, width=2, cosmetic=True))
    view.addItem(box)
    return box


class _Canvas(pg.GraphicsLayoutWidget):
    """The grid's canvas; says when it has painted (``on_paint``): a result counts as shown once its pixels are."""

    def __init__(self) -> None:
        super().__init__()
        self.on_paint: Any = None

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        if self.on_paint is not None:
            self.on_paint()


class _Wake(QtCore.QObject):
    """Carries the forward thread's "a result is published" into the GUI thread (a queued signal)."""

    published = QtCore.Signal()


class _GridPanel:
    """One more grid in the canvas beside the shown layer's: a pinned layer, or compare mode's difference map.

    Title above, the grid (uint8 index image through the colormap) and its
    own colorbar (the values its 0..255 stand for) beside it.
    """

    def __init__(self, canvas: pg.GraphicsLayoutWidget, colormap: pg.ColorMap) -> None:
        self.canvas = canvas
        self.title = _FreeLabel("", size="8pt", justify="left")
        self.view = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.item = pg.ImageItem()
        self.view.addItem(self.item)
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=colormap, interactive=False, width=14)
        self.layer: str | None = None  # what it shows: the name and shape it was last auto-ranged for
        self._shape: tuple[int, ...] | None = None

    def place(self, row: int, col: int) -> None:
        """Put the panel's title at (row, col) and its grid and colorbar on the row below."""
        self.canvas.addItem(self.title, row=row, col=col, colspan=2)
        self.canvas.addItem(self.view, row=row + 1, col=col)
        self.canvas.addItem(self.colorbar, row=row + 1, col=col + 1)

    def remove(self) -> None:
        """Take the panel out of the canvas."""
        for item in (self.title, self.view, self.colorbar):
            self.canvas.removeItem(item)

    def show(self, grid: np.ndarray, cmap: str) -> None:
        """Show ``grid`` (uint8 (Hg, Wg)) in ``cmap``; the window sets the title and the colorbar's range (a few times
        a second)."""
        _set_rgba(self.item, _colormapped(grid, cmap))
        if grid.shape != self._shape:
            self._shape = grid.shape
            self.view.autoRange(padding=0.01)

    def clear(self) -> None:
        """No grid: an empty image (the window says why in the title)."""
        self.item.clear()
        self._shape = None


def _levels(lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """The layer-wide range of per-channel ``lo``/``hi`` ((C,) float32) for a colorbar; never empty."""
    finite_lo, finite_hi = lo[np.isfinite(lo)], hi[np.isfinite(hi)]
    low = float(finite_lo.min()) if finite_lo.size else 0.0
    high = float(finite_hi.max()) if finite_hi.size else low
    return low, high if high > low else low + 1e-6


MAX_DISPLAY_FPS = 30.0
"""Results shown a second, at most. A network faster than this is not held back: the frames in between
are computed (and counted) but not drawn, and their grids never made."""
READOUT_S = 0.25
"""Texts and colorbar ranges change at most this often (4 a second): a new one re-lays out or repaints a panel."""
PLOT_S = 10.0
"""The stats plot shows the last this many seconds."""
PULL_MS = 50
"""The window's timer: the stats and plots (4 a second), and any result a wake-up missed."""
TIMING_EVERY_S = 5.0
"""With the timing panel on, the forward thread profiles the network again this often."""
TIMING_TOP = 10
"""Layers the timing panel's bar chart shows (the slowest)."""
COMPARE_OFF = "off"
"""The compare box's first entry."""

TOP_SHOWN = 9
"""Records the top-k panel shows (3 x 3)."""
TOP_COLS = 3
WATCH_MS = 80
"""After selecting another unit, look for the state carrying its top-k this soon (not at the next 4 Hz tick)."""
UNITS_PLOT_S = 1.0
"""The units plot (mean per unit) is redrawn at most this often: the running statistics change slowly."""
TOP_PAD = 4
"""Mosaic pixels between two thumbnails."""
DEAD_AFTER_FRAMES = 25
"""Frames of the shown layer reduced before units that never fired are marked dead (about 5 s of video)."""


def _mosaic(thumbs: list[np.ndarray | None], cell: int) -> np.ndarray:
    """Up to 9 BGR uint8 thumbnails -> one RGB uint8 (3*cell + 2*pad, same, 3) mosaic, best first, row by row.

    A thumbnail that fits a cell is drawn 1:1, centred; a larger one is
    scaled down to fit (aspect kept); empty cells are dark grey.
    """
    side = TOP_COLS * cell + (TOP_COLS - 1) * TOP_PAD
    out = np.full((side, side, 3), 24, np.uint8)
    for i in range(TOP_SHOWN):
        row, col = divmod(i, TOP_COLS)
        y0, x0 = row * (cell + TOP_PAD), col * (cell + TOP_PAD)
        thumb = thumbs[i] if i < len(thumbs) else None
        if thumb is None or thumb.ndim != 3 or not thumb.size:
            out[y0 : y0 + cell, x0 : x0 + cell] = 48
            continue
        h, w = thumb.shape[:2]
        if max(h, w) > cell:
            scale = cell / max(h, w)
            w, h = max(1, round(w * scale)), max(1, round(h * scale))
            thumb = cv2.resize(thumb, (w, h), interpolation=cv2.INTER_AREA)
        y, x = y0 + (cell - h) // 2, x0 + (cell - w) // 2
        out[y : y + h, x : x + w] = _rgb(np.ascontiguousarray(thumb[:, :, :3]))
    return out


def _caption(record: Record | Entry) -> str:
    """A thumbnail's caption: its score and its time in the source (and the frame)."""
    return f"{record.score:.3g}  {record.time_s:.1f} s"


def _unit_text(state: UnitsState, unit: int) -> str:
    """One unit's figures, as the units plot's hover line shows them."""
    dead = " (dead)" if state.dead[unit] else ""
    return (
        f"unit {unit}{dead}: mean {state.mean[unit] + 0.0:.3g}, sparsity {state.sparsity[unit]:.0%}, "
        f"max {state.max[unit] + 0.0:.3g}"  # + 0.0: a -0.0 (a Relu of a negative) shows as 0
    )


class LiveWindow(QtWidgets.QMainWindow):
    """Grid, input, what the network sees, controls and stats for one :class:`Pipeline`.

    Args:
        pipeline: started by the window (``start()``) and closed with it.
        snapshot_dir: where ``s`` writes snapshots.
        recorder: records every shown grid when given.
        frames: close after this many shown results (with ``screenshot``: save it first).
        screenshot: PNG path of the whole window, written after ``frames`` results.
        units: the options of the shown layer's units (top-k beside the
            enlarged map, statistics, dead units, the ``running`` tile
            order), reduced in the pipeline's ``live-units`` thread; None: off.
        analysis: an analysis (``live run --units DIR``): its top-k for the
            selected unit stands in the top-k panel instead of the live one.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        snapshot_dir: Path = Path("live-snapshots"),
        recorder: Recorder | None = None,
        frames: int | None = None,
        screenshot: Path | None = None,
        max_fps: float = MAX_DISPLAY_FPS,
        units: UnitOptions | None = UnitOptions(),  # noqa: B008 - a frozen value
        analysis: Analysis | None = None,
    ) -> None:
        super().__init__()
        pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
        self.pipeline = pipeline
        self.cmap = pipeline.view.grid.cmap
        self.snapshot_dir = snapshot_dir
        self.recorder = recorder
        self.frames_limit = frames
        self.screenshot_path = screenshot
        self.shown = 0
        self.last_seq = 0
        self.result: Result | None = None
        self.selected = 0
        self.snapshots: list[Path] = []
        self.messages: list[str] = []
        self._last_plot = 0.0
        self._unpainted: float | None = None  # the capture time of the result shown but not yet painted
        self._closing = False
        self._readouts: dict[int, tuple[Any, float]] = {}  # per label or colorbar: (what it shows, since when)
        self._pending: dict[int, tuple[Any, Any, Any]] = {}  # (target, value, how to apply it) held back
        self.analysis = analysis
        self.units_options = units
        self.top_shown: tuple[Record | Entry, ...] = ()  # what the top-k panel shows, best first
        self.units_state: UnitsState | None = None  # the state the units panels show (None: none for this layer)
        self.units_saved: list[Path] = []
        self._saves: list[tuple[Path, Any]] = []  # (folder, future) of units states being written
        self._reset_seq = -1  # states up to this one were made before the last reset: shown as empty
        self._top_key: tuple[Any, ...] | None = None
        self._dead_layout: GridLayout | None = None
        self.dead_after = DEAD_AFTER_FRAMES  # frames reduced before a unit that never fired is marked dead
        self._dead_key: tuple[Any, ...] | None = None
        self._analysis_said: str | None = None
        self._watching = 0  # the unit the units feed was asked to carry the top-k of
        self._units_plotted = 0.0  # when the units plot was last redrawn, and with which state
        self._plotted: UnitsState | None = None
        self.panels: list[_GridPanel] = []  # the grids beside the shown layer's: other pinned layers, then |a-b|
        self.timing_shown: Timing | None = None  # the profile the timing panel shows
        self._timing_asked = 0.0  # when the last profile was asked for
        if units is not None:
            pipeline.enable_units(units)
        self.setWindowTitle(f"live - {pipeline.model.path.name}")
        self.resize(1280, 820)
        self._key_actions = {_qt_key(key): b.action for b in keys.BINDINGS for key in b.keys}
        self._text_actions = keys.text_actions()
        self._leave_filter = {_qt_key(key) for key in keys.LEAVE_FILTER}
        self._leave_source = {_qt_key(key) for key in keys.LEAVE_SOURCE}
        self._build()
        self._fill_layers()
        self._mark_pins()
        # A result is shown when the forward thread says it is published (_Wake), at most max_fps a second: the
        # pipeline makes a result's grid only once the window wants one (Slot.ready_from). The timer updates the
        # stats and picks up what a wake-up could miss.
        self.min_interval = 1.0 / max_fps
        self._wake = _Wake(self)
        self._wake.published.connect(self._pull)
        pipeline.on_publish = self._wake.published.emit
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(PULL_MS)
        self.timer.timeout.connect(self._pull)
        QtWidgets.QApplication.instance().installEventFilter(self)
        pipeline.start()
        self.timer.start()

    # ------------------------------------------------------------- layout
    def _build(self) -> None:
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.setCentralWidget(splitter)

        self.canvas = _Canvas()
        self.canvas.on_paint = self._painted
        self.canvas.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.grid_title = _FreeLabel("")  # a long title never widens its column (pinned grids beside it)
        self.canvas.addItem(self.grid_title, row=0, col=0, colspan=2)
        self.grid_view, self.grid_item = _image_view(self.canvas, 1, 0)
        self.tile_box = _outline(self.grid_view, (255, 80, 80))
        self.grid_item.mouseClickEvent = self._grid_clicked  # type: ignore[method-assign]
        self.empty_box = QtWidgets.QGraphicsRectItem()  # covers the unused tiles of the last row
        self.empty_box.setPen(pg.mkPen(None))
        self.empty_box.setBrush(pg.mkBrush(40, 40, 40))
        self.grid_view.addItem(self.empty_box)
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=self._colormap(), interactive=False, width=14)
        self.canvas.addItem(self.colorbar, row=1, col=1)
        # Below the grid, a view of its own (so that a new grid never repaints it, nor it the grid): the
        # enlarged map, the selected unit's top-k beside it, and the layer's units.
        self.lower = pg.GraphicsLayoutWidget()
        self.lower.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.tile_title = _label(self.lower.ci, 0, 0)
        self.tile_view, self.tile_item = _image_view(self.lower.ci, 1, 0)
        self._build_top_panel(self.lower.ci)
        left = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.canvas, 5)
        column.addWidget(self.lower, 2)
        self.left_column = column  # the timing panel goes under the grids (built with the side panel)
        splitter.addWidget(left)

        side = QtWidgets.QWidget()
        panel = QtWidgets.QVBoxLayout(side)
        splitter.addWidget(side)
        splitter.setSizes([820, 460])

        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("filter layers (type to search)")
        self.filter.textChanged.connect(self._filter_layers)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.filter, 1)
        self.pin_button = QtWidgets.QPushButton("pin")
        self.pin_button.setCheckable(True)
        self.pin_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.pin_button.setToolTip(
            f"pin the shown layer: up to {MAX_PINS} grids side by side, one forward pass (key p)"
        )
        self.pin_button.clicked.connect(lambda _: self.toggle_pin())
        self.unpin_button = QtWidgets.QPushButton("unpin all")
        self.unpin_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.unpin_button.clicked.connect(lambda _: self.set_pins(()))
        row.addWidget(self.pin_button)
        row.addWidget(self.unpin_button)
        panel.addLayout(row)
        self.layer_list = QtWidgets.QListWidget()
        self.layer_list.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.layer_list.setMinimumHeight(110)
        self.layer_list.itemClicked.connect(lambda item: self.select_layer(item.data(QtCore.Qt.ItemDataRole.UserRole)))
        panel.addWidget(self.layer_list, 2)

        row = QtWidgets.QHBoxLayout()
        self.norm_box = self._combo(list(NORMS), self.pipeline.view.grid.norm, lambda n: self.set_norm(n))
        self.cmap_box = self._combo(list(COLORMAPS), self.cmap, lambda c: self.set_cmap(c))
        for label, box in (("norm", self.norm_box), ("colormap", self.cmap_box)):
            row.addWidget(QtWidgets.QLabel(label))
            row.addWidget(box, 1)
        panel.addLayout(row)
        row = QtWidgets.QHBoxLayout()
        model = self.pipeline.model
        self.backend_box = self._combo(list(BACKENDS), model.backend, lambda _: self.set_target())
        self.target_box = self._combo(list(TARGETS), model.target, lambda _: self.set_target())
        for label, box in (("backend", self.backend_box), ("target", self.target_box)):
            row.addWidget(QtWidgets.QLabel(label))
            row.addWidget(box, 1)
        panel.addLayout(row)
        row = QtWidgets.QHBoxLayout()
        self.source_edit = QtWidgets.QLineEdit(self.pipeline.source_name)
        self.source_edit.setPlaceholderText("source: camera index, file, folder, URL or demo; Enter to switch")
        self.source_edit.returnPressed.connect(lambda: self.set_source(self.source_edit.text()))
        row.addWidget(QtWidgets.QLabel("source"))
        row.addWidget(self.source_edit, 1)
        panel.addLayout(row)
        row = QtWidgets.QHBoxLayout()
        self.overlay_box = QtWidgets.QCheckBox("heat map on input")
        self.overlay_box.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.overlay_box.toggled.connect(lambda _: self._show_input())
        self.pause_button = QtWidgets.QPushButton("pause")
        self.pause_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.snap_button = QtWidgets.QPushButton("snapshot")
        self.snap_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.snap_button.clicked.connect(self.snapshot)
        for widget in (self.overlay_box, self.pause_button, self.snap_button):
            row.addWidget(widget)
        panel.addLayout(row)
        row = QtWidgets.QHBoxLayout()
        self.order_box = self._combo(list(ORDERS), self.pipeline.view.grid.order, lambda o: self.set_order(o))
        self.order_box.setToolTip("; ".join(f"{name}: {text}" for name, text in ORDERS.items()))
        self.reset_button = QtWidgets.QPushButton("reset units")
        self.reset_button.setToolTip("forget the top-9 and statistics gathered so far (key r)")
        self.reset_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.reset_button.clicked.connect(self.reset_units)
        self.reset_button.setEnabled(self.units_options is not None)
        row.addWidget(QtWidgets.QLabel("tile order"))
        row.addWidget(self.order_box, 1)
        row.addWidget(self.reset_button)
        panel.addLayout(row)
        self._build_cam_controls(panel)
        row = QtWidgets.QHBoxLayout()
        self.timing_box = QtWidgets.QCheckBox("timing")
        self.timing_box.setToolTip(
            f"where the time goes: the engine's per-layer profile, made again every {TIMING_EVERY_S:g} s (key t)"
        )
        self.timing_box.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.timing_box.toggled.connect(self._apply_timing)
        self.timing_refresh = QtWidgets.QPushButton("refresh")
        self.timing_refresh.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.timing_refresh.setEnabled(False)
        self.timing_refresh.clicked.connect(lambda _: self.refresh_timing())
        self.compare_box = self._combo([COMPARE_OFF, *compare.configs()], COMPARE_OFF, lambda c: self.set_compare(c))
        self.compare_box.setToolTip("compare mode: the shown layer's |a - b| against a second configuration, live")
        row.addWidget(self.timing_box)
        row.addWidget(self.timing_refresh)
        row.addWidget(QtWidgets.QLabel("compare with"))
        row.addWidget(self.compare_box, 1)
        panel.addLayout(row)

        self.inputs = pg.GraphicsLayoutWidget()
        self.inputs.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.inputs.addLabel("input (red: the network's crop)", row=0, col=0)
        self.inputs.addLabel("the network sees", row=0, col=1)
        self.input_view, self.input_item = _image_view(self.inputs, 1, 0)
        self.crop_box = _outline(self.input_view, (255, 60, 60))
        self.seen_view, self.seen_item = _image_view(self.inputs, 1, 1)
        self.inputs.setMinimumHeight(150)  # the controls above must not squeeze the frame to a thumbnail
        panel.addWidget(self.inputs, 3)
        self.cam_label = QtWidgets.QLabel("")
        self.cam_label.setWordWrap(True)
        ignored, preferred = QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred
        self.cam_label.setSizePolicy(ignored, preferred)  # a long layer name never widens the panel
        self.cam_label.setVisible(self.cam_box.isChecked())
        panel.addWidget(self.cam_label)

        mono = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.stats_label = QtWidgets.QLabel("starting...")
        self.stats_label.setFont(mono)
        self.stats_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        panel.addWidget(self.stats_label)
        self.top_label = QtWidgets.QLabel("")
        self.top_label.setFont(mono)
        self.top_label.setVisible(bool(self.pipeline.model.labels))
        panel.addWidget(self.top_label)
        self.plot = pg.PlotWidget()
        self.plot.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.plot.setMinimumHeight(90)
        self.plot.setMaximumHeight(150)
        self.plot.setLabel("left", "ms")
        self.plot.setLabel("bottom", "seconds ago")
        self.plot.addLegend(offset=(5, 5))
        # Fixed axes (the last PLOT_S seconds; 0 to a round ceiling that moves only when the data outgrow it or
        # shrink well below it): new data then redraw the curves, not the axes' ticks and labels.
        self.plot.setXRange(-PLOT_S, 0.0, padding=0.0)
        self.plot.setYRange(0.0, 10.0, padding=0.0)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setDownsampling(auto=True, mode="peak")
        self._plot_ceiling = 10.0
        self.forward_curve = self.plot.plot(pen=pg.mkPen((80, 160, 255), width=1), name="forward")
        self.latency_curve = self.plot.plot(pen=pg.mkPen((255, 160, 60), width=1), name="end to end")
        panel.addWidget(self.plot, 2)
        self._build_timing_panel(self.left_column)

        self.help_label = QtWidgets.QLabel(keys.help_html(), self)
        self.help_label.setStyleSheet("background: rgba(20,20,20,220); color: white; padding: 14px; font-size: 13px;")
        self.help_label.adjustSize()
        self.help_label.hide()
        self.state_label = QtWidgets.QLabel("starting...")
        self.statusBar().addPermanentWidget(self.state_label)

    def _build_timing_panel(self, column: QtWidgets.QVBoxLayout) -> None:
        """Where the time goes, under the grids (hidden until the timing box is on): the slowest layers as
        horizontal bars, the total and the op-family totals, or why this engine gives no per-layer times."""
        mono = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.timing_label = QtWidgets.QLabel("")
        self.timing_label.setFont(mono)
        self.timing_label.setWordWrap(True)
        ignored, preferred = QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred
        self.timing_label.setSizePolicy(ignored, preferred)
        self.timing_plot = pg.PlotWidget()
        self.timing_plot.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.timing_plot.setMenuEnabled(False)
        self.timing_plot.setMouseEnabled(False, False)
        self.timing_plot.hideButtons()
        self.timing_plot.setLabel("bottom", "ms per forward pass")
        self.timing_plot.getPlotItem().invertY(True)  # the slowest layer on top
        self.timing_bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[], brush=pg.mkBrush(80, 160, 255, 180))
        self.timing_plot.addItem(self.timing_bars)
        self.timing_plot.setMinimumHeight(150)
        small = QtGui.QFont()
        small.setPointSize(7)
        self.timing_plot.getAxis("left").setStyle(tickFont=small)
        for widget, stretch in ((self.timing_label, 0), (self.timing_plot, 2)):
            widget.setVisible(False)
            column.addWidget(widget, stretch)

    def _build_cam_controls(self, panel: QtWidgets.QVBoxLayout) -> None:
        """CAM on/off, the class (editable: type a label, a part of one or an index), the method, the smoothing."""
        cam = self.pipeline.view.cam
        row = QtWidgets.QHBoxLayout()
        self.cam_box = QtWidgets.QCheckBox("CAM")
        self.cam_box.setToolTip("class activation map over the input: where the network looks (key c)")
        self.cam_box.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.cam_box.setChecked(cam is not None)
        self.cam_box.toggled.connect(lambda _: self._apply_cam())
        self.cam_class = QtWidgets.QComboBox()
        self.cam_class.setEditable(True)
        self.cam_class.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.cam_class.setMinimumContentsLength(14)
        self.cam_class.setToolTip("the class: top-1 of each frame, or type a label, a part of one, or an index")
        labels = self.pipeline.model.labels or []
        self.cam_class.addItems([_TOP1, *(f"{i}: {label}" for i, label in enumerate(labels))])
        completer = self.cam_class.completer()
        if completer is not None:
            completer.setFilterMode(QtCore.Qt.MatchFlag.MatchContains)
            completer.setCompletionMode(QtWidgets.QCompleter.CompletionMode.PopupCompletion)
        if cam is not None and cam.cls is not None:
            self.cam_class.setCurrentText(_class_text(cam.cls, labels))
        self.cam_class.activated.connect(lambda _: self.set_cam_class(self.cam_class.currentText()))
        edit = self.cam_class.lineEdit()
        if edit is not None:  # Enter on a typed class that is no entry of the list
            edit.returnPressed.connect(lambda: self.set_cam_class(self.cam_class.currentText()))
        self._cam_cls = cam.cls if cam is not None else None
        self.cam_method = self._combo(list(METHODS), cam.method if cam else "auto", lambda _: self._apply_cam())
        self.cam_method.setToolTip("; ".join(f"{name}: {text}" for name, text in METHODS.items()))
        self.cam_smooth = QtWidgets.QDoubleSpinBox()
        self.cam_smooth.setRange(0.0, 10.0)
        self.cam_smooth.setSingleStep(0.1)
        self.cam_smooth.setDecimals(2)
        self.cam_smooth.setSuffix(" s")
        self.cam_smooth.setToolTip("smoothing: time constant of a moving average of the map over frames (0: none)")
        self.cam_smooth.setValue(cam.smoothing_s if cam else 0.0)
        self.cam_smooth.valueChanged.connect(lambda _: self._apply_cam())
        row.addWidget(self.cam_box)
        row.addWidget(self.cam_class, 3)
        row.addWidget(self.cam_method, 1)
        row.addWidget(QtWidgets.QLabel("smooth"))
        row.addWidget(self.cam_smooth)
        panel.addLayout(row)

    def _build_top_panel(self, lower: pg.GraphicsLayout) -> None:
        """Beside the enlarged map: the selected unit's top-k (3x3 thumbnails with score and time), then the
        shown layer's units as a plot (mean per unit as bars, dead units as red crosses; hover: the figures)."""
        self.units_title = _label(lower, 0, 1)
        self.top_view, self.top_item = _image_view(lower, 1, 1)
        self.top_view.setMouseEnabled(False, False)
        cell = self._cell()
        self.top_item.setImage(_mosaic([], cell), autoLevels=False, levels=(0, 255))
        font = QtGui.QFont()
        font.setPointSize(7)
        self.top_captions: list[pg.TextItem] = []
        for i in range(TOP_SHOWN):
            row, col = divmod(i, TOP_COLS)
            caption = pg.TextItem("", color=(255, 255, 255), fill=pg.mkBrush(0, 0, 0, 160), anchor=(0, 1))
            caption.setFont(font)
            caption.setPos(col * (cell + TOP_PAD), row * (cell + TOP_PAD) + cell)
            caption.setVisible(False)
            self.top_view.addItem(caption)
            self.top_captions.append(caption)
        self.top_view.autoRange(padding=0.01)
        self.dead_marks = QtWidgets.QGraphicsPathItem()  # a thin red X over each dead unit's tile
        self.dead_marks.setPen(pg.mkPen((230, 40, 40), width=1, cosmetic=True))
        self.dead_marks.setZValue(5)
        self.grid_view.addItem(self.dead_marks)

        self.units_info = _label(lower, 0, 2)
        self.units_plot = lower.addPlot(row=1, col=2)
        self.units_plot.setMenuEnabled(False)
        self.units_plot.setMouseEnabled(False, False)
        self.units_plot.hideButtons()
        self.units_plot.setLabel("left", "mean")
        self.units_plot.setLabel("bottom", "unit (red x: dead)")
        for name in ("left", "bottom"):
            self.units_plot.getAxis(name).enableAutoSIPrefix(False)
        self.units_bars = self.units_plot.plot(
            [0.0, 1.0], [0.0], stepMode="center", fillLevel=0, pen=pg.mkPen((80, 160, 255), width=1),
            brush=pg.mkBrush(80, 160, 255, 120),
        )  # fmt: skip
        self.units_dead = pg.ScatterPlotItem(symbol="x", size=7, pen=pg.mkPen((230, 40, 40)), brush=None)
        self.units_plot.addItem(self.units_dead)
        self.units_cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen((255, 80, 80), width=1))
        self.units_plot.addItem(self.units_cursor)
        self.lower.scene().sigMouseMoved.connect(self._units_hover)
        self.lower.scene().sigMouseClicked.connect(self._units_clicked)
        for col, stretch in enumerate((2, 2, 3)):
            lower.layout.setColumnStretchFactor(col, stretch)
        if self.units_options is None:
            self.units_plot.hide()
        self._set_text(self.units_info, "units: waiting for frames" if self.units_options is not None else "")

    def _combo(self, items: list[str], current: str, slot: Any) -> QtWidgets.QComboBox:
        box = QtWidgets.QComboBox()
        box.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        box.addItems(items)
        box.setCurrentText(current)
        box.currentTextChanged.connect(slot)
        return box

    def _colormap(self) -> pg.ColorMap:
        lut = colormap_lut(self.cmap)
        return pg.ColorMap(np.linspace(0.0, 1.0, 256), lut)

    def _fill_layers(self) -> None:
        self.layer_list.clear()
        current = self.pipeline.view.layer
        for layer in self.pipeline.model.catalog.shown_layers():  # weight-only constants: nothing to see
            shape = "x".join(str(d) for d in layer.shape) if layer.shape else "?"
            item = QtWidgets.QListWidgetItem(f"{layer.name}   {layer.op}   {shape}")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, layer.name)
            if not layer.tappable:
                item.setFlags(item.flags() & ~QtCore.Qt.ItemFlag.ItemIsEnabled & ~QtCore.Qt.ItemFlag.ItemIsSelectable)
                item.setToolTip(f"cannot be tapped: {layer.reason}")
            self.layer_list.addItem(item)
            if layer.name == current:
                self.layer_list.setCurrentItem(item)
        current_item = self.layer_list.currentItem()
        if current_item is not None:  # once laid out, show the current layer mid-list
            center = QtWidgets.QAbstractItemView.ScrollHint.PositionAtCenter
            QtCore.QTimer.singleShot(0, lambda: self.layer_list.scrollToItem(current_item, center))

    def _filter_layers(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.layer_list.count()):
            item = self.layer_list.item(i)
            item.setHidden(bool(needle) and needle not in item.text().lower())

    # ------------------------------------------------------------- actions
    def visible_layers(self) -> list[str]:
        """Tappable layers the filter shows, in network order."""
        names = []
        for i in range(self.layer_list.count()):
            item = self.layer_list.item(i)
            if not item.isHidden() and item.flags() & QtCore.Qt.ItemFlag.ItemIsEnabled:
                names.append(item.data(QtCore.Qt.ItemDataRole.UserRole))
        return names

    def select_layer(self, name: str) -> None:
        try:
            self.pipeline.set_view(layer=name)
        except LiveError as exc:
            self.message(str(exc))
            return
        self.selected = 0
        for i in range(self.layer_list.count()):
            item = self.layer_list.item(i)
            if item.data(QtCore.Qt.ItemDataRole.UserRole) == name:
                self.layer_list.setCurrentItem(item)
                self.layer_list.scrollToItem(item)
        self._mark_pins()
        self.message(f"layer {name}")

    def step_layer(self, delta: int) -> None:
        names = self.visible_layers()
        if not names:
            return
        current = self.pipeline.view.layer
        i = names.index(current) if current in names else -1
        self.select_layer(names[(i + delta) % len(names)])

    def set_norm(self, norm: str) -> None:
        if norm == "fixed" and self.pipeline.view.grid.value_range is None:
            result = self.result
            rng = (float(np.nanmin(result.lo)), float(np.nanmax(result.hi))) if result is not None else (0.0, 1.0)
            if not rng[1] > rng[0]:
                rng = (rng[0], rng[0] + 1.0)
            self.pipeline.set_view(norm=norm, value_range=rng)
        else:
            self.pipeline.set_view(norm=norm)
        self.message(f"normalization {norm}")

    def set_cmap(self, cmap: str) -> None:
        self.cmap = cmap
        self.pipeline.set_view(cmap=cmap)  # recordings and snapshots of the next results use it too
        self.colorbar.setColorMap(self._colormap())
        for grid_panel in self.panels:
            grid_panel.colorbar.setColorMap(self._colormap())
        if self.result is not None:
            self._show(self.result)

    # ------------------------------------------------------------- pins, timing, compare
    def set_pins(self, pins: tuple[str, ...] | list[str]) -> bool:
        """Pin these layers (at most :data:`live.pipeline.MAX_PINS`; none: one grid again); False when refused."""
        try:
            self.pipeline.set_view(pins=tuple(pins))
        except LiveError as exc:
            self.message(str(exc))
            return False
        self._mark_pins()
        self.message(f"pinned: {', '.join(self.pipeline.view.pins)}" if pins else "nothing pinned")
        return True

    def toggle_pin(self) -> None:
        """Pin the shown layer, or unpin it when it is pinned."""
        view = self.pipeline.view
        if view.layer in view.pins:
            self.set_pins(tuple(p for p in view.pins if p != view.layer))
        else:
            self.set_pins((*view.pins, view.layer))

    def _mark_pins(self) -> None:
        """The pin button says whether the shown layer is pinned; pinned layers are bold in the list."""
        view = self.pipeline.view
        self.pin_button.setChecked(view.layer in view.pins)
        self.pin_button.setText(f"pinned ({len(view.pins)}/{MAX_PINS})" if view.pins else "pin")
        for i in range(self.layer_list.count()):
            item = self.layer_list.item(i)
            font = item.font()
            pinned = item.data(QtCore.Qt.ItemDataRole.UserRole) in view.pins
            if font.bold() != pinned:
                font.setBold(pinned)
                item.setFont(font)

    def toggle_timing(self) -> None:
        """Turn the timing panel on or off."""
        self.timing_box.setChecked(not self.timing_box.isChecked())

    def _apply_timing(self, on: bool) -> None:
        for widget in (self.timing_label, self.timing_plot):
            widget.setVisible(on)
        self.timing_refresh.setEnabled(on)
        if on:
            self.timing_label.setText("timing: profiling the network...")
            self.refresh_timing()

    def refresh_timing(self) -> None:
        """Ask the forward thread for a new per-layer profile (on the next frame)."""
        self._timing_asked = time.perf_counter()
        self.pipeline.request_profile()

    def _check_timing(self) -> None:
        """Show a new profile when the forward thread has one; ask again every :data:`TIMING_EVERY_S`."""
        if not self.timing_box.isChecked():
            return
        timing = self.pipeline.timing
        if timing is not None and timing is not self.timing_shown:
            self.timing_shown = timing
            self._show_timing(timing)
        if time.perf_counter() - self._timing_asked > TIMING_EVERY_S:
            self.refresh_timing()

    def _show_timing(self, timing: Timing) -> None:
        profile = timing.profile
        if profile is None or profile.layers is None:
            why = timing.error if profile is None else profile.reason
            self.timing_bars.setOpts(x0=[], y=[], width=[])
            self.timing_plot.getAxis("left").setTicks([[]])
            self.timing_label.setText(f"timing: no per-layer times: {why}")
            return
        top = profile.top(TIMING_TOP)
        ms = [layer.ms for layer in top]
        self.timing_bars.setOpts(x0=[0.0] * len(top), y=list(range(len(top))), width=ms, height=0.7)
        self.timing_plot.getAxis("left").setTicks([[(i, layer.name[-24:]) for i, layer in enumerate(top)]])
        self.timing_plot.setXRange(0, max(ms, default=1.0) * 1.05, padding=0)
        self.timing_plot.setYRange(-0.5, max(len(top), 1) - 0.5, padding=0)
        kinds = "  ".join(f"{kind} {value:.2f}" for kind, value in list(profile.by_kind().items())[:5])
        self.timing_label.setText(
            f"timing ({profile.engine}/{profile.target}, {profile.frames} passes): total {profile.total_ms:.2f} ms, "
            f"forward {profile.forward_ms:.2f} ms\nms by kind: {kinds}"
        )

    def set_compare(self, config: str) -> None:
        """Compare mode: the shown layer against ``config`` (``ENGINE/TARGET``) live, or ``off``."""
        if config == COMPARE_OFF:
            self.pipeline.set_compare(None)
            self.message("compare mode off")
            return
        self.pipeline.set_compare(lambda model: compare.live_compare(config, model), config)
        self.message(f"comparing with {config}...")

    def set_target(self, target: str | None = None, backend: str | None = None) -> None:
        """Reload the network for another target/backend (in the forward thread)."""
        target = target or self.target_box.currentText()
        backend = backend or self.backend_box.currentText()
        model = self.pipeline.model
        if (target, backend) != (model.target, model.backend):
            self.pipeline.set_target(target, backend)
            self.message(f"switching to {backend}/{target}...")

    def set_source(self, spec: str) -> None:
        """Switch the source (the capture thread closes the old one and opens this one)."""
        try:
            self.pipeline.set_source(spec)
        except LiveError as exc:
            self.message(str(exc))
            return
        self.message(f"switching source to {spec}")
        self.canvas.setFocus()

    def toggle_cam(self) -> None:
        """Turn the class activation map over the input on or off."""
        self.cam_box.setChecked(not self.cam_box.isChecked())

    def cam_options(self) -> CamOptions:
        """What the CAM controls say (whether or not CAM is on)."""
        return CamOptions(method=self.cam_method.currentText(), cls=self._cam_cls, smoothing_s=self.cam_smooth.value())

    def set_cam_class(self, text: str) -> None:
        """Choose the class: the top-1 entry, ``"281: tabby, tabby cat"``, an index, or a label or a part of one."""
        text = text.strip()
        match = re.match(r"(\d+):", text)
        spec: int | str | None = None if text in ("", _TOP1) else int(match.group(1)) if match else text
        labels = self.pipeline.model.labels or []
        try:
            options = CamOptions(method=self.cam_method.currentText(), cls=spec, smoothing_s=self.cam_smooth.value())
            explain.check(self.pipeline.model, options)
            cls = resolve_class(options.cls, labels, None) if labels else options.cls
        except LiveError as exc:
            self.message(str(exc))
            return
        self._cam_cls = cls
        if isinstance(cls, int) and cls < len(labels):  # show the entry the text stands for
            self.cam_class.setCurrentIndex(cls + 1)
        self._apply_cam()

    def _apply_cam(self) -> None:
        """Hand the CAM controls to the pipeline (it finds the head and taps the layer in its own thread)."""
        on = self.cam_box.isChecked()
        try:
            self.pipeline.set_view(cam=self.cam_options() if on else None)
        except LiveError as exc:
            self.message(str(exc))
            return
        self.cam_label.setVisible(on)
        if on:
            what = "top-1" if self._cam_cls is None else _class_text(self._cam_cls, self.pipeline.model.labels or [])
            self.message(f"CAM on ({self.cam_method.currentText()}, {what})")
        else:
            self.message("CAM off")
        self._show_input()

    def set_order(self, order: str) -> None:
        """Tile order: channel ``index``, ``mean`` of each frame, or the units' ``running`` mean."""
        self.pipeline.set_view(order=order)
        if order == "running" and self.pipeline.units is None:
            self.message("tile order running: units are off, so tiles stay in channel order")
        else:
            self.message(f"tile order {order}")

    def reset_units(self) -> None:
        """Forget the shown layer's top-k and statistics gathered so far (they start again with the next frame)."""
        feed = self.pipeline.units
        if feed is None:
            self.message("units are off")
            return
        state = feed.state
        self._reset_seq = state.seq if state is not None else -1
        feed.reset()
        self._show_units(force=True)
        self.message("units reset")

    def toggle_pause(self) -> None:
        self.pipeline.pause(not self.pipeline.paused)
        self.pause_button.setText("resume" if self.pipeline.paused else "pause")
        self.message("paused" if self.pipeline.paused else "running")

    def move_selection(self, dx: int, dy: int) -> None:
        result = self.result
        if result is None:
            return
        layout = result.layout
        pos = layout.order.index(self.selected) if self.selected in layout.order else 0
        row, col = divmod(pos, layout.cols)
        row = min(max(row + dy, 0), layout.rows - 1)
        col = min(max(col + dx, 0), layout.cols - 1)
        pos = min(row * layout.cols + col, layout.count - 1)
        self.selected = layout.order[pos]
        self._show_tile(result, force=True)
        self._show_input()
        self._show_units(force=True)

    def snapshot(self) -> list[Path]:
        if self.result is None:
            self.message("nothing to snapshot yet")
            return []
        extra = {
            "model": str(self.pipeline.model.path),
            "stats": self.pipeline.stats_snapshot(),
            "selected": self.selected,
        }
        try:
            paths = write_snapshot(self.snapshot_dir, self.result, extra)
        except LiveError as exc:
            self.message(f"snapshot failed: {exc}")
            return []
        self.snapshots.extend(paths)
        self.message(f"snapshot: {paths[0]}")
        if self.pipeline.units is not None:  # the reducer's state beside the files, written by the units thread
            folder = paths[0].with_name(paths[0].stem + "-units")
            self._saves.append((folder, self.pipeline.units.save(folder)))
        return paths

    def toggle_help(self) -> None:
        """Show or hide the help overlay (the key table of :mod:`live.keys`)."""
        self.help_label.setVisible(not self.help_label.isVisible())
        self.help_label.move(20, 20)
        self.help_label.raise_()

    def close_help(self) -> None:
        """Hide the help overlay."""
        self.help_label.hide()

    def previous_layer(self) -> None:
        """Show the previous layer of those the filter shows."""
        self.step_layer(-1)

    def next_layer(self) -> None:
        """Show the next layer of those the filter shows."""
        self.step_layer(1)

    def move_left(self) -> None:
        """Select the feature map left of the selected one."""
        self.move_selection(-1, 0)

    def move_right(self) -> None:
        """Select the feature map right of the selected one."""
        self.move_selection(1, 0)

    def move_up(self) -> None:
        """Select the feature map above the selected one."""
        self.move_selection(0, -1)

    def move_down(self) -> None:
        """Select the feature map below the selected one."""
        self.move_selection(0, 1)

    def step(self) -> None:
        """Let one frame through while paused."""
        self.pipeline.step()

    def toggle_fullscreen(self) -> None:
        """Fullscreen, or back to a normal window."""
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    def message(self, text: str) -> None:
        self.messages.append(text)
        self.statusBar().showMessage(text, 4000)

    # ------------------------------------------------------------- keys
    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 - Qt's name
        """Application-wide: key presses while this window is active go to :meth:`handle_key`."""
        if event.type() != QtCore.QEvent.Type.KeyPress or not self.isActiveWindow():
            return False
        return self.handle_key(event.key(), event.text())

    def handle_key(self, key: int | QtCore.Qt.Key, text: str = "") -> bool:
        """Run the shortcut for a key (see :data:`live.keys.BINDINGS`).

        Returns False when the key is not a shortcut, or when the filter box, the
        source field, the CAM class box or the smoothing box has the focus (then
        keys are typed; :data:`live.keys.LEAVE_FILTER` and :data:`live.keys.LEAVE_SOURCE`
        (the other fields) leave them).
        """
        code = _key_code(key)
        typed = (
            (self.source_edit, self._leave_source),
            (self.filter, self._leave_filter),
            (self.cam_class, self._leave_source),
            (self.cam_smooth, self._leave_source),
        )
        focus = QtWidgets.QApplication.focusWidget()
        for field, leave in typed:
            if field.hasFocus() or (focus is not None and field.isAncestorOf(focus)):
                if code in leave:
                    self.canvas.setFocus()
                    return True
                return False
        action = self._key_actions.get(code) or self._text_actions.get(text)
        if action is None:
            return False
        getattr(self, action)()  # looked up on every press, so a test may replace the method
        return True

    def _grid_clicked(self, event: Any) -> None:
        result = self.result
        if result is None:
            return
        pos = event.pos()
        channel = result.layout.tile_at(pos.x(), pos.y())
        if channel is not None:
            self.selected = channel
            self._show_tile(result, force=True)
            self._show_input()
            self._show_units(force=True)
        event.accept()

    # ------------------------------------------------------------- updates
    def _pull(self) -> None:
        """The one place results enter the GUI thread."""
        if self._closing:  # a wake-up queued before the window closed: the recording is already finished
            return
        item = self.pipeline.results.take(after=self.last_seq, timeout=0)
        if item is not None:
            taken = time.perf_counter()
            self.last_seq, result = item
            self._show(result)
            if self._unpainted is not None:  # the one before was replaced before a paint: its pixels are now
                self.pipeline.stats.shown(self._unpainted)
            if self.canvas.isVisible():
                self._unpainted = result.frame.t_capture  # counted as shown when the canvas has painted it
            else:
                self._unpainted = None
                self.pipeline.stats.shown(result.frame.t_capture)
            self.pipeline.results.ready_from(taken + self.min_interval)
            self.shown += 1
            if self.recorder is not None:
                try:
                    self.recorder.write(result)
                except LiveError as exc:
                    self.message(f"recording stopped: {exc}")
                    self.recorder.close()
                    self.recorder = None
            if self.frames_limit is not None and self.shown >= self.frames_limit:
                self._finish()
                return
        now = time.perf_counter()
        if now - self._last_plot > 0.25:
            self._last_plot = now
            self._show_stats()
            self._show_units()
            self._check_timing()
        if self.frames_limit is not None and self.pipeline.finished.is_set() and not self.pipeline.results.pending:
            self._finish()  # the source ended before N results

    def _painted(self) -> None:
        """The canvas painted: the result shown last is on screen (end-to-end latency stops here)."""
        if self._unpainted is not None:
            self.pipeline.stats.shown(self._unpainted)
            self._unpainted = None

    def _show(self, result: Result) -> None:
        first_of_layer = self.result is None or self.result.layer != result.layer
        if first_of_layer or self.selected >= result.layout.count:
            self.selected = min(self.selected, result.layout.count - 1) if not first_of_layer else 0
        self.result = result
        _set_rgba(self.grid_item, _colormapped(result.grid, self.cmap))
        layout = result.layout
        full, rest = divmod(layout.count, layout.cols)
        if full < layout.rows:
            x = rest * (layout.map_w + layout.pad)
            y = full * (layout.map_h + layout.pad)
            self.empty_box.setRect(x, y, result.grid.shape[1] - x, result.grid.shape[0] - y)
        self.empty_box.setVisible(full < layout.rows)
        if self._dead_layout is not None and layout != self._dead_layout:
            self._mark_dead()  # the tiles moved (another layer, order or size): the marks follow
        shape = "x".join(str(d) for d in result.blob.shape)
        norm = result.view.grid.norm
        mode = f"{norm}: colorbar of map {self.selected}" if norm == "map" else norm
        if result.pinned or result.difference is not None:  # grids side by side: a short title, as small as theirs
            self.grid_title.opts["size"] = "8pt"
            title = f"{result.layer} {shape} (shown{', pinned' if result.layer in result.view.pins else ''}, {norm})"
        else:
            self.grid_title.opts.pop("size", None)
            title = f"{result.layer} {shape} ({result.layout.count} maps, {mode})"
        self._set_text(self.grid_title, title)
        if first_of_layer:
            self.grid_view.autoRange(padding=0.01)
        _set_rgba(self.seen_item, _rgba(result.seen))
        if result.top:
            best = [f"{t['score']:4.0%} {t['label'].split(',')[0][:22]}" for t in result.top[:5]]
            rows = ["  ".join(best[:3]), "  ".join(best[3:])]
            self._set_text(self.top_label, "top-5  " + "\n       ".join(r for r in rows if r))
            self.top_label.setVisible(True)
        self._show_input()
        self._show_tile(result, force=first_of_layer)
        if result.pinned or result.difference is not None or self.panels:
            self._show_panels(result)
        if first_of_layer:
            self.input_view.autoRange(padding=0.01)
            self.seen_view.autoRange(padding=0.01)

    def _show_panels(self, result: Result) -> None:
        """The grids beside the shown layer's: the other pinned layers, then compare mode's difference map."""
        extra: list[PinnedGrid | Difference] = [p for p in result.pinned if p.layer != result.layer]
        if result.difference is not None:
            extra.append(result.difference)
        if len(extra) != len(self.panels):
            for grid_panel in self.panels:
                grid_panel.remove()
                for target in (grid_panel.title, grid_panel.colorbar):  # a new panel may be given the same id
                    self._readouts.pop(id(target), None)
                    self._pending.pop(id(target), None)
            while len(self.panels) < len(extra):
                self.panels.append(_GridPanel(self.canvas, self._colormap()))
            del self.panels[len(extra) :]
            for i, grid_panel in enumerate(self.panels, start=1):  # 2 a row; the shown layer's grid is the first
                grid_panel.place(2 * (i // 2), 2 * (i % 2))
            layout = self.canvas.ci.layout
            count = len(self.panels) + 1
            layout.setColumnStretchFactor(0, 1)
            layout.setColumnStretchFactor(2, 1 if count > 1 else 0)
            for row in range(3):  # grids share the height row by row; titles keep their own
                layout.setRowStretchFactor(2 * row + 1, 1 if row <= (count - 1) // 2 else 0)
        for grid_panel, item in zip(self.panels, extra, strict=True):
            if item.grid is None or item.lo is None or item.hi is None:
                assert isinstance(item, Difference)
                grid_panel.clear()
                self._set_text(grid_panel.title, f"|a - b| vs {item.label}: {item.error}", force=True)
                continue
            grid_panel.show(item.grid, self.cmap)
            if isinstance(item, PinnedGrid):
                title = f"{item.layer} {'x'.join(str(d) for d in item.blob.shape)} (pinned)"
            else:
                title = self._difference_title(item)
            self._set_text(grid_panel.title, title)
            self._set_levels(grid_panel.colorbar, _levels(item.lo, item.hi))

    def _difference_title(self, difference: Difference) -> str:
        """``|a - b| vs onnxruntime/cpu: max abs 1.2e-06, rel 3.4e-07<br>first divergent layer: none`` (two lines)."""
        comparer = self.pipeline.comparer

        def num(value: float | None) -> str:
            return "-" if value is None else f"{value:.2g}"

        title = f"|a - b| vs {difference.label}: max abs {num(difference.max_abs)}, rel {num(difference.max_rel)}"
        if comparer is not None and comparer.checked:
            title += f"<br>first divergent layer: {comparer.first_divergent or 'none'}" if comparer.note is None else ""
        return title

    def _tile_map(self, result: Result) -> np.ndarray:
        maps = blob_to_maps(result.blob, result.view.grid.batch, result.view.grid.layout)
        return np.asarray(maps[min(self.selected, maps.shape[0] - 1)], np.float32)

    def _show_tile(self, result: Result, force: bool = False) -> None:
        layout = result.layout
        x, y, w, h = layout.tile_rect(self.selected)
        if result.view.grid.norm == "map" and layout.step == 1 and w * h > 1:
            # The grid's tile is this map already normalized to its own finite range: show it as it is.
            scaled = result.grid[y : y + h, x : x + w]
            lo, hi = float(result.lo[self.selected]), float(result.hi[self.selected])
        else:
            fmap = self._tile_map(result)
            finite = fmap[np.isfinite(fmap)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
            scaled = np.zeros(fmap.shape, np.uint8)
            if hi > lo:
                norm = (np.nan_to_num(fmap, nan=lo) - lo) * (255.0 / (hi - lo)) + 0.5
                scaled = np.clip(norm, 0, 255).astype(np.uint8)
        reshaped = self.tile_item.image is None or self.tile_item.image.shape[:2] != scaled.shape
        _set_rgba(self.tile_item, _colormapped(scaled, self.cmap))
        if reshaped:
            self.tile_view.autoRange(padding=0.02)
        title = f"map {self.selected}: {scaled.shape[0]}x{scaled.shape[1]}, values {lo:.4g} .. {hi:.4g}"
        self._set_text(self.tile_title, title, force=force)
        self.tile_box.setRect(x - 0.5, y - 0.5, w + 1, h + 1)
        # The colorbar shows the values the grid's 0..255 stand for: per map in
        # `map` mode (the selected one), layer-wide otherwise.
        lo, hi = float(result.lo[self.selected]), float(result.hi[self.selected])
        if not (np.isfinite(lo) and np.isfinite(hi)):
            lo, hi = 0.0, 0.0
        self._set_levels(self.colorbar, (lo, hi if hi > lo else lo + 1e-6), force=force)

    def _show_input(self) -> None:
        result = self.result
        if result is None:
            return
        image = result.frame.image
        x, y, w, h = result.crop
        cam_on = self.cam_box.isChecked()
        if cam_on:
            text = result.cam.caption() if result.cam is not None else result.cam_error or "CAM: waiting for a frame"
            note = result.cam.note if result.cam is not None and result.cam.note else ""
            self._set_text(self.cam_label, text + (f"\n{note}" if note else ""))
            self.cam_label.setToolTip(note or text)
        if cam_on and result.cam is not None:
            image = overlay(image, result.cam.heat, result.crop)
        elif self.overlay_box.isChecked() and w > 0 and h > 0:
            fmap = self._tile_map(result)
            finite = fmap[np.isfinite(fmap)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            norm = np.clip((np.nan_to_num(fmap, nan=lo) - lo) / ((hi - lo) or 1.0) * 255, 0, 255).astype(np.uint8)
            heat = cv2.resize(colorize(norm, self.cmap), (w, h), interpolation=cv2.INTER_LINEAR)
            image = image.copy()
            x0, y0 = max(x, 0), max(y, 0)
            x1, y1 = min(x + w, image.shape[1]), min(y + h, image.shape[0])
            region = image[y0:y1, x0:x1]
            patch = heat[y0 - y : y1 - y, x0 - x : x1 - x, ::-1]
            image[y0:y1, x0:x1] = cv2.addWeighted(region, 0.45, patch, 0.55, 0)
        # Draw roughly 1:1: downscale to the view's size here instead of letting Qt scale a full
        # frame on every paint; the item still spans the frame's pixels.
        frame_h, frame_w = image.shape[:2]
        view = self.input_view.sceneBoundingRect()
        factor = min(1.0, max(view.width() / frame_w, view.height() / frame_h, 0.05))
        _set_rgba(self.input_item, _rgba(_shrink(image, factor)))
        self.input_item.setRect(QtCore.QRectF(0, 0, frame_w, frame_h))
        self.crop_box.setRect(x, y, w, h)

    def _set_text(self, label: Any, text: str, force: bool = False) -> None:
        """Set a label's text when it changed, at most 4 times a second per label (unless forced).

        A new text can change a label's size and so re-lay out and repaint the
        panel around it; every frame that would cost the forward pass CPU time.
        """
        self._readout(label, text, label.setText, force)

    def _set_levels(self, bar: pg.ColorBarItem, levels: tuple[float, float], force: bool = False) -> None:
        """Set a colorbar's range when it moved by more than 0.5 %, at most 4 times a second (unless forced).

        A new range regenerates the colorbar's axis (about 1 ms on the 2-core
        machine); at the display's rate its numbers could not be read anyway.
        """
        lo, hi = levels
        old_lo, old_hi = self._readouts.get(id(bar), (tuple(bar.levels()), 0.0))[0]
        if abs(lo - old_lo) + abs(hi - old_hi) <= 0.005 * max(abs(hi - lo), 1e-12):
            levels = (old_lo, old_hi)  # not worth a repaint: the same as shown (cancels a pending change)
        self._readout(bar, levels, lambda values: bar.setLevels(values=values), force)

    def _readout(self, target: Any, value: Any, apply: Any, force: bool) -> None:
        """``apply(value)`` when ``value`` differs from what ``target`` shows, at most every :data:`READOUT_S`.

        A value held back is applied by :meth:`_flush_readouts` (the stats
        tick) if no newer one comes first; ``force`` applies it now.
        """
        now = time.perf_counter()
        shown, last_time = self._readouts.get(id(target), (None, 0.0))
        if value == shown:
            self._pending.pop(id(target), None)
            return
        if not force and now - last_time < READOUT_S:
            self._pending[id(target)] = (target, value, apply)
            return
        apply(value)
        self._readouts[id(target)] = (value, now)
        self._pending.pop(id(target), None)

    @property
    def settled(self) -> bool:
        """Whether every text and colorbar shows what the shown result says (none held back by :data:`READOUT_S`)."""
        return not self._pending

    def _flush_readouts(self) -> None:
        for target, value, apply in list(self._pending.values()):
            self._readout(target, value, apply, force=False)

    def _show_stats(self) -> None:
        self._flush_readouts()
        data = self.pipeline.stats_snapshot()
        fwd, lat = data["forward_ms"], data["latency_ms"]
        shape = "x".join(str(d) for d in data["layer_shape"] or []) or "?"
        status = self.pipeline.status
        state = "paused" if self.pipeline.paused else status.message
        self.stats_label.setText(
            f"capture {data['capture_fps']:6.1f} fps   forward {data['forward_fps']:6.1f} fps   "
            f"display {data['display_fps']:6.1f} fps\n"
            f"forward  mean {fwd['mean']:7.1f} ms  p95 {fwd['p95']:7.1f} ms\n"
            f"end-to-end mean {lat['mean']:7.1f} ms  p95 {lat['p95']:7.1f} ms\n"
            f"dropped {data['dropped']}   errors {data['errors']}   frames {data['frames']}\n"
            f"{data['engine']}/{data['backend']}/{data['target']}   layer {data['layer']} {shape}\n"
            f"source {data['source']}"
        )
        self.state_label.setText(state)
        series = self.pipeline.stats.series(PLOT_S)
        self.forward_curve.setData(*series["forward"])
        self.latency_curve.setData(*series["latency"])
        values = [v for _, v in series.values() if v.size]
        ceiling = _ceiling(max(float(np.nanmax(v)) for v in values)) if values else self._plot_ceiling
        if ceiling > self._plot_ceiling or ceiling < self._plot_ceiling / 4:
            self._plot_ceiling = ceiling
            self.plot.setYRange(0.0, ceiling, padding=0.0)
        if self.target_box.currentText() != data["target"] and status.phase is not Phase.SWITCHING:
            self.target_box.blockSignals(True)
            self.target_box.setCurrentText(data["target"])
            self.target_box.blockSignals(False)

    # ------------------------------------------------------------- units
    def _cell(self) -> int:
        """Side of one top-k cell in mosaic pixels: the live thumbnails' longest side."""
        return self.units_options.thumb if self.units_options is not None else 64

    def _current_units(self) -> UnitsState | None:
        """The published units state when it is about the shown layer and was made after the last reset."""
        feed = self.pipeline.units
        state = feed.state if feed is not None else None
        result = self.result
        if state is None or result is None or state.seq <= self._reset_seq:
            return None
        grid = result.view.grid
        return state if state.key == (result.layer, grid.batch, grid.layout) else None

    def _show_units(self, force: bool = False) -> None:
        """Redraw the units' panels when their state changed (a few times a second, never per frame)."""
        self._check_saves()
        if self.units_options is None and self.analysis is None:
            return
        state = self._current_units()
        now = time.perf_counter()
        changed = state is not self.units_state
        self.units_state = state
        due = state is None or now - self._units_plotted >= UNITS_PLOT_S
        if force or (state is not self._plotted and due):
            self._units_plotted, self._plotted = now, state
            self._plot_units(state)
        if force or changed:
            self._mark_dead()
        self._show_top(force)

    def _plot_units(self, state: UnitsState | None) -> None:
        if self.units_options is None:
            return
        if state is None:
            self.units_bars.setData([0.0, 1.0], [0.0])
            self.units_dead.setData([], [])
            self._set_text(self.units_info, "units: waiting for frames of this layer", force=True)
            return
        units = np.arange(state.units)
        mean = np.nan_to_num(state.mean, nan=0.0, posinf=0.0, neginf=0.0)
        self.units_bars.setData(np.arange(state.units + 1) - 0.5, mean)
        self.units_plot.setXRange(-0.5, state.units - 0.5, padding=0.01)
        dead = units[self._dead(state)]
        self.units_dead.setData(dead.astype(float), np.zeros(dead.size))
        self.units_cursor.setValue(self.selected)
        verdict = f"{dead.size} dead" if state.frames >= self.dead_after else f"dead: after {self.dead_after} frames"
        text = f"{state.units} units, {verdict}, {state.frames} frames ({state.skipped} skipped)"
        if state.error:
            text += f"; {state.error}"
        self._set_text(self.units_info, text)

    def _dead(self, state: UnitsState) -> np.ndarray:
        """bool (C,): the units marked dead: none until :attr:`dead_after` frames were reduced.

        A unit silent on the first few frames (most of a late layer on one
        scene) has not shown it is dead; marking it would cover the grid in
        crosses that the next scene takes away.
        """
        return state.dead if state.frames >= self.dead_after else np.zeros_like(state.dead)

    def _mark_dead(self) -> None:
        """A thin red X over the tile of each dead unit of the shown layer (one path item, rebuilt when needed)."""
        result, state = self.result, self.units_state
        path = QtGui.QPainterPath()
        if result is None or state is None or not self._dead(state).any() or state.units != result.layout.count:
            self._dead_layout = None
            if self._dead_key is not None:
                self._dead_key = None
                self.dead_marks.setPath(path)
            return
        layout = result.layout
        dead = self._dead(state)
        key = (layout, dead.tobytes())
        if key == self._dead_key:
            self._dead_layout = layout
            return
        for unit in np.flatnonzero(dead):
            x, y, w, h = layout.tile_rect(int(unit))
            path.moveTo(x, y)
            path.lineTo(x + w, y + h)
            path.moveTo(x + w, y)
            path.lineTo(x, y + h)
        self.dead_marks.setPath(path)
        self._dead_layout, self._dead_key = layout, key

    def marked_dead(self) -> list[int]:
        """The units whose tiles carry the red X now, in unit order."""
        state, layout = self.units_state, self._dead_layout
        if state is None or layout is None:
            return []
        return [int(unit) for unit in np.flatnonzero(self._dead(state))]

    def _top_records(self) -> tuple[tuple[Record | Entry, ...], str]:
        """The selected unit's top-k records, best first, and the panel's title."""
        unit = self.selected
        result = self.result
        if self.analysis is not None:
            layer = result.layer if result is not None else self.pipeline.view.layer
            found = self.analysis.layers.get(layer)
            if found is None:
                note = f"the analysis {self.analysis.folder.name} has no layer {layer}"
                if self._analysis_said != layer:
                    self._analysis_said = layer
                    self.message(note)
                return (), note
            count = result.layout.count if result is not None else found.units
            if found.units != count:  # another model's layer of the same name, or another batch/layout
                note = f"the analysis has {found.units} units for {layer}, the window {count}"
                if self._analysis_said != layer:
                    self._analysis_said = layer
                    self.message(note)
                return (), note
            return found.top[unit], f"unit {unit}: top-{found.k} of the analysis {self.analysis.folder.name}"
        state = self.units_state
        if self.pipeline.units is not None and unit != self._watching:
            self._watching = unit
            self.pipeline.units.watch(unit)  # the states carry the selected unit's top-k from the next one on
            QtCore.QTimer.singleShot(WATCH_MS, self._show_units)  # which comes within ms: show it then
        if state is None or unit not in state.top:
            return (), f"unit {unit}: top-{self._k()} (waiting for frames)"
        return state.top[unit], f"unit {unit}: top-{state.options.k} so far"

    def _k(self) -> int:
        return self.units_options.k if self.units_options is not None else TOP_SHOWN

    def _show_top(self, force: bool = False) -> None:
        """The selected unit's best frames as a 3x3 mosaic; redrawn only when they (or the selection) change."""
        records, title = self._top_records()
        key = (self.selected, title.split(",")[0], tuple((r.score, r.source, r.frame) for r in records))
        changed = force or key != self._top_key
        self._set_text(self.units_title, title, force=changed)
        if not changed:
            return
        self._top_key = key
        shown = records[:TOP_SHOWN]
        thumbs = [self._thumb(record) for record in shown]
        self.top_item.setImage(_mosaic(thumbs, self._cell()), autoLevels=False, levels=(0, 255))
        for i, caption in enumerate(self.top_captions):
            if i < len(shown):
                caption.setText(_caption(shown[i]))
            caption.setVisible(i < len(shown))
        self.top_shown = tuple(shown)
        if self.units_options is not None:
            self.units_cursor.setValue(self.selected)

    def _thumb(self, record: Record | Entry) -> np.ndarray | None:
        if isinstance(record, Entry):
            assert self.analysis is not None
            return self.analysis.thumb(record)
        return record.thumb

    def _units_hover(self, pos: QtCore.QPointF) -> None:
        """The mouse over the units plot: that unit's figures in the line above it."""
        state = self.units_state
        view = self.units_plot.vb
        if state is None or not view.sceneBoundingRect().contains(pos):
            return
        unit = round(view.mapSceneToView(pos).x())
        if 0 <= unit < state.units:
            self._set_text(self.units_info, _unit_text(state, unit), force=True)

    def _units_clicked(self, event: Any) -> None:
        """A click on the units plot selects that unit."""
        state, result = self.units_state, self.result
        view = self.units_plot.vb
        if state is None or result is None or not view.sceneBoundingRect().contains(event.scenePos()):
            return
        unit = round(view.mapSceneToView(event.scenePos()).x())
        if 0 <= unit < min(state.units, result.layout.count):
            self.selected = unit
            self._show_tile(result, force=True)
            self._show_input()
            self._show_units(force=True)

    def _check_saves(self) -> None:
        """Say which units states asked for by snapshots are written (or why not)."""
        for item in [item for item in self._saves if item[1].done()]:
            self._saves.remove(item)
            folder, future = item
            error = future.exception()
            if error is None:
                self.units_saved.append(folder)
                self.message(f"units state: {folder}")
            else:
                self.message(f"units state not saved: {error}")

    # ------------------------------------------------------------- closing
    def _finish(self) -> None:
        if self.screenshot_path is not None:
            self._show_stats()
            if not self.grab().save(str(self.screenshot_path)):  # grab() paints the widgets itself
                self.message(f"could not write {self.screenshot_path}")
                log.error("could not write screenshot %s", self.screenshot_path)
            self.screenshot_path = None
        self.close()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if not self._closing:
            self._closing = True
            self.pipeline.on_publish = None
            self._wake.published.disconnect(self._pull)
            self.timer.stop()
            QtWidgets.QApplication.instance().removeEventFilter(self)
            self.pipeline.close()
            if self.recorder is not None:
                self.recorder.close()
        super().closeEvent(event)


def run_window(pipeline: Pipeline, **options: Any) -> dict[str, Any]:
    """Open the window, run the Qt event loop until it closes; return the final stats.

    Ctrl-C in the terminal closes the window cleanly, and so do SIGTERM and
    SIGHUP (the stats then say which: ``"signal"``).
    """
    import signal

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["live"])
    window = LiveWindow(pipeline, **options)
    window.show()
    interrupted: list[int] = []

    def on_sigint(signum: int, *_: object) -> None:
        interrupted.append(signum)
        window.close()

    ending = [signal.SIGINT, *(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))]
    previous = {signum: signal.signal(signum, on_sigint) for signum in ending}
    # Let Python see SIGINT while Qt's loop runs.
    ticker = QtCore.QTimer()
    ticker.timeout.connect(lambda: None)
    ticker.start(200)
    try:
        app.exec()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        ticker.stop()
        if not window._closing:
            window.close()
    stats = pipeline.stats_snapshot()
    if interrupted:
        stats["interrupted"] = True
        if interrupted[0] != signal.SIGINT:
            stats["signal"] = signal.Signals(interrupted[0]).name
    return stats
