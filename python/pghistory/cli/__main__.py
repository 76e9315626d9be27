"""``python -m pghistory.cli``: the ``pghistory`` console script."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
