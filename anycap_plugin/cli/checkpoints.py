"""ACM checkpoints: `anycap convert` (an InternVL-chat checkpoint into our folder) and `anycap train`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import click

from ..command_line import renamed_option
from .exit_codes import AnyCapCommand


@click.command("convert", cls=AnyCapCommand)
@click.argument("src")
@click.argument("dst", type=click.Path(file_okay=False, path_type=Path))
def convert(src: str, dst: Path) -> None:
    """Convert an InternVL-chat checkpoint (folder or hub id) into a folder acm: and internvl: load.

    Specs convert on their own (once, into the cache); this writes the result where you want it.
    """
    from ..acm.convert import convert as run_conversion

    report = run_conversion(src, dst)
    click.echo(
        f"{dst}: {report.tensors} tensors; language model {report.llm}; template {report.template}"
    )
    click.echo(f"audio: {report.audio}")
    if report.dropped:
        click.echo(
            f"NOT CONVERTED: {len(report.dropped)} audio weights (listed in {dst / 'conversion.json'})",
            err=True,
        )


@click.command("train", cls=AnyCapCommand)
@click.option("--acm", help="ACM folder to start from (e.g. one built by the converter).")
@click.option(
    "--acd",
    "acd",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="ACD JSONL file (repeatable).",
)
# before 0.2: --model and --data, which elsewhere are a captioner spec and a dataset name
@renamed_option("--model", "-m", new="--acm", target="acm")
@renamed_option(
    "--data",
    "-d",
    new="--acd",
    target="acd",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
)
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False))
@click.option(
    "--ratio", default="2:2:1", show_default=True, help="degraded:weaker:correct sample mix."
)
@click.option("--max-steps", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1))
@click.option("--learning-rate", default=2e-5, show_default=True, type=float)
@click.option("--max-length", default=2048, show_default=True, type=click.IntRange(64))
@click.option("--media-root", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--missing-media",
    type=click.Choice(["error", "skip", "text"]),
    default="error",
    show_default=True,
)
@click.option(
    "--on-bad-line", type=click.Choice(["skip", "raise"]), default="skip", show_default=True
)
@click.option("--eval-steps", default=200, show_default=True, type=click.IntRange(1))
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in OUTPUT.")
def train(
    acm: str | None,
    acd: tuple[str, ...],
    output: str,
    ratio: str,
    max_steps: int,
    batch_size: int,
    learning_rate: float,
    max_length: int,
    media_root: str | None,
    missing_media: Literal["error", "skip", "text"],  # click.Choice gives one of these
    on_bad_line: Literal["skip", "raise"],
    eval_steps: int,
    resume: bool,
) -> None:
    """Residual-correction SFT of ACM on ACD-format data (HF Trainer: torchrun/accelerate for multi-GPU)."""
    from ..train import TrainConfig
    from ..train import train as run_training

    model, data = acm, acd
    if not model or not data:
        raise click.UsageError(
            "Give the ACM to start from (--acm FOLDER) and its data (--acd FILE.jsonl, repeatable)."
        )

    result = run_training(
        TrainConfig(
            model=model,
            data=list(data),
            output_dir=output,
            ratio=ratio,
            max_steps=max_steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
            max_length=max_length,
            media_root=media_root,
            missing_media=missing_media,
            on_error=on_bad_line,
            eval_steps=eval_steps,
            save_steps=eval_steps,
            resume=resume,
        )
    )
    click.echo(json.dumps(result, indent=2))
