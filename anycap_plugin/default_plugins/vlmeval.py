"""`vlmeval:NAME` and `wrap(vlmeval_model)`: any VLMEvalKit model as a base captioner.

VLMEvalKit loads only when such a captioner is built (`vlmeval_captioner.py`).
"""

from __future__ import annotations

import sys
from typing import Any

from ..hookspecs import Register, hookimpl


def _vlmeval(model: str | None = None, **kwargs: Any) -> Any:
    from .vlmeval_captioner import vlmeval_captioner

    return vlmeval_captioner(model, **kwargs)


def _options() -> type:
    from .vlmeval_captioner import VLMEvalOptions

    return VLMEvalOptions


@hookimpl
def register_captioners(register: Register) -> None:
    register(
        "vlmeval",
        _vlmeval,
        "any VLMEvalKit model (model = a supported_VLM name; needs VLMEvalKit)",
        needs_model=True,
        options=_options,
        modalities=("image", "video"),
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """A VLMEvalKit model instance (nobody holds one without having imported VLMEvalKit)."""
    if "vlmeval" not in sys.modules:
        return None
    from .vlmeval_captioner import adapt

    return adapt(obj, options)
