"""`anycap export RUN -o OUT`: a reviewed run's curated set (see `view/curate.py`)."""

from __future__ import annotations

from pathlib import Path

import click

from ..command_line import media_column_flag, storage_option_flag
from .exit_codes import AnyCapCommand


@click.command("export", cls=AnyCapCommand)
@click.argument("run", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--reviews",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The review journal (default: beside the run, RUN.reviews.jsonl).",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["accepted", "rejected", "pending", "any"]),
    help="Items with this review status (repeatable; default: any for records, accepted for acd). "
    "Items without a review are pending.",
)
@click.option(
    "--as",
    "kind",
    type=click.Choice(["records", "acd"]),
    default="records",
    show_default=True,
    help="records: the run's records, reviewed captions in; acd: ACD lines for `anycap train --acd`.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="OUT.jsonl, or OUT.parquet for records.",
)
@media_column_flag
@storage_option_flag
def export_command(
    run: Path,
    reviews: Path | None,
    statuses: tuple[str, ...],
    kind: str,
    output: Path,
    media_column: str | None,
    storage_options: tuple[str, ...],
) -> None:
    """Write a reviewed run's curated set: its records with the reviews applied, or ACD training
    lines. --media-column and --storage-option are the ones the run was captioned with: an ACD
    export reads the media back from the run's tables and buckets."""
    from .. import storage
    from ..view.curate import export_reviewed

    if output.suffix.lower() not in (".jsonl", ".parquet"):
        raise click.UsageError("-o names a .jsonl or .parquet file.")
    if output.resolve() == run.resolve():
        raise click.UsageError("-o names the run itself: the run is never written.")
    done = export_reviewed(
        run,
        output,
        reviews=reviews,
        statuses=statuses,
        kind=kind,
        storage=storage.Storage(storage.parse_options(storage_options)),
        columns={"media": media_column},
    )
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(done["by_status"].items())) or "none"
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(done["skipped"].items()))
    click.echo(
        f"wrote {output}: {done['written']} items ({by_status})"
        + (f"; skipped: {skipped}" if skipped else "")
        + (
            f"; media paths are relative to {output.parent}: train with --media-root {output.parent} "
            "(and --ratio 0:1:1 unless other ACD files bring degraded examples)"
            if kind == "acd"
            else ""
        ),
        err=True,
    )
