"""Composition: from what a command asks for to a loaded model, a source and a running pipeline.

:mod:`live.cli` parses arguments into values (:class:`ModelRequest`,
:class:`~live.maps.GridOptions`, :class:`~live.sources.SourceOptions`) and
reports; the functions here put the rooms together, for the command line and
the Python API alike:

* :func:`open_model`: the bundled model, a file or a catalog name
  (downloaded on first use), checked in a child process first when it is
  untrusted (:mod:`live.guard`), then loaded once.
* :func:`take_snapshot`: one input through one layer, written as a grid PNG
  (and optionally the raw blob and what the network sees).
* :func:`pick_source` and :func:`run`: the pipeline, headless or in the window.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from live import explain
from live.assets import DEFAULT_MODEL, data_file
from live.cam import CamOptions, overlay
from live.catalog import cache_dir
from live.download import file_hashes
from live.errors import Interrupted, LiveError, ModelError, OutputError, SourceError, UsageError
from live.files import PrivateCopy, check_regular, printable
from live.frames import View
from live.guard import Verdicts, probe_model, probe_timeout
from live.layers import ProbeCache
from live.manifest import Analysis
from live.maps import GridOptions, colorize
from live.model import Model, Settings, detect_format, model_files
from live.output import (
    Recorder,
    check_distinct,
    check_image_name,
    check_writable,
    write_image,
    write_npy,
    write_snapshot,
    zoom_to,
)
from live.sources import Source, SourceOptions, read_image

Ask = Callable[[str], bool]
"""Asked a yes/no question (before a download); answers True to go ahead."""
Warn = Callable[[str], None]
"""Told one line worth the user's attention."""


@dataclasses.dataclass(frozen=True)
class ModelRequest:
    """Which model to load and how: what ``--model`` and the model options say.

    Attributes:
        model: a model file, a catalog name, or None for the bundled model.
        settings: engine, target, preprocessing, description, OpenCL device.
        yes: download a catalog model without asking.
        catalog: an extra model catalog (default: ``$LIVE_CATALOG``).
        probe: check an untrusted model in a child process before loading it.
    """

    model: str | None = None
    settings: Settings = dataclasses.field(default_factory=Settings)
    yes: bool = False
    catalog: Path | None = None
    probe: bool = True


def model_request(
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
) -> ModelRequest:
    """The model options as keywords (the Python API's spelling of the command line's) -> one :class:`ModelRequest`.

    Raises:
        UsageError: a bad preprocessing value, naming the option.
    """
    from live.description import PreprocessSpec

    preprocess = PreprocessSpec.from_flags(
        size=size, mean=mean, scale=scale, std=std, rgb=rgb, crop=crop, layout=layout
    )
    settings = Settings(
        engine=engine,
        backend=backend,
        target=target,
        fallback=fallback,
        preprocess=preprocess,
        description=Path(describe) if describe is not None else None,
        opencl_device=opencl_device,
    )
    return ModelRequest(
        model=str(model) if model is not None else None,
        settings=settings,
        yes=yes,
        catalog=Path(catalog) if catalog is not None else None,
        probe=probe,
    )


def bundled_model() -> Path:
    """The model that ships with ``live``.

    Raises:
        UsageError: it is missing from this installation.
    """
    path = data_file(DEFAULT_MODEL)
    if path is None:
        raise UsageError(f"the bundled model {DEFAULT_MODEL} is missing from this installation; pass --model")
    return path


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A model request turned into a file: where it is, how to load it, and what vouches for it.

    Attributes:
        path: the model file.
        settings: the request's settings, with a catalog entry's description added.
        bundled: the model that ships with ``live`` (needs no crash check).
        sha256: the hash the catalog verified this file against, or None.
    """

    path: Path
    settings: Settings
    bundled: bool = False
    sha256: str | None = None


def resolve(
    request: ModelRequest, *, ask: Ask | None = None, progress: Any = None, warn: Warn | None = None
) -> Resolved:
    """The model file a request names (downloading a catalog model on first use) and the settings to load it with.

    A catalog model gets the catalog's description (preprocessing, labels,
    default layer) unless ``--describe`` gave one.
    """
    if request.model is None:
        return Resolved(bundled_model(), request.settings, bundled=True)
    from live.download import resolve_model

    path, entry = resolve_model(
        request.model, yes=request.yes, ask=ask, progress=progress, extra_catalog=request.catalog, warn=warn
    )
    settings = request.settings
    sha256 = None
    if entry is not None:
        if settings.description is None:
            settings = settings.replace(description_data=entry.model_description)
        sha256 = next((spec.sha256 for spec in entry.files if spec.name == entry.model), None)
    bundled = data_file(DEFAULT_MODEL)
    return Resolved(path, settings, bundled is not None and path.resolve() == bundled.resolve(), sha256)


def open_model(
    request: ModelRequest, *, ask: Ask | None = None, progress: Any = None, warn: Warn | None = None
) -> Model:
    """Resolve, check and load a model, once.

    The crash check (a child process loading the model first,
    :func:`live.guard.probe_model`) is skipped for the bundled model, for a
    catalog file whose bytes still have the sha256 the catalog verified, for
    bytes already checked with the same OpenCV and settings (a verdict kept
    in the cache folder), and with ``probe=False``. An ONNX file is read
    once: the check and the load get the same bytes.

    Raises:
        LiveError: one line (a missing file, a failed download, OpenCV
            crashing on the file in the child, a bad setting).
    """
    found = resolve(request, ask=ask, progress=progress, warn=warn)
    path, settings = found.path, found.settings
    probes = ProbeCache(cache_dir() / "probes")
    if found.bundled or not request.probe:
        return Model.load(path, settings, probe_cache=probes)
    timeout_s = probe_timeout()
    fmt = detect_format(path)
    data = _read_model(path) if fmt == "onnx" else None
    # Other formats are read by cv2 from files: from a private copy, so that the bytes checked are the bytes loaded.
    copy = PrivateCopy(model_files(path, fmt), ModelError) if data is None else None
    try:
        if data is not None:
            digest = all_files = hashlib.sha256(data).hexdigest()
        else:
            assert copy is not None
            hashes = {original: file_hashes(file)["sha256"] for original, file in copy.paths.items()}
            digest = hashes.get(path, "")
            all_files = "+".join(f"{original.suffix}:{sha}" for original, sha in hashes.items())
    except OSError as exc:
        raise ModelError(f"cannot read model {printable(str(path))}: {exc.strerror or exc}") from exc
    if digest != found.sha256:
        verdicts = Verdicts(cache_dir() / "verdicts")
        key = verdicts.key(all_files, settings)
        if not verdicts.passed(key):
            probe_model(path, settings, timeout_s, data, copy)
            verdicts.record(key)
    sha256 = digest if data is not None else None
    return Model.load(path, settings, data=data, copy=copy, probe_cache=probes, sha256=sha256)


def _read_model(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from exc


MAX_TENSOR_BYTES = 1 << 30
"""The largest ``.npy`` input tensor read: 1 GiB of data (checked from its header, before anything is allocated)."""
_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"RIFF", "a RIFF file (WebP, AVI, WAV)"),
    (b"PK\x03\x04", "a zip archive (an .npz holds several arrays: save one with numpy.save)"),
    (b"\x80", "Python pickle data"),
    (b"\x08", "a protobuf (an ONNX model?)"),
)


def read_input(path: Path) -> tuple[str, np.ndarray]:
    """``("tensor", array)`` for a ``.npy`` file, ``("image", BGR uint8 (H, W, 3))`` for an image.

    Raises:
        SourceError: missing, not a regular file (a folder, a FIFO, a
            device), too large, not an array or not an image.
    """
    shown = printable(str(path))
    check_regular(path, "input", SourceError, f"input not found: {shown}")
    if path.suffix.lower() == ".npy":
        return "tensor", read_npy(path)
    return "image", read_image(path, "input")


def read_npy(path: Path, limit: int = MAX_TENSOR_BYTES) -> np.ndarray:
    """A numeric array from a ``.npy`` file; its header is checked (kind, size, data present) before it is loaded.

    Raises:
        SourceError: not a .npy file (saying what it looks like), a damaged
            header, Python objects, more than ``limit`` bytes, or fewer bytes
            than its header declares.
    """
    shown = printable(str(path))
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if not head.startswith(b"\x93NUMPY"):
                like = next((what for magic, what in _MAGIC if head.startswith(magic)), None)
                detail = f": it looks like {like}" if like else " (no .npy header)"
                raise SourceError(f"{shown} is not a .npy array file{detail}")
            fh.seek(0)
            try:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    shape, _, dtype = np.lib.format._read_array_header(fh, version)
            except (ValueError, SyntaxError, TypeError) as exc:
                raise SourceError(f"{shown} has a damaged .npy header: {str(exc).splitlines()[0]}") from exc
            if dtype.hasobject:
                raise SourceError(f"{shown} holds Python objects (pickled data); live reads numeric arrays only")
            size = math.prod(int(d) for d in shape) * dtype.itemsize
            if size > limit:
                dims = "x".join(str(d) for d in shape) or "scalar"
                raise SourceError(
                    f"{shown} declares a {dims} {dtype} array ({size} bytes); the most live reads is {limit} bytes"
                )
            left = os.fstat(fh.fileno()).st_size - fh.tell()
            if left < size:
                raise SourceError(f"{shown} is cut short: its header declares {size} bytes of data, it holds {left}")
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
    except OSError as exc:
        raise SourceError(f"cannot read {shown}: {exc.strerror}") from exc
    except (ValueError, EOFError) as exc:
        raise SourceError(f"{shown} is not a readable .npy array: {str(exc).splitlines()[0]}") from exc


@dataclasses.dataclass(frozen=True)
class SnapshotFiles:
    """Where ``live snapshot`` writes: the grid PNG, and optionally the raw blob and what the network sees.

    Attributes:
        out: grid image (PNG).
        npy: the raw tapped blob (``.npy``), or None.
        seen: the input blob as an image, or None.
        zoom: integer upscale of the PNG, or None for "small grids to >= 256 px".
        cam_png: with a class activation map: its overlay on the input (PNG), or None.
        cam_npy: with a class activation map: the map (float32, the layer's resolution), or None.
    """

    out: Path = Path("grid.png")
    npy: Path | None = None
    seen: Path | None = None
    zoom: int | None = None
    cam_png: Path | None = None
    cam_npy: Path | None = None

    def check(self, inputs: Sequence[tuple[Path | None, str]] = ()) -> None:
        """UsageError now (before any work) for a path that cannot be written, or one given twice.

        Args:
            inputs: ``(path, what)`` of files read: an output may not be one of them.
        """
        images = ((self.out, "grid image"), (self.seen, "input image"), (self.cam_png, "CAM image"))
        outputs = (*images, (self.npy, "blob file"), (self.cam_npy, "CAM map"))
        for path, what in outputs:
            if path is not None:
                check_writable(path, what)
        for path, what in images:
            if path is not None:
                check_image_name(path, what)
        check_distinct(outputs, inputs)


def take_snapshot(
    model: Model,
    input_path: Path,
    layer_name: str | None,
    grid: GridOptions,
    files: SnapshotFiles,
    cam: CamOptions | None = None,
) -> dict[str, Any]:
    """Tap one layer for one input (an image or a ``.npy`` blob) and write its grid.

    With ``cam``, the class activation map too, from the same forward pass:
    its overlay on the input (an image input's own pixels, through the
    model's crop; a tensor's picture of what the network sees) to
    ``files.cam_png`` and the map to ``files.cam_npy``.

    Returns:
        The report of ``live snapshot --json``: what is in use, the layer,
        the blob's shape, dtype and value range, the grid's geometry, the
        top classes, the files written and the timings in ms; with ``cam``,
        ``"cam": {"method", "layer", "class", "label", "score", "shape", "note", "png", "npy"}``.
    Raises:
        UsageError, LayerError: a bad class, CAM asked for on a model
            without a pooled head, Eigen-CAM on a layer without spatial maps.
    """
    kind, data = read_input(input_path)
    layer = model.layer(layer_name or model.default_layer)
    plan = explain.plan(model, cam, layer.name, batch=grid.batch, layout=grid.layout) if cam is not None else None
    taps = [layer.name, *(t for t in (plan.taps if plan else ()) if t != layer.name)]
    timings: dict[str, float] = {"load": model.load_ms}

    start = time.perf_counter()
    blob = model.check_blob(data) if kind == "tensor" else model.blob(data)
    timings["preprocess"] = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    outputs = model.forward(blob, taps)  # one pass: what cv2 allocates (or compiles) on first use counts in it
    timings["forward"] = (time.perf_counter() - start) * 1e3
    tapped = outputs[layer.name]
    cam_report = None
    if plan is not None:
        result = explain.compute(plan, model, outputs)
        timings["cam"] = result.ms
        cam_report = {**result.to_dict(), "png": None, "npy": None}

    start = time.perf_counter()
    built = grid.builder().build(tapped)
    rgb = colorize(built.image, grid.cmap, built.layout)
    timings["grid"] = (time.perf_counter() - start) * 1e3
    rgb, zoom = zoom_to(rgb, zoom=files.zoom)

    start = time.perf_counter()
    write_image(files.out, rgb, rgb=True, what="grid image")
    if files.npy is not None:
        write_npy(files.npy, tapped, what="blob file")
    if files.seen is not None:
        write_image(files.seen, model.preprocess.image(blob), what="input image")
    if plan is not None and cam_report is not None:
        if kind == "image":
            picture = overlay(data, result.heat, model.preprocess.crop_rect((data.shape[1], data.shape[0])))
        else:
            seen = model.preprocess.image(blob)
            picture = overlay(seen, result.heat, (0, 0, seen.shape[1], seen.shape[0]))
        if files.cam_png is not None:
            write_image(files.cam_png, picture, what="CAM image")
            cam_report["png"] = str(files.cam_png)
        if files.cam_npy is not None:
            write_npy(files.cam_npy, result.map, what="CAM map")
            cam_report["npy"] = str(files.cam_npy)
    timings["write"] = (time.perf_counter() - start) * 1e3

    finite = tapped[np.isfinite(tapped)] if tapped.dtype.kind == "f" else tapped
    return {
        **model.info(),
        "layer": layer.name,
        "tensor": layer.tensor,
        "op": layer.op,
        "shape": list(tapped.shape),
        "dtype": str(tapped.dtype),
        "value_range": [float(finite.min()), float(finite.max())] if finite.size else None,
        "finite": bool(built.finite),
        "input": str(input_path),
        "input_kind": kind,
        "norm": grid.norm,
        "cmap": grid.cmap,
        "grid_options": grid.to_dict(),
        "grid": {
            "path": str(files.out),
            "shape": list(rgb.shape[:2]),
            "rows": built.layout.rows,
            "cols": built.layout.cols,
            "tile": [built.layout.map_h, built.layout.map_w],
            "downscale": built.layout.step,
            "zoom": zoom,
        },
        "top": model.top(outputs),
        "npy": str(files.npy) if files.npy else None,
        "seen": str(files.seen) if files.seen else None,
        **({"cam": cam_report} if cam_report is not None else {}),
        "timings_ms": {k: round(v, 3) for k, v in timings.items()},
    }


def pick_source(spec: str | None, options: SourceOptions, note: Warn | None = None) -> Source:
    """``spec``, or camera 0 when it opens, else the demo (saying so through ``note``)."""
    if spec is not None:
        return options.open(spec)
    camera = options.open("0")
    try:
        camera.open()
    except SourceError:
        demo = options.open("demo")
        if note is not None:
            note(f"no camera 0; playing the {demo.name}")
        return demo
    finally:
        camera.close()
    return options.open("0")


@dataclasses.dataclass(frozen=True)
class RunOutputs:
    """What ``live run`` writes besides the window: recording, snapshots, a screenshot.

    Attributes:
        record: a video of the grids (``.mp4``, ``.avi``, ``.mkv``, ``.mov``), or None.
        record_input: put the input frame beside the grid in the recording.
        record_fps: the recording's frame rate.
        snapshot_dir: where the window's ``s`` key writes snapshots (None:
            ``live-snapshots``); headless, a snapshot of the last result is
            written there when it is given.
        screenshot: with ``frames``: a PNG of the whole window after that many results.
        frames: stop after this many results (None: when the source ends or on Ctrl-C).
    """

    record: Path | None = None
    record_input: bool = False
    record_fps: float = 15.0
    snapshot_dir: Path | None = None
    screenshot: Path | None = None
    frames: int | None = None


def run(
    model: Model,
    source: Source,
    view: View,
    source_options: SourceOptions,
    outputs: RunOutputs,
    *,
    headless: bool,
    analysis: Analysis | None = None,
) -> dict[str, Any]:
    """Run the pipeline until ``outputs.frames`` results, the end of the source, the window closing or Ctrl-C.

    The window reduces the shown layer's units as it runs (top-9, statistics);
    with ``analysis`` (``--units DIR``), its top-k stands in the top-k panel.

    Returns:
        The final stats (``--stats-json``), with ``"recording"`` (the path
        written, or None) and ``"interrupted": true`` after Ctrl-C (and
        ``"signal"``: ``"SIGTERM"`` or ``"SIGHUP"`` when one of those ended
        it). A run that did not do its job says why, for the caller to
        report after writing the stats: ``"stopped"`` (headless: every frame
        failed, :data:`live.pipeline.MAX_FAILED_IN_A_ROW` in a row) and
        ``"recording_error"`` (the recording could not be written; nothing
        was kept under its name).
    Raises:
        LiveError: the source failed before any result.
    """
    from live.pipeline import Pipeline, run_headless  # here: `live layers` and `live snapshot` start without it

    recorder = Recorder(outputs.record, outputs.record_fps, with_input=outputs.record_input) if outputs.record else None
    pipeline = Pipeline(model, source, view, model.settings, source_options)
    try:
        if headless:
            try:  # without a recording, only the last frame's grid is made (for the stats and a snapshot)
                stats = run_headless(pipeline, outputs.frames, recorder.write if recorder is not None else None)
            except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: stop, and still report what was done
                stats = pipeline.stats_snapshot("result_fps")
                stats["interrupted"] = True
                if isinstance(exc, Interrupted):
                    stats["signal"] = exc.signal_name
            except OutputError:  # the recording failed (a full disk): the run is over, the stats still say how far
                stats = pipeline.stats_snapshot("result_fps")
        else:
            from live.qt_window import run_window

            stats = run_window(
                pipeline,
                snapshot_dir=outputs.snapshot_dir or Path("live-snapshots"),
                recorder=recorder,
                frames=outputs.frames,
                screenshot=outputs.screenshot,
                analysis=analysis,
            )
    finally:
        pipeline.close()
        recorded = recorder.close() if recorder is not None else None
    stats["recording"] = str(recorded) if recorded else None
    if recorder is not None and recorder.error is not None:
        stats["recording_error"] = recorder.error
    if pipeline.gave_up is not None:
        stats["stopped"] = pipeline.gave_up
    elif pipeline.error and not stats["frames"]:
        raise LiveError(pipeline.error)
    _, last = pipeline.results.peek()
    if headless and outputs.snapshot_dir is not None and last is not None:
        paths = write_snapshot(outputs.snapshot_dir, last, {"model": str(model.path), "stats": stats})
        stats["snapshot"] = [str(path) for path in paths]
    return stats
