"""LLaVA / InternVL conversation records, the format CapFlow and InternVL training use:
`{"id", "image" | "video", "conversations": [{"from": "human", "value": "<image>\\n..."}, ...]}`.

The media path is relative to `media_root` (default: the file's folder or URL). The instruction is
`--instruction` when given, else the first human turn with its `<image>`/`<video>` markup removed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from ...storage import join, parent_of
from ..keys import SEP, Occurrences, item_key
from .base import InputFormat, ReadContext, Source, name_of
from .items import WorkItem, bad_item

_MARKUP = re.compile(r"<(image|video|audio)>\s*")
_HINT = 'Each record needs "image" or "video" (one path) and "conversations" with a human turn.'


class ConversationFile(InputFormat):
    """A `.json` file holding a list of conversation records. A record's place is its id in the file
    (`json:FILE#id=ID`), else its media (`json:FILE#media=PATH`, `@N` for repeats; earlier versions'
    `json:FILE#INDEX` is kept as an alias)."""

    kind = "conversations"

    def claims(self, location: str, is_dir: bool) -> bool:
        return not is_dir and name_of(location).endswith(".json")

    def holds_something(self, source: Source, ctx: ReadContext) -> bool:
        text = ctx.storage.read_bytes(source.location)
        return len(text) > 64 or text.decode("utf-8", "replace").strip() not in ("", "[]")

    def count(self, source: Source, ctx: ReadContext) -> int | None:
        rows = json.loads(ctx.storage.read_bytes(source.location))
        return len(rows) if isinstance(rows, list) else 1

    def items(self, source: Source, ctx: ReadContext) -> Iterator[WorkItem]:
        path = source.location
        try:
            rows = json.loads(ctx.storage.read_bytes(path))
        except (OSError, ValueError) as e:
            yield bad_item(
                path,
                f"Cannot read {path} as JSON: {e}.",
                _HINT,
                ctx.instruction,
                place=f"json:{path}",
            )
            return
        if not isinstance(rows, list):
            yield bad_item(
                path,
                f"{path} is not a list of conversation records.",
                _HINT,
                ctx.instruction,
                place=f"json:{path}",
            )
            return
        ids, contents = Occurrences(), Occurrences()
        root = ctx.media_root or parent_of(path)
        for i, row in enumerate(rows):
            item_id = row.get("id") if isinstance(row, dict) else None
            if item_id is None:
                media = _media(row)
                content = (
                    media
                    if isinstance(media, str)
                    else json.dumps(row, sort_keys=True, default=str)
                )
                name, occurrence = contents.place(content + SEP)
                place = f"json:{path}#media={content}{name[len(content) + len(SEP) :]}"
                aliases: tuple[str, ...] = (
                    item_key(f"json:{path}#{i}", _instruction(row, ctx.instruction)),
                )
            else:
                name, occurrence = ids.place(str(item_id))
                place, aliases = f"json:{path}#id={name}", ()
            item = conversation_item(row, f"{path}#{i}", root, ctx.instruction, place, occurrence)
            if ctx.is_run_file(item.input):
                item = bad_item(
                    item.input,
                    f"{item.input} is this run's own output or state; a run never reads "
                    "what it writes.",
                    "Name the media, not the run's files.",
                    item.instruction,
                    place=place,
                    id=item.id,
                )
            yield WorkItem(
                item.input,
                item.instruction,
                id=item.id,
                problem=item.problem,
                place=item.place,
                occurrence=item.occurrence,
                aliases=aliases,
            )


def conversation_item(
    row: Any, where: str, media_root: str, instruction: str | None, place: str, occurrence: int = 1
) -> WorkItem:
    if not isinstance(row, dict):
        return bad_item(where, f"Record {where} is not an object.", _HINT, instruction, place=place)
    item_id = None if row.get("id") is None else str(row["id"])
    media = _media(row)
    if isinstance(media, list):
        return bad_item(
            where,
            f"Record {where} holds {len(media)} media; AnyCap captions one per item.",
            "Split multi-image records into one record per image.",
            instruction,
            id=item_id,
            place=place,
        )
    if not isinstance(media, str) or not media:
        return bad_item(
            where,
            f"Record {where} names no image or video.",
            _HINT,
            instruction,
            id=item_id,
            place=place,
        )
    return WorkItem(
        join(media_root, media),
        _instruction(row, instruction),
        id=item_id,
        place=place,
        occurrence=occurrence,
    )


def _media(row: Any) -> Any:
    if not isinstance(row, dict):
        return None
    media = row.get("image", row.get("video", row.get("audio")))
    return media[0] if isinstance(media, list) and len(media) == 1 else media


def _instruction(row: Any, instruction: str | None) -> str | None:
    if instruction is not None or not isinstance(row, dict):
        return instruction
    return _first_human_turn(row.get("conversations"))


def _first_human_turn(turns: Any) -> str | None:
    for turn in turns if isinstance(turns, list) else []:
        if (
            isinstance(turn, dict)
            and turn.get("from") in ("human", "user")
            and isinstance(turn.get("value"), str)
        ):
            return _MARKUP.sub("", turn["value"]).strip() or None
    return None
