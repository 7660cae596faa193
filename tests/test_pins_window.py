"""The window's pinned layers, timing panel and compare mode: the real window, offscreen, driven by pytest-qt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyqtgraph.Qt import QT_LIB, QtCore
from pytestqt.qt_compat import qt_api

from live.frames import View
from live.maps import GridOptions
from live.model import Model
from live.pipeline import Pipeline
from live.qt_window import TIMING_TOP, LiveWindow
from live.sources import VideoSource
from tests.helpers import painted

Qt = QtCore.Qt


@pytest.fixture(autouse=True)
def _one_binding() -> None:
    """pytest-qt and the window must drive the same Qt binding (two in one process abort it)."""
    if qt_api.pytest_qt_api != QT_LIB.lower():
        pytest.fail(f"pytest-qt uses {qt_api.pytest_qt_api} but pyqtgraph (the window) {QT_LIB}")


@pytest.fixture
def window(qtbot, net_dir: Path, clip: Path, tmp_path: Path):
    """A live window on the branchy test net, layer-wide normalization (one range per grid), a looping video."""
    model = Model.load(net_dir / "branchy.onnx")
    view = View(layer="stem/swish", grid=GridOptions("layer"))
    pipeline = Pipeline(model, VideoSource(clip, loop=True, pace="file"), view)
    win = LiveWindow(pipeline, snapshot_dir=tmp_path / "snaps", units=None)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.shown >= 2, timeout=20000)
    yield win
    win.close()


def _hold(qtbot, window: LiveWindow) -> None:
    """Pause, and wait until the last result is shown and every text and colorbar says what it says."""
    window.toggle_pause()
    qtbot.waitUntil(lambda: not window.pipeline.results.pending and window.settled, timeout=10000)


def _shows(window: LiveWindow, layer: str, pins: tuple[str, ...], panels: int) -> bool:
    result = window.result
    return (
        result is not None
        and result.layer == layer
        and result.view.pins == pins
        and len(window.panels) == panels
        and np.array_equal(window.grid_item.image, painted(result.grid, window.cmap))
    )


def test_pin_with_the_button_and_the_key_shows_each_grid_with_its_own_colorbar(window: LiveWindow, qtbot) -> None:
    qtbot.mouseClick(window.pin_button, Qt.MouseButton.LeftButton)  # pin the shown layer: still one grid
    assert window.pipeline.view.pins == ("stem/swish",) and window.pin_button.isChecked()
    window.select_layer("down_relu")
    assert not window.pin_button.isChecked()
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)  # pin the layer shown now
    assert window.pipeline.view.pins == ("stem/swish", "down_relu") and window.pin_button.isChecked()
    window.select_layer("block1/relu")  # shown, not pinned: three grids
    qtbot.waitUntil(lambda: _shows(window, "block1/relu", ("stem/swish", "down_relu"), 2), timeout=20000)
    _hold(qtbot, window)  # the colorbars' ranges change a few times a second: compare them once they stand still
    result = window.result
    assert [p.layer for p in result.pinned] == ["block1/relu", "stem/swish", "down_relu"]
    levels = []
    for grid_panel, pin in zip(window.panels, result.pinned[1:], strict=True):
        assert np.array_equal(grid_panel.item.image, painted(pin.grid, window.cmap))
        assert pin.layer in grid_panel.title.text
        expected = (float(pin.lo.min()), float(pin.hi.max()))  # layer norm: one range, the layer's
        assert tuple(grid_panel.colorbar.levels()) == pytest.approx(expected)
        levels.append(expected)
    main = (float(result.lo[0]), float(result.hi[0]))
    # (the shown layer's colorbar moves only when its range moves by more than 0.5 %)
    assert tuple(window.colorbar.levels()) == pytest.approx(main, abs=0.006 * (main[1] - main[0]))
    assert len({main, *levels}) == 3  # each grid its own normalization
    window.toggle_pause()
    # p on the shown layer pins it; a 5th is refused with a clear message, the pins unchanged.
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)
    assert window.set_pins(("stem/swish", "down_relu", "block1/relu", "gate"))
    window.select_layer("branch/concat")
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)
    assert window.pipeline.view.pins == ("stem/swish", "down_relu", "block1/relu", "gate")
    assert "at most 4 layers can be pinned" in window.messages[-1]
    qtbot.waitUntil(lambda: _shows(window, "branch/concat", window.pipeline.view.pins, 4), timeout=20000)
    # Unpinning returns to one grid: the key on a pinned layer, then the button for the rest.
    window.select_layer("gate")
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)
    assert window.pipeline.view.pins == ("stem/swish", "down_relu", "block1/relu")
    qtbot.mouseClick(window.unpin_button, Qt.MouseButton.LeftButton)
    assert window.pipeline.view.pins == ()
    qtbot.waitUntil(lambda: _shows(window, "gate", (), 0), timeout=20000)
    assert window.result.pinned == ()


def test_a_snapshot_from_the_window_writes_each_pinned_layer(window: LiveWindow, qtbot, tmp_path: Path) -> None:
    window.set_pins(("stem/swish", "down_relu"))
    qtbot.waitUntil(lambda: _shows(window, "stem/swish", ("stem/swish", "down_relu"), 1), timeout=20000)
    paths = window.snapshot()
    names = [p.name for p in paths]
    assert any(name.endswith("-pin1-down_relu.png") for name in names)
    npy = next(p for p in paths if p.name.endswith("-pin1-down_relu.npy"))
    assert np.load(npy).shape == (1, 16, 16, 16)


def test_timing_panel_shows_the_profile_as_bars(window: LiveWindow, qtbot) -> None:
    assert not window.timing_plot.isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_T)
    assert window.timing_box.isChecked() and window.timing_plot.isVisible()
    qtbot.waitUntil(lambda: window.timing_shown is not None, timeout=30000)
    timing = window.timing_shown
    assert timing is not None and timing.error is None and timing.profile is not None
    profile = timing.profile
    if profile.layers is None:  # an engine without per-layer times says so, plainly
        assert profile.reason and profile.reason in window.timing_label.text()
        return
    top = profile.top(TIMING_TOP)
    assert list(window.timing_bars.opts["width"]) == [layer.ms for layer in top]
    assert list(window.timing_bars.opts["y"]) == list(range(len(top)))
    assert f"total {profile.total_ms:.2f} ms" in window.timing_label.text()
    kind = next(iter(profile.by_kind()))
    assert kind in window.timing_label.text()
    ticks = window.timing_plot.getAxis("left")._tickLevels[0]
    assert [name for _, name in ticks] == [layer.name[-24:] for layer in top]
    window.refresh_timing()  # the refresh button's action: a new profile comes
    qtbot.waitUntil(lambda: window.timing_shown is not timing and window.timing_shown is not None, timeout=30000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_T)
    assert not window.timing_box.isChecked() and not window.timing_plot.isVisible()


def test_compare_mode_shows_the_difference_of_two_real_forwards(window: LiveWindow, qtbot) -> None:
    ort = pytest.importorskip("onnxruntime")
    from live.onnx_graph import OnnxGraph

    window.select_layer("down_relu")
    window.compare_box.setCurrentText("onnxruntime/cpu")

    def compared() -> bool:
        result = window.result
        return (
            result is not None
            and result.layer == "down_relu"
            and result.difference is not None
            and len(window.panels) == 1
            and np.array_equal(window.panels[0].item.image, painted(result.difference.grid, window.cmap))
        )

    qtbot.waitUntil(compared, timeout=30000)
    result = window.result
    difference = result.difference
    assert difference is not None and difference.error is None and difference.diff is not None
    model = Model.load(window.pipeline.model.path)
    blob = model.blob(result.frame.image)
    a = model.forward(blob, ["down_relu"])["down_relu"]
    session = ort.InferenceSession(
        OnnxGraph(model.onnx_model, model.input_shape).tap_model([model.layer("down_relu").key]),
        providers=["CPUExecutionProvider"],
    )
    b = session.run(None, {session.get_inputs()[0].name: blob})[0]
    np.testing.assert_array_equal(difference.diff, np.abs(a.astype(np.float64) - b).astype(np.float32))
    title = window.panels[0].title.text
    assert "|a - b| vs onnxruntime/cpu" in title and "max abs" in title
    qtbot.waitUntil(lambda: "first divergent" in window.panels[0].title.text, timeout=20000)
    _hold(qtbot, window)
    difference = window.result.difference
    lo, hi = window.panels[0].colorbar.levels()
    assert lo == pytest.approx(float(difference.lo.min())) and hi >= float(difference.diff.max()) - 1e-12
    window.toggle_pause()
    window.compare_box.setCurrentText("off")
    qtbot.waitUntil(lambda: window.result.difference is None and not window.panels, timeout=20000)
