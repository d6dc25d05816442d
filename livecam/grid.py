"""Several cameras, one page: the grid that `publisher.py site -c SITE.toml` publishes.

The site file lists the cameras (`[[cameras]]`, each a `name` and the `url` its
`live.json` is under, shown in that order) and a `[target]` read exactly as in a
camera's config. The page is `site/grid.html` with a tile per camera, published with
`grid.js`, `grid.css` and `live-embed.js`, which drives every tile's image. Each camera
keeps publishing on its own: nothing here is written by two programs.
"""

from __future__ import annotations

import html
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from livecam import site as site_mod
from livecam.config import (
    MANIFEST_NAME,
    TargetConfig,
    _Invalid,
    _read,
    read_target,
    read_toml,
    setting,
    show,
    text,
)
from livecam.errors import ConfigError
from livecam.site import SiteFile
from livecam.targets.base import Target

SECTIONS = ("site", "cameras", "target")
MAX_CAMERAS = 100
PAGE = "index.html"
# What the grid page loads beside itself (grid.html is published as index.html).
ASSETS = ("grid.js", "grid.css", "live-embed.js", "favicon.svg")
PROBE_TIMEOUT = 5.0
# The single-camera page's policy (docs/embedding.md), plus the cameras' origins for
# their images and manifests. frame-ancestors has no effect in a <meta> policy.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{origins}; "
    "connect-src 'self'{origins}; base-uri 'none'; form-action 'none'; object-src 'none'"
)
# An origin that goes into the policy as it is: a host name or address and a port.
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_TILES = re.compile(r"( *)<!-- tiles -->\n.*?<!-- /tiles -->\n", re.S)
_PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="


def _escape(value: str) -> str:
    """Text for HTML content or a double-quoted attribute (apostrophes left readable)."""
    return html.escape(value, quote=False).replace('"', "&quot;")


def camera_url(value: Any) -> str:
    """A camera's base URL: absolute http(s), or relative to the grid page and inside
    its directory. Returned normalised, ending in "/"."""
    raw = text(2000)(value)
    if not raw.strip():
        raise _Invalid("must not be empty")
    bad = 'must be an http(s) URL or a path relative to the grid page such as "cam1/", got ' + show(
        value
    )
    if any(c.isspace() or c == "\\" for c in raw):
        raise _Invalid(bad)
    parts = urlsplit(raw)
    if parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise _Invalid(
            f"must not have a query or fragment (live.json is found under it), got {show(value)}"
        )
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _Invalid(bad)
        if "@" in parts.netloc:
            # Browsers refuse to fetch from a URL with credentials in it.
            raise _Invalid(
                "must not hold a user or password (a public page cannot use them), got "
                + show(value)
            )
        if not _HOST.fullmatch(parts.netloc):
            raise _Invalid(bad)
        return raw if raw.endswith("/") else raw + "/"
    if raw.startswith("/"):
        raise _Invalid(
            'must be relative to the grid page ("cam1/", not "/cam1/": where the host\'s root'
            f" is cannot be known here) or an absolute http(s) URL, got {show(value)}"
        )
    segments: list[str] = []
    for segment in raw.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                raise _Invalid(
                    "leads above the directory the grid is published to ([target]), where the"
                    " page cannot be checked and a bucket has nothing; give the camera's"
                    f" absolute URL instead, got {show(value)}"
                )
            segments.pop()
        else:
            segments.append(segment)
    if not segments:
        raise _Invalid(
            "is the grid's own directory: its index.html would replace the camera's page;"
            f" publish each camera in a directory under the grid's, got {show(value)}"
        )
    return "/".join(segments) + "/"


def _name(value: Any) -> str:
    name = text(200)(value).strip()
    if not name:
        raise _Invalid("must not be empty")
    return name


@dataclass(frozen=True)
class GridSiteConfig:
    """`[site]` of a site file: the grid page's own text."""

    title: str = setting("Cameras", text(200))
    caption: str = setting("", text())


@dataclass(frozen=True)
class CameraEntry:
    """One `[[cameras]]` entry: a tile."""

    name: str = field(metadata={"check": _name})
    url: str = field(metadata={"check": camera_url})

    @property
    def absolute(self) -> bool:
        return bool(urlsplit(self.url).scheme)

    @property
    def page(self) -> str:
        """Where a click on the tile goes: the camera's own page."""
        return self.url + PAGE


@dataclass(frozen=True)
class SiteFileConfig:
    """A whole, validated site file."""

    cameras: tuple[CameraEntry, ...]
    target: TargetConfig
    site: GridSiteConfig = field(default_factory=GridSiteConfig)
    source_path: str | None = None


def _cameras(raw: Any) -> tuple[CameraEntry, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            "cameras: must be one or more [[cameras]] tables, each with a name and a url,"
            f" got {show(raw)}"
        )
    if len(raw) > MAX_CAMERAS:
        raise ConfigError(f"cameras: at most {MAX_CAMERAS} cameras are allowed, got {len(raw)}")
    out: list[CameraEntry] = []
    for i, item in enumerate(raw):
        cam = _read(CameraEntry, f"cameras[{i}]", item)
        for j, other in enumerate(out):
            if cam.name.casefold() == other.name.casefold():
                raise ConfigError(
                    f"cameras[{i}].name: {show(cam.name)} is cameras[{j}]'s name too;"
                    " names must be unique"
                )
            if cam.url == other.url:
                raise ConfigError(
                    f"cameras[{i}].url: {show(cam.url)} is cameras[{j}]'s url too;"
                    " list each camera once"
                )
        out.append(cam)
    return tuple(out)


def parse(data: dict[str, Any], source_path: str | None = None) -> SiteFileConfig:
    """Validate a parsed site file."""
    for key in data:
        if key not in SECTIONS:
            allowed = ", ".join(SECTIONS)
            raise ConfigError(f"{show(key).strip(chr(34))}: unknown section (allowed: {allowed})")
    site = _read(GridSiteConfig, "site", data.get("site", {}))
    cameras = _cameras(data.get("cameras"))
    if "target" not in data:
        raise ConfigError(
            'target: is required (where the grid goes: [target] with kind = "local" and a'
            ' path, or kind = "s3", as in a camera\'s config)'
        )
    return SiteFileConfig(cameras, read_target(data["target"]), site, source_path)


def load(path: str | os.PathLike[str]) -> SiteFileConfig:
    """Read and validate the site file at `path`."""
    return parse(read_toml(path, example="site.example.toml"), str(path))


# --- the page ---------------------------------------------------------------------------


def origins(cfg: SiteFileConfig) -> list[str]:
    """The other origins the page reads from: those of the cameras given absolute URLs."""
    found = {"{0.scheme}://{0.netloc}".format(urlsplit(c.url)) for c in cfg.cameras if c.absolute}
    return sorted(found)


def csp(cfg: SiteFileConfig) -> str:
    """The page's Content-Security-Policy."""
    extra = "".join(f" {o}" for o in origins(cfg))
    return CSP.format(origins=extra)


def _tile(i: int, cam: CameraEntry, indent: str) -> str:
    e = _escape
    return (
        f'{indent}<li class="tile" data-state="connecting">\n'
        f'{indent}  <a class="tile-link" href="{e(cam.page)}"'
        f' aria-labelledby="tile-{i}-name tile-{i}-state">\n'
        f'{indent}    <img class="tile-img" data-base="{e(cam.url)}" src="{_PLACEHOLDER}"'
        ' alt="" width="320" height="180">\n'
        f'{indent}    <span class="tile-bar">\n'
        f'{indent}      <span class="tile-name" id="tile-{i}-name">{e(cam.name)}</span>\n'
        f'{indent}      <span class="tile-status"><span class="state" id="tile-{i}-state">'
        'connecting</span> <time class="tile-time"></time></span>\n'
        f"{indent}    </span>\n"
        f"{indent}  </a>\n"
        f"{indent}</li>\n"
    )


def render_page(cfg: SiteFileConfig, template: str) -> str:
    """grid.html with this site file's title, caption, policy and tiles."""
    e = _escape
    page = template.replace("{{csp}}", e(csp(cfg))).replace("{{title}}", e(cfg.site.title))
    caption = f'<p class="caption">{e(cfg.site.caption)}</p>' if cfg.site.caption.strip() else ""
    page = page.replace("<!-- caption -->", caption)

    def tiles(m: re.Match[str]) -> str:
        return "".join(_tile(i, cam, m.group(1)) for i, cam in enumerate(cfg.cameras))

    return _TILES.sub(tiles, page, count=1)


def files(cfg: SiteFileConfig) -> list[SiteFile]:
    """The grid page and what it loads, as published."""
    root = site_mod.site_dir()
    template = (root / "grid.html").read_text(encoding="utf-8")
    out = [SiteFile(PAGE, render_page(cfg, template).encode())]
    out += [SiteFile(name, (root / name).read_bytes()) for name in ASSETS]
    return out


# --- looking for each camera before publishing -----------------------------------------


def _age(captured_at: Any) -> str:
    try:
        when = datetime.fromisoformat(str(captured_at).replace("Z", "+00:00"))
        seconds = (datetime.now(UTC) - when).total_seconds()
    except (TypeError, ValueError):
        return "no capture time"
    if seconds < 90:
        return f"captured {max(0, round(seconds))} s ago"
    if seconds < 5400:
        return f"captured {round(seconds / 60)} min ago"
    return f"captured {round(seconds / 3600)} h ago"


def _fetch_manifest(key: str, url: str) -> tuple[dict[str, Any], bool]:
    """GET an absolute camera's live.json: the manifest, and whether the host allows
    other sites to read it (CORS). Raises ConfigError saying why it cannot be read."""
    # An Origin header makes S3-like hosts answer with their CORS headers.
    # The URL is http(s), checked by camera_url.
    request = urllib.request.Request(url, headers={"Origin": "https://livecam-grid.invalid"})  # noqa: S310
    hint = "check the url, or pass --no-check to publish anyway"
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT) as response:  # noqa: S310
            body = response.read(1_000_000)
            cors = bool(response.headers.get("Access-Control-Allow-Origin"))
    except urllib.error.HTTPError as e:
        raise ConfigError(f"{key}: cannot read {url} (HTTP {e.code}): {hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise ConfigError(f"{key}: cannot reach {url} ({reason}): {hint}") from None
    try:
        manifest = json.loads(body)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("images"), dict):
        raise ConfigError(f"{key}: {url} is not a livecam live.json: {hint}")
    return manifest, cors


def probe(cfg: SiteFileConfig, target: Target) -> list[str]:
    """Look for every camera's live.json: on the target for a relative URL, over HTTP
    for an absolute one. Returns a line per camera; raises ConfigError at the first
    camera that has none (a wrong url), so that nothing is published."""
    lines = []
    for i, cam in enumerate(cfg.cameras):
        key = f"cameras[{i}].url"
        if not cam.absolute:
            if target.missing([cam.url + MANIFEST_NAME]):
                raise ConfigError(
                    f"{key}: no {MANIFEST_NAME} under {show(cam.url)} on {target.describe()}:"
                    " check the url (relative to the grid), or pass --no-check to publish"
                    " anyway"
                )
            lines.append(f"ok   {cam.name}: {cam.url}{MANIFEST_NAME}")
            continue
        url = cam.url + MANIFEST_NAME
        manifest, cors = _fetch_manifest(key, url)
        age = _age(manifest.get("captured_at"))
        line = f"ok   {cam.name}: {url}, seq {manifest.get('seq')}, {age}"
        if not cors:
            line += (
                "; WARNING: no Access-Control-Allow-Origin, so a grid on another site cannot"
                " read it (see docs/embedding.md, CORS)"
            )
        lines.append(line)
    return lines


def publish(cfg: SiteFileConfig, target: Target) -> list[str]:
    """Publish the grid page and its assets where they differ; returns their names."""
    target.start()
    return target.publish_site(files(cfg))


__all__: Sequence[str] = ["CameraEntry", "SiteFileConfig", "csp", "files", "load", "probe"]
