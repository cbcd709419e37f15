"""`--engine ray` against the local runner and Ray Data's own floor on one machine, side by side
in one run, on a private Ray instance bound to 127.0.0.1.

- instant: a folder of 2,000 images and one of 8,000, the `instant` captioner (no decoding),
  batch 64, 2 actors of 1 CPU: the local runner, `run_on_ray`, and Ray Data's identity pipeline
  (the same folder's files listed with `os.scandir`, their rows through an identity actor pool of
  the same size and batch, in blocks of 64 rows: Ray's own floor, as issue 34 states it), and the same
  identity with the driver writing each row as a JSON line and syncing the file (the output the
  engine writes, which the identity alone skips: the fair floor). Every configuration lists its
  folder inside its time; each is the best of `--repeats`, taken in turn. The two sizes give each
  a fixed cost and a per-item cost (goal: the engine within 1.2x of the identity's both; within
  1.5x of the local runner's time). The Ray instance starts before timing (reported apart); a
  first run of each on 128 images pays imports and worker start-up, untimed.
- api: the loopback OpenAI-compatible server (100 ms a reply, at most 4 replies at once): items/s
  with 1, 2, 4 and 8 actors (a quarter CPU each), each captioning its batch one request at a
  time, so throughput should grow with actors until the server's limit of 4. Reported over the
  whole run and between the first and the last record (after the actors started).
- memory: the driver's peak resident memory (VmHWM of its own process, joining the running
  instance) for 2,000 and 20,000 images of about 100 KB read from WebDataset shards of 1,000
  samples: the shards are read on the cluster and only records reach the driver, so the goal is
  the 20,000 run within 1.2x of the 2,000 run (an engine that collects the items on the driver
  grows by the media: 2 GB).
Prints JSON, with the load average before and after.

    python benchmarks/ray_engine.py [--parts instant api memory] [--images 2000] [--repeats 2]
        [--api-items 320] [--shard-images 2000 20000]
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

from _timing import child_script

from anycap_plugin import get_captioner, testing
from anycap_plugin.batch import plan_inputs, run
from anycap_plugin.batch.ray_engine import connect, run_on_ray
from anycap_plugin.testing.server import server_process

PHOTOS = ["astronaut", "chelsea", "coffee"]


# the driver's own peak (VmHWM): ru_maxrss is carried across exec from this larger process
DRIVER = child_script("""
import time
from _timing import peak_rss_kb
from anycap_plugin.batch.ray_engine import connect, run_on_ray
connect(sys.argv[1])  # the running cluster, on 127.0.0.1
t0 = time.perf_counter()
s = run_on_ray("instant", [sys.argv[2]], sys.argv[3], batch_size=64, concurrency=2)
print("BENCH", time.perf_counter() - t0, peak_rss_kb(), s.succeeded, file=sys.stderr)
""")


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


def identity_pipeline(ray, folder: Path, output: Path | None = None) -> int:
    """Ray Data's floor on the same folder: its files listed (`os.scandir`, sorted), their rows
    (input, instruction) through an identity actor pool of the engine's size and batch, in
    blocks of 64 files. With `output`, the driver also writes each row as a JSON line and syncs
    the file at the end, as the engine's journal does with its records: what the identity alone
    leaves out."""
    paths = sorted(e.path for e in os.scandir(folder))
    rows = [{"input": p, "instruction": None} for p in paths]
    ds = ray.data.from_items(rows, override_num_blocks=min(-(-len(rows) // 64), 200))
    seen = 0
    out = open(output, "w") if output is not None else None  # noqa: SIM115
    for b in ds.map_batches(Identity, batch_size=64, batch_format="pyarrow", concurrency=2).iter_batches(
            batch_size=None, batch_format="pyarrow"):
        seen += b.num_rows
        if out is not None:
            out.write("".join(json.dumps(r) + "\n" for r in b.to_pylist()))
    if out is not None:
        out.flush()
        os.fsync(out.fileno())
        out.close()
    return seen


def instant_part(ray, root: Path, images: int, repeats: int) -> dict:
    """The local runner, `run_on_ray` and Ray Data's identity floors on a folder of `images` and
    one of 4x the images, each listing its folder inside its time; each configuration the best of
    `repeats`, taken in turn so that the machine's load hits them alike."""
    folders = {n: image_folder(root / f"images-{n}", n) for n in (128, images, 4 * images)}
    # first runs pay imports and worker start-up: not timed
    run(get_captioner("instant"), plan_inputs([str(folders[128])]).items(), root / "warm-local.jsonl",
        batch_size=64, progress=False)
    run_on_ray("instant", [str(folders[128])], root / "warm-ray.jsonl", batch_size=64, concurrency=2)
    identity_pipeline(ray, folders[128])
    names = ("local", "ray", "ray_data_identity", "ray_data_identity_with_output")
    best: dict[tuple[str, int], float] = {}
    waits: dict[str, float] = {}  # the longest wait for the previous pipeline's CPUs, before each
    for rep in range(repeats):
        for n in (images, 4 * images):
            for name in names:
                out = root / f"{name}-{n}-{rep}.jsonl"
                waits[name] = max(waits.get(name, 0.0), settle(ray))
                t0 = time.perf_counter()
                if name == "local":
                    items = plan_inputs([str(folders[n])]).items()
                    done = run(get_captioner("instant"), items, out, batch_size=64, progress=False).succeeded
                elif name == "ray":
                    done = run_on_ray("instant", [str(folders[n])], out, batch_size=64, concurrency=2).succeeded
                else:
                    done = identity_pipeline(ray, folders[n], out if name.endswith("output") else None)
                elapsed = time.perf_counter() - t0
                assert done == n, (name, done, n)
                best[name, n] = min(best.get((name, n), float("inf")), elapsed)
    extra = 3 * images
    per_item = {k: (best[k, 4 * images] - best[k, images]) / extra for k in names}
    fixed = {k: best[k, images] - per_item[k] * images for k in names}
    return {
        "images": images, "repeats": repeats,
        "local_items_per_s": round(images / best["local", images], 1),
        "ray_items_per_s": round(images / best["ray", images], 1),
        "ray_over_local_time": round(best["ray", images] / best["local", images], 2),
        "goal_ray_over_local_time": 1.5,
        "seconds": {k: {str(n): round(best[k, n], 2) for n in (images, 4 * images)} for k in names},
        "per_item_ms": {k: round(v * 1000, 3) for k, v in per_item.items()},
        "fixed_s": {k: round(v, 2) for k, v in fixed.items()},
        "ray_over_floor": {f: {"fixed": round(fixed["ray"] / fixed[f], 2),
                               "per_item": round(per_item["ray"] / per_item[f], 2)} for f in names[2:]},
        "goal_ray_over_identity": 1.2,
        "untimed_wait_for_free_cpus_s": {k: round(v, 2) for k, v in waits.items()},
    }


def settle(ray, timeout: float = 120.0) -> float:
    """Wait, untimed, until the actors of the previous pipeline have gone and given their CPUs
    back: else a run's actors wait for them and the run is charged for its predecessor's exit."""
    deadline = time.monotonic() + timeout
    total = ray.cluster_resources().get("CPU", 0)
    t0 = time.monotonic()
    while ray.available_resources().get("CPU", 0) < total and time.monotonic() < deadline:
        time.sleep(0.05)
    return time.monotonic() - t0


def image_folder(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        src = testing.sample_image(PHOTOS[i % len(PHOTOS)])
        (folder / f"{i:06d}{src.suffix}").write_bytes(src.read_bytes())
    return folder


def api_part(root: Path, api_items: int) -> dict:
    folder = image_folder(root / "api", api_items)
    with server_process("--delay", "0.1", "--max-concurrency", "4") as url:

        def build():  # actors get the endpoint from the builder: they do not share the driver's env
            return get_captioner("openai:bench", base_url=url, api_key="bench")
        api = {}
        items = sorted(str(p) for p in folder.iterdir())
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
    return {"api_100ms_server_limit_4": api, "api_ideal_items_per_s": {"1_actor": 10.0, "at_server_limit": 40.0}}


PARTS = ("instant", "api", "memory")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=2, help="runs of each instant configuration (the best is kept)")
    p.add_argument("--api-items", type=int, default=320)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    p.add_argument("--shard-images", type=int, nargs="+", default=[2000, 20000])
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="instant: engine against the local runner and Ray Data's identity floors; "
                        "api: actors against a loopback server; memory: the driver's peak")
    args = p.parse_args()
    os.environ["ANYCAP_LOAD_PLUGINS"] = "openai"
    result: dict = {"benchmark": "ray_engine", "cpus": args.cpus, "loadavg_before": _loadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        ray = connect(num_cpus=args.cpus)  # a private instance on 127.0.0.1
        result["ray_cluster_start_s"] = round(time.perf_counter() - t0, 2)
        try:
            ray.data.DataContext.get_current().enable_progress_bars = False
            if "instant" in args.parts:
                result["instant"] = instant_part(ray, root, args.images, args.repeats)
            if "api" in args.parts:
                result.update(api_part(root, args.api_items))
            if "memory" in args.parts:
                result["driver_memory_webdataset"] = driver_memory(ray, root, args.shard_images)
        finally:
            ray.shutdown()
    result["loadavg_after"] = _loadavg()
    print(json.dumps(result, indent=2))


def _loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


if __name__ == "__main__":
    main()
