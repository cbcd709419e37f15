"""The command line's vocabulary (docs/cli.md, "One vocabulary"): `-O/-P` and KEY=VALUE options,
`--num-frames`, `--storage-option`, `--media-column`, the judge (`--judge-model/--judge-base-url/--judge-option`), `-c/--concurrency`, each
declared once; and the one way an old name lives on (`renamed_option`: hidden, still works, warns on
stderr naming the new one). Below the CLI and the benchmarks, which declare their options with it;
it imports click alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

F = TypeVar("F", bound=Callable[..., Any])

base_option_flag = click.option(
    "--option",
    "-O",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Per-call option of the base captioner, e.g. num_frames=4 (repeatable).",
)
post_option_flag = click.option(
    "--post-option",
    "-P",
    "post_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Per-call option of the post-processor, e.g. max_new_tokens=128 (repeatable).",
)


storage_option_flag = click.option(
    "--storage-option",
    "storage_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="fsspec option for inputs and outputs in object storage (PROTOCOL.KEY=VALUE for one protocol), "
    "e.g. endpoint_url=http://127.0.0.1:9000.",
)
media_column_flag = click.option(
    "--media-column", help="Parquet / hf: column with the media (path, bytes or {bytes, path})."
)


def parse_options(pairs: tuple[str, ...], flag: str = "--option") -> dict[str, Any]:
    """`KEY=VALUE` pairs; each value is read as JSON when it parses (numbers, booleans), else as text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=flag)
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


# ---- old names ----------------------------------------------------------------------------------


def warn_renamed(old: str, new: str) -> None:
    """The one line an old name prints when used."""
    click.echo(f"warning: {old} is now {new} (the old name still works, for now).", err=True)


class _Renamed:
    """What an old name does when given: fill the new parameter `target` (through `convert` where
    it took another form) and warn; given with the new one, a usage error."""

    new: str
    target: str
    convert: Callable[[Any], Any] | None

    def handle_parse_result(
        self, ctx: click.Context, opts: Any, args: list[str]
    ) -> tuple[Any, list[str]]:
        value, args = super().handle_parse_result(ctx, opts, args)  # type: ignore[misc]
        given = ctx.get_parameter_source(self.old_name) is ParameterSource.COMMANDLINE
        if not given or ctx.resilient_parsing:
            return value, args
        if self.target in opts:  # the parser keys what it read by parameter name
            raise click.UsageError(
                f"{self.shown} is the old name of {self.new}: give one of them.", ctx
            )
        warn_renamed(self.shown, self.new)
        ctx.params[self.target] = self.convert(value) if self.convert else value
        ctx.set_parameter_source(self.target, ParameterSource.COMMANDLINE)
        return value, args

    @property
    def old_name(self) -> str:
        return str(self.name)  # type: ignore[attr-defined]

    @property
    def shown(self) -> str:
        if isinstance(self, click.Argument):
            return f"the positional {self.metavar}"
        return str(self.opts[0])  # type: ignore[attr-defined]


class RenamedOption(_Renamed, click.Option):
    """An option's old name: hidden from --help, still works, warns. The new option must not be
    `required=True` (click would refuse before the old name fills it)."""

    def __init__(
        self,
        param_decls: list[str],
        *,
        new: str,
        target: str,
        convert: Callable[[Any], Any] | None = None,
        **attrs: Any,
    ) -> None:
        super().__init__(param_decls, hidden=True, expose_value=False, **attrs)
        self.new, self.target, self.convert = new, target, convert


class RenamedArgument(_Renamed, click.Argument):
    """A positional argument an option replaced: left out of the usage line, still works, warns."""

    def __init__(
        self,
        param_decls: list[str],
        *,
        new: str,
        target: str,
        convert: Callable[[Any], Any] | None = None,
        **attrs: Any,
    ) -> None:
        super().__init__(param_decls, required=False, expose_value=False, **attrs)
        self.new, self.target, self.convert = new, target, convert

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return []


def renamed_option(
    *old: str,
    new: str,
    target: str,
    convert: Callable[[Any], Any] | None = None,
    **attrs: Any,
) -> Callable[[F], F]:
    """Keep `old` (e.g. "--api-nproc") working as a hidden alias of the option `new` whose parameter
    is `target`; `attrs` say what the old one took (type, multiple, is_flag)."""
    name = "renamed_" + old[0].lstrip("-").replace("-", "_")
    return click.option(
        *old, name, cls=RenamedOption, new=new, target=target, convert=convert, **attrs
    )


def renamed_argument(old: str, *, new: str, target: str) -> Callable[[F], F]:
    """Keep the positional `old` (e.g. "spec") working in place of the option `new`."""
    return click.argument(
        "renamed_" + old, metavar=old.upper(), cls=RenamedArgument, new=new, target=target
    )


def num_frames_option(default: int | None = None, help: str = "") -> Callable[[F], F]:
    """`--num-frames N`: everywhere, the frames sampled from each video for the model called."""
    return click.option(
        "--num-frames",
        default=default,
        show_default=default is not None,
        type=click.IntRange(1),
        help=help or "Frames sampled from each video.",
    )


# the settings of the judge's client (`eval.judges.ChatJudge`) `--judge-option` may set
JUDGE_CLIENT_OPTIONS = ("timeout", "max_retries", "invalid_retries")


def judge_options(
    *,
    required: bool = False,
    model_help: str = "Judge model name on the endpoint.",
    allowed: tuple[str, ...] | None = JUDGE_CLIENT_OPTIONS,
    option_help: str = "A setting of the judge's client (repeatable): "
    + ", ".join(JUDGE_CLIENT_OPTIONS)
    + ".",
) -> Callable[[F], F]:
    """`--judge-model`, `--judge-base-url` and `--judge-option KEY=VALUE` (read into a dict, each key
    one of `allowed`; None: any), on every command that runs a judge (the key always comes from
    OPENAI_API_KEY, never a flag)."""

    def settings(ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]) -> Any:
        return parse_judge_options(pairs, allowed)

    def decorate(f: F) -> F:
        for option in reversed(
            (
                click.option("--judge-model", required=required, help=model_help),
                click.option(
                    "--judge-base-url",
                    help="OpenAI-compatible endpoint of the judge (key from OPENAI_API_KEY).",
                ),
                click.option(
                    "--judge-option",
                    "judge_options",
                    multiple=True,
                    metavar="KEY=VALUE",
                    callback=settings,
                    help=option_help,
                ),
            )
        ):
            f = option(f)
        return f

    return decorate


def parse_judge_options(
    pairs: tuple[str, ...], allowed: tuple[str, ...] | None = JUDGE_CLIENT_OPTIONS
) -> dict[str, Any]:
    """`--judge-option` pairs, each key one the command's judge takes (`allowed`; None: any)."""
    settings = parse_options(pairs, "--judge-option")
    unknown = sorted(set(settings) - set(allowed)) if allowed is not None else []
    if unknown:  # read while click parses: a click error, so it exits 2 as any bad option does
        raise click.BadParameter(
            f"unknown setting {', '.join(unknown)}; allowed: {', '.join(allowed or ())}.",
            param_hint="--judge-option",
        )
    return settings


def judge_args_json(text: str) -> dict[str, Any]:
    """The JSON object the old `--judge-args` took: the settings `--judge-option` now gives one by one."""
    try:
        settings = json.loads(text)
    except ValueError:
        settings = None
    if not isinstance(settings, dict):
        raise click.BadParameter(
            "not a JSON object; give each setting as --judge-option KEY=VALUE",
            param_hint="--judge-args",
        )
    return settings


JUDGE_CONCURRENCY_HELP = (
    "Judge calls in flight (32 by default: each waits on the network; lower it for an endpoint "
    "that limits rates)."
)


def concurrency_option(default: int | None, help: str) -> Callable[[F], F]:
    """`-c/--concurrency N`: how many calls (or batches, or actors) a command keeps in flight.
    Defaults differ per command, and `help` says why."""
    return click.option(
        "--concurrency",
        "-c",
        default=default,
        show_default=default is not None,
        type=click.IntRange(1),
        help=help,
    )
