"""`anycap lmms-eval-tasks`: write an lmms-eval task folder for your benchmark data (every
benchmark of `eval.registry` that has lmms-eval tasks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..command_line import concurrency_option, judge_options
from .exit_codes import AnyCapCommand

_path = click.Path(exists=True, path_type=Path)


class LmmsTasksCommand(AnyCapCommand):
    """Its options below, then those registered benchmarks add for their data (`eval.registry`)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        from ..plugins import benchmarks

        params = super().get_params(ctx)
        names = {p.name for p in params}
        for benchmark in benchmarks().values():
            for option in benchmark.lmms_eval.options if benchmark.lmms_eval else ():
                for param in getattr(option(lambda: None), "__click_params__", []):
                    if param.name not in names:
                        names.add(param.name)
                        params.insert(-1, param)  # before --help
        return params


@click.command("lmms-eval-tasks", cls=LmmsTasksCommand)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The task folder to write (pass it to lmms-eval as --include_path).",
)
@click.option(
    "--anycapeval-refs", multiple=True, type=_path, help="AnyCapEval reference JSONL (repeatable)."
)
@click.option(
    "--media-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder the AnyCapEval references' media are in.",
)
@judge_options(model_help="AnyCapEval judge model name, or 'offline' for the embedding judge.")
@click.option(
    "--protocol", type=click.Choice(["anycap", "release"]), default="anycap", show_default=True
)
@click.option(
    "--prompts",
    type=click.Path(exists=True, file_okay=False),
    help="The release's judge instructions.",
)
@click.option(
    "--temperature",
    type=click.FloatRange(0, 2),
    help="Judge temperature (default: the protocol's).",
)
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(1))
@concurrency_option(
    32, "Judge calls in flight when lmms-eval scores (32 by default: each waits on the network)."
)
@click.option(
    "--judge-sees-media",
    is_flag=True,
    help="Show the style judge the media (what `anycap eval anycapeval --media-root` does; always under release).",
)
@click.option("--judge-audio", is_flag=True, help="The judge model takes audio.")
@click.option(
    "--max-media-mb", default=20.0, show_default=True, type=click.FloatRange(min=0, min_open=True)
)
@click.option(
    "--audiocaps",
    nargs=2,
    type=_path,
    metavar="REFS AUDIO_DIR",
    help="AudioCaps test.csv (or JSONL references) and the folder of its clips' audio files.",
)
@click.option(
    "--clotho",
    nargs=2,
    type=_path,
    metavar="REFS AUDIO_DIR",
    help="Clotho clotho_captions_evaluation.csv (or JSONL references) and its audio folder.",
)
@click.option(
    "--audio-protocol",
    type=click.Choice(["standard", "release"]),
    default="standard",
    show_default=True,
)
@click.option(
    "--sbert",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Sentence-transformer folder for Sentence-BERT similarity (default: the bundled MiniLM).",
)
@click.option(
    "--corenlp-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Stanford CoreNLP 3.6.0 jars, for SPICE and SPIDEr.",
)
@click.option(
    "--audio-instruction", default=None, help="The instruction audio clips are captioned with."
)
def lmms_eval_tasks_command(output: Path, **values: Any) -> None:
    """Write AnyCapEval, AudioCaps, Clotho, VidCapBench (and the benchmarks plugins register) as
    lmms-eval tasks scored by AnyCap's evaluators.

    The folder holds each task's YAML and samples and the scorers' settings; run it with
    `lmms-eval --model anycap --model_args model=... --tasks anycapeval --include_path OUTPUT`.
    """
    from ..integrations.lmms_eval.tasks import write_tasks

    settings = write_tasks(output, values)
    for name, task in settings["tasks"].items():
        extra = (
            f", {task['clips_without_audio']} clips without audio left out"
            if task.get("clips_without_audio")
            else ""
        )
        click.echo(
            f"{name}: {task['samples']} samples, {len(task['metrics'])} metrics{extra}", err=True
        )
    click.echo(
        f"lmms-eval --model anycap --model_args model=SPEC --tasks {','.join(settings['tasks'])} "
        f"--include_path {output.resolve()}"
    )
