"""The model catalog and its schema: networks `live` knows by name, and where they are cached.

The catalog is TOML (``data/catalog.toml``, its schema documented at its top),
optionally extended by a second file of the same schema (``LIVE_CATALOG`` or
an argument). A catalog model lives in ``cache_dir()/models/NAME/FILE``; an
entry's ``opencv`` field is a PEP 440 version specifier set checked against
``cv2.__version__``. Downloading is :mod:`live.download`'s job. Nothing here
imports Qt or uses cv2.dnn (cv2 is imported only to read its version).
"""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import platformdirs
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from live.description import LABEL_SETS, ModelDescription, read_toml
from live.errors import ModelError, UsageError
from live.files import file_kind, printable
from live.names import MODEL_SUFFIXES, did_you_mean

ENV_CATALOG = "LIVE_CATALOG"
ENV_CACHE = "LIVE_CACHE"
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
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_HEX_RE = re.compile(r"^[0-9a-f]+$")
_RELEASE_RE = re.compile(r"\d+(?:\.\d+)*")


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
    model_description: ModelDescription = dataclasses.field(default_factory=ModelDescription)
    source: Path = Path()

    @property
    def preprocess(self) -> dict[str, Any]:
        """The entry's preprocessing values (``std`` stored as ``scale``), as a plain mapping."""
        return self.model_description.preprocess.overrides()

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
            raise UsageError(f"model catalog {printable(str(extra))} (from {ENV_CATALOG}) {_not_a_file(extra)}")
    elif extra is not None and not Path(extra).is_file():
        raise UsageError(f"model catalog {printable(str(extra))} {_not_a_file(Path(extra))}")
    if extra is not None:
        catalog.update(_read_catalog(Path(extra)))
    for entry in catalog.values():
        if entry.alternative is not None and entry.alternative not in catalog:
            raise ModelError(
                f"model catalog {entry.source}: entry {entry.name}: alternative {entry.alternative!r} "
                "is not a catalog entry"
            )
    return catalog


def _not_a_file(path: Path) -> str:
    """``"does not exist"``, or ``"is a FIFO (named pipe), not a file"`` and the like."""
    kind = file_kind(path)
    return "does not exist" if kind in (None, "missing") else f"is {kind}, not a file"


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
    default_layer = text("default_layer", required=False)
    described = {"preprocess": table.get("preprocess", {}), "labels": labels, "default_layer": default_layer}
    model_description = ModelDescription.parse({k: v for k, v in described.items() if v is not None}, where)
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
        default_layer=default_layer,
        model_description=model_description,
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
    check is enough here; :func:`live.download.download` hashes each file it fetches.
    """
    folder = entry_dir(entry)
    return all(_present(folder / spec.name, spec) for spec in entry.files)


def _unknown_message(name: str, catalog: Mapping[str, Entry]) -> str:
    path = Path(name)
    kind = file_kind(path)
    if kind not in (None, "missing"):
        return f"model {printable(name)} is {kind}, not a model file"
    if path.suffix.lower() in MODEL_SUFFIXES or len(path.parts) > 1:
        return f"model file not found: {name}"
    hint = did_you_mean(name, catalog) or f"catalog models: {', '.join(catalog)}"
    return f"model {name!r} is neither a file nor a catalog name; {hint}"
