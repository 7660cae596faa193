"""Engines, backends and targets: what the installed cv2.dnn offers, and which to use for a request.

The facts this policy rests on (measured; see DESIGN.md):

* OpenCV 5 has two engines. The new graph engine runs on the CPU only and
  ignores ``setPreferableTarget``; the classic engine serves OpenCL targets
  (and is the only engine of 4.x). The new engine crashes on some TFLite
  files, so TFLite goes to the classic engine where there is one.
* cv2.dnn uses OpenCL on GPUs only: on another device (PoCL's CPU device)
  it logs "switching to CPU" and quietly runs on the CPU unless
  ``OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES`` is set. :func:`effective_target`
  makes the same checks beforehand, so ``live`` reports the device the work
  really runs on.

The command line builds its choices and help texts from :data:`ENGINES`,
:data:`BACKENDS` and :data:`TARGETS`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import cv2

from live.errors import BackendError, ModelError

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

HAS_ENGINES = hasattr(cv2.dnn, "ENGINE_NEW") or hasattr(cv2.dnn, "ENGINE_OPENCV")
"""Whether this OpenCV has the new graph engine and an engine argument to its readers (5.x); 4.x has neither.

OpenCV 5.0 names its engines ``ENGINE_NEW`` and ``ENGINE_CLASSIC``; 5.1
removed the classic engine and calls the new one ``ENGINE_OPENCV`` (beside
``ENGINE_ORT``, ONNX Runtime, in builds made with it).
"""
HAS_CLASSIC = not HAS_ENGINES or hasattr(cv2.dnn, "ENGINE_CLASSIC")
"""Whether this OpenCV still has the classic engine (4.x and 5.0; 5.1 removed it)."""
ENGINE_IDS: dict[str, int | None] = {
    "new": getattr(cv2.dnn, "ENGINE_NEW", getattr(cv2.dnn, "ENGINE_OPENCV", None)),
    "classic": getattr(cv2.dnn, "ENGINE_CLASSIC", None),
}
READERS = {"tensorflow": "readNetFromTensorflow", "caffe": "readNetFromCaffe"}
"""The cv2.dnn reader each format other than ONNX and TFLite needs; OpenCV 5 drops them (Caffe in 5.0, TF in 5.1)."""


def engine_of(net: Any) -> str:
    """The engine a cv2 net really runs on: ``new`` or ``classic``.

    The classic engine keeps an explicit input layer (``__NetInputLayer__``);
    the new graph engine has none. OpenCV 4.x has only the classic engine.
    """
    if not HAS_ENGINES:
        return "classic"
    if not HAS_CLASSIC:
        return "new"
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
    """The default OpenCL device OpenCV would use (name, vendor, version, type, fp16), or None."""
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


def allows_all_devices() -> bool:
    """Whether cv2.dnn was told to use non-GPU OpenCL devices (``OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES``)."""
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
    if dev["type"] != "gpu" and not allows_all_devices():
        return "cpu", (
            f"cv2.dnn runs OpenCL on GPUs only and {dev['name']} is a {dev['type']} device "
            "(pass --opencl-device :CPU: to allow it)"
        )
    if requested == "opencl_fp16" and not dev["fp16"]:
        return "opencl", f"OpenCL device {dev['name']} has no float16 support"
    return requested, None


@dataclasses.dataclass(frozen=True)
class Choice:
    """What runs a model: engine, backend and target really in use, and the notes that explain them.

    Attributes:
        engine: ``new`` or ``classic``.
        backend: a :data:`BACKENDS` name.
        target: a :data:`TARGETS` name, after any fallback (what really runs).
        requested_target: the target asked for.
        notes: one line per decision worth telling the user.
    """

    engine: str
    backend: str
    target: str
    requested_target: str
    notes: tuple[str, ...] = ()


def choose(fmt: str, engine: str, backend: str, target: str, fallback: bool, model_name: str) -> Choice:
    """Pick the engine and the target for a model file of format ``fmt`` and a request.

    Args:
        fmt: ``onnx``, ``tflite``, ``tensorflow`` or ``caffe``.
        engine: an :data:`ENGINES` name (``auto`` decides).
        backend: a :data:`BACKENDS` name.
        target: a :data:`TARGETS` name.
        fallback: run on the CPU (saying so) when the target is not available.
        model_name: named in messages.
    Raises:
        BackendError: an unknown name, an engine this OpenCV lacks, or a
            target that cannot be used (without ``fallback``).
        ModelError: a Caffe model on an OpenCV without the Caffe importer.
    """
    notes: list[str] = []
    if engine not in ENGINES:
        raise BackendError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if target not in TARGETS:
        raise BackendError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    have = engines_available()
    if engine != "auto" and engine not in have:
        raise BackendError(f"engine {engine!r} is not in OpenCV {cv2.__version__} (it has: {', '.join(have)})")
    if engine == "new" and target != "cpu":
        raise BackendError(
            f"the new engine runs on the CPU only and ignores --target {target}; use --engine classic or --engine auto"
        )
    if engine == "new" and fmt != "onnx" and HAS_CLASSIC:
        raise BackendError(f"live uses the new engine for ONNX only; {model_name} is {fmt}")
    if engine != "auto":
        chosen = engine
    elif "new" not in have:
        chosen = "classic"
    elif fmt != "onnx":
        chosen = "classic" if HAS_CLASSIC else "new"
        if fmt == "tflite" and HAS_CLASSIC:
            notes.append("engine: classic (the new engine crashes on some TFLite models)")
    elif target != "cpu" and HAS_CLASSIC:
        chosen = "classic"
        notes.append(f"engine: classic (the new engine ignores --target {target})")
    else:
        chosen = "new"
    if fmt == "caffe" and not hasattr(cv2.dnn, READERS[fmt]):
        raise ModelError(
            f"OpenCV {cv2.__version__} cannot read Caffe models ({model_name}); "
            "use the ONNX version of this network (e.g. the ONNX model zoo's googlenet), "
            "or opencv-python-headless 4.x"
        )
    if fmt == "tensorflow" and not hasattr(cv2.dnn, READERS[fmt]):
        raise ModelError(
            f"OpenCV {cv2.__version__} cannot read TensorFlow models ({model_name}); "
            "convert it to ONNX (tf2onnx), or use opencv-python-headless 4.x or 5.0"
        )
    if fmt != "onnx" and chosen == "new":
        notes.append(
            f"taps: only the outputs of {model_name} (OpenCV {cv2.__version__} has no classic engine, and the new "
            "engine's forward(layer name) can return another tensor; an ONNX version taps any layer)"
        )
    actual, why = effective_target(target)
    if actual != target and chosen == "new":
        why = why or "the new engine runs on the CPU only"
    if why is not None:
        if not fallback:
            raise BackendError(f"target {target!r} is not available: {why}")
        notes.append(f"target: {target} -> {actual} ({why})")
    if actual != "cpu" and chosen == "new":
        raise BackendError(f"target {actual!r} needs the classic engine, which OpenCV {cv2.__version__} lacks")
    return Choice(chosen, backend, actual, target, tuple(notes))


def configure(net: Any, choice: Choice) -> Any:
    """Set a classic-engine net's backend and target (the new engine ignores both and warns on each call)."""
    if choice.engine == "new":
        return net
    net.setPreferableBackend(BACKENDS[choice.backend][0])
    net.setPreferableTarget(TARGETS[choice.target][0])
    return net


def cv_message(exc: cv2.error) -> str:
    """The useful line of a cv2.error (the one after 'error: (-N:...)')."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in reversed(lines):
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return lines[-1] if lines else "unknown OpenCV error"


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines (the layer probe expects and handles failures)."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)
