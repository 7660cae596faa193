"""``python -m live``: the same as the ``live`` console script."""

from __future__ import annotations

import sys

from live.cli import main

if __name__ == "__main__":  # not when multiprocessing imports it in a child
    sys.exit(main())
