"""`anycap demo`: the whole chain, offline, on sample media (the README's first command)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .common import build_chain, chain_options
from .exit_codes import AnyCapCommand, finish


@click.command("demo", cls=AnyCapCommand)
@click.option(
    "--output",
    "-o",
    default="out/demo.jsonl",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
@chain_options(
    "Base captioner spec.",
    default="stats",
    post_help="Post-processor spec (default: a tiny random-weight ACM).",
)
@click.option(
    "--instruction",
    "-i",
    default="Describe the content in at most two sentences.",
    show_default=True,
)
def demo(
    output: Path,
    model: str,
    post: str | None,
    options: tuple[str, ...],
    post_options: tuple[str, ...],
    num_frames: int | None,
    instruction: str,
) -> None:
    """Run the whole chain offline on sample media: an image, a video with sound, an audio clip."""
    from ..batch import WorkItem, run
    from ..cache import cache_dir
    from ..plugins import split_chain
    from ..testing.samples import sample_media
    from ..testing.tiny_models import build_tiny_acm

    smoke = post is None and split_chain(model)[1] is None  # none named: the tiny one
    started = time.perf_counter()
    if smoke:  # built once, then reused
        # v2: the published prompt and tiling; v3: its config says its weights are random
        folder = cache_dir() / "models" / "tiny-acm-v3"
        if not (folder / "config.json").exists():
            click.echo(f"building a tiny random-weight ACM in {folder} ...", err=True)
            build_tiny_acm(folder, init_std=0.5)  # a wide init, so the noise is visible text
        post = f"acm:{folder}"
    chain = build_chain(model, post, options, post_options, num_frames)
    captioner = chain.build()
    loaded = time.perf_counter() - started
    media = sample_media(output.parent / "samples")
    items = [WorkItem(str(p), instruction) for p in media.values()]
    rows: list[dict[str, Any]] = []
    output.unlink(missing_ok=True)
    summary = run(
        captioner, items, output, options=chain.options, on_record=rows.append, progress=False
    )
    click.echo(f"AnyCap demo: {captioner.id}, offline, on sample media")
    click.echo(f"instruction: {instruction!r}")
    click.echo(f"models ready in {loaded:.1f} s; {len(rows)} captions in {summary.seconds:.1f} s")
    if smoke:
        click.echo(
            "The post-processor is a tiny RANDOM-WEIGHT ACM, built here to check the install: it "
            "runs every step of the chain, but its text is noise, so it is not shown or judged.\n"
            "For real captions: --post acm:/path/to/acm (or a hub id such as "
            "qishisuren/AnyCapModel)."
        )
    for row in rows:
        click.echo(f"\n[{row.get('modality') or '?'}] {Path(row['input']).name}")
        if row["error"]:
            click.echo(f"  error: {row['error']['type']}: {row['error']['message']}")
            continue
        models, timings, usage = row.get("models", {}), row.get("timings", {}), row.get("usage", {})
        meta = row.get("meta") or {}
        click.echo(f"  base  {models.get('base')}  {timings.get('base', 0):.2f} s")
        click.echo(f"        {row.get('base_caption')}")
        tokens = usage.get("post") or {}
        click.echo(
            f"  post  {models.get('post')}  {timings.get('post', 0):.2f} s, "
            f"{tokens.get('prompt_tokens', '?')} tokens in, "
            f"{tokens.get('completion_tokens', '?')} out"
        )
        if meta.get("random_weights"):
            click.echo("        (random weights: its text is in the record, marked so; not shown)")
        else:
            click.echo(f"        {row['caption']}")
            if meta.get("complies") is not None:
                click.echo(f"        {meta.get('constraint')}: complies {meta['complies']}")
    click.echo(f"\nwrote {output}; look at it with: anycap view {output}")
    finish(summary.ok)
