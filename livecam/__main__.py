"""`python -m livecam`: the same commands as publisher.py (the archive starts its
timelapses this way)."""

import sys

from livecam.cli import main

sys.exit(main())
