"""Keys: how a batch item is named across runs, so that a resume knows what is already done.

A key names where the item came from and its place there, then its instruction after `\\x1f`:

    file:PATH                  a media file (named, in a folder, or matched by a glob)
    shard:SHARD#__key__        a WebDataset sample
    table:TABLE#row=N          a Parquet row (rows are the place: an id column may repeat or be null)
    hf:NAME:SPLIT#row=N        a Hugging Face dataset row
    manifest:FILE#id=ID        a manifest line with an id, else manifest:FILE:LINE
    json:FILE#id=ID            a record of a conversation JSON list with an id, else json:FILE#INDEX
    bytes:sha1:HEX             bytes that came from nowhere in particular
    row:id=ID                  a row of a `ray.data.Dataset` (`caption_dataset`), else row:sha1:HEX of its columns
    caption:sha1:HEX           a caption judged by `capflow-filter`, by its media and text

A name that repeats in one source (an id on two manifest lines, a `__key__` on two samples of one
shard) gets `@N` on its Nth occurrence, so each input has a key of its own; the id stays a field.

Outputs written before keys named their source (the key was the id, `PATH\\x1fINSTRUCTION` or
`sha1:HEX\\x1fINSTRUCTION`) still resume: such a record is matched on its `identity` (input,
instruction and id, which those versions wrote too), never on its key alone.
"""

from __future__ import annotations

from typing import Any

SEP = "\x1f"
_IDENTITY_SEP = "\x1e"
PLACES = ("file:", "shard:", "table:", "hf:", "manifest:", "json:", "bytes:", "row:", "caption:")


def item_key(place: str, instruction: str | None) -> str:
    return f"{place}{SEP}{instruction or ''}"


def is_current(key: Any) -> bool:
    """Whether a stored key names its source (this version's keys), not only an id or a path."""
    return isinstance(key, str) and key.startswith(PLACES) and SEP in key


def identity(input: str, instruction: str | None, id: str | None) -> str:
    """What every version wrote about an item: how records without a current key are matched."""
    return _IDENTITY_SEP.join((input, instruction or "", "" if id is None else str(id)))


def record_identity(record: dict[str, Any]) -> str:
    return identity(str(record.get("input")), record.get("instruction"), record.get("id"))


def record_key(record: dict[str, Any]) -> str:
    """A caption record's key; records written before keys were stored rebuild the key they had."""
    if record.get("key") is not None:
        return str(record["key"])
    if record.get("id") is not None:
        return str(record["id"])
    return f"{record['input']}{SEP}{record.get('instruction') or ''}"


class Occurrences:
    """Names seen in one source: the Nth occurrence of a name becomes `name@N` (N >= 2), and a
    name that would meet one already given (a literal `a@2`) takes the next free N."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._given: set[str] = set()

    def place(self, name: str) -> tuple[str, int]:
        """The name's place in this source, and how many times the name has occurred so far."""
        n = self._counts[name] = self._counts.get(name, 0) + 1
        place = name if n == 1 else f"{name}@{n}"
        while place in self._given:
            n += 1
            place = f"{name}@{n}"
        self._given.add(place)
        return place, self._counts[name]
