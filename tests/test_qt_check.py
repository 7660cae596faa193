"""Qt that cannot start is one line and exit 2, never SIGABRT; the window's system packages are listed once."""

from __future__ import annotations

import os
import re
from pathlib import Path

from live.qt_check import ALL_PACKAGES, explain
from tests.helpers import REPO, assert_one_line_error, run_live

# What Qt 6.8 prints with QT_DEBUG_PLUGINS=1 when libxcb-icccm4 is not installed (seen on a bare Debian).
MISSING_ICCCM = """\
QFactoryLoader::QFactoryLoader() checking directory path "/venv/PyQt6/Qt6/plugins/platforms" ...
QLibraryPrivate::loadPlugin failed on "/venv/PyQt6/Qt6/plugins/platforms/libqxcb.so" : "Cannot load library \
/venv/PyQt6/Qt6/plugins/platforms/libqxcb.so: (libxcb-icccm.so.4: cannot open shared object file: No such file or \
directory)"
qt.qpa.plugin: From 6.5.0, xcb-cursor0 or libxcb-cursor0 is needed to load the Qt xcb platform plugin.
qt.qpa.plugin: Could not load the Qt platform plugin "xcb" in "" even though it was found.
This application failed to start because no Qt platform plugin could be initialized.
"""


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_xcb_without_a_display_is_one_line(net_dir: Path, clip: Path, tmp_path: Path) -> None:
    result = run_live("run", "-s", clip, "-m", net_dir / "two_heads.onnx", "--size", "32", cwd=tmp_path,
                      env=_env(QT_QPA_PLATFORM="xcb", DISPLAY=None, WAYLAND_DISPLAY=None))  # fmt: skip
    assert_one_line_error(result, "could not connect to a display", "DISPLAY is not set", "--headless")
    assert result.returncode == 2


def test_plain_live_without_a_display_is_one_line(tmp_path: Path) -> None:
    """The issue's case: `live` with QT_QPA_PLATFORM=xcb and no DISPLAY (here on the demo, no camera)."""
    result = run_live("--source", "demo", cwd=tmp_path, env=_env(QT_QPA_PLATFORM="xcb", DISPLAY=None))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("live: error: cannot open the window: ")


def test_a_platform_that_does_not_exist_is_one_line(net_dir: Path, clip: Path, tmp_path: Path) -> None:
    result = run_live("run", "-s", clip, "-m", net_dir / "two_heads.onnx", "--size", "32", cwd=tmp_path,
                      env=_env(QT_QPA_PLATFORM="nosuchplatform"))  # fmt: skip
    assert_one_line_error(result, "no Qt platform plugin 'nosuchplatform'", "offscreen", "--headless")


def test_missing_libraries_are_named_with_their_packages() -> None:
    line = explain(MISSING_ICCCM, -6, "xcb")
    assert "\n" not in line
    assert "libxcb-icccm.so.4" in line and "apt-get install libxcb-icccm4 " in line and "--headless" in line
    assert ALL_PACKAGES in line


def test_headless_needs_no_qt(net_dir: Path, clip: Path, tmp_path: Path) -> None:
    result = run_live("run", "--headless", "-s", clip, "-m", net_dir / "two_heads.onnx", "--size", "32",
                      "--frames", "2", cwd=tmp_path, env=_env(QT_QPA_PLATFORM="nosuchplatform"))  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_package_list_is_the_same_everywhere() -> None:
    ci = (REPO / ".ci" / "window-packages").read_text()
    assert f"apt-get install -y {ALL_PACKAGES}\n" in ci
    readme = (REPO / "README.md").read_text()
    assert re.search(rf"^sudo apt-get install -y {re.escape(ALL_PACKAGES)}$", readme, re.M)
