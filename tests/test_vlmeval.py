"""VLMEvalKit integration: the model entry, MIA-Bench, VidCapBench and AnyCapEval through VLMEvalKit's
own run flow, with loopback judges and real media."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from eval_data import anycapeval_root
from PIL import Image

from anycap_plugin import testing
from anycap_plugin.eval import vidcapbench as vcb
from anycap_plugin.testing import ChatCompletionsServer, judge_responder

pd = pytest.importorskip("pandas")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SECRET = "sk-test-0123456789abcdef"


@pytest.fixture(scope="module")
def vlmeval():
    from anycap_plugin.integrations.vlmeval import import_vlmeval

    return import_vlmeval()


@pytest.fixture(scope="module")
def tiny_acm(tmp_path_factory):
    return testing.build_tiny_acm(
        tmp_path_factory.mktemp("acm"), init_std=0.5
    )  # wide: visible text


@pytest.fixture()
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "LMUData"
    root.mkdir()
    monkeypatch.setenv("LMUData", str(root))
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return root


def run_vlmeval(spec, data, root, work, judge_url, **kw):
    from anycap_plugin.integrations.vlmeval.launcher import run

    return run(
        spec,
        data,
        work_dir=str(work),
        data_root=str(root),
        judge="gpt-4o-mini",
        judge_base_url=judge_url,
        **kw,
    )


def no_secret_in(folder: Path, *texts: str) -> None:
    for text in texts:
        assert SECRET not in text
    for path in folder.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


# ---- import and containment ----------------------------------------------------------------
def test_anycap_imports_without_vlmeval_and_the_import_is_contained():
    script = r"""
import json, logging, os, ssl, sys, warnings
import anycap_plugin, anycap_plugin.cli
assert "vlmeval" not in sys.modules
import torch
before = dict(ctx=ssl._create_default_https_context, env=dict(os.environ), filters=list(warnings.filters),
              handlers=list(logging.getLogger().handlers), level=logging.getLogger().level)
from anycap_plugin.integrations.vlmeval import import_vlmeval
import_vlmeval()
import io
stream = io.StringIO()
logging.getLogger("vlmeval").addHandler(logging.StreamHandler(stream))
logging.getLogger("vlmeval").setLevel(logging.INFO)
from vlmeval.api import OpenAIWrapper
OpenAIWrapper("gpt-4o-mini", key="sk-never-log-this-0123", api_base="http://127.0.0.1:9/v1/chat/completions")
print(json.dumps(dict(
    tls=ssl._create_default_https_context is before["ctx"], grad=torch.is_grad_enabled(),
    env=dict(os.environ) == before["env"], filters=list(warnings.filters) == before["filters"],
    handlers=list(logging.getLogger().handlers) == before["handlers"],
    level=logging.getLogger().level == before["level"],
    logged=stream.getvalue())))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    checks = json.loads(done.stdout.strip().splitlines()[-1])
    assert (
        checks.pop("logged").count("API Key: ***") == 1
        and "never-log-this" not in done.stdout + done.stderr
    )
    assert all(checks.values()), checks
    assert "Did not detect the .env" not in done.stderr


def test_env_file_beside_vlmeval_is_named_not_hidden(tmp_path):
    from anycap_plugin.contained.vlmeval import _env_file_keys, redact

    init = tmp_path / "site" / "vlmeval" / "__init__.py"
    init.parent.mkdir(parents=True)
    init.write_text("")
    (tmp_path / "site" / ".env").write_text("OPENAI_API_KEY=sk-abc\nEMPTY=\nLMUData=/data\n")
    assert _env_file_keys(init) == {"OPENAI_API_KEY", "LMUData"}
    assert (
        redact("{'key': 'abcdefgh', 'auth': 'Bearer abcdefgh'}")
        == "{'key': '***', 'auth': 'Bearer ***'}"
    )


# ---- the model entry and MIA-Bench ---------------------------------------------------------
MIA_ROWS = [  # (image, question, components, weights, component types)
    (
        "astronaut",
        "Describe the person in the photo in exactly two sentences.",
        ["describe the person", "two sentences"],
        [6, 4],
        ["description", "length_limit"],
    ),
    (
        "chelsea",
        "Write a haiku about the cat, mentioning its eyes.",
        ["haiku", "mention eyes"],
        [5, 5],
        ["genre", "mention"],
    ),
    (
        "coffee",
        "List three objects in the image, separated by commas, in lowercase.",
        ["three objects", "commas", "lowercase"],
        [4, 3, 3],
        ["description", "grammar", "grammar"],
    ),
]


def write_mia_tsv(root: Path) -> None:
    rows = []
    for i, (name, question, comps, weights, types) in enumerate(MIA_ROWS):
        buf = io.BytesIO()
        Image.open(testing.sample_image(name)).convert("RGB").save(buf, "JPEG")
        rows.append(
            {
                "index": i,
                "image": base64.b64encode(buf.getvalue()).decode(),
                "question": question,
                "components": str(comps),
                "component_weight": str(weights),
                "component_type": str(types),
                "num_of_component": len(comps),
            }
        )
    pd.DataFrame(rows).to_csv(root / "MIA-Bench.tsv", sep="\t", index=False)


def mia_judge(body):
    """MIA-Bench's judge reply format: full marks for the first component only."""
    content = body["messages"][-1]["content"]
    assert any(p["type"] == "image_url" for p in content), "MIA-Bench's judge sees the image"
    text = next(p["text"] for p in content if p["type"] == "text")
    listed = re.search(r"(?:each worth|worth:) ([\d, and]+) scores", text).group(1)
    weights = [int(w) for w in re.findall(r"\d+", listed)]
    parts = [
        f"score of component {k + 1}: {weights[0] if k == 0 else 0}/{w}"
        for k, w in enumerate(weights)
    ]
    return (
        ", ".join(parts) + f", total score: {weights[0]}/10. Only the first component is followed."
    )


def test_mia_bench_runs_a_wrapped_captioner_through_vlmeval(
    vlmeval, data_root, tmp_path, tiny_acm, capfd
):
    write_mia_tsv(data_root)
    work = tmp_path / "outputs"
    with ChatCompletionsServer(responder=mia_judge) as judge:
        with pytest.warns(UserWarning, match="not the official"):
            status = run_vlmeval(
                f"stats+acm:{tiny_acm}",
                ["MIA-Bench"],
                data_root,
                work,
                judge.base_url,
                post_options={"max_new_tokens": 8},
                model_name="AnyCap-tiny",
            )
        assert len(judge.requests) == 3
        assert all(h["authorization"] == f"Bearer {SECRET}" for h in judge.headers)
    assert status["MIA-Bench"]["status"] == "done" and "error_message" not in status["MIA-Bench"]
    result = pd.read_excel(work / "AnyCap-tiny" / "AnyCap-tiny_MIA-Bench.xlsx")
    assert len(result) == 3 and all(
        isinstance(p, str) and "Failed" not in p for p in result["prediction"]
    )
    scores = pd.read_csv(next((work / "AnyCap-tiny").glob("*_score.csv")))
    got = dict(zip(scores.iloc[:, 0], scores.iloc[:, 1]))
    # first components (description, genre, description) full, the rest 0; totals 6, 5, 4 of 10
    assert got == pytest.approx(
        {
            "description": 1.0,
            "length_limit": 0.0,
            "genre": 1.0,
            "mention": 0.0,
            "grammar": 0.0,
            "total_score": 0.5,
        }
    )
    out, err = capfd.readouterr()
    no_secret_in(work, out, err)


def test_the_model_entry_takes_frames_audio_and_reports_bad_media(
    vlmeval, tmp_path, video_path, audio_path
):
    from vlmeval.inference import FAIL_MSG

    from anycap_plugin.integrations.vlmeval import AnyCapVLM

    model = AnyCapVLM("stats")
    image = str(testing.sample_image("astronaut"))
    frames = Media_frames(video_path, tmp_path)
    assert (
        "video"
        in model.generate(
            [
                *({"type": "image", "value": f} for f in frames),
                {"type": "text", "value": "Describe."},
            ]
        ).lower()
    )
    flac = tmp_path / "clip.flac"  # a suffix VLMEvalKit's mimetype check does not know
    import soundfile

    data, rate = soundfile.read(audio_path)
    soundfile.write(flac, data, rate)
    for clip in (audio_path, flac):
        assert (
            "audio"
            in model.generate(
                [{"type": "audio", "value": str(clip)}, {"type": "text", "value": "Describe."}]
            ).lower()
        )
    assert model.generate([{"type": "image", "value": image}, {"type": "text", "value": "Hi"}])
    assert model.generate([image, "Describe."]).startswith(
        "A 512x512"
    )  # VLMEvalKit's list-of-str form
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    answer = model.generate(
        [{"type": "image", "value": str(broken)}, {"type": "text", "value": "Describe."}]
    )
    assert answer.startswith(FAIL_MSG) and "Error" in answer
    assert model.VIDEO_LLM and not model.use_custom_prompt("MIA-Bench")
    from anycap_plugin.errors import OptionsError

    with pytest.raises(OptionsError, match="names no post-processor"):
        AnyCapVLM("stats", post_options={"max_new_tokens": 8})


def Media_frames(video: Path, folder: Path, n: int = 4) -> list[str]:
    from anycap_plugin.media import Media

    paths = []
    for i, im in enumerate(Media.load(video).frames(num_frames=n).images):
        paths.append(str(folder / f"f{i}.jpg"))
        im.save(paths[-1])
    return paths


# ---- VidCapBench ---------------------------------------------------------------------------
def rule_score(question: str) -> int:
    return [2, 1, 0, -1][sum(map(ord, question)) % 4]


def vidcap_judge(body):
    """Answers from the caption; grades by a rule on the question, so the test can count by hand."""
    text = body["messages"][-1]["content"]
    if "Correct Answer:" in text:
        question = re.search(r"^Question: (.*)$", text, re.MULTILINE).group(1)
        return f"{{'score': {rule_score(question)}, 'analysis': 'loopback'}}"
    assert "Description:" in text
    return "From the description: " + text.rsplit("Question:", 1)[1].strip()[:40]


def test_vidcapbench_metrics_by_hand():
    counts = Counter({"A": 3, "B": 1, "C": 2, "D": 2})
    m = vcb.metrics(counts, mean_tokens=10)
    assert (m["accuracy"], m["precision"], m["coverage"]) == (37.5, pytest.approx(66.6667), 75.0)
    assert m["conciseness"] == 375.0 and vcb.metrics(Counter(), 10)["accuracy"] is None
    replies = ['{"score": 2}', "{'score': -1, 'analysis': 'x'}", "Score: 1, because"]
    assert [vcb.parse_grade(t) for t in replies] == [2, -1, 1]
    with pytest.raises(ValueError):
        vcb.parse_grade('{"score": 3}')


def test_vidcapbench_on_the_shared_real_captions(vlmeval, data_root, tmp_path):
    from anycap_plugin.eval.vlmeval_datasets import VidCapBench
    from anycap_plugin.integrations.vlmeval.registry import register

    (data_root / "VidCapBench").mkdir()
    shutil.copy(SHARED / "vidcapbench" / "VidCapBench-AE_QA.jsonl", data_root / "VidCapBench")
    assert "VidCapBench-AE" in register()
    dataset = VidCapBench("VidCapBench-AE")
    captions = vcb.load_captions(
        json.loads(line)
        for line in (SHARED / "vidcapbench" / "captions_internvl2.5-8b.jsonl").open()
    )
    predictions = dataset.data.copy()
    predictions["prediction"] = [
        captions.get(v, "Failed to obtain answer via API.") for v in predictions["video_dir"]
    ]
    eval_file = tmp_path / "AnyCap_VidCapBench-AE.xlsx"
    predictions.to_excel(eval_file, index=False)
    with ChatCompletionsServer(responder=vidcap_judge) as judge:
        scores = dataset.evaluate(
            str(eval_file),
            model="judge",
            api_base=f"{judge.base_url}/chat/completions",
            key=SECRET,
            nproc=8,
        )
        calls = len(judge.requests)
    # by hand: every QA pair of the 13 captioned videos, graded by the rule
    qa = {
        json.loads(line)["video_dir"]: json.loads(line)["QA_pairs"]
        for line in (SHARED / "vidcapbench" / "VidCapBench-AE_QA.jsonl").open()
    }
    pairs = [p for v in captions for p in qa[v]]
    asked = {
        (captions[v], p["question"]) for v in captions for p in qa[v]
    }  # identical asks are judged once
    graded = {
        (p["question"], p["answer"], ("From the description: " + p["question"][:40]).strip())
        for p in pairs
    }
    assert calls == len(asked) + len(graded) and len(captions) == 13
    words = sum(len(c.split()) for c in captions.values()) / len(captions)
    for name, keep in [
        ("overall", lambda p: True),
        ("video aesthetics", lambda p: p["primary_category"] == "video aesthetics"),
        ("video content", lambda p: p["primary_category"] == "video content"),
    ]:
        grades = Counter(rule_score(p["question"]) for p in pairs if keep(p))
        a, b, c, d = grades[2], grades[1], grades[0], grades[-1]
        assert scores[f"{name}|accuracy"] == pytest.approx(100 * a / (a + b + c + d), abs=1e-4)
        assert scores[f"{name}|precision"] == pytest.approx(100 * (a + b) / (a + b + d), abs=1e-4)
        assert scores[f"{name}|coverage"] == pytest.approx(
            100 * (a + b + d) / (a + b + c + d), abs=1e-4
        )
        assert scores[f"{name}|conciseness"] == pytest.approx(
            100 * (100 * a / (a + b + c + d)) / words, abs=1e-3
        )
    assert scores["missing_captions"] == len(qa) - 13 and scores["failed"] == 0
    report = json.loads((tmp_path / "AnyCap_VidCapBench-AE_vidcapbench.json").read_text())
    assert report["meta"]["length_unit"] == "words" and len(report["judgements"]) == len(pairs)
    # judge verdicts are cached: a re-run asks nothing
    with ChatCompletionsServer(responder=vidcap_judge) as judge:
        again = dataset.evaluate(str(eval_file), model="judge", api_base=judge.base_url, key=SECRET)
        assert len(judge.requests) == 0 and again == scores


def test_vidcapbench_inference_on_real_videos_through_vlmeval(
    vlmeval, data_root, tmp_path, video_path
):
    folder = data_root / "VidCapBench"
    (folder / "videos").mkdir(parents=True)
    shutil.copy(video_path, folder / "videos" / "bigbuckbunny.mp4")
    shutil.copy(testing.sample_video("bikes"), folder / "videos" / "bikes.mp4")
    qa = [
        {
            "video_dir": "bigbuckbunny.mp4",
            "QA_pairs": [
                {
                    "question": "What animal appears?",
                    "answer": "A large rabbit.",
                    "sub_category": "subjects",
                    "primary_category": "video content",
                },
                {
                    "question": "How is the lighting?",
                    "answer": "Bright daylight.",
                    "sub_category": "lighting",
                    "primary_category": "video aesthetics",
                },
            ],
        },
        {
            "video_dir": "bikes.mp4",
            "QA_pairs": [
                {
                    "question": "What moves?",
                    "answer": "People on bikes.",
                    "sub_category": "object motion",
                    "primary_category": "video motion",
                }
            ],
        },
    ]
    (folder / "VidCapBench-HE_QA.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qa))
    work = tmp_path / "outputs"
    with ChatCompletionsServer(responder=vidcap_judge) as judge:
        # concurrent: VLMEvalKit's threaded API path (prompts built in its workers, a checkpoint file)
        status = run_vlmeval(
            "stats", ["VidCapBench-HE"], data_root, work, judge.base_url, concurrent=True
        )
    assert status["VidCapBench-HE"]["status"] == "done", status
    result = pd.read_excel(work / "AnyCap" / "AnyCap_VidCapBench-HE.xlsx")
    assert list(result["video_dir"]) == ["bigbuckbunny.mp4", "bikes.mp4"]
    assert all(
        "video" in p for p in result["prediction"]
    )  # the stats captioner saw a decoded video
    scores = json.loads(next((work / "AnyCap").glob("*VidCapBench-HE_score.json")).read_text())
    grades = Counter(rule_score(p["question"]) for r in qa for p in r["QA_pairs"])
    assert scores["overall|accuracy"] == pytest.approx(100 * grades[2] / 3, abs=1e-4)
    # models that are not video LLMs get frames from our decoder
    from anycap_plugin.eval.vlmeval_datasets import VidCapBench

    message = VidCapBench("VidCapBench-HE").build_prompt(1, video_llm=False)
    frames = [m["value"] for m in message if m["type"] == "image"]
    assert len(frames) == 8 and Image.open(frames[0]).size == Image.open(frames[-1]).size


# ---- AnyCapEval ----------------------------------------------------------------------------
def test_anycapeval_through_vlmeval_equals_the_cli(
    vlmeval, data_root, tmp_path, video_path, audio_path
):
    picked = anycapeval_root(data_root, video_path, audio_path)
    work = tmp_path / "outputs"
    datasets = ["AnyCapEval_Image", "AnyCapEval_Video", "AnyCapEval_Audio"]
    with ChatCompletionsServer(responder=judge_responder) as judge:
        status = run_vlmeval("stats", datasets, data_root, work, judge.base_url)
        for name in datasets:
            assert status[name]["status"] == "done" and "error_message" not in status[name], status[
                name
            ]
        for modality, name in zip(("image", "video", "audio"), datasets):
            stem = work / "AnyCap" / f"AnyCap_{name}"
            predictions = pd.read_excel(f"{stem}.xlsx")
            assert len(predictions) == len(picked[modality])
            cands = tmp_path / f"{modality}.jsonl"
            cands.write_text(
                "".join(
                    json.dumps({"id": str(i), "caption": p, "modality": modality}) + "\n"
                    for i, p in zip(predictions["ref_id"], predictions["prediction"])
                    if "Failed to obtain" not in p
                )
            )
            refs = sorted((data_root / "AnyCapEval").glob(f"anycapeval_{modality}_ref_*.jsonl"))
            cli = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "anycap_plugin",
                    "eval",
                    "anycapeval",
                    *[a for r in refs for a in ("--refs", str(r))],
                    "--captions",
                    str(cands),
                    "--judge-model",
                    "gpt-4o-mini",
                    "--judge-base-url",
                    judge.base_url,
                    "-o",
                    str(tmp_path / f"cli-{modality}"),
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert cli.returncode == 0, cli.stderr
            ours = json.loads((Path(f"{stem}_anycapeval") / "report.json").read_text())
            theirs = json.loads((tmp_path / f"cli-{modality}" / "report.json").read_text())
            for report in (ours, theirs):
                report["meta"].pop("seconds"), report["meta"].pop("cache")
            assert ours == theirs
            if modality == "image":
                assert (
                    ours["meta"]["missing_captions"] == 1
                    and ours["meta"]["judged"] == len(picked["image"]) - 1
                )
                failed = predictions["prediction"][1]
                assert "Failed to obtain answer" in failed and "Error" in failed
        # the missing image appears: a re-run captions that item only, and judges only it
        missing = data_root / "AnyCapEval" / "image" / picked["image"][1]["image"]
        Image.open(testing.sample_image("chelsea")).convert("RGB").save(missing, "JPEG")
        before = len(judge.requests)
        status = run_vlmeval("stats", ["AnyCapEval_Image"], data_root, work, judge.base_url)
        assert status["AnyCapEval_Image"]["metrics"]["missing_captions"] == 0
        assert len(judge.requests) - before == 1
        predictions = pd.read_excel(work / "AnyCap" / "AnyCap_AnyCapEval_Image.xlsx")
        assert not any("Failed" in p for p in predictions["prediction"])
        # the release protocol through --judge-args: its prompts, temperature, and the dataset's media
        before = len(judge.requests)
        args = json.dumps(
            {"protocol": "release", "prompts": str(SHARED / "anycapeval" / "release_prompts")}
        )
        status = run_vlmeval(
            "stats", ["AnyCapEval_Image"], data_root, work, judge.base_url, judge_args=args
        )
        assert status["AnyCapEval_Image"]["status"] == "done", status
        report = json.loads(
            (work / "AnyCap" / "AnyCap_AnyCapEval_Image_anycapeval" / "report.json").read_text()
        )
        assert report["meta"]["setup"]["protocol"] == "release" and report["meta"]["failed"] == 0
        sent = judge.requests[before:]
        assert sent and all(b["temperature"] == 0.7 for b in sent)
        assert sum(isinstance(b["messages"][-1]["content"], list) for b in sent) == len(
            [r for r in picked["image"] if "key_point" not in r]
        )  # each style item saw its image
    no_secret_in(work)


def test_vidcapbench_cli_on_the_release_caption_files(tmp_path, monkeypatch):
    """No VLMEvalKit needed: the release's own caption format, straight into `anycap eval vidcapbench`."""
    captions = SHARED / "vidcapbench" / "captions_gpt-4o-2024-08-06.jsonl"
    tokenizer = (
        tmp_path / "tok"
    )  # stands in for flan-t5-base's tokenizer (a local folder, as offline users pass)
    testing.build_tokenizer(tokenizer)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ChatCompletionsServer(responder=vidcap_judge) as judge:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "anycap_plugin",
                "eval",
                "vidcapbench",
                "--qa",
                str(SHARED / "vidcapbench" / "VidCapBench-AE_QA.jsonl"),
                "--captions",
                str(captions),
                "--judge-model",
                "judge",
                "--judge-base-url",
                judge.base_url,
                "--tokenizer",
                str(tokenizer),
                "-c",  # the shared vocabulary: -c and --judge-option reach the judge client
                "4",
                "--judge-option",
                "max_retries=1",
                "-o",
                str(tmp_path / "out"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    rows = [json.loads(line) for line in captions.open()]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer))
    mean = sum(len(tok(r["model_generation"]).input_ids) for r in rows) / len(rows)
    assert report["meta"]["mean_caption_length"] == pytest.approx(mean, abs=1e-3)
    assert (
        report["meta"]["captioned"] == 2 and report["overall"]["n"] == report["meta"]["judged"] > 0
    )
    assert "overall" in done.stdout and SECRET not in done.stdout + done.stderr


def test_vlmeval_command_without_vlmeval_says_how_to_install():
    script = (
        "import importlib.util as u; real = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name == 'vlmeval' else real(name, *a)\n"
        "from anycap_plugin.cli import main\n"
        "main(['vlmeval', '-m', 'stats', '-d', 'MIA-Bench'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "ANYCAP_LOAD_PLUGINS": ""},
    )
    assert done.returncode == 2 and "anycap-plugin[vlmeval]" in done.stderr, done.stderr


def test_vlmeval_command_runs_and_fails_on_an_unknown_dataset(data_root, tmp_path):
    anycapeval_root(data_root, testing.sample_video(), testing.sample_audio())
    anycap = [
        sys.executable,
        "-m",
        "anycap_plugin",
        "vlmeval",
        "-m",
        "stats",
        "--data-root",
        str(data_root),
        "--work-dir",
        str(tmp_path / "out"),
        "--mode",
        "infer",
    ]
    ok = subprocess.run(
        anycap + ["-d", "AnyCapEval_Audio"], capture_output=True, text=True, timeout=300
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "AnyCapEval_Audio: done" in ok.stderr
    assert (tmp_path / "out" / "AnyCap" / "AnyCap_AnyCapEval_Audio.xlsx").exists()
    bad = subprocess.run(
        anycap + ["-d", "No-Such-Bench"], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 1 and "invalid_dataset" in bad.stderr
