"""Frame sources against real files, real images, a real MJPEG HTTP server and closed ports; no mocks."""

from __future__ import annotations

import itertools
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from live.errors import SourceError, UsageError
from live.sources import (
    PACES,
    CameraSource,
    FolderSource,
    Frame,
    ImageSource,
    Source,
    StreamSource,
    SyntheticSource,
    VideoSource,
    bundled_demo_clip,
    open_source,
)
from tests.helpers import MjpegServer

N_FRAMES = 20
STEP = 12  # frame i of a test video is a solid gray of level i * STEP
SIZE = (64, 48)  # width, height


def write_video(path: Path, fps: float = 20.0, n: int = N_FRAMES) -> Path:
    """An MJPG .avi of ``n`` solid gray 64x48 frames; frame i has level i * STEP."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((SIZE[1], SIZE[0], 3), i * STEP, np.uint8))
    writer.release()
    return path


def gray_level(frame: Frame) -> int:
    return round(float(frame.image.mean()))


def frame_number(frame: Frame) -> int:
    """Which frame of a test video this is, despite JPEG loss."""
    return round(float(frame.image.mean()) / STEP)


def read_all(source: Source, limit: int = 1000) -> list[Frame]:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
        assert len(frames) < limit, "source did not end"
    return frames


def write_gray(path: Path, level: int) -> Path:
    assert cv2.imwrite(str(path), np.full((SIZE[1], SIZE[0], 3), level, np.uint8))
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.avi")


# --------------------------------------------------------------------------
# Video files


def test_video_delivers_every_frame_in_order_then_ends(video: Path) -> None:
    with VideoSource(video, loop=False, pace="max") as source:
        assert (source.kind, source.name, source.fps) == ("video", "video clip.avi", 20.0)
        frames = read_all(source)
        assert source.read() is None  # ended for good
    assert [frame_number(f) for f in frames] == list(range(N_FRAMES))
    assert [f.index for f in frames] == list(range(N_FRAMES))
    for f in frames:
        assert f.image.shape == (SIZE[1], SIZE[0], 3)
        assert f.image.dtype == np.uint8
        assert f.image.flags.c_contiguous
    positions = [f.pos_ms for f in frames]
    assert positions[0] == 0.0
    assert all(b > a for a, b in itertools.pairwise(positions))  # type: ignore[operator]
    times = [f.t_capture for f in frames]
    assert times == sorted(times)
    assert not np.shares_memory(frames[0].image, frames[1].image)


def test_video_loops_past_the_end_with_increasing_index(video: Path) -> None:
    with VideoSource(video, loop=True, pace="max") as source:
        frames = [source.read() for _ in range(2 * N_FRAMES + 10)]
    assert all(f is not None for f in frames)
    assert [frame_number(f) for f in frames] == [i % N_FRAMES for i in range(len(frames))]  # type: ignore[arg-type]
    assert [f.index for f in frames] == list(range(len(frames)))  # type: ignore[union-attr]


def test_video_loops_by_reopening_where_seeking_fails(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A raw MJPEG file (JPEGs back to back): FFmpeg's set(POS_FRAMES, 0) reports success, but the next read fails.
    path = tmp_path / "raw.mjpeg"
    jpegs = [cv2.imencode(".jpg", np.full((SIZE[1], SIZE[0], 3), i * STEP, np.uint8))[1] for i in range(5)]
    path.write_bytes(b"".join(j.tobytes() for j in jpegs))
    with caplog.at_level(logging.INFO, logger="live.sources"), VideoSource(path, pace="max") as source:
        frames = [source.read() for _ in range(12)]
    assert [frame_number(f) for f in frames] == [i % 5 for i in range(12)]  # type: ignore[arg-type]
    assert any("reopening" in r.getMessage() for r in caplog.records)

    # The same file deleted while playing: the seek fails, the reopen fails, the source ends instead of spinning.
    with VideoSource(path, pace="max") as source:
        path.unlink()
        frames = read_all(source)
    assert [frame_number(f) for f in frames] == list(range(5))


def test_pace_file_takes_at_least_the_clip_duration(tmp_path: Path) -> None:
    fps = 50.0
    path = write_video(tmp_path / "fast.avi", fps=fps)
    with VideoSource(path, loop=False, pace="file") as source:
        assert source.fps == fps
        start = time.perf_counter()
        frames = read_all(source)
        elapsed = time.perf_counter() - start
    assert len(frames) == N_FRAMES
    assert elapsed >= (N_FRAMES - 1) / fps - 1e-3
    assert frames[-1].t_capture - frames[0].t_capture >= (N_FRAMES - 1) / fps - 1e-3


def test_pace_max_does_not_sleep(tmp_path: Path) -> None:
    path = write_video(tmp_path / "slow.avi", fps=2.0)  # paced, 20 frames would take 9.5 s
    with VideoSource(path, loop=False, pace="max") as source:
        assert source.fps == 2.0
        frames = read_all(source)
    assert len(frames) == N_FRAMES


@pytest.mark.parametrize(
    ("content", "name"),
    [(None, "missing.mp4"), (b"this is plain text, not a video\n" * 4, "notes.mp4"), ("truncated", "cut.avi")],
    ids=["missing", "text-renamed-mp4", "truncated"],
)
def test_unusable_video_files_raise_source_error_naming_the_path(
    tmp_path: Path, content: bytes | str | None, name: str
) -> None:
    path = tmp_path / name
    if content == "truncated":
        data = write_video(tmp_path / "whole.avi").read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    source = VideoSource(path)
    with pytest.raises(SourceError) as info:
        source.open()
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert ("not found" in message) if content is None else ("not a video" in message)
    source.close()  # safe after a failed open
    source.close()
    assert source.read() is None


# --------------------------------------------------------------------------
# Images and folders


def test_image_source_repeats_fresh_copies(tmp_path: Path) -> None:
    image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    image[10:20, 5:40] = (0, 128, 255)
    path = tmp_path / "still.png"
    assert cv2.imwrite(str(path), image)
    with ImageSource(path, pace_fps=None) as source:
        assert (source.kind, source.name) == ("image", "image still.png")
        first = source.read()
        assert first is not None
        first.image[:] = 77  # the caller owns the frame: mutating it changes nothing upstream
        frames = [source.read() for _ in range(3)]
    for index, frame in enumerate(frames, start=1):
        assert frame is not None
        assert frame.index == index
        np.testing.assert_array_equal(frame.image, image)
    assert not np.shares_memory(frames[0].image, frames[1].image)  # type: ignore[union-attr]


def test_image_source_is_paced(tmp_path: Path) -> None:
    path = tmp_path / "still.jpg"
    write_gray(path, 90)
    with ImageSource(path, pace_fps=50.0) as source:
        start = time.perf_counter()
        frames = [source.read() for _ in range(6)]
        elapsed = time.perf_counter() - start
    assert elapsed >= 5 / 50.0 - 1e-3
    assert all(f is not None and abs(gray_level(f) - 90) <= 2 for f in frames)


def test_unreadable_images_raise_source_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    for path, words in [(tmp_path / "missing.png", "not found"), (bad, "not an image")]:
        with pytest.raises(SourceError, match=words) as info:
            ImageSource(path).open()
        assert str(path) in str(info.value)


@pytest.fixture
def slides(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    write_gray(folder / "a.png", 30)
    write_gray(folder / "b.jpg", 120)
    (folder / "bad.png").write_bytes(b"\x89PNG but not really")
    write_gray(folder / "d.PNG", 200)  # extension case does not matter
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub.png").mkdir()  # a folder, whatever its name
    return folder


def _distinct(levels: list[int]) -> list[int]:
    """Consecutive repeats collapsed, levels rounded to 10 (JPEG)."""
    out: list[int] = []
    for level in levels:
        level = round(level / 10) * 10
        if not out or out[-1] != level:
            out.append(level)
    return out


def test_folder_slideshow_in_name_order_skipping_unreadable(slides: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="live.sources"), FolderSource(slides, interval=0.1, loop=False) as s:
        assert (s.kind, s.name, s.fps) == ("folder", "images in photos/ (4)", 15.0)
        frames = read_all(s)
    assert _distinct([gray_level(f) for f in frames]) == [30, 120, 200]
    assert [f.index for f in frames] == list(range(len(frames)))
    assert len(frames) >= 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "bad.png" in warnings[0]


def test_folder_slideshow_loops(slides: Path) -> None:
    with FolderSource(slides, interval=0.05, loop=True) as source:
        levels = []
        while len(_distinct(levels)) < 5:
            frame = source.read()
            assert frame is not None
            levels.append(gray_level(frame))
    assert _distinct(levels) == [30, 120, 200, 30, 120]


def test_folder_slideshow_holds_each_image_for_the_interval(tmp_path: Path) -> None:
    write_gray(tmp_path / "1.png", 10)
    write_gray(tmp_path / "2.png", 250)
    with FolderSource(tmp_path, interval=0.3, loop=False) as source:
        frames = read_all(source)
    first = [f for f in frames if gray_level(f) == 10]
    assert first[-1].t_capture - first[0].t_capture >= 0.3 - 1 / 15 - 1e-3
    assert len(first) >= 4  # repeated at 15 fps


def test_folder_without_images_raises_source_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "broken.jpg").write_bytes(b"garbage")
    (junk / "readme.txt").write_text("hello")
    for folder in (empty, junk):
        source = FolderSource(folder)
        with pytest.raises(SourceError, match="no images in") as info:
            source.open()
        assert str(folder) in str(info.value)
        source.close()
    with pytest.raises(SourceError, match="folder not found"):
        FolderSource(tmp_path / "nowhere").open()


# --------------------------------------------------------------------------
# Cameras and streams


def test_missing_camera_raises_source_error() -> None:
    source = CameraSource(99)
    assert (source.kind, source.name) == ("camera", "camera 99")
    with pytest.raises(SourceError, match=r"^camera 99 does not open$"):
        source.open()
    source.close()
    source.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_stream_raises_source_error_quickly() -> None:
    url = f"rtsp://127.0.0.1:{_closed_port()}/cam"
    source = StreamSource(url, open_timeout_s=2.0)
    start = time.perf_counter()
    with pytest.raises(SourceError) as info:
        source.open()
    assert time.perf_counter() - start < 10.0
    assert url in str(info.value)
    source.close()


def test_silent_server_times_out_within_the_open_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (the kernel does), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/video.mjpg"
        start = time.perf_counter()
        with pytest.raises(SourceError, match="does not open") as info:
            StreamSource(url, open_timeout_s=1.0).open()
        elapsed = time.perf_counter() - start
    assert url in str(info.value)
    assert elapsed < 10.0


def test_stream_names_and_errors_hide_passwords() -> None:
    url = f"rtsp://admin:hunter2@127.0.0.1:{_closed_port()}/live"
    source = StreamSource(url, open_timeout_s=1.0)
    assert "hunter2" not in source.name and "admin:***@" in source.name
    with pytest.raises(SourceError) as info:
        source.open()
    assert "hunter2" not in str(info.value)


MJPEG_LEVELS = (0, 40, 80, 120, 160)


@pytest.fixture
def mjpeg_url() -> Iterator[str]:
    """A camera serving the :data:`MJPEG_LEVELS` frames then closing (or, on ``/stall``, going silent)."""

    def image(index: int) -> np.ndarray:
        return np.full((SIZE[1], SIZE[0], 3), MJPEG_LEVELS[index], np.uint8)

    with MjpegServer(image, interval=0.02, frames=len(MJPEG_LEVELS)) as server:
        yield server.url("/video.mjpg")


def test_mjpeg_http_stream_delivers_its_frames_then_ends(mjpeg_url: str) -> None:
    source = open_source(mjpeg_url)
    assert isinstance(source, StreamSource)
    assert (source.kind, source.name) == ("stream", f"stream {mjpeg_url}")
    with source:
        frames = read_all(source, limit=100)
        assert source.read() is None
    assert [round(gray_level(f) / 40) * 40 for f in frames] == list(MJPEG_LEVELS)
    assert [f.index for f in frames] == list(range(len(MJPEG_LEVELS)))
    assert all(f.image.shape == (SIZE[1], SIZE[0], 3) for f in frames)


def test_stalled_stream_ends_after_the_read_timeout(mjpeg_url: str) -> None:
    with StreamSource(mjpeg_url.replace("/video.mjpg", "/stall"), read_timeout_s=1.0) as source:
        frames = read_all(source, limit=100)
        start = time.perf_counter()
        assert source.read() is None  # ended: no second wait
        assert time.perf_counter() - start < 0.5
    assert len(frames) == len(MJPEG_LEVELS)


# --------------------------------------------------------------------------
# Synthetic demo


def test_synthetic_source_is_deterministic_and_moves() -> None:
    a = SyntheticSource(size=(160, 120), fps=30.0, seed=3)
    b = SyntheticSource(size=(160, 120), fps=30.0, seed=3)
    other = SyntheticSource(size=(160, 120), fps=30.0, seed=4)
    with a, b, other:
        assert (a.kind, a.fps) == ("demo", 30.0)
        frames_a = [a.read() for _ in range(3)]
        frames_b = [b.read() for _ in range(3)]
        for i, (fa, fb) in enumerate(zip(frames_a, frames_b, strict=True)):
            assert fa is not None and fb is not None
            assert fa.index == i
            assert fa.image.shape == (120, 160, 3) and fa.image.dtype == np.uint8
            np.testing.assert_array_equal(fa.image, fb.image)
            np.testing.assert_array_equal(fa.image, a.render(i))
        later = a.render(90)  # three seconds on
        first = frames_a[0].image  # type: ignore[union-attr]
        assert np.abs(later.astype(int) - first).mean() > 10
        assert np.abs(other.render(0).astype(int) - first).mean() > 10
        assert first.std() > 20  # edges, blobs and textures, not a flat field


def test_synthetic_source_is_paced() -> None:
    with SyntheticSource(size=(64, 48), fps=100.0) as source:
        start = time.perf_counter()
        for _ in range(6):
            assert source.read() is not None
        assert time.perf_counter() - start >= 5 / 100.0 - 1e-3


# --------------------------------------------------------------------------
# open_source and the interface


def test_open_source_dispatches_on_the_spec(tmp_path: Path, video: Path, slides: Path) -> None:
    camera = open_source("0")
    assert isinstance(camera, CameraSource) and camera.index == 0 and camera.kind == "camera"
    assert isinstance(open_source(" 2 "), CameraSource)
    for url in ("rtsp://cam.local/stream", "HTTP://cam/video.mjpg", "udp://@:1234", "tcp://1.2.3.4:5", "rtmp://x/y"):
        assert isinstance(open_source(url), StreamSource), url
    folder = open_source(str(slides), interval=0.5, loop=False)
    assert isinstance(folder, FolderSource) and folder.interval == 0.5 and not folder.loop
    assert folder.kind == "folder"
    image = open_source(str(tmp_path / "photo.JPG"))
    assert isinstance(image, ImageSource) and image.kind == "image"
    clip = open_source(str(video), loop=False, pace="max")
    assert isinstance(clip, VideoSource) and clip.kind == "video" and not clip.loop and clip.pace == "max"
    missing = open_source(str(tmp_path / "nope.mkv"))
    assert isinstance(missing, VideoSource)
    with pytest.raises(SourceError, match="video not found"):
        missing.open()


def test_open_source_demo() -> None:
    source = open_source("demo")
    assert source.kind == "demo"
    clip = bundled_demo_clip()
    if clip is None:
        assert isinstance(source, SyntheticSource)
        assert source.name == "synthetic demo (no bundled clip)"
    else:
        assert isinstance(source, VideoSource) and source.path == clip
    with source:
        frame = source.read()
    assert frame is not None and frame.image.ndim == 3 and frame.image.shape[2] == 3


def test_open_source_rejects_bad_specs_and_options() -> None:
    assert PACES == ("file", "max")
    for spec in ("", "   "):
        with pytest.raises(SourceError, match="empty source"):
            open_source(spec)
    with pytest.raises(SourceError, match="ftp"):
        open_source("ftp://example.com/clip.mp4")
    with pytest.raises(UsageError, match="slow"):
        open_source("demo", pace="slow")
    with pytest.raises(UsageError, match="interval"):
        open_source("demo", interval=0)
    with pytest.raises(UsageError):
        VideoSource("x.mp4", pace="fast")
    with pytest.raises(UsageError):
        ImageSource("x.png", pace_fps=0)
    with pytest.raises(UsageError):
        FolderSource(".", interval=-1)
    with pytest.raises(UsageError):
        SyntheticSource(fps=0)
    with pytest.raises(UsageError):
        CameraSource(-1)


def test_close_is_idempotent_for_every_source(tmp_path: Path, video: Path, slides: Path) -> None:
    still = write_gray(tmp_path / "still.png", 50)
    sources: list[Source] = [
        VideoSource(video, pace="max"),
        ImageSource(still, pace_fps=None),
        FolderSource(slides, interval=0.05),
        SyntheticSource(size=(32, 24), fps=1000.0),
        CameraSource(99),
        StreamSource(f"tcp://127.0.0.1:{_closed_port()}", open_timeout_s=1.0),
    ]
    for source in sources:
        source.close()  # before open
        try:
            source.open()
        except SourceError:
            assert source.kind in ("camera", "stream")
        else:
            assert source.read() is not None
        source.close()
        source.close()
        assert source.read() is None, source
