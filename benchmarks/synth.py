"""`anycap synth` throughput against a loopback OpenAI-compatible server in its own process.

Real images x the 10 image control types; the writer and the degrader each answer after 100 ms;
32 calls in flight. Each (image, type) pair is a writer call, then a degrader call, and gives two
records (degraded and correct; no weaker captioner, whose calls are its own adapter's). The
ideal: every call back to back at the concurrency limit. Goal: within 1.2x of it. Prints JSON.

    python benchmarks/synth.py [--images 64] [--delay 0.1] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from anycap_plugin.call_engine import CallEngine, Endpoint, Role
from anycap_plugin.batch import expand_inputs
from anycap_plugin.testing.samples import sample_image
from anycap_plugin.synth import PromptSet, SynthConfig, Synthesizer
from anycap_plugin.testing.server import server_process

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "horse", "motorcycle_left"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--delay", type=float, default=0.1)
    p.add_argument("--concurrency", type=int, default=32)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(args.images + 1):
            (root / ("warm.png" if i == args.images else f"{i:04d}.png")).write_bytes(
                sample_image(PHOTOS[i % len(PHOTOS)]).read_bytes())
        with server_process("--delay", str(args.delay), "--responder", "synth") as url:
            engine = CallEngine({"default": Endpoint(base_url=url, concurrency=args.concurrency)},
                                {"writer": Role("bench", temperature=0.7), "degrader": Role("bench", temperature=0.7)},
                                api_keys={"default": "bench"})
            synthesizer = Synthesizer(engine, PromptSet(), None, SynthConfig())
            synthesizer.run(expand_inputs([str(root / "warm.png")]), root / "warm.jsonl")  # connections, imports
            engine.reset_usage()
            images = sorted(str(p) for p in root.glob("0*.png"))
            t0 = time.perf_counter()
            summary = synthesizer.run(expand_inputs(images), root / "acd.jsonl")
            wall = time.perf_counter() - t0
            usage = engine.usage_report()
            engine.close()
    calls = sum(u["calls"] for u in usage.values())
    ideal = max(calls * args.delay / args.concurrency, 2 * args.delay)
    print(json.dumps({
        "benchmark": "synth", "images": args.images, "pairs": summary.written, "records": summary.records,
        "dropped": summary.dropped, "failed": summary.failed, "delay_s": args.delay, "concurrency": args.concurrency,
        "calls": calls, "wall_s": round(wall, 2), "records_per_s": round(summary.records / wall, 1),
        "ideal_records_per_s": round(summary.records / ideal, 1), "ratio_to_ideal": round(wall / ideal, 3),
        "goal_ratio": 1.2,
    }, indent=2))


if __name__ == "__main__":
    main()
