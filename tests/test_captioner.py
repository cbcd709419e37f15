import asyncio

import pytest

from anycap_plugin import (
    BaseCaptioner,
    Caption,
    CaptionOptions,
    ModalityNotSupportedError,
    OptionsError,
    PostProcessor,
    wrap,
)
from anycap_plugin.offline_captioners import StatsCaptioner


class CountingOptions(CaptionOptions):
    prefix: str = "seen"
    max_new_tokens: int = 16


class BatchingCaptioner(BaseCaptioner):
    """Images only; records how it was called so batching can be checked."""

    id = "batching"
    modalities = frozenset({"image"})
    Options = CountingOptions

    def __init__(self):
        self.calls = []

    def _caption(self, media, instruction, options):
        raise AssertionError("batched path expected")

    def _caption_batch(self, media, instructions, options):
        self.calls.append(len(media))
        return [
            Caption(
                text=f"{options.prefix} {m.image().width}px for {i}",
                usage={"prompt_tokens": 10, "completion_tokens": 4},
            )
            for m, i in zip(media, instructions)
        ]


class Bracket(PostProcessor):
    id = "bracket"

    def _refine(self, media, instruction, caption, options):
        return Caption(
            text=f"[{caption.text}]",
            usage={"prompt_tokens": 7, "completion_tokens": 5},
            meta={"complies": True},
        )


def test_caption_json_round_trip():
    c = Caption(
        text="a cat",
        instruction="brief",
        base_text="cat",
        media="x.png",
        modality="image",
        models={"base": "b", "post": "p"},
        timings={"base": 0.5},
        usage={"base": {"prompt_tokens": 3}},
        meta={"complies": True},
    )
    assert Caption.from_json(c.to_json()) == c


def test_options_are_validated_and_unknown_ones_rejected(image_path):
    cap = BatchingCaptioner()
    assert cap.caption(image_path, prefix="hi").text.startswith("hi 512px")
    with pytest.raises(OptionsError, match="temperature") as err:
        cap.caption(image_path, temperature=0.2)
    assert "Allowed options: prefix, max_new_tokens" in str(err.value)
    with pytest.raises(OptionsError, match="max_new_tokens"):
        cap.caption(image_path, max_new_tokens="many")


def test_modality_not_declared_is_refused(audio_path):
    with pytest.raises(ModalityNotSupportedError, match="takes: image"):
        BatchingCaptioner().caption(audio_path)


def test_caption_is_stamped_with_media_model_and_timing(image_path):
    c = StatsCaptioner().caption(image_path, instruction="Describe briefly.")
    assert (
        c.media == str(image_path)
        and c.modality == "image"
        and c.instruction == "Describe briefly."
    )
    assert c.models == {"base": "stats"} and c.timings["base"] > 0
    assert "512x512" in c.text


def test_wrap_runs_base_then_post_for_single_batch_and_async(image_path):
    base = BatchingCaptioner()
    wrapped = wrap(base, Bracket())
    assert isinstance(wrapped, BaseCaptioner) and wrapped.id == "batching+bracket"

    one = wrapped.caption(image_path, instruction="brief")
    assert one.text == "[seen 512px for brief]" and one.base_text == "seen 512px for brief"
    assert one.models == {"base": "batching", "post": "bracket"}
    assert set(one.timings) == {"base", "post"}
    assert one.usage == {
        "base": {"prompt_tokens": 10, "completion_tokens": 4},
        "post": {"prompt_tokens": 7, "completion_tokens": 5},
    }
    assert one.meta == {"complies": True}

    batch = wrapped.caption_batch([image_path] * 3, ["a", "b", "c"], prefix="p")
    assert [c.text for c in batch] == ["[p 512px for a]", "[p 512px for b]", "[p 512px for c]"]
    assert base.calls[-1] == 3  # one real batch call, not a loop

    async def both():
        return await wrapped.acaption(image_path, "x"), await wrapped.acaption_batch(
            [image_path] * 2, "y"
        )

    single, many = asyncio.run(both())
    assert single.text == "[seen 512px for x]" and len(many) == 2


def test_wrap_chains_compose_and_default_to_identity(image_path):
    twice = wrap(wrap(BatchingCaptioner(), Bracket()), Bracket())
    c = twice.caption(image_path, "i")
    assert c.text == "[[seen 512px for i]]" and c.base_text == "[seen 512px for i]"
    plain = wrap(StatsCaptioner())
    assert plain.id == "stats+identity"
    c2 = plain.caption(image_path)
    assert c2.text == c2.base_text and c2.models == {"base": "stats", "post": "identity"}
    # usage has one shape, keyed by stage, however deep the chain (a nested chain is the outer base)
    assert c.usage == {
        "base": {"prompt_tokens": 10, "completion_tokens": 4},
        "post": {"prompt_tokens": 7, "completion_tokens": 5},
    }
    assert c2.usage == {"base": {}, "post": {}}  # stages that report no tokens
    assert BatchingCaptioner().caption(image_path, "i").usage == {
        "base": {"prompt_tokens": 10, "completion_tokens": 4}
    }


def test_wrapped_modalities_are_the_intersection(audio_path):
    class ImageOnlyPost(Bracket):
        modalities = frozenset({"image"})

    with pytest.raises(ModalityNotSupportedError):
        wrap(StatsCaptioner(), ImageOnlyPost()).caption(audio_path)


def test_batch_with_wrong_number_of_instructions(image_path):
    with pytest.raises(ValueError, match="2 media but 1 instructions"):
        StatsCaptioner().caption_batch([image_path, image_path], ["only one"])


def test_stats_captioner_reads_each_modality(image_path, video_path, audio_path):
    cap = StatsCaptioner()
    assert "1280x720 video" in cap.caption(video_path, num_frames=4).text
    assert "4 sampled frames" in cap.caption(video_path, num_frames=4).text
    audio = cap.caption(audio_path).text
    assert "2.0-second" in audio and "440 Hz" in audio


def test_wrap_fixes_post_processor_options_and_validates_them(image_path):
    class Suffix(PostProcessor):
        id = "suffix"

        class Options(CaptionOptions):
            mark: str = "!"

        def _refine(self, media, instruction, caption, options):
            return Caption(text=caption.text + options.mark)

    assert (
        wrap(StatsCaptioner(), Suffix(), post_options={"mark": "?"})
        .caption(image_path)
        .text.endswith("tones.?")
    )
    with pytest.raises(OptionsError, match="Allowed options: mark"):
        wrap(StatsCaptioner(), Suffix(), post_options={"colour": "red"})


def test_caption_each_gives_every_item_its_caption_or_its_error(image_path, audio_path, tmp_path):
    from anycap_plugin.errors import MediaNotFoundError

    class Picky(BatchingCaptioner):
        def _caption_batch(self, media, instructions, options):
            self.attempts.append(list(instructions))
            if "boom" in instructions:
                raise ValueError("this batch holds a bad item")
            return super()._caption_batch(media, instructions, options)

    cap = Picky()
    cap.attempts = []
    given = RuntimeError("a manifest problem")
    out = cap.caption_each(
        [image_path, tmp_path / "missing.png", audio_path, given, image_path, image_path],
        ["a", "b", "c", "d", "boom", "f"],
    )
    assert out[0].text == "seen 512px for a" and out[5].text == "seen 512px for f"
    assert isinstance(out[1], MediaNotFoundError) and isinstance(out[2], ModalityNotSupportedError)
    assert out[3] is given and isinstance(
        out[4], ValueError
    )  # pinned on the item that broke the batch
    assert cap.attempts == [
        ["a", "boom", "f"],
        ["a"],
        ["boom"],
        ["f"],
    ]  # the batch failed, then one by one
    with pytest.raises(OptionsError):
        cap.caption_each([image_path], colour="red")  # bad options fail before any work
    refined = Bracket().refine_each([image_path, tmp_path / "missing.png"], "x", [out[0], out[5]])
    assert refined[0].text == "[seen 512px for a]" and isinstance(refined[1], MediaNotFoundError)


def test_the_adapter_contract_is_one_method_either_way(image_path):
    """`_caption` or `_caption_batch` suffices (each defaults to the other); neither is refused when
    the class is defined, not at its first call. The same for post-processors."""
    from anycap_plugin import BaseCaptioner, Caption, PostProcessor

    class Batching(BaseCaptioner):
        id = "batching"

        def _caption_batch(self, media, instructions, options):
            return [Caption(text=f"{len(media)} in the batch") for _ in media]

    assert Batching().caption(image_path).text == "1 in the batch"
    assert [c.text for c in Batching().caption_batch([image_path, image_path])] == [
        "2 in the batch"
    ] * 2

    with pytest.raises(TypeError, match="must implement _caption or _caption_batch"):

        class Nothing(BaseCaptioner):
            id = "nothing"

    class Upper(PostProcessor):
        id = "upper"

        def _refine_batch(self, media, instructions, captions, options):
            return [Caption(text=c.text.upper()) for c in captions]

    assert Upper().refine(image_path, None, Caption(text="abc")).text == "ABC"
    with pytest.raises(TypeError, match="must implement _refine or _refine_batch"):

        class Idle(PostProcessor):
            id = "idle"


def test_options_are_the_type_parameter(image_path):
    """`BaseCaptioner[MyOptions]` makes MyOptions the class's `Options`: calls are validated into it and
    `_caption` receives that type (no asserts in adapters). A contradicting `Options` is refused at
    class definition, and subclasses may narrow through a generic parent (HFChatCaptioner[...])."""
    from anycap_plugin.hf import GenerationOptions, HFChatCaptioner

    seen = []

    class Typed(BaseCaptioner[CountingOptions]):
        id = "typed"

        def _caption(self, media, instruction, options: CountingOptions):
            seen.append(type(options))
            return Caption(text=f"{options.prefix} {options.max_new_tokens}")

    assert Typed.Options is CountingOptions
    assert Typed().caption(image_path, prefix="hi").text == "hi 16"
    assert seen == [CountingOptions]
    with pytest.raises(OptionsError, match="Allowed options: prefix, max_new_tokens"):
        Typed().caption(image_path, temperature=1.0)

    with pytest.raises(TypeError, match="type parameter is CountingOptions"):

        class Contradicts(BaseCaptioner[CountingOptions]):
            Options = CaptionOptions

            def _caption(self, media, instruction, options):
                return Caption(text="")

    class MoreGeneration(GenerationOptions):
        fps: float = 2.0

    class Narrowed(HFChatCaptioner[MoreGeneration]):
        pass

    assert HFChatCaptioner.Options is GenerationOptions
    assert Narrowed.Options is MoreGeneration

    class Plain(PostProcessor):
        def _refine(self, media, instruction, caption, options):
            return caption

    assert Plain.Options is CaptionOptions
