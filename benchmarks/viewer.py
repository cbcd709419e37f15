"""`anycap view` on a 1,000-line and a 1,000,000-line caption run, side by side in one run.

For each size: the time from starting `anycap view FILE` to the first page of rows (the page's
first `/api/items` answer), the server's resident memory then, the time until the whole file is
indexed, and the server's resident memory at that point (peak over the run, read from /proc).
The records are `anycap caption` records (about 400 bytes each, one in ten failed). Goal: the
1,000,000-line file within 1.5x of the 1,000-line file on both first page time and memory.
Reviews, for each size: the latency of a review write as the page makes it (the POST, then the
item's GET that redraws it; median and 90th percentile over 50 writes spread over the file; goal at
1,000,000 lines: median under 50 ms), and `anycap export` of the run with 100,000 reviews (one item
in ten, a third of them with an edited caption): seconds and peak RSS (goal: under 300 MB).
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
        writes = review_latency(url, get(f"{url}/api/info")["runs"]["a"]["count"])
        return {**writes, "lines": get(f"{url}/api/info")["runs"]["a"]["count"], "first_page_rows": len(page["items"]),
                "seconds_to_listening": round(listening, 3), "seconds_to_first_page": round(first_page, 3),
                "rss_mb_at_first_page": round(at_first_page, 1), "seconds_to_indexed": round(indexed, 3),
                "rss_mb_indexed": round(current, 1), "peak_rss_mb": round(peak, 1),
                "failed_filter_total": failed, "seconds_failed_filter": round(filter_seconds, 3)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def review_latency(url: str, lines: int, writes: int = 50) -> dict:
    """Review writes as the page makes them: POST /api/review with the page's token, then GET the item."""
    with urllib.request.urlopen(url + "/", timeout=60) as r:
        token = re.search(r'name="anycap-write" content="([^"]+)"', r.read().decode()).group(1)
    times = []
    for i in range(writes):
        n = (i * 7919 + 13) % lines
        version = get(f"{url}/api/item?n={n}")["review"]["version"]  # what the page already holds
        body = json.dumps({"n": n, "version": version, "status": "accepted" if i % 2 else "rejected"})
        request = urllib.request.Request(f"{url}/api/review", data=body.encode(), method="POST", headers={
            "Content-Type": "application/json", "Origin": url, "X-AnyCap-Write": token})
        t0 = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as r:
            r.read()
        get(f"{url}/api/item?n={n}")
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"review_write_ms_median": round(1000 * times[len(times) // 2], 1),
            "review_write_ms_p90": round(1000 * times[int(len(times) * 0.9)], 1)}


def export_with_reviews(path: Path, lines: int, every: int = 10) -> dict:
    """`anycap export` of the run with one review per `every` items: seconds and the child's peak RSS."""
    reviews = path.with_name(path.stem + ".reviews.jsonl")
    with open(reviews, "a") as f:
        for i in range(0, lines, every):
            f.write(json.dumps({"key": f"manifest:data.jsonl#id={i}", "status": ("accepted", "rejected")[i % 2],
                                "caption": f"an edited caption {i}" if i % 3 == 0 else None, "tags": ["bench"],
                                "note": "", "at": "2026-01-01T00:00:00+00:00"}) + "\n")
    out = path.with_name("export.jsonl")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "anycap_plugin", "export", str(path), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    assert status == 0, proc.stderr.read().decode()
    with open(out, "rb") as f:
        written = sum(1 for _ in f)
    out.unlink()
    return {"export_reviews": len(range(0, lines, every)), "export_lines_written": written,
            "export_seconds": round(seconds, 1), "export_peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


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
            results[str(size)].update(export_with_reviews(path, size))
            path.unlink()
    small, large = results[str(args.sizes[0])], results[str(args.sizes[-1])]
    print(json.dumps({"runs": results, "ratios_large_over_small": {
        "seconds_to_first_page": round(large["seconds_to_first_page"] / small["seconds_to_first_page"], 2),
        "rss_at_first_page": round(large["rss_mb_at_first_page"] / small["rss_mb_at_first_page"], 2),
        "peak_rss": round(large["peak_rss_mb"] / small["peak_rss_mb"], 2)}, "goal": "<= 1.5 on each",
        "review_goals": "review_write_ms_median < 50 and export_peak_rss_mb < 300 at 1,000,000 lines"}, indent=2))


if __name__ == "__main__":
    main()
