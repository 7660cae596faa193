"""The Python API: the README's examples run as doctests, and each call agrees with the command line."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import live
from live.errors import LayerError, ModelError, UsageError
from tests.helpers import REPO, run_live

pytestmark = pytest.mark.opencv


@pytest.fixture
def cat_jpg(tmp_path: Path) -> Path:
    """scikit-image's public-domain photo of a cat, as cat.jpg."""
    data = pytest.importorskip("skimage.data")
    path = tmp_path / "cat.jpg"
    assert cv2.imwrite(str(path), cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))
    return path


def test_the_readme_examples_run(cat_jpg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(cat_jpg.parent)
    failures, tried = doctest.testfile(
        str(REPO / "README.md"), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert tried >= 10, "the README's API examples are gone"
    assert failures == 0


def test_tap_matches_live_snapshot(cat_jpg: Path, tmp_path: Path) -> None:
    net = live.Network()
    taps = net.tap(cv2.imread(str(cat_jpg)), net.default_layer)
    npy = tmp_path / "blob.npy"
    result = run_live("snapshot", "-i", cat_jpg, "--npy", npy, "-o", tmp_path / "g.png", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["layer"] == net.default_layer
    np.testing.assert_allclose(taps[net.default_layer], np.load(npy), rtol=1e-5, atol=1e-5)


def test_tap_takes_a_blob_and_checks_its_shape(net_dir: Path) -> None:
    net = live.Network(net_dir / "branchy.onnx", size=32)
    image = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    from_image = net.tap(image, ["stem/swish", "block1/add"])
    from_blob = net.tap(net.blob(image), ["stem/swish", "block1/add"])
    for name in from_image:
        np.testing.assert_array_equal(from_image[name], from_blob[name])
    with pytest.raises(ModelError, match="input tensor has shape 1x3x8x8; this model takes 1x3x32x32"):
        net.tap(np.zeros((1, 3, 8, 8), np.float32), "stem/swish")


def test_grid_options_are_the_command_lines(net_dir: Path) -> None:
    net = live.Network(net_dir / "branchy.onnx", size=32)
    blob = net.tap(np.zeros((32, 32, 3), np.uint8), "stem/swish")["stem/swish"]
    maps = live.feature_maps(blob)
    assert maps.shape == blob.shape[1:] and maps.dtype == np.float32 and maps.flags.c_contiguous
    plain, padded = live.grid(blob, pad=0), live.grid(blob, pad=3)
    assert plain.dtype == np.uint8 and plain.ndim == 3 and plain.shape[2] == 3
    assert padded.shape[0] > plain.shape[0]
    with pytest.raises(UsageError, match="unknown colormap 'rainbow'"):
        live.grid(blob, cmap="rainbow")


def test_errors_carry_the_command_lines_messages(net_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(LayerError) as err:
        live.Network(net_dir / "branchy.onnx", size=32).tap(np.zeros((32, 32, 3), np.uint8), "nope")
    cli = run_live("snapshot", "-m", net_dir / "branchy.onnx", "--size", "32", "-i", REPO / "data" / "screenshot.png",
                   "-l", "nope", cwd=tmp_path)  # fmt: skip
    assert cli.returncode == 2 and cli.stderr.strip() == f"live: error: {err.value}"
    with pytest.raises(ModelError, match="model file not found"):
        live.Network(tmp_path / "missing.onnx")
