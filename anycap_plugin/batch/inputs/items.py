"""One input to caption, whatever it came from: a file, a tar member, a Parquet row, a dataset row."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..errors import AnyCapError


class ManifestError(AnyCapError):
    """An input record (manifest line, conversation, table row) that cannot be read as an item."""


@dataclass(frozen=True, slots=True)
class WorkItem:
    """`input` names the item for people (a path, `shard.tar#key`, `table.parquet#row=7`); `data`
    holds its bytes when it does not live in a file of its own; `problem` is why it cannot be read.

    `key` identifies it across runs and joins (resume skips finished keys): the given id (a
    manifest's `id`, WebDataset's `__key__`), else the path, else a hash of the bytes, with the
    instruction when there is one."""

    input: str
    instruction: str | None = None
    id: str | None = None
    problem: AnyCapError | None = None
    data: bytes | None = None
    origin: dict[str, Any] | None = None  # source columns kept in the record: shard and __key__, row

    @property
    def key(self) -> str:
        return self.id if self.id is not None else record_key(self.media_identity, self.instruction)

    @property
    def media_identity(self) -> str:
        return "sha1:" + hashlib.sha1(self.data).hexdigest() if self.data is not None else self.input


def record_key(identity: str, instruction: str | None) -> str:
    """The key of an item without an id (also rebuilt from old records that carry no `key`)."""
    return f"{identity}\x1f{instruction or ''}"


def bad_item(where: str, message: str, hint: str, instruction: str | None = None, *, id: str | None = None,
             origin: dict[str, Any] | None = None) -> WorkItem:
    """An item that stands for an unreadable record, so it is reported and the run goes on
    (under the record's own id when it has one, else under where it was found)."""
    return WorkItem(where, instruction, id=id if id is not None else where, problem=ManifestError(message, hint=hint),
                    origin=origin)
