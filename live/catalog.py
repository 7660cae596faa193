"""The model catalog: networks `live` knows by name, and their verified, resumable download.

The catalog is TOML (``data/catalog.toml``, its schema documented at its top),
optionally extended by a second file of the same schema (``LIVE_CATALOG`` or
an argument). A catalog model lives in ``cache_dir()/models/NAME/FILE``; an
entry's ``opencv`` field is a PEP 440 version specifier set checked against
``cv2.__version__``.

A download goes to ``FILE.part`` beside its final name, resumes with an HTTP
``Range`` request when a ``.part`` is already there, and is moved into place
only once its size and hash check out; a file that fails the check is deleted.
Nothing here imports Qt or uses cv2.dnn (cv2 is imported only to read its
version).
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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import platformdirs
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from live.errors import DownloadError, ModelError, UsageError
from live.names import CROPS, LAYOUTS, MODEL_SUFFIXES, did_you_mean
from live.preprocess import read_toml

Progress = Callable[[str, int, int | None], None]
"""A progress callback: ``progress(file_name, bytes_done, bytes_total_or_None)``."""

ENV_CATALOG = "LIVE_CATALOG"
ENV_CACHE = "LIVE_CACHE"
LABEL_SETS: tuple[str, ...] = ("imagenet",)
PREPROCESS_KEYS: tuple[str, ...] = ("size", "mean", "std", "scale", "rgb", "crop", "layout")
ENTRY_KEYS: tuple[str, ...] = (
    "title",
    "description",
    "license",
    "homepage",
    "files",
    "model",
    "opencv",
    "alternative",
    "labels",
    "default_layer",
    "preprocess",
)
FILE_KEYS: tuple[str, ...] = ("name", "url", "sha256", "sha1", "size", "verify")
LOCK_STALE_S = 120.0
"""A ``.part.lock`` untouched for this long belongs to a download that died."""
_CHUNK = 256 * 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_HEX_RE = re.compile(r"^[0-9a-f]+$")
_RELEASE_RE = re.compile(r"\d+(?:\.\d+)*")
_USER_AGENT = "live-model-download/0.1 (+python urllib)"


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One file of a catalog model.

    Attributes:
        name: file name in the model's cache folder.
        url: where it is downloaded from.
        sha256: expected hex digest, or None.
        sha1: expected hex digest, or None (where no sha256 is published).
        size: expected size in bytes, or None.
        verify: False for a file with no published hash (downloaded with a warning).
    """

    name: str
    url: str
    sha256: str | None = None
    sha1: str | None = None
    size: int | None = None
    verify: bool = True


@dataclasses.dataclass(frozen=True)
class Entry:
    """One network of the catalog; see ``data/catalog.toml`` for the meaning of each field."""

    name: str
    title: str
    description: str
    license: str
    homepage: str
    files: tuple[FileSpec, ...]
    model: str
    opencv: str | None = None
    alternative: str | None = None
    labels: str | None = None
    default_layer: str | None = None
    preprocess: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: Path = Path()

    @property
    def total_size(self) -> int | None:
        """Bytes of all its files, or None when a size is unknown."""
        sizes = [spec.size for spec in self.files]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)


# ---------------------------------------------------------------- catalog files
def _builtin_catalog_path() -> Path:
    """Where the shipped catalog is (the package data, or the repository's data/ folder)."""
    try:
        from live.assets import data_file
    except ImportError:  # pragma: no cover - assets is part of the package
        data_file = None
    if data_file is not None:
        found = data_file("catalog.toml")
        if found is not None:
            return found
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "data" / "catalog.toml", here.parent / "data" / "catalog.toml"):
        if candidate.is_file():
            return candidate
    raise ModelError(f"the built-in model catalog catalog.toml is missing (looked beside {here.parent})")


def load_catalog(extra: Path | None = None) -> dict[str, Entry]:
    """The built-in catalog, merged with an extra catalog of the same schema.

    Args:
        extra: a TOML catalog whose entries are added (replacing same-named
            built-in ones); default: the file named by ``LIVE_CATALOG``, if set.
    Returns:
        Entries by name, built-in ones first.
    Raises:
        ModelError: a catalog cannot be read or breaks the schema (one line
            naming the file, the entry and the bad value).
        UsageError: the extra catalog does not exist.
    """
    catalog = _read_catalog(_builtin_catalog_path())
    if extra is None and os.environ.get(ENV_CATALOG):
        extra = Path(os.environ[ENV_CATALOG]).expanduser()
        if not extra.is_file():
            raise UsageError(f"model catalog {extra} (from {ENV_CATALOG}) does not exist")
    elif extra is not None and not Path(extra).is_file():
        raise UsageError(f"model catalog {extra} does not exist")
    if extra is not None:
        catalog.update(_read_catalog(Path(extra)))
    for entry in catalog.values():
        if entry.alternative is not None and entry.alternative not in catalog:
            raise ModelError(
                f"model catalog {entry.source}: entry {entry.name}: alternative {entry.alternative!r} "
                "is not a catalog entry"
            )
    return catalog


def _read_catalog(path: Path) -> dict[str, Entry]:
    data = read_toml(path, "model catalog")
    unknown = sorted(set(data) - {"models"})
    if unknown:
        raise ModelError(f"model catalog {path}: unknown top-level key(s) {', '.join(unknown)} (only [models.NAME])")
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ModelError(f"model catalog {path}: `models` must be a table of [models.NAME] tables")
    return {name: _parse_entry(path, name, table) for name, table in models.items()}


def _parse_entry(path: Path, name: str, table: Any) -> Entry:
    where = f"model catalog {path}: entry {name}"

    def fail(message: str) -> ModelError:
        return ModelError(f"{where}: {message}")

    if not _NAME_RE.match(name):
        raise fail("the name may hold only letters, digits, '.', '_' and '-'")
    if not isinstance(table, dict):
        raise fail("must be a table")
    unknown = sorted(set(table) - set(ENTRY_KEYS))
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(ENTRY_KEYS)})")

    def text(key: str, *, required: bool) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise fail(f"missing `{key}`")
            return None
        if not isinstance(value, str) or not value.strip():
            raise fail(f"`{key}` must be a non-empty string, got {value!r}")
        return value

    files = table.get("files")
    if files is None:
        raise fail("missing `files`")
    if not isinstance(files, list) or not files:
        raise fail("`files` must be a non-empty array of tables")
    specs = tuple(_parse_file(fail, index, item) for index, item in enumerate(files))
    names = [spec.name for spec in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise fail(f"file name(s) {', '.join(duplicates)} listed twice")
    model = text("model", required=True)
    assert model is not None
    if model not in names:
        raise fail(f"`model` {model!r} is not among its files ({', '.join(names)})")
    opencv = text("opencv", required=False)
    if opencv is not None:
        try:
            _parse_constraint(opencv)
        except ValueError as exc:
            raise fail(str(exc)) from None
    labels = text("labels", required=False)
    if labels is not None and labels not in LABEL_SETS:
        raise fail(f"`labels` must be one of {', '.join(LABEL_SETS)}, got {labels!r}")
    return Entry(
        name=name,
        title=text("title", required=True) or "",
        description=text("description", required=True) or "",
        license=text("license", required=True) or "",
        homepage=text("homepage", required=True) or "",
        files=specs,
        model=model,
        opencv=opencv,
        alternative=text("alternative", required=False),
        labels=labels,
        default_layer=text("default_layer", required=False),
        preprocess=_parse_preprocess(fail, table.get("preprocess", {})),
        source=path,
    )


def _parse_file(fail: Callable[[str], ModelError], index: int, item: Any) -> FileSpec:
    if not isinstance(item, dict):
        raise fail(f"files[{index}] must be a table, got {item!r}")
    label = f"files[{index}]" + (f" ({item['name']})" if isinstance(item.get("name"), str) else "")
    unknown = sorted(set(item) - set(FILE_KEYS))
    if unknown:
        raise fail(f"{label}: unknown key(s) {', '.join(unknown)} (known: {', '.join(FILE_KEYS)})")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise fail(f"{label}: missing `name`")
    if not _NAME_RE.match(name) or name.endswith((".part", ".lock")):
        raise fail(f"{label}: bad file name {name!r} (letters, digits, '.', '_', '-'; no folders)")
    url = item.get("url")
    if url is None:
        raise fail(f"{label}: missing `url`")
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise fail(f"{label}: `url` must be an http:// or https:// address, got {url!r}")
    if not urllib.parse.urlsplit(url).hostname:
        raise fail(f"{label}: `url` {url!r} has no host")
    hashes: dict[str, str | None] = {}
    for key, length in (("sha256", 64), ("sha1", 40)):
        value = item.get(key)
        if value is not None and (not isinstance(value, str) or len(value) != length or not _HEX_RE.match(value)):
            raise fail(f"{label}: `{key}` must be {length} lowercase hex digits, got {value!r}")
        hashes[key] = value
    verify = item.get("verify", True)
    if not isinstance(verify, bool):
        raise fail(f"{label}: `verify` must be true or false, got {verify!r}")
    if verify and not (hashes["sha256"] or hashes["sha1"]):
        raise fail(f"{label}: needs `sha256` or `sha1` (or `verify = false` where no hash is published)")
    size = item.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise fail(f"{label}: `size` must be a positive integer, got {size!r}")
    return FileSpec(name=name, url=url, sha256=hashes["sha256"], sha1=hashes["sha1"], size=size, verify=verify)


def _numbers(value: Any, counts: tuple[int, ...]) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return 1 in counts
    return (
        isinstance(value, list)
        and len(value) in counts
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


def _parse_preprocess(fail: Callable[[str], ModelError], pre: Any) -> dict[str, Any]:
    if not isinstance(pre, dict):
        raise fail("`preprocess` must be a table")
    unknown = sorted(set(pre) - set(PREPROCESS_KEYS))
    if unknown:
        raise fail(f"preprocess: unknown key(s) {', '.join(unknown)} (known: {', '.join(PREPROCESS_KEYS)})")
    if "std" in pre and "scale" in pre:
        raise fail("preprocess: give `std` or `scale`, not both")
    size = pre.get("size", 1)
    sizes = size if isinstance(size, list) else [size]
    if not (_numbers(size, (1, 2)) and all(isinstance(v, int) and v > 0 for v in sizes)):
        raise fail(f"preprocess: `size` must be [width, height] in positive integers, got {pre['size']!r}")
    for key in ("mean", "std", "scale"):
        if key in pre and not _numbers(pre[key], (1, 3)):
            raise fail(f"preprocess: `{key}` must be a number or 3 numbers, got {pre[key]!r}")
    for key in ("std", "scale"):
        values = pre.get(key, 1)
        if any(v == 0 for v in (values if isinstance(values, list) else [values])):
            raise fail(f"preprocess: `{key}` must be non-zero, got {pre[key]!r}")
    if "rgb" in pre and not isinstance(pre["rgb"], bool):
        raise fail(f"preprocess: `rgb` must be true or false, got {pre['rgb']!r}")
    if "crop" in pre and pre["crop"] not in CROPS:
        raise fail(f"preprocess: `crop` must be one of {', '.join(CROPS)}, got {pre['crop']!r}")
    if "layout" in pre and pre["layout"] not in LAYOUTS:
        raise fail(f"preprocess: `layout` must be one of {', '.join(LAYOUTS)}, got {pre['layout']!r}")
    return dict(pre)


# ---------------------------------------------------------------- OpenCV versions
def _parse_constraint(constraint: str) -> SpecifierSet:
    """``constraint`` as a PEP 440 specifier set; ValueError naming it when it is not one."""
    try:
        specifiers = SpecifierSet(constraint)
    except InvalidSpecifier:
        specifiers = SpecifierSet()
    if not len(specifiers):
        raise ValueError(
            f"`opencv` must be comparisons (PEP 440 version specifiers) like '>=5' or '>=4.8,<5', got {constraint!r}"
        )
    return specifiers


def _opencv_version(text: str) -> Version:
    """The release part of an OpenCV version string: ``"5.0.0-dev"`` -> ``Version("5.0.0")``."""
    match = _RELEASE_RE.match(text.strip())
    if not match:
        raise ValueError(f"cannot read OpenCV version {text!r}")
    return Version(match.group(0))


def opencv_fits(constraint: str | None, version: str) -> bool:
    """Whether OpenCV ``version`` (e.g. ``"4.10.0"``) satisfies a constraint like ``">=4.8,<5"``.

    Args:
        constraint: PEP 440 version specifiers joined by commas (``">=4"``,
            ``"<5"``, ``"==4.*"``), or None (any version fits).
        version: ``cv2.__version__``; only its release numbers count, so
            ``"5.0.0-dev"`` is 5.0.0 (``"<5"`` admits every 4.x and refuses it).
    Raises:
        ValueError: the constraint or the version cannot be read.
    """
    if constraint is None:
        return True
    return _parse_constraint(constraint).contains(_opencv_version(version), prereleases=True)


def check_opencv(entry: Entry, version: str | None = None, catalog: Mapping[str, Entry] | None = None) -> None:
    """Raise ModelError when OpenCV ``version`` (default: the installed one) cannot read ``entry``.

    The message names the catalog entry to use instead, when the entry has an
    ``alternative``.
    """
    if entry.opencv is None:
        return
    if version is None:
        import cv2  # lazily: reading the catalog needs no OpenCV

        version = str(cv2.__version__)
    if opencv_fits(entry.opencv, version):
        return
    message = f"model {entry.name} needs OpenCV {entry.opencv}, but this is OpenCV {version}"
    alternative = entry.alternative
    if alternative is not None:
        alt = (catalog or {}).get(alternative)
        detail = f" ({alt.title})" if alt is not None else ""
        raise ModelError(f"{message}; use `--model {alternative}`{detail} instead")
    raise ModelError(f"{message}; install an OpenCV that fits, or pick another model")


# ---------------------------------------------------------------- the cache
def cache_dir() -> Path:
    """The cache folder: ``LIVE_CACHE`` if set, else platformdirs' user cache folder for live."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("live", appauthor=False))


def entry_dir(entry: Entry) -> Path:
    """The folder that holds an entry's files: ``cache_dir()/models/NAME``."""
    return cache_dir() / "models" / entry.name


def model_path(entry: Entry) -> Path:
    """Where the file that ``--model`` loads is (or will be) in the cache."""
    return entry_dir(entry) / entry.model


def _present(path: Path, spec: FileSpec) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return path.is_file() and (spec.size is None or stat.st_size == spec.size)


def is_cached(entry: Entry) -> bool:
    """Whether every file of ``entry`` is in the cache with the right size.

    Only verified downloads are ever moved to their final names, so the size
    check is enough here; :func:`download` hashes each file it fetches.
    """
    folder = entry_dir(entry)
    return all(_present(folder / spec.name, spec) for spec in entry.files)


# ---------------------------------------------------------------- download
def _warn_stderr(message: str) -> None:
    print(f"live: warning: {message}", file=sys.stderr, flush=True)


def download(
    entry: Entry,
    *,
    progress: Progress | None = None,
    timeout: float = 30.0,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Download and verify every file of ``entry`` that is not in the cache yet.

    Each file is fetched to ``FILE.part`` (resumed with an HTTP Range request
    when a ``.part`` is there), checked against the catalog's size and hashes,
    and only then moved to its final name.

    Args:
        entry: a catalog entry.
        progress: called as ``progress(file_name, done, total)`` while bytes
            arrive (total None when unknown); :class:`ProgressBar` fits.
        timeout: seconds to wait for the server to connect or send more bytes.
        warn: told about files downloaded without a hash (default: a line on
            stderr).
    Returns:
        :func:`model_path` of the entry.
    Raises:
        DownloadError: HTTP error, unreachable host, lost connection (the
            ``.part`` is kept for the next call to resume), hash or size
            mismatch (the download is deleted), or a download of the same file
            already in progress.
    """
    folder = entry_dir(entry)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create model cache folder {folder}: {exc.strerror}") from exc
    for spec in entry.files:
        final = folder / spec.name
        if _present(final, spec):
            continue
        with _Lock(folder / f"{spec.name}.part.lock", spec.name) as lock:
            if _present(final, spec):  # another process finished it while we waited for the lock
                continue
            _fetch(entry, spec, final, progress=progress, timeout=timeout, lock=lock)
        if not spec.verify:
            (warn or _warn_stderr)(
                f"{spec.name} of model {entry.name} has no published hash; it was downloaded unverified"
            )
    return model_path(entry)


class _Lock:
    """An O_EXCL lock file beside a ``.part``; stale after LOCK_STALE_S without a touch."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self._touched = 0.0

    def __enter__(self) -> _Lock:
        for _attempt in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale():
                    self.path.unlink(missing_ok=True)
                    continue
                raise DownloadError(
                    f"{self.name} is already being downloaded (lock file {self.path}); "
                    "wait for that download, or delete the lock file if none is running"
                ) from None
            except OSError as exc:
                raise DownloadError(f"cannot create lock file {self.path}: {exc.strerror}") from exc
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()} {socket.gethostname()}\n")
            self._touched = time.monotonic()
            return self
        raise DownloadError(f"{self.name} is already being downloaded (lock file {self.path})")

    def _stale(self) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
            owner = self.path.read_text().split()
        except OSError:
            return True  # vanished meanwhile: try again
        if age > LOCK_STALE_S:
            return True
        if os.name == "posix" and len(owner) == 2 and owner[1] == socket.gethostname() and owner[0].isdigit():
            try:
                os.kill(int(owner[0]), 0)
            except ProcessLookupError:
                return True  # its process is gone
            except OSError:
                return False
        return False

    def touch(self) -> None:
        """Keep the lock fresh during a long download (at most every 2 s)."""
        now = time.monotonic()
        if now - self._touched > 2.0:
            self._touched = now
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


class _RestartError(Exception):
    """The server cannot resume: download the file from the start."""


def _fetch(
    entry: Entry, spec: FileSpec, final: Path, *, progress: Progress | None, timeout: float, lock: _Lock
) -> None:
    part = final.with_name(f"{final.name}.part")
    for _attempt in range(2):
        offset = part.stat().st_size if part.is_file() else 0
        if spec.size is not None and offset > spec.size:
            part.unlink()
            offset = 0
        try:
            if spec.size is None or offset < spec.size:
                _transfer(spec, part, offset, progress=progress, timeout=timeout, lock=lock)
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


def _transfer(
    spec: FileSpec, part: Path, offset: int, *, progress: Progress | None, timeout: float, lock: _Lock
) -> None:
    """Fetch ``spec.url`` into ``part`` from byte ``offset``."""
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(spec.url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
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
        try:
            fh = open(part, mode)  # noqa: SIM115 - closed by the `with` below; open errors reported apart
        except OSError as exc:
            raise DownloadError(f"cannot write {part}: {exc.strerror}") from exc
        with fh:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (TimeoutError, OSError, http.client.HTTPException) as exc:
                    raise _lost(spec, done, total, _describe(exc)) from None
                if not chunk:
                    break
                try:
                    fh.write(chunk)
                except OSError as exc:
                    raise DownloadError(f"cannot write {part}: {exc.strerror}") from exc
                done += len(chunk)
                lock.touch()
                if progress is not None:
                    progress(spec.name, done, total)
            try:
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                raise DownloadError(f"cannot write {part}: {exc.strerror}") from exc
    if total is not None and done < total:
        raise _lost(spec, done, total, "the server closed the connection")


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


def _unknown_message(name: str, catalog: Mapping[str, Entry]) -> str:
    path = Path(name)
    if path.suffix.lower() in MODEL_SUFFIXES or len(path.parts) > 1:
        return f"model file not found: {name}"
    hint = did_you_mean(name, catalog) or f"catalog models: {', '.join(catalog)}"
    return f"model {name!r} is neither a file nor a catalog name; {hint}"


def description_toml(entry: Entry) -> dict[str, Any]:
    """The entry as a parsed model description file (what ``live.preprocess.read_description`` returns).

    ``labels = "imagenet"`` becomes the path of the shipped ImageNet label
    file when it is there (else stays ``"imagenet"``).
    """
    data: dict[str, Any] = {"preprocess": dict(entry.preprocess)}
    if entry.default_layer is not None:
        data["default_layer"] = entry.default_layer
    if entry.labels is not None:
        data["labels"] = _labels_path(entry.labels)
    return data


def _labels_path(labels: str) -> str:
    if labels != "imagenet":
        return labels
    try:
        from live.assets import data_file
    except ImportError:  # pragma: no cover - assets is part of the package
        return labels
    found = data_file("imagenet_labels.tsv")
    return str(found) if found is not None else labels


# ---------------------------------------------------------------- progress bar
class ProgressBar:
    """A one-line text progress bar, usable as :func:`download`'s ``progress``.

    Writes ``\\r`` updates (percent, MB done / total, MB/s) to ``stream``, only
    when it is a terminal or ``force`` is set; ends each file's line with a
    newline when it is complete.
    """

    def __init__(
        self, stream: TextIO | None = None, *, force: bool = False, width: int = 24, interval: float = 0.1
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = force or bool(isatty and isatty())
        self.width = width
        self.interval = interval
        self._name: str | None = None
        self._start = 0.0
        self._start_bytes = 0
        self._last = 0.0
        self._open = False
        self._shown = 0

    def __call__(self, name: str, done: int, total: int | None) -> None:
        """Show that ``done`` of ``total`` bytes of ``name`` are there."""
        if not self.enabled:
            return
        now = time.monotonic()
        if name != self._name:
            self.close()
            self._name, self._start, self._start_bytes, self._last = name, now, done, 0.0
        finished = total is not None and done >= total
        if not finished and now - self._last < self.interval:
            return
        self._last = now
        elapsed = now - self._start
        rate = (done - self._start_bytes) / elapsed / 1e6 if elapsed > 0 else 0.0
        if total:
            fraction = min(1.0, done / total)
            filled = int(fraction * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            text = f"{name} [{bar}] {fraction * 100:5.1f}% {done / 1e6:.1f}/{total / 1e6:.1f} MB {rate:.1f} MB/s"
        else:
            text = f"{name} {done / 1e6:.1f} MB {rate:.1f} MB/s"
        self.stream.write(f"\r{text}{' ' * max(0, self._shown - len(text))}")
        self._shown = len(text)
        self._open = True
        if finished:
            self.close()
        else:
            self.stream.flush()

    def close(self) -> None:
        """End the current line (call once downloads are over, or on an error)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
            self._shown = 0
