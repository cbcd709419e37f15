"""Start-up of the light commands against a bare `python -c "import click, pluggy"`, side by side
in one run: each command's wall time (median of `--repeat` runs) and peak RSS, with the in-tree
plugins loaded as every user has them (goal: `anycap --help` within 4x of the bare interpreter in
time). Also how long the first page of `anycap view` takes to be served.

Prints JSON.

    python benchmarks/startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ANYCAP = Path(sys.executable).with_name("anycap")
COMMANDS = {
    "bare: import click, pluggy": [sys.executable, "-c", "import click, pluggy"],
    "anycap --help": [str(ANYCAP), "--help"],
    "anycap caption --help": [str(ANYCAP), "caption", "--help"],
    "anycap eval --help": [str(ANYCAP), "eval", "--help"],
    "anycap models": [str(ANYCAP), "models"],
    "anycap plugins": [str(ANYCAP), "plugins"],
}
# The peak is the child's own VmHWM, read just before it exits (ru_maxrss of children would report
# the largest child so far, and Linux carries it across exec).
PEAK = "import atexit;atexit.register(lambda:print('PEAK',next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')),file=__import__('sys').stderr))"


def measure(argv: list[str], repeat: int, env: dict[str, str]) -> dict:
    script = argv[1:] if argv[0] != sys.executable else None
    if script is not None:  # the console script, run by this interpreter with the peak reported
        argv = [sys.executable, "-c", f"{PEAK};import runpy,sys;sys.argv={[argv[0], *script]!r};runpy.run_path(sys.argv[0], run_name='__main__')"]
    else:
        argv = [sys.executable, "-c", f"{PEAK};{argv[2]}"]
    times, peaks = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
        times.append(time.perf_counter() - t0)
        assert done.returncode == 0, done.stderr[-2000:]
        peaks.append(int(next(x for x in done.stderr.splitlines() if x.startswith("PEAK")).split()[1]))
    return {"seconds_median": round(statistics.median(times), 4), "seconds_min": round(min(times), 4),
            "peak_rss_mb": round(max(peaks) / 1024, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "ANYCAP_LOAD_PLUGINS"}
    results = {name: measure(argv, args.repeat, env) for name, argv in COMMANDS.items()}
    bare = results["bare: import click, pluggy"]
    for name, r in results.items():
        r["time_over_bare"] = round(r["seconds_median"] / bare["seconds_median"], 2)
        r["rss_over_bare"] = round(r["peak_rss_mb"] / bare["peak_rss_mb"], 2)
    print(json.dumps({"benchmark": "startup", "repeat": args.repeat, "goal_help_time_over_bare": 4.0,
                      "commands": results}, indent=2))


if __name__ == "__main__":
    main()
