"""Batch runs you can trust: one record per input, a resume that never removes a caption, every
failure retried, on the local engine and on Ray (a local 2-CPU cluster), with inputs whose ids
collide the way they do in real data (`resume_inputs.py`)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import resume_inputs as layout
from test_cli import anycap

from anycap_plugin import get_captioner
from anycap_plugin.batch import BatchRun, plan_inputs, run
from anycap_plugin.errors import JournalBusyError

pytestmark = pytest.mark.ray  # the shared cluster (conftest.ray_cluster)

PREVIOUS = Path(__file__).parent / "data" / "previous_version"
REPEATED_IDS = 5  # k1, k2, k3 in both shards; `a` in the table; `x` in the manifest


@pytest.fixture()
def cluster(ray_cluster):
    """The session's two-node cluster on 127.0.0.1 (`conftest.ray_cluster`)."""
    import ray

    return ray


@pytest.fixture(params=["local", "ray"])
def engine(request):
    if request.param == "ray":
        request.getfixturevalue("cluster")
    return request.param


@pytest.fixture()
def root(tmp_path, monkeypatch):
    layout.build(tmp_path)
    monkeypatch.chdir(tmp_path)  # records name the inputs as given: data/...
    return tmp_path


def caption(engine, out, captioner="stats"):
    if engine == "local":
        items = plan_inputs(layout.INPUTS, layout.INSTRUCTION).items()
        return run(get_captioner(captioner), items, out, batch_size=2)
    from anycap_plugin.batch.ray_engine import run_on_ray

    return run_on_ray(
        captioner, layout.INPUTS, out, instruction=layout.INSTRUCTION, batch_size=2, concurrency=2
    )


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def one_per_input(path):
    rows = records(path)
    assert len(rows) == layout.TOTAL and len({r["key"] for r in rows}) == layout.TOTAL, [
        r["key"] for r in rows
    ]
    return {r["key"]: r for r in rows}


def successes(by_key):
    return {k: r for k, r in by_key.items() if r["error"] is None}


def test_every_input_keeps_one_record_run_after_run(engine, root):
    out = root / "caps.jsonl"
    first = caption(engine, out)
    assert (first.total, first.succeeded, first.failed) == (
        layout.TOTAL,
        layout.TOTAL - layout.FAILING,
        layout.FAILING,
    )
    assert first.repeated_ids == REPEATED_IDS
    done = one_per_input(out)
    failed = sorted(k for k, r in done.items() if r["error"])
    data = root.resolve() / "data"  # keys name files canonically, whatever the working directory
    assert failed[0].startswith(f"file:{data}/photos/broken.jpg") and failed[1].startswith(
        f"shard:{data}/s2.tar#k2\x1f"
    )
    assert (
        done[f"shard:{data}/s0.tar#k2\x1fDescribe it."]["error"] is None
    )  # the same id, a success elsewhere
    assert {r["id"] for r in done.values() if r["key"].startswith("table:")} == {"a", "b", None}

    again = caption(engine, out)  # failures are retried, successes kept as they were
    assert (again.skipped, again.succeeded, again.failed) == (
        layout.TOTAL - layout.FAILING,
        0,
        layout.FAILING,
    )
    assert successes(one_per_input(out)) == successes(done)

    layout.repair(root)
    third = caption(engine, out)
    assert (third.skipped, third.succeeded, third.failed) == (
        layout.TOTAL - layout.FAILING,
        layout.FAILING,
        0,
    )
    final = one_per_input(out)
    assert all(r["error"] is None for r in final.values())
    assert {k: final[k] for k in successes(done)} == successes(done)


SLOW = """
import sys, time
from anycap_plugin.offline_captioners import StatsCaptioner

class Slow(StatsCaptioner):
    def _caption(self, media, instruction, options):
        time.sleep(0.25)
        return super()._caption(media, instruction, options)
"""


def test_a_run_killed_mid_way_resumes_without_losing_or_repeating_a_record(engine, root):
    out = root / "caps.jsonl"
    inputs, instruction = layout.INPUTS, layout.INSTRUCTION
    if engine == "local":
        body = (
            f"from anycap_plugin.batch import plan_inputs, run\n"
            f"run(Slow(), plan_inputs({inputs!r}, {instruction!r}).items(), 'caps.jsonl')\n"
        )
    else:
        import ray

        address = ray.get_runtime_context().gcs_address
        body = (
            f"from anycap_plugin.batch.ray_engine import connect; connect({address!r})\n"
            f"from anycap_plugin.batch.ray_engine import run_on_ray\n"
            f"run_on_ray(Slow, {inputs!r}, 'caps.jsonl', instruction={instruction!r}, batch_size=1, concurrency=2)\n"
        )
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SLOW) + body],
        cwd=root,
        env={**os.environ, "ANYCAP_LOAD_PLUGINS": ""},
    )
    deadline = time.time() + 120
    while (
        time.time() < deadline
        and proc.poll() is None
        and (not out.exists() or len(out.read_bytes().splitlines()) < 4)
    ):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes().endswith(b"\n")  # whole lines only
    before = {r["key"]: r for r in records(out)}
    assert 0 < len(before) < layout.TOTAL

    resumed = caption(engine, out)
    assert resumed.skipped == len(successes(before))
    after = one_per_input(out)
    assert {k: after[k] for k in successes(before)} == successes(before)
    assert sum(r["error"] is not None for r in after.values()) == layout.FAILING


@pytest.mark.parametrize("written", ["first_run", "second_run"])
def test_an_output_written_by_the_previous_version_resumes(engine, root, written):
    """`first_run`: the previous version's first run (its keys collide); `second_run`: after that
    version resumed it, which dropped captions. Nothing finished is redone, nothing kept is lost."""
    out = root / "caps.jsonl"
    shutil.copyfile(PREVIOUS / f"{written}.jsonl", out)
    old = records(out)
    kept = [r for r in old if r["error"] is None]
    summary = caption(engine, out)
    assert summary.skipped == len(kept) and summary.failed == layout.FAILING
    assert summary.succeeded == layout.TOTAL - len(kept) - layout.FAILING
    after = records(out)
    assert len(after) == layout.TOTAL
    assert all(r in after for r in kept)  # every caption it wrote, unchanged
    assert (
        sum(r["error"] is not None for r in after) == layout.FAILING
    )  # its failures superseded by their retries


def test_unreadable_lines_are_moved_aside_and_no_caption_is_ever_removed(root):
    out = root / "caps.jsonl"
    caption("local", out)
    lines = out.read_bytes().splitlines(keepends=True)
    ok = [line for line in lines if json.loads(line)["error"] is None]
    out.write_bytes(
        b"".join(lines) + ok[0] + b"{not json\n" + ok[1][:40]
    )  # a caption twice, a broken line, a torn one
    summary = caption("local", out)
    assert summary.rejected == 2 and summary.skipped == layout.TOTAL - layout.FAILING
    after = out.read_bytes().splitlines(keepends=True)
    assert after.count(ok[0]) == 2 and len(after) == layout.TOTAL + 1
    assert (root / "caps.rejected.jsonl").read_bytes() == b"{not json\n" + ok[1][:40] + b"\n"


def test_two_runs_on_one_output_are_refused(root):
    out = root / "caps.jsonl"
    with BatchRun(out):
        with pytest.raises(JournalBusyError, match="Another run is writing"):
            caption("local", out)
        busy = anycap("caption", "data/photos", "-m", "stats", "-o", str(out), cwd=root)
    assert busy.returncode == 2 and "Another run is writing" in busy.stderr
    assert caption("local", out).succeeded == layout.TOTAL - layout.FAILING  # free again


def test_inputs_that_name_nothing_are_a_usage_error(root):
    (root / "empty").mkdir()
    (root / "empty.jsonl").write_text("\n")
    result = anycap(
        "caption",
        "data/photos/astronaut.png",
        "/nothere/*.tar",
        "empty",
        "empty.jsonl",
        "-m",
        "stats",
        "-o",
        "o.jsonl",
        cwd=root,
    )
    assert result.returncode == 2
    assert "Nothing to caption in '/nothere/*.tar', 'empty', 'empty.jsonl'" in result.stderr
    assert not (root / "o.jsonl").exists()


def test_ray_refuses_what_the_local_engine_refuses_with_the_same_message(cluster, root):
    env = {"ANYCAP_LOAD_PLUGINS": "openai", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    for args in (
        ["-m", "stats", "-O", "bogus=1"],
        ["-m", "openai:gpt-4o"],
        ["-m", "stats", "-p", "acm:/no/such/acm"],
    ):
        said = {}
        for engine in ("local", "ray"):
            result = anycap(
                "caption",
                "data/photos",
                *args,
                "-o",
                f"{engine}.jsonl",
                "--engine",
                engine,
                env=env,
                cwd=root,
            )
            assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[
                -2000:
            ]
            said[engine] = result.stderr.strip().splitlines()[-1]
        assert said["local"] == said["ray"] and said["ray"].startswith("Error: ")


def test_the_progress_bar_counts_every_input_with_its_rate(engine, root):
    result = anycap(
        "caption",
        *layout.INPUTS,
        "-m",
        "stats",
        "-i",
        layout.INSTRUCTION,
        "-o",
        "caps.jsonl",
        "--progress",
        "--engine",
        engine,
        cwd=root,
    )
    assert result.returncode == 1, result.stderr[-2000:]  # two inputs fail
    assert f"{layout.TOTAL}/{layout.TOTAL}" in result.stderr and "item/s" in result.stderr
    assert "14 captioned, 2 failed (CorruptMediaError: 2), 0 already done" in result.stderr
    assert f"{REPEATED_IDS} inputs share an id with an earlier input" in result.stderr
