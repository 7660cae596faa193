"""``python -m live``: the same as the ``live`` console script."""

from __future__ import annotations

import sys

from live.cli import main

sys.exit(main())
