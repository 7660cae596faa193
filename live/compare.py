"""Two configurations, one input, every layer compared: ``live compare``.

A configuration is ``ENGINE/TARGET``: ``new/cpu``, ``classic/cpu``,
``classic/opencl``, ``classic/opencl_fp16`` (where the installed OpenCV has
them: the classic engine is gone from 5.1 and OpenCL targets with it; 4.x has
no new engine), or ``onnxruntime/cpu`` (ONNX models, where the onnxruntime
package is importable): a reference that is not OpenCV at all.

Each side taps every layer it can in one forward pass (through
:meth:`live.model.Model.forward`, or onnxruntime with the same tensors made
graph outputs); the layers tappable on both are compared in network order:
the largest absolute difference, the same relative to the largest magnitude
of the two, and each side's time for that layer from its engine's own
profile (:mod:`live.profile`; None where a side has none). The first layer
whose relative difference passes the tolerance is where the two part.

The configuration reported for a side is what really ran: a target cv2.dnn
switched after the first forward pass (OpenCL to the CPU on a non-GPU device,
OpenCL FP16 to FP32) is named as it ran, with a note saying so.

No Qt; nothing printed. The command line is in :mod:`live.cli`; a window can
call :func:`open_side` once per configuration and :func:`compare_sides` (or
:func:`layer_difference` for one layer) per frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from live import profile as profiling
from live.engines import TARGETS, engines_available
from live.errors import ModelError, UsageError
from live.layers import Layer
from live.model import Model, Settings

ONNXRUNTIME = "onnxruntime"
DEFAULT_TOLERANCE = 1e-4
"""Relative difference (to the largest magnitude of the layer) past which two layers part."""
DEFAULT_FRAMES = 10
"""Forward passes each side's per-layer profile averages in ``live compare``."""


def onnxruntime_available() -> bool:
    """Whether the onnxruntime package can be imported here."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Config:
    """One side's configuration, ``ENGINE/TARGET``.

    Attributes:
        engine: ``new``, ``classic`` or ``onnxruntime``.
        target: a :data:`live.engines.TARGETS` name (``cpu`` for onnxruntime).
    """

    engine: str
    target: str = "cpu"

    def __str__(self) -> str:
        return f"{self.engine}/{self.target}"

    @classmethod
    def parse(cls, text: str, option: str = "configuration") -> Config:
        """``"classic/opencl"`` -> Config; ``"new"`` means ``new/cpu``.

        Raises:
            UsageError: not ``ENGINE/TARGET``, or a name ``live`` does not know
                (the message lists what this OpenCV has).
        """
        engine, _, target = text.strip().partition("/")
        engine, target = engine.strip(), (target.strip() or "cpu")
        known = (*engines_available(), ONNXRUNTIME)
        offers = f"OpenCV {cv2.__version__} here offers {', '.join(configs())}"
        if engine not in ("new", "classic", ONNXRUNTIME) or target not in TARGETS:
            raise UsageError(f"{option} {text!r} is not ENGINE/TARGET; {offers}")
        if engine == ONNXRUNTIME and target != "cpu":
            raise UsageError(f"{option} {text}: live runs onnxruntime on the CPU only (onnxruntime/cpu)")
        if engine not in known:
            raise UsageError(f"{option} {text}: OpenCV {cv2.__version__} has no {engine} engine; {offers}")
        return cls(engine, target)


def configs() -> list[str]:
    """The configurations this installation can name: each engine's targets, then onnxruntime if importable."""
    found = []
    for engine in engines_available():
        found += [f"{engine}/{target}" for target in TARGETS if engine == "classic" or target == "cpu"]
    if onnxruntime_available():
        found.append(f"{ONNXRUNTIME}/cpu")
    return found


def default_configs(fmt: str, a: Config | None, b: Config | None, second_model: bool) -> tuple[Config, Config]:
    """The two configurations to compare when ``--a`` or ``--b`` is left out.

    With a second model file, the same configuration on both sides (the one
    given, else the best engine on the CPU).
    Otherwise the two engines of the installed OpenCV on the CPU (OpenCV 5.0);
    else its engine against onnxruntime (ONNX models, when importable).

    Raises:
        UsageError: nothing to compare with: says what to pass.
    """
    if a is not None and b is not None:
        return a, b
    best = Config(engines_available()[0], "cpu")
    if second_model:  # the same configuration on both sides unless told otherwise
        a = a or b or best
        return a, b or a
    pair = [Config(engine, "cpu") for engine in engines_available()]
    if len(pair) < 2 and fmt == "onnx" and onnxruntime_available():
        pair.append(Config(ONNXRUNTIME, "cpu"))
    if a is not None:
        others = [c for c in pair if c != a]
    elif b is not None:
        others = [c for c in pair if c != b]
    else:
        others = pair
    if (a is None and b is None and len(pair) < 2) or not others:
        why = "onnxruntime is not importable" if fmt == "onnx" else f"onnxruntime runs ONNX models only ({fmt})"
        raise UsageError(
            f"nothing to compare with: this OpenCV has one engine ({best.engine}) and {why}; pass --a and --b "
            f"(this OpenCV offers {', '.join(configs())}) or --b-model with a second model file"
        )
    if a is not None:
        return a, others[0]
    if b is not None:
        return others[0], b
    return pair[0], pair[1]


# --------------------------------------------------------------------------- sides


@dataclasses.dataclass
class Side:
    """One configuration of one model, ready to run.

    Attributes:
        config: what was asked for.
        model: the loaded ``live`` model (on the CPU for onnxruntime: its
            catalog and preprocessing).
        ran_as: the configuration as it really ran (after any fallback);
            known after :meth:`measure`.
        notes: fallbacks and decisions worth telling.
        profile: the per-layer profile, after :meth:`measure`.
    """

    config: Config
    model: Model
    ran_as: Config
    notes: list[str] = dataclasses.field(default_factory=list)
    profile: profiling.Profile | None = None
    _session: Any = dataclasses.field(default=None, repr=False)  # (layer names, onnxruntime session)

    @property
    def label(self) -> str:
        """``ENGINE/TARGET`` as it really ran."""
        return str(self.ran_as)

    def tappable(self) -> list[Layer]:
        """The layers this side can return, network order."""
        return self.model.tappable_layers()

    def run(self, blob: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
        """One forward pass returning the layers ``names`` (``live`` layer names): ``{name: array}``.

        Raises:
            ModelError: the forward pass failed.
        """
        if self.config.engine != ONNXRUNTIME:
            outs = self.model.forward(blob, names)
            return {name: outs[name] for name in names}
        session = self._ort_session(tuple(names))
        try:
            arrays = session.run(None, {session.get_inputs()[0].name: blob})
        except Exception as exc:
            raise ModelError(f"onnxruntime cannot run {self.model.path.name}: {str(exc).splitlines()[0]}") from exc
        return dict(zip(names, arrays, strict=True))

    def _ort_session(self, names: tuple[str, ...]) -> Any:
        import onnxruntime as ort

        from live.onnx_graph import OnnxGraph

        if self._session is not None and self._session[0] == names:
            return self._session[1]
        graph = OnnxGraph(self.model.onnx_model, self.model.input_shape)
        data = graph.tap_model([self.model.layer(name).key for name in names], declare_shapes=False)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"onnxruntime cannot load {self.model.path.name}: {str(exc).splitlines()[0]}") from exc
        self._session = (names, session)
        return session

    def measure(self, blob: np.ndarray, frames: int) -> None:
        """Profile the plain network (:func:`live.profile.profile`) and learn the target it really ran on."""
        if self.config.engine == ONNXRUNTIME:
            return
        result = profiling.profile(self.model, blob, frames=frames)
        self.profile = result
        if result.target != self.ran_as.target:
            self.ran_as = Config(self.ran_as.engine, result.target)
        self.notes += [note for note in result.notes if note not in self.notes]

    def ms_of(self, name: str) -> float | None:
        """This side's milliseconds for layer ``name`` from its profile, or None."""
        return self.profile.ms_of(name) if self.profile is not None else None


Opener = Callable[[Settings], Model]
"""Loads a model with the given settings (the command line's checked :func:`live.app.open_model`)."""


def open_side(config: Config, settings: Settings, open_model: Opener) -> Side:
    """Load one side: the model on ``config``'s engine and target (onnxruntime: the model on the CPU, for its layers).

    Args:
        config: the configuration.
        settings: preprocessing, description, fallback and OpenCL device; engine and target are replaced.
        open_model: loads the model for given settings.
    Raises:
        BackendError, ModelError: the configuration cannot be built here.
        UsageError: onnxruntime for a model that is not ONNX, or not importable.
    """
    if config.engine == ONNXRUNTIME:
        if not onnxruntime_available():
            raise UsageError("onnxruntime/cpu: the onnxruntime package is not importable (pip install onnxruntime)")
        model = open_model(settings.replace(engine="auto", target="cpu"))
        if model.format != "onnx":
            raise UsageError(f"onnxruntime/cpu runs ONNX models only; {model.path.name} is {model.format}")
        return Side(config, model, config)
    model = open_model(settings.replace(engine=config.engine, target=config.target))
    return Side(config, model, Config(model.engine, model.target), list(model.notes))


# --------------------------------------------------------------------------- differences


@dataclasses.dataclass(frozen=True)
class LayerDiff:
    """One layer on both sides.

    Attributes:
        name: the layer (``live``'s name).
        max_abs: the largest |a - b|; None when the two cannot be compared
            (shapes differ, or one side is NaN or infinite where the other is not).
        max_rel: ``max_abs`` / the largest |value| on either side (0 where both are all zero).
        a_ms: side a's milliseconds for this layer from its engine's profile, or None.
        b_ms: side b's, or None.
        note: why the layer could not be compared, else ''.
    """

    name: str
    max_abs: float | None
    max_rel: float | None
    a_ms: float | None
    b_ms: float | None
    note: str = ""

    def parts(self, tolerance: float) -> bool:
        """Whether the two sides part here: relative difference past ``tolerance``, or not comparable."""
        return self.max_rel is None or self.max_rel > tolerance

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "max_abs", "max_rel", "a_ms", "b_ms"}``."""
        return {
            "name": self.name,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "a_ms": None if self.a_ms is None else round(self.a_ms, 4),
            "b_ms": None if self.b_ms is None else round(self.b_ms, 4),
        }


def layer_difference(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None, str]:
    """(max |a - b|, that / max |value| of both, why not comparable) of two arrays of one layer.

    Args:
        a, b: the layer's output on each side, any shape and numeric dtype
            (compared as float64); equal shapes, or equal sizes (cv2 and
            onnxruntime disagree about a few 1-D/2-D shapes).
    """
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    if x.shape != y.shape:
        if x.size != y.size:
            return None, None, f"shapes differ: {x.shape} and {y.shape}"
        y = y.reshape(x.shape)
    if x.size == 0:
        return 0.0, 0.0, ""
    fx, fy = np.isfinite(x), np.isfinite(y)
    if not np.array_equal(fx, fy) or not np.array_equal(x[~fx], y[~fy], equal_nan=True):
        return None, None, "NaN or infinity on one side only"
    if not fx.any():
        return 0.0, 0.0, ""
    diff = float(np.max(np.abs(x[fx] - y[fy])))
    scale = max(float(np.max(np.abs(x[fx]))), float(np.max(np.abs(y[fy]))))
    return diff, (diff / scale if scale > 0 else 0.0), ""


def difference_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| of one layer's two outputs, float32, in ``a``'s shape (e.g. (N, C, H, W)): a blob to draw as maps.

    Non-finite values on both sides at the same place count as equal (0);
    elsewhere a NaN or infinity gives NaN.

    Raises:
        ValueError: the two hold different numbers of values.
    """
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    if x.size != y.size:
        raise ValueError(f"shapes differ: {x.shape} and {y.shape}")
    y = y.reshape(x.shape)
    with np.errstate(invalid="ignore"):
        diff = np.abs(x - y)
    same = ~np.isfinite(x) & ((x == y) | (np.isnan(x) & np.isnan(y)))
    diff[same] = 0.0
    return diff.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """``live compare``'s result.

    Attributes:
        a, b: each side's configuration as it really ran (``ENGINE/TARGET``).
        layers: every layer tappable on both, network order (side a's).
        first_divergent: the first of them past ``tolerance``, or None.
        tolerance: the relative difference allowed.
        notes: fallbacks and layers left out, one line each.
    """

    a: str
    b: str
    layers: tuple[LayerDiff, ...]
    first_divergent: str | None
    tolerance: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"a", "b", "layers": [{"name", "max_abs", "max_rel", "a_ms", "b_ms"}, ...], "first_divergent",
        "tolerance", "notes"}``."""
        return {
            "a": self.a,
            "b": self.b,
            "layers": [layer.to_dict() for layer in self.layers],
            "first_divergent": self.first_divergent,
            "tolerance": self.tolerance,
            "notes": list(self.notes),
        }


def common_layers(a: Side, b: Side) -> tuple[list[str], list[str]]:
    """The layer names tappable on both sides, in side a's network order; and notes on what was left out."""
    theirs = {layer.name for layer in b.tappable()}
    ours = [layer.name for layer in a.tappable()]
    names = [name for name in ours if name in theirs]
    notes = []
    only_a = len(ours) - len(names)
    only_b = len(theirs - set(ours))
    if only_a or only_b:
        notes.append(f"{only_a} layers tappable on a only and {only_b} on b only are left out")
    return names, notes


def compare_sides(
    a: Side, b: Side, blob_a: np.ndarray, blob_b: np.ndarray, tolerance: float, names: Sequence[str] | None = None
) -> Comparison:
    """Run both sides once on their blobs and compare ``names`` (default: every layer tappable on both).

    Args:
        a, b: the sides (:func:`open_side`), profiled already (:meth:`Side.measure`) for per-layer times.
        blob_a, blob_b: each side's float32 input blob (the same input; a second model may need its own check).
        tolerance: relative difference past which a layer parts.
        names: the layers to compare, network order.
    Raises:
        ModelError: a forward pass failed.
    """
    notes: list[str] = [f"a: {note}" for note in a.notes] + [f"b: {note}" for note in b.notes]
    if names is None:
        names, left_out = common_layers(a, b)
        notes += left_out
    if not names:
        raise ModelError("no layer can be tapped on both sides")
    out_a = a.run(blob_a, names)
    out_b = b.run(blob_b, names)
    rows = []
    for name in names:
        max_abs, max_rel, why = layer_difference(out_a[name], out_b[name])
        rows.append(LayerDiff(name, max_abs, max_rel, a.ms_of(name), b.ms_of(name), why))
        if why:
            notes.append(f"{name}: {why}")
    first = next((row.name for row in rows if row.parts(tolerance)), None)
    for side, key in ((a, "a"), (b, "b")):
        if side.profile is not None and side.profile.layers is None:
            notes.append(f"{key}: no per-layer times: {side.profile.reason}")
        elif side.config.engine == ONNXRUNTIME:
            notes.append(f"{key}: onnxruntime: no per-layer times from live")
    return Comparison(a.label, b.label, tuple(rows), first, tolerance, tuple(notes))


def table(result: Comparison, name: Callable[[str], str] = str) -> str:
    """The text of ``live compare``: one row per layer, the first divergent layer marked, then the notes."""
    width = min(40, max((len(name(row.name)) for row in result.layers), default=5))

    def num(value: float | None, fmt: str) -> str:
        return f"{'-':>{fmt[0]}}" if value is None else format(value, fmt)

    lines = [
        f"a = {result.a}, b = {result.b}; tolerance {result.tolerance:g} (relative)",
        f"  {'layer':<{width}}  {'max abs':>9}  {'max rel':>9}  {'a ms':>8}  {'b ms':>8}",
    ]
    for row in result.layers:
        mark = "  <- first past the tolerance" if row.name == result.first_divergent else ""
        lines.append(
            f"  {name(row.name):<{width}}  {num(row.max_abs, '9.2e')}  {num(row.max_rel, '9.2e')}  "
            f"{num(row.a_ms, '8.3f')}  {num(row.b_ms, '8.3f')}{mark}"
        )
    first = result.first_divergent
    lines.append(
        f"first divergent layer: {name(first)}" if first is not None else "no layer parts beyond the tolerance"
    )
    lines.extend(f"note: {name(note)}" for note in result.notes)
    return "\n".join(lines)


# --------------------------------------------------------------------------- the window's compare mode


class LiveCompare:
    """The window's compare mode: each frame's blob through a second configuration, the shown layer compared.

    Made and used in the pipeline's forward thread only (a :class:`Side`'s
    model is not thread-safe). The first frame also compares every layer
    tappable on both sides once (:func:`compare_sides`), for the first
    divergent layer; later frames run the second side for the shown layer only.

    Args:
        side: the second configuration (:func:`open_side`).
        model: the pipeline's model (side a), for the one full comparison.
        tolerance: relative difference past which a layer parts.
    """

    def __init__(self, side: Side, model: Model, tolerance: float = DEFAULT_TOLERANCE) -> None:
        self.side = side
        self.model = model
        self.tolerance = tolerance
        self.first_divergent: str | None = None
        self.checked = False  # whether the full comparison has run (first_divergent is known)
        self.note: str | None = None  # why the full comparison could not run

    @property
    def label(self) -> str:
        """The second configuration as it runs (``onnxruntime/cpu``)."""
        return self.side.label

    def difference(self, blob: np.ndarray, layer: str, a: np.ndarray) -> tuple[np.ndarray, float | None, float | None]:
        """The shown layer ``layer`` on side b for ``blob``, against ``a`` (side a's output of it).

        Args:
            blob: float32 input blob, the one side a ran (e.g. (1, 3, H, W)).
            layer: ``live``'s layer name.
            a: side a's output of ``layer`` (float32, any shape).
        Returns:
            (float32 |a - b| in ``a``'s shape, max abs difference, max relative difference); the two
            numbers are None where non-finite values differ.
        Raises:
            ModelError: side b failed; ValueError: the two hold different numbers of values.
        """
        if not self.checked:
            self.checked = True
            config = Config(self.model.engine, self.model.target)
            mine = Side(config, self.model, config)
            try:
                self.first_divergent = compare_sides(mine, self.side, blob, blob, self.tolerance).first_divergent
            except (ModelError, cv2.error, ValueError) as exc:
                self.note = f"no layer-by-layer comparison: {str(exc).splitlines()[0] if str(exc) else exc}"
        b = self.side.run(blob, [layer])[layer]
        diff = difference_map(a, b)
        max_abs, max_rel, _ = layer_difference(a, b)
        return diff, max_abs, max_rel


def live_compare(text: str, model: Model) -> LiveCompare:
    """Open ``text`` (``ENGINE/TARGET``) as the second side for ``model``'s compare mode (forward thread: it loads).

    Raises:
        UsageError: a configuration this installation cannot name.
        BackendError, ModelError: it cannot be built here.
    """
    side = open_side(Config.parse(text, "compare"), model.settings, model.reload)
    return LiveCompare(side, model)
