"""The configuration schema: every key, its default and its validator, in one place.

`load(path)` reads a TOML file and returns a frozen `Config`, or raises `ConfigError`
with one line naming the first bad key and what is allowed, e.g.
``camera.interval: must be a number >= 0, got "fast"``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import stat
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from livecam.errors import ConfigError

T = TypeVar("T")
Validator = Callable[[Any], T]

SOURCES = ("picamera2", "test", "command")
TARGET_KINDS = ("local", "s3")
AUTOFOCUS_MODES = ("default", "continuous", "auto", "manual")
ADDRESSING_STYLES = ("auto", "path", "virtual")
CANNED_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
MANIFEST_NAME = "live.json"
MIN_SIZE, MAX_SIZE = 16, 16384
MAX_TEXT = 300

# A published name: a plain file name, no directories, no leading dot (temp files
# and dotfiles are ours), ending in .jpeg or .jpg.
_VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(jpe?g)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_NAME = re.compile(r"[A-Z][A-Za-z0-9]{1,63}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-_]{1,254}")
_STORAGE_CLASS = re.compile(r"[A-Z][A-Z_]{1,40}")


# --- the typed config -------------------------------------------------------------------


@dataclass(frozen=True)
class CameraConfig:
    """`[camera]`: where frames come from and how often."""

    source: str = "picamera2"
    width: int = 2028
    height: int = 1520
    interval: float = 2.0
    quality: int = 85
    timeout: float = 10.0
    max_failures: int = 5
    camera_num: int = 0
    rotation: int = 0
    hflip: bool = False
    vflip: bool = False
    exposure_time: int = 0
    analogue_gain: float = 0.0
    autofocus: str = "default"
    lens_position: float | None = None
    lores: bool = True
    controls: Mapping[str, Any] = field(default_factory=dict)
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class VariantConfig:
    """One `[[variants]]` entry: a JPEG published under `name`."""

    name: str
    width: int | None = None
    height: int | None = None
    quality: int = 85
    every: int = 1

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

    kind: str = "local"
    path: str = ""
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"
    cache_control: str = "no-cache"
    site_cache_control: str = "no-cache"
    acl: str | None = None
    storage_class: str | None = None
    profile: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_attempts: int = 2
    workers: int = 4


@dataclass(frozen=True)
class PublishConfig:
    """`[publish]`: when a frame is worth publishing."""

    skip_unchanged: bool = False
    change_threshold: float = 1.0
    max_age: float = 60.0
    status_interval: float = 600.0


@dataclass(frozen=True)
class SiteConfig:
    """`[site]`: the live page published beside the images."""

    enabled: bool = True
    title: str = "livecam"
    caption: str = ""
    location: str = ""
    link: str = ""
    stale_after: float = 0.0

    def stale_seconds(self, interval: float) -> float:
        """Seconds after which the page calls the image stale."""
        if self.stale_after > 0:
            return self.stale_after
        return max(3 * interval, 10.0)


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


# --- validators -------------------------------------------------------------------------


def show(value: Any) -> str:
    """A value as the user wrote it in TOML, shortened for an error line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except ValueError:  # NaN and infinities
            text = str(value)
    text = _CONTROL.sub("?", text)
    return text if len(text) <= 60 else text[:57] + "..."


class _Invalid(Exception):
    """A value failed its validator; the message says what is allowed."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(lo: int, hi: int | None = None) -> Validator[int]:
    def check(value: Any) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and value >= lo and (hi is None or value <= hi):
            return int(value)
        want = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
        raise _Invalid(f"must be {want}, got {show(value)}")

    return check


def number(lo: float, hi: float | None = None, *, above: bool = False) -> Validator[float]:
    def check(value: Any) -> float:
        if _is_number(value) and math.isfinite(value):
            low_ok = value > lo if above else value >= lo
            if low_ok and (hi is None or value <= hi):
                return float(value)
        bound = f"> {lo:g}" if above else f">= {lo:g}"
        want = f"a number {bound}" + ("" if hi is None else f" and <= {hi:g}")
        raise _Invalid(f"must be {want}, got {show(value)}")

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


def optional_url(value: Any) -> str:
    if value == "":
        return ""
    return url(value)


def variant_name(value: Any) -> str:
    if isinstance(value, str) and _VARIANT_NAME.fullmatch(value) and ".." not in value:
        return value
    raise _Invalid(
        "must be a plain file name of letters, digits, '.', '_' or '-' ending in "
        f".jpeg or .jpg (no '/', no '..', no leading dot), got {show(value)}"
    )


def prefix(value: Any) -> str:
    """An S3 key prefix that cannot escape: no leading '/', no '..' segment, no controls."""
    if not isinstance(value, str) or len(value) > 512:
        raise _Invalid(f"must be a string of at most 512 characters, got {show(value)}")
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


def optional(check: Validator[T]) -> Validator[T | None]:
    def wrapped(value: Any) -> T | None:
        return None if value == "" else check(value)

    return wrapped


# --- reading tables ---------------------------------------------------------------------


class _Table:
    """Takes keys out of one TOML table, validating each; the rest are unknown keys."""

    def __init__(self, name: str, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(f"{name}: must be a table ([{name}]), got {show(raw)}")
        self.name = name
        self.raw = dict(raw)
        self.allowed: list[str] = []

    def has(self, key: str) -> bool:
        return key in self.raw

    def take(self, key: str, check: Validator[Any], default: Any = None) -> Any:
        self.allowed.append(key)
        if key not in self.raw:
            return default
        value = self.raw.pop(key)
        try:
            return check(value)
        except _Invalid as e:
            raise ConfigError(f"{self.name}.{key}: {e}") from None

    def require(self, key: str, check: Validator[Any], why: str = "") -> Any:
        if key not in self.raw:
            raise ConfigError(f"{self.name}.{key}: is required{why}")
        return self.take(key, check)

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.name}.{key}: {message}")

    def finish(self) -> None:
        for key in self.raw:
            allowed = ", ".join(self.allowed)
            raise ConfigError(
                f"{self.name}.{show(key).strip(chr(34))}: unknown key (allowed: {allowed})"
            )


def _camera(raw: Any) -> CameraConfig:
    t = _Table("camera", raw)
    d = CameraConfig()
    source = t.take("source", choice(*SOURCES), d.source)
    cam = CameraConfig(
        source=source,
        width=t.take("width", integer(MIN_SIZE, MAX_SIZE), d.width),
        height=t.take("height", integer(MIN_SIZE, MAX_SIZE), d.height),
        interval=t.take("interval", number(0, 86400), d.interval),
        quality=t.take("quality", integer(1, 100), d.quality),
        timeout=t.take("timeout", number(0, 600, above=True), d.timeout),
        max_failures=t.take("max_failures", integer(1, 1000), d.max_failures),
        camera_num=t.take("camera_num", integer(0, 16), d.camera_num),
        rotation=t.take("rotation", choice(0, 180), d.rotation),
        hflip=t.take("hflip", boolean, d.hflip),
        vflip=t.take("vflip", boolean, d.vflip),
        exposure_time=t.take("exposure_time", integer(0, 10**9), d.exposure_time),
        analogue_gain=t.take("analogue_gain", number(0, 64), d.analogue_gain),
        autofocus=t.take("autofocus", choice(*AUTOFOCUS_MODES), d.autofocus),
        lens_position=t.take("lens_position", number(0, 32), d.lens_position),
        lores=t.take("lores", boolean, d.lores),
        controls=t.take("controls", controls, {}),
        command=t.take("command", command, ()),
    )
    t.finish()
    if cam.source == "command" and not cam.command:
        raise t.error(
            "command", 'is required when source = "command" (e.g. "rpicam-still -n -o -")'
        )
    if cam.analogue_gain and cam.analogue_gain < 1:
        raise t.error("analogue_gain", f"must be 0 (auto) or >= 1, got {cam.analogue_gain:g}")
    if cam.lens_position is not None and cam.autofocus != "manual":
        raise t.error("lens_position", 'only applies with autofocus = "manual"')
    if cam.exposure_time and cam.exposure_time / 1e6 >= cam.timeout:
        raise t.error(
            "timeout",
            f"must be longer than camera.exposure_time ({cam.exposure_time / 1e6:g} s), "
            f"got {cam.timeout:g}",
        )
    return cam


def _variants(raw: Any, camera: CameraConfig) -> tuple[VariantConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"variants: must be an array of tables ([[variants]]), got {show(raw)}")
    if len(raw) > 16:
        raise ConfigError(f"variants: at most 16 variants are allowed, got {len(raw)}")
    out: list[VariantConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        t = _Table(f"variants[{i}]", item)
        name = t.require("name", variant_name)
        v = VariantConfig(
            name=name,
            width=t.take("width", integer(MIN_SIZE, MAX_SIZE)),
            height=t.take("height", integer(MIN_SIZE, MAX_SIZE)),
            quality=t.take("quality", integer(1, 100), camera.quality),
            every=t.take("every", integer(1, 100000), 1),
        )
        t.finish()
        if name.lower() in seen:
            raise t.error("name", f"{show(name)} is used by another variant; names must be unique")
        seen.add(name.lower())
        out.append(v)
    return tuple(out)


def _target(raw: Any) -> TargetConfig:
    t = _Table("target", raw)
    d = TargetConfig()
    kind = t.take("kind", choice(*TARGET_KINDS), d.kind)
    common = dict(
        cache_control=t.take("cache_control", text(200), d.cache_control),
        site_cache_control=t.take("site_cache_control", text(200), d.site_cache_control),
    )
    if kind == "local":
        path = t.require("path", text(4096), ' when kind = "local" (the directory nginx serves)')
        if not path:
            raise t.error("path", "must name a directory, got an empty string")
        target = TargetConfig(kind=kind, path=path, **common)
    else:
        bucket = t.require("bucket", matching(_BUCKET, "an S3 bucket name"), ' when kind = "s3"')
        target = TargetConfig(
            kind=kind,
            bucket=bucket,
            prefix=t.take("prefix", prefix, ""),
            endpoint_url=t.take("endpoint_url", optional(url)),
            region=t.take("region", optional(text(64))),
            addressing_style=t.take("addressing_style", choice(*ADDRESSING_STYLES), "auto"),
            acl=t.take("acl", optional(choice(*CANNED_ACLS))),
            storage_class=t.take(
                "storage_class", optional(matching(_STORAGE_CLASS, "an S3 storage class"))
            ),
            profile=t.take("profile", optional(text(128))),
            access_key_id=t.take("access_key_id", optional(text(256))),
            secret_access_key=t.take("secret_access_key", optional(text(256))),
            connect_timeout=t.take("connect_timeout", number(0, 120, above=True), 5.0),
            read_timeout=t.take("read_timeout", number(0, 600, above=True), 10.0),
            max_attempts=t.take("max_attempts", integer(1, 10), 2),
            workers=t.take("workers", integer(1, 16), 4),
            **common,
        )
        if bool(target.access_key_id) != bool(target.secret_access_key):
            raise t.error(
                "secret_access_key" if target.access_key_id else "access_key_id",
                "access_key_id and secret_access_key must be set together",
            )
    for key in t.raw:
        other = "local" if kind == "s3" else "s3"
        if key in _KIND_KEYS[other]:
            raise t.error(key, f'only applies with kind = "{other}" (kind is "{kind}")')
    t.finish()
    return target


# Keys that belong to one kind only, derived from the schema: a local target has
# `path`; every other field but the shared ones is an S3 setting.
_SHARED_KEYS = {"kind", "cache_control", "site_cache_control"}
_KIND_KEYS = {
    "local": {"path"},
    "s3": {f.name for f in fields(TargetConfig)} - _SHARED_KEYS - {"path"},
}


def _publish(raw: Any) -> PublishConfig:
    t = _Table("publish", raw)
    d = PublishConfig()
    p = PublishConfig(
        skip_unchanged=t.take("skip_unchanged", boolean, d.skip_unchanged),
        change_threshold=t.take("change_threshold", number(0, 100), d.change_threshold),
        max_age=t.take("max_age", number(0, 86400, above=True), d.max_age),
        status_interval=t.take("status_interval", number(0, 86400), d.status_interval),
    )
    t.finish()
    return p


def _site(raw: Any) -> SiteConfig:
    t = _Table("site", raw)
    d = SiteConfig()
    s = SiteConfig(
        enabled=t.take("enabled", boolean, d.enabled),
        title=t.take("title", text(200), d.title),
        caption=t.take("caption", text(), d.caption),
        location=t.take("location", text(200), d.location),
        link=t.take("link", optional_url, d.link),
        stale_after=t.take("stale_after", number(0, 86400 * 7), d.stale_after),
    )
    t.finish()
    return s


SECTIONS = ("camera", "variants", "target", "publish", "site")


def parse(data: Mapping[str, Any], source_path: str | None = None) -> Config:
    """Validate a parsed TOML document into a `Config`."""
    for key in data:
        if key not in SECTIONS:
            allowed = ", ".join(SECTIONS)
            raise ConfigError(f"{show(key).strip(chr(34))}: unknown section (allowed: {allowed})")
    camera = _camera(data.get("camera", {}))
    # "Zero or more [[variants]]": none at all means the defaults.
    variants = _variants(data["variants"], camera) if "variants" in data else ()
    if not variants:
        variants = tuple(
            VariantConfig(v.name, v.width, v.height, camera.quality) for v in DEFAULT_VARIANTS
        )
    if "target" not in data:
        raise ConfigError(
            'target: is required ([target] with kind = "local" and a path, or kind = "s3")'
        )
    target = _target(data["target"])
    publish = _publish(data.get("publish", {}))
    site = _site(data.get("site", {}))
    if publish.max_age < camera.interval:
        raise ConfigError(
            f"publish.max_age: must be >= camera.interval ({camera.interval:g}), "
            f"got {publish.max_age:g}"
        )
    return Config(camera, variants, target, publish, site, source_path)


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate the TOML file at `path`."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: no such file (copy config.example.toml there, or pass -c PATH)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, expected a TOML file") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read ({e.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None
    return parse(data, str(p))


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
    )


def variant_sizes(cfg: Config) -> list[tuple[str, tuple[int, int]]]:
    """Each variant's name and output size for the configured capture size."""
    w, h = cfg.camera.width, cfg.camera.height
    return [(v.name, v.size_for(w, h)) for v in cfg.variants]


__all__: Sequence[str] = [
    "CameraConfig",
    "Config",
    "PublishConfig",
    "SiteConfig",
    "TargetConfig",
    "VariantConfig",
    "load",
    "parse",
]
