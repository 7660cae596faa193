"""The window's key bindings, written once: shortcuts, the help overlay and the README's key table.

Pure Python (no Qt): :mod:`live.qt_window` turns each key name into a Qt key
(``QtCore.Qt.Key.Key_<name>``) and each action into one of its methods;
``tests/test_keys.py`` checks that the README's table is :func:`markdown_table`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Binding:
    """Keys that run one window action.

    Attributes:
        keys: Qt key names without the ``Key_`` prefix (``"PageUp"``, ``"U"``, ``"Period"``).
        action: the name of the :class:`live.qt_window.LiveWindow` method the keys call (no arguments).
        help: what the action does, as the help overlay and the README say it.
    """

    keys: tuple[str, ...]
    action: str
    help: str


@dataclass(frozen=True)
class MouseBinding:
    """A mouse gesture, listed with the keys (the window handles it on its own, not through this table).

    Attributes:
        gesture: how the docs name it (``"click a tile"``).
        help: what it does.
    """

    gesture: str
    help: str


BINDINGS: tuple[Binding, ...] = (
    Binding(("PageUp", "U"), "previous_layer", "previous layer (of those the filter shows)"),
    Binding(("PageDown", "O"), "next_layer", "next layer (of those the filter shows)"),
    Binding(("P",), "toggle_pin", "pin / unpin the shown layer: up to 4 grids side by side, one forward pass"),
    Binding(("Left",), "move_left", "select the feature map to the left"),
    Binding(("Right",), "move_right", "select the feature map to the right"),
    Binding(("Up",), "move_up", "select the feature map above"),
    Binding(("Down",), "move_down", "select the feature map below"),
    Binding(("Space",), "toggle_pause", "pause / resume"),
    Binding(("Period",), "step", "one frame while paused"),
    Binding(("S",), "snapshot", "snapshot: grid PNG, raw blob `.npy`, JSON of settings and stats"),
    Binding(("C",), "toggle_cam", "class activation map over the input: where the network looks (on / off)"),
    Binding(("T",), "toggle_timing", "timing panel: where the time goes, layer by layer (on / off)"),
    Binding(("R",), "reset_units", "reset the units: forget the top-9 and statistics gathered so far"),
    Binding(("F",), "toggle_fullscreen", "fullscreen / back"),
    Binding(("H", "Question"), "toggle_help", "help overlay (on / off)"),
    Binding(("Escape",), "close_help", "leave the layer filter or the source field; close the help"),
)
"""Every window shortcut, in the order the help overlay and the README list them."""

MOUSE: tuple[MouseBinding, ...] = (
    MouseBinding("click a tile", "select that map: enlarged below the grid, with its index and value range"),
)
"""Mouse gestures, listed after the keys."""

LEAVE_FILTER: tuple[str, ...] = ("Escape", "Return", "Enter", "Down")
"""Keys that leave the layer filter box (every other key is typed into it)."""

LEAVE_SOURCE: tuple[str, ...] = ("Escape",)
"""Keys that leave the source field (Enter switches to the typed source and leaves it too)."""

_TEXTS = {"Period": ".", "Question": "?"}
_LABELS = {
    "Space": "space",
    "Escape": "Esc",
    "Left": "Left arrow",
    "Right": "Right arrow",
    "Up": "Up arrow",
    "Down": "Down arrow",
}


def key_text(name: str) -> str:
    """The character a key types (``"U"`` -> ``"u"``, ``"Question"`` -> ``"?"``), or ``""`` for keys like PageUp."""
    if len(name) == 1 and name.isalpha():
        return name.lower()
    return _TEXTS.get(name, "")


def key_label(name: str) -> str:
    """How the README shows a key: typed characters in backticks (``"`u`"``), other keys by name."""
    text = key_text(name)
    return f"`{text}`" if text else _LABELS.get(name, name)


def text_actions() -> dict[str, str]:
    """Typed character -> action, for keys matched by their text (a ``?`` that a layout sends as another key)."""
    return {key_text(key): b.action for b in BINDINGS for key in b.keys if key_text(key)}


def _rows() -> list[tuple[str, str]]:
    """(keys as markdown, help as markdown) for every binding, then every mouse gesture."""
    rows = [(", ".join(key_label(key) for key in b.keys), b.help) for b in BINDINGS]
    return rows + [(m.gesture, m.help) for m in MOUSE]


def markdown_table() -> str:
    """The README's "Keys in the window" table (no trailing newline)."""
    lines = ["| key | action |", "|---|---|"]
    lines += [f"| {keys} | {help_} |" for keys, help_ in _rows()]
    return "\n".join(lines)


def _md_to_html(text: str) -> str:
    """Escape for HTML and turn markdown's `code` spans into bold."""
    parts = html.escape(text).split("`")
    return "".join(f"<b>{part}</b>" if i % 2 else part for i, part in enumerate(parts))


def help_html() -> str:
    """The help overlay: a two-column rich-text table of keys and what they do."""
    cell = '<tr><td style="padding-right: 16px">{}</td><td>{}</td></tr>'
    rows = "".join(cell.format(_md_to_html(keys), _md_to_html(help_)) for keys, help_ in _rows())
    return f"<b>Keys</b><table>{rows}</table>"
