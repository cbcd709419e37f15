"""`anycap vlmeval`: VLMEvalKit's inference and evaluation with an AnyCap captioner as the model."""

from __future__ import annotations

import json
from typing import Any

import click

from ..command_line import concurrency_option, judge_args_json, judge_options, renamed_option
from .common import build_chain, chain_options
from .exit_codes import AnyCapCommand, finish


@click.command("vlmeval", cls=AnyCapCommand)
@chain_options("Base captioner spec, e.g. qwen2.5-vl:PATH (BASE+POST also works).", required=True)
@click.option(
    "--model-name",
    default="AnyCap",
    show_default=True,
    help="The model's name in VLMEvalKit's outputs.",
)
@click.option(
    "--data",
    "-d",
    "data",
    multiple=True,
    required=True,
    help="VLMEvalKit dataset name (repeatable): MIA-Bench, VidCapBench-AE, AnyCapEval_Image, ...",
)
@judge_options(
    model_help="Judge model name (VLMEvalKit's; 'offline' for AnyCapEval's embedding judge).",
    allowed=None,  # VLMEvalKit hands its judge kwargs to the dataset, which checks them
    option_help="A judge setting VLMEvalKit hands the dataset (repeatable), e.g. repeats=3, "
    "protocol=release, tokenizer=google/flan-t5-base (docs/vlmeval.md lists them).",
)
@renamed_option("--judge", new="--judge-model", target="judge_model")
@renamed_option(
    "--judge-args", new="--judge-option", target="judge_options", convert=judge_args_json
)
@click.option(
    "--work-dir", default="./outputs", show_default=True, type=click.Path(file_okay=False)
)
@click.option(
    "--data-root",
    type=click.Path(exists=True, file_okay=False),
    help="VLMEvalKit's data root (sets LMUData): MIA-Bench.tsv, AnyCapEval/, VidCapBench/.",
)
@click.option(
    "--mode", type=click.Choice(["all", "infer", "eval"]), default="all", show_default=True
)
@concurrency_option(
    4,
    "VLMEvalKit's one pool (its api_nproc): judge calls in flight, and captioner calls with "
    "--concurrent. 4 by default, as VLMEvalKit.",
)
@renamed_option("--api-nproc", new="--concurrency", target="concurrency", type=click.IntRange(1))
@click.option(
    "--concurrent",
    is_flag=True,
    help="Call the captioner from --concurrency threads too (API captioners; local models are "
    "better called item by item, the default).",
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N items of each dataset.")
def vlmeval_command(
    model: str,
    post: str | None,
    options: tuple[str, ...],
    post_options: tuple[str, ...],
    num_frames: int | None,
    model_name: str,
    data: tuple[str, ...],
    judge_model: str | None,
    judge_base_url: str | None,
    judge_options: dict[str, Any],
    work_dir: str,
    data_root: str | None,
    mode: str,
    concurrency: int,
    concurrent: bool,
    limit: int | None,
) -> None:
    """Run VLMEvalKit's inference and evaluation with an AnyCap captioner as the model."""
    from ..integrations.vlmeval.launcher import run as run_vlmeval

    # unknown names and bad options are usage errors before VLMEvalKit starts
    chain = build_chain(model, post, options, post_options, num_frames)
    statuses = run_vlmeval(
        chain.spec,
        list(data),
        model_name=model_name,
        work_dir=work_dir,
        data_root=data_root,
        judge=judge_model,
        judge_base_url=judge_base_url,
        judge_args=json.dumps(judge_options) if judge_options else None,
        mode=mode,
        api_nproc=concurrency,
        limit=limit,
        options=chain.options,
        post_options=chain.post_options,
        concurrent=concurrent,
    )
    failed = 0
    for name in data:
        status = statuses.get(name, {})
        problem = status.get("error_message") or status.get("skip_reason")
        failed += (
            bool(status.get("error_message"))
            or status.get("skip_reason") == "invalid_dataset"
            or not status
        )
        click.echo(
            f"{name}: {status.get('status', 'not run')}"
            f"{' - ' + str(problem) if problem else ''}  {status.get('metrics') or ''}",
            err=True,
        )
    finish(not failed)
