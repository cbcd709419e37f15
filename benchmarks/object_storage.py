"""Reading from object storage against local disk, side by side in one run, on moto's S3 server
on loopback (a process of its own, as a real endpoint never shares the reader's interpreter lock)
with the real client (s3fs):

- items/s reading WebDataset shards (about 100 MB each) and a Parquet table (row groups of about
  64 MB) from S3 against the same files on local disk (goal: at least 0.5x), through the batch
  readers (`plan_inputs(...).items()`, every item's bytes touched), with the bytes that crossed
  loopback (psutil's counters for `lo`: requests and replies) against the bytes stored, and the
  client's own rate fetching one whole object in a single GET (the ceiling on this endpoint).
  moto answers a range request by copying the whole object first, so every range read costs a
  copy of the object in memory on the server side: a real S3 endpoint does not;
- the driver's peak resident memory reading 2,000 against 20,000 items (about 10 KB each) from S3
  shards through `anycap caption`'s local engine, each run in a process of its own (goal: within
  1.2x).

- one node against two of a `ray.cluster_utils` cluster on 127.0.0.1, each node 2 CPUs running 2
  actors of 1 CPU, on items from S3, with a captioner that sleeps 50 ms per item (the GIL
  released, as a model call releases it) (goal: at least 1.7x). Each configuration runs N and 3N
  items; the marginal rate, 2N items over the difference of the two wall times, leaves out what
  every run pays once (actors starting, the model loading, the last block draining). Records
  reach the driver a block at a time, so timing first to last record would measure bursts.

Prints JSON.

    python benchmarks/object_storage.py [--shard-mb 100] [--shards 2] [--rowgroup-mb 64] [--rowgroups 2]
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

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _timing import child_script

# The peak is VmHWM, this process's own high-water mark (`_timing.peak_rss_kb`): Linux carries
# ru_maxrss across exec, so getrusage would report the parent's size at the fork when it is larger.
DRIVER = child_script("""
from _timing import peak_rss_kb
from anycap_plugin import get_captioner
from anycap_plugin.batch import plan_inputs, run
s = run(get_captioner("instant"), plan_inputs([sys.argv[1]]).items(), sys.argv[2], batch_size=64, progress=False)
assert s.failed == 0, s.errors
print("BENCH", s.succeeded, peak_rss_kb(), file=sys.stderr)
""")


def payloads(size: int, count: int) -> list[bytes]:
    """`count` distinct JPEG-sized blobs of about `size` bytes (a real JPEG, padded in a comment:
    the readers sniff the bytes, and the `instant` captioner never decodes them)."""
    from anycap_plugin import testing

    head = testing.sample_image("coffee").read_bytes()[:2000]
    return [head + os.urandom(max(0, size - len(head))) for _ in range(count)]


def write_shard(path: Path, blobs: list[bytes], start: int) -> None:
    with tarfile.open(path, "w") as tar:
        for i, data in enumerate(blobs):
            info = tarfile.TarInfo(f"{start + i:08d}.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def loopback_bytes() -> int:
    counters = psutil.net_io_counters(pernic=True).get("lo")
    return 0 if counters is None else counters.bytes_recv


def read_rate(location: str) -> dict:
    from anycap_plugin.batch import plan_inputs

    before = loopback_bytes()
    t0 = time.perf_counter()
    n = size = 0
    for item in plan_inputs([location]).items():
        assert item.problem is None, item.problem
        n += 1
        size += len(item.data or b"")
    seconds = time.perf_counter() - t0
    return {"items": n, "seconds": round(seconds, 3), "items_per_s": round(n / seconds, 1),
            "mb_per_s": round(size / 1e6 / seconds, 1), "loopback_mb": round((loopback_bytes() - before) / 1e6, 1),
            "item_mb": round(size / 1e6, 1)}


def one_get_rate(url: str) -> float:
    """MB/s of the client fetching one whole object in a single GET: what s3fs itself reaches
    against this endpoint, the ceiling for any reader on it."""
    import fsspec

    fs = fsspec.filesystem("s3")
    t0 = time.perf_counter()
    size = len(fs.cat_file(url))
    return round(size / 1e6 / (time.perf_counter() - t0), 1)


def driver_rss(url: str, out: Path, env: dict) -> tuple[int, int]:
    done = subprocess.run([sys.executable, "-c", DRIVER, url, str(out)], env=env, capture_output=True, text=True,
                          timeout=1800)
    line = next(x for x in done.stderr.splitlines() if x.startswith("BENCH"))
    _, n, rss = line.split()
    return int(n), int(rss)


class Sleepy:
    """A captioner that takes 50 ms per item, releasing the GIL (built on each actor)."""

    def __call__(self):  # a zero-argument builder, as `run_on_ray` takes one
        from anycap_plugin.offline_captioners import InstantCaptioner

        class Sleeping(InstantCaptioner):
            def _caption(self, media, instruction, options):
                time.sleep(0.05)
                return super()._caption(media, instruction, options)

        return Sleeping()


def nodes(shards: list[str], small: int, root: Path) -> dict:
    """Marginal items/s on one node, then on two, of one cluster: 2 actors of 1 CPU per node; the
    first `small` shards against all of them."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray
    from ray.cluster_utils import Cluster

    from anycap_plugin.batch import plan_inputs
    from anycap_plugin.batch.ray_engine import connect, run_on_ray

    if __name__ != "__main__":  # imported: the workers cannot import this script, so ship Sleepy by value
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = Cluster(initialize_head=True, head_node_args={"node_ip_address": "127.0.0.1", "num_cpus": 2,
                                                           "include_dashboard": False})
    try:
        connect(cluster.address)
        ray.data.DataContext.get_current().enable_progress_bars = False
        out: dict = {"captioner_seconds_per_item": 0.05}
        for n_nodes in (1, 2):
            if n_nodes == 2:
                cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1")
                cluster.wait_for_nodes(timeout=60)
            walls = {}
            for label, chosen in (("short", shards[:small]), ("long", shards)):
                t0 = time.perf_counter()
                done = run_on_ray(Sleepy(), plan_inputs(chosen), root / f"nodes-{n_nodes}-{label}.jsonl",
                                  batch_size=4, concurrency=2 * n_nodes, num_cpus=1)
                walls[label] = (done.succeeded, time.perf_counter() - t0)
            (n_short, t_short), (n_long, t_long) = walls["short"], walls["long"]
            out[f"{n_nodes}_node"] = {"actors": 2 * n_nodes, "items": [n_short, n_long],
                                      "seconds": [round(t_short, 2), round(t_long, 2)],
                                      "items_per_s_whole_run": round(n_long / t_long, 1),
                                      "items_per_s_marginal": round((n_long - n_short) / (t_long - t_short), 1)}
        one, two = out["1_node"], out["2_node"]
        out["two_over_one_marginal"] = round(two["items_per_s_marginal"] / one["items_per_s_marginal"], 3)
        out["two_over_one_whole_run"] = round(two["items_per_s_whole_run"] / one["items_per_s_whole_run"], 3)
        out["goal"] = 1.7
        out["ideal_items_per_s"] = {"1_node": 40.0, "2_node": 80.0}
        return out
    finally:
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shard-mb", type=float, default=100)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--item-kb", type=float, default=100)
    p.add_argument("--rowgroup-mb", type=float, default=64)
    p.add_argument("--rowgroups", type=int, default=2)
    p.add_argument("--rss-items", type=int, nargs=2, default=[2000, 20000])
    p.add_argument("--cluster-items", type=int, default=400, help="N: runs of N and 3N items")
    args = p.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq
    import s3_server

    server = s3_server.start(own_process=True)
    os.environ.update(server.env)
    bucket = server.bucket("bench")
    result: dict = {"benchmark": "object_storage", "endpoint": "moto's server on 127.0.0.1, in a process of its own"}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            item = int(args.item_kb * 1000)
            per_shard = max(1, int(args.shard_mb * 1e6 // item))
            blobs = payloads(item, per_shard)
            (root / "shards").mkdir()
            for s in range(args.shards):
                write_shard(root / "shards" / f"s{s:03d}.tar", blobs, s * per_shard)
                server.upload(root / "shards" / f"s{s:03d}.tar", f"{bucket}/shards/s{s:03d}.tar")
            per_group = max(1, int(args.rowgroup_mb * 1e6 // item))
            rows = [blobs[i % len(blobs)] for i in range(per_group * args.rowgroups)]
            pq.write_table(pa.table({"id": [str(i) for i in range(len(rows))], "image": rows}),
                           root / "table.parquet", row_group_size=per_group)
            server.upload(root / "table.parquet", f"{bucket}/table.parquet")

            for name, local, remote in (("webdataset", str(root / "shards" / "*.tar"), f"{bucket}/shards/*.tar"),
                                        ("parquet", str(root / "table.parquet"), f"{bucket}/table.parquet")):
                on_disk, on_s3 = read_rate(local), read_rate(remote)
                stored = sum(f.stat().st_size for f in ([root / "table.parquet"] if name == "parquet"
                                                        else (root / "shards").iterdir()))
                first = f"{bucket}/shards/s000.tar" if name == "webdataset" else f"{bucket}/table.parquet"
                result[name] = {"local": on_disk, "s3": on_s3, "stored_mb": round(stored / 1e6, 1),
                                "client_one_get_mb_per_s": one_get_rate(first),
                                "s3_over_local": round(on_s3["items_per_s"] / on_disk["items_per_s"], 3),
                                "loopback_over_stored": round(on_s3["loopback_mb"] * 1e6 / stored, 3)}

            env = {**os.environ, "ANYCAP_LOAD_PLUGINS": ""}
            small = payloads(10_000, 64)
            rss = {}
            for n in args.rss_items:
                prefix = f"{bucket}/rss{n}"
                for s in range(0, n, 1000):
                    path = root / f"rss{n}-{s}.tar"
                    write_shard(path, [small[(s + i) % len(small)] for i in range(min(1000, n - s))], s)
                    server.upload(path, f"{prefix}/{path.name}")
                    path.unlink()
                done, peak_kb = driver_rss(f"{prefix}/*.tar", root / f"rss{n}.jsonl", env)
                assert done == n
                rss[str(n)] = {"items": n, "peak_rss_mb": round(peak_kb / 1024, 1)}
            small_n, large_n = (str(n) for n in args.rss_items)
            result["driver_rss"] = {**rss, "ratio": round(rss[large_n]["peak_rss_mb"] / rss[small_n]["peak_rss_mb"], 3),
                                    "goal_ratio": 1.2}
            shards = []
            for s in range(0, 3 * args.cluster_items, 100):  # shards of 100: several read tasks
                path = root / f"nodes-{s}.tar"
                write_shard(path, [small[(s + i) % len(small)] for i in range(min(100, 3 * args.cluster_items - s))], s)
                shards.append(server.upload(path, f"{bucket}/nodes/{path.name}"))
            if args.cluster_items:
                result["nodes"] = nodes(shards, -(-args.cluster_items // 100), root)
    finally:
        server.server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
