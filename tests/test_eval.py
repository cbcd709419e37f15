"""AnyCapEval: scoring on hand-computed cases, judge replies over real HTTP, cache, offline judge, CLI."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from anycap_plugin.errors import JudgeError
from anycap_plugin.eval import JudgeCache, OpenAIJudge, evaluate, load_captions, load_references
from anycap_plugin.eval.protocols.anycap import parse_content_reply, parse_style_reply
from anycap_plugin.eval.references import EvalItem
from anycap_plugin.openai_compat import json_object
from anycap_plugin.testing.server import ChatCompletionsServer, Fault

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "anycapeval"
TEN = "The gray cat sits calmly on a wooden chair indoors."  # 10 words, one sentence


def item(
    id,
    key_points=None,
    constraint="The generated caption's length needs to be 10 to 20 words.",
    dim="instance",
):
    return EvalItem(
        str(id),
        "image",
        f"{id}.jpg",
        "Describe the cat.",
        "A gray cat on a chair.",
        dim,
        constraint,
        tuple(key_points) if key_points is not None else None,
    )


class ScriptedJudge:
    """A judge whose verdicts the test decides (the evaluator, not the judge, is under test)."""

    id = "scripted"

    def __init__(self, content=None, style=None, fail=()):
        self.content, self.style, self.fail, self.calls = content or {}, style or {}, set(fail), 0

    async def judge_content(self, item, caption):
        self.calls += 1
        if item.id in self.fail:
            raise JudgeError("no valid verdict")
        v = self.content[item.id]
        return v.pop(0) if isinstance(v[0], list) else v

    async def judge_style(self, item, caption):
        self.calls += 1
        v = self.style[item.id]
        return v.pop(0) if isinstance(v, list) else v


def test_content_kpd_recall_penalty_failures_and_missing():
    a = item("a", ["cat", "chair", "indoors"])
    b = item(
        "b",
        ["cat", "gray"],
        constraint="The generated caption's length needs to be exactly 20 words.",
    )
    c, d = item("c", ["x"]), item("d", ["y"])
    captions = {a.key: TEN, b.key: "A gray cat sits here.", c.key: TEN}  # d has none
    judge = ScriptedJudge(content={"a": [1, 1, 0], "b": [1, 1]}, fail={"c"})
    report = evaluate([a, b, c, d], captions, judge)
    dim = report["image"]["content"]["instance"]
    # a: 2 matched, complies; b: 2 matched - 1 (5 words breaks 'exactly 20') = 1; words 10 + 5
    assert dim["score"] == pytest.approx(100 * 3 / 15)
    assert dim["recall"] == pytest.approx(4 / 5)
    assert (dim["n"], dim["failed"], dim["missing"], dim["length_violations"]) == (2, 1, 1, 1)
    assert report["meta"]["failed"] == 1 and report["meta"]["failures"][0]["id"] == "c"


def test_penalty_never_goes_below_zero_and_empty_key_points_are_not_scored():
    a = item("a", ["p"], constraint="The generated caption's length needs to be exactly 20 words.")
    b = item("b", ["p", "q"])
    empty = item("e", [])
    judge = ScriptedJudge(content={"a": [0], "b": [1, 1]})
    report = evaluate([a, b, empty], {a.key: TEN, b.key: TEN, empty.key: TEN}, judge)
    dim = report["image"]["content"]["instance"]
    # as the release: the empty item is neither judged nor in the denominator (10 + 10 words, not 30)
    assert dim["score"] == 100 * 2 / 20 and judge.calls == 2
    assert dim["no_key_points"] == 1 and report["meta"]["no_key_points"] == 1 and dim["n"] == 2


def test_style_cap_mean_and_repeats():
    s1, s2 = (
        item("s1", dim="poem"),
        item(
            "s2",
            dim="poem",
            constraint="The generated caption's length cannot exceed two sentences.",
        ),
    )
    captions = {s1.key: TEN, s2.key: "One. Two. Three."}
    report = evaluate([s1, s2], captions, ScriptedJudge(style={"s1": 3, "s2": 4}))
    assert report["image"]["style"]["poem"]["score"] == pytest.approx((3 + 1) / 2)  # s2 capped at 1
    varied = evaluate(
        [s1, s2], captions, ScriptedJudge(style={"s1": [2, 4, 3], "s2": [0, 1, 1]}), repeats=3
    )
    poem = varied["image"]["style"]["poem"]
    assert poem["score"] == pytest.approx(((2 + 0) / 2 + (4 + 1) / 2 + (3 + 1) / 2) / 3, abs=1e-4)
    assert poem["std"] > 0 and len(poem["ci95"]) == 2 and poem["ci95"][0] <= poem["ci95"][1]
    assert varied["image"]["style"]["average"]["score"] == poem["score"]


@pytest.mark.parametrize(
    "reply,n,expected",
    [
        ('{"key_points": [{"index": 1, "matched": 1}, {"index": 2, "matched": 0}]}', 2, [1, 0]),
        (
            'Sure!\n```json\n{"key_points": [{"index": 2, "matched": true, "reason": "x"}, {"index": 1, "matched": 0}]}\n```',
            2,
            [0, 1],
        ),
        (
            'Verdict: {"key_points": [{"index": 1, "matched": 1, "reason": "says {cat}"}]} hope it helps',
            1,
            [1],
        ),
    ],
)
def test_content_replies_in_prose_and_fences(reply, n, expected):
    assert parse_content_reply(reply, n) == expected


@pytest.mark.parametrize(
    "reply,n",
    [
        ("not json", 2),
        ('{"key_points": [{"index": 1, "matched": 1}]}', 2),
        ('{"key_points": [{"index": 1, "matched": 1}, {"index": 1, "matched": 0}]}', 2),
        ('{"key_points": [{"index": 3, "matched": 1}, {"index": 1, "matched": 0}]}', 2),
        ('{"key_points": [{"index": 1, "matched": 2}]}', 1),
        ('{"key_points": {"1": 1}}', 1),
    ],
)
def test_invalid_content_replies_are_rejected(reply, n):
    with pytest.raises(ValueError):
        parse_content_reply(reply, n)


def test_style_reply_range():
    assert parse_style_reply('```{"score": 4, "reason": "good"}```') == 4
    for bad in (
        '{"score": 5}',
        '{"score": -1}',
        '{"score": 2.5}',
        '{"score": "3"}',
        '{"reason": "x"}',
    ):
        with pytest.raises(ValueError):
            parse_style_reply(bad)
    assert json_object('a {broken then {"score": 1}') == {"score": 1}


class ReplyScript:
    """Replies of a loopback judge server, in order; records the prompts it was sent."""

    def __init__(self, *replies, reject_json_mode=False):
        self.replies, self.prompts, self.reject_json_mode = list(replies), [], reject_json_mode

    def __call__(self, body):
        if self.reject_json_mode and "response_format" in body:
            raise ValueError("response_format is not supported by this server")
        content = body["messages"][-1]["content"]
        self.prompts.append(content if isinstance(content, str) else content[-1]["text"])
        return self.replies.pop(0)


def judge_for(server, **kw):
    return OpenAIJudge("judge-model", base_url=server.base_url, api_key="k", max_retries=0, **kw)


def test_openai_judge_prompt_retries_and_failures():
    a = item("a", ["the cat is gray", "a wooden chair"])
    script = ReplyScript(
        "no idea",
        '{"key_points": [{"index": 1, "matched": 1}]}',
        'ok: {"key_points": [{"index": 1, "matched": 1}, {"index": 2, "matched": 0}]}',
        "x",
        "y",
        "z",
    )
    with ChatCompletionsServer(responder=script) as server:
        judge = judge_for(server)
        assert asyncio.run(judge.judge_content(a, TEN)) == [
            1,
            0,
        ]  # third reply is the first valid one
        prompt = script.prompts[0]
        assert f"<<<\n{TEN}\n>>>" in prompt and "1. the cat is gray\n2. a wooden chair" in prompt
        assert all(b.get("response_format") == {"type": "json_object"} for b in server.requests)
        with pytest.raises(JudgeError, match="Invalid judge replies"):
            asyncio.run(judge.judge_content(a, TEN))  # three invalid replies: bounded retries


def test_openai_judge_falls_back_when_json_mode_is_rejected():
    script = ReplyScript(
        '{"score": 7}', 'Score: {"score": 3, "reason": "fine"}', reject_json_mode=True
    )
    with ChatCompletionsServer(responder=script) as server:
        assert (
            asyncio.run(judge_for(server).judge_style(item("s", dim="poem"), TEN)) == 3
        )  # 7 is out of range
        assert (
            "response_format" in server.requests[0] and "response_format" not in server.requests[-1]
        )
        assert len(server.requests) == 3


def test_openai_judge_timeouts_are_failures_not_zeros():
    a = item("a", ["p"])
    with ChatCompletionsServer(
        responder=ReplyScript('{"key_points": [{"index": 1, "matched": 1}]}')
    ) as server:
        server.inject(Fault("slow", seconds=2.0))
        report = evaluate([a], {a.key: TEN}, judge_for(server, timeout=0.5))
        assert report["image"]["content"]["instance"]["failed"] == 1
        assert report["image"]["content"]["instance"]["score"] is None


def test_cache_makes_a_rerun_free(tmp_path):
    items = [
        item(i, ["cat", f"chair {i}"]) for i in range(5)
    ]  # distinct questions: identical ones share a verdict
    captions = {i.key: TEN for i in items}
    reply = '{"key_points": [{"index": 1, "matched": 1}, {"index": 2, "matched": 1}]}'
    with ChatCompletionsServer(responder=lambda body: reply) as server:
        cache = JudgeCache(tmp_path / "c.sqlite")
        first = evaluate(items, captions, judge_for(server), cache=cache, repeats=2)
        assert len(server.requests) == 10 and first["meta"]["cache"] == {"hits": 0, "misses": 10}
        cache.close()
        cache = JudgeCache(tmp_path / "c.sqlite")
        second = evaluate(items, captions, judge_for(server), cache=cache, repeats=2)
        assert len(server.requests) == 10 and second["meta"]["cache"]["hits"] == 10
        assert second["image"] == first["image"]
        changed = dict(captions)
        changed[items[0].key] = TEN + " It purrs."
        evaluate(items, changed, judge_for(server), cache=cache, repeats=2)
        assert len(server.requests) == 12  # only the changed caption is judged again


def test_judge_reasons_are_reported_cached_and_old_caches_still_read(tmp_path):
    from anycap_plugin.eval.cache import verdict_key

    a, s = item("a", ["the cat is gray", "a wooden chair"]), item("s", dim="poem")
    captions = {a.key: TEN, s.key: TEN}

    def reply(body):
        text = body["messages"][-1]["content"]
        text = text if isinstance(text, str) else text[-1]["text"]
        if "Key points" in text:
            return json.dumps(
                {
                    "key_points": [
                        {"index": 2, "matched": 0, "reason": "no chair is named"},
                        {"index": 1, "matched": 1, "reason": "says gray"},
                    ]
                }
            )
        return '{"score": 3, "reason": "as good as the reference"}'

    with ChatCompletionsServer(responder=reply) as server:
        with JudgeCache(tmp_path / "c.sqlite") as cache:
            first = evaluate([a, s], captions, judge_for(server), cache=cache)
        with JudgeCache(tmp_path / "c.sqlite") as cache:
            again = evaluate([a, s], captions, judge_for(server), cache=cache)
            assert again["meta"]["cache"]["hits"] == 2
            # an entry written before reasons were kept: the bare verdict
            old = item("old", ["p"])
            cache.put(verdict_key(judge_for(server).id, "content", old, TEN, 0), [1])
            older = evaluate([old], {old.key: TEN}, judge_for(server), cache=cache)
        assert len(server.requests) == 2
    for report in (first, again):
        by_id = {i["id"]: i for i in report["items"]}
        assert by_id["a"]["verdicts"] == [[1, 0]]
        assert by_id["a"]["reasons"] == [["says gray", "no chair is named"]]  # in key-point order
        assert by_id["s"]["reasons"] == ["as good as the reference"]
    assert older["items"][0]["verdicts"] == [[1]] and older["items"][0]["reasons"] == [None]


@pytest.fixture(scope="module")
def offline_judge():
    from anycap_plugin.eval import OfflineJudge

    return OfflineJudge()


def test_offline_threshold_separates_own_from_unrelated_captions(offline_judge):
    from anycap_plugin.eval.offline import MATCH_THRESHOLD, calibrate

    items = load_references(sorted(SHARED.glob("*/*content*.jsonl")))
    rates = calibrate(items, offline_judge)
    assert rates["key_points"] > 600
    assert rates["own_reference_match_rate"] >= 0.8
    assert rates["unrelated_reference_match_rate"] <= 0.08
    assert abs(rates["best_threshold_on_grid"] - MATCH_THRESHOLD) <= 0.05


def test_references_and_candidates_files(tmp_path):
    items = load_references(sorted(SHARED.glob("*/*.jsonl")))
    assert len(items) == 794 and {i.modality for i in items} == {"image", "video", "audio"}
    assert sum(1 for i in items if i.axis == "content") == 153
    cands = tmp_path / "c.jsonl"
    cands.write_text(json.dumps({"id": 0, "caption": "x"}) + "\n")
    with pytest.raises(Exception, match="add a 'modality' field"):
        load_captions(cands, items)


def test_cli_offline_report_and_compare(tmp_path):
    refs = [
        SHARED / "image" / "anycapeval_image_ref_content.jsonl",
        SHARED / "image" / "anycapeval_image_ref_style.jsonl",
    ]
    rows = [json.loads(line) for r in refs for line in r.read_text().splitlines()][::6]
    subset = tmp_path / "refs.jsonl"
    subset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    good = tmp_path / "good.jsonl"
    good.write_text(
        "".join(
            json.dumps({"id": r["id"], "caption": r["conversations"][1]["value"]}) + "\n"
            for r in rows
        )
    )
    poor = tmp_path / "poor.jsonl"
    poor.write_text(
        "".join(json.dumps({"id": r["id"], "caption": "A photo."}) + "\n" for r in rows[:-3])
    )
    anycap = [sys.executable, "-m", "anycap_plugin", "eval"]
    for name, cands in (("good", good), ("poor", poor)):
        done = subprocess.run(
            anycap
            + [
                "anycapeval",
                "--refs",
                str(subset),
                "--captions",
                str(cands),
                "--judge-model",
                "offline",
                "-o",
                str(tmp_path / name),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    good_report = json.loads((tmp_path / "good" / "report.json").read_text())
    poor_report = json.loads((tmp_path / "poor" / "report.json").read_text())
    assert (tmp_path / "good" / "radar_image.png").stat().st_size > 10_000
    for dim, d in good_report["image"]["content"].items():
        if dim != "average":
            assert {"score", "n", "failed", "recall"} <= set(d)
    assert (
        good_report["image"]["content"]["average"]["score"]
        > poor_report["image"]["content"]["average"]["score"]
    )
    assert poor_report["meta"]["missing_captions"] == 3
    diff = subprocess.run(
        anycap + ["compare", str(tmp_path / "good"), str(tmp_path / "poor")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "| Δ vs A |" in diff.stdout and "-" in diff.stdout
