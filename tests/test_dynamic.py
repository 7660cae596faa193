"""Networks as people bring them: dynamic input sizes, and listings that leave out weight-only constants.

``two_heads`` (tests/nets.py) declares its input ``N x 3 x H x W``: a .npy
input defines the free dimensions, an image keeps its own size, ``--size``
fixes one, and the layer shapes reported are those of the size in use.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from live.errors import ModelError
from live.model import DYNAMIC_PROBE_SIZE, MAX_DYNAMIC_SIDE, Model, Settings
from tests.helpers import run_live

pytestmark = pytest.mark.opencv


def test_a_npy_input_defines_the_dynamic_dimensions(net_dir: Path) -> None:
    model = Model.load(net_dir / "two_heads.onnx")
    assert model.input.dynamic == ("N", "H", "W") and model.input.declared == ("N", 3, "H", "W")
    assert model.input_shape == (1, 3, DYNAMIC_PROBE_SIZE[1], DYNAMIC_PROBE_SIZE[0])
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 48, 192), (2, 3, 40, 40), (1, 3, 64, 64), (3, 3, 17, 33)]:
        blob = model.check_blob(rng.standard_normal(shape).astype(np.float32))
        out = model.forward(blob, ["lrelu"])
        n, _, h, w = shape
        expected = (n, 4, (h + 1) // 2, (w + 1) // 2)  # c1 has stride 2, pad 1
        assert out["lrelu"].shape == expected
        assert model.layer("lrelu").shape == expected, "the catalog reports the size in use"
        assert model.input_shape == shape and "the .npy input's shape" in model.input.reason
    with pytest.raises(ModelError, match=r"shape 1x4x40x40; this model takes \?x3x\?x\?"):
        model.check_blob(np.zeros((1, 4, 40, 40), np.float32))


def test_an_image_keeps_its_own_size_and_size_overrides(net_dir: Path) -> None:
    model = Model.load(net_dir / "two_heads.onnx")
    frame = np.zeros((90, 160, 3), np.uint8)
    assert model.blob(frame).shape == (1, 3, 90, 160)
    assert model.layer("lrelu").shape == (1, 4, 45, 80)
    assert "the input's own size 160x90" in model.input.reason
    big = np.zeros((1500, 3000, 3), np.uint8)
    assert model.blob(big).shape == (1, 3, MAX_DYNAMIC_SIDE // 2, MAX_DYNAMIC_SIDE)  # aspect kept, bounded
    assert "scaled to 1024x512" in model.input.reason

    fixed = Model.load(net_dir / "two_heads.onnx", Settings(preprocess={"size": (32, 24)}))
    assert fixed.blob(frame).shape == (1, 3, 24, 32) and fixed.input.reason == "--size 32x24"
    assert fixed.check_blob(np.zeros((2, 3, 24, 32), np.float32)).shape == (2, 3, 24, 32)  # N stays free
    with pytest.raises(ModelError, match=r"shape 1x3x48x192; this model takes \?x3x24x32 \(--size 32x24\)"):
        fixed.check_blob(np.zeros((1, 3, 48, 192), np.float32))


def test_a_static_input_is_still_checked(net_dir: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    assert model.input.dynamic == () and model.input.reason == "from the model file"
    with pytest.raises(ModelError, match="shape 1x3x48x48; this model takes 1x3x32x32"):
        model.check_blob(np.zeros((1, 3, 48, 48), np.float32))
    assert model.blob(np.zeros((90, 160, 3), np.uint8)).shape == (1, 3, 32, 32)


def test_the_cli_says_what_is_dynamic_and_why(net_dir: Path, tmp_path: Path) -> None:
    listing = run_live("layers", "-m", net_dir / "two_heads.onnx", "--json", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    dims = json.loads(listing.stdout)["input_dims"]
    assert dims["declared"] == ["N", 3, "H", "W"] and dims["dynamic"] == ["N", "H", "W"]
    assert dims["shape"] == [1, 3, 224, 224] and "dynamic" in dims["reason"]
    text = run_live("layers", "-m", net_dir / "two_heads.onnx", cwd=tmp_path)
    assert "input 1x3x224x224: H, W dynamic" in text.stdout and "declared Nx3xHxW" in text.stdout

    photo = tmp_path / "photo.png"
    assert cv2.imwrite(str(photo), np.full((90, 160, 3), 128, np.uint8))
    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros((1, 3, 48, 192), np.float32))
    for source, size, expected in [
        (photo, [], [1, 3, 90, 160]),
        (npy, [], [1, 3, 48, 192]),
        (photo, ["--size", "32"], [1, 3, 32, 32]),
    ]:
        snap = run_live("snapshot", "-m", net_dir / "two_heads.onnx", "-i", source, *size, "-l", "lrelu",
                        "-o", tmp_path / "g.png", "--json", cwd=tmp_path)  # fmt: skip
        assert snap.returncode == 0, snap.stderr
        data = json.loads(snap.stdout)
        assert data["input_dims"]["shape"] == expected and data["input_shape"] == expected
        assert data["shape"] == [expected[0], 4, (expected[2] + 1) // 2, (expected[3] + 1) // 2]
    refused = run_live("snapshot", "-m", net_dir / "two_heads.onnx", "-i", npy, "--size", "32",
                       "-o", tmp_path / "g.png", cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip() == "live: error: input tensor has shape 1x3x48x192; this model takes ?x3x32x32 " \
        "(--size 32x32)"  # fmt: skip


def _with_constants(path: Path) -> Path:
    """A conv whose output is scaled by a factor the graph computes from constants (Constant -> Cast -> Mul)."""
    rng = np.random.default_rng(5)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([2], np.int64), "two"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["conv"], "conv", pads=[1, 1, 1, 1]),
        helper.make_node("Cast", ["two"], ["two_f"], "cast", to=TensorProto.FLOAT),
        helper.make_node("Sqrt", ["two_f"], ["root"], "root"),
        helper.make_node("Mul", ["conv", "root"], ["scaled"], "scaled"),
        helper.make_node("Relu", ["scaled"], ["out"], "relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "consts",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 16, 16])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_layers_leaves_out_weight_only_constants_unless_all(tmp_path: Path) -> None:
    path = _with_constants(tmp_path / "consts.onnx")
    text = run_live("layers", "-m", path, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "2 not listed (weight-only constants: --all lists them)" in text.stdout
    assert " cast " not in text.stdout and " root " not in text.stdout and " scaled " in text.stdout
    everything = run_live("layers", "-m", path, "--all", cwd=tmp_path)
    assert " cast " in everything.stdout and " root " in everything.stdout and "not listed" not in everything.stdout
    data = json.loads(run_live("layers", "-m", path, "--json", cwd=tmp_path).stdout)
    by_name = {layer["name"]: layer for layer in data["layers"]}
    assert set(by_name) == {"conv", "cast", "root", "scaled", "relu"}
    assert by_name["cast"]["tappable"] is False and by_name["cast"]["reason"].startswith("constant")
    assert by_name["scaled"]["tappable"] is True
