"""Every tappable layer must hold the numbers the reference runtime computes.

For each network and each engine the installed OpenCV has, one forward pass
taps every layer `live layers` calls tappable, and each tapped tensor is
compared with onnxruntime's output for the same tensor on the same input blob
(rtol 1e-3, atol 1e-3 of the tensor's largest magnitude). A layer that comes
back with another layer's data fails here.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from live.engines import HAS_CLASSIC, engines_available
from live.model import Model, Settings
from live.onnx_graph import TAP_PREFIX, OnnxGraph, tap_index
from tests.helpers import assert_one_line_error, assert_taps_match_reference, random_frame, run_live, shared_model

pytestmark = pytest.mark.opencv

ENGINES = engines_available()
LIGHT = ["googlenet", "squeezenet", "resnet50", "shufflenet", "densenet121"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["branchy", "two_heads", "gray", "nhwc_input"])
def test_built_networks_match_reference(net_dir: Path, name: str, engine: str) -> None:
    path = net_dir / f"{name}.onnx"
    model = Model.load(path, Settings(engine=engine))
    assert model.engine == engine
    assert_taps_match_reference(path, model)


@pytest.mark.parametrize("engine", ENGINES)
def test_fused_and_odd_layers_are_tappable(net_dir: Path, engine: str) -> None:
    """The layers importers fuse away or that have awkward names come back, by tensor and node name."""
    model = Model.load(net_dir / "branchy.onnx", Settings(engine=engine))
    for name in ("stem/sigmoid", "stem/bn_out", "stem/conv", "stem/conv:0", "block1/relu", "split_b", "to_nhwc"):
        assert model.layer(name).tappable, name
    assert model.layer("stem/conv:0") is model.layer("stem/conv")  # tensor and node name: one layer
    assert model.layer("to_nhwc").shape == (1, 16, 16, 16)
    assert model.layer("flatten").shape == (1, 1024)  # reshape target computed at run time


@pytest.mark.parametrize("engine", ENGINES)
def test_tapping_alone_equals_tapping_together(net_dir: Path, engine: str) -> None:
    """A tap set of one (its own cached net) gives what the all-layers pass gives."""
    model = Model.load(net_dir / "branchy.onnx", Settings(engine=engine))
    blob = model.blob(random_frame(model, 5))
    names = [layer.name for layer in model.tappable_layers()]
    together = model.forward(blob, names)
    for name in ("stem/sigmoid", "block1/add", "fc"):
        alone = model.forward(blob, [name])
        # Same tensor; the last digits may differ where the lone tap lets cv2 fuse more layers.
        scale = float(np.abs(together[name]).max())
        np.testing.assert_allclose(alone[name], together[name], rtol=1e-4, atol=1e-4 * scale)
        np.testing.assert_allclose(alone["prob"], together["prob"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_tap_model_is_the_files_bytes_with_the_taps_appended(net_dir: Path, engine: str) -> None:
    """Taps that include the network's outputs are the file's bytes plus a second graph field of Identity nodes,
    which the parser merges into the first; cv2 then gives what the rebuilt graph gives."""
    path = net_dir / "branchy.onnx"
    data = path.read_bytes()
    proto = onnx.load_from_string(data)
    loaded = Model.load(path, Settings(engine=engine))
    shape = loaded.input_shape
    appended, rebuilt = OnnxGraph(proto, shape, data), OnnxGraph(proto, shape)
    assert appended.model is proto and appended.data is data  # nothing copied: the graph runs as the file has it
    taps = [*appended.outputs, *(loaded.layer(name).key for name in ("stem/sigmoid", "block1/add", "split_b"))]
    fast, slow = appended.tap_model(taps), rebuilt.tap_model(taps)
    assert fast.startswith(data) and len(fast) - len(data) < 1000
    merged = onnx.load_from_string(fast)
    assert [n.name for n in merged.graph.node] == [n.name for n in proto.graph.node] + [
        f"{TAP_PREFIX}{i}__" for i in range(len(taps))
    ]
    assert [o.name for o in merged.graph.output] == appended.outputs + [f"{TAP_PREFIX}{i}__" for i in range(len(taps))]
    blob = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    got = []
    for tap_model in (fast, slow):
        net = loaded._net_from_onnx(tap_model)
        net.setInput(blob)
        names = net.getUnconnectedOutLayersNames()
        outs = {tap_index(name): out for name, out in zip(names, net.forward(names), strict=True)}
        got.append([outs[i] for i in range(len(taps))])
    for a, b in zip(*got, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * float(np.abs(b).max()))
    # Taps that leave an output out: the outputs must be exactly the taps, so the graph is rebuilt.
    only = onnx.load_from_string(appended.tap_model([taps[-1]]))
    assert [o.name for o in only.graph.output] == [f"{TAP_PREFIX}0__"]


def test_a_graph_that_must_change_is_copied_and_rebuilt(net_dir: Path) -> None:
    """A dynamic input fixed to a shape: the file's bytes are not the graph as run, so they are not used."""
    data = (net_dir / "two_heads.onnx").read_bytes()  # N x 3 x H x W
    proto = onnx.load_from_string(data)
    graph = OnnxGraph(proto, (1, 3, 64, 48), data)
    assert graph.data is None and graph.model is not proto
    assert [d.dim_value for d in graph.model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 64, 48]
    assert [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim] == ["N", "", "H", "W"]  # as read
    tap = onnx.load_from_string(graph.tap_model([*graph.outputs]))
    assert [o.name for o in tap.graph.output] == [f"{TAP_PREFIX}{i}__" for i in range(len(graph.outputs))]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", LIGHT)
def test_classic_architectures_match_reference(light_path, name: str, engine: str) -> None:
    path = light_path(name)
    model = Model.load(path, Settings(engine=engine))
    figures = assert_taps_match_reference(path, model)
    assert figures["float_share"] == 1.0


@pytest.mark.parametrize("engine", ENGINES)
def test_mnist_from_model_zoo(engine: str) -> None:
    path = shared_model("mnist-8.onnx")
    model = Model.load(path, Settings(engine=engine))
    assert model.input_shape == (1, 1, 28, 28)
    assert model.preprocess.channels == 1
    assert_taps_match_reference(path, model)


@pytest.mark.parametrize("engine", ENGINES)
def test_ultraface_detector(engine: str) -> None:
    path = shared_model("ultraface-rfb-320.onnx")
    settings = Settings(engine=engine, preprocess={"mean": 127.0, "std": 128.0})
    model = Model.load(path, settings)
    assert model.input_shape == (1, 3, 240, 320)
    figures = assert_taps_match_reference(path, model, seed=3)
    assert figures["listed"] == 242


@pytest.mark.skipif(not HAS_CLASSIC, reason="OpenCV 5.1 has no classic engine (see the test below)")
def test_tflite_runs_on_classic_engine_with_layer_taps() -> None:
    path = shared_model("vww-96-float.tflite")
    model = Model.load(path, Settings(preprocess={"size": (96, 96)}))
    assert model.engine == "classic"
    if len(ENGINES) > 1:
        assert any("TFLite" in note for note in model.notes)
    taps = model.tappable_layers()
    assert len(taps) >= 20
    spatial = [layer for layer in taps if layer.shape is not None and len(layer.shape) == 4]
    assert spatial and spatial[0].shape[2:] == (48, 48)
    blob = model.blob(np.full((120, 160, 3), 128, np.uint8))
    together = model.forward(blob, [layer.name for layer in taps])
    probs = together[model.outputs[0]]
    assert probs.shape == (1, 2)
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-4)
    middle = spatial[len(spatial) // 2].name
    np.testing.assert_array_equal(model.forward(blob, [middle])[middle], together[middle])


CAFFE_PROTOTXT = """
name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "pool1" type: "Pooling" bottom: "data" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "pool1" top: "relu1" }
layer { name: "scale" type: "Power" bottom: "relu1" top: "scale" power_param { scale: 2.0 } }
layer { name: "prob" type: "Softmax" bottom: "scale" top: "prob" }
"""


def test_caffe_prototxt(tmp_path: Path) -> None:
    """Caffe loads on OpenCV 4.x and taps by layer name; OpenCV 5 says to use ONNX."""
    path = tmp_path / "tiny.prototxt"
    path.write_text(CAFFE_PROTOTXT)
    settings = Settings(preprocess={"size": (8, 8), "scale": 1.0, "rgb": False})
    if not hasattr(cv2.dnn, "readNetFromCaffe"):
        from live.errors import ModelError

        with pytest.raises(ModelError, match="ONNX"):
            Model.load(path, settings)
        return
    model = Model.load(path, settings)
    assert [layer.name for layer in model.layers] == ["pool1", "relu1", "scale", "prob"]
    frame = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    blob = model.blob(frame)
    out = model.forward(blob, ["pool1", "scale"])
    expected_pool = blob.reshape(1, 3, 4, 2, 4, 2).max(axis=(3, 5))
    np.testing.assert_allclose(out["pool1"], expected_pool, rtol=1e-6)
    np.testing.assert_allclose(out["scale"], 2 * np.maximum(expected_pool, 0), rtol=1e-6)


TF_TEXT_GRAPH = """
node { name: "input" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
node { name: "weights" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
  attr { key: "value" value { tensor { dtype: DT_FLOAT
    tensor_shape { dim { size: 1 } dim { size: 1 } dim { size: 3 } dim { size: 2 } }
    float_val: 1.0 float_val: -1.0 float_val: 0.5 float_val: 0.5 float_val: -0.25 float_val: 2.0 } } } }
node { name: "conv" op: "Conv2D" input: "input" input: "weights"
  attr { key: "T" value { type: DT_FLOAT } } attr { key: "data_format" value { s: "NHWC" } }
  attr { key: "padding" value { s: "SAME" } } attr { key: "strides" value { list { i: 1 i: 1 i: 1 i: 1 } } } }
node { name: "relu" op: "Relu" input: "conv" attr { key: "T" value { type: DT_FLOAT } } }
node { name: "pool" op: "MaxPool" input: "relu" attr { key: "T" value { type: DT_FLOAT } }
  attr { key: "data_format" value { s: "NHWC" } } attr { key: "ksize" value { list { i: 1 i: 2 i: 2 i: 1 } } }
  attr { key: "padding" value { s: "VALID" } } attr { key: "strides" value { list { i: 1 i: 2 i: 2 i: 1 } } } }
"""


@pytest.mark.skipif(not hasattr(cv2.dnn, "readNetFromTensorflow"), reason="OpenCV 5.1 dropped the TensorFlow reader")
def test_tensorflow_graph_taps_by_layer_name(tmp_path: Path) -> None:
    """A TensorFlow text graph (weights inline) loads on the classic engine; taps match numpy."""
    (tmp_path / "tiny.pbtxt").write_text(TF_TEXT_GRAPH)
    model = Model.load(tmp_path / "tiny.pbtxt", Settings(preprocess={"size": (8, 8), "scale": 1 / 255}))
    assert model.engine == "classic"
    assert [layer.name for layer in model.layers] == ["conv", "relu", "pool"]
    assert [layer.shape for layer in model.layers] == [(1, 2, 8, 8), (1, 2, 8, 8), (1, 2, 4, 4)]
    blob = model.blob(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    out = model.forward(blob, ["conv", "pool"])
    weights = np.array([[1.0, -1.0], [0.5, 0.5], [-0.25, 2.0]], np.float32)
    conv = np.einsum("nchw,cd->ndhw", blob, weights)
    np.testing.assert_allclose(out["conv"], conv, rtol=1e-5, atol=1e-6)
    pool = np.maximum(conv, 0).reshape(1, 2, 4, 2, 4, 2).max(axis=(3, 5))
    np.testing.assert_allclose(out["pool"], pool, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(hasattr(cv2.dnn, "readNetFromTensorflow"), reason="this OpenCV reads TensorFlow graphs")
def test_tensorflow_without_a_reader_is_one_line(tmp_path: Path) -> None:
    """OpenCV 5.1 reads no TensorFlow graphs: one line naming the file, the version and the way out."""
    (tmp_path / "tiny.pbtxt").write_text(TF_TEXT_GRAPH)
    result = run_live("layers", "-m", tmp_path / "tiny.pbtxt", cwd=tmp_path)
    assert_one_line_error(result, "tiny.pbtxt", f"OpenCV {cv2.__version__} cannot read TensorFlow", "ONNX")


@pytest.mark.skipif(HAS_CLASSIC, reason="this OpenCV has the classic engine (see the test above)")
def test_tflite_without_a_classic_engine_taps_its_outputs_only(tmp_path: Path) -> None:
    """OpenCV 5.1: the new engine runs TFLite; its outputs are tappable and match a bare forward, the rest say why."""
    path = shared_model("vww-96-float.tflite")
    model = Model.load(path, Settings(preprocess={"size": (96, 96)}))
    assert model.engine == "new"
    assert any("only the outputs" in note for note in model.notes)
    taps = model.tappable_layers()
    assert [layer.name for layer in taps] == model.outputs
    others = [layer for layer in model.layers if not layer.tappable]
    assert len(others) >= 20 and all("can return another tensor" in layer.reason for layer in others)
    frame = random_frame(model)
    blob = model.blob(frame)
    bare = cv2.dnn.readNetFromTFLite(str(path))
    bare.setInput(blob)
    np.testing.assert_array_equal(model.forward(blob)[model.outputs[0]], bare.forward())
    cv2.imwrite(str(tmp_path / "frame.png"), frame)
    result = run_live("snapshot", "-m", path, "--size", "96", "-i", tmp_path / "frame.png", "-l", others[3].name)
    lines = result.stderr.strip().splitlines()  # the note, then the error
    assert result.returncode == 2 and lines[0].startswith("live: note: taps: only the outputs"), result.stderr
    assert lines[-1].startswith("live: error: layer") and "can return another tensor" in lines[-1]
