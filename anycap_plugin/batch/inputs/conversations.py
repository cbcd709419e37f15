"""LLaVA / InternVL conversation records, the format CapFlow and InternVL training use:
`{"id", "image" | "video", "conversations": [{"from": "human", "value": "<image>\\n..."}, ...]}`.

The media path is relative to `media_root` (default: the file's folder). The instruction is
`--instruction` when given, else the first human turn with its `<image>`/`<video>` markup removed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from ..keys import Occurrences
from .items import WorkItem, bad_item

_MARKUP = re.compile(r"<(image|video|audio)>\s*")
_HINT = 'Each record needs "image" or "video" (one path) and "conversations" with a human turn.'


def conversation_file(path: Path, instruction: str | None, media_root: Path | None = None) -> Iterator[WorkItem]:
    """A `.json` file holding a list of conversation records; a record's place is its id in the
    file (`json:FILE#id=ID`), else its index (`json:FILE#INDEX`)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        yield bad_item(str(path), f"Cannot read {path} as JSON: {e}.", _HINT, instruction, place=f"json:{path}")
        return
    if not isinstance(rows, list):
        yield bad_item(str(path), f"{path} is not a list of conversation records.", _HINT, instruction,
                       place=f"json:{path}")
        return
    ids = Occurrences()
    for i, row in enumerate(rows):
        item_id = row.get("id") if isinstance(row, dict) else None
        if item_id is None:
            place, occurrence = f"json:{path}#{i}", 1
        else:
            name, occurrence = ids.place(str(item_id))
            place = f"json:{path}#id={name}"
        yield conversation_item(row, f"{path}#{i}", media_root or path.parent, instruction, place, occurrence)


def conversation_item(row: Any, where: str, media_root: Path, instruction: str | None, place: str,
                      occurrence: int = 1) -> WorkItem:
    if not isinstance(row, dict):
        return bad_item(where, f"Record {where} is not an object.", _HINT, instruction, place=place)
    item_id = None if row.get("id") is None else str(row["id"])
    media = row.get("image", row.get("video", row.get("audio")))
    if isinstance(media, list) and len(media) == 1:
        media = media[0]
    if isinstance(media, list):
        return bad_item(where, f"Record {where} holds {len(media)} media; AnyCap captions one per item.",
                        "Split multi-image records into one record per image.", instruction, id=item_id, place=place)
    if not isinstance(media, str) or not media:
        return bad_item(where, f"Record {where} names no image or video.", _HINT, instruction, id=item_id, place=place)
    if instruction is None:
        instruction = _first_human_turn(row.get("conversations"))
    path = Path(media).expanduser()
    return WorkItem(str(path if path.is_absolute() else media_root / path), instruction, id=item_id, place=place,
                    occurrence=occurrence)


def _first_human_turn(turns: Any) -> str | None:
    for turn in turns if isinstance(turns, list) else []:
        if isinstance(turn, dict) and turn.get("from") in ("human", "user") and isinstance(turn.get("value"), str):
            return _MARKUP.sub("", turn["value"]).strip() or None
    return None
