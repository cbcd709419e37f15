"""What the loopback server answers: a function of the request body. `echo` describes what arrived,
`judge` is a well-behaved AnyCapEval judge under either protocol, `synth` answers the synthesis
prompts; `module:function` names a plugin's own (e.g. `anycap_capflow.loopback:respond`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Responder = Callable[[dict[str, Any]], str]


def echo_responder(body: dict[str, Any]) -> str:
    """Describe what arrived: the text parts and how many images and audio clips."""
    texts, images, audios = [], 0, 0
    for message in body.get("messages", []):
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for part in parts:
            kind = part.get("type")
            texts += [part["text"]] if kind == "text" else []
            images += kind == "image_url"
            audios += kind == "input_audio"
    return f"{images} images, {audios} audio: " + " | ".join(texts)


def judge_responder(body: dict[str, Any]) -> str:
    """A well-behaved AnyCapEval judge under either protocol: every other key point matched
    (anycap: by index; release: keyed by the key point's text without its parenthesis); style always 3."""
    import re

    text = last_text(body)
    if "caption_evaluation" in text:  # the release's content instruction
        listed = text.rsplit("Key points:\n", 1)[1].rsplit("\nCaption: ", 1)[0]
        points = [re.sub(r"\s*\([^()]*\)\s*$", "", p) for p in listed.split("\n") if p.strip()]
        scores = {p: i % 2 for i, p in enumerate(points, 1)}
        return json.dumps(
            {
                "caption_evaluation": {
                    "key_points_scores": scores,
                    "total_score": sum(scores.values()),
                    "score_reasons": {p: "loopback" for p in points},
                }
            }
        )
    m = re.search(r"each index from 1 to (\d+)", text)
    if m:
        n = int(m.group(1))
        return json.dumps(
            {
                "key_points": [
                    {"index": i, "matched": i % 2, "reason": "loopback"} for i in range(1, n + 1)
                ]
            }
        )
    return json.dumps({"score": 3, "reason": "loopback"})


def last_text(body: dict[str, Any]) -> str:
    """The text of what a request asks: its last message, or, when that is a re-ask after an unusable
    reply (`openai_compat.reask`), the question it asks again."""
    messages = body["messages"]
    if len(messages) >= 3 and messages[-2].get("role") == "assistant":
        messages = messages[:-2]
    content = messages[-1]["content"]
    return (
        content
        if isinstance(content, str)
        else "\n".join(p["text"] for p in content if p.get("type") == "text")
    )


def fitting_answer(constraint: Any) -> str:
    """A caption that meets a `LengthConstraint` (the smallest count it allows, at least one)."""
    n = max(constraint.min or 0, 1) if constraint.min else max(1, (constraint.max or 12) - 2)
    if constraint.unit == "sentences":
        return " ".join(f"The scene shows detail number {i + 1}." for i in range(n))
    words = [
        "A",
        "person",
        "walks",
        "along",
        "a",
        "quiet",
        "street",
        "lined",
        "with",
        "trees",
        "and",
        "shops",
    ]
    return " ".join(words[i % len(words)] for i in range(n)) + "."


def synth_responder(body: dict[str, Any]) -> str:
    """An ACD synthesis model under our prompts or the release's: a question and an answer that
    meets the length constraint named in the prompt, or a slightly inferior answer; anything
    else (a weaker captioner's question) gets a plain caption."""
    from ..eval.length_rules import RELEASE_TABLE
    from ..instructions import parse_length_constraint

    text = last_text(body)
    if "Slightly Inferior" in text or "Generated Caption" in text:
        good = (
            text.rsplit("Answer: ", 1)[-1]
            if "Standard Caption" not in text
            else text.rsplit("Standard Caption: ", 1)[-1]
        )
        good = good.split("\n", 1)[0].strip()
        return (
            "New Answer (Slightly Inferior): "
            + good.replace("person", "man")
            + " Perhaps it is raining."
        )
    sentence = next((s for s in RELEASE_TABLE if s in text), None)
    if sentence is not None and "Question" in text:
        import hashlib

        constraint = parse_length_constraint(sentence)
        asked = hashlib.sha1(text.encode()).hexdigest()[
            :6
        ]  # each prompt its own question, as a model writes
        return f"Question: Describe what you see (view {asked}). {sentence}\nAnswer: {fitting_answer(constraint)}"
    return "A weaker caption of the scene."


RESPONDERS: dict[str, Responder] = {
    "echo": echo_responder,
    "judge": judge_responder,
    "synth": synth_responder,
}


def responder_named(name: str) -> Responder:
    """A built-in responder by name, or `module:function`."""
    if ":" not in name:
        return RESPONDERS[name]
    import importlib

    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)
