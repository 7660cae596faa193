"""Faults a run must ride out, each made real: a stream whose server goes away and comes back, a video
damaged part-way (garbage frames in the middle, a file cut short), a frame the preprocessing rejects.

No mocks: a real MJPEG HTTP server on 127.0.0.1, real MJPG .avi files corrupted on disk, a real folder
slideshow with an image that cv2.dnn's letterbox resize rejects.

A camera that disappears (unplugged USB) cannot be made here (no camera on the test machines); cameras
go through the very same reconnect path as streams (``Pipeline._reconnects``: kinds ``stream`` and
``camera``), which the stream tests exercise, and ``test_reconnect_applies_to_cameras_and_streams_only``
checks the camera is included.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from live.frames import Result, View
from live.model import Model, Settings
from live.pipeline import RECONNECT_KINDS, Phase, Pipeline, Status, run_headless
from live.sources import CameraSource, FolderSource, ImageSource, StreamSource, VideoSource
from live.stats import PipelineStats
from tests.helpers import MjpegServer, live_threads, playable_frames, write_clip

pytestmark = pytest.mark.opencv

SIZE = (64, 48)  # width, height of every test frame
FPS = 20.0


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@pytest.fixture
def small_model(net_dir: Path) -> Model:
    return Model.load(net_dir / "two_heads.onnx", Settings(preprocess={"size": (32, 32)}))


# ----------------------------------------------------------------------------- a stream that drops


def _camera(level: int, port: int = 0) -> MjpegServer:
    """An MJPEG camera at :data:`FPS`: frame i shows its number on a gray of ``level``."""

    def image(index: int) -> np.ndarray:
        picture = np.full((SIZE[1], SIZE[0], 3), level, np.uint8)
        cv2.putText(picture, str(index), (4, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        return picture

    return MjpegServer(image, port=port, interval=1 / FPS)


@pytest.fixture
def servers() -> Iterator[list[MjpegServer]]:
    """Servers a test starts; all stopped at teardown."""
    started: list[MjpegServer] = []
    yield started
    for server in started:
        if not server.stopping.is_set():
            server.stop()


def _stream_pipeline(model: Model, port: int, **options: object) -> Pipeline:
    source = StreamSource(f"http://127.0.0.1:{port}/stream.mjpg", open_timeout_s=2.0, read_timeout_s=2.0)
    return Pipeline(model, source, View(layer="lrelu"), **options)  # type: ignore[arg-type]


def _level(result: Result) -> float:
    return float(np.median(result.frame.image))


def test_a_stream_that_drops_is_reconnected_and_the_gap_counted(
    small_model: Model, servers: list[MjpegServer], caplog: pytest.LogCaptureFixture
) -> None:
    servers.append(_camera(level=60))
    port = servers[0].port
    pipeline = _stream_pipeline(small_model, port).start()
    try:
        with caplog.at_level(logging.INFO, logger="live.pipeline"):
            got = pipeline.results.take(timeout=15)
            assert got is not None, pipeline.status
            assert abs(_level(got[1]) - 60) < 8
            assert pipeline.stats_snapshot()["gaps"] == 0

            t_down = time.perf_counter()
            servers[0].stop()  # the camera goes away: the read fails at once (the connection closes)
            t_closed = time.perf_counter()
            assert wait_until(lambda: pipeline.status.phase is Phase.RECONNECTING, 5), pipeline.status
            assert f"reconnecting to stream http://127.0.0.1:{port}/stream.mjpg (attempt " in pipeline.status.message
            # Attempts fail (connection refused) and back off; the last result stays for the window.
            assert wait_until(lambda: "attempt 2" in pipeline.status.message, 5), pipeline.status
            assert "next in" in pipeline.status.message or "connecting" in pipeline.status.message
            seq, last = pipeline.results.peek()
            assert last is not None and abs(_level(last) - 60) < 8
            during = pipeline.stats_snapshot()
            assert during["gaps"] == 1 and during["gap_s"] > 0 and during["reconnect"] is True
            assert pipeline.alive and not pipeline.source_ended.is_set()

            servers.append(_camera(level=180, port=port))  # back, on the same port, with brighter frames
            t_up = time.perf_counter()

            def new_frames() -> bool:
                item = pipeline.results.take(after=seq, timeout=0.2)
                return item is not None and abs(_level(item[1]) - 180) < 8

            assert wait_until(new_frames, 15, step=0), pipeline.status
            t_back = time.perf_counter()
        assert pipeline.status.phase is Phase.RUNNING, pipeline.status
        stats = pipeline.stats_snapshot()
        assert stats["gaps"] == 1
        # Counted from the last frame before the drop to the first after: at least the time the port was
        # closed, at most from when the server began to stop (its last frame) until frames were seen again.
        assert t_up - t_closed <= stats["gap_s"] <= t_back - t_down + 2 / FPS
        assert stats["errors"] == 0
        messages = [r.getMessage() for r in caplog.records if r.name == "live.pipeline"]
        assert any("reconnecting" in m for m in messages) and any("reconnected" in m for m in messages)
        assert any("attempt 1 failed" in m for m in messages)
    finally:
        start = time.perf_counter()
        assert pipeline.close()
        assert time.perf_counter() - start < 1.0
    assert wait_until(lambda: live_threads() == [], 2), live_threads()


def test_close_interrupts_the_backoff_and_a_connect_in_flight(small_model: Model, servers: list[MjpegServer]) -> None:
    servers.append(_camera(level=60))
    port = servers[0].port
    pipeline = _stream_pipeline(small_model, port).start()
    try:
        assert pipeline.results.take(timeout=15) is not None, pipeline.status
        servers[0].stop()
        assert wait_until(lambda: "attempt 2, next in" in pipeline.status.message, 5), pipeline.status
    finally:
        start = time.perf_counter()  # in the backoff wait
        assert pipeline.close()
        assert time.perf_counter() - start < 0.5
    assert wait_until(lambda: live_threads() == [], 1), live_threads()
    snapshot = pipeline.stats_snapshot()
    assert snapshot["gaps"] == 1 and snapshot["gap_s"] > 0

    # A server that accepts and never answers: the reconnect attempt blocks in FFmpeg's open (2 s timeout).
    servers.append(_camera(level=60))
    port = servers[-1].port
    pipeline = _stream_pipeline(small_model, port).start()
    with socket.socket() as silent:
        try:
            assert pipeline.results.take(timeout=15) is not None, pipeline.status
            servers[-1].stop()
            silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            silent.bind(("127.0.0.1", port))
            silent.listen(8)
            assert wait_until(lambda: "connecting..." in pipeline.status.message, 5), pipeline.status
        finally:
            start = time.perf_counter()
            assert pipeline.close()
            assert time.perf_counter() - start < 0.5
        assert "live-capture" not in live_threads()
        # The attempt's own thread finishes the open (timing out), then releases the capture itself.
        assert wait_until(lambda: live_threads() == [], 8), live_threads()


def test_without_reconnect_a_dropped_stream_ends(small_model: Model, servers: list[MjpegServer]) -> None:
    servers.append(_camera(level=60))
    pipeline = _stream_pipeline(small_model, servers[0].port, reconnect=False).start()
    try:
        assert pipeline.results.take(timeout=15) is not None, pipeline.status
        servers[0].stop()
        assert pipeline.finished.wait(10), pipeline.status
        assert pipeline.status.phase is Phase.ENDED
        assert pipeline.stats_snapshot()["gaps"] == 0
    finally:
        pipeline.close()


def test_reconnect_applies_to_cameras_and_streams_only(small_model: Model, tmp_path: Path) -> None:
    assert set(RECONNECT_KINDS) == {"camera", "stream"}
    image = tmp_path / "still.png"
    assert cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    view = View(layer="lrelu")
    for source, reconnects in [
        (CameraSource(0), True),
        (StreamSource("rtsp://127.0.0.1:9/x"), True),
        (VideoSource(tmp_path / "x.avi"), False),
        (ImageSource(image), False),
        (FolderSource(tmp_path), False),
    ]:
        assert Pipeline(small_model, source, view)._reconnects(source) is reconnects, source
        assert Pipeline(small_model, source, view, reconnect=False)._reconnects(source) is False


def test_gap_accounting() -> None:
    stats = PipelineStats()
    stats.gap_ended(5.0)  # no gap open: nothing happens
    stats.gap_began(10.0)
    stats.gap_began(11.0)  # the same outage
    assert stats.gaps == 1
    going_on = stats.snapshot()["gap_s"]
    time.sleep(0.01)  # time passing, which an outage going on counts (the figure has 1 ms steps)
    assert going_on > 0 and stats.snapshot()["gap_s"] > going_on
    stats.gap_ended(12.5)
    stats.gap_began(20.0)
    stats.gap_ended(20.25)
    snapshot = stats.snapshot()
    assert (snapshot["gaps"], snapshot["gap_s"]) == (2, 2.75) == (stats.gaps, stats.snapshot()["gap_s"])  # over
    stats.skipped(3)
    assert stats.snapshot()["skipped_frames"] == 3


@pytest.mark.parametrize("after_finish", [False, True], ids=["at-once", "after-the-threads-ended"])
def test_a_source_switch_right_after_a_failed_open_is_not_lost(
    small_model: Model, tmp_path: Path, after_finish: bool
) -> None:
    # The capture thread ends when a source fails to open; a switch asked for while the forward thread is
    # still finishing (or after both ended) must start the new source, not wait in a request nobody takes.
    clip = write_clip(tmp_path / "clip.avi", frames=10)
    pipeline = Pipeline(small_model, VideoSource(clip, loop=True, pace="max"), View(layer="lrelu")).start()
    try:
        for _ in range(3):
            assert pipeline.results.take(timeout=15) is not None, pipeline.status
            pipeline.set_source(str(tmp_path / "nothere.avi"))
            assert wait_until(lambda: "nothere.avi" in pipeline.status.message, 10), pipeline.status
            if after_finish:
                assert pipeline.finished.wait(5) and wait_until(lambda: not pipeline.alive, 2)
            pipeline.set_source(str(clip))
            assert wait_until(lambda: pipeline.error is None, 10), pipeline.status  # the clip opened
            seq = pipeline.results.seq
            assert pipeline.results.take(after=seq, timeout=15) is not None, pipeline.status
            assert pipeline.status.phase is Phase.RUNNING, pipeline.status
            assert sorted(live_threads()) == ["live-capture", "live-forward"]
    finally:
        assert pipeline.close()
    assert live_threads() == []


# ----------------------------------------------------------------------------- a damaged video

N_FRAMES = 40
STEP = 6  # frame i of the test video is a solid gray of level i * STEP
BAD = range(15, 19)  # frames whose JPEG data the test overwrites


def frame_number(image: np.ndarray) -> int:
    return round(float(image.mean()) / STEP)


def write_video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, SIZE)
    assert writer.isOpened()
    for i in range(N_FRAMES):
        writer.write(np.full((SIZE[1], SIZE[0], 3), i * STEP, np.uint8))
    writer.release()
    return path


def corrupt_frames(src: Path, dst: Path, frames: range) -> Path:
    """A copy of an MJPG .avi with the JPEG data of ``frames`` (everything between SOI and EOI) garbage."""
    data = bytearray(src.read_bytes())
    starts = []
    at = data.find(b"\xff\xd8")
    while at >= 0:
        starts.append(at)
        at = data.find(b"\xff\xd8", at + 2)
    assert len(starts) == N_FRAMES  # one JPEG per frame, nothing else looks like one
    rng = np.random.default_rng(7)
    for i in frames:
        begin = starts[i] + 2
        end = data.find(b"\xff\xd9", begin)
        assert begin < end < (starts[i + 1] if i + 1 < N_FRAMES else len(data))
        data[begin:end] = rng.integers(0, 256, end - begin, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture
def whole_video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "whole.avi")


def _run_video(model: Model, source: VideoSource) -> tuple[Pipeline, list[Result], dict[str, Any]]:
    pipeline = Pipeline(model, source, View(layer="lrelu"))
    results: list[Result] = []
    stats = run_headless(pipeline, on_result=results.append, timeout_s=30)
    return pipeline, results, stats


def _assert_ended_cleanly(pipeline: Pipeline) -> None:
    assert pipeline.finished.is_set() and pipeline.source_ended.is_set()
    assert not pipeline.alive and live_threads() == []
    assert pipeline.status.phase is Phase.ENDED and pipeline.error is None


def test_a_video_with_garbage_frames_in_the_middle_plays_past_them(
    small_model: Model, whole_video: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    damaged = corrupt_frames(whole_video, tmp_path / "damaged.avi", BAD)
    assert playable_frames(damaged) == BAD.start  # plain OpenCV stops at the damage
    source = VideoSource(damaged, loop=False, pace="max")
    with caplog.at_level(logging.WARNING, logger="live.sources"):
        pipeline, results, stats = _run_video(small_model, source)
    _assert_ended_cleanly(pipeline)
    numbers = [frame_number(r.frame.image) for r in results]
    assert numbers == [i for i in range(N_FRAMES) if i not in BAD]  # every good frame, in order, none twice
    assert len(results) == N_FRAMES - len(BAD) and stats["frames"] == len(results)
    assert stats["skipped_frames"] == len(BAD) and source.skipped == len(BAD)
    assert stats["errors"] == 0 and stats["dropped"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{damaged}: skipped {len(BAD)} undecodable frame(s) at frame {BAD.start}"]


def test_a_truncated_video_ends_cleanly_where_it_stops_decoding(
    small_model: Model, whole_video: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = whole_video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    good = playable_frames(cut)
    assert N_FRAMES // 3 < good < N_FRAMES  # the header still announces all 40
    with caplog.at_level(logging.WARNING, logger="live.sources"):
        pipeline, results, stats = _run_video(small_model, VideoSource(cut, loop=False, pace="max"))
    _assert_ended_cleanly(pipeline)
    assert [frame_number(r.frame.image) for r in results] == list(range(good))
    assert stats["skipped_frames"] == N_FRAMES - good
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"skipped {N_FRAMES - good} undecodable frame(s) at frame {good} of {N_FRAMES}" in warnings[0]
    assert "nothing after them decodes" in warnings[0]


def test_a_damaged_video_loops_and_warns_once(
    whole_video: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    damaged = corrupt_frames(whole_video, tmp_path / "damaged.avi", BAD)
    good = N_FRAMES - len(BAD)
    with caplog.at_level(logging.WARNING, logger="live.sources"), VideoSource(damaged, pace="max") as source:
        frames = [source.read() for _ in range(2 * good + 5)]
    assert all(f is not None for f in frames)
    one_pass = [i for i in range(N_FRAMES) if i not in BAD]
    assert [frame_number(f.image) for f in frames] == (one_pass * 3)[: len(frames)]  # type: ignore[union-attr]
    assert source.skipped == 2 * len(BAD)  # counted on every pass
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1  # said once


def test_a_video_whose_first_frames_are_damaged_still_opens(whole_video: Path, tmp_path: Path) -> None:
    damaged = corrupt_frames(whole_video, tmp_path / "head.avi", range(0, 3))
    with VideoSource(damaged, loop=False, pace="max") as source:
        first = source.read()
        assert first is not None and frame_number(first.image) == 3
        assert source.skipped == 3


# ----------------------------------------------------------------------------- a frame the forward rejects


def test_a_frame_that_fails_preprocessing_is_reported_and_the_run_goes_on(
    net_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A 64x1 banner in a slideshow: cv2.dnn's letterbox resize asserts on it (inv_scale_y or _x > 0), a real
    # cv2.error raised inside the forward thread; before the fix it ended the thread ("forward failed").
    folder = tmp_path / "slides"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "a.png"), np.full((48, 64, 3), 60, np.uint8))
    assert cv2.imwrite(str(folder / "b.png"), np.full((1, 64, 3), 120, np.uint8))
    assert cv2.imwrite(str(folder / "c.png"), np.full((48, 64, 3), 200, np.uint8))
    model = Model.load(net_dir / "two_heads.onnx", Settings(preprocess={"size": (32, 32), "crop": "letterbox"}))
    pipeline = Pipeline(model, FolderSource(folder, interval=0.3, loop=False), View(layer="lrelu"))
    statuses: set[Status] = set()
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            statuses.add(pipeline.status)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    results: list[Result] = []
    try:
        with caplog.at_level(logging.WARNING, logger="live.pipeline"):
            stats = run_headless(pipeline, on_result=results.append, timeout_s=30)
    finally:
        watching.set()
        watcher.join(1)
    _assert_ended_cleanly(pipeline)
    levels = [round(float(r.frame.image.mean())) for r in results]
    assert 60 in levels and 200 in levels and 120 not in levels
    assert levels.index(200) > levels.index(60)  # results go on after the bad frames
    bad = [r for r in caplog.records if r.name == "live.pipeline" and r.levelno == logging.WARNING]
    assert bad and stats["errors"] == len(bad)
    last_a = max(r.frame.index for r in results if round(float(r.frame.image.mean())) == 60)
    first_c = min(r.frame.index for r in results if round(float(r.frame.image.mean())) == 200)
    for record in bad:
        message = record.getMessage()
        assert message.startswith("frame ") and "(64x1)" in message and "inv_scale_" in message
        assert last_a < int(message.split()[1]) < first_c  # "frame N": the number of a frame of b.png
    assert any(s.phase is Phase.FRAME_FAILED and "inv_scale_" in s.message for s in statuses), statuses
