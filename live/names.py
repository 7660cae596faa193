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
