"""The Python API: feature maps in your own code, the counterpart of ``cv::dnn::imagesFromBlob``.

::

    import live
    net = live.Network("model.onnx")          # a path or a catalog name; keywords as the CLI's model options
    net.layers                                 # every layer: .name .op .shape .tensor .tappable .reason
    taps = net.tap(image_bgr, ["conv1", "fc"]) # layer name -> np.ndarray, one forward pass; also takes a blob
    maps = live.feature_maps(taps["conv1"])    # float32 (C, H, W): one map per channel
    rgb = live.grid(taps["conv1"], norm="layer", cmap="viridis")  # uint8 (H, W, 3): the tiled maps
    cam = net.cam(image_bgr, cls=None, method="auto")  # where it looks: .map (float32 H x W) .index .label .score
    picture = net.cam_overlay(image_bgr, cam)  # uint8 BGR: the map over the frame, through the model's crop
    units = live.analyze("model.onnx", ["conv1"], ["clip.mp4", "photos/"], out="analysis")  # top-k per unit, on Dask
    units.layers["conv1"].top(7)               # unit 7's best frames: .score .source .frame .time_s .y .x .thumb

Errors are :class:`live.LiveError` subclasses carrying the messages the
command line prints. Nothing here is new machinery: a :class:`Network` is the
command line's model loading (:func:`live.app.open_model`) and
:class:`live.model.Model`, :func:`grid` is :class:`live.maps.GridOptions`, and
:func:`analyze` is ``live analyze`` (:mod:`live.analyze`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from live import explain
from live.analyze import analyze
from live.app import model_request, open_model
from live.cam import CamOptions, CamResult, overlay
from live.engines import configure_opencl
from live.layers import Layer
from live.maps import GridOptions, blob_to_maps, colorize
from live.model import Model

__all__ = ["Network", "analyze", "feature_maps", "grid"]


def _model_attr(name: str, doc: str) -> Any:
    """A read-only attribute of the loaded :class:`~live.model.Model`, as a property of :class:`Network`."""
    return property(lambda self: getattr(self.model, name), doc=doc)


class Network:
    """A network loaded with cv2.dnn, ready to tap any set of layers in one forward pass.

    Args:
        model: a model file (``.onnx``, ``.tflite``, ``.pb``, ``.prototxt``),
            a catalog name (see ``live models list``), or None for the
            bundled EfficientNet-Lite0.
        engine, backend, target, fallback: as ``--engine``, ``--backend``,
            ``--target``, ``--fallback``.
        size: network input (width, height), as ``--size``.
        mean, scale, std: 1 or 3 values, as ``--mean``, ``--scale``, ``--std``.
        rgb: feed RGB (True) or BGR (False), as ``--rgb`` / ``--bgr``.
        crop: ``none``, ``center`` or ``letterbox``, as ``--crop``.
        layout: ``nchw`` or ``nhwc``, as ``--layout``.
        describe: a model description file, as ``--describe``.
        opencl_device: as ``--opencl-device`` (set before OpenCL is first used).
        yes: download a catalog model that is not in the cache yet, as ``--yes``.
        catalog: an extra model catalog, as ``--catalog``.
        probe: check an untrusted model in a child process first (``--no-probe`` turns it off).
    Raises:
        LiveError: the same one-line messages the command line prints.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        engine: str = "auto",
        backend: str = "default",
        target: str = "cpu",
        fallback: bool = False,
        size: int | tuple[int, int] | None = None,
        mean: float | Sequence[float] | None = None,
        scale: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
        rgb: bool | None = None,
        crop: str | None = None,
        layout: str | None = None,
        describe: str | Path | None = None,
        opencl_device: str | None = None,
        yes: bool = False,
        catalog: str | Path | None = None,
        probe: bool = True,
    ) -> None:
        configure_opencl(opencl_device)
        request = model_request(
            model,
            engine=engine,
            backend=backend,
            target=target,
            fallback=fallback,
            size=size,
            mean=mean,
            scale=scale,
            std=std,
            rgb=rgb,
            crop=crop,
            layout=layout,
            describe=describe,
            opencl_device=opencl_device,
            yes=yes,
            catalog=catalog,
            probe=probe,
        )
        self.model: Model = open_model(request)

    @property
    def layers(self) -> list[Layer]:
        """Every layer, network order: ``.name .op .shape .tensor .tappable .reason``."""
        return list(self.model.layers)

    engine = _model_attr("engine", "The engine really running: ``new`` or ``classic``.")
    backend = _model_attr("backend", "The backend in use.")
    target = _model_attr("target", "The target the work really runs on (after any fallback), not only the one asked.")
    default_layer = _model_attr("default_layer", "The layer ``live`` shows first for this network.")
    input_shape = _model_attr("input_shape", "The input blob's shape, e.g. (1, 3, 224, 224).")

    def blob(self, image_bgr: np.ndarray) -> np.ndarray:
        """The network's float32 input blob for a BGR uint8 image (H, W, 3) or a gray one (H, W)."""
        return self.model.blob(np.asarray(image_bgr))

    def _input(self, image_or_blob: np.ndarray) -> np.ndarray:
        """The input blob: an image preprocessed as the model says, or a ready blob checked against its shape."""
        data = np.asarray(image_or_blob)
        is_image = data.dtype == np.uint8 and (data.ndim == 2 or (data.ndim == 3 and data.shape[2] in (3, 4)))
        return self.model.blob(data) if is_image else self.model.check_blob(data)

    def tap(self, image_or_blob: np.ndarray, layers: str | Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """One forward pass returning the named layers' outputs.

        Args:
            image_or_blob: a BGR uint8 image (H, W, 3) or gray (H, W), which
                is preprocessed as the model says; or a ready input blob
                (4-D, of :attr:`input_shape`), fed as it is.
            layers: names as ``--layer`` takes them (shown name, ONNX tensor
                or node name); one name or several; default: the default layer.
        Returns:
            ``{name: array}`` for each name asked for: float32 blobs as the
            engine returns them, (N, C, H, W) for convolution maps.
        Raises:
            LayerError: an unknown layer (with the nearest names) or one that cannot be tapped.
            ModelError: an input that does not fit, or cv2.dnn failing on it.
        """
        names = [layers] if isinstance(layers, str) else list(layers or [self.default_layer])
        outputs = self.model.forward(self._input(image_or_blob), names)
        return {name: outputs[name] for name in names}

    def cam(
        self,
        image_or_blob: np.ndarray,
        cls: int | str | None = None,
        method: str = "auto",
        layer: str | None = None,
    ) -> CamResult:
        """Where the network looks: a class activation map from one forward pass, no gradients.

        Args:
            image_or_blob: as :meth:`tap` takes it.
            cls: the class: None for the top-1, an index, or a label (a
                whole label, one of its comma-separated names, or a part
                that only one label has), as ``--cam-class``.
            method: ``auto`` (CAM where the network has a pooled linear
                head, else Eigen-CAM), ``cam`` or ``eigen``, as ``--cam-method``.
            layer: the layer Eigen-CAM looks at (default: the default
                layer); CAM always uses the layer that feeds the pooled head.
        Returns:
            A :class:`live.cam.CamResult`: ``.map`` float32 (H, W) at the
            layer's resolution (raw, signed), ``.heat`` the same in 0..1 as
            drawn, ``.index``, ``.label`` and ``.score`` (the class's
            probability), ``.method`` and ``.layer`` (what really ran), and
            ``.note`` (e.g. why Eigen-CAM stands in for CAM).
        Raises:
            UsageError: a bad method or class (ambiguous or unknown names
                get the nearest suggestions), or ``cam`` on a network without a pooled head.
            LayerError: Eigen-CAM on a layer without spatial maps.
        """
        shown = self.model.layer(layer or self.default_layer).name
        plan = explain.plan(self.model, CamOptions(method=method, cls=cls), shown)
        return explain.compute(plan, self.model, self.model.forward(self._input(image_or_blob), plan.taps))

    def cam_overlay(self, image_bgr: np.ndarray, cam: CamResult, alpha: float = 0.5) -> np.ndarray:
        """A :meth:`cam` result drawn over the image it was computed for: BGR uint8 (H, W, 3).

        The map is mapped back through the model's crop or letterbox onto the
        image's own pixels (jet colours, weight ``alpha``); outside the
        region the network saw, the image is left as it is.
        """
        image = np.asarray(image_bgr)
        return overlay(image, cam.heat, self.model.preprocess.crop_rect((image.shape[1], image.shape[0])), alpha)

    def __repr__(self) -> str:
        m = self.model
        return f"Network({m.path.name!r}, engine={m.engine!r}, backend={m.backend!r}, target={m.target!r})"


def feature_maps(blob: np.ndarray, batch: int = 0, layout: str = "auto") -> np.ndarray:
    """Split a tapped blob into one map per channel: float32 (C, H, W).

    A (N, C) vector gives C maps of 1x1, a (N, C, L) sequence C maps of 1xL;
    ``layout`` says whether a 4-D blob is ``nchw`` or ``nhwc`` (``auto`` guesses).
    """
    return np.ascontiguousarray(blob_to_maps(blob, batch, layout), dtype=np.float32)


def grid(blob: np.ndarray, **options: Any) -> np.ndarray:
    """The tiled, normalized, coloured maps of a tapped blob: an RGB uint8 image (H, W, 3).

    ``options`` are the fields of :class:`live.maps.GridOptions`, as the
    command line's grid options: ``norm`` (``map``, ``layer``, ``robust``,
    ``fixed``), ``value_range``, ``percentiles``, ``pad``, ``order``,
    ``max_size``, ``cmap``, ``batch``, ``layout``.
    """
    settings = GridOptions(**options)
    built = settings.builder().build(blob)
    return colorize(built.image, settings.cmap, built.layout)
