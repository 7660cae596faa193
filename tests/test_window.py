"""The real window, offscreen, driven by pytest-qt on real videos written by the tests."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from pyqtgraph.Qt import QT_LIB, QtCore, QtGui, QtWidgets
from pytestqt.qt_compat import qt_api

from live import keys
from live.frames import View
from live.maps import GridBuilder
from live.model import Model
from live.pipeline import Phase, Pipeline
from live.qt_window import LiveWindow
from live.sources import VideoSource
from tests.helpers import painted, run_live

Qt = QtCore.Qt


@pytest.fixture(autouse=True)
def _one_binding() -> None:
    """pytest-qt and the window must drive the same Qt binding (two in one process abort it)."""
    if qt_api.pytest_qt_api != QT_LIB.lower():
        pytest.fail(
            f"pytest-qt uses {qt_api.pytest_qt_api} but pyqtgraph (the window) {QT_LIB}: "
            "set PYTEST_QT_API and PYQTGRAPH_QT_LIB to the same binding"
        )


def test_the_qt_binding_is_the_one_asked_for() -> None:
    asked = os.environ.get("PYQTGRAPH_QT_LIB")
    if asked:
        assert asked == QT_LIB
    asked_by_pytest_qt = os.environ.get("PYTEST_QT_API")
    if asked_by_pytest_qt:
        assert asked_by_pytest_qt.lower() == qt_api.pytest_qt_api
    assert QtCore.qVersion().split(".")[0] == QT_LIB[-1]  # PyQt5 runs Qt 5, PyQt6 Qt 6


@pytest.fixture
def window(qtbot, net_dir: Path, still_clip: Path, tmp_path: Path):
    """A live window on the branchy test net and a still video (so a frame's grid is reproducible)."""
    model = Model.load(net_dir / "branchy.onnx")
    pipeline = Pipeline(model, VideoSource(still_clip, loop=True, pace="file"), View(layer="stem/swish"))
    win = LiveWindow(pipeline, snapshot_dir=tmp_path / "snaps")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.shown >= 2, timeout=20000)
    yield win
    win.close()


def test_window_shows_grid_input_and_stats(window: LiveWindow, qtbot) -> None:
    result = window.result
    assert result is not None and result.layer == "stem/swish"
    # Drawn as opaque RGBA: the grid through the colormap, the input and what the network sees as they are.
    assert np.array_equal(window.grid_item.image, painted(result.grid, window.cmap))
    rgb = cv2.cvtColor(result.frame.image, cv2.COLOR_BGR2RGB)
    assert np.array_equal(window.input_item.image[..., :3], rgb) and window.input_item.image.shape == (72, 96, 4)
    assert np.array_equal(window.seen_item.image[..., :3], cv2.cvtColor(result.seen, cv2.COLOR_BGR2RGB))
    assert (window.seen_item.image[..., 3] == 255).all() and (window.input_item.image[..., 3] == 255).all()
    qtbot.waitUntil(lambda: "forward" in window.stats_label.text(), timeout=5000)
    assert "new/" in window.stats_label.text() or "classic/" in window.stats_label.text()


def test_selecting_a_layer_changes_the_grid(window: LiveWindow, qtbot) -> None:
    before = window.result.grid.shape
    window.select_layer("down_relu")
    qtbot.waitUntil(lambda: window.result.layer == "down_relu", timeout=20000)
    assert window.result.blob.shape == (1, 16, 16, 16)
    assert window.grid_item.image.shape[:2] == window.result.grid.shape != before
    assert window.layer_list.currentItem().data(Qt.ItemDataRole.UserRole) == "down_relu"


def test_keys_page_through_layers(window: LiveWindow, qtbot) -> None:
    names = window.visible_layers()
    start = names.index("stem/swish")
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
    assert window.pipeline.view.layer == names[start + 1]
    qtbot.keyClick(window.canvas, Qt.Key.Key_U)
    assert window.pipeline.view.layer == names[start]
    qtbot.keyClick(window.canvas, Qt.Key.Key_O)
    assert window.pipeline.view.layer == names[start + 1]
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageUp)
    assert window.pipeline.view.layer == names[start]
    qtbot.waitUntil(lambda: window.result.layer == names[start], timeout=20000)


def test_filter_by_typing(window: LiveWindow, qtbot) -> None:
    window.filter.setFocus()
    qtbot.keyClicks(window.filter, "relu")
    visible = window.visible_layers()
    assert visible and all("relu" in name.lower() or "relu" in _label(window, name) for name in visible)
    assert window.pipeline.view.layer == "stem/swish"  # typing 'u' in the filter is not a shortcut
    qtbot.keyClick(window.filter, Qt.Key.Key_Escape)
    assert not window.filter.hasFocus()


def _label(window: LiveWindow, name: str) -> str:
    for i in range(window.layer_list.count()):
        item = window.layer_list.item(i)
        if item.data(Qt.ItemDataRole.UserRole) == name:
            return item.text().lower()
    return ""


def test_changing_normalization_changes_pixels(window: LiveWindow, qtbot) -> None:
    old = window.result.grid.copy()
    window.norm_box.setCurrentText("layer")
    qtbot.waitUntil(lambda: window.result.view.grid.norm == "layer", timeout=20000)
    new = window.result.grid
    assert not np.array_equal(old, new)
    np.testing.assert_array_equal(new, GridBuilder("layer").build(window.result.blob).image)
    np.testing.assert_array_equal(window.grid_item.image, painted(new, window.cmap))


def test_pause_stops_new_results_and_step_gives_one(window: LiveWindow, qtbot) -> None:
    qtbot.keyClick(window.canvas, Qt.Key.Key_Space)
    assert window.pipeline.paused and window.pause_button.text() == "resume"
    qtbot.wait(300)  # a frame in flight may still arrive
    shown = window.shown
    qtbot.wait(700)
    assert window.shown == shown
    qtbot.keyClick(window.canvas, Qt.Key.Key_Period)
    qtbot.waitUntil(lambda: window.shown == shown + 1, timeout=10000)
    qtbot.wait(300)
    assert window.shown == shown + 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.shown > shown + 2, timeout=10000)


def test_snapshot_files_read_back(window: LiveWindow, qtbot, tmp_path: Path) -> None:
    qtbot.keyClick(window.canvas, Qt.Key.Key_S)
    png, npy, meta = window.snapshots[-3:]
    assert png.parent == tmp_path / "snaps"
    assert cv2.imread(str(png)) is not None
    blob = np.load(npy)
    assert blob.shape == (1, 8, 32, 32)
    data = json.loads(meta.read_text())
    assert data["layer"] == "stem/swish" and data["shape"] == [1, 8, 32, 32]
    assert data["stats"]["engine"] and data["files"]["npy"] == npy.name


def test_click_and_arrows_select_a_map(window: LiveWindow, qtbot) -> None:
    layout = window.result.layout
    assert (layout.rows, layout.cols) == (3, 3)  # 8 maps
    x, y, w, h = layout.tile_rect(4)
    scene = window.grid_item.mapToScene(QtCore.QPointF(x + w / 2, y + h / 2))
    point = window.canvas.mapFromScene(scene)
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.waitUntil(lambda: window.selected == 4, timeout=5000)
    assert window.tile_title.text.startswith("map 4:")
    assert window.tile_item.image.shape == (32, 32, 4)
    # The enlarged map is map 4 of the shown result, min-max scaled to 0..255 (worked out here from the blob,
    # give or take one step of rounding) through the colormap.
    fmap = window.result.blob[0, 4].astype(np.float64)
    expected = np.floor((fmap - fmap.min()) * (255.0 / (fmap.max() - fmap.min())) + 0.5).astype(int)
    drawn = window.tile_item.image
    near = [np.all(drawn == painted(np.clip(expected + d, 0, 255).astype(np.uint8), window.cmap), axis=2)
            for d in (-1, 0, 1)]  # fmt: skip
    assert np.logical_or.reduce(near).all()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.selected == 5
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)  # the last column: stays
    assert window.selected == 5
    qtbot.keyClick(window.canvas, Qt.Key.Key_Down)  # below is empty: the last map
    assert window.selected == 7
    x, y, w, h = layout.tile_rect(7)
    assert window.tile_box.rect().x() == x - 0.5
    qtbot.keyClick(window.canvas, Qt.Key.Key_Left)
    assert window.selected == layout.order[layout.order.index(7) - 1]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Up)
    assert window.selected == layout.order[layout.order.index(7) - 1 - layout.cols]


def test_heat_map_overlay_changes_the_input(window: LiveWindow, qtbot) -> None:
    plain = window.input_item.image.copy()
    window.overlay_box.setChecked(True)
    qtbot.waitUntil(lambda: not np.array_equal(window.input_item.image, plain), timeout=5000)


def test_help_overlay(window: LiveWindow, qtbot) -> None:
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert window.help_label.isVisible()
    assert window.help_label.text() == keys.help_html()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert not window.help_label.isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Question)
    assert window.help_label.isVisible()
    # A '?' that a keyboard layout sends as another key (shift + slash here) is matched by its text.
    shifted = QtGui.QKeyEvent(QtCore.QEvent.Type.KeyPress, Qt.Key.Key_Slash, Qt.KeyboardModifier.ShiftModifier, "?")
    QtWidgets.QApplication.sendEvent(window.canvas, shifted)
    assert not window.help_label.isVisible()


def test_every_bound_key_runs_its_action(window: LiveWindow, qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for binding in keys.BINDINGS:
        monkeypatch.setattr(window, binding.action, lambda action=binding.action: calls.append(action))
    expected = []
    for binding in keys.BINDINGS:
        for name in binding.keys:
            qtbot.keyClick(window.canvas, getattr(Qt.Key, "Key_" + name))
            expected.append(binding.action)
    assert calls == expected


def test_fullscreen_key_toggles(window: LiveWindow, qtbot) -> None:
    qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    qtbot.waitUntil(window.isFullScreen, timeout=5000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: not window.isFullScreen(), timeout=5000)


def test_keys_in_the_text_fields_are_typed(window: LiveWindow, qtbot) -> None:
    window.filter.setFocus()
    qtbot.keyClicks(window.filter, "h.s")
    assert window.filter.text() == "h.s" and not window.help_label.isVisible() and not window.snapshots
    qtbot.keyClick(window.filter, Qt.Key.Key_Down)  # leaves the filter
    assert not window.filter.hasFocus()
    window.source_edit.setFocus()
    qtbot.keyClick(window.source_edit, Qt.Key.Key_Space)
    assert not window.pipeline.paused
    qtbot.keyClick(window.source_edit, Qt.Key.Key_Escape)
    assert not window.source_edit.hasFocus()


def test_closing_stops_every_thread(qtbot, net_dir: Path, clip: Path) -> None:
    model = Model.load(net_dir / "two_heads.onnx", None)
    pipeline = Pipeline(model, VideoSource(clip, loop=True, pace="file"), View(layer="lrelu"))
    win = LiveWindow(pipeline)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.shown >= 1, timeout=20000)
    win.close()
    assert not pipeline.alive
    assert [t.name for t in threading.enumerate() if t.name.startswith("live-")] == []


def test_screenshot_from_the_command_line(net_dir: Path, clip: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    result = run_live("run", "--source", clip, "-m", net_dir / "branchy.onnx", "--frames", "20",
                      "--screenshot", shot, "--stats-json", tmp_path / "s.json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] >= 600 and image.shape[1] >= 1000
    assert image.std() > 20  # grid, input and stats, not a blank window
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["frames"] == 20 and "display_fps" in stats


def test_switching_source_in_the_window(window: LiveWindow, qtbot, tmp_path: Path) -> None:
    from tests.helpers import write_clip

    other = write_clip(tmp_path / "other.avi", frames=10, size=(64, 48))
    window.source_edit.setFocus()
    window.source_edit.setText(str(other))
    qtbot.keyClick(window.source_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.result.frame.image.shape == (48, 64, 3), timeout=20000)
    assert window.input_item.image.shape == (48, 64, 4)
    assert window.pipeline.view.layer == "stem/swish"  # typing in the source field is not a shortcut


def test_switching_target_says_what_happened(window: LiveWindow, qtbot) -> None:
    window.target_box.setCurrentText("opencl")
    qtbot.waitUntil(
        lambda: window.pipeline.status.phase is Phase.SWITCH_FAILED or window.pipeline.model.target == "opencl",
        timeout=60000,
    )
    if window.pipeline.model.target != "opencl":  # no usable OpenCL device in this process
        assert "target opencl failed" in window.pipeline.status.message
        assert window.pipeline.model.target == "cpu"
        qtbot.waitUntil(lambda: window.target_box.currentText() == "cpu", timeout=5000)
    shown = window.shown
    qtbot.waitUntil(lambda: window.shown > shown, timeout=60000)  # still running


def test_top5_classes_of_the_bundled_model(qtbot, clip: Path) -> None:
    from live.assets import DEFAULT_MODEL, data_file

    model = Model.load(data_file(DEFAULT_MODEL))
    pipeline = Pipeline(model, VideoSource(clip, loop=True, pace="file"), View(layer=model.default_layer))
    win = LiveWindow(pipeline)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.shown >= 1, timeout=30000)
    assert len(win.result.top) == 5
    assert win.top_label.isVisible() and win.top_label.text().startswith("top-5")
    assert win.result.top[0]["label"].split(",")[0][:22] in win.top_label.text()
    win.close()


def test_a_bad_source_is_a_message_and_the_window_stays_usable(window: LiveWindow, qtbot, clip: Path) -> None:
    last = window.result
    window.set_source(str(clip.parent / "nothere.avi"))
    qtbot.waitUntil(lambda: "nothere.avi" in window.pipeline.status.message, timeout=20000)
    assert "not found" in window.pipeline.status.message
    assert window.result is not None and window.result.seq >= last.seq  # the last picture stays
    window.select_layer("down_relu")  # still answers
    window.set_source(str(clip))
    qtbot.waitUntil(lambda: window.result.layer == "down_relu" and window.result.frame.image.shape == (72, 96, 3),
                    timeout=30000)  # fmt: skip


def test_200_rapid_switches_last_one_wins(window: LiveWindow, qtbot) -> None:
    import random

    rng = random.Random(7)
    layers = window.visible_layers()
    norms = ["map", "layer", "robust"]
    cmaps = ["viridis", "jet", "gray", "inferno"]
    threads_before = sorted(t.name for t in threading.enumerate())
    for i in range(200):
        action = rng.random()
        if action < 0.5:
            window.select_layer(rng.choice(layers))
        elif action < 0.75:
            window.norm_box.setCurrentText(rng.choice(norms))
        elif action < 0.95:
            window.cmap_box.setCurrentText(rng.choice(cmaps))
        else:
            window.target_box.setCurrentText(rng.choice(["cpu", "opencl"]))
        qtbot.wait(rng.choice([0, 1, 5]))
        if i % 50 == 0:
            assert sorted(t.name for t in threading.enumerate()) == threads_before
    window.target_box.setCurrentText("cpu")
    window.select_layer("block1/add")
    window.norm_box.setCurrentText("layer")
    window.cmap_box.setCurrentText("jet")
    qtbot.waitUntil(
        lambda: window.result.layer == "block1/add" and window.result.view.grid.norm == "layer", timeout=60000
    )
    assert window.cmap == "jet" and window.pipeline.model.target == "cpu"
    np.testing.assert_array_equal(window.result.grid, GridBuilder("layer").build(window.result.blob).image)
    assert sorted(t.name for t in threading.enumerate()) == threads_before
    window.close()
    assert not window.pipeline.alive
