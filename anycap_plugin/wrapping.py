"""`wrap()`: a base captioner (a spec, a captioner, or a framework object an adapter claims) and a
post-processor, as one captioner. It sits above both `captioner` and `plugins`, which import
neither it nor each other in a cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .captioner import BaseCaptioner, IdentityPostProcessor, PostProcessor, WrappedCaptioner
from .errors import OptionsError
from .plugins import (
    adapt_captioner,
    check_spec,
    get_base_captioner,
    get_post_processor,
    join_spec,
    split_chain,
)


def wrap(
    base: Any,
    post: PostProcessor | str | None = None,
    *,
    post_options: dict[str, Any] | None = None,
    **base_options: Any,
) -> BaseCaptioner:
    """A captioner that runs `base`, then `post` (a spec string, an instance, or None: identity).

    `base` is a spec string, a `BaseCaptioner`, or an object an installed adapter claims (a loaded
    transformers model, an `openai.OpenAI` client, a VLMEvalKit model, ...). Keyword arguments
    adapt the base (`wrap(model, processor=proc)`, `wrap(client, model="gpt-4o-mini")`);
    `post_options` are the post-processor's per-call options, fixed here.
    """
    if isinstance(base, str):
        b = get_captioner(base, **base_options)
    elif isinstance(base, BaseCaptioner):
        if base_options:
            raise OptionsError(
                f"Keyword arguments {sorted(base_options)} adapt a spec or a framework object; "
                "a captioner instance takes its options per call.",
                hint="Post-processor options go in post_options={...}.",
            )
        b = base
    else:
        b = adapt_captioner(base, base_options)
    p = get_post_processor(post) if isinstance(post, str) else (post or IdentityPostProcessor())
    return WrappedCaptioner(b, p, post_options or {})


@dataclass(frozen=True)
class Chain:
    """A chain as a value: the base captioner's spec and per-call options, the post-processor's
    spec and options. The CLI, `anycap serve`, the Ray engine (which ships this value to its
    actors, each building it once), VLMEvalKit and lmms-eval all build from one."""

    base: str
    post: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    post_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.post_options and self.post is None:
            raise OptionsError(
                f"Post-processor options given ({sorted(self.post_options)}), but {self.spec!r} "
                "names no post-processor.",
                hint="Add one (--post acm:PATH, or base+acm:PATH), or drop the options.",
            )

    @classmethod
    def parse(
        cls,
        spec: str,
        post: str | None = None,
        *,
        options: dict[str, Any] | None = None,
        post_options: dict[str, Any] | None = None,
    ) -> Chain:
        """`spec` is `base` or `base+post`; `post` names the post-processor apart (not both)."""
        base, chained = split_chain(spec)
        if post and chained:
            raise OptionsError(
                f"{spec!r} already chains the post-processor {chained!r}; a second one was given "
                f"({post!r}).",
                hint="Name the post-processor once: in the spec (base+post), or on its own.",
            )
        return cls(base, post or chained, dict(options or {}), dict(post_options or {}))

    @property
    def spec(self) -> str:
        """The chain as one spec string, `base+post`."""
        return join_spec(self.base, self.post)

    def check(self) -> None:
        """Everything that can be refused without loading a model: the names, model parts, what
        each part needs first (a key, a folder), and both sets of options (`validate_options`)."""
        check_spec(self.base, self.options, post=self.post or "", post_options=self.post_options)

    def build(self, **base_kwargs: Any) -> BaseCaptioner:
        """The chain, its base built with `base_kwargs` (constructor options: a key, a device)."""
        captioner = get_base_captioner(self.base, **base_kwargs)
        if self.post is None:
            return captioner
        return WrappedCaptioner(captioner, get_post_processor(self.post), self.post_options)

    __call__ = build  # a zero-argument builder, as the Ray engine's actors take one


def get_captioner(spec: str, **kwargs: Any) -> BaseCaptioner:
    """A captioner from a spec: `name`, `name:model`, or a chain `name:model+post:model`; `kwargs`
    are the base captioner's constructor options."""
    return Chain.parse(spec).build(**kwargs)


def build_captioner(
    spec: str, post: str | None = None, post_options: dict[str, Any] | None = None
) -> BaseCaptioner:
    """The captioner `spec` names (a chain `base+post:MODEL` included), `post` chained after it, and
    the post-processor's options fixed (`Chain.parse(...).build()`)."""
    return Chain.parse(spec, post, post_options=post_options).build()
