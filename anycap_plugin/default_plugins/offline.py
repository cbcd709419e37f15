"""`stats` and `instant`: captioners that need no model (tests, smoke runs, runner overhead)."""

from __future__ import annotations

from ..hookspecs import Deferred, Register, hookimpl


def _stats() -> type:
    from ..offline_captioners import StatsCaptioner

    return StatsCaptioner


def _instant() -> type:
    from ..offline_captioners import InstantCaptioner

    return InstantCaptioner


@hookimpl
def register_captioners(register: Register) -> None:
    every = ("image", "video", "audio")
    register(
        "stats",
        Deferred(_stats),
        "offline: describes measurable media properties (size, colour, motion, loudness, pitch)",
        needs_model=False,
        modalities=every,
    )
    register(
        "instant",
        Deferred(_instant),
        "offline: answers at once without decoding; measures runner overhead",
        needs_model=False,
        modalities=every,
    )
