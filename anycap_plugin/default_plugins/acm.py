"""The post-processors: `identity` (keeps the base caption) and `acm` (in process or remote)."""

from __future__ import annotations

from typing import Any

from ..hookspecs import Deferred, Register, hookimpl


def _remote(model: str | None) -> bool:
    return bool(model) and str(model).startswith(("http://", "https://"))


def _identity() -> type:
    from ..captioner import IdentityPostProcessor

    return IdentityPostProcessor


def _acm(model: str | None = None, **kwargs: Any) -> Any:
    if model and _remote(model):
        from ..acm_runtime.remote import RemoteACM

        return RemoteACM(model, **kwargs)
    from ..acm_runtime.postprocessor import ACMPostProcessor

    return ACMPostProcessor(model, **kwargs)


def _acm_options() -> type:  # resolved when shown: the acm package imports transformers
    from ..acm_runtime.postprocessor import ACMOptions

    return ACMOptions


def _acm_preflight(model: str | None, **_: Any) -> None:
    """A local ACM folder exists (a remote ACM needs nothing before its first call)."""
    if model and not _remote(model):
        from ..acm_runtime.resolve import preflight_source

        preflight_source(model)


@hookimpl
def register_post_processors(register: Register) -> None:
    register("identity", Deferred(_identity), "keeps the base caption unchanged", needs_model=False)
    register(
        "acm",
        _acm,
        "ACM in process (model = a saved ACM folder or hub id) or remote (model = http(s)://host/v1)",
        needs_model=True,
        options=_acm_options,
        preflight=_acm_preflight,
    )
