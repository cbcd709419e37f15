"""AnyCapEval judging throughput: 1,000 content items through a loopback judge answering after
100 ms at concurrency 32 (wall time against the ideal 1000 x 0.1 / 32 s), the cached re-run,
for both judge protocols (anycap, and release with the release's prompt files and reply format),
and the offline judge's items per second on CPU. Prints JSON.

    python benchmarks/eval_judging.py [--items 1000] [--concurrency 32] [--delay 0.1] [--offline-items 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from anycap_plugin.eval import JudgeCache, OpenAIJudge, evaluate, load_references, make_protocol
from anycap_plugin.testing.server import server_process

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "anycapeval"


def content_items(n: int) -> list:
    """n content items cycled from the real references, each with its own id."""
    base = [i for i in load_references(sorted(SHARED.glob("*/*content*.jsonl"))) if i.key_points]
    return [dataclasses.replace(base[k % len(base)], id=f"bench-{k}") for k in range(n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--delay", type=float, default=0.1)
    p.add_argument("--offline-items", type=int, default=200)
    args = p.parse_args()
    items = content_items(args.items)
    captions = {i.key: i.reference for i in items}
    runs = {}
    with server_process("--delay", str(args.delay), "--responder", "judge") as base_url:
        for name, prompts in (("anycap", None), ("release", SHARED / "release_prompts")):
            protocol = make_protocol(name, prompts)
            with tempfile.TemporaryDirectory() as tmp:
                cache = JudgeCache(Path(tmp) / "cache.sqlite")
                judge = OpenAIJudge("bench-judge", protocol=protocol, base_url=base_url, api_key="k",
                                    concurrency=args.concurrency)
                # one-time costs (importing the SDK, ~0.4 s; the first connections) stay out of the timing
                evaluate(items[: args.concurrency], captions, judge, concurrency=args.concurrency)
                t0 = time.perf_counter()
                first = evaluate(items, captions, judge, cache=cache, concurrency=args.concurrency)
                cold = time.perf_counter() - t0
                t0 = time.perf_counter()
                again = evaluate(items, captions, judge, cache=cache, concurrency=args.concurrency)
                warm = time.perf_counter() - t0
                cache.close()
            ideal = args.items * args.delay / args.concurrency
            runs[name] = {"judged": first["meta"]["judged"], "failed": first["meta"]["failed"],
                          "wall_s": round(cold, 3), "ideal_s": round(ideal, 3), "ratio_to_ideal": round(cold / ideal, 3),
                          "cached_rerun_s": round(warm, 3), "cached_rerun_hits": again["meta"]["cache"]["hits"]}
    from anycap_plugin.eval import OfflineJudge

    offline = OfflineJudge()
    sample = items[: args.offline_items]
    t0 = time.perf_counter()
    evaluate(sample, {i.key: i.reference for i in sample}, offline, concurrency=1)
    offline_s = time.perf_counter() - t0
    print(json.dumps({
        "benchmark": "eval_judging", "items": args.items, "concurrency": args.concurrency, "judge_delay_s": args.delay,
        "protocols": runs, "goal_ratio": 1.2, "goal_cached_s": 2.0,
        "offline_items": len(sample), "offline_items_per_s": round(len(sample) / offline_s, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
