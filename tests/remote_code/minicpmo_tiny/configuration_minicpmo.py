"""A tiny stand-in for MiniCPM-o 2.6's remote code: same loading path and `chat` interface."""

from transformers import PretrainedConfig


class MiniCPMOConfig(PretrainedConfig):
    model_type = "minicpmo"

    def __init__(
        self,
        vocab_size=512,
        hidden_size=32,
        num_hidden_layers=2,
        patch=8,
        audio_frame=400,
        eos_token_id=0,
        pad_token_id=1,
        **kwargs,
    ):
        self.vocab_size, self.hidden_size, self.num_hidden_layers = (
            vocab_size,
            hidden_size,
            num_hidden_layers,
        )
        self.patch, self.audio_frame = patch, audio_frame
        super().__init__(eos_token_id=eos_token_id, pad_token_id=pad_token_id, **kwargs)
