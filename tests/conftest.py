"""Shared fixtures: test networks written to disk, seeded classic architectures, clips, a clean environment.

Plain helper functions and classes are in tests/helpers.py.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from tests import nets
from tests.helpers import write_clip

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists
# Downloads and crash-check verdicts go to a folder of this run's, never to the user's cache.
os.environ.setdefault("LIVE_CACHE", tempfile.mkdtemp(prefix="live-test-cache-"))
# pyqtgraph and pytest-qt each prefer PyQt6 when it is installed: one binding for both, PyQt5 (the
# default dependency) unless PYTEST_QT_API asks for another (CI runs the window tests again on PyQt6).
_QT_LIBS = {"pyqt5": "PyQt5", "pyqt6": "PyQt6"}
os.environ.setdefault("PYTEST_QT_API", "pyqt5")
os.environ.setdefault("PYQTGRAPH_QT_LIB", _QT_LIBS.get(os.environ["PYTEST_QT_API"].lower(), "PyQt5"))


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
    from benchmarks.synthetic import light_model

    folder = tmp_path_factory.mktemp("light")

    def get(name: str) -> Path:
        path = folder / f"{name}.onnx"
        if not path.exists():
            onnx.save(light_model(name), str(path))
        return path

    return get


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment for a child `live` process, without OpenCL overrides."""
    for key in ("OPENCV_OPENCL_DEVICE", "OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES", "LIVE_DEBUG"):
        monkeypatch.delenv(key, raising=False)
    return dict(os.environ)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 30-frame video written by the test."""
    return write_clip(tmp_path / "clip.avi")


@pytest.fixture
def still_clip(tmp_path: Path) -> Path:
    """A 30-frame video whose frames are all the same picture."""
    return write_clip(tmp_path / "still.avi", still=True)
