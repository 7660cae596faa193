"""Top-k frames per unit over whole collections of videos and images, on Dask distributed: ``live analyze``.

The work is cut into *parts*: one per image batch, one per video, or one per
chunk of frames of a long video (``chunk`` frames, a task opens the video and
skips to its start). Each part is one Dask task that runs the frames through
the network, all chosen layers in one forward pass, and feeds a
:class:`live.units.UnitReducer`; the task returns that reducer (picklable).
The client saves each part's state under ``DIR/parts/<id>/`` as it arrives (so
an interrupted run resumes: parts already there are loaded, not computed
again) and merges the parts with a tree of merges, in the parts' order, so
the result does not depend on which worker finished first. The reducer's merge
is exact, so any split gives the one-pass result.

Where the work runs (``scheduler``):

* ``local`` (default): a :class:`distributed.LocalCluster` of ``workers``
  processes on this machine, one thread each, no dashboard;
* ``threads``: the same in this process (``processes=False``);
* ``tcp://HOST:PORT`` (or another Dask address): an existing cluster
  (``dask scheduler`` and ``dask worker`` on other machines; they must see the
  model and the inputs under the same paths).

Workers load the network once per process and thread (:func:`_worker_model`),
not once per task. Tasks are submitted with ``retries``: a worker that dies
mid-task costs a retry of its part. A file that cannot be read is reported in
``skipped`` and passed over.

``live.analyze`` is both this module and the Python API's function: calling
the module calls :func:`analyze` (the two would otherwise shadow each other
as attributes of the package).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from live.app import ModelRequest, model_request, open_model
from live.errors import LiveError, SourceError, UsageError
from live.files import cv_name, file_kind, printable, read_bounded
from live.maps import blob_to_maps
from live.model import Model
from live.sources import FALLBACK_FPS, IMAGE_EXTENSIONS, MAX_FPS, MIN_FPS

CHUNK_FRAMES = 1500
"""Frames of a video per task: a longer video is cut into chunks of this many frames."""
IMAGES_PER_TASK = 64
"""Still images per task."""
MAX_WORKERS = 256
MAX_K = 1000
MAX_EVERY = 1_000_000
MAX_CHUNK = 10**8
RETRIES = 3
"""How often a part is tried again after its worker died (or its task failed)."""
CONNECT_TIMEOUT_S = 5.0
"""How long to try to reach an existing scheduler (``--scheduler tcp://...``)."""
LIST_SUFFIXES: tuple[str, ...] = (".txt", ".lst", ".list")
"""A text file with one input path a line (``#`` starts a comment; relative paths are from its folder)."""
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
"""Videos that a folder contributes (beside its images)."""
SCHEDULERS: tuple[str, ...] = ("local", "threads")
_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")
PARTS = "parts"

Warn = Callable[[str], None]


# --------------------------------------------------------------------------
# Values


@dataclasses.dataclass(frozen=True)
class AnalyzeOptions:
    """How an analysis runs: the layers, the reducer's options, sampling, chunking and where the work runs.

    Attributes:
        layers: the layers (shown names, ONNX tensor or node names); empty: the model's default layer.
        units: the reducer's options (k, gap, thumbnails, dead threshold).
        every: use every N-th frame of each video (frame indices 0, N, 2N, ...; images: all).
        chunk: frames of a video per task.
        scheduler: ``local``, ``threads`` or a Dask scheduler address (``tcp://HOST:PORT``).
        workers: worker processes (``local``) or threads (``threads``); ignored for an address.
        threads: OpenCV threads per worker (None: the cores shared out among local workers, else OpenCV's choice).
    """

    layers: tuple[str, ...] = ()
    units: Any = None  # live.units.UnitOptions; None: its defaults
    every: int = 1
    chunk: int = CHUNK_FRAMES
    scheduler: str = "local"
    workers: int = 2
    threads: int | None = None

    def __post_init__(self) -> None:
        from live.units import UnitOptions

        if self.units is None:
            object.__setattr__(self, "units", UnitOptions())
        object.__setattr__(self, "layers", tuple(self.layers))
        for name in self.layers:
            if not isinstance(name, str) or not name.strip():
                raise UsageError(f"empty layer name in {list(self.layers)!r}")
        _check_int("every", self.every, 1, MAX_EVERY)
        _check_int("chunk", self.chunk, 1, MAX_CHUNK)
        _check_int("workers", self.workers, 1, MAX_WORKERS)
        if self.threads is not None:
            _check_int("threads", self.threads, 1, 1024)
        if self.scheduler not in SCHEDULERS and not _ADDRESS.match(str(self.scheduler)):
            raise UsageError(
                f"scheduler must be local, threads or a Dask scheduler address like tcp://HOST:8786, "
                f"got {printable(str(self.scheduler))!r}"
            )


def _check_int(what: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UsageError(f"{what} must be an integer from {lo} to {hi}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Part:
    """One task's share of the inputs.

    Attributes:
        kind: ``video`` (frames ``start`` to ``stop`` of one video) or ``images`` (a batch of stills).
        paths: the video (one path) or the images, as given.
        start: first frame index of the chunk (videos).
        stop: frame index after the chunk, or None: to the end of the video.
        frames: how many frames this part is expected to feed the reducer (for the progress bar).
        key: a stable id (what, which bytes, which settings): the name of its folder under ``DIR/parts``.
    """

    kind: str
    paths: tuple[str, ...]
    start: int = 0
    stop: int | None = None
    frames: int = 0
    key: str = ""


@dataclasses.dataclass
class PartResult:
    """What a task hands back: the part's reducer (None when nothing in it could be read), frames fed, skips,
    and the seconds the task took on its worker (reading, forward passes, updates)."""

    key: str
    reducer: Any  # live.units.UnitReducer | None
    frames: int
    skipped: list[dict[str, str]]
    seconds: float = 0.0


@dataclasses.dataclass
class Analysis:
    """A finished analysis: the merged reducer and what the run did.

    Attributes:
        reducer: the merged :class:`live.units.UnitReducer`.
        report: ``model``, ``layers`` ({name: units}), ``inputs``, ``skipped`` ([{source, reason}]),
            ``frames``, ``files``, ``parts`` ({total, reused, computed}), ``seconds`` (the whole run), ``fps``
            (frames computed in this run per second of it), ``task_s`` (the tasks' seconds on their workers,
            added up), ``task_fps`` (frames per task second: one worker's rate), ``scheduler``, ``workers``,
            ``options``, ``out``.
    """

    reducer: Any
    report: dict[str, Any]


# --------------------------------------------------------------------------
# Inputs


def expand_inputs(inputs: Iterable[str | Path]) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """The files an input list names: ``[(path, "video" | "image")]`` in order, and what was skipped.

    An input is a video file, an image, a folder (its images and videos,
    sorted by name; not its subfolders) or a text file listing inputs (see
    :data:`LIST_SUFFIXES`; lists may name folders but not other lists). A
    path given twice is used once. Missing paths, unreadable folders and
    lists are skipped, with the reason.
    """
    files: list[tuple[str, str]] = []
    skipped: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(path: Path, from_list: bool) -> None:
        text = str(path)
        kind = file_kind(path)
        if kind == "missing":
            skipped.append({"source": text, "reason": "does not exist"})
            return
        if kind == "a directory":
            try:
                entries = sorted(path.iterdir(), key=lambda p: p.name)
            except OSError as exc:
                skipped.append({"source": text, "reason": f"cannot list the folder: {exc.strerror}"})
                return
            members = [p for p in entries if p.suffix.lower() in (*IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS)]
            if not members:
                skipped.append({"source": text, "reason": "holds no images or videos"})
            for member in members:
                if member.is_file():
                    add(member, True)
            return
        if kind is not None:
            skipped.append({"source": text, "reason": f"is {kind}, not a file"})
            return
        if path.suffix.lower() in LIST_SUFFIXES:
            if from_list:
                skipped.append({"source": text, "reason": "a list inside a list is not followed"})
                return
            try:
                lines = read_bounded(path, "input list", SourceError).decode("utf-8", "surrogateescape").splitlines()
            except LiveError as exc:
                skipped.append({"source": text, "reason": str(exc)})
                return
            for line in lines:
                entry = line.strip()
                if entry and not entry.startswith("#"):
                    named = Path(entry).expanduser()
                    add(named if named.is_absolute() else path.parent / named, True)
            return
        if text in seen:
            return
        seen.add(text)
        files.append((text, "image" if path.suffix.lower() in IMAGE_EXTENSIONS else "video"))

    for item in inputs:
        add(Path(item).expanduser(), False)
    return files, skipped


def _open_video(path: str) -> Any:
    """An opened ``cv2.VideoCapture`` of ``path``; SourceError when OpenCV cannot open it."""
    import cv2

    try:
        with cv_name(path) as name:
            cap = cv2.VideoCapture(name)
    except (cv2.error, OSError) as exc:
        raise SourceError(f"{printable(path)} is not a video OpenCV can read") from exc
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"{printable(path)} is not a video OpenCV can read")
    return cap


def video_facts(path: str) -> tuple[int | None, float]:
    """(frame count or None when the file does not say, frames per second) of a video OpenCV can open.

    The rate falls back to :data:`live.sources.FALLBACK_FPS` when missing or absurd, as playback does.

    Raises:
        SourceError: OpenCV cannot open it, or its first frame does not decode.
    """
    import cv2

    cap = _open_video(path)
    try:
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = cap.get(cv2.CAP_PROP_FPS)
        ok = cap.grab()
    finally:
        cap.release()
    if not ok:
        raise SourceError(f"{printable(path)} is not a video OpenCV can read (no frame decodes)")
    frames = int(count) if math.isfinite(count) and count > 0 else None
    rate = float(fps) if math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS else FALLBACK_FPS
    return frames, rate


def _stat(path: str) -> list[int]:
    try:
        info = Path(path).stat()
    except OSError:
        return [0, 0]
    return [info.st_size, info.st_mtime_ns]


def plan_parts(
    files: Sequence[tuple[str, str]], options: AnalyzeOptions, identity: Mapping[str, Any]
) -> tuple[list[Part], list[dict[str, str]]]:
    """Cut the files into parts (tasks), in input order; videos OpenCV cannot open are skipped with the reason.

    Args:
        files: from :func:`expand_inputs`.
        options: ``chunk`` and ``every`` are used here.
        identity: what else makes a part's result what it is (model file and settings, layers, reducer
            options): it goes into each part's key, so a changed setting never reuses an old part.
    """
    parts: list[Part] = []
    skipped: list[dict[str, str]] = []
    salt = json.dumps(identity, sort_keys=True, default=str)

    def key(kind: str, paths: Sequence[str], start: int, stop: int | None) -> str:
        text = json.dumps([salt, kind, [[p, *_stat(p)] for p in paths], start, stop], default=str)
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]

    images: list[str] = []

    def flush() -> None:
        for i in range(0, len(images), IMAGES_PER_TASK):
            batch = tuple(images[i : i + IMAGES_PER_TASK])
            parts.append(Part("images", batch, 0, None, len(batch), key("images", batch, 0, None)))
        images.clear()

    for path, kind in files:
        if kind == "image":
            images.append(path)
            continue
        flush()
        try:
            count, _ = video_facts(path)
        except SourceError as exc:
            skipped.append({"source": path, "reason": _reason(exc, path)})
            continue
        starts = list(range(0, count, options.chunk)) if count else [0]
        for i, start in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else None  # the last chunk reads to the real end
            end = stop if stop is not None else (count or start + 1)
            expected = len(range(-(-start // options.every) * options.every, end, options.every))
            parts.append(Part("video", (path,), start, stop, expected, key("video", (path,), start, stop)))
    flush()
    return parts, skipped


def _reasons(skipped: Sequence[Mapping[str, str]], shown: int = 3) -> str:
    """The first few skips as one phrase: ``a.mp4 does not exist; b.png is not an image ...; and 2 more``."""
    text = "; ".join(f"{printable(s['source'])} {printable(s['reason'])}" for s in skipped[:shown])
    return text + (f"; and {len(skipped) - shown} more" if len(skipped) > shown else "")


def _reason(exc: LiveError, path: str) -> str:
    """A skip's reason: the error's message without the path it starts with."""
    text = str(exc)
    shown = printable(path)
    return text[len(shown) :].strip() if text.startswith(shown) else text


# --------------------------------------------------------------------------
# The worker's side


_MODELS: dict[tuple[str, int], Model] = {}
_MODELS_LOCK = threading.Lock()


def _worker_model(request: ModelRequest) -> Model:
    """The network for ``request``, loaded once per worker process and thread (a cv2 net is not shared by threads)."""
    key = (repr(request), threading.get_ident())
    with _MODELS_LOCK:
        model = _MODELS.get(key)
    if model is None:
        model = open_model(request)
        with _MODELS_LOCK:
            _MODELS[key] = model
    return model


def loaded_models() -> int:
    """How many networks this process has loaded for analysis tasks (tests ask the workers)."""
    with _MODELS_LOCK:
        return len(_MODELS)


def _frames(part: Part, every: int, skipped: list[dict[str, str]]) -> Iterator[tuple[Any, np.ndarray]]:
    """The part's frames as ``(FrameInfo, BGR uint8 (H, W, 3))``; unreadable images go to ``skipped``."""
    from live.sources import _as_bgr, read_image
    from live.units import FrameInfo

    if part.kind == "images":
        for path in part.paths:
            try:
                image = read_image(Path(path))
            except SourceError as exc:
                skipped.append({"source": path, "reason": _reason(exc, path)})
                continue
            yield FrameInfo(source=path, frame=0, time_s=0.0), image
        return
    path = part.paths[0]
    _, fps = video_facts(path)
    cap = _open_video(path)
    try:
        index = 0
        while index < part.start:  # to the chunk's start: grab() reads and decodes, converts nothing
            if not cap.grab():
                return
            index += 1
        while part.stop is None or index < part.stop:
            if index % every:
                if not cap.grab():
                    return
            else:
                ok, image = cap.read()
                if not ok or image is None or not image.size:
                    return
                yield FrameInfo(source=path, frame=index, time_s=index / fps), _as_bgr(image)
            index += 1
    finally:
        cap.release()


def run_part(
    part: Part, request: ModelRequest, layers: Mapping[str, int], units: Any, every: int, threads: int | None
) -> PartResult:
    """One task: the part's frames through the network into a fresh reducer (runs on a worker).

    Args:
        part: what to read.
        request: the model to load (once per worker process, :func:`_worker_model`).
        layers: layer name -> number of units (channels).
        units: the reducer's :class:`live.units.UnitOptions`.
        every: use every N-th frame of a video.
        threads: OpenCV threads for this worker, or None to leave OpenCV's setting.
    Returns:
        A :class:`PartResult`; a video that cannot be opened gives ``reducer=None`` and a skip.
    Raises:
        LiveError: the network failed on a frame (Dask retries the task, then the run reports it).
    """
    import cv2

    from live.receptive import box_maps
    from live.units import UnitReducer

    started = time.perf_counter()
    if threads is not None and cv2.getNumThreads() != threads:
        cv2.setNumThreads(threads)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # a failure comes back as the task's error
    model = _worker_model(request)
    names = list(layers)
    reducer = UnitReducer(dict(layers), units)
    skipped: list[dict[str, str]] = []
    boxes: dict[tuple[int, int], Any] = {}
    frames = 0
    try:
        for info, image in _frames(part, every, skipped):
            outputs = model.forward(model.blob(image), names)
            maps = {name: blob_to_maps(outputs[name]) for name in names}
            size = (image.shape[1], image.shape[0])
            if size not in boxes:
                boxes[size] = box_maps(model, names, size)
            reducer.update(info, maps, image, boxes[size])
            frames += 1
    except SourceError as exc:
        if frames or part.kind != "video":
            raise
        skipped.append({"source": part.paths[0], "reason": _reason(exc, part.paths[0])})
        return PartResult(part.key, None, 0, skipped, time.perf_counter() - started)
    return PartResult(part.key, reducer if frames else None, frames, skipped, time.perf_counter() - started)


# --------------------------------------------------------------------------
# The client's side


@contextlib.contextmanager
def _client(options: AnalyzeOptions, quiet: bool) -> Iterator[Any]:
    """A Dask client on the cluster the options name (a local one is started and shut down here)."""
    level = logging.ERROR if quiet else logging.WARNING
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        from distributed import Client, LocalCluster

        if options.scheduler in SCHEDULERS:
            try:
                cluster = LocalCluster(
                    n_workers=options.workers,
                    threads_per_worker=1,
                    processes=options.scheduler == "local",
                    dashboard_address=None,
                    silence_logs=level,
                )
            except Exception as exc:  # Dask raises many kinds; the user gets one line
                raise LiveError(f"cannot start a local Dask cluster: {type(exc).__name__}: {exc}") from exc
            with cluster, Client(cluster) as client:
                yield client
            return
        try:
            client = Client(options.scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            detail = str(exc).strip().splitlines()
            raise UsageError(
                f"cannot reach the Dask scheduler at {printable(options.scheduler)}"
                + (f": {printable(detail[-1])}" if detail else "")
            ) from exc
        with client:
            yield client
    finally:
        for lg, old in zip(loggers, saved, strict=True):
            lg.setLevel(old)


class _TreeMerge:
    """Merge reducers pushed in order as a balanced binary tree (a binary counter of partial merges).

    Memory: O(log n) reducers; the merge order depends only on the push order.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, Any]] = []

    def push(self, reducer: Any) -> None:
        level = 0
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            reducer = left.merge(reducer)
            level += 1
        self._stack.append((level, reducer))

    def result(self) -> Any:
        merged = None
        while self._stack:
            _, left = self._stack.pop()
            merged = left if merged is None else left.merge(merged)
        return merged


class _OrderedMerge:
    """The parts' results merged as they come, in the parts' order (a result that comes early waits in
    :attr:`pending`), so the merge tree is the same whichever worker finished first; a saved part is loaded only
    when its turn comes. Memory: the pending results and O(log n) partial merges.
    """

    def __init__(self, parts: Sequence[Part], folder: Path | None, reusable: set[str]) -> None:
        self.parts = list(parts)
        self.folder = folder
        self.reusable = set(reusable)
        self.pending: dict[str, PartResult] = {}
        self.tree = _TreeMerge()
        self.next = 0
        self.frames = 0
        self.computed_frames = 0
        self.task_s = 0.0
        self.skipped: list[dict[str, str]] = []

    def advance(self) -> list[Part]:
        """Merge every result that is next in order; returns saved parts that turned out damaged (to compute)."""
        damaged = []
        while self.next < len(self.parts):
            part = self.parts[self.next]
            result = self.pending.pop(part.key, None)
            if result is not None:
                self.computed_frames += result.frames
                self.task_s += result.seconds
            elif part.key in self.reusable and self.folder is not None:
                self.reusable.discard(part.key)
                result = _load_part(self.folder / part.key)
                if result is None:
                    damaged.append(part)
                    break
            else:
                break
            self.frames += result.frames
            self.skipped += result.skipped
            if result.reducer is not None:
                self.tree.push(result.reducer)
            self.next += 1
        return damaged


def _saved_frames(folder: Path) -> int | None:
    """The frames of a part an earlier run saved in ``folder`` (its marker read, not its state), or None."""
    try:
        info = json.loads((folder / "part.json").read_text(encoding="utf-8"))
        return int(info["frames"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_out(out: Path, *, create: bool = False) -> None:
    """UsageError now when ``out`` cannot be the output folder (a file is there, or it cannot be made there).

    Args:
        out: the output folder.
        create: make it (and its ``parts`` folder); otherwise only check that it could be made.
    """
    shown = printable(str(out))
    kind = file_kind(out)
    if kind not in ("missing", "a directory"):
        raise UsageError(f"--out {shown} is {kind or 'a file'}; give a folder")
    if not create:
        existing = out
        while file_kind(existing) == "missing" and existing.parent != existing:
            existing = existing.parent
        if file_kind(existing) != "a directory":
            raise UsageError(f"cannot create output folder {shown}: {printable(str(existing))} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(f"cannot create output folder {shown}: {printable(str(existing))} is not writable")
        return
    try:
        (out / PARTS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {shown}: {exc.strerror or exc}") from exc
    if not os.access(out, os.W_OK):
        raise UsageError(f"output folder {shown} is not writable")


def _load_part(folder: Path) -> PartResult | None:
    """A part saved by an earlier run, or None when there is none (or it is incomplete or damaged)."""
    from live.units import UnitReducer

    marker = folder / "part.json"
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        reducer = UnitReducer.load(folder / "state") if info.get("state") else None
        return PartResult(
            str(info["key"]), reducer, int(info["frames"]), list(info.get("skipped", [])), float(info.get("seconds", 0))
        )
    except (OSError, ValueError, KeyError, TypeError, LiveError):
        return None


def _save_part(folder: Path, result: PartResult) -> None:
    """Save a part's state, then its marker ``part.json`` (written last: a folder without it is not a part)."""
    from live.output import write_json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part.json").unlink(missing_ok=True)
    shutil.rmtree(folder / "state", ignore_errors=True)  # a damaged or unfinished state from an earlier run
    if result.reducer is not None:
        result.reducer.save(folder / "state")
    write_json(
        folder / "part.json",
        {
            "key": result.key,
            "frames": result.frames,
            "skipped": result.skipped,
            "seconds": round(result.seconds, 3),
            "state": result.reducer is not None,
        },
        "part marker",
    )


def model_identity(model: Model) -> dict[str, Any]:
    """What identifies the network a part was computed with: the file (path, size, mtime) and the settings."""
    return {"path": str(model.path.resolve()), "file": _stat(str(model.path)), "settings": repr(model.settings)}


def layer_units(model: Model, layers: Sequence[str]) -> dict[str, int]:
    """Each layer's shown name -> its number of units (channels), from one forward pass on a gray frame.

    Raises:
        LayerError: an unknown layer (with the nearest names) or one that cannot be tapped.
    """
    names: list[str] = []
    for name in layers or [model.default_layer]:
        shown = model.layer(name).name
        if shown not in names:
            names.append(shown)
    w, h = model.preprocess.size
    outputs = model.forward(model.blob(np.full((h, w, 3), 128, np.uint8)), names)
    return {name: int(blob_to_maps(outputs[name]).shape[0]) for name in names}


def run(
    model: Model,
    inputs: Sequence[str | Path],
    options: AnalyzeOptions,
    out: Path | None = None,
    *,
    progress: bool | None = None,
    warn: Warn | None = None,
    quiet: bool = True,
) -> Analysis:
    """Analyze ``inputs`` with ``model`` (loaded by the caller: the client checks layers and counts units).

    Args:
        model: the network, as :func:`live.app.open_model` loaded it; the workers load the same file
            with the same settings.
        inputs: videos, images, folders and list files.
        options: layers, reducer options, sampling, chunking and the cluster.
        out: the output folder (parts, state, manifest, stats, gallery), or None: nothing is written,
            nothing is resumed.
        progress: draw a progress bar on stderr (None: when stderr is a terminal).
        warn: told one line per skipped input.
        quiet: keep Dask's own log lines below ERROR out of stderr.
    Returns:
        The merged reducer and the run's report.
    Raises:
        UsageError: no inputs, a bad output folder, an unreachable scheduler.
        LayerError: an unknown layer.
        LiveError: the network failed (after the retries), every input was skipped.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    if not inputs:
        raise UsageError("no inputs: give videos, images, folders or list files")
    if out is not None:
        check_out(out)
    layers = layer_units(model, options.layers)
    if out is not None:
        check_out(out, create=True)
    files, skipped = expand_inputs(inputs)
    identity = {
        "model": model_identity(model),
        "layers": layers,
        "units": repr(options.units),
        "every": options.every,
    }
    parts, unreadable = plan_parts(files, options, identity)
    skipped += unreadable
    if not parts:
        raise SourceError(f"nothing to analyze: no input could be read ({_reasons(skipped)})")
    saved = {part.key: _saved_frames(out / PARTS / part.key) for part in parts} if out is not None else {}
    reusable = {key for key, frames in saved.items() if frames is not None}
    todo = [part for part in parts if part.key not in reusable]
    file_parts: dict[str, int] = {}
    for part in parts:
        for path in part.paths:
            file_parts[path] = file_parts.get(path, 0) + 1
    files_done = 0

    def finished(part: Part, frames: int) -> None:
        nonlocal files_done
        for path in part.paths:
            file_parts[path] -= 1
            files_done += file_parts[path] == 0
        bar.update(frames)
        bar.set_postfix_str(f"{files_done}/{len(file_parts)} files", refresh=False)

    bar = tqdm(
        total=sum(part.frames for part in parts),
        unit="frame",
        desc="live analyze",
        file=sys.stderr,
        disable=None if progress is None else not progress,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    request = ModelRequest(model=str(model.path), settings=model.settings, probe=False)
    threads = options.threads
    if threads is None and options.scheduler in SCHEDULERS:
        threads = max(1, (os.cpu_count() or 1) // options.workers)
    by_key = {part.key: part for part in parts}
    merge = _OrderedMerge(parts, out / PARTS if out is not None else None, reusable)
    try:
        for part in parts:
            if part.key in reusable:
                finished(part, saved[part.key] or 0)
        todo += merge.advance()  # the saved parts up to the first one to compute; damaged ones are computed again
        if todo:
            with _client(options, quiet) as client:
                from distributed import as_completed

                def submit(part: Part) -> Any:
                    return client.submit(
                        run_part,
                        part,
                        request,
                        layers,
                        options.units,
                        options.every,
                        threads,
                        key=f"live-analyze-{part.key}",
                        retries=RETRIES,
                        pure=False,
                    )

                queue = as_completed([submit(part) for part in todo])
                for future in queue:
                    result = _result(future, by_key)
                    future.release()
                    if out is not None:
                        _save_part(out / PARTS / result.key, result)
                    if result.key not in reusable:
                        finished(by_key[result.key], result.frames)
                    merge.pending[result.key] = result
                    for part in merge.advance():
                        todo.append(part)
                        queue.add(submit(part))
        if bar.n != bar.total:  # a header's frame count was off, or images did not decode: the bar ends full
            bar.total = bar.n
            bar.refresh()
    finally:
        bar.close()
    if merge.next != len(parts):  # cannot happen: every part was loaded or computed
        raise LiveError(f"analysis incomplete: {len(parts) - merge.next} of {len(parts)} parts were not merged")
    reducer = merge.tree.result()
    skipped += merge.skipped
    if reducer is None:
        raise SourceError(f"nothing to analyze: no input could be read ({_reasons(skipped)})")
    for skip in skipped:
        if warn is not None:
            warn(f"skipped {printable(skip['source'])}: {printable(skip['reason'])}")
    frames = merge.frames
    reused = len(parts) - len(todo)
    seconds = time.perf_counter() - started
    computed, task_s = merge.computed_frames, merge.task_s
    report = {
        "model": str(model.path),
        "layers": layers,
        "inputs": [str(i) for i in inputs],
        "skipped": skipped,
        "frames": frames,
        "files": len(file_parts),
        "parts": {"total": len(parts), "reused": reused, "computed": len(todo)},
        "seconds": round(seconds, 3),
        "fps": round(computed / seconds, 2) if seconds > 0 else 0.0,
        "task_s": round(task_s, 3),
        "task_fps": round(computed / task_s, 2) if task_s > 0 else 0.0,
        "scheduler": options.scheduler,
        "workers": options.workers,
        "options": {**dataclasses.asdict(options.units), "every": options.every, "chunk": options.chunk},
        "out": str(out) if out is not None else None,
    }
    analysis = Analysis(reducer, report)
    if out is not None:
        from live.gallery import write_analysis

        write_analysis(out, reducer, report)
    return analysis


def _result(future: Any, parts: Mapping[str, Part]) -> PartResult:
    """A finished task's result; its failure as one LiveError line (a worker that died too often, a bad frame)."""
    try:
        return future.result()
    except LiveError:
        raise
    except Exception as exc:  # Dask's KilledWorker, a pickling failure, ...
        key = str(future.key).removeprefix("live-analyze-")
        part = parts.get(key)
        what = (
            f"part {key}"
            if part is None
            else f"{printable(part.paths[0])}"
            + (
                f" (frames {part.start}..{part.stop if part.stop is not None else 'end'})"
                if part.kind == "video"
                else ""
            )
        )
        detail = str(exc).strip().splitlines()[:1]  # Dask's first line says what; later ones point to its docs
        raise LiveError(
            f"analysis of {what} failed after {RETRIES} retries: {type(exc).__name__}"
            + (f": {printable(detail[-1])}" if detail else "")
        ) from exc


# --------------------------------------------------------------------------
# The Python API


def analyze(
    model: str | Path | None = None,
    layers: str | Sequence[str] = (),
    inputs: str | Path | Sequence[str | Path] = (),
    out: str | Path | None = None,
    k: int = 9,
    gap: float = 1.0,
    every: int = 1,
    scheduler: str = "local",
    workers: int = 2,
    *,
    chunk: int = CHUNK_FRAMES,
    thumb: int = 64,
    dead_at: float = 0.0,
    threads: int | None = None,
    progress: bool | None = False,
    **model_options: Any,
) -> Any:
    """What each unit responds to, over whole videos and image collections: ``live analyze`` from Python.

    Args:
        model: a model file, a catalog name, or None for the bundled EfficientNet-Lite0.
        layers: one layer name or several (None or empty: the model's default layer).
        inputs: one or several videos, images, folders or list files (one path a line).
        out: the output folder (manifest.json, stats.json, thumbnails, index.html, parts for resuming),
            or None to write nothing.
        k: frames kept per unit, 1 to 1000.
        gap: seconds; each unit keeps at most one frame per ``gap``-second window of a source (0: every frame).
        every: use every N-th frame of a video.
        scheduler: ``local`` (worker processes here), ``threads``, or a Dask address (``tcp://HOST:8786``).
        workers: local worker processes (or threads).
        chunk: frames of a video per task.
        thumb: longest side of a stored thumbnail, px.
        dead_at: a unit whose maximum never exceeds this is dead.
        threads: OpenCV threads per worker.
        progress: draw a progress bar on stderr (None: when it is a terminal).
        model_options: as :class:`live.Network` takes them (``engine``, ``size``, ``mean``, ``describe``, ...).
    Returns:
        The merged :class:`live.units.UnitReducer`: ``.layers[name].top(unit)``, ``.stats_dict()``, ...
    Raises:
        LiveError: the one-line messages the command line prints.
    """
    from live.engines import configure_opencl
    from live.units import UnitOptions

    configure_opencl(model_options.get("opencl_device"))
    names = (layers,) if isinstance(layers, str) else tuple(layers or ())
    sources = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    options = AnalyzeOptions(
        layers=names,
        units=UnitOptions(k=k, gap_s=gap, dead_at=dead_at, thumb=thumb),
        every=every,
        chunk=chunk,
        scheduler=scheduler,
        workers=workers,
        threads=threads,
    )
    loaded = open_model(model_request(model, **model_options))
    return run(loaded, sources, options, Path(out) if out is not None else None, progress=progress).reducer


class _CallableModule(types.ModuleType):
    """This module's type: ``live.analyze`` names this module (the import system makes it so), and calling it
    calls :func:`analyze`; ``inspect.signature(live.analyze)`` follows ``__wrapped__`` to that function's."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return analyze(*args, **kwargs)


__wrapped__ = analyze
sys.modules[__name__].__class__ = _CallableModule
