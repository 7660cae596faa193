"""Benchmark: feature-map grid building, from blob to RGB uint8 image.

What it measures, per layer shape (batch 1, float32 standard-normal data;
64x112x112, 192x56x56, 480x28x28, 1024x14x14, 2048x7x7):

* ``GridBuilder.build`` + ``colorize`` (normalize + tile + colormap to an
  RGB uint8 image) for each normalization mode: ``map``, ``layer``,
  ``robust`` and ``fixed`` (range -3..3). One builder per shape and mode, so
  its buffers are reused from call to call as in the live display.
* A baseline written like the original C++ sample: a Python loop over the
  channels doing ``cv2.normalize(..., NORM_MINMAX, CV_8U)``,
  ``cv2.applyColorMap(..., COLORMAP_VIRIDIS)`` and a copy into the map's tile
  of a fresh output image (same grid layout and padding).

Each case is run a few times to warm up, then timed ``--repeats`` times;
the median, 95th percentile and minimum are reported in milliseconds.
``speedup`` is baseline median / ``map``-mode median.

Run from the repository root::

    python benchmarks/bench_grid.py                    # full run
    python benchmarks/bench_grid.py --quick            # a few seconds
    python benchmarks/bench_grid.py --json out.json --repeats 200

A plain text table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    from live import maps as lm
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from live import maps as lm
from common import add_output_options, bar_chart, machine_info, progress_bar, redraw_only, write_json

SHAPES: list[tuple[int, int, int]] = [(64, 112, 112), (192, 56, 56), (480, 28, 28), (1024, 14, 14), (2048, 7, 7)]
NORMS: list[str] = ["map", "layer", "robust", "fixed"]
FIXED_RANGE = (-3.0, 3.0)
CMAP = "viridis"
PAD = 1
TARGET_MS = 2.0
TARGET_SHAPES = ["1024x14x14", "64x112x112"]
TARGET_SPEEDUP = 10.0


SHAPE_ORDER = {"x".join(map(str, shape)): i for i, shape in enumerate(SHAPES)}


def shape_key(shape: tuple[int, int, int]) -> str:
    return "x".join(str(v) for v in shape)


def time_ms(fn: Callable[[], object], repeats: int, warmup: int) -> dict[str, float]:
    """Median, p95 and min wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = np.empty(repeats, np.float64)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples[i] = time.perf_counter() - t0
    samples *= 1000.0
    return {
        "median_ms": float(np.median(samples)),
        "p95_ms": float(np.percentile(samples, 95)),
        "min_ms": float(samples.min()),
    }


def grid_case(blob: np.ndarray, norm: str) -> Callable[[], np.ndarray]:
    """GridBuilder.build + colorize, with one builder reused across calls."""
    options: dict[str, object] = {"pad": PAD}
    if norm == "fixed":
        options["value_range"] = FIXED_RANGE
    builder = lm.GridOptions(norm, **options).builder()  # type: ignore[arg-type]

    def run() -> np.ndarray:
        grid = builder.build(blob)
        return lm.colorize(grid.image, CMAP, grid.layout)

    return run


def baseline_case(blob: np.ndarray) -> Callable[[], np.ndarray]:
    """The original sample's way: normalize, colorize and copy one map at a time."""
    maps = blob[0]
    c, h, w = maps.shape
    rows, cols = lm.grid_shape(c, h, w, PAD)

    def run() -> np.ndarray:
        out = np.zeros((rows * (h + PAD), cols * (w + PAD), 3), np.uint8)
        for ch in range(c):
            m = cv2.normalize(maps[ch], None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U)
            colored = cv2.applyColorMap(m, cv2.COLORMAP_VIRIDIS)
            row, col = divmod(ch, cols)
            y, x = row * (h + PAD), col * (w + PAD)
            out[y : y + h, x : x + w] = colored
        return out

    return run


def run_benchmark(repeats: int, warmup: int, seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    progress = progress_bar(len(SHAPES) * (len(NORMS) + 1), "grid cases")
    results: list[dict[str, object]] = []
    baseline: list[dict[str, object]] = []
    speedup: dict[str, float] = {}
    for shape in SHAPES:
        key = shape_key(shape)
        blob = rng.standard_normal((1, *shape), dtype=np.float32)
        map_median = float("nan")
        for norm in NORMS:
            progress.set_postfix_str(f"{key} {norm}")
            stats = time_ms(grid_case(blob, norm), repeats, warmup)
            results.append({"shape": list(shape), "norm": norm, **stats})
            if norm == "map":
                map_median = stats["median_ms"]
            progress.update()
        progress.set_postfix_str(f"{key} baseline")
        stats = time_ms(baseline_case(blob), repeats, warmup)
        progress.update()
        baseline.append({"shape": list(shape), **stats})
        speedup[key] = stats["median_ms"] / map_median
    progress.close()

    map_medians = {shape_key(tuple(r["shape"])): r["median_ms"] for r in results if r["norm"] == "map"}  # type: ignore[arg-type]
    targets = {
        "under_2ms": {key: bool(map_medians[key] < TARGET_MS) for key in TARGET_SHAPES},
        "speedup_10x": bool(min(speedup.values()) >= TARGET_SPEEDUP),
    }
    return {
        "machine": machine_info(),
        "settings": {"repeats": repeats, "warmup": warmup, "pad": PAD, "colormap": CMAP, "fixed_range": FIXED_RANGE},
        "results": results,
        "baseline": baseline,
        "speedup": speedup,
        "targets": targets,
    }


def format_table(report: dict[str, object]) -> str:
    results: list[dict[str, object]] = report["results"]  # type: ignore[assignment]
    baseline: list[dict[str, object]] = report["baseline"]  # type: ignore[assignment]
    speedup: dict[str, float] = report["speedup"]  # type: ignore[assignment]
    machine: dict[str, object] = report["machine"]  # type: ignore[assignment]
    targets: dict[str, object] = report["targets"]  # type: ignore[assignment]
    lines = [
        f"machine: {machine['cpu']}, {machine['cores']} cores, python {machine['python']}, "
        f"numpy {machine['numpy']}, opencv {machine['opencv']}",
        "grid = GridBuilder.build + colorize (normalize + tile + viridis -> RGB uint8), times in ms",
        "",
        f"{'shape':<12} {'norm':<9} {'median':>8} {'p95':>8} {'min':>8}",
        "-" * 49,
    ]
    for shape in SHAPES:
        key = shape_key(shape)
        for r in results:
            if shape_key(tuple(r["shape"])) == key:  # type: ignore[arg-type]
                lines.append(
                    f"{key:<12} {r['norm']!s:<9} {r['median_ms']:>8.3f} {r['p95_ms']:>8.3f} {r['min_ms']:>8.3f}"
                )
        for b in baseline:
            if shape_key(tuple(b["shape"])) == key:  # type: ignore[arg-type]
                lines.append(f"{key:<12} {'per-map':<9} {b['median_ms']:>8.3f} {b['p95_ms']:>8.3f} {b['min_ms']:>8.3f}")
        lines.append(f"{key:<12} {'speedup':<9} {speedup[key]:>7.1f}x")
        lines.append("")
    under: dict[str, bool] = targets["under_2ms"]  # type: ignore[assignment]
    lines.append(
        "targets: map mode under 2 ms: "
        + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in under.items())
        + f"; speedup >= 10x on every shape: {'yes' if targets['speedup_10x'] else 'NO'}"
        + f" (min {min(speedup.values()):.1f}x)"
    )
    return "\n".join(lines)


def draw_chart(report: dict[str, object], path: Path) -> None:
    """Median ms per layer shape: one bar per normalization mode and one for the per-map loop, log axis."""
    labels: list[str] = []
    values: list[float] = []
    groups: list[str] = []
    for row in report["results"]:  # type: ignore[attr-defined]
        labels.append("x".join(map(str, row["shape"])))
        values.append(row["median_ms"])
        groups.append(row["norm"])
    for row in report["baseline"]:  # type: ignore[attr-defined]
        labels.append("x".join(map(str, row["shape"])))
        values.append(row["median_ms"])
        groups.append("per-map loop")

    def order_key(i: int) -> tuple[int, str, bool]:  # the benchmark's shape order, the per-map loop last
        return SHAPE_ORDER.get(labels[i], len(SHAPE_ORDER)), labels[i], groups[i] == "per-map loop"

    order = sorted(range(len(labels)), key=order_key)
    bar_chart(
        path,
        "Grid build (normalize + tile + colormap to RGB), median ms per layer shape (C x H x W)",
        [labels[i] for i in order],
        [values[i] for i in order],
        "median ms",
        [groups[i] for i in order],
        log=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a few seconds)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case (default 50, --quick 10)")
    add_output_options(parser, "the results")
    args = parser.parse_args(argv)
    if redraw_only(args, draw_chart):
        return 0
    repeats = args.repeats if args.repeats is not None else (10 if args.quick else 50)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    warmup = 2 if args.quick else 5
    report = run_benchmark(repeats, warmup)
    print(format_table(report))
    if args.json is not None:
        write_json(args.json, report)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.chart is not None:
        draw_chart(report, args.chart)
        print(f"wrote {args.chart}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
