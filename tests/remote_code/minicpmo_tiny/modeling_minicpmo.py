"""A tiny model with MiniCPM-o's published chat interface.

`model.chat(msgs=[{"role": "user", "content": [PIL images..., audio arrays..., "question"]}],
tokenizer=tok, sampling=False, max_new_tokens=N)` returns the answer string: images and
16 kHz audio arrays become embeddings, text becomes token embeddings, a small causal LM
generates.
"""

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel, Qwen2Config, Qwen2ForCausalLM

from .configuration_minicpmo import MiniCPMOConfig


class MiniCPMO(PreTrainedModel):
    config_class = MiniCPMOConfig
    base_model_prefix = "minicpmo"

    def __init__(self, config):
        super().__init__(config)
        self.llm = Qwen2ForCausalLM(
            Qwen2Config(
                vocab_size=config.vocab_size,
                hidden_size=config.hidden_size,
                intermediate_size=config.hidden_size * 2,
                num_hidden_layers=config.num_hidden_layers,
                num_attention_heads=4,
                num_key_value_heads=2,
                eos_token_id=config.eos_token_id,
                pad_token_id=config.pad_token_id,
                bos_token_id=None,
            )
        )
        self.vpm = nn.Linear(3 * config.patch * config.patch, config.hidden_size)
        self.apm = nn.Linear(config.audio_frame, config.hidden_size)
        self.post_init()

    def _embed_image(self, image):
        small = image.convert("RGB").resize((self.config.patch, self.config.patch))
        x = torch.tensor(np.asarray(small, dtype=np.float32) / 255.0).reshape(1, -1)
        return self.vpm(x.to(self.vpm.weight.dtype))

    def _embed_audio(self, samples):
        n = self.config.audio_frame
        a = np.asarray(samples, dtype=np.float32)
        a = np.pad(a, (0, (-len(a)) % n)).reshape(-1, n)[:64]
        return self.apm(torch.tensor(a).to(self.apm.weight.dtype))

    @torch.inference_mode()
    def chat(self, msgs, tokenizer, sampling=False, max_new_tokens=64, **kwargs):
        embed = self.llm.get_input_embeddings()
        pieces = []
        for message in msgs:
            content = (
                message["content"] if isinstance(message["content"], list) else [message["content"]]
            )
            for item in content:
                if isinstance(item, str):
                    ids = tokenizer(item, return_tensors="pt")["input_ids"][0]
                    pieces.append(embed(ids))
                elif isinstance(item, np.ndarray):
                    pieces.append(self._embed_audio(item))
                elif hasattr(item, "convert"):
                    pieces.append(self._embed_image(item))
                else:
                    raise ValueError(f"unsupported content item {type(item).__name__}")
        inputs = torch.cat(pieces, dim=0)[None]
        out = self.llm.generate(
            inputs_embeds=inputs,
            attention_mask=torch.ones(inputs.shape[:2], dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=sampling,
            pad_token_id=self.config.pad_token_id,
        )
        return tokenizer.decode(out[0], skip_special_tokens=True)
