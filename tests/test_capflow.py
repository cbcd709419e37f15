"""CapFlow against loopback OpenAI-compatible servers, with real media: routing and its fallback,
parallel agents, summary, filter verdicts, bad workflows and replies, the call cache, resume after a
kill, the filter alone on existing captions, and composition with the rest of AnyCap."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from anycap_plugin import get_captioner, plugins
from anycap_plugin.batch import WorkItem, run
from anycap_plugin.testing.server import ChatCompletionsServer, Fault

capflow = pytest.importorskip("anycap_capflow")
from anycap_capflow import WorkflowError, load_workflow
from anycap_capflow.loopback import prompt_and_images, respond

SECRET = "sk-capflow-SECRET-7"
DOMAINS = {
    "natural",
    "structure_math",
    "infographic_document",
    "medical_bio",
    "ui_interaction",
    "code_programming",
    "knowledge_education",
    "synthetic_aesthetic",
    "video_temporal",
}


@pytest.fixture(autouse=True)
def capflow_plugins(monkeypatch):
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "capflow,openai")
    plugins.reset()
    yield
    plugins.reset()


def build(server, spec="capflow:loop-model", **kwargs):
    return get_captioner(spec, base_url=server.base_url, api_key=SECRET, **kwargs)


def test_the_default_workflow_covers_nine_domains_with_three_to_five_agents():
    wf = load_workflow(model="m")
    assert set(wf.domains) == DOMAINS and wf.default_domain == "natural"
    assert all(3 <= len(d.agents) <= 5 for d in wf.domains.values())
    kinds = {a.kind for d in wf.domains.values() for a in d.agents}
    assert kinds == {"guideline", "perception", "reasoning", "tools"}
    assert wf.filter_dimensions["image"] == (
        "factual_accuracy",
        "completeness",
        "reasoning_rigour",
        "core_intent",
        "professionalism",
    )
    assert set(wf.roles) == {"router", "agent", "summary", "judge"} and {
        r.model for r in wf.roles.values()
    } == {"m"}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t + "\n  - [unclosed", "is not valid YAML"),
        (lambda t: t.replace("role: judge", "role: critic"), "filter uses unknown role 'critic'"),
        (
            lambda t: t.replace("default_domain: natural", "default_domain: astrology"),
            "router.default_domain 'astrology' is not a domain",
        ),
        (
            lambda t: t.replace("      perception: Report", "      painter: Report", 1).replace(
                "      perception: List the main", "      painter: List the main"
            ),
            "unknown agent 'painter'",
        ),
        (
            lambda t: t.replace("agent:   {endpoint: default", "agent:   {endpoint: elsewhere"),
            "unknown endpoint 'elsewhere'",
        ),
    ],
)
def test_bad_workflows_name_the_key_at_fault(tmp_path, change, message):
    text = (Path(capflow.__file__).parent / "default_workflow.yaml").read_text()
    path = tmp_path / "wf.yaml"
    path.write_text(change(text))
    with pytest.raises(WorkflowError, match=re.escape(message)):
        load_workflow(path, model="m")
    with pytest.raises(WorkflowError, match="has no model"):
        load_workflow()


def concurrency_tracking(responder, delay):
    """A responder that takes `delay` s and records how many replies were being computed at once."""
    state = {"now": 0, "peak": 0, "lock": threading.Lock()}

    def respond_slowly(body):
        with state["lock"]:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(delay)
        with state["lock"]:
            state["now"] -= 1
        return responder(body)

    return respond_slowly, state


def test_an_image_is_routed_described_by_parallel_agents_summarised_and_judged(
    image_path, tmp_path
):
    slow, state = concurrency_tracking(respond, 0.2)
    with ChatCompletionsServer(slow) as server:
        captioner = build(server, cache=tmp_path / "calls.sqlite")
        caption = captioner.caption(image_path, instruction="Describe the person.")
        sent = [prompt_and_images(r) for r in server.requests]
    flow = caption.meta["capflow"]
    assert (flow["domain"], flow["confidence"], flow["routed"]) == ("natural", 3, "router")
    assert set(flow["agents"]) == {"guideline", "perception", "reasoning"}
    assert caption.text == flow["summary"] == "Caption from guideline, perception, reasoning."
    assert flow["filter"]["kept"] is True and set(flow["filter"]["scores"]) == {
        "factual_accuracy",
        "completeness",
        "reasoning_rigour",
        "core_intent",
        "professionalism",
    }
    assert state["peak"] == 3  # the 3 agents ran at once (each server reply waits 0.2 s)
    by_role = caption.usage["base"]["by_role"]
    assert {r: u["calls"] for r, u in by_role.items()} == {
        "router": 1,
        "agent": 3,
        "summary": 1,
        "judge": 1,
    }
    assert (
        caption.usage["base"]["prompt_tokens"]
        == sum(u["prompt_tokens"] for u in by_role.values())
        > 0
    )
    assert [images for _, images in sent] == [1, 1, 1, 1, 0, 1]  # the summary is text only
    assert all("The user asks for: Describe the person." in text for text, _ in sent[1:5])
    assert "[perception agent]\nperception notes on 1 image(s)." in sent[4][0]


def test_a_video_routes_to_the_temporal_domain_and_is_judged_on_video_dimensions(
    video_path, tmp_path
):
    with ChatCompletionsServer(respond) as server:
        caption = build(server, cache=False).caption(video_path, num_frames=4)
    flow = caption.meta["capflow"]
    assert flow["domain"] == "video_temporal" and set(flow["agents"]) == {
        "guideline",
        "perception",
        "reasoning",
        "tools",
    }
    assert set(flow["filter"]["scores"]) == {
        "temporal_factual_accuracy",
        "event_detail_coverage",
        "temporal_causal_logic",
    }
    assert flow["agents"]["perception"] == "perception notes on 4 image(s)."


def routed_as(domain, confidence):
    def responder(body):
        text, _ = prompt_and_images(body)
        if "You are the router" in text:
            return json.dumps({"domain": domain, "confidence": confidence})
        return respond(body)

    return responder


@pytest.mark.parametrize(
    "domain, confidence, routed, used",
    [
        ("code_programming", 3, "router", "code_programming"),
        ("code_programming", 1, "fallback", "natural"),  # low confidence: the default domain
        ("astrology", 3, "fallback", "natural"),  # not one of ours
    ],
)
def test_low_confidence_or_unknown_routes_fall_back_to_the_default_domain(
    image_path, domain, confidence, routed, used
):
    with ChatCompletionsServer(routed_as(domain, confidence)) as server:
        flow = build(server, cache=False).caption(image_path).meta["capflow"]
    assert (flow["routed"], flow["domain"], flow["router_choice"]) == (
        routed,
        used,
        domain if routed == "router" or domain in DOMAINS else None,
    )
    assert set(flow["agents"]) == {a.kind for a in load_workflow(model="m").domains[used].agents}


def test_a_given_domain_skips_routing_and_an_unknown_one_is_an_item_error(image_path, tmp_path):
    with ChatCompletionsServer(respond) as server:
        captioner = build(server, cache=False)
        flow = captioner.caption(image_path, domain="medical_bio").meta["capflow"]
        assert not any("You are the router" in prompt_and_images(r)[0] for r in server.requests)
        summary = run(
            captioner,
            [WorkItem(str(image_path), None)],
            tmp_path / "o.jsonl",
            options={"domain": "astrology"},
        )
    assert (flow["routed"], flow["domain"], flow["confidence"]) == ("given", "medical_bio", None)
    record = json.loads((tmp_path / "o.jsonl").read_text())
    assert summary.failed == 1 and "Unknown domain 'astrology'" in record["error"]["message"]


def judged(scores):
    def responder(body):
        text, _ = prompt_and_images(body)
        if "quality judge" in text:
            return json.dumps({"scores": scores, "reason": "one weak spot"})
        return respond(body)

    return responder


def test_a_caption_is_kept_only_with_the_top_mark_on_every_dimension(image_path):
    top = {
        "factual_accuracy": 3,
        "completeness": 3,
        "reasoning_rigour": 3,
        "core_intent": 3,
        "professionalism": 3,
    }
    with ChatCompletionsServer(judged({**top, "completeness": 2})) as server:
        verdict = build(server, cache=False).caption(image_path).meta["capflow"]["filter"]
    assert verdict == {
        "scores": {**top, "completeness": 2},
        "reason": "one weak spot",
        "kept": False,
    }
    with ChatCompletionsServer(
        judged({**top, "completeness": 7})
    ) as server:  # out of range: re-asked, then failed
        with pytest.raises(
            Exception, match="not what its prompt asks for.*'completeness' scored 7"
        ):
            build(server, cache=False).caption(image_path)
        assert sum("quality judge" in prompt_and_images(r)[0] for r in server.requests) == 3
    with ChatCompletionsServer(respond) as server:
        plain = build(server, cache=False).caption(image_path, filter=False).meta["capflow"]
        assert "filter" not in plain and len(server.requests) == 5


def test_replies_that_are_not_json_are_asked_again_then_fail_the_item_only(image_path, tmp_path):
    calls = {"router": 0}

    def stubborn_router(body):
        text, _ = prompt_and_images(body)
        if "You are the router" in text:
            calls["router"] += 1
            if calls["router"] <= 4:
                return "I think it is a natural photo."
        return respond(body)

    with ChatCompletionsServer(stubborn_router) as server:
        summary = run(
            build(server, cache=False),
            [WorkItem(str(image_path), "a"), WorkItem(str(image_path), "b")],
            tmp_path / "o.jsonl",
        )
    records = {
        r["instruction"]: r
        for r in map(json.loads, (tmp_path / "o.jsonl").read_text().splitlines())
    }
    assert (
        summary.failed == 1 and summary.succeeded == 1
    )  # 3 asks for the first item, 1 + 1 for the second
    failed = next(r for r in records.values() if r["error"])
    assert failed["error"]["type"] == "ReplyFormatError"


def test_endpoint_errors_fail_the_item_with_a_clear_error_and_no_key(image_path, tmp_path):
    with ChatCompletionsServer(respond) as server:
        server.inject(*[Fault("500", retry_after=0.01)] * 3)
        summary = run(
            build(server, cache=False), [WorkItem(str(image_path), "x")], tmp_path / "o.jsonl"
        )
        assert summary.succeeded == 1  # three 500s are retried by the SDK
        server.inject(*[Fault("500", retry_after=0.01)] * 10)
        summary = run(
            build(server, cache=False), [WorkItem(str(image_path), "y")], tmp_path / "o.jsonl"
        )
    record = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[-1])
    assert summary.failed == 1 and record["error"]["type"] == "CallError"
    assert re.search(
        r"The router call \(loop-model at endpoint 'default'\) failed after 6 attempt\(s\): HTTP 500",
        record["error"]["message"],
    )
    assert SECRET not in (tmp_path / "o.jsonl").read_text()


def test_the_call_cache_makes_a_rerun_pay_only_for_what_failed(image_path, tmp_path):
    broken = {"summary": True}

    def summary_fails_once(body):
        text, _ = prompt_and_images(body)
        if "notes of specialist agents" in text and broken["summary"]:
            broken["summary"] = False
            raise ValueError("summary model overloaded")  # HTTP 400: not retried
        return respond(body)

    with ChatCompletionsServer(summary_fails_once) as server:
        first = run(
            build(server, cache=tmp_path / "calls.sqlite"),
            [WorkItem(str(image_path), "x")],
            tmp_path / "o.jsonl",
        )
        assert (
            first.failed == 1 and len(server.requests) == 5
        )  # router, 3 agents, the failed summary
        second = run(
            build(server, cache=tmp_path / "calls.sqlite"),
            [WorkItem(str(image_path), "x")],
            tmp_path / "o.jsonl",
        )
        assert (
            second.succeeded == 1 and len(server.requests) == 5 + 2
        )  # only the summary and the judge are paid
    record = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()][-1]
    by_role = record["usage"]["base"]["by_role"]
    assert by_role["router"]["cache_hits"] == 1 and by_role["agent"]["cache_hits"] == 3
    assert by_role["summary"]["calls"] == 1 and by_role["summary"]["cache_hits"] == 0


def test_a_killed_cli_run_resumes_and_pays_only_for_unfinished_calls(tmp_path):
    from anycap_plugin.testing.samples import sample_image

    media = tmp_path / "media"
    media.mkdir()
    for n in range(8):
        shutil.copyfile(
            sample_image(("astronaut", "chelsea", "coffee", "camera")[n % 4]), media / f"{n}.png"
        )
    out = tmp_path / "caps.jsonl"
    with ChatCompletionsServer(respond, delay=0.15) as server:
        env = {
            **os.environ,
            "ANYCAP_LOAD_PLUGINS": "capflow",
            "OPENAI_API_KEY": SECRET,
            "OPENAI_BASE_URL": server.base_url,
            "ANYCAP_CACHE": str(tmp_path / "cache"),
        }
        cmd = [
            sys.executable,
            "-m",
            "anycap_plugin",
            "caption",
            str(media),
            "-m",
            "capflow:loop-model",
            "-o",
            str(out),
            "-c",
            "2",
        ]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and (
            not out.exists() or len(out.read_text().splitlines()) < 2
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = len(server.requests)
        done_before = len(out.read_text().splitlines())
        resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        paid = len(server.requests) - before
    assert resumed.returncode == 0, resumed.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert (
        len(records) == 8
        and len({r["key"] for r in records}) == 8
        and all(r["error"] is None for r in records)
    )
    hits = sum(
        u["cache_hits"]
        for r in records[done_before:]
        for u in r["usage"]["base"]["by_role"].values()
    )
    assert paid + hits == 6 * (8 - done_before) and f"{done_before} already done" in resumed.stderr
    assert SECRET not in out.read_text() + resumed.stderr


def test_the_filter_runs_alone_on_existing_captions(tmp_path, image_path, video_path):
    captions = tmp_path / "caps.jsonl"
    captions.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "input": str(image_path),
                        "caption": "An astronaut in a white suit.",
                        "key": "a",
                    }
                ),
                "{broken json",
                json.dumps({"input": str(video_path), "caption": "A rabbit wakes up.", "key": "v"}),
                json.dumps({"input": str(image_path), "key": "no-caption"}),
            ]
        )
        + "\n"
    )
    out = tmp_path / "filtered.jsonl"
    with ChatCompletionsServer(
        judged(
            {
                "factual_accuracy": 3,
                "completeness": 3,
                "reasoning_rigour": 3,
                "core_intent": 3,
                "professionalism": 2,
                "temporal_factual_accuracy": 3,
                "event_detail_coverage": 3,
                "temporal_causal_logic": 3,
            }
        )
    ) as server:
        env = {
            **os.environ,
            "ANYCAP_LOAD_PLUGINS": "capflow",
            "OPENAI_API_KEY": SECRET,
            "ANYCAP_CACHE": str(tmp_path / "cache"),
        }
        cmd = [
            sys.executable,
            "-m",
            "anycap_plugin",
            "capflow-filter",
            str(captions),
            "-m",
            "judge-model",
            "-o",
            str(out),
            "--base-url",
            server.base_url,
            "--num-frames",
            "2",
        ]
        first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        judged_calls = len(server.requests)
    assert first.returncode == 1 and "2 judged, 2 failed" in first.stdout, first.stderr
    assert "0 judged, 2 failed, 2 already done" in again.stdout and judged_calls == 2
    rows = {r["key"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert (
        rows["a"]["filter"]["kept"] is False
        and rows["a"]["filter"]["scores"]["professionalism"] == 2
    )
    assert (
        rows["v"]["filter"]["kept"] is True
        and rows["a"]["caption"] == "An astronaut in a white suit."
    )
    assert rows[f"{captions}:2"]["error"]["type"] == "ValueError"
    assert "no 'caption' text" in rows["no-caption"]["error"]["message"]


def test_capflow_composes_with_post_processors_and_as_a_post_processor(image_path):
    with ChatCompletionsServer(respond) as server:
        os.environ["OPENAI_BASE_URL"] = server.base_url
        try:
            chained = get_captioner("capflow:loop-model+identity", api_key=SECRET, cache=False)
            caption = chained.caption(image_path)
            assert caption.models == {"base": "capflow:loop-model", "post": "identity"}
            assert caption.meta["capflow"]["domain"] == "natural"
            judged_base = get_captioner(
                "openai:base-model+capflow-filter:judge-model", api_key=SECRET
            )
            refined = judged_base.caption(image_path)
        finally:
            del os.environ["OPENAI_BASE_URL"]
    assert refined.text == refined.base_text and refined.meta["capflow_filter"]["kept"] is True
    assert refined.usage["post"]["by_role"]["judge"]["calls"] == 1


def test_each_role_has_its_own_endpoint_model_and_concurrency_limit(image_path, tmp_path):
    slow, state = concurrency_tracking(respond, 0.2)
    with ChatCompletionsServer(slow) as main, ChatCompletionsServer(respond) as judges:
        text = (Path(capflow.__file__).parent / "default_workflow.yaml").read_text()
        text = text.replace(
            "  default: {api_key_env: OPENAI_API_KEY, concurrency: 16, timeout: 120, max_retries: 5}",
            f"  default: {{base_url: '{main.base_url}', api_key_env: MAIN_KEY, concurrency: 2}}\n"
            f"  judges: {{base_url: '{judges.base_url}', api_key_env: JUDGE_KEY, concurrency: 4}}",
        )
        text = text.replace(
            "judge:   {endpoint: default, model: null",
            "judge:   {endpoint: judges, model: judge-model",
        )
        (tmp_path / "wf.yaml").write_text(text.replace("model: null", "model: worker-model"))
        os.environ.update(MAIN_KEY="main-key", JUDGE_KEY="judge-key")
        try:
            caption = get_captioner(f"capflow:{tmp_path / 'wf.yaml'}", cache=False).caption(
                image_path
            )
        finally:
            del os.environ["MAIN_KEY"], os.environ["JUDGE_KEY"]
        assert {r["model"] for r in main.requests} == {"worker-model"} and len(main.requests) == 5
        assert [r["model"] for r in judges.requests] == ["judge-model"]
        assert {h["authorization"] for h in main.headers} == {"Bearer main-key"}
        assert {h["authorization"] for h in judges.headers} == {"Bearer judge-key"}
    assert state["peak"] == 2  # three agents, two calls at once on this endpoint
    assert caption.meta["capflow"]["filter"]["kept"] is True


def test_capflow_chains_with_acm(image_path, tmp_path):
    from anycap_plugin import testing

    acm = testing.build_tiny_acm(tmp_path / "acm")
    with ChatCompletionsServer(respond) as server:
        captioner = get_captioner(
            f"capflow:loop-model+acm:{acm}", base_url=server.base_url, api_key=SECRET, cache=False
        )
        caption = captioner.caption(image_path, instruction="Describe it in one sentence.")
    assert caption.models["base"] == "capflow:loop-model" and caption.models["post"].startswith(
        "acm"
    )
    assert caption.base_text == "Caption from guideline, perception, reasoning."
    assert (
        caption.meta["attempts"] >= 1
    )  # the (random, tiny) ACM refined it under its constraint check
    assert caption.meta["capflow"]["domain"] == "natural"


def test_capflow_is_a_vlmeval_model(image_path, monkeypatch, tmp_path):
    from anycap_plugin.integrations.vlmeval import AnyCapVLM, import_vlmeval

    import_vlmeval()
    with ChatCompletionsServer(respond) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        monkeypatch.setenv("ANYCAP_CACHE", str(tmp_path))
        model = AnyCapVLM("capflow:loop-model")
        answer = model.generate(
            [{"type": "image", "value": str(image_path)}, {"type": "text", "value": "Describe."}]
        )
        assert (
            answer == "Caption from guideline, perception, reasoning." and len(server.requests) == 6
        )
