"""Files shipped inside the package (``live.data``, the repository's ``data/`` folder)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_MODEL = "efficientnet_lite0.onnx"


def data_file(name: str) -> Path | None:
    """Path of a shipped data file, or None when it is not there."""
    try:
        path = Path(str(resources.files("live.data").joinpath(name)))
    except (ModuleNotFoundError, TypeError):
        path = Path(__file__).resolve().parents[1] / "data" / name
    return path if path.is_file() else None
