"""Names shared by several rooms, written once: model formats, crop and layout modes, "did you mean".

The command line builds its ``choices`` and help texts from these tables,
the catalog and the model description file validate against them, and every
"unknown name" message suggests the nearest names the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

MODEL_FORMATS: dict[str, str] = {
    ".onnx": "onnx",
    ".tflite": "tflite",
    ".pb": "tensorflow",
    ".pbtxt": "tensorflow",
    ".prototxt": "caffe",
    ".caffemodel": "caffe",
}
"""Model file suffix -> format."""
MODEL_SUFFIXES: tuple[str, ...] = tuple(MODEL_FORMATS)

CROPS: tuple[str, ...] = ("none", "center", "letterbox")
"""How a frame is fitted to the network input: stretch, center crop, letterbox."""
LAYOUTS: tuple[str, ...] = ("nchw", "nhwc")
"""Input blob layouts."""
MAX_INPUT_PIXELS = 4096 * 4096
"""The most pixels (width x height) of a network input ``live`` feeds: a 192 MiB float32 RGB blob."""


def input_too_large(width: int, height: int) -> str | None:
    """Why a network input of ``width`` x ``height`` is refused (over :data:`MAX_INPUT_PIXELS`), or None."""
    if width * height <= MAX_INPUT_PIXELS:
        return None
    return (
        f"a {width}x{height} network input is {width * height} pixels; the most live feeds a network is "
        f"{MAX_INPUT_PIXELS} (4096x4096, a {MAX_INPUT_PIXELS * 3 * 4 // 2**20} MiB float32 blob)"
    )


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The (up to ``n``) candidates nearest to ``name``; case is ignored when exact case finds none."""
    pool = list(candidates)
    near = difflib.get_close_matches(name, pool, n=n, cutoff=0.5)
    if near:
        return near
    lowered: dict[str, str] = {}
    for candidate in pool:
        lowered.setdefault(candidate.lower(), candidate)
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)]


def did_you_mean(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """``"did you mean a, b?"`` for the names nearest to ``name``, or ``""`` when none is near."""
    near = close_matches(name, candidates, n)
    return f"did you mean {', '.join(near)}?" if near else ""
