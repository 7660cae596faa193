"""Small real ONNX networks the tests build with ``onnx.helper``.

Each exercises something that broke naive layer taps: branches, residual
adds, depthwise convs, fused activations (Sigmoid*Mul = Swish, Conv+BN+ReLU),
odd names with ``/`` and ``:``, unnamed nodes, multi-output nodes, NHWC
tensors, reshapes whose target is computed at run time, 2-D heads.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def weight(self, name: str, shape: tuple[int, ...], scale: float | None = None) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        std = scale if scale is not None else float(np.sqrt(2.0 / fan_in))
        self.inits.append(numpy_helper.from_array((self.rng.standard_normal(shape) * std).astype(np.float32), name))
        return name

    def positive(self, name: str, n: int) -> str:
        self.inits.append(numpy_helper.from_array(self.rng.uniform(0.5, 1.5, n).astype(np.float32), name))
        return name

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str = "", **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))
        return outputs[0]

    def conv(self, x: str, cin: int, cout: int, name: str, k: int = 3, stride: int = 1, group: int = 1) -> str:
        w = self.weight(f"{name}.w", (cout, cin // group, k, k))
        b = self.weight(f"{name}.b", (cout,), 0.1)
        p = k // 2
        return self.node(
            "Conv", [x, w, b], [f"{name}:0"], name, pads=[p] * 4, strides=[stride] * 2, group=group, kernel_shape=[k, k]
        )

    def bn(self, x: str, c: int, name: str) -> str:
        args = [
            self.positive(f"{name}.s", c),
            self.weight(f"{name}.b", (c,), 0.1),
            self.weight(f"{name}.m", (c,), 0.1),
            self.positive(f"{name}.v", c),
        ]
        return self.node("BatchNormalization", [x, *args], [f"{name}_out"], name)

    def model(self, inp: onnx.ValueInfoProto, outputs: list[onnx.ValueInfoProto], opset: int = 13) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "test", [inp], outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def branchy(seed: int = 0) -> onnx.ModelProto:
    """A 32x32 RGB classifier with every awkward pattern we know of."""
    b = _Builder(seed)
    x = b.conv("input", 3, 8, "stem/conv")  # name with '/', output with ':'
    x = b.bn(x, 8, "stem/bn")
    sig = b.node("Sigmoid", [x], ["stem/sigmoid"], "stem/sigmoid")
    x = b.node("Mul", [x, sig], ["stem/swish"], "stem/swish")  # fused to Swish on import
    dw = b.conv(x, 8, 8, "block1/dw", group=8)  # depthwise
    dw = b.node("Relu", [dw], ["block1/relu"], "")  # unnamed node
    pw = b.conv(dw, 8, 8, "block1/pw", k=1)
    x = b.node("Add", [pw, x], ["block1/residual"], "block1/add")
    left = b.conv(x, 8, 8, "branch/left", k=1)
    right = b.conv(x, 8, 4, "branch/right", k=3)
    right = b.node("Clip", [right, b.const("zero", np.float32(0)), b.const("six", np.float32(6))], ["relu6"], "relu6")
    x = b.node("Concat", [left, right], ["branch/concat"], "branch/concat", axis=1)
    parts = b.node("Split", [x, b.const("split", np.array([6, 6], np.int64))], ["split_a", "split_b"], "split", axis=1)
    a = b.node("HardSwish", [parts], ["hswish"], "hswish")
    x = b.node("Mul", [a, "split_b"], ["gate"], "gate")
    x = b.conv(x, 6, 16, "down", stride=2)
    x = b.node("Relu", [x], ["down_relu"], "down_relu")
    nhwc = b.node("Transpose", [x], ["to_nhwc"], "to_nhwc", perm=[0, 2, 3, 1])
    x = b.node("Transpose", [nhwc], ["to_nchw"], "to_nchw", perm=[0, 3, 1, 2])
    x = b.node("AveragePool", [x], ["pool"], "pool", kernel_shape=[2, 2], strides=[2, 2])
    shape = b.node("Shape", [x], ["pool_shape"], "pool_shape")
    batch = b.node("Gather", [shape, b.const("zero_idx", np.array([0], np.int64))], ["batch"], "batch", axis=0)
    target = b.node(
        "Concat", [batch, b.const("minus1", np.array([-1], np.int64))], ["flat_shape"], "flat_shape", axis=0
    )
    x = b.node("Reshape", [x, target], ["flatten"], "flatten")  # target computed at run time
    w = b.weight("fc.w", (10, 16 * 8 * 8))
    bias = b.weight("fc.b", (10,), 0.1)
    x = b.node("Gemm", [x, w, bias], ["logits"], "fc", transB=1)
    b.node("Softmax", [x], ["prob"], "softmax", axis=1)
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])
    out = helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 10])
    return b.model(inp, [out], opset=14)  # HardSwish needs 14


def two_heads(seed: int = 1) -> onnx.ModelProto:
    """Dynamic input size (N, 3, H, W) and two outputs (a map and a vector)."""
    b = _Builder(seed)
    x = b.conv("image", 3, 4, "c1", stride=2)
    x = b.node("LeakyRelu", [x], ["lrelu"], "lrelu", alpha=0.1)
    x = b.conv(x, 4, 4, "c2")
    b.node("Sigmoid", [x], ["heatmap"], "heatmap")
    g = b.node("GlobalAveragePool", [x], ["gap"], "gap")
    b.node("Flatten", [g], ["embedding"], "embedding")
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    outs = [
        helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, ["N", 4, "h", "w"]),
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 4]),
    ]
    return b.model(inp, outs)


def gray_mnist_like(seed: int = 2) -> onnx.ModelProto:
    """A 1-channel 28x28 input, like MNIST."""
    b = _Builder(seed)
    x = b.conv("pixels", 1, 4, "conv")
    x = b.node("Relu", [x], ["relu"], "relu")
    x = b.node("MaxPool", [x], ["pool"], "pool", kernel_shape=[2, 2], strides=[2, 2])
    x = b.node("Flatten", [x], ["flat"], "flat")
    w = b.weight("fc.w", (4 * 14 * 14, 10))
    b.node("MatMul", [x, w], ["scores"], "fc")
    inp = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 1, 28, 28])
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 10])
    return b.model(inp, [out])


def nhwc_input(seed: int = 3) -> onnx.ModelProto:
    """A TensorFlow-style model: NHWC input transposed to NCHW inside."""
    b = _Builder(seed)
    x = b.node("Transpose", ["img"], ["nchw"], "nchw", perm=[0, 3, 1, 2])
    x = b.conv(x, 3, 4, "conv")
    b.node("Relu", [x], ["out"], "relu")
    inp = helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 16, 16, 3])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 16, 16])
    return b.model(inp, [out])


def batch_pair(seed: int = 4) -> onnx.ModelProto:
    """One image in, a batch of two out: ReLU maps and their negation stacked on axis 0, (2, 6, 32, 32)."""
    b = _Builder(seed)
    x = b.conv("image", 3, 6, "conv")
    x = b.node("Relu", [x], ["maps"], "maps")
    neg = b.node("Neg", [x], ["neg"], "neg")
    b.node("Concat", [x, neg], ["pair"], "pair", axis=0)
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])
    out = helper.make_tensor_value_info("pair", TensorProto.FLOAT, [2, 6, 32, 32])
    return b.model(inp, [out])


def pooled_head(
    seed: int = 10,
    *,
    bias: bool = True,
    pool: str = "global",
    between: str = "flatten",
    linear: str = "gemm",
    classes: int = 5,
) -> onnx.ModelProto:
    """A small classifier with a pooled linear head, for CAM: features (1, 8, 6, 8) -> pool -> reshape -> linear.

    Args:
        bias: the classifier adds a bias.
        pool: ``global`` (GlobalAveragePool), ``reduce`` (ReduceMean over H and W), ``avgpool`` (an
            AveragePool whose window is the whole 6x8 map) or ``window`` (a 3x4 AveragePool: not global).
        between: ``flatten``, ``reshape`` (to a constant [1, -1]), ``squeeze`` (axes 2, 3) or ``none``
            (the ReduceMean keeps no dims; ``pool="reduce"`` only).
        linear: ``gemm`` (transB=1), ``gemm_t0`` (transB=0, alpha 0.5, beta 2), ``matmul`` (MatMul, then
            an Add for the bias) or ``relu_gemm`` (a Relu between the reshape and the Gemm: no linear head).
    The class scores are ``logits``, then ``prob`` (Softmax), the output.
    """
    b = _Builder(seed)
    x = b.conv("image", 3, 6, "c1", stride=2)
    x = b.node("Relu", [x], ["r1"], "r1")
    x = b.conv(x, 6, 8, "c2")
    a = b.node("Relu", [x], ["features"], "features")
    if pool == "global":
        p = b.node("GlobalAveragePool", [a], ["pooled"], "pool")
    elif pool == "reduce":
        p = b.node("ReduceMean", [a], ["pooled"], "pool", axes=[2, 3], keepdims=0 if between == "none" else 1)
    elif pool == "avgpool":
        p = b.node("AveragePool", [a], ["pooled"], "pool", kernel_shape=[6, 8])
    else:
        p = b.node("AveragePool", [a], ["pooled"], "pool", kernel_shape=[3, 4], strides=[3, 4])
    width = 8 if pool != "window" else 8 * 2 * 2
    if between == "flatten":
        p = b.node("Flatten", [p], ["flat"], "flatten")
    elif between == "reshape":
        p = b.node("Reshape", [p, b.const("flat_shape", np.array([1, -1], np.int64))], ["flat"], "reshape")
    elif between == "squeeze":
        p = b.node("Squeeze", [p, b.const("squeeze_axes", np.array([2, 3], np.int64))], ["flat"], "squeeze")
    if linear == "relu_gemm":
        p = b.node("Relu", [p], ["flat_relu"], "flat_relu")
    if linear in ("gemm", "relu_gemm"):
        w = b.weight("fc.w", (classes, width), 0.5)
        ins = [p, w, b.weight("fc.b", (classes,), 0.5)] if bias else [p, w]
        x = b.node("Gemm", ins, ["logits"], "fc", transB=1)
    elif linear == "gemm_t0":
        w = b.weight("fc.w", (width, classes), 0.5)
        ins = [p, w, b.weight("fc.b", (1, classes), 0.5)] if bias else [p, w]
        x = b.node("Gemm", ins, ["logits"], "fc", transB=0, alpha=0.5, beta=2.0)
    else:
        x = b.node("MatMul", [p, b.weight("fc.w", (width, classes), 0.5)], ["logits" if not bias else "product"], "fc")
        if bias:
            x = b.node("Add", [x, b.weight("fc.b", (classes,), 0.5)], ["logits"], "fc_bias")
    b.node("Softmax", [x], ["prob"], "softmax", axis=1)
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 12, 16])
    out = helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, classes])
    return b.model(inp, [out])


def conv_head(seed: int = 11, *, relu: bool = True, classes: int = 5) -> onnx.ModelProto:
    """SqueezeNet's head on a small net: features (1, 8, 6, 8) -> 1x1 Conv to ``classes`` maps (``classifier:0``)
    -> Relu (``class_relu``, when ``relu``) -> GlobalAveragePool -> Flatten (``logits``) -> Softmax (``prob``)."""
    b = _Builder(seed)
    x = b.conv("image", 3, 6, "c1", stride=2)
    x = b.node("Relu", [x], ["r1"], "r1")
    x = b.conv(x, 6, 8, "c2")
    a = b.node("Relu", [x], ["features"], "features")
    x = b.conv(a, 8, classes, "classifier", k=1)  # the class maps, "classifier:0"
    if relu:
        x = b.node("Relu", [x], ["class_relu"], "class_relu")
    x = b.node("GlobalAveragePool", [x], ["pooled"], "pool")
    x = b.node("Flatten", [x], ["logits"], "flatten")
    b.node("Softmax", [x], ["prob"], "softmax", axis=1)
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 12, 16])
    out = helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, classes])
    return b.model(inp, [out])


NETS = {
    "branchy": branchy,
    "two_heads": two_heads,
    "gray": gray_mnist_like,
    "nhwc_input": nhwc_input,
    "pair": batch_pair,
}


def float16_weights(model: onnx.ModelProto, only: tuple[str, ...] | None = None) -> onnx.ModelProto:
    """The same network with its float32 weights (or those named in ``only``) stored as float16, cast back by ``Cast``.

    Node names and tensor names are unchanged, so the two models' layers
    compare one to one; the weights differ by float16 rounding (about 5e-4
    relative), the planted difference ``live compare --b-model`` must find.
    """
    twin = onnx.ModelProto()
    twin.CopyFrom(model)
    graph = twin.graph
    casts = []
    kept = []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or (only is not None and init.name not in only):
            kept.append(init)
            continue
        value = numpy_helper.to_array(init).astype(np.float16)
        kept.append(numpy_helper.from_array(value, f"{init.name}.fp16"))
        casts.append(helper.make_node("Cast", [f"{init.name}.fp16"], [init.name], f"{init.name}.cast", to=1))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(twin)
    return twin
