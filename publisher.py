#!/usr/bin/env python3
"""livecam publisher: see README.md, or run `python3 publisher.py --help`."""

import sys

from livecam.cli import main

if __name__ == "__main__":
    sys.exit(main())
