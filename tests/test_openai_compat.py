"""The one OpenAI-compatible client layer: keys refused before any call, one JSON-reply parser,
re-asks that say what was wrong (call engine and judges), one transport (clients per event loop and
a sync one, each under the concurrency limit), failures without the key."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from anycap_plugin.call_engine import CallEngine, Endpoint, Role
from anycap_plugin.errors import OptionsError
from anycap_plugin.eval.judges import ChatJudge
from anycap_plugin.openai_compat import ChatTransport, api_key, ask_parsed, json_object, reask
from anycap_plugin.testing.server import ChatCompletionsServer


def test_a_missing_key_is_refused_before_any_call(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(OptionsError, match="No API key for endpoint 'default'") as e:
        CallEngine({"default": Endpoint(api_key_env="MY_KEY")}, {"writer": Role(model="m")})
    assert "MY_KEY" in e.value.hint
    with pytest.raises(OptionsError, match="No API key for the judge"):
        ChatJudge("gpt-4o-mini")
    # a server named by its URL may take none; a key in the environment is used
    assert api_key(None, base_url="http://127.0.0.1:1/v1") == "EMPTY"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    assert api_key(None) == "EMPTY"
    monkeypatch.setenv("MY_KEY", "k-123456")
    assert api_key(None, ("MY_KEY",)) == "k-123456"


def test_one_json_reply_parser():
    assert json_object('Sure! ```json\n{"a": 1}\n```') == {"a": 1}
    assert json_object('a {broken then {"score": 1}') == {"score": 1}
    # two objects in prose: the first, where the outermost braces would span both and fail
    assert json_object('{"domain": "natural"} and also {"note": 1}') == {"domain": "natural"}
    with pytest.raises(ValueError, match="no JSON object"):
        json_object("[1, 2]")


def scripted(*replies: str):
    queue = list(replies)
    return lambda body: queue.pop(0) if queue else replies[-1]


def test_the_call_engine_reasks_saying_what_was_wrong():
    with ChatCompletionsServer(responder=scripted("not json at all", '{"ok": true}')) as server:
        engine = CallEngine(
            {"default": Endpoint(base_url=server.base_url)}, {"writer": Role(model="m")}
        )
        try:
            reply = engine.run(
                engine.chat(
                    "writer", [{"role": "user", "content": "Reply with JSON."}], parse=json_object
                )
            )
        finally:
            engine.close()
    assert reply.data == {"ok": True}
    first, second = server.requests
    assert first["messages"] == [{"role": "user", "content": "Reply with JSON."}]
    assert second["messages"][:2] == [
        {"role": "user", "content": "Reply with JSON."},
        {"role": "assistant", "content": "not json at all"},
    ]
    assert "could not be used: no JSON object" in second["messages"][2]["content"]


def test_the_judge_reasks_saying_what_was_wrong():
    with ChatCompletionsServer(responder=scripted('{"score": 9}', '{"score": 3}')) as server:
        judge = ChatJudge("m", base_url=server.base_url, max_retries=0)

        def parse(text: str) -> int:
            score = json.loads(text)["score"]
            if not 0 <= score <= 4:
                raise ValueError(f"score {score} is not 0..4")
            return score

        assert asyncio.run(judge._verdict("Score it.", parse, "item 1")) == 3
    assert len(server.requests) == 2
    again = server.requests[1]["messages"]
    assert (
        again[1] == {"role": "assistant", "content": '{"score": 9}'}
        and "score 9 is not 0..4" in again[2]["content"]
    )
    assert reask([], "x", "why")[-1]["content"].startswith("That reply could not be used: why.")


def test_one_transport_serves_every_event_loop_and_thread_within_its_limit():
    """Async clients belong to the loop that made them: two `asyncio.run`s each get theirs; sync
    callers share one client; at most `concurrency` requests are in flight either way."""
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def counting(body):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)  # so that requests overlap; nothing below is timed
        with lock:
            state["now"] -= 1
        return body["messages"][-1]["content"]

    with ChatCompletionsServer(responder=counting) as server:
        transport = ChatTransport(server.base_url, "k-123456", max_retries=0, concurrency=3)

        async def eight(tag: str) -> list[str]:
            replies = await asyncio.gather(
                *(
                    transport.post({"model": "m", "messages": [{"role": "user", "content": t}]})
                    for t in (f"{tag}{i}" for i in range(8))
                )
            )
            await transport.aclose()
            return [r["choices"][0]["message"]["content"] for r in replies]

        assert asyncio.run(eight("a")) == [f"a{i}" for i in range(8)]
        assert asyncio.run(eight("b")) == [f"b{i}" for i in range(8)]  # a new loop, a new client
        async_peak, state["peak"] = state["peak"], 0
        with ThreadPoolExecutor(8) as pool:
            sync = list(
                pool.map(
                    lambda t: transport.post_sync(
                        {"model": "m", "messages": [{"role": "user", "content": t}]}
                    ),
                    [f"s{i}" for i in range(8)],
                )
            )
        assert [r["choices"][0]["message"]["content"] for r in sync] == [f"s{i}" for i in range(8)]
    assert async_peak == 3 and state["peak"] == 3
    assert "k-123456" not in repr(transport)

    def echoes_the_key(body):
        raise ValueError("bad key k-123456")  # the loopback server answers 400 with this

    with ChatCompletionsServer(responder=echoes_the_key) as server:
        transport = ChatTransport(server.base_url, "k-123456", max_retries=0)
        with pytest.raises(openai.BadRequestError) as e:
            transport.post_sync({"model": "m", "messages": []})
    assert "k-123456" in str(e.value)
    assert transport.failure(e.value) == (
        400,
        "after 1 attempt(s): HTTP 400: Error code: 400 - bad key ***",
    )


def test_ask_parsed_re_asks_from_the_first_request_then_raises_the_callers_error():
    asked = []

    async def ask(messages):
        asked.append(messages)
        return f"reply {len(asked)}"

    def parse(text):
        raise KeyError(f"no score in {text!r}")

    with pytest.raises(OptionsError, match="reply 1.*reply 2.*reply 3"):
        asyncio.run(
            ask_parsed(
                ask, [{"role": "user", "content": "q"}], parse, 3, lambda p: OptionsError(str(p))
            )
        )
    assert len(asked) == 3 and len(asked[2]) == 3  # the first request plus one re-ask, never a pile
    assert asked[2][1] == {"role": "assistant", "content": "reply 2"}
