"""Errors that ``live`` raises on purpose.

Library code raises these; only :mod:`live.cli` turns them into a one-line
message and a non-zero exit status. Each message names the offending value.
"""

from __future__ import annotations


class LiveError(Exception):
    """Base of every error ``live`` reports to the user as one line."""

    exit_code = 2


class SourceError(LiveError):
    """A frame source (camera, file, stream, image) cannot be used."""


class ModelError(LiveError):
    """A network file cannot be read, or its preprocessing does not fit it."""


class LayerError(LiveError):
    """A layer name is unknown, or that layer cannot be tapped."""


class BackendError(LiveError):
    """A backend, target or engine was asked for that is not available."""


class DownloadError(LiveError):
    """A model download failed or did not verify."""


class UsageError(LiveError):
    """An option value is invalid (negative size, unwritable path, ...)."""


class OutputError(LiveError):
    """A file could not be written (a full disk, an I/O error); nothing half-written is left under its name."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP: ends a run as Ctrl-C does (a :class:`KeyboardInterrupt`), with the signal's exit status.

    Attributes:
        signum: the signal received.
    """

    def __init__(self, signum: int, *args: object) -> None:
        super().__init__(*args)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        """``"SIGTERM"``, ``"SIGHUP"``."""
        import signal

        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process ended by that signal (143 for SIGTERM)."""
        return 128 + self.signum
