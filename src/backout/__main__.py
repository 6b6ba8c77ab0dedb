"""``python -m backout``."""

from backout.cli import main

raise SystemExit(main())
