"""`anycap serve`: the real openai SDK against the real server on 127.0.0.1; batching, safety, fuzzing."""

import asyncio
import base64
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anycap_plugin import BaseCaptioner, Caption, get_captioner, testing
from anycap_plugin.acm_runtime.remote import RemoteACM
from anycap_plugin.media import Media
from anycap_plugin.media.chat_parts import media_parts
from anycap_plugin.serve import ServeConfig, running
from anycap_plugin.serve.batching import DynamicBatcher
from anycap_plugin.serve.served import ServedModel

KEY = "sk-serve-test-0123456789"


@pytest.fixture(scope="module")
def tiny_acm(tmp_path_factory):
    return testing.build_tiny_acm(tmp_path_factory.mktemp("acm"), init_std=0.5)


@pytest.fixture(scope="module")
def acm_server(tiny_acm, tmp_path_factory):
    root = tmp_path_factory.mktemp("media-root")
    (root / "cat.png").write_bytes(testing.sample_image("chelsea").read_bytes())
    config = ServeConfig(
        spec=f"acm:{tiny_acm}",
        api_key=KEY,
        max_batch=8,
        media_roots=[str(root)],
        max_body_bytes=8 * 2**20,
        max_media_bytes=4 * 2**20,
    )
    with running(config) as url:
        yield url, root


@pytest.fixture(scope="module")
def stats_server():
    with running(ServeConfig(spec="stats", max_batch=16, batch_window=0.005)) as url:
        yield url


def data_url(path, mime="image/png"):
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def ask(url, content, key=KEY, **kw):
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
    return client.chat.completions.create(
        model=kw.pop("model", "acm"),
        messages=[{"role": "user", "content": content}],
        max_tokens=kw.pop("max_tokens", 6),
        **kw,
    )


def test_image_video_and_audio_through_the_openai_sdk(
    acm_server, image_path, video_path, audio_path
):
    url, _ = acm_server
    image = ask(
        url,
        [
            {"type": "image_url", "image_url": {"url": data_url(image_path)}},
            {"type": "text", "text": "Describe it in one sentence."},
        ],
        extra_body={"base_caption": "An astronaut."},
    )
    assert image.choices[0].message.content and image.usage.completion_tokens > 0
    assert image.model == "acm" and image.id.startswith("chatcmpl-")
    assert image.model_extra["anycap"]["base_caption"] == "An astronaut."
    frames = media_parts(Media.load(video_path), num_frames=3)
    video = ask(url, [*frames, {"type": "text", "text": "What happens?"}])
    as_file = ask(
        url,
        [
            {"type": "video_url", "video_url": {"url": data_url(video_path, "video/mp4")}},
            {"type": "text", "text": "What happens?"},
        ],
    )
    audio = ask(
        url, [*media_parts(Media.load(audio_path), 1), {"type": "text", "text": "Name the sound."}]
    )
    audio_url = ask(
        url,
        [
            *media_parts(Media.load(audio_path), 1, audio_part_kind="audio_url"),  # LMDeploy's form
            {"type": "text", "text": "Name the sound."},
        ],
    )
    for reply in (video, as_file, audio, audio_url):
        assert reply.choices[0].finish_reason == "stop" and reply.usage.prompt_tokens > 0
    assert audio_url.usage.prompt_tokens == audio.usage.prompt_tokens


def test_remote_acm_spec_talks_to_anycap_serve(acm_server, tiny_acm, image_path):
    """The `acm:http://...` post-processor and the server share one protocol: same caption as in process."""
    from anycap_plugin.plugins import get_post_processor

    url, _ = acm_server
    base = [Caption(text="A person in a white suit.")]
    remote = RemoteACM(url, api_key=KEY).refine_batch(
        [image_path], ["Describe briefly."], base, max_new_tokens=6
    )
    local = get_post_processor(f"acm:{tiny_acm}").refine_batch(
        [image_path], ["Describe briefly."], base, max_new_tokens=6
    )
    assert remote[0].text == local[0].text


def test_a_video_sent_in_internvls_frame_format_is_read_as_the_same_request(acm_server, video_path):
    """`Frame{i}: ` text parts before the frames (what RemoteACM sends) are the video's labels, not the ask."""
    url, _ = acm_server
    frames = media_parts(Media.load(video_path), num_frames=3)
    labelled = media_parts(Media.load(video_path), num_frames=3, frame_labels=True)
    assert [p["type"] for p in labelled] == ["text", "image_url"] * 3 and labelled[0][
        "text"
    ] == "Frame1: "
    plain = ask(url, [*frames, {"type": "text", "text": "What happens?"}])
    framed = ask(url, [*labelled, {"type": "text", "text": "What happens?"}])
    assert framed.usage.prompt_tokens == plain.usage.prompt_tokens
    assert framed.choices[0].message.content == plain.choices[0].message.content


def test_streaming_and_models_and_health(acm_server, image_path):
    url, _ = acm_server
    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
    assert [m.id for m in client.models.list()] == ["acm"]
    chunks = list(
        client.chat.completions.create(
            model="acm",
            max_tokens=5,
            stream=True,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": data_url(image_path)}},
                        {"type": "text", "text": "Hi"},
                    ],
                }
            ],
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].choices[0].finish_reason == "stop"
    health = httpx.get(
        url.removesuffix("/v1") + "/health", headers={"Authorization": f"Bearer {KEY}"}
    )
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_api_key_is_required_and_never_echoed(acm_server):
    url, _ = acm_server
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        r = httpx.get(url + "/models", headers=headers)
        assert (
            r.status_code == 401
            and r.json()["error"]["code"] == "invalid_api_key"
            and KEY not in r.text
        )
    with pytest.raises(openai.AuthenticationError):
        ask(url, "hello", key="nope")


def test_client_mistakes_are_4xx_with_clear_messages(acm_server, image_path, tmp_path):
    url, root = acm_server
    h = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    post = lambda **kw: httpx.post(url + "/chat/completions", headers=h, timeout=30, **kw)
    img = {"type": "image_url", "image_url": {"url": data_url(image_path)}}
    outside = tmp_path / "outside.png"
    outside.write_bytes(image_path.read_bytes())
    cases = [
        (post(content=b"{not json"), 400, "invalid_json"),
        (post(json=[1, 2]), 400, "invalid_request"),
        (post(json={"model": "acm", "messages": "hi"}), 400, "invalid_request"),
        (
            post(json={"model": "gpt-4o", "messages": [{"role": "user", "content": [img]}]}),
            404,
            "model_not_found",
        ),
        (
            post(
                json={
                    "model": "acm",
                    "messages": [{"role": "user", "content": [img]}],
                    "max_tokens": "5",
                }
            ),
            400,
            "invalid_request",
        ),
        (
            post(json={"model": "acm", "messages": [{"role": "user", "content": "no media"}]}),
            400,
            "invalid_request",
        ),
        (
            post(
                json={
                    "model": "acm",
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {
                                    "type": "image_url",
                                    "image_url": {
                                        "url": "data:image/png;base64,"
                                        + base64.b64encode(b"\x89PNG\r\n\x1a\nbroken").decode()
                                    },
                                }
                            ],
                        }
                    ],
                }
            ),
            400,
            "invalid_media",
        ),
        (
            post(
                json={
                    "model": "acm",
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {
                                    "type": "image_url",
                                    "image_url": {"url": "http://169.254.169.254/latest/meta-data"},
                                }
                            ],
                        }
                    ],
                }
            ),
            403,
            "remote_media_refused",
        ),
        (
            post(
                json={
                    "model": "acm",
                    "messages": [
                        {
                            "role": "user",
                            "content": [{"type": "image_url", "image_url": {"url": str(outside)}}],
                        }
                    ],
                }
            ),
            403,
            "local_media_refused",
        ),
        (
            post(
                json={
                    "model": "acm",
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {
                                    "type": "image_url",
                                    "image_url": {
                                        "url": "file://" + str(root / ".." / outside.name)
                                    },
                                }
                            ],
                        }
                    ],
                }
            ),
            403,
            "local_media_refused",
        ),
        (post(content=b"x" * (9 * 2**20)), 413, "body_too_large"),
        (httpx.get(url + "/chat/completions", headers=h), 405, "not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code and error["message"]
    inside = post(
        json={
            "model": "acm",
            "max_tokens": 4,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": str(root / "cat.png")}},
                        {"type": "text", "text": "Hi"},
                    ],
                }
            ],
        }
    )
    assert inside.status_code == 200


def test_internal_errors_are_500_without_trace_or_secret():
    class Exploding(BaseCaptioner):
        id = "exploding"

        def _caption(self, media, instruction, options):
            raise RuntimeError(f"token={KEY} at /secret/path")

    served = ServedModel("stats")
    served.target = Exploding()
    with running(ServeConfig(spec="stats"), served) as url:
        r = httpx.post(
            url + "/chat/completions",
            json={
                "model": "stats",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": data_url(testing.sample_image("coffee"))},
                            }
                        ],
                    }
                ],
            },
        )
        assert r.status_code == 500 and r.json()["error"]["message"] == "Internal server error."
        assert KEY not in r.text and "Traceback" not in r.text and "/secret" not in r.text
        assert httpx.get(url.removesuffix("/v1") + "/health").status_code == 200


def test_200_concurrent_requests_all_answered_in_batches(stats_server, image_path):
    before = httpx.get(stats_server.removesuffix("/v1") + "/health").json()
    client = openai.AsyncOpenAI(base_url=stats_server, api_key="unused", max_retries=0, timeout=120)
    images = [testing.sample_image(n) for n in ("astronaut", "chelsea", "coffee", "camera")]

    async def one(i):
        reply = await client.chat.completions.create(
            model="stats",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": data_url(images[i % 4])}},
                        {"type": "text", "text": f"#{i}"},
                    ],
                }
            ],
        )
        return reply.choices[0].message.content

    async def all_of_them():
        return await asyncio.gather(*(one(i) for i in range(200)))

    texts = asyncio.run(all_of_them())
    expected = [get_captioner("stats").caption(im).text for im in images]
    assert texts == [
        expected[i % 4] for i in range(200)
    ]  # none lost, each reply is its own request's
    after = httpx.get(stats_server.removesuffix("/v1") + "/health").json()
    assert after["items"] - before["items"] == 200 and after["batches"] - before["batches"] < 200


def test_one_bad_item_in_a_batch_fails_alone(tiny_acm, image_path, audio_path):
    served = ServedModel(
        f"acm:{testing.build_tiny_acm(tiny_acm.parent / 'vision-only', audio=False)}"
    )
    from anycap_plugin.serve.protocol import CaptionRequest

    good = CaptionRequest(
        model="acm", media=Media.load(image_path), instruction="Hi", base_caption=None, max_tokens=3
    )
    bad = CaptionRequest(
        model="acm", media=Media.load(audio_path), instruction="Hi", base_caption=None, max_tokens=3
    )
    results = served.run([good, bad, good])
    assert isinstance(results[0], Caption) and isinstance(results[2], Caption)
    assert isinstance(results[1], Exception) and "audio" in str(results[1]).lower()


def test_batcher_gathers_concurrent_submissions():
    seen = []

    def run_batch(items):
        seen.append(len(items))
        return [ValueError("odd") if i % 2 else i * 10 for i in items]

    async def main():
        batcher = DynamicBatcher(run_batch, max_batch=4, window=0.05)
        await batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(i) for i in range(10)), return_exceptions=True
        )
        await batcher.stop()
        return results

    results = asyncio.run(main())
    assert results[0::2] == [0, 20, 40, 60, 80] and all(
        isinstance(r, ValueError) for r in results[1::2]
    )
    assert sum(seen) == 10 and max(seen) == 4 and len(seen) <= 4


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
part = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "video_url", "input_audio", "x"])},
    optional={
        "text": json_values,
        "image_url": json_values,
        "video_url": json_values,
        "input_audio": json_values,
    },
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "model": st.sampled_from(["stats", "other", 3]),
            "messages": st.lists(
                st.fixed_dictionaries(
                    {
                        "role": st.sampled_from(["user", "system", 5]),
                        "content": st.one_of(
                            st.text(max_size=30), st.lists(part, max_size=3), json_values
                        ),
                    }
                ),
                max_size=3,
            ),
        },
        optional={
            "max_tokens": json_values,
            "temperature": json_values,
            "stream": st.booleans(),
            "base_caption": json_values,
        },
    ),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_fuzzed_requests_get_4xx_and_the_server_stays_healthy(stats_server, body):
    r = httpx.post(
        stats_server + "/chat/completions",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["message"]
    assert httpx.get(stats_server.removesuffix("/v1") + "/health").status_code == 200


def test_anycap_serve_command_starts_a_server(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anycap_plugin.cli",
            "serve",
            "-m",
            "stats",
            "--port",
            str(port),
            "--api-key",
            KEY,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {KEY}"}
                )
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert r.json()["data"][0]["id"] == "stats"
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert KEY not in output and "auth: an API key is required on every request" in output


def test_requests_from_many_threads_with_the_sync_client(stats_server, image_path):
    client = openai.OpenAI(base_url=stats_server, api_key="unused", max_retries=0)
    content = [{"type": "image_url", "image_url": {"url": data_url(image_path)}}]
    with ThreadPoolExecutor(8) as pool:
        replies = list(
            pool.map(
                lambda _: (
                    client.chat.completions.create(
                        model="stats", messages=[{"role": "user", "content": content}]
                    )
                    .choices[0]
                    .message.content
                ),
                range(16),
            )
        )
    assert len(set(replies)) == 1
