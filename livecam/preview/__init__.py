"""The live view on the local network: an MJPEG stream, a snapshot URL and a small
page, for aiming and focusing the camera (`[preview]`, off by default).

`frames.py` makes each frame once for every viewer, and only while someone watches;
`server.py` serves them; `auth.py` guards them.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from livecam.camera.supervisor import CameraSupervisor
from livecam.config import Config
from livecam.loop import FrameResult
from livecam.preview.auth import Access, insecure_file, load_secret
from livecam.preview.frames import Producer, Slot, lores_variants, streams
from livecam.preview.server import PreviewListener, make_handler, page

log = logging.getLogger(__name__)

__all__ = ["Preview", "describe", "load_secret", "lores_variants", "url_for"]

# Connections served at once, beyond the viewers: page loads, snapshots, 401s.
SPARE_CONNECTIONS = 16


def url_for(cfg: Config, port: int | None = None) -> str:
    """The page's URL as a viewer on the network types it."""
    bind = cfg.preview.bind
    if bind in ("0.0.0.0", "::"):  # every network: this machine's name reaches it
        bind = socket.gethostname()
    shown = f"[{bind}]" if ":" in bind else bind
    return f"http://{shown}:{port or cfg.preview.port}/"


def describe(cfg: Config) -> str:
    """One line for `check`: where to look and what guards it."""
    p = cfg.preview
    access = {"none": "no password", "basic": f"basic auth, user {p.user}", "token": "token"}
    source = "the camera's own frames" if streams(cfg) else "the published frames"
    return (
        f"{url_for(cfg)} ({access[p.auth]}; {p.fps:g} fps from {source}, at most "
        f"{p.max_clients} viewers)"
    )


def settings(cfg: Config) -> list[tuple[str, str]]:
    """The capture settings shown on the page."""
    c, p = cfg.camera, cfg.preview
    out = [
        ("camera", f"{c.source}, {c.width}x{c.height}, a frame published every {c.interval:g} s"),
        ("preview", f"at most {p.width}x{p.height}, {p.fps:g} fps, quality {p.quality}"),
    ]
    if c.source == "picamera2":
        exposure = f"{c.exposure_time} µs" if c.exposure_time else "automatic"
        gain = f"{c.analogue_gain:g}" if c.analogue_gain else "automatic"
        focus = c.autofocus
        if c.lens_position is not None:
            focus += f", lens position {c.lens_position:g} dioptres"
        out += [("exposure", exposure), ("analogue gain", gain), ("focus", focus)]
        turns = [f"rotation {c.rotation}"] if c.rotation else []
        turns += [n for n in ("hflip", "vflip") if getattr(c, n)]
        out.append(("orientation", ", ".join(turns) or "as mounted"))
        out += [(f"control {k}", str(v)) for k, v in c.controls.items()]
    if not streams(cfg):
        out.append(("note", "this camera takes a frame per publish: the preview shows those"))
    return out


class Preview:
    """The live view: the slot every viewer shares, the producer, the HTTP server."""

    def __init__(self, cfg: Config, camera: CameraSupervisor, secret: bytes) -> None:
        p = cfg.preview
        self.cfg = cfg
        self.slot = Slot()
        self.producer = Producer(p, camera, self.slot, own_frames=streams(cfg))
        if streams(cfg):
            wait = max(5.0, 3.0 / p.fps) + cfg.camera.timeout
        else:  # the next published frame
            wait = cfg.camera.interval + cfg.camera.timeout + 5.0
        title = cfg.site.title if cfg.site.enabled else "livecam"
        self._handler = make_handler(
            slot=self.slot,
            access=Access(p, secret),
            max_clients=p.max_clients,
            stall_timeout=p.stall_timeout,
            snapshot_wait=wait,
            index=page(title, settings(cfg)),
            extra=self._extra,
        )
        self._server: PreviewListener | None = None
        if warning := insecure_file(p):
            log.warning("%s", warning)

    def _extra(self) -> dict[str, Any]:
        p = self.cfg.preview
        return {"fps": p.fps, "max_clients": p.max_clients, "own_frames": self.producer.own_frames}

    def start(self) -> str:
        """Listen and start making frames on demand; the URL. Raises `OSError` when the
        address cannot be bound."""
        p = self.cfg.preview
        server = PreviewListener(p.bind, p.port, self._handler, p.max_clients + SPARE_CONNECTIONS)
        self._server = server
        threading.Thread(target=server.serve_forever, name="preview-http", daemon=True).start()
        self.producer.start()
        url = url_for(self.cfg, server.server_address[1])
        log.info(
            "live view on %s (%s; frames are made only while someone watches)",
            url,
            "no password" if p.auth == "none" else f"{p.auth} auth",
        )
        return url

    def published(self, result: FrameResult) -> None:
        self.producer.published(result)

    def close(self) -> None:
        self.producer.close()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
