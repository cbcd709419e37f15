"""The request side of ACM on LMDeploy, registered in its `VISION_MODELS` under our architecture.

A request is the remote-ACM protocol (`anycap_plugin.acm_runtime.remote`): the media parts, then the text
"Instruction: ... / Existing caption: ...". LMDeploy decodes the parts (images, a video's frames,
audio sent as `audio_url`); `ACMProcessor` then builds the prompt ids and features exactly as the
transformers model gets them. LMDeploy's chat template is not used: ACM's prompt is its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lmdeploy.vl.model.base import VISION_MODELS, VisionModel

from ...acm.processing_acm import AUDIO_CONTEXT, IMG_CONTEXT
from ...media import AudioClip, Media
from ...media.chat_parts import is_frame_label
from . import ARCH


def to_media(items: list[tuple[str, Any, dict]]) -> Media | None:
    """LMDeploy's decoded parts as one `Media`: an image, a video (frames or a decoded clip), or audio."""
    from PIL import Image

    if not items:
        return None
    kinds = {kind for kind, _, _ in items}
    if kinds == {"image"}:
        images = [data for _, data, _ in items]
        return Media.from_image(images[0]) if len(images) == 1 else Media.from_frames(images)
    if kinds == {"video"} and len(items) == 1:
        frames = items[0][1]
        return Media.from_frames([Image.fromarray(np.asarray(f)) for f in frames])
    if kinds == {"audio"} and len(items) == 1:
        samples, rate = items[0][1]
        clip = AudioClip(np.asarray(samples, dtype=np.float32), int(rate))
        return Media.from_bytes(clip.to_wav(), name="audio:request")
    raise ValueError(
        f"ACM takes one image, video or audio clip per request, got {sorted(kinds)} x{len(items)}"
    )


@VISION_MODELS.register_module()
class ACMVisionModel(VisionModel):
    _arch = ARCH

    def build_preprocessor(self, trust_remote_code: bool = False) -> None:
        from transformers import AutoProcessor

        import anycap_plugin.acm  # noqa: F401
        from anycap_plugin.acm.processing_acm import PROCESSOR_KWARGS, quiet_feature_extractor

        with quiet_feature_extractor():
            self.processor = AutoProcessor.from_pretrained(self.model_path, **PROCESSOR_KWARGS)
        tokenizer = self.processor.tokenizer
        self.token_ids = {
            "image": tokenizer.convert_tokens_to_ids(IMG_CONTEXT),
            "audio": tokenizer.convert_tokens_to_ids(AUDIO_CONTEXT),
        }
        self.image_token_id = self.token_ids["image"]

    def build_model(self, trust_remote_code: bool = False) -> None:
        pass  # the engine model holds the encoders (engine_model.py)

    def preprocess(self, messages: list[dict]) -> list[dict]:
        from ..protocol import read_protocol_text

        text = "\n".join(
            part["text"]
            for m in messages
            if m.get("role") == "user" and isinstance(m["content"], list)
            for part in m["content"]
            if part.get("type") == "text" and not is_frame_label(part["text"])
        )
        text += "\n".join(
            m["content"]
            for m in messages
            if m.get("role") == "user" and isinstance(m["content"], str)
        )
        instruction, caption = read_protocol_text(text.strip())
        media = to_media(self.collect_multimodal_items(messages))
        batch = self.processor([media], [instruction], [caption])
        messages.append({"role": "preprocess", "content": self.pack(batch)})
        return messages

    def pack(self, batch: Any) -> dict[str, Any]:
        """Prompt ids, and one item per run of placeholders: an image's tiles, a video frame, an audio clip."""
        ids = batch["input_ids"][0].tolist()
        runs, i = [], 0
        while i < len(ids):
            kind = next((k for k, t in self.token_ids.items() if t == ids[i]), None)
            j = i + 1
            while kind is not None and j < len(ids) and ids[j] == ids[i]:
                j += 1
            if kind is not None:
                runs.append((kind, i, j - i))
            i = j
        items, tile, clip = [], 0, 0
        per_tile = self.processor.image_seq_length
        for kind, offset, tokens in runs:
            if kind == "image":
                values, tile = (
                    batch["pixel_values"][tile : tile + tokens // per_tile],
                    tile + tokens // per_tile,
                )
            else:
                values, clip = batch["audio_values"][clip : clip + 1], clip + 1
            items.append(
                {
                    "modality": kind,
                    "values": values,
                    "offset": offset,
                    "tokens": tokens,
                    "token_id": self.token_ids[kind],
                }
            )
        return {"input_ids": ids, "multimodal": items}

    def to_pytorch(
        self, messages: list[dict], chat_template: Any, tokenizer: Any, **kwargs: Any
    ) -> dict[str, Any]:
        packed = next(m["content"] for m in messages if m["role"] == "preprocess")
        return {
            "prompt": None,
            "input_ids": packed["input_ids"],
            "multimodal": packed["multimodal"],
        }
