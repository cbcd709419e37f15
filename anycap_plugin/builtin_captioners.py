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
