"""The `anycap` group: the built-in commands, one module each, then the commands plugins add."""

from __future__ import annotations

import click

from ..plugins import plugin_manager
from .caption import caption
from .checkpoints import convert, train
from .demo import demo
from .eval import eval_group
from .exit_codes import AnyCapGroup
from .export import export_command
from .lmms_eval import lmms_eval_tasks_command
from .registry import bench_command, models, plugins_command
from .serve import serve
from .synth import synth_command
from .view import view_command
from .vlmeval import vlmeval_command


@click.group(cls=AnyCapGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anycap-plugin")
def cli() -> None:
    """Controllable captioning: a base captioner, then an instruction-following post-processor."""


for command in (
    caption,
    demo,
    models,
    plugins_command,
    bench_command,
    convert,
    train,
    serve,
    vlmeval_command,
    eval_group,
    view_command,
    export_command,
    synth_command,
    lmms_eval_tasks_command,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """`anycap`: the built-in commands and every plugin's (`register_commands`)."""
    try:
        plugin_manager().hook.register_commands(cli=cli)
    except Exception as e:  # a plugin's command hook must not break the built-in commands
        click.echo(
            f"warning: a plugin failed to add its commands: {type(e).__name__}: {e}", err=True
        )
    cli.main(args=argv, prog_name="anycap")
