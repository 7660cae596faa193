"""ONNX graph surgery: list every node output and build "tap" models.

Why this exists: on OpenCV 5's new engine ``net.forward("tensor")`` throws for
most names and silently returns a different tensor for others. The one
engine-independent way to read an intermediate tensor is to make it a graph
output. Each tapped tensor gets its own ``Identity`` consumer whose output is
the new graph output; the extra consumer also keeps tensors that the importer
would otherwise fuse away (a Sigmoid feeding a Mul becomes one Swish).

Pure ``onnx``: no cv2 here.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

import onnx
from onnx import TensorProto, helper, shape_inference

from live.errors import ModelError

TAP_PREFIX = "__live_tap_"
_TAP_RE = re.compile(re.escape(TAP_PREFIX) + r"(\d+)__")

Dim = int | str

# Ops whose first output has their first input's shape; used where ONNX shape
# inference gives up (e.g. Dropout before opset 12).
SAME_SHAPE_OPS = frozenset(
    {
        *("Abs", "Ceil", "Clip", "Dropout", "Elu", "Erf", "Exp", "Floor", "Gelu", "HardSigmoid", "HardSwish"),
        *("Identity", "LRN", "LeakyRelu", "Log", "LpNormalization", "MeanVarianceNormalization", "Mish", "Neg"),
        *("Not", "PRelu", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid", "Sign", "Softplus", "Softsign"),
        *("Sqrt", "Swish", "Tanh", "ThresholdedRelu", "BatchNormalization", "InstanceNormalization"),
        *("LayerNormalization", "Softmax", "LogSoftmax", "Hardmax", "Cast"),
    }
)


# Ops whose outputs past the first are all real results; for other ops they
# are training-time extras (Dropout mask, BatchNormalization running stats,
# MaxPool indices) that cv2.dnn does not compute, and may alias to the first.
MULTI_OUTPUT_OPS = frozenset({"Split", "TopK", "LSTM", "GRU", "RNN", "Unique"})


@dataclasses.dataclass(frozen=True)
class NodeOutput:
    """One output tensor of one node, in graph (topological) order.

    Attributes:
        tensor: the ONNX tensor name (as Netron shows it).
        node: the producing node's name ('' when the node has none).
        op: the producing node's op type.
        shape: inferred shape; ints, or strings for symbolic dims; ``None``
            when even the rank is unknown.
        elem_type: ONNX ``TensorProto`` data type (1 = float32).
        constant: depends on weights only, not on the network input.
        extra: a training-time extra output (see MULTI_OUTPUT_OPS).
    """

    tensor: str
    node: str
    op: str
    shape: tuple[Dim, ...] | None
    elem_type: int
    constant: bool
    extra: bool = False


def tap_index(output_name: str) -> int | None:
    """The tap number encoded in a tap output name, or None for other names."""
    match = _TAP_RE.search(output_name)
    return int(match.group(1)) if match else None


def _dims(type_proto: onnx.TypeProto) -> tuple[Dim, ...] | None:
    tensor_type = type_proto.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims: list[Dim] = []
    for i, dim in enumerate(tensor_type.shape.dim):
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or f"d{i}")
    return tuple(dims)


def _check_names(graph: onnx.GraphProto) -> None:
    """ModelError when a name in the graph is not valid UTF-8.

    The protobuf runtime hands such a string field back as ``bytes``; left
    there, it fails far away (building a tap model, writing JSON).
    """
    values = (*graph.input, *graph.output, *graph.value_info, *graph.initializer)
    names = [value.name for value in values]
    for node in graph.node:
        names += [node.name, node.op_type, *node.input, *node.output]
    for name in names:
        if not isinstance(name, str):
            raise ModelError(f"the ONNX graph has a name that is not valid UTF-8: {name!r} (a damaged file?)")


def _image_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """The graph's inputs that are not weights; ModelError unless there is exactly one."""
    initializers = {init.name for init in graph.initializer}
    inputs = [inp for inp in graph.input if inp.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(inp.name for inp in inputs) or "none"
        raise ModelError(f"live feeds one image input; this model has {len(inputs)} inputs ({names})")
    return inputs


_GRAPH_TAG = bytes([7 << 3 | 2])  # ModelProto field 7 (graph), length-delimited


def _varint(value: int) -> bytes:
    """``value`` >= 0 as a protobuf varint: 7 bits a byte, least significant first, the high bit saying more follow."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


WEIGHT_ELEMENTS = 1024
"""An initializer with more elements than this is a weight: shape inference sees its type and shape, not its values."""


def _weightless(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` for shape inference: large initializers become graph inputs of the same type and shape.

    Inference serializes the whole model into its C++ side and back; with a
    100 MB ResNet-50 that took 0.45 s of a 1.2 s ``live layers``. Shapes need
    the weights' dims only; the small initializers (Reshape targets, axes,
    constants that data propagation folds) stay as they are.
    """
    light = onnx.ModelProto()
    for field in ("ir_version", "producer_name", "producer_version", "domain", "model_version", "doc_string"):
        setattr(light, field, getattr(model, field))
    light.ir_version = max(light.ir_version, 4)  # initializers that are no inputs, inputs that are no initializers
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    graph, lean = model.graph, light.graph
    lean.name = graph.name
    lean.node.extend(graph.node)
    lean.input.extend(graph.input)
    lean.output.extend(graph.output)
    lean.value_info.extend(graph.value_info)
    declared = {value.name for value in graph.input}
    for init in graph.initializer:
        # Counted from its dims: protobuf's ByteSize() walks the data (30 ms for ResNet-50's 268 tensors).
        if math.prod(init.dims) <= WEIGHT_ELEMENTS or init.data_location == TensorProto.EXTERNAL:
            lean.initializer.append(init)
        elif init.name not in declared:
            lean.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return light


class OnnxGraph:
    """A parsed ONNX model with its input fixed to one concrete shape.

    Args:
        model: the loaded ``ModelProto`` (not modified; shared as :attr:`model`
            when the graph needs no change, copied otherwise).
        input_shape: the concrete shape fed to the (single) image input,
            e.g. (1, 3, 224, 224); symbolic input dims are replaced by it
            so that shape inference yields concrete shapes.
        data: the serialized ``model`` (the file's bytes), when the caller
            has them: where the graph as run is the file's, tap models are
            these bytes with the taps appended (:meth:`tap_model`).
    """

    def __init__(
        self, model: onnx.ModelProto, input_shape: Sequence[int] | None = None, data: bytes | None = None
    ) -> None:
        _check_names(model.graph)
        inputs = _image_inputs(model.graph)
        trim = len(inputs) != len(model.graph.input)
        dims = inputs[0].type.tensor_type.shape.dim
        refit = input_shape is not None and [d.dim_value if d.HasField("dim_value") else None for d in dims] != list(
            input_shape
        )
        if trim or refit:
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            model, data = copy, None
            inputs = _image_inputs(model.graph)
        self.model = model
        self.data = data
        graph = self.model.graph
        initializers = {init.name for init in graph.initializer}
        if trim:
            # Old exporters list weights as inputs too; that hides them from
            # shape inference's data propagation (Reshape targets stay unknown).
            del graph.input[:]
            graph.input.extend(inputs)
            self.model.ir_version = max(self.model.ir_version, 4)
        self.input_name = inputs[0].name
        self.input_elem_type = inputs[0].type.tensor_type.elem_type
        self.input_dims = _dims(inputs[0].type) or ()
        if refit:
            assert input_shape is not None
            self._fix_input(inputs[0], input_shape)
        self.outputs = [out.name for out in graph.output]
        try:
            inferred = shape_inference.infer_shapes(_weightless(self.model), strict_mode=False, data_prop=True)
        except Exception:  # noqa: BLE001 - inference is best effort; cv2 checks later
            inferred = self.model
        types: dict[str, onnx.TypeProto] = {}
        for info in (*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input):
            types[info.name] = info.type
        self._types = types
        self.node_outputs = self._collect(graph, initializers)

    @staticmethod
    def declared_input(model: onnx.ModelProto) -> tuple[Dim, ...]:
        """The image input's dims as the file declares them (ints, or names for dynamic ones), without inference.

        Raises:
            ModelError: the graph has no single image input, or a name is not valid UTF-8.
        """
        _check_names(model.graph)
        return _dims(_image_inputs(model.graph)[0].type) or ()

    def _fix_input(self, value_info: onnx.ValueInfoProto, shape: Sequence[int]) -> None:
        dims = value_info.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise ModelError(
                f"model input {value_info.name!r} has rank {len(dims)}, cannot feed a blob of shape {tuple(shape)}"
            )
        for dim, size in zip(dims, shape, strict=True):
            if dim.HasField("dim_value") and dim.dim_value not in (0, size):
                want = "x".join(str(d) for d in (self.input_dims or ()))
                raise ModelError(
                    f"model input {value_info.name!r} is {want}; a blob of shape "
                    f"{'x'.join(map(str, shape))} does not fit (check --size/--layout)"
                )
            dim.Clear()
            dim.dim_value = int(size)

    def _collect(self, graph: onnx.GraphProto, initializers: set[str]) -> list[NodeOutput]:
        constant: set[str] = set(initializers) | {""}
        result: list[NodeOutput] = []
        shapes: dict[str, tuple[Dim, ...] | None] = {}
        elem_types: dict[str, int] = {}
        for value in graph.input:
            shapes[value.name] = _dims(self._types[value.name]) if value.name in self._types else None
        for node in graph.node:
            is_const = all(name in constant for name in node.input)
            for position, out in enumerate(node.output):
                if not out:
                    continue
                if is_const:
                    constant.add(out)
                type_proto = self._types.get(out)
                shape = _dims(type_proto) if type_proto is not None else None
                elem = type_proto.tensor_type.elem_type if type_proto is not None else 0
                if shape is None and node.op_type in SAME_SHAPE_OPS and node.input and out == node.output[0]:
                    shape = shapes.get(node.input[0])
                    elem = elem or elem_types.get(node.input[0], 0)
                shapes[out] = shape
                elem_types[out] = elem
                result.append(
                    NodeOutput(
                        tensor=out,
                        node=node.name,
                        op=node.op_type,
                        shape=shape,
                        elem_type=elem or TensorProto.FLOAT,
                        constant=is_const,
                        extra=position > 0 and node.op_type not in MULTI_OUTPUT_OPS,
                    )
                )
        return result

    def tap_model(self, tensors: Sequence[str], *, declare_shapes: bool = True) -> bytes:
        """Serialized model whose outputs are exactly ``tensors``, in order.

        Output ``i`` is named ``__live_tap_{i}__`` and fed by an ``Identity``
        of ``tensors[i]``; the original outputs are kept only if listed.

        cv2 refuses a graph output without a shape, but only reads it as a
        hint: where shape inference gave up (a Reshape whose target is
        computed), four symbolic dims stand in and cv2 returns the real
        shape. ``declare_shapes=False`` leaves outputs shapeless, as a
        reference runtime that checks declared shapes wants.

        Raises:
            ModelError: a tensor is unknown.
        """
        by_name = {out.tensor: out for out in self.node_outputs}
        for name in self.outputs:
            by_name.setdefault(
                name,
                NodeOutput(name, "", "Output", _dims(self._types[name]) if name in self._types else None, 1, False),
            )
        taps = onnx.GraphProto()
        for i, tensor in enumerate(tensors):
            info = by_name.get(tensor)
            if info is None:
                raise ModelError(f"no tensor named {tensor!r} in the model")
            name = f"{TAP_PREFIX}{i}__"
            taps.node.append(helper.make_node("Identity", [tensor], [name], name=name))
            if not declare_shapes:
                taps.output.append(helper.make_tensor_value_info(name, info.elem_type, None))
                continue
            shape = list(info.shape) if info.shape is not None else ["r0", "r1", "r2", "r3"]
            taps.output.append(helper.make_tensor_value_info(name, info.elem_type, shape))
        if self.data is not None and declare_shapes and set(self.outputs) <= set(tensors):
            # The file's bytes and a second ``graph`` field holding only the taps: a protobuf parser merges
            # it into the first (repeated fields are concatenated), so the graph gets the Identity nodes
            # after its own and the tap outputs after its outputs, which are tapped too. No copy of the
            # model, no serialization: 0.24 s less for a 100 MB ResNet-50.
            extra = taps.SerializeToString()
            return b"".join((self.data, _GRAPH_TAG, _varint(len(extra)), extra))
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        graph = model.graph
        del graph.output[:]
        graph.node.extend(taps.node)
        graph.output.extend(taps.output)
        return model.SerializeToString()
