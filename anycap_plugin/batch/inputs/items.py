"""One input to caption, whatever it came from: a file, a tar member, a Parquet row, a dataset row."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ...errors import AnyCapError, ManifestError
from ...storage import canonical
from ..keys import SEP, identity, item_key


@dataclass(frozen=True, slots=True)
class WorkItem:
    """`input` names the item for people (a path, `shard.tar#key.jpg`, `table.parquet#row=7`); `data`
    holds its bytes when it does not live in a file of its own; `problem` is why it cannot be read.

    `place` is where it came from and its place there (`shard:SHARD#KEY`, see `batch.keys`), set by
    the reader, with the source named canonically; `occurrence` counts how often its id has occurred
    in that source so far."""

    input: str
    instruction: str | None = None
    id: str | None = None
    problem: AnyCapError | None = None
    data: bytes | None = None
    origin: dict[str, Any] | None = (
        None  # source columns kept in the record: shard and __key__, row
    )
    place: str | None = None
    occurrence: int = 1
    aliases: tuple[str, ...] = ()  # keys earlier versions gave this item (a manifest line's number)
    spelled: str | None = None  # the path as the user wrote it, where it differs from `input`

    @property
    def key(self) -> str:
        """Unique per input across runs: what a resume skips when it is done."""
        return item_key(self.place or self._own_place(), self.instruction)

    def _own_place(self) -> str:
        return "bytes:" + self._sha1() if self.data is not None else "file:" + canonical(self.input)

    def _sha1(self) -> str:
        return "sha1:" + hashlib.sha1(self.data).hexdigest()  # type: ignore[arg-type]

    @property
    def identity(self) -> str:
        """How records written before keys named their source are matched to this item."""
        return identity(self.input, self.instruction, self.id)

    @property
    def legacy_key(self) -> str:
        """The key earlier versions gave this item (the id, else the path or bytes with the instruction)."""
        if self.id is not None:
            return self.id
        return f"{self._sha1() if self.data is not None else self.spelled or self.input}{SEP}{self.instruction or ''}"


def bad_item(
    where: str,
    message: str,
    hint: str,
    instruction: str | None = None,
    *,
    place: str,
    id: str | None = None,
    origin: dict[str, Any] | None = None,
    aliases: tuple[str, ...] = (),
    occurrence: int = 1,
) -> WorkItem:
    """An item that stands for an unreadable record, so it is reported and the run goes on
    (named by where it was found)."""
    return WorkItem(
        where,
        instruction,
        id=id if id is not None else where,
        problem=ManifestError(message, hint=hint),
        origin=origin,
        place=place,
        aliases=aliases,
        occurrence=occurrence,
    )
