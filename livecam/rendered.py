"""What the renderer hands the targets: one encoded variant (a leaf: imports nothing)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rendered:
    """One encoded variant."""

    name: str
    data: bytes
    width: int
    height: int
    immutable: bool = False  # a per-frame copy (livecam.frames): never changes, cache it long
