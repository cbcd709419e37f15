"""API captioner throughput through the batch runner against a loopback server.

500 requests at concurrency 32, the server answering after 200 ms: wall time against the
ideal 500 x 0.2 / 32 s, in one run: clean; with 5% of replies an injected 429 or 500 that
carries Retry-After (as hosted APIs send); and with 5% faults that carry none, so every retry
waits the client's own exponential backoff (the OpenAI SDK's: 0.5 s doubling, 0-25% jitter).
Prints JSON.

    python benchmarks/api_throughput.py [--requests 500] [--concurrency 32] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

from anycap_plugin import get_captioner
from anycap_plugin.batch import WorkItem, run
from anycap_plugin.testing.server import server_process


def one_run(n: int, concurrency: int, delay: float, fault_rate: float, retry_after: str, image: Path,
            out: Path) -> dict:
    """The server runs in its own process, as a real API would: it must not share our GIL."""
    with server_process("--delay", str(delay), "--fault-rate", str(fault_rate), "--fault-retry-after", retry_after,
                        "--seed", "7") as base_url:
        captioner = get_captioner("openai:bench", base_url=base_url, api_key="bench-key",
                                  concurrency=concurrency)
        items = [WorkItem(str(image), f"caption {i}") for i in range(n)]
        t0 = time.perf_counter()
        summary = run(captioner, items, out, concurrency=concurrency, progress=False)
        wall = time.perf_counter() - t0
        with urllib.request.urlopen(base_url + "/_stats") as r:
            stats = json.load(r)
    ideal = n * delay / concurrency
    return {"fault_rate": fault_rate, "retry_after": retry_after, "captions": summary.succeeded, "failed": summary.failed,
            "injected": stats["injected"], "http_requests": stats["requests"],
            "wall_s": round(wall, 3), "ideal_s": round(ideal, 3), "ratio_to_ideal": round(wall / ideal, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--delay", type=float, default=0.2)
    args = p.parse_args()
    os.environ.setdefault("ANYCAP_LOAD_PLUGINS", "openai")
    logging.getLogger("anycap_openai").setLevel(logging.ERROR)  # retries are counted, not logged
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "img.png"
        Image.new("RGB", (64, 48), (10, 120, 200)).save(image)
        runs = {name: one_run(args.requests, args.concurrency, args.delay, rate, retry_after, image,
                              Path(tmp) / f"{name}.jsonl")
                for name, rate, retry_after in (("clean", 0.0, "none"), ("with_5pct_faults", 0.05, "0.05"),
                                                ("with_5pct_faults_no_retry_after", 0.05, "none"))}
    print(json.dumps({"benchmark": "api_throughput", "requests": args.requests, "concurrency": args.concurrency,
                      "server_delay_s": args.delay, "goal_ratio": 1.15, **runs}, indent=2))


if __name__ == "__main__":
    main()
