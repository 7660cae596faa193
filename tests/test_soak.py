"""A shorter soak than benchmarks/soak.py: memory and threads stay flat over a long headless run."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from live.model import Model, Settings
from tests.helpers import REPO, write_clip

sys.path.insert(0, str(REPO / "benchmarks"))
from soak import soak, verdict

pytestmark = pytest.mark.opencv


def test_1500_frames_memory_and_threads_stay_flat(net_dir: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "soak.avi", frames=60, size=(160, 120))
    model = Model.load(net_dir / "branchy.onnx", Settings())
    threads_before = threading.active_count()
    samples = soak(model, clip, 1500, every=100)
    result = verdict(samples, since=300, limit_mb=30.0)
    print(result)
    assert samples[-1]["frame"] == 1500
    assert result["memory_ok"], result
    assert result["threads_ok"] and result["threads_seen"] == [threads_before + 2], result  # capture + forward
    assert samples[-1]["threads"] == threads_before  # both joined after the run
