"""libjpeg-turbo's RGB to planes conversion (livecam/turbo.py): what its encoder does,
checked arguments, and OpenCV's conversion where the library is missing."""

from __future__ import annotations

import pytest

from livecam.testimage import photo_like

np = pytest.importorskip("numpy")
pytest.importorskip("cv2")
simplejpeg = pytest.importorskip("simplejpeg")

from livecam import planes, pyramid, turbo  # noqa: E402 - needs numpy and OpenCV

needs_turbo = pytest.mark.skipif(not turbo.available(), reason="libturbojpeg not installed")


def rgbx(size: tuple[int, int]) -> object:
    return np.ascontiguousarray(np.asarray(photo_like(*size).convert("RGBX")))


@needs_turbo
def test_planes_encode_to_the_very_jpeg_an_rgb_encode_makes() -> None:
    """The conversion is the one libjpeg-turbo runs inside an RGB encode: the planes'
    JPEG is byte for byte the RGBX array's (an even size; at odd ones the encoder pads
    the edge MCUs from the RGB, the planes interface from the padded planes)."""
    frame = rgbx((640, 480))
    yuv, _ = planes.from_rgb(frame, pyramid.Buffers(), "t")
    direct = simplejpeg.encode_jpeg(frame, 85, "RGBX", "420", False)
    assert simplejpeg.encode_jpeg_yuv_planes(*yuv, 85, False) == direct


@needs_turbo
def test_arguments_are_checked_before_they_reach_c() -> None:
    frame = rgbx((64, 48))
    y = np.zeros((48, 64), np.uint8)
    u = np.zeros((24, 32), np.uint8)
    turbo.to_planes(frame, y, u, u.copy())
    with pytest.raises(ValueError, match="cannot take"):
        turbo.to_planes(frame, y[:47], u, u)  # Y too short
    with pytest.raises(ValueError, match="cannot take"):
        turbo.to_planes(frame, y, u[:, :31], u)  # chroma too narrow
    with pytest.raises(ValueError, match="cannot take"):
        turbo.to_planes(rgbx((63, 47)), y[:47, :63], u, u)  # odd: Y padded to even
    with pytest.raises(ValueError, match="not RGB"):
        turbo.to_planes(frame[:, ::2], y, u, u)  # pixels not contiguous
    with pytest.raises(ValueError, match="not RGB"):
        turbo.to_planes(frame.astype(np.uint16), y, u, u)
    with pytest.raises(ValueError, match="not RGB"):
        turbo.to_planes(frame[::-1], y, u, u)  # rows upside down
    with pytest.raises(ValueError, match="cannot take"):
        turbo.to_planes(frame, y.astype(np.int16), u, u)
    read_only = np.frombuffer(bytes(48 * 64), np.uint8).reshape(48, 64)
    with pytest.raises(ValueError, match="cannot take"):
        turbo.to_planes(frame, read_only, u, u)


def test_without_the_library_opencv_converts(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = rgbx((97, 61))
    monkeypatch.setattr(planes, "USE_TURBO", False)
    expected, _ = planes.from_rgb(frame, pyramid.Buffers(), "t")
    monkeypatch.setattr(turbo, "_lib", None)
    monkeypatch.setattr(planes, "USE_TURBO", True)
    assert not turbo.available()
    got, _ = planes.from_rgb(frame, pyramid.Buffers(), "t")
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(RuntimeError, match="not installed"):
        turbo.to_planes(frame, *got)
