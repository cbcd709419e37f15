"""The public test helpers: tiny models load from disk like real ones; generated media decode."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from anycap_plugin import Media, testing


def test_tiny_causal_lm_round_trips_through_a_folder(tmp_path):
    folder = testing.build_tiny_causal_lm(tmp_path / "lm", extra_special_tokens=("<image>",))
    assert (folder / "model.safetensors").exists() and not list(folder.glob("*.bin"))
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert tok.convert_tokens_to_ids("<image>") != tok.unk_token_id
    text = "A dog runs on the beach."
    ids = tok(text, return_tensors="pt")
    assert tok.decode(ids["input_ids"][0]) == text
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5
    again = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        assert torch.equal(model(**ids).logits, again(**ids).logits)


def test_generated_media_decode(tmp_path):
    video = testing.generate_video(tmp_path / "v.mp4", seconds=1.0, fps=10, audio=True)
    m = Media.load(video)
    assert m.modality == "video" and len(m.frames(num_frames=5)) == 5
    assert abs(m.audio().duration - 1.0) < 0.1
    wav = testing.generate_wav(tmp_path / "a.wav", seconds=0.5, channels=2)
    assert Media.load(wav).audio().samples.shape == (8000,)
    files = testing.sample_media(tmp_path / "s")
    assert {k: Media.load(v).modality for k, v in files.items()} == {
        "image": "image",
        "video": "video",
        "audio": "audio",
    }


def test_padded_tokenizer_encodes_as_trained_and_decodes_every_id(tmp_path):
    plain = testing.build_tokenizer(tmp_path / "plain")
    padded = testing.build_tokenizer(tmp_path / "padded", pad_vocab_to=4096)
    text = "A dog runs on the beach."
    assert len(padded) == 4096 and padded(text).input_ids == plain(text).input_ids
    assert (
        padded.decode([4095]) == "<unused_4095>" and padded.decode(padded(text).input_ids) == text
    )


def test_acm_2b_config_has_the_real_sizes(tmp_path):
    """The benchmark model's shape, counted on the meta device (no memory, no weights)."""
    from anycap_plugin.acm import ACMForConditionalGeneration
    from anycap_plugin.acm.processing_acm import SPECIAL_TOKENS

    tok = testing.build_tokenizer(
        tmp_path, extra_special_tokens=SPECIAL_TOKENS, pad_vocab_to=testing.ACM_2B_VOCAB
    )
    config = testing.acm_2b_config(tok)
    with torch.device("meta"):
        model = ACMForConditionalGeneration(config)
    count = {
        name: sum(p.numel() for p in part.parameters()) for name, part in model.named_children()
    }
    assert count["language_model"] == 1_889_146_880  # InternLM2.5-1.8B
    assert (
        count["vision_model"] == 304_012_288
    )  # InternViT-300M, with its qkv biases (24 x 3 x 1024)
    assert count["audio_encoder"] == 86_187_264  # AST-base
    assert 2.2e9 < sum(count.values()) < 2.4e9
    assert config.image_seq_length == 256 and config.audio_seq_length == 303
