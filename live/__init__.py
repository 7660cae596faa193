"""live: watch what a convolutional network sees, while it sees it.

The Python API (see :mod:`live.api`)::

    import live
    net = live.Network("model.onnx")
    taps = net.tap(image_bgr, ["conv1", "fc"])
    maps = live.feature_maps(taps["conv1"])
    rgb = live.grid(taps["conv1"], norm="layer", cmap="viridis")
    cam = net.cam(image_bgr)           # where it looks: .map .label .score; net.cam_overlay(image_bgr, cam)
    units = live.analyze("model.onnx", ["conv1"], ["clip.mp4"], out="analysis")  # top-k frames per unit, on Dask

``Network``, ``analyze``, ``feature_maps``, ``grid``, ``GridOptions`` and ``CamResult`` are imported
on first use, so that ``import live.errors`` (or the command line's start) does
not load OpenCV and onnx before it needs them.
"""

from __future__ import annotations

from typing import Any

from live.errors import BackendError, DownloadError, LayerError, LiveError, ModelError, SourceError, UsageError

__version__ = "0.1.0"
__all__ = [
    "BackendError",
    "CamResult",
    "DownloadError",
    "GridOptions",
    "LayerError",
    "LiveError",
    "ModelError",
    "Network",
    "SourceError",
    "UsageError",
    "analyze",
    "feature_maps",
    "grid",
]
_LAZY = {
    "Network": "live.api",
    "feature_maps": "live.api",
    "grid": "live.api",
    "GridOptions": "live.maps",
    "CamResult": "live.cam",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "analyze":  # the module live/analyze.py, which calls live.api.analyze when called
        return importlib.import_module("live.analyze")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'live' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
