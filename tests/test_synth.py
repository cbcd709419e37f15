"""`anycap synth` as a user runs it, against a loopback OpenAI-compatible server: ACD records in the
release's format that `anycap train` reads, the release's prompts sent verbatim, length checks with
bounded regeneration, resume after a kill, the call cache, bad replies and bad media."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from anycap_plugin import testing
from anycap_plugin.eval.length_rules import RELEASE_TABLE
from anycap_plugin.testing import ChatCompletionsServer, fitting_answer, synth_responder
from anycap_plugin.testing import last_text as texts
from anycap_plugin.train import read_acd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RELEASE_PROMPTS = SHARED / "acd_synthesis_prompts"
SECRET = "sk-synth-SECRET-42"


def synth(server, *args, **kwargs):
    env = {
        **os.environ,
        "ANYCAP_LOAD_PLUGINS": "openai",
        "OPENAI_API_KEY": SECRET,
        "OPENAI_BASE_URL": server.base_url,
    }
    cmd = [sys.executable, "-m", "anycap_plugin", "synth", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, **kwargs)


def rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_records_follow_the_release_format_and_train_reads_them(tmp_path, image_path, audio_path):
    media = tmp_path / "media"
    media.mkdir()
    for src in (image_path, audio_path):
        shutil.copyfile(src, media / src.name)
    out = tmp_path / "acd.jsonl"
    with ChatCompletionsServer(synth_responder) as server:
        done = synth(
            server,
            media,
            "-o",
            out,
            "--writer-model",
            "writer-model",
            "--weaker",
            "openai:weak-model",
            "--media-root",
            media,
        )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tasks"] == 10 + 5 and report["written"] == 15  # image: 10 types, audio: 5
    assert report["records"] == 10 * 3 + 5 * 2 and report["weaker_skipped"] == {
        "audio": 5
    }  # an image-only weaker model
    assert report["usage"]["writer"]["calls"] == 15 and report["usage"]["degrader"]["calls"] == 15
    assert report["usage"]["weaker"]["calls"] == 10
    records = rows(out)
    first_line = (SHARED / "acd_sample" / "acd_image.jsonl").read_text().splitlines()[0]
    sample_keys = set(json.loads(first_line))
    image_records = [r for r in records if "image" in r]
    assert {"id", "image", "width", "height", "conversations", "_sample_type"} <= set(
        image_records[0]
    )
    assert set(image_records[0]) - sample_keys == {"_dimension", "_key", "_source"}
    assert {r["image"] for r in image_records} == {image_path.name}  # relative to --media-root
    assert {r["_sample_type"] for r in records} == {"q-a-c", "q-8b-c", "q-c-c"}
    for r in records:
        human, target = r["conversations"][0]["value"], r["conversations"][1]["value"]
        modality = "image" if "image" in r else "audio"
        assert human.startswith(
            f"<{modality}>\nYou are a multimodal aligner, and your task is to transform"
        )
        sentence = next(s for s in RELEASE_TABLE if s in human)
        assert (
            RELEASE_TABLE[sentence].check(target).ok
        )  # the good answer meets its constraint, as the release counts
    examples, problems = read_acd([out])
    assert problems == [] and len(examples) == 40
    assert {e.kind for e in examples} == {"degraded", "weaker", "correct"}
    correct = [e for e in examples if e.kind == "correct"]
    assert all(e.existing == e.target for e in correct)
    degraded = [e for e in examples if e.kind == "degraded"]
    assert all(e.existing != e.target and "Perhaps" in e.existing for e in degraded)
    assert all(re.search(r"The generated caption's length .+\.$", e.instruction) for e in examples)

    acm = testing.build_tiny_acm(tmp_path / "acm")
    trained = subprocess.run(
        [
            sys.executable,
            "-m",
            "anycap_plugin",
            "train",
            "--acm",
            str(acm),
            "--acd",
            str(out),
            "-o",
            str(tmp_path / "run"),
            "--media-root",
            str(media),
            "--max-steps",
            "2",
            "--batch-size",
            "2",
            "--max-length",
            "384",
            "--eval-steps",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "ANYCAP_LOAD_PLUGINS": ""},
    )
    assert trained.returncode == 0, trained.stderr[-3000:]


def test_the_release_prompts_are_sent_verbatim(tmp_path, image_path, video_path):
    out = tmp_path / "acd.jsonl"
    with ChatCompletionsServer(synth_responder) as server:
        done = synth(
            server,
            image_path,
            video_path,
            "-o",
            out,
            "-w",
            "w",
            "--prompts",
            RELEASE_PROMPTS,
            "--types",
            "brief,movement,region",
            "--num-frames",
            "2",
        )
        sent = [texts(r) for r in server.requests]
    assert done.returncode == 0, done.stderr
    sources = json.loads(done.stdout)["prompt_sources"]
    assert sources["video/movement"] == {
        "question": "video/qc_instructions/camera.txt",
        "degrade": "video/qca_instructions/camera.txt",
    }
    assert sources["image/region"] == {
        "question": "ours",
        "degrade": "ours",
    }  # the release has no region prompt
    for name in ("image/qc_instructions/brief.txt", "video/qc_instructions/camera.txt"):
        release = (RELEASE_PROMPTS / name).read_text(encoding="utf-8")
        assert any(
            t.startswith(release) and "Additional requirement" in t[len(release) :] for t in sent
        )
    image_qca = (RELEASE_PROMPTS / "image/qca_instructions/brief.txt").read_text(encoding="utf-8")
    head, _, rest = image_qca.partition("Question: {}\nAnswer: {}")
    filled = next(t for t in sent if t.startswith(head))
    assert "{}" not in filled and filled.endswith(rest)
    question = re.search(r"Question: (.*)\nAnswer: ", filled[len(head) - 1 :]).group(1)
    assert question.endswith(
        tuple(RELEASE_TABLE)
    )  # the question with its constraint went in first, the answer second
    video_qca = (RELEASE_PROMPTS / "video/qca_instructions/camera.txt").read_text(encoding="utf-8")
    filled = next(t for t in sent if t.startswith(video_qca.split("{question}")[0]))
    assert "{question}" not in filled and "{standard_caption}" not in filled
    assert (
        len(rows(out)) == 4 * 2
    )  # image brief, region; video brief, movement; no --weaker: no q-8b-c
    assert {r["_sample_type"] for r in rows(out)} == {"q-a-c", "q-c-c"}


def long_brief_responder(state):
    """Brief answers are always too long; detail answers too short the first time only."""

    def respond(body):
        text = texts(body)
        if "Slightly Inferior" in text:
            return synth_responder(body)
        sentence = next(s for s in RELEASE_TABLE if s in text)
        kind = "brief" if "Control type: Brief" in text else "detail"
        state[kind] = state.get(kind, 0) + 1
        if kind == "brief" or state[kind] == 1:
            return (
                f"Question: Describe it. {sentence}\nAnswer: " + "Word. " * 200
            )  # 200 words, 200 sentences
        return (
            f"Question: Describe it. {sentence}\nAnswer: {fitting_answer(RELEASE_TABLE[sentence])}"
        )

    return respond


def test_answers_breaking_their_constraint_are_regenerated_then_dropped(tmp_path, image_path):
    state = {}
    out = tmp_path / "acd.jsonl"
    with ChatCompletionsServer(long_brief_responder(state)) as server:
        done = synth(
            server,
            image_path,
            "-o",
            out,
            "-w",
            "w",
            "--types",
            "brief,detail",
            "--max-regenerations",
            "2",
        )
    assert done.returncode == 0, done.stderr  # a drop is counted, not a failure
    report = json.loads(done.stdout)
    assert state == {
        "brief": 3,
        "detail": 2,
    }  # brief: 1 + 2 regenerations, then dropped; detail: fixed on the re-ask
    assert (
        report["dropped"] == {"LengthDropped": 1}
        and report["regenerations"] == 3
        and report["written"] == 1
    )
    failures = rows(tmp_path / "acd.failures.jsonl")
    assert len(failures) == 1 and failures[0]["error"]["type"] == "LengthDropped"
    assert re.search(
        r"image/brief: .* 3 times \(200 (words|sentences) breaks", failures[0]["error"]["message"]
    )
    assert {r["_dimension"] for r in rows(out)} == {"image/detail"}


def test_failed_calls_are_retried_by_the_next_run_and_cached_calls_are_not_paid_again(
    tmp_path, image_path
):
    broken = {"on": True}

    def flaky(body):  # the first two degrader calls fail
        if (
            broken["on"]
            and "Slightly Inferior" in texts(body)
            and broken.setdefault("count", 0) < 2
        ):
            broken["count"] += 1
            raise ValueError("model overloaded")  # answered as HTTP 400: not retried by the SDK
        return synth_responder(body)

    out = tmp_path / "acd.jsonl"
    with ChatCompletionsServer(flaky) as server:
        first = synth(server, image_path, "-o", out, "-w", "w", "--types", "brief,detail,theme")
        assert first.returncode == 1
        report = json.loads(first.stdout)
        assert report["failed"] == {"CallError": 2} and report["written"] == 1
        failures = rows(tmp_path / "acd.failures.jsonl")
        assert len(failures) == 2 and all("HTTP 400" in f["error"]["message"] for f in failures)
        first_requests = len(server.requests)
        broken["on"] = False
        second = synth(server, image_path, "-o", out, "-w", "w", "--types", "brief,detail,theme")
        assert second.returncode == 0, second.stderr
        again = json.loads(second.stdout)
        assert again["skipped"] == 1 and again["written"] == 2
        # the writer's answers for the two failed pairs come from the cache; only the degrader is asked again
        assert again["usage"]["writer"] == {**again["usage"]["writer"], "calls": 0, "cache_hits": 2}
        assert len(server.requests) - first_requests == 2
        assert rows(tmp_path / "acd.failures.jsonl") == []
    assert len(rows(out)) == 3 * 2 and len({r["_key"] for r in rows(out)}) == 3
    for text in (first.stdout, first.stderr, second.stdout, out.read_text()):
        assert SECRET not in text


def test_a_killed_run_resumes_without_losing_or_repeating_records(tmp_path, image_path):
    media = tmp_path / "media"
    media.mkdir()
    for n, name in enumerate(("astronaut", "chelsea", "coffee", "camera")):
        shutil.copyfile(testing.sample_image(name), media / f"{n}-{name}.png")
    out = tmp_path / "acd.jsonl"
    with ChatCompletionsServer(synth_responder, delay=0.15) as server:
        env = {
            **os.environ,
            "ANYCAP_LOAD_PLUGINS": "",
            "OPENAI_API_KEY": SECRET,
            "OPENAI_BASE_URL": server.base_url,
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "anycap_plugin",
                "synth",
                str(media),
                "-o",
                str(out),
                "-w",
                "w",
                "-c",
                "4",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while time.time() < deadline and (
            not out.exists() or len(out.read_text().splitlines()) < 6
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = rows(out)
        assert 6 <= len(partial) < 4 * 10 * 2
        resumed = synth(server, media, "-o", out, "-w", "w", "-c", "4")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert (
        report["skipped"] == len({r["_key"] for r in partial})
        and report["written"] + report["skipped"] == 40
    )
    final = rows(out)
    assert len(final) == 40 * 2 and len({(r["_key"], r["_sample_type"]) for r in final}) == 80
    writer = report["usage"][
        "writer"
    ]  # each pair not written is asked once: paid, or from the cache
    assert writer["calls"] + writer["cache_hits"] == 40 - report["skipped"]


def test_bad_replies_and_bad_media_are_per_item_failures(tmp_path, image_path):
    (tmp_path / "broken.png").write_bytes(image_path.read_bytes()[:300])
    shutil.copyfile(image_path, tmp_path / "good.png")
    out = tmp_path / "acd.jsonl"

    def no_question(body):  # the writer never answers in the asked form for theme
        text = texts(body)
        return (
            "I cannot help with that." if "Control type: Theme" in text else synth_responder(body)
        )

    with ChatCompletionsServer(no_question) as server:
        done = synth(
            server,
            tmp_path / "good.png",
            tmp_path / "broken.png",
            "-o",
            out,
            "-w",
            "w",
            "--types",
            "brief,theme",
        )
        writer_theme = sum("Control type: Theme" in texts(r) for r in server.requests)
        bad = synth(server, tmp_path / "good.png", "-o", out, "-w", "w", "--types", "nonsense")
        wrong = synth(server, tmp_path / "good.png", "-o", out, "-w", "w", "--prompts", tmp_path)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert (
        report["failed"] == {"ReplyFormatError": 1, "CorruptMediaError": 1}
        and report["written"] == 1
    )
    assert writer_theme == 3  # asked, then re-asked twice
    assert bad.returncode != 0 and "Unknown instruction type 'nonsense'" in bad.stderr
    assert wrong.returncode != 0 and "holds none of the release's prompt folders" in wrong.stderr
