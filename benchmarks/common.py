"""Helpers shared by the benchmark scripts: machine facts, progress, statistics, tables, JSON, charts.

Import it either way::

    sys.path.insert(0, "benchmarks"); from common import summarize   # scripts in benchmarks/
    from benchmarks.common import summarize                          # from the repository root

Importing it needs the package's own dependencies only (numpy, cv2, tqdm):
matplotlib (:func:`bar_chart`) and threadpoolctl (:func:`blas_threads`) come
with the ``bench`` extra and are imported when first used. :func:`machine_info`
asks ``live.engines`` for the OpenCL device when the package can be imported,
and reports None otherwise.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from tqdm import tqdm

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


def read_json(path: str | Path) -> Any:
    """The data of a JSON file :func:`write_json` wrote (nulls stay None)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def chart_path(chart: Path | None, results: Path) -> Path:
    """Where ``--chart-only RESULTS`` draws: ``--chart PNG`` if given, else RESULTS with a ``.png`` suffix."""
    return chart if chart is not None else results.with_suffix(".png")


# --------------------------------------------------------------------------
# Bar chart (matplotlib, imported when a chart is drawn)

_DPI = 100
_BAR_IN = 0.3  # height of one bar plus its gap, inches
_BLOCK_GAP = 0.6  # extra space between runs of equal labels, in bar heights
_LABEL_CHARS = 48  # longer bar labels are cut with an ellipsis


def _value_text(value: float) -> str:
    """A bar's value as printed next to it: about three significant digits, "n/a" for NaN."""
    if not math.isfinite(value):
        return "n/a"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:.{digits}f}"


def _nice_floor(value: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above ``value`` (> 0): where a logarithmic axis starts."""
    mag = 10 ** math.floor(math.log10(value))
    return max(m * mag for m in (1, 2, 5) if m * mag <= value * (1 + 1e-12))


def _short(text: str, chars: int) -> str:
    """``text`` cut to ``chars`` characters, the last one an ellipsis when it was longer."""
    return text if len(text) <= chars else text[: chars - 1] + "\u2026"


def save_figure(figure: Figure, path: str | Path) -> None:
    """Write ``figure`` as a PNG at ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    Parent folders are made; a reader never sees a half-written file, and a
    failed write leaves the old file in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            figure.savefig(fh, format="png", dpi=_DPI)
        tmp.chmod(0o644)
        tmp.replace(path)  # os.replace: atomic within one file system
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def bar_chart(
    path: str | Path,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    unit: str,
    groups: Sequence[str] | None = None,
    width: int = 1000,
    log: bool = False,
) -> None:
    """Draw a horizontal bar chart PNG with matplotlib (Agg canvas, no pyplot, no window).

    Args:
        path: the PNG to write (parent folders are made; written atomically,
            see :func:`save_figure`).
        title: drawn at the top (wrapped when longer than the image is wide).
        labels: one bar per label, top to bottom; a run of equal labels is
            drawn as one block, its label shown once beside it.
        values: the bar lengths (non-negative; NaN draws no bar and "n/a"),
            each also printed at the end of its bar.
        unit: the value axis title.
        groups: optional group name per label; each group gets a color and
            an entry in the legend.
        width: image width in pixels (the height follows from the number of bars).
        log: a logarithmic value axis (for values spanning decades; the
            axis title says so).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels but {len(values)} values")
    if groups is not None and len(groups) != len(labels):
        raise ValueError(f"{len(labels)} labels but {len(groups)} groups")
    group_names = list(dict.fromkeys(groups or []))
    colors = {g: f"C{i % 10}" for i, g in enumerate(group_names)}  # matplotlib's default cycle, Tableau 10

    # Bar positions top to bottom; a block of equal labels gets one tick at its middle.
    ys: list[float] = []
    ticks: list[tuple[float, str]] = []
    y = 0.0
    block_start = 0
    for i, label in enumerate(labels):
        if i and label != labels[i - 1]:
            ticks.append(((ys[block_start] + ys[i - 1]) / 2, labels[i - 1]))
            y += _BLOCK_GAP
            block_start = i
        ys.append(y)
        y += 1.0
    if labels:
        ticks.append(((ys[block_start] + ys[-1]) / 2, labels[-1]))

    finite = [float(v) for v in values if math.isfinite(v) and v > 0]
    vmax = max(finite, default=1.0)
    if log:
        lo = _nice_floor(min(finite, default=1.0) / 1.5)
        hi = vmax * (vmax / lo) ** 0.12  # room for the value text
    else:
        lo, hi = 0.0, vmax * 1.1

    legend_cols = max(1, min(len(group_names), (width - 40) // (7 * max(map(len, group_names), default=1) + 40)))
    legend_rows = math.ceil(len(group_names) / legend_cols) if group_names else 0
    title_lines = textwrap.wrap(title, max((width - 20) // 11, 20), break_on_hyphens=False) or [""]  # ~11 px a char
    height_in = 0.9 + 0.3 * len(title_lines) + 0.3 * legend_rows + _BAR_IN * max(y, 1.0)
    figure = Figure(figsize=(width / _DPI, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)  # the Agg canvas, explicitly: no pyplot, no GUI backend, no global state
    figure.suptitle("\n".join(title_lines), x=0.01, ha="left", fontsize=14, fontweight="bold")
    ax = figure.add_subplot()

    bar_colors = [colors[g] for g in groups] if groups is not None else ["C0"] * len(labels)
    lengths = [float(v) - lo if math.isfinite(v) and v > 0 else 0.0 for v in values]
    ax.barh(ys, lengths, height=0.75, left=lo, color=bar_colors)
    for yb, value in zip(ys, values, strict=True):
        x = float(value) if math.isfinite(value) and value > 0 else lo
        ax.annotate(
            _value_text(float(value)), (x, yb), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9
        )

    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(lo, hi)
    ax.set_ylim(y - 1 + 0.6, -0.6)  # first bar on top
    ax.set_yticks([t for t, _ in ticks], [_short(text, _LABEL_CHARS) for _, text in ticks])
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(f"{unit} (log scale)" if log and unit else unit)
    ax.grid(axis="x", color="0.88", linewidth=0.8, which="major")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if group_names:  # above the bars, under the title (constrained layout makes room for both)
        ax.legend(
            handles=[Patch(color=colors[g], label=g) for g in group_names],
            loc="lower left",
            bbox_to_anchor=(0.0, 1.0),
            ncols=legend_cols,
            frameon=False,
            borderaxespad=0.3,
        )
    save_figure(figure, path)


def add_output_options(parser: Any, what: str = "the results") -> None:
    """``--json PATH``, ``--chart PNG`` and ``--chart-only JSON``, the same in every script."""
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help=f"also write {what} as JSON")
    parser.add_argument("--chart", type=Path, default=None, metavar="PNG", help="also draw a bar chart")
    parser.add_argument(
        "--chart-only",
        type=Path,
        default=None,
        metavar="JSON",
        help="measure nothing: redraw the chart from a --json results file (to --chart PNG, default JSON's .png)",
    )


def redraw_only(args: Any, draw: Any) -> bool:
    """With ``--chart-only``: redraw the chart from its JSON with ``draw(report, path)`` and say so; else False."""
    if args.chart_only is None:
        return False
    path = chart_path(args.chart, args.chart_only)
    draw(read_json(args.chart_only), path)
    print(f"wrote {path}", file=sys.stderr)
    return True
