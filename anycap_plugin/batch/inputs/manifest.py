"""JSONL manifests: `{"media": PATH_OR_URL, "instruction", "id"}` per line, or a LLaVA/InternVL
conversation record. Relative media are relative to the manifest's own folder (or URL).

A line's place is its id in the manifest (`manifest:FILE#id=ID`); a line without an id is placed
by its content, the media as written (`manifest:FILE#media=PATH`, `@N` for the Nth line with the
same media and instruction), so inserting or removing a line moves no other line's key. Earlier
versions placed such a line by its number (`manifest:FILE:LINE`): that key is kept as an alias,
so their outputs still resume on an unchanged manifest.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from ...storage import join, parent_of
from ..keys import SEP, Occurrences, item_key
from .base import InputFormat, ReadContext, Source, name_of
from .conversations import conversation_item
from .items import WorkItem, bad_item


class Manifest(InputFormat):
    kind = "manifest"

    def claims(self, location: str, is_dir: bool) -> bool:
        return not is_dir and name_of(location).endswith(".jsonl")

    def holds_something(self, source: Source, ctx: ReadContext) -> bool:
        return any(line.strip() for line in _lines(source, ctx))

    def count(self, source: Source, ctx: ReadContext) -> int | None:
        return sum(1 for line in _lines(source, ctx) if line.strip())

    def items(self, source: Source, ctx: ReadContext) -> Iterator[WorkItem]:
        path = source.location
        root = ctx.media_root or parent_of(path)
        ids, contents = Occurrences(), Occurrences()
        for lineno, line in enumerate(_lines(source, ctx), 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row: Any = json.loads(line)
            except ValueError as e:
                row = e
            item_id = row.get("id") if isinstance(row, dict) else None
            item_id = None if item_id is None else str(item_id)
            instruction = (
                row.get("instruction", ctx.instruction)
                if isinstance(row, dict)
                else ctx.instruction
            )
            aliases: tuple[str, ...]
            if item_id is not None:
                name, occurrence = ids.place(item_id)
                place, aliases = f"manifest:{path}#id={name}", ()
            else:
                content = _content(row)
                name, occurrence = contents.place(f"{content}{SEP}{instruction or ''}")
                n = name[len(content) + len(SEP) + len(instruction or "") :]  # "" or "@N"
                place, aliases = (
                    f"manifest:{path}#media={content}{n}",
                    (item_key(f"manifest:{where}", instruction),),
                )
            if isinstance(row, dict) and "conversations" in row:
                item = conversation_item(row, where, root, ctx.instruction, place, occurrence)
                yield _with(item, aliases=aliases, run_file=ctx.is_run_file(item.input))
                continue
            if not isinstance(row, dict) or not isinstance(row.get("media"), str):
                reason = (
                    row
                    if isinstance(row, ValueError)
                    else "each line must be an object whose 'media' is a path string"
                )
                yield bad_item(
                    where,
                    f"Bad manifest line {where}: {reason}.",
                    'Each line needs {"media": PATH, "instruction": TEXT}, or a LLaVA conversation.',
                    instruction,
                    place=place,
                    id=item_id,
                    aliases=aliases,
                    occurrence=occurrence,
                )
                continue
            media = join(root, row["media"])
            item = WorkItem(
                media, instruction, id=item_id, place=place, occurrence=occurrence, aliases=aliases
            )
            yield _with(item, run_file=ctx.is_run_file(media))


def _content(row: Any) -> str:
    """What places a line without an id: its media as written, else the line's JSON."""
    if isinstance(row, dict):
        media = row.get("media", row.get("image", row.get("video", row.get("audio"))))
        if isinstance(media, str):
            return media
        return json.dumps(row, sort_keys=True, ensure_ascii=False)
    return "line:" + (str(row) if not isinstance(row, ValueError) else "unreadable")


def _with(item: WorkItem, *, aliases: tuple[str, ...] = (), run_file: bool = False) -> WorkItem:
    from dataclasses import replace

    if run_file:
        return bad_item(
            item.input,
            f"{item.input} is this run's own output or state; a run never reads what it writes.",
            "Name the media, not the run's files.",
            item.instruction,
            place=item.place or "",
            id=item.id,
            aliases=aliases or item.aliases,
            occurrence=item.occurrence,
        )
    return replace(item, aliases=aliases) if aliases else item


def _lines(source: Source, ctx: ReadContext) -> Iterator[str]:
    with ctx.storage.open(source.location, "rb") as raw:
        yield from io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
