"""Frame sources. `open_camera` picks one by `camera.source`, importing it lazily so
that picamera2 is only needed where it is used."""

from __future__ import annotations

from collections.abc import Sequence

from livecam.camera.base import Camera, Frame
from livecam.config import CameraConfig, VariantConfig


def open_camera(
    cfg: CameraConfig, variants: Sequence[VariantConfig] = (), writable: bool = False
) -> Camera:
    """Open the camera named by `cfg.source`; raises `CameraError` when it cannot.

    `variants` lets a camera that can scale in hardware (picamera2's lores stream)
    size a second stream for the small variants. `writable`: a camera that lends its
    buffers maps them for writing (the overlay draws in place, then restores them)."""
    if cfg.source == "test":
        from livecam.camera.picam import lores_size
        from livecam.camera.testpattern import TestPatternCamera

        # A lores copy as a Pi's ISP gives one, so that the test camera costs what a Pi's does.
        lores = lores_size((cfg.width, cfg.height), variants) if cfg.lores else None
        return TestPatternCamera(cfg.width, cfg.height, lores=lores)
    if cfg.source == "picamera2":
        from livecam.camera.picam import PiCamera

        return PiCamera(cfg, variants, writable)
    if cfg.source == "command":
        from livecam.camera.command import CommandCamera

        return CommandCamera(cfg)
    raise ValueError(f"unknown camera source {cfg.source!r}")  # config validation prevents it


__all__ = ["Camera", "Frame", "open_camera"]
