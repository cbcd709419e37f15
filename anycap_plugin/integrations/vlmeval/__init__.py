"""AnyCap in VLMEvalKit (`ms-vlmeval`, the `[vlmeval]` extra), imported only when used.

    from anycap_plugin.integrations.vlmeval import register
    register({"anycap-qwen-acm": "qwen2.5-vl:/models/qwen+acm:/models/acm"})
    # now VLMEvalKit's supported_VLM and build_dataset know the model and our datasets

`anycap vlmeval` runs VLMEvalKit's own run flow with these registered. See docs/vlmeval.md.
"""

from __future__ import annotations

from typing import Any

from ...contained.vlmeval import import_vlmeval, redact

__all__ = ["AnyCapVLM", "import_vlmeval", "redact", "register", "trust_local_tsv"]


def __getattr__(name: str) -> Any:  # each of these imports vlmeval
    if name in ("register", "trust_local_tsv"):
        from . import registry

        return getattr(registry, name)
    if name == "AnyCapVLM":
        from .model import AnyCapVLM

        return AnyCapVLM
    raise AttributeError(name)
