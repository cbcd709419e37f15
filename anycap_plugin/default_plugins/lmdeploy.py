"""`wrap(lmdeploy.pipeline(...))`: an LMDeploy VLM pipeline as a base captioner."""

from __future__ import annotations

import sys
from typing import Any

from ..hookspecs import hookimpl


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """A pipeline the user built (nobody holds one without having imported LMDeploy)."""
    if "lmdeploy" not in sys.modules:
        return None
    from .lmdeploy_captioner import adapt

    return adapt(obj, options)
