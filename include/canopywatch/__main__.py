import sys

from canopywatch.cli import main

sys.exit(main())
