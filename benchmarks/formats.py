"""Reading inputs: items/s of WebDataset shards and a Parquet table (bytes column) against the same
images as files, through `expand_inputs` and the `instant` captioner's batch runner, side by side.
`instant` never opens a file by path, so the files row is the runner's floor; shards and tables
carry every image's bytes through (read, hashed for the key, sniffed), hence MB/s too.

Each reader is also measured against its floor on the same file (goal: at least 0.8x), read in
turns with it, the best of `--repeats` each, after the files are in the page cache: Parquet items
against pyarrow's own read of the same columns, row group by row group, as Python values;
WebDataset items against reading the shards with `tarfile` alone, front to back, every member
read (as files, `r:`; its stream mode, `r|`, is reported beside it). Rates by wall time, and by
CPU time (`*_cpu_*`: on a loaded machine the wall time holds waits for a core). The table's
image column is written without a dictionary, as a table of distinct images is (these photos
repeat: a dictionary would make the bytes a few indexes). Prints JSON, with the load average.

    python benchmarks/formats.py [--images 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from anycap_plugin import get_captioner, testing
from anycap_plugin.batch import expand_inputs, run

PHOTOS = ["astronaut", "chelsea", "coffee", "camera", "rocket", "horse"]


def timed(read: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (this process's, every thread's) of one read. On a loaded machine the
    wall time holds the waits for a core; the CPU time is the work."""
    wall, cpu = time.perf_counter(), time.process_time()
    read()
    return time.perf_counter() - wall, time.process_time() - cpu


def read_all(inputs: list[str]) -> None:
    """Every item read through `expand_inputs` (what a run reads, nothing captioned)."""
    sum(1 for _ in expand_inputs(inputs))


def timed_run(inputs: list[str], out: Path, read: float, megabytes: float | None) -> dict:
    """Items/s of reading (`read`: the best time) and of the whole run; MB/s only where the reading
    reads the bytes (`megabytes` None: listing files reads none of them, so a rate in MB/s would be
    made up)."""
    items = sum(1 for _ in expand_inputs(inputs))
    t0 = time.perf_counter()
    summary = run(get_captioner("instant"), expand_inputs(inputs), out, batch_size=32, progress=False)
    run_s = time.perf_counter() - t0
    assert summary.failed == 0 and summary.succeeded == items
    row = {"items": items, "read_items_per_s": round(items / read, 1), "run_items_per_s": round(items / run_s, 1)}
    if megabytes is not None:
        row["read_mb_per_s"] = round(megabytes / read, 1)
    return row


def tar_floor(shards: list[Path], mode: str = "r:") -> None:
    """Reads the shards with `tarfile` alone, front to back, every member read: as files
    (`r:`, the floor), or through tarfile's stream buffer (`r|`, what the reader did before it read
    a file that can seek as a file; reported beside the floor, not the floor)."""
    for shard in shards:
        with tarfile.open(shard, mode) as tar:
            for member in tar:
                f = tar.extractfile(member)
                if f is not None:
                    f.read()


def parquet_floor(path: Path) -> None:
    """pyarrow's own read of the id and image columns, row group by row group, as
    Python values."""
    table = pq.ParquetFile(path)
    for group in range(table.num_row_groups):
        table.read_row_group(group, columns=["image", "id"]).column("image").to_pylist()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--per-shard", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5, help="reads of each reader and floor, in turns")
    args = p.parse_args()
    photos = [(name, testing.sample_image(name).read_bytes()) for name in PHOTOS]
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
                       root / "table.parquet", row_group_size=256, use_dictionary=["id"])
        mb = sum(len(d) for _, _, d in rows) / 1e6
        inputs = {"files": [str(files)], "webdataset": [str(root / "shard-*.tar")],
                  "parquet": [str(root / "table.parquet")]}
        shards = sorted(root.glob("shard-*.tar"))
        floors = {"webdataset": lambda: tar_floor(shards), "parquet": lambda: parquet_floor(root / "table.parquet")}
        reads: dict[str, Callable[[], object]] = {name: partial(read_all, given) for name, given in inputs.items()}
        for name, floor in floors.items():
            reads[f"{name}_floor"] = floor
        reads["webdataset_stream"] = partial(tar_floor, shards, "r|")
        best = {k: (float("inf"), float("inf")) for k in reads}  # wall, CPU
        load = [round(os.getloadavg()[0], 2)]
        for _ in range(args.repeats):  # each reader and its floor in turns: load drifts alike on both
            for name, read in reads.items():
                wall, cpu = timed(read)
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
        result = {name: timed_run(given, root / f"{name}.jsonl", best[name][0], None if name == "files" else mb)
                  for name, given in inputs.items()}
        load.append(round(os.getloadavg()[0], 2))
    for name in floors:
        result[name]["run_over_files"] = round(result[name]["run_items_per_s"] / result["files"]["run_items_per_s"], 3)
        result[name]["floor_mb_per_s"] = round(mb / best[f"{name}_floor"][0], 1)
        result[name]["read_over_floor"] = round(best[f"{name}_floor"][0] / best[name][0], 3)
        result[name]["read_cpu_mb_per_s"] = round(mb / best[name][1], 1)
        result[name]["floor_cpu_mb_per_s"] = round(mb / best[f"{name}_floor"][1], 1)
        result[name]["read_over_floor_cpu"] = round(best[f"{name}_floor"][1] / best[name][1], 3)
        result[name]["goal_read_over_floor"] = 0.8
    result["webdataset"]["tarfile_stream_mode_mb_per_s"] = round(mb / best["webdataset_stream"][0], 1)
    print(json.dumps({"benchmark": "formats", "images": args.images, "megabytes": round(mb, 1), "captioner": "instant",
                      "repeats": args.repeats, "load_average_1m": load, **result}, indent=2))


if __name__ == "__main__":
    main()
