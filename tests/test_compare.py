"""`live compare`: one input through two configurations, every layer compared (live.compare)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from live.cli import main
from live.compare import Config, configs, default_configs, difference_map, layer_difference
from live.engines import HAS_CLASSIC, engines_available
from live.errors import UsageError
from tests import nets
from tests.helpers import assert_one_line_error, run_live

pytestmark = pytest.mark.opencv

KEYS = {"a", "b", "layers", "first_divergent", "tolerance", "notes"}
ROW_KEYS = {"name", "max_abs", "max_rel", "a_ms", "b_ms"}


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    yy, xx = np.mgrid[0:120, 0:160]
    img = np.stack([xx * 255 // 160, yy * 255 // 120, (xx * yy) % 256], axis=-1).astype(np.uint8)
    cv2.imwrite(str(path), img)
    return path


def _compare(capsys: pytest.CaptureFixture[str], *args: str | Path) -> dict:
    assert main(["compare", "--json", "--frames", "2", *map(str, args)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == KEYS
    for row in data["layers"]:
        assert set(row) == ROW_KEYS
    return data


def _first_past(data: dict) -> str | None:
    return next((r["name"] for r in data["layers"] if r["max_rel"] is None or r["max_rel"] > data["tolerance"]), None)


@pytest.mark.parametrize("net", ["branchy", "two_heads", "pair"])
def test_default_comparison_finds_no_difference_where_onnxruntime_agrees(
    net: str, net_dir: Path, photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime")
    data = _compare(capsys, "-m", net_dir / f"{net}.onnx", "-i", photo, "--size", "32")
    have = engines_available()
    # 5.0: its two engines; 5.1 (new only) and 4.x (classic only): the engine against onnxruntime.
    expected = ("new/cpu", "classic/cpu") if len(have) == 2 else (f"{have[0]}/cpu", "onnxruntime/cpu")
    assert (data["a"], data["b"]) == expected
    assert data["first_divergent"] is None
    assert len(data["layers"]) >= 3
    for row in data["layers"]:
        assert row["max_rel"] is not None and row["max_rel"] <= 1e-4, row
        assert row["max_abs"] is not None
    # Each OpenCV side has per-layer times from its engine's profile; onnxruntime's are null.
    assert any(row["a_ms"] is not None for row in data["layers"])
    if data["b"] == "onnxruntime/cpu":
        assert all(row["b_ms"] is None for row in data["layers"])


def test_every_engine_against_onnxruntime(net_dir: Path, photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    for engine in engines_available():
        data = _compare(capsys, "-m", net_dir / "branchy.onnx", "-i", photo, "--a", engine, "--b", "onnxruntime/cpu")
        assert data["a"] == f"{engine}/cpu" and data["b"] == "onnxruntime/cpu"
        assert data["first_divergent"] is None, data["layers"]
        names = [row["name"] for row in data["layers"]]
        assert names[:2] == ["stem/conv", "stem/bn"] and "softmax" in names


def test_float16_weights_twin_parts_at_the_first_layer_they_touch(
    net_dir: Path, photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the weights of `down` (a late conv) are stored in float16: every layer before it agrees."""
    twin = tmp_path / "branchy_fp16.onnx"
    onnx.save(nets.float16_weights(nets.branchy(), only=("down.w",)), str(twin))
    data = _compare(capsys, "-m", net_dir / "branchy.onnx", "--b-model", twin, "-i", photo, "--tolerance", "1e-5")
    assert data["a"] == data["b"] == f"{engines_available()[0]}/cpu"
    names = [row["name"] for row in data["layers"]]
    assert data["first_divergent"] == "down" == _first_past(data)
    for row in data["layers"][: names.index("down")]:
        assert row["max_abs"] == 0.0, row  # the same engine, the same weights: bit for bit
    assert data["layers"][names.index("down")]["max_rel"] > 1e-5
    # Every weight in float16: the first layer already parts, and a loose tolerance hides it all.
    whole = tmp_path / "branchy_fp16_all.onnx"
    onnx.save(nets.float16_weights(nets.branchy()), str(whole))
    data = _compare(capsys, "-m", net_dir / "branchy.onnx", "--b-model", whole, "-i", photo, "--tolerance", "1e-5")
    assert data["first_divergent"] == "stem/conv" == _first_past(data)
    data = _compare(capsys, "-m", net_dir / "branchy.onnx", "--b-model", whole, "-i", photo, "--tolerance", "0.1")
    assert data["first_divergent"] is None


def test_text_table_marks_the_first_divergent_layer(net_dir: Path, photo: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin.onnx"
    onnx.save(nets.float16_weights(nets.branchy(), only=("branch/right.w",)), str(twin))
    done = run_live("compare", "-m", net_dir / "branchy.onnx", "--b-model", twin, "-i", photo, "--frames", "1",
                    "--tolerance", "1e-6")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("a = ") and "tolerance 1e-06" in lines[0]
    marked = [line for line in lines if "<- first past the tolerance" in line]
    assert len(marked) == 1 and marked[0].split()[0] == "branch/right"
    assert "first divergent layer: branch/right" in lines


def test_an_npy_input_is_fed_as_is(net_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    tensor = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", tensor)
    data = _compare(capsys, "-m", net_dir / "branchy.onnx", "-i", tmp_path / "x.npy", "--b", "onnxruntime/cpu")
    assert data["first_divergent"] is None


def test_default_configurations() -> None:
    best = Config(engines_available()[0])
    ort = Config("onnxruntime")
    # A second model file: the same configuration on both sides, the one given or the best engine.
    assert default_configs("onnx", None, None, True) == (best, best)
    assert default_configs("onnx", None, ort, True) == (ort, ort)
    assert default_configs("onnx", Config("new"), ort, False) == (Config("new"), ort)
    if len(engines_available()) == 2:
        assert default_configs("onnx", None, None, False) == (Config("new"), Config("classic"))
        assert default_configs("tflite", None, Config("new"), False) == (Config("classic"), Config("new"))
    else:
        pytest.importorskip("onnxruntime")
        assert default_configs("onnx", None, None, False) == (best, ort)
        with pytest.raises(UsageError, match="nothing to compare with"):
            default_configs("tflite", None, None, False)


def test_layer_difference() -> None:
    a = np.array([[1.0, -4.0], [2.0, 0.0]], np.float32)
    assert layer_difference(a, a) == (0.0, 0.0, "")
    assert layer_difference(a, a + np.float32(0.5)) == (0.5, 0.125, "")
    assert layer_difference(np.zeros(3), np.zeros(3)) == (0.0, 0.0, "")
    nan = a.copy()
    nan[0, 0] = np.nan
    assert layer_difference(nan, nan)[:2] == (0.0, 0.0)
    assert layer_difference(a, nan)[0] is None
    assert layer_difference(a, np.zeros((3, 3)))[2].startswith("shapes differ")
    diff = difference_map(a, nan)
    assert diff.dtype == np.float32 and diff.shape == a.shape
    assert np.isnan(diff[0, 0]) and np.array_equal(diff.ravel()[1:], np.zeros(3))
    assert difference_map(nan, nan)[0, 0] == 0.0
    assert np.array_equal(difference_map(a, a + 1), np.ones_like(a))


def test_config_names() -> None:
    best = engines_available()[0]
    assert str(Config.parse(best)) == f"{best}/cpu" and str(Config.parse(" onnxruntime / cpu ")) == "onnxruntime/cpu"
    assert f"{engines_available()[0]}/cpu" in configs()
    for bad in ("gpu/cpu", "new/vulkan", "onnxruntime/opencl", "", "/cpu"):
        with pytest.raises(UsageError):
            Config.parse(bad)


def _missing_configs() -> list[str]:
    """Configurations this OpenCV does not have (the classic engine on 5.1, the new one on 4.x)."""
    missing = []
    if not HAS_CLASSIC:
        missing += ["classic/cpu", "classic/opencl"]
    if "new" not in engines_available():
        missing.append("new/cpu")
    return missing


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--a", "gpu/cpu"], ["--a", "gpu/cpu", "ENGINE/TARGET"]),
        (["--b", "new/vulkan"], ["--b", "new/vulkan"]),
        (["--b", "onnxruntime/opencl"], ["onnxruntime", "CPU only"]),
        (["--b-model", "{tmp}/missing.onnx"], ["missing.onnx", "not found"]),
        (["--b-model", "{tmp}/other.onnx", "--frames", "0"], ["--frames", "0"]),
        (["--tolerance", "-1"], ["--tolerance", "-1"]),
        (["--b-model", "{tmp}/other.onnx"], ["--b-model", "1x1x28x28", "1x3x32x32"]),
    ],
)
def test_bad_configurations_are_one_line(
    args: list[str], needles: list[str], net_dir: Path, photo: Path, tmp_path: Path
) -> None:
    onnx.save(nets.gray_mnist_like(), str(tmp_path / "other.onnx"))  # another input shape
    filled = [a.format(tmp=tmp_path) for a in args]
    done = run_live("compare", "-m", net_dir / "branchy.onnx", "-i", photo, *filled)
    assert done.returncode == 2
    assert_one_line_error(done, *needles)


@pytest.mark.parametrize("config", _missing_configs() or ["none"])
def test_a_configuration_this_opencv_lacks_is_one_line(config: str, net_dir: Path, photo: Path) -> None:
    if config == "none":
        pytest.skip("this OpenCV has both engines")
    done = run_live("compare", "-m", net_dir / "branchy.onnx", "-i", photo, "--b", config)
    assert done.returncode == 2
    assert_one_line_error(done, config.split("/")[0], cv2.__version__)


@pytest.mark.opencl
def test_opencl_against_the_cpu_on_pocl(net_dir: Path, photo: Path, clean_env: dict[str, str]) -> None:
    """OpenCL on PoCL's CPU device: float32 agrees with the CPU; float16 is a clear error, or with --fallback runs as
    OpenCL float32 and says so. Where OpenCV has no classic engine (5.1), OpenCL is a one-line error."""
    common = ["compare", "-m", net_dir / "two_heads.onnx", "-i", photo, "--size", "32", "--frames", "1"]
    ocl = [*common, "--opencl-device", ":CPU:", "--a", "new/cpu" if not HAS_CLASSIC else "classic/cpu"]
    if not HAS_CLASSIC:
        assert_one_line_error(run_live(*ocl, "--b", "classic/opencl", env=clean_env), "--b classic/opencl")
        return
    info = run_live("info", "--json", "--opencl-device", ":CPU:", env=clean_env)
    if info.returncode != 0 or json.loads(info.stdout)["opencl"]["device"] is None:
        pytest.skip("no OpenCL CPU device (install pocl-opencl-icd)")
    done = run_live(*ocl, "--b", "classic/opencl", "--json", "--tolerance", "1e-3", env=clean_env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["a"], data["b"]) == ("classic/cpu", "classic/opencl")
    assert data["first_divergent"] is None, data["layers"]
    assert any(row["b_ms"] is not None for row in data["layers"])
    fp16 = run_live(*ocl, "--b", "classic/opencl_fp16", "--json", env=clean_env)
    if fp16.returncode != 0:  # PoCL's CPU device has no float16: said before anything runs
        assert_one_line_error(fp16, "--b classic/opencl_fp16", "float16")
        done = run_live(*ocl, "--b", "classic/opencl_fp16", "--fallback", "--json", env=clean_env)
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert data["b"] == "classic/opencl"  # as it really ran
        assert any("opencl_fp16 -> opencl" in note for note in data["notes"]), data["notes"]
    else:  # a device with float16: a planted difference, float16 arithmetic against float32
        data = json.loads(fp16.stdout)
        if data["b"] == "classic/opencl_fp16":
            assert data["first_divergent"] is not None


def test_silent_fallback_without_permission_is_reported(net_dir: Path, photo: Path, clean_env) -> None:
    """OpenCL asked for where cv2.dnn would quietly run on the CPU: an error, or with --fallback a stated one."""
    if not HAS_CLASSIC:
        pytest.skip("no OpenCL targets without the classic engine")
    env = dict(clean_env, OPENCV_OPENCL_DEVICE=":CPU:")  # a CPU device, not allowed for cv2.dnn
    common = ["compare", "-m", net_dir / "branchy.onnx", "-i", photo, "--a", "classic/cpu", "--b", "classic/opencl"]
    failed = run_live(*common, env=env)
    if failed.returncode == 0:
        pytest.skip("an OpenCL GPU is usable here")
    assert_one_line_error(failed, "--b classic/opencl", "not available")
    done = run_live(*common, "--fallback", "--json", "--frames", "1", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["b"] == "classic/cpu"  # the target it really ran on
    assert any(note.startswith("b: target: opencl -> cpu") for note in data["notes"]), data["notes"]
    assert data["first_divergent"] is None
