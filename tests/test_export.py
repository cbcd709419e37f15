"""`anycap export`: a reviewed run's curated set as records (JSONL, Parquet) and as ACD lines that
`anycap train --acd` trains the tiny ACM on, through the installed console script."""

from __future__ import annotations

import functools
import http.server
import io
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from anycap_plugin import testing
from anycap_plugin.train import read_acd
from anycap_plugin.view.reviews import ReviewJournal

ANYCAP = Path(sys.executable).with_name("anycap")


def anycap(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ANYCAP), *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory) -> Path:
    """A run of six items (one failed, one without an instruction, one reviewed before a resume
    re-captioned it) and its reviews."""
    folder = tmp_path_factory.mktemp("reviewed")
    (folder / "media").mkdir()
    for name in ("astronaut", "chelsea", "coffee"):
        shutil.copy(testing.sample_image(name), folder / "media" / f"{name}.png")
    ask = "Describe it in one sentence."

    def record(key, media, caption, instruction=ask, **more):
        return {
            "key": key,
            "media": f"media/{media}.png",
            "modality": "image",
            "instruction": instruction,
            "caption": caption,
            "error": None,
            **more,
        }

    records = [
        record("k0", "astronaut", "an astronaut", base_caption="a person in a suit"),
        record("k1", "chelsea", "a cat"),
        record("k2", "coffee", "a cup of coffee"),
        record("k3", "coffee", "coffee again"),
        {**record("k4", "coffee", None), "error": {"type": "MediaError", "message": "x"}},
        record("k5", "chelsea", "a cat, no instruction", instruction=None),
    ]
    run = folder / "captions.jsonl"
    journal = ReviewJournal(run)
    journal.write(
        "k0", records[0], {"status": "accepted", "caption": "an astronaut in a white suit"}, 0
    )
    journal.write("k1", records[1], {"status": "accepted", "tags": ["cat"]}, 0)
    journal.write("k2", records[2], {"status": "rejected", "note": "wrong cup"}, 0)
    journal.write("k3", {**records[3], "caption": "before the resume"}, {"status": "accepted"}, 0)
    journal.write("k5", records[5], {"status": "accepted"}, 0)
    journal.close()
    run.write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def read_lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_records_carry_the_reviewed_caption_and_the_review(reviewed, tmp_path):
    out = tmp_path / "curated.jsonl"
    done = anycap("export", str(reviewed), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "6 items" in done.stderr
    rows = {r["key"]: r for r in read_lines(out)}
    assert len(rows) == 6
    k0 = rows["k0"]
    assert k0["caption"] == "an astronaut in a white suit"
    assert k0["review"] == {
        "status": "accepted",
        "tags": [],
        "note": "",
        "edited": True,
        "original_caption": "an astronaut",
        "stale": False,
    }
    assert rows["k1"]["review"]["tags"] == ["cat"] and rows["k1"]["caption"] == "a cat"
    assert rows["k3"]["review"]["status"] == "pending" and rows["k3"]["review"]["stale"]
    assert rows["k4"]["review"]["status"] == "pending"  # never reviewed
    rejected = tmp_path / "rejected.parquet"
    done = anycap("export", str(reviewed), "--status", "rejected", "-o", str(rejected))
    assert done.returncode == 0, done.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(rejected).to_pylist()
    assert [r["key"] for r in table] == ["k2"]
    assert json.loads(table[0]["review"])["note"] == "wrong cup"
    bad = anycap("export", str(reviewed), "--as", "acd", "-o", str(tmp_path / "x.parquet"))
    assert bad.returncode == 2 and "JSONL" in bad.stderr


def acd_export_of(reviewed: Path, out: Path) -> None:
    """Export the reviewed run's ACD lines to `out` and check them."""
    done = anycap("export", str(reviewed), "--as", "acd", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "2 items (2 accepted)" in done.stderr and "1 no instruction" in done.stderr
    examples, problems = read_acd([out])
    assert not problems and len(examples) == 2
    by_target = {e.target: e for e in examples}
    corrected = by_target["an astronaut in a white suit"]
    assert corrected.existing == "a person in a suit" and corrected.kind == "weaker"
    assert by_target["a cat"].kind == "correct"  # kept as it was
    assert (out.parent / corrected.media).resolve() == (reviewed.parent / "media/astronaut.png")


@pytest.fixture(scope="module")
def shard_run(tmp_path_factory) -> Iterator[tuple[Path, dict[str, bytes]]]:
    """A run captioned (by `stats`) from a WebDataset shard, a Parquet table of image bytes and an
    image at a URL (a loopback server, up while the module runs), every item accepted, half of
    them corrected; and each item's media bytes by its input."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from resume_inputs import write_shard

    folder = tmp_path_factory.mktemp("shards")
    png = {n: testing.sample_image(n).read_bytes() for n in ("astronaut", "chelsea")}
    jpeg = io.BytesIO()
    Image.open(testing.sample_image("coffee")).convert("RGB").save(jpeg, "JPEG")
    png["coffee"] = jpeg.getvalue()  # the table's bytes: a JPEG, told by its bytes alone
    shard = write_shard(folder / "s0.tar", [("a.png", png["astronaut"]), ("c.png", png["chelsea"])])
    pq.write_table(pa.table({"image": [png["coffee"]]}), folder / "t.parquet")
    (folder / "web").mkdir()
    (folder / "web" / "u.png").write_bytes(png["chelsea"])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder / "web"))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/u.png"
    run = folder / "captions.jsonl"
    try:
        done = anycap(
            "caption",
            "-m",
            "stats",
            "-i",
            "Describe it.",
            str(shard),
            str(folder / "t.parquet"),
            url,
            "-o",
            str(run),
        )
        assert done.returncode == 0, done.stderr
        records = read_lines(run)
        journal = ReviewJournal(run)
        for i, r in enumerate(records):
            caption = f"corrected {i}" if i % 2 == 0 else None
            journal.write(r["key"], r, {"status": "accepted", "caption": caption}, 0)
        journal.close()
        yield (
            run,
            {
                f"{shard}#a.png": png["astronaut"],
                f"{shard}#c.png": png["chelsea"],
                f"{folder / 't.parquet'}#row=0": png["coffee"],
                url: png["chelsea"],
            },
        )
    finally:
        server.shutdown()


def test_acd_exports_of_a_file_run_and_a_shard_run_train_the_tiny_acm(
    reviewed, shard_run, tmp_path
):
    """Both exports in one folder, trained on together for one step (one training run: CI time)."""
    acd_export_of(reviewed, tmp_path / "acd" / "reviewed.jsonl")
    run, by_input = shard_run
    out = tmp_path / "acd" / "corrections.jsonl"
    done = anycap("export", str(run), "--as", "acd", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "4 items (4 accepted)" in done.stderr and "skipped" not in done.stderr
    examples, problems = read_acd([out])
    assert not problems and len(examples) == 4
    records = {r["key"]: r for r in read_lines(run)}
    for line in read_lines(out):
        media = out.parent / line["image"]
        assert media.parent == out.parent / "corrections.media"
        assert media.read_bytes() == by_input[records[line["_key"]]["input"]]
    suffixes = sorted(Path(line["image"]).suffix for line in read_lines(out))
    assert suffixes == [
        ".jpg",
        ".png",
        ".png",
        ".png",
    ]  # the table's JPEG bytes sniffed, members named
    acm = testing.build_tiny_acm(tmp_path / "acm")
    trained = anycap(
        "train",
        "--acm",
        str(acm),
        "--acd",
        str(tmp_path / "acd" / "reviewed.jsonl"),
        "--acd",
        str(out),
        "--media-root",
        str(out.parent),
        "--ratio",
        "0:1:1",  # corrections (weaker -> reviewed) and kept captions; no degraded ones here
        "--max-steps",
        "1",
        "--batch-size",
        "1",
        "--max-length",
        "384",
        "-o",
        str(tmp_path / "run"),
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    # the trainer's summary, after the HF Trainer's own log lines: every exported line read, none
    # skipped (their media all found), one step taken
    result = json.loads(trained.stdout[trained.stdout.rindex("\n{\n") + 1 :])
    exported = len(read_lines(tmp_path / "acd" / "reviewed.jsonl")) + len(read_lines(out))
    assert result["train_examples"] + result["val_examples"] == exported
    assert result["skipped_lines"] == 0 and result["steps"] == 1
    assert list((tmp_path / "run").rglob("model.safetensors"))
    # a source gone since the run: its items are skipped and counted, the others still written
    (run.parent / "t.parquet").rename(run.parent / "t.moved")
    again = anycap("export", str(run), "--as", "acd", "-o", str(tmp_path / "again.jsonl"))
    (run.parent / "t.moved").rename(run.parent / "t.parquet")
    assert again.returncode == 0, again.stderr
    assert "3 items (3 accepted)" in again.stderr and "1 media unreadable" in again.stderr
    assert len(read_lines(tmp_path / "again.jsonl")) == 3


def test_an_acd_export_reads_a_bucket_table_with_the_run_s_storage_option_and_media_column(
    s3, tmp_path
):
    """A run over a table in a bucket, its media in a column of another name: the export reads the
    media back with the same `--storage-option` and `--media-column` the run was captioned with."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq
    from s3_server import CREDENTIALS

    png = testing.sample_image("astronaut").read_bytes()
    pq.write_table(pa.table({"pixels": [png], "thumb": [b"not an image"]}), tmp_path / "t.parquet")
    table = s3.upload(tmp_path / "t.parquet", s3.bucket("export-table") + "/t.parquet")
    flags = ["--storage-option", f"endpoint_url={s3.endpoint}", "--media-column", "pixels"]
    env = {**os.environ, **CREDENTIALS}  # the endpoint only through --storage-option
    env.pop("AWS_ENDPOINT_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(ANYCAP), *args], capture_output=True, text=True, env=env, timeout=600
        )

    captions = tmp_path / "captions.jsonl"
    done = run("caption", "-m", "stats", "-i", "Describe it.", table, *flags, "-o", str(captions))
    assert done.returncode == 0, done.stderr
    (record,) = read_lines(captions)
    journal = ReviewJournal(captions)
    journal.write(record["key"], record, {"status": "accepted", "caption": "an astronaut"}, 0)
    journal.close()
    out = tmp_path / "acd.jsonl"
    without = run("export", str(captions), "--as", "acd", "-o", str(out))
    assert without.returncode == 0, without.stderr
    assert "0 items" in without.stderr and "1 media unreadable" in without.stderr
    done = run("export", str(captions), "--as", "acd", "-o", str(out), *flags)
    assert done.returncode == 0, done.stderr
    (line,) = read_lines(out)
    assert (out.parent / line["image"]).read_bytes() == png
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in done.stderr + out.read_text()
