"""The InternVL-chat -> ACM converter, on a tiny checkpoint written in that layout."""

import re

import torch
from safetensors.torch import save_file
from transformers import AutoModel

from anycap_plugin import Media, testing
from anycap_plugin.acm import ACMConfig
from anycap_plugin.acm.convert import _split_wqkv, convert_checkpoint


def to_internvl_chat_layout(state: dict, vision_dim: int) -> dict:
    """The inverse of the conversion, written out independently: what a released checkpoint holds."""
    out, qkv = {}, {}
    for key, value in state.items():
        if key.startswith("vision_model."):
            k = key.replace(".layer.", ".layers.").replace("cls_token", "class_embedding")
            k = k.replace("position_embeddings", "position_embedding").replace("patch_embeddings.projection", "patch_embedding")
            k = re.sub(r"\.lambda_(\d)", r".ls\1", k).replace(".attention.projection_layer.", ".attn.proj.")
            k = k.replace(".layernorm_before.", ".norm1.").replace(".layernorm_after.", ".norm2.").replace(".attention.", ".attn.")
            m = re.search(r"\.attn\.([qkv])_proj\.(weight|bias)$", k)
            if m:
                qkv.setdefault(k[: m.start()] + f".attn.qkv.{m.group(2)}", {})[m.group(1)] = value
                continue
            out[k] = value
        elif key.startswith("audio_encoder.model."):
            out["audio_model." + key[len("audio_encoder.model."):]] = value
        elif key.startswith("vision_projector."):
            out[key.replace("vision_projector.norm.", "mlp1.0.").replace("vision_projector.fc1.", "mlp1.1.")
                .replace("vision_projector.fc2.", "mlp1.3.")] = value
        elif key.startswith("audio_projector."):
            out[key.replace("audio_projector.norm.", "mlp2.0.").replace("audio_projector.fc1.", "mlp2.1.")
                .replace("audio_projector.fc2.", "mlp2.3.")] = value
        else:
            out[key] = value
    for k, parts in qkv.items():
        out[k] = torch.cat([parts["q"], parts["k"], parts["v"]])
        assert out[k].shape[0] == 3 * vision_dim
    return out


def test_converts_an_internvl_chat_checkpoint_exactly(tmp_path, image_path, audio_path):
    ours = testing.build_tiny_acm(tmp_path / "acm", init_std=0.5)
    model = AutoModel.from_pretrained(ours)
    state = {k: v.clone() for k, v in model.state_dict().items() if k != "language_model.lm_head.weight"}
    released = tmp_path / "released"
    released.mkdir()
    layout = to_internvl_chat_layout(state, model.config.vision_config.hidden_size)
    assert any(".attn.qkv." in k for k in layout) and "mlp1.1.weight" in layout and "mlp2.3.bias" in layout
    save_file(layout, released / "model.safetensors", metadata={"format": "pt"})
    out = convert_checkpoint(released, tmp_path / "converted", ACMConfig.from_pretrained(ours))
    converted = AutoModel.from_pretrained(out)
    for k, v in model.state_dict().items():
        assert torch.equal(v, converted.state_dict()[k]), k
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(ours)
    batch = proc([Media.load(image_path), Media.load(audio_path)], ["a", "b"], ["x", "y"])
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, converted(**batch).logits)


def test_internlm2_fused_wqkv_splits_by_key_value_group():
    cfg = ACMConfig(text_config=dict(model_type="llama", hidden_size=16, num_attention_heads=4, num_key_value_heads=2,
                                     intermediate_size=32, num_hidden_layers=1, vocab_size=10))
    hd, hidden = 4, 16
    q, k, v = torch.randn(4 * hd, hidden), torch.randn(2 * hd, hidden), torch.randn(2 * hd, hidden)
    rows = []
    for h in range(2):  # per key-value head: its 2 query heads, then k, then v
        rows += [q[(2 * h) * hd:(2 * h + 1) * hd], q[(2 * h + 1) * hd:(2 * h + 2) * hd], k[h * hd:(h + 1) * hd], v[h * hd:(h + 1) * hd]]
    q2, k2, v2 = _split_wqkv(torch.cat(rows), cfg)
    assert torch.equal(q2, q) and torch.equal(k2, k) and torch.equal(v2, v)
