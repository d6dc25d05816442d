"""The live page: the files of `site/`, published beside the images."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
}


def content_type(name: str) -> str:
    """The Content-Type to serve `name` with."""
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


@dataclass(frozen=True)
class SiteFile:
    """One page asset and its content hash."""

    name: str
    data: bytes

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()


def site_dir() -> Path:
    """`site/` of a source checkout, else the copy installed inside the package."""
    checkout = Path(__file__).resolve().parent.parent / "site"
    if (checkout / "index.html").is_file():
        return checkout
    return Path(__file__).resolve().parent / "site_files"


# The grid page's own files (`publisher.py site`, livecam/grid.py), not a camera's.
GRID_FILES = frozenset({"grid.html", "grid.js", "grid.css"})


def load(directory: Path | None = None) -> list[SiteFile]:
    """Every file of the page, by relative name; dotfiles and the grid's files are skipped."""
    root = directory or site_dir()
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        hidden = any(part.startswith(".") for part in rel.parts)
        if path.is_file() and not hidden and rel.as_posix() not in GRID_FILES:
            files.append(SiteFile(rel.as_posix(), path.read_bytes()))
    return files
