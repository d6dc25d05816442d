"""A CDN on loopback: nginx's proxy_cache in front of an origin (nginx serving a local
target, or moto's S3), set up as the two common CDN defaults, plus viewers that poll
through it as live-embed.js does.

- "cloudfront": CloudFront's CachingOptimized policy. The query string is left out of
  the cache key, and every response is kept for the 1 s minimum TTL even when the origin
  says `no-cache`; a longer `max-age` from the origin is honoured (for frame keys; the
  origin location for them is matched by path, as a CloudFront cache behaviour would be).
- "cloudflare": Cloudflare's default. The query string is part of the key, and the
  origin's Cache-Control is obeyed (`no-cache`: every request goes to the origin).

nginx counts TTLs in whole seconds, so "1 s" keeps an object 1 to 2 s: harsher than
CloudFront. Both collapse concurrent misses and refreshes into one origin request, as CDNs do.
Every request the proxy passes to the origin is logged; `origin_requests` counts them.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .conftest import NGINX_CONF, Nginx, free_port

MODES = ("cloudfront", "cloudflare")

PROXY = """
    proxy_cache_path {prefix}/cache levels=1:2 keys_zone=cdn:10m max_size=512m inactive=10m
                     use_temp_path=off;
    log_format cdn '$upstream_addr|$upstream_cache_status|$request_uri';
    server {{
        listen 127.0.0.1:{port};
        access_log {prefix}/cdn.log cdn;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_cache cdn;
        proxy_cache_key "{key}";
        proxy_cache_lock on;
        proxy_cache_lock_timeout 5s;
        # An expired object is refreshed by one request while the others get the copy
        # being replaced (nginx's lock only covers new objects).
        proxy_cache_use_stale updating;
        proxy_cache_revalidate on;
        add_header X-Cache $upstream_cache_status always;
        location ~ /frames/ {{
            proxy_pass {origin};
            proxy_cache_valid 200 1s;
        }}
        location / {{
            proxy_pass {origin};
{ttl}
        }}
    }}
"""

CLOUDFRONT_TTL = """
            proxy_ignore_headers Cache-Control Expires;
            proxy_cache_valid 200 1s;
"""


class CachingProxy:
    """nginx as a CDN in `mode` in front of `origin` (a base URL)."""

    def __init__(self, origin: str, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        parts = urlsplit(origin)
        port = free_port()
        self.nginx = Nginx(server="", port=port)
        self.nginx.prefix.chmod(0o755)  # nginx's workers (another user as root) write the cache
        server = PROXY.format(
            prefix=self.nginx.prefix,
            port=port,
            key="$uri" if mode == "cloudfront" else "$request_uri",
            origin=f"{parts.scheme}://{parts.netloc}",
            ttl=CLOUDFRONT_TTL if mode == "cloudfront" else "",
        )
        self.nginx.conf.write_text(NGINX_CONF.format(prefix=self.nginx.prefix, server=server))
        self.log = self.nginx.prefix / "cdn.log"
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> CachingProxy:
        self.nginx.start()
        return self

    def close(self) -> None:
        self.nginx.close()

    def origin_requests(self) -> dict[str, int]:
        """Requests passed to the origin so far, by kind: manifest, image, other."""
        counts = {"manifest": 0, "image": 0, "other": 0}
        if not self.log.exists():
            return counts
        for line in self.log.read_text().splitlines():
            upstream, _status, uri = line.split("|", 2)
            if upstream in ("", "-"):
                continue  # answered from the cache
            path = uri.split("?", 1)[0]
            kind = "manifest" if path.endswith("/live.json") else "other"
            if re.search(r"\.jpe?g$", path):
                kind = "image"
            counts[kind] += 1
        return counts


def origin_server(root: Path, live_cache_control: str) -> Nginx:
    """nginx serving a local target as docs/scaling.md recommends for a CDN origin."""
    extra = f"""
        location ~ ^/frames/ {{
            add_header Cache-Control "public, max-age=31536000, immutable" always;
        }}
        location ~ ^/(live\\.json|[^/]*\\.jpe?g)$ {{
            add_header Cache-Control "{live_cache_control}" always;
        }}
"""
    return Nginx(root, extra)


# --- viewers: the page's polling, without a browser ---------------------------------------


@dataclass
class ViewerStats:
    polls: int = 0
    images: int = 0
    errors: int = 0
    stale_images: int = 0  # an image whose bytes were not the frame its URL names
    frames_seen: set[int] = field(default_factory=set)


async def _get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str
) -> tuple[int, bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def marker(jpeg: bytes) -> int | None:
    """The seq a test frame carries in its JPEG comment (see MarkingRenderer)."""
    m = re.search(rb"livecam-seq=(\d+)", jpeg[:200])
    return int(m.group(1)) if m else None


async def _viewer(
    base: str, interval: float, until: float, stats: ViewerStats, variant: str
) -> None:
    """One viewer: polls live.json once per interval from a random phase, loads the
    image the manifest names when the frame changed."""
    parts = urlsplit(base)
    host = parts.netloc
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    await asyncio.sleep(random.uniform(0, interval))
    seq = -1
    try:
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                status, body = await _get(reader, writer, host, parts.path + "live.json")
                stats.polls += 1
                m = json.loads(body) if status == 200 else None
                if m and m["seq"] != seq:
                    seq = m["seq"]
                    entry = m["images"][variant]
                    path = entry.get("key") or f"{variant}?v={entry['seq']}"
                    status, image = await _get(reader, writer, host, parts.path + path)
                    stats.images += 1
                    if marker(image) not in (None, entry["seq"]):
                        stats.stale_images += 1
                    stats.frames_seen.add(seq)
            except (OSError, ValueError, asyncio.IncompleteReadError):
                stats.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            await asyncio.sleep(max(0.0, started + interval - time.monotonic()))
    finally:
        writer.close()


def simulate_viewers(
    base: str, viewers: int, seconds: float, interval: float, variant: str
) -> ViewerStats:
    """`viewers` polling `base` (a directory URL ending in /) for `seconds`, bounded."""
    stats = ViewerStats()

    async def main() -> None:
        until = time.monotonic() + seconds
        tasks = [_viewer(base, interval, until, stats, variant) for _ in range(viewers)]
        await asyncio.wait_for(asyncio.gather(*tasks), seconds + 30)

    # On a thread of its own: Playwright's sync API keeps an event loop on this one.
    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    thread.join(seconds + 60)
    return stats
