"""``python -m pipeline.dashboard``: see ``pipeline.dashboard.server.main``."""

from pipeline.dashboard.server import main

raise SystemExit(main())
