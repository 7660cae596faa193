"""What a model needs besides its weights: preprocessing, default layer, labels. Parsed and validated once.

A :class:`ModelDescription` comes from one of three places, and each goes
through the same checks here, so the same bad value gets the same one-line
message wherever it was written:

* a description file beside the model (``model.onnx`` -> ``model.toml``) or
  named with ``--describe`` (:meth:`ModelDescription.read`);
* a model catalog entry (``live.catalog`` validates its table with
  :func:`parse_preprocess` and builds the description with
  :meth:`ModelDescription.parse`);
* command-line flags (``--size``, ``--mean``, ...: :meth:`PreprocessSpec.parse`
  with the flags' names).

Precedence when a model loads, lowest first: the model file (input size and
layout), the description, the flags (:meth:`PreprocessSpec.merged`).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from live.assets import data_file
from live.errors import LiveError, ModelError, UsageError
from live.files import read_bounded
from live.names import CROPS, LAYOUTS, input_too_large

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PREPROCESS_KEYS: tuple[str, ...] = ("size", "mean", "std", "scale", "rgb", "crop", "layout")
DESCRIPTION_KEYS: tuple[str, ...] = ("default_layer", "labels", "preprocess")
LABEL_SETS: dict[str, str] = {"imagenet": "imagenet_labels.tsv"}
"""Label sets shipped with ``live``, by the name a catalog entry gives, and their file in ``live.data``."""
MAX_INPUT_SIDE = 16384
"""The largest network input side in pixels ``live`` accepts."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numbers(value: Any, counts: tuple[int, ...]) -> tuple[float, ...] | None:
    """``value`` as a tuple of 1 or 3 (``counts``) numbers, or None when it is not that."""
    if _is_number(value):
        return (float(value),) if 1 in counts else None
    if isinstance(value, list | tuple) and len(value) in counts and all(_is_number(v) for v in value):
        return tuple(float(v) for v in value)
    return None


def parse_preprocess(
    table: Any, fail: Callable[[str], LiveError], name: Callable[[str], str] = lambda key: f"preprocess: `{key}`"
) -> dict[str, Any]:
    """Validate a preprocessing table; returns it as a plain dict of checked values.

    Args:
        table: ``{"size": [w, h], "mean": ..., "std" or "scale": ...,
            "rgb": bool, "crop": str, "layout": str}``, every key optional.
        fail: makes the exception for one message (it adds where the value
            was written: the file, the catalog entry).
        name: how a key is named in the message (``preprocess: `std```
            in a file, ``--std`` on the command line).
    Raises:
        What ``fail`` makes: unknown keys, wrong types, zero scales, sizes
        that are not positive integers of at most :data:`MAX_INPUT_SIDE`.
    """
    if not isinstance(table, Mapping):
        raise fail("`preprocess` must be a table")
    unknown = sorted(set(table) - set(PREPROCESS_KEYS))
    if unknown:
        raise fail(f"preprocess: unknown key(s) {', '.join(unknown)} (known: {', '.join(PREPROCESS_KEYS)})")
    if table.get("std") is not None and table.get("scale") is not None:
        raise fail("preprocess: give `std` or `scale`, not both")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if value is None:
            continue
        if key == "size":
            sizes = _numbers(value, (1, 2))
            if sizes is None or not all(s.is_integer() and 0 < s <= MAX_INPUT_SIDE for s in sizes):
                raise fail(f"{name(key)} must be [width, height] in integers 1 to {MAX_INPUT_SIDE}, got {value!r}")
            w, h = (int(s) for s in sizes * (2 if len(sizes) == 1 else 1))
            too_large = input_too_large(w, h)
            if too_large is not None:
                raise fail(f"{name(key)}: {too_large}")
            out[key] = (w, h)
        elif key in ("mean", "std", "scale"):
            numbers = _numbers(value, (1, 3))
            if numbers is None or not all(math.isfinite(v) for v in numbers):
                raise fail(f"{name(key)} must be a number or 3 numbers, got {value!r}")
            if key != "mean" and any(v == 0 for v in numbers):
                raise fail(f"{name(key)} must be non-zero, got {value!r}")
            out[key] = numbers
        elif key == "rgb":
            if not isinstance(value, bool):
                raise fail(f"{name(key)} must be true or false, got {value!r}")
            out[key] = value
        else:
            choices = CROPS if key == "crop" else LAYOUTS
            if value not in choices:
                raise fail(f"{name(key)} must be one of {', '.join(choices)}, got {value!r}")
            out[key] = value
    return out


@dataclasses.dataclass(frozen=True)
class PreprocessSpec:
    """Preprocessing values that override the model file's (``None``: not given).

    Attributes:
        size: network input (width, height) in pixels.
        mean: 1 or 3 values subtracted, network channel order, 0..255 units.
        scale: 1 or 3 factors applied after the mean (a ``std`` is stored as ``1/std``).
        rgb: feed RGB (True) or OpenCV's BGR (False).
        crop: ``none``, ``center`` or ``letterbox``.
        layout: ``nchw`` or ``nhwc``.
    """

    size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    scale: tuple[float, ...] | None = None
    rgb: bool | None = None
    crop: str | None = None
    layout: str | None = None

    @classmethod
    def parse(
        cls,
        table: Mapping[str, Any],
        fail: Callable[[str], LiveError],
        name: Callable[[str], str] = lambda key: f"preprocess: `{key}`",
    ) -> PreprocessSpec:
        """Validate a table (see :func:`parse_preprocess`) and make the value; ``std`` becomes ``scale``."""
        values = parse_preprocess(table, fail, name)
        std = values.pop("std", None)
        if std is not None:
            values["scale"] = tuple(1.0 / s for s in std)
        return cls(**values)

    @classmethod
    def from_flags(cls, **flags: Any) -> PreprocessSpec:
        """From the command line's values (``size=(w, h)``, ``mean=[...]``, ``std=[...]``, ...; None: not given).

        Raises:
            UsageError: naming the flag (``--std must be non-zero, got [0.0]``).
        """
        return cls.parse(flags, UsageError, lambda key: f"--{key}")

    def merged(self, over: PreprocessSpec) -> PreprocessSpec:
        """These values with those given in ``over`` taking precedence."""
        given = {k: v for k, v in dataclasses.asdict(over).items() if v is not None}
        return dataclasses.replace(self, **given)

    def overrides(self) -> dict[str, Any]:
        """The given values, as :meth:`live.preprocess.Preprocess.with_overrides` takes them."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclasses.dataclass(frozen=True)
class ModelDescription:
    """A model's description: preprocessing, the layer shown first, class labels.

    Attributes:
        preprocess: overrides of the model file's preprocessing.
        default_layer: the layer shown first (a name ``--layer`` accepts), or None.
        labels: a file of class names (``label`` or ``id<TAB>label`` per line), or None.
        source: where it was read from (named in messages), ``""`` when made in code.
    """

    preprocess: PreprocessSpec = dataclasses.field(default_factory=PreprocessSpec)
    default_layer: str | None = None
    labels: Path | None = None
    source: str = ""

    @classmethod
    def parse(
        cls, data: Mapping[str, Any], where: str, *, base: Path | None = None, error: type[LiveError] = ModelError
    ) -> ModelDescription:
        """Validate a description table.

        Args:
            data: ``{"default_layer": str, "labels": str, "preprocess": {...}}``.
            where: what to name in messages (``model description m.toml``,
                ``model catalog c.toml: entry googlenet``).
            base: folder a relative ``labels`` path is taken from; a name of
                :data:`LABEL_SETS` is the label file shipped with ``live``.
            error: the exception class raised.
        Raises:
            ``error``: one line, ``"{where}: {what is wrong}"``.
        """

        def fail(message: str) -> LiveError:
            return error(f"{where}: {message}")

        unknown = sorted(set(data) - set(DESCRIPTION_KEYS))
        if unknown:
            raise fail(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(DESCRIPTION_KEYS)})")
        for key in ("default_layer", "labels"):
            value = data.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise fail(f"`{key}` must be a non-empty string, got {value!r}")
        labels: Path | None = None
        label_name = data.get("labels")
        if label_name is not None:
            shipped = LABEL_SETS.get(label_name)
            if shipped is not None:
                labels = data_file(shipped)
                if labels is None:
                    raise fail(f"the label set {label_name!r} ({shipped}) is missing from this installation")
            else:
                labels = (base or Path()) / label_name  # an absolute path stays as it is
        return cls(
            preprocess=PreprocessSpec.parse(data.get("preprocess", {}), fail),
            default_layer=data.get("default_layer"),
            labels=labels,
            source=where,
        )

    @classmethod
    def read(cls, path: Path) -> ModelDescription:
        """Read a description file (TOML); labels are found relative to its folder.

        Raises:
            ModelError: the file cannot be read or is not TOML.
            UsageError: a key or value is wrong (one line naming the file and the value).
        """
        data = read_toml(path, "model description")
        return cls.parse(data, f"model description {path}", base=path.parent, error=UsageError)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """Parse a TOML file; ModelError naming ``what`` and the file when it cannot be read or parsed.

    Only a regular file of at most :data:`live.files.MAX_TEXT_BYTES` is read.
    """
    data = read_bounded(path, what, ModelError)  # a FIFO or /dev/zero is refused, never waited on
    try:
        return tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{what} {path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ModelError(f"{what} {path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def read_labels(path: Path) -> list[str]:
    """Class names, one per line: ``label`` or ``id<TAB>label`` (the label is what is kept).

    Raises:
        ModelError: the file cannot be read (missing, not a regular file, over
            :data:`live.files.MAX_TEXT_BYTES`), is not UTF-8, or holds no label.
    """
    try:
        lines = read_bounded(path, "labels file", ModelError).decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ModelError(f"labels file {path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    labels = [line.split("\t", 1)[-1].strip() for line in lines if line.strip()]
    if not labels:
        raise ModelError(f"labels file {path} is empty")
    return labels
