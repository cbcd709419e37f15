"""The AnyCap instruction taxonomy and length constraints parsed from natural language.

Counting is the AnyCapEval release's, so checks here agree with the benchmark: words are the
release's `count_total_words` (ASCII-letter words between word boundaries, with inner `'` or
`-`, plus each character of CJK ideographs, CJK punctuation and full-width forms); sentences are
its `sentences_count` (the non-blank parts left after splitting on `.`, `!` and `?`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .errors import InstructionError
from .media import Modality

Axis = Literal["content", "style"]
Unit = Literal["words", "sentences"]


@dataclass(frozen=True)
class InstructionType:
    """One control type, the modalities it applies to, and the names datasets use for it."""

    key: str
    name: str
    axis: Axis
    modalities: tuple[Modality, ...]
    aliases: tuple[str, ...] = ()


# 14 types; over image/video/audio they give the 28 dimensions of the AnyCap paper.
TAXONOMY: tuple[InstructionType, ...] = (
    InstructionType("background", "Background", "content", ("video",)),
    InstructionType("event", "Event", "content", ("video", "audio")),
    InstructionType("instance", "Instance", "content", ("image", "video")),
    InstructionType(
        "instance_action", "Instance Action", "content", ("video",), ("multi_class_action",)
    ),
    InstructionType(
        "instance_appearance",
        "Instance Appearance",
        "content",
        ("image", "video"),
        ("multi_class_appearance", "appearance"),
    ),
    InstructionType(
        "instance_position",
        "Instance Position",
        "content",
        ("image", "video"),
        ("multi_class_position", "position"),
    ),
    InstructionType("movement", "Movement", "content", ("video",), ("camera", "camera_movement")),
    InstructionType("perspective", "Perspective", "content", ("image", "video")),
    InstructionType("region", "Region", "content", ("image",)),
    InstructionType("brief", "Brief", "style", ("image", "video", "audio")),
    InstructionType("detail", "Detail", "style", ("image", "video", "audio"), ("detailed",)),
    InstructionType("genre", "Genre", "style", ("image", "video", "audio"), ("poem", "narrative")),
    InstructionType("length", "Length", "style", ("image", "video", "audio")),
    InstructionType("theme", "Theme", "style", ("image", "video")),
)

_BY_NAME = {n: t for t in TAXONOMY for n in (t.key, t.name.lower(), *t.aliases)}


def instruction_type(name: str) -> InstructionType:
    """Resolve a type key, display name or dataset alias (`multi_class_position`, `poem`)."""
    key = name.strip().lower().replace(" ", "_")
    found = _BY_NAME.get(key) or _BY_NAME.get(key.replace("_", " "))
    if found is None:
        raise InstructionError(
            f"Unknown instruction type {name!r}.",
            hint="Known types: " + ", ".join(t.key for t in TAXONOMY) + ".",
        )
    return found


def dimensions() -> list[tuple[Modality, InstructionType]]:
    """Every (modality, type) pair the taxonomy allows."""
    return [(m, t) for m in ("image", "video", "audio") for t in TAXONOMY if m in t.modalities]


# ---- counting ------------------------------------------------------------------------
# verbatim from the release's count_total_words: `3D` is no word (no boundary inside it), a curly
# apostrophe splits a word in two, `\uff00-\uffef` counts full-width letters and punctuation
_EN_WORD = re.compile(r"\b[a-zA-Z]+(?:['-][a-zA-Z]+)*\b")
_CJK_CHAR = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")
_SENTENCE_END = re.compile(r"[.!?]")


def count_words(text: str) -> int:
    return len(_EN_WORD.findall(text)) + len(_CJK_CHAR.findall(text))


def count_sentences(text: str) -> int:
    return sum(1 for part in _SENTENCE_END.split(text) if part.strip())


# ---- length constraints --------------------------------------------------------------
_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "single": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
}
_NUM = r"(\d+|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")"
_UNIT = r"(words?|sentences?)\b"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(p, re.IGNORECASE))
    for kind, p in (
        ("range", rf"\bbetween\s+{_NUM}\s+and\s+{_NUM}\s+{_UNIT}"),
        ("range", rf"\b{_NUM}\s*(?:to|-|–)\s*{_NUM}\s+{_UNIT}"),
        ("exactly", rf"\bexactly\s+{_NUM}\s+{_UNIT}"),
        (
            "at_most",
            (
                rf"\b(?:at\s+most|no\s+more\s+than|not\s+more\s+than|cannot\s+exceed|"
                rf"can\s*not\s+exceed|must\s+not\s+exceed|not\s+exceed(?:ing)?|up\s+to|within|"
                rf"maximum\s+of|max(?:imum)?)\s+{_NUM}\s+{_UNIT}"
            ),
        ),
        ("fewer", rf"\b(?:fewer|less)\s+than\s+{_NUM}\s+{_UNIT}"),
        (
            "at_least",
            rf"\b(?:at\s+least|no\s+less\s+than|no\s+fewer\s+than|minimum\s+of)\s+{_NUM}\s+{_UNIT}",
        ),
        ("more", rf"\bmore\s+than\s+{_NUM}\s+{_UNIT}"),
        ("at_most", rf"\b{_NUM}\s+{_UNIT}\s+or\s+(?:fewer|less)\b"),
        ("at_least", rf"\b{_NUM}\s+{_UNIT}\s+or\s+more\b"),
        ("exactly", rf"\b{_NUM}\s+{_UNIT}"),
    )
)


def _num(token: str) -> int:
    token = token.lower()
    return int(token) if token.isdigit() else _NUMBER_WORDS[token]


def _unit(token: str) -> Unit:
    return "words" if token.lower().startswith("word") else "sentences"


@dataclass(frozen=True)
class LengthCheck:
    ok: bool
    count: int
    constraint: LengthConstraint

    @property
    def message(self) -> str:
        verdict = "meets" if self.ok else "breaks"
        return f"{self.count} {self.constraint.unit} {verdict} the constraint: {self.constraint.describe()}"


@dataclass(frozen=True)
class LengthConstraint:
    """`min`..`max` words or sentences (either bound may be open)."""

    unit: Unit
    min: int | None
    max: int | None
    text: str = ""

    def count(self, caption: str) -> int:
        return count_words(caption) if self.unit == "words" else count_sentences(caption)

    def check(self, caption: str) -> LengthCheck:
        n = self.count(caption)
        ok = (self.min is None or n >= self.min) and (self.max is None or n <= self.max)
        return LengthCheck(ok, n, self)

    def describe(self) -> str:
        if self.min == self.max:
            return f"exactly {self.min} {self.unit}"
        if self.min is None:
            return f"at most {self.max} {self.unit}"
        if self.max is None:
            return f"at least {self.min} {self.unit}"
        return f"between {self.min} and {self.max} {self.unit}"


def parse_length_constraint(instruction: str) -> LengthConstraint | None:
    """The first length constraint stated in `instruction`, or None when it states none."""
    for kind, pattern in _PATTERNS:
        m = pattern.search(instruction)
        if not m:
            continue
        groups = m.groups()
        unit = _unit(groups[-1])
        if kind == "range":
            lo, hi = sorted((_num(groups[0]), _num(groups[1])))
            return LengthConstraint(unit, lo, hi, m.group(0))
        n = _num(groups[0])
        if kind == "exactly":
            return LengthConstraint(unit, n, n, m.group(0))
        if kind == "at_most":
            return LengthConstraint(unit, None, n, m.group(0))
        if kind == "fewer":
            return LengthConstraint(unit, None, max(n - 1, 0), m.group(0))
        if kind == "at_least":
            return LengthConstraint(unit, n, None, m.group(0))
        return LengthConstraint(unit, n + 1, None, m.group(0))
    return None
