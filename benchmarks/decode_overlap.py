"""The runner decoding the next batch while the model works on this one (`run(prefetch=...)`).

Real photos (scikit-image's astronaut, chelsea, coffee) upscaled to 1080p JPEGs; a captioner
whose model step is a GPU stand-in: a `time.sleep` (it releases the GIL, as waiting on CUDA
does) of `--model-ms` per batch after decoding its media. Prints JSON: items/s without and with
prefetch, side by side, and the ideal (model time only, decoding fully hidden).

    python benchmarks/decode_overlap.py [--images 96] [--batch-size 8] [--model-ms 120]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from PIL import Image

from anycap_plugin import BaseCaptioner, Caption
from anycap_plugin.batch import WorkItem, run
from anycap_plugin.testing.samples import sample_image


class GpuStandIn(BaseCaptioner):
    """Decodes each image (as every local model's processor does), then waits `seconds` per batch."""

    id = "gpu-stand-in"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def _caption(self, media, instruction, options):
        return self._caption_batch([media], [instruction], options)[0]

    def _caption_batch(self, media, instructions, options):
        sizes = [m.image().size for m in media]
        time.sleep(self.seconds)
        return [Caption(text=f"{w}x{h}") for w, h in sizes]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--model-ms", type=float, default=120.0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = []
        for i in range(args.images):
            name = ("astronaut", "chelsea", "coffee")[i % 3]
            path = root / f"{i:04d}.jpg"
            Image.open(sample_image(name)).convert("RGB").resize((1920, 1080)).save(path, quality=95)
            paths.append(str(path))
        t0 = time.perf_counter()
        for path in paths[:16]:
            Image.open(path).convert("RGB")
        decode_ms = (time.perf_counter() - t0) / 16 * 1000
        captioner = GpuStandIn(args.model_ms / 1000)
        items = [WorkItem(p, "Describe it.") for p in paths]
        times = {}
        for n, prefetch in enumerate((False, True, False, True)):  # interleaved, best of two each
            t0 = time.perf_counter()
            summary = run(captioner, items, root / f"o-{n}.jsonl", batch_size=args.batch_size, prefetch=prefetch)
            seconds = time.perf_counter() - t0
            assert summary.succeeded == args.images
            times[prefetch] = min(times.get(prefetch, float("inf")), seconds)
    batches = -(-args.images // args.batch_size)
    ideal = batches * args.model_ms / 1000
    print(json.dumps({
        "benchmark": "decode_overlap", "images": args.images, "batch_size": args.batch_size,
        "model_ms_per_batch": args.model_ms, "decode_ms_per_1080p_jpeg": round(decode_ms, 1),
        "without_prefetch_items_per_s": round(args.images / times[False], 1),
        "with_prefetch_items_per_s": round(args.images / times[True], 1),
        "speedup": round(times[False] / times[True], 2),
        "ideal_items_per_s": round(args.images / ideal, 1),
        "with_prefetch_over_ideal_time": round(times[True] / ideal, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
