"""`kind = "local"`: a directory that a web server (nginx) serves.

Every file is written to a temp name in the same directory and moved into place with
`os.replace`, which is atomic: a reader sees the old file or the new one, never a
part. Images go first, the manifest last. Nothing is fsynced: the live files are
replaced every frame and usually live on tmpfs, and an fsync per frame would wear an
SD card for no reader's benefit.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from livecam.errors import PublishError
from livecam.manifest import NAME as MANIFEST
from livecam.rendered import Rendered
from livecam.site import SiteFile
from livecam.targets.base import CheckStep, Step, Target, run_steps

log = logging.getLogger(__name__)

TEMP_PREFIX = ".livecam-"
TEMP_SUFFIX = ".tmp"
IN_MEMORY = ("tmpfs", "ramfs")


def _why(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "no space left on device"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.EROFS:
        return "read-only file system"
    return e.strerror or str(e)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy(src: BinaryIO, fd: int) -> None:
    while chunk := src.read(1 << 20):
        _write_all(fd, chunk)


class LocalTarget(Target):
    """Publishes into `path`, creating it if needed."""

    free_lookups = True
    can_delete = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._counter = itertools.count()
        self._site: dict[str, SiteFile] = {}  # the page, to restore if the directory goes

    def describe(self) -> str:
        return f"local directory {self.path}"

    def start(self) -> None:
        self._ensure_dir()
        removed = self.clean_temp_files()
        if removed:
            log.info("removed %d temp file(s) left by an earlier run in %s", removed, self.path)

    def clean_temp_files(self) -> int:
        """Delete temp files an interrupted run left behind; returns how many."""
        count = 0
        try:
            entries = list(os.scandir(self.path))
        except OSError:
            return 0
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX):
                try:
                    os.unlink(entry.path)
                    count += 1
                except FileNotFoundError:
                    pass
                except OSError as e:
                    log.warning("cannot remove temp file %s: %s", entry.path, _why(e))
        return count

    def _ensure_dir(self, path: Path | None = None) -> None:
        path = path or self.path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PublishError(f"cannot create directory {path}: {_why(e)}") from e
        if not path.is_dir():
            raise PublishError(f"{path} exists but is not a directory")

    def write(self, name: str, data: bytes | memoryview) -> None:
        """Atomically replace `name` with `data`."""
        self._replace(name, lambda fd: _write_all(fd, data))

    def _replace(self, name: str, fill: Callable[[int], object]) -> None:
        """Atomically replace `name` with what `fill` writes into a temp file beside it
        (its descriptor: this runs for each image of each frame, where a file object
        and Path objects only add time)."""
        final = os.path.join(self.path, name)
        parent = os.path.dirname(final)
        if "/" in name:  # a page asset in a subdirectory of site/, an archive folder
            self._ensure_dir(Path(parent))
        temp = os.path.join(
            parent, f"{TEMP_PREFIX}{os.getpid()}-{next(self._counter)}{TEMP_SUFFIX}"
        )
        recreated = False
        try:
            fd = self._open_temp(temp, name)
        except FileNotFoundError:
            # The directory went away under us: make it again (and the page in it below).
            self._ensure_dir(Path(parent))
            recreated = Path(parent) == self.path
            fd = self._open_temp(temp, name)
        try:
            try:
                fill(fd)
            finally:
                os.close(fd)
            os.replace(temp, final)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise PublishError(f"cannot write {final}: {_why(e)}") from e
        if recreated and self._site:
            log.warning("%s was deleted; recreated it and republished the page", self.path)
            for page in self._site.values():
                if page.name != name:
                    self.write(page.name, page.data)

    def _open_temp(self, temp: str, name: str) -> int:
        try:
            # 0o644 before umask: the web server must read what we publish
            # (tempfile.mkstemp would make it 0o600).
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            raise
        except OSError as e:
            raise PublishError(f"cannot write {self.path / name}: {_why(e)}") from e

    def publish(self, images: Sequence[Rendered], manifest: bytes) -> None:
        for image in images:
            self.write(image.name, image.data)
        self.write(MANIFEST, manifest)

    def publish_site(self, files: Iterable[SiteFile], *, verify: bool = False) -> list[str]:
        changed = []  # reading the files back is cheap: always verified
        for f in files:
            self._site[f.name] = f
            try:
                current = (self.path / f.name).read_bytes()
            except OSError:
                current = None
            if current != f.data:
                self.write(f.name, f.data)
                changed.append(f.name)
        return changed

    def delete(self, names: Sequence[str]) -> None:
        for name in names:
            path = self.path / name
            try:
                path.unlink(missing_ok=True)
            except OSError as e:
                raise PublishError(f"cannot delete {path}: {_why(e)}") from e
            if path.parent != self.path:
                with contextlib.suppress(OSError):  # frames/<seq>-<run>/ once its last image went
                    path.parent.rmdir()

    def missing(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if not (self.path / name).is_file()]

    def read_manifest(self) -> bytes | None:
        path = self.path / MANIFEST
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise PublishError(f"cannot read {path}: {_why(e)}") from e

    # --- plain objects ---------------------------------------------------------------

    def put_object(self, name: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        self.write(name, data)

    def put_file(self, name: str, path: str, *, content_type: str, cache_control: str) -> None:
        try:
            with open(path, "rb") as src:
                self._replace(name, lambda fd: _copy(src, fd))
        except OSError as e:
            raise PublishError(f"cannot read {path}: {_why(e)}") from e

    def read_object(self, name: str, limit: int = 16 << 20) -> bytes | None:
        path = self.path / name
        try:
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise PublishError(f"cannot read {path}: {_why(e)}") from e
        if len(data) > limit:
            raise PublishError(f"{path} is larger than {limit} bytes")
        return data

    def list_objects(self, prefix: str) -> list[str]:
        top = self.path / prefix
        names: list[str] = []
        for folder, _, files in os.walk(top, onerror=self._list_failed):
            rel = Path(folder).relative_to(self.path).as_posix()
            names.extend(f"{rel}/{f}" for f in files)
        return sorted(names)

    def list_folders(self, prefix: str) -> list[str]:
        try:
            entries = list(os.scandir(self.path / prefix))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            raise PublishError(f"cannot list {self.path / prefix}: {_why(e)}") from e
        return sorted(f"{prefix}{e.name}/" for e in entries if e.is_dir(follow_symlinks=False))

    def _list_failed(self, e: OSError) -> None:
        if not isinstance(e, FileNotFoundError):
            raise PublishError(f"cannot list {e.filename}: {_why(e)}") from e

    def delete_objects(self, names: Sequence[str]) -> None:
        folders = set()
        for name in names:
            path = self.path / name
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                raise PublishError(f"cannot delete {path}: {_why(e)}") from e
            folders.add(path.parent)
        # Folders left empty go too, up to (never including) the target's own directory.
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            while folder != self.path and self.path in folder.parents:
                try:
                    folder.rmdir()
                except OSError:
                    break
                folder = folder.parent

    def check(self, report: Callable[[CheckStep], None]) -> bool:
        name = f"{TEMP_PREFIX}probe-{os.getpid()}.txt"
        probe = self.path / name
        payload = b"livecam probe\n"
        try:
            self._ensure_dir()
            fs = filesystem(self.path)
            detail = "exists" if fs is None else f"exists, on {fs}"
            if fs is not None and fs not in IN_MEMORY:
                detail += (
                    ": every frame is written to that disk; on a Pi's SD card, mount a "
                    "tmpfs there (README: SD-card care)"
                )
            report(CheckStep(f"directory {self.path}", True, detail))
        except PublishError as e:
            report(CheckStep(f"directory {self.path}", False, str(e)))
            return False

        def explain(e: Exception) -> str | None:
            if isinstance(e, OSError):
                return _why(e)
            return str(e) if isinstance(e, PublishError | ValueError) else None

        def cleanup(what: str) -> None:
            with contextlib.suppress(OSError):
                probe.unlink()

        steps: list[Step] = [
            (f"write {name}", lambda: self.write(name, payload)),
            (f"read {name}", lambda: _expect(probe.read_bytes(), payload)),
            (f"delete {name}", probe.unlink),
        ]
        return run_steps(steps, report, explain, cleanup)


def filesystem(path: str | os.PathLike[str], mounts: str | None = None) -> str | None:
    """The type of the file system `path` is on ("tmpfs", "ext4"...), from the mount
    table (`mounts`: the text of /proc/self/mounts); None where there is none."""
    if mounts is None:
        try:
            with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
                mounts = f.read()
        except OSError:
            return None
    where = os.path.realpath(path)
    best, found = -1, None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        # The table escapes spaces and tabs in mount points as octal (\040).
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[1])
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:  # the last of equal mounts is the one on top
            best, found = len(point), fields[2]
    return found


def _expect(got: bytes, want: bytes) -> None:
    if got != want:
        raise ValueError(f"read back {len(got)} bytes that differ from the {len(want)} written")
