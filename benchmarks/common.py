"""Helpers shared by the benchmark scripts: machine facts, progress, statistics, tables, JSON, charts.

Import it either way::

    sys.path.insert(0, "benchmarks"); from common import summarize   # scripts in benchmarks/
    from benchmarks.common import summarize                          # from the repository root

It needs numpy and cv2 only; :func:`machine_info` asks ``live.model`` for the
OpenCL device when the package can be imported, and reports None otherwise.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

_REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------
# Machine facts


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _opencl_device() -> dict[str, Any] | None:
    """``live.model.opencl_device()``, or None when ``live`` cannot be imported or OpenCL fails."""
    try:
        from live.engines import opencl_device
    except ImportError:
        if str(_REPO) not in sys.path:
            sys.path.insert(0, str(_REPO))
        try:
            from live.engines import opencl_device
        except ImportError:
            return None
    try:
        return opencl_device()
    except cv2.error:
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on.

    Touches OpenCL (to name the device): call ``live.model.configure_opencl``
    before this when a benchmark selects an OpenCL device.

    Returns:
        ``cpu`` (model name), ``cores`` (logical), ``opencv``, ``cv2_threads``
        (``cv2.getNumThreads()``), ``numpy``, ``python``, ``platform`` and
        ``opencl`` (``{"name", "type", ...}`` or None).
    """
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "opencv": cv2.__version__,
        "cv2_threads": cv2.getNumThreads(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "opencl": _opencl_device(),
    }


def machine_line(machine: dict[str, Any]) -> str:
    """One line summing up :func:`machine_info` for the top of a printed report."""
    ocl = machine.get("opencl")
    ocl_text = f"{ocl['name']} ({ocl['type']})" if isinstance(ocl, dict) else "none"
    return (
        f"machine: {machine['cpu']}, {machine['cores']} logical cores, cv2 threads {machine['cv2_threads']}, "
        f"python {machine['python']}, numpy {machine['numpy']}, opencv {machine['opencv']}, OpenCL device: {ocl_text}"
    )


# --------------------------------------------------------------------------
# Peak matrix-product throughput


@contextlib.contextmanager
def blas_threads(threads: int | None) -> Iterator[bool]:
    """Limit the BLAS libraries loaded in this process (numpy's) to ``threads`` threads inside the block.

    Uses ``threadpoolctl.threadpool_limits(limits=threads, user_api="blas")``,
    which restores the previous thread counts on exit.

    Yields:
        Whether a limit was applied: False for ``threads`` None or 0, when
        threadpoolctl is not installed (it comes with the ``bench`` extra), or
        when threadpoolctl finds no BLAS it can control.
    """
    if not threads:
        yield False
        return
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        yield False
        return
    if not any(pool.get("user_api") == "blas" for pool in threadpool_info()):
        yield False
        return
    with threadpool_limits(limits=int(threads), user_api="blas"):
        yield True


def peak_gflops(threads: int | None = None, size: int = 1024, repeats: int = 5) -> float:
    """The machine's measured float32 matrix-product peak, in GFLOP/s.

    Best of ``repeats`` timings of a ``size`` x ``size`` @ ``size`` x ``size``
    float32 product with numpy (``2 * size**3`` flops each), after one
    untimed product. ``threads`` limits numpy's BLAS threads where that is
    possible (see :func:`blas_threads`); None keeps numpy's default.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), np.float32)
    best = math.inf
    with blas_threads(threads):
        np.matmul(a, b, out=out)
        for _ in range(max(repeats, 1)):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best / 1e9


# --------------------------------------------------------------------------
# Progress


def progress_bar(total: int, label: str = "") -> tqdm:
    """A tqdm progress bar on stderr, drawn only when stderr is a terminal (``disable=None``).

    Callers count steps with ``update(n)`` and say what runs now with
    ``set_postfix_str(note)``; ``close()`` ends it (on a terminal the last
    bar stays as the summary line).
    """
    return tqdm(total=max(int(total), 0), desc=label or None, file=sys.stderr, disable=None, dynamic_ncols=True)


# --------------------------------------------------------------------------
# Statistics, tables, JSON


def summarize(ms: Sequence[float]) -> dict[str, float | int]:
    """Mean, median, 95th percentile, min and max of ``ms`` (same unit), and the count ``n``.

    An empty list gives NaN statistics and ``n == 0`` (NaN becomes null in
    :func:`write_json`).
    """
    arr = np.asarray(ms, np.float64)
    if arr.size == 0:
        nan = float("nan")
        return {"mean": nan, "median": nan, "p95": nan, "min": nan, "max": nan, "n": 0}
    return {
        "mean": float(arr.mean()),
        "median": float(np.median(arr)),
        "p95": float(np.percentile(arr, 95)),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "n": int(arr.size),
    }


def _cell(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if not spec:
        return str(value)
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """The text of :func:`print_table`."""
    cells = [[_cell(row.get(key), spec) for key, _, spec in columns] for row in rows]
    numeric = [
        all(isinstance(row.get(key), int | float) or row.get(key) is None for row in rows) and bool(rows)
        for key, _, _ in columns
    ]
    widths = [max([len(header), *(len(line[i]) for line in cells)]) for i, (_, header, _) in enumerate(columns)]

    def fmt(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    lines = [fmt([header for _, header, _ in columns]), "  ".join("-" * w for w in widths)]
    lines += [fmt(line) for line in cells]
    return "\n".join(lines)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> None:
    """Print ``rows`` as an aligned text table on stdout.

    Args:
        rows: one dict per row.
        columns: ``(key, header, format spec)``; the spec is what
            :func:`format` takes (``".2f"``, ``">5"``, ``""`` for ``str``).
            Missing, None and non-finite values show as ``-``; numeric
            columns are right-aligned.
    """
    print(format_table(rows, columns))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON (numpy values, Paths, NaN -> null handled); makes parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------
# Bar chart (cv2 drawing only)

# Tableau 10, as BGR.
PALETTE: list[tuple[int, int, int]] = [
    (180, 119, 31),
    (14, 127, 255),
    (44, 160, 44),
    (40, 39, 214),
    (189, 103, 148),
    (75, 86, 140),
    (194, 119, 227),
    (127, 127, 127),
    (34, 189, 188),
    (207, 190, 23),
]
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (40, 40, 40)


def _ascii(text: str) -> str:
    """Hershey fonts draw ASCII only."""
    return text.encode("ascii", "replace").decode("ascii")


def _text_width(text: str, scale: float, thickness: int) -> int:
    (w, _), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    return int(w)


def _nice_step(span: float, ticks: int = 5) -> float:
    """A 1/2/5 x 10^k step giving about ``ticks`` intervals over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * mag:
            return mult * mag
    return 10 * mag


def _value_text(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:.{digits}f}"


def bar_chart(
    path: Path,
    title: str,
    labels: list[str],
    values: list[float],
    unit: str,
    groups: list[str] | None = None,
    width: int = 1000,
) -> None:
    """Draw a horizontal bar chart PNG with cv2 drawing functions only.

    Args:
        path: the PNG to write (parent folders are made).
        title: drawn at the top.
        labels: one bar per label, top to bottom; a run of equal labels is
            drawn as one block, its label shown once.
        values: the bar lengths (non-negative; NaN draws no bar and "n/a").
        unit: the axis title (values are printed as bare numbers).
        groups: optional group name per label; each group gets a color and
            an entry in the legend.
        width: image width in pixels.
    """
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels but {len(values)} values")
    if groups is not None and len(groups) != len(labels):
        raise ValueError(f"{len(labels)} labels but {len(groups)} groups")
    labels = [_ascii(label) for label in labels]
    group_names: list[str] = []
    for g in groups or []:
        if g not in group_names:
            group_names.append(g)
    colors = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(group_names)}

    scale, thick = 0.5, 1
    bar_h, gap = 22, 8
    margin = 20
    title_h = 50
    axis_h = 46
    legend_rows: list[list[str]] = []
    if group_names:
        row: list[str] = []
        used = 0
        for g in group_names:
            w = 22 + _text_width(_ascii(g), scale, thick) + 24
            if row and used + w > width - 2 * margin:
                legend_rows.append(row)
                row, used = [], 0
            row.append(g)
            used += w
        legend_rows.append(row)
    legend_h = 26 * len(legend_rows) + (10 if legend_rows else 0)
    n = len(labels)
    block_gap = 10  # extra space where the label changes (runs of equal labels are drawn as one block)
    offsets: list[int] = []
    y_acc = 0
    for i in range(n):
        if i and labels[i] != labels[i - 1]:
            y_acc += block_gap
        offsets.append(y_acc)
        y_acc += bar_h + gap
    plot_h = y_acc
    height = title_h + legend_h + plot_h + axis_h + margin
    img = np.full((height, width, 3), 255, np.uint8)

    # Title
    tscale = 0.8
    title_text = _ascii(title)
    while _text_width(title_text, tscale, 2) > width - 2 * margin and tscale > 0.4:
        tscale -= 0.05
    cv2.putText(img, title_text, (margin, 34), _FONT, tscale, _INK, 2, cv2.LINE_AA)

    # Legend
    y = title_h + 4
    for row in legend_rows:
        x = margin
        for g in row:
            cv2.rectangle(img, (x, y), (x + 14, y + 14), colors[g], -1)
            cv2.putText(img, _ascii(g), (x + 20, y + 12), _FONT, scale, _INK, thick, cv2.LINE_AA)
            x += 22 + _text_width(_ascii(g), scale, thick) + 24
        y += 26

    # Plot area
    label_w = max([_text_width(label, scale, thick) for label in labels] + [0])
    label_w = min(label_w, width // 2)
    finite = [v for v in values if math.isfinite(v)]
    vmax = max([*finite, 0.0])
    value_w = max([_text_width(_value_text(v), scale, thick) for v in values] + [0]) + 10
    x0 = margin + label_w + 10
    x1 = width - margin - value_w
    top = title_h + legend_h
    step = _nice_step(vmax)
    axis_max = step * math.ceil(vmax / step) if vmax > 0 else 1.0
    span = max(x1 - x0, 10)

    def xpos(v: float) -> int:
        return round(x0 + span * min(max(v, 0.0), axis_max) / axis_max)

    bottom = top + plot_h
    tick = 0.0
    while tick <= axis_max + 1e-9:
        x = xpos(tick)
        cv2.line(img, (x, top - 4), (x, bottom), (225, 225, 225), 1)
        text = f"{tick:g}"
        tw = _text_width(text, 0.45, 1)
        cv2.putText(img, text, (x - tw // 2, bottom + 18), _FONT, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
        tick += step
    unit_text = _ascii(unit)
    if unit_text:
        uw = _text_width(unit_text, 0.45, 1)
        cv2.putText(img, unit_text, ((x0 + x1 - uw) // 2, bottom + 38), _FONT, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    cv2.line(img, (x0, top - 4), (x0, bottom), (120, 120, 120), 1)

    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        yb = top + offsets[i]
        color = colors[groups[i]] if groups is not None else PALETTE[0]
        if i == 0 or label != labels[i - 1]:
            text = label
            while _text_width(text, scale, thick) > label_w and len(text) > 4:
                text = text[:-4] + "..."
            tw = _text_width(text, scale, thick)
            cv2.putText(img, text, (x0 - 10 - tw, yb + bar_h - 6), _FONT, scale, _INK, thick, cv2.LINE_AA)
        if math.isfinite(value) and value > 0:
            cv2.rectangle(img, (x0 + 1, yb), (xpos(value), yb + bar_h), color, -1)
        vx = xpos(value) + 6 if math.isfinite(value) else x0 + 6
        vtext = _value_text(value)
        cv2.rectangle(img, (vx - 2, yb), (vx + _text_width(vtext, scale, thick) + 2, yb + bar_h), (255, 255, 255), -1)
        cv2.putText(img, vtext, (vx, yb + bar_h - 6), _FONT, scale, _INK, thick, cv2.LINE_AA)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cv2 could not write {path}")
