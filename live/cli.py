"""The command line: parse arguments into values, run a command, report.

Each set of options becomes one value, built here once and passed down:
model options -> :class:`live.app.ModelRequest` (with its
:class:`live.model.Settings`), grid options -> :class:`live.maps.GridOptions`,
source options -> :class:`live.sources.SourceOptions`. Putting the rooms
together is :mod:`live.app`'s job. Only this module turns
:class:`live.errors.LiveError` into a one-line message and a non-zero exit
status.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import logging
import math
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from live import __version__
from live.errors import Interrupted, LiveError, OutputError, UsageError
from live.files import printable
from live.guard import TIMEOUT_ENV

PROG = "live"
Report = tuple[Any, Callable[[], str]]  # (JSON data, text renderer) of one command
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the bad value."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------
# Argument types: each rejects a bad value with a message naming it.


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


PREPROCESS_LIMIT = 1e6
"""The largest magnitude of a ``--mean``, ``--std`` or ``--scale`` value."""
RANGE_LIMIT = 1e30
"""The largest magnitude of a ``--range`` bound."""
MAX_THREADS = 1024
MAX_FRAMES = 10**9
MAX_BATCH = 65535
MAX_PROFILE_FRAMES = 100_000
MAX_INTERVAL_S = 86400.0
MIN_INTERVAL_S = 0.01


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argument type: an integer from ``lo`` to ``hi`` (the message states the range)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {lo} to {hi}, got {value}")
        return value

    return parse


def _float_in(lo: float, hi: float, *, open_low: bool = False) -> Callable[[str], float]:
    """An argument type: a finite number from ``lo`` (excluded with ``open_low``) to ``hi``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (math.isfinite(value) and (lo < value if open_low else lo <= value) and value <= hi):
            low = f"above {lo:g}" if open_low else f"{lo:g}"
            raise argparse.ArgumentTypeError(f"must be {low} to {hi:g}, got {text.strip()!r}")
        return value

    return parse


def _floats(text: str) -> list[float]:
    """'0.5', '123.7,116.3,103.5' or '1/255' -> a list of 1 or 3 finite floats, each within PREPROCESS_LIMIT."""
    values = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        try:
            if "/" in part:
                num, den = part.split("/", 1)
                values.append(float(num) / float(den))
            else:
                values.append(float(part))
        except (ValueError, ZeroDivisionError, OverflowError):
            raise argparse.ArgumentTypeError(f"not a number: {part!r}") from None
        if not (math.isfinite(values[-1]) and abs(values[-1]) <= PREPROCESS_LIMIT):
            raise argparse.ArgumentTypeError(f"must be finite numbers within -1e6..1e6, got {part!r}")
    if len(values) not in (1, 3):
        raise argparse.ArgumentTypeError(f"need 1 or 3 numbers, got {text!r}")
    return values


def _size(text: str) -> tuple[int, int]:
    """'224' or '320x240' (width x height) -> (width, height), each side 1 to MAX_INPUT_SIDE."""
    from live.description import MAX_INPUT_SIDE

    match = re.fullmatch(r"\s*(-?\d+)\s*(?:[x,]\s*(-?\d+))?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"size must be W or WxH, got {text!r}")
    w = int(match.group(1))
    h = int(match.group(2)) if match.group(2) is not None else w
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    if w > MAX_INPUT_SIDE or h > MAX_INPUT_SIDE:
        raise argparse.ArgumentTypeError(f"size must be 1 to {MAX_INPUT_SIDE} a side, got {text!r}")
    return w, h


def _layer_name(text: str) -> str:
    """A layer name: not empty (an empty ``--layer`` is a mistake, not the default layer)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty layer name (leave --layer out for the model's default layer)")
    return text


def _choices_help(table: dict[str, Any]) -> str:
    text = "; ".join(f"{name}: {value[1] if isinstance(value, tuple) else value}" for name, value in table.items())
    return text.replace("%", "%%")  # argparse formats help with %


# --------------------------------------------------------------------------
# Parsers


def _model_options(parser: argparse.ArgumentParser, *, engine_target: bool = True) -> None:
    from live.description import MAX_INPUT_SIDE
    from live.engines import BACKENDS, ENGINES, TARGETS
    from live.names import CROPS, LAYOUTS

    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        "-m",
        metavar="PATH",
        help="network file (.onnx, .tflite, .pb, .prototxt) or catalog name (see `live models list`); "
        "default: the bundled EfficientNet-Lite0",
    )
    group.add_argument("--yes", "-y", action="store_true", help="download a catalog model without asking")
    group.add_argument("--catalog", type=Path, metavar="TOML", help="extra model catalog (default: $LIVE_CATALOG)")
    if engine_target:  # `live compare` names them per side (--a, --b)
        group.add_argument("--engine", choices=list(ENGINES), default="auto", help=_choices_help(ENGINES))
    group.add_argument("--backend", choices=list(BACKENDS), default="default", help=_choices_help(BACKENDS))
    if engine_target:
        group.add_argument("--target", choices=list(TARGETS), default="cpu", help=_choices_help(TARGETS))
    group.add_argument(
        "--fallback",
        action="store_true",
        help="run on the CPU, saying so, when the target is not available (default: an error)",
    )
    group.add_argument(
        "--describe",
        metavar="TOML",
        type=Path,
        help="model description file (default: MODEL.toml beside the model, if any)",
    )
    group.add_argument(
        "--no-probe",
        dest="probe",
        action="store_false",
        help="load untrusted models without the crash-safe child-process check (faster start); "
        f"the check gives up after ${TIMEOUT_ENV} seconds (default 120)",
    )
    pre = parser.add_argument_group("preprocessing (overrides the model file and description)")
    pre.add_argument("--size", type=_size, metavar="WxH", help=f"network input size, 1 to {MAX_INPUT_SIDE} a side")
    scale = pre.add_mutually_exclusive_group()
    for group, flag, metavar, text in (
        (
            pre,
            "--mean",
            "M",
            "mean subtracted, 1 or 3 values in 0..255, network channel order (finite, within -1e6..1e6)",
        ),
        (scale, "--scale", "S", "factor after the mean, e.g. 1/255 (non-zero, within -1e6..1e6)"),
        (scale, "--std", "S", "divisor after the mean, 1 or 3 values in 0..255 units (non-zero, within -1e6..1e6)"),
    ):
        group.add_argument(flag, type=_floats, metavar=metavar, help=text)
    swap = pre.add_mutually_exclusive_group()
    swap.add_argument("--rgb", dest="rgb", action="store_true", default=None, help="feed RGB (default)")
    swap.add_argument("--bgr", dest="rgb", action="store_false", help="feed OpenCV's BGR")
    pre.add_argument("--crop", choices=CROPS, help="none (stretch), center crop or letterbox")
    pre.add_argument("--layout", choices=LAYOUTS, help="input blob layout")


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--opencl-device",
        metavar="DEV",
        help="OpenCL device in OpenCV's syntax (':CPU:' for PoCL, ':GPU:0'); also lets cv2.dnn use a non-GPU device",
    )
    parser.add_argument(
        "--threads", type=_int_in(1, MAX_THREADS), metavar="N", help=f"OpenCV worker threads, 1 to {MAX_THREADS}"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--verbose", "-v", action="store_true", help="keep OpenCV's own log lines")


def _grid_options(parser: argparse.ArgumentParser) -> None:
    from live.maps import COLORMAPS, MAP_LAYOUTS, MAX_GRID_SIZE, MAX_PAD, NORMS

    group = parser.add_argument_group("feature-map grid")
    group.add_argument("--norm", choices=list(NORMS), default="map", help=_choices_help(NORMS))
    group.add_argument(
        "--range",
        nargs=2,
        type=_float_in(-RANGE_LIMIT, RANGE_LIMIT),
        metavar=("LO", "HI"),
        help="value range for --norm fixed (finite, within -1e30..1e30, LO < HI)",
    )
    group.add_argument(
        "--percentiles",
        nargs=2,
        type=_float_in(0.0, 100.0),
        metavar=("LO", "HI"),
        default=(1.0, 99.0),
        help="percentiles for --norm robust, 0 to 100, LO < HI",
    )
    group.add_argument("--cmap", choices=list(COLORMAPS), default="viridis", help="colormap")
    group.add_argument(
        "--order", choices=("index", "mean"), default="index", help="tile order: channel index or mean activation"
    )
    group.add_argument(
        "--pad", type=_int_in(0, MAX_PAD), default=1, metavar="PX", help=f"pixels between tiles, 0 to {MAX_PAD}"
    )
    group.add_argument(
        "--max-size",
        type=_int_in(1, MAX_GRID_SIZE),
        default=4096,
        metavar="PX",
        help=f"largest grid side, 1 to {MAX_GRID_SIZE}; bigger grids are downscaled",
    )
    group.add_argument(
        "--batch", type=_int_in(0, MAX_BATCH), default=0, metavar="I", help=f"batch item to show, 0 to {MAX_BATCH}"
    )
    group.add_argument("--map-layout", choices=MAP_LAYOUTS, default="auto", help="layout of the tapped blob")


def _cam_options(parser: argparse.ArgumentParser, *, snapshot: bool) -> None:
    from live.cam import METHODS

    group = parser.add_argument_group("class activation map (where the network looks; no gradients)")
    group.add_argument(
        "--cam",
        action="store_true",
        help="also compute a class activation map, from the same forward pass (the other --cam-* options imply it)",
    )
    group.add_argument(
        "--cam-class",
        metavar="C",
        help="the class: an index, or a label or a part of one that only one label has "
        "(e.g. 'tabby cat'); default: each frame's top-1 class",
    )
    group.add_argument("--cam-method", choices=list(METHODS), help=_choices_help(METHODS) + " (default auto)")
    if snapshot:
        group.add_argument(
            "--cam-out",
            type=Path,
            metavar="PREFIX",
            help="write PREFIX.png (the overlay) and PREFIX.npy (the map); default: cam.png and cam.npy beside --out",
        )
    else:
        group.add_argument(
            "--cam-smoothing",
            type=float,
            metavar="S",
            help="time constant in seconds of a moving average of the map over frames (default 0: none)",
        )


def build_parser() -> argparse.ArgumentParser:
    """The ``live`` argument parser."""
    from live.maps import MAX_GRID_SIZE
    from live.output import MAX_ZOOM

    parser = _Parser(
        prog=PROG,
        description="Watch what a convolutional network sees: its layers' feature maps, from OpenCV's dnn module.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    info = sub.add_parser("info", help="OpenCV version, engines, backends/targets, OpenCL devices")
    _common_options(info)
    info.set_defaults(run=cmd_info)

    layers = sub.add_parser("layers", help="every layer of a network you can look at, in network order")
    _model_options(layers)
    _common_options(layers)
    shown = layers.add_mutually_exclusive_group()
    shown.add_argument("--tappable", action="store_true", help="list only layers that can be tapped")
    shown.add_argument(
        "--all", action="store_true", help="list weight-only constants too (the text listing leaves them out)"
    )
    timing = layers.add_argument_group("where the time goes")
    timing.add_argument(
        "--timing",
        action="store_true",
        help="time per layer from the engine's own profile (the plain network, no taps) instead of the list",
    )
    timing.add_argument(
        "--frames",
        type=_int_in(1, MAX_PROFILE_FRAMES),
        metavar="N",
        help=f"with --timing: forward passes averaged after a warm-up, 1 to {MAX_PROFILE_FRAMES} (default 20)",
    )
    layers.set_defaults(run=cmd_layers)

    comp = sub.add_parser("compare", help="one input through two engine/target configurations, every layer compared")
    _model_options(comp, engine_target=False)
    _common_options(comp)
    comp.add_argument(
        "--input", "-i", required=True, type=Path, metavar="IMG_OR_NPY", help="an image, or a .npy input tensor"
    )
    comp.add_argument("--a", metavar="ENGINE/TARGET", help="side a (default: see --b)")
    comp.add_argument(
        "--b",
        metavar="ENGINE/TARGET",
        help="side b; ENGINE is new, classic or onnxruntime, TARGET cpu, opencl or opencl_fp16 "
        "(default: the two engines of this OpenCV on the CPU, else its engine against onnxruntime/cpu)",
    )
    comp.add_argument(
        "--b-model", metavar="PATH", help="side b runs this model file instead (the same layer names are compared)"
    )
    comp.add_argument(
        "--tolerance",
        type=_float_in(0.0, 1e30),
        default=1e-4,
        metavar="T",
        help="relative difference (to the layer's largest magnitude) past which a layer parts (default 1e-4)",
    )
    comp.add_argument(
        "--frames",
        type=_int_in(1, MAX_PROFILE_FRAMES),
        default=10,
        metavar="N",
        help=f"forward passes each side's per-layer profile averages, 1 to {MAX_PROFILE_FRAMES} (default 10)",
    )
    comp.set_defaults(run=cmd_compare)

    snap = sub.add_parser("snapshot", help="tap one layer for one input; write its grid PNG and raw blob")
    _model_options(snap)
    _common_options(snap)
    snap.add_argument(
        "--layer",
        "-l",
        type=_layer_name,
        metavar="NAME",
        help="layer name, ONNX tensor or node name (default: the model's default layer)",
    )
    snap.add_argument(
        "--input",
        "-i",
        required=True,
        type=Path,
        metavar="IMG_OR_NPY",
        help="an image, or a .npy input tensor fed as is",
    )
    snap.add_argument(
        "--out", "-o", type=Path, default=Path("grid.png"), metavar="PNG", help="grid image to write (default grid.png)"
    )
    snap.add_argument("--npy", type=Path, metavar="NPY", help="also write the raw tapped blob")
    snap.add_argument(
        "--seen", type=Path, metavar="PNG", help="also write what the network sees (the input blob as an image)"
    )
    snap.add_argument(
        "--zoom",
        type=_int_in(1, MAX_ZOOM),
        metavar="K",
        help=f"upscale the PNG K times, 1 to {MAX_ZOOM} (at most {MAX_GRID_SIZE} px a side; "
        "default: small grids to >= 256 px)",
    )
    _grid_options(snap)
    _cam_options(snap, snapshot=True)
    snap.set_defaults(run=cmd_snapshot)

    analyze = sub.add_parser(
        "analyze", help="top-k frames and statistics per unit over videos and image folders, on Dask"
    )
    _analyze_options(analyze)

    models = sub.add_parser("models", help="the model catalog: list, download, path")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True, parser_class=_Parser)
    mlist = msub.add_parser("list", help="the catalog, with what is already downloaded")
    mdown = msub.add_parser("download", help="download and verify a catalog model")
    mpath = msub.add_parser("path", help="where a downloaded catalog model is")
    for p in (mlist, mdown, mpath):
        p.add_argument("--catalog", type=Path, metavar="TOML", help="extra model catalog (default: $LIVE_CATALOG)")
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.add_argument("--verbose", "-v", action="store_true", help=argparse.SUPPRESS)
        p.set_defaults(opencl_device=None, threads=None)
    for p in (mdown, mpath):
        p.add_argument("name", metavar="NAME", help="catalog name (see `live models list`)")
    mlist.set_defaults(run=cmd_models_list)
    mdown.set_defaults(run=cmd_models_download)
    mpath.set_defaults(run=cmd_models_path)

    run = sub.add_parser("run", help="the live window (default command): feature maps in real time")
    _run_options(run)
    return parser


def _analyze_options(parser: argparse.ArgumentParser) -> None:
    from live.analyze import CHUNK_FRAMES, MAX_CHUNK, MAX_EVERY, MAX_K, MAX_WORKERS

    _model_options(parser)
    _common_options(parser)
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video files, images, folders of images (and videos), text files listing them one a line",
    )
    parser.add_argument(
        "--layer",
        "-l",
        action="append",
        type=_layer_name,
        metavar="NAME",
        help="a layer to analyze; give it again for more (all in one forward pass); default: the model's default",
    )
    parser.add_argument(
        "--out", "-o", type=Path, required=True, metavar="DIR", help="output folder (resumes a run stopped there)"
    )
    group = parser.add_argument_group("units")
    group.add_argument(
        "--k", type=_int_in(1, MAX_K), default=9, metavar="K", help=f"frames kept per unit, 1 to {MAX_K}"
    )
    _float_option(group, "--gap", (0.0, MAX_INTERVAL_S), 1.0, "S", "seconds: one frame per unit per window of a source")
    group.add_argument(
        "--every", type=_int_in(1, MAX_EVERY), default=1, metavar="N", help="use every N-th frame of a video"
    )
    group.add_argument(
        "--thumb", type=_int_in(8, 512), default=64, metavar="PX", help="longest side of a thumbnail, 8 to 512"
    )
    _float_option(
        group, "--dead-at", (-RANGE_LIMIT, RANGE_LIMIT), 0.0, "V", "a unit whose maximum never exceeds V is dead"
    )
    dask = parser.add_argument_group("Dask")
    dask.add_argument(
        "--scheduler",
        default="local",
        metavar="WHERE",
        help="local (worker processes here, default), threads (in this process), or a scheduler address "
        "(tcp://HOST:8786: `dask scheduler` and `dask worker` on other machines)",
    )
    dask.add_argument(
        "--workers",
        type=_int_in(1, MAX_WORKERS),
        default=2,
        metavar="N",
        help=f"local workers, 1 to {MAX_WORKERS} (default 2)",
    )
    dask.add_argument(
        "--chunk",
        type=_int_in(1, MAX_CHUNK),
        default=CHUNK_FRAMES,
        metavar="FRAMES",
        help=f"frames of a video per task (default {CHUNK_FRAMES})",
    )
    dask.add_argument("--progress", action="store_true", default=None, help="draw the progress bar off a terminal too")
    parser.set_defaults(run=cmd_analyze)


def _float_option(group: Any, flag: str, bounds: tuple[float, float], default: float, metavar: str, what: str) -> None:
    """A number option refused outside ``bounds`` where it is parsed, its range stated in ``--help``."""
    lo, hi = bounds
    group.add_argument(flag, type=_float_in(lo, hi), default=default, metavar=metavar, help=f"{what}, {lo:g} to {hi:g}")


def _run_options(run: argparse.ArgumentParser) -> None:
    from live.output import MAX_RECORD_FPS, MIN_RECORD_FPS
    from live.sources import PACES

    _model_options(run)
    _common_options(run)
    src = run.add_argument_group("source")
    src.add_argument(
        "--source",
        "-s",
        default=None,
        metavar="SRC",
        help="camera index (0), video file, image, folder of images, stream URL (rtsp://, http://) or 'demo' "
        "(default: camera 0 if it opens, else the demo)",
    )
    src.add_argument("--no-loop", dest="loop", action="store_false", help="stop at the end of a file or folder")
    src.add_argument(
        "--pace", choices=PACES, default="file", help="video at its frame rate (file) or as fast as possible"
    )
    _float_option(src, "--interval", (MIN_INTERVAL_S, MAX_INTERVAL_S), 2.0, "S", "seconds per image of a folder")
    run.add_argument(
        "--layer",
        "-l",
        action="append",
        type=_layer_name,
        metavar="NAME",
        help="layer to show first (default: the model's default layer); give it again (up to 4 in all) to pin "
        "several layers: their grids side by side, tapped in one forward pass",
    )
    run.add_argument(
        "--units",
        type=Path,
        metavar="DIR",
        help="show an analysis's top-k (`live analyze --out DIR`) for the selected unit in the window",
    )
    out = run.add_argument_group("output")
    out.add_argument("--headless", action="store_true", help="no window: run the pipeline and report stats")
    out.add_argument(
        "--frames", type=_int_in(1, MAX_FRAMES), metavar="N", help=f"stop after N results, 1 to {MAX_FRAMES:,}"
    )
    out.add_argument("--stats-json", type=Path, metavar="PATH", help="write the final stats as JSON")
    out.add_argument("--screenshot", type=Path, metavar="PNG", help="with --frames: save the whole window, then exit")
    out.add_argument(
        "--snapshot-dir",
        type=Path,
        metavar="DIR",
        help="where `s` writes snapshots (default live-snapshots); headless: a snapshot of the last result",
    )
    out.add_argument("--record", type=Path, metavar="VIDEO", help="record the grid as a video (.mp4, .avi, .mkv)")
    out.add_argument("--record-input", action="store_true", help="record the input beside the grid")
    _float_option(out, "--record-fps", (MIN_RECORD_FPS, MAX_RECORD_FPS), 15.0, "FPS", "frame rate of the recording")
    _grid_options(run)
    _cam_options(run, snapshot=False)
    run.set_defaults(run=cmd_run)


# --------------------------------------------------------------------------
# Helpers


@contextlib.contextmanager
def native_stdout_to_stderr() -> Iterator[None]:
    """Send what native code prints to stdout (OpenCL build logs) to stderr instead.

    Keeps ``--json`` output parseable; Python's own ``print`` is unaffected
    once the block ends.
    """
    from live.output import set_stdout_fd

    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (embedded use)
        yield
        return
    os.dup2(2, 1)
    previous = set_stdout_fd(saved)  # `--stats-json /dev/stdout` still means the real stdout
    try:
        yield
    finally:
        _flush_libc()
        set_stdout_fd(previous)
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def native_stderr_dropped() -> Iterator[None]:
    """Drop what native code writes to stderr (libpng, libjpeg, FFmpeg, OpenCV's own log); keep Python's lines.

    Decoders print their complaints about a damaged file straight to file
    descriptor 2, beside the one-line error ``live`` reports for it. Inside
    the block, file descriptor 2 goes to the null device while ``sys.stderr``
    (``live``'s notes, warnings and errors) still reaches the real stderr.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no file descriptor 2 (embedded use)
        yield
        return
    python_stderr = sys.stderr
    try:
        swap = python_stderr.fileno() == 2
    except (OSError, ValueError, AttributeError):  # a captured stream (pytest's capsys): not on descriptor 2
        swap = False
    if swap:
        encoding = getattr(python_stderr, "encoding", None) or "utf-8"
        sys.stderr = open(saved, "w", encoding=encoding, errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        _flush_libc()
        if swap:
            sys.stderr.flush()
            sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)


class _LogLines(logging.Handler):
    """``live``'s own log records (``live.sources``, ``live.pipeline``) as one ``live: warning: ...`` line each.

    Python's fallback handler would print bare messages, and a logged
    exception's whole traceback; here an exception adds its one-line summary
    (the traceback only with ``LIVE_DEBUG``).
    """

    def __init__(self, debug: bool) -> None:
        super().__init__(logging.WARNING)
        self.debug = debug

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = " ".join(record.getMessage().split("\n"))
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None:
                detail = str(exc).strip().splitlines()
                message += f": {type(exc).__name__}" + (f": {detail[-1]}" if detail else "")
            print(f"{PROG}: {record.levelname.lower()}: {printable(message)}", file=sys.stderr)
            if self.debug and record.exc_info:
                import traceback

                traceback.print_exception(*record.exc_info, file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _opens_window(args: argparse.Namespace) -> bool:
    return args.command == "run" and not getattr(args, "headless", False)


def _flush_libc() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not a libc we can reach
        ctypes.CDLL(None).fflush(None)


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    """Print the result (names from files with their control characters escaped) and flush it: a write error shows."""
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(printable(text(), keep="\n"))
    sys.stdout.flush()


def _value(cls: Any, args: argparse.Namespace, **renames: Any) -> Any:
    """Build the settings value ``cls`` (a dataclass) from the arguments named like its fields.

    ``renames`` maps a field to the argument it comes from (``value_range="range"``)
    or gives it outright (``preprocess=PreprocessSpec(...)``); fields with no
    argument keep their defaults. The value validates itself.
    """
    values = {}
    for field in dataclasses.fields(cls):
        source = renames.get(field.name, field.name)
        if not isinstance(source, str):
            values[field.name] = source
        elif hasattr(args, source):
            values[field.name] = getattr(args, source)
    return cls(**values)


def _model_request(args: argparse.Namespace) -> Any:
    """The model options as one value: what to load and how (validated here, once)."""
    from live.app import ModelRequest
    from live.description import PREPROCESS_KEYS, PreprocessSpec
    from live.model import Settings

    preprocess = PreprocessSpec.from_flags(**{key: getattr(args, key) for key in PREPROCESS_KEYS})
    settings = _value(Settings, args, preprocess=preprocess, description="describe")
    return _value(ModelRequest, args, settings=settings)


def _grid(args: argparse.Namespace) -> Any:
    """The grid options as one value (``live run`` and ``live snapshot`` share them)."""
    from live.maps import GridOptions

    for option, pair in (
        ("--range", getattr(args, "range", None)),
        ("--percentiles", getattr(args, "percentiles", None)),
    ):
        if pair is not None and not pair[0] < pair[1]:
            raise UsageError(f"{option} LO HI needs LO < HI, got {pair[0]:g} {pair[1]:g}")
    return _value(GridOptions, args, value_range="range", layout="map_layout")


def _cam(args: argparse.Namespace) -> Any:
    """The CAM options as one value (a :class:`live.cam.CamOptions`), or None when no --cam option is given."""
    from live.cam import CamOptions

    given = [getattr(args, name, None) for name in ("cam_class", "cam_method", "cam_out", "cam_smoothing")]
    if not args.cam and all(value is None for value in given):
        return None
    smoothing = getattr(args, "cam_smoothing", None)
    return CamOptions(method=args.cam_method or "auto", cls=args.cam_class, smoothing_s=smoothing or 0.0)


def _model_files(args: argparse.Namespace) -> list[tuple[Path | None, str]]:
    """The files the model options read (an output may not be one of them)."""
    model = getattr(args, "model", None)
    files: list[tuple[Path | None, str]] = [(getattr(args, "describe", None), "model description")]
    if model is not None and Path(model).is_file():
        files.append((Path(model), "model"))
    return files


def _ask(question: str) -> bool:
    """Ask yes/no on the terminal; without one, the answer is no."""
    if not sys.stdin.isatty():
        return False
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {printable(message)}", file=sys.stderr)


def _note(message: str) -> None:
    print(f"{PROG}: note: {printable(message)}", file=sys.stderr)


def _open_model(args: argparse.Namespace) -> Any:
    """The model the options name, checked and loaded once (:func:`live.app.open_model`); notes go to stderr."""
    from live.app import open_model
    from live.download import ProgressBar

    bar = ProgressBar()
    try:
        model = open_model(_model_request(args), ask=_ask, progress=bar, warn=_warn)
    finally:
        bar.close()
    if not args.json:
        for note in model.notes:
            _note(note)
    return model


def _fmt_shape(shape: Sequence[Any] | None) -> str:
    return "?" if shape is None else "x".join(str(d) for d in shape)


def _analysis(args: argparse.Namespace) -> Any:
    """``--units DIR``: the analysis read and checked (:func:`live.manifest.read_analysis`), or None."""
    if args.units is None:
        return None
    if args.headless:
        raise UsageError("--units shows an analysis in the window; drop --headless")
    from live.manifest import read_analysis

    return read_analysis(args.units)


def _analysis_layer(model: Any, analysis: Any) -> str | None:
    """The first layer of the analysis that the model can show (the layer the window starts on), or None."""
    for name in analysis.layers if analysis is not None else ():
        try:
            return model.layer(name).name
        except LiveError:
            continue
    return None


# --------------------------------------------------------------------------
# Commands


def cmd_info(args: argparse.Namespace) -> Report:
    """``live info``."""
    import cv2

    from live.engines import BACKENDS, TARGETS, engines_available, opencl_device

    targets = {}
    for name, (backend, _) in BACKENDS.items():
        ids = set(int(t) for t in cv2.dnn.getAvailableTargets(backend))
        targets[name] = [t for t, (tid, _) in TARGETS.items() if tid in ids]
    device = opencl_device()
    data = {
        "live": __version__,
        "opencv": cv2.__version__,
        "engines": engines_available(),
        "caffe": hasattr(cv2.dnn, "readNetFromCaffe"),
        "threads": cv2.getNumThreads(),
        "targets": targets,
        "opencl": {
            "runtime": bool(cv2.ocl.haveOpenCL()),
            "device": device,
            "dnn_allows_non_gpu": os.environ.get("OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES", "") not in ("", "0"),
        },
    }

    def text() -> str:
        lines = [
            f"live {__version__}, OpenCV {data['opencv']}, {data['threads']} threads",
            f"engines: {', '.join(data['engines'])}" + ("" if data["caffe"] else " (no Caffe importer)"),
        ]
        for backend, tlist in targets.items():
            lines.append(f"backend {backend}: targets {', '.join(tlist)}")
        if device is None:
            runtime = "present" if data["opencl"]["runtime"] else "absent"
            lines.append(f"OpenCL: runtime {runtime}, no device in use (try --opencl-device :CPU:)")
        else:
            lines.append(f"OpenCL: {device['name']} ({device['type']}, {device['vendor']}, {device['version']})")
        return "\n".join(lines)

    return data, text


def cmd_layers(args: argparse.Namespace) -> Report:
    """``live layers``: the layers to look at; JSON keeps every entry (``--tappable``: only those)."""
    if args.frames is not None and not args.timing:
        raise UsageError("--frames goes with --timing")
    model = _open_model(args)
    if args.timing:
        return _timing(args, model)
    shown = model.layers if args.all else model.catalog.shown_layers()
    listed = model.tappable_layers() if args.tappable else shown
    data = {
        **model.info(),
        "default_layer": model.default_layer,
        "layers": [layer.to_dict() for layer in (listed if args.tappable else model.layers)],
    }

    def text() -> str:
        shown_name = printable  # names come from the model file: control characters escaped, one line each
        width = min(48, max((len(shown_name(layer.name)) for layer in listed), default=4))
        hidden = len(model.layers) - len(listed)
        left_out = (
            ""
            if not hidden
            else (
                f"; {hidden} not listed ({'not tappable' if args.tappable else 'weight-only constants'}: "
                f"{'drop --tappable' if args.tappable else '--all'} lists them)"
            )
        )
        info = model.input
        lines = [
            f"{shown_name(model.path.name)}: {len(model.layers)} layers, {len(model.tappable_layers())} tappable "
            f"(engine {model.engine}, backend {model.backend}, target {model.target}); "
            f"default {shown_name(model.default_layer)}"
            f"{left_out}",
            f"input {_fmt_shape(info.shape)}: {info.reason}"
            + (f" (declared {_fmt_shape(info.declared)})" if info.dynamic else ""),
        ]
        for layer in listed:
            mark = "" if layer.tappable else f"  [not tappable: {shown_name(layer.reason)}]"
            tensor = f"  tensor {shown_name(layer.tensor)}" if layer.tensor and layer.tensor != layer.name else ""
            lines.append(
                f"{layer.index:4d}  {shown_name(layer.name):<{width}}  {shown_name(layer.op):<18} "
                f"{_fmt_shape(layer.shape):<16}{tensor}{mark}"
            )
        return "\n".join(lines)

    return data, text


def _timing(args: argparse.Namespace, model: Any) -> Report:
    """``live layers --timing``: per-layer times of the plain network on a seeded random frame."""
    import cv2
    import numpy as np

    from live import profile

    w, h = model.preprocess.size
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    result = profile.profile(model, model.blob(frame), frames=args.frames or profile.DEFAULT_FRAMES)
    data = {
        "model": str(model.path),
        "opencv": cv2.__version__,
        "input_shape": list(model.input_shape),
        **result.to_dict(),
    }
    return data, lambda: f"{printable(model.path.name)}: " + profile.table(result)


def cmd_compare(args: argparse.Namespace) -> Report:
    """``live compare``: one input through two configurations, every layer tappable on both compared."""
    from live import compare
    from live.app import open_model, read_input
    from live.download import ProgressBar
    from live.names import MODEL_FORMATS

    a = compare.Config.parse(args.a, "--a") if args.a else None
    b = compare.Config.parse(args.b, "--b") if args.b else None
    if args.b_model is not None and args.b_model == args.model and a is None and b is None:
        raise UsageError("--b-model names the same model as --model; give another file, or --a and --b")
    kind, data = read_input(args.input)  # a bad input before any model loads
    request = _model_request(args)
    fmt = MODEL_FORMATS.get(Path(args.model).suffix.lower(), "onnx") if args.model else "onnx"
    a, b = compare.default_configs(fmt, a, b, args.b_model is not None)

    def side(key: str, config: Any, model: str | None) -> Any:
        def load(settings: Any) -> Any:
            bar = ProgressBar()
            try:
                return open_model(
                    dataclasses.replace(request, model=model, settings=settings), ask=_ask, progress=bar, warn=_warn
                )
            finally:
                bar.close()

        try:
            return compare.open_side(config, request.settings, load)
        except LiveError as exc:
            raise type(exc)(f"--{key} {config}: {exc}") from exc

    side_a = side("a", a, args.model)
    side_b = side("b", b, args.b_model if args.b_model is not None else args.model)
    blobs = []
    for s in (side_a, side_b):
        blobs.append(s.model.check_blob(data) if kind == "tensor" else s.model.blob(data))
    if blobs[0].shape != blobs[1].shape:
        shapes = [_fmt_shape(blob.shape) for blob in blobs]
        raise UsageError(
            f"--b-model {printable(str(args.b_model))} takes a {shapes[1]} input and the model of side a {shapes[0]}; "
            "the two sides must take the same input"
        )
    for s, blob in zip((side_a, side_b), blobs, strict=True):
        s.measure(blob, args.frames)
    result = compare.compare_sides(side_a, side_b, blobs[0], blobs[1], args.tolerance)
    return result.to_dict(), lambda: compare.table(result, printable)


def cmd_snapshot(args: argparse.Namespace) -> Report:
    """``live snapshot``."""
    from live.app import SnapshotFiles, take_snapshot

    cam = _cam(args)  # option errors before the model loads
    cam_files = {}
    if cam is not None:
        prefix = args.cam_out if args.cam_out is not None else args.out.parent / "cam"
        cam_files = {"cam_png": Path(f"{prefix}.png"), "cam_npy": Path(f"{prefix}.npy")}
    files = SnapshotFiles(out=args.out, npy=args.npy, seen=args.seen, zoom=args.zoom, **cam_files)
    files.check(inputs=[(args.input, "input"), *_model_files(args)])
    grid = _grid(args)  # option errors before the model loads
    model = _open_model(args)
    result = take_snapshot(model, args.input, args.layer, grid, files, cam)
    cam_report = result.get("cam")
    if cam_report and cam_report["note"] and not args.json:
        _note(cam_report["note"])

    def text() -> str:
        g = result["grid"]
        line = (
            f"{printable(result['layer'])} ({printable(result['op'])}) {_fmt_shape(result['shape'])} -> "
            f"{printable(str(args.out))} "
            f"[{g['rows']}x{g['cols']} tiles, {grid.norm}, {grid.cmap}] "
            f"engine {model.engine}, target {model.target}, "
            f"forward {result['timings_ms']['forward']:.1f} ms (first pass)"
        )
        top = "".join(f"\n  {t['score']:6.1%}  {printable(t['label'])}" for t in result["top"])
        if cam_report:
            what = cam_report["label"] or (f"class {cam_report['class']}" if cam_report["class"] is not None else "")
            score = f" ({cam_report['score']:.1%})" if cam_report["score"] is not None else ""
            name = "CAM" if cam_report["method"] == "cam" else "Eigen-CAM"
            top += (
                f"\n{name} at {printable(cam_report['layer'])} {_fmt_shape(cam_report['shape'])}"
                f"{' for ' + what if what else ''}{score} -> {cam_report['png']}, {cam_report['npy']}"
            )
        return line + top

    return result, text


def cmd_analyze(args: argparse.Namespace) -> Report:
    """``live analyze``: top-k frames and statistics per unit, on Dask."""
    from live.analyze import AnalyzeOptions, check_out
    from live.analyze import run as run_analysis
    from live.units import UnitOptions

    options = AnalyzeOptions(
        layers=tuple(args.layer or ()),
        units=UnitOptions(k=args.k, gap_s=args.gap, dead_at=args.dead_at, thumb=args.thumb),
        every=args.every,
        chunk=args.chunk,
        scheduler=args.scheduler,
        workers=args.workers,
        threads=args.threads,
    )
    check_out(args.out)  # before the model loads
    model = _open_model(args)
    quiet = not (args.verbose or os.environ.get("LIVE_DEBUG", "") not in ("", "0"))
    result = run_analysis(model, args.inputs, options, args.out, progress=args.progress, warn=_warn, quiet=quiet)
    report = result.report

    def text() -> str:
        parts = report["parts"]
        layers = ", ".join(f"{printable(name)} ({units} units)" for name, units in report["layers"].items())
        skipped = f", {len(report['skipped'])} skipped" if report["skipped"] else ""
        return (
            f"{report['frames']} frames of {report['files']} files{skipped}; {layers}; "
            f"{parts['total']} part{'s' if parts['total'] != 1 else ''} ({parts['reused']} reused), "
            f"{report['seconds']:.1f} s "
            f"({report['fps']:.1f} frames/s computed) -> {printable(str(args.out / 'index.html'))}"
        )

    return report, text


def _entry(args: argparse.Namespace) -> Any:
    from live.catalog import load_catalog
    from live.names import did_you_mean

    catalog = load_catalog(args.catalog)
    entry = catalog.get(args.name)
    if entry is None:
        hint = did_you_mean(args.name, catalog) or f"known: {', '.join(sorted(catalog))}"
        raise UsageError(f"no model {args.name!r} in the catalog; {hint}")
    return entry


def cmd_models_list(args: argparse.Namespace) -> Report:
    """``live models list``."""
    import cv2

    from live.catalog import cache_dir, is_cached, load_catalog, model_path, opencv_fits

    rows = []
    for name, entry in sorted(load_catalog(args.catalog).items()):
        cached = is_cached(entry)
        rows.append(
            {
                "name": name,
                "title": entry.title,
                "license": entry.license,
                "size": entry.total_size,
                "opencv": entry.opencv,
                "readable": opencv_fits(entry.opencv, cv2.__version__),
                "cached": cached,
                "path": str(model_path(entry)) if cached else None,
                "files": [{"name": f.name, "url": f.url, "sha256": f.sha256, "sha1": f.sha1} for f in entry.files],
            }
        )
    data = {"cache": str(cache_dir()), "models": rows}

    def text() -> str:
        lines = [f"catalog (cache: {data['cache']})"]
        for row in rows:
            size = f"{row['size'] / 1e6:6.1f} MB" if row["size"] else "     ? MB"
            state = "downloaded" if row["cached"] else "-"
            note = "" if row["readable"] else f"  (needs OpenCV {row['opencv']})"
            lines.append(f"  {row['name']:<16} {size}  {state:<10}  {row['title']}{note}")
        return "\n".join(lines)

    return data, text


def cmd_models_download(args: argparse.Namespace) -> Report:
    """``live models download NAME``."""
    from live.download import ProgressBar, download

    entry = _entry(args)
    bar = ProgressBar()
    try:
        path = download(entry, progress=bar, warn=_warn)
    finally:
        bar.close()
    return {"name": entry.name, "path": str(path)}, lambda: f"{entry.name}: {path}"


def cmd_models_path(args: argparse.Namespace) -> Report:
    """``live models path NAME``."""
    from live.catalog import is_cached, model_path

    entry = _entry(args)
    if not is_cached(entry):
        raise UsageError(f"model {entry.name} is not downloaded; run `live models download {entry.name}`")
    path = model_path(entry)
    return {"name": entry.name, "path": str(path)}, lambda: str(path)


def cmd_run(args: argparse.Namespace) -> Report:
    """``live run`` (and plain ``live``): the pipeline, with a window or headless."""
    from live import qt_check
    from live.app import RunOutputs, pick_source, run
    from live.frames import View
    from live.output import check_distinct, check_screenshot_name, check_writable, write_json
    from live.pipeline import MAX_PINS
    from live.sources import SourceOptions

    layers = list(dict.fromkeys(args.layer or ()))
    if len(layers) > MAX_PINS:
        raise UsageError(f"--layer: at most {MAX_PINS} layers can be pinned at once; {len(layers)} given")
    if args.screenshot is not None and args.headless:
        raise UsageError("--screenshot needs the window; drop --headless")
    if args.screenshot is not None and args.frames is None:
        raise UsageError("--screenshot needs --frames N (the screenshot is taken after N results)")
    if args.interval <= 0:
        raise UsageError(f"--interval must be positive, got {args.interval}")
    for path, what in ((args.stats_json, "stats file"), (args.screenshot, "screenshot")):
        if path is not None:
            check_writable(path, what)
    if args.screenshot is not None:
        check_screenshot_name(args.screenshot)
    source_file = [(Path(args.source), "source")] if args.source is not None and Path(args.source).is_file() else []
    check_distinct(
        [(args.record, "recording"), (args.stats_json, "stats file"), (args.screenshot, "screenshot")],
        [*source_file, *_model_files(args)],
    )
    grid = _grid(args)  # option errors now, not in a thread
    cam = _cam(args)
    analysis = _analysis(args)
    source_options = _value(SourceOptions, args)
    outputs = _value(RunOutputs, args)
    qt = None if args.headless else qt_check.start()  # can Qt open a window here? asked while the model loads
    try:
        try:
            model = _open_model(args)
        except KeyboardInterrupt as exc:  # Ctrl-C (SIGTERM, SIGHUP) while the model loads: stop at once, say so
            stopped = {"interrupted": True, "frames": 0, "stage": "loading the model"}
            if isinstance(exc, Interrupted):
                stopped["signal"] = exc.signal_name
            if args.stats_json is not None:
                write_json(args.stats_json, stopped, "stats file")
            if isinstance(exc, Interrupted):
                raise Interrupted(exc.signum, f"{exc.signal_name} while loading the model; nothing ran") from None
            raise KeyboardInterrupt("interrupted while loading the model; nothing ran") from None
        if qt is not None:
            qt.wait()
    finally:
        if qt is not None:
            qt.cancel()
    first = layers[0] if layers else None
    view = View(model.layer(first or _analysis_layer(model, analysis) or model.default_layer).name, grid, cam)
    if len(layers) > 1:  # the first is shown; all are pinned (one forward pass), under the catalog's names
        view = view.replace(pins=tuple(dict.fromkeys(model.layer(name).name for name in layers)))
    if analysis is not None and first is not None and not {first, view.layer} & set(analysis.layers):
        raise UsageError(
            f"--layer {printable(first)}: the analysis {printable(str(args.units))} has no such layer; "
            f"it has {', '.join(printable(name) for name in analysis.layers)}"
        )
    if cam is not None:
        from live.explain import plan

        note = plan(model, cam, view.layer, batch=grid.batch, layout=grid.layout).note  # a bad class, ...: now
        if note and not args.json:
            _note(note)
    source = pick_source(args.source, source_options, _note)
    stats = run(model, source, view, source_options, outputs, headless=args.headless, analysis=analysis)
    failure = stats.get("recording_error") or stats.get("stopped")  # after the stats are written: one error line
    if args.stats_json is not None:
        try:
            write_json(args.stats_json, stats, "stats file")
        except LiveError:
            if failure is None:
                raise
    if failure is not None:
        raise (OutputError if stats.get("recording_error") else LiveError)(failure)

    def text() -> str:
        rate = stats.get("result_fps", stats.get("display_fps", 0.0))
        return (
            f"{stats['frames']} results from {printable(stats['source'])}: forward {stats['forward_fps']:.1f} fps "
            f"(mean {stats['forward_ms']['mean']:.1f} ms, p95 {stats['forward_ms']['p95']:.1f} ms), "
            f"shown {rate:.1f} fps, end-to-end p95 {stats['latency_ms']['p95']:.1f} ms, dropped {stats['dropped']}; "
            f"{stats['engine']}/{stats['backend']}/{stats['target']}, layer {printable(stats['layer'])}"
            + (f", pinned {', '.join(printable(name) for name in stats['pins'])}" if stats.get("pins") else "")
            + (f"; last CAM: {stats['cam_result']['caption']}" if stats.get("cam_result") else "")
        )

    return stats, text


# --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``live`` console script; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", *argv]  # plain `live` opens the window
    closed = _reserve_closed_descriptors()
    args = parser.parse_args(argv)
    debug = os.environ.get("LIVE_DEBUG", "") not in ("", "0")
    log_lines = _LogLines(debug)
    logger = logging.getLogger(PROG)
    logger.addHandler(log_lines)
    try:
        if 1 in closed:
            print(f"{PROG}: error: standard output is closed: nothing could be printed (redirect it)", file=sys.stderr)
            return EXIT_ERROR
        with _signals_end_the_run():
            return _main(args, debug)
    finally:
        logger.removeHandler(log_lines)


def _reserve_closed_descriptors() -> set[int]:
    """Put the null device on descriptors 0, 1 and 2 where they are closed; returns the ones that were.

    Otherwise the next file opened (a recording, a model) would get that
    number, and whatever native code prints to stdout would land in it.
    """
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
    for fd in sorted(closed):
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    return closed


TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
"""Signals that end a run as Ctrl-C does, with the exit status 128 + their number (143, 129)."""


@contextlib.contextmanager
def _signals_end_the_run() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`~live.errors.Interrupted` (a KeyboardInterrupt), SIGINT KeyboardInterrupt.

    Only the first signal does: one arriving while the run shuts down (the
    recording being finalized, the stats written) is ignored, so that no
    clean-up is cut short. The window puts its own handlers in place while
    it runs (:func:`live.qt_window.run_window`).
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        if received:
            return
        received.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, *TERMINATING)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _main(args: argparse.Namespace, debug: bool) -> int:
    """Run the parsed command; errors become one line and an exit status."""
    # Decoders' own complaints about damaged files are noise beside live's one-line error; the window keeps
    # them (Qt explains there why it cannot start), --verbose and LIVE_DEBUG too.
    quiet = not (args.verbose or debug or _opens_window(args))
    try:
        with native_stderr_dropped() if quiet else contextlib.nullcontext():
            data, text = _run_command(args, debug)
        try:
            _emit(args, data, text)
        except BrokenPipeError:  # e.g. `live layers ... | head`
            raise
        except OSError as exc:  # a full disk behind stdout, a terminal gone
            _drop_stdout()
            _say(f"{PROG}: error: cannot write to standard output: {exc.strerror or exc}")
            return EXIT_ERROR
        return _signal_exit(data)
    except LiveError as exc:
        _say(f"{PROG}: error: {printable(str(exc))}")
        return exc.exit_code
    except BrokenPipeError:  # e.g. `live layers ... | head`
        _drop_stdout()
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        _say(f"{PROG}: {printable(str(exc.args[0])) if exc.args else 'interrupted'}")
        return exc.exit_code if isinstance(exc, Interrupted) else EXIT_INTERRUPTED
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if debug:
            raise
        first = str(exc).strip().splitlines()
        _say(
            f"{PROG}: error: {type(exc).__name__}: {printable(first[-1]) if first else ''} "
            "(set LIVE_DEBUG=1 for details)"
        )
        return EXIT_ERROR


def _say(line: str) -> None:
    """One line on stderr; a stderr that is gone (a closed terminal after SIGHUP) is not an error of its own."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def _drop_stdout() -> None:
    """Point descriptor 1 at the null device, so that Python's last flush at exit has nothing to complain about."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def _signal_exit(data: Any) -> int:
    """0, or 128 + the signal's number when SIGTERM or SIGHUP ended the run (its stats say ``"signal"``)."""
    name = data.get("signal") if isinstance(data, dict) else None
    signum = getattr(signal, name, None) if isinstance(name, str) else None
    if signum is None or signum not in TERMINATING:
        return 0
    _say(f"{PROG}: stopped by {name}")
    return 128 + int(signum)


def _run_command(args: argparse.Namespace, debug: bool) -> Report:
    """Set OpenCV up as the flags say, then run the command."""
    from live.engines import configure_opencl

    configure_opencl(args.opencl_device)  # before anything touches OpenCL
    import cv2

    if not (args.verbose or debug):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    if args.threads:
        cv2.setNumThreads(args.threads)
    with native_stdout_to_stderr():
        return args.run(args)
