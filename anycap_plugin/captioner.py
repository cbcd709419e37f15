"""The captioner contracts: `BaseCaptioner`, `PostProcessor`, the `Caption` they return, `wrap`.

A subclass implements one method (`_caption`, or `_refine` for a post-processor); batching,
async twins, option validation and modality checks come from here. `wrapping.wrap(base, post)` is a
`BaseCaptioner` itself, so a wrapped chain goes anywhere a captioner goes.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from abc import ABC
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    TypeVar,
    cast,
    get_args,
    get_origin,
)

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ModalityNotSupportedError, OptionsError
from .media import MODALITIES, Modality

if TYPE_CHECKING:
    from .media import Media, MediaLike

DEFAULT_PROMPT = (
    "Describe this {modality} in detail."  # what base captioners ask when no instruction is given
)


def prompt_for(media: Media, instruction: str | None) -> str:
    """The instruction, or what a base captioner asks without one (`DEFAULT_PROMPT` for the media's modality)."""
    return instruction or DEFAULT_PROMPT.format(modality=media.modality)


@dataclass(frozen=True)
class Caption:
    """A caption and its provenance: every stage's model id, timing and token usage."""

    text: str
    instruction: str | None = None
    base_text: str | None = None
    media: str | None = None
    modality: Modality | None = None
    models: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # always keyed by stage: {"base": {"prompt_tokens": n, "completion_tokens": n}, "post": {...}}; a backend
    # fills its own counts flat ({"prompt_tokens": n, ...}) and the stage stamps them under its name
    usage: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Caption:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, line: str) -> Caption:
        return cls.from_dict(json.loads(line))


class CaptionOptions(BaseModel):
    """Per-call options. Subclasses add fields; unknown names are rejected, not ignored."""

    # defer_build: each plugin defines its options class at registration; the schema is built on
    # first use, so registering stays cheap
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


_Opts = TypeVar("_Opts", bound=CaptionOptions)


def validate_options(options_cls: type[_Opts], owner: str, options: dict[str, Any]) -> _Opts:
    """`options` checked against `options_cls`, as the named captioner takes them: the one place
    per-call options are validated (unknown names are an `OptionsError` listing the allowed)."""
    try:
        return options_cls(**options)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'options'}: {err['msg']}" for err in e.errors()
        )
        allowed = ", ".join(options_cls.model_fields) or "none"
        raise OptionsError(
            f"Invalid options for {owner}: {problems}.", hint=f"Allowed options: {allowed}."
        ) from None


O = TypeVar("O", bound=CaptionOptions)


def _options_parameter(cls: type) -> type[CaptionOptions] | None:
    """The options class a stage names as its type parameter (`BaseCaptioner[OpenAIOptions]`), if any."""
    for base in getattr(cls, "__orig_bases__", ()):
        origin, args = get_origin(base), get_args(base)
        if (
            isinstance(origin, type)
            and issubclass(origin, _Stage)
            and args
            and isinstance(args[0], type)
        ):
            return args[0]
    return None


class _Stage(ABC, Generic[O]):
    """What captioners and post-processors share: an id, modalities, an options class.

    The options class is the type parameter (`class Mine(BaseCaptioner[MyOptions])`): it becomes
    `Options`, every call is validated into it, and `_caption` receives it already typed."""

    id: str = "unnamed"
    modalities: ClassVar[frozenset[Modality]] = frozenset(MODALITIES)
    Options: ClassVar[type[CaptionOptions]] = CaptionOptions

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        named = _options_parameter(cls)
        if named is None:
            return
        if not issubclass(named, CaptionOptions):
            raise TypeError(f"{cls.__name__}: {named.__name__} is not a CaptionOptions subclass.")
        declared = cls.__dict__.get("Options")
        if declared is not None and not issubclass(declared, named):
            raise TypeError(
                f"{cls.__name__}: Options = {declared.__name__} but the type parameter is {named.__name__}."
            )
        if declared is None:
            cls.Options = named

    def _prepare(self, media: MediaLike, options: dict[str, Any]) -> tuple[Media, O]:
        return self._load_checked(media), cast(O, validate_options(self.Options, self.id, options))

    def _load_checked(self, media: MediaLike) -> Media:
        from .media import Media

        m = Media.load(media)
        self.check_modality(m)
        return m

    def check_modality(self, media: Media) -> None:
        if media.modality not in self.modalities:
            raise ModalityNotSupportedError(
                f"{self.id} does not take {media.modality} ({media.ref}).",
                hint=f"It takes: {', '.join(sorted(self.modalities))}. Pick a model that does.",
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


def instructions_for(n: int, instructions: str | Sequence[str | None] | None) -> list[str | None]:
    if instructions is None or isinstance(instructions, str):
        return [instructions] * n
    out = list(instructions)
    if len(out) != n:
        raise ValueError(f"got {n} media but {len(out)} instructions")
    return out


Outcome = Caption | Exception


def _each(
    items: Sequence[Any],
    prepare: Callable[[Any], Media],
    call: Callable[[list[tuple[int, Media]]], list[Caption]],
) -> list[Outcome]:
    """One outcome per item, in order: a caption, or the exception that item caused.

    An item given as an exception, or whose media does not load or fit, fails alone. The rest go
    as one batch; when that batch fails, it is split and each item is tried alone, so the error is
    pinned on the item that caused it and the others still get their captions."""
    out: list[Outcome | None] = [None] * len(items)
    ready: list[tuple[int, Media]] = []
    for i, item in enumerate(items):
        try:
            if isinstance(item, Exception):
                raise item
            ready.append((i, prepare(item)))
        except Exception as e:
            out[i] = e
    if ready:
        try:
            for (i, _), c in zip(ready, call(ready), strict=True):
                out[i] = c
        except Exception as e:
            if len(ready) == 1:
                out[ready[0][0]] = e
            else:
                for pair in ready:
                    try:
                        out[pair[0]] = call([pair])[0]
                    except Exception as e1:
                        out[pair[0]] = e1
    return out  # type: ignore[return-value]


def _implements_one(cls: type, base: type, single: str, batch: str) -> None:
    """A concrete stage implements the one-item method or the batch method (either suffices; each
    defaults to the other), checked when the class is defined rather than at the first call."""
    if inspect.isabstract(cls):
        return
    if getattr(cls, single) is getattr(base, single) and getattr(cls, batch) is getattr(
        base, batch
    ):
        raise TypeError(f"{cls.__name__} must implement {single} or {batch}.")


class BaseCaptioner(_Stage[O]):
    """A captioner: media (+ instruction) in, `Caption` out. Implement `_caption` (one item) or
    `_caption_batch` (a batch, for models that batch for real); each defaults to the other."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _implements_one(cls, BaseCaptioner, "_caption", "_caption_batch")

    def _caption(self, media: Media, instruction: str | None, options: O) -> Caption:
        """Caption one validated item. Raise an `AnyCapError` subclass on failure.

        Only `text` (and `usage` where the backend reports it) need filling in: the media
        reference, instruction, model id and timing are stamped on by the caller.
        """
        return self._caption_batch([media], [instruction], options)[0]

    def _caption_batch(
        self, media: list[Media], instructions: list[str | None], options: O
    ) -> list[Caption]:
        """Caption a batch. The default loops; models that batch for real override it."""
        return [self._caption(m, i, options) for m, i in zip(media, instructions)]

    def _captions(
        self, media: list[Media], instructions: list[str | None], options: O
    ) -> list[Caption]:
        t0 = time.perf_counter()
        out = self._caption_batch(media, instructions, options)
        per_item = (time.perf_counter() - t0) / max(len(media), 1)
        return [
            _stamp(c, m, i, "base", self.id, per_item) for c, m, i in zip(out, media, instructions)
        ]

    def caption(self, media: MediaLike, instruction: str | None = None, **options: Any) -> Caption:
        m, opts = self._prepare(media, options)
        return self._captions([m], [instruction], opts)[0]

    def caption_each(
        self,
        media: Sequence[MediaLike | Exception],
        instructions: str | Sequence[str | None] | None = None,
        **options: Any,
    ) -> list[Outcome]:
        """Like `caption_batch`, but never raises for an item: each gets its `Caption` or its exception.

        What batch runners and servers call (invalid options still raise, before any work)."""
        opts = cast(O, validate_options(self.Options, self.id, options))
        instr = instructions_for(len(media), instructions)

        return _each(
            media,
            self._load_checked,
            lambda ready: self._captions([m for _, m in ready], [instr[i] for i, _ in ready], opts),
        )

    def caption_batch(
        self,
        media: Sequence[MediaLike],
        instructions: str | Sequence[str | None] | None = None,
        **options: Any,
    ) -> list[Caption]:
        prepared = [self._prepare(x, {})[0] for x in media]
        opts = cast(O, validate_options(self.Options, self.id, options))
        return self._captions(prepared, instructions_for(len(prepared), instructions), opts)

    async def _acaption(self, media: Media, instruction: str | None, options: O) -> Caption:
        """Caption one item without blocking the loop. Backends with a native async client override it."""
        return await asyncio.to_thread(self._caption, media, instruction, options)

    async def acaption(
        self, media: MediaLike, instruction: str | None = None, **options: Any
    ) -> Caption:
        m, opts = self._prepare(media, options)
        t0 = time.perf_counter()
        c = await self._acaption(m, instruction, opts)
        return _stamp(c, m, instruction, "base", self.id, time.perf_counter() - t0)

    async def acaption_batch(
        self,
        media: Sequence[MediaLike],
        instructions: str | Sequence[str | None] | None = None,
        **options: Any,
    ) -> list[Caption]:
        """One batched call in a worker thread; native async backends gather `acaption` instead."""
        return await asyncio.to_thread(self.caption_batch, media, instructions, **options)


class PostProcessor(_Stage[O]):
    """Refines a base caption so that it follows the instruction. Implement `_refine` or `_refine_batch`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _implements_one(cls, PostProcessor, "_refine", "_refine_batch")

    def _refine(
        self, media: Media, instruction: str | None, caption: Caption, options: O
    ) -> Caption:
        """Return the refined caption; only its `text` (and `usage`, `meta`) need filling in."""
        return self._refine_batch([media], [instruction], [caption], options)[0]

    def _refine_batch(
        self,
        media: list[Media],
        instructions: list[str | None],
        captions: list[Caption],
        options: O,
    ) -> list[Caption]:
        return [self._refine(m, i, c, options) for m, i, c in zip(media, instructions, captions)]

    def _refinements(
        self,
        media: list[Media],
        instructions: list[str | None],
        captions: list[Caption],
        options: O,
    ) -> list[Caption]:
        t0 = time.perf_counter()
        out = self._refine_batch(media, instructions, captions, options)
        per_item = (time.perf_counter() - t0) / max(len(media), 1)
        return [
            _merge(b, _stamp(r, m, i, "post", self.id, per_item))
            for b, r, m, i in zip(captions, out, media, instructions)
        ]

    def refine(
        self, media: MediaLike, instruction: str | None, caption: Caption, **options: Any
    ) -> Caption:
        m, opts = self._prepare(media, options)
        return self._refinements([m], [instruction], [caption], opts)[0]

    def refine_batch(
        self,
        media: Sequence[MediaLike],
        instructions: str | Sequence[str | None] | None,
        captions: Sequence[Caption],
        **options: Any,
    ) -> list[Caption]:
        prepared = [self._prepare(x, {})[0] for x in media]
        opts = cast(O, validate_options(self.Options, self.id, options))
        return self._refinements(
            prepared, instructions_for(len(prepared), instructions), list(captions), opts
        )

    def refine_each(
        self,
        media: Sequence[MediaLike | Exception],
        instructions: str | Sequence[str | None] | None,
        captions: Sequence[Caption],
        **options: Any,
    ) -> list[Outcome]:
        """Like `refine_batch`, but each item gets its refined `Caption` or its exception."""
        opts = cast(O, validate_options(self.Options, self.id, options))
        instr = instructions_for(len(media), instructions)

        return _each(
            media,
            self._load_checked,
            lambda ready: self._refinements(
                [m for _, m in ready],
                [instr[i] for i, _ in ready],
                [captions[i] for i, _ in ready],
                opts,
            ),
        )

    async def arefine(
        self, media: MediaLike, instruction: str | None, caption: Caption, **options: Any
    ) -> Caption:
        return await asyncio.to_thread(self.refine, media, instruction, caption, **options)


class IdentityPostProcessor(PostProcessor):
    """Keeps the base caption unchanged: the baseline every real post-processor is compared to."""

    id = "identity"

    def _refine(
        self, media: Media, instruction: str | None, caption: Caption, options: CaptionOptions
    ) -> Caption:
        return Caption(text=caption.text)


class WrappedCaptioner(BaseCaptioner):
    """Base captioner then post-processor, for single, batch and async calls."""

    def __init__(
        self, base: BaseCaptioner, post: PostProcessor, post_options: dict[str, Any] | None = None
    ) -> None:
        self.base, self.post = base, post
        self.post_options = validate_options(post.Options, post.id, post_options or {})
        self.id = f"{base.id}+{post.id}"
        self.modalities = frozenset(base.modalities & post.modalities)  # type: ignore[misc]
        self.Options = base.Options  # type: ignore[misc]

    def _caption_batch(
        self, media: list[Media], instructions: list[str | None], options: CaptionOptions
    ) -> list[Caption]:
        base = self.base._captions(media, instructions, options)
        return self.post._refinements(media, instructions, base, self.post_options)


def _stamp(
    c: Caption, media: Media, instruction: str | None, stage: str, model_id: str, seconds: float
) -> Caption:
    """Fill in what the caller knows better than the model: media, instruction, id, timing."""
    return replace(
        c,
        instruction=c.instruction if c.instruction is not None else instruction,
        media=c.media or media.ref,
        modality=c.modality or media.modality,
        models={stage: model_id, **c.models},
        timings={stage: seconds, **c.timings},
        # a caption fresh from a backend (no stage stamped yet) carries its own flat counts
        usage={stage: dict(c.usage)} if not c.models else c.usage,
        meta={
            **media.notes,
            **c.meta,
        },  # e.g. how the video's frames were sampled, when not by seeking
    )


def _merge(base: Caption, refined: Caption) -> Caption:
    """One `Caption` for the chain: refined text, base text kept, each stage accounted for."""
    return replace(
        refined,
        base_text=base.text,
        models={**base.models, **refined.models},
        timings={**base.timings, **refined.timings},
        usage={**base.usage, **refined.usage},
        meta={**base.meta, **refined.meta},
    )
