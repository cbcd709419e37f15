"""Files, folders, globs and JSONL manifests (`{"media", "instruction", "id"}` per line)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...jsonl import read_jsonl
from ...media import media_files_in
from ..keys import Occurrences
from .conversations import conversation_item
from .items import WorkItem, bad_item


def paths(raw: str, instruction: str | None, matched: bool = False) -> Iterator[WorkItem]:
    """A file, or a folder (recursively, known media extensions). Globs are expanded by the caller;
    a glob's match is kept as the glob wrote it (`matched`), so keys stay those of earlier runs."""
    p = Path(raw).expanduser()
    if p.is_dir():
        yield from (WorkItem(str(f), instruction) for f in media_files_in(p))
    else:
        yield WorkItem(raw if matched else str(p), instruction)  # a missing file becomes that item's error


def manifest(path: Path, instruction: str | None, media_root: Path | None = None) -> Iterator[WorkItem]:
    """One item per line: `{"media": PATH, ...}`, or a LLaVA/InternVL conversation record. An item's
    place is its id in this manifest (`manifest:FILE#id=ID`), else its line (`manifest:FILE:LINE`)."""
    ids = Occurrences()
    for where, row in read_jsonl(path):
        item_id = row.get("id") if isinstance(row, dict) else None
        item_id = None if item_id is None else str(item_id)
        place, occurrence = (f"manifest:{where}", 1) if item_id is None else _id_place(f"manifest:{path}", item_id, ids)
        if isinstance(row, dict) and "conversations" in row:
            yield conversation_item(row, where, media_root or path.parent, instruction, place, occurrence)
            continue
        if not isinstance(row, dict) or not isinstance(row.get("media"), str):
            reason = row if isinstance(row, ValueError) else "each line must be an object whose 'media' is a path string"
            yield bad_item(where, f"Bad manifest line {where}: {reason}.",
                           'Each line needs {"media": PATH, "instruction": TEXT}, or a LLaVA conversation.',
                           instruction, place=place, id=item_id)
            continue
        media_path = Path(row["media"]).expanduser()
        if not media_path.is_absolute():
            media_path = path.parent / media_path
        yield WorkItem(str(media_path), row.get("instruction", instruction), id=item_id, place=place,
                       occurrence=occurrence)


def _id_place(source: str, item_id: str, ids: Occurrences) -> tuple[str, int]:
    place, occurrence = ids.place(item_id)
    return f"{source}#id={place}", occurrence
