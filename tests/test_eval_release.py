"""AnyCapEval as the release computes it: its word counting and length table (hand-computed cases
from its formulas), its prompt files filled as it fills them, its reply format, the release protocol
end to end over real HTTP, and failures that never abort a run."""

import base64
import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from anycap_plugin import testing
from anycap_plugin.cli import cli
from anycap_plugin.eval import evaluate, make_protocol
from anycap_plugin.eval.length_rules import RELEASE_TABLE, release_constraint
from anycap_plugin.eval.protocols.release import parse_release_content
from anycap_plugin.eval.references import EvalItem
from anycap_plugin.eval.report import comparability_warnings
from anycap_plugin.instructions import count_sentences, count_words, parse_length_constraint
from anycap_plugin.testing import ChatCompletionsServer, judge_responder

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "anycapeval"
PROMPTS = SHARED / "release_prompts"


# ---- counting: hand-computed from the release's count_total_words and sentences_count ---------
@pytest.mark.parametrize(
    "text,words",
    [
        ("a 3D model in 4K", 3),  # `3D`, `4K`: no word boundary inside, so no word; a, model, in
        ("3 cats and 12 dogs", 3),  # digits are not words
        ("hello123 world", 1),  # a letter run glued to digits has no boundary
        ("the dog's well-known trick", 4),  # inner apostrophe and hyphen keep one word
        ("state-of-the-art x-ray's", 2),
        ("don\u2019t stop", 3),  # a curly apostrophe splits: don, t, stop
        ("a - b -- c", 3),  # free-standing hyphens are no words
        ("snake_case word", 1),  # `_` is a word character: no boundary before `case`
        ("caf\u00e9 na\u00efve cat", 1),  # letters outside a-z glue to their neighbours: only `cat`
        ("\u4e00\u53ea\u732b\u3002", 4),  # three ideographs and the CJK full stop
        ("cat\uff0cdog", 3),  # a full-width comma (U+FF0C) counts as a character
        ("\uff21\uff22\uff23 test", 4),  # full-width letters count one each
        ("\u3400 \uf900", 0),  # CJK extension A and compatibility ideographs are outside the ranges
        ("", 0),
    ],
)
def test_words_are_counted_as_the_release_counts_them(text, words):
    assert count_words(text) == words


@pytest.mark.parametrize(
    "text,sentences",
    [
        ("Wow! Really? Yes.", 3),
        ("Dr. Smith arrived.", 2),  # the release splits on every period
        ("It is 3.5 m tall", 2),
        ("Hi!!! ", 1),
        ("... ?", 0),
        ("No end mark", 1),
    ],
)
def test_sentences_are_counted_as_the_release_counts_them(text, sentences):
    assert count_sentences(text) == sentences


def _words(n: int) -> str:
    return " ".join(["word"] * n) + "."


def _sentences(n: int) -> str:
    return " ".join(["A cat sleeps."] * n)


# every sentence of the release's table: captions just inside and just outside its bounds
TABLE_CASES = {
    "The generated caption's length needs to be one sentence.": (
        [_sentences(1)],
        [_sentences(2), ""],
    ),
    "The generated caption's length needs to be exactly two sentences.": (
        [_sentences(2)],
        [_sentences(1), _sentences(3)],
    ),
    "The generated caption's length cannot exceed two sentences.": (
        ["", _sentences(2)],
        [_sentences(3)],
    ),
    "The generated caption's length needs to be exactly three sentences.": (
        [_sentences(3)],
        [_sentences(2), _sentences(4)],
    ),
    "The generated caption's length cannot exceed three sentences.": (
        [_sentences(3)],
        [_sentences(4)],
    ),
    "The generated caption's length needs to be exactly five sentences.": (
        [_sentences(5)],
        [_sentences(4), _sentences(6)],
    ),
    "The generated caption's length needs to be no more than 10 words.": (
        ["", _words(10)],
        [_words(11)],
    ),
    "The generated caption's length needs to be exactly 10 words.": (
        [_words(10)],
        [_words(9), _words(11)],
    ),
    "The generated caption's length needs to be 10 to 20 words.": (
        [_words(10), _words(20)],
        [_words(9), _words(21)],
    ),
    "The generated caption's length needs to be exactly 20 words.": (
        [_words(20)],
        [_words(19), _words(21)],
    ),
    "The generated caption's length needs to be 20 to 30 words.": (
        [_words(20), _words(30)],
        [_words(19), _words(31)],
    ),
    "The generated caption's length needs to be exactly 50 words.": (
        [_words(50)],
        [_words(49), _words(51)],
    ),
    "The generated caption's length needs to be exactly 60 words.": (
        [_words(60)],
        [_words(59), _words(61)],
    ),
    "The generated caption's length needs to be 30 to 120 words.": (
        [_words(30), _words(120)],
        [_words(29), _words(121)],
    ),
}


@pytest.mark.parametrize("sentence", sorted(TABLE_CASES))
def test_each_sentence_of_the_release_table(sentence):
    passing, failing = TABLE_CASES[sentence]
    constraint = release_constraint(sentence)
    assert all(constraint.check(c).ok for c in passing)
    assert not any(constraint.check(c).ok for c in failing)
    parsed = parse_length_constraint(
        sentence
    )  # our parser reads the same bounds (0 and None alike)
    assert (parsed.unit, parsed.min or 0, parsed.max) == (
        constraint.unit,
        constraint.min or 0,
        constraint.max,
    )


def test_the_table_is_the_release_table_and_covers_the_shared_references():
    assert set(TABLE_CASES) == set(RELEASE_TABLE)
    seen = {
        json.loads(line)["restriction"][1] for f in SHARED.glob("*/*.jsonl") for line in f.open()
    }
    assert seen <= set(RELEASE_TABLE)
    # a sentence outside the table passes, as in the release (a word-for-word variant included)
    assert (
        release_constraint("The generated caption's length needs to be exactly 30 words.") is None
    )
    assert (
        release_constraint("The generated caption's length needs to be exactly two sentences")
        is None
    )


def item(
    id,
    key_points=None,
    dim="instance",
    constraint="The generated caption's length needs to be 10 to 20 words.",
    modality="image",
    media=None,
):
    return EvalItem(
        str(id),
        modality,
        media or f"{id}.jpg",
        "Describe the cat.",
        "A gray cat sits on a chair.",
        dim,
        constraint,
        tuple(key_points) if key_points is not None else None,
    )


def test_unchecked_constraints_pass_and_are_counted():
    class Judge:
        id = "scripted"

        async def judge_content(self, it, caption):
            return [1]

        async def judge_style(self, it, caption):
            return 4

    odd = "Keep it to exactly 3 words."
    items = [item("a", ["cat"], constraint=odd), item("s", dim="brief", constraint=odd)]
    caption = "A gray cat sits quietly on a wooden chair near the window."  # 12 words, not 3
    report = evaluate(items, {i.key: caption for i in items}, Judge())
    assert report["image"]["content"]["instance"]["length_violations"] == 0
    assert report["image"]["content"]["instance"]["unchecked_constraints"] == 1
    assert report["image"]["style"]["brief"]["score"] == 4  # not capped: the release lets it pass
    assert report["meta"]["unchecked_constraints"] == {odd: 2}
    assert report["image"]["content"]["instance"]["score"] == 100 * 1 / 12  # full precision


# ---- the release's reply format ------------------------------------------------------------
POINTS = (
    "mention the man's position (standing on the left side of the table)",
    "describe the dog's action",
    "mention the man's hat (a red one)",
)


def release_reply(scores, total=None):
    return json.dumps(
        {
            "caption_evaluation": {
                "key_points_scores": scores,
                "total_score": sum(scores.values()) if total is None else total,
                "score_reasons": {k: "r" for k in scores},
            }
        }
    )


@pytest.mark.parametrize(
    "scores,expected",
    [
        (
            {
                "mention the man's position": 1,
                "describe the dog's action": 0,
                "mention the man's hat": 1,
            },
            [1, 0, 1],
        ),
        ({p: 1 for p in POINTS}, [1, 1, 1]),  # the full key point text
        (
            {
                "Mention the man\u2019s position.": 0,
                "describe the dog's action": 1,
                "key_point_3": 1,
            },
            [0, 1, 1],
        ),
    ],
)
def test_release_content_replies(scores, expected):
    assert parse_release_content("```json\n" + release_reply(scores) + "\n```", POINTS) == expected


def test_release_reasons_follow_the_key_points_however_keyed():
    from anycap_plugin.eval.protocols.release import release_reasons

    reply = json.dumps(
        {
            "caption_evaluation": {
                "key_points_scores": {"key_point_3": 1, "describe the dog's action": 0},
                "score_reasons": {
                    "key_point_3": "a red hat",
                    "Describe the dog\u2019s action.": "no dog",
                },
            }
        }
    )
    assert release_reasons(reply, POINTS) == [None, "no dog", "a red hat"]


@pytest.mark.parametrize(
    "reply",
    [
        release_reply(
            {"mention the man's position": 1, "describe the dog's action": 0}
        ),  # a point not scored
        release_reply(
            {
                "mention the man's position": 1,
                "describe the dog's action": 0,
                "mention the man's hat": 2,
            }
        ),
        release_reply(
            {
                "mention the man's position": 1,
                "describe the dog's action": True,
                "mention the man's hat": 0,
            }
        ),
        release_reply(
            {"mention the man's position": 1, "describe the cat": 0, "mention the man's hat": 0}
        ),  # unknown key
        release_reply(
            {
                "mention the man's position": 1,
                POINTS[0]: 0,
                "describe the dog's action": 0,
                "mention the man's hat": 1,
            }
        ),  # one point scored twice
        release_reply(
            {
                "mention the man's position": 1,
                "describe the dog's action": 0,
                "mention the man's hat": 1,
            },
            total=3,
        ),
        '{"key_points": [{"index": 1, "matched": 1}]}',  # the anycap contract is not the release's
    ],
)
def test_invalid_release_content_replies(reply):
    with pytest.raises(ValueError):
        parse_release_content(reply, POINTS)


def test_prompt_folders_in_both_layouts_and_their_errors(tmp_path):
    tree = tmp_path / "AnyCapEval"
    for f in PROMPTS.glob("*.txt"):
        modality, axis = f.stem.split("_")
        (tree / f"anycapeval_{modality}").mkdir(parents=True, exist_ok=True)
        shutil.copy(f, tree / f"anycapeval_{modality}" / f"instruction_{axis}.txt")
    flat, nested = make_protocol("release", PROMPTS), make_protocol("release", tree)
    assert flat.prompt_hashes() == nested.prompt_hashes() and len(flat.prompt_hashes()) == 6
    assert (
        flat.prompt_hashes()["image_style"]
        == "sha256:" + hashlib.sha256((PROMPTS / "image_style.txt").read_bytes()).hexdigest()
    )
    with pytest.raises(Exception, match="github.com/qishisuren123/AnyCap"):
        make_protocol("release", None)
    only_image = tmp_path / "only_image"
    only_image.mkdir()
    shutil.copy(PROMPTS / "image_content.txt", only_image)
    make_protocol("release", only_image, {("image", "content")})
    with pytest.raises(Exception, match="No video style instruction"):
        make_protocol("release", only_image, {("image", "content"), ("video", "style")})
    (only_image / "image_style.txt").write_text("Rate it: {output}")
    with pytest.raises(Exception, match="no {caption_type}, {reference} placeholder"):
        make_protocol("release", only_image, {("image", "style")})
    with pytest.raises(Exception, match="release protocol only"):
        make_protocol("anycap", PROMPTS)


# ---- the release protocol end to end, over real HTTP -----------------------------------------
class Recorder:
    """A loopback judge in the release's format that records every request body."""

    def __init__(self, reply=judge_responder):
        self.bodies, self.reply = [], reply

    def __call__(self, body):
        self.bodies.append(body)
        return self.reply(body)


def text_of(body):
    content = body["messages"][-1]["content"]
    return (
        content
        if isinstance(content, str)
        else next(p["text"] for p in content if p["type"] == "text")
    )


@pytest.fixture()
def image_run(tmp_path):
    """Real image references (4 content, 4 style) with real images; one image corrupt."""
    rows = []
    for axis in ("content", "style"):
        rows += [
            json.loads(line)
            for line in (SHARED / "image" / f"anycapeval_image_ref_{axis}.jsonl").open()
        ][:4]
    refs = tmp_path / "refs.jsonl"
    refs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    media = tmp_path / "media"
    media.mkdir()
    for i, row in enumerate(rows):
        Image.open(testing.sample_image(("astronaut", "chelsea", "coffee")[i % 3])).convert(
            "RGB"
        ).save(media / row["image"], "JPEG")
    corrupt = rows[5]  # a style item
    data = (media / corrupt["image"]).read_bytes()
    (media / corrupt["image"]).write_bytes(data[: len(data) // 3])  # truncated JPEG
    captions = tmp_path / "captions.jsonl"
    captions.write_text(
        "".join(
            json.dumps({"id": r["id"], "caption": r["conversations"][1]["value"]}) + "\n"
            for r in rows
        )
    )
    return {
        "rows": rows,
        "refs": refs,
        "media": media,
        "captions": captions,
        "corrupt": corrupt,
        "tmp": tmp_path,
    }


def run_cli(*args):
    return CliRunner().invoke(cli, ["eval", "anycapeval", *map(str, args)], catch_exceptions=False)


def test_release_protocol_run_fills_the_release_templates_and_finishes_despite_a_corrupt_image(
    image_run,
):
    recorder = Recorder()
    out = image_run["tmp"] / "release"
    with ChatCompletionsServer(responder=recorder) as server:
        done = run_cli(
            "--refs",
            image_run["refs"],
            "--captions",
            image_run["captions"],
            "--judge-model",
            "gpt-4o",
            "--judge-base-url",
            server.base_url,
            "--protocol",
            "release",
            "--prompts",
            PROMPTS,
            "--media-root",
            image_run["media"],
            "-o",
            out,
        )
    assert done.exit_code == 1, done.output  # one failure: reports written, exit 1
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.md").is_file() and (out / "radar_image.png").is_file()
    meta = report["meta"]
    assert meta["failed"] == 1 and meta["judged"] == 7
    failure = meta["failures"][0]
    assert failure["id"] == str(image_run["corrupt"]["id"]) and "Unusable media" in failure["error"]
    assert meta["setup"]["protocol"] == "release" and meta["setup"]["temperature"] == 0.7
    assert (
        meta["setup"]["prompts"]["image_content"]
        == "sha256:" + hashlib.sha256((PROMPTS / "image_content.txt").read_bytes()).hexdigest()
    )
    assert meta["setup"]["counting"].startswith("anycapeval-release")

    content_t, style_t = (
        (PROMPTS / "image_content.txt").read_text(),
        (PROMPTS / "image_style.txt").read_text(),
    )
    sent = [text_of(b) for b in recorder.bodies]
    for row in image_run["rows"]:
        caption = row["conversations"][1]["value"]
        if "key_point" in row:
            expected = content_t.replace("{key_points}", "\n".join(row["key_point"])).replace(
                "{answer}", caption
            )
        elif row is image_run["corrupt"]:
            continue  # never sent: its media failed first
        else:
            expected = (
                style_t.replace("{caption_type}", row["restriction"][0])
                .replace("{output}", caption)
                .replace("{reference}", caption)
            )
        assert sent.count(expected) == 1
    assert len(recorder.bodies) == 7
    for body in recorder.bodies:
        assert body["temperature"] == 0.7 and "response_format" not in body
        content = body["messages"][-1]["content"]
        if isinstance(content, list):  # style: the text first, then the image's own bytes
            assert [p["type"] for p in content] == ["text", "image_url"]
            url = content[1]["image_url"]["url"]
            raw = base64.b64decode(url.split(",", 1)[1])
            assert url.startswith("data:image/jpeg;base64,") and raw[:2] == b"\xff\xd8"
            assert raw in {
                (image_run["media"] / r["image"]).read_bytes() for r in image_run["rows"]
            }

    # scores by hand: the loopback judge matches every other key point (1, 0, 1, ...); style 3 each
    content_rows = [r for r in image_run["rows"] if "key_point" in r]
    by_dim = {}
    for r in content_rows:
        caption = r["conversations"][1]["value"]
        matched = sum(i % 2 for i in range(1, len(r["key_point"]) + 1))
        c = release_constraint(r["restriction"][1])
        score = max(matched - 1, 0) if c and not c.check(caption).ok else matched
        s, w = by_dim.get(r["restriction"][0], (0, 0))
        by_dim[r["restriction"][0]] = (s + score, w + count_words(caption))
    for dim, (s, w) in by_dim.items():
        assert (
            report["image"]["content"][dim]["score"] == 100 * s / w
        )  # exact: report.json is not rounded


def test_release_protocol_asks_again_then_counts_a_failure(image_run):
    rows = [r for r in image_run["rows"] if "key_point" in r][:1]
    refs = image_run["tmp"] / "one.jsonl"
    refs.write_text(json.dumps(rows[0]) + "\n")
    recorder = Recorder(
        reply=lambda body: '{"key_points": [{"index": 1, "matched": 1}]}'
    )  # not the release format
    with ChatCompletionsServer(responder=recorder) as server:
        done = run_cli(
            "--refs",
            refs,
            "--captions",
            image_run["captions"],
            "--judge-model",
            "j",
            "--judge-base-url",
            server.base_url,
            "--protocol",
            "release",
            "--prompts",
            PROMPTS,
            "-o",
            image_run["tmp"] / "o",
        )
    assert (
        done.exit_code == 1 and len(recorder.bodies) == 3
    )  # asked, asked again twice, then a failure
    report = json.loads((image_run["tmp"] / "o" / "report.json").read_text())
    assert (
        report["meta"]["failed"] == 1
        and "Invalid judge replies" in report["meta"]["failures"][0]["error"]
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--protocol", "release"], "github.com/qishisuren123/AnyCap"),
        (["--prompts", str(PROMPTS)], "release protocol only"),
        (["--protocol", "release", "--prompts", str(PROMPTS)], "--media-root"),
        (
            [
                "--protocol",
                "release",
                "--prompts",
                str(PROMPTS),
                "--media-root",
                "{media}",
                "--judge-model",
                "offline",
            ],
            "offline judge",
        ),
    ],
)
def test_release_protocol_usage_errors(image_run, args, message):
    args = [a.replace("{media}", str(image_run["media"])) for a in args]
    model = [] if "--judge-model" in args else ["--judge-model", "gpt-4o"]
    done = run_cli(
        "--refs",
        image_run["refs"],
        "--captions",
        image_run["captions"],
        *model,
        "--judge-base-url",
        "http://127.0.0.1:9",
        *args,
        "-o",
        image_run["tmp"] / "x",
    )
    assert done.exit_code == 2 and message in done.output, done.output


def test_anycap_protocol_media_failures_are_counted_and_the_report_is_complete(image_run):
    style = [r for r in image_run["rows"] if "key_point" not in r]
    (image_run["media"] / style[0]["image"]).unlink()  # missing
    with ChatCompletionsServer(responder=judge_responder) as server:
        done = run_cli(
            "--refs",
            image_run["refs"],
            "--captions",
            image_run["captions"],
            "--judge-model",
            "j",
            "--judge-base-url",
            server.base_url,
            "--media-root",
            image_run["media"],
            "-o",
            image_run["tmp"] / "a",
        )
        assert done.exit_code == 1
        report = json.loads((image_run["tmp"] / "a" / "report.json").read_text())
        errors = sorted(f["error"].split(":")[0] for f in report["meta"]["failures"])
        assert (
            len(errors) == 2
            and errors[0].startswith("No media")
            and errors[1].startswith("Unusable media")
        )
        assert report["meta"]["judged"] == 6 and report["meta"]["setup"]["protocol"] == "anycap"
        tiny = run_cli(
            "--refs",
            image_run["refs"],
            "--captions",
            image_run["captions"],
            "--judge-model",
            "j",
            "--judge-base-url",
            server.base_url,
            "--media-root",
            image_run["media"],
            "--max-media-mb",
            "0.001",
            "-o",
            image_run["tmp"] / "b",
        )
    assert tiny.exit_code == 1
    report = json.loads((image_run["tmp"] / "b" / "report.json").read_text())
    # the three files present, the truncated one included: size is checked before anything is decoded
    assert sum("over the judge's" in f["error"] for f in report["meta"]["failures"]) == 3


def test_compare_warns_when_reports_are_not_comparable(image_run):
    outs = {}
    with ChatCompletionsServer(responder=judge_responder) as server:
        for name, extra in (
            ("anycap", []),
            ("release", ["--protocol", "release", "--prompts", PROMPTS]),
        ):
            outs[name] = image_run["tmp"] / name
            run_cli(
                "--refs",
                image_run["refs"],
                "--captions",
                image_run["captions"],
                "--judge-model",
                "j",
                "--judge-base-url",
                server.base_url,
                "--media-root",
                image_run["media"],
                *extra,
                "-o",
                outs[name],
            )
    a, b = (json.loads((outs[n] / "report.json").read_text()) for n in ("anycap", "release"))
    warnings = comparability_warnings(a, b)
    assert any("judge protocol" in w for w in warnings) and any(
        "temperature" in w for w in warnings
    )
    assert comparability_warnings(a, a) == []
    done = CliRunner().invoke(cli, ["eval", "compare", str(outs["anycap"]), str(outs["release"])])
    assert "warning: Different judge protocol" in done.output and "> **Warning:**" in done.output


# ---- media the release shows its style judge: video frames at linspace(0, n-1, 8), wav as is ---
def test_release_style_media_for_video_and_audio(tmp_path):
    video = testing.generate_video(
        tmp_path / "v.mp4", seconds=2.0, fps=12, size=(160, 120), audio=False
    )
    wav = testing.generate_wav(tmp_path / "a.wav", seconds=1.0)
    protocol = make_protocol("release", PROMPTS)
    from anycap_plugin.media import Media

    parts = protocol.style_media(Media.from_path(video), send_audio=False)
    assert len(parts) == 8 and all(p["type"] == "image_url" for p in parts)
    n, w = 24, 160
    shown = []
    for p in parts:
        frame = np.asarray(
            Image.open(
                io.BytesIO(base64.b64decode(p["image_url"]["url"].split(",", 1)[1]))
            ).convert("L")
        )
        band = frame[40 + 5 : 40 + 25].mean(axis=0)  # the white square's rows
        cx = int(np.argmax(band > 230))
        shown.append(round(cx * (n - 1) / (w - 30)))
    assert shown == np.linspace(0, n - 1, 8, dtype=int).tolist()  # first and last frame included
    audio = protocol.style_media(Media.from_path(wav), send_audio=False)
    assert audio == [
        {
            "type": "input_audio",
            "input_audio": {"data": base64.b64encode(wav.read_bytes()).decode(), "format": "wav"},
        }
    ]
    assert re.fullmatch(r"release\[(\w+=[0-9a-f]{12},?)+\]", protocol.id)
