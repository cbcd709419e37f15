"""Any AnyCap captioner spec or chain as an lmms-eval chat model (`--model anycap`).

    lmms-eval --model anycap --model_args model=qwen2.5-vl:/models/qwen,post=acm:/models/acm --tasks ...

lmms-eval hands a chat model requests whose arguments are `(ctx, doc_to_messages, gen_kwargs, doc_id,
task, split)`; the messages carry the media (`ChatMessages`). The user turn's text is the
instruction and its one media item the media (several images: a video's frames). Requests go
through the captioner's batch call (`caption_each`) `batch_size` at a time, grouped by their
generation options. A sample that fails (bad media, a captioner error) is logged with its reason
and answered with an empty `FailedCaption`: never a caption, and counted as failed by our tasks.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Self

from ...contained.lmms_eval import import_lmms_eval
from ...errors import AnyCapError, MediaError, OptionsError
from ..media_items import MEDIA_TYPES, media_of

import_lmms_eval()

from lmms_eval.api.model import lmms
from lmms_eval.protocol import ChatMessages

log = logging.getLogger(__name__)
GEN_OPTIONS = (
    "max_new_tokens",
    "temperature",
    "top_p",
)  # lmms-eval generation kwargs a captioner may declare
_SECRET_ARGS = ("api_key", "key", "token", "secret", "password")


class FailedCaption(str):
    """The answer for a sample that got no caption: empty text, with the reason kept beside it."""

    reason: str

    def __new__(cls, reason: str) -> Self:
        obj = super().__new__(cls, "")
        obj.reason = reason
        return obj


class AnyCapLMMS(lmms):
    """`model`: the base captioner's spec (`qwen2.5-vl:PATH`, `openai:gpt-4o`, `stats`, or a chain
    `base+acm:PATH`), as `anycap caption -m` takes it (`spec=`, its old name, warns);
    `post`: a post-processor spec chained after it (`-p`); `options` / `post_options`: JSON objects of the
    base's and the post-processor's per-call options; `batch_size`: samples per batch call."""

    is_simple = False

    def __init__(
        self,
        model: str | None = None,
        post: str | None = None,
        options: Any = None,
        post_options: Any = None,
        batch_size: int | str | None = 8,
        max_batch_size: Any = None,
        device: Any = None,
        spec: str | None = None,
        **unknown: Any,
    ) -> None:
        from ...wrapping import Chain

        super().__init__()
        secret = sorted(k for k in unknown if any(s in k.lower() for s in _SECRET_ARGS))
        if secret:
            raise OptionsError(
                f"Keys do not go in --model_args ({', '.join(secret)}): lmms-eval writes model_args "
                "into its results files.",
                hint="Set them in the environment (OPENAI_API_KEY, ...).",
            )
        if unknown:
            raise OptionsError(
                f"Unknown anycap model_args: {', '.join(sorted(unknown))}.",
                hint="Use model=, post=, options=, post_options=, batch_size=.",
            )
        if spec is not None:
            if model is not None:
                raise OptionsError(
                    "spec= is the old name of model=: give one of them.", hint="Drop spec=."
                )
            log.warning(
                "anycap model_args: spec= is now model= (the old name still works, for now)"
            )
            model = spec
        if model is None:
            raise OptionsError(
                "Name the captioner: --model_args model=SPEC (e.g. model=qwen2.5-vl:PATH,post=acm:PATH)."
            )
        chain = Chain.parse(
            str(model),
            post,
            options=_json_object(options, "options"),
            post_options=_json_object(post_options, "post_options"),
        )
        chain.check()
        self.spec, self.options, self.captioner = chain.spec, chain.options, chain.build()
        self.batch_size = _batch_size(batch_size)
        self.failures: list[dict[str, Any]] = []

    # ---- what lmms-eval calls -------------------------------------------------------------
    def generate_until(self, requests: list[Any]) -> list[str]:
        answers: list[str] = [""] * len(requests)
        groups: dict[str, list[int]] = {}
        prepared: list[tuple[Any, str | None, dict[str, Any]]] = []
        for n, request in enumerate(requests):
            media, instruction, options = self._prepare(request)
            prepared.append((media, instruction, options))
            groups.setdefault(json.dumps(options, sort_keys=True), []).append(n)
        for indices in groups.values():
            options = prepared[indices[0]][2]
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                outcomes = self.captioner.caption_each(
                    [prepared[i][0] for i in chunk], [prepared[i][1] for i in chunk], **options
                )
                for i, outcome in zip(chunk, outcomes):
                    answers[i] = self._answer(requests[i], outcome)
        if self.failures:
            log.warning(
                "anycap: %d of %d samples got no caption so far (reasons logged above).",
                len(self.failures),
                len(requests),
            )
        return answers

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError(
            "The anycap model captions one media item per sample; multi-round tasks "
            "need a chat model."
        )

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        raise NotImplementedError(
            "The anycap model generates captions; loglikelihood (multiple-choice scoring) "
            "tasks need a language model's token probabilities."
        )

    # ---- one request ----------------------------------------------------------------------
    def _prepare(self, request: Any) -> tuple[Any, str | None, dict[str, Any]]:
        """(media or the exception that stops it, instruction, options) for one request."""
        _, doc_to_messages, gen_kwargs, doc_id, task, split = request.args
        options = {**self.options, **self._gen_options(gen_kwargs or {})}
        try:
            raw = doc_to_messages(self.task_dict[task][split][doc_id])
            return (*to_media(ChatMessages(messages=raw)), options)
        except AnyCapError as e:
            return e, None, options
        except (
            ValueError,
            TypeError,
            KeyError,
        ) as e:  # a message lmms-eval's own model would reject too
            return MediaError(f"Unreadable message for {task} doc {doc_id}: {e}."), None, options

    def _gen_options(self, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        """lmms-eval's generation kwargs that the base captioner declares as options (others do not apply)."""
        declared = self.captioner.Options.model_fields
        return {k: gen_kwargs[k] for k in GEN_OPTIONS if k in gen_kwargs and k in declared}

    def _answer(self, request: Any, outcome: Any) -> str:
        if isinstance(outcome, Exception):
            _, _, _, doc_id, task, _ = request.args
            reason = f"{type(outcome).__name__}: {outcome}"
            log.warning("anycap: %s doc %s got no caption (%s)", task, doc_id, reason)
            self.failures.append({"task": task, "doc_id": doc_id, "error": reason})
            return FailedCaption(reason)
        return outcome.text


def to_media(messages: Any) -> tuple[Any, str | None]:
    """(Media, instruction) of a one-turn chat: system turns are lmms-eval's prompt settings, not media."""
    turns = [m for m in messages.messages if m.role != "system"]
    if len(turns) != 1 or turns[0].role != "user":
        raise MediaError(
            f"A conversation of {len(turns)} turns; AnyCap captions from one user turn.",
            hint="Use a single-turn task.",
        )
    content = turns[0].content
    text = "\n".join(c.text for c in content if c.type == "text").strip()
    media = media_of([(c.type, c.url) for c in content if c.type in MEDIA_TYPES])
    return media, text or None


def _json_object(value: Any, name: str) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
            value = value[
                1:-1
            ]  # lmms-eval's argument splitter keeps the quotes around a JSON value
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise OptionsError(
                f"{name} must be a JSON object ({e}).",
                hint=f"Quote it: {name}='{{\"max_new_tokens\": 128}}'.",
            ) from None
    if not isinstance(value, dict):
        raise OptionsError(f"{name} must be a JSON object, not {type(value).__name__}.")
    return value


def _batch_size(value: Any) -> int:
    """lmms-eval's --batch_size: N, or auto (our captioners batch what they are given: 8)."""
    if value in (None, "") or str(value).startswith("auto"):
        return 8
    try:
        size = int(value)
    except ValueError:
        raise OptionsError(f"batch_size must be a number or auto, not {value!r}.") from None
    if size < 1:
        raise OptionsError("batch_size must be at least 1.")
    return size
