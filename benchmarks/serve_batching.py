"""`anycap serve` with dynamic batching against the same server with batching off: requests per
second for 64 concurrent requests (real images as data URLs, the openai SDK as the client), tiny
random-weight ACM on CPU, both servers in this process one after the other, the fastest of
--repeats runs each. Prints JSON.

    python benchmarks/serve_batching.py [--requests 64] [--batch-size 32] [--max-tokens 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import httpx2
import torch
from _serving import image_requests, measure

from anycap_plugin import testing
from anycap_plugin.serve import ServeConfig, running
from anycap_plugin.serve.served import ServedModel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--window-ms", type=float, default=10.0)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--hidden-size", type=int, default=32, help="language-model width of the tiny ACM")
    p.add_argument("--repeats", type=int, default=3, help="runs per mode; the fastest counts (this VM is noisy)")
    args = p.parse_args()
    contents = image_requests(args.requests)
    result: dict = {"benchmark": "serve_batching", "requests": args.requests, "concurrency": args.requests,
                    "batch_size": args.batch_size, "window_ms": args.window_ms, "max_tokens": args.max_tokens,
                    "hidden_size": args.hidden_size, "torch_threads": torch.get_num_threads(), "goal_speedup": 2.5}
    with tempfile.TemporaryDirectory() as tmp:
        folder = testing.build_tiny_acm(Path(tmp) / "acm", init_std=0.5, hidden_size=args.hidden_size)
        served = ServedModel(f"acm:{folder}")  # one model, loaded once, behind both servers
        for name, batch in (("batching_off", 1), ("dynamic_batching", args.batch_size)):
            config = ServeConfig(spec=f"acm:{folder}", max_batch=batch, batch_window=args.window_ms / 1000)
            with running(config, served) as url:
                runs = [measure(url, contents, args.max_tokens) for _ in range(args.repeats)]
                health = httpx2.get(url.removesuffix("/v1") + "/health").json()
            best = min(runs, key=lambda r: r.seconds)
            seconds, texts = best.seconds, best.texts
            result[name] = {"seconds": round(seconds, 3), "requests_per_s": round(args.requests / seconds, 2),
                            "all_seconds": [round(r.seconds, 3) for r in runs],
                            "model_calls_per_run": round((health["batches"] - args.repeats) / args.repeats, 1),
                            "answered": sum(1 for t in texts if t)}
            result[name]["_texts"] = texts
    same = sum(a == b for a, b in zip(result["batching_off"].pop("_texts"), result["dynamic_batching"].pop("_texts")))
    result["identical_replies"] = f"{same}/{args.requests}"
    result["speedup"] = round(result["dynamic_batching"]["requests_per_s"] / result["batching_off"]["requests_per_s"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
