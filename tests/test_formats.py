"""Dataset formats in and out, as `anycap caption` reads and writes them: WebDataset shards with
sidecars, Parquet (paths, bytes, the HF Image struct) in and out, Hugging Face datasets, LLaVA /
InternVL conversation JSON. Bad records are per-item errors; the run goes on and resumes."""

import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import threading
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from resume_inputs import write_shard
from test_cli import anycap

from anycap_plugin import get_captioner
from anycap_plugin.batch import expand_inputs, run
from anycap_plugin.batch.inputs import parquet as parquet_input
from anycap_plugin.batch.inputs.base import ReadContext, Source
from anycap_plugin.batch.inputs.parquet import record_batches
from anycap_plugin.batch.inputs.webdataset import shard_items
from anycap_plugin.testing import sample_image


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture()
def photos():
    return {name: sample_image(name).read_bytes() for name in ("astronaut", "chelsea", "coffee")}


def test_webdataset_shards_with_sidecars_joinable_on_key(tmp_path, photos, video_path, audio_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    write_shard(
        shards / "000000.tar",
        [
            ("s/0001.jpg", photos["astronaut"]),
            ("s/0001.json", b'{"alt": "a person"}'),
            ("s/0002.mp4", video_path.read_bytes()),
            ("s/0002.instruction.txt", b"What happens?"),
            ("s/0003.txt", b"only text"),
        ],
    )
    write_shard(
        shards / "000001.tar",
        [("s/0004.wav", audio_path.read_bytes()), ("s/0005.png", photos["chelsea"])],
    )
    out = tmp_path / "caps.jsonl"
    result = anycap(
        "caption",
        str(shards / "*.tar"),
        "-m",
        "stats",
        "-i",
        "Describe it.",
        "-o",
        str(out),
        "--sidecars",
        "-O",
        "num_frames=4",
    )
    assert result.returncode == 1  # the sample without media
    assert "4 captioned, 1 failed (ManifestError: 1)" in result.stderr
    rows = {r["__key__"]: r for r in _rows(out)}
    assert set(rows) == {"s/0001", "s/0002", "s/0003", "s/0004", "s/0005"}
    assert rows["s/0001"]["key"] == f"shard:{shards / '000000.tar'}#s/0001\x1fDescribe it."
    assert rows["s/0001"]["modality"] == "image"
    assert (
        rows["s/0002"]["instruction"] == "What happens?" and rows["s/0002"]["modality"] == "video"
    )
    assert rows["s/0004"]["modality"] == "audio" and rows["s/0004"]["shard"].endswith("000001.tar")
    assert "has no image, video or audio member (found: txt)" in rows["s/0003"]["error"]["message"]
    sidecar = _rows(shards / "000000.captions.jsonl")
    assert [r["__key__"] for r in sidecar] == ["s/0001", "s/0002", "s/0003"]
    assert sidecar[0]["caption"] == rows["s/0001"]["caption"]
    assert [r["__key__"] for r in _rows(shards / "000001.captions.jsonl")] == ["s/0004", "s/0005"]

    again = anycap(
        "caption", str(shards / "*.tar"), "-m", "stats", "-i", "Describe it.", "-o", str(out)
    )
    assert "0 captioned, 1 failed (ManifestError: 1), 4 already done" in again.stderr


def test_a_truncated_shard_is_one_error_and_the_other_shards_go_on(tmp_path, photos):
    whole = write_shard(
        tmp_path / "a.tar",
        [
            ("k1.png", photos["chelsea"]),
            ("k2.png", photos["astronaut"]),
            ("k3.jpg", photos["coffee"]),
        ],
    )
    data = whole.read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: len(data) // 2])  # ends inside k2's bytes
    write_shard(tmp_path / "b.tar", [("k9.png", photos["chelsea"])])
    out = tmp_path / "o.jsonl"
    summary = run(
        get_captioner("stats"),
        expand_inputs([str(tmp_path / "cut.tar"), str(tmp_path / "b.tar")]),
        out,
    )
    rows = _rows(out)
    assert rows[0]["__key__"] == "k1" and rows[0]["error"] is None
    assert summary.succeeded == 2 and summary.failed == 1
    broken = next(r for r in rows if r["error"])
    assert "truncated or unreadable at k2" in broken["error"]["message"]


def test_parquet_in_and_out_with_paths_bytes_the_hf_struct_and_a_null(tmp_path, photos):
    image_path = tmp_path / "a.png"
    image_path.write_bytes(photos["astronaut"])
    table = pa.table(
        {
            "image": [
                {"bytes": photos["chelsea"], "path": "chelsea.png"},
                {"bytes": None, "path": str(image_path)},
                {"bytes": None, "path": None},
                {"bytes": photos["coffee"], "path": None},
            ],
            "id": ["c", "a", "nothing", None],
            "instruction": ["Describe the cat.", None, None, "Describe the cup."],
        }
    )
    pq.write_table(table, tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    result = anycap(
        "caption", str(tmp_path / "in.parquet"), "-m", "stats", "-i", "Describe it.", "-o", str(out)
    )
    assert result.returncode == 1 and "3 captioned, 1 failed (ManifestError: 1)" in result.stderr
    got = pq.read_table(out).to_pylist()
    assert [r["id"] for r in got] == ["c", "a", "nothing", None]
    assert got[0]["instruction"] == "Describe the cat." and got[1]["instruction"] == "Describe it."
    assert got[1]["input"] == str(image_path) and "512x512" in got[1]["caption"]
    assert "no media in column 'image'" in json.loads(got[2]["error"])["message"]
    assert [r["key"] for r in got] == [
        f"table:{tmp_path / 'in.parquet'}#row={i}\x1f{text}"
        for i, text in enumerate(
            ["Describe the cat.", "Describe it.", "Describe it.", "Describe the cup."]
        )
    ]
    assert json.loads(got[0]["models"]) == {"base": "stats"} and got[0]["row"] == 0
    assert (tmp_path / "out.parquet.journal.jsonl").exists()

    again = anycap(
        "caption", str(tmp_path / "in.parquet"), "-m", "stats", "-i", "Describe it.", "-o", str(out)
    )
    assert "0 captioned, 1 failed (ManifestError: 1), 3 already done" in again.stderr
    assert len(pq.read_table(out)) == 4


def test_a_parquet_without_the_named_column_is_a_usage_error(tmp_path):
    pq.write_table(pa.table({"x": [1]}), tmp_path / "t.parquet")
    result = anycap(
        "caption", str(tmp_path / "t.parquet"), "-m", "stats", "-o", str(tmp_path / "o.jsonl")
    )
    assert (
        result.returncode == 2
        and "no media column" in result.stderr
        and "--media-column" in result.stderr
    )


def test_hugging_face_datasets_stream_the_stored_bytes(tmp_path, photos, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "ds"
    (folder / "data").mkdir(parents=True)
    ds = datasets.Dataset.from_dict(
        {"image": [photos["astronaut"], photos["coffee"]], "idx": ["a", "b"]},
        features=datasets.Features({"image": datasets.Image(), "idx": datasets.Value("string")}),
    )
    ds.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    items = list(expand_inputs([f"hf:{folder}:train"], "Describe it.", columns={"id": "idx"}))
    assert [i.id for i in items] == ["a", "b"] and items[0].data == photos["astronaut"]
    out = tmp_path / "o.jsonl"
    assert run(get_captioner("stats"), items, out).succeeded == 2


def test_llava_conversation_json_and_jsonl(tmp_path, photos, video_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(photos["astronaut"])
    records = [
        {
            "id": "r1",
            "image": "imgs/a.png",
            "conversations": [
                {"from": "human", "value": "<image>\nDescribe the suit."},
                {"from": "gpt", "value": "x"},
            ],
        },
        {
            "id": "r2",
            "video": str(video_path),
            "conversations": [{"from": "human", "value": "<video>\nWhat moves?"}],
        },
        {"id": "r3", "image": ["imgs/a.png", "imgs/a.png"], "conversations": []},
        {"id": "r4", "conversations": [{"from": "human", "value": "no media"}]},
    ]
    (tmp_path / "train.json").write_text(json.dumps(records))
    (tmp_path / "train.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records[:2]) + "\n{broken\n"
    )
    items = list(expand_inputs([str(tmp_path / "train.json")]))
    assert [i.id for i in items] == ["r1", "r2", "r3", "r4"]
    assert (
        items[0].input == str(tmp_path / "imgs" / "a.png")
        and items[0].instruction == "Describe the suit."
    )
    assert items[1].instruction == "What moves?"
    assert "holds 2 media" in str(items[2].problem) and "names no image or video" in str(
        items[3].problem
    )
    out = tmp_path / "o.jsonl"
    summary = run(
        get_captioner("stats"),
        expand_inputs([str(tmp_path / "train.jsonl")], "Override."),
        out,
        options={"num_frames": 2},
    )
    rows = _rows(out)
    assert summary.succeeded == 2 and summary.failed == 1  # the broken line is its own error
    assert (
        rows[0]["instruction"] == "Override." and "Bad manifest line" in rows[2]["error"]["message"]
    )


def _shard_of(path, members):
    """A shard of `members` (name, bytes), plain or gzipped by its name."""
    with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _read(location):
    return [
        (i.place, i.id, i.data, i.problem is not None)
        for i in shard_items(Source(str(location), "shard"), ReadContext("Describe it."))
    ]


def test_a_shard_that_cannot_seek_streams_to_the_same_items(tmp_path, photos):
    members = [
        ("a/k1.png", photos["chelsea"]),
        ("a/k1.instruction.txt", b"Name the animal."),
        ("a/k2.jpg", photos["coffee"]),
        ("a/k1.png", photos["astronaut"]),  # k1 again: a sample of its own
    ]
    shard = _shard_of(tmp_path / "s.tar", members)
    fifo = tmp_path / "pipe.tar"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(shard.read_bytes()))
    writer.start()
    try:
        streamed = _read(fifo)
    finally:
        writer.join()
    from_file = _read(shard)
    places = [p.removeprefix(f"shard:{shard}") for p, *_ in from_file]
    assert places == ["#a/k1", "#a/k2", "#a/k1@2"]
    assert [(p.removeprefix(f"shard:{fifo}"), *rest) for p, *rest in streamed] == [
        (place, *rest) for place, (_, *rest) in zip(places, from_file)
    ]
    assert [d for _, _, d, _ in from_file] == [
        photos["chelsea"],
        photos["coffee"],
        photos["astronaut"],
    ]


def test_a_gzipped_shard_reads_and_a_truncated_one_ends_with_its_error(tmp_path, photos):
    members = [("k1.png", photos["chelsea"]), ("k2.png", photos["astronaut"])]
    whole = _read(_shard_of(tmp_path / "s.tar.gz", members))
    assert [(d, bad) for _, _, d, bad in whole] == [
        (photos["chelsea"], False),
        (photos["astronaut"], False),
    ]
    data = (tmp_path / "s.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) * 3 // 4])  # ends inside k2's bytes
    cut = _read(tmp_path / "cut.tar.gz")
    assert [(i, bad) for _, i, _, bad in cut] == [("k1", False), ("k2", True)]


def test_a_long_shard_keeps_no_member_header_in_memory(tmp_path):
    """tarfile keeps every member header it read; 10,000 of them take about 4.5 MB."""
    with tarfile.open(tmp_path / "long.tar", "w") as tar:
        for i in range(10_000):
            info = tarfile.TarInfo(f"{i:06d}.jpg")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"\xff\xd8\xff"))
    tracemalloc.start()
    try:
        read = sum(
            1 for _ in shard_items(Source(str(tmp_path / "long.tar"), "shard"), ReadContext())
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read == 10_000
    assert peak < 3.5e6  # the keys seen (each key's place depends on those before it): about 2 MB


def test_a_parquet_table_of_large_rows_is_read_in_batches_bounded_by_bytes(tmp_path, monkeypatch):
    rng = random.Random(0)
    images = [rng.randbytes(256 << 10) for _ in range(48)]  # 12 MB in one row group
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [str(i) for i in range(48)], "image": images}), path)
    with pq.ParquetFile(path) as table:
        assert table.metadata.num_row_groups == 1
        batches = list(record_batches(table, ["image", "id"], target=1 << 20))
    assert all(b.nbytes <= 1 << 20 for b in batches) and len(batches) >= 12
    assert [v for b in batches for v in b.column("image").to_pylist()] == images
    monkeypatch.setattr(parquet_input, "BATCH_BYTES", 1 << 20)  # what the reader itself reads by
    items = list(expand_inputs([str(path)]))
    assert [i.data for i in items] == images
    assert [i.place for i in items] == [f"table:{path}#row={n}" for n in range(48)]


def test_a_dictionary_encoded_column_larger_than_its_footer_says_gets_smaller_batches(tmp_path):
    """Three values of 100 KB over 120 rows: the footer holds the dictionary (300 KB a row group),
    the rows 12 MB. The first batch is sized by the footer; the rest by what it held."""
    rng = random.Random(1)
    values = [rng.randbytes(100_000) for _ in range(3)]
    images = [values[i % 3] for i in range(120)]
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"image": images}), path, row_group_size=60)
    with pq.ParquetFile(path) as table:
        assert "RLE_DICTIONARY" in table.metadata.row_group(0).column(0).encodings
        batches = list(record_batches(table, ["image"], target=128 << 10))
    assert batches[0].num_rows > 2  # sized by the footer: over twice the target
    assert all(b.nbytes <= 128 << 10 for b in batches[1:])
    assert [v for b in batches for v in b.column("image").to_pylist()] == images


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar writes the sparse member")
def test_a_sparse_member_reads_whole(tmp_path):
    """GNU tar's sparse members (holes left out of the shard) read as their whole bytes."""
    folder = tmp_path / "in"
    folder.mkdir()
    with open(folder / "k1.png", "wb") as f:
        f.write(b"\x89PNG")
        f.seek(1 << 20)
        f.write(b"tail")
    subprocess.run(
        ["tar", "--format=gnu", "-cSf", str(tmp_path / "s.tar"), "k1.png"], cwd=folder, check=True
    )
    with tarfile.open(tmp_path / "s.tar") as tar:
        assert tar.next().sparse  # the shard holds it sparse
    assert _read(tmp_path / "s.tar") == [
        (f"shard:{tmp_path / 's.tar'}#k1", "k1", (folder / "k1.png").read_bytes(), False)
    ]
