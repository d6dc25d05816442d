"""The configuration schema: every key, its default and its validator, in one place.

Each dataclass field is one key: `setting(default, check)` states both, and one reader
(`_read`) walks the fields. `load(path)` returns a frozen `Config` or raises `ConfigError`
with one line naming the first bad key and what is allowed, e.g.
``camera.interval: must be a number >= 0 and <= 86400, got "fast"``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import stat
import tomllib
import zoneinfo
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from livecam.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
D = TypeVar("D", bound="DataclassInstance")
Validator = Callable[[Any], T]

SOURCES = ("picamera2", "test", "command")
TARGET_KINDS = ("local", "s3", "sftp", "webdav")
AUTOFOCUS_MODES = ("default", "continuous", "auto", "manual")
ADDRESSING_STYLES = ("auto", "path", "virtual")
PREVIEW_AUTH = ("none", "basic", "token")
CANNED_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
MANIFEST_NAME = "live.json"
OVERLAY_POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "top", "bottom")
OVERLAY_BACKGROUNDS = ("outline", "box", "none")
# The named fields of overlay.text: {title}, {seq}, and the camera's metadata where the
# source gives it (picamera2's names on the right); a missing one renders empty.
OVERLAY_METADATA = {
    "exposure": "ExposureTime",  # as "1/250 s"
    "exposure_time": "ExposureTime",  # microseconds
    "gain": "AnalogueGain",
    "lux": "Lux",
    "colour_temperature": "ColourTemperature",  # kelvin
}
OVERLAY_FIELDS = ("title", "seq", *OVERLAY_METADATA)
# A value of each field's type, to try a format spec on.
OVERLAY_SAMPLES: dict[str, Any] = {
    "title": "livecam",
    "seq": 1,
    "exposure": "1/250 s",
    "exposure_time": 4000,
    "gain": 1.0,
    "lux": 400.0,
    "colour_temperature": 5600,
}
# The largest Pi camera (the 64 MP Hawkeye) captures 9152x6944: no capture or variant needs
# more, and 16384x16384 took 2.5 GB for one frame (the service's MemoryMax is 512M).
MIN_SIZE, MAX_SIZE = 16, 9152
MAX_PIXELS = 9152 * 6944
MAX_TEXT = 300
# A config is a few KiB: a larger file is a wrong path (a log, an image), not a config.
MAX_FILE_BYTES = 1 << 20

# A published name: a plain file name, no directories, no leading dot (temp files
# and dotfiles are ours), ending in .jpeg or .jpg.
_VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(jpe?g)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_NAME = re.compile(r"[A-Z][A-Za-z0-9]{1,63}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-_]{1,254}")
_STORAGE_CLASS = re.compile(r"[A-Z][A-Z_]{1,40}")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")
_HOST = re.compile(r"[A-Za-z0-9_.:\[\]%-]{1,253}")
_USER = re.compile(r"[A-Za-z0-9_.@+-][A-Za-z0-9_.@+\\-]{0,127}")


def hide_userinfo(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by ***."""
    return _URL_USERINFO.sub(r"\1***@", text)


# --- validators: each returns the value or raises _Invalid saying what is allowed ------


def show(value: Any) -> str:
    """A value as the user wrote it in TOML, shortened for an error line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    else:
        try:
            text = hide_userinfo(json.dumps(value, ensure_ascii=False, default=str))
        except (ValueError, RecursionError):  # an int past Python's digit limit, deep arrays
            text = "a value too large to show"
    text = _CONTROL.sub("?", text)
    return text if len(text) <= 60 else text[:57] + "..."


class _Invalid(Exception):
    """A value failed its validator; the message says what is allowed."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(lo: int, hi: int) -> Validator[int]:
    def check(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
            return value
        raise _Invalid(f"must be an integer from {lo} to {hi}, got {show(value)}")

    return check


def number(lo: float, hi: float, *, above: bool = False, off: bool = False) -> Validator[float]:
    """A number from `lo` (excluded if `above`) to `hi`; with `off`, 0 as well."""

    def check(value: Any) -> float:
        # Comparisons, not math.isfinite: NaN fails them, and a huge int overflows a float.
        if _is_number(value) and (lo < value if above else lo <= value) and value <= hi:
            return float(value)
        if off and _is_number(value) and value == 0:
            return 0.0
        want = f"a number {'>' if above else '>='} {lo:g} and <= {hi:g}"
        raise _Invalid(f"must be {'0 (off) or ' if off else ''}{want}, got {show(value)}")

    return check


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _Invalid(f"must be true or false, got {show(value)}")


def choice(*options: Any) -> Validator[Any]:
    def check(value: Any) -> Any:
        if type(value) in (str, int) and value in options:
            return value
        allowed = ", ".join(show(o) for o in options)
        raise _Invalid(f"must be one of {allowed}, got {show(value)}")

    return check


def text(max_len: int = MAX_TEXT) -> Validator[str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _Invalid(f"must be a string, got {show(value)}")
        if len(value) > max_len:
            raise _Invalid(f"must be at most {max_len} characters, got {len(value)}")
        if _CONTROL.search(value):
            raise _Invalid(f"must not contain control characters, got {show(value)}")
        return value

    return check


def matching(pattern: re.Pattern[str], what: str) -> Validator[str]:
    def check(value: Any) -> str:
        if isinstance(value, str) and pattern.fullmatch(value):
            return value
        raise _Invalid(f"must be {what}, got {show(value)}")

    return check


def url(value: Any) -> str:
    if isinstance(value, str) and not _CONTROL.search(value):
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.netloc and " " not in value:
            return value
    raise _Invalid(f"must be an http:// or https:// URL, got {show(value)}")


def optional(check: Validator[T], empty: Any = None) -> Validator[Any]:
    """`check`, except that "" means unset (`empty`)."""

    def wrapped(value: Any) -> Any:
        return empty if value == "" else check(value)

    return wrapped


def directory(value: Any) -> str:
    """A local directory; a leading ~ is a home directory, as in a shell."""
    path = os.path.expanduser(text(4096)(value))
    if not path:
        raise _Invalid("must name a directory, got an empty string")
    if path.startswith("~"):
        raise _Invalid(f"starts with ~ but names no user with a home, got {show(value)}")
    return path


def remote_path(value: Any) -> str:
    """A directory on an SFTP server: absolute, or relative to the login directory."""
    path = text(1024)(value)
    if not path or "\\" in path or any(s == ".." for s in path.split("/")):
        raise _Invalid(
            'must be a directory on the server such as "/var/www/html/live" or "www/live" '
            f"(relative to the login directory; no '..', no backslashes), got {show(value)}"
        )
    if path == "~" or path.startswith("~/"):  # the login directory is the home directory
        path = path[2:] or "."
    return path.rstrip("/") or "/"


_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?")
_USER = re.compile(r"[^:\x00-\x1f\x7f]{1,64}")  # HTTP basic auth: the user ends at ':'


def bind_address(value: Any) -> str:
    """An address to listen on: an IPv4 or IPv6 literal, or a host name."""
    if isinstance(value, str):
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            if _HOST.fullmatch(value):
                return value
    raise _Invalid(
        'must be an IP address ("127.0.0.1": this machine only, "0.0.0.0" or "::": every '
        f"network) or a host name, got {show(value)}"
    )


def variant_name(value: Any) -> str:
    if isinstance(value, str) and _VARIANT_NAME.fullmatch(value) and ".." not in value:
        return value
    raise _Invalid(
        "must be a plain file name of letters, digits, '.', '_' or '-' ending in "
        f".jpeg or .jpg (no '/', no '..', no leading dot), got {show(value)}"
    )


def prefix(raw: Any) -> str:
    """An S3 key prefix that cannot escape: no leading '/', no '..' segment, no controls."""
    if not isinstance(raw, str) or len(raw) > 512:
        raise _Invalid(f"must be a string of at most 512 characters, got {show(raw)}")
    value: str = raw
    segments = value.split("/")
    if (
        value.startswith("/")
        or _CONTROL.search(value)
        or "\\" in value
        or any(s in (".", "..") for s in segments)
        or "//" in value
    ):
        raise _Invalid(
            "must be a relative key prefix such as \"cam1/\" (no leading '/', no '.' or "
            f"'..' segments, no '//', no backslashes or control characters), got {show(value)}"
        )
    if value and not value.endswith("/"):
        value += "/"
    return value


def command(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as e:
            raise _Invalid(f"cannot be split into arguments ({e}), got {show(value)}") from e
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        parts = list(value)
    else:
        raise _Invalid(f"must be a string or a list of strings, got {show(value)}")
    if not parts or not parts[0]:
        raise _Invalid("must name a program, got an empty command")
    return tuple(parts)


# Controls that have their own [camera] key: one place to set each, so that two
# settings never fight over the same control.
_DEDICATED_CONTROLS = {
    "ExposureTime": "camera.exposure_time",
    "AnalogueGain": "camera.analogue_gain",
    "AfMode": "camera.autofocus",
    "LensPosition": "camera.lens_position",
}


def controls(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"must be a table of libcamera controls, got {show(value)}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not _CONTROL_NAME.fullmatch(key):
            raise _Invalid(
                f"names libcamera controls in CamelCase (e.g. Sharpness), got {show(key)}"
            )
        if key in _DEDICATED_CONTROLS:
            raise _Invalid(f"{key} is set with {_DEDICATED_CONTROLS[key]}, not here")
        scalar = _is_number(item) or isinstance(item, bool)
        pair = isinstance(item, list) and 0 < len(item) <= 16 and all(_is_number(i) for i in item)
        if not (scalar or pair):
            raise _Invalid(
                f"{key} must be a number, true/false or a list of numbers, got {show(item)}"
            )
        out[key] = tuple(item) if isinstance(item, list) else item
    return out


# Archive periods that keep a wall-clock grid: each fits a minute (10 s .. 30 s) or is
# whole minutes, and divides an hour, so slots fall on the same times every hour.
ARCHIVE_EVERY = tuple(s for s in range(10, 3601) if 3600 % s == 0 and (60 % s == 0 or s % 60 == 0))


def archive_every(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value in ARCHIVE_EVERY:
        return value
    allowed = ", ".join(str(s) for s in ARCHIVE_EVERY)
    raise _Invalid(f"must be seconds that keep a wall-clock grid ({allowed}), got {show(value)}")


def timezone(value: Any) -> str:
    """An IANA time zone name known to this system (zoneinfo)."""
    if isinstance(value, str) and value and not _CONTROL.search(value):
        try:
            zoneinfo.ZoneInfo(value)
            return value
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    raise _Invalid(
        f'must be an IANA time zone name such as "UTC" or "Europe/Berlin", got {show(value)}'
    )


def template(raw: Any) -> str:
    """An overlay text: strftime directives in the literal text, and named fields from
    `OVERLAY_FIELDS`, with an optional format spec ({lux:.0f})."""
    import string

    value: str = text()(raw)
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as e:
        raise _Invalid(
            f"is not a valid template ({e}; write {{{{ for a brace), got {show(value)}"
        ) from None
    for literal, name, spec, conversion in parts:
        try:
            datetime(2026, 12, 7, 14, 5, 9).strftime(literal)
        except ValueError as e:
            raise _Invalid(f"has a bad strftime directive ({e}), got {show(value)}") from None
        if name is None:
            continue
        if name not in OVERLAY_FIELDS or conversion:
            allowed = ", ".join("{" + f + "}" for f in OVERLAY_FIELDS)
            raise _Invalid(f"has an unknown field {{{name}}} (allowed: {allowed})")
        sample = OVERLAY_SAMPLES[name]
        try:
            format(sample, spec or "")
        except ValueError as e:
            raise _Invalid(f"{{{name}:{spec}}}: {e}") from None
    return value


def rgb(value: Any) -> tuple[int, int, int]:
    """A CSS colour name or #rrggbb, as RGB."""
    from PIL import ImageColor

    if isinstance(value, str) and len(value) <= 40:
        try:
            rgb = ImageColor.getrgb(value)
        except ValueError:
            pass
        else:
            return (rgb[0], rgb[1], rgb[2])
    raise _Invalid(f'must be a colour name or "#rrggbb", got {show(value)}')


def font_file(value: Any) -> str:
    """A TrueType or OpenType font file that FreeType can read."""
    from PIL import ImageFont

    path: str = os.path.expanduser(text(4096)(value))
    try:
        ImageFont.truetype(path, 12)
    except OSError as e:
        why = "no such file" if not os.path.exists(path) else f"cannot read it as a font ({e})"
        raise _Invalid(
            f"must be a .ttf, .otf or .ttc font file: {why}, got {show(value)}"
        ) from None
    return path


def time_zone(value: Any) -> str:
    """`local` (the system's time zone), `UTC` or an IANA name such as Europe/London."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if value == "local":
        return "local"
    if isinstance(value, str) and 0 < len(value) <= 64 and ".." not in value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return value
    raise _Invalid(
        f'must be "local", "UTC" or a time zone name such as "Europe/London", got {show(value)}'
    )


def setting(default: Any, check: Validator[Any], **kwargs: Any) -> Any:
    """A config key: its default and its validator, read by `_read`."""
    return field(default=default, metadata={"check": check}, **kwargs)


# --- the typed config -------------------------------------------------------------------

_SIZE = integer(MIN_SIZE, MAX_SIZE)
_QUALITY = integer(1, 100)
_DAY = 86400


@dataclass(frozen=True)
class CameraConfig:
    """`[camera]`: where frames come from and how often."""

    source: str = setting("picamera2", choice(*SOURCES))
    width: int = setting(2028, _SIZE)
    height: int = setting(1520, _SIZE)
    interval: float = setting(2.0, number(0, _DAY))
    quality: int = setting(85, _QUALITY)
    timeout: float = setting(10.0, number(0, 600, above=True))
    max_failures: int = setting(5, integer(1, 1000))
    camera_num: int = setting(0, integer(0, 16))
    rotation: int = setting(0, choice(0, 180))
    hflip: bool = setting(False, boolean)
    vflip: bool = setting(False, boolean)
    exposure_time: int = setting(0, integer(0, 10**9))
    analogue_gain: float = setting(0.0, number(0, 64))
    autofocus: str = setting("default", choice(*AUTOFOCUS_MODES))
    lens_position: float | None = setting(None, number(0, 32))
    lores: bool = setting(True, boolean)
    controls: Mapping[str, Any] = field(default_factory=dict, metadata={"check": controls})
    command: tuple[str, ...] = setting((), command)


@dataclass(frozen=True)
class VariantConfig:
    """One `[[variants]]` entry: a JPEG published under `name`."""

    name: str = field(metadata={"check": variant_name})
    width: int | None = setting(None, _SIZE)
    height: int | None = setting(None, _SIZE)
    quality: int = setting(85, _QUALITY)  # read as camera.quality when unset
    every: int = setting(1, integer(1, 100000))
    overlay: bool = setting(True, boolean)  # false: never stamped, whatever [overlay] says

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """The output size for a `width` x `height` frame: a bounding box, aspect kept,
        never upscaled, at least 1 x 1."""
        scale = 1.0
        if self.width is not None:
            scale = min(scale, self.width / width)
        if self.height is not None:
            scale = min(scale, self.height / height)
        if scale >= 1.0:
            return width, height
        # Half up, not Python's half-to-even: 112.5 px is 113 whatever the parity.
        return max(1, int(width * scale + 0.5)), max(1, int(height * scale + 0.5))


@dataclass(frozen=True)
class TargetConfig:
    """`[target]`: where the objects go."""

    kind: str = setting("local", choice(*TARGET_KINDS))
    path: str = setting("", directory)
    bucket: str = setting("", matching(_BUCKET, "an S3 bucket name"))
    prefix: str = setting("", prefix)
    endpoint_url: str | None = setting(None, optional(url))
    region: str | None = setting(None, optional(text(64)))
    addressing_style: str = setting("auto", choice(*ADDRESSING_STYLES))
    cache_control: str = setting("no-cache", text(200))
    site_cache_control: str = setting("no-cache", text(200))
    acl: str | None = setting(None, optional(choice(*CANNED_ACLS)))
    storage_class: str | None = setting(
        None, optional(matching(_STORAGE_CLASS, "an S3 storage class"))
    )
    profile: str | None = setting(None, optional(text(128)))
    access_key_id: str | None = setting(None, optional(text(256)), repr=False)
    secret_access_key: str | None = setting(None, optional(text(256)), repr=False)
    connect_timeout: float = setting(5.0, number(0, 120, above=True))
    read_timeout: float = setting(10.0, number(0, 600, above=True))
    max_attempts: int = setting(2, integer(1, 10))
    workers: int = setting(4, integer(1, 16))
    # sftp (docs/remote.md)
    host: str = setting("", matching(_HOST, "a host name or IP address"))
    port: int = setting(22, integer(1, 65535))
    user: str = setting("", matching(_USER, "a user name"))
    key_file: str | None = setting(None, optional(directory))
    known_hosts: str | None = setting(None, optional(directory))
    # webdav (docs/remote.md); the password is never a key here
    url: str = setting("", url)
    password_file: str | None = setting(None, optional(directory))
    ca_file: str | None = setting(None, optional(directory))


@dataclass(frozen=True)
class PublishConfig:
    """`[publish]`: when a frame is worth publishing."""

    skip_unchanged: bool = setting(False, boolean)
    change_threshold: float = setting(1.0, number(0, 100))
    max_age: float = setting(60.0, number(0, _DAY, above=True))
    # A status line sums up a period: below 10 s, --verbose (a line per frame) says more.
    status_interval: float = setting(600.0, number(10, _DAY, off=True))
    # Each image also under frames/<seq>-<run>/<name>, never overwritten: for a CDN.
    frame_keys: bool = setting(False, boolean)


@dataclass(frozen=True)
class SiteConfig:
    """`[site]`: the live page published beside the images."""

    enabled: bool = setting(True, boolean)
    title: str = setting("livecam", text(200))
    caption: str = setting("", text())
    location: str = setting("", text(200))
    link: str = setting("", optional(url, ""))
    stale_after: float = setting(0.0, number(0, 7 * _DAY))

    def stale_seconds(self, interval: float) -> float:
        """Seconds after which the page calls the image stale."""
        if self.stale_after > 0:
            return self.stale_after
        return max(3 * interval, 10.0)


@dataclass(frozen=True)
class ArchiveConfig:
    """`[archive]`: the history kept beside the live objects, under archive/."""

    enabled: bool = setting(False, boolean)
    every: int = setting(60, archive_every)
    # "": the largest variant at most ARCHIVE_WIDTH wide (see archive_variant).
    variant: str = setting("", optional(variant_name, ""))
    keep_days: int = setting(30, integer(0, 3650))  # 0: keep every day
    timezone: str = setting("UTC", timezone)
    timelapse: bool = setting(True, boolean)
    fps: int = setting(25, integer(1, 60))
    strip_every: int = setting(10, integer(1, 1440))


ARCHIVE_KINDS = ("local", "s3")  # targets with put/read/list/delete of plain objects
ARCHIVE_WIDTH = 1280  # the default archive variant: the largest no wider than this


def archive_variant(variants: Sequence[VariantConfig], camera: CameraConfig) -> str:
    """The default archive variant: the largest no wider than ARCHIVE_WIDTH at the capture
    size (a mid-size one: the full frame costs storage, a thumbnail shows little), else
    the smallest."""
    sized = [(v.size_for(camera.width, camera.height), v.name) for v in variants]
    fitting = [s for s in sized if s[0][0] <= ARCHIVE_WIDTH]
    if fitting:
        return max(fitting, key=lambda s: s[0][0] * s[0][1])[1]
    return min(sized, key=lambda s: s[0][0] * s[0][1])[1]


@dataclass(frozen=True)
class PreviewConfig:
    """`[preview]`: the live view on the local network (MJPEG and a snapshot URL). The
    secret for `auth` is read from `password_file` or $LIVECAM_PREVIEW_PASSWORD, never
    from this file (livecam/preview/auth.py)."""

    enabled: bool = setting(False, boolean)
    bind: str = setting("127.0.0.1", bind_address)
    port: int = setting(8080, integer(1, 65535))
    fps: float = setting(10.0, number(0, 30, above=True))
    width: int = setting(800, _SIZE)
    height: int = setting(600, _SIZE)
    quality: int = setting(70, _QUALITY)
    max_clients: int = setting(8, integer(1, 64))
    stall_timeout: float = setting(10.0, number(0, 600, above=True))
    auth: str = setting("none", choice(*PREVIEW_AUTH))
    user: str = setting("livecam", matching(_USER, "a user name of 1 to 64 characters, no ':'"))
    password_file: str = setting("", optional(directory, ""))


@dataclass(frozen=True)
class OverlayConfig:
    """`[overlay]`: a caption (time, title, camera settings) drawn on each variant."""

    enabled: bool = setting(False, boolean)
    text: str = setting("%Y-%m-%d %H:%M:%S %Z", template)
    position: str = setting("bottom-left", choice(*OVERLAY_POSITIONS))
    size: float = setting(0.05, number(0.01, 0.5))  # text height over image height
    font: str = setting("", optional(font_file, ""))  # "": DejaVu Sans, else Pillow's own
    colour: tuple[int, int, int] = setting((255, 255, 255), rgb)
    background: str = setting("outline", choice(*OVERLAY_BACKGROUNDS))
    background_colour: tuple[int, int, int] = setting((0, 0, 0), rgb)
    box_opacity: float = setting(0.6, number(0, 1))
    timezone: str = setting("local", time_zone)


DEFAULT_VARIANTS: tuple[VariantConfig, ...] = (
    VariantConfig("live.jpeg"),
    VariantConfig("live800x600.jpeg", 800, 600),
    VariantConfig("live320x240.jpeg", 320, 240),
)


@dataclass(frozen=True)
class Config:
    """A whole, validated configuration."""

    camera: CameraConfig = field(default_factory=CameraConfig)
    variants: tuple[VariantConfig, ...] = DEFAULT_VARIANTS
    target: TargetConfig = field(default_factory=TargetConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    site: SiteConfig = field(default_factory=SiteConfig)
    source_path: str | None = None
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)


# --- reading tables ---------------------------------------------------------------------


def _table(name: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: must be a table ([{name}]), got {show(raw)}")
    return raw


def _read(cls: type[D], name: str, raw: Any, skip: Collection[str] = (), **given: Any) -> D:
    """One TOML table as `cls`: each field's check in order, its default when absent
    (or `given`), then unknown keys refused. Fields in `skip` are not keys here."""
    table = _table(name, raw)
    keys = [f for f in fields(cls) if "check" in f.metadata and f.name not in skip]
    values = dict(given)
    for f in keys:
        if f.name in table:
            try:
                values[f.name] = f.metadata["check"](table[f.name])
            except _Invalid as e:
                raise ConfigError(f"{name}.{f.name}: {e}") from None
        elif f.default is MISSING and f.default_factory is MISSING and f.name not in given:
            raise ConfigError(f"{name}.{f.name}: is required")
    names = [f.name for f in keys]
    for key in table:
        if key not in names:
            allowed = ", ".join(names)
            raise ConfigError(
                f"{name}.{show(key).strip(chr(34))}: unknown key (allowed: {allowed})"
            )
    return cls(**values)


# --- rules across keys ------------------------------------------------------------------


def _camera(raw: Any) -> CameraConfig:
    cam = _read(CameraConfig, "camera", raw)
    if cam.source == "command" and not cam.command:
        raise ConfigError(
            'camera.command: is required when source = "command" (e.g. "rpicam-still -n -o -")'
        )
    if cam.width * cam.height > MAX_PIXELS:
        raise ConfigError(
            f"camera.height: width x height must be at most {MAX_PIXELS} pixels (64 MP, "
            f"9152x6944: the largest Pi camera), got {cam.width}x{cam.height}"
        )
    if cam.analogue_gain and cam.analogue_gain < 1:
        raise ConfigError(
            f"camera.analogue_gain: must be 0 (auto) or >= 1, got {cam.analogue_gain:g}"
        )
    if cam.lens_position is not None and cam.autofocus != "manual":
        raise ConfigError('camera.lens_position: only applies with autofocus = "manual"')
    if cam.exposure_time and cam.exposure_time / 1e6 >= cam.timeout:
        raise ConfigError(
            "camera.timeout: must be longer than camera.exposure_time "
            f"({cam.exposure_time / 1e6:g} s), got {cam.timeout:g}"
        )
    return cam


def _variants(raw: Any, camera: CameraConfig) -> tuple[VariantConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"variants: must be an array of tables ([[variants]]), got {show(raw)}")
    if len(raw) > 16:
        raise ConfigError(f"variants: at most 16 variants are allowed, got {len(raw)}")
    out: list[VariantConfig] = []
    for i, item in enumerate(raw):
        v = _read(VariantConfig, f"variants[{i}]", item, quality=camera.quality)
        if v.name.lower() in {o.name.lower() for o in out}:
            raise ConfigError(
                f"variants[{i}].name: {show(v.name)} is used by another variant; "
                "names must be unique"
            )
        out.append(v)
    # "Zero or more [[variants]]": none at all means the defaults.
    return tuple(out) or tuple(replace(v, quality=camera.quality) for v in DEFAULT_VARIANTS)


# Keys that belong to one kind only; the shared ones (and the timeouts, for every
# networked kind) are allowed everywhere.
_SHARED_KEYS = {"kind", "cache_control", "site_cache_control"}
_TIMEOUTS = {"connect_timeout", "read_timeout"}
_REMOTE_KEYS = {"host", "port", "user", "key_file", "known_hosts", "url", "password_file"}
_KIND_KEYS = {
    "local": {"path"},
    "s3": {f.name for f in fields(TargetConfig)}
    - _SHARED_KEYS
    - {"path", "ca_file"}
    - _REMOTE_KEYS,
    "sftp": {"host", "port", "user", "path", "key_file", "known_hosts"} | _TIMEOUTS,
    "webdav": {"url", "user", "password_file", "ca_file"} | _TIMEOUTS,
}
_REQUIRED = {
    "local": (("path", " (the directory nginx serves)"),),
    "s3": (("bucket", ""),),
    "sftp": (("host", ""), ("user", ""), ("path", " (the directory on the server)")),
    "webdav": (("url", " (the collection the files go to)"), ("user", "")),
}
_NO_SECRETS = ("password", "passphrase", "private_key")


def read_target(raw: Any) -> TargetConfig:
    """A `[target]` table, checked as in a camera's config (also read by the site file)."""
    table = _table("target", raw)
    # The kind alone first, through the schema: it decides which keys belong here.
    kind = _read(TargetConfig, "target", {"kind": table.get("kind", "local")}).kind
    allowed = _KIND_KEYS[kind] | _SHARED_KEYS
    for key in table:
        if key in _NO_SECRETS:
            raise ConfigError(
                f"target.{key}: secrets never go in the config: put the WebDAV password in a "
                "file named by target.password_file or in LIVECAM_WEBDAV_PASSWORD, and use an "
                "SSH key (target.key_file or the agent) for SFTP"
            )
        owners = [k for k in _KIND_KEYS if key in _KIND_KEYS[k]]
        if key not in allowed and owners:
            kinds = " or ".join(f'"{k}"' for k in owners)
            raise ConfigError(f'target.{key}: only applies with kind = {kinds} (kind is "{kind}")')
    for needed, why in _REQUIRED[kind]:
        if needed not in table:
            raise ConfigError(f'target.{needed}: is required when kind = "{kind}"{why}')
    skip = {f.name for f in fields(TargetConfig)} - allowed
    given = {}
    if kind == "sftp":  # a path on the server: no ~ expansion, no local rules
        try:
            given["path"] = remote_path(table["path"])
        except _Invalid as e:
            raise ConfigError(f"target.path: {e}") from None
        skip.add("path")
        table = {k: v for k, v in table.items() if k != "path"}
    target = _read(TargetConfig, "target", table, skip=skip, **given)
    if bool(target.access_key_id) != bool(target.secret_access_key):
        raise ConfigError(
            f"target.{'secret_access_key' if target.access_key_id else 'access_key_id'}: "
            "access_key_id and secret_access_key must be set together"
        )
    if kind == "webdav" and urlsplit(target.url).username is not None:
        raise ConfigError(
            f"target.url: must not hold a user or password (use target.user and "
            f"target.password_file), got {show(target.url)}"
        )
    return target


def _archive(raw: Any, variants: Sequence[VariantConfig], camera: CameraConfig) -> ArchiveConfig:
    archive = _read(ArchiveConfig, "archive", raw)
    names = [v.name for v in variants]
    if not archive.variant:
        return replace(archive, variant=archive_variant(variants, camera))
    if archive.variant not in names:
        allowed = ", ".join(show(n) for n in names)
        raise ConfigError(
            f"archive.variant: must name one of the variants ({allowed}), "
            f"got {show(archive.variant)}"
        )
    return archive


SECTIONS = ("camera", "variants", "target", "publish", "site", "archive", "preview", "overlay")


def parse(data: Mapping[str, Any], source_path: str | None = None) -> Config:
    """Validate a parsed TOML document into a `Config`."""
    for key in data:
        if key not in SECTIONS:
            allowed = ", ".join(SECTIONS)
            raise ConfigError(f"{show(key).strip(chr(34))}: unknown section (allowed: {allowed})")
    camera = _camera(data.get("camera", {}))
    variants = _variants(data.get("variants", []), camera)
    if "target" not in data:
        raise ConfigError(
            'target: is required ([target] with kind = "local" and a path, or kind = "s3")'
        )
    target = read_target(data["target"])
    publish = _read(PublishConfig, "publish", data.get("publish", {}))
    site = _read(SiteConfig, "site", data.get("site", {}))
    if publish.max_age < camera.interval:
        raise ConfigError(
            f"publish.max_age: must be >= camera.interval ({camera.interval:g}), "
            f"got {publish.max_age:g}"
        )
    archive = _archive(data.get("archive", {}), variants, camera)
    if archive.enabled and target.kind not in ARCHIVE_KINDS:
        raise ConfigError(
            f'archive.enabled: needs a local or s3 target (kind = "{target.kind}" cannot '
            "yet list, read back or delete archived days)"
        )
    preview = _read(PreviewConfig, "preview", data.get("preview", {}))
    if preview.password_file and preview.auth == "none":
        raise ConfigError('preview.password_file: only applies with auth = "basic" or "token"')
    overlay = _read(OverlayConfig, "overlay", data.get("overlay", {}))
    return Config(camera, variants, target, publish, site, source_path, archive, preview, overlay)


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate the TOML file at `path`."""
    return parse(read_toml(path), str(Path(path)))


def read_toml(path: str | os.PathLike[str], example: str = "config.example.toml") -> dict[str, Any]:
    """The TOML document at `path`, or `ConfigError` naming what is wrong with the file."""
    p = Path(path)
    try:
        # A regular file only: a FIFO blocks for ever, a device such as /dev/zero never ends.
        mode = p.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"{p}: is a directory, expected a TOML file")
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{p}: not a regular file, expected a TOML file")
        with p.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file (copy {example} there, or pass -c PATH)") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read ({e.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{p}: larger than {MAX_FILE_BYTES >> 20} MiB, not a livecam config")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None
    except ValueError:  # int() refuses more digits than sys.get_int_max_str_digits()
        raise ConfigError(f"{p}: invalid TOML: a number with too many digits") from None
    except RecursionError:
        raise ConfigError(f"{p}: invalid TOML: arrays or tables nested too deeply") from None
    return data


def insecure_secrets(cfg: Config) -> str | None:
    """A warning when the config file holds secrets and others may read it, else None."""
    if not (cfg.target.secret_access_key and cfg.source_path):
        return None
    try:
        mode = os.stat(cfg.source_path).st_mode
    except OSError:
        return None
    if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        return (
            f"{cfg.source_path} holds target.secret_access_key and is readable by other "
            f"users (mode {stat.S_IMODE(mode):o}); run: chmod 600 {shlex.quote(cfg.source_path)}"
        )
    return None


def demo(path: str, interval: float = 1.0, width: int = 1280, height: int = 720) -> Config:
    """The zero-config demo: test camera into a local directory."""
    return Config(
        camera=CameraConfig(source="test", width=width, height=height, interval=interval),
        target=TargetConfig(kind="local", path=path),
        site=SiteConfig(title="livecam demo", caption="A synthetic test pattern, live."),
        overlay=OverlayConfig(enabled=True),
    )


def variant_sizes(cfg: Config) -> list[tuple[str, tuple[int, int]]]:
    """Each variant's name and output size for the configured capture size."""
    w, h = cfg.camera.width, cfg.camera.height
    return [(v.name, v.size_for(w, h)) for v in cfg.variants]


__all__: Sequence[str] = [
    "ArchiveConfig",
    "CameraConfig",
    "Config",
    "OverlayConfig",
    "PreviewConfig",
    "PublishConfig",
    "SiteConfig",
    "TargetConfig",
    "VariantConfig",
    "load",
    "parse",
]
