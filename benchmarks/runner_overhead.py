"""The batch runner's own overhead: `anycap caption` with a captioner that answers at once.

Prints JSON: items/s and per-item overhead for 10,000 items (process start subtracted),
peak RSS at 1,000 and 10,000 items (flat means the runner keeps no per-item results), and
the time a resumed run needs to skip 10,000 finished items.

    python benchmarks/runner_overhead.py [--items 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import child_script
from PIL import Image

# the peak is the child's own (VmHWM): ru_maxrss is carried across exec from the parent
CHILD = child_script("""
import time
from _timing import peak_rss_kb
from anycap_plugin.cli import main
t0 = time.perf_counter()
try:
    main(sys.argv[1:])
finally:
    print("BENCH", time.perf_counter() - t0, peak_rss_kb(), file=sys.stderr)
""")


def make_inputs(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tiny = folder / "seed.png"
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tiny)
    data = tiny.read_bytes()
    tiny.unlink()
    for i in range(n):
        (folder / f"img_{i:06d}.png").write_bytes(data)
    return folder


def caption_run(inputs: Path, output: Path) -> dict[str, float]:
    """One `anycap caption` process; returns wall time, time inside main, and peak RSS."""
    cmd = [sys.executable, "-c", CHILD, "caption", str(inputs), "--model", "instant",
           "--output", str(output), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "ANYCAP_LOAD_PLUGINS": ""})
    wall = time.perf_counter() - t0
    line = next(x for x in proc.stderr.splitlines() if x.startswith("BENCH"))
    _, inside, rss_kb = line.split()
    if proc.returncode != 0:
        raise SystemExit(f"run failed: {proc.stderr}")
    return {"wall_s": wall, "main_s": float(inside), "peak_rss_mb": int(rss_kb) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    n, small = args.items, max(args.items // 10, 1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        empty = make_inputs(root / "one", 1)
        few = make_inputs(root / "few", small)
        many = make_inputs(root / "many", n)
        startup = caption_run(empty, root / "one.jsonl")
        run_small = caption_run(few, root / "few.jsonl")
        run_full = caption_run(many, root / "many.jsonl")
        resumed = caption_run(many, root / "many.jsonl")
        lines = sum(1 for _ in open(root / "many.jsonl"))
    per_item_ms = (run_full["main_s"] - startup["main_s"]) / n * 1000
    result = {
        "benchmark": "runner_overhead",
        "items": n,
        "output_lines": lines,
        "process_start_s": round(startup["wall_s"], 3),
        "wall_s": round(run_full["wall_s"], 3),
        "items_per_s": round(n / (run_full["main_s"] - startup["main_s"]), 1),
        "overhead_ms_per_item": round(per_item_ms, 4),
        "goal_overhead_ms_per_item": 1.0,
        "meets_goal": per_item_ms < 1.0,
        "peak_rss_mb": {str(small): round(run_small["peak_rss_mb"], 1), str(n): round(run_full["peak_rss_mb"], 1),
                        "1 item": round(startup["peak_rss_mb"], 1)},
        "resume_skip_all_s": round(resumed["main_s"], 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
