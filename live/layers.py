"""The layer catalog: every layer a user can look at, in network order, and the probe that measures them.

A :class:`Layer` is a value: its name (what ``--layer`` accepts), op type,
measured output shape, and whether it can be tapped on the engine in use
(with the reason when not). A :class:`LayerCatalog` holds them in network
order, finds a layer by shown name, ONNX tensor name or ONNX node name (with
"did you mean" for unknown names), and picks the default layer.

:func:`probe_layers` measures the whole catalog with one forward pass that
taps every candidate at once, splitting the set in halves only where cv2
refuses some; no per-layer forward, no per-layer reload. A
:class:`ProbeCache` keeps what a probe found, so that the same bytes on the
same OpenCV with the same settings are measured once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from live import __version__
from live.engines import cv_message
from live.errors import LayerError
from live.names import did_you_mean

CONSTANT_REASON = "constant: computed from weights only, folded when the model loads"
DROPPED_REASON = "cv2.dnn drops this output when it loads the model"


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer a user can look at.

    Attributes:
        name: what ``--layer`` accepts and the catalog shows.
        op: op/layer type (``Conv``, ``Relu``, ``Convolution``, ...).
        shape: output shape as measured by the load-time probe (N, C, H, W
            or whatever rank it has); the inferred shape when not tappable.
        index: position in network order.
        tensor: ONNX output tensor name (as Netron shows it), else None.
        node: ONNX node name, else None.
        tappable: whether one forward pass can return it on this engine.
        reason: why not, when not tappable.
    """

    name: str
    op: str
    shape: tuple[int | str, ...] | None
    index: int
    tensor: str | None = None
    node: str | None = None
    tappable: bool = True
    reason: str = ""

    @property
    def constant(self) -> bool:
        """Whether it depends on weights only (folded away at load: nothing to see)."""
        return self.reason == CONSTANT_REASON

    @property
    def key(self) -> str:
        """The name the engine knows the layer by: the ONNX tensor, else the cv2 layer name."""
        return self.tensor if self.tensor is not None else self.name

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layer:
        """The layer :meth:`to_dict` wrote.

        Raises:
            KeyError, TypeError, ValueError: not such a dict.
        """
        shape = data["shape"]
        if shape is not None and not all(isinstance(d, (int, str)) for d in shape):
            raise ValueError(f"bad shape {shape!r}")
        return cls(
            name=str(data["name"]),
            op=str(data["op"]),
            shape=tuple(shape) if shape is not None else None,
            index=int(data["index"]),
            tensor=None if data["tensor"] is None else str(data["tensor"]),
            node=None if data["node"] is None else str(data["node"]),
            tappable=bool(data["tappable"]),
            reason=str(data["reason"] or ""),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the schema of ``live layers --json``)."""
        return {
            "index": self.index,
            "name": self.name,
            "op": self.op,
            "shape": list(self.shape) if self.shape is not None else None,
            "tensor": self.tensor,
            "node": self.node,
            "tappable": self.tappable,
            "reason": self.reason or None,
        }


def name_onnx_layers(layers: Sequence[Layer]) -> list[Layer]:
    """Show a node's name where it is unique and unambiguous, else the tensor name."""
    node_count: dict[str, int] = {}
    for layer in layers:
        if layer.node:
            node_count[layer.node] = node_count.get(layer.node, 0) + 1
    tensors = {layer.tensor for layer in layers}
    return [
        dataclasses.replace(layer, name=layer.node)
        if layer.node and node_count[layer.node] == 1 and layer.node not in tensors
        else layer
        for layer in layers
    ]


Runner = Callable[[Sequence[str]], list[np.ndarray | None]]
"""Runs one forward pass returning the named outputs (None where cv2 dropped one); raises cv2.error."""


def split_probe(candidates: Sequence[str], run: Runner) -> dict[str, np.ndarray | str]:
    """Run ``run`` on all candidates; where cv2 refuses a set, split it in halves.

    ``run`` returns one array per name, or None where cv2 dropped that output
    (OpenCV 4.x folds shape arithmetic away at load). Returns each
    candidate's array, or the reason it cannot be had.
    """
    result: dict[str, np.ndarray | str] = {}
    pending: list[Sequence[str]] = [list(candidates)]
    while pending:
        group = pending.pop()
        if not group:
            continue
        try:
            outs = run(group)
        except cv2.error as exc:
            if len(group) == 1:
                result[group[0]] = cv_message(exc)
            else:
                mid = len(group) // 2
                pending += [group[:mid], group[mid:]]
            continue
        for name, out in zip(group, outs, strict=True):
            result[name] = out if out is not None else DROPPED_REASON
    return result


def _measured(layer: Layer, out: np.ndarray) -> Layer:
    """The layer with the shape cv2 returned, or not tappable when that contradicts the graph."""
    expected = layer.shape
    shape = tuple(int(s) for s in out.shape)
    if expected is not None:
        static = all(isinstance(d, int) for d in expected)
        if (static and tuple(expected) != shape) or len(expected) != len(shape):
            return dataclasses.replace(
                layer, tappable=False, reason=f"cv2.dnn returned shape {shape}, the graph says {tuple(expected)}"
            )
    if out.dtype.kind not in "fiub":
        return dataclasses.replace(layer, tappable=False, reason=f"unsupported dtype {out.dtype}")
    return dataclasses.replace(layer, shape=shape)


def probe_layers(layers: Sequence[Layer], run: Runner) -> list[Layer]:
    """Measure every tappable candidate in one forward (halving where cv2 refuses).

    Returns the layers with measured shapes, or marked not tappable with the
    reason cv2 gave.
    """
    found = split_probe([layer.key for layer in layers if layer.tappable], run)
    probed: list[Layer] = []
    for layer in layers:
        got = found.get(layer.key) if layer.tappable else None
        if isinstance(got, str):
            layer = dataclasses.replace(layer, tappable=False, reason=f"cv2.dnn cannot return it: {got}")
        elif isinstance(got, np.ndarray):
            layer = _measured(layer, got)
        probed.append(layer)
    return probed


class LayerCatalog:
    """A network's layers in network order, found by shown name, ONNX tensor name or ONNX node name.

    Args:
        layers: every listable layer, network order.
        model_name: named in messages.
        engine: named in messages about layers that cannot be tapped.
    """

    def __init__(self, layers: Iterable[Layer], model_name: str, engine: str) -> None:
        self.layers = list(layers)
        self.model_name = model_name
        self.engine = engine
        index: dict[str, Layer] = {}
        for layer in self.layers:
            for key in (layer.node, layer.tensor, layer.name):
                if key and key not in index:
                    index[key] = layer
        for layer in self.layers:  # a layer's shown name always resolves to itself
            index[layer.name] = layer
        self._by_name = index

    def __iter__(self) -> Any:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def find(self, name: str) -> Layer:
        """The layer called ``name``, tappable or not.

        Raises:
            LayerError: unknown (with the nearest names).
        """
        layer = self._by_name.get(name)
        if layer is None:
            hint = did_you_mean(name, self._by_name) or "see `live layers`"
            raise LayerError(f"no layer {name!r} in {self.model_name}; {hint}")
        return layer

    def tappable(self, name: str) -> Layer:
        """The layer called ``name``, which one forward pass can return.

        Raises:
            LayerError: unknown (with the nearest names) or not tappable (with the reason).
        """
        layer = self.find(name)
        if not layer.tappable:
            raise LayerError(f"layer {name!r} cannot be tapped on the {self.engine} engine: {layer.reason}")
        return layer

    def tappable_layers(self) -> list[Layer]:
        """The layers one forward pass can return, network order."""
        return [layer for layer in self.layers if layer.tappable]

    def shown_layers(self) -> list[Layer]:
        """The layers worth listing to a user: all but the weight-only constants (``live layers``, the window)."""
        return [layer for layer in self.layers if not layer.constant]

    def default(self, wanted: str | None) -> str | None:
        """``wanted`` when given (checked), else the middle tappable layer with spatial maps, else the last tappable.

        Returns None when no layer can be tapped.
        """
        if wanted:
            return self.tappable(wanted).name
        spatial = [
            layer for layer in self.layers if layer.tappable and layer.shape is not None and len(layer.shape) == 4
        ]
        if spatial:
            return spatial[len(spatial) // 2].name
        tappable = self.tappable_layers()
        return tappable[-1].name if tappable else None


class ProbeCache:
    """What the load-time probe found, kept by everything that decides it: one JSON file per key.

    The key (:meth:`key`) hashes the network's bytes, its input shape, the
    engine, backend and target, the OpenCV version and build, and the
    versions of ``live`` and of this cache's format; a layer list is taken back only when its layers are the
    very candidates asked about, in order. Anything unreadable is a miss, and
    a folder that cannot be written costs the next run a probe, nothing more.

    Args:
        folder: where the files are kept (created on first write).
    """

    VERSION = "1"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def key(cls, *parts: str) -> str:
        """A file name for ``parts`` (the model's sha256, input shape, engine choice) on this OpenCV."""
        text = "\0".join([cls.VERSION, __version__, cv2.__version__, str(len(cv2.getBuildInformation())), *parts])
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()

    def get(self, key: str, candidates: Sequence[Layer]) -> list[Layer] | None:
        """The probed layers kept under ``key``, when they are ``candidates`` measured; else None."""
        try:
            data = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
            layers = [Layer.from_dict(item) for item in data]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if [(layer.name, layer.key, layer.index) for layer in layers] != [
            (layer.name, layer.key, layer.index) for layer in candidates
        ]:
            return None
        return layers

    def put(self, key: str, layers: Sequence[Layer]) -> None:
        """Keep ``layers`` under ``key`` (written whole, then renamed into place: never half a file)."""
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.folder, prefix=".probe-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump([layer.to_dict() for layer in layers], fh)
                Path(name).replace(self.folder / f"{key}.json")
            except BaseException:
                with contextlib.suppress(OSError):
                    Path(name).unlink()
                raise
