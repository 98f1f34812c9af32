"""``python -m wheelshade``."""

from __future__ import annotations

import sys

from wheelshade.cli import main

sys.exit(main())
