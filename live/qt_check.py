"""Whether Qt can open a window here, asked of a child process before this one creates its QApplication.

Qt that cannot start (no display, a platform plugin that is missing or whose
system libraries are not installed, a ``QT_QPA_PLATFORM`` that names no
plugin) calls ``abort()``: no Python ``try`` catches that, and the user sees
a multi-line text and a core dump. So a child interpreter creates a
QApplication first, with Qt's plugin diagnostics on; when it dies, its
words become one line naming what is missing and what to do (the Debian or
Ubuntu packages to install, a display, ``--headless``), and the CLI exits 2.

The check starts at once (:func:`start`) and is read later
(:meth:`QtCheck.wait`), so that it runs while the model loads. This module
imports no Qt itself; the child does.
"""

from __future__ import annotations

import ctypes.util
import os
import re
import subprocess
import sys
from pathlib import Path

from live.errors import UsageError

CHILD = "from pyqtgraph.Qt import QtWidgets\napp = QtWidgets.QApplication(['live'])\nprint('qt ok', flush=True)\n"
TIMEOUT_S = 60.0

LIBRARY_PACKAGES: dict[str, str] = {
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
}
"""Shared libraries Qt's platform plugins load (xcb, PyQt5 and PyQt6), and the Debian/Ubuntu package of each.

The values, in this order, are the set-up list of the README and of
``.ci/window-packages`` (a test checks that all three agree).
"""
ALL_PACKAGES = " ".join(dict.fromkeys(LIBRARY_PACKAGES.values()))

_MISSING_LIB = re.compile(r"(lib[\w.+-]+\.so(?:\.\d+)*): cannot open shared object file")
_NO_PLUGIN = re.compile(r'Could not find the Qt platform plugin "([^"]*)"')
_AVAILABLE = re.compile(r"Available platform plugins are: ([^\n]*?)\.?\s*$", re.M)
_NEEDED = re.compile(r"(?:xcb-cursor0 or )?(lib[\w-]+) is needed to load the Qt xcb platform plugin")


def explain(stderr: str, returncode: int, platform: str) -> str:
    """One line saying why Qt could not start (from the child's stderr) and what to do."""
    missing = sorted(set(_MISSING_LIB.findall(stderr)))
    if missing:
        packages = [LIBRARY_PACKAGES.get(lib, lib) for lib in missing]
        return _missing_message(platform, missing, packages)
    if "could not connect to display" in stderr or "cannot open display" in stderr.lower():
        display = os.environ.get("DISPLAY")
        where = f"DISPLAY={display!r} does not answer" if display else "DISPLAY is not set"
        return (
            f"cannot open the window: Qt's {platform} platform plugin could not connect to a display ({where}); "
            "run under X (or xvfb-run), set QT_QPA_PLATFORM=offscreen, or use --headless"
        )
    no_plugin = _NO_PLUGIN.search(stderr)
    if no_plugin:
        available = _AVAILABLE.search(stderr)
        choices = f" (available: {available.group(1).strip()})" if available else ""
        return (
            f"cannot open the window: there is no Qt platform plugin {no_plugin.group(1)!r}{choices}; "
            "set QT_QPA_PLATFORM to one of them, or use --headless"
        )
    # Qt 6 names libxcb-cursor0 whenever its xcb plugin fails, installed or not: believe it only when it is absent.
    needed = [name for name in _NEEDED.findall(stderr) if ctypes.util.find_library(name.removeprefix("lib")) is None]
    if needed:
        return _missing_message(platform, [f"{name}.so" for name in needed], needed)
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("QFactoryLoader")]
    detail = lines[-1] if lines else f"exit status {returncode}"
    return f"cannot open the window: Qt could not start ({detail}); use --headless, or set QT_QPA_PLATFORM=offscreen"


def _missing_message(platform: str, libraries: list[str], packages: list[str]) -> str:
    return (
        f"cannot open the window: Qt's {platform} platform plugin needs system libraries that are missing "
        f"({', '.join(libraries)}); on Debian/Ubuntu: apt-get install {' '.join(packages)} "
        f"(the window's full list: apt-get install {ALL_PACKAGES}), or use --headless"
    )


class QtCheck:
    """A child process creating a QApplication; :meth:`wait` turns its failure into one :class:`UsageError`."""

    def __init__(self) -> None:
        env = dict(os.environ, QT_DEBUG_PLUGINS="1")
        self.platform = os.environ.get("QT_QPA_PLATFORM", "") or ("xcb" if sys.platform == "linux" else "default")
        package_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH", "")]))
        self._child: subprocess.Popen[str] | None = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )

    def wait(self, timeout_s: float = TIMEOUT_S) -> None:
        """Wait for the verdict.

        Raises:
            UsageError: Qt cannot start; one line naming what is missing and what to do.
        """
        child, self._child = self._child, None
        if child is None:
            return
        try:
            out, err = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise UsageError(
                f"cannot open the window: Qt did not start within {timeout_s:.0f} s; use --headless"
            ) from None
        if child.returncode == 0 and "qt ok" in out:
            return
        raise UsageError(explain(err, child.returncode, self.platform))

    def cancel(self) -> None:
        """Stop the check (the command ended before the window was needed)."""
        child, self._child = self._child, None
        if child is not None:
            child.kill()
            child.communicate()


def start() -> QtCheck:
    """Start checking, in a child process, whether Qt can open a window here."""
    return QtCheck()
