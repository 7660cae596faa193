"""Benchmark: what the visualizer costs next to the forward pass.

In one run, on the same video frames, model, layer, engine and target:

(a) ``forward_only``: preprocess + forward with the layer tapped, frames
    already decoded in memory, nothing else: the ceiling.
(b) ``pipeline``: ``live run --headless --pace max``: the capture thread
    decodes the video, the forward thread runs the network and builds the
    grid, the consumer takes every result.
(c) ``window``: the same pipeline with the real window (offscreen Qt),
    showing each result it gets.
(d) ``baseline``: the original C++ sample ported plainly to Python: read a
    frame, ``blobFromImage``, ``net.forward(layer)``, then per map a min-max
    ``cv2.normalize``, ``cv2.applyColorMap`` and a copy into the grid, one
    after the other.

Reports frames/s of each, the ratios (b)/(a) and (c)/(a), end-to-end latency
(mean, p95) and dropped frames. The default network is GoogLeNet's
architecture (the onnx package's inception_v1 with seeded weights) at
224x224 on the CPU, on the classic engine (the only one where the
baseline's ``net.forward(layer)`` returns the right tensor on OpenCV 5).

Usage, from the repository root::

    python benchmarks/bench_pipeline.py [--quick] [--json out.json] [--chart out.png]
        [--model PATH] [--layer NAME] [--source VIDEO] [--frames N] [--engine classic|new|auto]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import live  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
from common import (
    add_output_options,
    bar_chart,
    machine_info,
    print_table,
    progress_bar,
    redraw_only,
    summarize,
    write_json,
)
from tqdm import tqdm

from live.assets import data_file
from live.frames import View
from live.maps import GridOptions
from live.model import Model, Settings
from live.pipeline import Pipeline, run_headless
from live.sources import SyntheticSource, VideoSource

TARGET_PIPELINE = 0.95
TARGET_WINDOW = 0.90
# The four modes: their names in the table and the chart, and their frames/s key in the JSON.
MODES: list[tuple[str, str]] = [
    ("(a) forward only", "forward_only_fps"),
    ("(b) pipeline, headless", "pipeline_fps"),
    ("(c) pipeline + window", "window_fps"),
    ("(d) baseline (C++ sample port)", "baseline_fps"),
]


def default_model(folder: Path) -> Path:
    """GoogLeNet's architecture with seeded weights, written to ``folder``."""
    import onnx
    from synthetic import light_model

    path = folder / "googlenet.onnx"
    onnx.save(light_model("googlenet"), str(path))
    return path


def video_frames(source: Path | None, count: int, folder: Path) -> Path:
    """A video file with at least ``count`` frames: the given one, or one made from the demo."""
    if source is not None:
        return source
    clip = data_file("demo.mp4")
    if clip is not None:
        return clip
    path = folder / "synthetic.avi"
    synthetic = SyntheticSource(size=(640, 480))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(count):
        writer.write(synthetic.render(i))
    writer.release()
    return path


def decode(path: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            if not frames:
                raise SystemExit(f"cannot read frames from {path}")
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(frame)
    cap.release()
    return frames


def forward_only(model: Model, layer: str, frames: list[np.ndarray], progress: tqdm) -> dict:
    model.forward(model.blob(frames[0]), [layer])  # warm-up
    times = []
    start = time.perf_counter()
    for frame in frames:
        t0 = time.perf_counter()
        model.forward(model.blob(frame), [layer])
        times.append((time.perf_counter() - t0) * 1e3)
        progress.update()
    elapsed = time.perf_counter() - start
    return {"fps": len(frames) / elapsed, "forward_ms": summarize(times)}


def pipeline_run(model: Model, layer: str, clip: Path, count: int, window: bool) -> dict:
    source = VideoSource(clip, loop=True, pace="max")
    pipeline = Pipeline(model, source, View(layer=layer))
    if not window:
        gui_cpu = time.thread_time()
        stats = run_headless(pipeline, count)
        gui_cpu = (time.thread_time() - gui_cpu) * 1e3 / max(stats["frames"], 1)
    else:
        stats, gui_cpu = run_timed_window(pipeline, count)
    return {
        "fps": stats["forward_fps_overall"],
        "consumer_cpu_ms_per_frame": gui_cpu,
        "shown_fps": stats.get("display_fps", stats.get("result_fps")),
        "latency_ms": stats["latency_ms"],
        "forward_ms": stats["forward_ms"],
        "dropped": stats["dropped"],
        "frames": stats["frames"],
    }


def run_timed_window(pipeline: Pipeline, count: int) -> tuple[dict, float]:
    """The real window until ``count`` results are shown; returns its stats and the GUI
    thread's CPU ms per shown frame, from the first shown frame on (start-up excluded)."""
    from pyqtgraph.Qt import QtWidgets

    from live.qt_window import LiveWindow

    marks: list[float] = []

    class TimedWindow(LiveWindow):
        def _show(self, result: object) -> None:
            if not marks:
                marks.append(time.thread_time())
            super()._show(result)  # type: ignore[arg-type]

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench"])
    window = TimedWindow(pipeline, frames=count)
    window.show()
    app.exec()  # the window closes itself after `count` results
    gui_ms = (time.thread_time() - marks[0]) * 1e3 / max(window.shown - 1, 1) if marks else 0.0
    return pipeline.stats_snapshot(), gui_ms


def median_run(runs: list[dict]) -> dict:
    """The run with the median frame rate (its latencies stay consistent with its rate)."""
    ordered = sorted(runs, key=lambda r: r["fps"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["fps_all_rounds"] = [round(r["fps"], 2) for r in runs]
    return chosen


def time_decode(clip: Path, count: int) -> float:
    """Median ms to decode one frame of the clip (the capture thread's work)."""
    cap = cv2.VideoCapture(str(clip))
    times = []
    while len(times) < count:
        t0 = time.perf_counter()
        ok, _ = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        times.append((time.perf_counter() - t0) * 1e3)
    cap.release()
    return float(np.median(times))


def time_grid(model: Model, layer: str, frame: np.ndarray) -> float:
    """Median ms to build the layer's grid (the forward thread's extra work)."""
    blob = model.forward(model.blob(frame), [layer])[layer]
    builder = GridOptions().builder()
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        builder.build(blob)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def baseline(model_path: Path, layer_name: str, clip: Path, count: int, size: int, progress: tqdm) -> dict:
    """The original sample, ported plainly: serial, one map at a time."""
    net = cv2.dnn.readNet(str(model_path), "", "", cv2.dnn.ENGINE_CLASSIC) if hasattr(cv2.dnn, "ENGINE_CLASSIC") \
        else cv2.dnn.readNet(str(model_path))  # fmt: skip
    names = [n for n in net.getLayerNames() if n.endswith(layer_name) or n.endswith(f"!{layer_name}")]
    if not names:
        raise SystemExit(f"baseline: no classic-engine layer named like {layer_name}")
    cap = cv2.VideoCapture(str(clip))
    times, done = [], 0
    start = time.perf_counter()
    while done < count:
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        t0 = time.perf_counter()
        blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, (size, size), swapRB=True)
        net.setInput(blob)
        out = net.forward(names[0])
        maps = out[0]
        c, h, w = maps.shape
        cols = int(np.ceil(np.sqrt(c)))
        rows = int(np.ceil(c / cols))
        grid = np.zeros((rows * (h + 1), cols * (w + 1), 3), np.uint8)
        for i in range(c):
            norm = cv2.normalize(maps[i], None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U)
            colored = cv2.applyColorMap(norm, cv2.COLORMAP_VIRIDIS)
            r, q = divmod(i, cols)
            grid[r * (h + 1) : r * (h + 1) + h, q * (w + 1) : q * (w + 1) + w] = colored
        times.append((time.perf_counter() - t0) * 1e3)
        done += 1
        progress.update()
    cap.release()
    elapsed = time.perf_counter() - start
    return {"fps": count / elapsed, "frame_ms": summarize(times)}


def draw_chart(result: dict, path: Path) -> None:
    """Frames/s of the four modes, from the JSON this script writes."""
    shape = "x".join(map(str, result.get("layer_shape") or [])) or "?"
    title = (
        f"Frames/s, {result['model']} tapping {result['layer']} ({shape}), "
        f"{result['engine']}/{result['target']}, {result['frames']} frames"
    )
    values = [float(result[key]) if result.get(key) is not None else float("nan") for _, key in MODES]
    bar_chart(path, title, [name for name, _ in MODES], values, "frames/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames (about a minute)")
    parser.add_argument("--model", type=Path, help="ONNX model (default: GoogLeNet architecture, seeded weights)")
    parser.add_argument("--layer", help="layer to tap (default: the model's default layer)")
    parser.add_argument("--source", type=Path, help="video (default: the bundled demo clip)")
    parser.add_argument("--frames", type=int, help="frames per measurement (default 200, quick 60)")
    parser.add_argument("--engine", choices=("classic", "new", "auto"), default="classic")
    parser.add_argument("--threads", type=int, help="OpenCV threads")
    parser.add_argument("--rounds", type=int, help="rounds of all four modes; medians reported (default 3, quick 1)")
    add_output_options(parser, "the figures")
    args = parser.parse_args(argv)
    if redraw_only(args, draw_chart):
        return 0
    count = args.frames or (60 if args.quick else 200)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.threads:
        cv2.setNumThreads(args.threads)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_path = args.model or default_model(folder)
        clip = video_frames(args.source, count, folder)
        settings = Settings(engine=args.engine, preprocess={"size": (224, 224), "crop": "none"})
        model = Model.load(model_path, settings)
        layer = model.layer(args.layer or model.default_layer)
        frames = decode(clip, count)
        print(
            f"model {model_path.name}, layer {layer.name} {layer.shape}, engine {model.engine}, "
            f"target {model.target}, {count} frames of {clip.name} ({frames[0].shape[1]}x{frames[0].shape[0]})",
            file=sys.stderr,
        )
        GridOptions().builder().build(np.zeros(layer.shape, np.float32))  # import and allocate once

        runs: dict[str, list[dict]] = {"a": [], "b": [], "c": [], "d": []}
        window_model = Model.load(model_path, settings)
        progress = progress_bar(2 * count * args.rounds, "forward-only + baseline")
        for round_ in range(args.rounds):
            # Interleaved, so that a slow spell of this shared machine hits every mode alike.
            runs["a"].append(forward_only(model, layer.name, frames, progress))
            runs["d"].append(baseline(model_path, layer.node or layer.name, clip, count, 224, progress))
            print(f"round {round_ + 1}/{args.rounds}: pipeline headless, then with the window", file=sys.stderr)
            runs["b"].append(pipeline_run(model, layer.name, clip, count, window=False))
            runs["c"].append(pipeline_run(window_model, layer.name, clip, count, window=True))
        progress.close()
        a, b, c, d = (median_run(runs[k]) for k in "abcd")
        decode_ms = time_decode(clip, count)
        grid_ms = time_grid(model, layer.name, frames[0])

    result = {
        "machine": machine_info(),
        "model": str(model_path.name),
        "layer": layer.name,
        "layer_shape": list(layer.shape or ()),
        "engine": model.engine,
        "target": model.target,
        "frames": count,
        "forward_only_fps": round(a["fps"], 2),
        "pipeline_fps": round(b["fps"], 2),
        "window_fps": round(c["fps"], 2),
        "baseline_fps": round(d["fps"], 2),
        "pipeline_ratio": round(b["fps"] / a["fps"], 3),
        "window_ratio": round(c["fps"] / a["fps"], 3),
        "pipeline_vs_baseline": round(b["fps"] / d["fps"], 2),
        "rounds": args.rounds,
        "shares_of_forward_frame": {
            "decode_ms": round(decode_ms, 3),
            "grid_ms": round(grid_ms, 3),
            "window_gui_cpu_ms": round(c["consumer_cpu_ms_per_frame"], 3),
            "forward_ms": round(1e3 / a["fps"], 3),
            "decode": round(decode_ms * a["fps"] / 1e3, 4),
            "grid": round(grid_ms * a["fps"] / 1e3, 4),
            "window_gui": round(c["consumer_cpu_ms_per_frame"] * a["fps"] / 1e3, 4),
        },
        "pipeline": b,
        "window": c,
        "forward_only": a,
        "baseline": d,
        "targets": {
            "pipeline_ratio_0.95": b["fps"] / a["fps"] >= TARGET_PIPELINE,
            "window_ratio_0.90": c["fps"] / a["fps"] >= TARGET_WINDOW,
            "pipeline_ahead_of_baseline": b["fps"] > d["fps"],
        },
    }

    def row(mode: str, fps: float, latency: dict, dropped: int) -> dict:
        return {"mode": mode, "fps": fps, "ratio": fps / a["fps"], "lat": latency["mean"], "p95": latency["p95"],
                "dropped": dropped}  # fmt: skip

    (name_a, _), (name_b, _), (name_c, _), (name_d, _) = MODES
    rows = [
        row(name_a, a["fps"], a["forward_ms"], 0),
        row(name_b, b["fps"], b["latency_ms"], b["dropped"]),
        row(name_c, c["fps"], c["latency_ms"], c["dropped"]),
        row(name_d, d["fps"], d["frame_ms"], 0),
    ]
    print(f"{result['model']} layer {layer.name} {layer.shape}, {model.engine}/{model.target}, {count} frames")
    columns = [("mode", "mode", "<32"), ("fps", "frames/s", ">9.1f"), ("ratio", "vs (a)", ">7.3f"),
               ("lat", "latency ms", ">11.1f"), ("p95", "p95 ms", ">8.1f"), ("dropped", "dropped", ">8d")]  # fmt: skip
    print_table(rows, columns)
    shares = result["shares_of_forward_frame"]
    print(
        f"per frame, next to (a)'s {shares['forward_ms']:.1f} ms: video decode {shares['decode_ms']:.2f} ms "
        f"({shares['decode']:.1%}, capture thread), grid {shares['grid_ms']:.2f} ms ({shares['grid']:.1%}, "
        f"forward thread), window painting {shares['window_gui_cpu_ms']:.1f} ms of CPU ({shares['window_gui']:.1%}, "
        "GUI thread); on 2 cores the forward pass already uses both, so each competes with it"
    )
    verdict = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in result["targets"].items())
    print(f"targets: {verdict}")
    if args.json:
        write_json(args.json, result)
    if args.chart:
        draw_chart(result, args.chart)
        print(f"wrote {args.chart}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
