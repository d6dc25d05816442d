"""Access to the preview: none, HTTP basic auth, or a token.

The secret is read from `preview.password_file` or, without one, the environment
variable LIVECAM_PREVIEW_PASSWORD (as a systemd `Environment=` or `EnvironmentFile=`
sets it), never from the config text, and it never reaches a log line. A token comes
in an `Authorization: Bearer` header or the `livecam_preview` cookie, never in the
query string, where logs, proxies and browser history would keep it. Comparisons are
constant-time (`hmac.compare_digest`) over the bytes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import stat
from http.cookies import CookieError, SimpleCookie
from pathlib import Path

from livecam.config import PreviewConfig
from livecam.errors import ConfigError

ENV = "LIVECAM_PREVIEW_PASSWORD"
COOKIE = "livecam_preview"
REALM = "livecam preview"
MAX_SECRET = 4096


def load_secret(cfg: PreviewConfig) -> bytes:
    """The password or token for `cfg.auth` (empty for "none"). Raises `ConfigError`
    naming the file or variable when it is missing, unreadable or empty."""
    if cfg.auth == "none":
        return b""
    if cfg.password_file:
        path = Path(cfg.password_file)
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_SECRET + 1)
        except OSError as e:
            raise ConfigError(
                f"preview.password_file: cannot read {path} ({e.strerror or e})"
            ) from None
        where = f"preview.password_file: {path}"
    elif ENV in os.environ:
        raw = os.environ[ENV].encode("utf-8", "surrogateescape")
        where = f"preview.password_file: unset, and ${ENV}"
    else:
        raise ConfigError(
            f'preview.password_file: is required with auth = "{cfg.auth}" (a file holding '
            f"the {'token' if cfg.auth == 'token' else 'password'}), or set ${ENV}"
        )
    secret = raw.strip(b"\r\n")  # a file written by `echo` ends in a newline
    if not secret or len(secret) > MAX_SECRET:
        raise ConfigError(f"{where} must hold 1 to {MAX_SECRET} bytes, got {len(raw)}")
    if any(c < 0x20 or c == 0x7F for c in secret):
        raise ConfigError(f"{where} holds control characters (a line break inside?)")
    return secret


def insecure_file(cfg: PreviewConfig) -> str | None:
    """A warning when the password file is readable by other users, else None."""
    if cfg.auth == "none" or not cfg.password_file:
        return None
    try:
        mode = os.stat(cfg.password_file).st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"{cfg.password_file} (preview.password_file) is readable by other users "
            f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {cfg.password_file}"
        )
    return None


class Access:
    """Decides whether a request's headers grant access; `challenge` is the
    WWW-Authenticate value of a 401."""

    def __init__(self, cfg: PreviewConfig, secret: bytes) -> None:
        self.kind = cfg.auth
        self._user = cfg.user.encode("utf-8")
        self._secret = secret
        scheme = "Basic" if self.kind == "basic" else "Bearer"
        self.challenge = f'{scheme} realm="{REALM}", charset="UTF-8"'

    def allows(self, authorization: str | None, cookie: str | None) -> bool:
        if self.kind == "none":
            return True
        if self.kind == "basic":
            return self._basic(authorization or "")
        token = _bearer(authorization or "") or _cookie(cookie or "")
        # Always one comparison of the secret's length: a missing token costs the same.
        return hmac.compare_digest(token or b"\0", self._secret) and token is not None

    def _basic(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        user, password = b"", b""
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip().encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                decoded = b""
            user, _, password = decoded.partition(b":")
        # Both compared every time (`&`, not `and`): the time says nothing of which failed.
        ok_user = hmac.compare_digest(user, self._user)
        ok_password = hmac.compare_digest(password, self._secret)
        return ok_user & ok_password


def _bearer(header: str) -> bytes | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip().encode("utf-8", "surrogateescape")


def _cookie(header: str) -> bytes | None:
    try:
        jar = SimpleCookie(header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return None if morsel is None or not morsel.value else morsel.value.encode("utf-8")
