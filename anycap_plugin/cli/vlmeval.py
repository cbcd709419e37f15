"""`anycap vlmeval`: VLMEvalKit's inference and evaluation with an AnyCap captioner as the model."""

from __future__ import annotations

import click

from .common import base_option_flag, parse_options, post_option_flag
from .exit_codes import AnyCapCommand, finish


@click.command("vlmeval", cls=AnyCapCommand)
@click.option(
    "--model", "-m", "spec", required=True, help="Captioner spec, e.g. qwen2.5-vl:PATH+acm:PATH."
)
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
@click.option(
    "--judge", help="Judge model name (VLMEvalKit's; 'offline' for AnyCapEval's embedding judge)."
)
@click.option(
    "--judge-base-url", help="OpenAI-compatible endpoint of the judge (key from OPENAI_API_KEY)."
)
@click.option("--judge-args", help="Extra judge settings as JSON, e.g. '{\"repeats\": 3}'.")
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
@click.option(
    "--api-nproc",
    default=4,
    show_default=True,
    type=click.IntRange(1),
    help="Parallel judge calls (and captioner calls with --concurrent).",
)
@click.option(
    "--concurrent",
    is_flag=True,
    help="Call the captioner from --api-nproc threads (API captioners).",
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N items of each dataset.")
@base_option_flag
@post_option_flag
def vlmeval_command(
    spec: str,
    model_name: str,
    data: tuple[str, ...],
    judge: str | None,
    judge_base_url: str | None,
    judge_args: str | None,
    work_dir: str,
    data_root: str | None,
    mode: str,
    api_nproc: int,
    limit: int | None,
    options: tuple[str, ...],
    post_options: tuple[str, ...],
    concurrent: bool,
) -> None:
    """Run VLMEvalKit's inference and evaluation with an AnyCap captioner as the model."""
    from ..integrations.vlmeval.launcher import run as run_vlmeval
    from ..wrapping import Chain

    # unknown names and bad options are usage errors before VLMEvalKit starts
    Chain.parse(
        spec,
        options=parse_options(options),
        post_options=parse_options(post_options, "--post-option"),
    ).check()
    statuses = run_vlmeval(
        spec,
        list(data),
        model_name=model_name,
        work_dir=work_dir,
        data_root=data_root,
        judge=judge,
        judge_base_url=judge_base_url,
        judge_args=judge_args,
        mode=mode,
        api_nproc=api_nproc,
        limit=limit,
        options=parse_options(options),
        post_options=parse_options(post_options, "--post-option"),
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
