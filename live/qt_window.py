"""The live window (pyqtgraph on PyQt5 or PyQt6): the only module that imports Qt.

Results cross into the GUI thread in exactly one place: :meth:`LiveWindow._pull`,
run by a QTimer, takes the newest :class:`live.pipeline.Result`. No widget is
touched from a worker thread and nothing here waits on the workers.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from live import explain, keys
from live.cam import METHODS, CamOptions, overlay, resolve_class
from live.engines import BACKENDS, TARGETS
from live.errors import LiveError
from live.frames import Result
from live.maps import COLORMAPS, NORMS, blob_to_maps, colorize, colormap_lut
from live.output import Recorder, write_snapshot
from live.pipeline import Phase, Pipeline

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


def _image_view(layout: pg.GraphicsLayout, row: int, col: int) -> tuple[pg.ViewBox, pg.ImageItem]:
    """An aspect-locked, y-down view in ``layout`` at (row, col), holding one image item."""
    view = layout.addViewBox(row=row, col=col, lockAspect=True, invertY=True, enableMenu=False)
    item = pg.ImageItem()
    view.addItem(item)
    return view, item


def _outline(view: pg.ViewBox, color: tuple[int, int, int]) -> QtWidgets.QGraphicsRectItem:
    """A rectangle outline in ``view`` (2 px wide whatever the zoom), placed later with ``setRect``."""
    box = QtWidgets.QGraphicsRectItem()
    box.setPen(pg.mkPen(color, width=2, cosmetic=True))
    view.addItem(box)
    return box


class LiveWindow(QtWidgets.QMainWindow):
    """Grid, input, what the network sees, controls and stats for one :class:`Pipeline`.

    Args:
        pipeline: started by the window (``start()``) and closed with it.
        snapshot_dir: where ``s`` writes snapshots.
        recorder: records every shown grid when given.
        frames: close after this many shown results (with ``screenshot``: save it first).
        screenshot: PNG path of the whole window, written after ``frames`` results.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        snapshot_dir: Path = Path("live-snapshots"),
        recorder: Recorder | None = None,
        frames: int | None = None,
        screenshot: Path | None = None,
        interval_ms: int = 15,
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
        self._closing = False
        self._texts: dict[int, tuple[str, float]] = {}
        self._pending_texts: dict[int, tuple[Any, str]] = {}
        self.setWindowTitle(f"live - {pipeline.model.path.name}")
        self.resize(1280, 820)
        self._key_actions = {_qt_key(key): b.action for b in keys.BINDINGS for key in b.keys}
        self._text_actions = keys.text_actions()
        self._leave_filter = {_qt_key(key) for key in keys.LEAVE_FILTER}
        self._leave_source = {_qt_key(key) for key in keys.LEAVE_SOURCE}
        self._build()
        self._fill_layers()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._pull)
        QtWidgets.QApplication.instance().installEventFilter(self)
        pipeline.start()
        self.timer.start()

    # ------------------------------------------------------------- layout
    def _build(self) -> None:
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.setCentralWidget(splitter)

        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.grid_title = self.canvas.addLabel("", row=0, col=0, colspan=2)
        self.grid_view, self.grid_item = _image_view(self.canvas, 1, 0)
        self.tile_box = _outline(self.grid_view, (255, 80, 80))
        self.grid_item.mouseClickEvent = self._grid_clicked  # type: ignore[method-assign]
        self.empty_box = QtWidgets.QGraphicsRectItem()  # covers the unused tiles of the last row
        self.empty_box.setPen(pg.mkPen(None))
        self.empty_box.setBrush(pg.mkBrush(40, 40, 40))
        self.grid_view.addItem(self.empty_box)
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=self._colormap(), interactive=False, width=14)
        self.canvas.addItem(self.colorbar, row=1, col=1)
        self.tile_title = self.canvas.addLabel("", row=2, col=0, colspan=2)
        self.tile_view, self.tile_item = _image_view(self.canvas, 3, 0)
        self.canvas.ci.layout.setRowStretchFactor(1, 3)
        self.canvas.ci.layout.setRowStretchFactor(3, 1)
        splitter.addWidget(self.canvas)

        side = QtWidgets.QWidget()
        panel = QtWidgets.QVBoxLayout(side)
        splitter.addWidget(side)
        splitter.setSizes([820, 460])

        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("filter layers (type to search)")
        self.filter.textChanged.connect(self._filter_layers)
        panel.addWidget(self.filter)
        self.layer_list = QtWidgets.QListWidget()
        self.layer_list.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.layer_list.setMinimumHeight(140)
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
        self._build_cam_controls(panel)

        self.inputs = pg.GraphicsLayoutWidget()
        self.inputs.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.inputs.addLabel("input (red: the network's crop)", row=0, col=0)
        self.inputs.addLabel("the network sees", row=0, col=1)
        self.input_view, self.input_item = _image_view(self.inputs, 1, 0)
        self.crop_box = _outline(self.input_view, (255, 60, 60))
        self.seen_view, self.seen_item = _image_view(self.inputs, 1, 1)
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
        self.plot.setMaximumHeight(150)
        self.plot.setLabel("left", "ms")
        self.plot.setLabel("bottom", "seconds ago")
        self.plot.addLegend(offset=(5, 5))
        self.forward_curve = self.plot.plot(pen=pg.mkPen((80, 160, 255), width=1), name="forward")
        self.latency_curve = self.plot.plot(pen=pg.mkPen((255, 160, 60), width=1), name="end to end")
        panel.addWidget(self.plot, 2)

        self.help_label = QtWidgets.QLabel(keys.help_html(), self)
        self.help_label.setStyleSheet("background: rgba(20,20,20,220); color: white; padding: 14px; font-size: 13px;")
        self.help_label.adjustSize()
        self.help_label.hide()
        self.state_label = QtWidgets.QLabel("starting...")
        self.statusBar().addPermanentWidget(self.state_label)

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
        if self.result is not None:
            self._show(self.result)

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
        event.accept()

    # ------------------------------------------------------------- updates
    def _pull(self) -> None:
        """The one place results enter the GUI thread."""
        item = self.pipeline.results.take(after=self.last_seq, timeout=0)
        if item is not None:
            self.last_seq, result = item
            self._show(result)
            self.pipeline.stats.shown(result.frame.t_capture)
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
        if self.frames_limit is not None and self.pipeline.finished.is_set() and not self.pipeline.results.pending:
            self._finish()  # the source ended before N results

    def _show(self, result: Result) -> None:
        first_of_layer = self.result is None or self.result.layer != result.layer
        if first_of_layer or self.selected >= result.layout.count:
            self.selected = min(self.selected, result.layout.count - 1) if not first_of_layer else 0
        self.result = result
        lut = colormap_lut(self.cmap)
        self.grid_item.setImage(result.grid, autoLevels=False, levels=(0, 255), lut=lut)
        layout = result.layout
        full, rest = divmod(layout.count, layout.cols)
        if full < layout.rows:
            x = rest * (layout.map_w + layout.pad)
            y = full * (layout.map_h + layout.pad)
            self.empty_box.setRect(x, y, result.grid.shape[1] - x, result.grid.shape[0] - y)
        self.empty_box.setVisible(full < layout.rows)
        shape = "x".join(str(d) for d in result.blob.shape)
        norm = result.view.grid.norm
        mode = f"{norm}: colorbar of map {self.selected}" if norm == "map" else norm
        self._set_text(self.grid_title, f"{result.layer} {shape} ({result.layout.count} maps, {mode})")
        if first_of_layer:
            self.grid_view.autoRange(padding=0.01)
        self.seen_item.setImage(_rgb(result.seen), autoLevels=False, levels=(0, 255))
        if result.top:
            best = [f"{t['score']:4.0%} {t['label'].split(',')[0][:22]}" for t in result.top[:5]]
            rows = ["  ".join(best[:3]), "  ".join(best[3:])]
            self._set_text(self.top_label, "top-5  " + "\n       ".join(r for r in rows if r))
            self.top_label.setVisible(True)
        self._show_input()
        self._show_tile(result)
        if first_of_layer:
            self.input_view.autoRange(padding=0.01)
            self.seen_view.autoRange(padding=0.01)

    def _tile_map(self, result: Result) -> np.ndarray:
        maps = blob_to_maps(result.blob, result.view.grid.batch, result.view.grid.layout)
        return np.asarray(maps[min(self.selected, maps.shape[0] - 1)], np.float32)

    def _show_tile(self, result: Result, force: bool = False) -> None:
        fmap = self._tile_map(result)
        finite = fmap[np.isfinite(fmap)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        scaled = np.zeros(fmap.shape, np.uint8)
        if hi > lo:
            scaled = np.clip((np.nan_to_num(fmap, nan=lo) - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)
        reshaped = self.tile_item.image is None or self.tile_item.image.shape != scaled.shape
        self.tile_item.setImage(scaled, autoLevels=False, levels=(0, 255), lut=colormap_lut(self.cmap))
        if reshaped:
            self.tile_view.autoRange(padding=0.02)
        title = f"map {self.selected}: {fmap.shape[0]}x{fmap.shape[1]}, values {lo:.4g} .. {hi:.4g}"
        self._set_text(self.tile_title, title, force=force)
        x, y, w, h = result.layout.tile_rect(self.selected)
        self.tile_box.setRect(x - 0.5, y - 0.5, w + 1, h + 1)
        # The colorbar shows the values the grid's 0..255 stand for: per map in
        # `map` mode (the selected one), layer-wide otherwise.
        lo, hi = float(result.lo[self.selected]), float(result.hi[self.selected])
        if not (np.isfinite(lo) and np.isfinite(hi)):
            lo, hi = 0.0, 0.0
        levels = (lo, hi if hi > lo else lo + 1e-6)
        old_lo, old_hi = self.colorbar.levels()
        if abs(levels[0] - old_lo) + abs(levels[1] - old_hi) > 0.005 * max(abs(levels[1] - levels[0]), 1e-12):
            self.colorbar.setLevels(values=levels)  # its axis repaints: only when the range really moved

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
        # Draw roughly 1:1: downscale to the view's size here (cv2, area averaging) instead of
        # letting Qt scale a full frame on every paint; the item still spans the frame's pixels.
        frame_h, frame_w = image.shape[:2]
        view = self.input_view.sceneBoundingRect()
        factor = min(1.0, max(view.width() / frame_w, view.height() / frame_h, 0.05))
        if factor < 0.9:
            size = (max(1, round(frame_w * factor)), max(1, round(frame_h * factor)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        self.input_item.setImage(_rgb(image), autoLevels=False, levels=(0, 255))
        self.input_item.setRect(QtCore.QRectF(0, 0, frame_w, frame_h))
        self.crop_box.setRect(x, y, w, h)

    def _set_text(self, label: Any, text: str, force: bool = False) -> None:
        """Set a label's text when it changed, at most 4 times a second per label (unless forced).

        A new text can change a label's size and so re-lay out and repaint the
        panel around it; every frame that would cost the forward pass CPU time.
        """
        now = time.perf_counter()
        last_text, last_time = self._texts.get(id(label), ("", 0.0))
        if text == last_text:
            self._pending_texts.pop(id(label), None)
            return
        if not force and now - last_time < 0.25:
            self._pending_texts[id(label)] = (label, text)
            return
        label.setText(text)
        self._texts[id(label)] = (text, now)
        self._pending_texts.pop(id(label), None)

    def _flush_texts(self) -> None:
        for label, text in list(self._pending_texts.values()):
            self._set_text(label, text)

    def _show_stats(self) -> None:
        self._flush_texts()
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
        series = self.pipeline.stats.series(10.0)
        self.forward_curve.setData(*series["forward"])
        self.latency_curve.setData(*series["latency"])
        if self.target_box.currentText() != data["target"] and status.phase is not Phase.SWITCHING:
            self.target_box.blockSignals(True)
            self.target_box.setCurrentText(data["target"])
            self.target_box.blockSignals(False)

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
