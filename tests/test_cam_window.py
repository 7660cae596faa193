"""The window's class activation map: the toggle, the class box, models with and without a pooled head, TFLite.

The real window offscreen, driven by pytest-qt on videos the tests write (as tests/test_window.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from pyqtgraph.Qt import QT_LIB, QtCore
from pytestqt.qt_compat import qt_api

from live.assets import DEFAULT_MODEL, data_file
from live.cam import CamOptions
from live.engines import HAS_CLASSIC, HAS_ENGINES
from live.frames import View
from live.model import Model, Settings
from live.pipeline import Pipeline
from live.qt_window import LiveWindow
from live.sources import VideoSource
from tests.helpers import shared_model

Qt = QtCore.Qt


@pytest.fixture(autouse=True)
def _one_binding() -> None:
    """pytest-qt and the window must drive the same Qt binding (two in one process abort it)."""
    if qt_api.pytest_qt_api != QT_LIB.lower():
        pytest.fail(f"pytest-qt uses {qt_api.pytest_qt_api} but pyqtgraph (the window) {QT_LIB}")


def _window(qtbot, model: Model, clip: Path, view: View | None = None) -> LiveWindow:
    pipeline = Pipeline(model, VideoSource(clip, loop=True, pace="file"), view or View(model.default_layer))
    win = LiveWindow(pipeline)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.shown >= 2, timeout=30000)
    return win


@pytest.fixture(scope="module")
def bundled() -> Model:
    return Model.load(data_file(DEFAULT_MODEL))


def test_the_cam_key_toggles_the_overlay_without_stalling(qtbot, bundled: Model, still_clip: Path) -> None:
    win = _window(qtbot, bundled, still_clip)
    assert not win.cam_box.isChecked() and win.pipeline.view.cam is None and not win.cam_label.isVisible()
    plain = win.input_item.image.copy()
    start = time.perf_counter()
    qtbot.keyClick(win.canvas, Qt.Key.Key_C)
    assert time.perf_counter() - start < 0.2  # the head is found and tapped in the forward thread
    assert win.cam_box.isChecked() and win.pipeline.view.cam == CamOptions()
    qtbot.waitUntil(lambda: win.result.cam is not None, timeout=30000)
    cam = win.result.cam
    assert (cam.method, cam.layer, cam.map.shape) == ("cam", "head/relu6", (7, 7))
    assert win.result.layer == bundled.default_layer  # the grid still shows the chosen layer
    qtbot.waitUntil(lambda: not np.array_equal(win.input_item.image, plain), timeout=5000)
    qtbot.waitUntil(lambda: "CAM at head/relu6, 7x7" in win.cam_label.text(), timeout=5000)
    assert win.cam_label.isVisible() and cam.label.split(",")[0] in win.cam_label.text()
    shown = win.shown
    qtbot.keyClick(win.canvas, Qt.Key.Key_C)
    assert not win.cam_box.isChecked() and win.pipeline.view.cam is None
    qtbot.waitUntil(lambda: win.shown > shown + 1 and win.result.cam is None, timeout=30000)
    qtbot.waitUntil(lambda: np.array_equal(win.input_item.image, plain), timeout=5000)
    win.close()


def test_the_class_box_chooses_the_class(qtbot, bundled: Model, still_clip: Path) -> None:
    win = _window(qtbot, bundled, still_clip, View(bundled.default_layer, cam=CamOptions(smoothing_s=0.5)))
    assert win.cam_box.isChecked() and win.cam_smooth.value() == 0.5
    assert win.cam_class.count() == 1001 and win.cam_class.itemText(282) == "281: tabby, tabby cat"
    win.cam_class.setCurrentIndex(283)  # as a click on the entry does
    win.cam_class.activated.emit(283)
    assert win.pipeline.view.cam.cls == 282
    qtbot.waitUntil(lambda: win.result.cam is not None and win.result.cam.index == 282, timeout=30000)
    win.cam_class.setFocus()
    win.cam_class.lineEdit().selectAll()
    qtbot.keyClicks(win.cam_class.lineEdit(), "espresso")  # typed: no shortcut fires ('s' would snapshot)
    assert not win.snapshots and win.cam_box.isChecked()
    qtbot.keyClick(win.cam_class.lineEdit(), Qt.Key.Key_Return)
    assert win.pipeline.view.cam.cls == 967
    qtbot.waitUntil(lambda: win.result.cam.label == "espresso", timeout=30000)
    win.set_cam_class("cat")  # ambiguous: a message, the class stays
    assert "class 'cat' is ambiguous" in win.messages[-1] and win.pipeline.view.cam.cls == 967
    win.set_cam_class(win.cam_class.itemText(0))  # back to each frame's top-1
    assert win.pipeline.view.cam.cls is None
    win.cam_method.setCurrentText("eigen")
    qtbot.waitUntil(lambda: win.result.cam.method == "eigen", timeout=30000)
    assert win.result.cam.layer == bundled.default_layer and win.result.cam.map.shape == (56, 56)
    win.close()


def test_a_model_without_a_pooled_head_says_so_and_shows_eigen_cam(qtbot, net_dir: Path, clip: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    win = _window(qtbot, model, clip, View("down_relu"))
    win.toggle_cam()
    qtbot.waitUntil(lambda: win.result.cam is not None, timeout=30000)
    assert win.result.cam.method == "eigen" and win.result.cam.map.shape == (16, 16)
    qtbot.waitUntil(lambda: "no pooled linear head" in win.cam_label.text(), timeout=5000)
    assert "Eigen-CAM at down_relu" in win.cam_label.text()
    win.select_layer("logits")  # a vector: no spatial maps; said, and the window goes on
    qtbot.waitUntil(lambda: win.result.layer == "logits" and win.result.cam_error is not None, timeout=30000)
    qtbot.waitUntil(lambda: "has no spatial maps" in win.cam_label.text(), timeout=5000)
    win.select_layer("down_relu")
    qtbot.waitUntil(lambda: win.result.cam is not None, timeout=30000)
    win.close()


def test_cam_in_the_window_on_tflite(qtbot, clip: Path) -> None:
    model = Model.load(shared_model("vww-96-float.tflite"), Settings(preprocess={"size": [96, 96]}))
    win = _window(qtbot, model, clip)
    win.toggle_cam()
    if not HAS_CLASSIC and HAS_ENGINES:  # OpenCV 5.1: the window says why there is no map, and keeps running
        qtbot.waitUntil(lambda: win.result is not None and win.result.cam_error is not None, timeout=30000)
        assert "only this model's outputs can be tapped" in win.result.cam_error and win.result.cam is None
        win.close()
        return
    qtbot.waitUntil(lambda: win.result.cam is not None, timeout=30000)
    assert win.result.cam.method == "cam" and win.result.cam.map.shape == (3, 3)
    qtbot.waitUntil(lambda: "class " in win.cam_label.text(), timeout=5000)  # no labels: the class index
    win.close()
