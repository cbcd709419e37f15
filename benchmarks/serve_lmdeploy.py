"""`anycap serve --backend lmdeploy` against `--backend transformers`, one GPU, the same random-weight
ACM at the real AnyCap 2B size (`testing.build_acm_2b`): requests/s and generated tokens/s for 64
concurrent image requests (the openai SDK against each server on 127.0.0.1, greedy, the same
requests), and single-stream decode tokens/s against the memory-bandwidth limit. Prints JSON.

    python benchmarks/serve_lmdeploy.py [--requests 64] [--max-tokens 128] [--model FOLDER]

The bandwidth limit of one decode step: every language-model weight but the embedding table is read
once (bf16), plus the sequence's KV cache; the copy bandwidth is measured here, on this GPU. At batch
B the same weights serve B sequences, so the concurrent limit is B times higher until compute binds.

Without a CUDA GPU the script measures the transformers backend alone, on the tiny ACM, and says why
LMDeploy was not measured (its PyTorch engine has no CPU path). Needs LMDeploy's environment
(`pip install 'anycap-plugin[lmdeploy]'`) for the LMDeploy half.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from _serving import ServerProcess, image_requests, measure

from anycap_plugin import testing


def copy_bandwidth(gib: float = 2.0, repeats: int = 20) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting bytes read and written."""
    x = torch.empty(int(gib * 2**30), dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        y.copy_(x)
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1000
    del x, y
    torch.cuda.empty_cache()
    return 2 * gib * 2**30 * repeats / seconds


def decode_bytes(folder: Path, context_tokens: int) -> dict[str, int]:
    """Bytes one decode step of one sequence reads: weights (bf16, embedding table aside) and its KV cache."""
    from transformers import AutoConfig

    from anycap_plugin.acm import ACMForConditionalGeneration

    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        language = ACMForConditionalGeneration(config).language_model
    text = config.text_config
    embed, head = language.get_input_embeddings().weight, language.get_output_embeddings().weight
    # a step looks up one embedding row but reads the whole head (which may be the same tensor)
    weights = sum(p.numel() for p in language.parameters()) - embed.numel() + (head.numel() if head is embed else 0)
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv_per_token = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * 2  # K and V, bf16
    return {"weights": weights * 2, "kv_cache": kv_per_token * context_tokens}


def prompt_tokens(folder: Path, content: list[dict]) -> int:
    """The prompt length ACM sees for one request (image tiles and text)."""
    import base64
    import io

    from PIL import Image

    from anycap_plugin.acm import ACMProcessor
    from anycap_plugin.media import Media
    from anycap_plugin.serve.protocol import read_protocol_text

    processor = ACMProcessor.from_pretrained(folder)
    image = Image.open(io.BytesIO(base64.b64decode(content[0]["image_url"]["url"].partition(",")[2])))
    instruction, caption = read_protocol_text(content[1]["text"])
    return int(processor([Media.from_image(image)], [instruction], [caption])["input_ids"].shape[1])


def single_stream(url: str, content: list[dict], max_tokens: int, repeats: int = 3) -> dict[str, Any]:
    """Decode tokens/s of one request alone: (N-1) tokens over the time N tokens take beyond one token."""
    first = min(measure(url, [content], 1, warm_up=False).seconds for _ in range(repeats))
    runs = [measure(url, [content], max_tokens, warm_up=False) for _ in range(repeats)]
    full = min(runs, key=lambda r: r.seconds)
    tokens = full.completion_tokens
    rate = (tokens - 1) / (full.seconds - first) if tokens > 1 and full.seconds > first else None
    return {"prefill_and_first_token_s": round(first, 4), "seconds": round(full.seconds, 4), "tokens": tokens,
            "decode_tokens_per_s": None if rate is None else round(rate, 1)}


def serve_and_measure(backend: str, folder: Path, contents: list[list[dict]], args: argparse.Namespace) -> dict:
    with ServerProcess(f"acm:{folder}", "--backend", backend, "--batch-size", str(args.batch_size)) as server:
        alone = single_stream(server.url, contents[0], args.max_tokens)
        run = measure(server.url, contents, args.max_tokens)
    return {"single_stream": alone,
            "concurrent": {"seconds": round(run.seconds, 3), "requests_per_s": round(len(contents) / run.seconds, 2),
                           "completion_tokens": run.completion_tokens,
                           "tokens_per_s": round(run.completion_tokens / run.seconds, 1),
                           "answered": sum(1 for t in run.texts if t)},
            "_texts": run.texts}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("torch", "transformers", "lmdeploy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64,
                   help="transformers: requests per model call; lmdeploy: sequences decoded together")
    p.add_argument("--model", type=Path, help="an ACM folder (default: a random-weight one built here)")
    args = p.parse_args()
    gpu = torch.cuda.is_available()
    contents = image_requests(args.requests)
    result: dict[str, Any] = {
        "benchmark": "serve_lmdeploy", "requests": args.requests, "concurrency": args.requests,
        "max_tokens": args.max_tokens, "batch_size": args.batch_size, "goal_speedup": 5.0, "versions": versions(),
        "device": torch.cuda.get_device_name() if gpu else "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            folder = args.model
        elif gpu:
            folder = testing.build_acm_2b(Path(tmp) / "acm-2b", device="cuda")
            torch.cuda.empty_cache()
        else:
            folder = testing.build_tiny_acm(Path(tmp) / "acm", init_std=0.5)
        result["model"] = str(args.model) if args.model else ("random ACM, 2B size" if gpu else "random tiny ACM")
        context = prompt_tokens(folder, contents[0]) + args.max_tokens // 2
        step = decode_bytes(folder, context)
        result["decode_step_bytes"] = {**step, "context_tokens": context}
        if gpu:
            bandwidth = copy_bandwidth()
            per_step = step["weights"] + step["kv_cache"]
            result["copy_bandwidth_gb_s"] = round(bandwidth / 1e9, 1)
            result["single_stream_limit_tokens_per_s"] = round(bandwidth / per_step, 1)
            result["concurrent_limit_tokens_per_s"] = round(
                args.requests * bandwidth / (step["weights"] + args.requests * step["kv_cache"]), 1)
        lmdeploy = gpu and importlib.util.find_spec("lmdeploy") is not None
        backends = ["transformers", "lmdeploy"] if lmdeploy else ["transformers"]
        for backend in backends:
            result[backend] = serve_and_measure(backend, folder, contents, args)
    if not gpu:
        result["lmdeploy"] = "not measured: no CUDA GPU (LMDeploy's PyTorch engine has no CPU path)"
    elif not lmdeploy:
        result["lmdeploy"] = "not measured: LMDeploy is not importable here (pip install 'anycap-plugin[lmdeploy]')"
        alone = result["transformers"]["single_stream"]
        alone["of_bandwidth_limit"] = alone["decode_tokens_per_s"] and round(
            alone["decode_tokens_per_s"] / result["single_stream_limit_tokens_per_s"], 3)
    else:
        for backend in backends:
            alone = result[backend]["single_stream"]
            alone["of_bandwidth_limit"] = alone["decode_tokens_per_s"] and round(
                alone["decode_tokens_per_s"] / result["single_stream_limit_tokens_per_s"], 3)
            result[backend]["concurrent"]["of_bandwidth_limit"] = round(
                result[backend]["concurrent"]["tokens_per_s"] / result["concurrent_limit_tokens_per_s"], 3)
        hf, lm = result["transformers"], result["lmdeploy"]
        same = sum(a.split()[:3] == b.split()[:3] for a, b in zip(hf.pop("_texts"), lm.pop("_texts")))
        result["same_first_three_words"] = f"{same}/{args.requests}"
        for name, part, figure in (("requests_per_s", "concurrent", "requests_per_s"),
                                   ("tokens_per_s", "concurrent", "tokens_per_s"),
                                   ("single_stream", "single_stream", "decode_tokens_per_s")):
            result[f"speedup_{name}"] = lm[part][figure] and hf[part][figure] and round(
                lm[part][figure] / hf[part][figure], 2)
    for backend in backends:
        result[backend].pop("_texts", None)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
