"""Benchmark: top-k frames per unit, offline on Dask (``live analyze``) and the reducer's cost per frame.

What it measures, with the bundled EfficientNet-Lite0 on the demo clip (640x480, 15 fps):

* ``live analyze`` frames/s with 1 and 2 local worker processes (one task at a time each; OpenCV threads shared
  out: 2 for one worker, 1 each for two), tapping the default layer
  (``blocks.3.expand/relu6``, 144 x 56 x 56) and ``head/relu6`` (1280 x 7 x 7) in one pass, k = 9, 64-px
  thumbnails, on the demo clip played 3 times (1014 frames, one MJPG file written by the script) in 4 parts,
  saved under a temporary output folder as a real run does.
  ``run s`` is the whole run (cluster start, each worker loading the network, the parts, the merge, the
  gallery); ``start s`` is a LocalCluster of that many workers started and closed alone; ``frames/s`` counts
  the whole run, ``frames/s w/o start`` leaves the cluster start out, ``frames/s a worker`` is the frames over
  the tasks' own seconds (reading, forward passes, updates), what each worker does alone.
* ``update()`` ms per frame of :class:`live.units.UnitReducer` on real maps of each of those layers (one reducer
  per layer, thumbnails cut from the frame), after a few frames of warm-up: the reducer's share of each frame,
  live in the window and in every task.
* Memory per unit: the reducer's pickled state (what a task sends back) divided by the units, after the clip,
  at k = 9 with 64-px thumbnails; and the bound (k thumbnails of 64 x 64 x 3 bytes plus the statistics).

* ``--real-video``, alone: ``update()`` ms per frame on real video, before and after a change: the demo clip's
  338 frames through the bundled model, at ``blocks.3.expand/relu6`` (144 x 56 x 56), ``blocks.10.add``
  (112 x 14 x 14) and ``head/relu6`` (1280 x 7 x 7), receptive-field boxes, 64-px thumbnails, k = 9, gap 1 s; a
  fresh reducer per layer and pass, over every frame (what ``live analyze`` does) and over every 8th frame (what
  the window's ``live-units`` thread sees: at most 5 a second of a clip played at about 40 frames/s, so most
  units' top-k change and the boxes differ). "before" is ``live/units.py`` as of ``--before REV`` (git), loaded
  beside this checkout's; the two take turns on every frame (each first on every other frame), so they share
  the machine's noise. ``read all ms``
  is then what :meth:`~live.units.LayerUnits.top` of every unit costs once (the thumbnails still to cut are cut
  there: a save or a pickle pays it; the window reads one unit's).

Run from the repository root::

    python benchmarks/bench_units.py                 # the demo clip 3 times (1014 frames) per run
    python benchmarks/bench_units.py --quick         # once, every 4th frame; fewer update() samples
    python benchmarks/bench_units.py --json          # also writes benchmarks/results/units.json
    python benchmarks/bench_units.py --real-video --json   # before/after update() on real video; adds "update_real"

A plain text table goes to stdout, progress to stderr. The machine's cores are shared: compare runs made together.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent))  # this checkout's live, before any installed one
sys.path.insert(1, str(_HERE))
from common import machine_info, print_table, read_json, summarize, write_json  # noqa: E402

from live.analyze import AnalyzeOptions, run  # noqa: E402
from live.app import bundled_model  # noqa: E402
from live.assets import data_file  # noqa: E402
from live.maps import blob_to_maps  # noqa: E402
from live.model import Model  # noqa: E402
from live.receptive import box_maps  # noqa: E402
from live.units import HIST_EDGES, FrameInfo, UnitOptions, UnitReducer  # noqa: E402

LAYERS = ("blocks.3.expand/relu6", "head/relu6")
RESULTS = _HERE / "results" / "units.json"
WARMUP = 10
PASSES = 3
"""The analyzed clip is the demo clip played this many times (1014 frames): the run's fixed costs (the cluster, the
workers loading the network, the final state and gallery) weigh less."""
PARTS = 4
"""The clip is cut into this many parts (tasks), whatever the number of workers. Each part's state is saved (the
thumbnails as PNG files, about 1.5 ms per unit), so real runs use long chunks (``--chunk``, default 1500)."""


def demo_clip() -> Path:
    path = data_file("demo.mp4")
    if path is None:
        raise SystemExit("data/demo.mp4 is missing")
    return path


def demo_frames(count: int) -> list[tuple[int, np.ndarray]]:
    """The first ``count`` frames of the demo clip with their indices (BGR uint8)."""
    cap = cv2.VideoCapture(str(demo_clip()))
    frames = []
    while len(frames) < count:
        ok, image = cap.read()
        if not ok:
            break
        frames.append((len(frames), image))
    cap.release()
    return frames


def time_updates(model: Model, count: int) -> tuple[list[dict[str, Any]], dict[str, UnitReducer]]:
    """update() ms per frame for each layer alone (real maps, thumbnails), and the reducers after the frames."""
    frames = demo_frames(count + WARMUP)
    fps = 15.0
    taps = []
    for index, image in frames:
        outputs = model.forward(model.blob(image), list(LAYERS))
        taps.append((index, image, {name: blob_to_maps(outputs[name]).copy() for name in LAYERS}))
    size = (frames[0][1].shape[1], frames[0][1].shape[0])
    boxes = box_maps(model, list(LAYERS), size)
    rows = []
    reducers = {}
    for name in LAYERS:
        reducer = UnitReducer({name: taps[0][2][name].shape[0]}, UnitOptions(k=9, gap_s=1.0, thumb=64))
        samples = []
        for i, (index, image, maps) in enumerate(taps):
            start = time.perf_counter()
            reducer.update(FrameInfo("demo.mp4", index, index / fps), {name: maps[name]}, image, boxes)
            if i >= WARMUP:
                samples.append((time.perf_counter() - start) * 1e3)
        stats = summarize(samples)
        shape = "x".join(str(d) for d in taps[0][2][name].shape)
        rows.append({"layer": name, "shape": shape, **{f"update_{k}": v for k, v in stats.items()}})
        reducers[name] = reducer
        print(f"update(): {name} {shape}: median {stats['median']:.3f} ms", file=sys.stderr)
    return rows, reducers


REAL_LAYERS = ("blocks.3.expand/relu6", "blocks.10.add", "head/relu6")
REAL_STRIDES = (1, 8)
BEFORE = "f403cd0"
"""The commit whose live/units.py is "before" by default (main before the units were made cheap)."""


def units_module(rev: str) -> ModuleType:
    """``live/units.py`` as of git revision ``rev``, imported beside this checkout's (as ``units_before``)."""
    source = subprocess.run(
        ["git", "-C", str(_HERE.parent), "show", f"{rev}:live/units.py"], check=True, capture_output=True, text=True
    ).stdout
    spec = importlib.util.spec_from_loader("units_before", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["units_before"] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:live/units.py", "exec"), module.__dict__)
    return module


def time_real_video(model: Model, before: ModuleType) -> list[dict[str, Any]]:
    """update() ms per frame on the demo clip's frames, this checkout's units and ``before``'s, layer by layer.

    Returns one row per (layer, stride, version): the update() statistics (ms, every frame of the pass but the
    first 3) and ``read_ms``, one top() of every unit after the pass.
    """
    import live.units as after

    frames = demo_frames(10**6)
    size = (frames[0][1].shape[1], frames[0][1].shape[0])
    boxes = box_maps(model, list(REAL_LAYERS), size)
    taps = []
    for _, image in frames:
        outputs = model.forward(model.blob(image), list(REAL_LAYERS))
        taps.append({name: blob_to_maps(outputs[name]).copy() for name in REAL_LAYERS})
    rows = []
    versions = {"before": before, "after": after}
    for name in REAL_LAYERS:
        shape = "x".join(str(d) for d in taps[0][name].shape)
        for stride in REAL_STRIDES:
            units = {name: taps[0][name].shape[0]}
            reducers = {
                version: module.UnitReducer(units, module.UnitOptions(k=9, gap_s=1.0, thumb=64))
                for version, module in versions.items()
            }
            samples: dict[str, list[float]] = {version: [] for version in versions}
            for i, (index, image) in enumerate(frames[::stride]):
                for version in ("before", "after") if i % 2 else ("after", "before"):  # each first half the time
                    info = versions[version].FrameInfo("demo.mp4", index, index / 15.0)
                    start = time.perf_counter()
                    reducers[version].update(info, {name: taps[index][name]}, image, boxes)
                    samples[version].append((time.perf_counter() - start) * 1e3)
            for version, reducer in reducers.items():
                start = time.perf_counter()
                layer = reducer.layers[name]
                for unit in range(layer.units):
                    layer.top(unit)
                read_ms = (time.perf_counter() - start) * 1e3
                stats = summarize(samples[version][3:])
                row = {"layer": name, "shape": shape, "stride": stride, "version": version}
                rows.append({**row, **stats, "read_ms": read_ms})
                print(
                    f"update() {name} {shape} every {stride}: {version} median {stats['median']:.3f} ms, "
                    f"p95 {stats['p95']:.3f} ms",
                    file=sys.stderr,
                )
    return rows


def real_video(args: argparse.Namespace) -> int:
    """``--real-video``: print (and with ``--json``, add to the results) update() before and after."""
    load = [os.getloadavg()[0]]
    model = Model.load(bundled_model())
    rows = time_real_video(model, units_module(args.before))
    load.append(os.getloadavg()[0])
    machine = {**machine_info(), "load_1min": load}
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, opencv {machine['opencv']}, numpy {machine['numpy']}; "
        f"{model.path.name} on {model.engine}/{model.target}; the demo clip (640x480, 338 frames, 15 fps); "
        f"k 9, gap 1 s, 64-px thumbnails, receptive-field boxes; before = {args.before}; "
        f"load average {load[0]:.1f} before, {load[1]:.1f} after"
    )
    print_table(
        rows,
        [
            ("layer", "update() of layer", ""),
            ("shape", "C x H x W", ""),
            ("stride", "every", ""),
            ("version", "units.py", ""),
            ("median", "median ms", ".3f"),
            ("p95", "p95 ms", ".3f"),
            ("mean", "mean ms", ".3f"),
            ("read_ms", "read all ms", ".1f"),
        ],
    )
    if args.json is not None:
        data = read_json(args.json) if args.json.exists() else {}
        data["update_real"] = {"machine": machine, "before": args.before, "layers": REAL_LAYERS, "rows": rows}
        write_json(args.json, data)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def memory(reducers: dict[str, UnitReducer]) -> list[dict[str, Any]]:
    """Bytes of pickled state per unit, and the bound at k = 9, 64-px thumbnails."""
    rows = []
    bins = len(HIST_EDGES) - 1
    stats_bytes = 6 * 8 + bins * 8  # count, mean, m2, max, nonpos (+ the frame count), the histogram
    bound = 9 * 64 * 64 * 3 + stats_bytes
    for name, reducer in reducers.items():
        units = reducer.layers[name].units
        pickled = len(pickle.dumps(reducer, protocol=pickle.HIGHEST_PROTOCOL))
        rows.append(
            {
                "layer": name,
                "units": units,
                "bytes_per_unit": pickled / units,
                "bound_per_unit": bound,
                "stats_per_unit": stats_bytes,
            }
        )
    return rows


def time_cluster_start(workers: int) -> float:
    """Seconds to start and close a LocalCluster of ``workers`` processes (what every run pays first)."""
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None, silence_logs=40) as cluster,
        Client(cluster),
    ):
        pass
    return time.perf_counter() - start


def write_long_clip(folder: Path, passes: int) -> tuple[Path, int]:
    """The demo clip played ``passes`` times, as one MJPG video (a longer run spreads the fixed costs); its frames."""
    path = folder / f"demo-x{passes}.avi"
    frames = [image for _, image in demo_frames(10**6)]
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (w, h))
    for _ in range(passes):
        for image in frames:
            writer.write(image)
    writer.release()
    return path, passes * len(frames)


def time_analyze(model: Model, clip: Path, workers: int, every: int, chunk: int) -> dict[str, Any]:
    options = AnalyzeOptions(
        layers=LAYERS, units=UnitOptions(k=9, thumb=64), every=every, chunk=chunk, workers=workers, scheduler="local"
    )
    with tempfile.TemporaryDirectory(prefix="bench-units-") as folder:
        start = time.perf_counter()
        analysis = run(model, [clip], options, Path(folder) / "out", progress=None)
        seconds = time.perf_counter() - start
    started = time_cluster_start(workers)
    report = analysis.report
    frames = report["frames"]
    return {
        "workers": workers,
        "frames": frames,
        "parts": report["parts"]["total"],
        "run_s": seconds,
        "start_s": started,
        "fps": frames / seconds,
        "fps_no_start": frames / max(seconds - started, 1e-9),
        "task_fps": report["task_fps"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="every 4th frame of the clip; 30 update() samples")
    parser.add_argument(
        "--json",
        type=Path,
        nargs="?",
        const=RESULTS,
        default=None,
        metavar="PATH",
        help=f"also write the results as JSON (default path {RESULTS.relative_to(_HERE.parent)})",
    )
    parser.add_argument(
        "--real-video", action="store_true", help="only update() on real video, this checkout's units and --before's"
    )
    parser.add_argument("--before", default=BEFORE, metavar="REV", help=f"git revision of 'before' (default {BEFORE})")
    args = parser.parse_args(argv)
    if args.real_video:
        return real_video(args)
    load = [os.getloadavg()[0]]  # the machine's other work, before and after: the figures' noise
    every = 4 if args.quick else 1
    model = Model.load(bundled_model())
    updates, reducers = time_updates(model, 30 if args.quick else 100)
    sizes = memory(reducers)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-units-clip-") as folder:
        clip, frames = write_long_clip(Path(folder), 1 if args.quick else PASSES)
        for workers in (1, 2):
            print(f"live analyze with {workers} worker(s) ...", file=sys.stderr)
            runs.append(time_analyze(model, clip, workers, every, chunk=-(-frames // PARTS)))
    load.append(os.getloadavg()[0])
    machine = {**machine_info(), "load_1min": load}
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, opencv {machine['opencv']}, numpy {machine['numpy']}; "
        f"{model.path.name} on {model.engine}/{model.target}; the demo clip (640x480) {1 if args.quick else PASSES} "
        f"time(s), every {every} frame(s), in {PARTS} parts; "
        f"layers {', '.join(LAYERS)}; k 9, 64-px thumbnails; load average {load[0]:.1f} before, {load[1]:.1f} after"
    )
    print_table(
        runs,
        [
            ("workers", "workers", ""),
            ("frames", "frames", ""),
            ("parts", "parts", ""),
            ("run_s", "run s", ".1f"),
            ("start_s", "start s", ".1f"),
            ("fps", "frames/s", ".2f"),
            ("fps_no_start", "frames/s w/o start", ".2f"),
            ("task_fps", "frames/s a worker", ".2f"),
        ],
    )
    print()
    print_table(
        updates,
        [
            ("layer", "update() of layer", ""),
            ("shape", "C x H x W", ""),
            ("update_median", "median ms", ".3f"),
            ("update_p95", "p95 ms", ".3f"),
            ("update_mean", "mean ms", ".3f"),
        ],
    )
    print()
    print_table(
        sizes,
        [
            ("layer", "state of layer", ""),
            ("units", "units", ""),
            ("bytes_per_unit", "bytes/unit (pickled)", ".0f"),
            ("bound_per_unit", "bound bytes/unit", ""),
        ],
    )
    if args.json is not None:
        write_json(
            args.json,
            {"machine": machine, "every": every, "layers": LAYERS, "analyze": runs, "update": updates, "memory": sizes},
        )
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
