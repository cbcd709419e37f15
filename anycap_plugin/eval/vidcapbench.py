"""VidCapBench as the benchmark defines it: captions judged through QA pairs.

For every QA pair of a video, a judge answers the question from the caption alone, then a
judge grades that answer against the reference answer:
A correct (score 2), B partially correct (1), C not answerable from the caption (0), D wrong (-1).
Per category (aesthetics, content, motion, physics, from the pair's sub-category) and overall:

    accuracy    = 100 * A / (A+B+C+D)
    precision   = 100 * (A+B) / (A+B+D)        how much of what the caption says is right
    coverage    = 100 * (A+B+D) / (A+B+C+D)    how much the caption says at all
    conciseness = 100 * accuracy / mean caption length in tokens (T5 tokens in the release)

Grades come back as JSON (`{"score": s, ...}`, the reply the release's prompt asks for) and are
validated; the release script reads the first digit it finds in free text instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EvalDataError, JudgeError, ModelNotFoundError
from ..jsonl import read_jsonl
from ..openai_compat import json_object
from .cache import JudgeCache
from .judges import ChatJudge

CATEGORIES = {  # the release's sub-category -> category map
    "video aesthetics": ("cinematography", "composition", "lighting", "color", "style"),
    "video content": ("background", "subjects", "events"),
    "video motion": (
        "attribute changes",
        "object motion",
        "body movements",
        "environmental motion",
        "spatiotemporal transformations",
    ),
    "physical laws": ("spatial relationships", "counter intuitive", "common sense"),
}
CATEGORY_OF = {sub: cat for cat, subs in CATEGORIES.items() for sub in subs}
GRADE_OF_SCORE = {2: "A", 1: "B", 0: "C", -1: "D"}
CAPTION_PROMPT = "Describe the video in detail."  # the instruction the benchmark's captions answer
PROMPT_VERSION = "vidcapbench-judge-v1"

ANSWER_PROMPT = """You are an intelligent chatbot to answer questions given a detailed description of a video or image.
Your answer should be a short sentence or phrase.

Description:
{caption}

Question:
{question}"""

GRADE_PROMPT = """Please act as an impartial and objective judge and evaluate the correctness of generative outputs for question-answer pairs provided by a Large Language Model.
Your evaluation should be mainly based on whether the predicted answer mentions the provided correct answer comprehensively and accurately.
First understand the question and the correct answer, then decide whether the predicted answer reflects it.

Select one score:
- Score: 2, the predicted answer comprehensively and accurately reflects the content of the correct answer.
- Score: 1, the predicted answer mentions the correct answer, but the information is not precise or complete. However, there is no contradiction with the correct answer.
- Score: 0, the predicted answer does not mention the correct answer at all.
- Score: -1, the predicted answer contradicts the correct answer or has a partial misrepresentation.
Requirements:
(1) If the predicted answer mentions a subject that is not mentioned in the correct answer, and it is possibly a misidentified subject of the correct answer, score -1.
(2) If the correct answer names a specific entity, score first on whether that subject is mentioned or contradicted; if it is described accurately, score on the accuracy of its attributes, states or actions.
(3) If the correct answer refers to subjects only with pronouns ("it", "the person"), score on the attributes, states or actions alone.
(4) If a color differs in wording but is similar, score 1.
(5) Reply with a JSON object only: {{"score": score, "analysis": "..."}}

Question: {question}
Correct Answer: {answer}
Predicted Answer: {predicted}"""


@dataclass(frozen=True)
class QAPair:
    video: str
    question: str
    answer: str
    sub_category: str

    @property
    def category(self) -> str:
        return CATEGORY_OF[self.sub_category]


def load_qa(path: str | Path) -> dict[str, list[QAPair]]:
    """QA pairs per video, in file order, from a VidCapBench `*_QA.jsonl` file."""
    out: dict[str, list[QAPair]] = {}
    for where, row in read_jsonl(path):
        try:
            if isinstance(row, ValueError):
                raise row
            video = str(row["video_dir"])
            pairs = [
                QAPair(video, str(q["question"]), str(q["answer"]), str(q["sub_category"]))
                for q in row["QA_pairs"]
            ]
        except (KeyError, TypeError, ValueError) as e:
            raise EvalDataError(f"{where}: not a VidCapBench QA line ({e}).") from None
        unknown = {p.sub_category for p in pairs} - set(CATEGORY_OF)
        if unknown:
            raise EvalDataError(f"{where}: unknown sub-categories {sorted(unknown)}.")
        out.setdefault(video, []).extend(pairs)
    return out


def parse_grade(text: str) -> int:
    """The judge's score, -1..2, from `{"score": s}` (single-quoted dicts, as the release's prompt shows, too)."""
    try:
        score = json_object(text).get("score")
    except ValueError:
        m = re.search(r"""['"]?score['"]?\s*[:=]\s*['"]?(-?\d)""", text, re.IGNORECASE)
        score = int(m.group(1)) if m else None
    if isinstance(score, str) and re.fullmatch(r"-?\d", score.strip()):
        score = int(score)
    if isinstance(score, bool) or score not in GRADE_OF_SCORE:
        raise ValueError(f"score {score!r} is not one of 2, 1, 0, -1")
    return int(score)


def metrics(counts: Counter, mean_tokens: float | None) -> dict[str, Any]:
    a, b, c, d = (counts.get(g, 0) for g in "ABCD")
    total = a + b + c + d

    def pct(num: float, den: float) -> float | None:
        return round(100 * num / den, 4) if den else None

    accuracy = pct(a, total)
    return {
        "A": a,
        "B": b,
        "C": c,
        "D": d,
        "n": total,
        "accuracy": accuracy,
        "precision": pct(a + b, a + b + d),
        "coverage": pct(a + b + d, total),
        "conciseness": round(100 * accuracy / mean_tokens, 4)
        if accuracy is not None and mean_tokens
        else None,
    }


class VidCapBenchJudge(ChatJudge):
    """Answers questions from a caption, and grades answers, on any chat-completions endpoint."""

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.id = f"openai:{model}|{PROMPT_VERSION}"

    async def answer(self, caption: str, question: str) -> str:
        def non_empty(text: str) -> str:
            if not text.strip():
                raise ValueError("empty answer")
            return text.strip()

        return await self._verdict(
            ANSWER_PROMPT.format(caption=caption, question=question),
            non_empty,
            f"question {question!r}",
            json_reply=False,
        )

    async def grade(self, pair: QAPair, predicted: str) -> int:
        prompt = GRADE_PROMPT.format(
            question=pair.question, answer=pair.answer, predicted=predicted
        )
        return await self._verdict(prompt, parse_grade, f"grade of {pair.question!r}")


def _key(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


async def _judge_pair(
    pair: QAPair,
    caption: str,
    judge: Any,
    cache: JudgeCache | None,
    inflight: dict[str, asyncio.Future],
) -> dict[str, Any]:
    async def cached(key: str, make: Callable[[], Any]) -> Any:
        if key in inflight:  # the same ask (a repeated question) is judged once, even concurrently
            return await asyncio.shield(inflight[key])
        value = cache.get(key) if cache is not None else None
        if value is not None:
            return value
        inflight[key] = asyncio.ensure_future(make())
        value = await asyncio.shield(inflight[key])
        if cache is not None:
            cache.put(key, value)
        return value

    predicted = await cached(
        _key(judge.id, "answer", caption, pair.question),
        lambda: judge.answer(caption, pair.question),
    )
    score = await cached(
        _key(judge.id, "grade", pair.question, pair.answer, predicted),
        lambda: judge.grade(pair, predicted),
    )
    return {
        "video": pair.video,
        "question": pair.question,
        "answer": pair.answer,
        "sub_category": pair.sub_category,
        "predicted": predicted,
        "score": score,
        "grade": GRADE_OF_SCORE[score],
    }


def word_count(text: str) -> int:
    return len(text.split())


def t5_token_counter(tokenizer: str = "google/flan-t5-base") -> Callable[[str], int]:
    """Token counts as the release measures length (flan-t5-base's tokenizer; a local folder works offline)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(tokenizer)
    except (OSError, ValueError) as e:  # no such folder or hub id, or no tokenizer in it
        raise ModelNotFoundError(
            f"Cannot load the tokenizer {tokenizer!r}: {e}",
            hint="Give a folder holding flan-t5-base's tokenizer, or leave --tokenizer out "
            "to count words.",
        ) from None
    return lambda text: len(tok(text).input_ids)


def length_counter(tokenizer: str | None) -> tuple[Callable[[str], int], str]:
    """(counter, unit): T5-style tokens when a tokenizer is named, else words (labelled in the report)."""
    return (
        (t5_token_counter(tokenizer), f"tokens ({tokenizer})")
        if tokenizer
        else (word_count, "words")
    )


async def evaluate_async(
    qa: dict[str, list[QAPair]],
    captions: dict[str, str],
    judge: Any,
    *,
    cache: JudgeCache | None = None,
    token_counter: Callable[[str], int] = word_count,
    token_unit: str = "words",
    concurrency: int = 32,
) -> dict[str, Any]:
    """Judge every QA pair of every captioned video; returns the report (overall and per category).

    Videos without a caption are counted as missing, not scored; a pair whose judging fails is
    counted as failed and left out of the counts.
    """
    started = time.perf_counter()
    slots = asyncio.Semaphore(concurrency)
    present = [v for v in qa if v in captions]
    inflight: dict[str, asyncio.Future] = {}

    async def one(pair: QAPair) -> dict[str, Any] | JudgeError:
        async with slots:
            try:
                return await _judge_pair(pair, captions[pair.video], judge, cache, inflight)
            except JudgeError as e:
                return e

    pairs = [p for v in present for p in qa[v]]
    results = await asyncio.gather(*(one(p) for p in pairs))
    judged = [r for r in results if isinstance(r, dict)]
    failures = [
        {"video": p.video, "question": p.question, "error": str(r)}
        for p, r in zip(pairs, results)
        if isinstance(r, JudgeError)
    ]
    lengths = [token_counter(captions[v]) for v in present]
    mean_tokens = sum(lengths) / len(lengths) if lengths else None
    overall: Counter = Counter(r["grade"] for r in judged)
    report: dict[str, Any] = {"overall": metrics(overall, mean_tokens)}
    for category in CATEGORIES:
        report[category] = metrics(
            Counter(r["grade"] for r in judged if CATEGORY_OF[r["sub_category"]] == category),
            mean_tokens,
        )
    report["meta"] = {
        "judge": judge.id,
        "videos": len(qa),
        "captioned": len(present),
        "missing_captions": len(qa) - len(present),
        "pairs": len(pairs),
        "judged": len(judged),
        "failed": len(failures),
        "failures": failures,
        "mean_caption_length": round(mean_tokens, 4) if mean_tokens is not None else None,
        "length_unit": token_unit,
        "cache": {"hits": cache.hits, "misses": cache.misses} if cache is not None else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    report["judgements"] = judged
    return report


def evaluate(
    qa: dict[str, list[QAPair]], captions: dict[str, str], judge: Any, **kwargs: Any
) -> dict[str, Any]:
    return asyncio.run(evaluate_async(qa, captions, judge, **kwargs))


def load_captions(rows: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Captions per video from rows of `{"video_dir", "model_generation"}` (the release's files) or
    `{"video"|"id", "caption"}` (`anycap caption` output); failed rows (caption null) are skipped."""
    out: dict[str, str] = {}
    for row in rows:
        video = row.get("video_dir") or row.get("video") or row.get("id")
        caption = row.get("model_generation", row.get("caption"))
        if video is not None and isinstance(caption, str):
            out[Path(str(video)).name] = caption
    return out


SCORES = ("accuracy", "precision", "coverage", "conciseness")


def score(
    qa: Any,
    captions: dict[str, str],
    *,
    judge_model: str,
    judge_base_url: str | None,
    api_key: str | None = None,
    tokenizer: str | None,
    concurrency: int,
    cache_path: Path,
    judge_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report of these captions (video -> caption), as every harness computes it."""
    counter, unit = length_counter(tokenizer)
    judge = VidCapBenchJudge(
        judge_model,
        base_url=judge_base_url,
        api_key=api_key,
        concurrency=concurrency,
        **(judge_options or {}),
    )
    with JudgeCache(cache_path) as cache:
        return evaluate(
            qa,
            captions,
            judge,
            cache=cache,
            token_counter=counter,
            token_unit=unit,
            concurrency=concurrency,
        )


def flat_scores(report: dict[str, Any]) -> dict[str, Any]:
    """`CATEGORY|METRIC` figures and the counts, as the harnesses list them."""
    scores: dict[str, Any] = {
        f"{category}|{k}": report[category][k]
        for category in ("overall", *CATEGORIES)
        for k in SCORES
        if isinstance(report[category][k], (int, float))
    }
    scores["failed"] = report["meta"]["failed"]
    scores["missing_captions"] = report["meta"]["missing_captions"]
    return scores
