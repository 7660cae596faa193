"""Networks: load, choose engine/backend/target, list layers, tap them.

One :class:`Model` wraps one network file. It knows its preprocessing, the
catalog of every layer a user can look at (in network order, each marked
tappable or not, with the reason), and runs one forward pass that returns any
set of tapped layers.

How taps work, per engine (see DESIGN.md for the measurements):

* ONNX, every engine: the wanted tensors become graph outputs through an
  ``Identity`` each (:mod:`live.onnx_graph`); ``net.forward(names)`` on the
  new engine would silently return the wrong tensor for some names.
* TFLite, TensorFlow, Caffe: the classic engine's ``net.forward(layer_names)``
  with names from ``net.getLayerNames()``.

Every layer is probed once at load: a forward pass with all candidates tapped
(splitting the set in halves where cv2 refuses some) gives each layer's real
output shape, or the reason it cannot be tapped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from live.errors import BackendError, LayerError, ModelError
from live.names import MODEL_FORMATS, did_you_mean
from live.preprocess import Preprocess, read_description

# --------------------------------------------------------------------------
# Name tables: the CLI builds its choices and help text from these.

ENGINES: dict[str, str] = {
    "auto": "new engine for ONNX on the CPU, classic where the request needs it",
    "new": "OpenCV 5's graph engine (CPU only)",
    "classic": "the classic engine (the only one on OpenCV 4.x)",
}
BACKENDS: dict[str, tuple[int, str]] = {
    "default": (cv2.dnn.DNN_BACKEND_DEFAULT, "OpenCV's default backend"),
    "opencv": (cv2.dnn.DNN_BACKEND_OPENCV, "OpenCV's own implementation"),
}
TARGETS: dict[str, tuple[int, str]] = {
    "cpu": (cv2.dnn.DNN_TARGET_CPU, "the CPU"),
    "opencl": (cv2.dnn.DNN_TARGET_OPENCL, "an OpenCL device, float32"),
    "opencl_fp16": (cv2.dnn.DNN_TARGET_OPENCL_FP16, "an OpenCL device, float16"),
}

HAS_ENGINES = hasattr(cv2.dnn, "ENGINE_NEW")
HAS_CLASSIC = not HAS_ENGINES or hasattr(cv2.dnn, "ENGINE_CLASSIC")
_ENGINE_IDS = {"new": getattr(cv2.dnn, "ENGINE_NEW", None), "classic": getattr(cv2.dnn, "ENGINE_CLASSIC", None)}
_TAP_CACHE_SIZE = 4


def engine_of(net: Any) -> str:
    """The engine a cv2 net really runs on: ``new`` or ``classic``.

    The classic engine keeps an explicit input layer (``__NetInputLayer__``);
    the new graph engine has none. OpenCV 4.x has only the classic engine.
    """
    if not HAS_ENGINES:
        return "classic"
    return "classic" if "__NetInputLayer__" in net.getLayerTypes() else "new"


def engines_available() -> list[str]:
    """The engines the installed OpenCV has, best first."""
    if not HAS_ENGINES:
        return ["classic"]
    return ["new", "classic"] if HAS_CLASSIC else ["new"]


def configure_opencl(device: str | None) -> None:
    """Select an OpenCL device and let cv2.dnn use it even when it is not a GPU.

    Must run before anything touches OpenCL in this process (OpenCV reads
    ``OPENCV_OPENCL_DEVICE`` once). ``device`` uses OpenCV's syntax, e.g.
    ``:CPU:`` for PoCL or ``:GPU:0``.
    """
    if device:
        os.environ["OPENCV_OPENCL_DEVICE"] = device
        os.environ["OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES"] = "1"


def opencl_device() -> dict[str, Any] | None:
    """The default OpenCL device OpenCV would use, or None if there is none."""
    if not cv2.ocl.haveOpenCL() or not cv2.ocl.useOpenCL():
        return None
    dev = cv2.ocl.Device.getDefault()
    if not dev.available():
        return None
    kind = {cv2.ocl.DEVICE_TYPE_CPU: "cpu", cv2.ocl.DEVICE_TYPE_ACCELERATOR: "accelerator"}.get(dev.type(), "gpu")
    if dev.type() & cv2.ocl.DEVICE_TYPE_GPU:
        kind = "gpu"
    return {
        "name": dev.name(),
        "vendor": dev.vendorName(),
        "version": dev.version(),
        "type": kind,
        "fp16": bool(dev.hasFP16()),
    }


def _allow_all_devices() -> bool:
    return os.environ.get("OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES", "").lower() in ("1", "true", "on", "yes")


def effective_target(requested: str) -> tuple[str, str | None]:
    """The target cv2.dnn will really run on for ``requested``, and why if different.

    Mirrors the checks cv2.dnn makes before it quietly switches targets
    ("tested with GPUs only, switching to CPU"), so that ``live`` reports the
    device the work ran on, never just the one asked for.
    """
    if requested == "cpu":
        return "cpu", None
    if not cv2.ocl.haveOpenCL():
        return "cpu", "this OpenCV has no OpenCL runtime (no OpenCL ICD installed)"
    dev = opencl_device()
    if dev is None:
        return "cpu", "no usable OpenCL device (for a CPU device such as PoCL, pass --opencl-device :CPU:)"
    if dev["type"] != "gpu" and not _allow_all_devices():
        return "cpu", (
            f"cv2.dnn runs OpenCL on GPUs only and {dev['name']} is a {dev['type']} device "
            "(pass --opencl-device :CPU: to allow it)"
        )
    if requested == "opencl_fp16" and not dev["fp16"]:
        return "opencl", f"OpenCL device {dev['name']} has no float16 support"
    return requested, None


# --------------------------------------------------------------------------
# Layers


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer a user can look at.

    Attributes:
        name: what ``--layer`` accepts and the catalog shows.
        op: op/layer type (``Conv``, ``Relu``, ``Convolution``, ...).
        shape: output shape as measured by the load-time probe (N, C, H, W
            or whatever rank it has); the inferred shape when not tappable.
        index: position in network order.
        tensor: ONNX output tensor name (as Netron shows it), else None.
        node: ONNX node name, else None.
        tappable: whether one forward pass can return it on this engine.
        reason: why not, when not tappable.
    """

    name: str
    op: str
    shape: tuple[int | str, ...] | None
    index: int
    tensor: str | None = None
    node: str | None = None
    tappable: bool = True
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the schema of ``live layers --json``)."""
        return {
            "index": self.index,
            "name": self.name,
            "op": self.op,
            "shape": list(self.shape) if self.shape is not None else None,
            "tensor": self.tensor,
            "node": self.node,
            "tappable": self.tappable,
            "reason": self.reason or None,
        }


@dataclasses.dataclass
class Settings:
    """What the user asked for; :class:`Model` records what it got."""

    engine: str = "auto"
    backend: str = "default"
    target: str = "cpu"
    fallback: bool = False
    preprocess: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    description: Path | None = None
    description_data: Mapping[str, Any] | None = None  # e.g. from the model catalog


def read_labels(path: Path) -> list[str]:
    """Class names, one per line: ``label`` or ``id<TAB>label`` (the label is what is kept)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelError(f"cannot read labels {path}: {exc.strerror}") from exc
    labels = [line.split("\t", 1)[-1].strip() for line in lines if line.strip()]
    if not labels:
        raise ModelError(f"labels file {path} is empty")
    return labels


def detect_format(path: Path) -> str:
    """Model format from the file name: onnx, tflite, tensorflow or caffe."""
    fmt = MODEL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(MODEL_FORMATS))
        raise ModelError(f"cannot tell the format of {path}: expected one of {known}")
    return fmt


def _cv_message(exc: cv2.error) -> str:
    """The useful line of a cv2.error (the one after 'error: (-N:...)')."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in reversed(lines):
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return lines[-1] if lines else "unknown OpenCV error"


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines (the probe expects and handles failures)."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def _split_probe(
    candidates: Sequence[str], run: Callable[[Sequence[str]], list[np.ndarray | None]]
) -> dict[str, np.ndarray | str]:
    """Run ``run`` on all candidates; where cv2 refuses a set, split it in halves.

    ``run`` returns one array per name, or None where cv2 dropped that output
    (OpenCV 4.x folds shape arithmetic away at load). Returns each
    candidate's array, or the reason it cannot be had.
    """
    result: dict[str, np.ndarray | str] = {}
    pending: list[Sequence[str]] = [list(candidates)]
    while pending:
        group = pending.pop()
        if not group:
            continue
        try:
            outs = run(group)
        except cv2.error as exc:
            if len(group) == 1:
                result[group[0]] = _cv_message(exc)
            else:
                mid = len(group) // 2
                pending += [group[:mid], group[mid:]]
            continue
        for name, out in zip(group, outs, strict=True):
            result[name] = out if out is not None else "cv2.dnn drops this output when it loads the model"
    return result


class Model:
    """A loaded network, its layer catalog, and tapped forward passes.

    Use :meth:`load`. Attributes after loading:
        path: the model file.
        format: ``onnx``, ``tflite``, ``tensorflow`` or ``caffe``.
        engine, backend, target: what is really in use (after any fallback).
        requested_target: the target asked for.
        settings: what was asked for (reloading with other targets starts from it).
        notes: one line per fallback or decision worth telling the user.
        preprocess: how frames become blobs.
        layers: every listable layer, network order.
        outputs: names of the network's final outputs.
        default_layer: the description file's choice, else the last
            tappable layer with spatial maps.
        description: the parsed description file (labels, etc.), or {}.
        load_ms: time to read and probe the network.
    """

    def __init__(self) -> None:
        self.path = Path()
        self.format = ""
        self.engine = ""
        self.backend = "default"
        self.target = "cpu"
        self.requested_target = "cpu"
        self.notes: list[str] = []
        self.preprocess = Preprocess()
        self.input_shape: tuple[int, ...] = ()
        self.layers: list[Layer] = []
        self.outputs: list[str] = []
        self.default_layer = ""
        self.description: dict[str, Any] = {}
        self.settings = Settings()
        self.labels: list[str] | None = None
        self.load_ms = 0.0
        self._by_name: dict[str, Layer] = {}
        self._graph: Any = None  # OnnxGraph for ONNX models
        self._net: Any = None  # classic net for non-ONNX models
        self._onnx_nets: OrderedDict[tuple[str, ...], Any] = OrderedDict()

    # ---------------------------------------------------------------- load
    @classmethod
    def load(cls, path: str | Path, settings: Settings | None = None, *, probe: bool = True) -> Model:
        """Read a network file and prepare it for tapped forwards.

        Args:
            path: ``.onnx``, ``.tflite``, ``.pb`` (a ``.pbtxt`` beside it is
                used as config), or Caffe ``.prototxt`` (weights from the
                ``.caffemodel`` of the same stem, when present).
            settings: engine/backend/target and preprocessing overrides.
            probe: run the load-time probe that measures every layer.

        Raises:
            ModelError, BackendError: with a one-line message.
        """
        settings = settings or Settings()
        self = cls()
        self.settings = settings
        start = time.perf_counter()
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        self.format = detect_format(self.path)
        self._choose_engine(settings)
        self._choose_target(settings)
        desc_path = settings.description or self.path.with_suffix(".toml")
        if settings.description_data is not None and settings.description is None:
            self.description = dict(settings.description_data)
        elif settings.description is not None or desc_path.is_file():
            self.description = read_description(desc_path)
        labels = self.description.get("labels")
        if labels:
            self.labels = read_labels(desc_path.parent / str(labels))  # an absolute path stays as is
        if self.format == "onnx":
            self._load_onnx(settings)
        else:
            self._load_classic(settings)
        if probe:
            self._probe()
        self._index_names()
        self.default_layer = self._pick_default_layer()
        self.load_ms = (time.perf_counter() - start) * 1e3
        return self

    def _choose_engine(self, settings: Settings) -> None:
        want = settings.engine
        if want not in ENGINES:
            raise BackendError(f"unknown engine {want!r}; choose from {', '.join(ENGINES)}")
        have = engines_available()
        if want != "auto" and want not in have:
            raise BackendError(f"engine {want!r} is not in OpenCV {cv2.__version__} (it has: {', '.join(have)})")
        if want == "new" and settings.target != "cpu":
            raise BackendError(
                f"the new engine runs on the CPU only and ignores --target {settings.target}; "
                "use --engine classic or --engine auto"
            )
        if want == "new" and self.format != "onnx":
            raise BackendError(f"live uses the new engine for ONNX only; {self.path.name} is {self.format}")
        if want != "auto":
            self.engine = want
        elif "new" not in have:
            self.engine = "classic"
        elif self.format != "onnx":
            self.engine = "classic" if HAS_CLASSIC else "new"
            if self.format == "tflite" and HAS_CLASSIC:
                self.notes.append("engine: classic (the new engine crashes on some TFLite models)")
        elif settings.target != "cpu" and HAS_CLASSIC:
            self.engine = "classic"
            self.notes.append(f"engine: classic (the new engine ignores --target {settings.target})")
        else:
            self.engine = "new"
        if self.format == "caffe" and not hasattr(cv2.dnn, "readNetFromCaffe"):
            raise ModelError(
                f"OpenCV {cv2.__version__} cannot read Caffe models ({self.path.name}); "
                "use the ONNX version of this network (e.g. the ONNX model zoo's googlenet), "
                "or opencv-python-headless 4.x"
            )

    def _choose_target(self, settings: Settings) -> None:
        if settings.backend not in BACKENDS:
            raise BackendError(f"unknown backend {settings.backend!r}; choose from {', '.join(BACKENDS)}")
        if settings.target not in TARGETS:
            raise BackendError(f"unknown target {settings.target!r}; choose from {', '.join(TARGETS)}")
        self.backend = settings.backend
        self.requested_target = settings.target
        actual, why = effective_target(settings.target)
        if actual != settings.target and self.engine == "new":
            why = why or "the new engine runs on the CPU only"
        if why is not None:
            if not settings.fallback:
                raise BackendError(f"target {settings.target!r} is not available: {why}")
            self.notes.append(f"target: {settings.target} -> {actual} ({why})")
        if actual != "cpu" and self.engine == "new":
            raise BackendError(f"target {actual!r} needs the classic engine, which OpenCV {cv2.__version__} lacks")
        self.target = actual

    def _configure(self, net: Any) -> Any:
        if self.engine == "new":  # it ignores backend/target and warns on each call
            return net
        net.setPreferableBackend(BACKENDS[self.backend][0])
        net.setPreferableTarget(TARGETS[self.target][0])
        return net

    def _read(self, reader: Callable[..., Any], source: Any, *extra: Any) -> Any:
        """Call a cv2 reader with the engine argument where OpenCV has one.

        Raises cv2.error as is: the probe splits tap sets on it.
        """
        engine = _ENGINE_IDS[self.engine]
        args = (source, *extra, engine) if HAS_ENGINES and engine is not None else (source, *extra)
        net = reader(*args)
        if net is None or net.empty():
            raise cv2.error(f"error: OpenCV read no network from {self.path}")
        built = engine_of(net)
        if built != self.engine:
            # Never report an engine that is not the one running.
            raise ModelError(
                f"OpenCV {cv2.__version__} built the {built} engine for {self.path.name}, not {self.engine}"
            )
        return net

    def _resolve_preprocess(self, settings: Settings, model_dims: Sequence[int | str]) -> None:
        """Preprocessing: model file < description file < flags."""
        pre = Preprocess()
        channels = None
        if len(model_dims) == 4:
            if model_dims[1] in (1, 3) and model_dims[3] not in (1, 3):
                pre = pre.with_overrides({"layout": "nchw"})
                channels, hw = model_dims[1], model_dims[2:4]
            elif model_dims[3] in (1, 3):
                pre = pre.with_overrides({"layout": "nhwc"})
                channels, hw = model_dims[3], model_dims[1:3]
            else:
                hw = model_dims[2:4]
            if all(isinstance(d, int) and d > 0 for d in hw):
                pre = pre.with_overrides({"size": (hw[1], hw[0])})
        pre = pre.with_overrides(self.description.get("preprocess", {}))
        pre = pre.with_overrides(settings.preprocess)
        if channels == 1:
            pre = dataclasses.replace(pre, channels=1, rgb=False)
        self.preprocess = pre

    def _load_onnx(self, settings: Settings) -> None:
        import onnx

        from live.onnx_graph import OnnxGraph

        try:
            proto = onnx.load(str(self.path))
        except Exception as exc:  # protobuf and onnx raise several types
            raise ModelError(f"{self.path} is not a readable ONNX model: {str(exc).splitlines()[0]}") from exc
        if len(proto.graph.node) == 0:
            raise ModelError(f"{self.path} holds no ONNX graph nodes (empty or not an ONNX model)")
        probe_graph = OnnxGraph(proto)
        self._resolve_preprocess(settings, probe_graph.input_dims)
        self.input_shape = self._blob_shape()
        self._graph = OnnxGraph(proto, self.input_shape)
        self.outputs = list(self._graph.outputs)
        self.layers = [
            Layer(
                name=out.tensor,
                op=out.op,
                shape=out.shape,
                index=i,
                tensor=out.tensor,
                node=out.node or None,
                tappable=not (out.constant or out.extra),
                reason=(
                    "constant: computed from weights only, folded when the model loads"
                    if out.constant
                    else f"training-time extra output of {out.op}; cv2.dnn does not compute it"
                    if out.extra
                    else ""
                ),
            )
            for i, out in enumerate(self._graph.node_outputs)
        ]
        self._name_onnx_layers()
        # Fail early, with the model's own words, when cv2 cannot read it at all.
        try:
            self._onnx_net(tuple(self.outputs))
        except cv2.error as exc:
            raise ModelError(f"OpenCV cannot read {self.path}: {_cv_message(exc)}") from exc

    def _name_onnx_layers(self) -> None:
        """Show a node's name where it is unique and unambiguous, else the tensor name."""
        node_count: dict[str, int] = {}
        for layer in self.layers:
            if layer.node:
                node_count[layer.node] = node_count.get(layer.node, 0) + 1
        tensors = {layer.tensor for layer in self.layers}
        self.layers = [
            dataclasses.replace(layer, name=layer.node)
            if layer.node and node_count[layer.node] == 1 and layer.node not in tensors
            else layer
            for layer in self.layers
        ]

    def _blob_shape(self) -> tuple[int, ...]:
        w, h = self.preprocess.size
        c = self.preprocess.channels
        return (1, c, h, w) if self.preprocess.layout == "nchw" else (1, h, w, c)

    def _onnx_net(self, tensors: tuple[str, ...]) -> Any:
        """A cv2 net whose outputs are ``tensors`` (cached, least recently used out)."""
        net = self._onnx_nets.get(tensors)
        if net is not None:
            self._onnx_nets.move_to_end(tensors)
            return net
        data = self._graph.tap_model(tensors)
        if self.engine == "classic" and HAS_ENGINES:
            # OpenCV 5.0 builds the new engine for any model read from memory, whatever
            # engine is asked for; only a file path honours ENGINE_CLASSIC.
            with tempfile.TemporaryDirectory(prefix="live-tap-") as folder:
                path = Path(folder) / "tapped.onnx"
                path.write_bytes(data)
                net = self._read(cv2.dnn.readNetFromONNX, str(path))
        else:
            net = self._read(cv2.dnn.readNetFromONNX, np.frombuffer(data, np.uint8))
        net = self._configure(net)
        self._onnx_nets[tensors] = net
        while len(self._onnx_nets) > _TAP_CACHE_SIZE:
            self._onnx_nets.popitem(last=False)
        return net

    def _run_onnx(self, blob: np.ndarray, tensors: Sequence[str]) -> list[np.ndarray | None]:
        from live.onnx_graph import tap_index

        net = self._onnx_net(tuple(tensors))
        net.setInput(blob)
        names = net.getUnconnectedOutLayersNames()
        outs = net.forward(names)
        ordered: list[np.ndarray | None] = [None] * len(tensors)
        for name, out in zip(names, outs, strict=True):
            i = tap_index(name)
            if i is not None and i < len(ordered):
                ordered[i] = out
        return ordered

    def _load_classic(self, settings: Settings) -> None:
        path = self.path
        try:
            if self.format == "tflite":
                net = self._read(cv2.dnn.readNetFromTFLite, str(path))
            elif self.format == "tensorflow":
                # A frozen graph (.pb), with its text graph (.pbtxt) beside it
                # when there is one; or a text graph alone, weights inline.
                pb = path.with_suffix(".pb")
                pbtxt = path.with_suffix(".pbtxt")
                if not pb.is_file() and not pbtxt.is_file():
                    raise ModelError(f"TensorFlow model needs {pb} or {pbtxt}")
                model_file = str(pb) if pb.is_file() else ""
                config = str(pbtxt) if pbtxt.is_file() else ""
                net = self._read(cv2.dnn.readNetFromTensorflow, model_file, config)
            else:
                prototxt = path.with_suffix(".prototxt")
                weights = path.with_suffix(".caffemodel")
                if not prototxt.is_file():
                    raise ModelError(f"Caffe model needs its network definition {prototxt}")
                net = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights) if weights.is_file() else "")
        except cv2.error as exc:
            raise ModelError(f"OpenCV cannot read {path}: {_cv_message(exc)}") from exc
        self._net = self._configure(net)
        self._resolve_preprocess(settings, ())
        self.input_shape = self._blob_shape()
        try:
            names = list(net.getLayerNames())
            self.layers = [
                Layer(name=name, op=net.getLayer(name).type, shape=None, index=i) for i, name in enumerate(names)
            ]
            self.outputs = list(net.getUnconnectedOutLayersNames())
        except UnicodeDecodeError as exc:  # cv2 cannot hand a name that is not UTF-8 to Python
            bad = exc.object[max(0, exc.start - 16) : exc.end + 16]
            raise ModelError(f"{path} has a layer name that is not valid UTF-8: {bad!r} (a damaged file?)") from exc

    def _run_classic(self, blob: np.ndarray, names: Sequence[str]) -> list[np.ndarray | None]:
        self._net.setInput(blob)
        return list(self._net.forward(list(names)))

    def _run(self, blob: np.ndarray, names: Sequence[str]) -> list[np.ndarray | None]:
        if self.format == "onnx":
            return self._run_onnx(blob, names)
        return self._run_classic(blob, names)

    def _key(self, layer: Layer) -> str:
        """The name the engine-level runner knows a layer by."""
        return layer.tensor if layer.tensor is not None else layer.name

    def _probe(self) -> None:
        """Measure every candidate layer in one forward (halving where cv2 refuses)."""
        rng = np.random.default_rng(0)
        w, h = self.preprocess.size
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        blob = self.preprocess.blob(frame)
        try:
            self._run(blob, self.outputs)
        except cv2.error as exc:
            raise ModelError(
                f"OpenCV cannot run {self.path.name} on a {'x'.join(map(str, blob.shape))} blob: {_cv_message(exc)}"
            ) from exc
        candidates = [self._key(layer) for layer in self.layers if layer.tappable]
        with quiet_opencv():
            found = _split_probe(candidates, lambda names: self._run(blob, names))
        probed: list[Layer] = []
        for layer in self.layers:
            got = found.get(self._key(layer)) if layer.tappable else None
            if isinstance(got, str):
                layer = dataclasses.replace(layer, tappable=False, reason=f"cv2.dnn cannot return it: {got}")
            elif isinstance(got, np.ndarray):
                layer = self._check_probe_shape(layer, got)
            probed.append(layer)
        self.layers = probed
        self._onnx_nets.clear()

    @staticmethod
    def _check_probe_shape(layer: Layer, out: np.ndarray) -> Layer:
        expected = layer.shape
        shape = tuple(int(s) for s in out.shape)
        if expected is not None:
            static = all(isinstance(d, int) for d in expected)
            if (static and tuple(expected) != shape) or len(expected) != len(shape):
                return dataclasses.replace(
                    layer,
                    tappable=False,
                    reason=f"cv2.dnn returned shape {shape}, the graph says {tuple(expected)}",
                )
        if out.dtype.kind not in "fiub":
            return dataclasses.replace(layer, tappable=False, reason=f"unsupported dtype {out.dtype}")
        return dataclasses.replace(layer, shape=shape)

    def _index_names(self) -> None:
        index: dict[str, Layer] = {}
        for layer in self.layers:
            for key in (layer.node, layer.tensor, layer.name):
                if key and key not in index:
                    index[key] = layer
        # A layer's shown name always resolves to itself.
        for layer in self.layers:
            index[layer.name] = layer
        self._by_name = index

    def _pick_default_layer(self) -> str:
        wanted = self.description.get("default_layer")
        if wanted:
            return self.layer(str(wanted)).name
        spatial = [
            layer for layer in self.layers if layer.tappable and layer.shape is not None and len(layer.shape) == 4
        ]
        if spatial:
            return spatial[len(spatial) // 2].name
        tappable = [layer for layer in self.layers if layer.tappable]
        if not tappable:
            raise ModelError(f"{self.path.name} has no layer that can be shown on the {self.engine} engine")
        return tappable[-1].name

    # ------------------------------------------------------------- queries
    def layer(self, name: str) -> Layer:
        """Look a layer up by shown name, ONNX tensor name or ONNX node name.

        Raises:
            LayerError: unknown (with the nearest names) or not tappable.
        """
        layer = self._by_name.get(name)
        if layer is None:
            hint = did_you_mean(name, self._by_name) or "see `live layers`"
            raise LayerError(f"no layer {name!r} in {self.path.name}; {hint}")
        if not layer.tappable:
            raise LayerError(f"layer {name!r} cannot be tapped on the {self.engine} engine: {layer.reason}")
        return layer

    def tappable_layers(self) -> list[Layer]:
        """The layers one forward pass can return, network order."""
        return [layer for layer in self.layers if layer.tappable]

    def info(self) -> dict[str, Any]:
        """What is in use: engine, backend, target, preprocessing, notes."""
        return {
            "model": str(self.path),
            "format": self.format,
            "opencv": cv2.__version__,
            "engine": self.engine,
            "backend": self.backend,
            "target": self.target,
            "requested_target": self.requested_target,
            "input_shape": list(self.input_shape),
            "preprocess": self.preprocess.to_dict(),
            "notes": list(self.notes),
        }

    def top(self, outputs: Mapping[str, np.ndarray], k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` best classes of the first final output that has one score per label.

        Scores that are not already probabilities are put through a softmax.
        Returns ``[{"label", "score", "index"}, ...]``, best first; empty when
        the model has no labels.
        """
        if not self.labels:
            return []
        for name in self.outputs:
            scores = np.asarray(outputs.get(name, ()), np.float64).reshape(-1)
            if scores.size != len(self.labels) or not np.isfinite(scores).all():
                continue
            if scores.min() < 0 or abs(scores.sum() - 1.0) > 1e-3:
                scores = np.exp(scores - scores.max())
                scores /= scores.sum()
            best = np.argsort(-scores, kind="stable")[:k]
            return [{"label": self.labels[i], "score": float(scores[i]), "index": int(i)} for i in best]
        return []

    # ------------------------------------------------------------- forward
    def blob(self, frame: np.ndarray) -> np.ndarray:
        """Preprocess a BGR uint8 frame (H, W, 3) into this model's float32 input blob."""
        return self.preprocess.blob(frame)

    def check_blob(self, blob: np.ndarray) -> np.ndarray:
        """Validate a user-given input tensor (e.g. from ``.npy``); returns it as float32."""
        arr = np.asarray(blob)
        if arr.dtype.kind not in "fiu":
            raise ModelError(f"input tensor has dtype {arr.dtype}; need numbers")
        if tuple(arr.shape) != tuple(self.input_shape):
            want = "x".join(map(str, self.input_shape))
            raise ModelError(f"input tensor has shape {'x'.join(map(str, arr.shape))}; this model takes {want}")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def forward(self, blob: np.ndarray, layers: Iterable[str] = ()) -> dict[str, np.ndarray]:
        """One forward pass returning the final outputs and every tapped layer.

        Args:
            blob: float32 input blob of :attr:`input_shape`.
            layers: names accepted by :meth:`layer`.
        Returns:
            ``{name: array}`` for each requested layer (keyed by the name as
            given) and each final output (keyed by its output name). Arrays
            are the engine's float32 (or int) outputs, NCHW for conv maps.
        Raises:
            LayerError: an unknown or untappable layer.
            ModelError: cv2.dnn failed on this input.
        """
        wanted = {name: self.layer(name) for name in layers}
        keys: list[str] = list(self.outputs)
        for layer in wanted.values():
            if self._key(layer) not in keys:
                keys.append(self._key(layer))
        try:
            outs = self._run(blob, keys)
        except cv2.error as exc:
            raise ModelError(f"forward pass failed: {_cv_message(exc)}") from exc
        by_key = dict(zip(keys, outs, strict=True))
        missing = [key for key, out in by_key.items() if out is None]
        if missing:
            raise ModelError(f"cv2.dnn returned no output for {', '.join(missing)}")
        result = {name: by_key[name] for name in self.outputs}
        for name, layer in wanted.items():
            result[name] = by_key[self._key(layer)]
        return result
