"""Files, folders, globs and JSONL manifests (`{"media", "instruction", "id"}` per line)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..jsonl import read_jsonl
from ..media import media_files_in
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
    """One item per line: `{"media": PATH, ...}`, or a LLaVA/InternVL conversation record."""
    for where, row in read_jsonl(path):
        if isinstance(row, dict) and "conversations" in row:
            yield conversation_item(row, where, media_root or path.parent, instruction)
            continue
        if not isinstance(row, dict) or not isinstance(row.get("media"), str):
            reason = row if isinstance(row, ValueError) else "each line must be an object whose 'media' is a path string"
            yield bad_item(where, f"Bad manifest line {where}: {reason}.",
                           'Each line needs {"media": PATH, "instruction": TEXT}, or a LLaVA conversation.',
                           instruction)
            continue
        media_path = Path(row["media"]).expanduser()
        if not media_path.is_absolute():
            media_path = path.parent / media_path
        item_id = row.get("id")
        yield WorkItem(str(media_path), row.get("instruction", instruction),
                       id=None if item_id is None else str(item_id))
