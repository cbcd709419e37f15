"""--engine ray on a local 2-CPU Ray cluster started here: the local runner's records and resume,
`caption_dataset` on a `ray.data.Dataset`, an actor that dies, an unreachable cluster."""

import json
import os
from collections import Counter

import pytest

ray = pytest.importorskip("ray")

from test_cli import anycap

from anycap_plugin import get_captioner
from anycap_plugin.batch import (
    expand_inputs,
    run,
)
from anycap_plugin.batch.ray_engine import caption_dataset, run_on_ray
from anycap_plugin.testing import sample_image

pytestmark = pytest.mark.ray  # the shared cluster (conftest.ray_cluster)


@pytest.fixture()
def cluster(ray_cluster):
    """The session's two-node cluster on 127.0.0.1 (`conftest.ray_cluster`)."""
    return ray


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _comparable(row):
    """A record as both engines write it: timings differ, and Ray says which nodes did the work."""
    out = {k: v for k, v in row.items() if k != "timings"}
    if isinstance(out.get("meta"), dict):
        out["meta"] = {k: v for k, v in out["meta"].items() if k != "ray"}
    return out


def test_same_records_as_the_local_runner_and_resume(cluster, media_dir, tmp_path):
    (media_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run(
        get_captioner("stats"),
        expand_inputs([str(media_dir)], "Describe it."),
        local,
        options={"num_frames": 2},
    )
    summary = run_on_ray(
        "stats",
        [str(media_dir)],
        on_ray,
        instruction="Describe it.",
        batch_size=2,
        concurrency=2,
        options={"num_frames": 2},
    )
    assert summary.succeeded == 4 and summary.failed == 1
    by_key = {r["key"]: _comparable(r) for r in _rows(on_ray)}
    assert by_key == {r["key"]: _comparable(r) for r in _rows(local)}
    again = run_on_ray("stats", [str(media_dir)], on_ray, instruction="Describe it.", batch_size=2)
    assert (
        again.skipped == 4 and again.succeeded == 0 and again.failed == 1
    )  # the failure is retried


def test_caption_dataset_takes_and_returns_a_ray_dataset(cluster):
    photo = sample_image("chelsea").read_bytes()
    ds = ray.data.from_items(
        [
            {"image": {"bytes": photo, "path": "c.png"}, "id": "cat"},
            {"image": {"bytes": None, "path": None}, "id": "empty"},
            {"image": {"bytes": photo, "path": "c.png"}, "id": "done-before"},
        ]
    )
    out = caption_dataset(
        ds, "stats", instruction="Describe it.", batch_size=2, done=["done-before"]
    )
    rows = {r["id"]: r for r in out.take_all()}
    assert set(rows) == {"cat", "empty"}
    assert "451x300" in rows["cat"]["caption"] and rows["cat"]["error"] is None
    assert json.loads(rows["empty"]["error"])["type"] == "ManifestError"


def test_rows_without_media_or_id_get_keys_of_their_own(cluster):
    ds = ray.data.from_items(
        [{"image": None, "uid": "a"}, {"image": None, "uid": "b"}, {"image": None, "uid": "a"}]
    )
    rows = caption_dataset(ds, "stats", instruction="Describe it.").take_all()
    assert all(json.loads(r["error"])["type"] == "ManifestError" for r in rows)
    assert sorted(Counter(r["key"] for r in rows).values()) == [
        1,
        2,
    ]  # equal rows share a key, others do not


def test_an_actor_that_dies_has_its_batch_retried(cluster, media_dir, tmp_path):
    flag = tmp_path / "died-once"

    def dying_once():  # built in each actor; the first actor to caption dies mid-batch
        from anycap_plugin import get_captioner as build

        captioner = build("stats")
        original = captioner.caption_each

        def caption_each(media, instructions, **options):
            if not flag.exists():
                flag.write_text("x")
                os._exit(1)
            return original(media, instructions, **options)

        captioner.caption_each = caption_each
        return captioner

    out = tmp_path / "o.jsonl"
    summary = run_on_ray(dying_once, [str(media_dir)], out, batch_size=2, options={"num_frames": 2})
    assert flag.exists() and summary.succeeded == 4 and summary.failed == 0
    assert len({r["key"] for r in _rows(out)}) == 4


def test_cli_engine_ray_and_an_unreachable_cluster(media_dir, tmp_path):
    out = tmp_path / "o.jsonl"
    bad = anycap(
        "caption",
        str(media_dir),
        "-m",
        "stats",
        "-o",
        str(out),
        "--engine",
        "ray",
        "--ray-address",
        "127.0.0.1:1",
    )
    assert bad.returncode == 2 and "Cannot reach the Ray cluster at 127.0.0.1:1" in bad.stderr
    assert not out.exists()
    unknown = anycap("caption", str(media_dir), "-m", "stat", "-o", str(out), "--engine", "ray")
    assert unknown.returncode == 2 and "Did you mean: stats" in unknown.stderr
    ok = anycap(
        "caption",
        str(media_dir),
        "-m",
        "stats",
        "-o",
        str(out),
        "--engine",
        "ray",
        "-b",
        "2",
        "-O",
        "num_frames=2",
        "-p",
        "identity",  # the chain goes to the actors as a value (wrapping.Chain), built there once
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "4 captioned, 0 failed" in ok.stderr and len(_rows(out)) == 4
    assert all(r["models"] == {"base": "stats", "post": "identity"} for r in _rows(out))
    assert "Warning" not in ok.stderr and "deprecated" not in ok.stderr, ok.stderr


def test_capflow_runs_in_the_actor_pool(cluster, tmp_path):
    capflow = pytest.importorskip("anycap_capflow")
    from anycap_capflow.loopback import respond

    from anycap_plugin.testing.server import ChatCompletionsServer

    images = [str(sample_image(name)) for name in ("astronaut", "chelsea", "coffee")]
    with ChatCompletionsServer(respond) as server:
        url = server.base_url

        def build():  # each actor builds its own CapFlow (engine, loop, clients)
            return capflow.CapFlowCaptioner("loop-model", base_url=url, api_key="k", cache=False)

        summary = run_on_ray(
            build,
            images,
            tmp_path / "o.jsonl",
            instruction="Describe it.",
            batch_size=2,
            concurrency=2,
            num_cpus=0.5,
        )
        assert len(server.requests) == 3 * 6
    rows = _rows(tmp_path / "o.jsonl")
    assert summary.succeeded == 3 and {r["meta"]["capflow"]["domain"] for r in rows} == {"natural"}
    assert all(r["usage"]["base"]["by_role"]["agent"]["calls"] == 3 for r in rows)


def test_bad_shards_and_lines_that_stop_ray_data_readers_are_items_on_both_engines(
    cluster, tmp_path
):
    """Ray's read_webdataset fails the whole dataset on a truncated shard or a `__key__` that comes
    back later in a shard, and read_json on one broken line; here each is one item's record."""
    from resume_inputs import write_shard as tar

    photo = sample_image("chelsea").read_bytes()

    tar(tmp_path / "whole.tar", [("k1.png", photo), ("k2.png", photo), ("k3.png", photo)])
    (tmp_path / "cut.tar").write_bytes((tmp_path / "whole.tar").read_bytes()[: len(photo) * 3 // 2])
    tar(tmp_path / "again.tar", [("k1.png", photo), ("k2.png", photo), ("k1.jpg", photo)])
    (tmp_path / "m.jsonl").write_text(json.dumps({"media": "whole.tar", "id": "t"}) + "\n{broken\n")
    inputs = [str(tmp_path / n) for n in ("cut.tar", "again.tar", "m.jsonl")]
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run(get_captioner("stats"), expand_inputs(inputs, "Describe it."), local)
    summary = run_on_ray(
        "stats", inputs, on_ray, instruction="Describe it.", batch_size=2, concurrency=2
    )
    assert {r["key"]: _comparable(r) for r in _rows(on_ray)} == {
        r["key"]: _comparable(r) for r in _rows(local)
    }
    keys = {r["key"].split("\x1f")[0]: r for r in _rows(on_ray)}
    assert keys[f"shard:{tmp_path / 'again.tar'}#k1@2"]["error"] is None  # a sample of its own
    assert (
        "truncated or unreadable at k2"
        in keys[f"shard:{tmp_path / 'cut.tar'}#k2"]["error"]["message"]
    )
    assert (
        keys[f"manifest:{tmp_path / 'm.jsonl'}#media=line:unreadable"]["error"]["type"]
        == "ManifestError"
    )
    assert (
        summary.total == 7 and summary.succeeded == 4 and summary.repeated_ids == 3
    )  # k1, k2 in both; k1 again


def test_media_files_and_a_manifest_in_one_run_and_its_resume(cluster, media_dir, tmp_path):
    """Media files listed by the driver (items made there) and a manifest read on the cluster, in
    one pipeline: the local engine's records, and a resume that finds each done (none sent)."""
    photo = media_dir / "chelsea.png"
    (tmp_path / "m.jsonl").write_text(
        "".join(json.dumps({"media": str(photo), "id": f"m{i}"}) + "\n" for i in range(3))
    )
    inputs = [str(media_dir), str(tmp_path / "m.jsonl")]
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run(get_captioner("stats"), expand_inputs(inputs, "Describe it."), local)
    summary = run_on_ray(
        "stats", inputs, on_ray, instruction="Describe it.", batch_size=2, concurrency=2
    )
    assert summary.total == 7 and summary.succeeded == 7, summary
    assert {r["key"]: _comparable(r) for r in _rows(on_ray)} == {
        r["key"]: _comparable(r) for r in _rows(local)
    }
    again = run_on_ray("stats", inputs, on_ray, instruction="Describe it.", batch_size=2)
    assert (again.total, again.skipped, again.succeeded) == (7, 7, 0)
    assert len(_rows(on_ray)) == 7


def test_an_item_that_always_kills_its_worker_is_recorded_and_the_run_finishes(
    cluster, media_dir, tmp_path
):
    def killed_by_chelsea():  # built in each actor: the worker dies whenever it meets chelsea.png
        from anycap_plugin import get_captioner as build

        captioner = build("stats")
        original = captioner.caption_each

        def caption_each(media, instructions, **options):
            if any("chelsea" in str(m) for m in media):
                os._exit(1)
            return original(media, instructions, **options)

        captioner.caption_each = caption_each
        return captioner

    out = tmp_path / "o.jsonl"
    summary = run_on_ray(
        killed_by_chelsea, [str(media_dir)], out, batch_size=4, options={"num_frames": 2}
    )
    rows = {os.path.basename(r["input"]): r for r in _rows(out)}
    assert summary.succeeded == 3 and summary.failed == 1 and len(rows) == 4
    assert rows["chelsea.png"]["error"]["type"] == "WorkerCrashError"
    assert "ended its Ray worker each of the 3 times" in rows["chelsea.png"]["error"]["message"]


def test_an_actor_that_cannot_build_its_captioner_fails_with_that_error_alone(
    cluster, media_dir, tmp_path
):
    from anycap_plugin.errors import OptionsError

    def broken():  # what preflight cannot see: the captioner fails to build on the worker
        from anycap_plugin.errors import OptionsError as Refused

        raise Refused("No such model on this worker.", hint="Check the spec.")

    with pytest.raises(OptionsError) as refused:
        run_on_ray(broken, [str(media_dir)], tmp_path / "o.jsonl")
    assert str(refused.value) == "No such model on this worker. Check the spec."
