"""ACM on LMDeploy: what resolves and runs on a CPU (module map, engine config, weights, media features,
request preprocessing), and the api_server on a GPU."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from anycap_plugin import testing

# not importorskip: importing lmdeploy at collection would change PIL settings for every test module
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("lmdeploy") is None,
    reason="LMDeploy is not installed (requirements/lmdeploy-cpu.txt)",
)


@pytest.fixture(scope="module")
def tiny_acm(tmp_path_factory):
    return testing.build_tiny_acm(tmp_path_factory.mktemp("acm-lmdeploy"), init_std=0.5)


@pytest.fixture(scope="module")
def hf_acm(tiny_acm):
    from anycap_plugin.acm import ACMForConditionalGeneration, ACMProcessor

    return ACMForConditionalGeneration.from_pretrained(
        tiny_acm
    ).eval(), ACMProcessor.from_pretrained(tiny_acm)


def test_module_map_and_engine_config_resolve(tiny_acm):
    from lmdeploy.pytorch.configurations.builder import AutoModelConfigBuilder
    from lmdeploy.pytorch.models.patch import (
        _get_model_class,
        _get_module_map,
        update_custom_module_map,
    )
    from transformers import AutoConfig

    from anycap_plugin.serve.lmdeploy.launcher import enable_acm

    options = enable_acm()
    update_custom_module_map(
        options["custom_module_map"]
    )  # what LMDeploy's model agent does with the option
    config = AutoConfig.from_pretrained(tiny_acm)
    from anycap_plugin.serve.lmdeploy.engine_model import ACMForLMDeploy

    assert _get_model_class(config, _get_module_map()) is ACMForLMDeploy
    engine = AutoModelConfigBuilder.build(config, str(tiny_acm))
    assert engine.num_layers == config.text_config.num_hidden_layers and engine.hf_config is config
    from lmdeploy import archs

    assert archs.get_task("pytorch", str(tiny_acm))[0] == "vlm"


@pytest.fixture(scope="module")
def engine(tiny_acm, hf_acm):
    """ACM as LMDeploy's engine builds it (on CPU: its media and embedding paths run there), weights loaded."""
    from lmdeploy.pytorch.models.patch import build_model_from_hf_config
    from safetensors.torch import load_file

    from anycap_plugin.serve.lmdeploy.launcher import enable_acm

    enable_acm()
    engine = build_model_from_hf_config(
        hf_acm[0].config, dtype=torch.float32, device=torch.device("cpu")
    )
    engine.load_weights(load_file(str(tiny_acm / "model.safetensors")).items())
    engine.update_weights()
    return engine


def test_engine_model_loads_the_checkpoint_and_encodes_media_like_transformers(
    engine, hf_acm, image_path, audio_path
):
    from anycap_plugin.media import Media

    model, processor = hf_acm
    batch = processor(
        [Media.load(image_path), Media.load(audio_path)], ["Describe.", "Describe."], [None, None]
    )
    with torch.inference_mode():
        assert torch.allclose(
            engine.image_features(batch["pixel_values"]),
            model.image_features(batch["pixel_values"]),
        )
        assert torch.allclose(
            engine.audio_features(batch["audio_values"]),
            model.audio_features(batch["audio_values"]),
        )
        ids = batch["input_ids"]
        cfg = model.config
        merged = engine.merge_media(
            ids,
            batch["pixel_values"],
            ids == cfg.image_token_id,
            batch["audio_values"],
            ids == cfg.audio_token_id,
        )
        assert torch.allclose(
            merged, model.embed(ids, batch["pixel_values"], batch["audio_values"]), atol=1e-6
        )
        head = engine.get_logits(merged[0, -1:])
        assert torch.allclose(head, model.get_output_embeddings()(merged[0, -1:]), atol=1e-5)


def test_requests_become_the_same_prompt_ids_and_features(
    tiny_acm, hf_acm, image_path, video_path, audio_path
):
    import soundfile

    from anycap_plugin.acm_runtime.remote import remote_prompt
    from anycap_plugin.media import AudioClip, Media
    from anycap_plugin.serve.lmdeploy.engine_model import ACMInputProcessor
    from anycap_plugin.serve.lmdeploy.preprocessor import ACMVisionModel

    _, processor = hf_acm
    vision = ACMVisionModel(str(tiny_acm), backend="pytorch")
    vision.build_preprocessor()
    text = remote_prompt("Describe it in one sentence.", "A base caption.")
    frames = Media.load(video_path).frames(num_frames=4).images
    samples, rate = soundfile.read(audio_path, dtype="float32")
    cases = [
        (
            [{"type": "image", "data": Image.open(image_path).convert("RGB")}],
            Media.load(image_path),
        ),
        ([{"type": "image", "data": f} for f in frames], Media.from_frames(frames)),
        # audio arrives decoded (LMDeploy decodes it); the transformers side gets the same samples
        (
            [{"type": "audio", "data": (samples, rate)}],
            Media.from_bytes(AudioClip(samples, rate).to_wav()),
        ),
    ]
    for parts, media in cases:
        messages = vision.preprocess(
            [{"role": "user", "content": [*parts, {"type": "text", "text": text}]}]
        )
        packed = vision.to_pytorch(messages, chat_template=None, tokenizer=None)
        expected = processor(
            [media], ["Describe it in one sentence."], ["A base caption."], num_frames=4
        )
        assert packed["input_ids"] == expected["input_ids"][0].tolist()
        values = "audio_values" if media.modality == "audio" else "pixel_values"
        assert torch.allclose(
            torch.cat([m["values"] for m in packed["multimodal"]]), expected[values], atol=1e-4
        )
        runs = {"image": 1, "video": len(frames), "audio": 1}[media.modality]
        assert len(packed["multimodal"]) == runs
        for item in packed["multimodal"]:
            span = packed["input_ids"][item["offset"] : item["offset"] + item["tokens"]]
            assert set(span) == {item["token_id"]}
        result = ACMInputProcessor(torch.float32).preprocess_input(
            packed["input_ids"], packed["multimodal"]
        )
        key = "audio" if media.modality == "audio" else "image"
        assert [d.start for d in result.input_multimodals[key]] == [
            m["offset"] for m in packed["multimodal"]
        ]


def test_a_packed_prefill_of_two_requests_embeds_each_ones_media(
    tiny_acm, hf_acm, engine, image_path, audio_path
):
    """What the engine hands the model at prefill: two sequences packed into one row, each with its own
    media (an image, an audio clip). The embeddings equal the transformers model's for each request."""
    from types import SimpleNamespace

    from anycap_plugin.acm_runtime.remote import remote_prompt
    from anycap_plugin.media import Media
    from anycap_plugin.serve.lmdeploy.engine_model import ACMInputProcessor
    from anycap_plugin.serve.lmdeploy.preprocessor import ACMVisionModel

    model, processor = hf_acm
    vision = ACMVisionModel(str(tiny_acm), backend="pytorch")
    vision.build_preprocessor()
    requests, expected = [], []
    clip = Media.load(audio_path).audio()
    for kind, data, media in (
        ("image", Image.open(image_path).convert("RGB"), Media.load(image_path)),
        # LMDeploy hands over decoded samples; they reach ACMProcessor as a WAV
        ("audio", (clip.samples, clip.sample_rate), Media.from_bytes(clip.to_wav())),
    ):
        messages = vision.preprocess(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": kind, "data": data},
                        {"type": "text", "text": remote_prompt("Describe.", "A base caption.")},
                    ],
                }
            ]
        )
        packed = vision.to_pytorch(messages, chat_template=None, tokenizer=None)
        requests.append(
            ACMInputProcessor(torch.float32).preprocess_input(
                packed["input_ids"], packed["multimodal"]
            )
        )
        batch = processor([media], ["Describe."], ["A base caption."])
        with torch.inference_mode():
            expected.append(
                model.embed(
                    batch["input_ids"], batch.get("pixel_values"), batch.get("audio_values")
                )[0]
            )
    ids = torch.tensor([[t for r in requests for t in r.input_ids]])
    context = SimpleNamespace(
        input_ids=ids,
        position_ids=None,
        attn_metadata=None,
        input_embeddings=None,
        input_multimodals=[r.input_multimodals for r in requests],
    )
    inputs = engine.prepare_inputs_for_generation(past_key_values=[], context=context)
    with torch.inference_mode():
        merged = engine.merge_media(
            ids,
            inputs["pixel_values"],
            inputs["image_mask"],
            inputs["audio_values"],
            inputs["audio_mask"],
        )
    assert torch.allclose(merged[0], torch.cat(expected), atol=1e-6)

    context.input_embeddings = [torch.zeros(4, model.config.text_config.hidden_size)]
    with pytest.raises(NotImplementedError, match="precomputed input embeddings"):
        engine.prepare_inputs_for_generation(past_key_values=[], context=context)


def test_lmdeploy_backend_refuses_chains_and_cpu(tiny_acm):
    from anycap_plugin.errors import OptionsError
    from anycap_plugin.serve.lmdeploy.launcher import serve

    with pytest.raises(OptionsError, match="acm:PATH"):
        serve("stats+acm:" + str(tiny_acm))
    if not torch.cuda.is_available():
        with pytest.raises(OptionsError, match="CUDA GPU"):
            serve(f"acm:{tiny_acm}")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_api_server_on_gpu_answers_like_transformers(tiny_acm, image_path, tmp_path):
    """The real LMDeploy api_server with ACM, against the transformers ACM, greedy, same prompt."""
    import openai

    from anycap_plugin.acm_runtime.remote import RemoteACM
    from anycap_plugin.captioner import Caption
    from anycap_plugin.plugins import get_post_processor

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anycap_plugin",
            "serve",
            "-m",
            f"acm:{tiny_acm}",
            "--backend",
            "lmdeploy",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")
        for _ in range(300):
            try:
                client.models.list()
                break
            except openai.APIConnectionError:
                assert server.poll() is None, server.stdout.read().decode()[-3000:]
                time.sleep(1)
        base = Caption(text="A person in a white suit.")
        remote = RemoteACM(f"http://127.0.0.1:{port}/v1").refine(
            image_path, "Describe it.", base, max_new_tokens=16, check_constraints=False
        )
        local = get_post_processor(f"acm:{tiny_acm}").refine(
            image_path, "Describe it.", base, max_new_tokens=16, check_constraints=False
        )
        print(json.dumps({"lmdeploy": remote.text, "transformers": local.text}))
        assert remote.text.split()[:3] == local.text.split()[:3]
    finally:
        server.terminate()
        server.wait(30)


def test_cli_hands_the_lmdeploy_backend_its_batch_size(tiny_acm, monkeypatch):
    from click.testing import CliRunner

    from anycap_plugin.cli import cli
    from anycap_plugin.serve.lmdeploy import launcher

    calls = []
    monkeypatch.setattr(launcher, "serve", lambda spec, **kw: calls.append((spec, kw)))
    for extra, expected in (([], 64), (["--batch-size", "4"], 4)):
        result = CliRunner().invoke(
            cli,
            [
                "serve",
                "-m",
                f"acm:{tiny_acm}",
                "--backend",
                "lmdeploy",
                "--port",
                "9001",
                "--model-name",
                "acm-2b",
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
        spec, kw = calls.pop()
        assert spec == f"acm:{tiny_acm}" and kw["max_batch_size"] == expected
        assert kw["port"] == 9001 and kw["model_name"] == "acm-2b" and kw["host"] == "127.0.0.1"
        assert kw["max_body_bytes"] == 64 * 2**20 and kw["media_policy"].allow_remote is False
    result = CliRunner().invoke(
        cli,
        [
            "serve",
            "-m",
            f"acm:{tiny_acm}",
            "--backend",
            "lmdeploy",
            "--max-body-mb",
            "2",
            "--max-media-mb",
            "1",
            "--allow-remote-media",
            "--media-root",
            str(tiny_acm),
        ],
    )
    assert result.exit_code == 0, result.output
    _, kw = calls.pop()
    policy = kw["media_policy"]
    assert kw["max_body_bytes"] == 2 * 2**20 and policy.max_media_bytes == 2**20
    assert policy.allow_remote and policy.local_roots == (tiny_acm,)


ENGINE_PROCESS = """
import pickle, sys
engine_config = pickle.loads(sys.stdin.buffer.read())  # as LMDeploy's spawned engine process receives it
from lmdeploy.pytorch.config import ModelConfig
config = ModelConfig.from_pretrained(sys.argv[1])
print(type(config.hf_config).__name__, config.num_layers)
"""


def test_the_engine_process_builds_the_model_config(tiny_acm):
    """LMDeploy's api_server runs the engine in a spawned process, which reads the config before it loads
    the module map. A fresh interpreter that gets the pickled engine config builds ACM's model config."""
    import pickle

    from lmdeploy import PytorchEngineConfig

    from anycap_plugin.serve.lmdeploy.launcher import enable_acm

    options = enable_acm()
    layers = json.loads((tiny_acm / "config.json").read_text())["text_config"]["num_hidden_layers"]
    ours = subprocess.run(
        [sys.executable, "-c", ENGINE_PROCESS, str(tiny_acm)],
        capture_output=True,
        timeout=300,
        input=pickle.dumps(PytorchEngineConfig(**options)),
    )
    assert ours.returncode == 0, ours.stderr.decode()[-3000:]
    assert ours.stdout.decode().split() == ["ACMConfig", str(layers)]
    # the same with the path as a plain string: the engine process knows nothing of ACM
    plain = subprocess.run(
        [sys.executable, "-c", ENGINE_PROCESS, str(tiny_acm)],
        capture_output=True,
        timeout=300,
        input=pickle.dumps(
            PytorchEngineConfig(custom_module_map=str(options["custom_module_map"]))
        ),
    )
    assert plain.returncode != 0


@pytest.fixture(scope="module")
def request_side(tiny_acm):
    """LMDeploy's own request side, as its api_server builds it for our model: the multimodal processor
    (OpenAI messages -> decoded media -> our preprocessor -> prompt ids and features)."""
    from lmdeploy import PytorchEngineConfig
    from lmdeploy.model import BaseChatTemplate
    from lmdeploy.serve.processors.multimodal import MultimodalProcessor
    from lmdeploy.tokenizer import Tokenizer
    from lmdeploy.vl.engine import ImageEncoder

    from anycap_plugin.serve.lmdeploy.launcher import enable_acm

    encoder = ImageEncoder(
        str(tiny_acm), backend="pytorch", backend_config=PytorchEngineConfig(**enable_acm())
    )
    return MultimodalProcessor(
        Tokenizer(str(tiny_acm)), BaseChatTemplate(), vl_encoder=encoder, backend="pytorch"
    )


def _data_url(path, mime):
    import base64

    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def test_openai_messages_through_lmdeploys_request_side(
    request_side, hf_acm, image_path, video_path
):
    """What the api_server does with a chat request before the engine: image and video data URLs become
    ACMProcessor's prompt ids and pixel values (the audio path needs librosa, LMDeploy's audio decoder)."""
    import asyncio

    from anycap_plugin.acm_runtime.remote import remote_prompt
    from anycap_plugin.media import Media

    _, processor = hf_acm
    text = {"type": "text", "text": remote_prompt("Describe it.", "A base caption.")}
    image = {"type": "image_url", "image_url": {"url": _data_url(image_path, "image/png")}}
    out = asyncio.run(
        request_side.get_prompt_input(
            [{"role": "user", "content": [image, text]}], do_preprocess=True
        )
    )
    expected = processor([Media.load(image_path)], ["Describe it."], ["A base caption."])
    assert out["input_ids"] == expected["input_ids"][0].tolist()
    assert torch.allclose(
        torch.cat([m["values"] for m in out["multimodal"]]), expected["pixel_values"], atol=1e-4
    )

    video = {"type": "video_url", "video_url": {"url": _data_url(video_path, "video/mp4")}}
    out = asyncio.run(
        request_side.get_prompt_input(
            [{"role": "user", "content": [video, text]}], do_preprocess=True
        )
    )
    # LMDeploy decodes 32 frames, ACMProcessor takes its num_frames (4) of them: the prompt of a 4-frame video
    frames = Media.load(video_path).frames(num_frames=4).images
    expected = processor(
        [Media.from_frames(frames)], ["Describe it."], ["A base caption."], num_frames=4
    )
    assert out["input_ids"] == expected["input_ids"][0].tolist()
    assert [m["modality"] for m in out["multimodal"]] == ["image"] * 4


def test_pipeline_captioner_messages_read_by_lmdeploys_request_side(
    request_side, image_path, video_path
):
    """What `wrap(lmdeploy.pipeline(...))` sends: LMDeploy's own request side reads it (the engine is GPU-only)."""
    import asyncio

    from anycap_plugin.default_plugins.lmdeploy_captioner import messages
    from anycap_plugin.media import Media

    image = messages(Media.load(image_path), "Describe it.", num_frames=4)
    assert [p["type"] for p in image[0]["content"]] == ["image_url", "text"]
    out = asyncio.run(request_side.get_prompt_input(image, do_preprocess=True))
    assert out["input_ids"] and [m["modality"] for m in out["multimodal"]] == ["image"]
    video = messages(Media.load(video_path), None, num_frames=3)
    assert video[0]["content"][-1]["text"] == "Describe this video in detail."
    out = asyncio.run(request_side.get_prompt_input(video, do_preprocess=True))
    assert [m["modality"] for m in out["multimodal"]] == ["image"] * 3  # the frames, in order


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_wrap_an_lmdeploy_pipeline_on_gpu(tiny_acm, image_path, video_path):
    import lmdeploy
    from lmdeploy import PytorchEngineConfig

    from anycap_plugin import wrap
    from anycap_plugin.serve.lmdeploy.launcher import enable_acm

    pipe = lmdeploy.pipeline(str(tiny_acm), backend_config=PytorchEngineConfig(**enable_acm()))
    cap = wrap(pipe)
    captions = cap.caption_batch([image_path, video_path], "Describe it.", max_new_tokens=8)
    assert all(c.text for c in captions) and all(
        c.usage["base"]["completion_tokens"] > 0 for c in captions
    )


def test_lmdeploy_request_side_follows_our_media_policy(request_side, image_path, tmp_path):
    """LMDeploy alone fetches public URLs and reads any local file a request names; behind our guard, only
    data URLs pass unless the server allows more, as with the transformers backend."""
    import asyncio
    import shutil

    from anycap_plugin.acm_runtime.remote import remote_prompt
    from anycap_plugin.serve.lmdeploy.guards import enforce_media_policy
    from anycap_plugin.serve.protocol import MediaPolicy

    root = tmp_path / "media"
    root.mkdir()
    inside = shutil.copy(image_path, root / "photo.png")

    def ask(url):
        content = [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": remote_prompt("Describe it.", "A base caption.")},
        ]
        return asyncio.run(
            request_side.get_prompt_input(
                [{"role": "user", "content": content}], do_preprocess=True
            )
        )

    try:
        enforce_media_policy(
            MediaPolicy(local_roots=(root,), max_media_bytes=image_path.stat().st_size * 2)
        )
        assert ask(_data_url(image_path, "image/png"))["input_ids"]
        assert ask(str(inside))["input_ids"] and ask(f"file://{inside}")["input_ids"]
        for url, message in (
            (str(image_path), "outside the server's media roots"),
            (f"file://{image_path}", "outside the server's media roots"),
            ("/etc/hostname", "outside the server's media roots"),
            (f"file://{root}/%2e%2e/{image_path.name}", "No media file"),  # no second unquoting
            ("https://example.com/a.png", "Remote media URLs are refused"),
            ("data:image/png;base64," + "A" * (image_path.stat().st_size * 4), "larger than"),
        ):
            with pytest.raises(ValueError, match=message):
                ask(url)
        enforce_media_policy(
            MediaPolicy(allow_remote=True)
        )  # re-applied: replaces the guard, never stacks
        with pytest.raises(ValueError, match="outside the server's media roots"):
            ask(str(inside))
        # remote URLs go through our fetch (public addresses only, each hop checked), never LMDeploy's own
        import http.server
        import socket
        import threading

        class Media(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.path)
                body = image_path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        seen: list[str] = []
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Media)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            with pytest.raises(ValueError, match="loopback"):
                ask(f"http://127.0.0.1:{httpd.server_address[1]}/a.png")
            assert seen == []
            enforce_media_policy(
                MediaPolicy(
                    allow_remote=True,
                    resolver=lambda host, port: ["93.184.216.34"],
                    connector=lambda address, timeout: socket.create_connection(
                        ("127.0.0.1", httpd.server_address[1])
                    ),
                )
            )
            assert ask("http://media.example.com/a.png")["input_ids"] and seen == ["/a.png"]
        finally:
            httpd.shutdown()
            httpd.server_close()
    finally:
        from lmdeploy.serve.processors import multimodal

        multimodal.load_from_url = multimodal.load_from_url.__wrapped__


def test_server_options_and_body_limit(tiny_acm):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from anycap_plugin.serve.lmdeploy.guards import BodyLimit
    from anycap_plugin.serve.lmdeploy.launcher import server_options

    options = server_options(f"acm:{tiny_acm}", api_key="sk-secret")
    assert options["api_keys"] == [
        "sk-secret"
    ]  # never the bare string: LMDeploy would accept each character
    assert options["server_name"] == "127.0.0.1" and options["allow_origins"] == []
    assert server_options(f"acm:{tiny_acm}")["api_keys"] is None

    async def echo(request):
        return JSONResponse({"size": len(await request.body())})

    app = BodyLimit(
        Starlette(routes=[Route("/v1/chat/completions", echo, methods=["POST"])]), limit=1000
    )
    with TestClient(app) as client:
        assert client.post("/v1/chat/completions", content=b"x" * 1000).json() == {"size": 1000}
        refused = client.post("/v1/chat/completions", content=b"x" * 1001)
        assert refused.status_code == 413 and refused.json()["error"]["code"] == "body_too_large"
        streamed = client.post(
            "/v1/chat/completions", content=iter([b"x" * 600, b"x" * 600])
        )  # no length given
        assert streamed.status_code == 413
        assert client.post(
            "/v1/chat/completions", content=iter([b"x" * 400, b"x" * 400])
        ).json() == {"size": 800}


# ---- a published ACM (InternVL-chat layout) through LMDeploy's own code, no remote code ----------------------

ORACLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "internvl_chat_tiny"
needs_oracle = pytest.mark.skipif(
    not ORACLE.exists(), reason="../shared/data/internvl_chat_tiny is not beside the repo"
)


def _golden(case):
    from safetensors.torch import load_file

    meta = json.loads((ORACLE / "golden" / f"{case}.json").read_text())
    if isinstance(meta["input_ids"], str):
        meta["input_ids"] = json.loads(meta["input_ids"])
    return meta, load_file(str(ORACLE / "golden" / f"{case}.safetensors"))


def _png(path):
    return {"type": "image_url", "image_url": {"url": _data_url(path, "image/png")}}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A copy of the published layout as a user holds it (config, weights, sentencepiece files; no Python)."""
    import shutil

    folder = tmp_path_factory.mktemp("published") / "AnyCapModel"
    shutil.copytree(ORACLE / "checkpoint", folder)
    return folder


def _request_side(folder, engine_options):
    from lmdeploy import PytorchEngineConfig
    from lmdeploy.model import get_chat_template
    from lmdeploy.serve.processors.multimodal import MultimodalProcessor
    from lmdeploy.tokenizer import Tokenizer
    from lmdeploy.vl.engine import ImageEncoder

    encoder = ImageEncoder(
        folder, backend="pytorch", backend_config=PytorchEngineConfig(**engine_options)
    )
    return MultimodalProcessor(
        Tokenizer(folder), get_chat_template(folder), vl_encoder=encoder, backend="pytorch"
    )


@needs_oracle
def test_a_published_acm_reaches_lmdeploy_as_the_published_prompt_without_remote_code(published):
    """What `anycap serve acm:PUBLISHED --backend lmdeploy` hands LMDeploy, checked with LMDeploy's own code:
    the architecture it detects, its tokenizer and chat template (no custom code asked for), and the prompt
    its request side builds for an image and a four-frame video: the golden `input_ids` of InternVL's code."""
    import asyncio

    from lmdeploy import archs
    from lmdeploy.model import get_chat_template
    from lmdeploy.tokenizer import Tokenizer

    from anycap_plugin.acm.chat_template import get_template
    from anycap_plugin.media import Media
    from anycap_plugin.media.chat_parts import media_parts
    from anycap_plugin.serve.lmdeploy.launcher import enable_acm, launch_config

    config = launch_config(f"acm:{published}")
    folder = config["model_path"]
    assert folder != str(published) and "/converted/" in folder  # converted once into the cache
    assert config["remote_code"] == [] and config["server"]["trust_remote_code"] is False
    assert config["engine"]["custom_module_map"].endswith("module_map.py")
    assert not list(Path(folder).glob("*.py")) and "auto_map" not in json.loads(
        (Path(folder) / "config.json").read_text()
    )

    options = enable_acm()
    arch, hf_config = archs.get_model_arch(folder)
    assert arch == "ACMForConditionalGeneration" and archs.check_vl_llm(
        "pytorch", hf_config.to_dict()
    )
    image, pixels = _golden("case_image")
    system_and_user = image["query_without_image_context"].split("<img>")[0]
    assert (
        Tokenizer(folder).encode(system_and_user)
        == image["input_ids"][: len(Tokenizer(folder).encode(system_and_user))]
    )
    template = get_chat_template(folder)
    assert template.messages2prompt([{"role": "user", "content": "Q"}]) == get_template(
        "internvl2_5"
    ).render("Q")

    side = _request_side(folder, options)
    question = image["question"].split("\n", 1)[1]
    out = asyncio.run(
        side.get_prompt_input(
            [
                {
                    "role": "user",
                    "content": [
                        _png(ORACLE / "media" / "image.png"),
                        {"type": "text", "text": question},
                    ],
                }
            ],
            do_preprocess=True,
        )
    )
    assert out["input_ids"] == image["input_ids"]
    values = torch.cat([m["values"] for m in out["multimodal"]])
    assert values.shape == pixels["pixel_values"].shape and torch.allclose(
        values, pixels["pixel_values"], atol=2e-5
    )

    video, _ = _golden("case_video")
    frames = Media.from_frames(
        [Image.open(ORACLE / "media" / f"frame{i}.png") for i in range(1, 5)]
    )
    content = media_parts(frames, 4, frame_labels=True) + [
        {"type": "text", "text": video["question"].split("\n")[-1]}
    ]
    out = asyncio.run(
        side.get_prompt_input([{"role": "user", "content": content}], do_preprocess=True)
    )
    assert out["input_ids"] == video["input_ids"]  # Frame1: <image>\n ... one tile per frame


@needs_oracle
def test_remote_code_only_when_asked_and_only_with_its_files(published, tiny_acm, tmp_path):
    from test_cli import anycap

    from anycap_plugin.serve.lmdeploy.launcher import launch_config

    refused = anycap(
        "serve",
        "-m",
        f"acm:{published}",
        "--backend",
        "lmdeploy",
        "--trust-remote-code",
        "--print-config",
    )
    assert refused.returncode == 2 and "configuration_internvl_chat.py" in refused.stderr
    assert "drop --trust-remote-code" in refused.stderr
    import shutil

    with_code = tmp_path / "with-code"
    shutil.copytree(published, with_code)
    for name in ("configuration_internvl_chat.py", "modeling_internvl_chat.py"):
        (with_code / name).write_text(
            "raise SystemExit('never imported here')\n"
        )  # LMDeploy would run them
    config = launch_config(f"acm:{with_code}", trust_remote_code=True, api_key="sk-secret")
    assert config["model_path"] == str(with_code) and config["server"]["trust_remote_code"] is True
    assert config["remote_code"] == ["configuration_internvl_chat.py", "modeling_internvl_chat.py"]
    assert "custom_module_map" not in config["engine"] and config["server"]["api_keys"] == ["<set>"]
    assert "sk-secret" not in json.dumps(config)
    ours = anycap(
        "serve",
        "-m",
        f"acm:{tiny_acm}",
        "--backend",
        "lmdeploy",
        "--trust-remote-code",
        "--print-config",
    )
    assert ours.returncode == 2 and "need no remote code" in ours.stderr
    printed = anycap(
        "serve",
        "-m",
        f"acm:{published}",
        "--backend",
        "lmdeploy",
        "--print-config",
        "--batch-size",
        "16",
    )
    assert printed.returncode == 0, printed.stderr
    shown = json.loads(printed.stdout)
    assert shown["engine"]["max_batch_size"] == 16 and shown["server"]["server_name"] == "127.0.0.1"
    assert (
        shown["model_path"] == launch_config(f"acm:{published}")["model_path"]
    )  # converted once, then reused


# ---- wrap(lmdeploy.pipeline(...)) on CPU: LMDeploy's request side and Response objects, InternVL's template ----


@pytest.fixture(scope="module")
def internvl_as_lmdeploy_reads_it(tmp_path_factory):
    """The published checkpoint as LMDeploy's own InternVL support reads it (what a user's pipeline over an
    InternVL2.5 checkpoint sees), built without the checkpoint's Python: its config and weights, a fast
    tokenizer with InternVL's chat template."""
    import os

    from anycap_plugin.acm.chat_template import get_template
    from anycap_plugin.acm.convert_tokenizer import load_tokenizer

    folder = tmp_path_factory.mktemp("internvl-native")
    config = json.loads((ORACLE / "checkpoint" / "config.json").read_text())
    config.pop("auto_map")
    (folder / "config.json").write_text(json.dumps(config))
    os.symlink(ORACLE / "checkpoint" / "model.safetensors", folder / "model.safetensors")
    tokenizer = load_tokenizer(ORACLE / "checkpoint")
    tokenizer.chat_template = get_template(config["template"]).to_jinja()
    tokenizer.save_pretrained(str(folder))
    return str(folder)


class PipelineOnCPU:
    """Stands in for LMDeploy's engine only: each request goes through LMDeploy's own request side, and the
    reply is LMDeploy's own `Response`; `Pipeline` is LMDeploy's class, so `wrap()` claims it."""

    @staticmethod
    def build(folder, replies):
        import asyncio

        from lmdeploy.messages import Response
        from lmdeploy.pipeline import Pipeline

        class CPUPipeline(Pipeline):
            def __init__(self):  # no engine: LMDeploy's PyTorch engine runs on GPUs only
                self.model_path, self.side, self.seen = folder, _request_side(folder, {}), []

            def __call__(self, prompts, gen_config=None, **kwargs):
                out = []
                for i, messages in enumerate(prompts):
                    prompt = asyncio.run(self.side.get_prompt_input(messages, do_preprocess=True))
                    self.seen.append((prompt, gen_config))
                    text, finish = replies[i % len(replies)]
                    out.append(
                        Response(
                            text=text,
                            generate_token_len=len(text.split()),
                            input_token_len=len(prompt["input_ids"]),
                            finish_reason=finish,
                            index=i,
                            error_message="engine out of memory" if finish == "error" else None,
                        )
                    )
                return out

        return CPUPipeline()


@needs_oracle
def test_wrap_an_lmdeploy_pipeline_builds_internvls_prompt_and_reads_its_responses(
    internvl_as_lmdeploy_reads_it,
):
    from anycap_plugin import CaptionerError, Media, wrap

    video, _ = _golden("case_video")
    question = video["question"].split("\n")[-1]
    pipe = PipelineOnCPU.build(internvl_as_lmdeploy_reads_it, [("  A cat on a mat. ", "stop")])
    captioner = wrap(pipe)
    frames = Media.from_frames(
        [Image.open(ORACLE / "media" / f"frame{i}.png") for i in range(1, 5)]
    )
    image = Media.load(ORACLE / "media" / "image.png")
    captions = captioner.caption_batch(
        [frames, image],
        [question, question],
        num_frames=4,
        max_new_tokens=24,
        do_sample=True,
        temperature=0.7,
        top_p=0.9,
    )
    assert [c.text for c in captions] == ["A cat on a mat.", "A cat on a mat."]
    (prompt, gen), (image_prompt, _) = pipe.seen
    assert (
        prompt["input_ids"] == video["input_ids"]
    )  # InternVL's own video prompt, as its code builds it
    assert (
        image_prompt["input_ids"].count(1504) == 3 * 256
    )  # three 448-px tiles of the 896x448 image
    assert (gen.max_new_tokens, gen.do_sample, gen.temperature, gen.top_p) == (24, True, 0.7, 0.9)
    assert captions[0].usage["base"] == {
        "prompt_tokens": len(video["input_ids"]),
        "completion_tokens": 5,
    }
    assert captions[0].models["base"] == f"lmdeploy:{internvl_as_lmdeploy_reads_it}"

    failing = wrap(PipelineOnCPU.build(internvl_as_lmdeploy_reads_it, [("", "error")]))
    [outcome] = failing.caption_each([image], ["Describe it."])
    assert isinstance(outcome, CaptionerError) and "engine out of memory" in str(outcome)
