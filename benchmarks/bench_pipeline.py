"""Benchmark: what the visualizer costs next to the bare network.

In one run, on the same video frames, model, layer, engine and target:

(a) ``bare``: the reference. ``net.forward()`` of the same model file on the
    same engine, read with cv2.dnn directly, no tap, the input already a
    blob (every frame preprocessed beforehand): what the network alone
    delivers. Its rate is ``forward_only_fps`` in the JSON.
(f) ``floor``: the least any video pipeline does: one thread decodes each
    frame and preprocesses it (live's own ``blobFromImageWithParams``), the
    other runs the bare ``net.forward()`` on it, one frame in hand between
    them (``floor_fps``). What it loses against (a) is what decoding and
    preprocessing cost on this machine, whoever writes the pipeline; (b) and
    (c) are also reported against it.
(t) ``tapped``: what live's forward stage does without threads:
    preprocess + forward with the layer tapped (``tapped_forward_fps``).
(b) ``pipeline``: ``live run --headless --pace max``: the capture thread
    decodes and preprocesses the video, the forward thread runs the network
    with the layer tapped; with nothing that needs each frame's grid (no
    recording), only the last frame's result is made.
(c) ``window``: the same pipeline with the real window (offscreen Qt, or a
    real X server when ``DISPLAY`` is set and ``QT_QPA_PLATFORM=xcb``),
    showing at most 30 results a second as ``live`` does (the frames in
    between are computed and counted, their grids not made).
(d) ``baseline``: the original C++ sample ported plainly to Python: read a
    frame, ``blobFromImage``, ``net.forward(layer)``, then per map a min-max
    ``cv2.normalize``, ``cv2.applyColorMap`` and a copy into the grid, one
    after the other. Only on the classic engine: on the new one,
    ``net.forward(layer)`` can return another tensor.
(e) ``window, --pace file``: the window on the video played at its own rate,
    for the end-to-end latency (capture to the picture on screen) against the
    forward time.

Reports frames/s of each, every mode against (a), the stages of a frame
(decode, preprocess, the tap, the grid, what the network sees, the window's
painting), end-to-end latency (mean, p95) and dropped frames. The default
network is the bundled EfficientNet-Lite0 at its default layer, on the
engine ``live`` picks (what plain ``live`` runs); ``--model googlenet`` runs
GoogLeNet's architecture (the onnx package's inception_v1 with seeded
weights) at 224x224, ``--model PATH`` any ONNX file.

Usage, from the repository root::

    python benchmarks/bench_pipeline.py [--quick] [--json out.json] [--chart out.png]
        [--model bundled|googlenet|PATH] [--layer NAME] [--source VIDEO] [--frames N] [--engine auto|new|classic]
"""

from __future__ import annotations

import argparse
import itertools
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
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

from live.assets import DEFAULT_MODEL, data_file
from live.engines import ENGINE_IDS, HAS_CLASSIC, HAS_ENGINES, engine_of
from live.frames import View
from live.maps import GridOptions
from live.model import Model, Settings
from live.pipeline import Pipeline, run_headless
from live.sources import SyntheticSource, VideoSource

TARGET_PIPELINE = 0.95
TARGET_WINDOW = 0.90
TARGET_LATENCY = 1.5  # end-to-end p95 at --pace file, in forward times
# The four modes: their names in the table and the chart, and their frames/s key in the JSON.
MODES: list[tuple[str, str]] = [
    ("(a) bare net.forward()", "forward_only_fps"),
    ("(f) floor: decode+blob | forward", "floor_fps"),
    ("(t) preprocess + tapped forward", "tapped_forward_fps"),
    ("(b) pipeline, headless", "pipeline_fps"),
    ("(c) pipeline + window", "window_fps"),
    ("(d) baseline (C++ sample port)", "baseline_fps"),
]


def model_file(name: str, folder: Path) -> tuple[Path, Settings]:
    """The model to measure and its settings: the bundled one, GoogLeNet's architecture, or a file."""
    if name == "bundled":
        path = data_file(DEFAULT_MODEL)
        if path is None:
            raise SystemExit(f"the bundled {DEFAULT_MODEL} is missing")
        return path, Settings()
    if name == "googlenet":
        import onnx
        from synthetic import light_model

        path = folder / "googlenet.onnx"
        onnx.save(light_model("googlenet"), str(path))
        return path, Settings(preprocess={"size": (224, 224), "crop": "none"})
    return Path(name), Settings()


def read_bare(path: Path, engine: str) -> object:
    """The model file read by cv2.dnn directly on ``engine`` (as live reads it), checked to be that engine."""
    engine_id = ENGINE_IDS.get(engine)
    net = (
        cv2.dnn.readNet(str(path), "", "", engine_id)
        if HAS_ENGINES and engine_id is not None
        else cv2.dnn.readNet(str(path))
    )
    if engine_of(net) != engine:
        raise SystemExit(f"cv2.dnn built the {engine_of(net)} engine for {path.name}, not {engine}")
    return net


def forwards(net: object, blobs: Iterator[np.ndarray], count: int, progress: tqdm) -> dict:
    """``net.forward()`` on each of ``count`` blobs as ``blobs`` yields them: the rate, and each pass's ms."""
    times = []
    start = time.perf_counter()
    for blob in itertools.islice(blobs, count):
        t0 = time.perf_counter()
        net.setInput(blob)  # type: ignore[attr-defined]
        net.forward()  # type: ignore[attr-defined]
        times.append((time.perf_counter() - t0) * 1e3)
        progress.update()
    elapsed = time.perf_counter() - start
    return {"fps": count / elapsed, "forward_ms": summarize(times)}


def bare_forward(net: object, blobs: list[np.ndarray], progress: tqdm) -> dict:
    """(a): ``net.forward()`` on ready blobs, nothing else."""
    net.setInput(blobs[0])  # type: ignore[attr-defined]
    net.forward()  # type: ignore[attr-defined]  # warm-up
    return forwards(net, iter(blobs), len(blobs), progress)


def floor_run(net: object, model: Model, clip: Path, count: int, progress: tqdm) -> dict:
    """(f): a decode + preprocess thread and the bare ``net.forward()``, one frame in hand between them."""
    blobs: queue.Queue[np.ndarray] = queue.Queue(maxsize=1)

    def produce() -> None:
        cap = cv2.VideoCapture(str(clip))
        made = 0
        while made < count:
            ok, frame = cap.read()
            if not ok:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            blobs.put(model.blob(frame))
            made += 1
        cap.release()

    net.setInput(model.blob(np.zeros((*model.preprocess.size[::-1], 3), np.uint8)))  # type: ignore[attr-defined]
    net.forward()  # type: ignore[attr-defined]  # warm-up
    producer = threading.Thread(target=produce, name="floor-decode", daemon=True)
    producer.start()
    result = forwards(net, (blobs.get() for _ in range(count)), count, progress)  # waits for blobs count
    producer.join()
    return result


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


def pipeline_run(model: Model, layer: str, clip: Path, count: int, window: bool, pace: str = "max") -> dict:
    source = VideoSource(clip, loop=True, pace=pace)
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


def time_stages(model: Model, net: object, layer: str, frames: list[np.ndarray]) -> dict[str, float]:
    """Median ms of each stage of the forward thread's frame, interleaved frame by frame.

    ``bare``: the reference net's forward on a ready blob; ``untapped``: live's
    own net with no tap; ``tapped``: with the layer tapped (so ``tapped -
    untapped`` is what the tap costs, fusion lost included); ``preprocess``:
    frame to blob; ``grid``: the tiled maps; ``seen``: what the network sees;
    ``top``: the top-5 classes.
    """
    builder = GridOptions().builder()
    stages: dict[str, list[float]] = {
        k: [] for k in ("preprocess", "bare", "untapped", "tapped", "grid", "seen", "top")
    }

    def timed(key: str, fn: object) -> object:
        t0 = time.perf_counter()
        out = fn()  # type: ignore[operator]
        stages[key].append((time.perf_counter() - t0) * 1e3)
        return out

    for frame in frames:
        blob = timed("preprocess", lambda frame=frame: model.blob(frame))
        net.setInput(blob)  # type: ignore[attr-defined]
        timed("bare", net.forward)  # type: ignore[attr-defined]
        timed("untapped", lambda blob=blob: model.forward(blob, []))
        outputs = timed("tapped", lambda blob=blob: model.forward(blob, [layer]))
        timed("grid", lambda outputs=outputs: builder.build(outputs[layer]))  # type: ignore[index]
        timed("seen", lambda blob=blob: model.preprocess.image(blob))
        timed("top", lambda outputs=outputs: model.top(outputs))  # type: ignore[arg-type]
    return {key: round(float(np.median(values)), 3) for key, values in stages.items()}


def baseline(model_path: Path, layer_name: str, clip: Path, count: int, model: Model, progress: tqdm) -> dict:
    """The original sample, ported plainly: serial, one map at a time (classic engine only)."""
    net = read_bare(model_path, "classic")
    size = model.preprocess.size
    names = [n for n in net.getLayerNames() if n.endswith(layer_name) or n.endswith(f"!{layer_name}")]  # type: ignore[attr-defined]
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
        blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, size, swapRB=True)
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
    """Frames/s of each mode, from the JSON this script writes."""
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
    parser.add_argument(
        "--model", default="bundled", help="bundled (default: EfficientNet-Lite0), googlenet (seeded weights) or a path"
    )
    parser.add_argument("--layer", help="layer to tap (default: the model's default layer)")
    parser.add_argument("--source", type=Path, help="video (default: the bundled demo clip)")
    parser.add_argument("--frames", type=int, help="frames per measurement (default 600, quick 60)")
    parser.add_argument("--engine", choices=("auto", "new", "classic"), default="auto")
    parser.add_argument("--threads", type=int, help="OpenCV threads")
    parser.add_argument("--rounds", type=int, help="rounds of all modes; medians reported (default 5, quick 1)")
    add_output_options(parser, "the figures")
    args = parser.parse_args(argv)
    if redraw_only(args, draw_chart):
        return 0
    count = args.frames or (60 if args.quick else 600)
    args.rounds = args.rounds or (1 if args.quick else 5)
    if args.threads:
        cv2.setNumThreads(args.threads)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_path, settings = model_file(args.model, folder)
        clip = video_frames(args.source, count, folder)
        settings = settings.replace(engine=args.engine)
        model = Model.load(model_path, settings)
        layer = model.layer(args.layer or model.default_layer)
        frames = decode(clip, count)
        blobs = [model.blob(frame) for frame in frames]
        net = read_bare(model_path, model.engine)
        print(
            f"model {model_path.name}, layer {layer.name} {layer.shape}, engine {model.engine}, "
            f"target {model.target}, {count} frames of {clip.name} ({frames[0].shape[1]}x{frames[0].shape[0]})",
            file=sys.stderr,
        )
        GridOptions().builder().build(np.zeros(layer.shape, np.float32))  # import and allocate once
        can_baseline = model.engine == "classic" and HAS_CLASSIC

        runs: dict[str, list[dict]] = {"a": [], "f": [], "t": [], "b": [], "c": [], "d": []}
        window_model = Model.load(model_path, settings)
        progress = progress_bar((3 + can_baseline) * count * args.rounds, "bare, floor, tapped and baseline")
        for round_ in range(args.rounds):
            # Interleaved, so that a slow spell of this shared machine hits every mode alike.
            runs["a"].append(bare_forward(net, blobs, progress))
            runs["f"].append(floor_run(net, model, clip, count, progress))
            runs["t"].append(forward_only(model, layer.name, frames, progress))
            if can_baseline:
                runs["d"].append(baseline(model_path, layer.node or layer.name, clip, count, model, progress))
            print(f"round {round_ + 1}/{args.rounds}: pipeline headless, then with the window", file=sys.stderr)
            runs["b"].append(pipeline_run(model, layer.name, clip, count, window=False))
            runs["c"].append(pipeline_run(window_model, layer.name, clip, count, window=True))
        progress.close()
        a, f, t, b, c = (median_run(runs[k]) for k in "aftbc")
        d = median_run(runs["d"]) if runs["d"] else None
        print("window at --pace file (latency)", file=sys.stderr)
        e = pipeline_run(window_model, layer.name, clip, min(count, 150), window=True, pace="file")
        decode_ms = time_decode(clip, count)
        stages = time_stages(model, net, layer.name, frames)

    bare_ms = 1e3 / a["fps"]
    window_gui_ms = c["consumer_cpu_ms_per_frame"]
    result = {
        "machine": machine_info(),
        "model": str(model_path.name),
        "layer": layer.name,
        "layer_shape": list(layer.shape or ()),
        "engine": model.engine,
        "target": model.target,
        "frames": count,
        "forward_only_fps": round(a["fps"], 2),
        "floor_fps": round(f["fps"], 2),
        "tapped_forward_fps": round(t["fps"], 2),
        "pipeline_fps": round(b["fps"], 2),
        "window_fps": round(c["fps"], 2),
        "baseline_fps": round(d["fps"], 2) if d else None,
        "baseline_note": None
        if d
        else f"not run: the {model.engine} engine's net.forward(layer) can return another "
        "tensor (the sample's way needs the classic engine)",
        "floor_ratio": round(f["fps"] / a["fps"], 3),
        "tapped_ratio": round(t["fps"] / a["fps"], 3),
        "pipeline_ratio": round(b["fps"] / a["fps"], 3),
        "window_ratio": round(c["fps"] / a["fps"], 3),
        "pipeline_vs_floor": round(b["fps"] / f["fps"], 3),
        "window_vs_floor": round(c["fps"] / f["fps"], 3),
        "pipeline_vs_baseline": round(b["fps"] / d["fps"], 2) if d else None,
        "rounds": args.rounds,
        "stages_ms": {**stages, "decode": round(decode_ms, 3), "window_gui_cpu": round(window_gui_ms, 3)},
        "shares_of_forward_frame": {
            "decode_ms": round(decode_ms, 3),
            "grid_ms": stages["grid"],
            "window_gui_cpu_ms": round(window_gui_ms, 3),
            "forward_ms": round(bare_ms, 3),
            "decode": round(decode_ms / bare_ms, 4),
            "grid": round(stages["grid"] / bare_ms, 4),
            "window_gui": round(window_gui_ms / bare_ms, 4),
            # The window shows at most 30 results a second, so its painting is a share of the wall time.
            "window_shown_fps": round(c["shown_fps"] or 0.0, 2),
            "window_gui_cpu_share": round(window_gui_ms * (c["shown_fps"] or 0.0) / 1e3, 4),
        },
        "latency_file_pace": {
            "latency_ms": e["latency_ms"],
            "forward_ms": e["forward_ms"],
            "p95_over_forward": round(e["latency_ms"]["p95"] / max(e["forward_ms"]["mean"], 1e-9), 3),
        },
        "pipeline": b,
        "window": c,
        "tapped": t,
        "floor": f,
        "forward_only": a,
        "baseline": d,
        "targets": {
            "pipeline_ratio_0.95": b["fps"] / a["fps"] >= TARGET_PIPELINE,
            "window_ratio_0.90": c["fps"] / a["fps"] >= TARGET_WINDOW,
            "latency_p95_1.5x_forward": e["latency_ms"]["p95"] <= TARGET_LATENCY * e["forward_ms"]["mean"],
        },
    }

    def row(mode: str, fps: float, latency: dict, dropped: int) -> dict:
        return {"mode": mode, "fps": fps, "ratio": fps / a["fps"], "lat": latency["mean"], "p95": latency["p95"],
                "dropped": dropped}  # fmt: skip

    names = dict((key, name) for name, key in MODES)
    rows = [
        row(names["forward_only_fps"], a["fps"], a["forward_ms"], 0),
        row(names["floor_fps"], f["fps"], f["forward_ms"], 0),
        row(names["tapped_forward_fps"], t["fps"], t["forward_ms"], 0),
        row(names["pipeline_fps"], b["fps"], b["latency_ms"], b["dropped"]),
        row(names["window_fps"], c["fps"], c["latency_ms"], c["dropped"]),
    ]
    if d:
        rows.append(row(names["baseline_fps"], d["fps"], d["frame_ms"], 0))
    print(f"{result['model']} layer {layer.name} {layer.shape}, {model.engine}/{model.target}, {count} frames")
    columns = [("mode", "mode", "<32"), ("fps", "frames/s", ">9.1f"), ("ratio", "vs (a)", ">7.3f"),
               ("lat", "latency ms", ">11.1f"), ("p95", "p95 ms", ">8.1f"), ("dropped", "dropped", ">8d")]  # fmt: skip
    print_table(rows, columns)
    if not d:
        print(f"(d) {result['baseline_note']}")
    st = result["stages_ms"]
    print(
        f"stages, median ms per frame: bare forward {st['bare']:.2f}; live's forward untapped "
        f"{st['untapped']:.2f}, tapped {st['tapped']:.2f} (the tap: {st['tapped'] - st['untapped']:+.2f}); "
        f"preprocess {st['preprocess']:.2f}; "
        f"grid {st['grid']:.2f}; what the network sees {st['seen']:.2f}; top-5 {st['top']:.2f}; "
        f"video decode {st['decode']:.2f} (capture thread); window painting {st['window_gui_cpu']:.2f} of CPU "
        f"(GUI thread) per shown frame, {result['shares_of_forward_frame']['window_shown_fps']:.1f} shown a second "
        f"({result['shares_of_forward_frame']['window_gui_cpu_share']:.1%} of one core). On 2 cores the forward "
        "pass already uses both, so every other thread competes with it."
    )
    print(
        f"against the floor (f), the least a video pipeline does on this machine: headless "
        f"{result['pipeline_vs_floor']:.3f}, window {result['window_vs_floor']:.3f}"
    )
    lat = result["latency_file_pace"]
    print(
        f"end-to-end latency at --pace file (window): mean {lat['latency_ms']['mean']:.1f} ms, "
        f"p95 {lat['latency_ms']['p95']:.1f} ms = {lat['p95_over_forward']:.2f}x the forward stage's "
        f"{lat['forward_ms']['mean']:.1f} ms mean"
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
