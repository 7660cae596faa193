"""Soak test: a long headless run at ``--pace max``; memory and threads must stay flat.

Runs the real pipeline (capture thread, forward thread, grid building) on a
real clip for many frames, sampling the process's resident memory and its
thread count every ``--every`` results. Passes when resident memory grows by
less than ``--limit-mb`` (default 30 MB) from frame ``--from`` (default 1,000)
to the end, and the thread count never changes.

Usage, from the repository root::

    python benchmarks/soak.py [--frames 10000] [--quick] [--json out.json] [--model PATH] [--source VIDEO]

The default model is the bundled EfficientNet-Lite0, tapping its default
layer; the default clip is the bundled demo (looping).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import live  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import machine_info, print_table, progress_bar, write_json
from tqdm import tqdm

from live.assets import DEFAULT_MODEL, data_file
from live.frames import Result, View
from live.model import Model
from live.pipeline import Pipeline, run_headless
from live.sources import VideoSource


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; else the peak from getrusage)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def soak(model: Model, clip: Path, frames: int, every: int, progress: tqdm | None = None) -> list[dict]:
    """Run the headless pipeline for ``frames`` results; samples of (frame, rss, threads, fps)."""
    samples: list[dict] = []
    start = time.perf_counter()

    def sample(result: Result) -> None:
        if progress is not None:
            progress.update()
        n = result.seq
        if n == 1 or n % every == 0:
            samples.append(
                {
                    "frame": n,
                    "rss_mb": round(rss_mb(), 2),
                    "threads": threading.active_count(),
                    "elapsed_s": round(time.perf_counter() - start, 2),
                }
            )

    pipeline = Pipeline(model, VideoSource(clip, loop=True, pace="max"), View(layer=model.default_layer))
    stats = run_headless(pipeline, frames, sample)
    samples.append({"frame": stats["frames"], "rss_mb": round(rss_mb(), 2), "threads": threading.active_count(),
                    "elapsed_s": round(time.perf_counter() - start, 2), "after_close": True})  # fmt: skip
    return samples


def verdict(samples: list[dict], since: int, limit_mb: float) -> dict:
    """Memory growth from the first sample at or after frame ``since`` to the last one while running."""
    running = [s for s in samples if not s.get("after_close")]
    base = next((s for s in running if s["frame"] >= since), running[0])
    end = running[-1]
    growth = end["rss_mb"] - base["rss_mb"]
    threads = {s["threads"] for s in running}
    return {
        "rss_from_mb": base["rss_mb"],
        "rss_end_mb": end["rss_mb"],
        "growth_mb": round(growth, 2),
        "from_frame": base["frame"],
        "to_frame": end["frame"],
        "threads_seen": sorted(threads),
        "memory_ok": growth < limit_mb,
        "threads_ok": len(threads) == 1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, help="results to run (default 10000; --quick 2000)")
    parser.add_argument("--quick", action="store_true", help="2,000 frames, memory compared from frame 500")
    parser.add_argument("--every", type=int, default=250, help="sample every N results")
    parser.add_argument("--from", dest="since", type=int, help="compare memory from this frame (default 1000)")
    parser.add_argument("--limit-mb", type=float, default=30.0, help="allowed growth")
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled one)")
    parser.add_argument("--source", type=Path, help="video (default: the bundled demo clip)")
    parser.add_argument("--json", type=Path, help="write the samples and verdict as JSON")
    args = parser.parse_args()
    frames = args.frames or (2000 if args.quick else 10000)
    since = args.since or (500 if args.quick else 1000)
    model_path = args.model or data_file(DEFAULT_MODEL)
    clip = args.source or data_file("demo.mp4")
    if model_path is None or clip is None:
        raise SystemExit("soak: the bundled model or demo clip is missing; pass --model and --source")
    model = Model.load(model_path)
    progress = progress_bar(frames, f"soak: {model_path.name} {model.default_layer}")
    samples = soak(model, clip, frames, args.every, progress)
    progress.close()
    result = verdict(samples, since, args.limit_mb)
    print(f"{model_path.name}, layer {model.default_layer}, {frames} frames of {clip.name} at --pace max")
    print_table(samples, [("frame", "frame", ">7d"), ("rss_mb", "RSS MiB", ">9.1f"), ("threads", "threads", ">8d"),
                          ("elapsed_s", "seconds", ">8.1f")])  # fmt: skip
    print(
        f"resident memory from frame {result['from_frame']} to {result['to_frame']}: "
        f"{result['rss_from_mb']:.1f} -> {result['rss_end_mb']:.1f} MiB ({result['growth_mb']:+.1f} MiB, "
        f"limit {args.limit_mb:.0f}): {'ok' if result['memory_ok'] else 'FAIL'}; threads {result['threads_seen']}: "
        f"{'constant' if result['threads_ok'] else 'CHANGED'}"
    )
    if args.json:
        write_json(args.json, {"machine": machine_info(), "frames": frames, "samples": samples, "verdict": result})
    return 0 if result["memory_ok"] and result["threads_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
