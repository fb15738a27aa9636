"""``python -m canopywatch_dev.detection evaluate ...`` (see ``cli.py``)."""

from canopywatch_dev.detection.cli import main

raise SystemExit(main())
