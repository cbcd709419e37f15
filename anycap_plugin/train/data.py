"""ACD records (InternVL SFT format) -> (media, instruction, existing caption, target) examples.

The human turn carries the instruction and the existing caption inside the aligner prompt, in
the records' longer variant ("... The requirement is: '...'. The existing caption is: '...'. You
only need to answer ..."); `acm.prompt.parse_question` reads it, and the processor re-renders
each example with the published inference prompt, so training sees what inference sends.
Records without an existing caption (`gpt_q_c`) are plain captioning examples.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..acm.prompt import parse_question, strip_placeholders
from ..errors import ACDFormatError, AnyCapError
from ..jsonl import read_jsonl

Kind = Literal["degraded", "weaker", "correct", "plain"]
KIND_OF_SAMPLE_TYPE: dict[str, Kind] = {
    "q-a-c": "degraded",
    "q_c_a": "degraded",  # existing caption is a degraded version of the target
    "q-8b-c": "weaker",
    "q_c_a_org": "weaker",  # from a weaker model / the original dataset caption
    "q-c-c": "correct",  # existing caption already equals the target
    "gpt_q_c": "plain",  # no existing caption
}


@dataclass(frozen=True)
class Example:
    media: str | None
    modality: str
    instruction: str
    existing: str | None
    target: str
    kind: Kind


def parse_record(row: dict, where: str) -> Example:
    try:
        human = next(t["value"] for t in row["conversations"] if t["from"] == "human")
        target = next(t["value"] for t in row["conversations"] if t["from"] == "gpt")
    except (KeyError, StopIteration, TypeError) as e:
        raise ACDFormatError(f"{where}: no human/gpt turns ({e}).") from None
    modality = next((m for m in ("image", "video", "audio") if m in row), None)
    if modality is None:
        raise ACDFormatError(f"{where}: no 'image', 'video' or 'audio' field.")
    parsed = parse_question(human)
    if parsed:
        instruction, existing = parsed.instruction, parsed.caption
    else:
        instruction, existing = strip_placeholders(human), None
    if not instruction or not str(target).strip():
        raise ACDFormatError(f"{where}: empty instruction or target.")
    kind = KIND_OF_SAMPLE_TYPE.get(
        str(row.get("_sample_type")), "plain" if existing is None else "degraded"
    )
    return Example(str(row[modality]), modality, instruction, existing, str(target).strip(), kind)


def read_acd(
    paths: Sequence[str | Path], on_error: Literal["skip", "raise"] = "skip"
) -> tuple[list[Example], list[str]]:
    """Examples and the problems found (one line each, with file and line number)."""
    examples, problems = [], []
    for path in paths:
        for where, row in read_jsonl(path):
            try:
                if isinstance(row, ValueError):
                    raise ACDFormatError(f"{where}: invalid JSON ({row}).")
                if not isinstance(row, dict):
                    raise ACDFormatError(f"{where}: not a JSON object.")
                examples.append(parse_record(row, where))
            except ACDFormatError as e:
                if on_error == "raise":
                    raise
                problems.append(str(e))
    return examples, problems


def parse_ratio(text: str) -> tuple[float, float, float]:
    """'2:2:1' -> degraded : weaker : correct."""
    try:
        parts = tuple(float(x) for x in text.split(":"))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 0 or sum(parts) == 0:
        raise AnyCapError(
            f"Bad ratio {text!r}.",
            hint="Give three non-negative numbers: degraded:weaker:correct, e.g. 2:2:1.",
        )
    return parts  # type: ignore[return-value]


def mix(examples: list[Example], ratio: tuple[float, float, float], seed: int = 0) -> list[Example]:
    """The largest mix with degraded:weaker:correct at `ratio`; plain examples are all kept."""
    rng = random.Random(seed)
    by_kind: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by_kind[ex.kind].append(ex)
    kinds = ("degraded", "weaker", "correct")
    weights = dict(zip(kinds, ratio))
    scale = min((len(by_kind[k]) / w for k, w in weights.items() if w > 0), default=0)
    picked = list(by_kind["plain"])
    for k in kinds:
        pool = by_kind[k][:]
        rng.shuffle(pool)
        picked += pool[: int(scale * weights[k])]
    rng.shuffle(picked)
    return picked
