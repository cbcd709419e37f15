"""AudioCaps test set (975 clips x 5 references; the AnyCap release's GPT-4o captions for 953 of them as
candidates, from ../shared/data/audiocaps): seconds per metric under both protocols, the JVM's start-up
(METEOR's, which the scorers keep for the whole run) reported apart, and the scores. Prints JSON.

    python benchmarks/audio_eval.py [--clips N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from anycap_plugin.eval import audio_captions as ac

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "audiocaps"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, help="only the first N candidates (default: all)")
    args = p.parse_args()
    refs = ac.load_references(DATA / "test.csv")
    cands, failed = ac.load_candidates(DATA / "gpt4o_captions.jsonl")
    if args.clips:
        cands = dict(list(cands.items())[: args.clips])
    result = {"benchmark": "audio_eval", "references": len(refs), "candidates": len(cands)}
    for protocol in ("standard", "release"):
        started = time.perf_counter()
        report = ac.evaluate(refs, cands, benchmark="audiocaps", protocol=protocol, failed=failed)
        result[protocol] = {"wall_s": round(time.perf_counter() - started, 2), "seconds_per_metric": report["seconds"],
                            "scored": report["counts"]["scored"],
                            "metrics": {k: None if v is None else round(v, 4) for k, v in report["metrics"].items()},
                            "not_computed": sorted(report["not_computed"])}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
