"""Benchmark: how long `live` takes to start, command by command, against a bare cv2.dnn load.

What it measures (wall time of a fresh process, median over ``--runs``):

* ``live layers`` and ``live snapshot -i PHOTO`` on the bundled model;
* ``live --source demo --frames 1 --screenshot`` (offscreen): plain `live`
  from process start to the first grid on screen (and out);
* for each network (the bundled model and the largest architectures the tests
  build, given seeded weights): ``live layers -m FILE`` and ``live snapshot
  -m FILE`` against the bare reference, a fresh ``python -c`` doing
  ``cv2.dnn.readNet(FILE)`` and one ``net.forward()``; the ratio is live / bare.
  ``live`` runs with its crash check as a user gets it: the first look at an
  untrusted file pays for the check once (a warm-up run, not timed), later
  runs reuse the verdict.

Every command, the bare one too, runs once untimed first, and from compiled
bytecode, as after ``pip install`` (kept under a temporary folder, also where
``PYTHONDONTWRITEBYTECODE`` is set).

Goals (issue "a start that feels instant"): ``live layers`` and ``live
snapshot`` on the bundled model within 1.0 s; plain ``live`` to the first
grid within 2.0 s; any network within 1.5x the bare load + forward.

Run from the repository root::

    python benchmarks/bench_startup.py            # 5 runs of each
    python benchmarks/bench_startup.py --quick    # 2 runs, fewer networks
    python benchmarks/bench_startup.py --json benchmarks/results/startup.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, machine_line, print_table, progress_bar, write_json
from synthetic import light_model

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data" / "efficientnet_lite0.onnx"
NETWORKS = ["googlenet", "resnet50", "densenet121"]
GOALS = {"bundled_s": 1.0, "first_grid_s": 2.0, "ratio": 1.5}
BARE = (
    "import sys, numpy as np, cv2\n"
    "net = cv2.dnn.readNet(sys.argv[1])\n"
    "shape = [int(d) for d in sys.argv[2].split('x')]\n"
    "net.setInput(np.zeros(shape, np.float32))\n"
    "net.forward()\n"
)


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds one fresh process takes; fails loudly when it does not exit 0."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return seconds


def median_of(command: list[str], env: dict[str, str], cwd: Path, runs: int) -> float:
    timed(command, env, cwd)  # the first look at a file pays for its crash check (and compiles bytecode); not timed
    return statistics.median(timed(command, env, cwd) for _ in range(runs))


def input_shape(path: Path) -> str:
    dims = [
        d.dim_value or 1
        for d in onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    ]
    return "x".join(str(d) for d in dims)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command (median reported)")
    parser.add_argument("--quick", action="store_true", help="2 runs, one extra network")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    runs = 2 if args.quick else args.runs
    networks = NETWORKS[:1] if args.quick else NETWORKS

    work = Path(tempfile.mkdtemp(prefix="live-bench-startup-"))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LIVE_CACHE=str(work / "cache"))
    # Every process runs from compiled bytecode, as after `pip install` (which compiles it): the untimed first
    # run of each command writes it, under the work folder (not into the checkout), even where the
    # environment says PYTHONDONTWRITEBYTECODE (this machine does; each start would compile live's modules).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    photo = work / "photo.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(photo), cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 3))
    live = [sys.executable, "-m", "live"]
    files = {"efficientnet_lite0 (bundled)": BUNDLED}
    for name in networks:
        path = work / f"{name}.onnx"
        onnx.save(light_model(name), str(path))
        files[name] = path

    bar = progress_bar(3 + 3 * len(files), "startup")
    commands: dict[str, float] = {}
    commands["live layers (bundled)"] = median_of([*live, "layers"], env, work, runs)
    bar.update()
    commands["live snapshot (bundled)"] = median_of(
        [*live, "snapshot", "-i", str(photo), "-o", "g.png"], env, work, runs
    )
    bar.update()
    commands["live to the first grid (offscreen)"] = median_of(
        [*live, "--source", "demo", "--frames", "1", "--screenshot", str(work / "w.png")], env, work, runs
    )
    bar.update()

    rows = [{"what": name, "median_s": seconds} for name, seconds in commands.items()]
    networks_rows = []
    for name, path in files.items():
        bare = median_of([sys.executable, "-c", BARE, str(path), input_shape(path)], env, work, runs)
        bar.update()
        layers = median_of([*live, "layers", "-m", str(path)], env, work, runs)
        bar.update()
        snapshot = median_of([*live, "snapshot", "-m", str(path), "-i", str(photo), "-o", "g.png"], env, work, runs)
        bar.update()
        networks_rows.append(
            {
                "network": name,
                "bare_s": bare,
                "layers_s": layers,
                "snapshot_s": snapshot,
                "layers_ratio": layers / bare,
                "snapshot_ratio": snapshot / bare,
            }
        )
    bar.close()

    machine = machine_info()
    print(machine_line(machine))
    print(f"median wall time of {runs} fresh processes each (after one untimed run)")
    print_table(rows, [("what", "command", "s"), ("median_s", "median s", ".2f")])
    print()
    print_table(
        networks_rows,
        [
            ("network", "network", "s"),
            ("bare_s", "bare readNet+forward s", ".2f"),
            ("layers_s", "live layers s", ".2f"),
            ("layers_ratio", "ratio", ".2f"),
            ("snapshot_s", "live snapshot s", ".2f"),
            ("snapshot_ratio", "ratio", ".2f"),
        ],
    )
    met = {
        "bundled_layers": commands["live layers (bundled)"] <= GOALS["bundled_s"],
        "bundled_snapshot": commands["live snapshot (bundled)"] <= GOALS["bundled_s"],
        "first_grid": commands["live to the first grid (offscreen)"] <= GOALS["first_grid_s"],
        "ratios": all(max(r["layers_ratio"], r["snapshot_ratio"]) <= GOALS["ratio"] for r in networks_rows),
    }
    print("\ngoals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))
    if args.json:
        write_json(
            args.json,
            {"machine": machine, "runs": runs, "commands": rows, "networks": networks_rows, "goals": GOALS, "met": met},
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
