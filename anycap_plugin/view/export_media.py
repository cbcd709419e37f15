"""The media an ACD export writes beside itself: items whose media live inside a WebDataset shard,
a Parquet table or a Hugging Face dataset, or behind a URL, where `anycap train` cannot open them.

One file per media in `OUT.media/`, named by a hash of the item's place (its key without the
instruction: two instructions on one image share its file) and the extension its bytes call for,
so a re-export writes the same names. Each source is read once, through the batch readers
(`batch.inputs`) as a stream, one sample or row batch at a time; files are copied in chunks. Only
the places waiting for their media are held.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import IO

from ..batch.keys import SEP
from ..errors import AnyCapError
from ..media.detect import extension_for
from ..storage import Storage, is_url

# key prefixes whose media only the source's reader can give back, and that reader's kind
_READ_FROM = {"shard:": "shard", "table:": "table", "hf:": "dataset"}
_CHUNK = 1 << 20


def media_folder(target: Path) -> Path:
    """`OUT.media/` beside `OUT.jsonl`."""
    return target.with_name(target.stem + ".media")


def place_of(key: str) -> str:
    return key.partition(SEP)[0]


class ExportMedia:
    """Collects the places an export needs media for (`want`), then writes them all (`fetch`)."""

    def __init__(
        self,
        target: Path,
        storage: Storage | None = None,
        columns: dict[str, str | None] | None = None,
    ) -> None:
        self.folder = media_folder(target)
        self.columns: dict[str, str | None] = dict(columns or {})
        self.relative_to = target.resolve().parent
        self.storage = storage or Storage()
        self.wanted: dict[tuple[str, str], set[str]] = {}  # (location, kind) -> places
        self.written: dict[str, str] = {}  # place -> path relative to the export's folder

    def want(self, key: str, media: object) -> bool:
        """Note the item's media for fetching; False when it is neither in a source nor at a URL."""
        place = place_of(key)
        for prefix, kind in _READ_FROM.items():
            if place.startswith(prefix):
                location = place[len(prefix) :].rpartition("#")[0]
                self.wanted.setdefault((location, kind), set()).add(place)
                return True
        if isinstance(media, str) and is_url(media):
            self.wanted.setdefault((media, "url"), set()).add(place)
            return True
        return False

    def fetch(self) -> Counter[str]:
        """Write every wanted media; returns why some could not be (counted by reason)."""
        missing: Counter[str] = Counter()
        for (location, kind), places in self.wanted.items():
            try:
                if kind == "url":
                    place = next(iter(places))
                    with self.storage.open(location, "rb") as src:
                        self._write(place, src, location)
                else:
                    self._from_source(location, kind, places)
            except (AnyCapError, OSError, ValueError) as e:  # gone, unreadable, columns renamed
                missing[f"media unreadable ({type(e).__name__})"] += len(
                    places - self.written.keys()
                )
                continue
            missing["media not found in its source"] += len(places - self.written.keys())
        return +missing

    def _from_source(self, location: str, kind: str, places: set[str]) -> None:
        import io

        from ..batch.inputs import ReadContext, Source, read_source

        left = set(places)
        ctx = ReadContext(storage=self.storage, columns=self.columns)
        items = read_source(Source(location, kind), ctx)
        try:
            for item in items:
                if item.problem is not None and "#" not in (item.place or "#"):
                    raise item.problem  # the whole source is unreadable (a bucket unreachable, a column gone)
                if item.place not in left or item.problem is not None:
                    continue
                if item.data is not None:
                    self._write(item.place, io.BytesIO(item.data), item.input)
                else:  # a table's path or URL column
                    with self.storage.open(item.input, "rb") as src:
                        self._write(item.place, src, item.input)
                left.discard(item.place)
                if not left:
                    break
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a shard or table left early closes its file now

    def _write(self, place: str, src: IO[bytes], name: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = hashlib.sha256(place.encode("utf-8")).hexdigest()[:32]
        part = self.folder / f"{stem}.part"
        with open(part, "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        final = self.folder / (stem + extension_for(part, name))
        os.replace(part, final)
        self.written[place] = os.path.relpath(final, self.relative_to)
