"""`--engine ray` against the local runner on one machine, side by side in one run.

- 2,000 images, the `instant` captioner: items/s of each engine (Ray's overhead; goal: Ray within
  1.5x of the local runner). The local Ray cluster is started before timing (its start is
  reported apart).
- The loopback OpenAI-compatible server (100 ms a reply, at most 4 replies at once): items/s
  with 1, 2, 4 and 8 actors (a quarter CPU each), each captioning its batch one request at a
  time, so throughput should grow with actors until the server's limit of 4.
Prints JSON.

    python benchmarks/ray_engine.py [--images 2000] [--api-items 160]
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

from anycap_plugin import get_captioner, testing
from anycap_plugin.inputs import expand_inputs
from anycap_plugin.ray_engine import connect, run_on_ray
from anycap_plugin.runner import run

PHOTOS = ["astronaut", "chelsea", "coffee"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--api-items", type=int, default=160)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    args = p.parse_args()
    os.environ["ANYCAP_LOAD_PLUGINS"] = "openai"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "images"
        folder.mkdir()
        for i in range(args.images):
            src = testing.sample_image(PHOTOS[i % len(PHOTOS)])
            (folder / f"{i:06d}{src.suffix}").write_bytes(src.read_bytes())
        t0 = time.perf_counter()
        connect(num_cpus=args.cpus)
        ray_start = time.perf_counter() - t0

        t0 = time.perf_counter()
        local = run(get_captioner("instant"), expand_inputs([str(folder)]), root / "local.jsonl", batch_size=64,
                    progress=False)
        local_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        on_ray = run_on_ray("instant", expand_inputs([str(folder)]), root / "ray.jsonl", batch_size=64, concurrency=2)
        ray_s = time.perf_counter() - t0
        assert local.succeeded == on_ray.succeeded == args.images

        server = subprocess.Popen([sys.executable, "-m", "anycap_plugin.testing_server", "--delay", "0.1",
                                   "--max-concurrency", "4"], stdout=subprocess.PIPE, text=True)
        try:
            url = server.stdout.readline().strip()

            def build():  # actors get the endpoint from the builder: they do not share the driver's env
                return get_captioner("openai:bench", base_url=url, api_key="bench")
            api = {}
            items = [str(folder / f) for f in sorted(os.listdir(folder))[: args.api_items]]
            for actors in (1, 2, 4, 8):
                t0 = time.perf_counter()
                s = run_on_ray(build, expand_inputs(items, "Describe it."), root / f"api-{actors}.jsonl",
                               batch_size=4, concurrency=actors, num_cpus=0.25)
                wall = time.perf_counter() - t0
                api[f"{actors}_actors"] = {"items_per_s": round(s.succeeded / wall, 2), "failed": s.failed}
        finally:
            server.terminate()
            server.wait()
    print(json.dumps({
        "benchmark": "ray_engine", "cpus": args.cpus, "ray_cluster_start_s": round(ray_start, 2),
        "instant": {"images": args.images, "local_items_per_s": round(args.images / local_s, 1),
                    "ray_items_per_s": round(args.images / ray_s, 1), "ray_over_local_time": round(ray_s / local_s, 2),
                    "goal_ray_over_local_time": 1.5},
        "api_100ms_server_limit_4": api,
        "api_ideal_items_per_s": {"1_actor": 10.0, "at_server_limit": 40.0},
    }, indent=2))


if __name__ == "__main__":
    main()
