"""The chain on the command line: `-m/-p/-O/-P` and `--num-frames` (`chain_options`) and the
`Chain` they name (`build_chain`). The rest of the vocabulary is `command_line.py`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..command_line import base_option_flag, num_frames_option, parse_options, post_option_flag
from ..errors import OptionsError

if TYPE_CHECKING:
    from ..wrapping import Chain

F = TypeVar("F", bound=Callable[..., Any])


def chain_options(
    model_help: str = "Base captioner spec, e.g. openai:gpt-4o-mini (BASE+POST also works).",
    *,
    required: bool = False,
    default: str | None = None,
    post_help: str = "Post-processor spec, e.g. acm:/models/acm (default: none).",
) -> Callable[[F], F]:
    """`-m/--model`, `-p/--post`, `-O/--option`, `-P/--post-option` and `--num-frames`, as every
    command that builds a chain takes them; `build_chain` turns them into a `Chain`."""

    def decorate(f: F) -> F:
        for option in reversed(
            (
                click.option(
                    "--model",
                    "-m",
                    "model",
                    required=required,
                    default=default,
                    show_default=default is not None,
                    metavar="BASE_SPEC",
                    help=model_help,
                ),
                click.option("--post", "-p", "post", metavar="POST_SPEC", help=post_help),
                base_option_flag,
                post_option_flag,
                num_frames_option(
                    help="Frames sampled from each video: shorthand for -O num_frames=N (the base "
                    "captioner must take num_frames)."
                ),
            )
        ):
            f = option(f)
        return f

    return decorate


def build_chain(
    model: str,
    post: str | None,
    options: tuple[str, ...] = (),
    post_options: tuple[str, ...] = (),
    num_frames: int | None = None,
) -> Chain:
    """The chain the options name, checked (names, model parts, both sets of options) without
    loading anything."""
    from ..plugins import registrations, spec_name
    from ..wrapping import Chain

    base_options = parse_options(options)
    if num_frames is not None:
        if "num_frames" in base_options:
            raise click.UsageError("Give the frame count once: --num-frames N or -O num_frames=N.")
        registration = registrations("captioner").get(spec_name(model))
        takes = registration.options_class() if registration else None
        if registration is not None and "num_frames" not in getattr(takes, "model_fields", {}):
            raise OptionsError(
                f"--num-frames sets the base captioner's num_frames option, and "
                f"{spec_name(model)} has none.",
                hint="Drop --num-frames (this captioner picks its own frames), or pick a video "
                "captioner (anycap models).",
            )
        base_options["num_frames"] = num_frames
    chain = Chain.parse(
        model,
        post,
        options=base_options,
        post_options=parse_options(post_options, "--post-option"),
    )
    chain.check()
    return chain
