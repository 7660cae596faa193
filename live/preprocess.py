"""Preprocessing as data: how a BGR frame becomes a network's input blob, and back.

A :class:`Preprocess` is a plain value (size, mean, scale/std, channel swap,
crop mode, layout) that comes from the model file, a model description file
(TOML) and command-line flags, in that order of precedence, lowest first.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import cv2
import numpy as np

from live.errors import UsageError
from live.names import CROPS, LAYOUTS, input_too_large

CROP_FIRST_RATIO = 4.0
"""A center crop whose intermediate resized frame would exceed this many times the input's pixels crops first."""
Crop = Literal["none", "center", "letterbox"]
Layout = Literal["nchw", "nhwc"]

# cv2.dnn's DataLayout values (named DNN_LAYOUT_* on 4.x, unnamed in the 5.0 bindings).
_CV_LAYOUT = {
    "nchw": int(getattr(cv2.dnn, "DNN_LAYOUT_NCHW", 2)),
    "nhwc": int(getattr(cv2.dnn, "DNN_LAYOUT_NHWC", 4)),
}
_CV_PMODE = {
    "none": cv2.dnn.DNN_PMODE_NULL,
    "center": cv2.dnn.DNN_PMODE_CROP_CENTER,
    "letterbox": cv2.dnn.DNN_PMODE_LETTERBOX,
}


def _triple(value: float | Sequence[float], what: str) -> tuple[float, float, float]:
    if isinstance(value, int | float):
        return (float(value),) * 3
    vals = tuple(float(v) for v in value)
    if len(vals) == 1:
        return vals * 3
    if len(vals) != 3:
        raise UsageError(f"{what} needs 1 or 3 numbers, got {list(vals)}")
    return vals  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """How a BGR uint8 frame (H, W, 3) becomes a float32 input blob.

    ``blob = (resize_or_crop(frame)[channels] - mean) * scale``, per channel,
    where channels are in the network's order (RGB when ``rgb`` is true) and
    ``mean`` and ``scale`` are given in that order too, in 0..255 pixel units.

    Attributes:
        size: network input (width, height) in pixels.
        mean: per-channel value subtracted, network channel order.
        scale: per-channel factor applied after subtracting the mean
            (``1 / std``).
        rgb: feed RGB (swap OpenCV's BGR).
        crop: ``none`` (stretch), ``center`` (crop to aspect) or ``letterbox``.
        layout: ``nchw`` -> blob (1, C, H, W); ``nhwc`` -> (1, H, W, C).
        channels: 3 (color) or 1 (gray input, e.g. MNIST).
    """

    size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: tuple[float, float, float] = (1 / 255, 1 / 255, 1 / 255)
    rgb: bool = True
    crop: Crop = "none"
    layout: Layout = "nchw"
    channels: int = 3

    def __post_init__(self) -> None:
        w, h = self.size
        if w <= 0 or h <= 0:
            raise UsageError(f"input size must be positive, got {w}x{h}")
        too_large = input_too_large(w, h)
        if too_large is not None:
            raise UsageError(too_large)
        if self.crop not in CROPS:
            raise UsageError(f"crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
        if self.layout not in LAYOUTS:
            raise UsageError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.channels not in (1, 3):
            raise UsageError(f"channels must be 1 or 3, got {self.channels}")
        if any(s == 0 or not math.isfinite(s) for s in self.scale):
            raise UsageError(f"scale must be finite and non-zero, got {list(self.scale)}")

    def with_overrides(self, values: Mapping[str, Any]) -> Preprocess:
        """A copy with the given fields replaced (``None`` values are ignored).

        Accepts ``std`` as well as ``scale`` (``scale = 1 / std``), and scalars
        or 3-lists for ``mean``, ``scale`` and ``std``.
        """
        fields: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            if key == "size":
                size = tuple(int(v) for v in (value if isinstance(value, Sequence) else (value,)))
                fields["size"] = size * 2 if len(size) == 1 else size[:2]
                if len(size) not in (1, 2):
                    raise UsageError(f"size needs 1 or 2 numbers, got {list(size)}")
            elif key == "mean":
                fields["mean"] = _triple(value, "mean")
            elif key == "scale":
                fields["scale"] = _triple(value, "scale")
            elif key == "std":
                std = _triple(value, "std")
                if any(s == 0 for s in std):
                    raise UsageError(f"std must be non-zero, got {list(std)}")
                fields["scale"] = tuple(1.0 / s for s in std)
            elif key in ("rgb", "crop", "layout", "channels"):
                fields[key] = value
            else:
                raise UsageError(f"unknown preprocessing key {key!r}")
        return dataclasses.replace(self, **fields)

    def _params(self, crop: str | None = None) -> cv2.dnn.Image2BlobParams:
        return cv2.dnn.Image2BlobParams(
            (*self.scale, 0.0),
            self.size,
            (*self.mean, 0.0),
            self.rgb,
            cv2.CV_32F,
            _CV_LAYOUT[self.layout],
            _CV_PMODE[crop or self.crop],
        )

    def center_region(self, frame_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """The centred region (x, y, w, h) of a (width, height) frame to crop before cv2's center crop; None: none.

        cv2's center crop resizes the whole frame to cover the input, then
        crops: a 1x16000 image would become 224x3584000 on the way (12 s and
        2.8 GB). Where that intermediate image would exceed
        :data:`CROP_FIRST_RATIO` times the input's pixels, the region the
        crop keeps (the input's aspect ratio, centred) is cut out first and
        only it is resized. Ordinary frames (a 4:3 frame into a square
        input) keep cv2's exact arithmetic.
        """
        fw, fh = frame_size
        tw, th = self.size
        factor = max(tw / fw, th / fh)
        if fw * fh * factor * factor <= CROP_FIRST_RATIO * tw * th:
            return None
        w = min(fw, max(1, round(tw / factor)))
        h = min(fh, max(1, round(th / factor)))
        return (fw - w) // 2, (fh - h) // 2, w, h

    def blob(self, frame: np.ndarray) -> np.ndarray:
        """Turn a BGR uint8 frame (H, W, 3) (or gray (H, W)) into a float32 blob.

        Returns (1, C, h, w) for ``nchw`` or (1, h, w, C) for ``nhwc``.
        """
        if frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        if self.channels == 1 and frame.ndim == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        elif self.channels == 3 and frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self.crop == "center":  # crop before the resize where needed: the work stays bounded by the input's size
            region = self.center_region((frame.shape[1], frame.shape[0]))
            if region is not None:
                x, y, w, h = region
                return cv2.dnn.blobFromImageWithParams(frame[y : y + h, x : x + w], self._params("none"))
        return cv2.dnn.blobFromImageWithParams(frame, self._params())

    def crop_rect(self, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The region (x, y, w, h) of a frame of (width, height) that the blob shows."""
        x, y, w, h = self._params().blobRectToImageRect((0, 0, *self.size), frame_size)
        return int(x), int(y), int(w), int(h)

    def image(self, blob: np.ndarray) -> np.ndarray:
        """What the network sees: undo scale, mean and channel swap.

        Args:
            blob: float input blob, (1, 3, H, W) for ``nchw`` or (1, H, W, 3)
                for ``nhwc``; (1, 1, H, W) gray works too.
        Returns:
            uint8 BGR image (H, W, 3), values clipped to 0..255.
        """
        arr = np.asarray(blob, dtype=np.float32)[0]
        planes = list(arr) if self.layout == "nchw" else list(cv2.split(np.ascontiguousarray(arr)))
        # Per plane, value / scale + mean rounded and saturated to uint8 in one cv2 call (8x numpy's
        # divide, add, clip and cast through a transposed view: 0.02 against 0.19 ms at 224x224).
        planes = [
            cv2.addWeighted(plane, 1.0 / self.scale[c], plane, 0.0, self.mean[c], dtype=cv2.CV_8U)
            for c, plane in enumerate(planes[:3])
        ]
        if len(planes) == 1:
            planes *= 3
        elif self.rgb:
            planes.reverse()
        return cv2.merge(planes)

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-friendly form."""
        return {
            "size": list(self.size),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "rgb": self.rgb,
            "crop": self.crop,
            "layout": self.layout,
            "channels": self.channels,
        }
