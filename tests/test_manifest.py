"""live.json's state: seq, each image's entry (the frame it shows), which variants are due."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from livecam import config
from livecam.manifest import Manifest


@dataclass
class Image:
    name: str
    width: int = 64
    height: int = 48
    data: bytes = b"jpeg"


VARIANTS = config.parse(
    {
        "variants": [
            {"name": "live.jpeg"},
            {"name": "big.jpeg", "width": 320, "height": 240, "every": 3},
        ],
        "target": {"path": "/x"},
    }
).variants

T0 = datetime(2026, 12, 7, 12, 0, 0, 250000, tzinfo=UTC)


def publish(m: Manifest, when: datetime) -> dict:  # type: ignore[type-arg]
    update = m.update([Image(name) for name in m.due()], when)
    m.commit(update)
    return json.loads(update.body)  # type: ignore[no-any-return]


def test_each_image_says_when_the_frame_it_shows_was_captured() -> None:
    m = Manifest(VARIANTS, 2.0)
    docs = [publish(m, T0 + timedelta(seconds=2 * i)) for i in range(4)]
    assert [d["images"]["live.jpeg"]["captured_at"] for d in docs] == [
        "2026-12-07T12:00:00.250Z",
        "2026-12-07T12:00:02.250Z",
        "2026-12-07T12:00:04.250Z",
        "2026-12-07T12:00:06.250Z",
    ]
    # big.jpeg is rendered every third frame: its entry keeps its own frame's time.
    assert [d["images"]["big.jpeg"]["captured_at"] for d in docs] == [
        "2026-12-07T12:00:00.250Z",
        "2026-12-07T12:00:00.250Z",
        "2026-12-07T12:00:00.250Z",
        "2026-12-07T12:00:06.250Z",
    ]
    assert [d["images"]["big.jpeg"]["seq"] for d in docs] == [1, 1, 1, 4]
    assert docs[1]["captured_at"] == "2026-12-07T12:00:02.250Z"


def test_seq_resumes_and_never_goes_back() -> None:
    m = Manifest(VARIANTS, 2.0)
    m.resume(b'{"seq": 41}')
    assert publish(m, T0)["seq"] == 42
    m.resume(b'{"seq": 7}')
    m.resume(None)
    m.resume(b"garbled")
    assert publish(m, T0)["seq"] == 43
