import json
from pathlib import Path

import pytest

from anycap_plugin.errors import InstructionError
from anycap_plugin.instructions import (
    TAXONOMY,
    LengthConstraint,
    count_sentences,
    count_words,
    dimensions,
    instruction_type,
    parse_length_constraint,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "anycapeval"


def _reference_items():
    for path in sorted(SHARED.glob("*/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            yield path.name, json.loads(line)


EXPECTED = {
    "The generated caption's length needs to be 30 to 120 words.": ("words", 30, 120),
    "The generated caption's length needs to be 10 to 20 words.": ("words", 10, 20),
    "The generated caption's length needs to be 20 to 30 words.": ("words", 20, 30),
    "The generated caption's length needs to be one sentence.": ("sentences", 1, 1),
    "The generated caption's length needs to be exactly five sentences.": ("sentences", 5, 5),
    "The generated caption's length needs to be exactly three sentences.": ("sentences", 3, 3),
    "The generated caption's length cannot exceed three sentences.": ("sentences", None, 3),
    "The generated caption's length needs to be exactly two sentences.": ("sentences", 2, 2),
    "The generated caption's length needs to be exactly 50 words.": ("words", 50, 50),
    "The generated caption's length cannot exceed two sentences.": ("sentences", None, 2),
    "The generated caption's length needs to be exactly 20 words.": ("words", 20, 20),
    "The generated caption's length needs to be no more than 10 words.": ("words", None, 10),
    "The generated caption's length needs to be exactly 10 words.": ("words", 10, 10),
    "The generated caption's length needs to be exactly 60 words.": ("words", 60, 60),
}


def test_every_constraint_sentence_in_the_shared_references_parses():
    seen = set()
    for _, item in _reference_items():
        sentence = item["restriction"][1]
        c = parse_length_constraint(sentence)
        assert c is not None, sentence
        assert (c.unit, c.min, c.max) == EXPECTED[sentence], sentence
        instruction = item["conversations"][0]["value"]
        if sentence in instruction:  # 4 of 794 items state a different constraint in the prompt
            assert parse_length_constraint(instruction) == c
        seen.add(sentence)
    assert seen == set(EXPECTED)


def test_reference_captions_mostly_meet_their_own_constraints():
    items = list(_reference_items())
    ok = sum(
        parse_length_constraint(it["restriction"][1]).check(it["conversations"][1]["value"]).ok
        for _, it in items
    )
    assert len(items) > 700
    assert (
        ok / len(items) > 0.8
    )  # references are written to comply; a broken checker would fail most


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Use between 5 and 12 words.", ("words", 5, 12)),
        ("Write at most 3 sentences.", ("sentences", None, 3)),
        ("Keep it under fewer than 10 words", ("words", None, 9)),
        ("at least two sentences please", ("sentences", 2, None)),
        ("more than 40 words", ("words", 41, None)),
        ("a poem in 20 words or fewer", ("words", None, 20)),
        ("in 30-50 words", ("words", 30, 50)),
        ("Answer in a single sentence.", ("sentences", 1, 1)),
        ("Describe the background.", None),
    ],
)
def test_parses_natural_phrasings(text, expected):
    c = parse_length_constraint(text)
    assert (None if c is None else (c.unit, c.min, c.max)) == expected


def test_word_and_sentence_counting():
    assert count_words("The dog's well-known trick: it jumps 3 times!") == 7  # the digit is no word
    assert count_words("一只猫 sits") == 4
    assert count_sentences("One. Two! Three? ") == 3
    assert count_sentences("Wait... what?!") == 2
    assert count_sentences("") == 0


def test_check_reports_count_and_verdict():
    c = LengthConstraint("sentences", None, 2)
    result = c.check("One. Two. Three.")
    assert not result.ok and result.count == 3
    assert "breaks" in result.message and "at most 2 sentences" in result.message
    assert LengthConstraint("words", 2, 4).check("three small words").ok


def test_taxonomy_has_fourteen_types_and_twenty_eight_dimensions():
    assert len(TAXONOMY) == 14
    assert sum(t.axis == "content" for t in TAXONOMY) == 9
    assert len(dimensions()) == 28


def test_dataset_restriction_types_resolve():
    for _, item in _reference_items():
        instruction_type(item["restriction"][0])
    assert instruction_type("multi_class_position").key == "instance_position"
    assert instruction_type("Instance Action").key == "instance_action"
    assert instruction_type("poem").key == "genre"
    with pytest.raises(InstructionError, match="Known types"):
        instruction_type("astrology")
