"""`--engine ray` against the local runner on one machine, side by side in one run.

- 2,000 images, the `instant` captioner: items/s of each engine (Ray's overhead; goal: Ray within
  1.5x of the local runner). The local Ray cluster is started before timing (its start is
  reported apart). To tell a fixed cost from a per-item one, both engines also run 4x the
  images, and Ray Data runs the same pipeline with an identity actor (Ray's own floor).
- The loopback OpenAI-compatible server (100 ms a reply, at most 4 replies at once): items/s
  with 1, 2, 4 and 8 actors (a quarter CPU each), each captioning its batch one request at a
  time, so throughput should grow with actors until the server's limit of 4. Reported over the
  whole run and between the first and the last record (after the actors started).
- The driver's peak resident memory (its own process, joining the running cluster) for 2,000
  and 20,000 images of about 100 KB read from WebDataset shards of 1,000 samples: the shards are
  read on the cluster and only records reach the driver, so the goal is the 20,000 run within
  1.2x of the 2,000 run (an engine that collects the items on the driver grows by the media: 2 GB).
Prints JSON.

    python benchmarks/ray_engine.py [--images 2000] [--api-items 320] [--shard-images 2000 20000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from anycap_plugin import get_captioner, testing
from anycap_plugin.batch import expand_inputs
from anycap_plugin.batch.ray_engine import connect, run_on_ray
from anycap_plugin.batch import run
from anycap_plugin.testing.server import server_process

PHOTOS = ["astronaut", "chelsea", "coffee"]


DRIVER = """
import resource, sys, time
from anycap_plugin.batch.ray_engine import connect, run_on_ray
connect(sys.argv[1])  # the running cluster, on 127.0.0.1
t0 = time.perf_counter()
s = run_on_ray("instant", [sys.argv[2]], sys.argv[3], batch_size=64, concurrency=2)
print("BENCH", time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, s.succeeded, file=sys.stderr)
"""


def write_shards(folder: Path, n: int, per_shard: int = 1000) -> tuple[Path, int]:
    """`n` samples of one ~100 KB JPEG (astronaut, quality 95) in shards of `per_shard`."""
    from PIL import Image

    buf = io.BytesIO()
    Image.open(testing.sample_image("astronaut")).convert("RGB").save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    folder.mkdir(parents=True)
    for shard in range(-(-n // per_shard)):
        with tarfile.open(folder / f"{shard:05d}.tar", "w") as tar:
            for i in range(shard * per_shard, min(n, (shard + 1) * per_shard)):
                info = tarfile.TarInfo(f"{i:08d}.jpg")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return folder, len(data)


def driver_memory(ray: object, root: Path, sizes: list[int]) -> dict:
    """Peak RSS of a driver process captioning `n` shard images on the running cluster, per n."""
    address = ray.get_runtime_context().gcs_address  # type: ignore[attr-defined]
    out: dict = {}
    for n in sizes:
        folder, image_bytes = write_shards(root / f"shards-{n}", n)
        proc = subprocess.run([sys.executable, "-c", DRIVER, address, str(folder / "*.tar"), str(root / f"sh-{n}.jsonl")],
                              capture_output=True, text=True, env={**os.environ, "ANYCAP_LOAD_PLUGINS": ""})
        line = next((x for x in proc.stderr.splitlines() if x.startswith("BENCH")), None)
        if line is None:
            raise SystemExit(f"driver run failed: {proc.stderr[-3000:]}")
        _, seconds, rss_kb, done = line.split()
        out[str(n)] = {"images": int(done), "image_kb": round(image_bytes / 1024, 1),
                       "media_mb": round(n * image_bytes / 2**20), "driver_peak_rss_mb": round(int(rss_kb) / 1024, 1),
                       "seconds": round(float(seconds), 2)}
        for p in folder.iterdir():
            p.unlink()
    first, last = out[str(sizes[0])], out[str(sizes[-1])]
    out["rss_ratio"] = round(last["driver_peak_rss_mb"] / first["driver_peak_rss_mb"], 3)
    out["goal_rss_ratio"] = 1.2
    return out


class Identity:
    """An actor that returns its batch: what Ray Data costs with no captioner at all."""

    def __call__(self, batch):
        return batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--api-items", type=int, default=320)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    p.add_argument("--shard-images", type=int, nargs="+", default=[2000, 20000])
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
        run_on_ray("instant", everything[:128], root / "warm-ray.jsonl", batch_size=64, concurrency=2)
        for n in (args.images, 4 * args.images):
            items = list(expand_inputs(everything[:n]))
            t0 = time.perf_counter()
            local = run(get_captioner("instant"), items, root / f"local-{n}.jsonl", batch_size=64, progress=False)
            local_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            on_ray = run_on_ray("instant", everything[:n], root / f"ray-{n}.jsonl", batch_size=64, concurrency=2)
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
                s = run_on_ray(build, items, root / f"api-{actors}.jsonl", instruction="Describe it.",
                               batch_size=4, concurrency=actors, num_cpus=0.25,
                               on_record=lambda _: arrivals.append(time.perf_counter()))
                wall = time.perf_counter() - t0
                steady = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
                api[f"{actors}_actors"] = {"items_per_s": round(s.succeeded / wall, 2),
                                           "items_per_s_after_start": round(steady, 2), "failed": s.failed}
        memory = driver_memory(ray, root, args.shard_images)
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
        "driver_memory_webdataset": memory,
    }, indent=2))


if __name__ == "__main__":
    main()
