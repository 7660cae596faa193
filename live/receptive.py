"""Receptive fields: which input pixels a cell of a layer's map sees, and which frame box that is.

* :class:`Field`: the receptive field of every cell of one tensor, as the
  classic (size, jump, start) triple per axis, composed from the input along
  every path through the ONNX graph (the union over branches).
* :func:`fields`: read those from an ONNX graph.
* :class:`BoxMap`: turns a cell (y, x) of a layer's (H, W) map into a box in
  frame pixels, through the network's input size and the frame region its
  preprocessing shows (the crop).
* :func:`box_maps`: the :class:`BoxMap` of each tapped layer of a loaded
  model.

Coordinates: input pixel ``i`` spans ``[i, i + 1)``; a box ``(x0, y0, x1,
y1)`` covers pixels ``x0 <= x < x1`` and ``y0 <= y < y1``.

onnx and numpy only; a :class:`~live.model.Model` is only read.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

if TYPE_CHECKING:
    from live.model import Model

_EPS = 1e-6  # float noise allowed when rounding a box outwards to whole pixels


@dataclasses.dataclass(frozen=True)
class Field:
    """The receptive field of the cells of one map, in network-input pixels.

    Attributes:
        size: (h, w) extent in input pixels (the union over branches).
        stride: (h, w) input pixels between neighbouring cells (the "jump"); fractional after an upsampling.
        start: (y, x) centre of cell (0, 0) in input pixel coordinates (pixel ``i``'s centre is ``i``).
        whole: every cell sees the whole input (after a global pool, a flatten, a fully connected layer, a
            squeeze-and-excitation gate); size, stride and start are then 0 and ``box`` is unbounded (clipping
            makes it the input).
    """

    size: tuple[float, float]
    stride: tuple[float, float]
    start: tuple[float, float]
    whole: bool = False

    def box(self, y: int, x: int) -> tuple[float, float, float, float]:
        """The field of cell (y, x) as ``(x0, y0, x1, y1)`` in input pixels, unclipped (may lie partly outside)."""
        if self.whole:
            return (-math.inf, -math.inf, math.inf, math.inf)
        cy = self.start[0] + y * self.stride[0]
        cx = self.start[1] + x * self.stride[1]
        y0 = cy - (self.size[0] - 1) / 2
        x0 = cx - (self.size[1] - 1) / 2
        return (x0, y0, x0 + self.size[1], y0 + self.size[0])


@dataclasses.dataclass(frozen=True)
class BoxMap:
    """How cell (y, x) of a layer's (H, W) map becomes a box in frame pixels.

    Attributes:
        field: the layer's receptive field; None: proportional cells (the input split into H x W cells).
        input_size: network input (width, height).
        crop: (x, y, w, h) of the frame region the input shows (``model.preprocess.crop_rect``); it may reach
            outside the frame (letterbox).
        frame_size: (width, height) of the frame.
    """

    field: Field | None
    input_size: tuple[int, int]
    crop: tuple[int, int, int, int]
    frame_size: tuple[int, int]

    @classmethod
    def proportional(cls, frame_size: tuple[int, int]) -> BoxMap:
        """Proportional cells over the whole frame: the frame split into H x W cells."""
        w, h = frame_size
        return cls(None, (max(1, w), max(1, h)), (0, 0, max(1, w), max(1, h)), (w, h))

    def box(self, y: int, x: int, map_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """The frame box ``(x0, y0, x1, y1)`` of cell (y, x), clipped to the frame (at least one pixel there)."""
        out = self.boxes(np.array([y]), np.array([x]), map_hw)[0]
        return (int(out[0]), int(out[1]), int(out[2]), int(out[3]))

    def boxes(self, ys: np.ndarray, xs: np.ndarray, map_hw: tuple[int, int]) -> np.ndarray:
        """:meth:`box` for many cells at once.

        Args:
            ys, xs: int arrays (n,) of cell rows and columns.
            map_hw: the map's (H, W).
        Returns:
            int64 (n, 4): ``(x0, y0, x1, y1)`` per cell, in frame pixels, clipped to the frame.
        """
        ys = np.asarray(ys, np.float64)
        xs = np.asarray(xs, np.float64)
        iw, ih = self.input_size
        mh, mw = max(1, map_hw[0]), max(1, map_hw[1])
        field = self.field
        if field is None:
            ix0, ix1 = xs * iw / mw, (xs + 1) * iw / mw
            iy0, iy1 = ys * ih / mh, (ys + 1) * ih / mh
        elif field.whole:
            ix0, ix1 = np.zeros_like(xs), np.full_like(xs, iw)
            iy0, iy1 = np.zeros_like(ys), np.full_like(ys, ih)
        else:
            cy = field.start[0] + ys * field.stride[0]
            cx = field.start[1] + xs * field.stride[1]
            iy0 = cy - (field.size[0] - 1) / 2
            ix0 = cx - (field.size[1] - 1) / 2
            iy1, ix1 = iy0 + field.size[0], ix0 + field.size[1]
        ix0, ix1 = np.clip(ix0, 0, iw), np.clip(ix1, 0, iw)
        iy0, iy1 = np.clip(iy0, 0, ih), np.clip(iy1, 0, ih)
        cx0, cy0, cw, ch = self.crop
        fw, fh = self.frame_size
        x0 = _clip_floor(cx0 + ix0 * cw / iw, fw)
        x1 = _clip_ceil(cx0 + ix1 * cw / iw, fw)
        y0 = _clip_floor(cy0 + iy0 * ch / ih, fh)
        y1 = _clip_ceil(cy0 + iy1 * ch / ih, fh)
        x0 = np.minimum(x0, np.maximum(fw - 1, 0))  # at least one pixel of the frame, where it has any
        y0 = np.minimum(y0, np.maximum(fh - 1, 0))
        x1 = np.maximum(x1, np.minimum(x0 + 1, fw))
        y1 = np.maximum(y1, np.minimum(y0 + 1, fh))
        return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)


def _clip_floor(v: np.ndarray, hi: int) -> np.ndarray:
    return np.clip(np.floor(v + _EPS), 0, hi).astype(np.int64)


def _clip_ceil(v: np.ndarray, hi: int) -> np.ndarray:
    return np.clip(np.ceil(v - _EPS), 0, hi).astype(np.int64)


# ----------------------------------------------------------------------------- reading the graph

# Ops that map each cell to the same cell (elementwise, per-cell activations and normalizations over channels).
_CELLWISE = frozenset(
    {
        *("Abs", "Acos", "Asin", "Atan", "Ceil", "Celu", "Clip", "Cos", "Cosh", "Dropout", "Elu", "Erf", "Exp"),
        *("Floor", "Gelu", "HardSigmoid", "HardSwish", "Identity", "IsInf", "IsNaN", "LeakyRelu", "Log", "Mish"),
        *("Neg", "Not", "PRelu", "Reciprocal", "Relu", "Round", "Selu", "Shrink", "Sigmoid", "Sign", "Sin"),
        *("Sinh", "Softplus", "Softsign", "Sqrt", "Swish", "Tan", "Tanh", "ThresholdedRelu", "BatchNormalization"),
        *("Cast", "CastLike", "QuantizeLinear", "DequantizeLinear", "LRN", "LpNormalization"),
        *("Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow", "Where", "And", "Or", "Xor", "Equal"),
        *("Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Mod", "BitShift", "Expand"),
    }
)
_WINDOWED = frozenset({"Conv", "MaxPool", "AveragePool", "LpPool"})
_EVERYTHING = frozenset(
    {
        *("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "Flatten", "Gemm", "InstanceNormalization"),
        "MeanVarianceNormalization",
    }
)
_REDUCE = frozenset(
    {
        *("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceL1", "ReduceL2", "ReduceLogSum"),
        *("ReduceLogSumExp", "ReduceProd", "ReduceSumSquare", "ArgMax", "ArgMin"),
    }
)
_CONST_OPS = frozenset({"Constant", "Shape", "Size", "ConstantOfShape", "EyeLike", "RandomNormal", "RandomUniform"})
_RESIZE_TAPS = {"nearest": 1, "linear": 2, "bilinear": 2, "cubic": 4}


@dataclasses.dataclass(frozen=True)
class _Path:
    """A tensor's field while reading the graph: per spatial axis (h, w) size, jump and start; where they are."""

    size: tuple[float, float]
    jump: tuple[float, float]
    start: tuple[float, float]
    axes: tuple[int, int]  # the tensor's (H, W) axes
    rank: int
    whole: bool = False

    def field(self) -> Field:
        def num(v: float) -> float:
            return int(v) if float(v).is_integer() else v

        return Field(
            (num(self.size[0]), num(self.size[1])),
            (num(self.jump[0]), num(self.jump[1])),
            (num(self.start[0]), num(self.start[1])),
            self.whole,
        )


_UNKNOWN = None  # a tensor whose field cannot be told
_WHOLE = _Path((0, 0), (0, 0), (0, 0), (0, 1), 2, whole=True)


def fields(proto: onnx.ModelProto, tensors: Iterable[str], layout: str = "auto") -> dict[str, Field | None]:
    """The receptive field of each named tensor of an ONNX graph, in input pixels.

    Conv, MaxPool, AveragePool and LpPool compose by their kernel, strides, pads, dilations and auto_pad;
    cell-wise ops (activations, BatchNormalization, Add, Mul, ...) and Concat/Split over channels pass fields
    through (the union over their inputs, the "max over branches"); Pad and Slice on H or W shift them;
    Transpose, Squeeze, Unsqueeze and shape-keeping Reshapes follow the H and W axes; Resize/Upsample divide the
    stride by their scale (approximately: the taps of the interpolation widen the field); global pools,
    Flatten, Gemm, reductions over H or W, InstanceNormalization and anything fed by such a tensor (a
    squeeze-and-excitation gate) see the whole input. Other ops, and tensors not found, give None.

    Args:
        proto: the model.
        tensors: tensor names.
        layout: the image input's layout: ``nchw``, ``nhwc`` or ``auto`` (NHWC when its last dimension is 1, 3
            or 4 and its second is not).
    Returns:
        ``{tensor: Field or None}``.
    """
    graph = proto.graph
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
    try:
        inferred = shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001 - shape inference is a help here, never required
        inferred = proto
    shapes = _shapes(inferred)
    values = {init.name: init for init in graph.initializer}
    constants: set[str] = set(values)
    known: dict[str, _Path | None] = {}
    for inp in graph.input:
        if inp.name in constants:
            continue
        shape = shapes.get(inp.name)
        if shape is None or len(shape) != 4:
            known[inp.name] = _UNKNOWN
            continue
        nhwc = layout == "nhwc" or (layout == "auto" and shape[3] in (1, 3, 4) and shape[1] not in (1, 3, 4))
        known[inp.name] = _Path((1, 1), (1, 1), (0, 0), (1, 2) if nhwc else (2, 3), 4)
    for node in graph.node:
        ins = [name for name in node.input if name]
        if node.op_type == "Constant":
            for out in node.output:
                constants.add(out)
                attr = next((a for a in node.attribute if a.name == "value"), None)
                if attr is not None:
                    values[out] = attr.t
            continue
        if node.op_type in _CONST_OPS or all(name in constants for name in ins):
            constants.update(node.output)
            continue
        live = [known.get(name, _UNKNOWN) for name in ins if name not in constants]
        flat = node.op_type == "MatMul" and len(shapes.get(node.input[0]) or ()) in (1, 2)  # (N, features) @ W
        if node.op_type in _EVERYTHING or flat or any(p is not None and p.whole for p in live):
            # a fully connected layer or a global pool reads every cell, whatever fed it: the whole input
            out: _Path | None = _WHOLE
        elif any(p is None for p in live):
            out = _UNKNOWN
        else:
            try:
                out = _through(node, live, shapes, values, opset)  # type: ignore[arg-type]
            except (ValueError, IndexError, KeyError, TypeError, ZeroDivisionError):
                out = _UNKNOWN
        for name in node.output:
            if name:
                known[name] = out
    result: dict[str, Field | None] = {}
    for name in tensors:
        path = known.get(name)
        result[name] = path.field() if path is not None else None
    return result


def _shapes(proto: onnx.ModelProto) -> dict[str, tuple[int | None, ...] | None]:
    """Tensor name -> shape (None for unknown dims) from the graph's value infos, inputs and outputs."""
    out: dict[str, tuple[int | None, ...] | None] = {}
    graph = proto.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        t = info.type.tensor_type
        if not t.HasField("shape"):
            out.setdefault(info.name, None)
            continue
        out[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
    for init in graph.initializer:
        out[init.name] = tuple(init.dims)
    return out


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _const(values: Mapping[str, onnx.TensorProto], name: str) -> np.ndarray:
    """A constant input's value; KeyError when it is not a constant."""
    return numpy_helper.to_array(values[name])


def _axis(axis: int, rank: int) -> int:
    axis = int(axis)
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _union(paths: Sequence[_Path]) -> _Path | None:
    """The field of a cell that reads the same cell of several tensors: the union of their fields."""
    first = paths[0]
    if any(p.axes != first.axes or p.rank != first.rank for p in paths):
        return None
    if any(not np.allclose(p.jump, first.jump) for p in paths):
        return None
    size, start = [], []
    for a in range(2):
        lo = min(p.start[a] - (p.size[a] - 1) / 2 for p in paths)
        hi = max(p.start[a] + (p.size[a] - 1) / 2 for p in paths)
        size.append(hi - lo + 1)
        start.append((lo + hi) / 2)
    return dataclasses.replace(first, size=(size[0], size[1]), start=(start[0], start[1]))


def _window(
    path: _Path, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int], begin: Sequence[float]
) -> _Path:
    """A sliding window (a convolution or a pool) over the (H, W) axes."""
    size, jump, start = list(path.size), list(path.jump), list(path.start)
    for a in range(2):
        k_eff = dilations[a] * (kernel[a] - 1) + 1
        size[a] = size[a] + (k_eff - 1) * jump[a]
        start[a] = start[a] + ((k_eff - 1) / 2 - begin[a]) * jump[a]
        jump[a] = jump[a] * strides[a]
    return dataclasses.replace(path, size=(size[0], size[1]), jump=(jump[0], jump[1]), start=(start[0], start[1]))


def _through(
    node: onnx.NodeProto,
    live: Sequence[_Path],
    shapes: Mapping[str, tuple[int | None, ...] | None],
    values: Mapping[str, onnx.TensorProto],
    opset: int,
) -> _Path | None:
    """The field of a node's outputs from those of its non-constant inputs (none of them whole or unknown)."""
    op, attrs = node.op_type, _attrs(node)
    first = live[0]
    rank = first.rank
    if op in _CELLWISE:
        out = _union(live)
        if out is not None and op == "Expand":
            return None
        return out
    if op in _WINDOWED:
        if node.input[0] in values or first.axes != (2, 3) or rank != 4 or len(live) != 1:
            return None
        return _windowed(node, attrs, first, shapes, values)
    if op in ("Concat", "Split"):
        axis = _axis(attrs.get("axis", 0), rank)
        return None if axis in first.axes else _union(live)
    if op in ("Softmax", "LogSoftmax", "Hardmax"):
        axis = _axis(attrs.get("axis", 1 if opset < 13 else -1), rank)
        mixes = axis <= max(first.axes) if opset < 13 else axis in first.axes
        return _WHOLE if mixes else first
    if op == "LayerNormalization":
        axis = _axis(attrs.get("axis", -1), rank)
        return _WHOLE if axis <= max(first.axes) else first
    if op in _REDUCE:
        return _reduce(node, attrs, first, values, opset)
    if op == "Transpose":
        perm = list(attrs.get("perm", reversed(range(rank))))
        return dataclasses.replace(first, axes=(perm.index(first.axes[0]), perm.index(first.axes[1])))
    if op in ("Squeeze", "Unsqueeze"):
        axes = attrs.get("axes")
        if axes is None:
            axes = _const(values, node.input[1]).tolist() if len(node.input) > 1 and node.input[1] else None
        if axes is None:
            return None
        if op == "Squeeze":
            gone = sorted(_axis(a, rank) for a in axes)
            if set(gone) & set(first.axes):
                return None
            new = tuple(a - sum(g < a for g in gone) for a in first.axes)
            return dataclasses.replace(first, axes=(new[0], new[1]), rank=rank - len(gone))
        out_rank = rank + len(axes)
        added = sorted(_axis(a, out_rank) for a in axes)
        mapping = [i for i in range(out_rank) if i not in added]
        return dataclasses.replace(first, axes=(mapping[first.axes[0]], mapping[first.axes[1]]), rank=out_rank)
    if op == "Reshape":
        return _reshape(node, first, shapes)
    if op == "MatMul":
        # A (.., H, W, C) @ B (C, D) mixes channels only: a 1x1 convolution over NHWC maps
        if len(live) == 1 and node.input[0] not in values and max(first.axes) < rank - 1:
            return first
        return _WHOLE
    if op == "Pad":
        return _pad(node, attrs, first, values, opset)
    if op == "Slice":
        return _slice(node, attrs, first, shapes, values, opset)
    if op in ("Resize", "Upsample"):
        return _resize(node, attrs, first, shapes, values, opset)
    if op == "SpaceToDepth":
        b = int(attrs["blocksize"])
        if first.axes != (2, 3):
            return None
        return _window(first, (b, b), (b, b), (1, 1), (0, 0))
    return None


def _windowed(
    node: onnx.NodeProto,
    attrs: Mapping[str, Any],
    path: _Path,
    shapes: Mapping[str, tuple[int | None, ...] | None],
    values: Mapping[str, onnx.TensorProto],
) -> _Path | None:
    kernel = attrs.get("kernel_shape")
    if kernel is None and node.op_type == "Conv":
        w = shapes.get(node.input[1])
        kernel = list(w[2:]) if w is not None and len(w) == 4 and None not in w[2:] else None
    if kernel is None or len(kernel) != 2:
        return None
    strides = list(attrs.get("strides", [1, 1]))
    dilations = list(attrs.get("dilations", [1, 1]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    begin: list[float] = [pads[0], pads[1]]
    if auto_pad == "VALID":
        begin = [0, 0]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        shape = shapes.get(node.input[0])
        if shape is None or len(shape) != 4 or shape[2] is None or shape[3] is None:
            return None
        begin = []
        for a, size in enumerate(shape[2:]):
            k_eff = dilations[a] * (kernel[a] - 1) + 1
            total = max((math.ceil(size / strides[a]) - 1) * strides[a] + k_eff - size, 0)
            begin.append(total // 2 if auto_pad == "SAME_UPPER" else (total + 1) // 2)
    return _window(path, kernel, strides, dilations, begin)


def _reduce(
    node: onnx.NodeProto, attrs: Mapping[str, Any], path: _Path, values: Mapping[str, onnx.TensorProto], opset: int
) -> _Path | None:
    rank = path.rank
    if node.op_type in ("ArgMax", "ArgMin"):
        axes = [attrs.get("axis", 0)]
    else:
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = _const(values, node.input[1]).tolist()
    if not axes:  # every axis
        return _WHOLE
    axes = sorted(_axis(a, rank) for a in axes)
    if set(axes) & set(path.axes):
        return _WHOLE
    if attrs.get("keepdims", 1):
        return path
    new = tuple(a - sum(g < a for g in axes) for a in path.axes)
    return dataclasses.replace(path, axes=(new[0], new[1]), rank=rank - len(axes))


def _reshape(node: onnx.NodeProto, path: _Path, shapes: Mapping[str, tuple[int | None, ...] | None]) -> _Path | None:
    """A Reshape that keeps H and W as the last two axes (channel shuffles) keeps the field."""
    src, dst = shapes.get(node.input[0]), shapes.get(node.output[0])
    if src is None or dst is None or path.axes != (path.rank - 2, path.rank - 1) or len(dst) < 2:
        return None
    if None in src or None in dst[-2:] or tuple(src[-2:]) != tuple(dst[-2:]):
        return None
    if None not in dst and math.prod(src[:-2]) != math.prod(dst[:-2]):  # type: ignore[arg-type]
        return None
    return dataclasses.replace(path, axes=(len(dst) - 2, len(dst) - 1), rank=len(dst))


def _pad(
    node: onnx.NodeProto, attrs: Mapping[str, Any], path: _Path, values: Mapping[str, onnx.TensorProto], opset: int
) -> _Path | None:
    if opset < 11:
        pads = list(attrs["pads"])
    else:
        pads = _const(values, node.input[1]).tolist()
        if len(node.input) > 3 and node.input[3]:
            axes = [_axis(a, path.rank) for a in _const(values, node.input[3]).tolist()]
            full = [0] * (2 * path.rank)
            for i, a in enumerate(axes):
                full[a], full[a + path.rank] = pads[i], pads[i + len(axes)]
            pads = full
    start = tuple(path.start[i] - pads[a] * path.jump[i] for i, a in enumerate(path.axes))
    return dataclasses.replace(path, start=(start[0], start[1]))


def _slice(
    node: onnx.NodeProto,
    attrs: Mapping[str, Any],
    path: _Path,
    shapes: Mapping[str, tuple[int | None, ...] | None],
    values: Mapping[str, onnx.TensorProto],
    opset: int,
) -> _Path | None:
    if opset < 10:
        starts, axes = list(attrs["starts"]), list(attrs.get("axes", range(len(attrs["starts"]))))
        steps = [1] * len(starts)
    else:
        inputs = list(node.input) + [""] * 5
        starts = _const(values, inputs[1]).tolist()
        axes = _const(values, inputs[3]).tolist() if inputs[3] else list(range(len(starts)))
        steps = _const(values, inputs[4]).tolist() if inputs[4] else [1] * len(starts)
    shape = shapes.get(node.input[0])
    start, jump = list(path.start), list(path.jump)
    for s, a, step in zip(starts, axes, steps, strict=True):
        a = _axis(a, path.rank)
        if a not in path.axes:
            continue
        if step < 1:
            return None
        i = path.axes.index(a)
        if s < 0:
            dim = shape[a] if shape is not None else None
            if dim is None:
                return None
            s = max(0, s + dim)
        start[i] += s * jump[i]
        jump[i] *= step
    return dataclasses.replace(path, start=(start[0], start[1]), jump=(jump[0], jump[1]))


def _resize(
    node: onnx.NodeProto,
    attrs: Mapping[str, Any],
    path: _Path,
    shapes: Mapping[str, tuple[int | None, ...] | None],
    values: Mapping[str, onnx.TensorProto],
    opset: int,
) -> _Path | None:
    """Resize/Upsample by their scale: the stride divided by it, the field widened by the interpolation's taps.

    Approximate: the cells an output cell reads sit within half an input cell of the position its
    coordinate transformation gives, which is where the field is centred.
    """
    inputs = list(node.input) + [""] * 4
    scales: list[float] | None = None
    if "scales" in attrs:  # Upsample, opset 7-8
        scales = list(attrs["scales"])
    elif node.op_type == "Upsample" or (node.op_type == "Resize" and opset < 11):
        scales = _const(values, inputs[1]).tolist()
    else:
        if inputs[2] and inputs[2] in values and numpy_helper.to_array(values[inputs[2]]).size:
            scales = _const(values, inputs[2]).tolist()
        else:
            src, dst = shapes.get(node.input[0]), shapes.get(node.output[0])
            if src is None or dst is None or None in src or None in dst:
                return None
            scales = [d / s for s, d in zip(src, dst, strict=True)]  # type: ignore[operator]
    mode = attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    ctm = attrs.get("coordinate_transformation_mode", b"half_pixel" if opset >= 11 else b"asymmetric")
    ctm = ctm.decode() if isinstance(ctm, bytes) else str(ctm)
    taps = _RESIZE_TAPS.get(mode)
    if taps is None or scales is None or len(scales) != path.rank:
        return None
    size, jump, start = list(path.size), list(path.jump), list(path.start)
    for i, a in enumerate(path.axes):
        s = float(scales[a])
        if s <= 0:
            return None
        offset = {"half_pixel": 0.5 / s - 0.5, "pytorch_half_pixel": 0.5 / s - 0.5, "tf_half_pixel_for_nn": 0.5 / s}
        x0 = offset.get(ctm, 0.0)
        size[i] = size[i] + (taps - 1) * jump[i]
        start[i] = start[i] + x0 * jump[i]  # the input position of output cell 0, the centre of its taps
        jump[i] = jump[i] / s
    return dataclasses.replace(path, size=(size[0], size[1]), jump=(jump[0], jump[1]), start=(start[0], start[1]))


# ----------------------------------------------------------------------------- a loaded model


def box_maps(model: Model, layers: Iterable[str], frame_size: tuple[int, int]) -> dict[str, BoxMap]:
    """The :class:`BoxMap` of each layer of a loaded model for frames of ``frame_size`` (width, height).

    ONNX models get their layers' receptive fields (:func:`fields`, at the model's input layout); other formats,
    and layers whose field cannot be told, get proportional cells over the region of the frame the network sees.
    Call it after the model has its input size (a model with a dynamic size takes it from the first frame).

    Raises:
        LayerError: an unknown layer.
    """
    names = list(layers)
    pre = model.preprocess
    crop = pre.crop_rect((int(frame_size[0]), int(frame_size[1])))
    keys = {name: model.layer(name).key for name in names}
    proto = model.onnx_proto
    found = fields(proto, keys.values(), pre.layout) if proto is not None else {}
    size = (int(frame_size[0]), int(frame_size[1]))
    return {name: BoxMap(found.get(keys[name]), pre.size, crop, size) for name in names}
