"""`anycap synth`: ACD records from media on an OpenAI-compatible endpoint (see `synth/pipeline.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..command_line import concurrency_option, num_frames_option, renamed_option
from .exit_codes import AnyCapCommand, finish


@click.command("synth", cls=AnyCapCommand)
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="ACD JSONL (resumable); failures and drops go to OUTPUT.failures.jsonl.",
)
@click.option(
    "--writer-model",
    "-w",
    help="The writer model (questions and good answers), a model name on the endpoint.",
)
# before 0.2: --model, which elsewhere is a captioner spec
@renamed_option("--model", "-m", new="--writer-model", target="writer_model")
@click.option(
    "--degrader-model",
    help="The model writing the slightly inferior answers (default: --writer-model).",
)
@click.option(
    "--weaker",
    help="A weaker AnyCap captioner for the q-8b-c records, e.g. openai:small-model "
    "(default: none, so no q-8b-c records).",
)
@click.option("--base-url", help="The endpoint (default: OPENAI_BASE_URL).")
@click.option(
    "--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Variable holding the key."
)
@concurrency_option(
    32, "Calls in flight to the endpoint (32 by default: each waits on the network)."
)
@click.option(
    "--prompts",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The release's prompt tree (AnyCapDataset qc/qca instructions); default: ours.",
)
@click.option(
    "--types", help="Comma-separated control types (default: every type of each item's modality)."
)
@click.option(
    "--max-regenerations",
    default=2,
    show_default=True,
    type=click.IntRange(0),
    help="Re-asks for an answer that breaks its length constraint before the pair is dropped.",
)
@click.option(
    "--media-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Records name media relative to it (what `anycap train --media-root` takes).",
)
@num_frames_option(8, "Frames sampled from each video for the writer and degrader models.")
@click.option(
    "--cache",
    "cache_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Call cache (default: OUTPUT.calls.sqlite).",
)
@click.option(
    "--price-in",
    default=0.0,
    show_default=True,
    help="USD per million prompt tokens (for the cost report).",
)
@click.option(
    "--price-out", default=0.0, show_default=True, help="USD per million completion tokens."
)
def synth_command(
    inputs: tuple[str, ...],
    output: Path,
    writer_model: str | None,
    degrader_model: str | None,
    weaker: str | None,
    base_url: str | None,
    api_key_env: str,
    concurrency: int,
    prompts: Path | None,
    types: str | None,
    max_regenerations: int,
    media_root: Path | None,
    num_frames: int,
    cache_path: Path | None,
    price_in: float,
    price_out: float,
) -> None:
    """Write ACD training records (degraded / weaker / correct existing captions) for INPUTS."""
    from ..batch import plan_inputs
    from ..call_engine import CallEngine, Endpoint, Role
    from ..instructions import instruction_type
    from ..synth.pipeline import DEGRADER, WRITER, SynthConfig, Synthesizer
    from ..synth.prompts import PromptSet
    from ..wrapping import get_captioner

    model = writer_model
    if not model:
        raise click.UsageError(
            "Name the writer model: --writer-model MODEL (a model name on the endpoint)."
        )
    from ..batch.outputs import run_files

    cache = cache_path or output.with_name(output.stem + ".calls.sqlite")
    # inputs that name nothing, or name this run's own files, are refused before any call
    plan = plan_inputs(list(inputs), run_files=run_files(str(output)) | {str(cache.resolve())})
    type_keys = tuple(instruction_type(t).key for t in types.split(",")) if types else None
    engine = CallEngine(
        {"default": Endpoint(base_url=base_url, api_key_env=api_key_env, concurrency=concurrency)},
        {
            WRITER: Role(model, temperature=0.7, price_in=price_in, price_out=price_out),
            DEGRADER: Role(
                degrader_model or model, temperature=0.7, price_in=price_in, price_out=price_out
            ),
        },
        cache=cache,
    )
    synthesizer = Synthesizer(
        engine,
        PromptSet(prompts),
        get_captioner(weaker) if weaker else None,
        SynthConfig(type_keys, max_regenerations, num_frames, media_root),
    )
    try:
        summary = synthesizer.run(plan.items(), output)
    finally:
        usage = engine.usage_report()
        engine.close()
    report = {**vars(summary), "usage": usage, "output": str(output)}
    report["seconds"] = round(summary.seconds, 2)
    click.echo(json.dumps(report, indent=2))
    finish(not summary.failed)
