"""Inputs laid out the way the field lays them out, with the ids that collide in real data.

`build(root)` writes, under `root/data` (paths in records are relative: `data/...`):
- `photos/`: two images and a truncated JPEG (a failure);
- `s0.tar` and `s2.tar`: WebDataset shards that reuse `__key__` k1, k2, k3 (a restarted
  img2dataset job); `s2.tar#k2` is truncated, so a failure shares its id with a success in `s0.tar`;
- `t.parquet`: four rows whose id column repeats (`a`, `a`, `b`) and has a null;
- `m.jsonl`: a manifest whose id `x` is on two lines with different media.
Sixteen inputs, two of which fail until `repair(root)` mends them.

`tests/data/previous_version/` holds what the version before keys named their source wrote for
these inputs (`python tests/resume_inputs.py` documents how it was made).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

INPUTS = ["data/photos", "data/s0.tar", "data/s2.tar", "data/t.parquet", "data/m.jsonl"]
INSTRUCTION = "Describe it."
TOTAL, FAILING = 16, 2


def _image(name: str) -> bytes:
    from anycap_plugin.testing.samples import sample_image

    return sample_image(name).read_bytes()


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A tar shard holding `members` (name, bytes) in order."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return path


def build(root: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = root / "data"
    (data / "photos").mkdir(parents=True)
    astronaut, chelsea, coffee = _image("astronaut"), _image("chelsea"), _image("coffee")
    (data / "photos" / "astronaut.png").write_bytes(astronaut)
    (data / "photos" / "chelsea.png").write_bytes(chelsea)
    (data / "photos" / "broken.jpg").write_bytes(coffee[:600])
    write_shard(data / "s0.tar", [("k1.png", astronaut), ("k2.png", chelsea), ("k3.jpg", coffee)])
    write_shard(
        data / "s2.tar", [("k1.jpg", coffee), ("k2.jpg", coffee[:600]), ("k3.png", astronaut)]
    )
    pq.write_table(
        pa.table({"image": [astronaut, chelsea, coffee, chelsea], "id": ["a", "a", "b", None]}),
        data / "t.parquet",
    )
    (data / "m.jsonl").write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"media": "photos/astronaut.png", "id": "x"},
                {"media": "photos/chelsea.png", "id": "x"},
                {"media": "photos/astronaut.png", "id": "y", "instruction": "Describe the suit."},
            ]
        )
    )
    return data


def repair(root: Path) -> None:
    """Mend the two failing inputs in place: same names, same places, good bytes."""
    data = root / "data"
    coffee = _image("coffee")
    (data / "photos" / "broken.jpg").write_bytes(coffee)
    write_shard(
        data / "s2.tar", [("k1.jpg", coffee), ("k2.jpg", coffee), ("k3.png", _image("astronaut"))]
    )


if __name__ == "__main__":
    # How tests/data/previous_version/*.jsonl were made, with the version before keys named their
    # source (commit 318d295, checked out in OLD): build the inputs in a fresh folder, then from it
    #   PYTHONPATH=OLD python -m anycap_plugin caption data/photos data/s0.tar data/s2.tar data/t.parquet \
    #       data/m.jsonl -m stats -i "Describe it." -o first_run.jsonl
    # (first_run.jsonl: one line per input, the keys already colliding), and the same command once more
    # with -o second_run.jsonl after a first run into it (that version's resume: it rewrote the file to
    # one line per colliding key, losing captions).
    import sys

    build(Path(sys.argv[1]))
