"""ACM processor: media + instruction + existing caption -> model inputs, with our prompt template.

The template puts the modality tags first (each image tile, video frame or audio clip as its
placeholder tokens), then the instruction, then the existing caption, then the ask. With
`targets`, labels cover only the answer tokens (residual-correction SFT).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import BatchFeature, ProcessorMixin

from ..media import Media

SYSTEM = "You rewrite an existing caption of a piece of media so that it follows the user's instruction."
ASK = "Write the caption that follows the instruction. Answer with the caption only."
IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"
AUDIO_START, AUDIO_END, AUDIO_CONTEXT = "<audio>", "</audio>", "<AUDIO_CONTEXT>"
SPECIAL_TOKENS = (IMG_START, IMG_END, IMG_CONTEXT, AUDIO_START, AUDIO_END, AUDIO_CONTEXT)


class ACMProcessor(ProcessorMixin):
    """Tiles images (InternVL's dynamic tiling), samples video frames, makes 128-bin filterbanks."""

    def __init__(self, image_processor: Any = None, feature_extractor: Any = None, tokenizer: Any = None,
                 image_seq_length: int = 256, audio_seq_length: int = 303, num_frames: int = 8,
                 chat_template: Any = None, **kwargs: Any) -> None:
        self.image_seq_length = image_seq_length
        self.audio_seq_length = audio_seq_length
        self.num_frames = num_frames
        super().__init__(image_processor, feature_extractor, tokenizer, chat_template=chat_template)

    # ---- prompt ----------------------------------------------------------------------------
    def _image_markup(self, tiles: int) -> str:
        return IMG_START + IMG_CONTEXT * (self.image_seq_length * tiles) + IMG_END

    def prompt(self, modality: str, tiles: Sequence[int], instruction: str | None, caption: str | None) -> str:
        """The user turn for one item; `tiles` has one entry per image or video frame."""
        if modality == "image":
            tags = f"Image: {self._image_markup(tiles[0])}\n"
        elif modality == "video":
            tags = "".join(f"Frame{i + 1}: {self._image_markup(t)}\n" for i, t in enumerate(tiles))
        elif modality == "audio":
            tags = f"Audio: {AUDIO_START}{AUDIO_CONTEXT * self.audio_seq_length}{AUDIO_END}\n"
        else:  # text only: training records whose media are not at hand
            tags = ""
        return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{tags}"
                f"Instruction: {instruction or 'Describe the content in detail.'}\n"
                f"Existing caption: {caption or '(none)'}\n{ASK}<|im_end|>\n<|im_start|>assistant\n")

    # ---- batches ---------------------------------------------------------------------------
    def __call__(self, media: Sequence[Media | None], instructions: Sequence[str | None], captions: Sequence[str | None],
                 targets: Sequence[str] | None = None, padding_side: str | None = None,
                 num_frames: int | None = None, max_length: int | None = None, packed: bool = False) -> BatchFeature:
        """Model inputs for a batch. With `targets`, labels cover the answers only; `packed` puts the
        whole batch in one row with restarting `position_ids` and no padding (padding-free training:
        transformers keeps the sequences apart from the position ids)."""
        pixel_values: list[torch.Tensor] = []
        audio: list[Any] = []
        texts: list[str] = []
        for m, instruction, caption in zip(media, instructions, captions):
            if m is None:
                texts.append(self.prompt("text", [], instruction, caption))
                continue
            if m.modality == "audio":
                audio.append(m.audio(self.feature_extractor.sampling_rate).samples)
                texts.append(self.prompt("audio", [], instruction, caption))
                continue
            if m.modality == "image":  # dynamic tiling for images; one tile per video frame
                pix = self.image_processor(images=[m.image()], return_tensors="pt")
                tiles = [int(n) for n in pix.get("num_patches", [pix["pixel_values"].shape[0]])]
            else:
                frames = m.frames(num_frames=num_frames or self.num_frames).images
                pix = self.image_processor(images=frames, crop_to_patches=False, return_tensors="pt")
                tiles = [1] * len(frames)
            pixel_values.append(pix["pixel_values"])
            texts.append(self.prompt(m.modality, tiles, instruction, caption))
        data: dict[str, Any] = {}
        if pixel_values:
            data["pixel_values"] = torch.cat(pixel_values)
        if audio:
            feats = self.feature_extractor(audio, sampling_rate=self.feature_extractor.sampling_rate,
                                           return_tensors="pt")
            data["audio_values"] = feats["input_values"]
        side = padding_side or ("right" if targets is not None else "left")
        if targets is None:
            enc = self.tokenizer(texts, padding=True, padding_side=side, return_tensors="pt")
            return BatchFeature({**enc, **data})
        eos = self.tokenizer.eos_token or "<|im_end|>"
        rows = []
        for text, target in zip(texts, targets):
            prompt_ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            answer_ids = self.tokenizer(target + "<|im_end|>" + eos, add_special_tokens=False)["input_ids"]
            if max_length is not None:  # cut the answer, never the prompt's media placeholders
                answer_ids = answer_ids[: max(16, max_length - len(prompt_ids))]
            rows.append((prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids))
        if packed:
            return BatchFeature({
                "input_ids": torch.tensor([[t for ids, _ in rows for t in ids]]),
                "labels": torch.tensor([[t for _, lab in rows for t in lab]]),
                "position_ids": torch.tensor([[i for ids, _ in rows for i in range(len(ids))]]),
                **data})
        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id

        def padded(seq: list[int], fill: int) -> list[int]:
            return seq + [fill] * (width - len(seq)) if side == "right" else [fill] * (width - len(seq)) + seq

        enc = {"input_ids": torch.tensor([padded(ids, pad) for ids, _ in rows]),
               "attention_mask": torch.tensor([padded([1] * len(ids), 0) for ids, _ in rows]),
               "labels": torch.tensor([padded(lab, -100) for _, lab in rows])}
        return BatchFeature({**enc, **data})

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(*args, **kwargs)
