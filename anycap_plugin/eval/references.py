"""AnyCapEval references and candidate captions, read into one item type.

A reference line carries an id, a media name (`image`, `video` or `audio` key), the
instruction and reference caption in `conversations`, `restriction` = [type, length
sentence], and for content items a `key_point` list. Ids are unique within a modality only,
so items are keyed by (modality, id).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import EvalDataError
from ..instructions import LengthConstraint
from ..jsonl import read_jsonl
from ..media import MODALITIES, Modality
from .length_rules import release_constraint

Axis = Literal["content", "style"]


@dataclass(frozen=True)
class EvalItem:
    id: str
    modality: Modality
    media: str
    instruction: str
    reference: str
    dimension: str  # the restriction type, e.g. "instance", "poem"
    constraint_text: str
    key_points: tuple[str, ...] | None  # content items only

    @property
    def axis(self) -> Axis:
        return "content" if self.key_points is not None else "style"

    @property
    def key(self) -> tuple[str, str]:
        return (self.modality, self.id)

    @property
    def constraint(self) -> LengthConstraint | None:
        """What the release checks for `restriction[1]`: None (unchecked) outside its table."""
        return release_constraint(self.constraint_text)


def _item(row: dict, where: str) -> EvalItem:
    modality = next((m for m in MODALITIES if m in row), None)
    try:
        if modality is None:
            raise KeyError("no 'image', 'video' or 'audio' field")
        human = next(t["value"] for t in row["conversations"] if t["from"] == "human")
        answer = next(t["value"] for t in row["conversations"] if t["from"] == "gpt")
        kind, sentence = row["restriction"]
        key_points = row.get("key_point")
        if key_points is not None and not isinstance(key_points, list):
            raise ValueError("'key_point' must be a list")  # an empty one occurs (audio id 27)
    except (KeyError, StopIteration, ValueError, TypeError) as e:
        raise EvalDataError(f"{where}: not an AnyCapEval reference ({e}).") from None
    instruction = human.replace("<image>", "").replace("<video>", "").replace("<audio>", "").strip()
    return EvalItem(
        str(row["id"]),
        modality,
        str(row[modality]),
        instruction,
        answer,
        str(kind),
        str(sentence),
        tuple(map(str, key_points)) if key_points is not None else None,
    )


def load_references(paths: Iterable[str | Path]) -> list[EvalItem]:
    items: list[EvalItem] = []
    seen: set[tuple[str, str]] = set()
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise EvalDataError(f"No reference file {str(p)!r}.")
        for where, row in read_jsonl(p):
            if not isinstance(row, dict):
                raise EvalDataError(f"{where}: not a JSON object ({row}).")
            item = _item(row, where)
            if item.key in seen:
                raise EvalDataError(f"{where}: duplicate {item.modality} id {item.id}.")
            seen.add(item.key)
            items.append(item)
    return items


def load_captions(path: str | Path, items: list[EvalItem]) -> dict[tuple[str, str], str]:
    """Candidate captions keyed like the items: rows of {"id", "caption"[, "modality"]}.

    `anycap caption` output works as is (failed rows, caption null, count as missing).
    """
    modalities = {i.modality for i in items}
    out: dict[tuple[str, str], str] = {}
    for where, row in read_jsonl(path):
        try:
            if isinstance(row, ValueError):
                raise row
            cid, caption = str(row["id"]), row["caption"]
        except (ValueError, KeyError, TypeError) as e:
            raise EvalDataError(f"{where}: needs 'id' and 'caption' ({e}).") from None
        modality = row.get("modality")
        if modality is None:
            if len(modalities) > 1:
                raise EvalDataError(
                    f"{where}: ids repeat across modalities; add a 'modality' field.",
                    hint="Or evaluate one modality's references at a time.",
                )
            modality = next(iter(modalities)) if modalities else "image"
        if isinstance(caption, str):
            out[(modality, cid)] = caption
    return out


def caption_manifest(items: list[EvalItem], media_root: str | Path) -> list[dict]:
    """Manifest lines for `anycap caption` that produce a candidate file for these references."""
    root = Path(media_root)
    return [
        {
            "id": i.id,
            "media": str(root / i.media),
            "instruction": i.instruction,
            "modality": i.modality,
        }
        for i in items
    ]
