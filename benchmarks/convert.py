"""InternVL-chat -> ACM conversion at the real 2B shape: seconds and peak resident memory against the
largest source shard.

A random checkpoint is written in the published InternVL-chat layout (InternViT-300M with qkv biases,
the mlp1 projector, InternLM2-1.8B with fused `wqkv`; bf16, 2.2 B parameters) in shards of
`--shard-gb`, with the oracle's InternLM2 sentencepiece tokenizer. The conversion runs in a fresh
process; its peak RSS (VmHWM) and the RSS it had after importing torch, transformers and
AnyCap (before reading any weight) are reported. Goal: peak below 1.5x the largest shard.

    python benchmarks/convert.py [--shard-gb 2.0] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ORACLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "internvl_chat_tiny" / "checkpoint"
VISION = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, num_channels=3,
              patch_size=14, image_size=448, layer_norm_eps=1e-6, hidden_act="gelu", norm_type="layer_norm",
              qkv_bias=True, qk_normalization=False, model_type="intern_vit_6b", architectures=["InternVisionModel"])
LLM = dict(vocab_size=92553, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=16,
           num_key_value_heads=8, hidden_act="silu", max_position_embeddings=32768, rms_norm_eps=1e-5,
           rope_theta=1000000, rope_scaling={"type": "dynamic", "factor": 2.0}, bias=False, tie_word_embeddings=False,
           bos_token_id=1, eos_token_id=2, pad_token_id=2, model_type="internlm2", architectures=["InternLM2ForCausalLM"])

CHILD = r"""
import json, sys, time
from anycap_plugin.acm.convert import convert_internvl_chat
import torch, transformers, safetensors  # noqa: F401  (imports counted in the baseline)

def hwm():  # this process's peak RSS (VmHWM starts afresh at exec, unlike ru_maxrss)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024

base = hwm()
start = time.perf_counter()
report = convert_internvl_chat(sys.argv[1], sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - start, "baseline_rss": base, "tensors": report.tensors,
                  "peak_rss": hwm()}))
"""
WRITER = r"""
import sys
sys.path.insert(0, sys.argv[3])
from convert import write_checkpoint
from pathlib import Path
write_checkpoint(Path(sys.argv[1]), int(sys.argv[2]))
"""


def tensors() -> list[tuple[str, tuple[int, ...]]]:
    v, t = VISION, LLM
    d, f = v["hidden_size"], v["intermediate_size"]
    out = [("vision_model.embeddings.class_embedding", (1, 1, d)),
           ("vision_model.embeddings.patch_embedding.weight", (d, 3, 14, 14)),
           ("vision_model.embeddings.patch_embedding.bias", (d,)),
           ("vision_model.embeddings.position_embedding", (1, 1 + (448 // 14) ** 2, d))]
    for i in range(v["num_hidden_layers"]):
        p = f"vision_model.encoder.layers.{i}."
        out += [(p + "attn.qkv.weight", (3 * d, d)), (p + "attn.qkv.bias", (3 * d,)), (p + "attn.proj.weight", (d, d)),
                (p + "attn.proj.bias", (d,)), (p + "ls1", (d,)), (p + "ls2", (d,)), (p + "mlp.fc1.weight", (f, d)),
                (p + "mlp.fc1.bias", (f,)), (p + "mlp.fc2.weight", (d, f)), (p + "mlp.fc2.bias", (d,)),
                (p + "norm1.weight", (d,)), (p + "norm1.bias", (d,)), (p + "norm2.weight", (d,)), (p + "norm2.bias", (d,))]
    h, m, n = t["hidden_size"], t["intermediate_size"], 4 * d
    out += [("mlp1.0.weight", (n,)), ("mlp1.0.bias", (n,)), ("mlp1.1.weight", (h, n)), ("mlp1.1.bias", (h,)),
            ("mlp1.3.weight", (h, h)), ("mlp1.3.bias", (h,))]
    kv, hd = t["num_key_value_heads"], h // t["num_attention_heads"]
    for i in range(t["num_hidden_layers"]):
        p = f"language_model.model.layers.{i}."
        out += [(p + "attention.wqkv.weight", (h + 2 * kv * hd, h)), (p + "attention.wo.weight", (h, h)),
                (p + "feed_forward.w1.weight", (m, h)), (p + "feed_forward.w3.weight", (m, h)),
                (p + "feed_forward.w2.weight", (h, m)), (p + "attention_norm.weight", (h,)), (p + "ffn_norm.weight", (h,))]
    out += [("language_model.model.tok_embeddings.weight", (t["vocab_size"], h)), ("language_model.model.norm.weight", (h,)),
            ("language_model.output.weight", (t["vocab_size"], h))]
    return out


def write_checkpoint(folder: Path, shard_bytes: int) -> list[Path]:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    for name in ("tokenizer.model", "tokenizer_config.json", "added_tokens.json", "special_tokens_map.json"):
        shutil.copy(ORACLE / name, folder / name)
    config = json.loads((ORACLE / "config.json").read_text())
    config.update(vision_config=VISION, llm_config=LLM, hidden_size=LLM["hidden_size"])
    (folder / "config.json").write_text(json.dumps(config))
    shard, size, files = {}, 0, []
    gen = torch.Generator().manual_seed(0)

    def flush() -> None:
        nonlocal shard, size
        path = folder / f"model-{len(files) + 1:05d}.safetensors"
        save_file(shard, str(path), metadata={"format": "pt"})
        files.append(path)
        shard, size = {}, 0

    for name, shape in tensors():
        shard[name] = (torch.randn(shape, generator=gen) * 0.02).to(torch.bfloat16)
        size += shard[name].numel() * 2
        if size >= shard_bytes:
            flush()
    if shard:
        flush()
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard-gb", type=float, default=2.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(dir=args.workdir))
    try:
        # written by a separate process, so the converting one starts clean
        subprocess.run([sys.executable, "-c", WRITER, str(root / "src"), str(int(args.shard_gb * 2**30)),
                        str(Path(__file__).parent)], check=True)
        files = sorted((root / "src").glob("*.safetensors"))
        largest = max(f.stat().st_size for f in files)
        run = subprocess.run([sys.executable, "-c", CHILD, str(root / "src"), str(root / "dst")],
                             capture_output=True, text=True, check=True)
        child = json.loads(run.stdout.strip().splitlines()[-1])
        written = sum(f.stat().st_size for f in (root / "dst").glob("*.safetensors"))
        print(json.dumps({
            "benchmark": "convert_internvl_chat_2b",
            "parameters": sum(_numel(s) for _, s in tensors()),
            "source_shards": len(files), "largest_shard_bytes": largest,
            "source_bytes": sum(f.stat().st_size for f in files), "converted_bytes": written,
            "converted_tensors": child["tensors"], "seconds": round(child["seconds"], 2),
            "peak_rss_bytes": child["peak_rss"], "baseline_rss_bytes": child["baseline_rss"],
            "peak_over_largest_shard": round(child["peak_rss"] / largest, 3),
            "peak_above_baseline_over_largest_shard": round((child["peak_rss"] - child["baseline_rss"]) / largest, 3),
            "goal": "peak_over_largest_shard < 1.5",
        }, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


if __name__ == "__main__":
    main()
