"""Reading inputs: items/s of WebDataset shards and a Parquet table (bytes column) against the same
images as files, through `expand_inputs` and the `instant` captioner's batch runner, side by side.
`instant` never opens a file by path, so the files row is the runner's floor; shards and tables
carry every image's bytes through (read, hashed for the key, sniffed), hence MB/s too.

Each reader is also measured against its floor on the same file (goal: at least 0.8x), the best
of three runs each, both after the files are in the page cache: Parquet
items against pyarrow's own row-group read of the same columns, WebDataset items against streaming
the tar with `tarfile` alone (every member read). Prints JSON.

    python benchmarks/formats.py [--images 2000]
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from anycap_plugin import get_captioner, testing
from anycap_plugin.batch import expand_inputs
from anycap_plugin.batch import run

REPEATS = 3
PHOTOS = ["astronaut", "chelsea", "coffee", "camera", "rocket", "horse"]


def timed_run(inputs: list[str], out: Path, megabytes: float | None) -> dict:
    """Items/s of reading and of the whole run; MB/s only where the reading reads the bytes
    (`megabytes` None: listing files reads none of them, so a rate in MB/s would be made up)."""
    captioner = get_captioner("instant")
    read_s, read = float("inf"), 0
    for _ in range(REPEATS):  # the best of a few: the floors are measured the same way
        t0 = time.perf_counter()
        read = sum(1 for _ in expand_inputs(inputs))
        read_s = min(read_s, time.perf_counter() - t0)
    t0 = time.perf_counter()
    summary = run(captioner, expand_inputs(inputs), out, batch_size=32, progress=False)
    run_s = time.perf_counter() - t0
    assert summary.failed == 0 and summary.succeeded == read
    out_row = {"items": read, "read_items_per_s": round(read / read_s, 1), "run_items_per_s": round(read / run_s, 1)}
    if megabytes is not None:
        out_row["read_mb_per_s"] = round(megabytes / read_s, 1)
    return out_row


def tar_floor(shards: list[Path]) -> float:
    """MB/s streaming the shards with `tarfile` alone, every member read."""
    t0 = time.perf_counter()
    size = 0
    for shard in shards:
        with tarfile.open(shard, "r|*") as tar:
            for member in tar:
                f = tar.extractfile(member)
                size += len(f.read()) if f is not None else 0
    return size / 1e6 / (time.perf_counter() - t0)


def parquet_floor(path: Path) -> float:
    """MB/s of pyarrow's own row-group read of the id and image columns, as Python values."""
    t0 = time.perf_counter()
    size = 0
    for batch in pq.ParquetFile(path).iter_batches(columns=["image", "id"]):
        size += sum(len(v) for v in batch.column("image").to_pylist())
    return size / 1e6 / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--per-shard", type=int, default=500)
    args = p.parse_args()
    photos = []
    for name in PHOTOS:
        try:
            photos.append((name, testing.sample_image(name).read_bytes()))
        except Exception:
            continue
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = root / "files"
        files.mkdir()
        rows = []
        for i in range(args.images):
            name, data = photos[i % len(photos)]
            ext = testing.sample_image(name).suffix
            (files / f"{i:06d}{ext}").write_bytes(data)
            rows.append((f"{i:06d}", ext, data))
        for s in range(0, args.images, args.per_shard):
            with tarfile.open(root / f"shard-{s // args.per_shard:04d}.tar", "w") as tar:
                for key, ext, data in rows[s:s + args.per_shard]:
                    info = tarfile.TarInfo(key + ext)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        pq.write_table(pa.table({"id": [k for k, _, _ in rows], "image": [d for _, _, d in rows]}),
                       root / "table.parquet", row_group_size=256)
        mb = sum(len(d) for _, _, d in rows) / 1e6
        result = {"files": timed_run([str(files)], root / "a.jsonl", None),
                  "webdataset": timed_run([str(root / "shard-*.tar")], root / "b.jsonl", mb),
                  "parquet": timed_run([str(root / "table.parquet")], root / "c.jsonl", mb)}
        floors = {"webdataset": max(tar_floor(sorted(root.glob("shard-*.tar"))) for _ in range(REPEATS)),
                  "parquet": max(parquet_floor(root / "table.parquet") for _ in range(REPEATS))}
    for name in ("webdataset", "parquet"):
        result[name]["run_over_files"] = round(result[name]["run_items_per_s"] / result["files"]["run_items_per_s"], 3)
        result[name]["floor_mb_per_s"] = round(floors[name], 1)
        result[name]["read_over_floor"] = round(result[name]["read_mb_per_s"] / floors[name], 3)
        result[name]["goal_read_over_floor"] = 0.8
    print(json.dumps({"benchmark": "formats", "images": args.images, "megabytes": round(mb, 1), "captioner": "instant",
                      **result}, indent=2))


if __name__ == "__main__":
    main()
