"""Runs beyond one disk: a run never reads what it writes, keys that do not depend on the working
directory, inputs and outputs in object storage (moto's S3 server on loopback, the real clients),
a driver killed and restarted elsewhere, two drivers refused, bad locations refused before work."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import resume_inputs as layout
from test_cli import anycap

from anycap_plugin.batch import plan_inputs, run
from anycap_plugin.batch.outputs import run_files
from anycap_plugin.errors import NoInputsError, OutputIsInputError
from anycap_plugin.offline_captioners import StatsCaptioner


def records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture()
def root(tmp_path, monkeypatch):
    layout.build(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---- a run never reads what it writes ------------------------------------------------------------


def test_a_resume_never_reads_its_own_output_as_input(root):
    data = root / "data"
    (data / "more.jsonl").write_text(json.dumps({"media": "photos/chelsea.png"}) + "\n")
    first = anycap("caption", "data/*.jsonl", "-m", "stats", "-o", "data/caps.jsonl", cwd=root)
    assert first.returncode == 0, first.stderr
    assert len(records(data / "caps.jsonl")) == 4  # m.jsonl's three lines and more.jsonl's one
    again = anycap("caption", "data/*.jsonl", "-m", "stats", "-o", "data/caps.jsonl", cwd=root)
    assert again.returncode == 0 and "0 captioned, 0 failed, 4 already done" in again.stderr, (
        again.stderr
    )
    assert len(records(data / "caps.jsonl")) == 4
    assert not (data / "caps.rejected.jsonl").exists()


def test_naming_the_output_as_an_input_is_refused_and_changes_nothing(root):
    manifest = root / "self.jsonl"
    manifest.write_text(json.dumps({"media": "data/photos/chelsea.png"}) + "\n")
    before = manifest.read_bytes()
    for output in ("self.jsonl", str(manifest)):  # however it is spelled
        result = anycap("caption", "self.jsonl", "-m", "stats", "-o", output, cwd=root)
        assert result.returncode == 2 and "this run's own output" in result.stderr, result.stderr
    assert manifest.read_bytes() == before and not (root / "self.rejected.jsonl").exists()
    journal = root / "t.parquet.journal.jsonl"
    journal.write_text("")
    with pytest.raises(OutputIsInputError):
        plan_inputs([str(journal)], run_files=run_files("t.parquet"))
    assert run_files("caps.jsonl") >= {
        str(root / "caps.reviews.jsonl"),
        str(root / "caps.jsonl.lock"),
        str(root / "caps.rejected.jsonl"),
    }


def test_caption_sidecars_beside_shards_are_not_read_as_manifests(root):
    first = anycap("caption", "data/*", "-m", "stats", "-o", "caps.jsonl", "--sidecars", cwd=root)
    assert first.returncode == 1 and (root / "data" / "s0.captions.jsonl").exists(), first.stderr
    again = anycap("caption", "data/*", "-m", "stats", "-o", "caps.jsonl", "--sidecars", cwd=root)
    assert "0 captioned, 2 failed (CorruptMediaError: 2), 14 already done" in again.stderr, (
        again.stderr
    )  # no sidecar read
    assert len(records(root / "caps.jsonl")) == layout.TOTAL


def test_a_manifest_line_naming_the_output_is_that_items_error(root):
    (root / "m.jsonl").write_text(
        json.dumps({"media": "caps.jsonl"})
        + "\n"
        + json.dumps({"media": "data/photos/chelsea.png"})
        + "\n"
    )
    (root / "caps.jsonl").write_text("")
    plan = plan_inputs(["m.jsonl"], run_files=run_files("caps.jsonl"))
    items = list(plan.items())
    assert "this run's own output" in str(items[0].problem) and items[1].problem is None


# ---- keys independent of the working directory -------------------------------------------------


def test_keys_do_not_depend_on_the_working_directory_or_spelling(root):
    out = root / "caps.jsonl"
    first = run(StatsCaptioner(), plan_inputs(["data/photos"]).items(), out)
    assert first.total == 3
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    for spelled, cwd in (
        (str(root / "data" / "photos"), root),
        ("../data/photos", elsewhere),
        ("./data//photos/", root),
    ):
        os.chdir(cwd)
        again = run(StatsCaptioner(), plan_inputs([spelled]).items(), out)
        assert (again.skipped, again.succeeded) == (2, 0), (
            spelled
        )  # the broken one is retried, nothing redone
    assert len(records(out)) == 3


def test_inserting_a_manifest_line_moves_no_other_key(root):
    manifest = root / "m2.jsonl"
    lines = [
        {"media": "data/photos/astronaut.png"},
        {"media": "data/photos/chelsea.png"},
        {"media": "data/photos/astronaut.png"},
    ]  # a repeat: @2
    manifest.write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = root / "caps.jsonl"
    assert run(StatsCaptioner(), plan_inputs(["m2.jsonl"]).items(), out).succeeded == 3
    (root / "data" / "new.png").write_bytes((root / "data" / "photos" / "chelsea.png").read_bytes())
    manifest.write_text("".join(json.dumps(r) + "\n" for r in [{"media": "data/new.png"}] + lines))
    again = run(StatsCaptioner(), plan_inputs(["m2.jsonl"]).items(), out)
    assert (again.skipped, again.succeeded) == (3, 1)
    rows = records(out)
    assert len(rows) == 4 and sum(r["input"].endswith("new.png") for r in rows) == 1


def test_a_manifest_resumed_from_an_output_keyed_by_line_numbers(root):
    """What the previous version wrote for a manifest without ids (`manifest:FILE:LINE`, the path as
    spelled) still resumes from the same folder: nothing is captioned twice."""
    (root / "m3.jsonl").write_text(json.dumps({"media": "data/photos/astronaut.png"}) + "\n")
    out = root / "caps.jsonl"
    key = "manifest:m3.jsonl:1\x1fDescribe it."
    out.write_text(
        json.dumps(
            {
                "key": key,
                "input": "data/photos/astronaut.png",
                "id": None,
                "instruction": "Describe it.",
                "caption": "old",
                "error": None,
            }
        )
        + "\n"
    )
    summary = run(StatsCaptioner(), plan_inputs(["m3.jsonl"], "Describe it.").items(), out)
    assert (summary.skipped, summary.succeeded) == (1, 0) and len(records(out)) == 1


# ---- refusals before any work --------------------------------------------------------------------


def test_an_unwritable_output_and_a_missing_input_are_refused_before_any_work(root):
    (root / "afile").write_text("x")
    result = anycap("caption", "data/photos", "-m", "stats", "-o", "afile/caps.jsonl", cwd=root)
    assert (
        result.returncode == 2
        and "Cannot write the output" in result.stderr
        and "Traceback" not in result.stderr
    )
    missing = anycap(
        "caption", "data/photos", "data/nothere.png", "-m", "stats", "-o", "caps.jsonl", cwd=root
    )
    assert missing.returncode == 2 and "'data/nothere.png' does not exist" in missing.stderr
    assert not (root / "caps.jsonl").exists()
    with pytest.raises(NoInputsError, match="does not exist"):
        plan_inputs(["data/nothere.png"])


# ---- object storage ------------------------------------------------------------------------------


@pytest.fixture()
def bucket(s3, s3_env, root):
    """The resume layout's inputs in a bucket of their own, and a manifest naming media relatively."""
    name = f"b{time.time_ns()}"
    url = s3.bucket(name)
    data = root / "data"
    for path in sorted(data.rglob("*")):
        if path.is_file():
            s3.upload(path, f"{url}/data/{path.relative_to(data)}")
    return url


def test_inputs_in_a_bucket_and_the_output_published_there(s3, bucket, root):
    out = f"{bucket}/run/caps.jsonl"
    inputs = [
        f"{bucket}/data/photos/",
        f"{bucket}/data/s*.tar",
        f"{bucket}/data/t.parquet",
        f"{bucket}/data/m.jsonl",
    ]
    result = anycap(
        "caption", *inputs, "-m", "stats", "-i", layout.INSTRUCTION, "-o", out, env=s3.env, cwd=root
    )
    assert result.returncode == 1, result.stderr  # the two broken inputs
    assert "14 captioned, 2 failed" in result.stderr
    rows = [json.loads(line) for line in s3.get(out).decode().splitlines()]
    assert len(rows) == layout.TOTAL and len({r["key"] for r in rows}) == layout.TOTAL
    assert all(r["key"].split(":", 1)[1].startswith(f"{bucket}/") for r in rows)
    manifest = [r for r in rows if r["key"].startswith("manifest:")]
    assert {r["input"] for r in manifest} == {
        f"{bucket}/data/photos/astronaut.png",
        f"{bucket}/data/photos/chelsea.png",
    }
    assert all(
        r["error"] is None for r in manifest
    )  # media named relative to the manifest's URL, fetched

    again = anycap(
        "caption", *inputs, "-m", "stats", "-i", layout.INSTRUCTION, "-o", out, env=s3.env, cwd=root
    )
    assert "0 captioned, 2 failed" in again.stderr and "14 already done" in again.stderr
    assert len(s3.get(out).decode().splitlines()) == layout.TOTAL
    parts = s3.keys(f"{bucket}/run/caps.jsonl.state/parts/")
    assert len(parts) == 1 and parts[0].endswith("-compacted.jsonl")

    table = anycap(
        "caption",
        f"{bucket}/data/t.parquet",
        "-m",
        "stats",
        "-o",
        f"{bucket}/run/t.parquet",
        env=s3.env,
    )
    assert table.returncode == 0, table.stderr
    import io

    import pyarrow.parquet as pq

    assert pq.read_table(io.BytesIO(s3.get(f"{bucket}/run/t.parquet"))).num_rows == 4


def test_an_object_missing_from_a_manifest_is_that_items_error(s3, bucket, root):
    s3.upload(
        _write(
            root / "x.jsonl", [{"media": "data/photos/astronaut.png"}, {"media": "data/gone.png"}]
        ),
        f"{bucket}/x.jsonl",
    )
    out = root / "caps.jsonl"
    result = anycap("caption", f"{bucket}/x.jsonl", "-m", "stats", "-o", str(out), env=s3.env)
    assert result.returncode == 1
    by_input = {r["input"].rsplit("/", 1)[-1]: r for r in records(out)}
    assert (
        by_input["gone.png"]["error"]["type"] == "MediaNotFoundError"
        and by_input["astronaut.png"]["caption"]
    )


def test_bad_locations_are_refused_before_any_model_loads_without_printing_secrets(
    s3, bucket, root
):
    secret = "sk-not-to-be-printed-9876"
    wrong = ["--storage-option", f"secret={secret}"]  # a secret that does not match the key id
    cases = [
        ([f"{bucket}/data/nothere.tar"], f"{bucket}/o.jsonl", [], {}, "does not exist"),
        (["s3://no-such-bucket-here/x/"], str(root / "o.jsonl"), [], {}, "does not exist"),
        (
            [f"{bucket}/data/photos/"],
            "s3://no-such-bucket-here/o.jsonl",
            [],
            {},
            "Cannot write the output",
        ),
        (
            [f"{bucket}/data/photos/"],
            str(root / "o.jsonl"),
            [],
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
            "Cannot read",
        ),
        ([f"{bucket}/data/photos/"], str(root / "o.jsonl"), wrong, {}, "Cannot read"),
        (
            [str(root / "data" / "photos")],
            f"{bucket}/o.jsonl",
            wrong,
            {},
            "Cannot write the output",
        ),
    ]
    for inputs, out, options, env, said in cases:
        result = anycap(
            "caption",
            *inputs,
            "-m",
            "stats",
            "-o",
            out,
            *options,
            env={**s3.env, **env, "AWS_MAX_ATTEMPTS": "1"},
            cwd=root,
        )
        assert result.returncode == 2 and said in result.stderr, (
            inputs,
            out,
            result.stderr[-1500:],
        )
        assert secret not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert not (root / "o.jsonl").exists()


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


SLOW = """
import sys, time
from anycap_plugin.offline_captioners import StatsCaptioner
from anycap_plugin.batch import plan_inputs, run
from anycap_plugin import storage

class Slow(StatsCaptioner):
    def _caption(self, media, instruction, options):
        time.sleep(0.2)
        return super()._caption(media, instruction, options)

run(Slow(), plan_inputs(sys.argv[1:-1], "Describe it.").items(), sys.argv[-1], progress=False)
"""


def test_a_driver_killed_and_restarted_elsewhere_resumes_from_the_store_alone(
    s3, bucket, root, tmp_path_factory
):
    s3.upload(
        _write(
            root / "many.jsonl",
            [{"media": "data/photos/astronaut.png", "id": i} for i in range(40)],
        ),
        f"{bucket}/many.jsonl",
    )
    out = f"{bucket}/run/caps.jsonl"
    env = {
        **os.environ,
        **s3.env,
        "ANYCAP_LOAD_PLUGINS": "",
        "ANYCAP_FLUSH_RECORDS": "4",
        "ANYCAP_FLUSH_SECONDS": "0.5",
        "ANYCAP_LEASE_SECONDS": "3",
    }
    first = subprocess.Popen(
        [sys.executable, "-c", SLOW, f"{bucket}/many.jsonl", out], env=env, cwd=root
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(s3.keys(f"{bucket}/run/caps.jsonl.state/parts/")) < 3:
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    flushed = [
        json.loads(line)
        for key in s3.keys(f"{bucket}/run/caps.jsonl.state/parts/")
        for line in s3.get(f"s3://{bucket.removeprefix('s3://')}/{key}").decode().splitlines()
    ]
    assert 3 <= len(flushed) < 40

    # a second driver while nobody renews the lease: it waits for the lease to lapse, then resumes
    elsewhere = tmp_path_factory.mktemp("another-machine")
    second = subprocess.run(
        [sys.executable, "-c", SLOW, f"{bucket}/many.jsonl", out],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    final = [json.loads(line) for line in s3.get(out).decode().splitlines()]
    assert len(final) == 40 and len({r["key"] for r in final}) == 40
    by_key = {r["key"]: r for r in final}
    assert all(by_key[r["key"]] == r for r in flushed)  # every flushed caption kept as it was


def test_two_drivers_on_one_run_are_refused(s3, bucket, root, monkeypatch):
    from anycap_plugin.batch import BatchRun

    out = f"{bucket}/run/busy.jsonl"
    env = {**s3.env, "ANYCAP_LEASE_SECONDS": "3"}
    monkeypatch.setenv("ANYCAP_LEASE_SECONDS", "3")
    with BatchRun(out):  # a live driver, renewing its lease
        result = anycap(
            "caption", f"{bucket}/data/photos/", "-m", "stats", "-o", out, env=env, cwd=root
        )
        assert result.returncode == 2 and "Another driver is writing" in result.stderr, (
            result.stderr[-2000:]
        )
    # the lease was let go at the end: its newest object says so, and a driver that would wait
    # 10 minutes for an unreleased lease to lapse (past `anycap`'s 120 s timeout) takes it at once
    leases = s3.keys(f"{out}.state/lease/")
    newest = f"{bucket}/{leases[-1]}"
    assert json.loads(s3.get(newest))["released"] is True
    patient = {**env, "ANYCAP_LEASE_SECONDS": "600"}
    free = anycap(
        "caption", f"{bucket}/data/photos/", "-m", "stats", "-o", out, env=patient, cwd=root
    )
    assert free.returncode == 1 and "2 captioned, 1 failed" in free.stderr, free.stderr[-2000:]


def test_plain_https_single_files_through_the_same_layer(root, image_path):
    """A manifest and its media served over HTTP (a loopback server): single files by URL."""
    import functools
    import http.server
    import threading

    (root / "web").mkdir()
    shutil.copyfile(image_path, root / "web" / "a.png")
    _write(root / "web" / "m.jsonl", [{"media": "a.png"}, {"media": "gone.png"}])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root / "web"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        result = anycap(
            "caption",
            f"{base}/m.jsonl",
            f"{base}/a.png",
            "-m",
            "stats",
            "-o",
            "caps.jsonl",
            cwd=root,
        )
        assert result.returncode == 1, result.stderr
        rows = {r["key"].split("\x1f")[0]: r for r in records(root / "caps.jsonl")}
        assert rows[f"file:{base}/a.png"]["caption"].startswith("A 512x512")
        assert rows[f"manifest:{base}/m.jsonl#media=a.png"]["input"] == f"{base}/a.png"
        assert (
            rows[f"manifest:{base}/m.jsonl#media=gone.png"]["error"]["type"] == "MediaNotFoundError"
        )
        missing = anycap(
            "caption", f"{base}/nothere.jsonl", "-m", "stats", "-o", "o.jsonl", cwd=root
        )
        assert missing.returncode == 2 and "does not exist" in missing.stderr
    finally:
        server.shutdown()


def test_gcs_inputs_and_output_through_the_same_layer(root, image_path, monkeypatch):
    """gs:// on the loopback GCS emulator (gcp-storage-emulator) with the real client (gcsfs). The
    emulator ignores conditional writes (`ifGenerationMatch`), so the lease is S3's test to show."""
    pytest.importorskip("gcp_storage_emulator")
    import socket

    from gcp_storage_emulator.server import create_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="bkt")
    server.start()
    # gcsfs asks a real bucket for its type over gRPC first (its zonal/HNS support), which the emulator lacks
    env = {
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        from anycap_plugin.storage import Storage

        store = Storage({"gs.token": "anon", "gs.project": "test"})
        store.write_bytes("gs://bkt/lists/m.jsonl", b'{"media": "../photos/a.png"}\n')
        store.write_bytes("gs://bkt/photos/a.png", image_path.read_bytes())
        store.write_bytes("gs://bkt/photos/b.png", image_path.read_bytes())
        options = ["--storage-option", "gs.token=anon", "--storage-option", "gs.project=test"]
        result = anycap(
            "caption",
            "gs://bkt/lists/m.jsonl",
            "gs://bkt/photos/*.png",
            "-m",
            "stats",
            "-o",
            "gs://bkt/run/caps.jsonl",
            *options,
            env=env,
            cwd=root,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        rows = [
            json.loads(line)
            for line in store.read_bytes("gs://bkt/run/caps.jsonl").decode().splitlines()
        ]
        assert len(rows) == 3 and all(r["caption"] for r in rows)
        assert {r["input"] for r in rows} == {"gs://bkt/photos/a.png", "gs://bkt/photos/b.png"}
        again = anycap(
            "caption",
            "gs://bkt/lists/m.jsonl",
            "gs://bkt/photos/*.png",
            "-m",
            "stats",
            "-o",
            "gs://bkt/run/caps.jsonl",
            *options,
            env=env,
            cwd=root,
        )
        assert "0 captioned, 0 failed, 3 already done" in again.stderr, again.stderr[-2000:]
    finally:
        server.stop()


AZURITE = (
    Path(__file__).resolve().parents[1]
    / ".venv"
    / "azurite"
    / "node_modules"
    / ".bin"
    / "azurite-blob"
)
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # its public dev key


def test_azure_inputs_output_and_lease_through_the_same_layer(root, image_path, tmp_path):
    """az:// on Azurite (Microsoft's emulator, from npm) on loopback with the real client (adlfs)."""
    pytest.importorskip("adlfs")
    if not AZURITE.exists():
        pytest.skip("Azurite is installed by `make venv`")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(tmp_path / "azurite"),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        conn = (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
        env = {"AZURE_STORAGE_CONNECTION_STRING": conn}  # the standard variable adlfs reads
        from anycap_plugin.storage import Storage

        store = Storage({"connection_string": conn})
        deadline = time.time() + 30
        while True:
            try:
                store.filesystem("az://ctr")[0].mkdir("ctr")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        store.write_bytes("az://ctr/photos/a.png", image_path.read_bytes())
        _write(root / "m.jsonl", [{"media": "photos/a.png", "id": "one"}])
        store.write_bytes("az://ctr/m.jsonl", (root / "m.jsonl").read_bytes())
        assert store.create("az://ctr/lease-probe", b"1") and not store.create(
            "az://ctr/lease-probe", b"2"
        )
        result = anycap(
            "caption",
            "az://ctr/m.jsonl",
            "az://ctr/photos/",
            "-m",
            "stats",
            "-o",
            "az://ctr/run/caps.jsonl",
            env=env,
            cwd=root,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert conn not in result.stderr and AZURITE_KEY not in result.stderr
        rows = [
            json.loads(line)
            for line in store.read_bytes("az://ctr/run/caps.jsonl").decode().splitlines()
        ]
        assert len(rows) == 2 and {r["input"] for r in rows} == {"az://ctr/photos/a.png"}
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
