"""ACM processor: media + instruction + existing caption -> model inputs, with the published prompt.

A question (`prompt.question`, after the media placeholders of `prompt.media_prefix`) goes into the
checkpoint's conversation template (`chat_template.py`, with its system message); each `<image>`
becomes `<img>` + `<IMG_CONTEXT>` x tokens-per-tile x tiles + `</img>`, each `<audio>` the audio
markup, exactly as InternVL-chat's `chat()` builds its query. With `targets`, labels cover only the
answer tokens (residual-correction SFT).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from transformers import BatchFeature, ProcessorMixin

from ..media import Media
from . import prompt as acm_prompt
from .chat_template import get_template

IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"
AUDIO_START, AUDIO_END, AUDIO_CONTEXT = "<audio>", "</audio>", "<AUDIO_CONTEXT>"
SPECIAL_TOKENS = (IMG_START, IMG_END, IMG_CONTEXT, AUDIO_START, AUDIO_END, AUDIO_CONTEXT)


class ACMProcessor(ProcessorMixin):
    """Tiles images (InternVL's dynamic tiling), one tile per video frame, 128-bin filterbanks for audio."""

    def __init__(
        self,
        image_processor: Any = None,
        feature_extractor: Any = None,
        tokenizer: Any = None,
        image_seq_length: int = 256,
        audio_seq_length: int = 303,
        num_frames: int = 8,
        template: str = "internvl2_5",
        system_message: str | None = None,
        chat_template: Any = None,
        **kwargs: Any,
    ) -> None:
        self.image_seq_length = image_seq_length
        self.audio_seq_length = audio_seq_length
        self.num_frames = num_frames
        self.template = template
        self.system_message = system_message
        if chat_template is None:
            chat_template = get_template(template).to_jinja(system_message)
        super().__init__(image_processor, feature_extractor, tokenizer, chat_template=chat_template)

    # ---- prompt ----------------------------------------------------------------------------
    @property
    def stop_token(self) -> str:
        return get_template(self.template).stop

    def query(self, question: str, tiles: Sequence[int] = ()) -> str:
        """The full prompt text for one question: template, system message, media placeholders expanded.
        `tiles` has one entry per `<image>` in the question (an image's tiles, or 1 per video frame)."""
        text = get_template(self.template).render(question, self.system_message)
        for n in tiles:
            text = text.replace(
                acm_prompt.IMAGE_PLACEHOLDER,
                IMG_START + IMG_CONTEXT * (self.image_seq_length * n) + IMG_END,
                1,
            )
        if acm_prompt.AUDIO_PLACEHOLDER + "\n" in text:
            text = text.replace(
                acm_prompt.AUDIO_PLACEHOLDER + "\n",
                AUDIO_START + AUDIO_CONTEXT * self.audio_seq_length + AUDIO_END + "\n",
                1,
            )
        return text

    # ---- batches ---------------------------------------------------------------------------
    def __call__(
        self,
        media: Sequence[Media | None],
        instructions: Sequence[str | None],
        captions: Sequence[str | None],
        targets: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Inputs for refining each item's existing caption to follow its instruction (the ACM task)."""
        questions = [acm_prompt.question(i, c) for i, c in zip(instructions, captions)]
        return self.chat(media, questions, targets=targets, **kwargs)

    def chat(
        self,
        media: Sequence[Media | None],
        questions: Sequence[str],
        targets: Sequence[str] | None = None,
        padding_side: str | None = None,
        num_frames: int | None = None,
        max_length: int | None = None,
        packed: bool = False,
        video_sound: Sequence[bool] | None = None,
    ) -> BatchFeature:
        """Inputs for any questions about the media (the placeholders are put in front, as `chat()` does).
        With `targets`, labels cover the answers only; `packed` puts the whole batch in one row with
        restarting `position_ids` and no padding (transformers keeps the sequences apart by them).
        `video_sound[i]`: item i is a video whose sound track goes in too, as an `<audio>` after its frames
        (for ACMs with an audio branch)."""
        pixel_values: list[torch.Tensor] = []
        audio: list[Any] = []
        texts: list[str] = []
        sound = list(video_sound) if video_sound is not None else [False] * len(media)
        for m, q, with_sound in zip(media, questions, sound):
            if m is None:
                texts.append(self.query(q))
            elif m.modality == "audio":
                audio.append(m.audio(self.feature_extractor.sampling_rate).samples)
                texts.append(self.query(acm_prompt.media_prefix("audio") + q))
            elif m.modality == "image":
                pix = self.image_processor(images=[m.image()], return_tensors="pt")
                pixel_values.append(pix["pixel_values"])
                prefix = (
                    "" if acm_prompt.IMAGE_PLACEHOLDER in q else acm_prompt.media_prefix("image")
                )
                tiles = pix.get("num_patches", [pix["pixel_values"].shape[0]])
                texts.append(self.query(prefix + q, [int(n) for n in tiles]))
            else:
                frames = m.frames(num_frames=num_frames or self.num_frames).images
                one_tile = (
                    {"max_num": 1}
                    if hasattr(self.image_processor, "tiles")
                    else {"crop_to_patches": False}
                )
                pix = self.image_processor(
                    images=frames, return_tensors="pt", **one_tile
                )  # 0.1 folders: GotOcr2
                pixel_values.append(pix["pixel_values"])
                prefix = acm_prompt.media_prefix("video", len(frames))
                if with_sound:
                    audio.append(m.audio(self.feature_extractor.sampling_rate).samples)
                    prefix += acm_prompt.media_prefix("audio")
                texts.append(self.query(prefix + q, [1] * len(frames)))
        data: dict[str, Any] = {}
        if pixel_values:
            data["pixel_values"] = torch.cat(pixel_values)
        if audio:
            feats = self.feature_extractor(
                audio, sampling_rate=self.feature_extractor.sampling_rate, return_tensors="pt"
            )
            data["audio_values"] = feats["input_values"]
        side = padding_side or ("right" if targets is not None else "left")
        if targets is None:
            enc = self.tokenizer(texts, padding=True, padding_side=side, return_tensors="pt")
            return BatchFeature({**enc, **data})
        rows = [self._labelled(text, target, max_length) for text, target in zip(texts, targets)]
        if packed:
            return BatchFeature(
                {
                    "input_ids": torch.tensor([[t for ids, _ in rows for t in ids]]),
                    "labels": torch.tensor([[t for _, lab in rows for t in lab]]),
                    "position_ids": torch.tensor([[i for ids, _ in rows for i in range(len(ids))]]),
                    **data,
                }
            )
        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id

        def padded(seq: list[int], fill: int) -> list[int]:
            return (
                seq + [fill] * (width - len(seq))
                if side == "right"
                else [fill] * (width - len(seq)) + seq
            )

        enc = {
            "input_ids": torch.tensor([padded(ids, pad) for ids, _ in rows]),
            "attention_mask": torch.tensor([padded([1] * len(ids), 0) for ids, _ in rows]),
            "labels": torch.tensor([padded(lab, -100) for _, lab in rows]),
        }
        return BatchFeature({**enc, **data})

    def _labelled(
        self, text: str, target: str, max_length: int | None
    ) -> tuple[list[int], list[int]]:
        """Prompt + answer + stop token as the conversation tokenizes them together; labels on the answer."""
        prompt_ids = self.tokenizer(text)["input_ids"]
        whole = self.tokenizer(text + target + self.stop_token)["input_ids"]
        if whole[: len(prompt_ids)] == prompt_ids:
            answer_ids = whole[len(prompt_ids) :]
        else:  # a merge across the boundary: tokenize the answer on its own
            answer_ids = self.tokenizer(target + self.stop_token, add_special_tokens=False)[
                "input_ids"
            ]
        if max_length is not None:  # cut the answer, never the prompt's media placeholders
            answer_ids = answer_ids[: max(16, max_length - len(prompt_ids))]
        return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(*args, **kwargs)


# AST's 128 mel filters over its 400-point FFT leave the lowest ones empty: transformers says so each
# time the feature extractor is built (the published AnyCap and AST configurations are the same).
# Nothing a user can act on, so it is not printed.
MEL_WARNING = "At least one mel filter has all zero values"

# what the ACM processor is loaded with: its image processor has one (PIL) implementation, so asking
# transformers for its default torchvision one only logs a fall-back on every load
PROCESSOR_KWARGS = {"backend": "pil"}


@contextmanager
def quiet_feature_extractor() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=MEL_WARNING)
        yield


def ast_feature_extractor(**kwargs: Any) -> Any:
    """The ACM's audio feature extractor (AST, 128 mel bins), built without the mel-filter notice."""
    from transformers import ASTFeatureExtractor

    with quiet_feature_extractor():
        return ASTFeatureExtractor(num_mel_bins=128, **kwargs)
