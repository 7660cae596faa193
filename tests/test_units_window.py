"""The units, live in the window: top-9 per unit, statistics, dead units, the running tile order, snapshots,
and an analysis shown with ``live run --units DIR``.

The real window offscreen, driven by pytest-qt (as tests/test_window.py) on clips and networks written by the
tests; the reducer is the real one, in the pipeline's real ``live-units`` thread.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from pyqtgraph.Qt import QT_LIB, QtCore, QtGui, QtWidgets
from pytestqt.qt_compat import qt_api

from live.frames import View
from live.manifest import read_analysis
from live.model import Model
from live.pipeline import Pipeline, run_headless
from live.qt_window import TOP_PAD, LiveWindow
from live.sources import VideoSource
from live.unitfeed import running_order
from live.units import UnitOptions, UnitReducer
from tests.helpers import assert_one_line_error, live_threads, run_live

pytestmark = pytest.mark.opencv
Qt = QtCore.Qt
WAIT_MS = 30000


@pytest.fixture(autouse=True)
def _one_binding() -> None:
    """pytest-qt and the window must drive the same Qt binding (two in one process abort it)."""
    if qt_api.pytest_qt_api != QT_LIB.lower():
        pytest.fail(f"pytest-qt uses {qt_api.pytest_qt_api} but pyqtgraph (the window) {QT_LIB}")


def _window(qtbot, model_path: Path, clip: Path, layer: str, **options) -> LiveWindow:
    model = Model.load(model_path)
    pipeline = Pipeline(model, VideoSource(clip, loop=True, pace="file"), View(layer=layer))
    win = LiveWindow(pipeline, **options)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.shown >= 2, timeout=WAIT_MS)
    return win


def _settle(qtbot, win: LiveWindow) -> None:
    """Pause, and wait until every result was reduced (or counted as skipped) and the window shows that state."""
    win.toggle_pause()
    qtbot.wait(300)  # a frame in flight may still arrive
    feed = win.pipeline.units

    def settled() -> bool:
        state = feed.state
        return (
            state is not None
            and state.frames + state.skipped == win.pipeline.results.seq
            and not feed._dirty
            and win.selected in state.top  # the state carries the selected unit's top-k (asked for by the window)
            and win.units_state is state
        )

    qtbot.waitUntil(settled, timeout=WAIT_MS)


@pytest.fixture
def units_window(qtbot, net_dir: Path, clip: Path, tmp_path: Path):
    """The branchy test net on a moving clip, units on with every frame eligible (gap 0)."""
    win = _window(
        qtbot, net_dir / "branchy.onnx", clip, "stem/swish", units=UnitOptions(gap_s=0.0), snapshot_dir=tmp_path / "s"
    )
    yield win
    win.close()


def test_the_top9_panel_fills_best_first_with_what_the_reducer_holds(units_window: LiveWindow, qtbot) -> None:
    win = units_window
    qtbot.waitUntil(lambda: len(win.top_shown) == 9, timeout=WAIT_MS)
    win.selected = 3
    _settle(qtbot, win)
    state = win.units_state
    held = win.pipeline.units.reducer.layers["stem/swish"].top(3)
    assert state is not None and state.layer == "stem/swish" and state.units == 8 and state.frames >= 9
    assert [r.score for r in win.top_shown] == [r.score for r in held[:9]]
    assert [(r.source, r.frame, r.time_s) for r in win.top_shown] == [(r.source, r.frame, r.time_s) for r in held[:9]]
    scores = [r.score for r in win.top_shown]
    assert scores == sorted(scores, reverse=True)
    # Each thumbnail is drawn 1:1 in its cell, centred; its caption gives the score and the time.
    mosaic, cell = win.top_item.image, win._cell()
    for i, record in enumerate(win.top_shown):
        h, w = record.thumb.shape[:2]
        y0 = (i // 3) * (cell + TOP_PAD) + (cell - h) // 2
        x0 = (i % 3) * (cell + TOP_PAD) + (cell - w) // 2
        np.testing.assert_array_equal(mosaic[y0 : y0 + h, x0 : x0 + w], record.thumb[:, :, ::-1])
        assert win.top_captions[i].isVisible()
        assert win.top_captions[i].textItem.toPlainText() == f"{record.score:.3g}  {record.time_s:.1f} s"
    assert win.units_title.text.startswith("unit 3: top-9 so far")


def test_reset_empties_the_panel_and_a_layer_switch_starts_afresh(units_window: LiveWindow, qtbot) -> None:
    win = units_window
    qtbot.waitUntil(lambda: len(win.top_shown) == 9, timeout=WAIT_MS)
    _settle(qtbot, win)
    qtbot.keyClick(win.canvas, Qt.Key.Key_R)  # the reset key
    qtbot.waitUntil(lambda: win.pipeline.units.state.frames == 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: win.units_state is win.pipeline.units.state, timeout=WAIT_MS)
    assert win.top_shown == () and not any(c.isVisible() for c in win.top_captions)
    assert all(top == () for top in win.units_state.top.values())
    win.toggle_pause()
    qtbot.waitUntil(lambda: len(win.top_shown) == 9, timeout=WAIT_MS)  # it fills again as the video plays

    before, offered = win.result.frame.index, win.pipeline.results.seq
    win.select_layer("down_relu")
    qtbot.waitUntil(lambda: win.units_state is not None and win.units_state.layer == "down_relu", timeout=WAIT_MS)
    assert win.units_state.units == 16
    qtbot.waitUntil(lambda: len(win.top_shown) == 9, timeout=WAIT_MS)
    state = win.units_state
    assert all(r.frame > before for top in state.top.values() for r in top)  # nothing from before the switch
    assert 9 <= state.frames <= win.pipeline.results.seq - offered  # counted from the switch on


def test_order_by_running_mean(qtbot, net_dir: Path, still_clip: Path) -> None:
    win = _window(qtbot, net_dir / "branchy.onnx", still_clip, "block1/add")
    win.order_box.setCurrentText("running")
    assert win.pipeline.view.grid.order == "running"

    def ordered() -> bool:
        state, result = win.pipeline.units.state, win.result
        return (
            state is not None
            and state.frames > 0
            and result.view.grid.order == "running"
            and result.layout.order == tuple(int(i) for i in np.argsort(-state.mean, kind="stable"))
        )

    qtbot.waitUntil(ordered, timeout=WAIT_MS)
    assert win.result.layout.order != tuple(range(8))  # really reordered
    assert running_order(win.pipeline.units.state.mean) == win.result.layout.order
    win.close()


def _dead_net(path: Path) -> Path:
    """Conv 3 -> 4 channels then Relu; channel 2 has zero weights and a negative bias: always 0, a dead unit."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32)
    w[2] = 0.0
    b = np.array([1.0, 1.0, -1.0, 1.0], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w", "b"], ["conv"], "conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
            helper.make_node("Relu", ["conv"], ["relu"], "relu"),
        ],
        "dead",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("relu", TensorProto.FLOAT, [1, 4, 16, 16])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_dead_units_are_marked_on_the_grid_and_in_the_plot(qtbot, clip: Path, tmp_path: Path) -> None:
    win = _window(qtbot, _dead_net(tmp_path / "dead.onnx"), clip, "relu")
    qtbot.waitUntil(lambda: win.units_state is not None and 1 <= win.units_state.frames < 5, timeout=WAIT_MS)
    win.toggle_pause()  # a few frames in: nothing is called dead yet, however silent
    assert win.units_state.dead.tolist() == [False, False, True, False]
    assert win.marked_dead() == [] and win.dead_marks.path().elementCount() == 0
    win.dead_after = 3
    win.toggle_pause()
    qtbot.waitUntil(lambda: win.units_state.frames >= 3 and win.marked_dead() == [2], timeout=WAIT_MS)
    state = win.units_state
    assert state.dead.tolist() == [False, False, True, False]
    assert state.max[2] == 0.0 and state.sparsity[2] == 1.0 and state.sparsity[0] < 1.0
    path = win.dead_marks.path()
    assert path.elementCount() == 4  # one X: two strokes
    x, y, w, h = win.result.layout.tile_rect(2)
    assert win.dead_marks.path().boundingRect() == QtCore.QRectF(x, y, w, h)
    qtbot.waitUntil(lambda: win.units_dead.getData()[0].tolist() == [2.0], timeout=5000)  # redrawn once a second
    # Hovering over the bar of unit 2 shows its figures.
    view = win.units_plot.vb
    scene = view.mapViewToScene(QtCore.QPointF(2.0, 0.0))
    point = win.lower.mapFromScene(scene)
    move = QtGui.QMouseEvent(
        QtCore.QEvent.Type.MouseMove, QtCore.QPointF(point), Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    QtWidgets.QApplication.sendEvent(win.lower.viewport(), move)
    qtbot.waitUntil(lambda: win.units_info.text.startswith("unit 2 (dead): mean 0,"), timeout=5000)
    assert "sparsity 100%" in win.units_info.text and "max 0" in win.units_info.text
    win.close()


def test_a_snapshot_writes_a_loadable_reducer_state(units_window: LiveWindow, qtbot, tmp_path: Path) -> None:
    win = units_window
    qtbot.waitUntil(lambda: len(win.top_shown) == 9, timeout=WAIT_MS)
    _settle(qtbot, win)
    frames = win.pipeline.units.state.frames
    qtbot.keyClick(win.canvas, Qt.Key.Key_S)
    png = win.snapshots[-3]
    qtbot.waitUntil(lambda: bool(win.units_saved), timeout=WAIT_MS)
    folder = win.units_saved[0]
    assert folder == png.with_name(png.stem + "-units") and folder.parent == tmp_path / "s"
    loaded = UnitReducer.load(folder)
    layer = loaded.layers["stem/swish"]
    assert layer.frames == frames and layer.units == 8
    assert [r.score for r in layer.top(0)] == [r.score for r in win.units_state.top[0]]
    assert any(f"units state: {folder}" == m for m in win.messages)


def test_closing_stops_the_units_thread_and_headless_runs_have_none(qtbot, net_dir: Path, clip: Path) -> None:
    win = _window(qtbot, net_dir / "branchy.onnx", clip, "stem/swish")
    assert "live-units" in [t.name for t in threading.enumerate()]
    win.close()
    assert not win.pipeline.alive and live_threads() == []

    model = Model.load(net_dir / "branchy.onnx")
    plain = Pipeline(model, VideoSource(clip, loop=False, pace="max"), View(layer="stem/swish"))
    names: set[str] = set()
    stats = run_headless(plain, 10, on_result=lambda _: names.update(t.name for t in threading.enumerate()))
    assert plain.units is None and "live-units" not in names and "units" not in stats

    fed = Pipeline(model, VideoSource(clip, loop=False, pace="max"), View(layer="stem/swish"))
    feed = fed.enable_units(UnitOptions(gap_s=0.0))
    stats = run_headless(fed, None)
    assert stats["frames"] == 30 and stats["units"]["layer"] == "stem/swish"
    assert 1 <= stats["units"]["frames"] <= 30
    assert stats["units"]["frames"] + stats["units"]["skipped"] == 30  # every result seen or counted as skipped
    assert feed.save(Path("never")).exception() is not None  # the thread has ended: a save fails at once
    assert live_threads() == []


# ----------------------------------------------------------------------------- an analysis: live run --units DIR


def _analysis(folder: Path, layer: str = "stem/swish", units: int = 8) -> Path:
    """A small analysis as `live analyze` writes it: manifest.json and thumbnails (each unit a different colour)."""
    (folder / "thumbs" / "0").mkdir(parents=True)
    top = []
    for unit in range(units):
        records = []
        for rank in range(3):
            thumb = f"thumbs/0/{unit}-{rank}.png"
            image = np.full((20 + rank, 30, 3), (unit * 30, rank * 80, 200), np.uint8)
            assert cv2.imwrite(str(folder / thumb), image)
            records.append(
                {"source": "a.mp4", "frame": 100 * unit + rank, "time_s": unit + rank / 10, "score": 9.0 - rank,
                 "y": rank, "x": unit % 4, "thumb": thumb}
            )  # fmt: skip
        top.append(records)
    manifest = {"model": "branchy.onnx", "layers": {layer: {"units": units, "k": 9, "top": top}}, "frames": 50}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_an_analysis_shows_in_the_panel(qtbot, net_dir: Path, clip: Path, tmp_path: Path) -> None:
    analysis = read_analysis(_analysis(tmp_path / "an"))
    win = _window(qtbot, net_dir / "branchy.onnx", clip, "stem/swish", analysis=analysis)
    qtbot.waitUntil(lambda: len(win.top_shown) == 3, timeout=WAIT_MS)
    assert [(r.frame, r.score) for r in win.top_shown] == [(0, 9.0), (1, 8.0), (2, 7.0)]
    assert win.units_title.text == "unit 0: top-9 of the analysis an"
    qtbot.keyClick(win.canvas, Qt.Key.Key_Right)  # select map 1: its records at once
    assert win.selected == 1 and [r.frame for r in win.top_shown] == [100, 101, 102]
    cell = win._cell()
    h, w = 21, 30  # the second thumbnail, drawn 1:1 and centred
    y0, x0 = (cell - h) // 2, cell + TOP_PAD + (cell - w) // 2
    np.testing.assert_array_equal(win.top_item.image[y0 : y0 + h, x0 : x0 + w], np.full((h, w, 3), (200, 80, 30)))
    assert win.top_captions[0].textItem.toPlainText() == "9  1.0 s"
    win.select_layer("down_relu")  # a layer the analysis lacks: said on the status line, the panel empty
    qtbot.waitUntil(lambda: win.result.layer == "down_relu", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: win.top_shown == () and "has no layer down_relu" in win.units_title.text, timeout=5000)
    assert "the analysis an has no layer down_relu" in win.messages
    win.close()


def test_run_with_units_from_the_command_line(net_dir: Path, clip: Path, tmp_path: Path) -> None:
    folder = _analysis(tmp_path / "an")
    shot = tmp_path / "shot.png"
    ok = run_live("run", "--source", clip, "-m", net_dir / "branchy.onnx", "--units", folder, "--frames", "5",
                  "--screenshot", shot, cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert cv2.imread(str(shot)) is not None
    bad = run_live("run", "--source", clip, "-m", net_dir / "branchy.onnx", "--units", folder, "--layer", "down_relu")
    assert bad.returncode == 2
    assert_one_line_error(bad)
    assert "--layer down_relu: the analysis" in bad.stderr and "has no such layer; it has stem/swish" in bad.stderr


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        ("missing", "no such folder"),
        ("no manifest", "analysis manifest not found"),
        ("not json", "is not valid JSON"),
        ("no layers", 'has no "layers" object'),
        ("short top", 'needs "top", a list of 8 lists'),
        ("bad record", "a record lacks 'score'"),
        ("escaping thumb", "is not a relative path inside the folder"),
    ],
)
def test_a_bad_analysis_folder_is_one_line_exit_2(tmp_path: Path, damage: str, needle: str) -> None:
    folder = tmp_path / "an"
    if damage != "missing":
        _analysis(folder)
    manifest = folder / "manifest.json"
    if damage == "no manifest":
        manifest.unlink()
    elif damage == "not json":
        manifest.write_text('{"layers": ')
    elif damage in ("no layers", "short top", "bad record", "escaping thumb"):
        data = json.loads(manifest.read_text())
        layer = data["layers"]["stem/swish"]
        if damage == "no layers":
            data = {"model": "x"}
        elif damage == "short top":
            layer["top"] = layer["top"][:3]
        elif damage == "bad record":
            del layer["top"][2][0]["score"]
        else:
            layer["top"][0][0]["thumb"] = "../../etc/passwd"
        manifest.write_text(json.dumps(data))
    result = run_live("run", "--source", "demo", "--units", folder, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result)
    assert result.stderr.startswith("live: error: ") and needle in result.stderr


def test_an_analysis_of_another_shape_is_said_not_shown(qtbot, net_dir: Path, clip: Path, tmp_path: Path) -> None:
    analysis = read_analysis(_analysis(tmp_path / "an", layer="down_relu", units=8))  # the layer has 16 maps
    win = _window(qtbot, net_dir / "branchy.onnx", clip, "down_relu", analysis=analysis)
    qtbot.waitUntil(lambda: "the analysis has 8 units for down_relu, the window 16" in win.messages, timeout=WAIT_MS)
    assert win.top_shown == ()
    win.close()
