"""Frame sources behind one small interface: camera, video file, image, folder, stream, demo.

Every source delivers :class:`Frame` objects holding a BGR uint8 image
(H, W, 3), C-contiguous and owned by the frame. A source is used by one
thread only (the capture thread): it calls :meth:`Source.open`, then
:meth:`Source.read` until that returns ``None``, then :meth:`Source.close`;
so sources hold no locks (a source may move between threads, never be
used by two at once). Files, images, folders and the synthetic demo are
paced (``read`` sleeps until the next frame is due); cameras and streams are
paced by the device or the network.

:func:`open_source` turns a command-line spec (``0``, ``clip.mp4``,
``photos/``, ``rtsp://...``, ``demo``) into a source without opening it.
Failures to use a source raise :class:`live.errors.SourceError` with a
one-line message naming it; invalid option values raise
:class:`live.errors.UsageError`.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import math
import re
import struct
import time
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from live.assets import data_file
from live.errors import SourceError, UsageError
from live.files import check_regular, cv_name, cv_safe, file_kind, printable
from live.frames import Frame

log = logging.getLogger("live.sources")

Pace = Literal["file", "max"]
PACES: tuple[str, ...] = ("file", "max")
KINDS: tuple[str, ...] = ("camera", "video", "image", "folder", "stream", "demo")
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
STREAM_SCHEMES: tuple[str, ...] = ("rtsp", "rtsps", "http", "https", "udp", "tcp", "rtmp")
FALLBACK_FPS = 25.0  # a video file whose frame rate is missing, 0 or absurd plays at this rate
MAX_FPS = 1000.0  # above this, a file's frame rate is taken as absurd
MIN_FPS = 1.0  # below this too (a header claiming one frame per hour): it plays at FALLBACK_FPS, with a warning
MAX_IMAGE_PIXELS = 1 << 26  # the largest image decoded: 67 megapixels (8192x8192), 192 MiB as BGR
MAX_IMAGE_BYTES = 256 * 1024 * 1024  # the largest image file read
SLIDE_FPS = 15.0  # rate at which a folder slideshow repeats the current image
MAX_SKIP = 100  # undecodable frames in a row a video skips before it gives up on the rest of the file
END_SLACK = 2  # failed reads this close to a video's announced end are its frame count being off, not damage
DEMO_CLIP = "demo.mp4"


class Source(abc.ABC):
    """A source of frames; also a context manager (``with`` opens and closes it).

    Attributes:
        name: human description, e.g. ``camera 0``, ``video clip.mp4``.
        kind: one of :data:`KINDS`.
        fps: nominal frame rate when known, else ``None``.
        skipped: frames that could not be decoded and were passed over so far
            (a damaged video counts them; other sources leave it at 0).
    """

    name: str
    kind: str
    fps: float | None
    skipped: int

    def __init__(self, name: str, kind: str, fps: float | None = None) -> None:
        self.name = name
        self.kind = kind
        self.fps = fps
        self.skipped = 0
        self._delivered = 0

    @abc.abstractmethod
    def open(self) -> None:
        """Acquire the source; raise :class:`SourceError` when it cannot be used."""

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """Block until the next frame is due and return it; ``None``: ended for good, or not open."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the source. Idempotent, and safe after a failed :meth:`open`."""

    def _frame(self, image: np.ndarray, pos_ms: float | None = None) -> Frame:
        """Wrap an owned image as the next frame, stamped now."""
        frame = Frame(_as_bgr(image), self._delivered, time.perf_counter(), pos_ms)
        self._delivered += 1
        return frame

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# --------------------------------------------------------------------------
# Helpers


class _Pacer:
    """A deadline schedule: frame k is due at ``start + k / fps``.

    When a caller is late by more than one frame period, the schedule restarts
    from now instead of delivering a burst of overdue frames.
    """

    def __init__(self, fps: float | None) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self._due: float | None = None

    def wait(self) -> None:
        """Sleep until the next frame is due, then move the deadline one period on."""
        if not self.period:
            return
        now = time.perf_counter()
        if self._due is None or now - self._due > self.period:
            self._due = now
        elif self._due > now:
            time.sleep(self._due - now)
        self._due += self.period

    def reset(self) -> None:
        """Deliver the next frame at once and schedule from there."""
        self._due = None


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """Any image OpenCV returns, as (H, W, 3) uint8 BGR, C-contiguous."""
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0 if image.dtype == np.uint16 else 1.0)
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def _pos_ms(cap: cv2.VideoCapture) -> float | None:
    pos = cap.get(cv2.CAP_PROP_POS_MSEC)
    return float(pos) if math.isfinite(pos) and pos >= 0 else None


def _nominal_fps(cap: cv2.VideoCapture) -> float | None:
    """The capture's frame rate, or ``None`` when it is missing, 0 or absurd (below MIN_FPS or above MAX_FPS)."""
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS else None


def _absurd_fps(cap: cv2.VideoCapture) -> float | None:
    """The frame rate a file claims when it is given but absurd (a header saying one frame per hour), else None."""
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if math.isfinite(fps) and fps > 0 and not MIN_FPS <= fps <= MAX_FPS else None


def _read(cap: cv2.VideoCapture) -> np.ndarray | None:
    """One frame from a capture, or ``None`` (a cv2.error counts as a failed read)."""
    try:
        ok, image = cap.read()
    except cv2.error as exc:
        log.warning("reading a frame failed: %s", str(exc).strip().splitlines()[-1])
        return None
    return image if ok and image is not None and image.size else None


def _release(cap: cv2.VideoCapture | None) -> None:
    if cap is not None:
        cap.release()


def _check_pace(pace: str) -> None:
    if pace not in PACES:
        raise UsageError(f"pace must be one of {', '.join(PACES)}, got {pace!r}")


def _check_positive(value: float, what: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{what} must be positive, got {value}")


def _decode_image(path: Path) -> np.ndarray | None:
    """Decode an image file (bytes read in Python, so non-ASCII paths work everywhere); None when it cannot be."""
    image = _load_image(path)
    return None if isinstance(image, str) else image


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) an image file's header declares (PNG, JPEG, BMP, GIF, WebP, PNM), or None when not known."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data.startswith(b"BM") and len(data) >= 26:
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        match = re.match(rb"P[1-7]\s+(?:#[^\n]*\n\s*)*(\d+)\s+(?:#[^\n]*\n\s*)*(\d+)", data[:4096])
        if match:
            return int(match.group(1)), int(match.group(2))
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame marker."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def read_image(path: Path, what: str = "image") -> np.ndarray:
    """Read and decode an image file as BGR uint8 (H, W, 3), within the pixel and byte bounds.

    The bounds: :data:`MAX_IMAGE_PIXELS` and :data:`MAX_IMAGE_BYTES`.

    The bytes are read in Python (any file name works, cv2 never sees it);
    the header's size is checked before anything is decoded.

    Raises:
        SourceError: missing, not a regular file (a FIFO, a device, a
            folder), too large, or not an image OpenCV can read.
    """
    check_regular(path, what, SourceError)
    image = _load_image(path)
    if isinstance(image, str):
        raise SourceError(f"{printable(str(path))} {image}")
    return image


def _load_image(path: Path) -> np.ndarray | str:
    """The decoded image, or why it cannot be decoded (``"is not an image OpenCV can read"``)."""
    if check_kind := _not_regular(path):
        return check_kind
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if len(data) > MAX_IMAGE_BYTES:
        return f"is larger than {MAX_IMAGE_BYTES // 2**20} MiB, the most live reads as an image"
    if not data:
        return "is not an image OpenCV can read (the file is empty)"
    size = image_size(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        return (
            f"declares {size[0]}x{size[1]} pixels; the most live decodes is {MAX_IMAGE_PIXELS} "
            f"({MAX_IMAGE_PIXELS // 2**20} megapixels)"
        )
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        if "MAX_IMAGE_PIXELS" in str(exc):
            return "is larger than OpenCV decodes (its header declares over a gigapixel)"
        image = None
    if image is None or not image.size:
        return "is not an image OpenCV can read"
    return _as_bgr(image)


def _not_regular(path: Path) -> str | None:
    """``"is a FIFO (named pipe), not a file"`` and the like, or None for a regular file."""
    kind = file_kind(path)
    if kind is None:
        return None
    return "does not exist" if kind == "missing" else f"is {kind}, not a file"


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for names and messages)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


# --------------------------------------------------------------------------
# Sources


class _CaptureSource(Source):
    """A source read through one ``cv2.VideoCapture``, whose first frame is read when it opens."""

    def __init__(self, name: str, kind: str) -> None:
        super().__init__(name, kind)
        self._cap: cv2.VideoCapture | None = None
        self._first: np.ndarray | None = None
        self._ended = False

    def close(self) -> None:
        """Release the device, connection or file."""
        _release(self._cap)
        self._cap = None
        self._first = None


class _DeviceSource(_CaptureSource):
    """A live capture (camera or stream): the first frame is read on open, a failed read ends it.

    Ended, it can be opened again (the pipeline does so, with backoff, when a
    camera or stream drops mid-run).
    """

    def _start(self, cap: cv2.VideoCapture | None, not_open: str, no_frame: str) -> None:
        """Adopt an opened capture and keep its first frame; SourceError when either fails."""
        self._cap = cap
        if cap is None or not cap.isOpened():
            self.close()
            raise SourceError(not_open)
        first = _read(cap)
        if first is None:
            self.close()
            raise SourceError(no_frame)
        self._first = first
        self._ended = False
        self.fps = _nominal_fps(cap)

    def read(self) -> Frame | None:
        """The next frame as it arrives; ``None`` when a read fails (the caller may reopen)."""
        if self._cap is None or self._ended:
            return None
        image, self._first = self._first, None
        if image is None:
            image = _read(self._cap)
        if image is None:
            self._ended = True
            return None
        return self._frame(image, _pos_ms(self._cap))


class CameraSource(_DeviceSource):
    """A local camera by index (``cv2.VideoCapture(index)``); paced by the device."""

    def __init__(self, index: int) -> None:
        if index < 0:
            raise UsageError(f"camera index must be >= 0, got {index}")
        super().__init__(f"camera {index}", "camera")
        self.index = index

    def open(self) -> None:
        """Open the camera and read its first frame (kept for the first :meth:`read`)."""
        self.close()
        try:
            cap = cv2.VideoCapture(self.index)
        except cv2.error:
            cap = None
        message = f"camera {self.index} does not open"
        self._start(cap, message, message)


class VideoSource(_CaptureSource):
    """A video file, paced at its own frame rate (``pace="file"``) or as fast as it decodes (``"max"``).

    With ``loop=True`` the file starts over at its end (seek to frame 0, or
    reopen when seeking fails); a pass that yields no frame ends the source.

    A damaged file keeps playing: when a frame does not decode before the
    file's frame count (``CAP_PROP_FRAME_COUNT``, when known) says the end is
    reached, the following frames are read until one decodes (at most
    :data:`MAX_SKIP` in a row); the frames passed over are counted in
    :attr:`skipped` and logged as a warning, once per place in the file. When
    nothing more decodes (a truncated file), the pass ends there: the source
    ends or loops as it would at the real end. Seeking past the damage is not
    tried: on a damaged file FFmpeg counts frame positions in decoded frames,
    so a seek lands somewhere else.
    """

    def __init__(self, path: str | Path, loop: bool = True, pace: str = "file") -> None:
        _check_pace(pace)
        self.path = Path(path)
        super().__init__(f"video {self.path.name}", "video")
        self.loop = loop
        self.pace = pace
        self.frame_count: int | None = None
        self._pacer = _Pacer(None)
        self._in_pass = 0  # frames delivered since the last (re)start of the file
        self._file_pos = 0  # frames read (decoded or not) since the last (re)start: the next read's position
        self._warned: set[int] = set()  # positions of damage already logged

    def _capture(self) -> cv2.VideoCapture | None:
        try:
            with cv_name(self.path) as name:  # a file name that is not UTF-8 would crash cv2
                cap = cv2.VideoCapture(name)
        except (cv2.error, OSError):
            return None
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def open(self) -> None:
        """Open the file and decode its first frame (skipping undecodable ones at its start)."""
        self.close()
        if str(self.path).startswith("/dev/video") and file_kind(self.path) == "a character device":
            raise SourceError(f"{self.path} is a camera device: give the camera's index (e.g. 0) as the source")
        check_regular(self.path, "video", SourceError, f"video not found: {printable(str(self.path))}")
        self._cap = self._capture()
        if self._cap is not None:
            count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
            self.frame_count = int(count) if math.isfinite(count) and count > 0 else None
        self._file_pos = 0
        self._warned = set()
        first = self._next_image() if self._cap is not None else None
        if first is None:
            self.close()
            raise SourceError(f"{printable(str(self.path))} is not a video or image OpenCV can read")
        self._first = first
        fps = _nominal_fps(self._cap)  # type: ignore[arg-type]
        self.fps = fps or FALLBACK_FPS
        claimed = _absurd_fps(self._cap)  # type: ignore[arg-type]
        if claimed is not None and self.pace == "file":
            log.warning(
                "%s claims %.6g frames per second; playing it at %g (frame rates from %g to %g are taken as given)",
                printable(str(self.path)),
                claimed,
                FALLBACK_FPS,
                MIN_FPS,
                MAX_FPS,
            )
        self._pacer = _Pacer(self.fps if self.pace == "file" else None)
        self._in_pass = 0
        self._ended = False

    def _next_image(self) -> np.ndarray | None:
        """The next frame of this pass that decodes, passing over undecodable ones; ``None`` at the end."""
        if self._cap is None:
            return None
        start = self._file_pos
        failed = 0
        while True:
            image = _read(self._cap)
            self._file_pos += 1
            if image is not None:
                if failed:
                    self._skip(start, failed, recovered=True)
                return image
            failed += 1
            if self.frame_count is None or self._file_pos >= self.frame_count or failed >= MAX_SKIP:
                break
        # Nothing more decodes: the end of the file, or damage up to its end (or beyond MAX_SKIP frames).
        # When nothing at all decoded (start 0), the file is unreadable: open() says so, there is nothing to skip.
        missing = 0 if self.frame_count is None else max(0, min(failed, self.frame_count - start))
        if missing > END_SLACK and start > 0:
            self._skip(start, missing, recovered=False)
        return None

    def _skip(self, at: int, count: int, recovered: bool) -> None:
        """Count ``count`` undecodable frames from position ``at``; warn once per place in the file."""
        self.skipped += count
        if at in self._warned:
            return
        self._warned.add(at)
        if recovered:
            log.warning("%s: skipped %d undecodable frame(s) at frame %d", self.path, count, at)
        else:
            total = f" of {self.frame_count}" if self.frame_count else ""
            log.warning(
                "%s: skipped %d undecodable frame(s) at frame %d%s; nothing after them decodes "
                "(the file ends early: cut short, or its header counts more frames than it holds), "
                "so the pass ends there",
                self.path,
                count,
                at,
                total,
            )

    def _rewind(self) -> np.ndarray | None:
        """The first frame of the next pass, or ``None`` when the file does not start over."""
        if not self.loop or self._in_pass == 0 or self._cap is None:
            return None
        self._in_pass = 0
        self._file_pos = 0
        try:
            sought = bool(self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0))
        except cv2.error:
            sought = False
        image = _read(self._cap) if sought else None
        if image is None:
            log.info("%s: seeking to frame 0 failed, reopening it", self.path)
            _release(self._cap)
            self._cap = self._capture()
            image = _read(self._cap) if self._cap is not None else None
        if image is not None:
            self._file_pos = 1
        return image

    def read(self) -> Frame | None:
        """The next frame, when it is due; ``None`` at the end (``loop=False``) or when the file stops yielding."""
        if self._cap is None or self._ended:
            return None
        self._pacer.wait()
        image, self._first = self._first, None
        if image is None:
            image = self._next_image()
        if image is None:
            image = self._rewind()
        if image is None or self._cap is None:
            self._ended = True
            return None
        self._in_pass += 1
        return self._frame(image, _pos_ms(self._cap))


class ImageSource(Source):
    """One still image, delivered again and again (a fresh copy each time) at ``pace_fps``.

    ``pace_fps=None`` delivers as fast as frames are asked for.
    """

    def __init__(self, path: str | Path, pace_fps: float | None = 15.0) -> None:
        if pace_fps is not None:
            _check_positive(pace_fps, "image frame rate")
        self.path = Path(path)
        super().__init__(f"image {self.path.name}", "image", pace_fps)
        self._image: np.ndarray | None = None
        self._pacer = _Pacer(pace_fps)

    def open(self) -> None:
        """Read and decode the image."""
        self.close()
        check_regular(self.path, "image", SourceError, f"image not found: {printable(str(self.path))}")
        self._image = read_image(self.path)
        self._pacer.reset()

    def read(self) -> Frame | None:
        """A fresh copy of the image, when it is due."""
        if self._image is None:
            return None
        self._pacer.wait()
        return self._frame(self._image.copy())

    def close(self) -> None:
        """Drop the image."""
        self._image = None


class FolderSource(Source):
    """A slideshow of the images in a folder, sorted by name.

    Each image is delivered repeatedly at :data:`SLIDE_FPS` for ``interval``
    seconds, then the next one; at the end the show starts over
    (``loop=True``) or ends. Images that cannot be decoded are skipped with a
    warning (logged once per file).
    """

    def __init__(self, path: str | Path, interval: float = 2.0, loop: bool = True) -> None:
        _check_positive(interval, "slideshow interval")
        self.path = Path(path)
        super().__init__(f"images in {self.path.name or self.path}/", "folder", SLIDE_FPS)
        self.interval = float(interval)
        self.loop = loop
        self.files: list[Path] = []
        self._bad: set[Path] = set()
        self._pos = -1  # index in files of the image on show
        self._image: np.ndarray | None = None
        self._shown_at = 0.0
        self._pacer = _Pacer(SLIDE_FPS)
        self._open = False

    def open(self) -> None:
        """List the folder and decode its first readable image."""
        self.close()
        if not self.path.is_dir():
            raise SourceError(f"folder not found: {self.path}")
        try:
            entries = list(self.path.iterdir())
        except OSError as exc:
            raise SourceError(f"cannot list folder {self.path}: {exc.strerror}") from exc
        self.files = sorted(
            (p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
            key=lambda p: p.name,
        )
        self.name = f"images in {self.path.name or self.path}/ ({len(self.files)})"
        self._bad = set()
        self._pos = -1
        self._open = True
        if not self._advance(wrap=False):
            self.close()
            raise SourceError(f"no images in {self.path}")
        self._pacer.reset()

    def _advance(self, wrap: bool) -> bool:
        """Show the next readable image after the current one; ``False`` when there is none."""
        n = len(self.files)
        for step in range(1, n + 1):
            pos = self._pos + step
            if pos >= n and not wrap:
                return False
            path = self.files[pos % n]
            if path in self._bad:
                continue
            image = _load_image(path)
            if isinstance(image, str):
                log.warning("skipping %s: it %s", printable(str(path)), image)
                self._bad.add(path)
                continue
            self._pos = pos % n
            self._image = image
            self._shown_at = time.perf_counter()
            return True
        return False

    def read(self) -> Frame | None:
        """A fresh copy of the image on show, when it is due; the next image once ``interval`` has passed."""
        if not self._open or self._image is None:
            return None
        self._pacer.wait()
        if time.perf_counter() - self._shown_at >= self.interval and not self._advance(wrap=self.loop):
            self._image = None
            return None
        return self._frame(self._image.copy())

    def close(self) -> None:
        """Drop the image on show."""
        self._open = False
        self._image = None


class StreamSource(_DeviceSource):
    """A network stream through FFmpeg: rtsp://, rtsps://, http(s):// (e.g. MJPEG), udp://, tcp://, rtmp://.

    Opening gives up after about ``open_timeout_s``; a read that gets no data
    for ``read_timeout_s`` fails, and a failed read ends the source (the
    caller may reopen it: the pipeline reconnects).
    """

    def __init__(self, url: str, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0) -> None:
        _check_positive(open_timeout_s, "stream open timeout")
        _check_positive(read_timeout_s, "stream read timeout")
        self.url = url
        super().__init__(f"stream {redact_url(url)}", "stream")
        self.open_timeout_s = float(open_timeout_s)
        self.read_timeout_s = float(read_timeout_s)

    def open(self) -> None:
        """Connect and read the first frame, within about the open timeout."""
        self.close()
        shown = printable(redact_url(self.url))
        if not cv_safe(self.url):
            raise SourceError(f"stream URL {shown} is not valid UTF-8")
        if not cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG):
            raise SourceError(f"stream {shown} needs OpenCV built with FFmpeg")
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            round(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            round(self.read_timeout_s * 1000),
        ]
        try:
            cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        except cv2.error:
            cap = None
        self._start(
            cap,
            f"stream {shown} does not open (unreachable, or not a video stream)",
            f"stream {shown} opened but sent no frame",
        )


class SyntheticSource(Source):
    """A procedurally rendered demo scene, deterministic from ``seed`` and the frame index.

    A seeded "world" (gradients, colored shapes, stripes, checkerboards,
    noise and text) is drawn once, twice the output size; each frame views it
    through a slowly panning, zooming and rotating camera, with a moving ball
    and a frame counter on top, so a CNN has edges, blobs and textures to
    respond to. Paced at ``fps``.
    """

    def __init__(self, size: tuple[int, int] = (640, 480), fps: float = 30.0, seed: int = 0) -> None:
        width, height = size
        if width < 16 or height < 16:
            raise UsageError(f"synthetic frame size must be at least 16x16, got {width}x{height}")
        _check_positive(fps, "synthetic frame rate")
        super().__init__(f"synthetic demo {width}x{height}", "demo", float(fps))
        self.size = (int(width), int(height))
        self.seed = seed
        self._world: np.ndarray | None = None
        self._pacer = _Pacer(fps)

    def open(self) -> None:
        """Draw the world."""
        if self._world is None:
            self._world = _draw_world(self.size, self.seed)
        self._pacer.reset()

    def render(self, index: int) -> np.ndarray:
        """Frame ``index`` of the scene: (H, W, 3) uint8 BGR, a new array."""
        if self._world is None:
            self._world = _draw_world(self.size, self.seed)
        w, h = self.size
        world_h, world_w = self._world.shape[:2]
        t = index / float(self.fps or 30.0)
        tau = 2 * math.pi
        cx = world_w / 2 + 0.15 * world_w * math.sin(tau * t / 11.0)
        cy = world_h / 2 + 0.15 * world_h * math.sin(tau * t / 7.0 + 1.0)
        zoom = 0.8 + 0.4 * (1 + math.sin(tau * t / 9.0)) / 2
        angle = 8.0 * math.sin(tau * t / 13.0)
        m = cv2.getRotationMatrix2D((cx, cy), angle, zoom)
        m[0, 2] += w / 2 - cx
        m[1, 2] += h / 2 - cy
        frame = cv2.warpAffine(self._world, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        # A ball on a Lissajous path, and the frame counter.
        r = max(4, min(w, h) // 14)
        bx = int(w / 2 + (w / 2 - r - 2) * math.sin(tau * t / 3.0))
        by = int(h / 2 + (h / 2 - r - 2) * math.sin(tau * t / 2.3 + 0.5))
        cv2.circle(frame, (bx, by), r, (40, 220, 255), -1, cv2.LINE_AA)
        cv2.circle(frame, (bx - r // 3, by - r // 3), max(1, r // 3), (255, 255, 255), -1, cv2.LINE_AA)
        scale = max(0.3, min(w, h) / 900)
        label = f"synthetic demo  frame {index}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(frame, (4, 4), (12 + tw, 12 + th + base), (0, 0, 0), -1)
        cv2.putText(frame, label, (8, 8 + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        return frame

    def read(self) -> Frame | None:
        """The next frame of the scene, when it is due."""
        if self._world is None:
            return None
        self._pacer.wait()
        index = self._delivered
        return self._frame(self.render(index), index * 1000.0 / float(self.fps or 30.0))

    def close(self) -> None:
        """Drop the world."""
        self._world = None


def _draw_world(size: tuple[int, int], seed: int) -> np.ndarray:
    """The static scene behind :class:`SyntheticSource`: (2H, 2W, 3) uint8 BGR."""
    rng = np.random.default_rng(seed)
    world_w, world_h = 2 * size[0], 2 * size[1]
    x = np.linspace(0.0, 1.0, world_w, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, world_h, dtype=np.float32)[:, None]
    world = np.empty((world_h, world_w, 3), np.uint8)
    world[..., 0] = 40 + 150 * x
    world[..., 1] = 40 + 150 * y
    world[..., 2] = 200 - 120 * np.sqrt(x * y)
    unit = min(world_w, world_h) / 20  # a typical shape size

    def color() -> tuple[int, int, int]:
        return tuple(int(c) for c in rng.integers(0, 256, 3))  # type: ignore[return-value]

    def point() -> tuple[int, int]:
        return int(rng.integers(0, world_w)), int(rng.integers(0, world_h))

    # Textured patches: stripes of several frequencies and orientations, checkerboards, noise.
    for _ in range(10):
        px, py = point()
        pw, ph = int(unit * rng.uniform(2, 4)), int(unit * rng.uniform(2, 4))
        yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
        theta, period = rng.uniform(0, math.pi), rng.uniform(4, 16)
        wave = 0.5 + 0.5 * np.sin(2 * math.pi * (xx * math.cos(theta) + yy * math.sin(theta)) / period)
        patch = (wave[..., None] * np.array(color(), np.float32)).astype(np.uint8)
        _paste(world, patch, px, py)
    for _ in range(6):
        px, py = point()
        cell = int(rng.integers(4, 14))
        n = int(rng.integers(4, 9))
        board = ((np.indices((n, n)).sum(axis=0) % 2) * 255).astype(np.uint8)
        board = cv2.resize(board, (n * cell, n * cell), interpolation=cv2.INTER_NEAREST)
        _paste(world, cv2.cvtColor(board, cv2.COLOR_GRAY2BGR), px, py)
    for _ in range(5):
        px, py = point()
        side = int(unit * rng.uniform(1.5, 3))
        noise = rng.integers(0, 256, (side // 3 + 1, side // 3 + 1, 3), dtype=np.uint8)
        _paste(world, cv2.resize(noise, (side, side), interpolation=cv2.INTER_NEAREST), px, py)
    # Filled shapes: blobs of color with sharp and anti-aliased edges.
    for _ in range(90):
        shape = int(rng.integers(0, 4))
        center = point()
        extent = int(unit * rng.uniform(0.4, 1.6))
        if shape == 0:
            cv2.circle(world, center, extent, color(), -1, cv2.LINE_AA)
        elif shape == 1:
            cv2.rectangle(world, center, (center[0] + extent, center[1] + int(extent * 0.7)), color(), -1)
        elif shape == 2:
            axes = (extent, max(2, extent // 2))
            cv2.ellipse(world, center, axes, float(rng.uniform(0, 180)), 0, 360, color(), -1, cv2.LINE_AA)
        else:
            pts = np.array(center, np.int32) + rng.integers(-extent, extent + 1, (3, 2)).astype(np.int32)
            cv2.fillPoly(world, [pts], color(), cv2.LINE_AA)
    # Lines and text.
    for _ in range(16):
        cv2.line(world, point(), point(), color(), int(rng.integers(1, 5)), cv2.LINE_AA)
    words = ("live", "cv2.dnn", "conv", "relu", "0123456789", "feature maps", "ABC xyz")
    for word in words * 2:
        font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX]))
        scale = float(rng.uniform(0.5, 1.6)) * world_h / 960
        cv2.putText(world, word, point(), font, scale, color(), int(rng.integers(1, 4)), cv2.LINE_AA)
    return world


def _paste(dst: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Copy ``patch`` into ``dst`` with its top-left corner at (x, y), clipped to ``dst``."""
    h = min(patch.shape[0], dst.shape[0] - y)
    w = min(patch.shape[1], dst.shape[1] - x)
    if h > 0 and w > 0:
        dst[y : y + h, x : x + w] = patch[:h, :w]


# --------------------------------------------------------------------------
# From a command-line spec


def bundled_demo_clip() -> Path | None:
    """The bundled demo clip (``demo.mp4`` in ``live.data``), if present."""
    return data_file(DEMO_CLIP)


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclasses.dataclass(frozen=True)
class SourceOptions:
    """How a source plays: loop, pace and slideshow interval (the command line's source options).

    Attributes:
        loop: start a video or folder over at its end.
        pace: ``file`` (a video at its own frame rate) or ``max`` (as fast as it decodes).
        interval: seconds each image of a folder stays on show.
    """

    loop: bool = True
    pace: str = "file"
    interval: float = 2.0

    def __post_init__(self) -> None:
        _check_pace(self.pace)
        _check_positive(self.interval, "slideshow interval")

    def open(self, spec: str) -> Source:
        """:func:`open_source` with these options."""
        return open_source(spec, loop=self.loop, pace=self.pace, interval=self.interval)


def open_source(spec: str, *, loop: bool = True, pace: str = "file", interval: float = 2.0) -> Source:
    """The source a command-line spec names, not opened yet.

    - ``demo``: the bundled clip, else a :class:`SyntheticSource`;
    - only digits (``0``): a camera index;
    - a URL with a scheme in :data:`STREAM_SCHEMES`: a network stream;
    - an existing folder: a slideshow of its images;
    - a path with an image extension: a still image;
    - any other path: a video file (a missing one fails on ``open``).

    Args:
        spec: what to open.
        loop: files and folders start over at their end.
        pace: ``file`` (video at its own frame rate) or ``max`` (as fast as it decodes).
        interval: seconds each image of a folder stays on show.
    Raises:
        UsageError: ``pace`` or ``interval`` is invalid.
        SourceError: ``spec`` is empty or a URL of an unsupported scheme.
    """
    _check_pace(pace)
    _check_positive(interval, "slideshow interval")
    text = spec.strip()
    if not text:
        raise SourceError("empty source: give a camera index, a file, a folder, a URL or 'demo'")
    if text.lower() == "demo":
        clip = bundled_demo_clip()
        if clip is None:
            demo = SyntheticSource()
            demo.name = "synthetic demo (no bundled clip)"
            return demo
        video = VideoSource(clip, loop=loop, pace=pace)
        video.kind = "demo"
        video.name = f"demo clip {clip.name}"
        return video
    if re.fullmatch(r"[0-9]+", text):
        return CameraSource(int(text))
    scheme = _SCHEME.match(text)
    if scheme:
        if scheme.group(1).lower() not in STREAM_SCHEMES:
            raise SourceError(
                f"unsupported URL scheme {printable(scheme.group(1))!r} in {printable(redact_url(text))} "
                f"(use one of {', '.join(STREAM_SCHEMES)})"
            )
        return StreamSource(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return FolderSource(path, interval=interval, loop=loop)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(path)
    return VideoSource(path, loop=loop, pace=pace)
