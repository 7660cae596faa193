"""The capture/forward threads, the latest-wins slot, stats, and `live run --headless` on real videos."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from live.errors import OutputError
from live.frames import Result, View
from live.maps import GridBuilder
from live.model import Model
from live.output import Recorder
from live.pipeline import Phase, Pipeline, Slot, run_headless
from live.sources import VideoSource, open_source
from live.stats import LatencyMeter, RateMeter
from tests.helpers import (
    REPO,
    assert_one_line_error,
    children,
    hanging_probe_env,
    live_threads,
    run_live,
    wait_for,
    write_clip,
)

pytestmark = pytest.mark.opencv


# ----------------------------------------------------------------------------- slot and stats


def test_slot_latest_wins_and_counts_drops() -> None:
    slot: Slot[int] = Slot()
    assert slot.take(timeout=0) is None
    slot.put(1)
    slot.put(2)  # 1 was never taken
    assert slot.dropped == 1
    assert slot.take(timeout=0) == (2, 2)
    assert not slot.pending
    assert slot.take(timeout=0) is None  # nothing newer
    slot.put(3)
    assert slot.pending and slot.dropped == 1
    assert slot.wait_taken(timeout=0) is False
    assert slot.take(timeout=0) == (3, 3)
    assert slot.wait_taken(timeout=0) is True


def test_slot_close_wakes_a_waiting_taker() -> None:
    slot: Slot[int] = Slot()
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(slot.take(timeout=10)))
    thread.start()
    time.sleep(0.05)
    slot.close()
    thread.join(1.0)
    assert not thread.is_alive() and got == [None]
    assert slot.put(5) is False


def test_rate_and_latency_meters() -> None:
    rate = RateMeter(window_s=1.0)
    for i in range(11):
        rate.tick(100.0 + i * 0.1)  # 10 per second
    assert rate.rate(now=101.0) == pytest.approx(10.0)
    assert rate.overall() == pytest.approx(10.0)
    assert rate.rate(now=105.0) == 0.0  # window moved past the events
    lat = LatencyMeter(keep=100)
    values = np.arange(1, 101, dtype=float)
    for v in values:
        lat.add(v, t=float(v))
    summary = lat.summary()
    assert summary["mean"] == pytest.approx(50.5)
    assert summary["p95"] == pytest.approx(np.percentile(values, 95))
    _, ms = lat.series(since=91.0)
    assert list(ms) == list(range(91, 101))


# ----------------------------------------------------------------------------- the threads


def _pipeline(model_path: Path, clip: Path, layer: str, **source: object) -> Pipeline:
    model = Model.load(model_path)
    return Pipeline(model, VideoSource(clip, **source), View(layer=layer))


def test_every_frame_of_a_video_at_pace_max(net_dir: Path, clip: Path) -> None:
    pipeline = _pipeline(net_dir / "branchy.onnx", clip, "stem/swish", loop=False, pace="max")
    results: list[Result] = []
    stats = run_headless(pipeline, on_result=results.append, timeout_s=60)
    assert stats["frames"] == 30 and stats["dropped"] == 0 and stats["errors"] == 0
    assert [r.frame.index for r in results] == list(range(30))
    assert stats["forward_ms"]["mean"] > 0 and stats["latency_ms"]["p95"] >= stats["forward_ms"]["p50"]
    # What came through the threads is what the model gives for that frame.
    model = Model.load(net_dir / "branchy.onnx")
    last = results[-1]
    expected = model.forward(model.blob(last.frame.image), ["stem/swish"])["stem/swish"]
    np.testing.assert_allclose(last.blob, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(last.grid, GridBuilder().build(expected).image)
    assert last.seen.shape == (32, 32, 3) and last.crop == (0, 0, 96, 72)
    assert not pipeline.alive and live_threads() == []


@pytest.mark.parametrize("ending", ["budget", "source end", "close"])
def test_headless_without_a_taker_makes_the_first_and_last_results_only(ending: str, net_dir: Path, clip: Path) -> None:
    """Nothing needs each frame's grid: every frame is forwarded and counted; results are made for the first frame
    (a check that they can be) and the last."""
    loop = ending != "source end"
    pipeline = _pipeline(net_dir / "branchy.onnx", clip, "stem/swish", loop=loop, pace="max")
    if ending == "close":
        stats = run_headless(pipeline, timeout_s=1.5)
    else:
        stats = run_headless(pipeline, 45 if ending == "budget" else None, timeout_s=60)
    seq, last = pipeline.results.peek()
    assert seq == 2 and last is not None  # the first frame's, then the last's, made as the run ended
    frames = stats["frames"]
    assert frames == {"budget": 45, "source end": 30}.get(ending, frames) and frames > 1
    assert stats["errors"] == 0 and stats["dropped_results"] == 0
    assert stats["grid_shape"] == list(last.grid.shape) and stats["latency_ms"]["p95"] > 0
    if ending != "close":
        assert last.frame.index == frames - 1  # (the 30-frame clip loops; frames are numbered on)
    model = Model.load(net_dir / "branchy.onnx")
    expected = model.forward(model.blob(last.frame.image), ["stem/swish"])["stem/swish"]
    np.testing.assert_allclose(last.blob, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(last.grid, GridBuilder().build(expected).image)
    assert not pipeline.alive and live_threads() == []


def test_a_paced_consumer_gets_results_only_as_often_as_it_wants_them(net_dir: Path, clip: Path) -> None:
    """A window paces the results slot: frames in between are forwarded and counted, but no result is made."""
    pipeline = _pipeline(net_dir / "branchy.onnx", clip, "stem/swish", loop=True, pace="max")
    pipeline.results.ready_from(time.perf_counter())  # paced from the start
    taken: list[tuple[float, Result]] = []
    published: list[int] = []
    pipeline.on_publish = lambda: published.append(pipeline.results.seq)  # called in the forward thread
    with pipeline:
        deadline = time.perf_counter() + 3.0
        while time.perf_counter() < deadline:
            item = pipeline.results.take(after=taken[-1][1].seq if taken else 0, timeout=0.5)
            if item is not None:
                now = time.perf_counter()
                taken.append((now, item[1]))
                pipeline.results.ready_from(now + 0.1)  # 10 a second
    stats = pipeline.stats_snapshot()  # the threads have stopped: final counts
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(taken)]
    assert len(taken) >= 10 and min(gaps) >= 0.1 - 1e-3  # never sooner than asked
    assert stats["forwarded"] > 2 * len(taken)  # the network ran at its own pace meanwhile
    # Each result made was taken (the last one perhaps after the test stopped taking); the rest counted.
    assert published[: len(taken)] == [r.seq for _, r in taken] and len(published) - len(taken) <= 1
    assert stats["dropped_results"] == stats["forwarded"] - len(published)
    # Each result is the newest frame when it was made, and complete.
    indices = [r.frame.index for _, r in taken]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert all(r.grid.size and r.seen.size for _, r in taken)


def test_end_of_a_non_looping_source_stops_every_thread(net_dir: Path, clip: Path) -> None:
    pipeline = _pipeline(net_dir / "two_heads.onnx", clip, "lrelu", loop=False, pace="max").start()
    assert pipeline.finished.wait(30)
    deadline = time.perf_counter() + 1.0
    while pipeline.alive and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert not pipeline.alive, live_threads()
    assert pipeline.status.phase is Phase.ENDED
    assert pipeline.close()


def test_close_while_running_joins_within_a_second(net_dir: Path, clip: Path) -> None:
    pipeline = _pipeline(net_dir / "two_heads.onnx", clip, "lrelu", loop=True, pace="file").start()
    assert pipeline.results.take(timeout=20) is not None
    start = time.perf_counter()
    assert pipeline.close()
    assert time.perf_counter() - start < 1.0
    assert live_threads() == []


def test_switching_layer_and_norm_while_running(net_dir: Path, clip: Path) -> None:
    pipeline = _pipeline(net_dir / "branchy.onnx", clip, "stem/swish", loop=True, pace="max").start()
    try:
        first = pipeline.results.take(timeout=20)
        assert first is not None and first[1].grid.shape != (0, 0)
        pipeline.set_view(layer="down_relu", norm="layer")
        deadline = time.perf_counter() + 20
        result = first[1]
        while result.layer != "down_relu" and time.perf_counter() < deadline:
            got = pipeline.results.take(timeout=1)
            result = got[1] if got else result
        assert result.layer == "down_relu" and result.blob.shape == (1, 16, 16, 16)
        assert result.view.grid.norm == "layer" and result.grid.shape != first[1].grid.shape
        np.testing.assert_array_equal(result.grid, GridBuilder("layer").build(result.blob).image)
    finally:
        pipeline.close()


def test_switching_source_while_running(net_dir: Path, clip: Path, tmp_path: Path) -> None:
    other = write_clip(tmp_path / "other.avi", frames=10, size=(64, 48))
    pipeline = _pipeline(net_dir / "two_heads.onnx", clip, "lrelu", loop=True, pace="max").start()
    try:
        assert pipeline.results.take(timeout=20) is not None
        pipeline.set_source(str(other))
        deadline = time.perf_counter() + 20
        while time.perf_counter() < deadline:
            got = pipeline.results.take(timeout=1)
            if got and got[1].frame.image.shape == (48, 64, 3):
                break
        assert got and got[1].frame.image.shape == (48, 64, 3)
        assert pipeline.source_name == "video other.avi"
    finally:
        pipeline.close()


def test_pause_and_step(net_dir: Path, clip: Path) -> None:
    pipeline = _pipeline(net_dir / "two_heads.onnx", clip, "lrelu", loop=True, pace="max").start()
    try:
        assert pipeline.results.take(timeout=20) is not None
        pipeline.pause()
        # A frame already in the forward pass may still land: wait until none has come for a whole second.
        seq = pipeline.results.seq
        while pipeline.results.take(after=seq, timeout=1.0) is not None:
            seq = pipeline.results.seq
        time.sleep(0.4)
        assert pipeline.results.seq == seq
        pipeline.step()
        assert pipeline.results.take(after=seq, timeout=5) is not None
        assert pipeline.results.seq == seq + 1
    finally:
        pipeline.close()


def test_a_source_that_cannot_open_is_reported(net_dir: Path, tmp_path: Path) -> None:
    model = Model.load(net_dir / "two_heads.onnx")
    pipeline = Pipeline(model, open_source(str(tmp_path / "missing.avi")), View(layer="lrelu"))
    stats = run_headless(pipeline, timeout_s=10)
    assert stats["frames"] == 0
    assert pipeline.error and "missing.avi" in pipeline.error


# ----------------------------------------------------------------------------- the command


def test_run_headless_writes_stats_json(net_dir: Path, clip: Path, tmp_path: Path) -> None:
    stats_path = tmp_path / "s.json"
    result = run_live("run", "--source", clip, "-m", net_dir / "branchy.onnx", "--headless", "--frames", "45",
                      "--stats-json", stats_path, "--pace", "max", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    stats = json.loads(stats_path.read_text())
    for key in ("frames", "capture_fps", "forward_fps", "result_fps", "dropped", "forward_ms", "latency_ms",
                "engine", "backend", "target", "layer", "grid_shape"):  # fmt: skip
        assert key in stats, key
    assert stats["frames"] == 45  # the 30-frame clip loops
    assert {"mean", "p95"} <= set(stats["forward_ms"]) and {"mean", "p95"} <= set(stats["latency_ms"])
    assert stats["forward_fps"] > 0 and stats["engine"] and stats["target"] == "cpu"
    assert "45 results" in result.stdout


def test_run_headless_records_a_playable_video(net_dir: Path, clip: Path, tmp_path: Path) -> None:
    video = tmp_path / "grid.avi"
    result = run_live("run", "--source", clip, "-m", net_dir / "branchy.onnx", "--headless", "--no-loop",
                      "--pace", "max", "--record", video, "--record-input", "-l", "down_relu")  # fmt: skip
    assert result.returncode == 0, result.stderr
    cap = cv2.VideoCapture(str(video))
    frames = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames += 1
        assert image.shape[1] > image.shape[0]  # input beside the grid
    cap.release()
    assert frames == 30
    assert not list(tmp_path.glob(".grid*"))  # the temporary file was moved into place


def test_a_finished_recording_takes_no_more_frames(net_dir: Path, clip: Path, tmp_path: Path) -> None:
    """A frame offered after close() (a window's last wake-up) is refused; the video on disk keeps every frame."""
    video = tmp_path / "grid.avi"
    recorder = Recorder(video)
    results: list[Result] = []
    run_headless(_pipeline(net_dir / "branchy.onnx", clip, "stem/swish", loop=False, pace="max"), 12, results.append)
    for result in results[:-1]:
        recorder.write(result)
    assert recorder.close() == video
    with pytest.raises(OutputError, match=r"grid\.avi is finished"):
        recorder.write(results[-1])
    assert recorder.close() == video
    cap = cv2.VideoCapture(str(video))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == 11 and not list(tmp_path.glob(".grid*"))


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--source", "{tmp}/nothing.avi"], ["nothing.avi"]),
        (["--source", "{tmp}/empty"], ["no images", "empty"]),
        (["--frames", "0"], ["--frames", "0"]),
        (["--screenshot", "{tmp}/x.png"], ["--screenshot", "--headless"]),
        (["--record", "{tmp}/no/dir/out.mp4"], ["no/dir"]),
        (["--record", "{tmp}/out.gif"], ["out.gif"]),
        (["--layer", "nope"], ["nope"]),
    ],
)
def test_run_bad_input_is_one_line(args: list[str], needles: list[str], net_dir: Path, clip: Path, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    filled = [a.format(tmp=tmp_path) for a in args]
    base = ["run", "-m", net_dir / "two_heads.onnx", "--headless", "--size", "32"]
    if "--source" not in filled:
        base += ["--source", clip]
    assert_one_line_error(run_live(*base, *filled, cwd=tmp_path), *needles)


@pytest.mark.parametrize("headless", [True, False])
def test_ctrl_c_stops_cleanly_and_reports(net_dir: Path, clip: Path, tmp_path: Path, headless: bool) -> None:
    stats_path = tmp_path / "s.json"
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    args = [sys.executable, "-m", "live", "run", "--source", str(clip), "-m", str(net_dir / "two_heads.onnx"),
            "--size", "32", "--stats-json", str(stats_path), "--record", str(tmp_path / "rec.avi")] \
        + (["--headless"] if headless else [])  # fmt: skip
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def recording() -> bool:  # frames flow once the recording (under its temporary name) holds one
        assert proc.poll() is None, proc.communicate()
        return any(p.stat().st_size > 0 for p in tmp_path.glob(".rec.avi.*"))

    try:
        wait_for(recording, 120, "the first recorded frame")
        proc.send_signal(signal.SIGINT)
        start = time.perf_counter()
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert time.perf_counter() - start < 5.0
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    stats = json.loads(stats_path.read_text())
    assert stats["interrupted"] is True and stats["frames"] > 0
    # The recording stopped by Ctrl-C is a playable video up to its last frame.
    assert stats["recording"] == str(tmp_path / "rec.avi")
    cap = cv2.VideoCapture(stats["recording"])
    recorded = 0
    while cap.read()[0]:
        recorded += 1
    cap.release()
    assert recorded > 0 and recorded >= stats["frames"] - 1
    assert not list(tmp_path.glob(".rec*"))


@pytest.mark.parametrize("headless", [True, False])
def test_ctrl_c_while_the_model_loads(net_dir: Path, clip: Path, tmp_path: Path, headless: bool) -> None:
    """Ctrl-C during the load (here: in the crash check, whose child hangs) stops at once: exit 130, one line,
    the stats file says so, and no child process is left behind."""
    stats_path = tmp_path / "s.json"
    env = hanging_probe_env(tmp_path, dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen"))
    args = [sys.executable, "-m", "live", "run", "--source", str(clip), "-m", str(net_dir / "two_heads.onnx"),
            "--size", "32", "--stats-json", str(stats_path)] + (["--headless"] if headless else [])  # fmt: skip
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        probes = wait_for(
            lambda: [pid for pid, cmd in children(proc.pid) if "--multiprocessing-fork" in cmd], 120, "the probe child"
        )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip() == "live: interrupted while loading the model; nothing ran"
    assert json.loads(stats_path.read_text()) == {"interrupted": True, "frames": 0, "stage": "loading the model"}
    for pid in probes:  # the probe child was ended with its parent
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
