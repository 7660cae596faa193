"""Shared fixtures: test networks written to disk, the shared real models, a reference runtime."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests import nets

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists
# pyqtgraph and pytest-qt each prefer PyQt6 when it is installed: one binding for both, PyQt5 (the
# default dependency) unless PYTEST_QT_API asks for another (CI runs the window tests again on PyQt6).
_QT_LIBS = {"pyqt5": "PyQt5", "pyqt6": "PyQt6"}
os.environ.setdefault("PYTEST_QT_API", "pyqt5")
os.environ.setdefault("PYQTGRAPH_QT_LIB", _QT_LIBS.get(os.environ["PYTEST_QT_API"].lower(), "PyQt5"))
REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"


@pytest.fixture(scope="session")
def net_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every network of tests/nets.py saved as NAME.onnx."""
    folder = tmp_path_factory.mktemp("nets")
    for name, build in nets.NETS.items():
        onnx.save(build(), str(folder / f"{name}.onnx"))
    return folder


@pytest.fixture(scope="session")
def light_path(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Classic architectures with seeded weights, saved on first use."""
    from live.synthetic import light_model

    folder = tmp_path_factory.mktemp("light")

    def get(name: str) -> Path:
        path = folder / f"{name}.onnx"
        if not path.exists():
            onnx.save(light_model(name), str(path))
        return path

    return get


def shared_model(name: str) -> Path:
    """A model from ../shared/models, or skip the test when that folder is absent."""
    path = SHARED_MODELS / name
    if not path.is_file():
        pytest.skip(f"{path} not present (../shared/models is optional)")
    return path


def reference_outputs(model_bytes: bytes, input_name: str, blob: np.ndarray) -> list[np.ndarray]:
    """Run a model with onnxruntime's CPU provider (the reference runtime)."""
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return session.run(None, {input_name: blob})


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment for a child `live` process, without OpenCL overrides."""
    for key in ("OPENCV_OPENCL_DEVICE", "OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES", "LIVE_DEBUG"):
        monkeypatch.delenv(key, raising=False)
    return dict(os.environ)


def write_clip(path: Path, frames: int = 30, size: tuple[int, int] = (96, 72), still: bool = False) -> Path:
    """Write a real MJPG video: a bright disc moving across a gradient (or standing still)."""
    import cv2

    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (w, h))
    assert writer.isOpened(), "OpenCV cannot write MJPG videos here"
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    for i in range(frames):
        img = base.copy()
        x = w // 4 if still else (w // 8 + i * 3) % w
        cv2.circle(img, (x, h // 2), h // 5, (0, 220, 255), -1)
        cv2.rectangle(img, (w - 20, 4), (w - 6, 18), (255, 255, 255), -1)
        writer.write(img)
    writer.release()
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 30-frame video written by the test."""
    return write_clip(tmp_path / "clip.avi")


@pytest.fixture
def still_clip(tmp_path: Path) -> Path:
    """A 30-frame video whose frames are all the same picture."""
    return write_clip(tmp_path / "still.avi", still=True)
