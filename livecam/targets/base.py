"""The target interface: where published objects go."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from livecam.errors import PublishError
from livecam.rendered import Rendered
from livecam.site import SiteFile


@dataclass(frozen=True)
class CheckStep:
    """One step of `check`: what was tried and how it went."""

    what: str
    ok: bool
    detail: str = ""


Step = tuple[str, Callable[[], object]]


def run_steps(
    steps: list[Step],
    report: Callable[[CheckStep], None],
    explain: Callable[[Exception], str | None],
    cleanup: Callable[[str], None] = lambda what: None,
) -> bool:
    """Run `check`'s steps in order, reporting each; a step's str result is its detail.
    The first failure that `explain` turns into a detail ends the check after
    `cleanup(what)`; an exception it does not know (None) is raised."""
    for what, action in steps:
        try:
            result = action()
        except Exception as e:
            detail = explain(e)
            if detail is None:
                raise
            report(CheckStep(what, False, detail))
            cleanup(what)
            return False
        report(CheckStep(what, True, result if isinstance(result, str) else ""))
    return True


def publish_error(e: Exception) -> str | None:
    """`run_steps`'s `explain` for targets whose steps raise only `PublishError`."""
    return str(e) if isinstance(e, PublishError) else None


class Target(ABC):
    """A place to publish to. Images always land before the manifest that names them."""

    # `missing` costs no request (a stat): the loop may ask before every frame.
    free_lookups = False
    # `delete` works here: frame keys done with are removed (publish.frame_keys).
    can_delete = False

    @abstractmethod
    def describe(self) -> str:
        """Where this target writes, for logs (never with credentials)."""

    def start(self) -> None:  # noqa: B027 - targets without set-up
        """Prepare to publish (create directories, clean leftovers, connect)."""

    @abstractmethod
    def publish(self, images: Sequence[Rendered], manifest: bytes) -> None:
        """Publish `images`, then, only if all of them landed, the manifest.

        Raises `PublishError`; the previously published frame stays intact."""

    @abstractmethod
    def publish_site(self, files: Iterable[SiteFile], *, verify: bool = False) -> list[str]:
        """Publish the page files that differ from what is there; return their names.
        `verify`: look at the target again instead of trusting what was published."""

    @abstractmethod
    def missing(self, names: Iterable[str]) -> list[str]:
        """Which of these published objects are not on the target (any more)."""

    def delete(self, names: Sequence[str]) -> None:
        """Delete these published objects (frame keys done with); absent ones are fine.

        Raises `PublishError`; targets that cannot delete keep them (a lifecycle rule)."""
        raise PublishError(f"{self.describe()} cannot delete objects")

    @abstractmethod
    def read_manifest(self) -> bytes | None:
        """The manifest currently published, or None when there is none (a fresh start).

        Raises `PublishError` when the target cannot say (unreachable, access denied):
        a fresh start then could publish a `seq` already used."""

    @abstractmethod
    def check(self, report: Callable[[CheckStep], None]) -> bool:
        """Write, read back and delete a probe object, reporting each step."""

    # --- plain objects: what features beside the live frame (the archive) build on. A
    # target without them says so with a PublishError; names are relative to the target
    # ("archive/2026/12/07/index.json") and never leave it.

    def put_object(self, name: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        """Write one object; a reader sees the old one or the new one, never a part.
        (A local target leaves Cache-Control to the web server.)"""
        raise PublishError(f"{self.describe()} cannot store {name}")

    def put_file(self, name: str, path: str, *, content_type: str, cache_control: str) -> None:
        """`put_object` from a local file, streamed: a large file never sits in memory."""
        raise PublishError(f"{self.describe()} cannot store {name}")

    def read_object(self, name: str, limit: int = 16 << 20) -> bytes | None:
        """An object's bytes (at most `limit`), None when it does not exist."""
        raise PublishError(f"{self.describe()} cannot read {name}")

    def list_objects(self, prefix: str) -> list[str]:
        """The names of every object under the folder `prefix` ("archive/2026/"), sorted."""
        raise PublishError(f"{self.describe()} cannot list {prefix}")

    def list_folders(self, prefix: str) -> list[str]:
        """The folders right under `prefix`, each as "prefix/name/", sorted."""
        raise PublishError(f"{self.describe()} cannot list {prefix}")

    def delete_objects(self, names: Sequence[str]) -> None:
        """Delete these objects (absent ones are no error), in the order given as far as
        the target allows."""
        raise PublishError(f"{self.describe()} cannot delete objects")

    def close(self) -> None:  # noqa: B027 - targets that hold nothing
        """Release connections and threads; safe to call twice."""
