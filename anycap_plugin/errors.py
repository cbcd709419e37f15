"""The exception tree, all of it. Every error says what went wrong and what the user can do next.

Callers catch `AnyCapError` for anything this package raises on purpose; the batch runner
records `type(err).__name__` and `str(err)` for a failed item and carries on. Two kinds matter to
the `anycap` command (its one mapping, `cli/exit_codes.py`): a `RunError` happened while the work
ran (a model or API call, a judge, a cluster): exit 1. Every other error means the command cannot
run as given (a spec, an option, an input, a file, a missing install): exit 2, before any work.
"""

from __future__ import annotations


class AnyCapError(Exception):
    """Base class; `hint` is the next step the user can take."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}".strip() if hint else message)


class RunError(AnyCapError):
    """Something failed while the work ran: the command was fine, a model, call or service was not."""


# ---- media ------------------------------------------------------------------------------------


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


class ACMModalityError(ModalityNotSupportedError, ValueError):
    """Media of a modality this checkpoint has no encoder for (an `AnyCapError`; a `ValueError` as before)."""


# ---- captioners, plugins and specs ------------------------------------------------------------


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
        super().__init__(
            f"Unknown {kind} {name!r}.", hint=hint + " Run 'anycap models' to list them."
        )


class PluginError(AnyCapError):
    """A plugin failed to load or register; the host keeps running without it."""


class CaptionerError(RunError):
    """The captioning backend failed for this item (model error, API error)."""


class ModelNotFoundError(AnyCapError):
    """No model at the given folder or hub id."""


class CheckpointError(AnyCapError):
    """A model folder that exists but cannot be loaded (corrupt or incomplete files)."""


# ---- checkpoints: conversion ------------------------------------------------------------------


class ConversionError(AnyCapError):
    """A source folder that is not a convertible InternVL-chat checkpoint; says what was found."""


class TokenizerConversionError(AnyCapError):
    """The source tokenizer is missing, unsupported, or would not reproduce the reference's ids."""


class UnknownTemplateError(AnyCapError):
    """A checkpoint names a conversation template this converter does not know."""


# ---- OpenAI-compatible calls (call engine, judges, synthesis) ----------------------------------


class CallError(RunError):
    """A model call that failed after the SDK's retries (HTTP error, timeout, dropped connection)."""


class ReplyFormatError(RunError):
    """A reply that is not the JSON the prompt asked for, after the allowed re-asks."""


class JudgeError(RunError):
    """The judge gave no valid verdict for an item after its retries."""


class LengthDropped(RunError):
    """A synthesized answer that kept breaking its own length constraint."""


# ---- batch runs -------------------------------------------------------------------------------


class NoInputsError(OptionsError):
    """Inputs that name nothing to caption: a glob without a match, an empty folder or manifest."""


class ManifestError(AnyCapError):
    """An input record (manifest line, conversation, table row) that cannot be read as an item."""


class JournalBusyError(OptionsError):
    """Another run is writing the same output (a lock held here, or a lease in the store renewed)."""


class OutputIsInputError(OptionsError):
    """An input names the run's own output or state: the run would read what it writes."""


class StorageError(OptionsError):
    """A location that cannot be read or written: missing, no credentials, an unreachable endpoint,
    an unknown protocol, or an output that cannot be written."""


class LeaseLostError(RunError):
    """Another driver took over this run's lease in the store: this one stops, losing nothing flushed."""


class ClusterUnreachableError(OptionsError):
    """No Ray cluster answers at the address given."""


class RayUnavailableError(RunError):
    """Ray is not installed, or the cluster cannot be reached."""


class WorkerCrashError(CaptionerError):
    """Captioning this item ended its Ray worker (a crash, or out of memory) again and again."""


# ---- serving and viewing ----------------------------------------------------------------------


class OpenServerError(AnyCapError):
    """Binding beyond loopback without an API key, and without saying so on purpose."""


class RequestError(AnyCapError):
    """A request the server cannot serve: answered with `status` and an OpenAI-style error body."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        code: str = "invalid_request",
        hint: str | None = None,
    ):
        super().__init__(message, hint=hint)
        self.status, self.code = status, code


class MediaRefused(AnyCapError):
    """The record names a file outside the folders the viewer may serve."""


class ReviewError(AnyCapError):
    """A review the viewer cannot keep: an unknown status, a caption or tag that is not text, a run
    that is read-only here."""


class StaleReviewError(ReviewError):
    """A review written against an older version of its item (another tab or page wrote since)."""


# ---- evaluation and training data -------------------------------------------------------------


class EvalDataError(AnyCapError):
    """A reference or candidate file that cannot be used as it is."""


class AudioCaptionsError(AnyCapError):
    """Audio-caption references or candidates that cannot be read."""


class PromptFilesError(AnyCapError):
    """The release protocol's prompt folder is missing, incomplete, or holds other files."""


class MetricsUnavailable(AnyCapError):
    """What the metrics need is missing: pycocoevalcap, or Java."""


class TaskDataError(AnyCapError):
    """A benchmark's files cannot make an lmms-eval task folder."""


class ACDFormatError(AnyCapError):
    """A training file line that is not a usable ACD record."""


# ---- optional integrations --------------------------------------------------------------------


class VLMEvalNotInstalled(AnyCapError):
    """VLMEvalKit is not importable."""


class LmmsEvalNotInstalled(AnyCapError):
    """lmms-eval is not importable."""


class InstructionError(AnyCapError):
    """An instruction or length constraint that cannot be understood."""
