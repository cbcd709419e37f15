"""wrap() on the objects users already hold: loaded transformers models, OpenAI clients, VLMEvalKit
models (and `vlmeval:NAME` specs), each with its real framework class; objects nobody claims."""

import pytest

from anycap_plugin import get_captioner, plugins, testing, wrap
from anycap_plugin.errors import CaptionerError, OptionsError
from anycap_plugin.testing.server import ChatCompletionsServer, Fault

SECRET = "sk-wrap-objects-0123456789"


@pytest.fixture()
def adapters(monkeypatch):
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "openai,qwen2_5_vl,internvl")
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    return testing.build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("qwen"))


@pytest.fixture(scope="module")
def tiny_internvl(tmp_path_factory):
    return testing.build_tiny_internvl(tmp_path_factory.mktemp("internvl"))


@pytest.mark.parametrize("kind", ["qwen", "internvl"])
def test_a_loaded_transformers_model_and_its_processor(
    adapters, kind, tiny_qwen, tiny_internvl, image_path
):
    from transformers import (
        AutoProcessor,
        InternVLForConditionalGeneration,
        Qwen2_5_VLForConditionalGeneration,
    )

    folder, cls, spec = (
        (tiny_qwen, Qwen2_5_VLForConditionalGeneration, "qwen2.5-vl")
        if kind == "qwen"
        else (tiny_internvl, InternVLForConditionalGeneration, "internvl")
    )
    model = cls.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    side = processor.tokenizer.padding_side
    cap = wrap(model, processor=processor)
    ours = cap.caption(image_path, instruction="Describe it.", max_new_tokens=5)
    loaded = get_captioner(f"{spec}:{folder}").caption(
        image_path, instruction="Describe it.", max_new_tokens=5
    )
    assert ours.text == loaded.text and ours.base_text == loaded.text  # the same model, greedy
    assert processor.tokenizer.padding_side == side  # the user's processor is left as it was
    with pytest.raises(OptionsError, match="needs its processor"):
        wrap(model)
    post = wrap(model, "identity", processor=processor, post_options={})
    assert (
        post.caption(image_path, instruction="Describe it.", max_new_tokens=5).text == loaded.text
    )


def test_an_openai_client(adapters, image_path):
    import openai

    with ChatCompletionsServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=SECRET)
        cap = wrap(client, model="gpt-4o-mini", max_retries=0)
        caption = cap.caption(image_path, instruction="Describe the background.")
        assert caption.text == "1 images, 0 audio: Describe the background."
        assert server.requests[-1]["model"] == "gpt-4o-mini"
        assert server.headers[-1]["authorization"] == f"Bearer {SECRET}"
        assert SECRET not in repr(cap)
        with pytest.raises(OptionsError, match="needs the model name"):
            wrap(client)

        # the client's timeout is kept as it is: the SDK's default Timeout object, or a number
        def sdk_client(wrapped):
            return getattr(wrapped, "base", wrapped).client

        assert sdk_client(cap).timeout == client.timeout and isinstance(
            client.timeout, openai.Timeout
        )
        short = openai.OpenAI(
            base_url=server.base_url, api_key=SECRET, timeout=openai.Timeout(7.0, connect=2.0)
        )
        assert sdk_client(wrap(short, model="m")).timeout == openai.Timeout(7.0, connect=2.0)
        assert sdk_client(wrap(short.with_options(timeout=3.5), model="m")).timeout == 3.5


def test_objects_nobody_claims_and_options_for_instances(adapters):
    with pytest.raises(
        OptionsError, match=r"No installed adapter takes a builtins.dict object"
    ) as e:
        wrap({"not": "a model"})
    assert "openai" in str(e.value) and "qwen2_5_vl" in str(e.value)
    with pytest.raises(OptionsError, match="post_options"):
        wrap(get_captioner("stats"), "identity", max_new_tokens=5)


def test_a_vlmeval_model_and_the_vlmeval_spec(adapters, image_path, video_path):
    from anycap_plugin.integrations.vlmeval import import_vlmeval

    import_vlmeval()
    from vlmeval.api.gpt import OpenAIWrapper

    with ChatCompletionsServer() as server:
        model = OpenAIWrapper(
            model="gpt-4o-mini",
            api_base=server.base_url + "/chat/completions",
            key=SECRET,
            retry=1,
            img_size=-1,
            verbose=False,
        )
        cap = wrap(model)
        assert (
            cap.caption(image_path, instruction="Describe it.").text
            == "1 images, 0 audio: Describe it."
        )
        frames = cap.caption(video_path, instruction="What happens?", num_frames=3).text
        assert frames == "3 images, 0 audio: What happens?"  # not a video LLM: frames as images
        spec = get_captioner(
            "vlmeval:GPT4o_MINI",
            api_base=server.base_url + "/chat/completions",
            key=SECRET,
            retry=1,
        )
        assert spec.id == "vlmeval:GPT4o_MINI"
        assert spec.caption(image_path, instruction="Hi.").text == "1 images, 0 audio: Hi."
        server.inject(*[Fault("500")] * 4)  # VLMEvalKit gives up and returns its failure marker
        with pytest.raises(CaptionerError, match="gave no caption"):
            cap.caption(image_path, instruction="Describe it.")
    with pytest.raises(OptionsError, match="not in VLMEvalKit's supported_VLM"):
        get_captioner("vlmeval:GPT4o_MINII")
