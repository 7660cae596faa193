"""Class activation maps for a loaded model: which layer and weights, which class, the map of one forward pass.

The math is :mod:`live.cam`'s; this module ties it to a :class:`~live.model.Model`:

* :func:`find_head` finds the pooled linear head once per model: from the
  ONNX graph (:func:`live.cam.find_onnx_head`), or, for TFLite, TensorFlow
  and Caffe networks (no graph to read), from the classic net's layers: the
  last fully connected layer, its weights from ``getLayer(...).blobs``, with
  a pooling layer and reshapes before it; there the pooling's kind and
  window are not visible, so the head is accepted only when
  ``weights @ mean_ij(A) + bias`` reproduces the layer's output on one
  forward pass (a seeded random frame).
* :func:`plan` turns a view's :class:`~live.cam.CamOptions` into what to
  tap and compute (CAM at the head's layer, or Eigen-CAM at the shown
  layer), with the one-line note when Eigen-CAM stands in for CAM.
* :func:`compute` makes the :class:`~live.cam.CamResult` from the outputs
  of the forward pass that tapped the plan's layers.

Used by the pipeline's forward thread, ``live snapshot`` and ``Network.cam``.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from live import cam
from live.cam import CamOptions, CamResult, Head
from live.errors import LayerError, LiveError, UsageError
from live.maps import blob_to_maps
from live.model import NEW_TAPS, Model

_HEADS: weakref.WeakKeyDictionary[Model, Head | str] = weakref.WeakKeyDictionary()
_CLASSIC_POOL_PATH = frozenset({"Pooling", "Permute", "Reshape", "Flatten", "Identity", "Dropout", "Squeeze"})
_CLASSIC_LINEAR = frozenset({"InnerProduct", "Gemm", "FullyConnected", "MatMul"})
_CHECK_RTOL = 1e-3


@dataclasses.dataclass(frozen=True, eq=False)
class CamPlan:
    """What one view's class activation map needs.

    Attributes:
        method: ``cam`` or ``eigen`` (``auto`` resolved).
        layer: the layer whose maps it weighs (a name :meth:`Model.layer` accepts).
        taps: the layers to tap in the forward pass (``layer``, and a
            classic network's fully connected layer when its class scores
            are not a final output).
        head: the pooled linear head (layer names as the model's), or None.
        cls: the class asked for (an index), or None for each frame's top-1.
        note: one line to tell the user (why Eigen-CAM stands in, or a fact
            about the head), or "".
        batch, layout: how the layer's blob becomes (C, H, W) maps (the view's grid options).
    """

    method: str
    layer: str
    taps: tuple[str, ...]
    head: Head | None
    cls: int | None
    note: str = ""
    batch: int = 0
    layout: str = "auto"


def _shape_text(shape: Any) -> str:
    return "x".join(str(d) for d in shape) if shape is not None else "?"


def find_head(model: Model) -> Head | str:
    """The model's pooled linear head (its ``layer`` and ``logits`` as the model's layer names), or why it has none.

    Found once per model and kept.
    """
    found = _HEADS.get(model)
    if found is None:
        found = _onnx_head(model) if model.format == "onnx" else _classic_head(model)
        _HEADS[model] = found
    return found


def _onnx_head(model: Model) -> Head | str:
    graph = model._graph
    shapes: dict[str, Any] = {out.tensor: out.shape for out in graph.node_outputs}
    found = cam.find_onnx_head(graph.model, shapes, len(model.labels) if model.labels else None)
    if isinstance(found, str):
        return found
    try:
        layer = model.layer(found.layer)
    except LiveError as exc:
        return f"the layer that feeds the pool cannot be tapped: {exc}"
    return found.renamed(layer.name)


def _classic_head(model: Model) -> Head | str:
    """A fully connected layer after one pooling layer (and reshapes), checked on one forward pass."""
    layers = model.layers
    net = model._net
    for i in range(len(layers) - 1, 0, -1):
        fc = layers[i]
        if fc.op not in _CLASSIC_LINEAR or not fc.tappable:
            continue
        blobs = [np.asarray(b, np.float32) for b in net.getLayer(fc.name).blobs]
        if not blobs or blobs[0].ndim != 2:
            continue
        j, pools = i - 1, 0
        while j >= 0 and layers[j].op in _CLASSIC_POOL_PATH:
            pools += layers[j].op == "Pooling"
            j -= 1
        source = layers[j] if j >= 0 else None
        chw = cam._spatial(source.shape) if source is not None else None
        if pools != 1 or source is None or chw is None or not source.tappable or chw[1] * chw[2] <= 1:
            return f"{fc.op} layer {fc.name!r} does not follow one pooling layer over a spatial map"
        return _checked_classic_head(model, source.name, fc.name, blobs) or (
            f"{fc.op} layer {fc.name!r} is not a linear layer over the global average of {source.name!r} "
            "(checked on one forward pass)"
        )
    return "no fully connected layer after a pooling layer"


def _checked_classic_head(model: Model, layer: str, fc: str, blobs: list[np.ndarray]) -> Head | None:
    """The head, when ``weights @ mean_ij(A) + bias`` reproduces ``fc``'s output on a seeded random frame."""
    w, h = model.preprocess.size
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    try:
        outputs = model.forward(model.blob(frame), [layer, fc])
    except LiveError:
        return None
    acts = np.asarray(outputs[layer], np.float64)
    got = np.asarray(outputs[fc], np.float64).reshape(-1)
    pooled = acts[0].reshape(acts.shape[1], -1).mean(axis=1)
    bias = blobs[1].reshape(-1) if len(blobs) > 1 else None
    for weights in (blobs[0], blobs[0].T):
        if weights.shape[1] != pooled.size or weights.shape[0] != got.size:
            continue
        want = weights @ pooled + (bias if bias is not None and bias.size == got.size else 0.0)
        if np.allclose(want, got, rtol=_CHECK_RTOL, atol=_CHECK_RTOL * max(float(np.abs(got).max()), 1e-6)):
            final = [name for name in model.outputs if np.asarray(outputs[name]).size == got.size]
            return Head(
                layer=layer,
                weights=np.ascontiguousarray(weights, np.float32),
                bias=None if bias is None else np.ascontiguousarray(bias, np.float32),
                logits=fc,
                output=final[0] if final else fc,
                kind="fc",
            )
    return None


def _spatial_check(model: Model, name: str, batch: int, layout: str) -> str:
    """The layer's name, checked to give (C, H, W) maps with H x W > 1 (when its shape is known)."""
    layer = model.layer(name)
    shape = layer.shape
    if shape is None or not all(isinstance(d, int) for d in shape):
        return layer.name
    spatial = len(shape) == 4
    if spatial:
        maps = blob_to_maps(np.broadcast_to(np.float32(0), tuple(map(int, shape))), min(batch, shape[0] - 1), layout)
        spatial = maps.shape[1] * maps.shape[2] > 1
    if not spatial:
        why = ""
        if any(other.reason == NEW_TAPS for other in model.layers):
            why = (
                f" (only this model's outputs can be tapped on OpenCV {cv2.__version__}, which has no classic "
                "engine; its ONNX version taps any layer)"
            )
        raise LayerError(
            f"layer {layer.name!r} ({_shape_text(shape)}) has no spatial maps; "
            f"a class activation map needs a layer of shape N x C x H x W with H x W > 1{why}"
        )
    return layer.name


def check(model: Model, options: CamOptions) -> None:
    """Validate what can be validated at once and cheaply (the class against the labels), in the caller's thread.

    Raises:
        UsageError: a class name the labels do not have, or an index out of their range.
    """
    if isinstance(options.cls, str) or model.labels:
        cam.resolve_class(options.cls, model.labels, None)


def plan(model: Model, options: CamOptions, layer: str, *, batch: int = 0, layout: str = "auto") -> CamPlan:
    """What to tap and compute for ``options`` while ``layer`` is shown.

    ``cam`` uses the layer that feeds the pooled head; ``eigen`` the shown
    ``layer``; ``auto`` is ``cam`` where the model has a pooled linear head,
    else ``eigen`` with a note saying why.

    Raises:
        UsageError: ``cam`` asked for on a model without a pooled linear
            head (saying why), or a bad class.
        LayerError: Eigen-CAM on a layer without spatial maps.
    """
    head = find_head(model) if options.method in ("auto", "cam") or options.cls is not None else None
    found = head if isinstance(head, Head) else None
    count = found.classes if found is not None else (len(model.labels) if model.labels else None)
    if options.cls is not None and count is None:
        raise UsageError(
            f"class {options.cls!r}: {model.path.name} has neither labels nor a classifier head to choose a class from"
        )
    cls = cam.resolve_class(options.cls, model.labels, count)
    if options.method != "eigen" and found is not None:
        return CamPlan("cam", found.layer, _taps(model, found), found, cls, found.note, batch, layout)
    if options.method == "cam":
        raise UsageError(
            f"CAM needs a pooled linear head and {model.path.name} has none ({head}); use the method eigen or auto"
        )
    shown = _spatial_check(model, layer, batch, layout)
    note = (
        f"{model.path.name} has no pooled linear head for CAM ({head}); showing Eigen-CAM of {shown}"
        if options.method == "auto"
        else ""
    )
    taps = (shown, *(t for t in _taps(model, found)[1:] if t != shown)) if found is not None else (shown,)
    return CamPlan("eigen", shown, taps, found, cls, note, batch, layout)


def _taps(model: Model, head: Head | None) -> tuple[str, ...]:
    if head is None:
        return ()
    if head.output in model.outputs:
        return (head.layer,)
    return (head.layer, head.output)


def _class_scores(model: Model, plan: CamPlan, outputs: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """The class probabilities (K,) of this forward pass, or None when the model has no class scores."""
    if plan.head is not None and plan.head.output in outputs:
        return cam.probabilities(outputs[plan.head.output])
    if model.labels:
        for name in model.outputs:
            scores = np.asarray(outputs.get(name, ()))
            if scores.size == len(model.labels):
                return cam.probabilities(scores)
    return None


def compute(plan: CamPlan, model: Model, outputs: Mapping[str, np.ndarray]) -> CamResult:
    """One frame's map from the outputs of a forward pass that tapped ``plan.taps`` (and the final outputs).

    Returns:
        A :class:`CamResult` whose ``heat`` is not smoothed yet.
    Raises:
        LayerError: the layer's blob has no spatial maps (its shape was unknown when planned).
    """
    with cam.one_blas_thread():
        return _compute(plan, model, outputs)


def _compute(plan: CamPlan, model: Model, outputs: Mapping[str, np.ndarray]) -> CamResult:
    start = time.perf_counter()
    blob = np.asarray(outputs[plan.layer])
    scores = _class_scores(model, plan, outputs)
    index = plan.cls if plan.cls is not None else (int(np.argmax(scores)) if scores is not None else None)
    if plan.method == "cam":
        assert plan.head is not None
        acts = blob[0] if blob.ndim == 4 else blob  # the head's layer is NCHW; batch item 0
        if index is None:
            index = 0
        values = cam.cam_map(acts, plan.head.weights[index])
    else:
        acts = blob_to_maps(blob, min(plan.batch, blob.shape[0] - 1) if blob.ndim else 0, plan.layout)
        if blob.ndim != 4 or acts.shape[1] * acts.shape[2] <= 1:
            raise LayerError(
                f"layer {plan.layer!r} ({_shape_text(blob.shape)}) has no spatial maps; "
                "a class activation map needs a layer of shape N x C x H x W with H x W > 1"
            )
        values = cam.eigen_cam(acts)
    labels = model.labels
    return CamResult(
        method=plan.method,
        layer=plan.layer,
        map=values,
        heat=cam.heat(values),
        index=index,
        label=labels[index] if labels and index is not None and index < len(labels) else None,
        score=float(scores[index]) if scores is not None and index is not None and index < scores.size else None,
        note=plan.note,
        ms=(time.perf_counter() - start) * 1e3,
    )
