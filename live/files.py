"""Facts about paths and safe ways to touch them: what kind of file a path is, bounded reads, names cv2 can take.

Shared by the rooms that read and write files (sources, model, output,
description, catalog). Nothing here imports cv2, numpy or Qt.

* :func:`file_kind` and :func:`check_regular`: "is a FIFO (named pipe)" or
  "is a directory" instead of "not found", before anything opens a path
  that would block (a FIFO without a writer) or never end (``/dev/zero``).
* :func:`read_bounded`: read a regular file, refusing one larger than a
  bound, without ever waiting on a FIFO that replaced it in between.
* :func:`cv_name`: cv2's Python bindings crash (SIGSEGV) on a ``str`` that
  is not valid UTF-8, as a Linux file name may be (``b"x\\xff.mp4"``, a
  surrogate-escaped ``str`` in Python). Such a path is handed to cv2 as a
  symbolic link with an ASCII name in a private temporary folder.
* :func:`printable`: text from files (layer names, labels, paths) with
  control characters and undecodable bytes escaped, so that one message
  stays one line and cannot drive the terminal.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

from live.errors import LiveError

MAX_TEXT_BYTES = 16 * 1024 * 1024
"""The largest text file (description, catalog, labels) ``live`` reads: 16 MiB."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(path: Path) -> str | None:
    """``"a directory"``, ``"a FIFO (named pipe)"``, ``"a character device"``, ... or None for a regular file.

    Symbolic links are followed; a path that does not exist (or a dangling
    link) is ``"missing"``.
    """
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return "missing"
    return _kind(mode)


def _kind(mode: int) -> str | None:
    for test, name in _KINDS:
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def check_regular(path: Path, what: str, error: Callable[[str], LiveError], missing: str | None = None) -> None:
    """Raise ``error`` unless ``path`` is a regular file (symbolic links followed).

    Args:
        path: the path given.
        what: how to name it (``"input"``, ``"model description"``).
        error: the exception class (or factory) raised.
        missing: the message for a path that does not exist (default
            ``"{what} not found: {path}"``).
    """
    kind = file_kind(path)
    if kind is None:
        return
    if kind == "missing":
        raise error(missing or f"{what} not found: {printable(str(path))}")
    raise error(f"{what} {printable(str(path))} is {kind}, not a file")


def read_bounded(path: Path, what: str, error: Callable[[str], LiveError], limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Opened without blocking, so a FIFO put in the file's place between the
    check and the open is refused too, never waited on.

    Raises:
        ``error``: missing, not a regular file, unreadable, or over ``limit`` bytes.
    """
    shown = printable(str(path))
    check_regular(path, what, error)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"cannot read {what} {shown}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        kind = _kind(info.st_mode)
        if kind is not None:
            raise error(f"{what} {shown} is {kind}, not a file")
        if info.st_size > limit:
            raise error(f"{what} {shown} has {info.st_size} bytes; the most live reads is {limit}")
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise error(f"cannot read {what} {shown}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    if size > limit:
        raise error(f"{what} {shown} has more than {limit} bytes; the most live reads is {limit}")
    return b"".join(chunks)


# ---------------------------------------------------------------- names cv2 can take


def cv_safe(path: str | Path) -> bool:
    """Whether cv2 can be handed ``str(path)``: it must be valid UTF-8 (no surrogate-escaped bytes)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def cv_temp_dir() -> str:
    """The folder for temporary files that cv2 reads or writes: ``tempfile.gettempdir()``, or ``/tmp``.

    ``$TMPDIR`` may name a folder that is not valid UTF-8; a file under it
    would crash cv2's bindings, so such a folder is passed over for ``/tmp``.
    """
    base = tempfile.gettempdir()
    return base if cv_safe(base) else "/tmp"


class PrivateCopy:
    """Copies of a model's files in a private folder (mode 0700, ASCII names), removed by :meth:`close`.

    The crash check and the load both read these copies, so the bytes that
    passed the check are the bytes loaded, even if the user's files are
    replaced in between (a download finishing, a sync tool). Each file keeps
    its suffix under the stem ``model`` (``model.prototxt``, ``model.caffemodel``),
    so companion files are found beside each other as before.

    Args:
        files: the model's files (all of one stem); each must be a regular file.
        error: the exception class raised when one cannot be copied.
    Attributes:
        folder: the private folder.
        paths: original path -> its copy.
    """

    def __init__(self, files: list[Path], error: Callable[[str], LiveError]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="live-model-", dir=cv_temp_dir()))
        self.paths: dict[Path, Path] = {}
        self._remove: weakref.finalize | None = weakref.finalize(self, shutil.rmtree, str(self.folder), True)
        try:
            for original in files:
                check_regular(original, "model file", error)
                copy = self.folder / ("model" + re.sub(r"[^A-Za-z0-9.]", "", original.suffix.lower()))
                try:
                    shutil.copyfile(original, copy)
                except OSError as exc:
                    where = printable(str(original if exc.filename == str(original) else self.folder))
                    raise error(
                        f"cannot copy model file {printable(str(original))} to check it: "
                        f"{exc.strerror or exc} ({where})"
                    ) from exc
                self.paths[original] = copy
        except BaseException:
            self.close()
            raise

    def __contains__(self, original: Path) -> bool:
        return original in self.paths

    def __getitem__(self, original: Path) -> Path:
        return self.paths[original]

    def __getstate__(self) -> dict[str, object]:
        # Handed to the crash-check child (spawn pickles it): the child reads the copies, never removes them.
        return {"folder": self.folder, "paths": self.paths}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._remove = None

    def close(self) -> None:
        """Remove the folder and the copies (also done when the last reference goes, and at exit)."""
        if self._remove is not None:
            self._remove()


@contextlib.contextmanager
def cv_name(path: str | Path) -> Iterator[str]:
    """A name for ``path`` that cv2 can take, valid while the block runs.

    The path itself when it is valid UTF-8; otherwise a symbolic link to it
    (its absolute form) with an ASCII name and the same extension, in a
    private temporary folder removed when the block ends. cv2 opens (or
    creates) the file through the link; a file that does not exist yet is
    created at ``path`` itself.
    """
    text = os.fspath(path)
    if cv_safe(text):
        yield str(text)
        return
    suffix = re.sub(r"[^A-Za-z0-9.]", "", Path(text).suffix)
    folder = tempfile.mkdtemp(prefix="live-name-", dir=cv_temp_dir())
    try:
        link = Path(folder) / f"file{suffix}"
        link.symlink_to(Path(text).absolute())
        yield str(link)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- text for people

_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogate-escaped by the file system codec)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _needs_escape(char: str) -> bool:
    if char in _BIDI:
        return True
    category = unicodedata.category(char)
    return category in ("Cc", "Cs")


def printable(text: str, keep: str = "") -> str:
    """``text`` with control characters, bidirectional overrides and undecodable bytes escaped (``\\x1b``).

    Args:
        text: a name or message.
        keep: characters left as they are (``"\\n"`` for multi-line output).
    """
    if text.isprintable() and not any(c in _BIDI for c in text):
        return text
    return "".join(_escape(c) if c not in keep and _needs_escape(c) else c for c in text)


def no_space(exc: OSError) -> bool:
    """Whether an OSError says the disk (or the quota) is full."""
    return exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
