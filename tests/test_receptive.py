"""Receptive fields (live/receptive.py) checked by experiment: perturb each input pixel, see which cells change.

Small ONNX nets built here (strides, paddings, dilations, even and non-square kernels, auto_pad, pools, Pad,
Slice, branches of different fields joined by Add and Concat, a squeeze-and-excitation gate, a fully connected
head, an NHWC input) run on onnxruntime with a batch of perturbed inputs; the pixels whose change reaches a
cell must be exactly ``Field.box`` of that cell clipped to the input. Then the boxes in frame pixels, and the
bundled network through cv2.dnn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import live
from live.receptive import BoxMap, Field, box_maps, fields
from tests import nets
from tests.nets import _Builder

ort = pytest.importorskip("onnxruntime")


def conv(b: _Builder, x: str, cin: int, cout: int, name: str, k: tuple[int, int], **attrs: object) -> str:
    w = b.weight(f"{name}.w", (cout, cin, *k))
    return b.node("Conv", [x, w, b.weight(f"{name}.b", (cout,), 0.1)], [name], name, **attrs)


def _free(rank: int, name: str) -> list[str]:
    """A shape of ``rank`` free dimensions."""
    return [f"{name}_{i}" for i in range(rank)]


def build(b: _Builder, inp: str, shape: list[int | str], taps: list[str], opset: int = 13) -> onnx.ModelProto:
    """The model with every tapped tensor as an output (shape left free) and a free batch dimension."""
    graph = helper.make_graph(
        b.nodes,
        "receptive",
        [helper.make_tensor_value_info(inp, TensorProto.FLOAT, ["N", *shape[1:]])],
        [helper.make_tensor_value_info(t, TensorProto.FLOAT, _free(2 if t == "logits" else 4, t)) for t in taps],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def strided() -> tuple[onnx.ModelProto, list[str]]:
    """Stride, symmetric and asymmetric padding, dilation, max and average pools, a non-square kernel."""
    b = _Builder(20)
    x = conv(b, "image", 3, 6, "c1", (3, 3), strides=[2, 2], pads=[1, 1, 1, 1])
    x = conv(b, x, 6, 6, "c2/dilated", (3, 3), dilations=[2, 2], pads=[2, 2, 2, 2])
    x = b.node("MaxPool", [x], ["p1"], "p1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = conv(b, x, 6, 6, "c3:valid", (3, 2), strides=[1, 2], pads=[2, 0, 0, 1])
    b.node("AveragePool", [x], ["p2"], "p2", kernel_shape=[2, 2], strides=[1, 1])
    taps = ["c1", "c2/dilated", "p1", "c3:valid", "p2"]
    return build(b, "image", [1, 3, 29, 31], taps), taps


def branches() -> tuple[onnx.ModelProto, list[str]]:
    """Branches of different fields joined by Add and Concat, then a strided conv, an SE gate and a head."""
    b = _Builder(21)
    s = conv(b, "image", 3, 6, "stem", (3, 3), pads=[1, 1, 1, 1])
    a = conv(b, s, 6, 6, "a", (1, 1))
    d = conv(b, s, 6, 6, "b/dilated", (3, 3), dilations=[3, 3], pads=[3, 3, 3, 3])
    d = conv(b, d, 6, 6, "b/wide", (5, 5), pads=[2, 2, 2, 2])
    add = b.node("Add", [a, d], ["add"], "add")
    m = b.node("MaxPool", [s], ["m"], "m", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    cat = b.node("Concat", [add, m], ["cat"], "cat", axis=1)
    x = conv(b, cat, 12, 6, "down", (3, 3), strides=[2, 2])
    x = b.node("LeakyRelu", [x], ["lrelu"], "lrelu", alpha=0.3)
    g = b.node("GlobalAveragePool", [x], ["gap"], "gap")
    gate = b.node("Sigmoid", [conv(b, g, 6, 6, "se", (1, 1))], ["gate"], "gate")
    b.node("Mul", [x, gate], ["se_out"], "se_mul")
    flat = b.node("Flatten", [g], ["flat"], "flat")
    b.node("Gemm", [flat, b.weight("fc.w", (5, 6)), b.weight("fc.b", (5,), 0.1)], ["logits"], "fc", transB=1)
    taps = ["stem", "add", "cat", "lrelu", "se_out", "logits"]
    return build(b, "image", [1, 3, 22, 20], taps), taps


def auto_pads() -> tuple[onnx.ModelProto, list[str]]:
    """auto_pad SAME_UPPER and SAME_LOWER with an even kernel on odd sizes, a dilated max pool, LpPool, Pad, Slice."""
    b = _Builder(22)
    up = conv(b, "image", 3, 4, "same_upper", (4, 4), strides=[2, 2], auto_pad="SAME_UPPER")
    low = conv(b, "image", 3, 4, "same_lower", (4, 3), strides=[2, 2], auto_pad="SAME_LOWER")
    b.node("MaxPool", [up], ["dilated_pool"], "dilated_pool", kernel_shape=[2, 2], dilations=[2, 2])
    b.node("LpPool", [low], ["lp"], "lp", kernel_shape=[3, 3], strides=[2, 1], p=2)
    pads = b.const("pads", np.array([0, 0, 2, 1, 0, 0, 0, 3], np.int64))
    padded = b.node("Pad", ["image", pads], ["padded"], "pad")
    valid = conv(b, padded, 3, 4, "valid", (3, 3), auto_pad="VALID")
    starts, ends = b.const("starts", np.array([1, 2], np.int64)), b.const("ends", np.array([100, 100], np.int64))
    axes, steps = b.const("axes", np.array([2, 3], np.int64)), b.const("steps", np.array([1, 2], np.int64))
    b.node("Slice", [valid, starts, ends, axes, steps], ["sliced"], "slice")
    taps = ["same_upper", "same_lower", "dilated_pool", "lp", "valid", "sliced"]
    return build(b, "image", [1, 3, 17, 19], taps), taps


def nhwc() -> tuple[onnx.ModelProto, list[str]]:
    """An NHWC input transposed inside, NHWC maps out, a MatMul over channels (a 1x1 conv on NHWC maps)."""
    b = _Builder(23)
    x = b.node("Transpose", ["img"], ["to_nchw"], "to_nchw", perm=[0, 3, 1, 2])
    x = conv(b, x, 3, 5, "c", (3, 3), strides=[2, 2], pads=[1, 1, 1, 1])
    x = b.node("Transpose", [x], ["feat_nhwc"], "to_nhwc", perm=[0, 2, 3, 1])
    b.node("MatMul", [x, b.weight("mix", (5, 4))], ["mixed"], "mix")
    taps = ["feat_nhwc", "mixed"]
    return build(b, "img", [1, 18, 20, 3], taps), taps


NETS = {"strided": strided, "branches": branches, "auto_pads": auto_pads, "nhwc": nhwc}


def influence(model: onnx.ModelProto, taps: list[str], nhwc_input: bool) -> dict[str, np.ndarray]:
    """For each tap, bool (H_in, W_in, C, H, W): which cells (of any channel) change when that pixel changes.

    Every pixel is perturbed twice (large random values on every channel, once up and once down), all in one
    batch after the unperturbed input; a cell changed when any of the two changed it.
    """
    inp = model.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim][1:]
    h, w = (dims[0], dims[1]) if nhwc_input else (dims[1], dims[2])
    c = dims[2] if nhwc_input else dims[0]
    rng = np.random.default_rng(0)
    base = rng.standard_normal((1, c, h, w)).astype(np.float32)
    batch = np.repeat(base, 1 + 2 * h * w, axis=0)
    delta = (
        rng.uniform(20, 50, (2 * h * w, c)).astype(np.float32) * np.array([1, -1], np.float32).repeat(h * w)[:, None]
    )
    pixels = np.arange(2 * h * w) % (h * w)
    batch[1 + np.arange(2 * h * w), :, pixels // w, pixels % w] += delta
    if nhwc_input:
        batch = np.ascontiguousarray(batch.transpose(0, 2, 3, 1))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outs = session.run(taps, {inp.name: batch})
    result = {}
    for tap, out in zip(taps, outs, strict=True):
        if tap in ("feat_nhwc", "mixed"):
            out = out.transpose(0, 3, 1, 2)
        if out.ndim == 2:
            out = out[:, :, None, None]
        ref, pert = out[:1], out[1:]
        changed = np.abs(pert - ref) > 1e-4 * (1 + np.abs(ref))
        changed = changed[: h * w] | changed[h * w :]
        result[tap] = changed.reshape(h, w, *changed.shape[1:])
    return result


SPARSE = {"c2/dilated"}  # a dilated conv over a strided one: its field has holes (every other column, row)


def clipped_mask(box: tuple[float, float, float, float], h: int, w: int) -> np.ndarray:
    """bool (h, w): the pixels inside ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = (float(np.clip(v, 0, lim)) for v, lim in zip(box, (w, h, w, h), strict=True))
    mask = np.zeros((h, w), bool)
    mask[int(np.ceil(y0)) : int(np.ceil(y1)), int(np.ceil(x0)) : int(np.ceil(x1))] = True
    return mask


@pytest.mark.parametrize("net", list(NETS))
def test_fields_equal_the_pixels_that_reach_each_cell(net: str) -> None:
    """Every cell of every tap: the pixels that reach it fill its box (for a field with holes: span it)."""
    model, taps = NETS[net]()
    found = fields(model, taps)
    reached = influence(model, taps, nhwc_input=net == "nhwc")
    checked = 0
    for tap in taps:
        field = found[tap]
        assert field is not None, tap
        support = reached[tap].any(axis=2)  # (H_in, W_in, H, W): any channel
        h_in, w_in, h, w = support.shape
        for y in range(h):
            for x in range(w):
                expected = clipped_mask(field.box(y, x), h_in, w_in)
                got = support[:, :, y, x]
                x0, y0, x1, y1 = field.box(y, x)
                if tap in SPARSE:  # within the box; where the box lies inside the input, spanning it
                    assert not (got & ~expected).any(), f"{tap} cell ({y}, {x}) is reached from outside its box"
                    if not (x0 >= 0 and y0 >= 0 and x1 <= w_in and y1 <= h_in):
                        continue
                    rows, cols = np.nonzero(got.any(axis=1))[0], np.nonzero(got.any(axis=0))[0]
                    got = np.zeros_like(got)
                    got[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
                if not np.array_equal(got, expected):
                    ys, xs = np.nonzero(got)
                    span = f"x {xs.min()}..{xs.max()}, y {ys.min()}..{ys.max()}" if got.any() else "nothing"
                    raise AssertionError(
                        f"{net} {tap} cell ({y}, {x}): {field} gives box {field.box(y, x)}; the pixels that reach it "
                        f"span {span} ({got.sum()} of {expected.sum()})"
                    )
                checked += int(expected.any())
    assert checked > 100


def test_fields_of_known_layers() -> None:
    model, _ = strided()
    found = fields(model, ["c1", "c2/dilated", "p1", "image", "no such tensor"])
    assert found["c1"] == Field((3, 3), (2, 2), (0, 0))
    assert found["c2/dilated"] == Field((11, 11), (2, 2), (0, 0))
    assert found["p1"] == Field((15, 15), (4, 4), (0, 0))
    assert found["image"] == Field((1, 1), (1, 1), (0, 0))
    assert found["no such tensor"] is None
    model, _ = branches()
    assert fields(model, ["logits"])["logits"] == Field((0, 0), (0, 0), (0, 0), whole=True)


def test_an_unknown_op_gives_none_and_stays_none() -> None:
    b = _Builder(24)
    x = conv(b, "image", 3, 4, "c", (3, 3), pads=[1, 1, 1, 1])
    x = b.node("DepthToSpace", [x], ["d2s"], "d2s", blocksize=2)
    b.node("Relu", [x], ["after"], "after")
    model = build(b, "image", [1, 3, 8, 8], ["after"])
    assert fields(model, ["c", "d2s", "after"]) == {"c": Field((3, 3), (1, 1), (0, 0)), "d2s": None, "after": None}


def test_a_flattening_reshape_then_matmul_sees_the_whole_input() -> None:
    model = nets.pooled_head(pool="window", between="reshape", linear="matmul")
    found = fields(model, ["features", "pooled", "flat", "logits"])
    assert found["features"] == Field((7, 7), (2, 2), (0, 0))
    assert found["pooled"] == Field((11, 13), (6, 8), (2, 3))  # a 3x4 average pool, strides 3, 4
    assert found["flat"] is None  # a reshape to (1, -1): cells are no longer places
    assert found["logits"] == Field((0, 0), (0, 0), (0, 0), whole=True)


def test_resize_divides_the_stride() -> None:
    b = _Builder(25)
    x = conv(b, "image", 3, 4, "c", (3, 3), strides=[4, 4], pads=[1, 1, 1, 1])
    scales = b.const("scales", np.array([1, 1, 2, 2], np.float32))
    b.node("Resize", [x, "", scales], ["up"], "up", mode="nearest", coordinate_transformation_mode="asymmetric")
    model = build(b, "image", [1, 3, 16, 16], ["up"])
    up = fields(model, ["up"])["up"]
    assert up is not None and up.stride == (2, 2) and up.size == (3, 3) and not up.whole


def test_box_map_turns_cells_into_frame_boxes() -> None:
    field = Field((7, 7), (4, 4), (1.5, 1.5))
    # a 64x48 input that shows the frame region x 20..(20 + 128), y 0..96 of a 200x96 frame: 2 frame px per input px
    boxer = BoxMap(field, (64, 48), (20, 0, 128, 96), (200, 96))
    assert field.box(0, 0) == (-1.5, -1.5, 5.5, 5.5)
    assert boxer.box(0, 0, (12, 16)) == (20, 0, 31, 11)
    assert field.box(2, 3) == (10.5, 6.5, 17.5, 13.5)
    assert boxer.box(2, 3, (12, 16)) == (41, 13, 55, 27)
    assert boxer.box(11, 15, (12, 16)) == (137, 85, 148, 96)  # clipped to the input's region
    whole = BoxMap(Field((0, 0), (0, 0), (0, 0), whole=True), (64, 48), (20, 0, 128, 96), (200, 96))
    assert whole.box(0, 0, (1, 1)) == (20, 0, 148, 96)
    letterbox = BoxMap(None, (64, 64), (0, -52, 200, 200), (200, 96))  # the frame sits in the middle
    assert letterbox.box(0, 0, (4, 4)) == (0, 0, 50, 1)  # the cell lies in the padding: one row of the frame
    assert letterbox.box(2, 1, (4, 4)) == (50, 48, 100, 96)
    ys, xs = np.array([0, 2]), np.array([0, 1])
    np.testing.assert_array_equal(letterbox.boxes(ys, xs, (4, 4)), [[0, 0, 50, 1], [50, 48, 100, 96]])


@pytest.fixture(scope="module")
def bundled() -> live.Network:
    return live.Network()


@pytest.mark.opencv
@pytest.mark.parametrize("layer", ["stem", "blocks.2.depthwise"])
def test_bundled_network_through_cv2(bundled: live.Network, layer: str) -> None:
    """The bundled EfficientNet-Lite0 on cv2.dnn: a changed input pixel changes exactly the cells whose box holds it."""
    model = bundled.model
    key = model.layer(layer).key
    field = fields(model.onnx_proto, [key])[key]
    assert field is not None and not field.whole
    rng = np.random.default_rng(0)
    blob = bundled.blob(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8))
    base = bundled.tap(blob, [layer])[layer][0]
    h, w = base.shape[1:]
    assert (field.stride[0] * h, field.stride[1] * w) == (224, 224)
    for py, px in [(100, 120), (0, 0), (223, 50), (37, 223)]:
        changed = np.zeros((h, w), bool)
        for sign in (1, -1):
            perturbed = blob.copy()
            perturbed[0, :, py, px] += sign * 5
            out = bundled.tap(perturbed, [layer])[layer][0]
            changed |= (np.abs(out - base) > 1e-4 * (1 + np.abs(base))).any(axis=0)
        holds = np.zeros((h, w), bool)
        for y in range(h):
            for x in range(w):
                x0, y0, x1, y1 = field.box(y, x)
                holds[y, x] = x0 <= px < x1 and y0 <= py < y1
        assert changed.any()
        np.testing.assert_array_equal(changed, holds, err_msg=f"{layer}: pixel ({py}, {px})")


@pytest.mark.opencv
def test_box_maps_of_a_loaded_model(bundled: live.Network, net_dir: Path) -> None:
    model = bundled.model
    maps = box_maps(model, ["stem", "blocks.2.depthwise", "softmax"], (96, 72))
    assert maps["stem"].crop == model.preprocess.crop_rect((96, 72)) and maps["stem"].input_size == (224, 224)
    assert maps["blocks.2.depthwise"].field == Field((19, 19), (4, 4), (3, 3))
    assert maps["softmax"].field is not None and maps["softmax"].field.whole
    cx, cy, cw, ch = maps["stem"].crop
    assert (cx, cy, cw, ch) == (12, 0, 72, 72)  # the centre crop of a 4:3 frame
    assert maps["softmax"].box(0, 0, (1, 1)) == (12, 0, 84, 72)  # the whole region the network sees
    # every box lies in the frame and inside that region
    boxes = maps["blocks.2.depthwise"].boxes(*np.divmod(np.arange(56 * 56), 56), (56, 56))
    assert (boxes[:, 0] >= max(cx, 0)).all() and (boxes[:, 2] <= min(cx + cw, 96)).all()
    assert (boxes[:, 1] >= max(cy, 0)).all() and (boxes[:, 3] <= min(cy + ch, 72)).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    nhwc = live.Network(net_dir / "nhwc_input.onnx", probe=False)
    assert box_maps(nhwc.model, ["out"], (16, 16))["out"].field == Field((3, 3), (1, 1), (0, 0))
