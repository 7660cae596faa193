"""Where the network looks, without gradients: CAM for pooled linear heads, Eigen-CAM for any layer.

Pure numpy plus ONNX graph reading (no cv2.dnn, no Qt); cv2's image
processing only draws the overlay.

* **CAM.** Where a spatial layer ``A`` (C, H, W) feeds a global average pool
  and then a linear classifier with weights ``W`` (K, C), the class score is
  ``y_c = sum_k W[c, k] * mean_ij A[k, i, j] + b_c``, so
  ``dy_c / dA[k, i, j] = W[c, k] / (H * W)`` everywhere: Grad-CAM at ``A``
  is, up to a positive scale, ``sum_k W[c, k] * A[k]`` (:func:`cam_map`).
  :func:`find_onnx_head` finds ``A`` and ``W`` in an ONNX graph.
* **Eigen-CAM.** For any layer: ``A`` reshaped to (H*W, C), centred per
  channel, projected on its first right singular vector; the sign is chosen
  so that the map correlates positively with the mean activation
  (:func:`eigen_cam`). It does not depend on the class.

Maps are float32 (H, W) at the layer's resolution, raw (signed). What is
drawn is :func:`heat`: ReLU, then min-max to 0..1 (as pytorch-grad-cam
scales its maps), optionally smoothed over time (:class:`Smoother`), and
:func:`overlay` maps it back onto the frame through the model's crop.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from onnx import helper, numpy_helper

from live.errors import UsageError
from live.names import close_matches

METHODS: dict[str, str] = {
    "auto": "CAM where the network has a pooled linear head, else Eigen-CAM (saying so)",
    "cam": "CAM: the classifier's weights times the maps of the layer that feeds its global average pool",
    "eigen": "Eigen-CAM: the first principal component of the shown layer's maps (any layer; class-agnostic)",
}
"""CAM method name -> what it does (the command line's ``--cam-method`` choices and help)."""

OVERLAY_ALPHA = 0.5
"""Weight of the heat colours over the frame in :func:`overlay`."""

ClassSpec = int | str | None
"""A class as the user gives it: an index, a label (or a unique part of one), or None for each frame's top-1."""


@dataclasses.dataclass(frozen=True)
class CamOptions:
    """What class activation map to compute for each frame (the view carries it; None there means off).

    Attributes:
        method: ``auto``, ``cam`` or ``eigen`` (see :data:`METHODS`).
        cls: the class: None for each frame's top-1, an index, or a label
            (a whole label, one of its comma-separated names, or a part that
            only one label contains); resolved against the model by
            :func:`resolve_class`.
        smoothing_s: time constant in seconds of the exponential moving
            average of the drawn map over frames (0: none).
    """

    method: str = "auto"
    cls: ClassSpec = None
    smoothing_s: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UsageError(f"unknown CAM method {self.method!r}; choose from {', '.join(METHODS)}")
        if isinstance(self.cls, bool) or not isinstance(self.cls, int | str | type(None)):
            raise UsageError(f"a CAM class is an index or a label, got {self.cls!r}")
        if isinstance(self.cls, int) and self.cls < 0:
            raise UsageError(f"class index must be >= 0, got {self.cls}")
        if isinstance(self.cls, str):
            text = self.cls.strip()
            if not text:
                raise UsageError("the CAM class is empty; give an index or a label")
            object.__setattr__(self, "cls", int(text) if text.isdigit() else text)
        smoothing = float(self.smoothing_s)
        if not (math.isfinite(smoothing) and smoothing >= 0):
            raise UsageError(f"CAM smoothing must be a time in seconds >= 0, got {self.smoothing_s}")
        object.__setattr__(self, "smoothing_s", smoothing)

    def replace(self, **changes: Any) -> CamOptions:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stats)."""
        return {"method": self.method, "class": self.cls, "smoothing_s": self.smoothing_s}


@dataclasses.dataclass(frozen=True, eq=False)
class Head:
    """A pooled linear classifier head: ``scores = weights @ mean_ij(A) + bias``.

    Attributes:
        layer: the layer ``A`` that feeds the pool (an ONNX tensor name from
            :func:`find_onnx_head`; callers may rename it to a layer name).
        weights: (K, C) float32, one row per class.
        bias: (K,) float32, or None. Constant over the map, so not in it.
        logits: the tensor of the K class scores before any softmax.
        output: the graph output that carries the class scores (after a
            softmax, if the network has one).
        kind: ``gemm``, ``matmul``, ``conv`` (a 1x1 convolution, before or
            after the pool), ``fc`` (a fully connected layer of a non-ONNX
            network) or ``identity`` (the pooled maps are the class scores,
            SqueezeNet-style).
        note: one line worth telling the user about this head, or "".
    """

    layer: str
    weights: np.ndarray
    bias: np.ndarray | None
    logits: str
    output: str
    kind: str
    note: str = ""

    @property
    def classes(self) -> int:
        """K, the number of class scores."""
        return int(self.weights.shape[0])

    def renamed(self, layer: str, logits: str | None = None) -> Head:
        """The same head with ``layer`` (and ``logits``) renamed, e.g. to a model's shown layer names."""
        return dataclasses.replace(self, layer=layer, logits=logits if logits is not None else self.logits)


@dataclasses.dataclass(frozen=True, eq=False)
class CamResult:
    """One frame's class activation map.

    Attributes:
        method: ``cam`` or ``eigen`` (what really ran; ``auto`` resolved).
        layer: the layer whose maps it weighs (as ``--layer`` names it).
        map: float32 (H, W) at the layer's resolution, raw and signed
            (before any ReLU, scaling or colouring).
        heat: float32 (H, W) in 0..1: what is drawn (ReLU, min-max, then
            the time smoothing of the view's options, if any).
        index: the class (CAM: the class the map is for; Eigen-CAM: the
            class asked for or the top-1, for the caption), or None.
        label: that class's label, or None when the model has none.
        score: that class's probability (the network's softmax, or one
            computed from its scores), or None.
        note: one line for the user (e.g. why Eigen-CAM stands in for CAM), or "".
        ms: time spent computing it, in milliseconds.
    """

    method: str
    layer: str
    map: np.ndarray
    heat: np.ndarray
    index: int | None
    label: str | None
    score: float | None
    note: str = ""
    ms: float = 0.0

    def caption(self) -> str:
        """``"tabby, tabby cat 62%  (CAM at head/relu6, 7x7)"``: the line shown beside the overlay."""
        h, w = self.map.shape
        what = self.label if self.label is not None else (f"class {self.index}" if self.index is not None else "")
        score = f" {self.score:.0%}" if self.score is not None else ""
        where = f"{'CAM' if self.method == 'cam' else 'Eigen-CAM'} at {self.layer}, {h}x{w}"
        return f"{what}{score}  ({where})" if what else where

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"method", "layer", "class", "label", "score", "shape", "note"}``."""
        return {
            "method": self.method,
            "layer": self.layer,
            "class": self.index,
            "label": self.label,
            "score": self.score,
            "shape": list(self.map.shape),
            "note": self.note or None,
        }

    def replace(self, **changes: Any) -> CamResult:
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------
# The maps

_BLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads")
_BLAS_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads")
_blas_lock = threading.Lock()
_blas_state: dict[str, Any] = {"depth": 0, "previous": 0, "calls": None}


def _blas_calls() -> tuple[Any, Any] | None:
    """(get, set) of numpy's bundled OpenBLAS thread count, or None where numpy has none (found once)."""
    if _blas_state["calls"] is None:
        found: tuple[Any, Any] | tuple[()] = ()
        libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
        for path in sorted(libs.glob("*openblas*")) if libs.is_dir() else []:
            try:
                lib = ctypes.CDLL(str(path))  # already loaded by numpy: the same library
            except OSError:
                continue
            getter = next((getattr(lib, n) for n in _BLAS_GETTERS if hasattr(lib, n)), None)
            setter = next((getattr(lib, n) for n in _BLAS_SETTERS if hasattr(lib, n)), None)
            if getter is not None and setter is not None:
                getter.restype = ctypes.c_int
                found = (getter, setter)
                break
        _blas_state["calls"] = found
    return _blas_state["calls"] or None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run numpy's OpenBLAS on one thread inside the block (the thread count is restored after the last block).

    The products here are small (a 49 x 49 Gram matrix for 1280 x 7 x 7); on a
    machine whose cores cv2's forward pass has just used, OpenBLAS's worker
    threads cost more than they save: measured on 2 shared cores, Eigen-CAM of
    1280 x 7 x 7 took 2.4 ms (median) and 20 ms (p95) with them, 1.2 and 1.5 ms
    without. A no-op where numpy does not bundle OpenBLAS.
    """
    calls = _blas_calls()
    if calls is None:
        yield
        return
    getter, setter = calls
    with _blas_lock:
        if _blas_state["depth"] == 0:
            _blas_state["previous"] = int(getter())
            setter(ctypes.c_int(1))
        _blas_state["depth"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_state["depth"] -= 1
            if _blas_state["depth"] == 0:
                setter(ctypes.c_int(_blas_state["previous"]))


def cam_map(acts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """CAM of one class: ``sum_k weights[k] * acts[k]``.

    Args:
        acts: (C, H, W) activations of the layer that feeds the pool.
        weights: (C,) the class's row of the classifier.
    Returns:
        float32 (H, W).
    """
    acts = np.asarray(acts, np.float32)
    weights = np.asarray(weights, np.float32).reshape(-1)
    if acts.ndim != 3 or acts.shape[0] != weights.size:
        raise UsageError(f"CAM needs (C, H, W) maps and C weights, got maps {acts.shape} and {weights.size} weights")
    c, h, w = acts.shape
    return np.nan_to_num(weights @ acts.reshape(c, h * w)).reshape(h, w).astype(np.float32, copy=False)


def eigen_cam(acts: np.ndarray) -> np.ndarray:
    """Eigen-CAM: the maps' projection on their first principal component.

    ``X = acts`` reshaped to (H*W, C) and centred per channel; the map is
    ``X @ v1`` with ``v1`` the first right singular vector of ``X``, its sign
    chosen so that the map correlates positively with ``acts.mean(0)``.
    Computed from the top eigenvector of the smaller Gram matrix (``X^T X``,
    C x C, or ``X X^T``, HW x HW; float32 products, float64 eigensolver)
    rather than a full SVD: the same vector, several times faster.

    Args:
        acts: (C, H, W) activations of any layer; NaN and Inf count as 0.
    Returns:
        float32 (H, W); all zeros when the maps do not vary.
    """
    acts = np.asarray(acts)
    if acts.ndim != 3:
        raise UsageError(f"Eigen-CAM needs (C, H, W) maps, got shape {acts.shape}")
    c, h, w = acts.shape
    m = np.nan_to_num(acts.reshape(c, h * w).astype(np.float32))  # (C, HW) = X^T
    mean_map = m.mean(axis=0)
    m -= m.mean(axis=1, keepdims=True)
    if h * w <= c:
        values, vectors = np.linalg.eigh((m.T @ m).astype(np.float64))  # (HW, HW): X v1 = sigma1 u1
        projection = vectors[:, -1] * math.sqrt(max(float(values[-1]), 0.0))
    else:
        values, vectors = np.linalg.eigh((m @ m.T).astype(np.float64))  # (C, C): v1 itself
        projection = vectors[:, -1].astype(np.float32) @ m
    total = float(np.abs(values).sum())
    if not float(values[-1]) > 1e-10 * total or not total > 0 or not np.isfinite(projection).all():
        return np.zeros((h, w), np.float32)
    if float(projection @ (mean_map - mean_map.mean())) < 0:
        projection = -projection
    return np.asarray(projection, np.float32).reshape(h, w)


def normalize(cam: np.ndarray) -> np.ndarray:
    """Min-max to 0..1 (float32); a constant map gives zeros."""
    cam = np.nan_to_num(np.asarray(cam, np.float32))
    if not cam.size:
        return np.zeros(cam.shape, np.float32)
    lo, hi = float(cam.min()), float(cam.max())
    if not hi > lo:
        return np.zeros(cam.shape, np.float32)
    return ((cam - lo) / (hi - lo)).astype(np.float32, copy=False)


def heat(cam: np.ndarray) -> np.ndarray:
    """What is drawn: ReLU (only evidence for the class), then min-max to 0..1. float32, same shape."""
    return normalize(np.maximum(np.nan_to_num(np.asarray(cam, np.float32)), 0.0))


def probabilities(scores: np.ndarray) -> np.ndarray:
    """Class scores as probabilities: as they are when they already sum to 1, else through a softmax. float64 (K,)."""
    values = np.nan_to_num(np.asarray(scores, np.float64).reshape(-1))
    if values.size and values.min() >= 0 and abs(values.sum() - 1.0) <= 1e-3:
        return values
    values = np.exp(values - values.max())
    return values / values.sum()


class Smoother:
    """An exponential moving average of drawn maps, with a time constant in seconds.

    ``update`` blends the new map in with weight ``1 - exp(-dt / tau)``; it
    starts again from the new map when ``tau`` is 0, the key (method,
    layer, class) or the shape changes, or time does not move forward (a
    video that loops). Returns a new array each time: one handed out is
    never written again.
    """

    def __init__(self) -> None:
        self._value: np.ndarray | None = None
        self._key: Any = None
        self._t = 0.0

    def update(self, value: np.ndarray, t: float, tau: float, key: Any = None) -> np.ndarray:
        """Blend ``value`` (float32 (H, W)) taken at time ``t`` (seconds) in; return the smoothed map."""
        last = self._value
        if tau <= 0 or last is None or key != self._key or last.shape != value.shape or not t > self._t:
            smoothed = np.array(value, np.float32)
        else:
            weight = 1.0 - math.exp(-(t - self._t) / tau)
            smoothed = (last + np.float32(weight) * (value - last)).astype(np.float32, copy=False)
        self._value, self._key, self._t = smoothed, key, t
        return smoothed


def overlay(
    image: np.ndarray, heat_map: np.ndarray, crop: tuple[int, int, int, int], alpha: float = OVERLAY_ALPHA
) -> np.ndarray:
    """The frame with a heat map over the region the network saw.

    Args:
        image: BGR uint8 (H, W, 3) frame (or gray (H, W)).
        heat_map: float (h, w) in 0..1 at the layer's resolution.
        crop: (x, y, w, h) of the frame region the network's input shows
            (:meth:`live.preprocess.Preprocess.crop_rect`; for a letterbox
            it reaches past the frame, and the part outside is dropped).
        alpha: weight of the colours (jet colormap) over the frame.
    Returns:
        A new BGR uint8 (H, W, 3) image; outside the crop, the frame as it was.
    """
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else np.array(image[..., :3], np.uint8)
    x, y, w, h = (int(v) for v in crop)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, out.shape[1]), min(y + h, out.shape[0])
    if w <= 0 or h <= 0 or x1 <= x0 or y1 <= y0:
        return out
    values = np.nan_to_num(np.asarray(heat_map, np.float32))
    big = cv2.resize(values, (w, h), interpolation=cv2.INTER_LINEAR)[y0 - y : y1 - y, x0 - x : x1 - x]
    colours = cv2.applyColorMap(np.clip(big * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    out[y0:y1, x0:x1] = cv2.addWeighted(out[y0:y1, x0:x1], 1.0 - alpha, colours, alpha, 0.0)
    return out


# --------------------------------------------------------------------------
# Classes


def _names(label: str) -> list[str]:
    return [name.strip() for name in label.split(",") if name.strip()]


def resolve_class(spec: ClassSpec, labels: Sequence[str] | None, count: int | None) -> int | None:
    """The class index a user's class names.

    Args:
        spec: None (each frame's top-1: returns None), an index, or a label:
            a whole label or one of its comma-separated names (case
            ignored), else a part that only one label contains.
        labels: the model's labels, or None.
        count: the number of classes where known (else ``len(labels)``).
    Raises:
        UsageError: an index out of range, a name no label contains (with
            the nearest names), a name several labels contain (listing them),
            or a name for a model without labels.
    """
    if spec is None:
        return None
    limit = count if count is not None else (len(labels) if labels else None)
    if isinstance(spec, int):
        if limit is not None and not 0 <= spec < limit:
            raise UsageError(f"class {spec} is out of range: this model has {limit} classes (0..{limit - 1})")
        return spec
    text = spec.strip()
    if not labels:
        which = f" (0..{limit - 1})" if limit else ""
        raise UsageError(f"class {text!r}: this model has no labels; give a class index{which}")
    needle = text.lower()
    exact = [i for i, label in enumerate(labels) if needle == label.lower() or needle in map(str.lower, _names(label))]
    found = exact or [i for i, label in enumerate(labels) if needle in label.lower()]
    if len(found) == 1:
        return found[0]
    if found:
        shown = "; ".join(f"{i} {labels[i]}" for i in found[:6])
        more = f"; ... ({len(found)} in all)" if len(found) > 6 else ""
        raise UsageError(f"class {text!r} is ambiguous: {shown}{more}; give more of the label or an index")
    near = close_matches(text, {name for label in labels for name in _names(label)})
    hint = f"did you mean {', '.join(map(repr, near))}?" if near else "give a label or an index"
    raise UsageError(f"no class {text!r} in the labels; {hint}")


# --------------------------------------------------------------------------
# Finding a pooled linear head in an ONNX graph

_PASS_OPS = frozenset({"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
"""Ops that only reshape the pooled vector (or do nothing at inference)."""
_SCORE_OPS = frozenset({"Softmax", "LogSoftmax", "Sigmoid"})
"""Ops that turn the class scores into probabilities, keeping which class is which."""
_ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "Elu", "Selu", "HardSwish", "Sigmoid", "Swish", "Mish"})

Shapes = Mapping[str, Sequence[int | str] | None]


class _Constants:
    """Values computed from the initializers alone: weights, through the Cast/Identity/Transpose an exporter adds."""

    def __init__(self, graph: onnx.GraphProto, producers: Mapping[str, onnx.NodeProto]) -> None:
        self._inits = {init.name: init for init in graph.initializer}
        self._producers = producers
        self._values: dict[str, np.ndarray | None] = {}

    def get(self, name: str) -> np.ndarray | None:
        if name not in self._values:
            self._values[name] = None  # a cycle (there is none in a valid graph) ends here
            self._values[name] = self._compute(name)
        return self._values[name]

    def _compute(self, name: str) -> np.ndarray | None:
        if name in self._inits:
            return numpy_helper.to_array(self._inits[name])
        node = self._producers.get(name)
        if node is None:
            return None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            if "value" in attrs:
                return numpy_helper.to_array(attrs["value"])
            for key in ("value_float", "value_floats", "value_int", "value_ints"):
                if key in attrs:
                    return np.asarray(attrs[key])
            return None
        inputs = [self.get(i) if i else None for i in node.input]
        if not inputs or inputs[0] is None:
            return None
        x = inputs[0]
        if node.op_type in ("Identity", "Dropout"):
            return x
        if node.op_type == "Cast":
            return x.astype(helper.tensor_dtype_to_np_dtype(int(attrs["to"])))
        if node.op_type == "Transpose":
            return x.transpose(attrs.get("perm") or None)
        if node.op_type == "Reshape" and len(inputs) > 1 and inputs[1] is not None:
            shape = [x.shape[i] if d == 0 and i < x.ndim else int(d) for i, d in enumerate(inputs[1].tolist())]
            return x.reshape(shape)
        if node.op_type in ("Squeeze", "Unsqueeze"):
            axes = attrs.get("axes") or (inputs[1].tolist() if len(inputs) > 1 and inputs[1] is not None else None)
            if node.op_type == "Squeeze":
                return np.squeeze(x, axis=tuple(axes)) if axes else np.squeeze(x)
            return np.expand_dims(x, tuple(axes)) if axes else None
        return None


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _spatial(shape: Sequence[int | str] | None) -> tuple[int, int, int] | None:
    """(C, H, W) of an (N, C, H, W) shape with known sizes, else None."""
    if shape is None or len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        return None
    return int(shape[1]), int(shape[2]), int(shape[3])


def _pool_reason(node: onnx.NodeProto, chw: tuple[int, int, int] | None, consts: _Constants) -> str | None:
    """None when ``node`` averages its (N, C, H, W) input over all of H and W; else why not ("" for other ops)."""
    op = node.op_type
    if op not in ("GlobalAveragePool", "ReduceMean", "AveragePool"):
        return ""
    if chw is None:
        return f"the input of {op} {node.name!r} has no known (N, C, H, W) shape"
    attrs = _attrs(node)
    _, h, w = chw
    if op == "ReduceMean":
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            value = consts.get(node.input[1])
            axes = value.tolist() if value is not None else None
        if axes is None or sorted(int(a) % 4 for a in axes) != [2, 3]:
            return f"ReduceMean {node.name!r} does not average over H and W only (axes {axes})"
    elif op == "AveragePool":
        kernel = list(attrs.get("kernel_shape", []))
        pads = list(attrs.get("pads", [])) or [0]
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        if kernel != [h, w] or any(pads) or auto_pad not in ("NOTSET", "VALID"):
            window = "x".join(map(str, kernel))
            return f"AveragePool {node.name!r} averages {window} windows of a {h}x{w} map, not all of it"
    if h * w <= 1:
        return f"the map that {op} {node.name!r} pools is 1x1: no spatial map to look at"
    return None


class _Walker:
    """Follows a tensor forward through a graph."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                if name:
                    self.consumers[name].append(node)
        self.outputs = {out.name for out in graph.output}

    def next(self, tensor: str, ops: frozenset[str]) -> tuple[str, onnx.NodeProto | None, str]:
        """Walk through ``ops`` from ``tensor``: (tensor reached, next node or None at a graph end, why it stopped)."""
        while True:
            users = self.consumers.get(tensor, [])
            if not users:
                return tensor, None, "" if tensor in self.outputs else f"{tensor!r} leads nowhere"
            if len(users) > 1:
                return tensor, None, f"{tensor!r} feeds {len(users)} nodes"
            node = users[0]
            if node.op_type not in ops or node.input[0] != tensor:
                return tensor, node, ""
            tensor = node.output[0]


def _linear(node: onnx.NodeProto, tensor: str, consts: _Constants) -> tuple[np.ndarray, np.ndarray | None] | str:
    """(weights (K, C), bias (K,) or None) of a linear layer applied to ``tensor``, or why it is not one."""
    attrs = _attrs(node)
    others = [consts.get(name) if name else None for name in node.input]
    if node.op_type == "Gemm":
        b = others[1] if len(others) > 1 else None
        if node.input[0] != tensor or b is None or b.ndim != 2 or attrs.get("transA", 0):
            return f"Gemm {node.name!r} does not multiply the pooled features by constant weights"
        weights = (b if attrs.get("transB", 0) else b.T) * float(attrs.get("alpha", 1.0))
        bias = None
        if len(others) > 2 and node.input[2]:
            c = others[2]
            if c is None:
                return f"the bias of Gemm {node.name!r} is not a constant"
            bias = np.broadcast_to(c * float(attrs.get("beta", 1.0)), (1, weights.shape[0])).reshape(-1)
        return weights, bias
    if node.op_type == "MatMul":
        b = others[1] if len(others) > 1 else None
        if node.input[0] != tensor or b is None or b.ndim != 2:
            return f"MatMul {node.name!r} does not multiply the pooled features by a constant matrix"
        return b.T, None
    if node.op_type == "Conv":
        w = others[1] if len(others) > 1 else None
        plain = attrs.get("group", 1) == 1 and not any(attrs.get("pads", [])) and set(attrs.get("strides", [1])) == {1}
        if w is None or w.ndim != 4 or w.shape[2:] != (1, 1) or not plain or node.input[0] != tensor:
            return f"Conv {node.name!r} is not a plain 1x1 convolution with constant weights"
        bias = others[2] if len(others) > 2 and node.input[2] else None
        if len(node.input) > 2 and node.input[2] and bias is None:
            return f"the bias of Conv {node.name!r} is not a constant"
        return w[:, :, 0, 0], (bias.reshape(-1) if bias is not None else None)
    return f"the pooled features go into {node.op_type} {node.name!r}, not a linear classifier (Gemm, MatMul, 1x1 Conv)"


def _head_from_pool(
    pool: onnx.NodeProto, chw: tuple[int, int, int], walker: _Walker, consts: _Constants, producers: Mapping
) -> Head | str:
    layer = pool.input[0]
    channels = chw[0]
    tensor, node, stop = walker.next(pool.output[0], _PASS_OPS)
    if stop:
        return f"after the pool, {stop}"
    kind, weights, bias, logits = "identity", np.eye(channels, dtype=np.float32), None, tensor
    if node is not None and node.op_type not in _SCORE_OPS:
        found = _linear(node, tensor, consts)
        if isinstance(found, str):
            return found
        weights, bias = found
        kind = node.op_type.lower()
        if weights.shape[1] != channels:
            return f"{node.op_type} {node.name!r} takes {weights.shape[1]} features, the pool gives {channels}"
        logits = node.output[0]
        if kind == "matmul":  # a bias added after the product
            after, add, _ = walker.next(logits, _PASS_OPS)
            if add is not None and add.op_type == "Add":
                other = [name for name in add.input if name != after]
                value = consts.get(other[0]) if len(other) == 1 else None
                if value is not None and value.size == weights.shape[0]:
                    bias, logits = value.reshape(-1), add.output[0]
        tensor, node, stop = walker.next(logits, _PASS_OPS)
        if stop:
            return f"after the classifier, {stop}"
    output = tensor
    while node is not None:  # a softmax (or alike), then only reshapes, to a graph output
        if node.op_type not in _SCORE_OPS:
            return f"the class scores go through {node.op_type} {node.name!r} before the network's output"
        output, node, stop = walker.next(node.output[0], _PASS_OPS)
        if stop:
            return f"after the class scores, {stop}"
    note = ""
    source = producers.get(layer)
    if source is not None and source.op_type == "Conv" and len(walker.consumers.get(layer, [])) == 1:
        found = _linear(source, source.input[0], consts)  # a 1x1 conv right before the pool: CAM at its input
        if not isinstance(found, str):
            conv_w, conv_b = found
            layer = source.input[0]
            bias = (weights @ conv_b + (bias if bias is not None else 0)) if conv_b is not None else bias
            weights = weights @ conv_w
            kind = "conv"
    elif kind == "identity" and source is not None and source.op_type in _ACTIVATIONS and source.input:
        conv = producers.get(source.input[0])
        if conv is not None and conv.op_type == "Conv":
            note = (
                f"the class maps come from a 1x1 convolution followed by {source.op_type}, which is not linear: "
                f"CAM is taken after it, at {layer!r}, where each class score is the mean of its map"
            )
    return Head(
        layer=layer,
        weights=np.ascontiguousarray(weights, np.float32),
        bias=None if bias is None else np.ascontiguousarray(np.asarray(bias).reshape(-1), np.float32),
        logits=logits,
        output=output,
        kind=kind,
        note=note,
    )


def find_onnx_head(model: onnx.ModelProto, shapes: Shapes, classes: int | None = None) -> Head | str:
    """Find the pooled linear head of an ONNX classifier.

    The pattern: a spatial tensor ``A`` (N, C, H, W) -> GlobalAveragePool, a
    ReduceMean over H and W, or an AveragePool whose window is the whole map
    -> any of Flatten, Reshape, Squeeze, Unsqueeze, Dropout, Identity ->
    Gemm (any ``transB``, ``alpha``, ``beta``), MatMul (+ Add of a bias) or a
    1x1 Conv, with constant weights (initializers, also through Cast,
    Identity, Transpose) -> Softmax/LogSoftmax/Sigmoid or nothing -> a graph
    output. Without a linear layer after the pool, the pooled maps are the
    class scores (SqueezeNet: a 1x1 Conv, a ReLU, then the pool); a 1x1 Conv
    right before the pool, with nothing between, moves CAM to its input
    with its weights (composed with any linear layer after the pool).

    Args:
        model: the ONNX model (not modified).
        shapes: tensor name -> inferred shape (ints, or strings for unknown dims).
        classes: the number of labels, if known: a head with that many
            classes is preferred when there are several.
    Returns:
        The :class:`Head` (``layer`` is an ONNX tensor name), or one line
        saying why there is none.
    """
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output if out}
    consts = _Constants(graph, producers)
    walker = _Walker(graph)
    heads: list[Head] = []
    reasons: list[str] = []
    for node in reversed(graph.node):
        if not node.input:
            continue
        chw = _spatial(shapes.get(node.input[0]))
        reason = _pool_reason(node, chw, consts)
        if reason == "":
            continue
        if reason is None and chw is not None:
            found = _head_from_pool(node, chw, walker, consts, producers)
            if isinstance(found, Head):
                heads.append(found)
                continue
            reason = found
        reasons.append(reason)
    if heads:
        preferred = [head for head in heads if classes is not None and head.classes == classes]
        return (preferred or heads)[0]
    if reasons:
        return reasons[0]
    return "no global average pool (GlobalAveragePool, ReduceMean over H and W, or a whole-map AveragePool)"
