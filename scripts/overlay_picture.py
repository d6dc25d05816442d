#!/usr/bin/env python3
"""The README's overlay picture: `publisher.py once` with the test camera and the overlay
on, its 320x240 and 1280x720 variants side by side, each at its own size.

    .venv/bin/python scripts/overlay_picture.py docs/overlay.jpeg
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
[camera]
source = "test"
width = 1920
height = 1080

[[variants]]
name = "live1280x720.jpeg"
width = 1280
height = 720

[[variants]]
name = "live320x240.jpeg"
width = 320
height = 240

[target]
kind = "local"
path = "{dir}/live"

[site]
enabled = false
title = "Roof cam"

[overlay]
enabled = true
text = "{{title}} · %Y-%m-%d %H:%M:%S %Z"
timezone = "UTC"
"""


def main(out: str) -> int:
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory, "config.toml")
        config.write_text(CONFIG.format(dir=directory))
        subprocess.run(
            [sys.executable, str(ROOT / "publisher.py"), "once", "-c", str(config)], check=True
        )
        small = Image.open(Path(directory, "live", "live320x240.jpeg")).convert("RGB")
        large = Image.open(Path(directory, "live", "live1280x720.jpeg")).convert("RGB")
    gap = 16
    sheet = Image.new("RGB", (small.width + gap + large.width, large.height), (255, 255, 255))
    sheet.paste(small, (0, 0))
    sheet.paste(large, (small.width + gap, 0))
    sheet.save(out, quality=90)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docs" / "overlay.jpeg")))
