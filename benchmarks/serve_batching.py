"""`anycap serve` with dynamic batching against the same server with batching off: requests per
second for 64 concurrent requests (real images as data URLs, the openai SDK as the client), tiny
random-weight ACM on CPU, both servers in this process one after the other. Prints JSON.

    python benchmarks/serve_batching.py [--requests 64] [--batch-size 16] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import tempfile
import time
from pathlib import Path

import httpx2
import openai
import torch

from anycap_plugin import testing
from anycap_plugin.acm.remote import remote_prompt
from anycap_plugin.serve import ServeConfig, running
from anycap_plugin.serve.served import ServedModel

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "horse", "motorcycle_left"]


def measure(url: str, contents: list[list[dict]], max_tokens: int) -> tuple[float, list[str]]:
    async def go() -> tuple[float, list[str]]:
        client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0, timeout=600)

        async def one(content: list[dict]) -> str:
            reply = await client.chat.completions.create(model="acm", max_tokens=max_tokens,
                                                         messages=[{"role": "user", "content": content}])
            return reply.choices[0].message.content or ""

        await one(contents[0])  # warm-up: first connection, first forward pass
        t0 = time.perf_counter()
        texts = await asyncio.gather(*(one(c) for c in contents))
        return time.perf_counter() - t0, list(texts)

    return asyncio.run(go())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--window-ms", type=float, default=10.0)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--hidden-size", type=int, default=32, help="language-model width of the tiny ACM")
    args = p.parse_args()
    contents = []
    for i in range(args.requests):
        data = base64.b64encode(testing.sample_image(PHOTOS[i % len(PHOTOS)]).read_bytes()).decode()
        contents.append([{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
                         {"type": "text", "text": remote_prompt(f"Describe image {i}, its objects and colours.",
                                                                "A photo.")}])
    result: dict = {"benchmark": "serve_batching", "requests": args.requests, "concurrency": args.requests,
                    "batch_size": args.batch_size, "window_ms": args.window_ms, "max_tokens": args.max_tokens,
                    "hidden_size": args.hidden_size, "torch_threads": torch.get_num_threads(), "goal_speedup": 2.5}
    with tempfile.TemporaryDirectory() as tmp:
        folder = testing.build_tiny_acm(Path(tmp) / "acm", init_std=0.5, hidden_size=args.hidden_size)
        served = ServedModel(f"acm:{folder}")  # one model, loaded once, behind both servers
        for name, batch in (("batching_off", 1), ("dynamic_batching", args.batch_size)):
            config = ServeConfig(spec=f"acm:{folder}", max_batch=batch, batch_window=args.window_ms / 1000)
            with running(config, served) as url:
                seconds, texts = measure(url, contents, args.max_tokens)
                health = httpx2.get(url.removesuffix("/v1") + "/health").json()
            result[name] = {"seconds": round(seconds, 3), "requests_per_s": round(args.requests / seconds, 2),
                            "model_calls": health["batches"], "answered": sum(1 for t in texts if t)}
            result[name]["_texts"] = texts
    same = sum(a == b for a, b in zip(result["batching_off"].pop("_texts"), result["dynamic_batching"].pop("_texts")))
    result["identical_replies"] = f"{same}/{args.requests}"
    result["speedup"] = round(result["dynamic_batching"]["requests_per_s"] / result["batching_off"]["requests_per_s"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
