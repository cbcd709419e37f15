"""A run's review journal: what a person decided about each item (accepted or rejected, a corrected
caption, tags, a note), kept beside the run and never in it (`captions.jsonl` ->
`captions.reviews.jsonl`, `batch.outputs.reviews_for`). The run file is never written.

- One JSON object a line, the item's whole review (not a change), appended at once and synced:
  `{"key", "status": accepted|rejected|pending, "caption": TEXT or null (null: unchanged), "tags",
  "note", "at": ISO-8601, "of": a hash of the record reviewed}`. The latest line per key wins.
- Written through the batch journal (`batch.journal.Journal`): its lock lets one viewer write at a
  time, and opening it moves a torn last line aside (`captions.reviews.rejected.jsonl`).
- A line whose `of` no longer matches its record (a resume re-captioned it) is stale: shown, not
  applied. A line without `of` (written by hand or by another tool) applies to the record as it is.
- Each item has a version, the number of lines it has; a write names the version it was made on
  and is refused on any other (`StaleReviewError`), so two tabs never silently overwrite each other.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..batch.journal import Journal, Layout
from ..batch.outputs import reviews_for
from ..errors import JournalBusyError, ReviewError, StaleReviewError

STATUSES = ("accepted", "rejected", "pending")
MAX_TAGS, MAX_TAG_CHARS = 32, 64


def record_hash(record: dict[str, Any] | None) -> str:
    """What `of` holds: a hash of the record as the run has it (keys sorted, so Parquet and JSONL
    copies of one record agree)."""
    blob = json.dumps(
        record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()


def review_key(line: Any) -> str:
    """A review line's key; a line that is not a review raises (the journal moves it aside)."""
    if not isinstance(line, dict) or not isinstance(line.get("key"), str):
        raise TypeError("a review line is an object with a key")
    if line.get("status") not in STATUSES:
        raise ValueError(f"a review's status is one of {', '.join(STATUSES)}")
    return line["key"]


LAYOUT = Layout(key=review_key, finished=lambda line: True, identity=review_key)


@dataclass(frozen=True)
class Review:
    key: str
    status: str = "pending"
    caption: str | None = None  # the corrected caption; None: unchanged
    tags: tuple[str, ...] = ()
    note: str = ""
    at: str | None = None
    of: str | None = None
    version: int = 0  # lines written for this key so far

    @classmethod
    def from_line(cls, line: dict[str, Any], version: int) -> Review:
        """A line as written, leniently: a hand-written line may lack fields or give odd ones."""
        tags, caption, note = line.get("tags"), line.get("caption"), line.get("note")
        return cls(
            key=line["key"],
            status=line["status"],
            caption=caption if isinstance(caption, str) else None,
            tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
            note=note if isinstance(note, str) else "",
            at=line.get("at") if isinstance(line.get("at"), str) else None,
            of=line.get("of") if isinstance(line.get("of"), str) else None,
            version=version,
        )

    def applies_to(self, record: dict[str, Any] | None) -> bool:
        """False when the record changed since it was reviewed (stale); a line without `of` applies."""
        return self.of is None or self.of == record_hash(record)

    def line(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "caption": self.caption,
            "tags": list(self.tags),
            "note": self.note,
            "at": self.at,
            "of": self.of,
        }

    def shown(self, record: dict[str, Any] | None) -> dict[str, Any]:
        """What the page and the API show for an item: the review, whether it applies, its version."""
        stale = not self.applies_to(record)
        return {
            **self.line(),
            "tags": list(self.tags),
            "version": self.version,
            "stale": stale,
            "edited": self.caption is not None and not stale,
            "status": "pending" if stale else self.status,
        }


def read_reviews(path: Path) -> tuple[dict[str, Review], int]:
    """(latest review per key, lines that are not reviews). Reads without the lock: `anycap export`
    may read while a viewer writes, so an unreadable line (a torn last one) is skipped, not moved."""
    latest: dict[str, Review] = {}
    skipped = 0
    if not path.exists():
        return latest, 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
                key = review_key(line)
            except (ValueError, TypeError):
                skipped += 1
                continue
            previous = latest.get(key)
            latest[key] = Review.from_line(line, previous.version + 1 if previous else 1)
    return latest, skipped


def _change(change: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    """The fields of a write, checked: a typed error saying what to send for anything else."""
    unknown = set(change) - {"status", "caption", "tags", "note"}
    if unknown:
        raise ReviewError(
            f"Unknown review field(s): {', '.join(sorted(unknown))}.",
            hint="A review sets status, caption, tags and note.",
        )
    out: dict[str, Any] = {}
    if "status" in change:
        if change["status"] not in STATUSES:
            raise ReviewError(
                f"Unknown review status {change['status']!r}.", hint=f"Use one of {STATUSES}."
            )
        out["status"] = change["status"]
    if "caption" in change:
        caption = change["caption"]
        if caption is not None and not isinstance(caption, str):
            raise ReviewError("A corrected caption is text.", hint="Send a string, or null.")
        if isinstance(caption, str) and not caption.strip():
            raise ReviewError(
                "A corrected caption cannot be empty.", hint="Reject the item instead."
            )
        original = (record or {}).get("caption")
        out["caption"] = None if caption == original else caption  # edited back: unchanged
    if "tags" in change:
        tags = change["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ReviewError("Tags are a list of text.", hint='Send e.g. ["blurry", "nsfw"].')
        clean = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
        if len(clean) > MAX_TAGS or any(len(t) > MAX_TAG_CHARS for t in clean):
            raise ReviewError(
                f"At most {MAX_TAGS} tags of {MAX_TAG_CHARS} characters each.",
                hint="Use fewer, shorter tags.",
            )
        out["tags"] = tuple(clean)
    if "note" in change:
        if not isinstance(change["note"], str):
            raise ReviewError("A note is text.", hint="Send a string.")
        out["note"] = change["note"]
    return out


def _next(
    key: str, record: dict[str, Any] | None, current: Review | None, fields: dict[str, Any]
) -> Review:
    """Item `key`'s review after `fields` change it: built on the current review where it applies
    to the record (a stale one's caption and tags were for another record)."""
    base = current if current is not None and current.applies_to(record) else None
    return Review(
        key=key,
        status=fields.get("status", base.status if base else "pending"),
        caption=fields.get("caption", base.caption if base else None),
        tags=fields.get("tags", base.tags if base else ()),
        note=fields.get("note", base.note if base else ""),
        at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        of=record_hash(record),
        version=(current.version if current else 0) + 1,
    )


class ReviewJournal:
    """The reviews of one local run: read at open, written one line per change. A run another
    viewer is reviewing (its lock held), or whose folder cannot be written, opens read-only:
    `read_only` says why."""

    def __init__(self, run: Path, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else Path(reviews_for(str(run)))
        self.read_only: str | None = None
        self.moved_aside = 0
        self._journal: Journal | None = None
        try:
            self._journal = Journal(self.path, LAYOUT)
            self.moved_aside = self._journal.rejected
        except JournalBusyError:
            self.read_only = f"Another viewer is reviewing this run ({self.path.name} is locked)."
        except OSError as e:
            self.read_only = f"Reviews cannot be written beside this run: {e.strerror or e}."
        self.reviews, _ = read_reviews(self.path)
        self._lock = threading.Lock()

    def get(self, key: str) -> Review | None:
        return self.reviews.get(key)

    def write(
        self, key: str, record: dict[str, Any] | None, change: dict[str, Any], version: int
    ) -> Review:
        """Apply `change` (status, caption, tags, note) to item `key`'s review made on `version`."""
        if self._journal is None:
            raise ReviewError(
                self.read_only or "This run is read-only.", hint="Close the other viewer."
            )
        fields = _change(change, record)
        with self._lock:
            current = self.reviews.get(key)
            have = current.version if current else 0
            if version != have:
                raise StaleReviewError(
                    f"Item {key!r} was reviewed elsewhere since (version {have}, not {version}).",
                    hint="Reload the item and review it again.",
                )
            review = _next(key, record, current, fields)
            self._journal.append([review.line()])
            self._journal.sync()
            self.reviews[key] = review
            return review

    def write_many(
        self, items: list[tuple[str, dict[str, Any] | None]], change: dict[str, Any]
    ) -> int:
        """One change to many items (a bulk action over a filter), each on its current review;
        `tags` are added to each item's own. One append, one sync."""
        if self._journal is None:
            raise ReviewError(
                self.read_only or "This run is read-only.", hint="Close the other viewer."
            )
        fields = _change({k: v for k, v in change.items() if k != "caption"}, None)
        with self._lock:
            written: dict[str, Review] = {}
            for key, record in items:
                current = written.get(key) or self.reviews.get(key)
                mine = dict(fields)
                if "tags" in fields and current is not None and current.applies_to(record):
                    mine["tags"] = tuple(dict.fromkeys((*current.tags, *fields["tags"])))
                written[key] = _next(key, record, current, mine)
            self._journal.append([r.line() for r in written.values()])
            self._journal.sync()
            self.reviews.update(written)
            return len(written)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
