"""The day strip (a keogram): one image of a whole day, a column per minute.

Column x shows minute x of the day in the archive's time zone: the centre column of the
frame archived at that minute, resized to the strip's height. With `every` over a
minute a frame fills the minutes until the next one is due; minutes without a frame
stay black. The page uses the strip as the track of its day scrubber.
"""

from __future__ import annotations

import io
import logging

from PIL import Image

WIDTH, HEIGHT = 1440, 120  # a column per minute of the day; tall enough to read the sky
QUALITY = 85

log = logging.getLogger(__name__)


def centre_column(image: Image.Image) -> Image.Image:
    """The image's centre column, resized to the strip's height (RGB, 1 x HEIGHT)."""
    x = image.width // 2
    column = image.crop((x, 0, x + 1, image.height))
    if column.mode != "RGB":
        column = column.convert("RGB")
    return column.resize((1, HEIGHT), Image.Resampling.BILINEAR)


def decode_column(jpeg: bytes) -> Image.Image:
    """The centre column of a JPEG, decoded at a reduced scale where that still leaves
    HEIGHT rows (libjpeg's DCT scaling: a fraction of the decoding work)."""
    with Image.open(io.BytesIO(jpeg)) as image:
        image.draft("RGB", (max(1, image.width * HEIGHT // image.height), HEIGHT))
        return centre_column(image)


class Strip:
    """One day's strip, painted frame by frame."""

    def __init__(self) -> None:
        self.image = Image.new("RGB", (WIDTH, HEIGHT))
        self.changed = False

    def paint(self, minute: int, span: int, column: Image.Image) -> None:
        """Fill the columns of minutes `minute` .. `minute + span - 1` with `column`."""
        span = max(1, min(span, WIDTH - minute))
        if 0 <= minute < WIDTH:
            self.image.paste(column.resize((span, HEIGHT)), (minute, 0))
            self.changed = True

    def paint_jpeg(self, minute: int, span: int, jpeg: bytes) -> bool:
        """`paint` a JPEG's centre column; False (and nothing painted) if it does not decode."""
        try:
            column = decode_column(jpeg)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            log.warning("cannot decode an archived frame for the day strip: %s", e)
            return False
        self.paint(minute, span, column)
        return True

    def load(self, jpeg: bytes) -> bool:
        """Continue from a published strip; False if it is not one."""
        try:
            with Image.open(io.BytesIO(jpeg)) as image:
                if image.size != (WIDTH, HEIGHT):
                    return False
                self.image = image.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError):
            return False
        return True

    def encode(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, "JPEG", quality=QUALITY)
        self.changed = False
        return out.getvalue()
