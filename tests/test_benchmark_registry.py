"""The benchmark registry (`eval/registry.py`): a benchmark in one module becomes `anycap eval NAME`,
a VLMEvalKit dataset and an lmms-eval task; the docs list every benchmark and why a harness lacks it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_plugins import fake_distribution

from anycap_plugin import plugins

DOCS = Path(__file__).parent.parent / "docs" / "evaluation.md"

# a third-party benchmark, whole, in one module: exact-match rate of captions against references
TINY = '''
import json
from pathlib import Path

import click

from anycap_plugin import hookimpl
from anycap_plugin.eval.registry import Benchmark, LmmsTask, LmmsTasks


def references(path):
    return {r["id"]: r for r in map(json.loads, Path(path).read_text().splitlines())}


def score(refs, captions):
    hits = sum(captions.get(i) == r["caption"] for i, r in refs.items())
    return {"exact": hits / len(refs), "n": len(refs)}


def run(refs, captions, output):
    """Exact-match rate of the captions against the references."""
    got = {r["id"]: r["caption"] for r in map(json.loads, Path(captions).read_text().splitlines())}
    report = score(references(refs), got)
    Path(output).mkdir(parents=True, exist_ok=True)
    (Path(output) / "report.json").write_text(json.dumps(report))
    return True


_classes = []


def vlmeval():
    if not _classes:
        from vlmeval.dataset.image_base import ImageBaseDataset

        class TinyBench(ImageBaseDataset):
            TYPE = "Caption"
            MODALITY = "IMAGE"

            @classmethod
            def supported_datasets(cls):
                return ["TinyBench"]

        _classes.append(TinyBench)
    return _classes


def tasks(values, settings):
    if not values.get("tinybench"):
        return []
    docs = [
        {"id": i, "modality": "image", "media": r["media"], "instruction": "Describe it.",
         "reference": r["caption"]}
        for i, r in references(values["tinybench"]).items()
    ]
    return [LmmsTask("tinybench", docs, ["exact"], {"refs": str(Path(values["tinybench"]).resolve())})]


def report(spec, settings, captions, folder):
    return score(references(spec["refs"]), captions)


@hookimpl
def register_benchmarks(register):
    register(
        Benchmark(
            name="tinybench",
            description="Exact-match rate of image captions (a test benchmark).",
            modalities=("image",),
            options=(
                click.option("--refs", required=True, type=click.Path(exists=True)),
                click.option("--captions", required=True, type=click.Path(exists=True)),
                click.option("--output", "-o", required=True, type=click.Path(file_okay=False)),
            ),
            run=run,
            vlmeval=vlmeval,
            lmms_eval=LmmsTasks(
                options=(click.option("--tinybench", type=click.Path(exists=True), help="Its references."),),
                tasks=tasks,
                report=report,
                metric=lambda report, spec, name: report[name],
            ),
        )
    )
'''


@pytest.fixture()
def tiny_site(tmp_path, image_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    fake_distribution(site, "anycap-tinybench", "anycap_tinybench", TINY)
    refs = tmp_path / "refs.jsonl"
    refs.write_text(
        "".join(
            json.dumps({"id": i, "media": str(image_path), "caption": c}) + "\n"
            for i, c in (("a", "a cat"), ("b", "a dog"))
        )
    )
    caps = tmp_path / "caps.jsonl"
    caps.write_text(
        "".join(json.dumps({"id": i, "caption": c}) + "\n" for i, c in (("a", "a cat"), ("b", "x")))
    )
    monkeypatch.delenv("ANYCAP_LOAD_PLUGINS", raising=False)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    return site, refs, caps, env


def anycap(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    anycap = str(Path(sys.executable).with_name("anycap"))  # the installed console script
    return subprocess.run([anycap, *args], env=env, capture_output=True, text=True, timeout=300)


def test_a_benchmark_in_one_module_reaches_the_cli_vlmeval_and_lmms_eval(
    tiny_site, tmp_path, monkeypatch
):
    site, refs, caps, env = tiny_site
    # `anycap eval`: listed with its help, and it runs
    listed = anycap(env, "eval", "--help")
    assert listed.returncode == 0, listed.stderr
    assert "tinybench" in listed.stdout and "Exact-match rate of image captions" in listed.stdout
    ran = anycap(
        env,
        "eval",
        "tinybench",
        "--refs",
        str(refs),
        "--captions",
        str(caps),
        "-o",
        str(tmp_path / "out"),
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == {"exact": 0.5, "n": 2}
    # lmms-eval: `anycap lmms-eval-tasks` takes its option and writes its task, which lmms-eval finds
    made = anycap(env, "lmms-eval-tasks", "-o", str(tmp_path / "tasks"), "--tinybench", str(refs))
    assert made.returncode == 0, made.stderr
    assert "tinybench: 2 samples, 1 metrics" in made.stderr
    from anycap_plugin.contained.lmms_eval import import_lmms_eval

    import_lmms_eval()  # first: a bare lmms_eval import would reconfigure this test process
    from lmms_eval.tasks import TaskManager

    found = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False)
    assert "tinybench" in found.all_tasks
    # ... and scores it through the registry, in the process lmms-eval runs our functions in
    monkeypatch.syspath_prepend(str(site))
    plugins.reset()
    from anycap_plugin.integrations.lmms_eval import tasks

    docs = [json.loads(line) for line in (tmp_path / "tasks" / "tinybench.jsonl").open()]
    records = [tasks.process_results(d, [a])["exact"] for d, a in zip(docs, ["a cat", "a bird"])]
    assert tasks.aggregate(records) == 0.5
    # VLMEvalKit: registration adds its dataset class beside ours
    from anycap_plugin.integrations.vlmeval import import_vlmeval, register

    import_vlmeval()  # first: a bare vlmeval import turns autograd off for this whole process
    import vlmeval.dataset as vlmeval

    before = list(vlmeval.DATASET_CLASSES), list(vlmeval.SUPPORTED_DATASETS)
    try:
        names = register()
        assert {"TinyBench", "AnyCapEval_Image", "VidCapBench-AE", "MIA-Bench"} <= set(names)
        assert "TinyBench" in [n for c in vlmeval.DATASET_CLASSES for n in c.supported_datasets()]
    finally:
        vlmeval.DATASET_CLASSES[:], vlmeval.SUPPORTED_DATASETS[:] = before
        vlmeval.IMAGE_DATASET[:] = [c for c in vlmeval.IMAGE_DATASET if c in before[0]]


def test_the_docs_list_every_benchmark_and_why_a_harness_lacks_it():
    from anycap_plugin.plugins import benchmarks

    text = " ".join(DOCS.read_text().split())
    found = benchmarks()
    assert set(found) == {"anycapeval", "audiocaps", "clotho", "mia-bench", "vidcapbench"}
    for name, benchmark in found.items():
        assert f"`{name}`" in text, name
        for harness, how in benchmark.harnesses().items():
            assert how == "yes" or how in text, (name, harness)


def test_anycap_bench_points_file_benchmarks_to_anycap_eval():
    done = anycap(dict(os.environ), "bench", "anycapeval", "-m", "stats")
    assert done.returncode == 2 and "anycap eval --help" in done.stderr


def test_vidcapbench_as_an_lmms_eval_task_equals_anycap_eval(tmp_path, monkeypatch):
    """The task the registry adds for VidCapBench scores the captions as `anycap eval vidcapbench`."""
    from eval_data import SHARED
    from test_vlmeval import SECRET, vidcap_judge

    from anycap_plugin.integrations.lmms_eval import tasks
    from anycap_plugin.testing import ChatCompletionsServer

    qa = SHARED / "vidcapbench" / "VidCapBench-AE_QA.jsonl"
    caps = SHARED / "vidcapbench" / "captions_internvl2.5-8b.jsonl"
    captions = {r["video_dir"]: r["model_generation"] for r in map(json.loads, caps.open()) if r}
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in captions:  # the samples are the videos with a file; nothing here decodes them
        (videos / name).write_bytes(b"")
    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ChatCompletionsServer(responder=vidcap_judge) as judge:
        made = anycap(
            env, "lmms-eval-tasks", "-o", str(tmp_path / "tasks"), "--vidcapbench", str(qa),
            str(videos), "--judge-model", "judge", "--judge-base-url", judge.base_url,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert f"anycap_vidcapbench: {len(captions)} samples" in made.stderr
        docs = [
            json.loads(line) for line in (tmp_path / "tasks" / "anycap_vidcapbench.jsonl").open()
        ]
        records = [tasks.process_results(d, [captions[d["id"]]]) for d in docs]
        ours = {m: tasks.aggregate([r[m] for r in records]) for m in records[0]}
        theirs_dir = tmp_path / "cli"
        done = anycap(
            env, "eval", "vidcapbench", "--qa", str(qa), "--captions", str(caps), "--judge-model",
            "judge", "--judge-base-url", judge.base_url, "-o", str(theirs_dir),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    theirs = json.loads((theirs_dir / "report.json").read_text())
    for category in ("overall", "video content", "video motion"):
        for metric in ("accuracy", "precision", "coverage", "conciseness"):
            assert ours[f"{category}|{metric}"] == theirs[category][metric]
    assert ours["failed"] == 0 and ours["missing_captions"] == theirs["meta"]["missing_captions"]
