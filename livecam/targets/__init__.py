"""Publishing targets. `open_target` picks one by `target.kind`; each networked target
imports its library (boto3, paramiko, urllib3) only when used."""

from __future__ import annotations

import threading

from livecam.config import TargetConfig
from livecam.targets.base import CheckStep, Target


def open_target(cfg: TargetConfig, stop: threading.Event | None = None) -> Target:
    """The target for `cfg`; `stop`, when set, lets a slow upload give up early."""
    if cfg.kind == "local":
        from livecam.targets.local import LocalTarget

        return LocalTarget(cfg.path)
    if cfg.kind == "s3":
        from livecam.targets.s3 import S3Target

        return S3Target(cfg, stop=stop)
    if cfg.kind == "sftp":
        from livecam.targets.sftp import SFTPTarget

        return SFTPTarget(cfg, stop=stop)
    if cfg.kind == "webdav":
        from livecam.targets.webdav import WebDAVTarget

        return WebDAVTarget(cfg, stop=stop)
    raise ValueError(f"unknown target kind {cfg.kind!r}")  # config validation prevents it


__all__ = ["CheckStep", "Target", "open_target"]
