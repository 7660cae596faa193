"""Load an untrusted model in a child process first, so that OpenCV crashing on it cannot take ``live`` down.

cv2.dnn is native code: a malformed model file can kill the process with a
signal (SIGSEGV, SIGFPE) instead of raising ``cv2.error``, and no Python
``except`` catches that. :func:`probe_model` starts a fresh interpreter
(``multiprocessing``'s spawn context: no state inherited from this process,
no OpenCL touched yet) and hands it the :class:`~live.model.Settings` value
itself, the very object the caller will load with; the child loads the model
exactly so and sends back its verdict. A child killed by a signal, a child
that fails (its own one-line error, with the same error class) and a child
that hangs past the time limit each become one :class:`~live.errors.LiveError`
line here. Only when the child loaded the model cleanly does the caller load
it itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from live import errors
from live.errors import LiveError, ModelError, UsageError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

TIMEOUT_ENV = "LIVE_PROBE_TIMEOUT"
"""Seconds the child may take, overriding the default."""
DEFAULT_TIMEOUT_S = 120.0


MAX_TIMEOUT_S = 86400.0


def probe_timeout(default: float = DEFAULT_TIMEOUT_S) -> float:
    """The probe's time limit: ``$LIVE_PROBE_TIMEOUT`` seconds when set, else ``default``.

    Raises:
        UsageError: a value that is not a number of seconds in (0, 86400]
            (``inf`` would wait forever on a hanging child; ``nan`` never times out).
    """
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT_S:
        raise UsageError(
            f"{TIMEOUT_ENV} must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:.0f}, got {text!r}"
        )
    return value


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _child(path: str, settings: Any, conn: Connection, data: bytes | None = None, copy: Any = None) -> None:
    """In the child: say which OpenCV this is, load the model as the parent will, send the verdict."""
    from live.engines import configure_opencl

    configure_opencl(settings.opencl_device)  # before anything touches OpenCL, as in the parent
    import cv2

    from live.model import Model

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    conn.send(("opencv", cv2.__version__))
    try:
        Model.load(path, settings, data=data, copy=copy)
    except LiveError as exc:
        conn.send(("error", (type(exc).__name__, str(exc))))
    except Exception as exc:  # noqa: BLE001 - every failure of the child is the verdict
        first = str(exc).strip().splitlines()
        conn.send(("error", ("ModelError", f"{type(exc).__name__}: {first[-1] if first else ''}")))
    else:
        conn.send(("ok", None))
    conn.close()


def probe_model(
    path: Path, settings: Any, timeout_s: float = DEFAULT_TIMEOUT_S, data: bytes | None = None, copy: Any = None
) -> None:
    """Load the model in a child process with ``settings``; raise if the child fails, crashes or hangs.

    Args:
        path: the model file (named in the messages).
        settings: the :class:`~live.model.Settings` the caller will load
            with (engine, target, preprocessing, description, OpenCL device).
        timeout_s: seconds before the child is killed.
        data: the ONNX file's bytes, already read: the child checks these
            very bytes, which the caller then loads (a file replaced in
            between cannot slip through unchecked).
        copy: for the other formats, the :class:`~live.files.PrivateCopy`
            of the model's files that the child reads and the caller then loads.

    Returns:
        None when the child loaded the model: the caller then loads it itself.

    Raises:
        ModelError: when the child was killed by a signal (OpenCV crashed),
            took longer than ``timeout_s``, or could not be started.
        LiveError: the child's own error, of the same class and message
            (a bad layer, a target that is not available, ...).
    """
    import multiprocessing  # imported here: a file whose verdict is kept never starts a child

    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child, args=(str(path), settings, sender, data, copy), name="live-probe", daemon=True
    )
    try:
        child.start()
    except OSError as exc:
        raise ModelError(f"cannot start a process to check {path}: {exc.strerror or exc}") from exc
    finally:
        sender.close()
    messages: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    timed_out = False
    try:
        while not messages.keys() & {"ok", "error"}:
            left = deadline - time.monotonic()
            if left <= 0 or not receiver.poll(left):
                timed_out = True
                break
            try:
                kind, value = receiver.recv()
            except EOFError:  # the child died without a verdict
                break
            messages[kind] = value
        if not timed_out:
            child.join(max(1.0, deadline - time.monotonic()))
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        receiver.close()
    if "ok" in messages:
        return
    if "error" in messages:
        kind, message = messages["error"]
        error_class = getattr(errors, kind, None)
        if not (isinstance(error_class, type) and issubclass(error_class, LiveError)):
            error_class = ModelError
        raise error_class(message)
    if timed_out:
        raise ModelError(f"reading {path} took over {timeout_s:.0f} s; gave up")
    code = child.exitcode
    if code is not None and code < 0:
        raise ModelError(
            f"OpenCV crashed ({_signal_name(-code)}) reading {path}; the model is malformed or "
            f"not supported by OpenCV {messages.get('opencv', 'unknown')} (engine {settings.engine})"
        )
    raise ModelError(f"the model check of {path} exited with status {code} and no message")


class Verdicts:
    """Which model files have passed the crash check: one empty file per (bytes, OpenCV, settings) that loaded.

    A file that has loaded cleanly in a child process with the same bytes
    (by sha256), the same OpenCV build and the same settings needs no second
    check. Only passes are kept; a failure is checked again next time.

    Args:
        folder: where the marks are kept (created on first use).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @staticmethod
    def key(sha256: str, settings: Any) -> str:
        """The mark's name: a hash of the file's sha256, the OpenCV version and build, and the settings."""
        import cv2

        text = "\0".join([sha256, cv2.__version__, str(len(cv2.getBuildInformation())), repr(settings)])
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()

    def passed(self, key: str) -> bool:
        """Whether bytes and settings with this key passed before."""
        return (self.folder / key).is_file()

    def record(self, key: str) -> None:
        """Keep a pass; a cache folder that cannot be written only costs the next run a check."""
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / key).touch()
