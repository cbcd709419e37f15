"""`wrap()`: a base captioner (a spec, a captioner, or a framework object an adapter claims) and a
post-processor, as one captioner. It sits above both `captioner` and `plugins`, which import
neither it nor each other in a cycle."""

from __future__ import annotations

from typing import Any

from .captioner import BaseCaptioner, IdentityPostProcessor, PostProcessor, WrappedCaptioner
from .errors import OptionsError
from .plugins import adapt_captioner, get_captioner, get_post_processor


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


def build_captioner(
    spec: str, post: str | None = None, post_options: dict[str, Any] | None = None
) -> BaseCaptioner:
    """The captioner `spec` names (a chain `base+post:MODEL` included), `post` chained after it, and the
    post-processor's options fixed: what the CLI, `anycap serve` and the harness entries build."""
    captioner = get_captioner(spec)
    if post:
        return wrap(captioner, post, post_options=post_options)
    if post_options:
        if not isinstance(captioner, WrappedCaptioner):
            raise OptionsError(
                f"Post-processor options given, but {spec!r} names no post-processor.",
                hint="Chain one in the spec (base+acm:PATH), or drop the post-processor options.",
            )
        return WrappedCaptioner(captioner.base, captioner.post, post_options)
    return captioner
