"""A small third-party plugin: a captioner, a post-processor, a benchmark and a CLI command."""

import click

from anycap_plugin import BaseCaptioner, Caption, CaptionOptions, PostProcessor, hookimpl


class HelloOptions(CaptionOptions):
    greeting: str = "Hello"


class HelloCaptioner(BaseCaptioner):
    Options = HelloOptions

    def __init__(self, model=None):
        self.id = f"hello:{model}" if model else "hello"

    def _caption(self, media, instruction, options):
        return Caption(
            text=f"{options.greeting} {media.modality}",
            usage={"prompt_tokens": 3, "completion_tokens": 2},
        )


class Shout(PostProcessor):
    id = "shout"

    def _refine(self, media, instruction, caption, options):
        return Caption(
            text=caption.text.upper() + "!", usage={"prompt_tokens": 5, "completion_tokens": 2}
        )


@hookimpl
def register_captioners(register):
    register("hello", lambda model=None, **kw: HelloCaptioner(model, **kw), "greets the media")


@hookimpl
def register_post_processors(register):
    register("shout", lambda model=None, **kw: Shout(**kw), "upper-cases the caption")


def caption_length(captioner, media=None, instruction="Describe it."):
    """A benchmark: the caption's length in words on one item."""
    from anycap_plugin import testing

    caption = captioner.caption(media or testing.sample_image("coffee"), instruction=instruction)
    return {"captioner": captioner.id, "words": len(caption.text.split())}


@hookimpl
def register_benchmarks(register):
    register("caption-length", caption_length, "words in one caption")


@hookimpl
def register_commands(cli):
    @cli.command()
    def hello():
        """Say hello from a plugin."""
        click.echo("hello from anycap-hello")
