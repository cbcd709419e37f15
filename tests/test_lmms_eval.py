"""lmms-eval: the `anycap` model and our benchmarks as tasks, through lmms-eval's real command line,
offline, with loopback servers and real media."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from eval_data import SHARED, anycapeval_root

from anycap_plugin import testing
from anycap_plugin.errors import MediaError, OptionsError
from anycap_plugin.testing import ChatCompletionsServer, judge_responder, last_text

pytest.importorskip("lmms_eval")
SECRET = "sk-test-0123456789abcdef"


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env)


def lmms_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """lmms-eval's process: offline, its datasets cache in the test's folder."""
    return {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "OPENAI_API_KEY": SECRET,
        **extra,
    }


def lmms_eval(
    tmp_path: Path,
    model_args: str,
    tasks: str,
    include: Path,
    out: Path,
    *more: str,
    env: dict[str, str] | None = None,
) -> tuple[dict, dict[str, list[dict]]]:
    """Run `lmms-eval`; (its results, its logged samples by task)."""
    done = cli(
        str(Path(sys.executable).with_name("lmms-eval")),
        "--model",
        "anycap",
        "--model_args",
        model_args,
        "--tasks",
        tasks,
        "--include_path",
        str(include),
        "--output_path",
        str(out),
        "--log_samples",
        "--batch_size",
        "4",
        *more,
        env=env or lmms_env(tmp_path),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = list(out.rglob("*_results.json"))
    assert len(found) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(found[0].read_text())
    samples = {}
    for path in out.rglob("*_samples_*.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        samples[path.stem.split("_samples_", 1)[1]] = sorted(rows, key=lambda r: r["doc_id"])
    return results, samples


def answer(row: dict) -> str:
    """What lmms-eval logged as a sample's answer."""
    resp = row["filtered_resps"]
    return resp[0] if isinstance(resp, list) else resp


def sample_id(row: dict) -> str:
    return row["failed_captions"]["id"]  # every metric's record names the sample


def task_docs(folder: Path, task: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{task}.jsonl").read_text().splitlines()]


def no_secret_in(*folders: Path) -> None:
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path


@pytest.fixture(scope="module")
def tiny_acm(tmp_path_factory):
    return testing.build_tiny_acm(
        tmp_path_factory.mktemp("acm"), init_std=0.5
    )  # wide: visible text


# ---- import, registration ------------------------------------------------------------------
def test_the_model_is_registered_and_its_import_is_contained():
    code = """
import os, warnings, json
import anycap_plugin, anycap_plugin.cli
import sys
assert "lmms_eval" not in sys.modules, "anycap imports lmms-eval only when used"
import numpy, torch  # their own imports add warning filters (anycap loads them on first use)
env, filters = dict(os.environ), list(warnings.filters)
from anycap_plugin.integrations.lmms_eval.model import AnyCapLMMS
assert dict(os.environ) == env, sorted(k for k in set(os.environ) ^ set(env))
assert list(warnings.filters) == filters
from lmms_eval.models import get_model
assert get_model("anycap") is AnyCapLMMS
print("ok")
"""
    done = cli(sys.executable, "-c", code)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_model_args_are_checked():
    from anycap_plugin.integrations.lmms_eval.model import AnyCapLMMS

    with pytest.raises(OptionsError, match="Keys do not go in --model_args"):
        AnyCapLMMS.create_from_arg_string(f"model=stats,api_key={SECRET}")
    with pytest.raises(OptionsError, match="Unknown anycap model_args: colour"):
        AnyCapLMMS.create_from_arg_string("model=stats,colour=red")
    with pytest.raises(OptionsError, match="names no post-processor"):
        AnyCapLMMS.create_from_arg_string("model=stats,post_options='{\"max_new_tokens\": 8}'")
    model = AnyCapLMMS.create_from_arg_string(
        "model=stats,post=identity", {"batch_size": "auto", "device": None}
    )
    assert model.captioner.id == "stats+identity" and model.batch_size == 8


def test_model_args_spec_is_the_old_name_of_model(caplog):
    """`model=` / `post=` as `anycap caption -m/-p`; `spec=` still works, with a warning."""
    from anycap_plugin.integrations.lmms_eval.model import AnyCapLMMS

    with caplog.at_level("WARNING"):
        old = AnyCapLMMS.create_from_arg_string("spec=stats,post=identity")
    assert old.captioner.id == "stats+identity"
    assert "spec= is now model=" in caplog.text
    with pytest.raises(OptionsError, match="spec= is the old name of model="):
        AnyCapLMMS.create_from_arg_string("spec=stats,model=stats")
    with pytest.raises(OptionsError, match="Name the captioner: --model_args model=SPEC"):
        AnyCapLMMS.create_from_arg_string("post=identity")


def test_harness_media_items(audio_path, video_path):
    from anycap_plugin.integrations.media_items import media_of
    from anycap_plugin.media import Media

    clip = Media.load(audio_path).audio()
    stereo = np.stack([clip.samples, clip.samples])  # Hugging Face's Audio feature, two channels
    media = media_of(
        [("audio", {"array": stereo, "sampling_rate": clip.sample_rate, "path": "x.flac"})]
    )
    assert media.modality == "audio" and abs(media.audio().duration - clip.duration) < 0.01
    assert (
        media_of([("audio", str(video_path))]).modality == "audio"
    )  # a video file as audio: its sound
    with pytest.raises(MediaError, match="segment of a video"):
        media_of([("video", {"url": str(video_path), "video_start": 1.0, "video_end": 2.0})])
    with pytest.raises(MediaError, match="AnyCap captions one"):
        media_of([("image", str(testing.sample_image("astronaut"))), ("audio", str(audio_path))])
    frames = media_of([("image", str(testing.sample_image(n))) for n in ("astronaut", "coffee")])
    assert frames.modality == "video" and len(frames.frames(num_frames=2)) == 2


# ---- the anycap model on AnyCapEval tasks, scored as `anycap eval anycapeval` scores -------
def test_anycapeval_tasks_through_lmms_eval_equal_anycap_eval(
    tmp_path, video_path, audio_path, tiny_acm
):
    picked = anycapeval_root(
        tmp_path, video_path, audio_path
    )  # one image is missing: that sample fails
    root = tmp_path / "AnyCapEval"
    refs = sorted(root.glob("*.jsonl"))
    spec = f"stats+acm:{tiny_acm}"
    with ChatCompletionsServer(responder=judge_responder) as judge:
        made = cli(
            sys.executable,
            "-m",
            "anycap_plugin",
            "lmms-eval-tasks",
            "-o",
            str(tmp_path / "tasks"),
            *[a for r in refs for a in ("--anycapeval-refs", str(r))],
            "--media-root",
            str(root),
            "--judge-model",
            "gpt-4o-mini",
            "--judge-base-url",
            judge.base_url,
        )
        assert made.returncode == 0, made.stderr
        assert "--include_path" in made.stdout
        results, samples = lmms_eval(
            tmp_path, f"model={spec}", "anycapeval", tmp_path / "tasks", tmp_path / "out"
        )
        assert results["results"].keys() >= {
            "anycapeval_image",
            "anycapeval_video",
            "anycapeval_audio",
        }
        # the captions lmms-eval logged are the chain's, batch for batch
        from anycap_plugin.wrapping import get_captioner

        chain = get_captioner(spec)
        options = {
            k: v
            for k, v in (("max_new_tokens", 1024), ("temperature", 0))
            if k in chain.Options.model_fields
        }
        for modality in ("image", "video", "audio"):
            rows = samples[f"anycapeval_{modality}"]
            assert len(rows) == len(picked[modality])
            docs = task_docs(tmp_path / "tasks", f"anycapeval_{modality}")
            assert [sample_id(r) for r in rows] == [d["id"] for d in docs]
            for start in range(0, len(docs), 4):
                batch = docs[start : start + 4]
                outcomes = chain.caption_each(
                    [d["media"] for d in batch], [d["instruction"] for d in batch], **options
                )
                for row, outcome in zip(rows[start : start + 4], outcomes):
                    assert answer(row) == ("" if isinstance(outcome, Exception) else outcome.text)
            # the same captions through `anycap eval anycapeval`: the same figures, to full precision
            cands = tmp_path / f"{modality}.jsonl"
            cands.write_text(
                "".join(
                    json.dumps({"id": sample_id(r), "caption": answer(r), "modality": modality})
                    + "\n"
                    for r in rows
                    if answer(r)
                )
            )
            mine = [r for r in refs if f"_{modality}_" in r.name]
            theirs_dir = tmp_path / f"cli-{modality}"
            done = cli(
                sys.executable,
                "-m",
                "anycap_plugin",
                "eval",
                "anycapeval",
                *[a for r in mine for a in ("--refs", str(r))],
                "--captions",
                str(cands),
                "--judge-model",
                "gpt-4o-mini",
                "--judge-base-url",
                judge.base_url,
                "-o",
                str(theirs_dir),
                env={**os.environ, "OPENAI_API_KEY": SECRET},
            )
            assert done.returncode == 0, done.stderr
            theirs = json.loads((theirs_dir / "report.json").read_text())
            ours = json.loads(
                (
                    tmp_path / "tasks" / "reports" / f"anycapeval_{modality}" / "report.json"
                ).read_text()
            )
            for report in (ours, theirs):
                (
                    report["meta"].pop("seconds"),
                    report["meta"].pop("cache"),
                    report["meta"].pop("failed_captions", None),
                )
            assert ours == theirs
            got = results["results"][f"anycapeval_{modality}"]
            for axis, dims in theirs[modality].items():
                for dim, summary in dims.items():
                    metric = axis if dim == "average" else f"{axis}_{dim}"
                    if summary["score"] is not None:
                        assert got[f"{metric},none"] == summary["score"], (
                            metric
                        )  # exact: full precision
            assert got["missing_captions,none"] == theirs["meta"]["missing_captions"]
            assert got["judge_failures,none"] == 0
        # the missing image: counted as failed, logged with an empty answer, never a caption
        image = results["results"]["anycapeval_image"]
        assert image["failed_captions,none"] == 1 and image["missing_captions,none"] == 1
        failed = [r for r in samples["anycapeval_image"] if not answer(r)]
        assert len(failed) == 1 and failed[0]["input_media"][0].endswith(
            picked["image"][1]["image"]
        )
    no_secret_in(tmp_path / "out", tmp_path / "tasks")


def test_a_failing_captioner_is_counted_not_captioned(tmp_path, video_path, audio_path):
    """An API captioner whose endpoint gives an empty reply for one sample: lmms-eval records an
    empty answer, our task counts it; the other samples keep their captions."""
    anycapeval_root(tmp_path, video_path, audio_path)
    root = tmp_path / "AnyCapEval"
    refs = sorted(root.glob("anycapeval_image_ref_*.jsonl"))
    first = json.loads(refs[0].read_text().splitlines()[0])["conversations"][0]["value"]

    def captioner(body):
        return (
            ""
            if first.split(" The generated")[0] in last_text(body)
            else "A photo, described by the endpoint."
        )

    with (
        ChatCompletionsServer(responder=captioner) as api,
        ChatCompletionsServer(responder=judge_responder) as judge,
    ):
        made = cli(
            sys.executable,
            "-m",
            "anycap_plugin",
            "lmms-eval-tasks",
            "-o",
            str(tmp_path / "tasks"),
            *[a for r in refs for a in ("--anycapeval-refs", str(r))],
            "--media-root",
            str(root),
            "--judge-model",
            "gpt-4o-mini",
            "--judge-base-url",
            judge.base_url,
        )
        assert made.returncode == 0, made.stderr
        env = lmms_env(tmp_path, OPENAI_BASE_URL=api.base_url, ANYCAP_LOAD_PLUGINS="openai")
        results, samples = lmms_eval(
            tmp_path,
            "model=openai:gpt-4o-mini",
            "anycapeval_image",
            tmp_path / "tasks",
            tmp_path / "out",
            env=env,
        )
    answers = [answer(r) for r in samples["anycapeval_image"]]
    assert answers.count("") == 2  # the empty reply and the missing image
    assert all(a in ("", "A photo, described by the endpoint.") for a in answers)
    assert results["results"]["anycapeval_image"]["failed_captions,none"] == 2
    no_secret_in(tmp_path / "out", tmp_path / "tasks")


# ---- an audio benchmark, scored as `anycap eval audiocaps` scores ---------------------------------
def test_audiocaps_task_equals_anycap_eval_audiocaps(tmp_path, audio_path, video_path):
    import shutil

    rows = (SHARED / "audiocaps" / "test.csv").read_text().splitlines()
    clips = []
    for line in rows[1:]:
        youtube_id = line.split(",")[1]
        if youtube_id not in clips:
            clips.append(youtube_id)
        if len(clips) == 3:
            break
    refs = tmp_path / "test.csv"
    refs.write_text("\n".join([rows[0]] + [r for r in rows[1:] if r.split(",")[1] in clips]) + "\n")
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    shutil.copy(audio_path, audio_dir / f"{clips[0]}{audio_path.suffix}")
    shutil.copy(
        video_path, audio_dir / f"{clips[1]}.mp4"
    )  # a clip stored as a video: its sound is the audio
    made = cli(
        sys.executable,
        "-m",
        "anycap_plugin",
        "lmms-eval-tasks",
        "-o",
        str(tmp_path / "tasks"),
        "--audiocaps",
        str(refs),
        str(audio_dir),
    )
    assert made.returncode == 0, made.stderr
    assert "1 clips without audio left out" in made.stderr
    results, samples = lmms_eval(
        tmp_path, "model=stats", "anycap_audiocaps", tmp_path / "tasks", tmp_path / "out"
    )
    rows = samples["anycap_audiocaps"]
    assert len(rows) == 2 and all(answer(r) for r in rows)
    cands = tmp_path / "captions.jsonl"
    cands.write_text(
        "".join(json.dumps({"id": sample_id(r), "caption": answer(r)}) + "\n" for r in rows)
    )
    done = cli(
        sys.executable,
        "-m",
        "anycap_plugin",
        "eval",
        "audiocaps",
        "--refs",
        str(refs),
        "--captions",
        str(cands),
        "-o",
        str(tmp_path / "cli"),
    )
    assert done.returncode == 0, done.stderr
    theirs = json.loads((tmp_path / "cli" / "report.json").read_text())
    got = results["results"]["anycap_audiocaps"]
    computed = {name: value for name, value in theirs["metrics"].items() if value is not None}
    assert (
        len(computed) >= 8 and {name: got[f"{name},none"] for name in computed} == computed
    )  # exact
    assert theirs["metrics"]["SPICE"] is None and np.isnan(
        got["SPICE,none"]
    )  # not computed (no CoreNLP): NaN, not 0
    assert got["failed_captions,none"] == 0


def test_messages_of_lmms_eval_tasks_without_our_functions(audio_path):
    """lmms-eval builds a chat model's messages from doc_to_visual when a task has no doc_to_messages:
    PIL images, audio dicts; a system turn is its prompt setting, not part of the caption request."""
    from lmms_eval.protocol import ChatMessages
    from PIL import Image

    from anycap_plugin.integrations.lmms_eval.model import to_media

    image = Image.open(testing.sample_image("coffee"))
    messages = ChatMessages(
        messages=[
            {
                "role": "system",
                "content": [{"type": "text", "text": "You are a helpful assistant."}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "image", "url": image},
                    {"type": "text", "text": "Describe it."},
                ],
            },
        ]
    )
    media, instruction = to_media(messages)
    assert (
        media.modality == "image"
        and media.image().size == image.size
        and instruction == "Describe it."
    )
    two_turns = ChatMessages(
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "a"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "b"}]},
            {
                "role": "user",
                "content": [
                    {"type": "audio", "url": str(audio_path)},
                    {"type": "text", "text": "c"},
                ],
            },
        ]
    )
    with pytest.raises(MediaError, match="one user turn"):
        to_media(two_turns)
