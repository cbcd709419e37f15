"""What core registers through its own hooks: offline captioners, the identity and ACM
post-processors, and the built-in benchmarks (`eval/benchmarks/`)."""

from __future__ import annotations

from typing import Any

from .captioner import IdentityPostProcessor
from .hookspecs import Register, hookimpl


@hookimpl
def register_captioners(register: Register) -> None:
    from .offline_captioners import InstantCaptioner, StatsCaptioner

    register(
        "stats",
        StatsCaptioner,
        "offline: describes measurable media properties (size, colour, motion, loudness, pitch)",
        needs_model=False,
    )
    register(
        "instant",
        InstantCaptioner,
        "offline: answers at once without decoding; measures runner overhead",
        needs_model=False,
    )

    def vlmeval(model: str | None = None, **kwargs: Any) -> Any:
        from .integrations.vlmeval.captioner import (
            vlmeval_captioner,  # imports VLMEvalKit: only when asked
        )

        return vlmeval_captioner(model, **kwargs)

    register(
        "vlmeval",
        vlmeval,
        "any VLMEvalKit model (model = a supported_VLM name; needs VLMEvalKit)",
        needs_model=True,
        modalities=("image", "video"),
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """VLMEvalKit models and LMDeploy pipelines (their integrations ship with the core)."""
    import sys

    if "vlmeval" in sys.modules:
        from .integrations.vlmeval.captioner import adapt as adapt_vlmeval

        found = adapt_vlmeval(obj, options)
        if found is not None:
            return found
    if "lmdeploy" in sys.modules:
        from .integrations.lmdeploy_pipeline import adapt as adapt_pipeline

        return adapt_pipeline(obj, options)
    return None


@hookimpl
def register_post_processors(register: Register) -> None:
    register(
        "identity", IdentityPostProcessor, "keeps the base caption unchanged", needs_model=False
    )

    def acm(model: str | None = None, **kwargs: Any) -> Any:
        if model and model.startswith(("http://", "https://")):
            from .acm_runtime.remote import RemoteACM

            return RemoteACM(model, **kwargs)
        from .acm_runtime.postprocessor import ACMPostProcessor

        return ACMPostProcessor(model, **kwargs)

    def acm_options() -> type:  # resolved when shown: the acm package imports transformers
        from .acm_runtime.postprocessor import ACMOptions

        return ACMOptions

    register(
        "acm",
        acm,
        "ACM in process (model = a saved ACM folder or hub id) or remote (model = http(s)://host/v1)",
        needs_model=True,
        options=acm_options,
        preflight=acm_preflight,
    )


def acm_preflight(model: str | None, **_: Any) -> None:
    """A local ACM folder exists (a remote ACM needs nothing before its first call)."""
    if model and not model.startswith(("http://", "https://")):
        from .acm_runtime.resolve import preflight_source

        preflight_source(model)


@hookimpl
def register_benchmarks(register: Register) -> None:
    from .eval.benchmarks import builtin

    for benchmark in builtin():
        register(benchmark)
