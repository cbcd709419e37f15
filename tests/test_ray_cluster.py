"""Running beyond one machine, end to end: inputs in a bucket (moto's S3 server on loopback), a real
multi-node Ray cluster on 127.0.0.1 (`ray.cluster_utils`, each node a raylet of its own) joined
with `--ray-address 127.0.0.1:PORT`, an API captioner whose key reaches the actors of a cluster
started without it, a worker node removed mid-run: one record per input in the bucket, and the
same command from another folder finds everything done in the store. (A driver killed mid-run
and restarted elsewhere with no local state: `test_storage.py`.)"""

import itertools
import json
import os
import subprocess
import sys
import threading
import time

import pytest
from test_cli import ANYCAP

from anycap_plugin.testing.responders import echo_responder
from anycap_plugin.testing.server import ChatCompletionsServer

ITEMS = 160

pytestmark = (
    pytest.mark.ray
)  # runs beside the other tests of the shared cluster (conftest.ray_cluster)


def _anycap(*args):
    return (
        [str(ANYCAP)] + list(args)
        if ANYCAP.exists()
        else [sys.executable, "-m", "anycap_plugin", *args]
    )


def test_a_run_over_a_bucket_survives_a_lost_node(
    ray_cluster, s3, s3_env, tmp_path, tmp_path_factory, image_path
):
    assert "OPENAI_API_KEY" not in os.environ  # the cluster was started without it
    bucket = s3.bucket(f"c{time.time_ns()}")
    s3.upload(image_path, f"{bucket}/media/a.png")
    # eight manifests: eight read tasks, on whichever nodes Ray puts them, and eight blocks, which
    # the 4 actors take in two rounds: the first round is flushed while the second waits
    for part in range(8):
        rows = [{"media": "../media/a.png", "id": f"{part}-{i}"} for i in range(ITEMS // 8)]
        (tmp_path / f"m{part}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        s3.upload(tmp_path / f"m{part}.jsonl", f"{bucket}/lists/m{part}.jsonl")
    extra = ray_cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1")
    ray_cluster.wait_for_nodes(timeout=60)
    out = f"{bucket}/run/caps.jsonl"
    parts = f"{bucket}/run/caps.jsonl.state/parts/"
    host, port = ray_cluster.address.rsplit(":", 1)
    assert host == "127.0.0.1"
    seen = _Parts(s3, parts)
    node_gone, answered = threading.Event(), itertools.count()

    def held_until_the_node_is_gone(body):
        # the second round waits for the node's removal, so that it happens mid-run however
        # slowly this machine polls the store (records reach the driver a whole block at a time)
        if next(answered) >= ITEMS // 2:
            node_gone.wait(timeout=120)
        return echo_responder(body)

    with ChatCompletionsServer(held_until_the_node_is_gone, delay=0.25) as api:
        env = {
            **os.environ,
            **s3.env,
            "OPENAI_API_KEY": "sk-loopback-not-printed",
            "OPENAI_BASE_URL": api.base_url,
            "ANYCAP_LOAD_PLUGINS": "openai",
            "ANYCAP_FLUSH_SECONDS": "0.5",
            "ANYCAP_LEASE_SECONDS": "3",
        }
        command = _anycap(
            "caption",
            f"{bucket}/lists/*.jsonl",
            "-m",
            "openai:loopback-model",
            "-i",
            "Describe it.",
            "-o",
            out,
            "--engine",
            "ray",
            "--ray-address",
            f"127.0.0.1:{port}",
            "-c",
            "4",
            "--cpus-per-actor",
            "1",
        )  # 4 actors of 1 CPU on nodes of 2: on two nodes at least
        log = open(tmp_path / "first.log", "w+")  # noqa: SIM115 - the driver's stderr, read after
        first = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=log, text=True)
        first.stderr = log
        removed_at = len(seen.wait_for(24, first))
        ray_cluster.remove_node(extra, allow_graceful=False)  # a worker node lost mid-run
        node_gone.set()
        assert first.wait(timeout=300) == 0, _tail(first)
        assert removed_at < ITEMS and "sk-loopback-not-printed" not in _tail(first)

        # the same command from another folder, with no local state: everything is found done in the store
        elsewhere = tmp_path_factory.mktemp("another-machine")
        second = subprocess.run(
            command, env=env, cwd=elsewhere, capture_output=True, text=True, timeout=300
        )
    assert (
        second.returncode == 0 and f"0 captioned, 0 failed, {ITEMS} already done" in second.stderr
    ), second.stderr[-3000:]
    final = [json.loads(line) for line in s3.get(out).decode().splitlines()]
    assert len(final) == ITEMS and len({r["key"] for r in final}) == ITEMS
    assert all(r["error"] is None and r["caption"] for r in final)
    caption_nodes = {r["meta"]["ray"]["caption_node"] for r in final}
    assert len(caption_nodes) >= 2, (
        caption_nodes
    )  # where read tasks run (no CPU of their own) is Ray's choice
    assert all(r["meta"]["ray"]["read_node"] for r in final)


class _Parts:
    """The records flushed to the store so far, each part read once."""

    def __init__(self, s3, parts):
        self.s3, self.parts, self.read = s3, parts, {}
        self.bucket = parts.removeprefix("s3://").partition("/")[0]

    def records(self):
        for key in self.s3.keys(self.parts):
            if key not in self.read:
                body = self.s3.get(f"s3://{self.bucket}/{key}").decode()
                self.read[key] = [json.loads(line) for line in body.splitlines()]
        return [r for key in sorted(self.read) for r in self.read[key]]

    def wait_for(self, n, proc, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.records()
            if len(got) >= n:
                return got
            if proc.poll() is not None:
                pytest.fail(f"the driver ended early: {_tail(proc)}")
            time.sleep(0.1)
        pytest.fail(f"fewer than {n} records flushed in {timeout} s: {_tail(proc)}")


def _tail(proc):
    proc.stderr.seek(0)
    return proc.stderr.read()[-4000:]
