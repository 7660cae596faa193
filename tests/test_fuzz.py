"""Bad files never crash or hang the `live` command line.

Seeded malformed files (random bytes, truncations, bit flips and byte-range
corruptions of real models, images, tensors and videos) go through the real
CLI in child processes: each must end in time with status 0 or 2, and a
failure must be one ``live: error:`` line (after a ``live: warning:`` line
or two at most), never a traceback, a signal or a decoder's own chatter.

Generated hostile cases (:func:`build_hostile`) try every fault class of
issue 15 with several variants each: file names that are not UTF-8, absurd
numbers, FIFOs, devices and folders where files belong, headers claiming
huge sizes, runs where every frame fails, videos whose headers lie, output
paths that are links, devices or the same file twice. Each must end as above,
and as its class says (a result, or the error naming what was wrong).

The model files OpenCV really crashes on (found by this kind of fuzzing)
are rebuilt here byte for byte, to show that the crash-safe model check
(:mod:`live.guard`) turns a dead process into one error line.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from live.errors import ModelError
from live.guard import TIMEOUT_ENV, probe_model
from live.model import Model, Settings
from tests import nets
from tests.helpers import REPO, SHARED_MODELS, hanging_probe_env, write_clip

CASE_TIMEOUT_S = 60.0
WORKERS = 2  # CLI children run two at a time (this suite targets a 2-core machine)
TFLITE = SHARED_MODELS / "vww-96-float.tflite"


# --------------------------------------------------------------------------- running the CLI


@dataclasses.dataclass
class Outcome:
    """How one `live` child process ended."""

    returncode: int | None  # None: killed for taking too long
    stdout: str
    stderr: str
    seconds: float


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LIVE_DEBUG", TIMEOUT_ENV)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.update(extra or {})
    return env


def live(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = CASE_TIMEOUT_S) -> Outcome:
    """Run `python -m live ARGS`; a child that outlives ``timeout`` is killed and reported as such."""
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "live", *map(str, args)],
            capture_output=True,
            text=True,
            errors="replace",
            env=env if env is not None else _env(),
            cwd=cwd,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return Outcome(None, out, err, time.monotonic() - start)
    return Outcome(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def problem(outcome: Outcome) -> str | None:
    """What is wrong with how a child ended, or None when it ended well (0, or 2 with one `live: error:` line)."""
    code = outcome.returncode
    if code is None:
        return f"still running after {CASE_TIMEOUT_S:.0f} s"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    if code not in (0, 2):
        return f"exit status {code}"
    if "Traceback" in outcome.stderr:
        return "a traceback on stderr"
    lines = outcome.stderr.strip().splitlines()
    if code == 2 and not (lines and lines[-1].startswith("live: error: ")):
        return f"stderr does not end in one `live: error:` line: {outcome.stderr.strip()[-600:]!r}"
    others = [line for line in lines[:-1] if not line.startswith(("live: warning: ", "live: note: "))]
    if code == 2 and others:  # the error is one line; a warning or note line before it is the only other kind
        return f"stderr has more than the error line: {outcome.stderr.strip()[-600:]!r}"
    return None


def assert_crash_reported(outcome: Outcome, signame: str, model: Path) -> None:
    """Status 2 and one line saying OpenCV crashed with ``signame`` on ``model``."""
    assert problem(outcome) is None, problem(outcome)
    assert outcome.returncode == 2, outcome.stdout
    line = outcome.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert line.startswith(f"live: error: OpenCV crashed ({signame}) reading {model}"), line
    assert f"OpenCV {cv2.__version__}" in line and "(engine auto)" in line, line


# --------------------------------------------------------------------------- malformed files


def _flip_bits(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 17))):
        i = int(rng.integers(len(out)))
        out[i] ^= 1 << int(rng.integers(8))
    return bytes(out)


def _corrupt_range(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    start = int(rng.integers(len(out)))
    length = min(int(rng.integers(1, 257)), len(out) - start)
    fill = int(rng.integers(4))
    if fill == 0:
        out[start : start + length] = rng.bytes(length)
    elif fill == 1:
        out[start : start + length] = b"\x00" * length
    elif fill == 2:
        out[start : start + length] = b"\xff" * length
    else:  # a few extreme 32-bit integers: lengths, offsets, dims
        for _ in range(int(rng.integers(1, 5))):
            i = int(rng.integers(max(1, len(out) - 4)))
            out[i : i + 4] = [b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"][
                int(rng.integers(4))
            ]
    return bytes(out)


def _truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


MUTATIONS: dict[str, Callable[[bytes, np.random.Generator], bytes]] = {
    "bitflip": _flip_bits,
    "corrupt": _corrupt_range,
    "truncate": _truncate,
}
MAGIC = {  # random bytes behind the right magic get past the first format check
    ".png": b"\x89PNG\r\n\x1a\n",
    ".jpg": b"\xff\xd8\xff\xe0",
    ".avi": b"RIFF\x00\x10\x00\x00AVI LIST",
    ".mp4": b"\x00\x00\x00\x20ftypisom",
    ".npy": b"\x93NUMPY\x01\x00",
    ".tflite": b"\x1c\x00\x00\x00TFL3",
    ".onnx": b"\x08\x08\x12\x07",
    ".pb": b"\n\x0c\n\x05input",
}


def _picture() -> np.ndarray:
    yy, xx = np.mgrid[0:48, 0:64]
    img = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=-1).astype(np.uint8)
    cv2.circle(img, (40, 20), 10, (0, 220, 255), -1)
    return img


def _mp4(path: Path) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    if not writer.isOpened():  # no MPEG-4 encoder here: MJPG in an .mp4 name still tests the reader
        return write_clip(path.with_suffix(".avi"), frames=8, size=(64, 48)).read_bytes()
    for i in range(8):
        img = _picture()
        img[:, : i * 8] //= 2
        writer.write(img)
    writer.release()
    return path.read_bytes()


def seeds(folder: Path, net_dir: Path) -> dict[str, list[tuple[str, bytes]]]:
    """Real files to corrupt, by extension: (what, bytes)."""
    models = [(name, (net_dir / f"{name}.onnx").read_bytes()) for name in sorted(nets.NETS)]
    npy = io.BytesIO()
    np.save(npy, np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32))
    out = {
        ".onnx": models,
        ".pb": models[:1],  # a protobuf, just not a TensorFlow graph
        ".png": [("png", cv2.imencode(".png", _picture())[1].tobytes())],
        ".jpg": [("jpg", cv2.imencode(".jpg", _picture(), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())],
        ".npy": [("npy", npy.getvalue())],
        ".avi": [("mjpg", write_clip(folder / "seed.avi", frames=8, size=(64, 48)).read_bytes())],
        ".mp4": [("mp4", _mp4(folder / "seed.mp4"))],
    }
    if TFLITE.is_file():
        out[".tflite"] = [("vww", TFLITE.read_bytes())]
    return out


# How many malformed files per extension: random bytes, then each mutation of each seed file.
PLAN = {".onnx": (6, 6), ".tflite": (6, 10), ".pb": (6, 2), ".png": (4, 7), ".jpg": (4, 7),
        ".npy": (4, 5), ".avi": (3, 6), ".mp4": (3, 5)}  # fmt: skip


@dataclasses.dataclass
class Case:
    """One malformed file and the command that reads it."""

    path: Path
    kind: str  # extension without the dot
    how: str  # random, bitflip, corrupt, truncate
    args: list[str | Path]


def build_cases(folder: Path, net_dir: Path, seed: int = 20250611) -> list[Case]:
    """The malformed files, written under ``folder``; the same seed gives the same bytes."""
    rng = np.random.default_rng(seed)
    real = seeds(folder, net_dir)
    net = net_dir / "branchy.onnx"
    cases: list[Case] = []
    for ext, (n_random, n_each) in PLAN.items():
        files: list[tuple[str, bytes]] = []
        for i in range(n_random):
            body = rng.bytes(int(rng.integers(0, 4096)))
            files.append(("random", MAGIC[ext] + body if i % 2 else body))
        for what, data in real.get(ext, []):
            for how, mutate in MUTATIONS.items():
                files += [(f"{what}-{how}", mutate(data, rng)) for _ in range(n_each)]
        for i, (how, data) in enumerate(files):
            path = folder / f"{ext[1:]}-{how}-{i:03d}{ext}"
            path.write_bytes(data)
            out = folder / f"{path.stem}-grid.png"
            if ext in (".onnx", ".pb"):
                args: list[str | Path] = ["layers", "-m", path]
            elif ext == ".tflite":
                args = ["layers", "-m", path, "--size", "96"]
            elif ext in (".png", ".jpg", ".npy"):
                args = ["snapshot", "-m", net, "--no-probe", "-i", path, "-o", out]
            else:
                args = ["run", "--headless", "--source", path, "--frames", "3", "-m", net, "--no-probe",
                        "--pace", "max", "--no-loop"]  # fmt: skip
            cases.append(Case(path, ext[1:], how.rsplit("-", 1)[-1], args))
    return cases


@pytest.mark.timeout(2400)  # about 2 min on 2 quiet cores, 9 to 10 min with both cores kept busy by another process
def test_malformed_files_never_crash_or_hang_the_cli(net_dir: Path, tmp_path: Path) -> None:
    cases = build_cases(tmp_path, net_dir)
    assert len(cases) >= 200
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(lambda case: live(*case.args, cwd=tmp_path), cases))
    elapsed = time.monotonic() - start

    summary: collections.Counter[tuple[str, str]] = collections.Counter()
    failures = []
    for case, outcome in zip(cases, outcomes, strict=True):
        wrong = problem(outcome)
        if wrong is not None:
            result = "BAD"
            failures.append(f"{case.path.name} ({' '.join(map(str, case.args[:1]))}): {wrong}")
        elif outcome.returncode == 0:
            result = "ok"
        elif "OpenCV crashed" in outcome.stderr:
            result = "crash caught"
        else:
            result = "error"
        summary[(case.kind, result)] += 1
    kinds = sorted({kind for kind, _ in summary})
    results = ("ok", "error", "crash caught", "BAD")
    print(f"\nfuzz: {len(cases)} malformed files in {elapsed:.0f} s, {WORKERS} at a time")
    print(f"  {'kind':<8}" + "".join(f"{r:>14}" for r in results))
    for kind in kinds:
        print(f"  {kind:<8}" + "".join(f"{summary[(kind, r)]:>14}" for r in results))
    slowest = max(outcomes, key=lambda o: o.seconds)
    print(f"  slowest child: {slowest.seconds:.1f} s")
    assert not failures, f"{len(failures)} of {len(cases)} files broke the CLI:\n" + "\n".join(failures)


# --------------------------------------------------------------------------- hostile cases, one class at a time


@dataclasses.dataclass
class Hostile:
    """One generated hostile case: the command, and what else must hold once it ended (None: it did)."""

    kind: str  # the fault class
    what: str  # this variant, for the report
    args: list[str | Path]
    check: Callable[[Outcome], str | None]


def _expect(code: int, *needles: str) -> Callable[[Outcome], str | None]:
    """Ended with ``code``; on 2, the error line holds every needle."""

    def check(outcome: Outcome) -> str | None:
        if outcome.returncode != code:
            return f"exit status {outcome.returncode}, expected {code}: {outcome.stderr.strip()[-300:]!r}"
        last = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else ""
        missing = [n for n in needles if n not in last]
        return f"the error line lacks {missing}: {last!r}" if missing else None

    return check


def _and(*checks: Callable[[Outcome], str | None]) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        return next((wrong for c in checks if (wrong := c(outcome)) is not None), None)

    return check


def _holds(condition: Callable[[], bool], what: str) -> Callable[[Outcome], str | None]:
    return lambda _: None if condition() else what


def _odd_name(rng: np.random.Generator, ext: bytes) -> bytes:
    """A file name that is not valid UTF-8: ASCII around 1 to 4 bytes no UTF-8 sequence may hold."""
    bad = bytes(int(b) for b in rng.choice(np.r_[0x80:0xC0, 0xF8:0x100], int(rng.integers(1, 5))))
    return b"f" + bytes(int(b) for b in rng.integers(0x61, 0x7B, int(rng.integers(0, 4)))) + bad + ext


def _png_claiming(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _header_claiming(fmt: str, width: int, height: int) -> bytes:
    """An image file of a few dozen bytes whose header claims ``width`` x ``height`` pixels."""
    import struct

    if fmt == "png":
        return _png_claiming(width, height)
    if fmt == "bmp":
        return (
            b"BM"
            + struct.pack("<IHHI", 54, 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
        )
    if fmt == "gif":
        return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"
    sof = struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xc0" + sof + b"\xff\xd9"  # jpeg


def _npy_claiming(shape: tuple[int, ...], dtype: str) -> bytes:
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 64


NUMERIC = {  # option: (command, the range its message states)
    "--record-fps": ("run", "1 to 240"),
    "--interval": ("run", "0.01 to 86400"),
    "--frames": ("run", "1 to 1000000000"),
    "--threads": ("snapshot", "1 to 1024"),
    "--pad": ("snapshot", "0 to 64"),
    "--zoom": ("snapshot", "1 to 64"),
    "--max-size": ("snapshot", "1 to 16384"),
    "--batch": ("snapshot", "0 to 65535"),
    "--size": ("snapshot", "16777216"),
    "--mean": ("snapshot", "-1e6..1e6"),
    "--std": ("snapshot", "-1e6..1e6"),
    "--percentiles": ("snapshot", "0 to 100"),
    "--range": ("snapshot", "1e+30"),
}
ABSURD = ["inf", "-inf", "nan", "1e308", "-1e308", "1e400", "99999999999999999999", "-99999999999999999999",
          "2147483648", "4294967296"]  # fmt: skip


def build_hostile(folder: Path, net_dir: Path, seed: int = 20251201) -> list[Hostile]:
    """Generated variants of every fault class of issue 15, with the files they need written under ``folder``."""
    rng = np.random.default_rng(seed)
    net = net_dir / "branchy.onnx"
    dyn = net_dir / "two_heads.onnx"
    photo = folder / "photo.png"
    cv2.imwrite(str(photo), _picture())
    clip = write_clip(folder / "clip.avi", frames=8, size=(64, 48))
    np.save(folder / "t.npy", np.zeros((1, 3, 32, 32), np.float32))
    snap = ["snapshot", "-m", net, "--no-probe", "-i", photo]
    cases: list[Hostile] = []

    def run(source: str | Path, *args: str | Path) -> list[str | Path]:
        return ["run", "--headless", "-m", dyn, "--size", "32", "--no-probe", "-s", source, "--frames", "2", *args]

    # File names that are not UTF-8, for every option that takes a path.
    odd_dir = Path(os.fsdecode(os.fsencode(folder) + b"/" + _odd_name(rng, b"")))
    odd_dir.mkdir()
    for i in range(18):
        option = ["--source", "--input", "--out", "--npy", "--seen", "--record", "--stats-json", "--model",
                  "--snapshot-dir", "--describe"][i % 10]  # fmt: skip
        ext = {"--source": [b".avi", b".png", b""][i % 3], "--input": [b".png", b".npy"][i % 2], "--out": b".png",
               "--npy": b".npy", "--seen": b".jpg", "--record": [b".avi", b".mp4"][i % 2], "--stats-json": b".json",
               "--model": b".onnx", "--snapshot-dir": b"", "--describe": b".toml"}[option]  # fmt: skip
        path = Path(os.fsdecode(os.fsencode(odd_dir if i % 2 else folder) + b"/" + _odd_name(rng, ext)))
        if option == "--source":
            if ext == b"":
                path.mkdir()
                cv2.imencode(".png", _picture())[1].tofile(path / "a.png")
            else:
                path.write_bytes((clip if ext == b".avi" else photo).read_bytes())
            args, made = run(path), None
        elif option == "--input":
            path.write_bytes((folder / "t.npy" if ext == b".npy" else photo).read_bytes())
            args, made = ["snapshot", "-m", net, "--no-probe", "-i", path, "-o", folder / f"n{i}.png"], None
        elif option in ("--out", "--npy", "--seen"):
            out = ["-o", folder / f"n{i}.png"] if option != "--out" else []
            args, made = [*snap, *out, option, path], path
        elif option == "--model":
            path.write_bytes(net.read_bytes())
            args, made = ["snapshot", "-m", path, "-i", photo, "-o", folder / f"n{i}.png"], None
        elif option == "--describe":
            path.write_text("[preprocess]\nmean = [1, 2, 3]\n")
            args, made = [*snap, "-o", folder / f"n{i}.png", "--describe", path], None
        else:
            args, made = run(photo, option, path), path
        exists = (lambda p: lambda: p.exists())(made) if made is not None else (lambda: True)
        cases.append(Hostile("name", option, args, _and(_expect(0), _holds(exists, f"{made} was not written"))))

    # Absurd numbers, for every numeric option.
    for i in range(26):
        option = list(NUMERIC)[i % len(NUMERIC)]
        command, bound = NUMERIC[option]  # stated where the value is out of range; else "not a number"
        value = ABSURD[int(rng.integers(len(ABSURD)))]
        if option in ("--percentiles", "--range"):  # two values: a negative one would read as an option
            given = [option, value.lstrip("-"), ABSURD[int(rng.integers(len(ABSURD)))].lstrip("-")]
        elif option == "--size":
            given = [option, f"{int(rng.integers(4097, 16385))}x{int(rng.integers(4097, 16385))}"]
        else:
            given = [f"{option}={value}"]
        base = [*snap, "-o", folder / f"x{i}.png"] if command == "snapshot" else run(photo)[:-2]
        check = _and(_expect(2, option), _any_of(bound, "not a number", "not an integer", "LO < HI"))
        cases.append(Hostile("number", " ".join(given), [*base, *given], check))

    # FIFOs, devices, sockets and folders where a file is expected.
    import socket

    sock_path = folder / "sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(sock_path))
    specials = {"fifo": None, "/dev/zero": Path("/dev/zero"), "/dev/null": Path("/dev/null"), "folder": odd_dir,
                "socket": sock_path}  # fmt: skip
    for i in range(15):
        name = list(specials)[i % len(specials)]
        path = specials[name]
        if path is None:
            path = folder / f"fifo{i}"
            os.mkfifo(path)
        where = ["--source", "--input", "--describe", "labels", "--catalog", "--model"][int(rng.integers(6))]
        if where == "--source" and name == "folder":
            where = "--input"
        if where == "--source":
            args = run(path)
        elif where == "--input":
            args = ["snapshot", "-m", net, "--no-probe", "-i", path, "-o", folder / f"s{i}.png"]
        elif where == "--describe":
            args = [*snap, "-o", folder / f"s{i}.png", "--describe", path]
        elif where == "labels":
            described = folder / f"labels{i}.toml"
            described.write_text(f"labels = {json.dumps(str(path))}\n")
            args = [*snap, "-o", folder / f"s{i}.png", "--describe", described]
        elif where == "--catalog":
            args = ["models", "list", "--catalog", path]
        else:
            args = ["layers", "-m", path]
        cases.append(Hostile("special", f"{name} as {where}", args, _expect(2, "not a ")))

    # Headers that claim far more than they hold.
    for i in range(14):
        if i % 3 == 2:
            shape = tuple(int(d) for d in rng.integers(10_000, 10_000_000, int(rng.integers(2, 5))))
            path = folder / f"claim{i}.npy"
            path.write_bytes(_npy_claiming(shape, ["<f4", "<f8", "|u1", "<i8"][i % 4]))
            needle = "the most live reads is"
        else:
            fmt = ["png", "bmp", "gif", "jpeg"][i % 4]
            side = int(rng.integers(8193, 65535))
            path = folder / f"claim{i}.{ {'jpeg': 'jpg'}.get(fmt, fmt) }"
            path.write_bytes(_header_claiming(fmt, side, int(rng.integers(8193, 65535))))
            needle = "megapixels"
        args = ["snapshot", "-m", net, "--no-probe", "-i", path, "-o", folder / f"h{i}.png"]
        cases.append(Hostile("header", path.suffix, args, _expect(2, path.name, needle)))
    for i in range(4):  # legal but extreme shapes: bounded work, a result
        side = int(rng.integers(5000, 16000))
        shape = (1, side) if i % 2 else (side, 1)
        path = folder / f"thin{i}.png"
        cv2.imencode(".png", np.full((*shape, 3), 90, np.uint8))[1].tofile(path)
        args = ["snapshot", "-m", dyn, "--no-probe", "-i", path, "--size", "224", "--crop", "center",
                "-o", folder / f"t{i}.png"]  # fmt: skip
        cases.append(Hostile("header", f"{shape[1]}x{shape[0]} center crop", args, _expect(0)))

    # Runs that can never produce a result; videos whose headers lie.
    for _ in range(4):
        batch = int(rng.integers(1, 9))
        args = ["run", "--headless", "-m", dyn, "--size", "32", "--no-probe", "-s", clip, "--batch", str(batch),
                "--pace", "max"]  # fmt: skip
        cases.append(Hostile("fails", f"--batch {batch}", args, _expect(2, "frames in a row failed")))
    for i in range(2):
        banner = folder / f"banner{i}.png"
        cv2.imencode(".png", np.full((1, int(rng.integers(64, 4000)), 3), 120, np.uint8))[1].tofile(banner)
        args = ["run", "--headless", "-m", dyn, "--size", "32", "--no-probe", "-s", banner, "--crop", "letterbox"]
        cases.append(Hostile("fails", "letterbox 1xN", args, _expect(2, "frames in a row failed")))
    for i in range(6):
        data = clip.read_bytes()
        if i % 2:
            rate, scale = [(1, 3600), (1, 100000), (5000, 1), (1000000, 1), (1, 7), (3, 1)][i]
            lied = _patch_avi(data, fps=(rate, scale))
            what = f"{rate}/{scale} fps"
        else:
            count = int(rng.integers(9, 100000))
            lied = _patch_avi(data, frames=count)
            what = f"{count} frames claimed"
        path = folder / f"lie{i}.avi"
        path.write_bytes(lied)
        args = ["run", "--headless", "-m", dyn, "--size", "32", "--no-probe", "-s", path, "--frames", "12"]
        cases.append(Hostile("video", what, args, _and(_expect(0), _no_word("damaged"))))

    # Output paths that are not plain new files.
    target = folder / "target.json"
    for i in range(10):
        kind = ["symlink", "dangling", "to-devnull", "devnull", "folder", "fifo", "twice", "input"][i % 8]
        path = folder / f"out{i}.json"
        if kind == "symlink":
            target.write_text("{}")
            path.symlink_to(target)
            check = _and(_expect(0), _holds(lambda p=path: p.is_symlink() and "frames" in target.read_text(), "link"))
        elif kind == "dangling":
            path.symlink_to(folder / f"made{i}.json")
            check = _and(_expect(0), _holds(lambda i=i: (folder / f"made{i}.json").is_file(), "not created"))
        elif kind == "to-devnull":
            path.symlink_to(os.devnull)
            check = _and(_expect(0), _holds(lambda: Path(os.devnull).is_char_device(), "/dev/null replaced"))
        elif kind == "devnull":
            path = Path(os.devnull)
            check = _and(_expect(0), _holds(lambda: Path(os.devnull).is_char_device(), "/dev/null replaced"))
        elif kind == "folder":
            path = odd_dir
            check = _expect(2, "is a directory")
        elif kind == "fifo":
            os.mkfifo(path)
            check = _and(_expect(2, "no process reads from that FIFO"), _holds(path.is_fifo, "the FIFO was replaced"))
        elif kind == "twice":
            cases.append(
                Hostile("output", kind, run(photo, "--stats-json", path, "--record", path), _expect(2, "both"))
            )
            continue
        else:
            cases.append(Hostile("output", kind, [*snap, "-o", photo], _expect(2, "both")))
            continue
        cases.append(Hostile("output", kind, run(photo, "--stats-json", path), check))
    return cases


def _any_of(*needles: str) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        return None if any(n in outcome.stderr for n in needles) else f"none of {needles}: {outcome.stderr[-300:]!r}"

    return check


def _no_word(word: str) -> Callable[[Outcome], str | None]:
    return lambda outcome: f"{word!r} on stderr: {outcome.stderr.strip()[-300:]!r}" if word in outcome.stderr else None


def _patch_avi(data: bytes, *, fps: tuple[int, int] | None = None, frames: int | None = None) -> bytes:
    import struct

    out = bytearray(data)
    avih, strh = out.find(b"avih") + 8, out.find(b"strh") + 8
    if fps is not None:
        struct.pack_into("<I", out, avih, min(2**32 - 1, round(1e6 * fps[1] / fps[0])))
        struct.pack_into("<II", out, strh + 20, fps[1], fps[0])
    if frames is not None:
        struct.pack_into("<I", out, avih + 16, frames)
        struct.pack_into("<I", out, strh + 32, frames)
    return bytes(out)


def test_hostile_cases_of_every_class_never_crash_hang_or_lose_output(net_dir: Path, tmp_path: Path) -> None:
    cases = build_hostile(tmp_path, net_dir)
    kinds = collections.Counter(case.kind for case in cases)
    assert min(kinds.values()) >= 6 and len(kinds) == 7, kinds
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(lambda case: live(*case.args, cwd=tmp_path), cases))
    elapsed = time.monotonic() - start
    failures = []
    summary: collections.Counter[tuple[str, str]] = collections.Counter()
    for case, outcome in zip(cases, outcomes, strict=True):
        # An option refused by the parser reads `live run: error: argument --x: ...`: one line all the same.
        judged = dataclasses.replace(outcome, stderr=re.sub(r"^live \w+: error: ", "live: error: ", outcome.stderr))
        wrong = problem(judged) or case.check(outcome)
        summary[(case.kind, "BAD" if wrong else "ok" if outcome.returncode == 0 else "error")] += 1
        if wrong is not None:
            failures.append(f"{case.kind} ({case.what}): {wrong}")
    print(f"\nhostile: {len(cases)} generated cases in {elapsed:.0f} s, {WORKERS} at a time")
    print(f"  {'class':<8}" + "".join(f"{r:>10}" for r in ("ok", "error", "BAD")))
    for kind in kinds:
        print(f"  {kind:<8}" + "".join(f"{summary[(kind, r)]:>10}" for r in ("ok", "error", "BAD")))
    print(f"  slowest child: {max(o.seconds for o in outcomes):.1f} s")
    assert not failures, f"{len(failures)} of {len(cases)} hostile cases went wrong:\n" + "\n".join(failures)


# --------------------------------------------------------------------------- real OpenCV crashes


def _avgpool_stride_zero(folder: Path) -> Path:
    """tests/nets.py's branchy net with its AveragePool stride (2, 0): one byte of the file changed.

    The new engine divides by that stride and dies with SIGFPE (OpenCV 5.0);
    the classic engine refuses it with an assertion.
    """
    model = nets.branchy()
    (pool,) = [node for node in model.graph.node if node.name == "pool"]
    (strides,) = [attr for attr in pool.attribute if attr.name == "strides"]
    strides.ints[1] = 0
    path = folder / "stride0.onnx"
    onnx.save(model, str(path))
    return path


def _tflite_bit_flip(folder: Path) -> Path:
    """vww-96-float.tflite with bit 2 of byte 833539 flipped (a 32-bit field 0x10 -> 0x04000010).

    Found by seeded bit-flip fuzzing; OpenCV 5.0's TFLite importer then reads
    out of bounds and dies with SIGSEGV, on the classic and the new engine.
    """
    if not TFLITE.is_file():
        pytest.skip(f"{TFLITE} not present (../shared/models is optional)")
    data = bytearray(TFLITE.read_bytes())
    assert len(data) == 866284, "not the vww-96-float.tflite this reproducer was found on"
    data[833539] ^= 1 << 2
    path = folder / "vww-flipped.tflite"
    path.write_bytes(bytes(data))
    return path


CRASHERS = {"onnx-avgpool-stride0": (_avgpool_stride_zero, "SIGFPE"), "tflite-bit-flip": (_tflite_bit_flip, "SIGSEGV")}


@pytest.mark.parametrize("name", list(CRASHERS))
def test_a_model_opencv_crashes_on_is_one_error_line(name: str, tmp_path: Path) -> None:
    build, signame = CRASHERS[name]
    model = build(tmp_path)
    unguarded = live("layers", "-m", model, "--no-probe", cwd=tmp_path)
    if unguarded.returncode is None or unguarded.returncode >= 0:
        pytest.skip(f"OpenCV {cv2.__version__} no longer crashes on {name} (status {unguarded.returncode})")
    assert unguarded.returncode == -getattr(signal, signame)  # a real crash, without the check

    assert_crash_reported(live("layers", "-m", model, cwd=tmp_path), signame, model)
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), _picture())
    out = tmp_path / "grid.png"
    assert_crash_reported(live("snapshot", "-m", model, "-i", photo, "-o", out, cwd=tmp_path), signame, model)
    assert not out.exists()


# --------------------------------------------------------------------------- bugs the fuzzing found


def _onnx_name_not_utf8(folder: Path) -> Path:
    """two_heads with the name ``embedding`` made invalid UTF-8 (protobuf then hands it over as bytes)."""
    data = nets.two_heads().SerializeToString()
    path = folder / "not-utf8.onnx"
    path.write_bytes(data.replace(b"embedding", b"embe\xff\xff\xff\xffg"))
    return path


def _tflite_name_not_utf8(folder: Path) -> Path:
    """vww-96-float.tflite with four bytes of a layer name set to 0xff (cv2 cannot hand that name to Python)."""
    if not TFLITE.is_file():
        pytest.skip(f"{TFLITE} not present (../shared/models is optional)")
    data = TFLITE.read_bytes()
    at = data.index(b"model/dense/MatMul") + len(b"model/")
    path = folder / "not-utf8.tflite"
    path.write_bytes(data[:at] + b"\xff" * 4 + data[at + 4 :])
    return path


@pytest.mark.parametrize("build", [_onnx_name_not_utf8, _tflite_name_not_utf8], ids=["onnx", "tflite"])
@pytest.mark.parametrize("probe", [True, False], ids=["checked", "unchecked"])
def test_a_name_that_is_not_utf8_is_one_error_line(build, probe: bool, tmp_path: Path) -> None:
    model = build(tmp_path)
    result = live("layers", "-m", model, *([] if probe else ["--no-probe"]), cwd=tmp_path)
    assert problem(result) is None, problem(result)
    assert result.returncode == 2
    assert "not valid UTF-8" in result.stderr and "LIVE_DEBUG" not in result.stderr, result.stderr


# --------------------------------------------------------------------------- the check itself


@pytest.fixture
def hang_in_probe(tmp_path: Path) -> dict[str, str]:
    """An environment whose probe children really hang (see tests.helpers.hanging_probe_env), timing out in 2 s."""
    return hanging_probe_env(tmp_path, _env({TIMEOUT_ENV: "2"}))


def test_a_model_check_that_hangs_gives_up_in_time(net_dir: Path, tmp_path: Path, hang_in_probe) -> None:
    model = net_dir / "two_heads.onnx"
    result = live("layers", "-m", model, "--size", "32", cwd=tmp_path, env=hang_in_probe, timeout=30)
    assert problem(result) is None, problem(result)
    assert result.returncode == 2
    assert result.stderr.strip() == f"live: error: reading {model} took over 2 s; gave up"
    assert result.seconds < 20


def test_no_probe_and_the_bundled_model_skip_the_check(net_dir: Path, tmp_path: Path, hang_in_probe) -> None:
    model = net_dir / "two_heads.onnx"
    unchecked = live("layers", "-m", model, "--size", "32", "--no-probe", cwd=tmp_path, env=hang_in_probe)
    assert unchecked.returncode == 0, unchecked.stderr
    bundled = live("layers", "--json", cwd=tmp_path, env=hang_in_probe)
    assert bundled.returncode == 0, bundled.stderr


def test_the_probe_child_loads_with_the_very_settings_given(net_dir: Path) -> None:
    """The child is handed the Settings value itself: what it refuses, the parent refuses in the same words."""
    too_big = Settings(engine="auto", preprocess={"size": (64, 64)})  # branchy takes 32x32
    with pytest.raises(ModelError) as in_child:
        probe_model(net_dir / "branchy.onnx", too_big, 60)
    with pytest.raises(ModelError) as here:
        Model.load(net_dir / "branchy.onnx", too_big)
    assert str(in_child.value) == str(here.value) and "does not fit" in str(here.value)
    probe_model(net_dir / "branchy.onnx", Settings(preprocess={"size": (32, 32)}), 60)  # fits: no error


def test_a_checked_file_is_not_checked_again(net_dir: Path, tmp_path: Path, hang_in_probe) -> None:
    """A pass is kept per (bytes, OpenCV, settings): the same file loads again without a child; changed bytes
    or other settings are checked again (here the check hangs, so a check that runs shows as the time-out)."""
    model = tmp_path / "net.onnx"
    model.write_bytes((net_dir / "two_heads.onnx").read_bytes())
    checked = _env({"LIVE_CACHE": hang_in_probe["LIVE_CACHE"]})
    first = live("layers", "-m", model, "--size", "32", cwd=tmp_path, env=checked)
    assert first.returncode == 0, first.stderr
    again = live("layers", "-m", model, "--size", "32", cwd=tmp_path, env=hang_in_probe)
    assert again.returncode == 0, again.stderr  # no child: the hanging one would have timed out
    other = live("layers", "-m", model, "--size", "48", cwd=tmp_path, env=hang_in_probe)
    assert other.returncode == 2 and "took over 2 s" in other.stderr, other.stderr
    changed = onnx.load(str(model))
    weights = onnx.numpy_helper.to_array(changed.graph.initializer[0]).copy()
    weights.flat[0] += 1.0
    changed.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(weights, changed.graph.initializer[0].name))
    onnx.save(changed, str(model))
    replaced = live("layers", "-m", model, "--size", "32", cwd=tmp_path, env=hang_in_probe)
    assert replaced.returncode == 2 and "took over 2 s" in replaced.stderr, replaced.stderr


def test_a_catalog_file_that_still_has_its_hash_needs_no_check(net_dir: Path, tmp_path: Path, hang_in_probe) -> None:
    """The catalog verified the file's sha256: the same bytes load without a child; other bytes are checked."""
    import hashlib

    data = (net_dir / "two_heads.onnx").read_bytes()
    cache = Path(hang_in_probe["LIVE_CACHE"])
    (cache / "models" / "heads").mkdir(parents=True)
    cached = cache / "models" / "heads" / "two_heads.onnx"
    cached.write_bytes(data)
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[models.heads]\ntitle = "t"\ndescription = "d"\nlicense = "MIT"\nhomepage = "https://example.org"\n'
        'model = "two_heads.onnx"\npreprocess = { size = [32, 32] }\n'
        f'files = [{{ name = "two_heads.onnx", url = "https://example.org/h.onnx", '
        f'sha256 = "{hashlib.sha256(data).hexdigest()}", size = {len(data)} }}]\n'
    )
    env = dict(hang_in_probe, LIVE_CATALOG=str(catalog))
    trusted = live("layers", "-m", "heads", cwd=tmp_path, env=env)
    assert trusted.returncode == 0, trusted.stderr
    tampered = bytearray(data)
    tampered[-40] ^= 0x01  # same size (the cache's own check), other bytes
    cached.write_bytes(bytes(tampered))
    checked = live("layers", "-m", "heads", cwd=tmp_path, env=env)
    assert checked.returncode == 2 and "took over 2 s" in checked.stderr, checked.stderr
