"""Helpers the test modules share: plain functions and classes, no fixtures (those live in conftest.py).

The live command run as a child process, the reference comparison of every tap, real clips, and a real
MJPEG camera over HTTP on 127.0.0.1 (:class:`MjpegServer`).

Test modules import from here, never from one another.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto

from live.maps import colormap_lut
from live.model import Model
from live.onnx_graph import OnnxGraph

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}


# ----------------------------------------------------------------------------- models and references


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


def painted(indices: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """What the window draws for uint8 colour indices (H, W): the colormap's RGB, opaque; (H, W, 4) uint8."""
    rgba = np.full((*indices.shape, 4), 255, np.uint8)
    rgba[..., :3] = colormap_lut(cmap)[indices]
    return rgba


def random_frame(model: Model, seed: int = 0) -> np.ndarray:
    """A seeded random BGR frame a little larger than the model's input (so preprocessing resizes it)."""
    w, h = model.preprocess.size
    return np.random.default_rng(seed).integers(0, 256, (h + 37, w + 53, 3), dtype=np.uint8)


def assert_taps_match_reference(path: Path, model: Model, seed: int = 0) -> dict[str, float]:
    """Compare every tappable layer with onnxruntime; return coverage figures."""
    blob = model.blob(random_frame(model, seed))  # a network with dynamic H, W takes the frame's own size
    taps = model.tappable_layers()  # measured at the size in use
    assert taps, "no tappable layer"
    got = model.forward(blob, [layer.name for layer in taps])
    graph = OnnxGraph(onnx.load(str(path)), model.input_shape)
    ref = reference_outputs(
        graph.tap_model([layer.tensor for layer in taps], declare_shapes=False), graph.input_name, blob
    )
    for layer, expected in zip(taps, ref, strict=True):
        actual = got[layer.name]
        assert actual.shape == expected.shape, f"{layer.name}: shape {actual.shape} != reference {expected.shape}"
        assert tuple(layer.shape or ()) == expected.shape, f"{layer.name}: catalog shape {layer.shape}"
        scale = float(np.abs(expected).max()) if expected.size else 0.0
        np.testing.assert_allclose(
            actual.astype(np.float64),
            expected.astype(np.float64),
            rtol=1e-3,
            atol=1e-3 * max(scale, 1e-6),
            err_msg=f"layer {layer.name} ({layer.op}) differs from onnxruntime on the {model.engine} engine",
        )
    # Coverage: every node output is listed; float ones that depend on the input are tappable.
    outputs = [out for out in graph.node_outputs]
    assert len(model.layers) == len(outputs)
    feature = [out for out in outputs if out.elem_type in FLOAT_TYPES and not out.constant and not out.extra]
    tappable = {layer.tensor for layer in taps}
    share = sum(out.tensor in tappable for out in feature) / len(feature)
    assert share >= 0.95, f"only {share:.0%} of float node outputs are tappable"
    return {"listed": len(model.layers), "tappable": len(taps), "float_share": share}


# ----------------------------------------------------------------------------- the command line


def run_live(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m live ARGS` in a fresh process (fresh OpenCL state)."""
    child_env = dict(env if env is not None else os.environ)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), child_env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "live", *map(str, args)],
        capture_output=True,
        text=True,
        env=child_env,
        cwd=cwd,
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("live")
    for needle in needles:
        assert needle in lines[0], lines[0]


# ----------------------------------------------------------------------------- threads, videos


def live_threads() -> list[str]:
    """Names of the package's threads still alive (they are all named ``live-...``)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("live-") and t.is_alive()]


def write_clip(path: Path, frames: int = 30, size: tuple[int, int] = (96, 72), still: bool = False) -> Path:
    """Write a real MJPG video: a bright disc moving across a gradient (or standing still)."""
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


# ----------------------------------------------------------------------------- a real MJPEG camera


class MjpegServer(http.server.ThreadingHTTPServer):
    """A real MJPEG camera on 127.0.0.1: JPEG parts in ``multipart/x-mixed-replace`` over HTTP, as IP cameras send.

    Every connection (any path) gets ``image(0)``, ``image(1)``, ... (BGR uint8 arrays, JPEG-encoded by
    OpenCV), one every ``interval`` seconds:

    * ``frames=None``: until :meth:`stop`. Stopping drops every connection and closes the listening socket, so
      the port refuses connections (the camera went away); a new server can take the same port at once
      (``MjpegServer(image, port=old.port)``: the camera is back).
    * ``frames=N``: N frames, then the server closes the connection; on a path ending in ``/stall`` it keeps
      the connection open and silent instead (until :meth:`stop`, at most ``stall_s``).

    It serves from its own thread from construction on; use it as a context manager or call :meth:`stop`.
    ``sent`` counts the frames sent over all connections.
    """

    daemon_threads = True
    allow_reuse_address = True  # restart on the same port at once

    def __init__(
        self,
        image: Callable[[int], np.ndarray],
        *,
        port: int = 0,
        interval: float = 0.05,
        frames: int | None = None,
        stall_s: float = 10.0,
    ) -> None:
        super().__init__(("127.0.0.1", port), _MjpegHandler)
        self.image = image
        self.interval = interval
        self.frames = frames
        self.stall_s = stall_s
        self.stopping = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self.serve_forever, name="test-mjpeg", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str = "/video.mjpg") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def jpeg(self, index: int) -> bytes:
        ok, jpeg = cv2.imencode(".jpg", self.image(index))
        assert ok
        self.sent += 1
        return jpeg.tobytes()

    def stop(self) -> None:
        """Drop every connection and close the listening socket: the port refuses connections."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self._thread.join(5)

    def __enter__(self) -> MjpegServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _MjpegHandler(http.server.BaseHTTPRequestHandler):
    server: MjpegServer

    def do_GET(self) -> None:
        server = self.server
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            index = 0
            while not server.stopping.is_set() and (server.frames is None or index < server.frames):
                jpeg = server.jpeg(index)
                head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                self.wfile.write(head + jpeg + b"\r\n")
                self.wfile.flush()
                index += 1
                server.stopping.wait(server.interval)
            if self.path.endswith("/stall"):
                server.stopping.wait(server.stall_s)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


def hanging_probe_env(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` plus a sitecustomize that makes multiprocessing's children (the crash-check probe) sleep for 10 min.

    A real hang in the real child process: the parent's time limit, Ctrl-C
    handling and clean-up can be tested on it. The environment's cache folder
    is new, so no earlier test's crash-check verdict skips the check.
    """
    site = folder / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import os, sys, time\n"
        "if '--multiprocessing-fork' in sys.argv and os.environ.get('LIVE_TEST_HANG') == '1':\n"
        "    time.sleep(600)\n"
    )
    out = dict(env, LIVE_TEST_HANG="1", LIVE_CACHE=str(folder / "cache"))  # no verdict from another test
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), out.get("PYTHONPATH", "")]))
    return out


def replacing_probe_env(folder: Path, env: dict[str, str], path: Path, data: bytes) -> dict[str, str]:
    """``env`` plus a sitecustomize that makes the crash-check child write ``data`` over ``path`` as it starts.

    The model file is replaced for real while it is being checked (as a sync
    tool or a finishing download would): what the parent then loads shows
    whether it loads the bytes that were checked. The cache folder is new, so
    the check runs.
    """
    site = folder / "site-replace"
    site.mkdir(exist_ok=True)
    (folder / "replacement.bin").write_bytes(data)
    (site / "sitecustomize.py").write_text(
        "import os, shutil, sys\n"
        "if '--multiprocessing-fork' in sys.argv and os.environ.get('LIVE_TEST_REPLACE'):\n"
        "    target, source = os.environ['LIVE_TEST_REPLACE'].split(os.pathsep)\n"
        "    shutil.copyfile(source, target)\n"
    )
    out = dict(env, LIVE_CACHE=str(folder / "cache-replace"))
    out["LIVE_TEST_REPLACE"] = os.pathsep.join([str(path), str(folder / "replacement.bin")])
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), out.get("PYTHONPATH", "")]))
    return out


def children(pid: int) -> list[tuple[int, str]]:
    """The (pid, command line) of every live child process of ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(entry.name), cmdline))
    return found


def wait_for(condition: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> object:
    """Poll ``condition`` until it is truthy (returns it) or ``timeout`` s pass (fails naming ``what``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"gave up after {timeout:.0f} s waiting for {what}")


# ----------------------------------------------------------------------------- hostile files and places


def not_utf8(folder: Path, name: bytes) -> Path:
    """``folder / name`` for a file name that is not valid UTF-8 (a surrogate-escaped ``str``, as Linux hands it)."""
    return Path(os.fsdecode(os.fsencode(folder) + b"/" + name))


@contextlib.contextmanager
def small_disk(folder: Path, size_kb: int) -> Iterator[Path]:
    """A real file system of ``size_kb`` KiB (tmpfs) mounted on ``folder``, unmounted after; skips where not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount")
    if mount is None:
        pytest.skip("no mount command to make a small file system")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill the file system of ``folder`` to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for block in (4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * block):
                    pass
    finally:
        os.close(fd)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims ``width`` x ``height`` pixels (its data is a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def tall_png(height: int) -> bytes:
    """A real, decodable 1 x ``height`` gray PNG (compresses to a few hundred bytes)."""
    raw = b"".join(b"\0\x80\x80\x80" for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    head = struct.pack(">IIBBBBB", 1, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def npy_claiming(shape: tuple[int, ...], dtype: str = "<f4", data: bytes = b"") -> bytes:
    """A .npy file whose header declares ``shape`` and ``dtype``, followed by ``data`` (usually far too little)."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def patch_avi(data: bytes, *, fps: tuple[int, int] | None = None, frames: int | None = None) -> bytes:
    """An MJPG AVI (as :func:`write_clip` writes) whose header claims another frame rate (rate, scale) or count."""
    out = bytearray(data)
    avih = out.find(b"avih") + 8
    strh = out.find(b"strh") + 8
    if fps is not None:
        rate, scale = fps
        struct.pack_into("<I", out, avih, round(1e6 * scale / rate))
        struct.pack_into("<II", out, strh + 20, scale, rate)
    if frames is not None:
        struct.pack_into("<I", out, avih + 16, frames)
        struct.pack_into("<I", out, strh + 32, frames)
    return bytes(out)


def decoded_frames(path: Path) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(index, time_s, BGR image)`` for each frame OpenCV decodes from the video at ``path``; time is index / fps."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    index = 0
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                return
            yield index, index / fps, image
            index += 1
    finally:
        cap.release()


def playable_frames(path: Path) -> int:
    """How many frames OpenCV decodes from the video at ``path`` (a name cv2 can take)."""
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count
