"""Verified, resumable downloads of catalog models, one process per file at a time.

A download goes to ``FILE.part`` beside its final name in the model's cache
folder (:func:`live.catalog.entry_dir`), resumes with an HTTP ``Range``
request when a ``.part`` is already there (and starts over on a 416 answer or
a ``Content-Range`` that does not fit), and is moved into place only once its
size and hashes check out; a file that fails the check is deleted, a lost
connection keeps the ``.part`` for the next try. ``FILE.part.lock`` (a
:class:`filelock.FileLock`, an ``flock`` on Unix, so it dies with its
process) keeps a second download of the same file out.

:func:`resolve_model` turns a ``--model`` value into a file, downloading a
catalog model when allowed. This module imports :mod:`live.catalog`, never the
reverse; nothing here imports Qt or cv2.dnn.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from live.catalog import (
    Entry,
    FileSpec,
    _present,
    _unknown_message,
    check_opencv,
    entry_dir,
    is_cached,
    load_catalog,
    model_path,
)
from live.errors import DownloadError, ModelError
from live.files import no_space, printable

Progress = Callable[[str, int, int | None], None]
"""A progress callback: ``progress(file_name, bytes_done, bytes_total_or_None)``."""

_CHUNK = 256 * 1024
_USER_AGENT = "live-model-download/0.1 (+python urllib)"
DEADLINE_S = 3600.0
"""A download (all files of an entry) that takes longer is given up (the ``.part`` kept to resume)."""
MIN_RATE = 1024.0
"""Bytes per second a download must keep up, measured over :data:`RATE_WINDOW_S` (a server that drips fails)."""
RATE_WINDOW_S = 30.0
MAX_UNSIZED_BYTES = 4 * 1024**3
"""The most bytes taken for a file whose catalog entry gives no ``size`` (an endless answer stops there)."""


@dataclasses.dataclass(frozen=True)
class _Limits:
    """What a transfer may take: a quiet connection, the whole download, the slowest rate kept up."""

    timeout: float
    deadline: float  # time.monotonic() by which the whole download must be done
    deadline_s: float
    min_rate: float
    rate_window_s: float

    def left(self) -> float:
        return self.deadline - time.monotonic()


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows HTTP redirects to http:// and https:// only; any other scheme is refused, naming the target."""

    def __init__(self, name: str, url: str) -> None:
        super().__init__()
        self.name = name
        self.url = url

    def http_error_302(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any
    ) -> Any:  # urllib's name
        """Refuse a redirect that leaves HTTP(S), naming its target; follow the others as urllib does."""
        location = headers.get("Location") or headers.get("URI")
        if location is not None:
            target = urllib.parse.urljoin(req.full_url, location)
            if urllib.parse.urlsplit(target).scheme.lower() not in ("http", "https"):
                fp.close()
                raise DownloadError(
                    f"download of {self.name} from {self.url} redirects to {printable(target)}, "
                    "which is not an http:// or https:// address; refused"
                )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _warn_stderr(message: str) -> None:
    print(f"live: warning: {message}", file=sys.stderr, flush=True)


def download(
    entry: Entry,
    *,
    progress: Progress | None = None,
    timeout: float = 30.0,
    warn: Callable[[str], None] | None = None,
    deadline_s: float = DEADLINE_S,
    min_rate: float = MIN_RATE,
    rate_window_s: float = RATE_WINDOW_S,
) -> Path:
    """Download and verify every file of ``entry`` that is not in the cache yet.

    Each file is fetched to ``FILE.part`` (resumed with an HTTP Range request
    when a ``.part`` is there), checked against the catalog's size and hashes,
    and only then moved to its final name. ``FILE.part.lock`` is held
    meanwhile: a second download of the same file fails at once.

    Args:
        entry: a catalog entry.
        progress: called as ``progress(file_name, done, total)`` while bytes
            arrive (bytes; total None when unknown); :class:`ProgressBar` fits.
        timeout: seconds to wait for the server to connect or send more bytes.
        warn: told about files downloaded without a hash (default: a line on
            stderr).
        deadline_s: seconds the whole download may take.
        min_rate: bytes per second it must keep up over ``rate_window_s``
            (measured once that long has passed).
        rate_window_s: the window of that measure.
    Returns:
        :func:`live.catalog.model_path` of the entry.
    Raises:
        DownloadError: HTTP error, unreachable host, lost connection (the
            ``.part`` is kept for the next call to resume), hash or size
            mismatch (the download is deleted), more bytes than the catalog's
            ``size`` (deleted), the deadline or the minimum rate missed (kept
            to resume), a full disk (named, the ``.part`` kept to resume), a
            redirect to a scheme other than HTTP(S), or a download of the same
            file already in progress (the message names its lock file).
    """
    limits = _Limits(timeout, time.monotonic() + deadline_s, deadline_s, min_rate, rate_window_s)
    folder = entry_dir(entry)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create model cache folder {folder}: {exc.strerror}") from exc
    for spec in entry.files:
        final = folder / spec.name
        if _present(final, spec):
            continue
        with _locked(folder / f"{spec.name}.part.lock", spec.name):
            if _present(final, spec):  # another process finished it just before we took the lock
                continue
            _fetch(entry, spec, final, progress=progress, limits=limits)
        if not spec.verify:
            (warn or _warn_stderr)(
                f"{spec.name} of model {entry.name} has no published hash; it was downloaded unverified"
            )
    return model_path(entry)


@contextlib.contextmanager
def _locked(path: Path, name: str) -> Iterator[None]:
    """Hold the lock file ``path`` for the download of ``name``, or raise DownloadError at once."""
    from filelock import FileLock, Timeout  # imported here: a run that downloads nothing never pays for it

    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DownloadError(
            f"{name} is already being downloaded (lock file {path}); wait for that download to finish"
        ) from None
    except OSError as exc:
        raise DownloadError(f"cannot create lock file {path}: {exc.strerror or exc}") from exc
    try:
        yield
    finally:
        # The lock file goes while it is still held, as the last step, so that the cache folder keeps
        # only models and resumable .part files. (filelock itself keeps Unix lock files: a process that
        # opened this one before the unlink may win its flock after the release. Recent filelock does not
        # count a lock won on an unlinked file as held; with an older one, such an overlap ends in the
        # size and hash checks, and whoever comes next finds the model in place or a .part to resume.)
        with contextlib.suppress(OSError):
            path.unlink()
        lock.release()


class _RestartError(Exception):
    """The server cannot resume: download the file from the start."""


def _fetch(entry: Entry, spec: FileSpec, final: Path, *, progress: Progress | None, limits: _Limits) -> None:
    """Fetch ``spec`` to ``FILE.part`` (resuming it), verify it and move it to ``final``."""
    part = final.with_name(f"{final.name}.part")
    for _attempt in range(2):
        offset = part.stat().st_size if part.is_file() else 0
        if spec.size is not None and offset > spec.size:
            part.unlink()
            offset = 0
        try:
            if spec.size is None or offset < spec.size:
                _transfer(spec, part, offset, progress=progress, limits=limits)
            elif progress is not None:
                progress(spec.name, offset, spec.size)
            break
        except _RestartError:
            part.unlink(missing_ok=True)
    _verify(entry, spec, part)
    try:
        part.replace(final)
    except OSError as exc:
        raise DownloadError(f"cannot move {part} to {final}: {exc.strerror}") from exc


def _transfer(spec: FileSpec, part: Path, offset: int, *, progress: Progress | None, limits: _Limits) -> None:
    """Fetch ``spec.url`` into ``part`` from byte ``offset``, within ``limits`` and the catalog's size."""
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(spec.url, headers=headers)
    if limits.left() <= 0:
        raise _late(spec, offset, None, limits)
    opener = urllib.request.build_opener(_Redirects(spec.name, spec.url))
    try:
        response = opener.open(request, timeout=max(0.1, min(limits.timeout, limits.left())))
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            raise _RestartError from None
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            part.unlink(missing_ok=True)  # the address is wrong: what we have of it is of no use
        raise DownloadError(f"download of {spec.name} failed: HTTP {exc.code} {exc.reason} from {spec.url}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        detail = "timed out" if isinstance(reason, TimeoutError) else str(getattr(reason, "strerror", None) or reason)
        host = urllib.parse.urlsplit(spec.url).netloc
        raise DownloadError(f"cannot reach {host} to download {spec.name}: {detail}") from None
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        host = urllib.parse.urlsplit(spec.url).netloc
        raise DownloadError(f"cannot download {spec.name} from {host}: {_describe(exc)}") from None
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length_int = int(length) if length and length.isdigit() else None
        if status == 206 and offset:
            content_range = response.headers.get("Content-Range", "")
            match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range)
            if not match or int(match.group(1)) != offset:
                raise _RestartError
            total = int(match.group(3)) if match.group(3) != "*" else spec.size
            mode = "ab"
        elif 200 <= status < 300:
            offset = 0
            total = length_int if length_int is not None else spec.size
            mode = "wb"
        else:
            raise DownloadError(f"download of {spec.name} failed: HTTP {status} {response.reason} from {spec.url}")
        if spec.size is not None and total is not None and total != spec.size:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"download of {spec.name} failed: {spec.url} sends {total} bytes, the catalog expects {spec.size}"
            )
        done = offset
        if progress is not None:
            progress(spec.name, done, total)
        cap = spec.size if spec.size is not None else MAX_UNSIZED_BYTES
        try:
            fh = open(part, mode, buffering=0)  # noqa: SIM115 - closed by the `with` below; open errors apart
        except OSError as exc:
            raise _write_error(spec, part, done, exc) from exc
        rate = _Rate(limits, done)
        with fh:
            while True:
                try:
                    _set_timeout(response, max(0.1, min(limits.timeout, limits.left())))
                    chunk = response.read1(min(_CHUNK, cap + 1 - done))  # what has arrived, never more than allowed
                except (TimeoutError, OSError, http.client.HTTPException) as exc:
                    if limits.left() <= 0:
                        raise _late(spec, done, total, limits) from None
                    raise _lost(spec, done, total, _describe(exc)) from None
                if not chunk:
                    break
                if done + len(chunk) > cap:
                    fh.close()
                    part.unlink(missing_ok=True)
                    what = f"the catalog's size of {spec.size}" if spec.size is not None else f"{cap} bytes"
                    raise DownloadError(
                        f"download of {spec.name} failed: {spec.url} sends more than {what} bytes; "
                        "stopped there and deleted what came"
                    )
                try:
                    view = memoryview(chunk)
                    while view:
                        view = view[fh.write(view) :]
                except OSError as exc:
                    raise _write_error(spec, part, done, exc) from exc
                done += len(chunk)
                if progress is not None:
                    progress(spec.name, done, total)
                if limits.left() <= 0 and (total is None or done < total):
                    raise _late(spec, done, total, limits)
                rate.check(spec, done, total)
            try:
                os.fsync(fh.fileno())
            except OSError as exc:
                raise _write_error(spec, part, done, exc) from exc
    if total is not None and done < total:
        raise _lost(spec, done, total, "the server closed the connection")


def _set_timeout(response: http.client.HTTPResponse, seconds: float) -> None:
    """Give the response's socket a new timeout (the time left before the deadline), where it can be reached."""
    with contextlib.suppress(AttributeError, OSError):
        response.fp.raw._sock.settimeout(seconds)  # type: ignore[union-attr]


class _Rate:
    """The bytes that came within the last ``rate_window_s``; too few (below ``min_rate``) end the download."""

    def __init__(self, limits: _Limits, done: int) -> None:
        self.limits = limits
        self.start = time.monotonic()
        self.samples: list[tuple[float, int]] = [(self.start, done)]

    def check(self, spec: FileSpec, done: int, total: int | None) -> None:
        now = time.monotonic()
        window = self.limits.rate_window_s
        self.samples.append((now, done))
        while len(self.samples) > 2 and self.samples[1][0] <= now - window:
            self.samples.pop(0)
        since, before = self.samples[0]
        if now - self.start < window or now - since < window:
            return
        got = done - before
        if got < self.limits.min_rate * (now - since):
            raise _lost(
                spec,
                done,
                total,
                f"too slow: {got} bytes in the last {now - since:.0f} s "
                f"(it must keep up {self.limits.min_rate:g} bytes a second)",
            )


def _late(spec: FileSpec, done: int, total: int | None, limits: _Limits) -> DownloadError:
    return _lost(spec, done, total, f"it took over {limits.deadline_s:g} s")


def _write_error(spec: FileSpec, part: Path, done: int, exc: OSError) -> DownloadError:
    """The message for a write to ``part`` that failed: a full disk names the cache folder; the ``.part`` stays."""
    if no_space(exc):
        return DownloadError(
            f"download of {spec.name} stopped after {done} bytes: no space left on the device of the model cache "
            f"folder {printable(str(part.parent))}; {part.name} keeps what came: free some space and run it "
            "again to resume"
        )
    return DownloadError(f"cannot write {printable(str(part))}: {exc.strerror or exc}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return "the server closed the connection"
    if isinstance(exc, ConnectionError):
        return "the connection was reset"
    return str(getattr(exc, "strerror", None) or exc) or type(exc).__name__


def _lost(spec: FileSpec, done: int, total: int | None, why: str) -> DownloadError:
    of = f" of {total}" if total is not None else ""
    return DownloadError(
        f"download of {spec.name} stopped after {done}{of} bytes: {why}; run it again to resume from there"
    )


def file_hashes(path: Path) -> dict[str, str]:
    """The sha256 and sha1 hex digests of a file."""
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            sha256.update(block)
            sha1.update(block)
    return {"sha256": sha256.hexdigest(), "sha1": sha1.hexdigest()}


def _verify(entry: Entry, spec: FileSpec, part: Path) -> None:
    """Check a finished ``.part``; delete it and raise DownloadError when it does not match."""
    size = part.stat().st_size
    if spec.size is not None and size != spec.size:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"download of {spec.name} for model {entry.name} has {size} bytes, expected {spec.size}; deleted it"
        )
    if not spec.verify:
        return
    try:
        got = file_hashes(part)
    except OSError as exc:
        raise DownloadError(f"cannot read {part} to verify it: {exc.strerror}") from exc
    for key in ("sha256", "sha1"):
        expected = getattr(spec, key)
        if expected is not None and got[key] != expected:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"download of {spec.name} for model {entry.name} failed verification: "
                f"{key} expected {expected}, got {got[key]}; deleted it"
            )


# ---------------------------------------------------------------- names -> files
def resolve_model(
    name_or_path: str,
    *,
    yes: bool,
    ask: Callable[[str], bool] | None,
    progress: Progress | None = None,
    extra_catalog: Path | None = None,
    timeout: float = 30.0,
    warn: Callable[[str], None] | None = None,
) -> tuple[Path, Entry | None]:
    """Turn a ``--model`` value into a file: an existing file as is, or a catalog model.

    Args:
        name_or_path: a path to a model file, or a catalog name.
        yes: download a missing catalog model without asking.
        ask: asked a yes/no question before a download when ``yes`` is
            false (None: never download unasked).
        progress, timeout, warn: passed to :func:`download`.
        extra_catalog: merged over the built-in catalog (default: ``LIVE_CATALOG``).
    Returns:
        ``(path, entry)``: entry is None for a plain file.
    Raises:
        ModelError: neither a file nor a catalog name (close names suggested),
            or the installed OpenCV cannot read that model.
        DownloadError: the model is not downloaded and may not be, or the
            download failed.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path, None
    catalog = load_catalog(extra_catalog)
    entry = catalog.get(name_or_path)
    if entry is None:
        raise ModelError(_unknown_message(name_or_path, catalog))
    check_opencv(entry, catalog=catalog)
    if is_cached(entry):
        return model_path(entry), entry
    if not yes:
        size = entry.total_size
        amount = f", {size / 1e6:.1f} MB" if size is not None else ""
        host = urllib.parse.urlsplit(entry.files[0].url).hostname
        question = f"Model {entry.name} ({entry.title}{amount}) is not downloaded. Download it from {host}?"
        if ask is None or not ask(question):
            raise DownloadError(
                f"model {entry.name} is not downloaded; run `live models download {entry.name}` or pass --yes"
            )
    return download(entry, progress=progress, timeout=timeout, warn=warn), entry


# ---------------------------------------------------------------- progress bar
class ProgressBar:
    """A tqdm progress bar per file, usable as :func:`download`'s ``progress``.

    Shows bytes (scaled to kB, MB, ...) with rate and time left on ``stream``
    (default stderr), only when it is a terminal unless ``force`` is set; each
    file's line ends when the file is complete or at :meth:`close`.

    Args:
        stream: where to draw (default: stderr).
        force: draw even when ``stream`` is not a terminal.
        interval: seconds between redraws.
    """

    def __init__(self, stream: TextIO | None = None, *, force: bool = False, interval: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.force = force
        self.interval = interval
        self._bar: Any = None  # a tqdm bar, once a download shows progress
        self._name: str | None = None

    def __call__(self, name: str, done: int, total: int | None) -> None:
        """Show that ``done`` of ``total`` bytes (None: unknown) of file ``name`` are there."""
        if name != self._name or self._bar is None:
            self.close()
            self._name = name
            from tqdm import tqdm  # imported here: a run that downloads nothing never pays for it

            self._bar = tqdm(
                total=total,
                initial=done,
                desc=name,
                unit="B",
                unit_scale=True,
                file=self.stream,
                disable=False if self.force else None,  # None: only on a terminal
                mininterval=self.interval,
                leave=True,
            )
        elif done != self._bar.n:
            self._bar.update(done - self._bar.n)
        if total is not None and done >= total:
            self.close()

    def close(self) -> None:
        """End the current file's line (call once downloads are over, or on an error)."""
        if self._bar is not None:
            self._bar.close()
        self._bar = None
        self._name = None
