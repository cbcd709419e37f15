"""The OpenAI adapter with the real SDK against a real chat-completions server on 127.0.0.1."""

import asyncio
import base64
import io
import json
import logging
import re

import pytest
from PIL import Image

from anycap_plugin import (
    CaptionerError,
    ModalityNotSupportedError,
    OptionsError,
    get_captioner,
    plugins,
)
from anycap_plugin.batch import WorkItem, run
from anycap_plugin.media import Media
from anycap_plugin.testing.server import ChatCompletionsServer, Fault

SECRET = "sk-test-SECRET-0123456789"


@pytest.fixture()
def server():
    with ChatCompletionsServer() as s:
        yield s


@pytest.fixture()
def captioner(server, monkeypatch):
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "openai")
    plugins.reset()
    return get_captioner(
        "openai:gpt-4o-mini", base_url=server.base_url, api_key=SECRET, max_retries=4, timeout=1.0
    )


@pytest.fixture()
def sleeps(caplog):
    """The waits the OpenAI SDK chose before each retry, read from its own log line."""
    caplog.set_level(logging.INFO, logger="openai")

    def waits():
        found = [
            re.match(r"Retrying request in ([0-9.]+) seconds", r.getMessage())
            for r in caplog.records
        ]
        return [float(m.group(1)) for m in found if m]

    return waits


def _parts(body):
    return body["messages"][-1]["content"]


def test_found_through_its_entry_point(captioner):
    assert "openai" in plugins.list_captioners()
    assert captioner.id == "openai:gpt-4o-mini"
    assert SECRET not in repr(captioner)


def test_image_goes_as_a_data_url_with_detail(server, captioner, image_path):
    c = captioner.caption(image_path, instruction="Describe the background.", detail="low")
    assert c.text == "1 images, 0 audio: Describe the background."
    assert c.usage["base"]["prompt_tokens"] > 0 and c.usage["base"]["completion_tokens"] > 0
    body = server.requests[-1]
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.0
    image = _parts(body)[0]["image_url"]
    assert image["detail"] == "low" and image["url"].startswith("data:image/png;base64,")
    assert base64.b64decode(image["url"].split(",", 1)[1]) == image_path.read_bytes()
    assert server.headers[-1]["authorization"] == f"Bearer {SECRET}"


def test_a_truncated_image_is_a_typed_error_and_never_uploaded(
    server, captioner, image_path, tmp_path
):
    from anycap_plugin.errors import CorruptMediaError

    cut = tmp_path / "cut.png"
    cut.write_bytes(image_path.read_bytes()[:5000])  # the header opens; the pixels do not decode
    with pytest.raises(CorruptMediaError):
        captioner.caption(cut, instruction="Describe it.")
    assert server.requests == []


def test_video_goes_as_frames_in_order(server, captioner, video_path):
    c = captioner.caption(video_path, num_frames=6)
    assert c.text.startswith("6 images, 0 audio: The following 6 images are frames of one video")
    urls = [p["image_url"]["url"] for p in _parts(server.requests[-1]) if p["type"] == "image_url"]
    frames = Media.load(video_path).frames(num_frames=6).images
    for url, frame in zip(urls, frames):
        sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert sent.size == frame.size
    assert _parts(server.requests[-1])[-1]["text"] == "Describe this video in detail."


def test_audio_only_when_the_model_takes_it(server, captioner, audio_path):
    with pytest.raises(ModalityNotSupportedError, match="takes: image, video"):
        captioner.caption(audio_path)
    audio_model = get_captioner(
        "openai:gpt-4o-audio-preview",
        base_url=server.base_url,
        api_key=SECRET,
        modalities=["audio"],
    )
    c = audio_model.caption(audio_path, "What is heard?")
    assert c.text == "0 images, 1 audio: What is heard?"
    part = _parts(server.requests[-1])[0]["input_audio"]
    assert part["format"] == "wav"
    decoded = Media.from_bytes(base64.b64decode(part["data"])).audio()
    assert abs(decoded.duration - 2.0) < 0.01


def test_the_sdk_retries_drops_timeouts_429_and_500_honouring_retry_after(
    server, captioner, image_path, sleeps
):
    server.inject(
        Fault("drop"),
        Fault("slow", seconds=1.5),
        Fault("429", retry_after=0.3),
        Fault("500", retry_after=0.05),
    )
    c = captioner.caption(image_path, "x")
    assert c.text.endswith("x") and len(server.requests) == 5
    assert [h["x-stainless-retry-count"] for h in server.headers] == ["0", "1", "2", "3", "4"]
    waits = sleeps()
    assert len(waits) == 4
    assert (
        0.375 <= waits[0] <= 0.5 and 0.75 <= waits[1] <= 1.0
    )  # backoff: 0.5 s doubling, 0-25% jitter
    assert waits[2:] == [0.3, 0.05]  # Retry-After honoured


def test_gives_up_after_max_retries(server, captioner, image_path, sleeps):
    server.inject(*[Fault("500", retry_after=0.01)] * 5)
    with pytest.raises(CaptionerError, match="after 5 attempt.*HTTP 500"):
        captioner.caption(image_path)
    assert len(server.requests) == 5 and len(sleeps()) == 4


def test_no_retry_on_other_4xx(image_path, monkeypatch, sleeps):
    def reject(body):
        raise ValueError("model 'nope' does not exist")

    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "openai")
    plugins.reset()
    with ChatCompletionsServer(responder=reject) as s:
        cap = get_captioner("openai:nope", base_url=s.base_url, api_key=SECRET)
        with pytest.raises(CaptionerError, match="HTTP 400") as err:
            cap.caption(image_path)
        assert len(s.requests) == 1 and sleeps() == []
    assert "does not exist" in str(err.value)


def test_the_key_never_appears_in_errors_logs_or_output(
    server, captioner, image_path, tmp_path, caplog, sleeps
):
    caplog.set_level(logging.DEBUG)
    server.inject(Fault("429", retry_after=0.01), *[Fault("500", retry_after=0.01)] * 5)
    out = tmp_path / "out.jsonl"
    summary = run(captioner, [WorkItem(str(image_path), "a"), WorkItem(str(image_path), "b")], out)
    assert summary.failed == 1 and summary.succeeded == 1
    text = out.read_text()
    assert "CaptionerError" in text and SECRET not in text
    assert SECRET not in caplog.text
    for row in map(json.loads, text.splitlines()):
        assert SECRET not in json.dumps(row)


def test_async_batch_with_a_concurrency_limit(server, monkeypatch, image_path):
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "openai")
    plugins.reset()
    server.delay = 0.05
    server.inject(Fault("429", retry_after=0.01))  # the async client retries too
    cap = get_captioner("openai:m", base_url=server.base_url, api_key=SECRET, concurrency=3)
    captions = asyncio.run(cap.acaption_batch([image_path] * 9, [f"q{i}" for i in range(9)]))
    assert len(server.requests) == 10
    assert [c.text.rsplit(" ", 1)[-1] for c in captions] == [f"q{i}" for i in range(9)]
    assert all(c.models == {"base": "openai:m"} and c.timings["base"] > 0 for c in captions)


def test_configuration_errors(monkeypatch, server):
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    plugins.reset()
    with pytest.raises(OptionsError, match="OPENAI_API_KEY"):
        get_captioner("openai:gpt-4o")
    with pytest.raises(OptionsError, match="needs a model: use a spec like .openai:MODEL."):
        get_captioner("openai")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)  # local servers need no key
    assert (
        get_captioner("openai:local").caption(Image.new("RGB", (8, 8))).text.startswith("1 images")
    )
