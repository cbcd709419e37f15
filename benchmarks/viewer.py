"""`anycap view` on a 1,000-line and a 1,000,000-line caption run, side by side in one run.

For each size: the time from starting `anycap view FILE` to the first page of rows (the page's
first `/api/items` answer), the server's resident memory then, the time until the whole file is
indexed, and the server's resident memory at that point (peak over the run, read from /proc).
The records are `anycap caption` records (about 400 bytes each, one in ten failed). Goal: the
1,000,000-line file within 1.5x of the 1,000-line file on both first page time and memory.
Prints JSON.

    python benchmarks/viewer.py [--sizes 1000 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

WORDS = "a small red boat drifts on calm water near a wooden pier under a pale morning sky".split()


def write_run(path: Path, lines: int) -> None:
    with open(path, "w") as f:
        for i in range(lines):
            key = f"manifest:data.jsonl#id={i}"
            if i % 10 == 3:
                record = {"key": key, "input": f"img/{i:07d}.jpg", "id": str(i), "instruction": "Describe it.",
                          "caption": None, "error": {"type": "MediaNotFoundError", "message": f"No such file: {i}"}}
            else:
                caption = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(8 + i % 30))
                record = {"key": key, "input": f"img/{i:07d}.jpg", "id": str(i), "instruction": "Describe it.",
                          "caption": caption, "error": None, "media": f"img/{i:07d}.jpg", "modality": "image",
                          "models": {"base": "stats"}, "timings": {"base": 0.001 * (i % 97)}, "usage": {},
                          "meta": {"complies": bool(i % 2)}, "base_caption": None}
            f.write(json.dumps(record) + "\n")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=120) as r:
        return json.loads(r.read())


def measure(path: Path) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "anycap_plugin", "view", str(path), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"(http://\S+)", proc.stdout.readline()).group(1).rstrip("/")
        listening = time.perf_counter() - started
        page = get(f"{url}/api/items?offset=0&limit=50")
        first_page = time.perf_counter() - started
        at_first_page = rss_mb(proc.pid)[0]
        while not get(f"{url}/api/info")["runs"]["a"]["done"]:
            time.sleep(0.2)
        indexed = time.perf_counter() - started
        failed = get(f"{url}/api/items?status=failed&limit=1")["total"]
        filter_seconds = time.perf_counter() - started - indexed
        current, peak = rss_mb(proc.pid)
        return {"lines": get(f"{url}/api/info")["runs"]["a"]["count"], "first_page_rows": len(page["items"]),
                "seconds_to_listening": round(listening, 3), "seconds_to_first_page": round(first_page, 3),
                "rss_mb_at_first_page": round(at_first_page, 1), "seconds_to_indexed": round(indexed, 3),
                "rss_mb_indexed": round(current, 1), "peak_rss_mb": round(peak, 1),
                "failed_filter_total": failed, "seconds_failed_filter": round(filter_seconds, 3)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 1_000_000])
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="anycap-view-bench-") as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"run{size}.jsonl"
            t0 = time.perf_counter()
            write_run(path, size)
            results[str(size)] = {"file_mb": round(os.path.getsize(path) / 1e6, 1),
                                  "seconds_to_write": round(time.perf_counter() - t0, 1), **measure(path)}
            path.unlink()
    small, large = results[str(args.sizes[0])], results[str(args.sizes[-1])]
    print(json.dumps({"runs": results, "ratios_large_over_small": {
        "seconds_to_first_page": round(large["seconds_to_first_page"] / small["seconds_to_first_page"], 2),
        "rss_at_first_page": round(large["rss_mb_at_first_page"] / small["rss_mb_at_first_page"], 2),
        "peak_rss": round(large["peak_rss_mb"] / small["peak_rss_mb"], 2)}, "goal": "<= 1.5 on each"}, indent=2))


if __name__ == "__main__":
    main()
