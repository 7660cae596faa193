"""The bundled model: real ImageNet classes on real photos, correct taps, its description file."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from live.assets import DEFAULT_MODEL, data_file
from live.engines import engines_available
from live.model import Model, Settings
from tests.helpers import assert_taps_match_reference, run_live, shared_model

pytestmark = pytest.mark.opencv

CATS = ("tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat")
COFFEE = ("espresso", "cup", "coffee mug")


@pytest.fixture(scope="module")
def bundled() -> Path:
    path = data_file(DEFAULT_MODEL)
    assert path is not None, "the bundled model is missing"
    return path


def skimage_photo(name: str) -> Path:
    skimage = pytest.importorskip("skimage")
    return Path(skimage.__file__).parent / "data" / name


def test_description_file_gives_preprocessing_layer_and_labels(bundled: Path) -> None:
    model = Model.load(bundled)
    assert model.input_shape == (1, 3, 224, 224)
    assert model.preprocess.crop == "center" and model.preprocess.rgb
    assert model.default_layer == "blocks.3.expand/relu6"
    assert model.labels is not None and len(model.labels) == 1000
    assert model.labels[933] == "cheeseburger"


@pytest.mark.parametrize("engine", engines_available())
@pytest.mark.parametrize(("photo", "wanted"), [("chelsea.png", CATS), ("coffee.png", COFFEE)])
def test_real_photos_get_the_right_class(bundled: Path, engine: str, photo: str, wanted: tuple[str, ...]) -> None:
    model = Model.load(bundled, Settings(engine=engine))
    image = cv2.imread(str(skimage_photo(photo)))
    top = model.top(model.forward(model.blob(image)))
    assert len(top) == 5 and top[0]["score"] > 0.3
    assert top[0]["label"].startswith(wanted), top


def test_cheeseburger_from_the_command_line(tmp_path: Path) -> None:
    burger = shared_model("burger.jpg")
    result = run_live("snapshot", "--input", burger, "--json", "-o", tmp_path / "g.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["top"][0]["label"] == "cheeseburger" and data["top"][0]["score"] > 0.5
    assert data["layer"] == "blocks.3.expand/relu6"


@pytest.mark.parametrize("engine", engines_available())
def test_every_layer_matches_onnxruntime(bundled: Path, engine: str) -> None:
    model = Model.load(bundled, Settings(engine=engine))
    figures = assert_taps_match_reference(bundled, model, seed=4)
    assert figures["float_share"] == 1.0
