"""Local models: captions per second on 32 real images, batched against the per-item loop.

The AnyCap release scripts caption one item per `generate` call; our adapters send
`--batch-size` items per call. Same tiny random-weight model, same images, same run; the
outputs of both paths are compared too. Prints JSON.

    python benchmarks/local_batching.py [--images 32] [--batch-size 8] [--max-new-tokens 16]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from anycap_plugin import get_captioner, testing

SKIMAGE_PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "motorcycle_left",
                  "motorcycle_right", "camera", "coins", "moon", "page", "text", "horse", "cell", "brick",
                  "grass", "gravel", "logo", "color", "ihc", "microaneurysms", "clock_motion", "phantom"]


def measure(spec: str, images: list[Path], batch_size: int, max_new_tokens: int) -> dict:
    cap = get_captioner(spec)
    instructions = [f"Describe image {i} briefly." for i in range(len(images))]
    cap.caption_batch(images[:batch_size], instructions[:batch_size], max_new_tokens=2)  # warm-up
    t0 = time.perf_counter()
    loop = [cap.caption(m, i, max_new_tokens=max_new_tokens) for m, i in zip(images, instructions)]
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched = []
    for s in range(0, len(images), batch_size):
        batched += cap.caption_batch(images[s:s + batch_size], instructions[s:s + batch_size],
                                     max_new_tokens=max_new_tokens)
    t_batch = time.perf_counter() - t0
    same = sum(a.text == b.text for a, b in zip(loop, batched))
    return {"per_item_loop_captions_per_s": round(len(images) / t_loop, 2),
            "batched_captions_per_s": round(len(images) / t_batch, 2),
            "speedup": round(t_loop / t_batch, 2), "identical_outputs": f"{same}/{len(images)}"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=16)
    args = p.parse_args()
    os.environ["ANYCAP_LOAD_PLUGINS"] = "anycap-qwen2-5-vl,anycap-internvl"
    images = [testing.sample_image(SKIMAGE_PHOTOS[i % len(SKIMAGE_PHOTOS)]) for i in range(args.images)]
    result = {"benchmark": "local_batching", "images": args.images, "batch_size": args.batch_size,
              "max_new_tokens": args.max_new_tokens, "device": "cuda" if torch.cuda.is_available() else "cpu",
              "torch_threads": torch.get_num_threads(), "goal_speedup": 3.0}
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in (("qwen2.5-vl", testing.build_tiny_qwen2_5_vl), ("internvl", testing.build_tiny_internvl)):
            folder = build(Path(tmp) / name, init_std=0.5)
            result[name] = measure(f"{name}:{folder}", images, args.batch_size, args.max_new_tokens)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
