"""The release's length check: a fixed table of whole constraint sentences.

The released AnyCapEval scripts (`check_length_requirement`) look the item's `restriction[1]` up
in this table, verbatim; a sentence that is not in it passes unchecked. We do the same, so a
length penalty lands on exactly the items the release penalises, and we count the unchecked
items in the report instead of printing a warning nobody reads. Words and sentences are counted
with `anycap_plugin.instructions` (the release's `count_total_words` and `sentences_count`).
"""

from __future__ import annotations

from ..instructions import LengthConstraint, Unit

COUNTING_RULE = (
    "anycapeval-release: count_total_words, sentences_count, check_length_requirement table"
)

_PREFIX = "The generated caption's length "
# (unit, min, max) as the release's table states them; "cannot exceed"/"no more than" allow zero
_RULES: dict[str, tuple[Unit, int, int]] = {
    "needs to be one sentence.": ("sentences", 1, 1),
    "needs to be exactly two sentences.": ("sentences", 2, 2),
    "cannot exceed two sentences.": ("sentences", 0, 2),
    "needs to be exactly three sentences.": ("sentences", 3, 3),
    "cannot exceed three sentences.": ("sentences", 0, 3),
    "needs to be exactly five sentences.": ("sentences", 5, 5),
    "needs to be no more than 10 words.": ("words", 0, 10),
    "needs to be exactly 10 words.": ("words", 10, 10),
    "needs to be 10 to 20 words.": ("words", 10, 20),
    "needs to be exactly 20 words.": ("words", 20, 20),
    "needs to be 20 to 30 words.": ("words", 20, 30),
    "needs to be exactly 50 words.": ("words", 50, 50),
    "needs to be exactly 60 words.": ("words", 60, 60),
    "needs to be 30 to 120 words.": ("words", 30, 120),
}
RELEASE_TABLE: dict[str, LengthConstraint] = {
    _PREFIX + rest: LengthConstraint(unit, lo, hi, _PREFIX + rest)
    for rest, (unit, lo, hi) in _RULES.items()
}


def release_constraint(sentence: str) -> LengthConstraint | None:
    """The constraint the release checks for this exact sentence; None: the release lets it pass."""
    return RELEASE_TABLE.get(sentence)
