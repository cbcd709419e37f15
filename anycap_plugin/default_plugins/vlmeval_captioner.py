"""A VLMEvalKit model as an AnyCap base captioner: `vlmeval:NAME` (any entry of `supported_VLM`,
API models included) or `wrap(vlmeval_model)` on an instance the user already holds.

Media go in VLMEvalKit's message format (`[{"type": "image"|"video"|"audio", "value": path},
{"type": "text", "value": instruction}]`); a video goes as the file to a `VIDEO_LLM` and as
sampled frames (image files) to any other model. VLMEvalKit's failure markers never become
captions: they are this item's `CaptionerError`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..captioner import BaseCaptioner, Caption, CaptionOptions, prompt_for
from ..contained.vlmeval import import_vlmeval
from ..errors import CaptionerError, ModalityNotSupportedError, OptionsError
from ..media import Media, Modality


class VLMEvalOptions(CaptionOptions):
    num_frames: int = 8  # frames sent to a model that is not a video LLM


def failure_markers() -> tuple[str, ...]:
    import_vlmeval()
    from vlmeval.inference import FAIL_MSG
    from vlmeval.smp.file import INFER_FAIL_MSG

    return FAIL_MSG, INFER_FAIL_MSG, "Failed to obtain answer via API"


class VLMEvalCaptioner(BaseCaptioner[VLMEvalOptions]):
    """Captions with a VLMEvalKit model's `generate(message)`, one item per call (its own API)."""

    def __init__(self, model: Any, name: str | None = None) -> None:
        self.vlm = model
        self.id = f"vlmeval:{name or type(model).__name__}"
        allowed = set(getattr(model, "allowed_types", ["text", "image"]))
        modalities: set[Modality] = {"image", "video"}
        if "audio" in allowed:
            modalities.add("audio")
        # per instance: BaseCaptioner declares `modalities` a ClassVar
        self.modalities = frozenset(modalities)  # type: ignore[misc]
        self._markers = failure_markers()

    def message(
        self, media: Media, instruction: str | None, options: VLMEvalOptions, scratch: Path
    ) -> list[dict[str, str]]:
        """The VLMEvalKit message for one item; media without a file are written under `scratch`."""
        text = {"type": "text", "value": prompt_for(media, instruction)}
        if media.modality == "video" and not getattr(self.vlm, "VIDEO_LLM", False):
            frames = media.frames(num_frames=options.num_frames).images
            paths = []
            for i, frame in enumerate(frames):
                path = scratch / f"frame{i}.jpg"
                frame.save(path, quality=90)
                paths.append({"type": "image", "value": str(path)})
            return [*paths, text]
        if media.modality == "image":
            media.image()  # an undecodable image is this item's error, not the model's input
        if media.path is not None:
            path = Path(media.path)
        else:
            path = scratch / (
                "media.png" if media.modality == "image" else f"media.{media.modality}"
            )
            if media.modality == "image":
                media.image().save(path)
            else:
                path.write_bytes(media.read_bytes())
        return [{"type": media.modality, "value": str(path)}, text]

    def _caption(self, media: Media, instruction: str | None, options: VLMEvalOptions) -> Caption:
        if media.modality not in self.modalities:
            raise ModalityNotSupportedError(
                f"{self.id} takes {sorted(self.modalities)}, not {media.modality}."
            )
        with tempfile.TemporaryDirectory(prefix="anycap-vlmeval-") as scratch:
            answer = self.vlm.generate(self.message(media, instruction, options, Path(scratch)))
        if isinstance(
            answer, dict
        ):  # some API models return {"prediction": ..., "extra_records": ...}
            answer = answer.get("prediction")
        if (
            not isinstance(answer, str)
            or not answer.strip()
            or any(m in answer for m in self._markers)
        ):
            raise CaptionerError(
                f"{self.id} gave no caption: {str(answer)[:200]!r}.",
                hint="VLMEvalKit's model reported a failure; check its log and its API settings.",
            )
        return Caption(text=answer.strip(), usage={})


def vlmeval_captioner(model: str | None = None, **kwargs: Any) -> VLMEvalCaptioner:
    """`vlmeval:NAME`: the `supported_VLM` entry NAME, built with `kwargs` as its constructor options."""
    if not model:
        raise OptionsError(
            "The vlmeval captioner needs a model name.",
            hint="Use a spec like 'vlmeval:GPT4o_MINI' (an entry of vlmeval.config.supported_VLM).",
        )
    import_vlmeval()
    from vlmeval.config import supported_VLM

    if model not in supported_VLM:
        import difflib

        close = difflib.get_close_matches(model, list(supported_VLM), n=3)
        raise OptionsError(
            f"{model!r} is not in VLMEvalKit's supported_VLM ({len(supported_VLM)} models).",
            hint=("Did you mean: " + ", ".join(close) + "?")
            if close
            else "See vlmeval.config.supported_VLM for the names.",
        )
    return VLMEvalCaptioner(supported_VLM[model](**kwargs), name=model)


def adapt(obj: Any, options: dict[str, Any]) -> VLMEvalCaptioner | None:
    """Claim a VLMEvalKit model instance (local `BaseModel` or API `BaseAPI`)."""
    import sys

    if "vlmeval" not in sys.modules:  # nobody holds a VLMEvalKit model without having imported it
        return None
    from vlmeval.api.base import BaseAPI
    from vlmeval.vlm.base import BaseModel

    if not isinstance(obj, (BaseModel, BaseAPI)):
        return None
    if options:
        raise OptionsError(
            f"wrap() of a VLMEvalKit model takes no options (got {sorted(options)}).",
            hint="Configure the model when you build it; per-call options go to caption().",
        )
    return VLMEvalCaptioner(obj, name=getattr(obj, "model", None) or type(obj).__name__)
