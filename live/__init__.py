"""live: watch what a convolutional network sees, while it sees it."""

from __future__ import annotations

__version__ = "0.1.0"
