"""`anycap caption`: caption inputs of any format into a resumable record file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..command_line import concurrency_option, media_column_flag, storage_option_flag
from .common import build_chain, chain_options
from .exit_codes import AnyCapCommand, finish


@click.command("caption", cls=AnyCapCommand)
@click.argument("inputs", nargs=-1, required=True)
@chain_options(required=True)
@click.option(
    "--instruction", "-i", help="Instruction for every input (a manifest may set its own)."
)
@click.option(
    "--output",
    "-o",
    required=True,
    help="JSONL, or .parquet (journal: OUTPUT.journal.jsonl), local or a URL (s3://bucket/run/caps.jsonl: "
    "state kept in the store); re-running with the same output resumes.",
)
@concurrency_option(
    1,
    "Batches in flight at once; actors with --engine ray. 1 by default: a local model runs one "
    "batch at a time (raise it for API captioners, whose calls wait on the network).",
)
@click.option(
    "--batch-size",
    "-b",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Items per model call (local models).",
)
@click.option(
    "--media-root",
    help="Where relative media paths of conversation JSON start (default: its folder).",
)
@media_column_flag
@click.option("--id-column", help="Parquet / hf: column with the item id.")
@click.option("--instruction-column", help="Parquet / hf: column with each item's instruction.")
@click.option(
    "--sidecars", is_flag=True, help="Also write SHARD.captions.jsonl beside WebDataset shards."
)
@click.option(
    "--sidecar-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the sidecars here instead of beside the shards.",
)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option(
    "--ray-address", help="Ray cluster to join (host:port or 'auto'; default: start a local one)."
)
@click.option(
    "--gpus-per-actor",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="With --engine ray.",
)
@click.option(
    "--cpus-per-actor",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0),
    help="With --engine ray; below 1 for API captioners.",
)
@storage_option_flag
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal only)."
)
def caption(
    inputs: tuple[str, ...],
    model: str,
    post: str | None,
    instruction: str | None,
    output: str,
    concurrency: int,
    batch_size: int,
    options: tuple[str, ...],
    post_options: tuple[str, ...],
    num_frames: int | None,
    media_root: str | None,
    media_column: str | None,
    id_column: str | None,
    instruction_column: str | None,
    sidecars: bool,
    sidecar_dir: Path | None,
    engine: str,
    ray_address: str | None,
    gpus_per_actor: float,
    cpus_per_actor: float,
    storage_options: tuple[str, ...],
    progress: bool | None,
) -> None:
    """Caption INPUT... into one record each: files, folders, globs, JSONL manifests, LLaVA/InternVL
    conversation JSON, WebDataset shards (.tar), Parquet tables, hf:NAME[:SPLIT] datasets; local
    paths or URLs (s3://, gs://, az://, hf://, https://)."""
    from .. import storage
    from ..batch import plan_inputs, run
    from ..batch.outputs import finish_outputs, journal_for, probe_writable, run_files

    # everything that can be refused is refused before any work, on either engine: the spec and its
    # options (nothing loaded), the inputs, the output; then the model loads
    chain = build_chain(model, post, options, post_options, num_frames)
    store = storage.Storage(storage.parse_options(storage_options))
    storage.use(store)
    remote = storage.is_url(output)
    if remote and (sidecars or sidecar_dir):
        raise click.UsageError(
            "--sidecars are written beside local runs only; write the output locally, or join "
            "the records on `shard` and `__key__`."
        )
    plan = plan_inputs(
        inputs,
        instruction,
        media_root=media_root,
        storage=store,
        run_files=run_files(output),
        columns={"media": media_column, "id": id_column, "instruction": instruction_column},
    )
    journal = output if remote else journal_for(Path(output))
    if remote:
        from ..batch.remote import probe_remote

        probe_remote(store, output)
    else:
        probe_writable(Path(journal))
    if engine == "ray":
        from ..batch.ray_engine import connect, run_on_ray

        connect(ray_address)  # an unreachable cluster fails here, before any work
        summary = run_on_ray(
            chain,  # shipped as a value; each actor builds it once
            plan,
            journal,
            batch_size=batch_size,
            concurrency=concurrency,
            num_gpus=gpus_per_actor,
            num_cpus=cpus_per_actor,
            options=chain.options,
            progress=progress,
        )
    else:
        summary = run(
            chain.build(),
            plan.items(),
            journal,
            batch_size=batch_size,
            concurrency=concurrency,
            options=chain.options,
            progress=progress,
            total=plan.count,
        )
    written = (
        [] if remote else finish_outputs(Path(output), sidecars=sidecars, sidecar_dir=sidecar_dir)
    )
    _report(summary, output, journal)
    for path in written:
        if str(path) != output:
            click.echo(f"wrote {path}", err=True)
    finish(summary.ok)


def _report(summary: Any, output: str, journal: Any) -> None:
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(summary.errors.items()))
    click.echo(
        f"{summary.succeeded} captioned, {summary.failed} failed"
        f"{' (' + errors + ')' if errors else ''}, {summary.skipped} already done "
        f"-> {output} [{summary.seconds:.1f}s]",
        err=True,
    )
    if summary.repeated_ids:
        click.echo(
            f"{summary.repeated_ids} inputs share an id with an earlier input: each has a record of its own "
            "(join on `key`, which names the source and place)",
            err=True,
        )
    if summary.duplicates:
        click.echo(f"{summary.duplicates} inputs were named twice: captioned once", err=True)
    if summary.rejected and not isinstance(journal, str):
        rejected = journal.with_name(journal.stem + ".rejected.jsonl")
        click.echo(
            f"{summary.rejected} unreadable lines of {journal} were moved to {rejected}", err=True
        )
