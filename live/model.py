"""The loaded network: read a model file on the chosen engine, run tapped forward passes.

One :class:`Model` wraps one network file. Which engine and target run it is
decided by :mod:`live.engines`; its layers are listed and measured by
:mod:`live.layers`; its preprocessing and labels come from
:mod:`live.description`. This module reads the network and runs it.

How taps work, per engine (see DESIGN.md for the measurements):

* ONNX, every engine: the wanted tensors become graph outputs through an
  ``Identity`` each (:mod:`live.onnx_graph`); ``net.forward(names)`` on the
  new engine would silently return the wrong tensor for some names.
* TFLite, TensorFlow, Caffe: the classic engine's ``net.forward(layer_names)``
  with names from ``net.getLayerNames()``. Where OpenCV has no classic
  engine (5.1), only such a model's outputs can be tapped: the new engine's
  ``forward(name)`` may return another tensor.

Every layer is probed once at load: a forward pass with all candidates tapped
(splitting the set in halves where cv2 refuses some) gives each layer's real
output shape, or the reason it cannot be tapped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from live import engines
from live.description import ModelDescription, PreprocessSpec, read_labels
from live.engines import HAS_ENGINES, Choice, cv_message, quiet_opencv
from live.errors import ModelError, UsageError
from live.files import PrivateCopy, cv_name, cv_temp_dir
from live.layers import CONSTANT_REASON, Layer, LayerCatalog, ProbeCache, name_onnx_layers, probe_layers
from live.names import MODEL_FORMATS, input_too_large
from live.preprocess import Preprocess

_TAP_CACHE_SIZE = 4
NEW_TAPS = (
    "the new engine's forward(layer name) can return another tensor and this OpenCV has no classic engine: "
    "only the model's outputs can be tapped (its ONNX version taps any layer)"
)
DYNAMIC_PROBE_SIZE = (224, 224)
"""(width, height) a network with dynamic H and W is measured at until an input gives its own size."""
MAX_DYNAMIC_SIDE = 1024
"""An image fed to a network with dynamic H and W keeps its size, scaled down so its longer side is at most this."""
_DIM_NAMES = {"nchw": ("N", "C", "H", "W"), "nhwc": ("N", "H", "W", "C")}


@dataclasses.dataclass(frozen=True)
class InputInfo:
    """The network input: as the model file declares it, which dimensions are free, what is used and why.

    Attributes:
        declared: the file's dims, ints or names (``("N", 3, "H", "W")``); empty when the format has none.
        dynamic: the free dimensions, by role (``("N", "H", "W")``).
        shape: the shape in use, e.g. (1, 3, 224, 224).
        reason: why this shape (``"H, W dynamic: the input's own size 640x480"``).
    """

    declared: tuple[int | str, ...]
    dynamic: tuple[str, ...]
    shape: tuple[int, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``"input_dims"`` in ``live layers --json`` and ``live snapshot --json``)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the user asked for about a model; :class:`Model` records what it got.

    One value, built once (from the command line, the Python API or a test)
    and passed down as it is: to the crash-safe probe in a child process, to
    the loader, and to a reload for another target.

    Attributes:
        engine: an :data:`live.engines.ENGINES` name.
        backend: a :data:`live.engines.BACKENDS` name.
        target: a :data:`live.engines.TARGETS` name.
        fallback: run on the CPU, saying so, when the target is not available.
        preprocess: flag overrides (a plain mapping is validated into a
            :class:`PreprocessSpec` once, here).
        description: a description file given explicitly (``--describe``).
        description_data: a description that comes with the model (a
            catalog entry's); used when ``description`` is not given.
        opencl_device: OpenCL device in OpenCV's syntax, set before OpenCL
            is first touched (``:CPU:`` for PoCL).
    """

    engine: str = "auto"
    backend: str = "default"
    target: str = "cpu"
    fallback: bool = False
    preprocess: PreprocessSpec = dataclasses.field(default_factory=PreprocessSpec)
    description: Path | None = None
    description_data: ModelDescription | None = None
    opencl_device: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.preprocess, Mapping):
            spec = PreprocessSpec.parse(self.preprocess, lambda m: UsageError(f"preprocessing: {m}"), str)
            object.__setattr__(self, "preprocess", spec)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def model_files(path: Path, fmt: str) -> list[Path]:
    """The files cv2 reads for the model ``path`` of format ``fmt``, those of them that exist.

    ONNX and TFLite: the file itself. TensorFlow: the frozen graph (``.pb``)
    and its text graph (``.pbtxt``). Caffe: the definition (``.prototxt``) and
    the weights (``.caffemodel``).
    """
    companions = {"tensorflow": (".pb", ".pbtxt"), "caffe": (".prototxt", ".caffemodel")}.get(fmt)
    if companions is None:
        return [path]
    return [path.with_suffix(suffix) for suffix in companions if path.with_suffix(suffix).is_file()]


def detect_format(path: Path) -> str:
    """Model format from the file name: onnx, tflite, tensorflow or caffe."""
    fmt = MODEL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(MODEL_FORMATS))
        raise ModelError(f"cannot tell the format of {path}: expected one of {known}")
    return fmt


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
        input_shape: the float32 input blob's shape, e.g. (1, 3, 224, 224).
        layers: every listable layer, network order; ``catalog`` finds them by name.
        outputs: names of the network's final outputs.
        default_layer: the description's choice, else the middle tappable
            layer with spatial maps.
        description: what came with the model (preprocessing, labels, default layer).
        labels: class names, or None.
        load_ms: time to read and probe the network.
    """

    def __init__(self) -> None:
        self.path = Path()
        self.format = ""
        self.choice = Choice("", "default", "cpu", "cpu")
        self.preprocess = Preprocess()
        self.input_shape: tuple[int, ...] = ()
        self.input = InputInfo((), (), (), "")
        self.catalog = LayerCatalog((), "", "")
        self.outputs: list[str] = []
        self.default_layer = ""
        self.description = ModelDescription()
        self.settings = Settings()
        self.labels: list[str] | None = None
        self.load_ms = 0.0
        self._graph: Any = None  # OnnxGraph for ONNX models
        self._net: Any = None  # classic net for non-ONNX models
        self._proto: Any = None  # the ONNX ModelProto as read, for rebuilding at another input shape
        self._onnx_bytes: bytes | None = None  # the bytes it was read from (None: its weights are in other files)
        self._size_from_input = False  # dynamic H, W and no size given: each input brings its own
        self._size_reason = ""  # why H and W are what they are, when they were chosen at load
        self._probed = True
        self._onnx_nets: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self._copy: PrivateCopy | None = None  # the private copy cv2 reads (non-ONNX files that were checked)
        self._probe_cache: ProbeCache | None = None
        self._sha256: str | None = None  # while loading: the sha256 of the bytes read, when the caller had it

    # The engine policy's decisions, as attributes.
    engine = property(lambda self: self.choice.engine, doc="``new`` or ``classic``: the engine really built.")
    backend = property(lambda self: self.choice.backend, doc="The backend in use.")
    target = property(lambda self: self.choice.target, doc="The target really in use (after any fallback).")
    requested_target = property(lambda self: self.choice.requested_target, doc="The target asked for.")
    notes = property(lambda self: list(self.choice.notes), doc="One line per decision worth telling the user.")
    layers = property(lambda self: self.catalog.layers, doc="Every listable layer, network order.")
    onnx_proto = property(
        lambda self: self._proto, doc="The ONNX ModelProto as read (None for other formats); read it, never change it."
    )

    # ---------------------------------------------------------------- load
    @classmethod
    def load(
        cls,
        path: str | Path,
        settings: Settings | None = None,
        *,
        probe: bool = True,
        data: bytes | None = None,
        copy: PrivateCopy | None = None,
        probe_cache: ProbeCache | None = None,
        sha256: str | None = None,
    ) -> Model:
        """Read a network file and prepare it for tapped forwards.

        Args:
            path: ``.onnx``, ``.tflite``, ``.pb`` (a ``.pbtxt`` beside it is
                used as config), or Caffe ``.prototxt`` (weights from the
                ``.caffemodel`` of the same stem, when present).
            settings: engine/backend/target and preprocessing overrides.
            probe: run the load-time probe that measures every layer.
            data: the ONNX file's bytes, already read (the very bytes the
                crash check ran on); ``path`` then only names the model and
                finds its description.
            copy: for the other formats, a private copy of the model's files
                (the very files the crash check ran on), read instead of
                ``path``'s; kept while the model (or one reloaded from it) lives.
            probe_cache: where an ONNX model's probe results are kept; the
                same bytes, input shape, engine choice and OpenCV are then
                measured once (None: always probe).
            sha256: the hex sha256 of ``data``, when the caller has it
                (the probe cache's key; saves hashing the bytes again).

        Raises:
            ModelError, BackendError, UsageError: with a one-line message.
        """
        settings = settings or Settings()
        self = cls()
        self.settings = settings
        self._copy = copy
        start = time.perf_counter()
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        self.format = detect_format(self.path)
        self.choice = engines.choose(
            self.format, settings.engine, settings.backend, settings.target, settings.fallback, self.path.name
        )
        self.description = self._description(settings)
        if self.description.labels is not None:
            self.labels = read_labels(self.description.labels)
        self._probed = probe
        self._probe_cache = probe_cache
        self._sha256 = sha256
        if self.format == "onnx":
            layers = self._measured_onnx(self._load_onnx(settings, data))
        else:
            layers = self._load_classic(settings)
            if probe:
                layers = self._probe(layers)
        self.catalog = LayerCatalog(layers, self.path.name, self.engine)
        default = self.catalog.default(self.description.default_layer)
        if default is None:
            raise ModelError(f"{self.path.name} has no layer that can be shown on the {self.engine} engine")
        self.default_layer = default
        self.load_ms = (time.perf_counter() - start) * 1e3
        return self

    def reload(self, settings: Settings) -> Model:
        """The same network loaded again with other settings (another target), from the same bytes.

        An ONNX model is rebuilt from the graph read at load time and a
        checked file from its private copy: a file replaced on disk since
        is never read unchecked.
        """
        data = self._onnx_bytes
        if data is None and self._proto is not None:
            data = self._proto.SerializeToString()
        return Model.load(
            self.path, settings, probe=self._probed, data=data, copy=self._copy, probe_cache=self._probe_cache
        )

    def _description(self, settings: Settings) -> ModelDescription:
        """``--describe``, else the catalog's description, else ``MODEL.toml`` beside the model, else none."""
        if settings.description is not None:
            return ModelDescription.read(settings.description)
        if settings.description_data is not None:
            return settings.description_data
        beside = self.path.with_suffix(".toml")
        return ModelDescription.read(beside) if beside.is_file() else ModelDescription()

    def _configure(self, net: Any) -> Any:
        return engines.configure(net, self.choice)

    def _read(self, reader: Callable[..., Any], source: Any, *extra: Any) -> Any:
        """Call a cv2 reader with the engine argument where OpenCV has one.

        Raises cv2.error as is: the probe splits tap sets on it.
        """
        engine = engines.ENGINE_IDS[self.engine]
        args = (source, *extra, engine) if HAS_ENGINES and engine is not None else (source, *extra)
        net = reader(*args)
        if net is None or net.empty():
            raise cv2.error(f"error: OpenCV read no network from {self.path}")
        built = engines.engine_of(net)
        if built != self.engine:
            # Never report an engine that is not the one running.
            raise ModelError(
                f"OpenCV {cv2.__version__} built the {built} engine for {self.path.name}, not {self.engine}"
            )
        return net

    def _resolve_preprocess(self, settings: Settings, model_dims: Sequence[int | str]) -> None:
        """Preprocessing: model file < description file < flags; and where the input size comes from."""
        pre = Preprocess()
        channels = None
        hw: Sequence[int | str] = ()
        if len(model_dims) == 4:
            if model_dims[1] in (1, 3) and model_dims[3] not in (1, 3):
                pre = pre.with_overrides({"layout": "nchw"})
                channels, hw = model_dims[1], model_dims[2:4]
            elif model_dims[3] in (1, 3):
                pre = pre.with_overrides({"layout": "nhwc"})
                channels, hw = model_dims[3], model_dims[1:3]
            else:
                hw = model_dims[2:4]
            if all(_static(d) for d in hw):
                pre = _declared_size(pre, hw, self.path)
        pre = pre.with_overrides(self.description.preprocess.merged(settings.preprocess).overrides())
        if channels == 1:
            pre = dataclasses.replace(pre, channels=1, rgb=False)
        self.preprocess = pre
        names = _DIM_NAMES[pre.layout]
        dynamic = tuple(name for name, dim in zip(names, model_dims, strict=False) if not _static(dim))
        if settings.preprocess.size is not None:
            reason = f"--size {pre.size[0]}x{pre.size[1]}"
        elif self.description.preprocess.size is not None:
            reason = f"the model description's size {pre.size[0]}x{pre.size[1]}"
        elif len(model_dims) == 4 and hw and not all(_static(d) for d in hw):
            self._size_from_input = self.format == "onnx"
            pre = dataclasses.replace(pre, size=DYNAMIC_PROBE_SIZE)
            self.preprocess = pre
            reason = (
                f"H, W dynamic: measured at {pre.size[0]}x{pre.size[1]}; an image or frame brings its own size "
                f"(longer side at most {MAX_DYNAMIC_SIDE}), a .npy input its shape, --size fixes one"
            )
        elif model_dims:
            reason = "from the model file"
        else:
            reason = f"the default size {pre.size[0]}x{pre.size[1]} (the model file does not say; --size sets it)"
        self.input = InputInfo(tuple(model_dims), dynamic, self._blob_shape(), reason)
        self._size_reason = reason

    def _load_onnx(self, settings: Settings, data: bytes | None) -> list[Layer]:
        import onnx

        from live.onnx_graph import OnnxGraph

        given = data is not None
        if data is None:
            try:
                data = self.path.read_bytes()
            except OSError as exc:
                raise ModelError(f"cannot read model {self.path}: {exc.strerror or exc}") from exc
        try:
            proto = onnx.load_from_string(data)
            external = any(init.data_location == onnx.TensorProto.EXTERNAL for init in proto.graph.initializer)
            if external and not given:
                proto, data = onnx.load(str(self.path)), None  # weights in files beside it: onnx reads them
        except Exception as exc:  # protobuf and onnx raise several types
            raise ModelError(f"{self.path} is not a readable ONNX model: {str(exc).splitlines()[0]}") from exc
        if len(proto.graph.node) == 0:
            raise ModelError(f"{self.path} holds no ONNX graph nodes (empty or not an ONNX model)")
        self._proto = proto
        self._onnx_bytes = data
        self._resolve_preprocess(settings, OnnxGraph.declared_input(proto))
        self.input_shape = self._blob_shape()
        return self._onnx_layers()

    def _measured_onnx(self, layers: list[Layer]) -> list[Layer]:
        """The ONNX layers as the probe measures them (kept in and taken from :attr:`_probe_cache`).

        Without a probe, cv2 still reads the network once: a file it cannot
        read fails here, in its own words, not at the first frame.
        """
        key = None
        if self._probed and self._probe_cache is not None:
            digest = self._sha256
            if digest is None:
                data = self._onnx_bytes
                digest = hashlib.sha256(data if data is not None else self._proto.SerializeToString()).hexdigest()
            key = ProbeCache.key(digest, _fmt(self.input_shape), repr(self.choice))
            cached = self._probe_cache.get(key, layers)
            if cached is not None:
                return cached
        try:
            self._onnx_net(tuple(self.outputs))
        except cv2.error as exc:
            raise ModelError(f"OpenCV cannot read {self.path}: {cv_message(exc)}") from exc
        if not self._probed:
            return layers
        layers = self._probe(layers)
        if key is not None and self._probe_cache is not None:
            self._probe_cache.put(key, layers)
        return layers

    def _onnx_layers(self) -> list[Layer]:
        """The graph fixed to :attr:`input_shape`, and its node outputs as layers (before the probe)."""
        from live.onnx_graph import OnnxGraph

        self._graph = OnnxGraph(self._proto, self.input_shape, self._onnx_bytes)
        self._onnx_nets.clear()
        self.outputs = list(self._graph.outputs)
        layers = [
            Layer(
                name=out.tensor,
                op=out.op,
                shape=out.shape,
                index=i,
                tensor=out.tensor,
                node=out.node or None,
                tappable=not (out.constant or out.extra),
                reason=(
                    CONSTANT_REASON
                    if out.constant
                    else f"training-time extra output of {out.op}; cv2.dnn does not compute it"
                    if out.extra
                    else ""
                ),
            )
            for i, out in enumerate(self._graph.node_outputs)
        ]
        return name_onnx_layers(layers)

    def fit(self, shape: Sequence[int], reason: str) -> None:
        """Use the input shape ``shape`` (a network with dynamic dimensions): rebuild, measure the layers again.

        Nothing happens when it is the shape in use. The layer catalog's
        shapes are those of the new size afterwards.

        Raises:
            ModelError: ``shape`` contradicts a static dimension of the model
                file, or the model has no dynamic dimension to fit.
        """
        shape = tuple(int(d) for d in shape)
        if shape == self.input_shape:
            return
        declared = self.input.declared
        fits = (
            self.format == "onnx"
            and len(shape) == len(declared)
            and all(d > 0 for d in shape)
            and all(not _static(want) or want == got for want, got in zip(declared, shape, strict=True))
        )
        if not fits:
            raise ModelError(f"input tensor has shape {_fmt(shape)}; this model takes {self._takes()}")
        self.input_shape = shape
        h, w = (shape[2], shape[3]) if self.preprocess.layout == "nchw" else (shape[1], shape[2])
        self.preprocess = dataclasses.replace(self.preprocess, size=(w, h))
        self.input = dataclasses.replace(self.input, shape=shape, reason=reason)
        layers = self._onnx_layers()
        if self._probed:
            layers = self._measured_onnx(layers)
        self.catalog = LayerCatalog(layers, self.path.name, self.engine)

    def _takes(self) -> str:
        """The input this model takes, ``?`` for a free dimension: ``1x3x224x224`` or ``?x3x?x?``."""
        if self.input.dynamic and self.input.declared:
            return "x".join(str(d) if _static(d) else "?" for d in self.input.declared)
        return _fmt(self.input_shape)

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
        net = self._net_from_onnx(self._graph.tap_model(tensors))
        self._onnx_nets[tensors] = net
        while len(self._onnx_nets) > _TAP_CACHE_SIZE:
            self._onnx_nets.popitem(last=False)
        return net

    def _net_from_onnx(self, data: bytes) -> Any:
        """A configured cv2 net of the serialized ONNX model ``data``, on this model's engine."""
        if self.engine == "classic" and HAS_ENGINES:
            # OpenCV 5.0 builds the new engine for any model read from memory, whatever
            # engine is asked for; only a file path honours ENGINE_CLASSIC.
            with tempfile.TemporaryDirectory(prefix="live-tap-", dir=cv_temp_dir()) as folder:
                path = Path(folder) / "tapped.onnx"
                path.write_bytes(data)
                net = self._read(cv2.dnn.readNetFromONNX, str(path))
        else:
            net = self._read(cv2.dnn.readNetFromONNX, np.frombuffer(data, np.uint8))
        return self._configure(net)

    @property
    def onnx_model(self) -> Any:
        """The ONNX ``ModelProto`` as run, input fixed to :attr:`input_shape`, no taps added; None for other formats."""
        return self._graph.model if self._graph is not None and self.format == "onnx" else None

    def plain_net(self) -> Any:
        """A cv2 net of the network as the file has it, on this model's engine and target, with no taps added.

        Each tap adds an ``Identity`` consumer, which can stop the importer
        from fusing the tapped tensor's producer with its neighbours; what is
        measured on a plain net is what the network costs. The net returned
        is shared (non-ONNX formats) or new (ONNX); its outputs are
        ``net.getUnconnectedOutLayersNames()``.

        Raises:
            ModelError: cv2 cannot read the network.
        """
        if self.format != "onnx":
            return self._net
        try:
            return self._net_from_onnx(self._graph.model.SerializeToString())
        except cv2.error as exc:
            raise ModelError(f"OpenCV cannot read {self.path.name}: {cv_message(exc)}") from exc

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

    def _load_classic(self, settings: Settings) -> list[Layer]:
        path = self.path
        names = contextlib.ExitStack()  # a file name that is not UTF-8 reaches cv2 as an ASCII link (it would crash)
        copy = self._copy

        def name(file: Path) -> str:
            return names.enter_context(cv_name(copy[file] if copy is not None else file))

        def exists(file: Path) -> bool:  # with a private copy, only what was copied (and checked) counts
            return file in copy if copy is not None else file.is_file()

        try:
            if self.format == "tflite":
                net = self._read(cv2.dnn.readNetFromTFLite, name(path))
            elif self.format == "tensorflow":
                # A frozen graph (.pb), with its text graph (.pbtxt) beside it
                # when there is one; or a text graph alone, weights inline.
                pb = path.with_suffix(".pb")
                pbtxt = path.with_suffix(".pbtxt")
                if not exists(pb) and not exists(pbtxt):
                    raise ModelError(f"TensorFlow model needs {pb} or {pbtxt}")
                model_file = name(pb) if exists(pb) else ""
                config = name(pbtxt) if exists(pbtxt) else ""
                net = self._read(cv2.dnn.readNetFromTensorflow, model_file, config)
            else:
                prototxt = path.with_suffix(".prototxt")
                weights = path.with_suffix(".caffemodel")
                if not exists(prototxt):
                    raise ModelError(f"Caffe model needs its network definition {prototxt}")
                net = cv2.dnn.readNetFromCaffe(name(prototxt), name(weights) if exists(weights) else "")
        except cv2.error as exc:
            raise ModelError(f"OpenCV cannot read {path}: {cv_message(exc)}") from exc
        finally:
            names.close()
        self._net = self._configure(net)
        self._resolve_preprocess(settings, ())
        self.input_shape = self._blob_shape()
        try:
            names = list(net.getLayerNames())
            self.outputs = list(net.getUnconnectedOutLayersNames())
            layers = [Layer(name=name, op=net.getLayer(name).type, shape=None, index=i) for i, name in enumerate(names)]
            if self.engine == "new":  # forward(name) on the new engine may hand back another tensor: outputs only
                layers = [
                    layer if layer.name in self.outputs else dataclasses.replace(layer, tappable=False, reason=NEW_TAPS)
                    for layer in layers
                ]
        except UnicodeDecodeError as exc:  # cv2 cannot hand a name that is not UTF-8 to Python
            bad = exc.object[max(0, exc.start - 16) : exc.end + 16]
            raise ModelError(f"{path} has a layer name that is not valid UTF-8: {bad!r} (a damaged file?)") from exc
        return layers

    def _run_classic(self, blob: np.ndarray, names: Sequence[str]) -> list[np.ndarray | None]:
        self._net.setInput(blob)
        return list(self._net.forward(list(names)))

    def _run(self, blob: np.ndarray, names: Sequence[str]) -> list[np.ndarray | None]:
        if self.format == "onnx":
            return self._run_onnx(blob, names)
        return self._run_classic(blob, names)

    def _probe(self, layers: list[Layer]) -> list[Layer]:
        """Measure every candidate layer on a random frame, in one pass when cv2 takes them all (:func:`probe_layers`).

        The network's own outputs must run: when the measured layers do not
        cover them, they are run alone, and cv2's words become the error.
        """
        rng = np.random.default_rng(0)
        w, h = self.preprocess.size
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        blob = self.preprocess.blob(frame)
        if self.input_shape and self.input_shape[0] > 1:
            blob = np.repeat(blob, self.input_shape[0], axis=0)
        with quiet_opencv():
            probed = probe_layers(layers, lambda names: self._run(blob, names))
        measured = {layer.key for layer in probed if layer.tappable}
        if not measured.issuperset(self.outputs):
            try:
                self._run(blob, self.outputs)
            except cv2.error as exc:
                raise ModelError(
                    f"OpenCV cannot run {self.path.name} on a {_fmt(blob.shape)} blob: {cv_message(exc)}"
                ) from exc
        self._onnx_nets.clear()
        return probed

    # ------------------------------------------------------------- queries
    def layer(self, name: str) -> Layer:
        """Look a tappable layer up by shown name, ONNX tensor name or ONNX node name.

        Raises:
            LayerError: unknown (with the nearest names) or not tappable.
        """
        return self.catalog.tappable(name)

    def tappable_layers(self) -> list[Layer]:
        """The layers one forward pass can return, network order."""
        return self.catalog.tappable_layers()

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
            "input_dims": self.input.to_dict(),
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
    @property
    def sized_by_frame(self) -> bool:
        """Whether each frame's size sets the input's H and W (dynamic, none given): :meth:`blob` may refit."""
        return self._size_from_input

    def blob(self, frame: np.ndarray) -> np.ndarray:
        """Preprocess a BGR uint8 frame (H, W, 3) into this model's float32 input blob.

        A network with dynamic H and W and no size given takes the frame at
        its own size (scaled down to a longer side of :data:`MAX_DYNAMIC_SIDE`),
        rebuilt for that size the first time it comes.
        """
        if self._size_from_input:
            h, w = frame.shape[:2]
            scale = min(1.0, MAX_DYNAMIC_SIDE / max(h, w, 1))
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            if size != self.preprocess.size:
                c = self.preprocess.channels
                shape = (1, c, size[1], size[0]) if self.preprocess.layout == "nchw" else (1, size[1], size[0], c)
                own = f"the input's own size {w}x{h}" + (f", scaled to {size[0]}x{size[1]}" if scale < 1 else "")
                self.fit(shape, f"H, W dynamic: {own}")
        return self.preprocess.blob(frame)

    def check_blob(self, blob: np.ndarray) -> np.ndarray:
        """Validate a user-given input tensor (e.g. from ``.npy``); returns it as float32.

        Where the model's input has dynamic dimensions and no size was given,
        the tensor's shape defines them (:meth:`fit`).
        """
        arr = np.asarray(blob)
        if arr.dtype.kind not in "fiu":
            raise ModelError(f"input tensor has dtype {arr.dtype}; need numbers")
        if tuple(arr.shape) != tuple(self.input_shape):
            if not (self.input.dynamic and (self._size_from_input or "N" in self.input.dynamic)):
                raise ModelError(f"input tensor has shape {_fmt(arr.shape)}; this model takes {self._takes()}")
            if not self._size_from_input:  # --size or the description chose H and W: only N may differ
                if tuple(arr.shape[1:]) != tuple(self.input_shape[1:]):
                    takes = "x".join(["?", *map(str, self.input_shape[1:])])
                    raise ModelError(
                        f"input tensor has shape {_fmt(arr.shape)}; this model takes {takes} ({self._size_reason})"
                    )
                self.fit(arr.shape, f"{self._size_reason}; N dynamic: {arr.shape[0]} from the .npy input")
            else:
                self.fit(arr.shape, "dynamic " + ", ".join(self.input.dynamic) + ": the .npy input's shape")
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
            if layer.key not in keys:
                keys.append(layer.key)
        try:
            outs = self._run(blob, keys)
        except cv2.error as exc:
            raise ModelError(f"forward pass failed: {cv_message(exc)}") from exc
        by_key = dict(zip(keys, outs, strict=True))
        missing = [key for key, out in by_key.items() if out is None]
        if missing:
            raise ModelError(f"cv2.dnn returned no output for {', '.join(missing)}")
        result = {name: by_key[name] for name in self.outputs}
        for name, layer in wanted.items():
            result[name] = by_key[layer.key]
        return result


def _declared_size(pre: Preprocess, hw: Sequence[int | str], path: Path) -> Preprocess:
    """``pre`` at the (height, width) the model file declares; ModelError naming the file when that is too large."""
    too_large = input_too_large(int(hw[1]), int(hw[0]))
    if too_large is not None:
        raise ModelError(f"{path.name}: {too_large}")
    return pre.with_overrides({"size": (hw[1], hw[0])})


def _static(dim: int | str) -> bool:
    """Whether a declared dimension is a fixed size (a positive int), not a name or 0."""
    return isinstance(dim, int) and dim > 0


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)
