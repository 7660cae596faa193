"""Benchmark: what a class activation map adds to each frame, on the bundled model at its CAM layer.

What it measures, on real frames of the demo clip (the bundled EfficientNet-Lite0, the CPU, the engine
``live`` picks), interleaved frame by frame so that the shared machine's drift hits every case alike:

* ``forward``: preprocess + one forward pass tapping the shown layer (the default layer), as the
  pipeline runs without CAM;
* ``forward + CAM``: the same pass also tapping the CAM layer (``head/relu6``, 1280 x 7 x 7, the layer
  that feeds the pooled head), then CAM for the top-1 class (:func:`live.explain.compute`);
* ``forward + Eigen-CAM``: the same pass, then Eigen-CAM of that layer.

Reported per method: the map's own computation (``compute``: numpy only, median and p95 over the
frames), and what it adds to a frame (``added``: the median over frames of the paired difference
"forward + method" minus "forward", which includes the extra tap). Also, for reference, Eigen-CAM of the
default layer (144 x 56 x 56: what ``--cam-method eigen`` computes while that layer is shown), and
drawing the overlay on a frame (:func:`live.cam.overlay`, the window's share, in the GUI thread).

Run from the repository root::

    python benchmarks/bench_cam.py                 # 300 frames
    python benchmarks/bench_cam.py --quick         # 60 frames, a few seconds
    python benchmarks/bench_cam.py --json out.json

A plain text table goes to stdout, progress to stderr. The target is 2 ms added per frame for each method.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent))  # this checkout's live, before any installed one
sys.path.insert(1, str(_HERE))
from common import machine_info, print_table, summarize, write_json  # noqa: E402

from live import explain  # noqa: E402
from live.app import bundled_model  # noqa: E402
from live.assets import data_file  # noqa: E402
from live.cam import CamOptions, overlay  # noqa: E402
from live.model import Model  # noqa: E402

TARGET_MS = 2.0


def demo_frames(count: int) -> list[np.ndarray]:
    """``count`` frames of the demo clip (BGR uint8), spread over the whole clip."""
    path = data_file("demo.mp4")
    if path is None:
        raise SystemExit("data/demo.mp4 is missing")
    cap = cv2.VideoCapture(str(path))
    frames = []
    ok, image = cap.read()
    while ok:
        frames.append(image)
        ok, image = cap.read()
    cap.release()
    if not frames:
        raise SystemExit(f"cannot read {path}")
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return [frames[i] for i in picks]


def measure(model: Model, frames: list[np.ndarray], warmup: int = 5) -> dict[str, object]:
    """Time every case on every frame (interleaved); return the per-case samples in ms."""
    shown = model.default_layer
    plans = {
        "CAM": explain.plan(model, CamOptions(method="cam"), shown),
        "Eigen-CAM": explain.plan(model, CamOptions(method="eigen"), "head/relu6"),
    }
    reference = explain.plan(model, CamOptions(method="eigen"), shown)
    samples: dict[str, list[float]] = {
        key: []
        for key in ("forward", "forward + CAM", "forward + Eigen-CAM", "CAM", "Eigen-CAM", "eigen shown", "overlay")
    }
    last = None
    for i, frame in enumerate([*frames[:warmup], *frames]):
        timed = i >= warmup
        start = time.perf_counter()
        model.forward(model.blob(frame), [shown])
        base = time.perf_counter() - start
        for name, plan in plans.items():
            start = time.perf_counter()
            outputs = model.forward(model.blob(frame), [shown, *plan.taps])
            middle = time.perf_counter()
            last = explain.compute(plan, model, outputs)
            end = time.perf_counter()
            if timed:
                samples[f"forward + {name}"].append((end - start - base) * 1e3)  # paired: what it adds
                samples[name].append((end - middle) * 1e3)
        outputs = model.forward(model.blob(frame), [shown])
        start = time.perf_counter()
        explain.compute(reference, model, outputs)
        eigen_ms = (time.perf_counter() - start) * 1e3
        assert last is not None
        start = time.perf_counter()
        overlay(frame, last.heat, model.preprocess.crop_rect((frame.shape[1], frame.shape[0])))
        overlay_ms = (time.perf_counter() - start) * 1e3
        if timed:
            samples["forward"].append(base * 1e3)
            samples["eigen shown"].append(eigen_ms)
            samples["overlay"].append(overlay_ms)
        if i % 20 == 0:
            print(f"frame {i + 1}/{len(frames) + warmup}", file=sys.stderr)
    cam_shape = "x".join(str(d) for d in model.layer("head/relu6").shape[1:])
    shown_shape = "x".join(str(d) for d in model.layer(shown).shape[1:])
    return {
        "samples": samples,
        "cam_layer": "head/relu6",
        "cam_shape": cam_shape,
        "shown": shown,
        "shown_shape": shown_shape,
    }


def report(measured: dict[str, object], frames: int, frame_size: tuple[int, int]) -> dict[str, object]:
    samples: dict[str, list[float]] = measured["samples"]  # type: ignore[assignment]
    stats = {key: summarize(values) for key, values in samples.items()}
    rows = []
    for name in ("CAM", "Eigen-CAM"):
        added = stats[f"forward + {name}"]["median"]
        rows.append(
            {
                "method": name,
                "layer": f"{measured['cam_layer']} ({measured['cam_shape']})",
                "compute_median": stats[name]["median"],
                "compute_p95": stats[name]["p95"],
                "added_median": added,
                "target": "met" if added <= TARGET_MS and stats[name]["median"] <= TARGET_MS else "NOT met",
            }
        )
    rows.append(
        {
            "method": "Eigen-CAM (reference)",
            "layer": f"{measured['shown']} ({measured['shown_shape']})",
            "compute_median": stats["eigen shown"]["median"],
            "compute_p95": stats["eigen shown"]["p95"],
            "added_median": None,
            "target": "-",
        }
    )
    rows.append(
        {
            "method": "overlay (drawing)",
            "layer": f"{frame_size[0]}x{frame_size[1]} frame",
            "compute_median": stats["overlay"]["median"],
            "compute_p95": stats["overlay"]["p95"],
            "added_median": None,
            "target": "-",
        }
    )
    return {
        "machine": machine_info(),
        "frames": frames,
        "frame_size": list(frame_size),
        "forward_ms": stats["forward"],
        "target_ms": TARGET_MS,
        "rows": rows,
        "stats": stats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="60 frames instead of 300")
    parser.add_argument("--frames", type=int, default=None, metavar="N", help="frames to time (default 300)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    count = args.frames or (60 if args.quick else 300)
    model = Model.load(bundled_model())
    frames = demo_frames(count)
    data = report(measure(model, frames), count, (frames[0].shape[1], frames[0].shape[0]))
    machine = data["machine"]
    fwd = data["forward_ms"]
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, opencv {machine['opencv']}, numpy {machine['numpy']}; "
        f"{model.path.name} on {model.engine}/{model.target}, {count} demo frames; "
        f"forward alone: median {fwd['median']:.2f} ms, p95 {fwd['p95']:.2f} ms"
    )
    print_table(
        data["rows"],
        [
            ("method", "method", ""),
            ("layer", "layer", ""),
            ("compute_median", "compute median ms", ".3f"),
            ("compute_p95", "compute p95 ms", ".3f"),
            ("added_median", "added per frame ms (median)", ".3f"),
            ("target", f"<= {TARGET_MS:g} ms", ""),
        ],
    )
    if args.json is not None:
        write_json(args.json, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
