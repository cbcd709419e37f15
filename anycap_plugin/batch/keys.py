"""Keys: how a batch item is named across runs, so that a resume knows what is already done.

A key names where the item came from and its place there, then its instruction after `\\x1f`.
Files are named canonically: a local path resolved and absolute, a URL as a URL, so a key does not
depend on the working directory or on how the path was spelled:

    file:PATH                  a media file (named, in a folder, or matched by a glob)
    shard:SHARD#__key__        a WebDataset sample
    table:TABLE#row=N          a Parquet row (rows are the place: an id column may repeat or be null)
    hf:NAME:SPLIT#row=N        a Hugging Face dataset row
    manifest:FILE#id=ID        a manifest line with an id, else manifest:FILE#media=MEDIA (its content)
    json:FILE#id=ID            a record of a conversation JSON list with an id, else json:FILE#media=MEDIA
    bytes:sha1:HEX             bytes that came from nowhere in particular
    row:id=ID                  a row of a `ray.data.Dataset` (`caption_dataset`), else row:sha1:HEX of its columns
    caption:sha1:HEX           a caption judged by `capflow-filter`, by its media and text

A name that repeats in one source (an id on two manifest lines, a `__key__` on two samples of one
shard) gets `@N` on its Nth occurrence, so each input has a key of its own; the id stays a field.

Outputs written before keys named their source (the key was the id, `PATH\\x1fINSTRUCTION` or
`sha1:HEX\\x1fINSTRUCTION`) still resume: such a record is matched on its `identity` (input,
instruction and id, which those versions wrote too), never on its key alone. Outputs written while
keys named files as spelled (relative to the working directory) and manifest lines by number still
resume from the folder they were written in: their paths are made canonical when the journal is
read (`canonical_key`, `canonical_identity`), and a manifest line keeps its numbered key as an alias.
"""

from __future__ import annotations

from typing import Any

from ..storage import canonical, is_url

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


_PATH_PLACES = ("file:", "shard:", "table:", "manifest:", "json:")


def canonical_key(key: str) -> str:
    """A stored key with its file named canonically (written by a version that kept the spelling:
    a relative path means one under the working directory of the run reading it)."""
    prefix = next((p for p in _PATH_PLACES if key.startswith(p)), None)
    if prefix is None or SEP not in key:
        return key
    place, sep, rest = key.partition(SEP)
    body = place[len(prefix) :]
    if prefix == "file:":
        path, tail = body, ""
    elif prefix == "manifest:" and "#" not in body:
        path, colon, line = body.rpartition(":")  # manifest:FILE:LINE
        tail = colon + line
    else:
        path, hash_, name = body.rpartition("#")
        tail = hash_ + name
    if not path or _absolute(path):
        return key
    return f"{prefix}{canonical(path)}{tail}{sep}{rest}"


def canonical_identity(ident: str) -> str:
    """An identity whose input is a relative path (see `canonical_key`), made canonical."""
    input, sep, rest = ident.partition(_IDENTITY_SEP)
    if not input or input.startswith(("sha1:", "bytes:", "ray:")) or _absolute(input):
        return ident
    path, hash_, name = input.partition("#")  # a shard member or table row: SHARD#KEY.EXT
    return f"{canonical(path)}{hash_}{name}{sep}{rest}"


def _absolute(path: str) -> bool:
    return is_url(path) or path.startswith("/")


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
