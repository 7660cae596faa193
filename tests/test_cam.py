"""Class activation maps: CAM against finite-difference Grad-CAM, Eigen-CAM against an SVD, real photos, the CLI.

Independent checks, no mocks:

* CAM's map equals Grad-CAM's (``sum_k alpha_k A_k`` with ``alpha_k`` the spatial mean of the class score's
  gradient) where the gradient comes from finite differences through onnxruntime on the network cut at the CAM
  layer: the test feeds the layer's activations (as live's cv2 forward pass returned them) as the input of the
  subgraph from that layer to the logits, and perturbs them.
* Eigen-CAM equals a direct SVD of the centred (H*W, C) activations computed here.
* On real photos, the bundled model's CAM for its top-1 class peaks inside a box drawn by hand around the object.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnx.utils
import pytest

import live
from live import explain
from live.assets import DEFAULT_MODEL, data_file
from live.cam import CamOptions, Smoother, eigen_cam, find_onnx_head, heat, normalize, overlay, resolve_class
from live.engines import HAS_CLASSIC, HAS_ENGINES
from live.errors import LayerError, UsageError
from live.frames import View
from live.model import Model, Settings
from live.onnx_graph import OnnxGraph
from live.pipeline import Pipeline, run_headless
from live.sources import VideoSource
from tests import nets
from tests.helpers import REPO, assert_one_line_error, run_live, shared_model

pytestmark = pytest.mark.opencv
ort = pytest.importorskip("onnxruntime")


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def bundled() -> Model:
    return Model.load(data_file(DEFAULT_MODEL))


def _photo(name: str) -> np.ndarray:
    """A real photo, BGR: scikit-image's cat and cup of coffee, or the shared cheeseburger (skipped when absent)."""
    if name == "burger":
        image = cv2.imread(str(shared_model("burger.jpg")))
        assert image is not None
        return image
    data = pytest.importorskip("skimage.data")
    return cv2.cvtColor({"cat": data.chelsea, "coffee": data.coffee}[name](), cv2.COLOR_RGB2BGR)


@pytest.fixture
def cat_jpg(tmp_path: Path) -> Path:
    path = tmp_path / "cat.jpg"
    assert cv2.imwrite(str(path), _photo("cat"))
    return path


def _cut(proto: onnx.ModelProto, tensor: str, logits: str, batch: bool = False) -> tuple[object, str]:
    """An onnxruntime session of the subgraph from ``tensor`` to ``logits`` (batch dim free when ``batch``)."""
    inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)  # the cut's input needs its shape
    sub = onnx.utils.Extractor(inferred).extract_model([tensor], [logits])
    del sub.graph.value_info[:]  # shapes inferred for batch 1; the runtime infers its own
    if batch:
        for value in (*sub.graph.input, *sub.graph.output):
            value.type.tensor_type.shape.dim[0].dim_param = "N"
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(sub.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session, sub.graph.input[0].name


def _fd_gradient(session: object, name: str, acts: np.ndarray, cls: int, eps: float = 0.25) -> np.ndarray:
    """d logits[cls] / d acts for every element of ``acts`` (1, C, H, W), by central differences (float64)."""
    grad = np.zeros(acts.shape, np.float64)
    flat = acts.reshape(-1)
    for i in range(flat.size):
        up, down = flat.copy(), flat.copy()
        up[i] += eps
        down[i] -= eps
        y_up = session.run(None, {name: up.reshape(acts.shape)})[0].reshape(-1)[cls]
        y_down = session.run(None, {name: down.reshape(acts.shape)})[0].reshape(-1)[cls]
        grad.reshape(-1)[i] = (float(y_up) - float(y_down)) / (2 * eps)
    return grad


def _fd_channel_weights(
    session: object, name: str, acts: np.ndarray, cls: int, eps: float = 1.0, batch: bool = True
) -> np.ndarray:
    """Grad-CAM's weights ``alpha_k = mean_ij d logits[cls] / d acts[k, i, j]``, by central differences along
    each channel's all-ones direction (one pair of runs per channel: the directional derivative is the sum).
    ``batch``: the cut takes a batch of inputs (else one run per input)."""
    _, c, h, w = acts.shape
    alphas = np.zeros(c, np.float64)
    chunk = 64
    for start in range(0, c, chunk):
        ks = range(start, min(c, start + chunk))
        inputs = np.repeat(acts, 2 * len(ks), axis=0)
        for j, k in enumerate(ks):
            inputs[2 * j, k] += eps
            inputs[2 * j + 1, k] -= eps
        if batch:
            scores = session.run(None, {name: inputs})[0].reshape(len(inputs), -1)[:, cls]
        else:
            scores = np.array([session.run(None, {name: one[None]})[0].reshape(-1)[cls] for one in inputs])
        scores = scores.astype(np.float64)
        alphas[start : start + len(ks)] = (scores[0::2] - scores[1::2]) / (2 * eps) / (h * w)
    return alphas


def _grad_cam(alphas: np.ndarray, acts: np.ndarray) -> np.ndarray:
    return np.tensordot(alphas, acts[0].astype(np.float64), axes=1)


def _svd_eigen_cam(acts: np.ndarray) -> np.ndarray:
    """Eigen-CAM straight from its definition: first right singular vector of the centred (H*W, C) matrix."""
    c, h, w = acts.shape
    x = acts.reshape(c, h * w).T.astype(np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    projection = x @ vt[0]
    mean = acts.astype(np.float64).mean(axis=0).reshape(-1)
    if np.corrcoef(projection, mean)[0, 1] < 0:
        projection = -projection
    return projection.reshape(h, w)


def _save(tmp_path: Path, proto: onnx.ModelProto, name: str) -> Path:
    path = tmp_path / f"{name}.onnx"
    onnx.save(proto, str(path))
    return path


# ----------------------------------------------------------------------------- options and classes


def test_cam_options_are_checked() -> None:
    assert CamOptions(cls=" 12 ").cls == 12
    assert CamOptions(cls=" tabby ").cls == "tabby"
    with pytest.raises(UsageError, match="unknown CAM method 'gradcam'; choose from auto, cam, eigen"):
        CamOptions(method="gradcam")
    with pytest.raises(UsageError, match="CAM smoothing must be a time in seconds >= 0, got -1"):
        CamOptions(smoothing_s=-1)
    with pytest.raises(UsageError, match="class index must be >= 0"):
        CamOptions(cls=-3)
    with pytest.raises(UsageError, match="an index or a label"):
        CamOptions(cls=True)


def test_classes_by_index_label_or_part_of_one(bundled: Model) -> None:
    labels = bundled.labels
    assert resolve_class(None, labels, None) is None
    assert resolve_class(281, labels, None) == 281
    assert resolve_class("tabby cat", labels, None) == 281  # one of the label's names
    assert resolve_class("TIGER CAT", labels, None) == 282
    assert resolve_class("egyptian", labels, None) == 285  # a part of one label only
    assert resolve_class("tabby, tabby cat", labels, None) == 281  # the whole label
    with pytest.raises(UsageError, match=r"class 'cat' is ambiguous: .*281 tabby, tabby cat; 282 tiger cat"):
        resolve_class("cat", labels, None)
    with pytest.raises(UsageError, match=r"class 'crane' is ambiguous: 134 crane; 517 crane"):
        resolve_class("crane", labels, None)  # two labels have that name: the bird and the machine
    with pytest.raises(UsageError, match=r"no class 'tabbby' in the labels; did you mean 'tabby'"):
        resolve_class("tabbby", labels, None)
    with pytest.raises(UsageError, match=r"class 1000 is out of range: this model has 1000 classes \(0..999\)"):
        resolve_class(1000, labels, None)
    with pytest.raises(UsageError, match=r"class 'person': this model has no labels; give a class index \(0..1\)"):
        resolve_class("person", None, 2)


# ----------------------------------------------------------------------------- finding the head

HEADS = {
    "gemm": {},
    "gemm, no bias": {"bias": False},
    "reshape": {"between": "reshape"},
    "squeeze": {"between": "squeeze"},
    "reducemean, keepdims 0": {"pool": "reduce", "between": "none"},
    "reducemean": {"pool": "reduce"},
    "whole-map averagepool": {"pool": "avgpool"},
    "gemm transB 0, alpha, beta": {"linear": "gemm_t0"},
    "matmul + add": {"linear": "matmul"},
    "matmul, no bias": {"linear": "matmul", "bias": False},
}


def _head(proto: onnx.ModelProto, shape: tuple[int, ...] = (1, 3, 12, 16)) -> object:
    graph = OnnxGraph(proto, shape)
    return find_onnx_head(graph.model, {out.tensor: out.shape for out in graph.node_outputs})


@pytest.mark.parametrize("options", HEADS.values(), ids=HEADS.keys())
def test_the_head_and_its_weights_come_from_the_graph(options: dict) -> None:
    proto = nets.pooled_head(**options)
    head = _head(proto)
    assert not isinstance(head, str), head
    inits = {init.name: onnx.numpy_helper.to_array(init) for init in proto.graph.initializer}
    w = inits["fc.w"]
    expected = 0.5 * w.T if options.get("linear") == "gemm_t0" else (w.T if options.get("linear") == "matmul" else w)
    assert head.layer == "features" and head.output == "prob" and head.logits == "logits"
    np.testing.assert_allclose(head.weights, expected, rtol=1e-6)
    if options.get("bias", True):
        scale = 2.0 if options.get("linear") == "gemm_t0" else 1.0
        np.testing.assert_allclose(head.bias, scale * inits["fc.b"].reshape(-1), rtol=1e-6)
    else:
        assert head.bias is None


def test_heads_that_are_not_pooled_linear_ones_say_why(net_dir: Path) -> None:
    assert (
        _head(nets.pooled_head(pool="window")) == "AveragePool 'pool' averages 3x4 windows of a 6x8 map, not all of it"
    )
    assert "the pooled features go into Relu 'flat_relu', not a linear classifier" in _head(
        nets.pooled_head(linear="relu_gemm")
    )
    assert "averages 2x2 windows of a 16x16 map" in _head(nets.branchy(), (1, 3, 32, 32))
    assert _head(nets.gray_mnist_like(), (1, 1, 28, 28)).startswith("no global average pool")


def test_squeezenet_style_heads() -> None:
    linear = _head(nets.conv_head(relu=False))  # 1x1 conv -> pool: CAM at the conv's input, with its weights
    assert (linear.layer, linear.kind, linear.weights.shape, linear.note) == ("features", "conv", (5, 8), "")
    relu = _head(nets.conv_head(relu=True))  # 1x1 conv -> ReLU -> pool: not linear; CAM after the ReLU
    assert (relu.layer, relu.kind, relu.weights.shape) == ("class_relu", "identity", (5, 5))
    assert "followed by Relu, which is not linear: CAM is taken after it, at 'class_relu'" in relu.note


# ----------------------------------------------------------------------------- CAM = Grad-CAM (finite differences)

GRADIENT_NETS = {
    **{name: (nets.pooled_head, options) for name, options in HEADS.items()},
    "1x1 conv head": (nets.conv_head, {"relu": False}),
    "1x1 conv + relu head": (nets.conv_head, {"relu": True}),
}


@pytest.mark.parametrize("build", GRADIENT_NETS.values(), ids=GRADIENT_NETS.keys())
def test_cam_is_grad_cam_by_finite_differences(build: tuple, tmp_path: Path) -> None:
    maker, options = build
    proto = maker(**options)
    model = Model.load(_save(tmp_path, proto, "net"))
    frame = np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for cls in (None, 3):
        plan = explain.plan(model, CamOptions(cls=cls), model.default_layer)
        assert plan.method == "cam"
        outputs = model.forward(model.blob(frame), plan.taps)
        got = explain.compute(plan, model, outputs)
        acts = outputs[plan.layer].astype(np.float32)
        assert acts.shape[0] == 1 and acts.ndim == 4
        session, name = _cut(proto, model.layer(plan.layer).tensor, "logits")
        index = int(np.argmax(outputs["prob"])) if cls is None else cls
        assert got.index == index
        grad = _fd_gradient(session, name, acts, index)
        # The gradient of a pooled linear head is the same at every position: w[c, k] / (H * W).
        np.testing.assert_allclose(grad, grad.mean(axis=(2, 3), keepdims=True) * np.ones_like(grad), atol=1e-4)
        expected = _grad_cam(grad.mean(axis=(2, 3))[0], acts)
        assert got.map.shape == expected.shape and got.map.dtype == np.float32
        np.testing.assert_allclose(normalize(got.map), normalize(expected), atol=1e-3)
        assert got.score == pytest.approx(float(outputs["prob"].reshape(-1)[index]), rel=1e-5)


def test_cam_is_grad_cam_on_the_bundled_model(bundled: Model) -> None:
    plan = explain.plan(bundled, CamOptions(), bundled.default_layer)
    assert (plan.method, plan.layer, plan.head.kind) == ("cam", "head/relu6", "gemm")
    outputs = bundled.forward(bundled.blob(_photo("cat")), [bundled.default_layer, *plan.taps])
    got = explain.compute(plan, bundled, outputs)
    acts = outputs["head/relu6"]
    assert acts.shape == (1, 1280, 7, 7)
    session, name = _cut(onnx.load(str(bundled.path)), "head/relu6", "logits", batch=True)
    alphas = _fd_channel_weights(session, name, acts, got.index)
    np.testing.assert_allclose(normalize(got.map), normalize(_grad_cam(alphas, acts)), atol=1e-3)
    assert got.index == bundled.top(outputs)[0]["index"]


@pytest.mark.parametrize("name", ["squeezenet", "resnet50", "densenet121"])
def test_cam_is_grad_cam_on_classic_architectures(name: str, light_path) -> None:
    proto = onnx.load(str(light_path(name)))
    graph = OnnxGraph(proto, (1, 3, 224, 224))
    head = find_onnx_head(graph.model, {out.tensor: out.shape for out in graph.node_outputs}, 1000)
    assert not isinstance(head, str), head
    assert head.kind == {"squeezenet": "identity", "resnet50": "gemm", "densenet121": "conv"}[name]
    shape = next(out.shape for out in graph.node_outputs if out.tensor == head.layer)
    acts = np.random.default_rng(5).uniform(0, 2, shape).astype(np.float32)
    batch = name != "resnet50"  # its Reshape's target is a constant (1, 2048)
    session, input_name = _cut(graph.model, head.layer, head.logits, batch=batch)
    for cls in (7, 500):
        alphas = _fd_channel_weights(session, input_name, acts, cls, eps=2.0, batch=batch)
        cam = head.weights[cls] @ acts[0].reshape(acts.shape[1], -1)
        np.testing.assert_allclose(normalize(cam.reshape(shape[2:])), normalize(_grad_cam(alphas, acts)), atol=1e-3)


# ----------------------------------------------------------------------------- Eigen-CAM = SVD

EIGEN_LAYERS = {
    "head/relu6": (1, 1280, 7, 7),
    "blocks.3.expand/relu6": (1, 144, 56, 56),
    "blocks.5.project": (1, 80, 14, 14),
}


@pytest.mark.parametrize("layer", EIGEN_LAYERS, ids=lambda name: name)
def test_eigen_cam_is_the_first_principal_component(bundled: Model, layer: str) -> None:
    plan = explain.plan(bundled, CamOptions(method="eigen"), layer)
    assert (plan.method, plan.layer, plan.note) == ("eigen", layer, "")
    outputs = bundled.forward(bundled.blob(_photo("coffee")), plan.taps)
    assert outputs[layer].shape == EIGEN_LAYERS[layer]
    got = explain.compute(plan, bundled, outputs)
    expected = _svd_eigen_cam(outputs[layer][0])
    np.testing.assert_allclose(normalize(got.map), normalize(expected), atol=1e-4)
    np.testing.assert_allclose(got.heat, heat(expected), atol=1e-4)
    assert got.label == "espresso"  # the caption's class: the top-1 (Eigen-CAM itself has none)


def test_eigen_cam_of_maps_that_do_not_vary_is_zero_and_the_sign_follows_the_mean() -> None:
    assert not eigen_cam(np.full((4, 3, 5), 2.5, np.float32)).any()
    yy, xx = np.mgrid[0:6, 0:9]
    blob = np.stack([xx + 0.1 * k * yy for k in range(5)]).astype(np.float32)  # brighter to the right
    assert eigen_cam(blob)[:, -1].mean() > eigen_cam(blob)[:, 0].mean()
    assert eigen_cam(-blob)[:, -1].mean() < eigen_cam(-blob)[:, 0].mean()  # the mean map is brighter left now


# ----------------------------------------------------------------------------- real photos

# Boxes drawn by hand around each object, in the photo's own pixels (x0, y0, x1, y1), from looking at them:
# the cat's face (eyes, nose, mouth; not the blurred room at the right), the espresso cup with its handle and
# spoon (not the saucer's rim or the wooden table), the front cheeseburger (not the one behind it at the top
# right, nor the onion rings).
OBJECTS = {"cat": (90, 40, 370, 300), "coffee": (165, 15, 425, 310), "burger": (35, 35, 410, 320)}
TOP1 = {"cat": "cat", "coffee": "espresso", "burger": "cheeseburger"}


@pytest.mark.parametrize("name", OBJECTS)
def test_the_cam_peak_is_on_the_object(bundled: Model, name: str) -> None:
    image = _photo(name)
    plan = explain.plan(bundled, CamOptions(), bundled.default_layer)
    result = explain.compute(plan, bundled, bundled.forward(bundled.blob(image), plan.taps))
    assert TOP1[name] in result.label
    x, y, w, h = bundled.preprocess.crop_rect((image.shape[1], image.shape[0]))
    rows, cols = result.map.shape
    i, j = np.unravel_index(int(np.argmax(result.map)), result.map.shape)
    px, py = x + (j + 0.5) * w / cols, y + (i + 0.5) * h / rows  # the peak cell's centre in the photo
    x0, y0, x1, y1 = OBJECTS[name]
    assert x0 <= px <= x1 and y0 <= py <= y1, f"{name}: peak at ({px:.0f}, {py:.0f}), outside {OBJECTS[name]}"
    # and more heat on the object than around it, within what the network saw
    full = cv2.resize(result.heat, (w, h), interpolation=cv2.INTER_LINEAR)
    inside = np.zeros((h, w), bool)
    inside[max(y0 - y, 0) : y1 - y, max(x0 - x, 0) : x1 - x] = True
    assert full[inside].mean() > full[~inside].mean()


# ----------------------------------------------------------------------------- overlay and smoothing


@pytest.mark.parametrize("crop", ["none", "center", "letterbox"])
def test_the_overlay_maps_the_map_back_through_the_crop(crop: str) -> None:
    from live.preprocess import Preprocess

    pre = Preprocess(size=(64, 64), crop=crop)
    frame = np.full((90, 160, 3), 128, np.uint8)
    x, y, w, h = pre.crop_rect((160, 90))
    hot = np.zeros((4, 4), np.float32)
    hot[1, 0] = 1.0  # the second row's left cell of what the network sees
    drawn = overlay(frame, hot, (x, y, w, h)).astype(int)
    assert drawn.shape == frame.shape
    cell_x, cell_y = x + w / 8, y + h * 3 / 8  # that cell's centre, in frame pixels
    red = drawn[..., 2] - drawn[..., 0]  # jet: hot is red, cold is blue
    iy, ix = np.unravel_index(int(np.argmax(red)), red.shape)
    assert abs(ix - cell_x) <= w / 8 and abs(iy - cell_y) <= h / 8, (crop, (ix, iy), (cell_x, cell_y))
    changed = (drawn != 128).any(axis=2)
    if crop == "center":  # outside the crop, the frame as it was
        assert not changed[:, : x - 1].any() and not changed[:, x + w + 1 :].any() and changed[:, x : x + w].all()
    else:  # stretched, or letterboxed (the bars fall outside the frame): every pixel of the frame was seen
        assert changed.all()


def test_smoothing_is_an_exponential_average_in_time() -> None:
    smoother = Smoother()
    zero, one = np.zeros((2, 2), np.float32), np.ones((2, 2), np.float32)
    assert (smoother.update(zero, 10.0, 0.5, "a") == 0).all()
    blended = smoother.update(one, 10.5, 0.5, "a")
    assert blended[0, 0] == pytest.approx(1 - math.exp(-1), rel=1e-6)
    assert (smoother.update(one, 10.4, 0.5, "a") == 1).all()  # time went back (a loop): start again
    assert (smoother.update(zero, 11.0, 0.0, "a") == 0).all()  # no smoothing
    assert (smoother.update(one, 12.0, 0.5, "b") == 1).all()  # another layer or class: start again
    assert blended[0, 0] == pytest.approx(1 - math.exp(-1), rel=1e-6)  # what was handed out is never written


# ----------------------------------------------------------------------------- models without a head, TFLite


def test_a_model_without_a_pooled_head_gets_eigen_cam_and_one_line(net_dir: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    plan = explain.plan(model, CamOptions(), "down_relu")
    assert plan.method == "eigen" and plan.layer == "down_relu"
    assert plan.note == (
        "branchy.onnx has no pooled linear head for CAM (AveragePool 'pool' averages 2x2 windows of a 16x16 map, "
        "not all of it); showing Eigen-CAM of down_relu"
    )
    with pytest.raises(UsageError, match=r"CAM needs a pooled linear head and branchy.onnx has none \(AveragePool"):
        explain.plan(model, CamOptions(method="cam"), "down_relu")
    with pytest.raises(LayerError, match=r"layer 'fc' \(1x10\) has no spatial maps"):
        explain.plan(model, CamOptions(method="eigen"), "logits")
    nhwc = explain.plan(model, CamOptions(method="eigen"), "to_nhwc", layout="nhwc")
    outputs = model.forward(model.blob(np.zeros((32, 32, 3), np.uint8) + 90), nhwc.taps)
    assert explain.compute(nhwc, model, outputs).map.shape == (16, 16)


def test_tflite_head_from_the_fully_connected_layer() -> None:
    path = shared_model("vww-96-float.tflite")
    model = Model.load(path, Settings(preprocess={"size": [96, 96]}))
    if not HAS_CLASSIC and HAS_ENGINES:  # OpenCV 5.1: a TFLite model's outputs are all it can tap; live says so
        with pytest.raises(LayerError, match="only this model's outputs can be tapped"):
            explain.plan(model, CamOptions(), model.default_layer)
        return
    plan = explain.plan(model, CamOptions(), model.default_layer)
    if not HAS_ENGINES:  # OpenCV 4.x: the head check on one forward pass fails there; live says so, Eigen-CAM
        assert plan.method == "eigen" and "has no pooled linear head" in plan.note
        return
    assert plan.method == "cam" and plan.head.kind == "fc" and plan.head.weights.shape == (2, 256)
    assert model.layer(plan.layer).shape == (1, 256, 3, 3)
    result = explain.compute(plan, model, model.forward(model.blob(_photo("cat")), plan.taps))
    assert result.index in (0, 1) and result.label is None and 0 <= result.score <= 1
    # At 224 x 224 its 3x3 average pool no longer covers the map: no pooled head, Eigen-CAM, saying why.
    wide = Model.load(path)
    plan = explain.plan(wide, CamOptions(), wide.default_layer)
    assert plan.method == "eigen" and "is not a linear layer over the global average of" in plan.note


# ----------------------------------------------------------------------------- the pipeline


def test_the_pipeline_taps_the_cam_layer_in_the_same_pass(bundled: Model, clip: Path) -> None:
    got = []
    pipeline = Pipeline(
        bundled, VideoSource(clip, loop=False, pace="max"), View(bundled.default_layer, cam=CamOptions())
    )

    def on_result(result) -> None:
        got.append(result)
        if len(got) == 3:
            pipeline.set_view(cam=None)
        if len(got) == 6:
            pipeline.set_view(cam=CamOptions(method="eigen"))

    stats = run_headless(pipeline, frames=10, on_result=on_result)
    assert got[0].cam is not None and got[0].cam.method == "cam" and got[0].cam.layer == "head/relu6"
    assert got[0].layer == bundled.default_layer and got[0].blob.shape == (1, 144, 56, 56)
    assert "head/relu6" not in got[0].outputs  # the result's outputs are the final outputs only
    assert got[0].cam.index == got[0].top[0]["index"] and got[0].cam.label == got[0].top[0]["label"]
    assert any(r.cam is None for r in got[3:6]) and got[-1].cam.method == "eigen"
    assert got[-1].cam.map.shape == (56, 56)
    assert stats["cam"] == {"method": "eigen", "class": None, "smoothing_s": 0.0}
    with pytest.raises(UsageError, match="class 'cat' is ambiguous"):
        pipeline.set_view(cam=CamOptions(cls="cat"))


def test_a_cam_that_cannot_be_made_is_said_in_the_result(net_dir: Path, clip: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    view = View("logits", cam=CamOptions(method="eigen"))  # a vector layer: no spatial maps
    got = []
    run_headless(Pipeline(model, VideoSource(clip, loop=False, pace="max"), view), frames=2, on_result=got.append)
    assert got and got[-1].cam is None and "has no spatial maps" in got[-1].cam_error


# ----------------------------------------------------------------------------- the command line


def test_snapshot_cam_writes_the_overlay_and_the_map(cat_jpg: Path, tmp_path: Path) -> None:
    result = run_live("snapshot", "-i", cat_jpg, "--cam", "-o", tmp_path / "grid.png", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    cam = data["cam"]
    assert {"method", "layer", "class", "label", "score", "png", "npy"} <= set(cam)
    assert (cam["method"], cam["layer"], cam["shape"]) == ("cam", "head/relu6", [7, 7])
    assert cam["png"] == str(tmp_path / "cam.png") and cam["npy"] == str(tmp_path / "cam.npy")  # beside --out
    assert cam["class"] == data["top"][0]["index"] and cam["label"] == data["top"][0]["label"]
    assert cam["score"] == pytest.approx(data["top"][0]["score"], rel=1e-6)
    saved = np.load(cam["npy"])
    assert saved.shape == (7, 7) and saved.dtype == np.float32
    expected = live.Network().cam(cv2.imread(str(cat_jpg)))
    np.testing.assert_allclose(saved, expected.map, rtol=1e-4, atol=1e-4)
    picture = cv2.imread(cam["png"])
    photo = cv2.imread(str(cat_jpg))
    assert picture.shape == photo.shape  # on the photo's own pixels
    x, _, w, _ = live.Network().model.preprocess.crop_rect((photo.shape[1], photo.shape[0]))
    assert np.array_equal(picture[:, : x - 2], photo[:, : x - 2])  # outside the centre crop: the photo
    assert not np.array_equal(picture[:, x : x + w], photo[:, x : x + w])
    assert "cam" in data["timings_ms"] and data["timings_ms"]["cam"] < 50


def test_snapshot_cam_class_method_and_prefix(cat_jpg: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "out" / "tiger"
    prefix.parent.mkdir()
    result = run_live("snapshot", "-i", cat_jpg, "--cam-class", "tiger cat", "--cam-out", prefix,
                      "-o", tmp_path / "g.png", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "CAM at head/relu6 7x7 for tiger cat" in result.stdout
    assert np.load(f"{prefix}.npy").shape == (7, 7) and cv2.imread(f"{prefix}.png") is not None
    result = run_live("snapshot", "-i", cat_jpg, "--cam-method", "eigen", "--layer", "blocks.5.project",
                      "-o", tmp_path / "g.png", "--json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    cam = json.loads(result.stdout)["cam"]
    assert (cam["method"], cam["layer"], cam["shape"]) == ("eigen", "blocks.5.project", [14, 14])


def test_snapshot_cam_on_a_model_without_a_pooled_head(net_dir: Path, cat_jpg: Path, tmp_path: Path) -> None:
    result = run_live("snapshot", "-m", net_dir / "branchy.onnx", "-i", cat_jpg, "--cam", "--layer", "down_relu",
                      "-o", tmp_path / "g.png", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        "live: note: branchy.onnx has no pooled linear head for CAM (AveragePool 'pool' averages 2x2 windows "
        "of a 16x16 map, not all of it); showing Eigen-CAM of down_relu"
    ]
    assert "Eigen-CAM at down_relu 16x16" in result.stdout
    assert np.load(tmp_path / "cam.npy").shape == (16, 16)


def test_snapshot_cam_on_a_real_model_without_a_pooled_head(tmp_path: Path) -> None:
    path = shared_model("mnist-8.onnx")
    digit = np.zeros((28, 28), np.uint8)
    cv2.line(digit, (14, 4), (14, 24), 255, 3)
    cv2.imwrite(str(tmp_path / "one.png"), digit)
    result = run_live("snapshot", "-m", path, "-i", tmp_path / "one.png", "--cam", "--json", "--no-probe",
                      "-o", tmp_path / "g.png", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    cam = json.loads(result.stdout)["cam"]
    assert cam["method"] == "eigen" and "no pooled linear head" in cam["note"] and cam["label"] is None


def test_snapshot_cam_on_tflite(cat_jpg: Path, tmp_path: Path) -> None:
    path = shared_model("vww-96-float.tflite")
    result = run_live("snapshot", "-m", path, "--size", "96", "-i", cat_jpg, "--cam", "--json",
                      "-o", tmp_path / "g.png", cwd=tmp_path)  # fmt: skip
    if not HAS_CLASSIC and HAS_ENGINES:  # OpenCV 5.1: no inner layer of a TFLite model to map (see above)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert lines[-1].startswith("live: error:") and "only this model's outputs can be tapped" in lines[-1]
        return
    assert result.returncode == 0, result.stderr
    cam = json.loads(result.stdout)["cam"]
    if not HAS_ENGINES:  # OpenCV 4.x: no head found (see test_tflite_head_from_the_fully_connected_layer)
        assert cam["method"] == "eigen" and "has no pooled linear head" in (cam["note"] or "")
        return
    assert cam["method"] == "cam" and cam["shape"] == [3, 3] and cam["class"] in (0, 1)
    assert cv2.imread(cam["png"]).shape == cv2.imread(str(cat_jpg)).shape
    result = run_live("snapshot", "-m", path, "-i", cat_jpg, "--cam", "-o", tmp_path / "g.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "pooled linear head" in line]
    assert len(notes) == 1 and notes[0].startswith("live: note: vww-96-float.tflite has no pooled linear head")
    assert "Eigen-CAM at" in result.stdout


BAD = {
    "ambiguous class": (["--cam-class", "cat"], ["class 'cat' is ambiguous", "281 tabby, tabby cat"]),
    "unknown class": (["--cam-class", "tabbby"], ["no class 'tabbby' in the labels; did you mean 'tabby'"]),
    "class out of range": (["--cam-class", "1000"], ["class 1000 is out of range", "0..999"]),
    "bad method": (["--cam-method", "gradcam"], ["--cam-method", "invalid choice: 'gradcam'"]),
    "no spatial maps": (["--cam-method", "eigen", "--layer", "logits"], ["layer 'fc' (1x1000) has no spatial maps"]),
    "bad cam-out": (["--cam", "--cam-out", "/nonexistent/dir/x"], ["cannot write CAM image", "/nonexistent/dir"]),
}


@pytest.mark.parametrize(("args", "needles"), BAD.values(), ids=BAD.keys())
def test_bad_cam_options_are_one_line(args: list[str], needles: list[str], cat_jpg: Path, tmp_path: Path) -> None:
    result = run_live("snapshot", "-i", cat_jpg, "-o", tmp_path / "g.png", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result, *needles)


def test_cam_method_cam_on_a_model_without_a_head_is_one_line(net_dir: Path, cat_jpg: Path, tmp_path: Path) -> None:
    result = run_live("snapshot", "-m", net_dir / "branchy.onnx", "-i", cat_jpg, "--cam-method", "cam",
                      "-o", tmp_path / "g.png", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert_one_line_error(result, "CAM needs a pooled linear head and branchy.onnx has none", "eigen")


def test_headless_run_with_cam_records_and_snapshots_the_overlay(clip: Path, tmp_path: Path) -> None:
    video, stats_path, snaps = tmp_path / "rec.avi", tmp_path / "stats.json", tmp_path / "snaps"
    result = run_live("run", "--headless", "--source", clip, "--pace", "max", "--no-loop", "--frames", "6",
                      "--cam", "--cam-class", "281", "--cam-smoothing", "0.2", "--record", video,
                      "--stats-json", stats_path, "--snapshot-dir", snaps, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "last CAM: tabby, tabby cat" in result.stdout
    stats = json.loads(stats_path.read_text())
    assert stats["cam"] == {"method": "auto", "class": 281, "smoothing_s": 0.2}
    assert stats["cam_result"]["class"] == 281 and stats["cam_result"]["method"] == "cam"
    cam_png, cam_npy = next(snaps.glob("*-cam.png")), next(snaps.glob("*-cam.npy"))
    assert cv2.imread(str(cam_png)).shape == (72, 96, 3) and np.load(cam_npy).shape == (7, 7)
    meta = json.loads(next(p for p in snaps.glob("*.json")).read_text())
    assert meta["cam"]["png"] == cam_png.name and meta["cam"]["label"] == "tabby, tabby cat"
    cap = cv2.VideoCapture(str(video))
    ok, first = cap.read()
    cap.release()
    grid_w = stats["grid_shape"][1]
    assert ok and first.shape[1] > grid_w  # the frame with its map beside the grid
    side = first[:, : first.shape[1] - grid_w]
    assert side.std() > 10


# ----------------------------------------------------------------------------- the Python API


def test_network_cam(net_dir: Path) -> None:
    net = live.Network()
    image = _photo("coffee")
    cam = net.cam(image)
    assert (cam.method, cam.layer, cam.label, cam.map.shape, cam.map.dtype) == (
        "cam", "head/relu6", "espresso", (7, 7), np.float32
    )  # fmt: skip
    cup = net.cam(image, cls="cup")
    assert cup.index == 968 and not np.allclose(cup.map, cam.map)
    assert net.cam(net.blob(image)).index == cam.index  # a blob works too
    picture = net.cam_overlay(image, cam)
    assert picture.shape == image.shape and picture.dtype == np.uint8
    eigen = net.cam(image, method="eigen", layer="blocks.5.project")
    assert eigen.method == "eigen" and eigen.map.shape == (14, 14)
    with pytest.raises(UsageError, match="unknown CAM method 'grad'"):
        net.cam(image, method="grad")
    branchy = live.Network(net_dir / "branchy.onnx")
    fallback = branchy.cam(np.zeros((32, 32, 3), np.uint8), layer="down_relu")
    assert fallback.method == "eigen" and "no pooled linear head" in fallback.note


def test_the_readme_shows_a_cam_made_by_live() -> None:
    text = (REPO / "README.md").read_text()
    assert "![a class activation map" in text and (REPO / "data" / "cam.png").is_file()
    assert (REPO / "data" / "cam.png").stat().st_size < 400_000
