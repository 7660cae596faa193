"""Where the time goes: per-layer times from cv2.dnn's own profile (`live layers --timing`, live.profile)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from live.cli import main
from live.engines import HAS_CLASSIC, engines_available
from live.model import Model, Settings
from live.profile import KINDS, Profile, kind_of, layer_map, profile, targets_in_use
from tests import nets
from tests.helpers import REPO, assert_one_line_error, run_live

pytestmark = pytest.mark.opencv


def _timing(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["layers", "--timing", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_timing_json_shape_and_totals(net_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _timing(capsys, "-m", str(net_dir / "branchy.onnx"), "--frames", "4")
    assert {"engine", "target", "layers", "total_ms", "by_op", "by_kind", "frames", "reason"} <= set(data)
    assert data["engine"] == engines_available()[0] and data["target"] == "cpu" and data["frames"] == 4
    # Every OpenCV measured (4.14, 5.0 both engines, 5.1) gives per-layer times for ONNX networks.
    assert data["layers"] is not None and data["reason"] is None, data["reason"]
    for row in data["layers"]:
        assert {"name", "op", "ms"} <= set(row) and row["ms"] >= 0
    for op, total in data["by_op"].items():
        assert total == pytest.approx(sum(r["ms"] for r in data["layers"] if r["op"] == op), abs=1e-3)
    for kind, total in data["by_kind"].items():
        assert total == pytest.approx(sum(r["ms"] for r in data["layers"] if kind_of(r["op"]) == kind), abs=1e-3)
    assert sum(data["by_op"].values()) == pytest.approx(sum(r["ms"] for r in data["layers"]), abs=1e-3)
    assert data["total_ms"] > 0
    # The engine's total is the sum of its layers (within rounding) on every engine measured.
    assert sum(r["ms"] for r in data["layers"]) == pytest.approx(data["total_ms"], rel=0.05, abs=0.01)
    convs = [r for r in data["layers"] if r["op"] == "Conv"]
    assert {r["name"] for r in convs} >= {"stem/conv", "block1/dw", "block1/pw", "branch/left", "branch/right", "down"}
    assert data["by_kind"]["convolution"] == pytest.approx(sum(r["ms"] for r in convs), abs=1e-3)


def test_cv2_names_map_to_live_layers_also_for_unnamed_nodes(tmp_path: Path) -> None:
    proto = nets.branchy()
    for node in proto.graph.node:
        if node.op_type == "Conv":
            node.name = ""  # cv2 calls them onnx_node!K (new engine) or onnx_node_output_0!T (classic)
    path = tmp_path / "unnamed.onnx"
    onnx.save(proto, str(path))
    for engine in engines_available():
        model = Model.load(path, Settings(engine=engine))
        blob = np.random.default_rng(0).random(model.input_shape, np.float32)
        result = profile(model, blob, frames=2)
        assert result.layers is not None
        by_layer = {row.layer: row for row in result.layers if row.layer is not None}
        for tensor in ("stem/conv:0", "block1/dw:0", "block1/pw:0", "branch/left:0", "branch/right:0", "down:0"):
            row = by_layer[tensor]
            assert row.op == "Conv" and kind_of(row.cv2_type) == "convolution", (engine, row)
            assert model.catalog.find(row.name).tensor == tensor
        # Layers cv2 makes up keep its own names and types.
        for row in result.layers:
            if row.layer is None:
                assert row.name == row.cv2_name and row.op == row.cv2_type
            else:
                assert model.catalog.find(row.layer).op == row.op


def test_profile_runs_the_plain_network(net_dir: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    net = model.plain_net()
    assert not [name for name in net.getLayerNames() if "__live_tap" in name]
    names = list(net.getLayerNames())
    types = [net.getLayer(name).type for name in names]
    mapped = layer_map(model, names, types)
    assert len(mapped) == len(names)
    assert ("stem/conv", "Conv") in mapped


def test_op_kinds_are_disjoint() -> None:
    seen: dict[str, str] = {}
    for kind, ops in KINDS.items():
        for op in ops:
            assert op not in seen, f"{op} is both {seen[op]} and {kind}"
            seen[op] = kind
    assert kind_of("Convolution") == kind_of("Conv2") == kind_of("Conv") == "convolution"
    assert kind_of("SomethingNew") == "other"


def test_no_per_layer_times_is_said_plainly() -> None:
    empty = Profile("new", "cpu", None, 3.0, 3.1, 5, "the new engine gives no per-layer times")
    data = empty.to_dict()
    assert data["layers"] is None and data["by_op"] is None and data["reason"]
    assert data["total_ms"] == 3.0
    assert empty.ms_of("conv") is None and empty.top() == [] and empty.by_op() == {}


def test_timing_text_on_the_bundled_model() -> None:
    result = run_live("layers", "--timing", "--frames", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("efficientnet") and "ms a frame" in lines[0]
    assert lines[1].startswith("slowest 15 of")
    assert any(line.startswith("by kind: convolution") for line in lines)
    assert any(line.startswith("by op:") for line in lines)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--frames", "3"], ["--frames", "--timing"]),
        (["--timing", "--frames", "0"], ["--frames", "0"]),
        (["--timing", "--frames", "x"], ["--frames", "x"]),
    ],
)
def test_bad_timing_options_are_one_line(net_dir: Path, args: list[str], needles: list[str]) -> None:
    assert_one_line_error(run_live("layers", "-m", net_dir / "branchy.onnx", *args), *needles)


@pytest.mark.opencl
@pytest.mark.skipif(not HAS_CLASSIC, reason="OpenCL targets need the classic engine, gone from this OpenCV")
def test_a_target_cv2_switches_silently_is_seen_after_the_first_forward(net_dir: Path, clean_env) -> None:
    """PoCL without OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES: cv2.dnn accepts the OpenCL target and runs on the CPU."""
    script = (
        "import sys, cv2, numpy as np\n"
        "from live.profile import targets_in_use\n"
        "if not cv2.ocl.haveOpenCL() or not cv2.ocl.Device.getDefault().available(): print('none'); sys.exit()\n"
        f"net = cv2.dnn.readNet({str(net_dir / 'branchy.onnx')!r}"
        + (", '', '', cv2.dnn.ENGINE_CLASSIC" if hasattr(cv2.dnn, "ENGINE_CLASSIC") else "")
        + ")\n"
        "net.setPreferableTarget(cv2.dnn.DNN_TARGET_OPENCL)\n"
        "net.setInput(np.zeros((1, 3, 32, 32), np.float32)); net.forward()\n"
        "print(','.join(sorted(targets_in_use(net))))\n"
    )
    env = dict(clean_env, OPENCV_OPENCL_DEVICE=":CPU:", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    if done.stdout.strip() == "none":
        pytest.skip("no OpenCL CPU device (install pocl-opencl-icd)")
    assert done.stdout.strip() == "cpu"  # asked OpenCL, ran on the CPU: the layers say so


def test_targets_in_use_on_the_cpu(net_dir: Path) -> None:
    model = Model.load(net_dir / "two_heads.onnx", Settings(engine=engines_available()[-1]))
    net = model.plain_net()
    net.setInput(np.zeros(model.input_shape, np.float32))
    net.forward(net.getUnconnectedOutLayersNames())
    assert targets_in_use(net) <= {"cpu"}  # the classic engine's layers say cpu; the new engine's say nothing
