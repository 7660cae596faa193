"""The `live` command line, run as a real child process where exit codes and stderr matter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from live.cli import main
from live.engines import HAS_CLASSIC
from live.model import Model
from live.onnx_graph import OnnxGraph
from tests.helpers import assert_one_line_error, reference_outputs, run_live, shared_model

pytestmark = pytest.mark.opencv


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A real image file written by OpenCV."""
    path = tmp_path / "photo.png"
    yy, xx = np.mgrid[0:120, 0:160]
    img = np.stack([xx * 255 // 160, yy * 255 // 120, (xx + yy) % 256], axis=-1).astype(np.uint8)
    cv2.imwrite(str(path), img)
    return path


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["opencv"] == cv2.__version__
    assert "cpu" in data["targets"]["default"]
    assert data["engines"]
    assert set(data["opencl"]) == {"runtime", "device", "dnn_allows_non_gpu"}


def test_layers_json_lists_every_layer_with_tensor_names(net_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "--model", str(net_dir / "branchy.onnx"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    layers = data["layers"]
    proto = onnx.load(str(net_dir / "branchy.onnx"))
    assert [layer["tensor"] for layer in layers] == [out for node in proto.graph.node for out in node.output]
    first = layers[0]
    assert set(first) >= {"name", "op", "shape", "tensor", "node", "tappable", "reason"}
    assert first == {**first, "name": "stem/conv", "tensor": "stem/conv:0", "op": "Conv", "shape": [1, 8, 32, 32]}
    assert data["engine"] and data["target"] == "cpu"
    assert data["default_layer"] in {layer["name"] for layer in layers}


def test_a_second_look_at_a_model_reads_the_kept_probe(net_dir: Path, tmp_path: Path) -> None:
    """`live layers` twice in fresh processes: one probe kept in the cache folder, the same listing both times."""
    env = dict(os.environ, LIVE_CACHE=str(tmp_path / "cache"))
    runs = [run_live("layers", "-m", net_dir / "branchy.onnx", "--json", env=env) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr
    assert json.loads(runs[0].stdout) == json.loads(runs[1].stdout)
    assert len(list((tmp_path / "cache" / "probes").glob("*.json"))) == 1


def test_layers_text(net_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "-m", str(net_dir / "two_heads.onnx"), "--size", "64x48"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("two_heads.onnx:")
    assert any("lrelu" in line and "1x4x24x32" in line for line in out)


def test_snapshot_writes_grid_blob_and_json(net_dir: Path, photo: Path, tmp_path: Path) -> None:
    out, npy, seen = tmp_path / "grid.png", tmp_path / "blob.npy", tmp_path / "seen.png"
    result = run_live(
        "snapshot", "-m", net_dir / "branchy.onnx", "--layer", "stem/sigmoid", "--input", photo,
        "--out", out, "--npy", npy, "--seen", seen, "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["layer"] == "stem/sigmoid" and data["shape"] == [1, 8, 32, 32]
    assert {"engine", "backend", "target", "timings_ms", "grid"} <= set(data)
    assert set(data["timings_ms"]) == {"load", "preprocess", "forward", "grid", "write"}
    grid = cv2.imread(str(out))
    assert grid is not None and list(grid.shape[:2]) == data["grid"]["shape"]
    assert min(grid.shape[:2]) >= 256  # small grids are zoomed for viewing
    blob = np.load(npy)
    assert blob.shape == (1, 8, 32, 32) and blob.dtype == np.float32
    assert blob.min() >= 0.0 and blob.max() <= 1.0  # a sigmoid
    model = Model.load(net_dir / "branchy.onnx")
    expected = model.forward(model.blob(cv2.imread(str(photo))), ["stem/sigmoid"])["stem/sigmoid"]
    np.testing.assert_allclose(blob, expected, rtol=1e-5, atol=1e-6)
    seen_img = cv2.imread(str(seen))
    assert seen_img.shape == (32, 32, 3)
    assert np.abs(seen_img.astype(int) - cv2.resize(cv2.imread(str(photo)), (32, 32)).astype(int)).max() <= 1
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_snapshot_of_an_npy_tensor_is_fed_as_is(net_dir: Path, tmp_path: Path) -> None:
    tensor = np.random.default_rng(7).standard_normal((1, 3, 32, 32)).astype(np.float32)
    inp, npy = tmp_path / "input.npy", tmp_path / "out.npy"
    np.save(inp, tensor)
    result = run_live("snapshot", "-m", net_dir / "branchy.onnx", "-l", "block1/add", "-i", inp, "--npy", npy,
                      "--out", tmp_path / "g.png", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["input_kind"] == "tensor"
    graph = OnnxGraph(onnx.load(str(net_dir / "branchy.onnx")), tensor.shape)
    (expected,) = reference_outputs(graph.tap_model(["block1/residual"], declare_shapes=False), "input", tensor)
    np.testing.assert_allclose(np.load(npy), expected, rtol=1e-3, atol=1e-4)


def test_snapshot_normalizations_differ(net_dir: Path, photo: Path, tmp_path: Path) -> None:
    images = {}
    for norm in ("map", "layer", "robust"):
        out = tmp_path / f"{norm}.png"
        assert main(["snapshot", "-m", str(net_dir / "branchy.onnx"), "-i", str(photo), "-o", str(out),
                     "--norm", norm, "--cmap", "gray", "-l", "block1/pw"]) == 0  # fmt: skip
        images[norm] = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    out = tmp_path / "fixed.png"
    assert main(["snapshot", "-m", str(net_dir / "branchy.onnx"), "-i", str(photo), "-o", str(out),
                 "--norm", "fixed", "--range", "-1", "1", "-l", "block1/pw"]) == 0  # fmt: skip
    assert not np.array_equal(images["map"], images["layer"])
    assert not np.array_equal(images["layer"], images["robust"])


def test_snapshot_of_a_vector_head(net_dir: Path, photo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "head.png"
    assert main(["snapshot", "-m", str(net_dir / "branchy.onnx"), "-i", str(photo), "-o", str(out), "-l", "prob"]) == 0
    assert "1x10" in capsys.readouterr().out
    assert cv2.imread(str(out)) is not None


def test_snapshot_default_layer_on_real_model(photo: Path, tmp_path: Path) -> None:
    model = shared_model("ultraface-rfb-320.onnx")
    result = run_live("snapshot", "-m", model, "-i", photo, "-o", tmp_path / "g.png", "--json",
                      "--mean", "127", "--std", "128", "--order", "mean", "--cmap", "jet")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["input_shape"] == [1, 3, 240, 320]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["layers", "-m", "{tmp}/missing.onnx"], ["missing.onnx", "not found"]),
        (["layers", "-m", "{tmp}/empty.onnx"], ["empty.onnx"]),
        (["layers", "-m", "{tmp}/random.onnx"], ["random.onnx"]),
        (["layers", "-m", "{tmp}/random.tflite"], ["random.tflite"]),
        (["layers", "-m", "{tmp}/notes.txt"], ["notes.txt", "format"]),
        (
            ["snapshot", "-m", "{nets}/branchy.onnx", "-i", "{photo}", "-l", "stem/sigmod"],
            ["stem/sigmod", "stem/sigmoid"],
        ),
        (["snapshot", "-m", "{nets}/branchy.onnx", "-i", "{tmp}/nothere.jpg"], ["nothere.jpg"]),
        (["snapshot", "-m", "{nets}/branchy.onnx", "-i", "{tmp}/notes.txt"], ["notes.txt", "image"]),
        (["snapshot", "-m", "{nets}/branchy.onnx", "-i", "{tmp}/wrong.npy"], ["1x3x8x8", "1x3x32x32"]),
        (["snapshot", "-m", "{nets}/branchy.onnx", "-i", "{photo}", "-o", "{tmp}/no/such/dir/g.png"], ["no/such/dir"]),
        (["snapshot", "-m", "{nets}/branchy.onnx", "-i", "{photo}", "--size", "-3"], ["--size", "-3"]),
        (["snapshot", "-m", "{nets}/branchy.onnx", "-i", "{photo}", "--size", "64"], ["1x3x64x64", "does not fit"]),
        (["snapshot", "-m", "{nets}/branchy.onnx", "-i", "{photo}", "--target", "vulkan"], ["vulkan"]),
        (["snapshot", "-m", "{nets}/branchy.onnx", "-i", "{photo}", "--norm", "fixed"], ["fixed", "range"]),
        (["snapshot", "-m", "{nets}/branchy.onnx", "-i", "{photo}", "--batch", "3"], ["batch index 3"]),
        (["snapshot", "-m", "{nets}/branchy.onnx", "-i", "{photo}", "--threads", "0"], ["--threads", "0"]),
    ],
)
def test_bad_input_is_one_clear_line(args: list[str], needles: list[str], net_dir: Path, photo: Path, tmp_path: Path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "random.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "random.tflite").write_bytes(np.random.default_rng(1).bytes(4096))
    (tmp_path / "notes.txt").write_text("not a model\n")
    np.save(tmp_path / "wrong.npy", np.zeros((1, 3, 8, 8), np.float32))
    filled = [a.format(tmp=tmp_path, nets=net_dir, photo=photo) for a in args]
    assert_one_line_error(run_live(*filled, cwd=tmp_path), *needles)
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.skipif(hasattr(cv2.dnn, "readNetFromCaffe"), reason="this OpenCV still reads Caffe")
def test_caffe_on_opencv5_points_to_onnx(tmp_path: Path) -> None:
    proto = tmp_path / "bvlc_googlenet.prototxt"
    proto.write_text('name: "x"\ninput: "data"\n')
    assert_one_line_error(run_live("layers", "-m", proto), "Caffe", "ONNX")


# --------------------------------------------------------------------------- OpenCL


def test_opencl_without_a_device_is_an_error_or_a_stated_fallback(
    net_dir: Path, photo: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    args = ["snapshot", "-m", net_dir / "branchy.onnx", "-i", photo, "-o", tmp_path / "g.png", "--target", "opencl"]
    failed = run_live(*args, env=clean_env)
    if failed.returncode == 0:
        pytest.skip("an OpenCL GPU is usable here")
    assert_one_line_error(failed, "opencl", "not available")
    fallback = run_live(*args, "--fallback", "--json", env=clean_env)
    assert fallback.returncode == 0, fallback.stderr
    data = json.loads(fallback.stdout)
    assert data["target"] == "cpu" and data["requested_target"] == "opencl"
    assert any("opencl -> cpu" in note for note in data["notes"])


def _pocl_available(env: dict[str, str]) -> bool:
    info = run_live("info", "--json", "--opencl-device", ":CPU:", env=env)
    return info.returncode == 0 and json.loads(info.stdout)["opencl"]["device"] is not None


@pytest.mark.opencl
def test_opencl_on_a_cpu_device_matches_cpu(net_dir: Path, photo: Path, tmp_path: Path, clean_env) -> None:
    if not _pocl_available(clean_env):
        pytest.skip("no OpenCL CPU device (install pocl-opencl-icd)")
    common = ["snapshot", "-m", net_dir / "two_heads.onnx", "-i", photo, "-l", "lrelu", "--size", "32", "--json"]
    if not HAS_CLASSIC:  # OpenCV 5.1 and later: OpenCL only ever ran on the classic engine, which is gone
        ocl = run_live(*common, "--target", "opencl", "--opencl-device", ":CPU:", env=clean_env)
        assert_one_line_error(ocl, "'opencl'", "classic engine", cv2.__version__)
        return
    cpu = run_live(*common, "-o", tmp_path / "cpu.png", "--npy", tmp_path / "cpu.npy", env=clean_env)
    assert cpu.returncode == 0, cpu.stderr
    ocl = run_live(*common, "-o", tmp_path / "ocl.png", "--npy", tmp_path / "ocl.npy", "--target", "opencl",
                   "--opencl-device", ":CPU:", env=clean_env)  # fmt: skip
    assert ocl.returncode == 0, ocl.stderr
    data = json.loads(ocl.stdout)
    assert data["target"] == "opencl" and data["engine"] == "classic"
    np.testing.assert_allclose(np.load(tmp_path / "ocl.npy"), np.load(tmp_path / "cpu.npy"), rtol=1e-4, atol=1e-4)
    fp16 = run_live(*common, "-o", tmp_path / "h.png", "--target", "opencl_fp16", "--opencl-device", ":CPU:",
                    env=clean_env)  # fmt: skip
    if fp16.returncode != 0:  # PoCL's CPU device has no float16
        assert_one_line_error(fp16, "opencl_fp16", "float16")
