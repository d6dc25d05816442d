"""Fake libcamera Python bindings: what livecam and the fake picamera2 use.

Modelled on libcamera's src/py/libcamera: `Transform(rotation=0, hflip=False,
vflip=False, transpose=False)` XORs the flips into the rotation (py_transform.cpp);
colour spaces and control enums as the bindings name them.
"""

from __future__ import annotations

from libcamera import controls

__all__ = ["ColorSpace", "Transform", "controls"]

_HFLIP, _VFLIP, _TRANSPOSE = 1, 2, 4
# libcamera's transformFromRotation(): Rot90 = Transpose|VFlip, Rot270 = Transpose|HFlip.
_ROTATIONS = {0: 0, 90: _TRANSPOSE | _VFLIP, 180: _HFLIP | _VFLIP, 270: _TRANSPOSE | _HFLIP}
_NAMES = {
    0: "identity",
    _HFLIP: "hflip",
    _VFLIP: "vflip",
    _HFLIP | _VFLIP: "rot180",
    _TRANSPOSE: "transpose",
    _TRANSPOSE | _HFLIP: "rot270",
    _TRANSPOSE | _VFLIP: "rot90",
    _TRANSPOSE | _HFLIP | _VFLIP: "rot180-transpose",
}


class Transform:
    """An image transform: flips and a transpose, as libcamera composes them."""

    def __init__(
        self, rotation: int = 0, hflip: bool = False, vflip: bool = False, transpose: bool = False
    ) -> None:
        if rotation not in _ROTATIONS:
            raise ValueError("Invalid rotation")  # std::invalid_argument in the bindings
        bits = _ROTATIONS[rotation]
        if hflip:
            bits ^= _HFLIP
        if vflip:
            bits ^= _VFLIP
        if transpose:
            bits ^= _TRANSPOSE
        self._bits = bits

    @property
    def hflip(self) -> bool:
        return bool(self._bits & _HFLIP)

    @property
    def vflip(self) -> bool:
        return bool(self._bits & _VFLIP)

    @property
    def transpose(self) -> bool:
        return bool(self._bits & _TRANSPOSE)

    def __eq__(self, other: object) -> bool:  # picamera2 patches this in for the real class
        return isinstance(other, Transform) and other._bits == self._bits

    def __hash__(self) -> int:
        return self._bits

    def __str__(self) -> str:
        return f"<libcamera.Transform '{_NAMES[self._bits]}'>"

    __repr__ = __str__


class ColorSpace:
    """The colour spaces picamera2's configurations name."""

    def __init__(self, name: str) -> None:
        self.name = name

    @staticmethod
    def Sycc() -> ColorSpace:
        return ColorSpace("sYCC")

    @staticmethod
    def Smpte170m() -> ColorSpace:
        return ColorSpace("SMPTE170M")

    @staticmethod
    def Rec709() -> ColorSpace:
        return ColorSpace("Rec709")

    @staticmethod
    def Raw() -> ColorSpace:
        return ColorSpace("RAW")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ColorSpace) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    __repr__ = __str__
