"""The exception tree. Every error says what went wrong and what the user can do next.

Callers catch `AnyCapError` for anything this package raises on purpose; the batch runner
records `type(err).__name__` and `str(err)` for a failed item and carries on.
"""

from __future__ import annotations


class AnyCapError(Exception):
    """Base class; `hint` is the next step the user can take."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}".strip() if hint else message)


class MediaError(AnyCapError):
    """Media that cannot be used: missing, unsupported, corrupt, empty or too large."""


class MediaNotFoundError(MediaError):
    pass


class UnsupportedMediaError(MediaError):
    pass


class CorruptMediaError(MediaError):
    pass


class EmptyMediaError(MediaError):
    pass


class MediaTooLargeError(MediaError):
    pass


class ModalityNotSupportedError(AnyCapError):
    """A captioner was given a modality it does not declare."""


class OptionsError(AnyCapError):
    """Unknown or invalid captioner options."""


class UnknownCaptionerError(AnyCapError, LookupError):
    """A spec names no registered captioner or post-processor; carries close matches."""

    def __init__(self, name: str, kind: str, close: list[str], known: list[str]) -> None:
        self.name, self.kind, self.close = name, kind, close
        if close:
            hint = "Did you mean: " + ", ".join(close) + "?"
        elif known:
            hint = f"Known {kind}s: " + ", ".join(known) + "."
        else:
            hint = f"No {kind}s are registered: install an adapter (pip install ...) or check ANYCAP_LOAD_PLUGINS."
        super().__init__(f"Unknown {kind} {name!r}.", hint=hint + " Run 'anycap models' to list them.")


class PluginError(AnyCapError):
    """A plugin failed to load or register; the host keeps running without it."""


class CaptionerError(AnyCapError):
    """The captioning backend failed for this item (model error, API error)."""


class InstructionError(AnyCapError):
    """An instruction or length constraint that cannot be understood."""
