"""Batch runs: inputs, failures kept per item, resume, crash safety, concurrency and batching."""

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from anycap_plugin import BaseCaptioner, Caption
from anycap_plugin.batch import WorkItem, expand_inputs, run
from anycap_plugin.offline_captioners import InstantCaptioner, StatsCaptioner


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_inputs_from_folders_globs_files_and_manifests(tmp_path, media_dir):
    manifest = tmp_path / "items.jsonl"
    manifest.write_text(
        json.dumps({"media": "media/astronaut.png", "instruction": "Describe the person."})
        + "\n"
        + "{not json\n"
        + json.dumps({"media": str(media_dir / "chirp.wav"), "id": 7})
        + "\n"
        + json.dumps({"instruction": "no media"})
        + "\n\n"
    )
    from_folder = list(expand_inputs([str(media_dir)], "brief"))
    assert [os.path.basename(i.input) for i in from_folder] == [
        "astronaut.png",
        "bigbuckbunny.mp4",
        "chelsea.png",
        "chirp.wav",
    ]
    assert {i.instruction for i in from_folder} == {"brief"}
    from_glob = list(expand_inputs([str(media_dir / "*.png")]))
    assert [os.path.basename(i.input) for i in from_glob] == ["astronaut.png", "chelsea.png"]
    from_manifest = list(expand_inputs([str(manifest)], "default"))
    first = from_manifest[0]
    assert (first.input, first.instruction) == (
        str(tmp_path / "media" / "astronaut.png"),
        "Describe the person.",
    )
    # no id: placed by its content, so inserting a line moves no key; its line number is an alias
    assert first.key == f"manifest:{manifest}#media=media/astronaut.png\x1fDescribe the person."
    assert first.aliases == (f"manifest:{manifest}:1\x1fDescribe the person.",)
    assert from_manifest[2].key == f"manifest:{manifest}#id=7\x1fdefault"
    assert from_manifest[1].problem is not None and from_manifest[1].input.endswith("items.jsonl:2")
    assert from_manifest[2].id == "7" and from_manifest[2].instruction == "default"
    assert from_manifest[3].problem is not None and "items.jsonl:4" in str(from_manifest[3].problem)
    assert len(from_manifest) == 4


def test_bad_items_are_recorded_and_the_rest_go_on(tmp_path, media_dir, video_path):
    (media_dir / "empty.png").write_bytes(b"")
    (media_dir / "notes.mp3").write_text("not audio at all " * 20)
    (media_dir / "cut.mp4").write_bytes(video_path.read_bytes()[:30000])
    out = tmp_path / "out.jsonl"
    (media_dir / "names.jsonl").write_text(
        '{"media": "missing.jpg"}\n'
    )  # a manifest may name what is not there
    items = list(expand_inputs([str(media_dir), str(media_dir / "names.jsonl")]))
    summary = run(StatsCaptioner(), items, out)
    rows = {os.path.basename(r["input"]): r for r in read_jsonl(out)}
    assert len(rows) == len(items) == 8
    assert summary.succeeded == 4 and summary.failed == 4 and not summary.ok
    assert rows["empty.png"]["error"]["type"] == "EmptyMediaError"
    assert rows["notes.mp3"]["error"]["type"] == "UnsupportedMediaError"
    assert rows["cut.mp4"]["error"]["type"] in (
        "CorruptMediaError",
        "UnsupportedMediaError",
        "EmptyMediaError",
    )
    assert rows["missing.jpg"]["error"]["type"] == "MediaNotFoundError"
    assert all(r["caption"] is None for r in rows.values() if r["error"])
    good = rows["astronaut.png"]
    assert good["error"] is None and "512x512" in good["caption"]
    assert (
        good["modality"] == "image"
        and good["models"] == {"base": "stats"}
        and good["timings"]["base"] > 0
    )


def test_resume_skips_done_items_and_retries_failed_ones(tmp_path, media_dir, image_path):
    out = tmp_path / "out.jsonl"
    late = media_dir / "late.png"
    late.write_bytes(b"")  # not written yet: a failure
    items = list(expand_inputs([str(media_dir)], "brief"))
    first = run(StatsCaptioner(), items, out)
    assert (first.succeeded, first.failed) == (4, 1)
    shutil.copyfile(image_path, late)
    second = run(StatsCaptioner(), items, out)
    assert (second.skipped, second.succeeded, second.failed) == (4, 1, 0)
    rows = read_jsonl(out)
    assert len(rows) == 5 and all(r["error"] is None for r in rows)  # one line per input
    third = run(StatsCaptioner(), items, out)
    assert (third.skipped, third.succeeded) == (5, 0)
    # a different instruction is a different item
    other = run(StatsCaptioner(), list(expand_inputs([str(media_dir)], "detailed")), out)
    assert other.succeeded == 5


def test_a_torn_last_line_is_dropped_and_redone(tmp_path, media_dir):
    out = tmp_path / "out.jsonl"
    items = list(expand_inputs([str(media_dir)]))
    run(InstantCaptioner(), items, out)
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:-1]) + lines[-1][:17])  # as if killed mid-write
    again = run(InstantCaptioner(), items, out)
    assert (again.skipped, again.succeeded) == (3, 1)
    assert len(read_jsonl(out)) == 4


class SlowCaptioner(BaseCaptioner):
    id = "slow"

    def __init__(self, delay=0.05):
        self.delay, self.active, self.peak = delay, 0, 0
        self.lock = threading.Lock()

    def _caption(self, media, instruction, options):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1
        return Caption(text=f"slow {instruction}")


def test_concurrency_keeps_several_items_in_flight(tmp_path, image_path):
    cap = SlowCaptioner()
    items = [WorkItem(str(image_path), f"i{n}") for n in range(24)]
    summary = run(cap, items, tmp_path / "o.jsonl", concurrency=6)
    assert summary.succeeded == 24
    assert cap.peak == 6
    assert sorted(r["instruction"] for r in read_jsonl(tmp_path / "o.jsonl")) == sorted(
        f"i{n}" for n in range(24)
    )


class EventCaptioner(BaseCaptioner):
    """Logs when each item's model step starts and ends, to see what the runner decoded meanwhile."""

    id = "events"

    def __init__(self, events):
        self.events = events

    def _caption(self, media, instruction, options):
        self.events.append(("model-start", media.ref))
        time.sleep(0.15)
        self.events.append(("model-end", media.ref))
        return Caption(text=f"{media.image().size}")


def test_the_next_batch_is_decoded_while_the_model_works(tmp_path, monkeypatch):
    from anycap_plugin.media import Media
    from anycap_plugin.testing.samples import sample_image

    events = []
    decode = Media.image

    def logged_decode(self):
        if self._image is None:
            events.append(("decode", self.ref))
        return decode(self)

    monkeypatch.setattr(Media, "image", logged_decode)
    images = []
    for n, name in enumerate(("astronaut", "chelsea", "coffee", "astronaut")):
        images.append(str(shutil.copyfile(sample_image(name), tmp_path / f"{n}-{name}.png")))
    items = [WorkItem(p, f"Describe it ({n}).") for n, p in enumerate(images)]
    run(EventCaptioner(events), items, tmp_path / "ahead.jsonl")
    # the captioner is seen decoding item 0; from item 2 on, each is decoded during the previous model step
    assert events.index(("decode", images[1])) > events.index(("model-start", images[1]))
    for before, after in itertools.pairwise(images[1:]):
        assert events.index(("decode", after)) < events.index(("model-end", before))

    events.clear()
    run(InstantCaptioner(), items, tmp_path / "instant.jsonl")
    assert events == []  # a captioner that never decodes gets nothing decoded for it

    run(EventCaptioner(events), items, tmp_path / "plain.jsonl", prefetch=False)
    assert events.index(("decode", images[3])) > events.index(("model-end", images[2]))
    strip = [
        {k: v for k, v in r.items() if k != "timings"} for r in read_jsonl(tmp_path / "plain.jsonl")
    ]
    assert [
        {k: v for k, v in r.items() if k != "timings"} for r in read_jsonl(tmp_path / "ahead.jsonl")
    ] == strip


class PickyBatcher(BaseCaptioner):
    """Batches for real, and fails the whole batch when one instruction is 'boom'."""

    id = "picky"

    def __init__(self):
        self.batch_sizes = []

    def _caption(self, media, instruction, options):
        return self._caption_batch([media], [instruction], options)[0]

    def _caption_batch(self, media, instructions, options):
        self.batch_sizes.append(len(media))
        if "boom" in instructions:
            raise RuntimeError("model crashed on this batch")
        return [Caption(text=i) for i in instructions]


def test_a_failing_batch_is_split_to_find_the_bad_item(tmp_path, image_path):
    cap = PickyBatcher()
    items = [WorkItem(str(image_path), x) for x in ["a", "b", "boom", "c", "d", "e"]]
    summary = run(cap, items, tmp_path / "o.jsonl", batch_size=4)
    assert (summary.succeeded, summary.failed) == (5, 1)
    assert cap.batch_sizes[:2] in ([4, 1], [4, 2])  # batches as asked, then the retry one by one
    bad = [r for r in read_jsonl(tmp_path / "o.jsonl") if r["error"]]
    assert bad[0]["instruction"] == "boom" and bad[0]["error"] == {
        "type": "RuntimeError",
        "message": "model crashed on this batch",
    }


def test_sigkill_loses_at_most_the_items_in_flight(tmp_path, image_path):
    out = tmp_path / "killed.jsonl"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_runner import SlowCaptioner
        from anycap_plugin.batch import WorkItem, run
        items = [WorkItem({str(image_path)!r}, "i%d" % n) for n in range(400)]
        run(SlowCaptioner(delay=0.01), items, {str(out)!r}, concurrency=4)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.stat().st_size < 4000):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    raw = out.read_bytes()
    assert raw.endswith(b"\n")  # no torn line
    done = read_jsonl(out)
    assert 0 < len(done) < 400
    items = [WorkItem(str(image_path), f"i{n}") for n in range(400)]
    resumed = run(SlowCaptioner(delay=0.0), items, out, concurrency=4)
    assert resumed.skipped == len(done) and resumed.succeeded == 400 - len(done)
    assert sorted(r["instruction"] for r in read_jsonl(out)) == sorted(f"i{n}" for n in range(400))


def test_invalid_run_options_fail_before_any_work(tmp_path, image_path):
    from anycap_plugin.errors import OptionsError

    with pytest.raises(OptionsError):
        run(
            StatsCaptioner(), [WorkItem(str(image_path))], tmp_path / "o.jsonl", options={"nope": 1}
        )
    assert not (tmp_path / "o.jsonl").exists()
