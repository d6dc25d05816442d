"""`publish.frame_keys`: each image also under an immutable per-frame key.

Behind a CDN the fixed names (`live800x600.jpeg`) are not safe to load as the frame a
manifest names: a cache that leaves the query string out of its key (CloudFront's
default) answers `live800x600.jpeg?v=43` with frame 42's bytes for its minimum TTL.
`frames/<seq>-<run>/<name>` is written once and never changed, so any cache may keep it
for a year; `live.json` is then the only short-lived object, and the fixed names stay
for plain `<img>` embeds. A key the manifest no longer names is deleted, in batches,
once no viewer can still be loading it.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import replace

from livecam.rendered import Rendered

PREFIX = "frames/"
IMMUTABLE = "public, max-age=31536000, immutable"
# A viewer loads an image at most 30 s after reading the manifest (live-embed.js gives up
# then): twice that, and no viewer still wants a replaced frame.
GRACE = 60.0
PRUNE_EVERY = 60.0  # seconds between deletions: one batch a minute


def run_id() -> str:
    """A token for one start of the publisher: the start time in ms, in hex. `seq` starts
    at 1 again where the target lost `live.json` (a tmpfs after a reboot, a wiped
    bucket), and caches keep a frame key for a year: with the token, a key never names
    two pictures."""
    return format(time.time_ns() // 1_000_000, "x")


def key(seq: int, run: str, name: str) -> str:
    """The immutable key of image `name` of frame `seq` of the run `run`."""
    return f"{PREFIX}{seq}-{run}/{name}"


def copies(images: Sequence[Rendered], keys: dict[str, str]) -> list[Rendered]:
    """The per-frame copies of `images`, under the keys the manifest gives them."""
    return [replace(r, name=keys[r.name], immutable=True) for r in images if keys.get(r.name)]


def named(manifest: bytes | None) -> list[str]:
    """The frame keys a published manifest names ([] for none or a garbled one)."""
    try:
        images = json.loads(manifest or b"{}").get("images")
        keys = [e.get("key") for e in images.values()] if isinstance(images, dict) else []
    except (ValueError, AttributeError):
        return []
    return [k for k in keys if isinstance(k, str) and k.startswith(PREFIX)]


class Retention:
    """Frame keys the manifest stopped naming, deleted `grace` s later."""

    def __init__(self, grace: float = GRACE) -> None:
        self.grace = grace
        self._replaced: deque[tuple[float, str]] = deque()

    def replaced(self, before: Iterable[str], after: Iterable[str], now: float) -> None:
        """The manifest named the keys `before` and now names `after`."""
        named = set(after)
        for k in before:
            if k and k not in named:
                self._replaced.append((now, k))

    def due(self, now: float) -> list[str]:
        """Keys replaced at least `grace` s ago, oldest first; `failed` puts them back."""
        out = []
        while self._replaced and now - self._replaced[0][0] >= self.grace:
            out.append(self._replaced.popleft()[1])
        return out

    def failed(self, keys: Sequence[str], now: float) -> None:
        """Deleting `keys` failed: try again with the next batch."""
        self._replaced.extendleft((now - self.grace, k) for k in reversed(keys))

    def __len__(self) -> int:
        return len(self._replaced)
