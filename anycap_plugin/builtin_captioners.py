"""What core registers through its own hooks: offline captioners and the identity post-processor."""

from __future__ import annotations

from typing import Any

from .captioner import IdentityPostProcessor
from .errors import OptionsError
from .hookspecs import Register, hookimpl


def _no_model(name: str, cls: type) -> Any:
    def factory(model: str | None = None, **kwargs: Any) -> Any:
        if model:
            raise OptionsError(f"{name!r} takes no model; got {model!r}.", hint=f"Use the spec {name!r} alone.")
        return cls(**kwargs)

    return factory


@hookimpl
def register_captioners(register: Register) -> None:
    from .testing import InstantCaptioner, StatsCaptioner

    register("stats", _no_model("stats", StatsCaptioner),
             "offline: describes measurable media properties (size, colour, motion, loudness, pitch)")
    register("instant", _no_model("instant", InstantCaptioner),
             "offline: answers at once without decoding; measures runner overhead")

    def vlmeval(model: str | None = None, **kwargs: Any) -> Any:
        from .integrations.vlmeval.captioner import vlmeval_captioner  # imports VLMEvalKit: only when asked

        return vlmeval_captioner(model, **kwargs)

    register("vlmeval", vlmeval, "any VLMEvalKit model (model = a supported_VLM name; needs VLMEvalKit)")


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """VLMEvalKit model instances (VLMEvalKit's integration ships with the core)."""
    import sys

    if "vlmeval" not in sys.modules:
        return None
    from .integrations.vlmeval.captioner import adapt

    return adapt(obj, options)


@hookimpl
def register_post_processors(register: Register) -> None:
    register("identity", _no_model("identity", IdentityPostProcessor), "keeps the base caption unchanged")

    def acm(model: str | None = None, **kwargs: Any) -> Any:
        if model and model.startswith(("http://", "https://")):
            from .acm.remote import RemoteACM

            return RemoteACM(model, **kwargs)
        from .acm.postprocessor import ACMPostProcessor

        return ACMPostProcessor(model, **kwargs)

    register("acm", acm, "ACM in process (model = a saved ACM folder) or remote (model = http(s)://host/v1)")
