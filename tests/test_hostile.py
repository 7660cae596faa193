"""Hostile inputs and places, each made real: no crash, no hang, nothing lost, nothing overwritten that was not ours.

One section per fault class of issue 15, each through the real CLI in a child process: file names that are
not UTF-8 (cv2's bindings segfault on them), absurd numbers, inputs whose processing would be unbounded, runs
that can never produce a result, FIFOs and devices where files are expected, write errors on a real full file
system (a small tmpfs), output paths that are symbolic links, devices, directories or the same file twice,
SIGTERM and SIGHUP sent to a real child, and messages that name what was wrong. Downloads are tested against a
real HTTP server in tests/test_catalog.py; generated variants of every class run in tests/test_fuzz.py.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.helpers import (
    REPO,
    assert_one_line_error,
    children,
    fill,
    hanging_probe_env,
    not_utf8,
    npy_claiming,
    patch_avi,
    playable_frames,
    png_claiming,
    replacing_probe_env,
    run_live,
    shared_model,
    small_disk,
    tall_png,
    wait_for,
    write_clip,
)

pytestmark = pytest.mark.opencv


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    yy, xx = np.mgrid[0:48, 0:64]
    cv2.imwrite(str(path), np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=-1).astype(np.uint8))
    return path


def snapshot(net_dir: Path, *args: str | Path) -> list[str | Path]:
    return ["snapshot", "-m", net_dir / "branchy.onnx", "--no-probe", *args]


def headless(net_dir: Path, source: str | Path, *args: str | Path) -> list[str | Path]:
    return ["run", "--headless", "-m", net_dir / "two_heads.onnx", "--size", "32", "--no-probe", "-s", source, *args]


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def timed(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = run_live(*args, cwd=cwd, env=env)
    return result, time.monotonic() - start


# ----------------------------------------------------------------------------- file names that are not UTF-8


def _name_links() -> set[str]:
    """The private folders of ASCII links to such names (live.files.cv_name) in the temporary folder."""
    import tempfile

    return {p.name for p in Path(tempfile.gettempdir()).glob("live-name-*")}


def test_names_that_are_not_utf8_are_read_and_written(net_dir: Path, photo: Path, tmp_path: Path) -> None:
    odd = not_utf8(tmp_path, b"d\xfe")  # a folder with such a name, and files with such names in it
    odd.mkdir()
    clip = write_clip(tmp_path / "clip.avi", frames=6)
    video, image, tensor = (not_utf8(odd, b"x\xff" + ext) for ext in (b".avi", b".png", b".npy"))
    video.write_bytes(clip.read_bytes())
    image.write_bytes(photo.read_bytes())
    np.save(tmp_path / "t.npy", np.zeros((1, 3, 32, 32), np.float32))
    tensor.write_bytes((tmp_path / "t.npy").read_bytes())
    model = not_utf8(odd, b"m\xff.onnx")
    model.write_bytes((net_dir / "branchy.onnx").read_bytes())
    out, npy, seen = (not_utf8(odd, b"o\xff" + ext) for ext in (b".png", b".npy", b".jpg"))
    links_before = _name_links()

    for source in (image, tensor):
        result = run_live("snapshot", "-m", model, "-i", source, "-o", out, "--npy", npy, "--seen", seen, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert cv2.imdecode(np.fromfile(out, np.uint8), cv2.IMREAD_COLOR).shape[2] == 3
        assert np.load(npy).shape == (1, 4, 32, 32) and np.fromfile(seen, np.uint8).size
        assert "\\xff" in result.stdout  # printed escaped

    record, stats, snaps = not_utf8(odd, b"r\xff.avi"), not_utf8(odd, b"s\xff.json"), not_utf8(odd, b"snaps\xff")
    for source in (video, image, odd):
        result = run_live(*headless(net_dir, source, "--frames", "3", "--record", record, "--stats-json", stats,
                                    "--snapshot-dir", snaps, "--pace", "max"), cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr
        data = json.loads(stats.read_text())
        assert data["frames"] == 3 and data["recording"] == str(record)
        link = tmp_path / "rec.avi"  # read back through an ASCII name
        link.unlink(missing_ok=True)
        link.symlink_to(record)
        assert playable_frames(link) >= 2
        assert len(list(snaps.iterdir())) >= 3
    assert hidden_files(odd) == []
    assert _name_links() <= links_before  # the ASCII links cv2 was handed are gone


def test_a_tflite_model_with_such_a_name_loads(tmp_path: Path) -> None:
    from tests.helpers import shared_model

    model = not_utf8(tmp_path, b"v\xff.tflite")
    model.write_bytes(shared_model("vww-96-float.tflite").read_bytes())
    result = run_live("layers", "-m", model, "--size", "96", "--no-probe", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["run", "--headless", "-s", "http://127.0.0.1:9/\udcff.mjpg"], ["stream URL", "\\xff", "not valid UTF-8"]),
        (["run", "--frames", "1", "--screenshot", "{odd}.png"], ["screenshot", "not valid UTF-8"]),
    ],
)
def test_names_cv2_or_qt_cannot_take_are_one_line(args: list[str], needles: list[str], net_dir: Path, tmp_path: Path):
    odd = str(not_utf8(tmp_path, b"w\xff"))
    filled = [a.format(odd=odd) for a in args]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = run_live(*filled, "-m", net_dir / "two_heads.onnx", "--size", "32", "--no-probe", cwd=tmp_path, env=env)
    assert_one_line_error(result, *needles)


# ----------------------------------------------------------------------------- absurd numbers


NUMBERS = [
    ("run", ["--record-fps", "inf"], "1 to 240"),
    ("run", ["--record-fps", "nan"], "1 to 240"),
    ("run", ["--record-fps", "0"], "1 to 240"),
    ("run", ["--interval", "inf"], "0.01 to 86400"),
    ("run", ["--interval", "-1"], "0.01 to 86400"),
    ("run", ["--frames", "100000000000000000000"], "1 to 1000000000"),
    ("run", ["--frames", "0"], "1 to 1000000000"),
    ("snapshot", ["--threads", "1e20"], "not an integer"),
    ("snapshot", ["--threads", "100000000000000000000"], "1 to 1024"),
    ("snapshot", ["--size", "2147483648x1"], "1 to 16384"),
    ("snapshot", ["--size", "16384"], "16777216"),
    ("snapshot", ["--pad", "100000"], "0 to 64"),
    ("snapshot", ["--zoom", "1000"], "1 to 64"),
    ("snapshot", ["--max-size", "100000"], "1 to 16384"),
    ("snapshot", ["--batch", "70000"], "0 to 65535"),
    ("snapshot", ["--range", "0", "inf", "--norm", "fixed"], "-1e+30 to 1e+30"),
    ("snapshot", ["--percentiles", "-5", "50"], "0 to 100"),
    ("snapshot", ["--mean", "inf"], "finite"),
    ("snapshot", ["--std", "1e300"], "within -1e6..1e6"),
]


@pytest.mark.parametrize(("command", "args", "bound"), NUMBERS, ids=[" ".join(a) for _, a, _ in NUMBERS])
def test_absurd_numbers_are_refused_where_they_are_parsed(
    command: str, args: list[str], bound: str, net_dir: Path, photo: Path, tmp_path: Path
) -> None:
    base = snapshot(net_dir, "-i", photo, "-o", tmp_path / "g.png") if command == "snapshot" else headless(
        net_dir, photo, "--record", tmp_path / "r.avi")  # fmt: skip
    result, seconds = timed(*base, *args, cwd=tmp_path)
    assert_one_line_error(result, args[0], bound)
    assert seconds < 30 and not (tmp_path / "g.png").exists() and not (tmp_path / "r.avi").exists()


@pytest.mark.parametrize("command", ["run", "snapshot", "layers", "info", "models"])
def test_help_states_the_ranges(command: str, tmp_path: Path) -> None:
    result = run_live(command, "--help", cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    if command == "run":
        for text in ("1 to 240", "0.01 to 86400", "1 to 1,000,000,000", "0 to 64", "1 to 16384 a side"):
            assert text in " ".join(result.stdout.split()), text


# ----------------------------------------------------------------------------- work bounded by what it is for


def test_a_tall_thin_image_is_cropped_before_it_is_resized(net_dir: Path, tmp_path: Path) -> None:
    tall = tmp_path / "tall.png"
    tall.write_bytes(tall_png(16000))  # a 1x16000 PNG of a few hundred bytes
    assert tall.stat().st_size < 1000
    result, seconds = timed("snapshot", "-m", net_dir / "two_heads.onnx", "--no-probe", "-i", tall, "--size", "224",
                            "--crop", "center", "-o", tmp_path / "g.png", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert seconds < 15  # was 12.6 s and 2.8 GB for the resize alone


def test_huge_declared_sizes_are_refused_before_anything_is_allocated(net_dir: Path, tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_claiming(60000, 60000))
    assert_one_line_error(run_live(*snapshot(net_dir, "-i", huge), cwd=tmp_path), "huge.png", "60000x60000",
                          str(64), "megapixels")  # fmt: skip
    tensor = tmp_path / "big.npy"
    tensor.write_bytes(npy_claiming((1, 3, 1000000, 1000000)))  # 3e12 elements
    assert_one_line_error(run_live(*snapshot(net_dir, "-i", tensor), cwd=tmp_path), "big.npy", "1x3x1000000x1000000",
                          "the most live reads is 1073741824 bytes")  # fmt: skip
    short = tmp_path / "short.npy"
    short.write_bytes(npy_claiming((1, 3, 32, 32), data=b"\0" * 100))
    assert_one_line_error(run_live(*snapshot(net_dir, "-i", short), cwd=tmp_path), "short.npy", "cut short")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 100000, 100000])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 100000, 100000])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "big", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "big.onnx"))
    for probe in ([], ["--no-probe"]):
        result, seconds = timed("layers", "-m", tmp_path / "big.onnx", *probe, cwd=tmp_path)
        assert_one_line_error(result, "big.onnx", "100000x100000", "16777216")
        assert seconds < 30


def test_a_zoom_beyond_the_largest_picture_is_refused(net_dir: Path, photo: Path, tmp_path: Path) -> None:
    result = run_live(*snapshot(net_dir, "-i", photo, "-o", tmp_path / "g.png", "--zoom", "64", "-l", "stem/conv",
                               "--pad", "64"),
                      cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, "--zoom 64", "16384")
    assert not (tmp_path / "g.png").exists()


# ----------------------------------------------------------------------------- runs that can never produce a result


def test_a_run_where_every_frame_fails_ends_with_one_line(net_dir: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=10)
    stats = tmp_path / "s.json"
    result, seconds = timed(*headless(net_dir, clip, "--batch", "3", "--pace", "max", "--stats-json", stats),
                            cwd=tmp_path)  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines[-1].startswith("live: error: stopped: 50 frames in a row failed"), lines
    assert "batch index 3" in lines[-1] and seconds < 60
    assert all(line.startswith("live: warning: frame ") for line in lines[:-1])
    assert json.loads(stats.read_text())["errors"] == 50

    banner = tmp_path / "banner.png"
    cv2.imwrite(str(banner), np.full((1, 64, 3), 120, np.uint8))  # a letterbox of it is impossible
    result = run_live(*headless(net_dir, banner, "--crop", "letterbox"), cwd=tmp_path)
    assert result.returncode == 2 and "frames in a row failed" in result.stderr.strip().splitlines()[-1]


def test_a_video_claiming_one_frame_an_hour_is_paced_sanely(net_dir: Path, tmp_path: Path) -> None:
    slow = tmp_path / "slow.avi"
    slow.write_bytes(patch_avi(write_clip(tmp_path / "clip.avi", frames=10).read_bytes(), fps=(1, 3600)))
    assert cv2.VideoCapture(str(slow)).get(cv2.CAP_PROP_FPS) < 0.001
    result, seconds = timed(*headless(net_dir, slow, "--frames", "5"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert seconds < 30
    assert "claims 0.000277778 frames per second; playing it at 25" in result.stderr


def test_a_video_whose_header_overstates_its_frames_is_not_called_damaged(net_dir: Path, tmp_path: Path) -> None:
    over = tmp_path / "over.avi"
    over.write_bytes(patch_avi(write_clip(tmp_path / "clip.avi", frames=10).read_bytes(), frames=100))
    result = run_live(*headless(net_dir, over, "--no-loop", "--pace", "max"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "damaged" not in result.stderr and "header counts more frames than it holds" in result.stderr


# ----------------------------------------------------------------------------- reads that never end


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "folder"])
@pytest.mark.parametrize("where", ["--source", "--input", "--describe", "labels", "--catalog", "--model"])
def test_fifos_devices_and_folders_where_files_belong_are_refused(
    special: str, where: str, fifo: Path, net_dir: Path, photo: Path, tmp_path: Path
) -> None:
    path = {"fifo": fifo, "/dev/zero": Path("/dev/zero"), "folder": tmp_path}[special]
    kind = {"fifo": "a FIFO (named pipe)", "/dev/zero": "a character device", "folder": "a directory"}[special]
    if where == "--source":
        if special == "folder":
            pytest.skip("a folder is a slideshow source")
        args = headless(net_dir, path, "--frames", "1")
    elif where == "--input":
        args = snapshot(net_dir, "-i", path)
    elif where == "--describe":
        args = snapshot(net_dir, "-i", photo, "--describe", path)
    elif where == "labels":
        described = tmp_path / "d.toml"
        described.write_text(f'labels = "{path}"\n')
        args = snapshot(net_dir, "-i", photo, "--describe", described)
    elif where == "--catalog":
        args = ["models", "list", "--catalog", path]
    else:
        args = ["layers", "-m", path]
    result, seconds = timed(*args, cwd=tmp_path)
    assert seconds < 30
    assert_one_line_error(result, str(path), kind)


# ----------------------------------------------------------------------------- write errors (a real full disk)


@pytest.mark.parametrize("ext", [".avi", ".mp4"])
def test_a_recording_on_a_full_disk_leaves_nothing_and_fails(ext: str, net_dir: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=30, size=(160, 120))
    with small_disk(tmp_path / "disk", 96) as disk:
        record = disk / f"rec{ext}"
        result = run_live(*headless(net_dir, clip, "--record", record, "--record-input", "--pace", "max",
                                    "--frames", "200", "--stats-json", tmp_path / "s.json"), cwd=tmp_path)  # fmt: skip
        assert_one_line_error(result, f"recording {record} failed", "no space left", str(disk), "nothing was kept")
        assert sorted(p.name for p in disk.iterdir()) == []
        assert "recording_error" in json.loads((tmp_path / "s.json").read_text())


def test_an_old_file_under_the_recording_name_survives_a_full_disk(net_dir: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=30, size=(160, 120))
    with small_disk(tmp_path / "disk", 96) as disk:
        (disk / "rec.avi").write_bytes(b"an older recording")
        result = run_live(*headless(net_dir, clip, "--record", disk / "rec.avi", "--pace", "max", "--frames", "300",
                                    "--record-input"), cwd=tmp_path)  # fmt: skip
        assert result.returncode == 2 and "no space left" in result.stderr
        assert (disk / "rec.avi").read_bytes() == b"an older recording"
        assert hidden_files(disk) == []


@pytest.mark.parametrize("option", ["-o", "--npy", "--seen", "--stats-json"])
def test_every_write_on_a_full_disk_is_one_line_and_leaves_nothing(
    option: str, net_dir: Path, photo: Path, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk", 64) as disk:
        fill(disk)
        names = {"-o": "g.png", "--npy": "b.npy", "--seen": "seen.png", "--stats-json": "s.json"}
        target = disk / names[option]
        if option == "--stats-json":
            args = headless(net_dir, photo, "--frames", "2", option, target)
        else:
            other = [] if option == "-o" else ["-o", tmp_path / "g.png"]
            args = snapshot(net_dir, "-i", photo, *other, option, target)
        result = run_live(*args, cwd=tmp_path)
        assert_one_line_error(result, "cannot write", str(target), f"no space left on the device of folder {disk}")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


# ----------------------------------------------------------------------------- signals


def _start_recording(net_dir: Path, tmp_path: Path, window: bool) -> subprocess.Popen:
    clip = write_clip(tmp_path / "clip.avi", frames=30)
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    args = [sys.executable, "-m", "live", "run", "--source", str(clip), "-m", str(net_dir / "two_heads.onnx"),
            "--size", "32", "--stats-json", str(tmp_path / "s.json"), "--record", str(tmp_path / "rec.avi")] \
        + ([] if window else ["--headless"])  # fmt: skip
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def recording() -> bool:
        assert proc.poll() is None, proc.communicate()
        return any(p.stat().st_size > 0 for p in tmp_path.glob(".rec.avi.*"))

    wait_for(recording, 120, "the first recorded frame")
    return proc


@pytest.mark.parametrize("window", [False, True], ids=["headless", "window"])
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_end_a_run_as_ctrl_c_does(signame: str, window: bool, net_dir: Path, tmp_path: Path):
    proc = _start_recording(net_dir, tmp_path, window)
    try:
        proc.send_signal(getattr(signal, signame))
        start = time.monotonic()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert time.monotonic() - start < 5
    assert proc.returncode == 128 + getattr(signal, signame), err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == f"live: stopped by {signame}"
    assert "results from" in out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["interrupted"] is True and stats["signal"] == signame and stats["frames"] > 0
    assert playable_frames(tmp_path / "rec.avi") >= stats["frames"] - 1
    assert hidden_files(tmp_path) == []


def test_sigterm_while_the_model_loads(net_dir: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=10)
    env = hanging_probe_env(tmp_path, dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen"))
    args = [sys.executable, "-m", "live", "run", "--headless", "--source", str(clip), "-m",
            str(net_dir / "two_heads.onnx"), "--size", "32", "--stats-json", str(tmp_path / "s.json")]  # fmt: skip
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: [p for p, cmd in children(proc.pid) if "--multiprocessing-fork" in cmd], 120, "the probe")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert err.strip() == "live: SIGTERM while loading the model; nothing ran"
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats == {"interrupted": True, "frames": 0, "stage": "loading the model", "signal": "SIGTERM"}


# ----------------------------------------------------------------------------- what an output path may be


def test_output_paths_symlinks_devices_folders_and_twice(net_dir: Path, photo: Path, tmp_path: Path) -> None:
    run = headless(net_dir, photo, "--frames", "2")
    target = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)  # dangling: the file it names is created
    assert run_live(*run, "--stats-json", link, cwd=tmp_path).returncode == 0
    assert link.is_symlink() and json.loads(target.read_text())["frames"] == 2

    null = Path(os.devnull).stat()
    assert run_live(*run, "--stats-json", os.devnull, cwd=tmp_path).returncode == 0
    after = Path(os.devnull).stat()
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == null.st_ino  # still the device, not a new file

    result = run_live(*run, "--stats-json", "/dev/stdout", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    decoder = json.JSONDecoder()
    first, end = decoder.raw_decode(result.stdout)
    second, _ = decoder.raw_decode(result.stdout[end:].lstrip())
    assert first["frames"] == second["frames"] == 2

    assert_one_line_error(run_live(*run, "--stats-json", tmp_path, cwd=tmp_path), "is a directory")
    assert_one_line_error(run_live(*run, "--stats-json", tmp_path / "x.avi", "--record", tmp_path / "x.avi",
                                   cwd=tmp_path), "both", "x.avi")  # fmt: skip
    assert_one_line_error(run_live(*snapshot(net_dir, "-i", photo, "-o", photo), cwd=tmp_path), "both", "photo.png")
    assert_one_line_error(run_live(*snapshot(net_dir, "-i", photo, "-o", tmp_path / "g.png", "--seen", link.with_name(
        "g.png")), cwd=tmp_path), "both")  # fmt: skip


def test_outputs_get_the_users_umask(net_dir: Path, photo: Path, tmp_path: Path) -> None:
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        out = tmp_path / f"g{mask:o}.png"
        result = subprocess.run(
            ["sh", "-c", f'umask {mask:03o} && exec "$@"', "sh", sys.executable, "-m", "live",
             *map(str, snapshot(net_dir, "-i", photo, "-o", out))],
            env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(out.stat().st_mode) == mode


def test_a_fifo_output_is_written_to_when_read_and_refused_when_not(
    fifo: Path, net_dir: Path, photo: Path, tmp_path: Path
) -> None:
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    time.sleep(0.2)  # the reader waits in open() for a writer
    assert run_live(*headless(net_dir, photo, "--frames", "2", "--stats-json", fifo), cwd=tmp_path).returncode == 0
    reader.join(10)
    assert json.loads(got[0])["frames"] == 2 and stat.S_ISFIFO(fifo.stat().st_mode)
    result, seconds = timed(*headless(net_dir, photo, "--frames", "2", "--stats-json", fifo), cwd=tmp_path)
    assert_one_line_error(result, "pipe", "no process reads from that FIFO")
    assert seconds < 30


# ----------------------------------------------------------------------------- clear messages


def test_messages_name_what_was_wrong(net_dir: Path, photo: Path, tmp_path: Path) -> None:
    # Before the model loads (its check hangs here: an error after it would never come).
    hang = hanging_probe_env(tmp_path, dict(os.environ, PYTHONPATH=str(REPO)))
    result, seconds = timed("snapshot", "-m", net_dir / "branchy.onnx", "-i", photo, "-o", tmp_path / "grid",
                            cwd=tmp_path, env=hang)  # fmt: skip
    assert_one_line_error(result, "grid image", "no extension", ".png")
    assert seconds < 30
    (tmp_path / "png.npy").write_bytes(photo.read_bytes())
    assert_one_line_error(run_live(*snapshot(net_dir, "-i", tmp_path / "png.npy"), cwd=tmp_path),
                          "png.npy", "not a .npy array file", "PNG image")  # fmt: skip
    assert_one_line_error(run_live(*snapshot(net_dir, "-i", tmp_path, "-o", tmp_path / "g.png"), cwd=tmp_path),
                          "is a directory")  # fmt: skip
    result = run_live(*snapshot(net_dir, "-i", photo, "-l", ""), cwd=tmp_path)
    assert_one_line_error(result, "--layer", "empty layer name")
    (tmp_path / "cat.toml").write_bytes(b"\xff\xfe[models]\n")
    assert_one_line_error(run_live("models", "list", "--catalog", tmp_path / "cat.toml", cwd=tmp_path),
                          "cat.toml", "not UTF-8")  # fmt: skip
    full = subprocess.run(f'"{sys.executable}" -m live info > /dev/full', shell=True, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)  # fmt: skip
    assert_one_line_error(full, "cannot write to standard output", "No space left")
    closed = subprocess.run(f'"{sys.executable}" -m live info >&-', shell=True, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)  # fmt: skip
    assert_one_line_error(closed, "standard output is closed")


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [("std", '"588"', "'588'"), ("size", '"abc"', "'abc'"), ("rgb", '"yes"', "'yes'"), ("mean", '"1,2,3"', "'1,2,3'")],
)
def test_a_string_where_numbers_belong_is_the_same_error_in_a_file_a_catalog_and_flags(
    key: str, value: str, shown: str, net_dir: Path, photo: Path, tmp_path: Path
) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes((net_dir / "branchy.onnx").read_bytes())
    model.with_suffix(".toml").write_text(f"[preprocess]\n{key} = {value}\n")
    sidecar = run_live("snapshot", "-m", model, "--no-probe", "-i", photo, cwd=tmp_path)
    assert_one_line_error(sidecar, "m.toml", f"preprocess: `{key}` must be", f"got {shown}")
    catalog = tmp_path / "c.toml"
    catalog.write_text(
        '[models.x]\ntitle = "x"\ndescription = "x"\nlicense = "MIT"\nhomepage = "https://example.invalid/"\n'
        f'model = "x.onnx"\nfiles = [{{ name = "x.onnx", url = "http://127.0.0.1:9/x.onnx", verify = false }}]\n'
        f"[models.x.preprocess]\n{key} = {value}\n"
    )
    listed = run_live("models", "list", "--catalog", catalog, cwd=tmp_path)
    assert_one_line_error(listed, "c.toml", "entry x", f"preprocess: `{key}` must be", f"got {shown}")
    message = sidecar.stderr.split(f"preprocess: `{key}` must be")[1]
    assert message == listed.stderr.split(f"preprocess: `{key}` must be")[1]  # the same words wherever it was written


def test_names_from_model_files_are_printed_escaped(tmp_path: Path, photo: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y\x1b[31mred", TensorProto.FLOAT, [1, 3, 8, 8])
    nodes = [helper.make_node("Relu", ["x"], ["mid\nline\x07"], name="r1\x1b]0;title\x07"),
             helper.make_node("Relu", ["mid\nline\x07"], ["y\x1b[31mred"], name="r2\u202e")]  # fmt: skip
    model = helper.make_model(helper.make_graph(nodes, "ctl", [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "ctl.onnx"))
    result = run_live("layers", "-m", tmp_path / "ctl.onnx", "--no-probe", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\u202e" not in result.stdout
    assert len(result.stdout.strip().splitlines()) == 4  # header, input, two layers: a name's newline is escaped
    assert "r1\\x1b]0;title\\x07" in result.stdout and "mid\\nline\\x07" in result.stdout
    bad = run_live("snapshot", "-m", tmp_path / "ctl.onnx", "--no-probe", "-i", photo, "-l", "no\nsuch\x1b",
                   cwd=tmp_path)  # fmt: skip
    assert_one_line_error(bad, "no\\nsuch\\x1b")


# ----------------------------------------------------------------------------- the bytes checked are the bytes loaded


def test_a_model_replaced_while_it_is_checked_is_loaded_as_checked(tmp_path: Path) -> None:
    """A TFLite file overwritten with junk while the crash check runs: the checked bytes load, never the junk.

    The crash-check child itself overwrites the user's file as it starts; the
    parent loads its private copy (made before the check), so the run works
    and no private copy is left behind.
    """
    model = tmp_path / "vww.tflite"
    model.write_bytes(shared_model("vww-96-float.tflite").read_bytes())
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = replacing_probe_env(tmp_path, dict(os.environ, TMPDIR=str(temp)), model, b"TFL3 junk " * 1000)
    result = run_live("layers", "-m", model, "--size", "96", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert model.read_bytes().startswith(b"TFL3 junk")  # it really was replaced during the check
    assert any(layer["tappable"] for layer in json.loads(result.stdout)["layers"])
    assert list(temp.iterdir()) == []  # the private copy is gone
    again = run_live("layers", "-m", model, "--size", "96", cwd=tmp_path, env=env)
    assert_one_line_error(again, "vww.tflite")  # the junk itself is refused when it is what there is


def test_a_target_switch_reloads_the_bytes_that_were_checked(tmp_path: Path) -> None:
    """Reloading for another target (the window's target switch) reads the checked copy, not the file again."""
    from live.app import ModelRequest, open_model
    from live.model import Settings

    model_path = tmp_path / "vww.tflite"
    original = shared_model("vww-96-float.tflite").read_bytes()
    model_path.write_bytes(original)
    settings = Settings(preprocess={"size": (96, 96)})
    model = open_model(ModelRequest(model=str(model_path), settings=settings))
    model_path.write_bytes(b"junk")
    frame = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    reloaded = model.reload(settings.replace(target="cpu"))
    first = model.forward(model.blob(frame))
    second = reloaded.forward(reloaded.blob(frame))
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "1e9", "soon"])
def test_a_probe_time_limit_that_is_not_a_sane_number_is_refused(value: str, net_dir: Path, tmp_path: Path) -> None:
    env = dict(os.environ, LIVE_PROBE_TIMEOUT=value, LIVE_CACHE=str(tmp_path / "cache"))
    result = run_live("layers", "-m", net_dir / "branchy.onnx", cwd=tmp_path, env=env)
    assert_one_line_error(result, "LIVE_PROBE_TIMEOUT", repr(value), "86400")


def test_a_tmpdir_whose_name_is_not_utf8_never_reaches_cv2(net_dir: Path, photo: Path, tmp_path: Path) -> None:
    """$TMPDIR with a byte that is not UTF-8: the classic engine's tap file and a model's private copy go elsewhere."""
    odd = not_utf8(tmp_path, b"tmp\xff")
    odd.mkdir()
    env = dict(os.environ, TMPDIR=str(odd), LIVE_CACHE=str(tmp_path / "cache"))
    from live.engines import HAS_CLASSIC, HAS_ENGINES

    engine = ["--engine", "classic"] if HAS_ENGINES and HAS_CLASSIC else []
    result = run_live(*snapshot(net_dir, "-i", photo, "-o", tmp_path / "g.png", *engine), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "g.png").is_file()
    tflite = tmp_path / "vww.tflite"
    tflite.write_bytes(shared_model("vww-96-float.tflite").read_bytes())
    result = run_live("layers", "-m", tflite, "--size", "96", cwd=tmp_path, env=env)  # checked: a private copy
    assert result.returncode == 0, result.stderr


def test_the_window_stops_trying_after_failures_in_a_row_until_something_changes(net_dir: Path, tmp_path: Path):
    """Without a frame limit (the window's way), frames that all fail put the pipeline on hold, logged once."""
    import logging

    from live.frames import View
    from live.maps import GridOptions
    from live.model import Model, Settings
    from live.pipeline import MAX_FAILED_IN_A_ROW, Phase, Pipeline
    from live.sources import VideoSource

    model = Model.load(net_dir / "two_heads.onnx", Settings(preprocess={"size": (32, 32)}))
    clip = write_clip(tmp_path / "clip.avi", frames=10)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("live.pipeline").addHandler(handler)
    pipeline = Pipeline(model, VideoSource(clip, loop=True, pace="max"), View("lrelu", GridOptions(batch=3)))
    try:
        pipeline.start()
        wait_for(lambda: pipeline.holding, 60, "the pipeline to stop trying")
        assert pipeline.status.phase is Phase.ERROR and "change the layer, source or target" in pipeline.status.message
        assert "batch index 3" in pipeline.holding
        failed = pipeline.stats.snapshot(0)["errors"]
        assert failed == MAX_FAILED_IN_A_ROW
        time.sleep(0.5)  # the video loops on at full speed: nothing more is tried or logged
        assert pipeline.stats.snapshot(0)["errors"] == failed
        assert len([r for r in records if r.levelno >= logging.WARNING]) == failed + 1
        pipeline.set_view(batch=0)  # a change: frames are tried again, and now they work
        wait_for(lambda: pipeline.results.seq > 0, 60, "a result after the change")
        assert pipeline.holding is None
    finally:
        pipeline.close()
        logging.getLogger("live.pipeline").removeHandler(handler)
