"""`anycap synth`: ACD training records from media, on OpenAI-compatible endpoints.

For each item and control type (the 28 (modality, type) dimensions of `anycap_plugin.instructions`):
1. the writer role writes a question of that type, ending with a length constraint (drawn from
   the release's table), and a good answer; an answer that breaks its own constraint (checked
   with our instruction parser) is asked again up to `max_regenerations` times, then the pair is
   dropped and counted;
2. then, in parallel: the degrader role writes a slightly inferior answer, and the weaker
   captioner (any AnyCap captioner, optional) answers the question;
3. three records: existing caption degraded (`q-a-c`), weaker (`q-8b-c`), the good answer (`q-c-c`).

The output is resumable JSONL (a finished (item, type) is skipped; its records are written in
one append). Failures and drops go to `OUT.failures.jsonl` with their reason and are retried by
the next run, which pays only for calls the call cache does not hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..batch import BatchRun, WorkItem
from ..batch.journal import Layout
from ..batch.keys import SEP, canonical_key
from ..batch.local import media_of
from ..batch.records import error_of
from ..call_engine import CallEngine, RoleUsage, bounded
from ..errors import LengthDropped, OptionsError
from ..instructions import InstructionType, dimensions, instruction_type, parse_length_constraint
from ..media import Media
from ..media.chat_parts import media_parts, user_message
from .prompts import (
    PromptSet,
    constraint_for,
    parse_inferior,
    parse_question_answer,
    with_constraint,
)
from .records import acd_record

WRITER, DEGRADER, WEAKER = "writer", "degrader", "weaker"
# every line is finished (failures go to OUT.failures.jsonl); an (item, type) pair's lines share `_key`
RECORDS = Layout(
    key=lambda r: canonical_key(r["_key"]), finished=lambda r: True, identity=lambda r: r["_key"]
)


@dataclass
class SynthSummary:
    items: int = 0
    tasks: int = 0
    skipped: int = 0
    written: int = 0  # (item, type) pairs that gave records
    records: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    regenerations: int = 0
    weaker_skipped: dict[str, int] = field(
        default_factory=dict
    )  # modality the weaker captioner does not take
    prompt_sources: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # dimension -> step -> file or "ours"
    seconds: float = 0.0


@dataclass(frozen=True)
class SynthConfig:
    types: tuple[str, ...] | None = None  # type keys; None: every type of each item's modality
    max_regenerations: int = 2
    num_frames: int = 8
    media_root: Path | None = None  # records name media relative to it (absolute otherwise)


class Synthesizer:
    def __init__(
        self,
        engine: CallEngine,
        prompts: PromptSet,
        weaker: Any | None = None,
        config: SynthConfig = SynthConfig(),
    ) -> None:
        for role in (WRITER, DEGRADER):
            if role not in engine.roles:
                raise OptionsError(f"The engine has no {role!r} role.")
        self.engine, self.prompts, self.weaker, self.config = engine, prompts, weaker, config
        self.types = [instruction_type(t) for t in config.types] if config.types else None

    def _dimensions(self, modality: str) -> list[InstructionType]:
        return [
            t for m, t in dimensions() if m == modality and (self.types is None or t in self.types)
        ]

    def run(self, items: Iterable[WorkItem], output: str | os.PathLike) -> SynthSummary:
        output = Path(output)
        failures = output.with_name(output.stem + ".failures.jsonl")
        summary = SynthSummary()
        concurrency = self.engine.endpoints[self.engine.roles[WRITER].endpoint].concurrency
        with BatchRun(output, layout=RECORDS) as batch:
            failures.write_text("")

            async def one(item: WorkItem) -> list[tuple[str, Any]]:
                return await self._item(item, batch, summary)

            async def all_items() -> None:
                with open(failures, "a", encoding="utf-8") as bad:  # noqa: ASYNC230 - a local append
                    async for item, outcome in bounded(
                        self._counted(items, summary), one, max(2, concurrency // 4)
                    ):
                        if isinstance(outcome, Exception):  # the item itself could not be read
                            outcome = [(item.key, outcome)]
                        for key, result in outcome:
                            if isinstance(result, Exception):
                                bucket = (
                                    summary.dropped
                                    if isinstance(result, LengthDropped)
                                    else summary.failed
                                )
                                bucket[type(result).__name__] = (
                                    bucket.get(type(result).__name__, 0) + 1
                                )
                                bad.write(
                                    json.dumps(
                                        {
                                            "_key": key,
                                            "input": item.input,
                                            "error": error_of(result),
                                        },
                                        ensure_ascii=False,
                                    )
                                    + "\n"
                                )
                                bad.flush()
                            else:
                                batch.write(result, count=False)
                                summary.written += 1
                                summary.records += len(result)

            self.engine.run(all_items())
        summary.seconds = batch.summary.seconds
        return summary

    def _counted(self, items: Iterable[WorkItem], summary: SynthSummary) -> Iterable[WorkItem]:
        for item in items:
            summary.items += 1
            yield item

    async def _item(
        self, item: WorkItem, batch: BatchRun, summary: SynthSummary
    ) -> list[tuple[str, Any]]:
        media = media_of(item)
        if isinstance(media, Exception):
            raise media
        media = await asyncio.to_thread(Media.load, media)
        todo = []
        for itype in self._dimensions(media.modality):
            dimension = f"{media.modality}/{itype.key}"
            key = f"{item.key}{SEP}{dimension}"
            summary.tasks += 1
            if batch.take(
                key, f"{item.legacy_key}{SEP}{dimension}"
            ):  # also what earlier versions keyed it
                todo.append((key, itype))
            else:
                summary.skipped += 1
        if not todo:
            return []
        parts = await asyncio.to_thread(media_parts, media, self.config.num_frames)
        results = await asyncio.gather(
            *(self._pair(item, media, parts, itype, key, summary) for key, itype in todo),
            return_exceptions=True,
        )
        return [(key, r) for (key, _), r in zip(todo, results)]

    async def _pair(
        self,
        item: WorkItem,
        media: Media,
        parts: list[dict[str, Any]],
        itype: InstructionType,
        key: str,
        summary: SynthSummary,
    ) -> list[dict[str, Any]]:
        modality, dimension = media.modality, f"{media.modality}/{itype.key}"
        constraint = constraint_for(itype, key)
        prompt = self.prompts.question(modality, itype, key, constraint)
        summary.prompt_sources.setdefault(dimension, {})["question"] = prompt.source
        feedback = ""
        for attempt in range(self.config.max_regenerations + 1):
            reply = await self.engine.chat(
                WRITER, user_message(prompt.text + feedback, parts), parse=parse_question_answer
            )
            question, answer = reply.data
            question = with_constraint(question, constraint)
            check = parse_length_constraint(question).check(answer)  # type: ignore[union-attr]
            if check.ok:
                break
            if attempt < self.config.max_regenerations:
                summary.regenerations += 1
            # the attempt number makes each re-ask a new call (not the cached bad answer) on every run alike
            feedback = (
                f"\n\nAttempt {attempt + 2}: your last answer had {check.count} {check.constraint.unit}; "
                f"it must have {check.constraint.describe()}. Write the question and answer again."
            )
        else:
            raise LengthDropped(
                f"{dimension}: the answer broke its length constraint "
                f"{self.config.max_regenerations + 1} times ({check.message})."
            )
        degrade = self.prompts.degrade(modality, itype, key, question, answer)
        summary.prompt_sources.setdefault(dimension, {})["degrade"] = degrade.source
        inferior, weaker = await asyncio.gather(
            self.engine.chat(DEGRADER, user_message(degrade.text, parts), parse=parse_inferior),
            self._weaker(media, question, summary),
        )
        base = {
            "modality": modality,
            "media": self._media_name(item, media),
            "question": question,
            "target": answer,
            "dimension": dimension,
            "key": key,
            "extra": _size(media),
        }
        record_id = hashlib.sha1(key.encode()).hexdigest()[:16]
        records = [
            acd_record(
                record_id=record_id + "-degraded", existing=inferior.data, kind="degraded", **base
            )
        ]
        if weaker is not None:
            records.append(
                acd_record(record_id=record_id + "-weaker", existing=weaker, kind="weaker", **base)
            )
        records.append(
            acd_record(record_id=record_id + "-correct", existing=answer, kind="correct", **base)
        )
        return records

    async def _weaker(self, media: Media, question: str, summary: SynthSummary) -> str | None:
        """The weaker captioner's answer; None without one, or for a modality it does not take."""
        if self.weaker is None:
            return None
        if media.modality not in getattr(self.weaker, "modalities", (media.modality,)):
            summary.weaker_skipped[media.modality] = (
                summary.weaker_skipped.get(media.modality, 0) + 1
            )
            return None
        caption = await self.weaker.acaption(media, instruction=question)
        usage = caption.usage.get("base", {})
        self.engine.usage.setdefault(WEAKER, RoleUsage()).add(
            RoleUsage(
                calls=1,
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        )
        return caption.text

    def _media_name(self, item: WorkItem, media: Media) -> str:
        path = Path(item.input)
        root = self.config.media_root
        if root is not None:
            try:
                return str(path.resolve().relative_to(root.resolve()))
            except ValueError:
                pass
        return str(path.resolve()) if media.path is not None else item.input


def _size(media: Media) -> dict[str, Any]:
    if media.modality != "image":
        return {}
    width, height = media.image().size
    return {"width": width, "height": height}
