"""The daily timelapse: an H.264 MP4 of a finished day's archived frames.

Encoded with PyAV (libx264 ships inside its wheels for x86-64 and aarch64: no system
ffmpeg to install or to version-match). Frames are streamed one at a time from the
target (read, decode, encode, drop), the MP4 goes to a temp file and is uploaded from
it, so memory does not grow with the number of frames (docs/history.md has the peak
RSS at 200 and 1,440 frames). The publishing service runs this as a separate `nice`
process (`livecam timelapse --background`) after each day ends.

Published beside the day's frames: `timelapse.mp4`, `poster.jpeg` (the frame nearest
local noon) and the day strip made from every frame; then the day index names them.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image

from livecam.config import ArchiveConfig
from livecam.errors import TimelapseError
from livecam.history.archive import (
    IMMUTABLE,
    JPEG,
    JSON,
    MAX_INDEX_BYTES,
    MP4,
    DayIndex,
    day_folder,
    index_key,
    parse_t,
    strip_key,
)
from livecam.history.strip import Strip, centre_column
from livecam.targets.base import Target

log = logging.getLogger(__name__)

MAX_WIDTH = 1920
NICE = 10  # the background process yields the CPU to the publishing loop
# x264 settings: constant quality; "veryfast" keeps a day's encode short on a Pi and
# its lookahead (the frames x264 holds at once) small; two threads bound its buffers.
X264 = {"crf": "23", "preset": "veryfast", "threads": "2"}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Result:
    """A published timelapse."""

    key: str
    frames: int
    width: int
    height: int
    bytes: int


def video_size(width: int, height: int) -> tuple[int, int]:
    """The video's size for frames of `width` x `height`: at most MAX_WIDTH wide, both
    even (H.264's 4:2:0 needs it)."""
    if width > MAX_WIDTH:
        height, width = round(height * MAX_WIDTH / width), MAX_WIDTH
    return max(2, width - width % 2), max(2, height - height % 2)


def make(
    target: Target,
    cfg: ArchiveConfig,
    day: dt.date,
    progress: Progress | None = None,
    index_cache: str = "no-cache",
) -> Result:
    """Make and publish the timelapse of `day`; raises `TimelapseError` or
    `PublishError`."""
    try:
        import av
    except ImportError as e:
        raise TimelapseError(
            "the timelapse needs PyAV: pip install 'livecam[timelapse]' "
            "(or set archive.timelapse = false)"
        ) from e

    index = DayIndex.parse(day, target.read_object(index_key(day), MAX_INDEX_BYTES))
    if index is None or not index.frames:
        raise TimelapseError(f"no frames archived on {day} ({index_key(day)} names none)")
    first = index.frames[0]
    size = video_size(int(first.get("width", 0)) or 2, int(first.get("height", 0)) or 2)
    noon = dt.datetime.combine(day, dt.time(12), ZoneInfo(cfg.timezone))
    poster: tuple[float, bytes] | None = None
    strip = Strip()
    total, done = len(index.frames), 0
    with tempfile.TemporaryDirectory(prefix="livecam-timelapse-") as tmp:
        path = os.path.join(tmp, "timelapse.mp4")
        with av.open(path, "w", format="mp4") as container:
            stream: Any = container.add_stream("libx264", rate=cfg.fps, options=X264)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            for n, frame in enumerate(index.frames):
                data = target.read_object(str(frame["key"]))
                image = _decode(data, str(frame["key"]))
                if image is not None:
                    t = parse_t(frame.get("t"))
                    if t is not None:
                        local = t.astimezone(noon.tzinfo)
                        column = centre_column(image)
                        strip.paint(local.hour * 60 + local.minute, max(1, cfg.every // 60), column)
                        distance = abs((t - noon).total_seconds())
                        if data is not None and (poster is None or distance < poster[0]):
                            poster = (distance, data)
                    if image.size != size:
                        image = image.resize(size, Image.Resampling.BILINEAR)
                    video = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
                    video.pts = done
                    video.time_base = Fraction(1, cfg.fps)
                    container.mux(stream.encode(video))
                    done += 1
                    del image, video
                if progress:
                    progress(n + 1, total)
            container.mux(stream.encode(None))
        if not done:
            raise TimelapseError(f"none of the {total} frames of {day} could be read")
        folder = day_folder(day)
        key = folder + "timelapse.mp4"
        target.put_file(key, path, content_type=MP4, cache_control=IMMUTABLE)
        size_bytes = os.path.getsize(path)
    poster_key = None
    if poster is not None:
        poster_key = folder + "poster.jpeg"
        target.put_object(poster_key, poster[1], content_type=JPEG, cache_control=IMMUTABLE)
    target.put_object(strip_key(day), strip.encode(), content_type=JPEG, cache_control=index_cache)
    # Read again: the index is the one object shared with the archive; a finished day's
    # is no longer written by it.
    latest = DayIndex.parse(day, target.read_object(index_key(day), MAX_INDEX_BYTES)) or index
    latest.timelapse, latest.poster, latest.strip = key, poster_key, strip_key(day)
    target.put_object(latest.key, latest.to_json(), content_type=JSON, cache_control=index_cache)
    return Result(key, done, size[0], size[1], size_bytes)


def _decode(data: bytes | None, key: str) -> Image.Image | None:
    if data is None:
        log.warning("timelapse: %s is missing; skipped", key)
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        log.warning("timelapse: %s does not decode (%s); skipped", key, e)
        return None


def background() -> None:
    """Lower this process's priority: the publishing loop comes first."""
    try:
        os.nice(NICE)
    except OSError as e:
        log.warning("timelapse: cannot lower the priority: %s", e)
