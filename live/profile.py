"""Where the time goes: per-layer times from the engine's own profile (``cv2.dnn.Net.getPerfProfile``).

What OpenCV gives (measured on opencv-python-headless 4.14, 5.0 and 5.1):

* ``getPerfProfile()`` returns ``(total_ticks, per_layer_ticks)`` for the
  last forward pass, one entry per name of ``net.getLayerNames()``, in ticks
  of ``cv2.getTickFrequency()``. The classic engine (4.x, 5.0) and the new
  graph engine (5.0, 5.1) both fill it in.
* The classic engine lists every layer it built, fused ones included with
  0 ms (a BatchNorm or ReLU folded into the convolution before it); its ONNX
  names look like ``onnx_node!conv1`` (a node), ``onnx_node_output_0!t``
  (the node without a name that makes tensor ``t``), and bare output names
  for the copies it makes of the graph outputs.
* On an OpenCL target the kernels run asynchronously: a layer's time is
  mostly that of queueing its kernels, and the wait shows up in whichever
  layer reads results back (measured on PoCL: GoogLeNet's final Gemm "took"
  927 of 931 ms). The profile then says so in a note.
* The new engine lists only the layers it runs: fused ones are gone, and it
  adds layout changes of its own (``trlayout.N``, type ``TransformLayout``)
  that no ONNX node stands for. Its ONNX names are the node names; a node
  without a name is ``onnx_node!K``, the K-th such node in graph order.

These names are mapped back to ``live``'s layer names (:class:`LayerTime`),
and a layer cv2 made up keeps cv2's name. Where the engine gives nothing
usable (an exception, or not one entry per layer), :attr:`Profile.layers` is
None and :attr:`Profile.reason` says why.

The profile runs the **plain** network (:meth:`live.model.Model.plain_net`):
a tap adds an ``Identity`` consumer to the tapped tensor, which can keep the
importer from fusing that tensor's producer with its neighbours, so a tapped
net costs (a little) more and is split differently from the network itself.

Pure computation on a loaded :class:`~live.model.Model`: no Qt, nothing printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

import cv2
import numpy as np

from live.engines import TARGETS, cv_message
from live.errors import LayerError, ModelError
from live.model import Model

DEFAULT_FRAMES = 20
"""Forward passes averaged by default (``live layers --timing --frames N``)."""
WARMUP = 2
"""Untimed passes before the averaged ones (the first allocates buffers; on OpenCL it compiles kernels)."""
OPENCL_NOTE = (
    "OpenCL runs asynchronously: a layer's time is mostly that of queueing its kernels, and the wait lands in "
    "the layer that reads results back (net.forward's own time is forward_ms)"
)

KINDS: dict[str, tuple[str, ...]] = {
    "convolution": ("Conv", "Conv2", "Convolution", "ConvTranspose", "Deconvolution", "DepthwiseConv2d"),
    "matrix product": ("Gemm", "MatMul", "InnerProduct", "FullyConnected", "Einsum"),
    "activation": (
        *("Relu", "ReLU", "ReLU6", "Clip", "Sigmoid", "Swish", "HardSwish", "HardSigmoid", "LeakyRelu", "PRelu"),
        *("Tanh", "TanH", "Elu", "ELU", "Selu", "Mish", "Gelu", "GELU", "Softplus", "Softsign", "Exp", "Erf"),
        *("ThresholdedRelu", "Celu", "Power", "AbsVal", "Abs", "Sqrt", "Log", "Neg", "Reciprocal"),
    ),
    "pooling": ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Pooling", "ReduceMean", "ReduceMax"),
    "normalization": (
        *("BatchNormalization", "BatchNorm", "LRN", "InstanceNormalization", "LayerNormalization"),
        *("MVN", "Normalize", "NormalizeBBox", "Scale", "GroupNormalization"),
    ),
    "elementwise": ("Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Pow", "NaryEltwise", "Eltwise", "Where"),
    "softmax": ("Softmax", "LogSoftmax", "Hardmax"),
    "data movement": (
        *("Reshape", "Reshape2", "Flatten", "Transpose", "Permute", "Concat", "Concat2", "Split", "Split2", "Slice"),
        *("Squeeze", "Unsqueeze", "Gather", "Gather2", "Shape", "Identity", "TransformLayout", "Resize", "Pad"),
        *("Expand", "Tile", "Cast", "Crop", "Padding", "ShuffleChannel", "ConstantOfShape", "Const", "Constant"),
    ),
}
_KIND_OF = {op: kind for kind, ops in KINDS.items() for op in ops}


def kind_of(op: str) -> str:
    """The family an op type belongs to (``Conv`` and ``Convolution`` are both ``convolution``), else ``other``."""
    return _KIND_OF.get(op, "other")


@dataclasses.dataclass(frozen=True)
class LayerTime:
    """One layer of the engine's profile, averaged over the profiled frames.

    Attributes:
        name: ``live``'s layer name where the cv2 layer maps to one (what
            ``--layer`` accepts), else cv2's own name.
        op: the ONNX op type of that layer (``Conv``), else cv2's layer type.
        ms: mean milliseconds per forward pass (0 for a layer fused into another).
        cv2_name: the name in ``net.getLayerNames()`` (``onnx_node!conv1``).
        cv2_type: cv2's layer type (``Convolution``, ``Conv2``, ``TransformLayout``).
        layer: ``live``'s layer name, or None when cv2 made this layer up
            (a layout change, an output copy, a split of a node).
    """

    name: str
    op: str
    ms: float
    cv2_name: str
    cv2_type: str
    layer: str | None

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "op", "ms", "cv2_name", "cv2_type", "layer"}``."""
        return {**dataclasses.asdict(self), "ms": round(self.ms, 4)}


@dataclasses.dataclass(frozen=True)
class Profile:
    """Per-layer times of one network on one engine and target, averaged over ``frames`` forward passes.

    Attributes:
        engine: ``new`` or ``classic``.
        target: the target the work really ran on (after any fallback, as the
            layers report it after the first forward pass).
        layers: the profile's layers in the engine's order, or None when
            this engine gives no per-layer times.
        total_ms: the engine's own total per pass (mean), or the wall-clock
            forward time when there is no profile.
        forward_ms: wall-clock time of ``net.forward`` per pass (mean).
        frames: forward passes averaged.
        reason: why ``layers`` is None.
        notes: what is worth telling about the run (a silent target fallback).
    """

    engine: str
    target: str
    layers: tuple[LayerTime, ...] | None
    total_ms: float
    forward_ms: float
    frames: int
    reason: str | None = None
    notes: tuple[str, ...] = ()

    def by_op(self) -> dict[str, float]:
        """Milliseconds per op type (each the sum of its layers' ``ms``), largest first; empty without a profile."""
        return _totals((layer.op, layer.ms) for layer in self.layers or ())

    def by_kind(self) -> dict[str, float]:
        """Milliseconds per op family (:data:`KINDS`: convolution, activation, ...), largest first."""
        return _totals((kind_of(layer.op), layer.ms) for layer in self.layers or ())

    def top(self, k: int = 10) -> list[LayerTime]:
        """The ``k`` slowest layers, slowest first (network order between equals)."""
        return sorted(self.layers or (), key=lambda layer: -layer.ms)[:k]

    def ms_of(self, name: str) -> float | None:
        """Milliseconds of ``live``'s layer ``name``: the sum of the cv2 layers mapped to it, or None when none is."""
        times = [layer.ms for layer in self.layers or () if layer.layer == name]
        return float(sum(times)) if times else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``live layers --timing --json``.

        ``{"engine", "target", "layers": [{"name", "op", "ms", ...}, ...] or
        null, "total_ms", "by_op", "by_kind", "forward_ms", "frames",
        "reason", "notes"}``; ``by_op`` and ``by_kind`` are the sums of their
        layers' (rounded) ``ms``.
        """
        layers = [layer.to_dict() for layer in self.layers] if self.layers is not None else None
        rounded = [(row["op"], row["ms"]) for row in layers or ()]
        return {
            "engine": self.engine,
            "target": self.target,
            "layers": layers,
            "total_ms": round(self.total_ms, 4),
            "by_op": _totals(rounded) if layers is not None else None,
            "by_kind": _totals((kind_of(op), ms) for op, ms in rounded) if layers is not None else None,
            "forward_ms": round(self.forward_ms, 4),
            "frames": self.frames,
            "reason": self.reason,
            "notes": list(self.notes),
        }


def _totals(pairs: Any) -> dict[str, float]:
    totals: dict[str, float] = {}
    for key, ms in pairs:
        totals[key] = totals.get(key, 0.0) + ms
    return {key: round(ms, 4) for key, ms in sorted(totals.items(), key=lambda item: -item[1])}


# --------------------------------------------------------------------------- cv2 names -> live's layers


def layer_map(model: Model, names: Sequence[str], types: Sequence[str]) -> list[tuple[str | None, str | None]]:
    """For each cv2 layer, ``(live layer name, ONNX op type)``, or ``(None, None)`` when cv2 made it up.

    Args:
        model: the loaded model (its layer catalog and, for ONNX, its graph).
        names: ``net.getLayerNames()`` of a plain net of that model.
        types: the cv2 layer type of each name.
    """
    catalog = model.catalog
    proto = model.onnx_model
    if proto is None:  # TFLite, TensorFlow, Caffe: cv2's names are live's names
        found = []
        for name in names:
            with contextlib.suppress(LayerError):
                layer = catalog.find(name)
                found.append((layer.name, layer.op))
                continue
            found.append((None, None))
        return found
    nodes = list(proto.graph.node)
    by_node = {node.name: node for node in nodes if node.name}
    unnamed = [node for node in nodes if not node.name]
    by_tensor = {layer.tensor: layer for layer in catalog.layers if layer.tensor}
    outputs = {out.name for out in proto.graph.output}
    result: list[tuple[str | None, str | None]] = []
    for name, kind in zip(names, types, strict=True):
        prefix, sep, rest = name.partition("!")
        tensor = None
        if sep and prefix == "onnx_node":
            node = by_node.get(rest)
            if node is None and rest.isdigit() and int(rest) < len(unnamed) and model.engine == "new":
                node = unnamed[int(rest)]
            tensor = node.output[0] if node is not None and node.output else None
        elif sep and prefix.startswith("onnx_node_output_"):
            tensor = rest
        elif not sep:
            node = by_node.get(name)
            copy = kind == "Identity" and name in outputs and (node is None or node.op_type != "Identity")
            if node is not None and node.output and not copy:
                tensor = node.output[0]
        layer = by_tensor.get(tensor) if tensor is not None else None
        result.append((layer.name, layer.op) if layer is not None else (None, None))
    return result


# --------------------------------------------------------------------------- targets really in use


def targets_in_use(net: Any) -> set[str]:
    """The targets (:data:`live.engines.TARGETS` names) a classic-engine net's layers really run on.

    Read after the first forward pass: cv2.dnn decides then, and switches an
    OpenCL target to the CPU (a non-GPU device) or OpenCL FP16 to FP32 (a
    device without float16) without a word to the caller. Empty where the
    layers do not say (the new engine, which runs on the CPU only).
    """
    ids = {tid: name for name, (tid, _) in TARGETS.items()}
    found = set()
    for name in net.getLayerNames():
        try:
            target = int(net.getLayer(name).preferableTarget)
        except (cv2.error, AttributeError, TypeError):
            continue
        if target in ids:
            found.add(ids[target])
    return found


def ran_on(model: Model, net: Any) -> tuple[str, str | None]:
    """The target ``net`` (a net of ``model``, after its first forward) really ran on; a note when not the one asked."""
    if model.engine == "new":
        return "cpu", None
    used = targets_in_use(net)
    if not used or used == {model.target}:
        return model.target, None
    actual = "cpu" if "cpu" in used and len(used) == 1 else ("opencl" if "opencl" in used else sorted(used)[0])
    why = {
        "cpu": "cv2.dnn switched it to the CPU after the first forward pass",
        "opencl": "cv2.dnn ran it as OpenCL float32 (this device has no float16 for it; opencv#18283)",
    }.get(actual, f"cv2.dnn ran it on {actual}")
    return actual, f"target: {model.target} -> {actual} ({why})"


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Collect what native code writes to file descriptor 2 inside the block (OpenCV's log lines).

    The list given to the block is filled with the lines when the block
    ends. Where descriptor 2 cannot be redirected, it stays empty.
    """
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            with contextlib.suppress(OSError, AttributeError):
                import ctypes

                ctypes.CDLL(None).fflush(None)
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").splitlines())


def first_forward(net: Any, blob: np.ndarray) -> tuple[float, list[str]]:
    """Run ``net``'s first forward pass with OpenCV's warnings captured: (ms, the lines OpenCV logged)."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING)
    try:
        with captured_stderr() as lines:
            start = time.perf_counter()
            net.setInput(blob)
            net.forward(list(net.getUnconnectedOutLayersNames()))
            ms = (time.perf_counter() - start) * 1e3
    finally:
        cv2.utils.logging.setLogLevel(previous)
    return ms, [line for line in lines if line.strip()]


# --------------------------------------------------------------------------- profiling


def profile(
    model: Model, blob: np.ndarray, frames: int = DEFAULT_FRAMES, warmup: int = WARMUP, net: Any = None
) -> Profile:
    """Per-layer times of ``model``'s plain network (no taps) on ``blob``, averaged over ``frames`` passes.

    Args:
        model: a loaded model; its engine and target are used.
        blob: float32 input blob of ``model.input_shape`` (N, C, H, W or N, H, W, C).
        frames: forward passes averaged (after ``warmup`` untimed ones).
        warmup: untimed passes first (at least one is run: the targets in use are read after it).
        net: a plain net of ``model`` already built (e.g. one whose first
            pass was run through :func:`first_forward`); default: a new one.
    Returns:
        The :class:`Profile`; ``layers`` None (with ``reason``) where the
        engine gives no per-layer times.
    Raises:
        ModelError: cv2.dnn failed to run the network.
    """
    if net is None:
        net = model.plain_net()
    outs = list(net.getUnconnectedOutLayersNames())
    try:
        for _ in range(max(1, warmup)):
            net.setInput(blob)
            net.forward(outs)
    except cv2.error as exc:
        raise ModelError(f"forward pass failed: {cv_message(exc)}") from exc
    target, note = ran_on(model, net)
    names = list(net.getLayerNames())
    types = [str(net.getLayer(name).type) for name in names]
    tick_ms = 1e3 / cv2.getTickFrequency()
    sums = np.zeros(len(names), np.float64)
    total = 0.0
    wall = 0.0
    reason = None
    for _ in range(frames):
        net.setInput(blob)
        start = time.perf_counter()
        net.forward(outs)
        wall += time.perf_counter() - start
        if reason is not None:
            continue
        try:
            ticks, per = net.getPerfProfile()
        except (cv2.error, AttributeError) as exc:
            reason = f"getPerfProfile fails on the {model.engine} engine of OpenCV {cv2.__version__}: {exc}"
            continue
        per = np.asarray(per, np.float64).reshape(-1)
        if per.size != len(names):
            reason = (
                f"the {model.engine} engine of OpenCV {cv2.__version__} gives no per-layer times "
                f"(getPerfProfile: {per.size} values for {len(names)} layers)"
            )
            continue
        sums += per
        total += float(ticks)
    forward_ms = wall * 1e3 / frames
    notes = (note,) if note else ()
    if target != "cpu":
        notes += (OPENCL_NOTE,)
    if reason is None and names and not sums.any():
        reason = f"the {model.engine} engine of OpenCV {cv2.__version__} gives no per-layer times (all zero)"
    if reason is not None:
        return Profile(model.engine, target, None, forward_ms, forward_ms, frames, reason, notes)
    mapped = layer_map(model, names, types)
    layers = tuple(
        LayerTime(
            name=live_name if live_name is not None else name,
            op=op if op is not None else kind,
            ms=float(ticks) * tick_ms / frames,
            cv2_name=name,
            cv2_type=kind,
            layer=live_name,
        )
        for name, kind, ticks, (live_name, op) in zip(names, types, sums, mapped, strict=True)
    )
    return Profile(model.engine, target, layers, total * tick_ms / frames, forward_ms, frames, None, notes)


def table(result: Profile, top: int = 15) -> str:
    """The text of ``live layers --timing``: the slowest layers, the op-family and op totals, the total.

    Names come from model files: the caller escapes control characters.
    """
    head = (
        f"engine {result.engine}, target {result.target}: {result.total_ms:.3f} ms a frame "
        f"(mean of {result.frames}; net.forward {result.forward_ms:.3f} ms)"
    )
    if result.layers is None:
        return f"{head}\nno per-layer times: {result.reason}"
    lines = [head]
    rows = result.top(top)
    width = min(48, max((len(layer.name) for layer in rows), default=4))
    total = result.total_ms or 1.0
    lines.append(f"slowest {len(rows)} of {len(result.layers)} layers:")
    for layer in rows:
        lines.append(f"  {layer.name:<{width}}  {layer.op:<18} {layer.ms:9.3f} ms  {100 * layer.ms / total:5.1f} %")
    lines.append("by kind: " + ", ".join(f"{kind} {ms:.3f}" for kind, ms in result.by_kind().items()))
    lines.append("by op:   " + ", ".join(f"{op} {ms:.3f}" for op, ms in result.by_op().items()))
    summed = sum(layer.ms for layer in result.layers)
    lines.append(f"sum of layers {summed:.3f} ms, engine total {result.total_ms:.3f} ms")
    lines.extend(f"note: {note}" for note in result.notes)
    return "\n".join(lines)
