"""Make ``data/demo.mp4``: a short clip of real photos for ``live --source`` to show.

The clip is a slideshow of five photos that ship with scikit-image
(``skimage/data``; all public domain or CC0, see ``data/DEMO_NOTICE.md``):
a cat (``chelsea.png``), a cup of coffee (``coffee.png``), a rocket launch
(``rocket.jpg``), an astronaut (``astronaut.png``) and the Hubble deep field
(``hubble_deep_field.jpg``). Each photo is shown for a few seconds with a slow
Ken Burns pan and zoom, and dissolves into the next with a short cross-fade,
so that a network's feature maps respond to real scenes that move a little.

* Motion is sub-pixel smooth: every frame is one ``cv2.warpAffine`` of the
  photo with a float transform (zoom interpolated in log space, so it looks
  steady; the view centre moves linearly). Photos larger than needed are first
  shrunk with ``INTER_AREA`` so the warp only ever enlarges (no aliasing). The
  warp is bilinear: against bicubic it looks the same at these zooms but makes
  a file some 15 % smaller (``mp4v`` as OpenCV writes it runs at a fixed high
  quality, so the file's size follows how much detail changes per frame).
* The clip loops seamlessly: its last second dissolves back into the first
  photo, exactly where frame 0 picks up (video sources in ``live`` loop).
* Frames depend only on the photos and the arguments (no randomness), so the
  same library versions give the same frames every run.

The written file is read back with ``cv2.VideoCapture`` (frame count, frame
size, and a few frames compared with what was rendered); if that check fails
the script prints a one-line error, leaves any previous clip in place and
exits with status 1.

Run from anywhere::

    python tools/make_demo_clip.py                       # writes data/demo.mp4
    python tools/make_demo_clip.py --fps 15 --seconds-per-photo 4 --size 480x360 --out /tmp/clip.mp4

No H.264 encoder is assumed: the clip is MPEG-4 Part 2 (fourcc ``mp4v``) in
an ``.mp4`` container, which OpenCV's FFmpeg backend can both write and read.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import skimage

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "data" / "demo.mp4"
PHOTO_DIR = Path(skimage.__file__).resolve().parent / "data"
FOURCC = "mp4v"
FADE_SECONDS = 1.0  # cross-fade length (at most half the time a photo is shown)
MIN_PSNR_DB = 25.0  # a decoded check frame must be at least this close to the rendered one
SIZE_WARN_MB = 4.0  # above this, print a warning (the clip is meant to be small enough to commit)


@dataclasses.dataclass(frozen=True)
class View:
    """Where the camera looks: a point of the photo and a zoom.

    Attributes:
        x: horizontal centre of the view, as a fraction of the photo's width (0 = left edge).
        y: vertical centre of the view, as a fraction of the photo's height (0 = top edge).
        zoom: 1.0 = the photo just covers the frame (cropped to the frame's aspect ratio);
            2.0 = twice as close. Values below 1 are raised to 1.
    """

    x: float
    y: float
    zoom: float


@dataclasses.dataclass(frozen=True)
class Shot:
    """One photo and its Ken Burns move, from ``start`` to ``end``."""

    filename: str
    start: View
    end: View


# Chosen by eye; ImageNet classes in brackets. Order: cat and coffee first, so a
# classifier's labels are easy to check at the start of the clip.
SHOTS: tuple[Shot, ...] = (
    Shot("chelsea.png", View(0.50, 0.50, 1.00), View(0.56, 0.42, 1.35)),  # tabby cat, moving in to the face
    Shot("coffee.png", View(0.47, 0.36, 1.40), View(0.50, 0.52, 1.02)),  # espresso/cup, pulling back to the saucer
    Shot("rocket.jpg", View(0.53, 0.62, 1.55), View(0.50, 0.45, 1.05)),  # rocket launch pad, up and out
    Shot("astronaut.png", View(0.45, 0.33, 1.25), View(0.55, 0.62, 1.00)),  # face down to the suit and helmet
    Shot("hubble_deep_field.jpg", View(0.50, 0.50, 1.00), View(0.42, 0.46, 1.45)),  # deep field, slow zoom in
)


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)``; both even and at least 16 (MPEG-4 needs even sizes)."""
    parts = text.lower().split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 640x480, not {text!r}") from None
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"size must be even and at least 16x16, not {text!r}")
    return width, height


def positive_float(text: str) -> float:
    """A finite float > 0, for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text!r}")
    return value


def load_photo(filename: str, size: tuple[int, int]) -> np.ndarray:
    """Read a photo from scikit-image's data folder as BGR uint8, shrunk (never enlarged) to just cover ``size``."""
    path = PHOTO_DIR / filename
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {path} (is scikit-image installed with its data?)")
    height, width = image.shape[:2]
    cover = max(size[0] / width, size[1] / height)
    if cover < 1.0:
        new_size = (max(size[0], round(width * cover)), max(size[1], round(height * cover)))
        image = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA)
    return image


def view_transform(photo_shape: tuple[int, ...], view: View, size: tuple[int, int]) -> np.ndarray:
    """The 2x3 float affine matrix taking photo pixels to frame pixels for ``view``.

    The view is clamped so the frame never shows anything outside the photo.
    Pixel centres sit at integer coordinates (OpenCV's convention): with the
    photo spanning ``[0, w]`` in continuous coordinates, frame pixel ``u``
    shows continuous photo point ``cx + (u + 0.5 - W / 2) / s``.
    """
    height, width = photo_shape[:2]
    out_w, out_h = size
    scale = max(out_w / width, out_h / height) * max(view.zoom, 1.0)  # frame pixels per photo pixel
    half_w, half_h = out_w / (2 * scale), out_h / (2 * scale)  # half the view, in photo pixels
    cx = min(max(view.x * width, half_w), width - half_w)
    cy = min(max(view.y * height, half_h), height - half_h)
    return np.array(
        [
            [scale, 0.0, scale * (0.5 - cx) + out_w / 2 - 0.5],
            [0.0, scale, scale * (0.5 - cy) + out_h / 2 - 0.5],
        ],
        dtype=np.float64,
    )


def interpolate(start: View, end: View, t: float) -> View:
    """The view a fraction ``t`` (0..1) of the way along a shot: centre linear, zoom geometric."""
    return View(
        x=start.x + (end.x - start.x) * t,
        y=start.y + (end.y - start.y) * t,
        zoom=math.exp(math.log(max(start.zoom, 1.0)) * (1 - t) + math.log(max(end.zoom, 1.0)) * t),
    )


def render_shot(photo: np.ndarray, shot: Shot, t: float, size: tuple[int, int]) -> np.ndarray:
    """One frame (BGR float32) of ``shot`` at fraction ``t`` of its move."""
    matrix = view_transform(photo.shape, interpolate(shot.start, shot.end, t), size)
    frame = cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return frame.astype(np.float32)


def smoothstep(x: float) -> float:
    """0 at x <= 0, 1 at x >= 1, smooth (zero slope at both ends) between."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def render_frames(
    photos: Sequence[np.ndarray], size: tuple[int, int], fps: float, seconds_per_photo: float
) -> Iterator[np.ndarray]:
    """Yield every frame of the clip, BGR uint8.

    Photo ``i`` is on screen from ``i * T - F`` to ``(i + 1) * T`` (``T`` seconds
    per photo, ``F`` the fade), moving all that time; over its first ``F``
    seconds it fades in over photo ``i - 1``. Photo 0's fade-in wraps round to
    the end of the clip, so the last frames dissolve into frame 0 and the clip
    loops without a jump.
    """
    count = len(photos)
    n_frames = round(count * seconds_per_photo * fps)
    # A whole number of frames: stretch the photos' time a hair so the loop closes exactly.
    seconds_per_photo = n_frames / (fps * count)
    fade = min(FADE_SECONDS, seconds_per_photo / 2)
    span = seconds_per_photo + fade  # how long each photo moves
    for k in range(n_frames):
        now = k / fps
        index = min(int(now // seconds_per_photo), count - 1)
        # Time since photo `index` started moving (it starts `fade` before its slot).
        local = now - index * seconds_per_photo + fade
        frame = render_shot(photos[index], SHOTS[index], local / span, size)
        into_next = now - ((index + 1) * seconds_per_photo - fade)  # > 0 once the next photo fades in
        if into_next > 0:
            following = (index + 1) % count
            alpha = smoothstep(into_next / fade)
            incoming = render_shot(photos[following], SHOTS[following], into_next / span, size)
            frame = cv2.addWeighted(incoming, alpha, frame, 1.0 - alpha, 0.0)
        yield np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def write_clip(
    path: Path, frames: Iterator[np.ndarray], size: tuple[int, int], fps: float, check_at: set[int]
) -> tuple[int, dict[int, np.ndarray]]:
    """Write ``frames`` to ``path``; return how many, and copies of those whose index is in ``check_at``."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {FOURCC!r} video to {path}")
    kept: dict[int, np.ndarray] = {}
    count = 0
    try:
        for frame in frames:
            writer.write(frame)
            if count in check_at:
                kept[count] = frame.copy()
            count += 1
    finally:
        writer.release()
    return count, kept


def verify_clip(path: Path, n_frames: int, size: tuple[int, int], expected: dict[int, np.ndarray]) -> str | None:
    """Read ``path`` back; return a one-line problem, or ``None`` when it has the right frames."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        return f"cannot open {path} with cv2.VideoCapture"
    try:
        read = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if frame.shape[:2] != (size[1], size[0]):
                return f"{path}: frame {read} is {frame.shape[1]}x{frame.shape[0]}, expected {size[0]}x{size[1]}"
            if read in expected and (quality := psnr(frame, expected[read])) < MIN_PSNR_DB:
                return f"{path}: frame {read} decodes to something else (PSNR {quality:.1f} dB < {MIN_PSNR_DB} dB)"
            read += 1
    finally:
        cap.release()
    if read != n_frames:
        return f"{path}: read back {read} frames, wrote {n_frames}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Render, write and check the clip; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output .mp4 (default: {DEFAULT_OUT})")
    parser.add_argument("--fps", type=positive_float, default=15.0, help="frames per second (default: 15)")
    parser.add_argument(
        "--seconds-per-photo", type=positive_float, default=4.5, help="time each photo is on screen (default: 4.5)"
    )
    parser.add_argument("--size", type=parse_size, default=(640, 480), help="frame size WxH (default: 640x480)")
    args = parser.parse_args(argv)
    size: tuple[int, int] = args.size
    out: Path = args.out

    try:
        photos = [load_photo(shot.filename, size) for shot in SHOTS]
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    n_expected = round(len(SHOTS) * args.seconds_per_photo * args.fps)
    if n_expected < 1:
        print("error: the clip would have no frames (raise --fps or --seconds-per-photo)", file=sys.stderr)
        return 1

    partial = out.with_name(f"{out.stem}.partial{out.suffix}")  # same suffix: OpenCV picks the container by it
    check_at = {0, n_expected // 2, n_expected - 1}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        frames = render_frames(photos, size, args.fps, args.seconds_per_photo)
        n_frames, expected = write_clip(partial, frames, size, args.fps, check_at)
        problem = verify_clip(partial, n_frames, size, expected)
        if problem is None and n_frames != n_expected:
            problem = f"rendered {n_frames} frames, expected {n_expected}"
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 1
        partial.replace(out)
    except (RuntimeError, OSError, cv2.error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        partial.unlink(missing_ok=True)

    megabytes = out.stat().st_size / 1e6
    print(
        f"wrote {out}: {n_frames} frames, {size[0]}x{size[1]} at {args.fps:g} fps = {n_frames / args.fps:.1f} s, "
        f"{megabytes:.2f} MB ({FOURCC}); photos: {', '.join(shot.filename for shot in SHOTS)}"
    )
    if megabytes > SIZE_WARN_MB:
        print(
            f"warning: {megabytes:.2f} MB is over {SIZE_WARN_MB:g} MB; lower --fps, --seconds-per-photo or --size",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
