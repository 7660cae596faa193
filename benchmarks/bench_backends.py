"""Benchmark: forward passes side by side, per network, engine and target, against onnxruntime.

Networks: the bundled default model (EfficientNet-Lite0); the classic
architectures with seeded weights from ``benchmarks/synthetic.py`` (googlenet,
resnet50, squeezenet, shufflenet, densenet121; ``--quick``: googlenet and
squeezenet), saved to a temporary folder; and any ``--model`` files.

For each network, every engine OpenCV has x every target that really works
here (``cpu`` always; ``opencl``/``opencl_fp16`` only where
``live.model.effective_target`` keeps them, i.e. a GPU, or PoCL with
``--opencl-device :CPU:``) runs ``Model.forward(blob)`` (final outputs only)
on one fixed blob (a seeded random 640x480 frame through the model's own
preprocessing):

* first pass timed alone (``first_ms``: layer setup; on OpenCL, the kernel
  compile), then ``--warmup`` untimed passes, then ``--repeats`` timed ones.
  OpenCL rows use 1 warm-up and at most 3 repeats (PoCL is ~25x slower).
* mean/median/p95/min ms, frames/s (1000 / median), GFLOP/s achieved
  (FLOPs / median) and its fraction of the measured numpy float32 matmul peak.
* FLOPs are counted from the ONNX graph after shape inference at the
  network's input shape: Conv = 2 * N*Cout*Hout*Wout * (Cin/group)*kh*kw,
  Gemm/MatMul = 2*M*N*K; bias adds and every other op (pooling, activations,
  elementwise, normalization, ...) are not counted.
* ``rel diff``: max |output - reference| / max |reference|, the reference
  being onnxruntime's output (else the first OpenCV CPU row's).
* "ran on": the engine and target the forward really used, as live reports
  them (live checks the engine of every net it builds, and mirrors the checks
  cv2.dnn makes before it switches an OpenCL target to the CPU), corrected by
  the target the layers report after the first forward pass.
* ``profile``: the engine's own per-layer profile of the plain network
  (``live.profile``; the same warm-up and repeats): total, the slowest layers
  (``top``), totals per op family; ``target_in_use`` (what the layers ran on
  after the first pass), ``fallback_logged`` and ``opencv_log`` (OpenCV's
  log lines about a fallback, captured during that pass).

Peer: onnxruntime's CPUExecutionProvider on the same model file and blob, same
repeat scheme, intra-op threads = OpenCV's thread count.

Cost of tapping: on the default engine and the CPU, median of a plain forward
vs one with 1 tapped 4-D layer (the middle one) vs 5 (evenly spread), timed
round-robin, as ms and overhead %.

Run from the repository root::

    python benchmarks/bench_backends.py --quick                  # under 2 minutes on 2 cores
    python benchmarks/bench_backends.py --json out.json --chart out.png
    python benchmarks/bench_backends.py --quick --opencl-device :CPU:   # PoCL: slow OpenCL rows

Tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    add_output_options,
    bar_chart,
    machine_info,
    machine_line,
    peak_gflops,
    print_table,
    progress_bar,
    redraw_only,
    summarize,
    write_json,
)

try:
    import live  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live.assets import DEFAULT_MODEL, data_file
from live.catalog import is_cached, load_catalog, model_path, opencv_fits
from live.engines import TARGETS, configure_opencl, effective_target, engines_available, quiet_opencv
from live.errors import LiveError
from live.model import Model, Settings
from live.profile import first_forward, profile

LIGHT_FULL = ["googlenet", "resnet50", "squeezenet", "shufflenet", "densenet121"]
LIGHT_QUICK = ["googlenet", "squeezenet"]
OPENCL_WARMUP = 1
OPENCL_MAX_REPEATS = 3
FRAME_SEED = 0
FLOPS_NOTE = (
    "FLOPs: Conv = 2*N*Cout*Hout*Wout*(Cin/group)*kh*kw, Gemm/MatMul = 2*M*N*K, from ONNX shape inference at the "
    "input shape; bias adds and all other ops (pooling, activations, elementwise, normalization, ...) not counted"
)


@dataclasses.dataclass
class Network:
    """One network to benchmark."""

    name: str
    path: Path
    source: str  # "bundled", "light" or "user"


@dataclasses.dataclass
class Timing:
    """What :func:`time_runs` measured."""

    first_ms: float
    samples: list[float]
    output: list[np.ndarray]


# --------------------------------------------------------------------------
# FLOPs


def _prod(dims: Sequence[int]) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


def count_flops(path: Path, input_shape: Sequence[int]) -> dict[str, Any] | None:
    """Multiply-add FLOPs of Conv, Gemm and MatMul nodes, from ONNX shape inference.

    Returns None for non-ONNX files, else ``{"total", "by_op", "not_counted", "unknown"}``:
    ``by_op`` maps Conv/Gemm/MatMul to FLOPs, ``not_counted`` maps every
    other op type to its node count, ``unknown`` names the counted-op nodes
    whose shapes inference could not give (left out of the total).
    """
    if path.suffix.lower() != ".onnx":
        return None
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    graph = model.graph
    init_shapes = {init.name: tuple(int(d) for d in init.dims) for init in graph.initializer}
    inputs = [inp for inp in graph.input if inp.name not in init_shapes]
    if len(inputs) != len(graph.input):
        del graph.input[:]
        graph.input.extend(inputs)
        model.ir_version = max(model.ir_version, 4)
    if inputs:
        dims = inputs[0].type.tensor_type.shape.dim
        if len(dims) == len(input_shape):
            for dim, size in zip(dims, input_shape, strict=True):
                dim.Clear()
                dim.dim_value = int(size)
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - best effort: unknown shapes are reported, not fatal
        inferred = model
    shapes: dict[str, tuple[int, ...] | None] = dict(init_shapes)
    for info in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        tt = info.type.tensor_type
        if not tt.HasField("shape"):
            continue
        dims_ok = all(d.HasField("dim_value") for d in tt.shape.dim)
        shapes[info.name] = tuple(int(d.dim_value) for d in tt.shape.dim) if dims_ok else None
    by_op = {"Conv": 0, "Gemm": 0, "MatMul": 0}
    not_counted: dict[str, int] = {}
    unknown: list[str] = []
    for i, node in enumerate(graph.node):
        op = node.op_type
        if op not in by_op:
            not_counted[op] = not_counted.get(op, 0) + 1
            continue
        out = shapes.get(node.output[0])
        a = shapes.get(node.input[0])
        w = shapes.get(node.input[1]) if len(node.input) > 1 else None
        if out is None or (op == "Conv" and w is None) or (op != "Conv" and a is None):
            unknown.append(node.name or f"{op}#{i}")
            continue
        if op == "Conv":
            assert w is not None
            by_op[op] += 2 * _prod(out) * _prod(w[1:])
        elif op == "Gemm":
            assert a is not None
            trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
            k = a[0] if trans_a else a[1]
            by_op[op] += 2 * _prod(out) * int(k)
        else:
            assert a is not None
            by_op[op] += 2 * _prod(out) * int(a[-1])
    return {"total": sum(by_op.values()), "by_op": by_op, "not_counted": not_counted, "unknown": unknown}


# --------------------------------------------------------------------------
# Engines really in use


# --------------------------------------------------------------------------
# Timing


def time_runs(fn: Callable[[], list[np.ndarray]], warmup: int, repeats: int) -> Timing:
    """First pass timed alone, ``warmup`` untimed passes, ``repeats`` timed ones (ms)."""
    t0 = time.perf_counter()
    output = fn()
    first = (time.perf_counter() - t0) * 1e3
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return Timing(first, samples, output)


def saturated(outputs: list[np.ndarray]) -> bool:
    """Whether every output is one-hot (a softmax driven to 0/1): then differences hide in rounding."""
    for out in outputs:
        flat = np.sort(np.asarray(out, np.float64).ravel())
        if flat.size < 2 or flat[-1] < 1.0 - 1e-6 or flat[-2] > 1e-6:
            return False
    return bool(outputs)


def compare(reference: list[np.ndarray] | None, got: list[np.ndarray]) -> tuple[float | None, float | None]:
    """Max absolute and relative (to max |reference|) difference over the outputs, in order."""
    if not reference or len(reference) != len(got):
        return None, None
    worst = 0.0
    scale = 0.0
    for ref, out in zip(reference, got, strict=True):
        ref = np.asarray(ref, np.float64)
        out = np.asarray(out, np.float64)
        if ref.shape != out.shape:
            if ref.size != out.size:
                return None, None
            out = out.reshape(ref.shape)
        worst = max(worst, float(np.max(np.abs(ref - out))) if ref.size else 0.0)
        scale = max(scale, float(np.max(np.abs(ref))) if ref.size else 0.0)
    return worst, (worst / scale if scale > 0 else None)


def make_row(
    network: Network,
    runtime: str,
    engine: str,
    backend: str,
    target: str,
    timing: Timing,
    flops: int | None,
    peak: float,
    reference: list[np.ndarray] | None,
    **extra: Any,
) -> dict[str, Any]:
    """One result row: timing statistics, throughput, FLOP rate, agreement with the reference."""
    stats = summarize(timing.samples)
    median = float(stats["median"])
    gflops = flops / (median / 1e3) / 1e9 if flops and median > 0 else None
    abs_diff, rel_diff = compare(reference, timing.output)
    row: dict[str, Any] = {
        "network": network.name,
        "runtime": runtime,
        "engine": engine,
        "backend": backend,
        "target": target,
        "engine_actual": engine,
        "target_actual": target,
        "first_ms": timing.first_ms,
        "n": stats["n"],
        "mean_ms": stats["mean"],
        "median_ms": median,
        "p95_ms": stats["p95"],
        "min_ms": stats["min"],
        "max_ms": stats["max"],
        "fps": 1000.0 / median if median > 0 else None,
        "flops": flops,
        "gflops": gflops,
        "peak_fraction": gflops / peak if gflops is not None and peak > 0 else None,
        "max_abs_diff": abs_diff,
        "rel_diff": rel_diff,
        "notes": [],
    }
    row.update(extra)
    row["ran_on"] = f"{row['engine_actual']}/{row['target_actual']}"
    return row


# --------------------------------------------------------------------------
# Benchmark


def cached_catalog_models() -> list[Any]:
    """Catalog models already downloaded that this OpenCV reads, ONNX only (the FLOP counter reads ONNX)."""
    try:
        catalog = load_catalog()
    except LiveError as exc:
        print(f"catalog skipped: {exc}", file=sys.stderr)
        return []
    return [
        entry
        for entry in catalog.values()
        if is_cached(entry) and opencv_fits(entry.opencv, cv2.__version__) and model_path(entry).suffix == ".onnx"
    ]


def collect_networks(quick: bool, models: Sequence[Path], folder: Path) -> list[Network]:
    """The default model, the light classics (materialized lazily by :func:`materialize`),
    catalog models found in the cache, the user's models."""
    nets: list[Network] = []
    default = data_file(DEFAULT_MODEL)
    if default is not None:
        nets.append(Network(default.stem, default, "bundled"))
    for name in LIGHT_QUICK if quick else LIGHT_FULL:
        nets.append(Network(name, folder / f"{name}.onnx", "light"))
    seen = {n.name for n in nets}
    for entry in cached_catalog_models():
        nets.append(Network(entry.name, model_path(entry), "catalog"))
        seen.add(entry.name)
    for path in models:
        name = path.stem if path.stem not in seen else str(path)
        seen.add(name)
        nets.append(Network(name, path, "user"))
    return nets


def materialize(network: Network) -> None:
    """Write a light network's seeded-weight ONNX file (no-op for the others)."""
    if network.source != "light" or network.path.is_file():
        return
    import onnx

    try:
        from synthetic import light_model
    except ImportError:  # imported as benchmarks.bench_backends
        from benchmarks.synthetic import light_model

    onnx.save(light_model(network.name), str(network.path))


def onnxruntime_session(path: Path, threads: int) -> tuple[Any, str | None]:
    """An onnxruntime CPU session with ``threads`` intra-op threads, or (None, why not)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime is not importable"
    if path.suffix.lower() != ".onnx":
        return None, "onnxruntime runs ONNX files only"
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        return None, f"onnxruntime cannot load it: {str(exc).splitlines()[0]}"
    return session, None


def tapping_case(model: Model, blob: np.ndarray, warmup: int, repeats: int) -> dict[str, Any] | None:
    """Plain forward vs 1 and 5 tapped 4-D layers, timed round-robin."""
    spatial = [layer for layer in model.tappable_layers() if layer.shape is not None and len(layer.shape) == 4]
    if not spatial:
        return None
    one = [spatial[len(spatial) // 2].name]
    picks = sorted({round(float(i)) for i in np.linspace(0, len(spatial) - 1, min(5, len(spatial)))})
    five = [spatial[i].name for i in picks]
    variants: dict[str, list[str]] = {"plain": [], "tap1": one, "tap5": five}
    for layers in variants.values():
        for _ in range(1 + warmup):
            model.forward(blob, layers)
    samples: dict[str, list[float]] = {key: [] for key in variants}
    for _ in range(repeats):
        for key, layers in variants.items():
            t0 = time.perf_counter()
            model.forward(blob, layers)
            samples[key].append((time.perf_counter() - t0) * 1e3)
    med = {key: float(summarize(values)["median"]) for key, values in samples.items()}
    return {
        "engine": model.engine,
        "target": model.target,
        "spatial_layers": len(spatial),
        "layers_1": one,
        "layers_5": five,
        "n": repeats,
        "plain_ms": med["plain"],
        "tap1_ms": med["tap1"],
        "tap5_ms": med["tap5"],
        "tap1_overhead_pct": 100.0 * (med["tap1"] / med["plain"] - 1.0),
        "tap5_overhead_pct": 100.0 * (med["tap5"] / med["plain"] - 1.0),
    }


TOP_LAYERS = 10
FALLBACK_WORDS = ("switching to", "fallback", "not supported")


def layer_profile(model: Model, blob: np.ndarray, warmup: int, repeats: int) -> dict[str, Any]:
    """The engine's per-layer profile of the plain network, and the target the work really ran on.

    A new plain net is built and its first forward pass run with OpenCV's log
    captured: cv2.dnn decides then whether an OpenCL target really runs on
    OpenCL (it switches a non-GPU device to the CPU, and FP16 to FP32 where the
    device has no float16, opencv#18283), and logs it only sometimes; the
    layers' own target after that pass is the fact. Then ``repeats`` profiled
    passes (after ``warmup``) are averaged.

    Returns ``{"profile": {"total_ms", "forward_ms", "frames", "top": [{"name", "op", "ms"}, ...],
    "by_kind", "reason"}, "target_in_use", "fallback_logged", "opencv_log"}``.
    """
    net = model.plain_net()
    first_ms, log = first_forward(net, blob)
    result = profile(model, blob, frames=repeats, warmup=warmup, net=net)
    data = result.to_dict()
    logged = [line.strip() for line in log if any(word in line.lower() for word in FALLBACK_WORDS)]
    return {
        "profile": {
            "total_ms": data["total_ms"],
            "forward_ms": data["forward_ms"],
            "first_ms": first_ms,
            "frames": data["frames"],
            "top": [{"name": t.name, "op": t.op, "ms": round(t.ms, 4)} for t in result.top(TOP_LAYERS)],
            "by_kind": data["by_kind"],
            "reason": data["reason"],
        },
        "target_in_use": result.target,
        "fallback_logged": bool(logged),
        "opencv_log": logged,
    }


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Measure everything; returns the JSON report."""
    threads = cv2.getNumThreads()
    quick: bool = args.quick
    warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    repeats = args.repeats if args.repeats is not None else (5 if quick else 20)
    machine = machine_info()
    peak = peak_gflops(threads)
    engines = engines_available()
    notes: list[str] = []
    skipped: list[dict[str, Any]] = []

    usable = ["cpu"]
    for target in TARGETS:
        if target == "cpu":
            continue
        actual, why = effective_target(target)
        if actual == target:
            usable.append(target)
        else:
            skipped.append({"network": "*", "engine": "*", "target": target, "reason": why or f"runs as {actual}"})
    if "new" in engines and len(usable) > 1:
        for target in usable[1:]:
            skipped.append({"network": "*", "engine": "new", "target": target, "reason": "the new engine is CPU-only"})
    cases = [(e, t) for e in engines for t in usable if t == "cpu" or e == "classic"]

    rng = np.random.default_rng(FRAME_SEED)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    rows: list[dict[str, Any]] = []
    tapping: list[dict[str, Any]] = []
    networks_info: list[dict[str, Any]] = []

    with tempfile.TemporaryDirectory(prefix="bench_backends_") as tmp:
        networks = collect_networks(quick, args.model or [], Path(tmp))
        steps_per_net = 1 + len(cases) + 2
        progress = progress_bar(len(networks) * steps_per_net, "bench_backends")
        for net in networks:
            progress.set_postfix_str(f"{net.name}: prepare")
            try:
                materialize(net)
                base = Model.load(net.path, Settings(engine="auto", target="cpu"), probe=False)
            except (LiveError, cv2.error, OSError) as exc:
                skipped.append({"network": net.name, "engine": "*", "target": "*", "reason": str(exc)})
                progress.update(steps_per_net)
                continue
            blob = base.blob(frame)
            flops_info = count_flops(net.path, base.input_shape)
            flops = flops_info["total"] if flops_info else None
            networks_info.append(
                {
                    "name": net.name,
                    "path": str(net.path) if net.source != "light" else f"light_model({net.name!r})",
                    "source": net.source,
                    "format": base.format,
                    "input_shape": list(base.input_shape),
                    "outputs": list(base.outputs),
                    "flops": flops_info,
                    "output_saturated": False,
                }
            )
            del base
            progress.update(1)
            progress.set_postfix_str(f"{net.name}: onnxruntime")

            # Peer first: its outputs are the reference.
            reference: list[np.ndarray] | None = None
            session, why = onnxruntime_session(net.path, threads)
            if session is None:
                skipped.append({"network": net.name, "engine": "onnxruntime", "target": "cpu", "reason": why})
                ort_row = None
            else:
                feed = {session.get_inputs()[0].name: blob}
                timing = time_runs(lambda s=session, f=feed: list(s.run(None, f)), warmup, repeats)
                reference = timing.output
                ort_row = make_row(
                    net, "onnxruntime", "onnxruntime", "CPUExecutionProvider", "cpu", timing, flops, peak, None
                )
                ort_row["notes"].append(f"intra_op_num_threads={threads}")
            progress.update(1)

            for engine, target in cases:
                progress.set_postfix_str(f"{net.name}: {engine}/{target}")
                opencl = target != "cpu"
                w = OPENCL_WARMUP if opencl else warmup
                r = min(repeats, OPENCL_MAX_REPEATS) if opencl else repeats
                try:
                    with quiet_opencv():
                        t0 = time.perf_counter()
                        model = Model.load(net.path, Settings(engine=engine, target=target), probe=False)
                        load_ms = (time.perf_counter() - t0) * 1e3
                        outputs = list(model.outputs)
                        timing = time_runs(lambda m=model, o=outputs, b=blob: [m.forward(b)[k] for k in o], w, r)
                except (LiveError, cv2.error) as exc:
                    skipped.append({"network": net.name, "engine": engine, "target": target, "reason": str(exc)})
                    progress.update(1)
                    continue
                row = make_row(
                    net,
                    "live",
                    engine,
                    model.backend,
                    target,
                    timing,
                    flops,
                    peak,
                    reference,
                    load_ms=load_ms,
                    engine_actual=model.engine,  # live checks the engine each net was built with
                    target_actual=model.target,
                )
                if row["engine_actual"] == "new" and model.target != "cpu":
                    row["target_actual"] = "cpu"
                    row["ran_on"] = "new/cpu"
                if row["ran_on"] != f"{engine}/{target}":
                    row["notes"].append(f"asked {engine}/{target}, ran on {row['ran_on']}")
                row["notes"] += model.notes
                progress.set_postfix_str(f"{net.name}: {engine}/{target} profile")
                try:
                    row.update(layer_profile(model, blob, w, r))
                except (LiveError, cv2.error) as exc:
                    row["profile"] = {"layers": None, "reason": str(exc)}
                in_use = row.get("target_in_use")
                if in_use is not None and in_use != row["target_actual"]:  # cv2.dnn switched it, silently
                    row["notes"].append(f"cv2.dnn ran {row['target_actual']} as {in_use} after the first forward pass")
                    row["target_actual"] = in_use
                    row["ran_on"] = f"{row['engine_actual']}/{in_use}"
                if reference is None:
                    reference = timing.output
                rows.append(row)
                del model
                progress.update(1)

            if ort_row is not None:
                rows.append(ort_row)
            if reference is not None and saturated(reference):
                networks_info[-1]["output_saturated"] = True
                notes.append(
                    f"{net.name}: the output is a saturated softmax (one-hot with these seeded weights), "
                    "so rel diff checks the top-1 class only"
                )

            progress.set_postfix_str(f"{net.name}: tapping")
            try:
                with quiet_opencv():
                    tap_model = Model.load(net.path, Settings(engine="auto", target="cpu"))
                    tap = tapping_case(tap_model, blob, warmup, repeats)
            except (LiveError, cv2.error) as exc:
                skipped.append({"network": net.name, "engine": "tapping", "target": "cpu", "reason": str(exc)})
                tap = None
            if tap is not None:
                tapping.append({"network": net.name, **tap})
            progress.update(1)
        progress.close()

    return {
        "machine": machine,
        "peak_gflops": peak,
        "settings": {
            "quick": quick,
            "warmup": warmup,
            "repeats": repeats,
            "opencl_warmup": OPENCL_WARMUP,
            "opencl_max_repeats": OPENCL_MAX_REPEATS,
            "threads": threads,
            "opencl_device": args.opencl_device,
            "engines": engines,
            "targets": usable,
            "frame": f"seeded random 640x480 BGR uint8 (seed {FRAME_SEED}) through each model's preprocessing",
            "flops": FLOPS_NOTE,
        },
        "networks": networks_info,
        "rows": rows,
        "tapping": tapping,
        "skipped": skipped,
        "notes": notes,
    }


# --------------------------------------------------------------------------
# Output

ROW_COLUMNS: list[tuple[str, str, str]] = [
    ("network", "network", ""),
    ("runtime", "runtime", ""),
    ("engine", "engine", ""),
    ("target", "target", ""),
    ("ran_on", "ran on", ""),
    ("first_ms", "first ms", ".1f"),
    ("mean_ms", "mean", ".2f"),
    ("median_ms", "median", ".2f"),
    ("p95_ms", "p95", ".2f"),
    ("min_ms", "min", ".2f"),
    ("fps", "frames/s", ".1f"),
    ("gflops", "GFLOP/s", ".1f"),
    ("peak_pct", "% peak", ".1f"),
    ("rel_diff", "rel diff", ".1e"),
]
TAP_COLUMNS: list[tuple[str, str, str]] = [
    ("network", "network", ""),
    ("engine", "engine", ""),
    ("plain_ms", "plain ms", ".2f"),
    ("tap1_ms", "1 tap ms", ".2f"),
    ("tap1_overhead_pct", "1 tap %", "+.1f"),
    ("tap5_ms", "5 taps ms", ".2f"),
    ("tap5_overhead_pct", "5 taps %", "+.1f"),
    ("n", "n", "d"),
]


def print_report(report: dict[str, Any]) -> None:
    """The tables and notes, on stdout."""
    settings = report["settings"]
    print(machine_line(report["machine"]))
    print(
        f"peak: {report['peak_gflops']:.1f} GFLOP/s (numpy float32 1024^3 matmul, {settings['threads']} threads); "
        f"warmup {settings['warmup']}, repeats {settings['repeats']} "
        f"(OpenCL: warmup {settings['opencl_warmup']}, at most {settings['opencl_max_repeats']} repeats); "
        "times in ms"
    )
    print()
    rows = [
        {**row, "peak_pct": 100 * row["peak_fraction"] if row["peak_fraction"] is not None else None}
        for row in report["rows"]
    ]
    print_table(rows, ROW_COLUMNS)
    print()
    for net in report["networks"]:
        flops = net["flops"]
        if flops:
            unknown = f", {len(flops['unknown'])} nodes of unknown shape left out" if flops["unknown"] else ""
            shape = "x".join(map(str, net["input_shape"]))
            print(f"{net['name']}: {flops['total'] / 1e9:.3f} GFLOPs at input {shape}{unknown}")
        else:
            print(f"{net['name']}: FLOPs not counted ({net['format']})")
    print(FLOPS_NOTE)
    print("GFLOP/s = counted FLOPs / median; Winograd-style convolutions do fewer real FLOPs, so % peak can pass 100")
    print("rel diff: max |out - onnxruntime| / max |onnxruntime| (else vs the first OpenCV CPU row)")
    print()
    print("cost of tapping (default engine, CPU, medians of round-robin runs):")
    print_table(report["tapping"], TAP_COLUMNS)
    profiled = [row for row in report["rows"] if row.get("profile")]
    if profiled:
        print()
        print("where the time goes (the engine's own per-layer profile of the plain network; slowest 3 layers):")
        for row in profiled:
            prof = row["profile"]
            where = f"{row['network']} {row['engine']}/{row['target']}"
            if row["target"] != "cpu":
                logged = "a fallback was logged" if row.get("fallback_logged") else "no fallback logged"
                where += f" (ran on {row.get('target_in_use')}; {logged})"
            if not prof.get("top"):
                print(f"  {where}: no per-layer times: {prof.get('reason')}")
                continue
            top = ", ".join(f"{t['name']} ({t['op']}) {t['ms']:.2f}" for t in prof["top"][:3])
            print(f"  {where}: {prof['total_ms']:.2f} ms; {top}")
    odd = [row for row in report["rows"] if row["notes"] and row["runtime"] != "onnxruntime"]
    if report["skipped"] or report["notes"] or odd:
        print()
    for item in report["skipped"]:
        print(f"skipped: {item['network']} {item['engine']}/{item['target']}: {item['reason']}")
    for row in odd:
        print(f"note: {row['network']} {row['runtime']} {row['engine']}/{row['target']}: {'; '.join(row['notes'])}")
    for note in report["notes"]:
        print(f"note: {note}")


def draw_chart(report: dict[str, Any], path: Path) -> None:
    """Frames/s per network and runtime, one color per runtime."""
    labels: list[str] = []
    values: list[float] = []
    groups: list[str] = []
    for row in report["rows"]:
        if row["runtime"] == "onnxruntime":
            group = "onnxruntime CPU"
        else:
            group = f"{row['runtime']} {row['engine']}/{row['target']}"
            if row["ran_on"] != f"{row['engine']}/{row['target']}":
                group += f" (ran {row['ran_on']})"
        labels.append(row["network"])
        values.append(float(row["fps"]) if row["fps"] is not None else float("nan"))
        groups.append(group)
    machine = report["machine"]
    threads = report["settings"]["threads"]
    title = f"Forward passes, frames/s ({machine['cpu']}, {threads} threads, OpenCV {machine['opencv']}"
    ocl = machine.get("opencl")
    if isinstance(ocl, dict) and any(row["target"] != "cpu" for row in report["rows"]):
        title += f"; OpenCL device: {ocl['name']} ({ocl['type']})"
    title += ")"
    bar_chart(path, title, labels, values, "frames/s", groups)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 networks, warmup 1, repeats 5 (seconds on 2 cores; about 50 s with --opencl-device :CPU:)",
    )
    parser.add_argument(
        "--model", type=Path, action="extend", nargs="+", default=None, metavar="PATH", help="more network files"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, metavar="N", help="timed runs per case (default 20, --quick 5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, metavar="N", help="untimed runs after the first (default 3, --quick 1)"
    )
    parser.add_argument(
        "--opencl-device",
        default=None,
        metavar="DEV",
        help="OpenCL device in OpenCV's syntax, e.g. :CPU: for PoCL or :GPU:0 (also allows non-GPU devices)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, metavar="N", help="OpenCV and onnxruntime threads (default: OpenCV's)"
    )
    add_output_options(parser, "everything")
    args = parser.parse_args(argv)
    if redraw_only(args, draw_chart):
        return 0
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.warmup is not None and args.warmup < 0:
        parser.error("--warmup must be at least 0")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    for path in args.model or []:
        if not path.is_file():
            parser.error(f"--model {path}: no such file")
    configure_opencl(args.opencl_device)  # before anything touches OpenCL
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    report = run_benchmark(args)
    print_report(report)
    if args.json is not None:
        write_json(args.json, report)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.chart is not None:
        draw_chart(report, args.chart)
        print(f"wrote {args.chart}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
