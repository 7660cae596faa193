"""Several layers at once (pins), the timing panel's profile and compare mode, without a window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from live.compare import difference_map, live_compare
from live.errors import UsageError
from live.frames import Result, View
from live.model import Model
from live.pipeline import MAX_PINS, Pipeline, run_headless
from live.sources import VideoSource
from tests.helpers import assert_one_line_error, run_live

pytestmark = pytest.mark.opencv

PINS = ("stem/swish", "block1/relu", "branch/concat", "down_relu")


class CountingModel(Model):
    """The real model; it counts its forward passes."""

    calls = 0

    def forward(self, blob: np.ndarray, layers: Any = ()) -> dict[str, np.ndarray]:
        self.calls += 1
        return super().forward(blob, layers)


def _results(model: Model, clip: Path, view: View, frames: int | None = None) -> tuple[list[Result], dict]:
    results: list[Result] = []
    pipeline = Pipeline(model, VideoSource(clip, loop=False, pace="max"), view)
    stats = run_headless(pipeline, frames, on_result=results.append, timeout_s=120)
    return results, stats


def test_pinned_layers_equal_their_single_layer_taps_bit_for_bit(net_dir: Path, clip: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    view = View(layer=PINS[1], pins=PINS)
    results, _ = _results(model, clip, view, frames=5)
    last = results[-1]
    assert [p.layer for p in last.pinned] == list(PINS)  # the shown layer is pinned: pin order
    blob = model.blob(last.frame.image)
    for pin in last.pinned:
        alone = model.forward(blob, [pin.layer])[pin.layer]  # a pass that taps this layer only
        assert pin.blob.dtype == alone.dtype and pin.blob.shape == alone.shape
        assert np.array_equal(pin.blob, alone), pin.layer
        built = view.grid.builder().build(alone)
        assert np.array_equal(pin.grid, built.image), pin.layer
        assert np.array_equal(pin.lo, built.lo) and np.array_equal(pin.hi, built.hi)
        assert pin.layout == built.layout
    shown = next(p for p in last.pinned if p.layer == last.layer)
    assert shown.grid is last.grid and shown.blob is last.blob  # the shown layer's grid is not built twice
    # Each has its own normalization: layer ranges differ between layers.
    assert len({(float(p.lo.min()), float(p.hi.max())) for p in last.pinned}) == len(PINS)


def test_four_pins_make_one_forward_pass_per_frame(net_dir: Path, clip: Path) -> None:
    model = CountingModel.load(net_dir / "branchy.onnx")
    assert isinstance(model, CountingModel)
    model.calls = 0
    results, stats = _results(model, clip, View(layer=PINS[0], pins=PINS))
    assert stats["frames"] == 30 == len(results) and stats["errors"] == 0
    assert all(len(r.pinned) == 4 for r in results)
    assert model.calls == 30


def test_an_unpinned_shown_layer_leads_the_pinned_ones(net_dir: Path, clip: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    results, stats = _results(model, clip, View(layer="gate", pins=PINS[:2]), frames=2)
    assert [p.layer for p in results[-1].pinned] == ["gate", *PINS[:2]]
    assert [p["layer"] for p in stats["pinned"]] == ["gate", *PINS[:2]]
    results, _ = _results(model, clip, View(layer="gate"), frames=2)  # nothing pinned: one grid, as before
    assert results[-1].pinned == ()


def test_a_fifth_pin_is_refused(net_dir: Path, clip: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    pipeline = Pipeline(model, VideoSource(clip), View(layer=PINS[0], pins=PINS))
    with pytest.raises(UsageError, match=f"at most {MAX_PINS} layers can be pinned"):
        pipeline.set_view(pins=(*PINS, "gate"))
    assert pipeline.view.pins == PINS
    with pytest.raises(UsageError, match="at most 4"):
        Pipeline(model, VideoSource(clip), View(layer="gate", pins=(*PINS, "gate")))


def test_headless_stats_and_snapshot_report_every_pinned_layer(net_dir: Path, clip: Path, tmp_path: Path) -> None:
    stats_path, snaps = tmp_path / "stats.json", tmp_path / "snaps"
    result = run_live(
        "run", "--headless", "--source", clip, "--model", net_dir / "branchy.onnx", "--layer", "stem/swish",
        "--layer", "down_relu", "--frames", "3", "--pace", "max", "--stats-json", stats_path, "--snapshot-dir", snaps,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "layer stem/swish, pinned stem/swish, down_relu" in result.stdout + result.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["layer"] == "stem/swish" and stats["pins"] == ["stem/swish", "down_relu"]
    assert stats["pinned"] == [
        {"layer": "stem/swish", "shape": [1, 8, 32, 32], "grid_shape": stats["grid_shape"]},
        {"layer": "down_relu", "shape": [1, 16, 16, 16], "grid_shape": stats["pinned"][1]["grid_shape"]},
    ]
    meta = json.loads(next(snaps.glob("*.json")).read_text())
    assert [p["layer"] for p in meta["pinned"]] == ["stem/swish", "down_relu"]
    second = meta["pinned"][1]
    assert second["png"].endswith("-pin1-down_relu.png") and second["shape"] == [1, 16, 16, 16]
    assert (snaps / second["png"]).stat().st_size > 0
    blob = np.load(snaps / second["npy"])
    model = Model.load(net_dir / "branchy.onnx")
    assert blob.shape == (1, 16, 16, 16) and blob.dtype == np.float32
    assert meta["pinned"][0]["npy"] == meta["files"]["npy"]  # the shown layer's entry names the main files
    assert {p.name for p in snaps.iterdir()} >= {second["png"], second["npy"]}
    assert model.layer("down_relu").name == "down_relu"


def test_more_than_four_layers_on_the_command_line_is_one_line(net_dir: Path, clip: Path) -> None:
    layers = [arg for name in (*PINS, "gate") for arg in ("--layer", name)]
    result = run_live("run", "--headless", "--source", clip, "--model", net_dir / "branchy.onnx", *layers)
    assert result.returncode == 2
    assert_one_line_error(result, "--layer", "at most 4 layers can be pinned", "5 given")


def test_profile_on_request_comes_from_the_forward_thread(net_dir: Path, clip: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    pipeline = Pipeline(model, VideoSource(clip, loop=False, pace="max"), View(layer="gate"))
    assert pipeline.timing is None
    pipeline.request_profile(frames=3)
    results: list[Result] = []
    run_headless(pipeline, 4, on_result=results.append, timeout_s=120)
    timing = pipeline.timing
    assert timing is not None and timing.seq == 1 and timing.error is None
    profile = timing.profile
    assert profile is not None and profile.frames == 3 and profile.engine == model.engine
    assert profile.layers is not None or profile.reason  # per-layer times, or why the engine gives none


def test_compare_mode_gives_the_difference_of_two_real_forwards(net_dir: Path, clip: Path) -> None:
    pytest.importorskip("onnxruntime")
    model = Model.load(net_dir / "branchy.onnx")
    pipeline = Pipeline(model, VideoSource(clip, loop=False, pace="max"), View(layer="down_relu"))
    pipeline.set_compare(lambda m: live_compare("onnxruntime/cpu", m), "onnxruntime/cpu")
    results: list[Result] = []
    run_headless(pipeline, 4, on_result=results.append, timeout_s=120)
    assert pipeline.compare_error is None
    last = results[-1]
    difference = last.difference
    assert difference is not None and difference.error is None and difference.label == "onnxruntime/cpu"
    import onnxruntime as ort

    from live.onnx_graph import OnnxGraph

    blob = model.blob(last.frame.image)
    a = model.forward(blob, ["down_relu"])["down_relu"]
    data = OnnxGraph(model.onnx_model, model.input_shape).tap_model([model.layer("down_relu").key])
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    b = session.run(None, {session.get_inputs()[0].name: blob})[0]  # its one output: the tap
    expected = np.abs(a.astype(np.float64) - b.astype(np.float64)).astype(np.float32)
    assert difference.diff is not None and difference.diff.shape == a.shape
    np.testing.assert_array_equal(difference.diff, expected)
    np.testing.assert_array_equal(difference.diff, difference_map(a, b))
    assert difference.max_abs == pytest.approx(float(expected.max()), rel=1e-6, abs=1e-12)
    assert difference.max_abs < 1e-4  # the same network: tiny, but computed
    assert difference.grid is not None and difference.grid.dtype == np.uint8
    pipeline.set_compare(None)  # off: nothing is compared any more
    assert pipeline.compare_label is None
