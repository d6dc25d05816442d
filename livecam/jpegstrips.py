"""One JPEG encoded as horizontal strips on several threads, joined by restart markers.

libjpeg-turbo encodes on one thread, and the full-size encode is the longest single
job of a frame: it alone sets the wall time at 1080p and 12 MP. A baseline JPEG can be
cut into restart intervals (ITU T.81, B.2.4.4 and F.1.2.3): the entropy coder starts
afresh at each RSTn marker, so an interval can be encoded by itself. Each strip of
whole MCU rows (16 pixel rows at 4:2:0) is encoded as a JPEG of its own with the same
settings; their headers and tables are identical but for the height, so the strips'
entropy-coded data, joined with RST0..RST7 between them under the first strip's header
(its height set to the whole, a DRI segment added), is the whole image's JPEG. Its
pixels decode bit for bit as those of a single encode (tests/test_jpegstrips.py).

Every baseline decoder handles restart intervals (they exist for error recovery);
each marker costs 2 bytes and a partial byte.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

MCU_ROWS = 16  # pixel rows of one MCU row at 4:2:0
_MAX_INTERVAL = 0xFFFF  # MCUs: DRI's field is 16 bits

_SOI, _EOI, _SOS, _DRI = 0xD8, 0xD9, 0xDA, 0xDD
_SOF0 = 0xC0  # baseline: the only kind that is joined
_RST0 = 0xD0


def plan(width: int, height: int, parts: int) -> tuple[list[int], int]:
    """Row edges of about `parts` strips of whole MCU rows (more when one would exceed
    the restart interval's 16 bits), and the restart interval in MCUs."""
    mcus_across = -(-width // MCU_ROWS)
    mcu_rows = -(-height // MCU_ROWS)
    fewest = -(-mcu_rows * mcus_across // _MAX_INTERVAL)
    per = -(-mcu_rows // max(1, min(parts, mcu_rows), fewest))
    # A last strip of one pixel row would be encoded 4:2:2 (libjpeg-turbo's choice for
    # a 1-row 4:2:0 image), another header: it goes with a longer interval.
    while per < mcu_rows and height - (mcu_rows - 1) // per * per * MCU_ROWS < 2:
        per += 1
    if per * mcus_across > _MAX_INTERVAL:  # only at widths of 65,000 and more
        return [0, height], mcu_rows * mcus_across
    edges = [min(height, k * per * MCU_ROWS) for k in range(-(-mcu_rows // per) + 1)]
    return edges, per * mcus_across


def join(parts: Sequence[bytes], height: int, interval: int) -> bytes:
    """The JPEG of the strips `parts` (baseline JPEGs of one width, from one encoder
    and settings, each but the last `interval` MCUs), `height` rows in all.

    Raises ValueError when the parts are not such JPEGs (headers that differ other than
    in the height, a marker out of place): joined, they would not be one image."""
    if not parts:
        raise ValueError("no strips to join")
    if len(parts) == 1:
        return bytes(parts[0])
    if not 0 < interval <= _MAX_INTERVAL or not 0 < height <= 0xFFFF:
        raise ValueError(f"restart interval {interval} or height {height} out of range")
    header, sof_at = _header(parts[0])
    sos = _sos(parts[0], len(header))
    same = _with_height(header, sof_at, 0)
    out = [_with_height(header, sof_at, height), struct.pack(">HHH", 0xFFDD, 4, interval), sos]
    mcu_width, mcu_height = _mcu(header, sof_at)
    (width,) = struct.unpack_from(">H", header, sof_at + 7)
    across = -(-width // mcu_width)
    rows = 0
    for k, part in enumerate(parts):
        start, at = _header(part)
        if _with_height(start, at, 0) != same or _sos(part, len(start)) != sos:
            raise ValueError(f"strip {k} has other tables or settings than strip 0")
        (strip_height,) = struct.unpack_from(">H", start, at + 5)
        mcus = -(-strip_height // mcu_height) * across
        last = k + 1 == len(parts)
        if mcus > interval or (not last and (mcus != interval or strip_height % mcu_height)):
            raise ValueError(f"strip {k} is {mcus} MCUs, not the interval's {interval}")
        rows += strip_height
        if part[-2:] != b"\xff\xd9":
            raise ValueError(f"strip {k} does not end with EOI")
        out.append(part[len(start) + len(sos) : -2])
        out.append(bytes((0xFF, _RST0 + k % 8)) if k + 1 < len(parts) else b"\xff\xd9")
    if rows != height:
        raise ValueError(f"the strips are {rows} rows high, not {height}")
    return b"".join(out)


def _mcu(header: bytes, sof_at: int) -> tuple[int, int]:
    """The MCU's width and height in pixels, from SOF0's sampling factors."""
    (count,) = struct.unpack_from(">B", header, sof_at + 9)
    factors = [header[sof_at + 11 + 3 * i] for i in range(count)]
    return 8 * max(f >> 4 for f in factors), 8 * max(f & 15 for f in factors)


def _header(jpeg: bytes) -> tuple[bytes, int]:
    """The bytes before the SOS segment, and where the SOF0 segment starts in them."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("strip does not start with SOI")
    i, sof_at = 2, -1
    while i + 4 <= len(jpeg):
        if jpeg[i] != 0xFF:
            raise ValueError(f"no marker at byte {i} of a strip's header")
        marker = jpeg[i + 1]
        if marker == _SOS:
            if sof_at < 0:
                raise ValueError("strip is not a baseline JPEG (no SOF0)")
            return jpeg[:i], sof_at
        if marker in (_DRI, _EOI) or (0xC1 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)):
            raise ValueError(f"strip has marker {marker:#04x}, which a join cannot keep")
        if marker == _SOF0:
            sof_at = i
        (length,) = struct.unpack_from(">H", jpeg, i + 2)
        i += 2 + length
    raise ValueError("strip has no SOS")


def _with_height(header: bytes, sof_at: int, height: int) -> bytes:
    """`header` with SOF0's height field (after marker, length and precision) set."""
    at = sof_at + 5
    return header[:at] + struct.pack(">H", height) + header[at + 2 :]


def _sos(jpeg: bytes, at: int) -> bytes:
    """The SOS segment starting at `at`."""
    (length,) = struct.unpack_from(">H", jpeg, at + 2)
    return jpeg[at : at + 2 + length]
