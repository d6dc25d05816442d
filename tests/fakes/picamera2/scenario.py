"""What the fake camera does, and what happened to it. Not part of picamera2's API.

Tests call `reset(**settings)`; a subprocess reads the same settings as JSON from
$LIVECAM_FAKE_PICAMERA2 when picamera2 is first imported.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

ENV = "LIVECAM_FAKE_PICAMERA2"

# Camera modules as libcamera reports them (sensor names, full resolutions).
MODELS: dict[str, dict[str, Any]] = {
    "imx477": {"sensor": (4056, 3040), "af": False},  # HQ camera
    "imx708": {"sensor": (4608, 2592), "af": True},  # Camera Module 3
    "ov5647": {"sensor": (2592, 1944), "af": False},  # Camera Module 1
}


@dataclass
class Scenario:
    # The attached cameras, by model name (MODELS).
    cameras: list[str] = field(default_factory=lambda: ["imx477"])
    # "vc4" (Pi 4 and earlier: lores must be YUV) or "pisp" (Pi 5).
    platform: str = "vc4"
    # Rows are padded to a multiple of this many bytes, as the ISP does.
    stride_align: int = 64
    # What the sensor sees: "quadrants" (red, green / blue, white) or a colour name.
    scene: str = "quadrants"
    # Paint a yellow square into the lores stream only, to see where an image came from.
    lores_marker: bool = False
    # Captures (counted from 1 over all cameras) that time out; "always" for every one.
    timeouts: list[int] | str = field(default_factory=list)
    # Picamera2() constructions that fail before one succeeds ("in use by another process").
    busy_opens: int = 0
    # close() never returns (a driver stuck after a hang).
    hang_on_close: bool = False
    # The camera has one output only (a USB camera through libcamera): no lores stream.
    single_stream: bool = False
    # libcamera adjusts the main size to this (w, h) whatever was asked.
    adjust_main: tuple[int, int] | None = None
    # Seconds a capture takes.
    frame_time: float = 0.0

    # --- what happened ---
    instances: list[Any] = field(default_factory=list)
    captures: int = 0
    events: list[str] = field(default_factory=list)
    requests_out: int = 0  # requests handed to the application and not yet released
    # Stuck calls wait on this; reset() sets it so that no thread outlives a test.
    unstick: threading.Event = field(default_factory=threading.Event)

    def times_out(self, n: int) -> bool:
        return self.timeouts == "always" or (isinstance(self.timeouts, list) and n in self.timeouts)

    def log(self, event: str) -> None:
        self.events.append(event)


current = Scenario()


def reset(**settings: Any) -> Scenario:
    """A fresh scenario with `settings`; returns it for the test to inspect."""
    global current
    current.unstick.set()
    for key in ("adjust_main",):
        if isinstance(settings.get(key), list):
            settings[key] = tuple(settings[key])
    current = Scenario(**settings)
    return current


def load_env() -> None:
    raw = os.environ.get(ENV)
    if raw:
        reset(**json.loads(raw))
