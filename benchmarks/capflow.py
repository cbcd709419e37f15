"""CapFlow through the batch runner against a loopback OpenAI-compatible server in its own process.

200 real images; every call (router, 4 agents, summary, judge) answered after 100 ms; endpoint
concurrency 16. The ideal: every call of every item back to back at the concurrency limit
(200 x 7 calls x 0.1 s / 16), and never under one item's critical path (router + slowest agent +
summary + judge). Goal: wall time within 1.25x of it. Prints JSON with calls and tokens per item
and per role.

    python benchmarks/capflow.py [--images 200] [--delay 0.1] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from anycap_plugin import get_captioner
from anycap_plugin.batch import WorkItem, run
from anycap_plugin.testing.samples import sample_image
from anycap_plugin.testing.server import server_process

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "horse", "motorcycle_left"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--delay", type=float, default=0.1)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()
    os.environ["ANYCAP_LOAD_PLUGINS"] = "capflow"
    import anycap_capflow

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # the default workflow, with a fourth agent (tools) for the natural domain the loopback router picks
        workflow = (Path(anycap_capflow.__file__).parent / "default_workflow.yaml").read_text()
        marker = "      reasoning: Infer the plausible context"
        workflow = workflow.replace(marker, "      tools: Transcribe any visible text exactly.\n" + marker, 1)
        items = []
        for i in range(args.images):
            path = root / f"{i:04d}.png"
            path.write_bytes(sample_image(PHOTOS[i % len(PHOTOS)]).read_bytes())
            items.append(WorkItem(str(path), "Describe it."))
        with server_process("--delay", str(args.delay), "--responder", "anycap_capflow.loopback:respond") as url:
            (root / "wf.yaml").write_text(workflow.replace("model: null", "model: bench-model"))
            captioner = get_captioner(f"capflow:{root / 'wf.yaml'}", base_url=url, api_key="bench",
                                      concurrency=args.concurrency, cache=False)
            warm = run(captioner, items[:2], root / "warm.jsonl", progress=False)  # connections, first encodes
            assert warm.succeeded == 2
            captioner.flow.engine.reset_usage()
            t0 = time.perf_counter()
            summary = run(captioner, items, root / "caps.jsonl", concurrency=2 * args.concurrency, progress=False)
            wall = time.perf_counter() - t0
    usage = captioner.flow.engine.usage_report()
    calls = sum(u["calls"] for u in usage.values())
    per_item = calls / max(summary.succeeded, 1)
    critical_path = 4 * args.delay
    ideal = max(args.images * per_item * args.delay / args.concurrency, critical_path)
    print(json.dumps({
        "benchmark": "capflow", "images": args.images, "delay_s": args.delay, "concurrency": args.concurrency,
        "agents": 4, "captions": summary.succeeded, "failed": summary.failed, "wall_s": round(wall, 2),
        "ideal_s": round(ideal, 2), "ratio_to_ideal": round(wall / ideal, 3), "goal_ratio": 1.25,
        "items_per_s": round(summary.succeeded / wall, 1), "calls_per_item": round(per_item, 2),
        "tokens_per_item_by_role": {r: {"prompt": round(u["prompt_tokens"] / args.images),
                                        "completion": round(u["completion_tokens"] / args.images),
                                        "calls": round(u["calls"] / args.images, 2)} for r, u in usage.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
