"""Every grid option goes one path: `live run --headless` and `live snapshot` draw the same grid for it.

Each option is given to both commands on the same photo and network; the
grid PNG of `live snapshot` and the snapshot that `live run --headless
--snapshot-dir` writes of its last result must be the same pixels, and must
differ from the grid without the option (so the option reached the grid in
both). The network is tests/nets.py's ``pair``: its ``pair`` layer has a
batch of two, so ``--batch`` has something to choose.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import run_live

pytestmark = pytest.mark.opencv

VARIANTS: dict[str, list[str]] = {
    "norm-layer": ["--norm", "layer"],
    "norm-robust": ["--norm", "robust"],
    "norm-fixed-range": ["--norm", "fixed", "--range", "0", "0.5"],
    "percentiles": ["--norm", "robust", "--percentiles", "20", "80"],
    "pad-0": ["--pad", "0"],
    "pad-5": ["--pad", "5"],
    "order-mean": ["--order", "mean"],
    "max-size": ["--max-size", "40"],
    "cmap-jet": ["--cmap", "jet"],
    "cmap-gray": ["--cmap", "gray"],
    "batch-1": ["--batch", "1"],
    "map-layout-nhwc": ["--map-layout", "nhwc"],
}


@pytest.fixture(scope="module")
def setup(net_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The network, and a photo-like picture (a gradient with shapes) saved as PNG."""
    folder = tmp_path_factory.mktemp("gridopts")
    yy, xx = np.mgrid[0:48, 0:64]
    image = np.stack([xx * 4, yy * 5, 255 - xx * 3], axis=-1).astype(np.uint8)
    cv2.circle(image, (40, 20), 9, (20, 230, 240), -1)
    cv2.rectangle(image, (5, 30), (20, 44), (250, 250, 250), -1)
    photo = folder / "photo.png"
    assert cv2.imwrite(str(photo), image)
    return net_dir / "pair.onnx", photo


def _both(model: Path, photo: Path, options: list[str], folder: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(snapshot's grid, headless run's last grid, run's stats) for one set of grid options."""
    folder.mkdir()
    common = ["-m", model, "--no-probe", "-l", "pair", *options]
    snap = run_live("snapshot", *common, "-i", photo, "-o", folder / "snap.png", cwd=folder)
    assert snap.returncode == 0, snap.stderr
    stats_path = folder / "stats.json"
    run = run_live("run", "--headless", "-s", photo, "--frames", "1", "--snapshot-dir", folder / "run",
                   "--stats-json", stats_path, *common, cwd=folder)  # fmt: skip
    assert run.returncode == 0, run.stderr
    stats = json.loads(stats_path.read_text())
    (png,) = (Path(p) for p in stats["snapshot"] if p.endswith(".png"))
    return cv2.imread(str(folder / "snap.png")), cv2.imread(str(png)), stats


@pytest.fixture(scope="module")
def plain(setup: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """The grid with no grid option given (the two commands agree on it too)."""
    snap, run, _ = _both(*setup, [], tmp_path_factory.mktemp("plain") / "x")
    np.testing.assert_array_equal(snap, run)
    return snap


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_grid_option_changes_run_and_snapshot_alike(
    name: str, setup: tuple[Path, Path], plain: np.ndarray, tmp_path: Path
) -> None:
    snap, run, stats = _both(*setup, VARIANTS[name], tmp_path / name)
    assert snap.shape == run.shape, f"{name}: snapshot {snap.shape}, run {run.shape}"
    np.testing.assert_array_equal(snap, run, err_msg=name)
    assert snap.shape != plain.shape or not np.array_equal(snap, plain), f"{name} did not change the grid"
    assert stats["grid"]["norm"] == (VARIANTS[name][1] if VARIANTS[name][0] == "--norm" else "map")


def test_pad_changes_the_grid_shape_headless(setup: tuple[Path, Path], tmp_path: Path) -> None:
    """`--pad` reaches `live run --headless` (it once reported the same grid_shape for every pad)."""
    model, photo = setup
    shapes = {}
    for pad in (0, 1, 6):
        stats = tmp_path / f"pad{pad}.json"
        result = run_live("run", "--headless", "-s", photo, "--frames", "1", "-m", model, "--no-probe", "-l", "pair",
                          "--pad", str(pad), "--stats-json", stats, cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr
        shapes[pad] = tuple(json.loads(stats.read_text())["grid_shape"])
    # 6 maps of 32x32 in a 2x3 grid (or 3x2): each pad pixel adds one per row and per column.
    assert len(set(shapes.values())) == 3, shapes
    rows, cols = shapes[0][0] // 32, shapes[0][1] // 32
    assert shapes[6] == (shapes[0][0] + 6 * rows, shapes[0][1] + 6 * cols)
