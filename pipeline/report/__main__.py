"""``python -m pipeline.report``: see ``pipeline.report.tearsheet.main``."""

from pipeline.report.tearsheet import main

raise SystemExit(main())
