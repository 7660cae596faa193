"""``live analyze`` and ``live.analyze``: top-k frames and statistics per unit, on a real Dask cluster.

Every result is compared with a brute force computed here: every frame of
every input through ``live.Network.tap``, each unit's score its map's maximum,
at most one frame per unit per (source, window of ``gap`` seconds), the best
``k`` by score (ties: source, then frame). One worker, two workers, a worker
killed with SIGKILL while tasks run, and a run stopped by SIGTERM and resumed
must all give the same frame indices and scores.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest

import live
from tests import nets
from tests.helpers import REPO, assert_one_line_error, decoded_frames, run_live, wait_for, write_clip

LAYERS = ["block1/add", "down_relu"]
K = 3
GAP = 0.2  # seconds: 5 frames at the clips' 25 fps
PARTS_KILLED, CHUNK_KILLED = 12, 60  # the killed-worker run: long enough to kill a worker while tasks run
PARTS_RESUMED, CHUNK_RESUMED = 12, 40  # the resumed run


@pytest.fixture(scope="module")
def net_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real classifier (32x32 input; tapped layers of 8 x 32 x 32 and 16 x 16 x 16)."""
    path = tmp_path_factory.mktemp("net") / "branchy.onnx"
    onnx.save(nets.branchy(), str(path))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two real videos, a folder of images with one broken file, a list file, and a file that is no video."""
    folder = tmp_path_factory.mktemp("inputs")
    long_clip = write_clip(folder / "long.avi", frames=40, size=(64, 48))
    short_clip = write_clip(folder / "short.avi", frames=12, size=(40, 40))
    images = folder / "photos"
    images.mkdir()
    rng = np.random.default_rng(5)
    for i in range(3):
        picture = rng.integers(0, 256, (30 + 4 * i, 36, 3), dtype=np.uint8)
        cv2.imwrite(str(images / f"img{i}.png"), picture)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")
    listing = folder / "more.txt"
    listing.write_text(f"# the short clip, by a path relative to this list\n{short_clip.name}\n")
    not_video = folder / "notes.mp4"
    not_video.write_text("this is text, not a video\n")
    return {
        "args": [long_clip, images, listing, not_video],
        "videos": [long_clip, short_clip],
        "images": sorted(p for p in images.iterdir() if p.name != "broken.png"),
        "bad": [images / "broken.png", not_video],
    }


# ----------------------------------------------------------------------------- the brute force


def _window(time_s: float, gap: float, frame: int) -> float:
    """The reducer's window rule: windows of ``gap`` seconds of a source's time line; 0: each frame its own."""
    return float(frame) if gap == 0 else math.floor(time_s / gap)


def brute_force(net_path: Path, videos: list[Path], images: list[Path], k: int, gap: float, every: int = 1) -> dict:
    """Top-k records ``(source, frame, score)`` per layer and unit, and per-unit count/max/mean, from every frame."""
    net = live.Network(net_path)
    best: dict[str, dict[tuple[int, str, float], tuple[float, str, int]]] = {name: {} for name in LAYERS}
    sums: dict[str, list[np.ndarray]] = {name: [] for name in LAYERS}

    def feed(source: str, frame: int, time_s: float, image: np.ndarray) -> None:
        taps = net.tap(image, LAYERS)
        for name in LAYERS:
            maps = live.feature_maps(taps[name])
            sums[name].append(maps.reshape(maps.shape[0], -1).astype(np.float64))
            scores = maps.reshape(maps.shape[0], -1).max(axis=1)
            window = _window(time_s, gap, frame)
            for unit, score in enumerate(scores.tolist()):
                key = (unit, source, window)
                old = best[name].get(key)
                if old is None or score > old[0]:  # ties: the earlier frame stays
                    best[name][key] = (score, source, frame)

    for video in videos:
        for index, time_s, image in decoded_frames(video):
            if index % every == 0:
                feed(str(video), index, time_s, image)
    for path in images:
        feed(str(path), 0, 0.0, cv2.imread(str(path)))
    result: dict[str, Any] = {}
    for name in LAYERS:
        values = np.concatenate(sums[name], axis=1)
        units = values.shape[0]
        top = []
        for unit in range(units):
            records = [rec for (u, _, _), rec in best[name].items() if u == unit]
            records.sort(key=lambda r: (-r[0], r[1], r[2]))
            top.append([(source, frame, score) for score, source, frame in records[:k]])
        result[name] = {
            "top": top,
            "count": values.shape[1],
            "max": values.max(axis=1).tolist(),
            "mean": values.mean(axis=1).tolist(),
            "std": values.std(axis=1).tolist(),
        }
    return result


def assert_matches(manifest: dict, stats: dict, expected: dict) -> None:
    """The manifest's top-k (frame indices and scores) and the statistics equal the brute force."""
    for name in LAYERS:
        layer = manifest["layers"][name]
        want = expected[name]
        assert layer["units"] == len(want["top"])
        got = [[(r["source"], r["frame"], r["score"]) for r in unit] for unit in layer["top"]]
        assert got == want["top"], name
        units = stats["layers"][name]["units"]
        assert [u["count"] for u in units] == [want["count"]] * len(units)
        assert [u["max"] for u in units] == want["max"]
        assert [u["mean"] for u in units] == pytest.approx(want["mean"], rel=1e-9, abs=1e-9)
        assert [u["std"] for u in units] == pytest.approx(want["std"], rel=1e-7, abs=1e-9)


def assert_reducer_matches(reducer: Any, expected: dict) -> None:
    """The same comparison, on the reducer the Python API returns."""
    for name in LAYERS:
        layer = reducer.layers[name]
        got = [[(r.source, r.frame, r.score) for r in layer.top(unit)] for unit in range(layer.units)]
        assert got == expected[name]["top"], name
        assert layer.max.tolist() == expected[name]["max"]


def _read(out: Path) -> tuple[dict, dict]:
    return json.loads((out / "manifest.json").read_text()), json.loads((out / "stats.json").read_text())


def _layer_args() -> list[str]:
    return [arg for name in LAYERS for arg in ("--layer", name)]


# ----------------------------------------------------------------------------- the command line


@pytest.mark.opencv
def test_one_worker_matches_brute_force_and_reports_unreadable_files(
    net_path: Path, inputs: dict, tmp_path: Path
) -> None:
    out = tmp_path / "analysis"
    result = run_live(
        "analyze", "--model", net_path, *_layer_args(), *inputs["args"], "--out", out,
        "--k", K, "--gap", GAP, "--workers", 1, "--chunk", 16, "--json", "--progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    bar = result.stderr.replace("\r", "\n").splitlines()
    assert any("live analyze: 100%" in line and "frame/s" in line and "6/6 files" in line for line in bar), bar
    report = json.loads(result.stdout)
    manifest, stats = _read(out)
    expected = brute_force(net_path, inputs["videos"], inputs["images"], K, GAP)
    assert_matches(manifest, stats, expected)
    # 40 frames in chunks of 16: 3 parts; the short clip 1; the three images 1.
    assert report["parts"] == {"total": 5, "reused": 0, "computed": 5}
    assert manifest["frames"] == report["frames"] == 40 + 12 + 3
    assert manifest["options"]["k"] == K and manifest["options"]["gap_s"] == GAP
    skipped = {s["source"]: s["reason"] for s in manifest["skipped"]}
    assert set(skipped) == {str(p) for p in inputs["bad"]}
    warnings = [line for line in result.stderr.splitlines() if line.startswith("live: warning: skipped")]
    assert len(warnings) == 2, result.stderr
    assert "Traceback" not in result.stderr
    # Thumbnails exist where the manifest says; the gallery and the saved state are there.
    thumbs = [r["thumb"] for layer in manifest["layers"].values() for unit in layer["top"] for r in unit]
    assert thumbs and all((out / t).is_file() for t in thumbs)
    assert (out / "index.html").is_file()
    assert stats["model"] == str(net_path)


@pytest.mark.opencv
def test_resumed_run_reuses_parts_and_is_exact(net_path: Path, inputs: dict, tmp_path: Path) -> None:
    """SIGTERM stops a run after some parts are saved; the rerun loads those (untouched) and computes the rest."""
    out = tmp_path / "analysis"
    clip = write_clip(tmp_path / "clip.avi", frames=PARTS_RESUMED * CHUNK_RESUMED, size=(64, 48))
    args = [
        "analyze", "--model", net_path, *_layer_args(), clip, "--out", out,
        "--k", K, "--gap", GAP, "--workers", 1, "--chunk", CHUNK_RESUMED, "--json",
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    child = subprocess.Popen(
        [sys.executable, "-m", "live", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for(lambda: len(list(out.glob("parts/*/part.json"))) >= 3, 240, "three saved parts")
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    saved = {p: p.stat().st_mtime_ns for p in sorted(out.glob("parts/*/part.json"))}
    assert 3 <= len(saved) < PARTS_RESUMED, "the run was meant to stop part-way"
    assert not (out / "manifest.json").exists()
    damaged = next(iter(saved))  # a saved part whose state is damaged is computed again
    (damaged.parent / "state" / "state.json").write_text("{not json")
    del saved[damaged]

    result = run_live(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["parts"]["total"] == PARTS_RESUMED
    assert report["parts"]["reused"] == len(saved)
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in saved.items()), "a saved part was computed again"
    assert json.loads((damaged.parent / "state" / "state.json").read_text())  # written again
    manifest, stats = _read(out)
    assert_matches(manifest, stats, brute_force(net_path, [clip], [], K, GAP))


@pytest.mark.opencv
@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--layer", "no_such_layer"], ["no_such_layer"]),
        (["--k", "0"], ["--k", "0"]),
        (["--scheduler", "carrier-pigeon"], ["carrier-pigeon"]),
        (["--scheduler", "tcp://127.0.0.1:{port}"], ["cannot reach the Dask scheduler", "127.0.0.1"]),
        (["--out", "{file}"], ["is a file"]),
        (["--every", "-1"], ["--every"]),
    ],
)
def test_bad_options_are_one_line(net_path: Path, tmp_path: Path, extra: list[str], needles: list[str]) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=4)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the run: nothing listens there
    extra = [e.format(port=port, file=a_file) for e in extra]
    out = [] if "--out" in extra else ["--out", str(tmp_path / "out")]
    result = run_live("analyze", "--model", net_path, clip, *out, *extra)
    assert result.returncode == 2
    assert_one_line_error(result, *[n.format(port=port) for n in needles])


def test_no_inputs_is_one_line(tmp_path: Path) -> None:
    result = run_live("analyze", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert_one_line_error(result, "INPUT")


@pytest.mark.opencv
def test_only_unreadable_inputs_is_one_line(net_path: Path, inputs: dict, tmp_path: Path) -> None:
    result = run_live("analyze", "--model", net_path, *inputs["bad"], tmp_path / "missing.avi", "--out", tmp_path / "o")
    assert result.returncode == 2
    assert_one_line_error(result, "nothing to analyze")


# ----------------------------------------------------------------------------- the Python API, on the test's cluster


def _loaded_models() -> int:
    """Run on a worker: how many networks its process loaded for analysis tasks."""
    from live.analyze import loaded_models

    return loaded_models()


@pytest.mark.opencv
def test_api_two_workers_and_a_killed_worker_on_a_real_cluster(net_path: Path, inputs: dict, tmp_path: Path) -> None:
    """``live.analyze`` on a LocalCluster the test starts: two workers, then one SIGKILLed mid-run; both exact."""
    from distributed import Client, LocalCluster

    clip = write_clip(tmp_path / "clip.avi", frames=PARTS_KILLED * CHUNK_KILLED, size=(64, 48))
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        address = cluster.scheduler_address
        # Two workers, the module's inputs.
        reducer = live.analyze(
            net_path, LAYERS, inputs["args"], out=tmp_path / "two", k=K, gap=GAP, scheduler=address, workers=2, chunk=16
        )
        expected = brute_force(net_path, inputs["videos"], inputs["images"], K, GAP)
        assert_reducer_matches(reducer, expected)
        assert_matches(*_read(tmp_path / "two"), expected)
        # Each worker process loaded the network once, whatever number of tasks it ran.
        loaded = client.run(_loaded_models)
        assert sorted(loaded.values()) in ([1, 1], [0, 1])

        # A worker killed while the tasks run: its part is retried elsewhere, the result is still exact.
        out = tmp_path / "killed"
        done: dict[str, Any] = {}

        def work() -> None:
            try:
                done["reducer"] = live.analyze(
                    net_path, LAYERS, [clip], out=out, k=K, gap=GAP, scheduler=address, workers=2, chunk=CHUNK_KILLED
                )
            except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
                done["error"] = exc

        thread = threading.Thread(target=work)
        thread.start()
        wait_for(lambda: len(list(out.glob("parts/*/part.json"))) >= 2, 240, "two saved parts")
        assert len(list(out.glob("parts/*/part.json"))) < PARTS_KILLED - 2, "the run was too quick to kill a worker in"
        pids = client.run(os.getpid)
        busy = [address for address, keys in client.processing().items() if keys and address in pids]
        victim = pids[busy[0] if busy else sorted(pids)[0]]  # a worker with a task on it
        os.kill(victim, signal.SIGKILL)
        thread.join(600)
        assert not thread.is_alive()
        assert "error" not in done, done.get("error")
        assert len(list(out.glob("parts/*/part.json"))) == PARTS_KILLED
        wait_for(lambda: len(client.scheduler_info()["workers"]) == 2, 120, "the nanny restarting the worker")
        assert victim not in client.run(os.getpid).values()
        expected = brute_force(net_path, [clip], [], K, GAP)
        assert_reducer_matches(done["reducer"], expected)
        assert_matches(*_read(out), expected)


@pytest.mark.opencv
def test_api_threads_without_output(net_path: Path, inputs: dict) -> None:
    """``scheduler="threads"`` and ``out=None``: nothing written, the reducer returned; ``every`` samples frames."""
    reducer = live.analyze(net_path, LAYERS, inputs["videos"], k=2, gap=0, every=3, scheduler="threads", workers=2)
    assert_reducer_matches(reducer, brute_force(net_path, inputs["videos"], [], 2, 0, every=3))
    assert reducer.layers[LAYERS[0]].frames == len(range(0, 40, 3)) + len(range(0, 12, 3))


def test_live_analyze_is_callable_whichever_is_imported_first() -> None:
    """``live.analyze`` is the API function and the module ``live/analyze.py``: both calls work, in either order."""
    code = (
        "import inspect, live.analyze as module, live; from live.api import analyze;"
        "print(callable(live.analyze), live.analyze is module, module.analyze is analyze,"
        " list(inspect.signature(live.analyze).parameters)[:3] == ['model', 'layers', 'inputs'])"
    )
    for first in ("import live; live.analyze;", ""):
        done = subprocess.run(
            [sys.executable, "-c", first + code], capture_output=True, text=True, cwd=REPO, timeout=120
        )
        assert done.stdout.split() == ["True"] * 4, done.stderr
