"""The key table of live/keys.py is the one the README, the help overlay and the window use.

Pressing the keys on the real window is tested in tests/test_window.py.
"""

from __future__ import annotations

from pathlib import Path

from live import keys

README = Path(__file__).resolve().parents[1] / "README.md"
TABLE_INTRO = "Plus the grid and model options below. Keys in the window:"


def _readme_key_table() -> str:
    """The README's table: from the line after TABLE_INTRO's blank line to the next blank line."""
    lines = README.read_text().splitlines()
    start = lines.index(TABLE_INTRO) + 1
    while not lines[start].strip():
        start += 1
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    return "\n".join(lines[start:end])


def test_the_readme_key_table_is_generated_from_the_bindings() -> None:
    assert _readme_key_table() == keys.markdown_table()


def test_every_key_and_gesture_is_in_the_table_and_the_help() -> None:
    table, help_html = keys.markdown_table(), keys.help_html()
    for binding in keys.BINDINGS:
        row = f"| {', '.join(keys.key_label(key) for key in binding.keys)} | {binding.help} |"
        assert row in table.splitlines()
        assert keys.key_label(binding.keys[0]).strip("`") in help_html
    for gesture in keys.MOUSE:
        assert f"| {gesture.gesture} | {gesture.help} |" in table.splitlines()
        assert gesture.gesture in help_html


def test_bindings_are_unambiguous() -> None:
    names = [key for binding in keys.BINDINGS for key in binding.keys]
    assert len(names) == len(set(names)), "a key bound twice"
    actions = [binding.action for binding in keys.BINDINGS]
    assert len(actions) == len(set(actions)), "an action listed twice (give it one row with all its keys)"
    assert all(binding.keys for binding in keys.BINDINGS)


def test_typed_characters() -> None:
    assert keys.key_text("U") == "u" and keys.key_text("Question") == "?" and keys.key_text("PageUp") == ""
    assert keys.text_actions()["?"] == "toggle_help"
    assert keys.text_actions()["."] == "step"


def test_every_action_is_a_window_method_and_every_key_a_qt_key() -> None:
    from pyqtgraph.Qt import QtCore

    from live.qt_window import LiveWindow

    for binding in keys.BINDINGS:
        assert callable(getattr(LiveWindow, binding.action, None)), f"LiveWindow has no method {binding.action}"
    for name in {key for binding in keys.BINDINGS for key in binding.keys} | {*keys.LEAVE_FILTER, *keys.LEAVE_SOURCE}:
        assert isinstance(getattr(QtCore.Qt.Key, "Key_" + name, None), QtCore.Qt.Key), f"no Qt key Key_{name}"
