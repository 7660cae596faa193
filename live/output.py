"""Files `live` writes: PNGs, blobs, JSON, snapshots and recordings. Nothing half-written, nothing not ours replaced.

Every file is written under a temporary name in its folder and moved into
place when complete; a recording is written to a temporary name and moved
into place when it is closed, so a stopped recording is a playable video.

What an output path may be:

* a regular file, or a new name: replaced atomically, with the user's umask
  (or the mode of the file it replaces);
* a symbolic link: the file it points to is written (the link stays);
* a character device or a FIFO (``/dev/null``, ``/dev/tty``, a named pipe
  that a process reads): written directly, never replaced; ``/dev/stdout``,
  ``/dev/stderr`` and ``/dev/fd/N`` write to those descriptors;
* a directory, a block device or a socket: refused.

Every write is checked: a full disk or an I/O error is an
:class:`~live.errors.OutputError` naming the file (and the folder whose
disk is full), and leaves nothing under the final name.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from live.cam import overlay
from live.errors import OutputError, UsageError
from live.files import cv_name, file_kind, no_space, printable
from live.frames import Result
from live.maps import MAX_GRID_SIZE, colorize

MAX_ZOOM = 64
"""The largest ``--zoom``; the zoomed picture is also kept to :data:`live.maps.MAX_GRID_SIZE` pixels a side."""
MIN_RECORD_FPS = 1.0
MAX_RECORD_FPS = 240.0
"""The recording frame rates accepted: 1 to 240 (a video claiming less or more plays at a default rate)."""
SCREENSHOT_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")
"""What Qt writes a window screenshot as (chosen by the extension)."""
_FD_PATH = re.compile(r"/dev/(stdout|stderr)|/dev/fd/(\d+)|/proc/self/fd/(\d+)")
_stdout_fd = 1


def set_stdout_fd(fd: int) -> int:
    """Make ``/dev/stdout`` outputs go to descriptor ``fd`` (the real stdout while descriptor 1 is redirected).

    Returns the previous one, to put back.
    """
    global _stdout_fd
    previous, _stdout_fd = _stdout_fd, fd
    return previous


def _shown(path: Path) -> str:
    return printable(str(path))


def _descriptor(path: Path) -> int | None:
    """The descriptor that ``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N`` or ``/proc/self/fd/N`` names."""
    match = _FD_PATH.fullmatch(str(Path(path).absolute()))
    if match is None:
        return None
    if match.group(1):
        return _stdout_fd if match.group(1) == "stdout" else 2
    fd = int(match.group(2) or match.group(3))
    return _stdout_fd if fd == 1 else fd


def _resolve(path: Path, what: str) -> tuple[str, Path]:
    """How ``path`` is written: ``("file", target)`` (replaced atomically) or ``("device", target)`` (written to).

    Symbolic links are followed to their target (a dangling link: the file
    it names is created).

    Raises:
        UsageError: a directory, a block device or a socket.
    """
    target = Path(os.path.realpath(path))
    kind = file_kind(target)
    if kind in (None, "missing"):
        return "file", target
    if kind == "a directory":
        raise UsageError(f"{what} {_shown(path)} is a directory")
    if kind in ("a character device", "a FIFO (named pipe)"):
        return "device", target
    raise UsageError(f"{what} {_shown(path)} is {kind}; live writes files, character devices and FIFOs only")


def check_writable(path: Path, what: str) -> None:
    """Raise UsageError unless ``path`` can be written: a file in an existing, writable folder, or a device."""
    fd = _descriptor(path)
    if fd is not None:
        try:
            os.fstat(fd)
        except OSError:
            raise UsageError(f"cannot write {what} {_shown(path)}: descriptor {fd} is not open") from None
        return
    how, target = _resolve(path, what)
    if how == "device":
        if not os.access(target, os.W_OK):
            raise UsageError(f"cannot write {what} {_shown(path)}: not writable")
        return
    parent = target.parent if path.is_symlink() else path.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {what} {_shown(path)}: folder {_shown(parent)} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write {what} {_shown(path)}: folder {_shown(parent)} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"cannot write {what} {_shown(path)}: the file there is not writable")


def check_image_name(path: Path, what: str) -> None:
    """UsageError unless OpenCV can write an image under ``path``'s extension (a device takes PNG)."""
    suffix = path.suffix.lower()
    if not suffix:
        if _descriptor(path) is not None or file_kind(Path(os.path.realpath(path))) not in (None, "missing"):
            return  # a device: written as PNG
        raise UsageError(f"{what} {_shown(path)} has no extension: name it .png (or .jpg, .bmp, .tif, .webp)")
    if not cv_name_ok(suffix) or not cv2.haveImageWriter(f"x{suffix}"):
        raise UsageError(f"cannot write {what} {_shown(path)}: OpenCV writes no {printable(suffix)} images; use .png")


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """What makes two paths the same file: the resolved path, and the (device, inode) of one that exists."""
    fd = _descriptor(path)
    if fd is not None:
        return f"fd:{fd}", None
    real = os.path.realpath(path)
    try:
        info = Path(real).stat()
    except OSError:
        return real, None
    return real, (info.st_dev, info.st_ino)


def check_distinct(outputs: Sequence[tuple[Path | None, str]], inputs: Sequence[tuple[Path | None, str]] = ()) -> None:
    """UsageError when two outputs are the same file, or an output is a file read as input.

    Paths are compared after following symbolic links (and by inode, so a
    hard link counts too); ``/dev/null`` may be given any number of times.

    Args:
        outputs: ``(path, what)`` pairs; None paths are not given.
        inputs: ``(path, what)`` pairs of files read.
    """
    known = [(_identity(path), what, path) for path, what in inputs if path is not None]
    for path, what in outputs:
        if path is None:
            continue
        ident = _identity(path)
        if ident[0] == os.devnull:
            continue
        for other, other_what, other_path in known:
            if other[0] == ident[0] or (other[1] is not None and other[1] == ident[1]):
                same = "" if str(other_path) == str(path) else f" (the same file as {_shown(other_path)})"
                raise UsageError(f"{what} and {other_what} are both {_shown(path)}{same}: give each its own file")
        known.append((ident, what, path))


def check_screenshot_name(path: Path) -> None:
    """UsageError unless Qt can write a window screenshot to ``path`` (its extension, a UTF-8 name)."""
    if path.suffix.lower() not in SCREENSHOT_EXTENSIONS:
        raise UsageError(f"screenshot {_shown(path)}: name it {', '.join(SCREENSHOT_EXTENSIONS)}")
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"screenshot {_shown(path)}: the name is not valid UTF-8, which Qt cannot write") from None


def cv_name_ok(text: str) -> bool:
    """Whether ``text`` is plain ASCII letters, digits and dots (safe to hand to cv2 as an extension)."""
    return re.fullmatch(r"\.[A-Za-z0-9]+", text) is not None


def default_mode() -> int:
    """The mode a new file gets: 0o666 less the process umask."""
    mask = None
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    mask = int(line.split()[1], 8)
                    break
    except (OSError, ValueError):
        mask = None
    if mask is None:  # not Linux: read it by setting it (and back)
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def _mode_for(target: Path) -> int:
    """The mode of the regular file at ``target`` (it is replaced), else :func:`default_mode`."""
    try:
        info = target.stat()
    except OSError:
        return default_mode()
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else default_mode()


def write_failed(what: str, path: Path, exc: OSError) -> str:
    """The one-line message for a write of ``what`` to ``path`` that failed with ``exc``."""
    if no_space(exc):
        folder = Path(os.path.realpath(path)).parent
        return f"cannot write {what} {_shown(path)}: no space left on the device of folder {_shown(folder)}"
    return f"cannot write {what} {_shown(path)}: {exc.strerror or exc}"


def write_atomic(path: Path, writer: Callable[[Path], None], what: str = "file") -> None:
    """Write through a temporary file in the same folder, then move it into place (see the module's rules).

    Raises:
        OutputError: the write failed (a full disk names the folder); nothing is left under ``path``.
        UsageError: ``path`` is a directory, a block device or a socket.
    """
    try:
        fd = _descriptor(path)
        if fd is not None:
            _write_direct(writer, fd=fd)
            return
        how, target = _resolve(path, what)
        if how == "device":
            _write_direct(writer, device=target)
        else:
            _replace(target, writer)
    except OSError as exc:
        raise OutputError(write_failed(what, path, exc)) from exc


def _replace(target: Path, writer: Callable[[Path], None]) -> None:
    """Write a temporary file beside ``target``, flush it to the disk, give it its mode, move it over ``target``."""
    mode = _mode_for(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        writer(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.chmod(mode)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_direct(writer: Callable[[Path], None], *, fd: int | None = None, device: Path | None = None) -> None:
    """Write what ``writer`` makes to an open descriptor or into a device or FIFO (never replacing it)."""
    with tempfile.TemporaryDirectory(prefix="live-out-") as folder:
        tmp = Path(folder) / "out"
        writer(tmp)
        data = tmp.read_bytes()
    if fd is not None:
        _write_all(fd, data)
        return
    assert device is not None
    flags = os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    if file_kind(device) == "a FIFO (named pipe)":
        try:  # never wait for a reader that does not come
            out = os.open(device, flags | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nobody has the FIFO open for reading
                raise OSError(exc.errno, "no process reads from that FIFO") from None
            raise
        os.set_blocking(out, True)
    else:
        out = os.open(device, flags)
    try:
        _write_all(out, data)
    finally:
        os.close(out)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_image(path: Path, image: np.ndarray, *, rgb: bool = False, what: str = "image") -> None:
    """Write a uint8 image (gray, BGR, or RGB with ``rgb=True``) atomically, encoded by its extension (a device: PNG).

    Raises:
        UsageError: OpenCV writes no image of that extension.
        OutputError: the write failed.
    """
    suffix = path.suffix.lower() or ".png"
    if not cv_name_ok(suffix) or not cv2.haveImageWriter(f"x{suffix}"):
        raise UsageError(f"cannot write {what} {_shown(path)}: OpenCV writes no {printable(suffix)} images; use .png")
    data = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if rgb and image.ndim == 3 else image
    try:
        ok, encoded = cv2.imencode(suffix, data)
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError(f"OpenCV could not encode {what} {_shown(path)} ({data.shape[1]}x{data.shape[0]})")
    payload = encoded.tobytes()
    write_atomic(path, lambda tmp: tmp.write_bytes(payload), what)


def write_npy(path: Path, array: np.ndarray, what: str = "blob file") -> None:
    """Write an array as .npy atomically (no pickles)."""

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()  # numpy's own file writes lose the errno (a full disk): write the bytes ourselves
        np.save(buffer, array, allow_pickle=False)
        tmp.write_bytes(buffer.getbuffer())

    write_atomic(path, write, what)


def write_json(path: Path, data: Any, what: str = "JSON file") -> None:
    """Write JSON atomically."""

    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=2) + "\n")

    write_atomic(path, write, what)


def zoom_to(rgb: np.ndarray, min_side: int = 256, zoom: int | None = None) -> tuple[np.ndarray, int]:
    """Nearest-neighbour integer upscale so the shorter side is at least ``min_side`` (or ``zoom`` times).

    The result is at most :data:`live.maps.MAX_GRID_SIZE` pixels a side: the
    automatic factor stops there, an explicit ``zoom`` beyond it is refused.

    Raises:
        UsageError: ``zoom`` would make a bigger picture than that.
    """
    h, w = rgb.shape[:2]
    fits = max(1, MAX_GRID_SIZE // max(1, h, w))
    if zoom is not None and zoom > fits:
        raise UsageError(
            f"--zoom {zoom} would make the {w}x{h} grid {w * zoom}x{h * zoom} pixels; the most is {MAX_GRID_SIZE} "
            f"a side (--zoom {fits} or less)"
        )
    factor = zoom or min(fits, max(1, -(-min_side // max(1, min(h, w)))))
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
    With layers pinned, also each other pinned layer's grid PNG and raw
    blob (``...-pin<i>-<layer>.{png,npy}``, ``i`` its place among the grids
    shown side by side), and a ``"pinned"`` list in the JSON: ``{"layer",
    "shape", "png", "npy", "value_range"}`` for every pinned layer (the
    shown one's entry names the main files).

    Returns:
        The paths written, named ``<time>-<layer>-<frame>.{png,npy,json}``,
        then ``<time>-<layer>-<frame>-cam.{png,npy}`` when there is a map,
        then the pinned layers' ``.png`` and ``.npy``.
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
    pin_files: list[Path] = []
    pinned_json = []
    for i, pin in enumerate(result.pinned):
        if pin.layer == result.layer:
            files = (png, npy)
        else:
            files = (folder / f"{stem}-pin{i}-{_safe(pin.layer)}.png", folder / f"{stem}-pin{i}-{_safe(pin.layer)}.npy")
            pin_rgb, _ = zoom_to(colorize(pin.grid, cmap, pin.layout))
            write_image(files[0], pin_rgb, rgb=True)
            write_npy(files[1], pin.blob)
            pin_files += files
        pinned_json.append(
            {
                "layer": pin.layer,
                "shape": list(pin.blob.shape),
                "png": files[0].name,
                "npy": files[1].name,
                "value_range": [float(np.nanmin(pin.lo)), float(np.nanmax(pin.hi))],
            }
        )
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
            "pinned": pinned_json,
            **extra,
        },
    )
    return [png, npy, meta, *cam_files, *pin_files]


class Recorder:
    """Records colorized grids (and optionally the input beside them) as a video.

    Frames are written to a temporary file next to ``path`` (next to its
    target when ``path`` is a symbolic link); :meth:`close` checks that the
    video opens and holds its frames, then moves it into place, so what was
    recorded up to a stop is a valid video. The first frame fixes the size;
    later frames are letterboxed into it.

    A write that fails (a full disk) stops the recording: :meth:`write`
    raises :class:`~live.errors.OutputError`, the temporary file is removed
    and nothing is put under ``path`` (a file already there stays as it
    was); :attr:`error` keeps the message. A video that does not verify at
    :meth:`close` is removed the same way.

    A result with a class activation map is recorded with its frame beside
    the grid, the map drawn over it (as the window shows it), whether or
    not ``with_input`` asks for the frame.
    """

    FOURCC: ClassVar[dict[str, str]] = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}

    def __init__(self, path: Path, fps: float = 15.0, *, with_input: bool = False) -> None:
        suffix = path.suffix.lower()
        if suffix not in self.FOURCC:
            raise UsageError(f"cannot record to {_shown(path)}: use one of {', '.join(self.FOURCC)}")
        if not (math.isfinite(fps) and MIN_RECORD_FPS <= fps <= MAX_RECORD_FPS):
            raise UsageError(f"recording frame rate must be {MIN_RECORD_FPS:g} to {MAX_RECORD_FPS:g}, got {fps}")
        check_writable(path, "recording")
        how, target = _resolve(path, "recording")
        if how != "file" or _descriptor(path) is not None:
            raise UsageError(f"cannot record to {_shown(path)}: it is {file_kind(target)}; a recording goes to a file")
        self.path = path
        self.fps = fps
        self.with_input = with_input
        self.frames = 0
        self.error: str | None = None
        self._target = target
        self._mode = _mode_for(target)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
        os.close(fd)
        self._tmp = Path(name)
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._closed = False

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
        """Append one result's picture (its grid in its view's colormap).

        Raises:
            UsageError: OpenCV cannot write this kind of video.
            OutputError: the frame could not be written (the recording is over, nothing kept).
        """
        if self.error is not None:
            raise OutputError(self.error)
        if self._closed:  # a new writer would start the temporary file again, and close() then move it over
            raise OutputError(f"recording {_shown(self.path)} is finished; no frame can be added to it")
        image = self._compose(result)
        if self._writer is None:
            h, w = image.shape[:2]
            self._size = (w + w % 2, h + h % 2)  # even sizes for the codecs
            fourcc = cv2.VideoWriter_fourcc(*self.FOURCC[self.path.suffix.lower()])
            with cv_name(self._tmp) as name:
                self._writer = cv2.VideoWriter(name, fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                self._writer = None
                if self._disk_full():
                    self._fail("no space left on the device of folder " + _shown(self._target.parent))
                raise UsageError(f"OpenCV cannot write video {_shown(self.path)}")
        assert self._size is not None
        written = self._writer.write(_letterbox(image, self._size))
        if written is False:  # OpenCV 5 says so; 4.x returns None (checked at close instead)
            reason = (
                "no space left on the device of folder " + _shown(self._target.parent)
                if self._disk_full()
                else f"OpenCV could not write frame {self.frames + 1}"
            )
            self._fail(reason)
        self.frames += 1

    def _disk_full(self) -> bool:
        """Whether the disk of the recording's folder has no block left (for this user)."""
        try:
            info = os.statvfs(self._target.parent)
        except OSError:
            return False
        free = info.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else info.f_bavail
        return free == 0

    def _fail(self, reason: str) -> None:
        """Stop: release the writer, remove the temporary file, remember and raise the error."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._tmp.unlink(missing_ok=True)
        self.error = f"recording {_shown(self.path)} failed after {self.frames} frame(s): {reason}; nothing was kept"
        raise OutputError(self.error)

    def _verify(self) -> str | None:
        """Why the finished temporary video is not playable with all its frames, or None when it is."""
        if self._disk_full():
            return "no space left on the device of folder " + _shown(self._target.parent)
        with cv_name(self._tmp) as name:
            cap = cv2.VideoCapture(name)
            try:
                if not cap.isOpened() or not cap.read()[0]:
                    return "the video OpenCV wrote does not open (its end was not written)"
                count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            finally:
                cap.release()
        if math.isfinite(count) and 0 < count < self.frames - 1:  # containers without a count estimate it
            return f"the video OpenCV wrote holds {int(count)} of its {self.frames} frames"
        return None

    def close(self) -> Path | None:
        """Finish the video, check it and move it into place; None when nothing was recorded or it failed.

        Never raises: a failure is in :attr:`error` (the caller reports it).
        """
        self._closed = True
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.error is not None or self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            return None
        if not self._tmp.exists():
            return self.path if self._target.exists() else None  # closed before: already in place
        reason = self._verify()
        try:
            if reason is None:
                self._tmp.chmod(self._mode)
                self._tmp.replace(self._target)
                return self.path
        except OSError as exc:
            reason = write_failed("recording", self.path, exc)
        self._tmp.unlink(missing_ok=True)
        self.error = f"recording {_shown(self.path)} failed after {self.frames} frame(s): {reason}; nothing was kept"
        return None


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
