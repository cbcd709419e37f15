"""What every input format is: a class that says which locations it claims, whether a source holds
anything, how many items it holds, and how it reads them, over one storage layer (`storage`).

Adding a format is one module with one `InputFormat` subclass, listed in `inputs.FORMATS`; a new
store is an fsspec protocol, which every format then reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...storage import Storage

if TYPE_CHECKING:
    from .items import WorkItem


@dataclass(frozen=True)
class Source:
    """One file, folder or dataset an input names: `location` canonical (a local path resolved and
    absolute, or a URL), so keys do not depend on the working directory or the spelling."""

    location: str
    kind: str
    spelled: str | None = None  # as the user (or a glob) wrote it: what earlier versions keyed by


@dataclass(frozen=True)
class ReadContext:
    """What reading needs besides the source; picklable (shipped to Ray read tasks)."""

    instruction: str | None = None
    media_root: str | None = None
    columns: dict[str, str | None] = field(default_factory=dict)
    storage: Storage = field(default_factory=Storage)
    run_files: frozenset[str] = frozenset()  # canonical locations this run writes: never read

    def is_run_file(self, location: str) -> bool:
        from ...storage import canonical

        name = canonical(location)
        return name in self.run_files or any(
            name.startswith(f.rstrip("/") + "/") for f in self.run_files if f.endswith("/")
        )


class InputFormat:
    """One kind of input. `claims` decides by the location's name (and whether it is a folder)."""

    kind = "media"

    def claims(self, location: str, is_dir: bool) -> bool:
        raise NotImplementedError

    def check(self, source: Source, ctx: ReadContext) -> None:
        """Refuse, before any work, a source that cannot be read as asked (a missing table column)."""

    def holds_something(self, source: Source, ctx: ReadContext) -> bool:
        """Whether the source names at least one item, looked up cheaply."""
        return True

    def count(self, source: Source, ctx: ReadContext) -> int | None:
        """How many items it holds (listings, headers, footers; no media read); None: cannot tell."""
        return 1

    def items(self, source: Source, ctx: ReadContext) -> Iterator[WorkItem]:
        raise NotImplementedError


def name_of(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1].lower()
