"""The `anycap` judge protocol: our prompts and reply contract (docs/anycapeval.md).

- content: `{"key_points": [{"index": i, "matched": 0 or 1, "reason": "..."}, ...]}`,
  one entry per key point, indices 1..n in the order of the reference's `key_point` list;
- style: `{"score": 0..4, "reason": "..."}`.
Temperature 0 and JSON mode; the style judge sees the media only when a media root is given.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ...media import Media
from ...media.chat_parts import media_parts
from ...openai_compat import json_object
from ..references import EvalItem
from ..replies import rubric_score
from . import JudgeProtocol

PROMPT_VERSION = "anycapeval-judge-v1"


def parse_content_reply(text: str, n_points: int) -> list[int]:
    """Matched flags in key-point order; every point answered exactly once, flags 0 or 1."""
    data = json_object(text)
    entries = data.get("key_points")
    if not isinstance(entries, list):
        raise ValueError("'key_points' must be a list")  # noqa: TRY004 - a malformed reply: the re-ask loop catches ValueError
    flags: dict[int, int] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("each key point entry must be an object")  # noqa: TRY004 - a malformed reply: the re-ask loop catches ValueError
        index, matched = entry.get("index"), entry.get("matched")
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= n_points:
            raise ValueError(f"index {index!r} is not in 1..{n_points}")
        if isinstance(matched, bool):
            matched = int(matched)
        if matched not in (0, 1) or isinstance(matched, float):
            raise ValueError(f"matched {matched!r} for point {index} is not 0 or 1")
        if index in flags:
            raise ValueError(f"key point {index} answered twice")
        flags[index] = matched
    missing = sorted(set(range(1, n_points + 1)) - set(flags))
    if missing:
        raise ValueError(f"key points {missing} not answered")
    return [flags[i] for i in range(1, n_points + 1)]


def parse_style_reply(text: str) -> int:
    return rubric_score(json_object(text))


CONTENT_PROMPT = """You check whether a caption states given key points about a piece of media.

Instruction the caption was written for:
{instruction}

Caption (verbatim):
<<<
{caption}
>>>

Key points:
{points}

For each key point decide whether the caption states it correctly. A paraphrase or a
semantically equivalent statement counts as a match; a missing, vague or contradicting
statement does not. Reply with a JSON object only:
{{"key_points": [{{"index": 1, "matched": 0 or 1, "reason": "..."}}, ...]}}
with exactly one entry for each index from 1 to {n}."""

STYLE_PROMPT = """You rate how well a caption follows its instruction's style, against a reference caption.

Instruction:
{instruction}

Reference caption:
<<<
{reference}
>>>

Caption to rate (verbatim):
<<<
{caption}
>>>

Score on this rubric:
0: severe deviation from the instruction's style, or largely hallucinated content.
1: large deviation, or many hallucinations.
2: slight deviation, or some hallucination.
3: as good as the reference, and free of hallucination.
4: better than the reference, and free of hallucination.
Reply with a JSON object only: {{"score": 0-4, "reason": "..."}}"""


def content_prompt(item: EvalItem, caption: str) -> str:
    points = "\n".join(f"{i}. {p}" for i, p in enumerate(item.key_points or (), 1))
    return CONTENT_PROMPT.format(
        instruction=item.instruction, caption=caption, points=points, n=len(item.key_points or ())
    )


def style_prompt(item: EvalItem, caption: str) -> str:
    return STYLE_PROMPT.format(
        instruction=item.instruction, reference=item.reference, caption=caption
    )


class AnyCapProtocol(JudgeProtocol):
    name = "anycap"
    temperature = 0.0
    json_mode = True
    media_first = True
    style_media_required = False
    num_frames = 4

    def content_prompt(self, item: EvalItem, caption: str) -> str:
        return content_prompt(item, caption)

    def parse_content(self, text: str, item: EvalItem) -> list[int]:
        return parse_content_reply(text, len(item.key_points or ()))

    def content_reasons(self, text: str, item: EvalItem) -> list[str | None] | None:
        by_index = {
            e.get("index"): e.get("reason") for e in json_object(text)["key_points"]
        }  # checked by parse_content first
        return [
            r if isinstance(r := by_index.get(i), str) else None
            for i in range(1, len(item.key_points or ()) + 1)
        ]

    def style_prompt(self, item: EvalItem, caption: str) -> str:
        return style_prompt(item, caption)

    def parse_style(self, text: str) -> int:
        return parse_style_reply(text)

    def style_media(self, media: Media, send_audio: bool) -> list[dict[str, Any]]:
        if media.modality == "audio" and not send_audio:
            return []
        return media_parts(media, self.num_frames, quality=85)

    def prompt_hashes(self) -> dict[str, str]:
        return {
            axis: "sha256:" + hashlib.sha256(p.encode()).hexdigest()
            for axis, p in (("content", CONTENT_PROMPT), ("style", STYLE_PROMPT))
        }
