"""Files `live` writes: PNGs, blobs, JSON, snapshots and recordings. Nothing half-written.

Every file is written under a temporary name in its folder and moved into
place when complete; a recording is written to a temporary name and moved
into place when it is closed, so a stopped recording is a playable video.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from live.cam import overlay
from live.errors import UsageError
from live.frames import Result
from live.maps import colorize


def check_writable(path: Path, what: str) -> None:
    """Raise UsageError unless ``path`` can be created in an existing, writable folder."""
    parent = path.parent
    if path.is_dir():
        raise UsageError(f"{what} {path} is a directory")
    if not parent.is_dir():
        raise UsageError(f"cannot write {what} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write {what} {path}: folder {parent} is not writable")


def write_atomic(path: Path, writer: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then move it into place."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        writer(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_image(path: Path, image: np.ndarray, *, rgb: bool = False) -> None:
    """Write a uint8 image (gray, BGR, or RGB with ``rgb=True``) atomically."""

    def write(tmp: Path) -> None:
        data = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if rgb and image.ndim == 3 else image
        if not cv2.imwrite(str(tmp), data):
            raise UsageError(f"OpenCV could not write {path}")

    write_atomic(path, write)


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write an array as .npy atomically (no pickles)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    write_atomic(path, write)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""

    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=2) + "\n")

    write_atomic(path, write)


def zoom_to(rgb: np.ndarray, min_side: int = 256, zoom: int | None = None) -> tuple[np.ndarray, int]:
    """Nearest-neighbour integer upscale so the shorter side is at least ``min_side``."""
    factor = zoom or max(1, -(-min_side // max(1, min(rgb.shape[:2]))))
    if factor > 1:
        rgb = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    return rgb, factor


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "layer"


def cam_picture(result: Result) -> np.ndarray | None:
    """The result's frame with its class activation map over the network's crop (BGR uint8), or None without one."""
    if result.cam is None:
        return None
    return overlay(result.frame.image, result.cam.heat, result.crop)


def write_snapshot(folder: Path, result: Result, extra: dict[str, Any]) -> list[Path]:
    """Write a result's grid PNG (in its view's colormap), raw blob .npy and a JSON of settings and stats.

    With a class activation map in the result, also its overlay on the frame
    (``...-cam.png``) and the map itself (``...-cam.npy``, float32 at the
    layer's resolution), and a ``"cam"`` object in the JSON.

    Args:
        folder: created if missing.
        result: the result to write.
        extra: more JSON (settings, stats) merged into the record.
    Returns:
        The paths written, named ``<time>-<layer>-<frame>.{png,npy,json}``,
        then ``<time>-<layer>-<frame>-cam.{png,npy}`` when there is a map.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create snapshot folder {folder}: {exc.strerror}") from exc
    check_writable(folder / "x.png", "snapshot")
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{_safe(result.layer)}-{result.frame.index:06d}"
    png, npy, meta = (folder / f"{stem}.{ext}" for ext in ("png", "npy", "json"))
    cmap = result.view.grid.cmap
    rgb, zoom = zoom_to(colorize(result.grid, cmap, result.layout))
    write_image(png, rgb, rgb=True)
    write_npy(npy, result.blob)
    cam_files: list[Path] = []
    cam_json = None
    picture = cam_picture(result)
    if picture is not None and result.cam is not None:
        cam_files = [folder / f"{stem}-cam.png", folder / f"{stem}-cam.npy"]
        write_image(cam_files[0], picture)
        write_npy(cam_files[1], result.cam.map)
        cam_json = {**result.cam.to_dict(), "png": cam_files[0].name, "npy": cam_files[1].name}
    write_json(
        meta,
        {
            "layer": result.layer,
            "shape": list(result.blob.shape),
            "frame": result.frame.index,
            "engine": result.engine,
            "backend": result.backend,
            "target": result.target,
            "norm": result.view.grid.norm,
            "cmap": cmap,
            "grid_options": result.view.grid.to_dict(),
            "grid": {"rows": result.layout.rows, "cols": result.layout.cols, "zoom": zoom},
            "value_range": [float(np.nanmin(result.lo)), float(np.nanmax(result.hi))],
            "forward_ms": round(result.forward_ms, 3),
            "files": {"png": png.name, "npy": npy.name},
            "cam": cam_json,
            **extra,
        },
    )
    return [png, npy, meta, *cam_files]


class Recorder:
    """Records colorized grids (and optionally the input beside them) as a video.

    A result with a class activation map is recorded with its frame beside
    the grid, the map drawn over it (as the window shows it), whether or
    not ``with_input`` asks for the frame.

    Frames are written to a temporary file next to ``path``; :meth:`close`
    moves it into place, so what was recorded up to a stop is a valid video.
    The first frame fixes the size; later frames are letterboxed into it.
    """

    FOURCC: ClassVar[dict[str, str]] = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}

    def __init__(self, path: Path, fps: float = 15.0, *, with_input: bool = False) -> None:
        suffix = path.suffix.lower()
        if suffix not in self.FOURCC:
            raise UsageError(f"cannot record to {path}: use one of {', '.join(self.FOURCC)}")
        if not fps > 0:
            raise UsageError(f"recording frame rate must be positive, got {fps}")
        check_writable(path, "recording")
        self.path = path
        self.fps = fps
        self.with_input = with_input
        self.frames = 0
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
        os.close(fd)
        self._tmp = Path(name)
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def _compose(self, result: Result) -> np.ndarray:
        grid = cv2.cvtColor(colorize(result.grid, result.view.grid.cmap, result.layout), cv2.COLOR_RGB2BGR)
        picture = cam_picture(result)
        if not self.with_input and picture is None:
            return grid
        frame = result.frame.image if picture is None else picture
        height = max(grid.shape[0], 1)
        scale = height / frame.shape[0]
        side = cv2.resize(frame, (max(1, round(frame.shape[1] * scale)), height))
        return np.hstack([side, grid])

    def write(self, result: Result) -> None:
        """Append one result's picture (its grid in its view's colormap)."""
        image = self._compose(result)
        if self._writer is None:
            h, w = image.shape[:2]
            self._size = (w + w % 2, h + h % 2)  # even sizes for the codecs
            fourcc = cv2.VideoWriter_fourcc(*self.FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                self._writer = None
                raise UsageError(f"OpenCV cannot write video {self.path}")
        assert self._size is not None
        self._writer.write(_letterbox(image, self._size))
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the video and move it into place; None when nothing was recorded."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            return None
        if self._tmp.exists():
            self._tmp.replace(self.path)
        return self.path


def _letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit a BGR image into (width, height), keeping its aspect, black bars around."""
    w, h = size
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image
    scale = min(w / iw, h / ih)
    nw, nh = max(1, int(iw * scale)), max(1, int(ih * scale))
    canvas = np.zeros((h, w, 3), np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    canvas[y : y + nh, x : x + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_NEAREST)
    return canvas
