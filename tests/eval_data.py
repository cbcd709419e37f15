"""AnyCapEval data for harness tests: real reference rows with real media of ours under their names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image

from anycap_plugin import testing

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def anycapeval_root(root: Path, video_path: Path, audio_path: Path) -> dict[str, list[dict]]:
    """Real reference rows (a few per file) whose media names get real media of ours; one image is missing."""
    folder = root / "AnyCapEval"
    picked: dict[str, list[dict]] = {}
    sources = {
        "image": [
            testing.sample_image("astronaut"),
            testing.sample_image("chelsea"),
            testing.sample_image("coffee"),
        ],
        "video": [video_path],
        "audio": [audio_path],
    }
    for modality in ("image", "video", "audio"):
        (folder / modality).mkdir(parents=True)
        for ref in sorted((SHARED / "anycapeval" / modality).glob("*.jsonl")):
            rows = [json.loads(line) for line in ref.open()][:3]
            (folder / ref.name).write_text("".join(json.dumps(r) + "\n" for r in rows))
            picked.setdefault(modality, []).extend(rows)
        for i, row in enumerate(picked[modality]):
            target = folder / modality / row[modality]
            if modality == "image" and i == 1:
                continue  # missing media: this item fails, the rest go on
            if modality == "image":
                Image.open(sources["image"][i % 3]).convert("RGB").save(target, "JPEG")
            else:
                shutil.copy(sources[modality][0], target)
    return picked
