"""`--engine ray` against the local runner on one machine, side by side in one run.

- 2,000 images, the `instant` captioner: items/s of each engine (Ray's overhead; goal: Ray within
  1.5x of the local runner). The local Ray cluster is started before timing (its start is
  reported apart). To tell a fixed cost from a per-item one, both engines also run 4x the
  images, and Ray Data runs the same pipeline with an identity actor (Ray's own floor).
- The loopback OpenAI-compatible server (100 ms a reply, at most 4 replies at once): items/s
  with 1, 2, 4 and 8 actors (a quarter CPU each), each captioning its batch one request at a
  time, so throughput should grow with actors until the server's limit of 4. Reported over the
  whole run and between the first and the last record (after the actors started).
Prints JSON.

    python benchmarks/ray_engine.py [--images 2000] [--api-items 320]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from anycap_plugin import get_captioner, testing
from anycap_plugin.inputs import expand_inputs
from anycap_plugin.ray_engine import connect, run_on_ray
from anycap_plugin.runner import run
from anycap_plugin.testing_server import server_process

PHOTOS = ["astronaut", "chelsea", "coffee"]


class Identity:
    """An actor that returns its batch: what Ray Data costs with no captioner at all."""

    def __call__(self, batch):
        return batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--api-items", type=int, default=320)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    args = p.parse_args()
    os.environ["ANYCAP_LOAD_PLUGINS"] = "openai"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "images"
        folder.mkdir()
        for i in range(4 * args.images):
            src = testing.sample_image(PHOTOS[i % len(PHOTOS)])
            (folder / f"{i:06d}{src.suffix}").write_bytes(src.read_bytes())
        t0 = time.perf_counter()
        ray = connect(num_cpus=args.cpus)
        ray_start = time.perf_counter() - t0
        ray.data.DataContext.get_current().enable_progress_bars = False
        everything = sorted(str(p) for p in folder.iterdir())
        instant = {}
        warm = list(expand_inputs(everything[:128]))  # first runs pay imports and worker start-up: not timed
        run(get_captioner("instant"), warm, root / "warm-local.jsonl", batch_size=64, progress=False)
        run_on_ray("instant", warm, root / "warm-ray.jsonl", batch_size=64, concurrency=2)
        for n in (args.images, 4 * args.images):
            items = list(expand_inputs(everything[:n]))
            t0 = time.perf_counter()
            local = run(get_captioner("instant"), items, root / f"local-{n}.jsonl", batch_size=64, progress=False)
            local_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            on_ray = run_on_ray("instant", items, root / f"ray-{n}.jsonl", batch_size=64, concurrency=2)
            ray_s = time.perf_counter() - t0
            assert local.succeeded == on_ray.succeeded == n
            t0 = time.perf_counter()
            rows = [{"input": i.input, "instruction": i.instruction} for i in items]
            ds = ray.data.from_items(rows, override_num_blocks=min(-(-n // 64), 200))
            sum(b.num_rows for b in ds.map_batches(Identity, batch_size=64, batch_format="pyarrow", concurrency=2)
                .iter_batches(batch_size=None, batch_format="pyarrow"))
            instant[n] = (local_s, ray_s, time.perf_counter() - t0)
        (l1, r1, f1), (l4, r4, f4) = instant[args.images], instant[4 * args.images]
        extra = 3 * args.images

        with server_process("--delay", "0.1", "--max-concurrency", "4") as url:

            def build():  # actors get the endpoint from the builder: they do not share the driver's env
                return get_captioner("openai:bench", base_url=url, api_key="bench")
            api = {}
            items = [str(folder / f) for f in sorted(os.listdir(folder))[: args.api_items]]
            for actors in (1, 2, 4, 8):
                arrivals = []
                t0 = time.perf_counter()
                s = run_on_ray(build, expand_inputs(items, "Describe it."), root / f"api-{actors}.jsonl",
                               batch_size=4, concurrency=actors, num_cpus=0.25,
                               on_record=lambda _: arrivals.append(time.perf_counter()))
                wall = time.perf_counter() - t0
                steady = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
                api[f"{actors}_actors"] = {"items_per_s": round(s.succeeded / wall, 2),
                                           "items_per_s_after_start": round(steady, 2), "failed": s.failed}
    print(json.dumps({
        "benchmark": "ray_engine", "cpus": args.cpus, "ray_cluster_start_s": round(ray_start, 2),
        "instant": {"images": args.images, "local_items_per_s": round(args.images / l1, 1),
                    "ray_items_per_s": round(args.images / r1, 1), "ray_over_local_time": round(r1 / l1, 2),
                    "goal_ray_over_local_time": 1.5,
                    "ray_data_identity_actor_s": round(f1, 2), "ray_data_identity_over_local_time": round(f1 / l1, 2),
                    f"at_{4 * args.images}": {"local_s": round(l4, 2), "ray_s": round(r4, 2),
                                              "ray_data_identity_actor_s": round(f4, 2)},
                    "per_item_ms": {"local": round((l4 - l1) / extra * 1000, 3), "ray": round((r4 - r1) / extra * 1000, 3),
                                    "ray_data_identity": round((f4 - f1) / extra * 1000, 3)},
                    "fixed_s": {"local": round(l1 - (l4 - l1) / 3, 2), "ray": round(r1 - (r4 - r1) / 3, 2),
                                "ray_data_identity": round(f1 - (f4 - f1) / 3, 2)}},
        "api_100ms_server_limit_4": api,
        "api_ideal_items_per_s": {"1_actor": 10.0, "at_server_limit": 40.0},
    }, indent=2))


if __name__ == "__main__":
    main()
