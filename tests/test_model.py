"""Model loading: engines, targets, preprocessing, layer lookup and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from live.engines import HAS_ENGINES, effective_target, engines_available
from live.errors import BackendError, LayerError, ModelError, UsageError
from live.layers import Layer, ProbeCache
from live.model import Model, Settings
from live.preprocess import Preprocess

pytestmark = pytest.mark.opencv


def test_engine_choice_is_reported(net_dir: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    assert model.engine == engines_available()[0]
    info = model.info()
    assert info["engine"] == model.engine and info["target"] == "cpu" and info["backend"] == "default"
    assert info["opencv"] == cv2.__version__


@pytest.mark.skipif(not HAS_ENGINES, reason="OpenCV 4.x has one engine")
def test_new_engine_cannot_take_a_target(net_dir: Path) -> None:
    with pytest.raises(BackendError, match="CPU only"):
        Model.load(net_dir / "branchy.onnx", Settings(engine="new", target="opencl"))


@pytest.mark.skipif(HAS_ENGINES, reason="OpenCV 5 has the new engine")
def test_new_engine_on_opencv4_is_an_error(net_dir: Path) -> None:
    with pytest.raises(BackendError, match="not in OpenCV"):
        Model.load(net_dir / "branchy.onnx", Settings(engine="new"))


def test_unknown_names_are_errors(net_dir: Path) -> None:
    path = net_dir / "branchy.onnx"
    with pytest.raises(BackendError, match="'vulkan'"):
        Model.load(path, Settings(target="vulkan"))
    with pytest.raises(BackendError, match="'cuda'"):
        Model.load(path, Settings(backend="cuda"))
    with pytest.raises(BackendError, match="'turbo'"):
        Model.load(path, Settings(engine="turbo"))


def test_effective_target_without_a_usable_device() -> None:
    # In this process no OpenCL device was configured, so OpenCL cannot be used as asked.
    assert effective_target("cpu") == ("cpu", None)
    actual, why = effective_target("opencl")
    if cv2.ocl.useOpenCL() and cv2.ocl.Device.getDefault().type() == cv2.ocl.DEVICE_TYPE_GPU:
        pytest.skip("this machine has an OpenCL GPU")
    assert actual == "cpu" and why


def test_unavailable_target_is_an_error_or_a_stated_fallback(net_dir: Path) -> None:
    if effective_target("opencl")[0] == "opencl":
        pytest.skip("OpenCL is usable here")
    path = net_dir / "branchy.onnx"
    with pytest.raises(BackendError, match="target 'opencl' is not available"):
        Model.load(path, Settings(target="opencl"))
    model = Model.load(path, Settings(target="opencl", fallback=True))
    assert model.target == "cpu" and model.requested_target == "opencl"
    assert any(note.startswith("target: opencl -> cpu") for note in model.notes)


def test_layer_lookup_and_suggestions(net_dir: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    assert model.layer("block1/add").tensor == "block1/residual"
    assert model.layer("block1/residual").name == "block1/add"
    with pytest.raises(LayerError, match="did you mean") as err:
        model.layer("block1/ad")
    assert "block1/add" in str(err.value)
    # Layers that cannot be tapped are listed, and asking for one says why.
    for layer in model.layers:
        if not layer.tappable:
            with pytest.raises(LayerError, match="cannot be tapped"):
                model.layer(layer.name)


def test_untappable_layers_carry_a_reason(light_path) -> None:
    model = Model.load(light_path("squeezenet"))
    untappable = [layer for layer in model.layers if not layer.tappable]
    assert untappable and all(layer.reason for layer in untappable)
    with pytest.raises(LayerError, match="training-time extra output"):
        model.layer(untappable[0].name)


def test_layers_are_in_network_order(net_dir: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    proto = onnx.load(str(net_dir / "branchy.onnx"))
    expected = [out for node in proto.graph.node for out in node.output]
    assert [layer.tensor for layer in model.layers] == expected
    assert [layer.index for layer in model.layers] == list(range(len(expected)))


def test_default_layer_is_a_spatial_map(net_dir: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    layer = model.layer(model.default_layer)
    assert layer.shape is not None and len(layer.shape) == 4


def test_description_file_sets_preprocessing_and_default_layer(net_dir: Path, tmp_path: Path) -> None:
    model_path = tmp_path / "described.onnx"
    model_path.write_bytes((net_dir / "two_heads.onnx").read_bytes())
    model_path.with_suffix(".toml").write_text(
        'default_layer = "lrelu"\n'
        "[preprocess]\n"
        "size = [64, 48]\n"
        "mean = [123.675, 116.28, 103.53]\n"
        "std = [58.395, 57.12, 57.375]\n"
        'crop = "center"\n'
    )
    model = Model.load(model_path)
    assert model.default_layer == "lrelu"
    assert model.preprocess.size == (64, 48)
    assert model.input_shape == (1, 3, 48, 64)
    assert model.preprocess.crop == "center"
    np.testing.assert_allclose(model.preprocess.scale[0], 1 / 58.395)
    # Flags beat the description file.
    flagged = Model.load(model_path, Settings(preprocess={"size": (32, 32), "crop": "none"}))
    assert flagged.input_shape == (1, 3, 32, 32) and flagged.preprocess.crop == "none"
    out = flagged.forward(flagged.blob(np.zeros((10, 20, 3), np.uint8)), ["lrelu"])
    assert out["lrelu"].shape == (1, 4, 16, 16)


def test_bad_description_file(net_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[preprocess\nsize = 3")
    with pytest.raises(ModelError, match="not valid TOML"):
        Model.load(net_dir / "branchy.onnx", Settings(description=bad))
    bad.write_text("[preprocess]\nsize = [10, 10]\nwhatever = 1\n")
    with pytest.raises(UsageError, match="whatever"):
        Model.load(net_dir / "branchy.onnx", Settings(description=bad))


def test_size_that_does_not_fit_a_static_input(net_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"1x3x32x32.*does not fit"):
        Model.load(net_dir / "branchy.onnx", Settings(preprocess={"size": (64, 64)}))


def test_nhwc_input_model_gets_an_nhwc_blob(net_dir: Path) -> None:
    model = Model.load(net_dir / "nhwc_input.onnx")
    assert model.preprocess.layout == "nhwc"
    assert model.input_shape == (1, 16, 16, 3)
    assert model.blob(np.zeros((20, 30, 3), np.uint8)).shape == (1, 16, 16, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable ONNX model|holds no ONNX graph nodes"),
        (b"\x00\xffgarbage\x13\x37" * 50, "not a readable ONNX model|holds no ONNX graph nodes"),
        (b"name: not really\n", "not a readable ONNX model|holds no ONNX graph nodes"),
    ],
)
def test_broken_onnx_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        Model.load(path)


def test_truncated_onnx_file(net_dir: Path, tmp_path: Path) -> None:
    data = (net_dir / "branchy.onnx").read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=str(path.name)):
        Model.load(path)


def test_missing_and_unknown_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Model.load(tmp_path / "nope.onnx")
    other = tmp_path / "model.h5"
    other.write_bytes(b"x")
    with pytest.raises(ModelError, match="cannot tell the format"):
        Model.load(other)


def test_check_blob_rejects_wrong_shapes(net_dir: Path) -> None:
    model = Model.load(net_dir / "branchy.onnx")
    with pytest.raises(ModelError, match="1x3x16x16"):
        model.check_blob(np.zeros((1, 3, 16, 16), np.float32))
    ok = model.check_blob(np.zeros((1, 3, 32, 32), np.float64))
    assert ok.dtype == np.float32


def test_preprocess_round_trip() -> None:
    """What the network sees, turned back into an image, is the resized frame."""
    pre = Preprocess(size=(40, 30), mean=(123.675, 116.28, 103.53), scale=(1 / 58.4, 1 / 57.1, 1 / 57.4), rgb=True)
    frame = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    blob = pre.blob(frame)
    assert blob.shape == (1, 3, 30, 40) and blob.dtype == np.float32
    resized = cv2.resize(frame, (40, 30))
    np.testing.assert_allclose(blob[0, 0], (resized[..., 2] - 123.675) / 58.4, rtol=1e-5, atol=1e-4)
    back = pre.image(blob)
    assert back.shape == (30, 40, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - resized.astype(int)).max() <= 1


def test_preprocess_crop_rect_and_letterbox() -> None:
    pre = Preprocess(size=(100, 100), crop="center")
    assert pre.crop_rect((200, 100)) == (50, 0, 100, 100)
    boxed = Preprocess(size=(100, 100), crop="letterbox", scale=(1.0, 1.0, 1.0))
    blob = boxed.blob(np.full((50, 200, 3), 200, np.uint8))
    assert blob.shape == (1, 3, 100, 100)
    assert blob[0, :, 50, 50].min() == 200 and blob[0, :, 0, 50].max() == 0  # padded band


@pytest.mark.parametrize(
    "override",
    [{"size": (0, 10)}, {"std": [1, 0, 1]}, {"mean": [1, 2]}, {"crop": "zoom"}, {"layout": "chw"}, {"scale": 0}],
)
def test_preprocess_rejects_bad_values(override: dict) -> None:
    with pytest.raises(UsageError):
        Preprocess().with_overrides(override)


@pytest.mark.parametrize("engine", engines_available())
def test_the_engine_reported_is_the_engine_built(net_dir: Path, engine: str) -> None:
    """OpenCV 5.0 builds the new engine for ONNX read from memory whatever is asked: live reads a file instead."""
    from live.engines import engine_of

    model = Model.load(net_dir / "branchy.onnx", Settings(engine=engine))
    model.forward(model.blob(np.zeros((32, 32, 3), np.uint8)), ["stem/swish", "block1/add"])
    nets = list(model._onnx_nets.values())
    assert nets and all(engine_of(net) == engine for net in nets)


def test_a_probe_is_kept_by_content_and_taken_back_only_when_it_fits(net_dir: Path, tmp_path: Path) -> None:
    """The probe's findings are kept per (bytes, input shape, engine choice, OpenCV) and reused only for those."""
    cache = ProbeCache(tmp_path / "probes")
    first = Model.load(net_dir / "branchy.onnx", probe_cache=cache)
    (kept,) = cache.folder.glob("*.json")
    assert [Layer.from_dict(item) for item in json.loads(kept.read_text())] == first.layers
    # Reused: a shape written into the kept file (one no probe would measure) is what the next load reports,
    # also for the same bytes under another name.
    data = json.loads(kept.read_text())
    marked = next(item for item in data if item["tappable"] and item["name"] != first.default_layer)
    marked["shape"] = [1, 99, 9, 9]
    kept.write_text(json.dumps(data))
    twin = tmp_path / "twin.onnx"
    twin.write_bytes((net_dir / "branchy.onnx").read_bytes())
    assert Model.load(twin, probe_cache=cache).layer(marked["name"]).shape == (1, 99, 9, 9)
    # Not reused for other bytes, nor once the kept layers are not the candidates (one missing): probed again.
    other = Model.load(net_dir / "two_heads.onnx", probe_cache=cache)
    assert len(list(cache.folder.glob("*.json"))) == 2 and other.layers != first.layers
    kept.write_text(json.dumps(data[:-1]))
    assert Model.load(twin, probe_cache=cache).layers == first.layers
    assert json.loads(kept.read_text()) == [layer.to_dict() for layer in first.layers]  # and kept right again
    # Unreadable files are misses; a cache that cannot be written costs a probe, never the load.
    kept.write_text("{not json")
    assert Model.load(twin, probe_cache=cache).layers == first.layers
    blocked = ProbeCache(kept)  # a file where the folder should be
    assert Model.load(twin, probe_cache=blocked).layers == first.layers


def test_each_engine_choice_keeps_its_own_probe(net_dir: Path, tmp_path: Path) -> None:
    """The same bytes probed with other settings are kept apart, each as that engine measured it."""
    cache = ProbeCache(tmp_path / "probes")
    choices = [Settings(engine=engine) for engine in engines_available()] + [Settings(backend="opencv")]
    fresh = {repr(m.choice): m.layers for m in (Model.load(net_dir / "branchy.onnx", s) for s in choices)}
    for settings in choices * 2:  # the second round reads what the first kept
        model = Model.load(net_dir / "branchy.onnx", settings, probe_cache=cache)
        assert model.layers == fresh[repr(model.choice)]
    assert len(list(cache.folder.glob("*.json"))) == len(fresh)
