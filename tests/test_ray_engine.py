"""--engine ray on a local 2-CPU Ray cluster started here: the local runner's records and resume,
`caption_dataset` on a `ray.data.Dataset`, an actor that dies, an unreachable cluster."""

import json
from collections import Counter
import os

import pytest

ray = pytest.importorskip("ray")

from anycap_plugin import get_captioner  # noqa: E402
from anycap_plugin.inputs import expand_inputs  # noqa: E402
from anycap_plugin.ray_engine import caption_dataset, connect, run_on_ray  # noqa: E402
from anycap_plugin.runner import run  # noqa: E402
from anycap_plugin.testing import sample_image  # noqa: E402

from test_cli import anycap  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    os.environ.setdefault("ANYCAP_LOAD_PLUGINS", "")  # the workers inherit it
    connect(num_cpus=2)
    yield ray
    ray.shutdown()


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _comparable(row):
    return {k: v for k, v in row.items() if k != "timings"}


def test_same_records_as_the_local_runner_and_resume(cluster, media_dir, tmp_path):
    (media_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run(get_captioner("stats"), expand_inputs([str(media_dir)], "Describe it."), local, options={"num_frames": 2})
    summary = run_on_ray("stats", expand_inputs([str(media_dir)], "Describe it."), on_ray, batch_size=2,
                         concurrency=2, options={"num_frames": 2})
    assert summary.succeeded == 4 and summary.failed == 1
    by_key = {r["key"]: _comparable(r) for r in _rows(on_ray)}
    assert by_key == {r["key"]: _comparable(r) for r in _rows(local)}
    again = run_on_ray("stats", expand_inputs([str(media_dir)], "Describe it."), on_ray, batch_size=2)
    assert again.skipped == 4 and again.succeeded == 0 and again.failed == 1  # the failure is retried


def test_caption_dataset_takes_and_returns_a_ray_dataset(cluster):
    photo = sample_image("chelsea").read_bytes()
    ds = ray.data.from_items([{"image": {"bytes": photo, "path": "c.png"}, "id": "cat"},
                              {"image": {"bytes": None, "path": None}, "id": "empty"},
                              {"image": {"bytes": photo, "path": "c.png"}, "id": "done-before"}])
    out = caption_dataset(ds, "stats", instruction="Describe it.", batch_size=2, done=["done-before"])
    rows = {r["id"]: r for r in out.take_all()}
    assert set(rows) == {"cat", "empty"}
    assert "451x300" in rows["cat"]["caption"] and rows["cat"]["error"] is None
    assert json.loads(rows["empty"]["error"])["type"] == "ManifestError"


def test_rows_without_media_or_id_get_keys_of_their_own(cluster):
    ds = ray.data.from_items([{"image": None, "uid": "a"}, {"image": None, "uid": "b"}, {"image": None, "uid": "a"}])
    rows = caption_dataset(ds, "stats", instruction="Describe it.").take_all()
    assert all(json.loads(r["error"])["type"] == "ManifestError" for r in rows)
    assert sorted(Counter(r["key"] for r in rows).values()) == [1, 2]  # equal rows share a key, others do not


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
    summary = run_on_ray(dying_once, expand_inputs([str(media_dir)]), out, batch_size=2, options={"num_frames": 2})
    assert flag.exists() and summary.succeeded == 4 and summary.failed == 0
    assert len({r["key"] for r in _rows(out)}) == 4


def test_cli_engine_ray_and_an_unreachable_cluster(media_dir, tmp_path):
    out = tmp_path / "o.jsonl"
    bad = anycap("caption", str(media_dir), "-m", "stats", "-o", str(out), "--engine", "ray",
                 "--ray-address", "127.0.0.1:1")
    assert bad.returncode == 1 and "Cannot reach the Ray cluster at 127.0.0.1:1" in bad.stderr
    assert not out.exists()
    unknown = anycap("caption", str(media_dir), "-m", "stat", "-o", str(out), "--engine", "ray")
    assert unknown.returncode == 2 and "Did you mean: stats" in unknown.stderr
    ok = anycap("caption", str(media_dir), "-m", "stats", "-o", str(out), "--engine", "ray", "-b", "2",
                "-O", "num_frames=2")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "4 captioned, 0 failed" in ok.stderr and len(_rows(out)) == 4


def test_capflow_runs_in_the_actor_pool(cluster, tmp_path):
    capflow = pytest.importorskip("anycap_capflow")
    from anycap_capflow.loopback import respond

    from anycap_plugin.testing_server import ChatCompletionsServer

    images = [str(sample_image(name)) for name in ("astronaut", "chelsea", "coffee")]
    with ChatCompletionsServer(respond) as server:
        url = server.base_url

        def build():  # each actor builds its own CapFlow (engine, loop, clients)
            return capflow.CapFlowCaptioner("loop-model", base_url=url, api_key="k", cache=False)

        summary = run_on_ray(build, expand_inputs(images, "Describe it."), tmp_path / "o.jsonl", batch_size=2,
                             concurrency=2, num_cpus=0.5)
        assert len(server.requests) == 3 * 6
    rows = _rows(tmp_path / "o.jsonl")
    assert summary.succeeded == 3 and {r["meta"]["capflow"]["domain"] for r in rows} == {"natural"}
    assert all(r["usage"]["base"]["by_role"]["agent"]["calls"] == 3 for r in rows)
