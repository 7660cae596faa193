"""Load an untrusted model in a child process first, so that OpenCV crashing on it cannot take ``live`` down.

cv2.dnn is native code: a malformed model file can kill the process with a
signal (SIGSEGV, SIGFPE) instead of raising ``cv2.error``, and no Python
``except`` catches that. :func:`probe_model` runs ``live layers`` on the model
in a child process, with the same settings, and turns a crash, a failure or a
hang of the child into one :class:`~live.errors.ModelError` line. Only when
the child loaded the model cleanly does the caller load it itself.

The child runs with ``LIVE_IN_PROBE=1`` in its environment, which tells the
CLI not to probe again (no recursion) and to announce its OpenCV version on
stderr first, so that a crash report can name it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from live.errors import ModelError

PROBE_ENV = "LIVE_IN_PROBE"
"""Set to ``1`` in the child's environment: the CLI then never probes again."""
TIMEOUT_ENV = "LIVE_PROBE_TIMEOUT"
"""Seconds the child may take, overriding the default (the CLI reads it)."""
VERSION_LINE = "live: probe: OpenCV "
"""How the child announces its OpenCV version on stderr (before it reads the model)."""

_ERROR_LINE = re.compile(r"^live(?: [\w-]+)*: error: ")  # live: error: ..., or argparse's live layers: error: ...
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def in_probe() -> bool:
    """Whether this process is a probe child (it must not start another)."""
    return os.environ.get(PROBE_ENV, "") == "1"


def probe_timeout(default: float = 120.0) -> float:
    """The probe's time limit: ``$LIVE_PROBE_TIMEOUT`` seconds when it is a positive number, else ``default``."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(text)
    except ValueError:
        return default
    return value if value > 0 else default


def _child_env() -> dict[str, str]:
    """This process's environment, marked as a probe, importing this very ``live`` package."""
    env = dict(os.environ)
    env[PROBE_ENV] = "1"
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(_PACKAGE_ROOT) not in paths:
        env["PYTHONPATH"] = os.pathsep.join([str(_PACKAGE_ROOT), *paths])
    return env


def _engine(settings_args: Sequence[str]) -> str:
    """The engine the arguments ask for (``--engine X`` or ``--engine=X``), else ``auto``."""
    engine = "auto"
    for i, arg in enumerate(settings_args):
        if arg.startswith("--engine="):
            engine = arg.split("=", 1)[1]
        elif arg == "--engine" and i + 1 < len(settings_args):
            engine = settings_args[i + 1]
    return engine


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _opencv_version(stderr: str) -> str:
    for line in stderr.splitlines():
        if line.startswith(VERSION_LINE):
            return line[len(VERSION_LINE) :].strip() or "unknown"
    return "unknown"


def _child_message(stderr: str, returncode: int) -> str:
    """The child's own one-line error, without its ``live: error:`` prefix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        match = _ERROR_LINE.match(line)
        if match:
            return line[match.end() :]
    others = [line for line in lines if not line.startswith(VERSION_LINE)]
    if others:
        return others[-1]
    return f"the model check exited with status {returncode} and no message"


def probe_model(
    path: Path, settings_args: list[str], timeout_s: float = 120.0, *, model_arg: str | None = None
) -> None:
    """Load the model in a child process (``live layers --json``); raise if the child fails, crashes or hangs.

    Args:
        path: the model file (named in the messages).
        settings_args: the model-related command-line flags the caller was
            given (engine, target, preprocessing, ...), so that the child
            loads exactly what the caller will.
        timeout_s: seconds before the child is killed.
        model_arg: what the child gets as ``--model`` (a catalog name, so
            that it finds the catalog's preprocessing too); default ``path``.

    Returns:
        None when the child loaded the model and exited 0: the caller then
        loads it itself.

    Raises:
        ModelError: one line, when the child was killed by a signal (OpenCV
            crashed), exited with an error (its own message), or took longer
            than ``timeout_s``.
    """
    command = [
        sys.executable,
        "-m",
        "live",
        "layers",
        "--model",
        model_arg if model_arg is not None else str(path),
        "--json",
        *settings_args,
    ]
    try:
        result = subprocess.run(
            command,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:  # subprocess.run has killed the child
        raise ModelError(f"reading {path} took over {timeout_s:.0f} s; gave up") from None
    except OSError as exc:
        raise ModelError(f"cannot start a process to check {path}: {exc.strerror or exc}") from exc
    if result.returncode == 0:
        return
    if result.returncode < 0:
        raise ModelError(
            f"OpenCV crashed ({_signal_name(-result.returncode)}) reading {path}; the model is malformed or "
            f"not supported by OpenCV {_opencv_version(result.stderr)} (engine {_engine(settings_args)})"
        )
    raise ModelError(_child_message(result.stderr, result.returncode))
