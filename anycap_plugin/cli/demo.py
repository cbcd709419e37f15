"""`anycap demo`: the whole chain, offline, on sample media (the README's first command)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .exit_codes import AnyCapCommand, finish


@click.command("demo", cls=AnyCapCommand)
@click.option(
    "--output",
    "-o",
    default="out/demo.jsonl",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option("--model", "-m", default="stats", show_default=True, help="Base captioner spec.")
@click.option(
    "--post", "-p", default=None, help="Post-processor spec (default: a tiny random-weight ACM)."
)
@click.option(
    "--instruction",
    "-i",
    default="Describe the content in at most two sentences.",
    show_default=True,
)
def demo(output: Path, model: str, post: str | None, instruction: str) -> None:
    """Run the whole chain offline on sample media: an image, a video with sound, an audio clip."""
    from ..batch import WorkItem, run
    from ..cache import cache_dir
    from ..testing.samples import sample_media
    from ..testing.tiny_models import build_tiny_acm
    from ..wrapping import build_captioner

    smoke = post is None
    if smoke:  # built once, then reused
        folder = cache_dir() / "models" / "tiny-acm-v2"  # v2: the published prompt and tiling
        if not (folder / "config.json").exists():
            click.echo(f"building a tiny random-weight ACM in {folder} ...", err=True)
            build_tiny_acm(folder, init_std=0.5)  # a wide init, so the noise is visible text
        post = f"acm:{folder}"
    captioner = build_captioner(model, post)
    media = sample_media(output.parent / "samples")
    items = [WorkItem(str(p), instruction) for p in media.values()]
    rows: list[dict[str, Any]] = []
    output.unlink(missing_ok=True)
    summary = run(captioner, items, output, on_record=rows.append, progress=False)
    click.echo(f"AnyCap demo: {captioner.id}  (offline sample media; instruction: {instruction!r})")
    if smoke:
        click.echo(
            "NOTE: the post-processor is a tiny RANDOM-WEIGHT ACM: its captions are smoke-test noise, "
            "not model output. Pass --post acm:/path/to/real/acm for real captions."
        )
    for row in rows:
        click.echo(f"\n[{row.get('modality') or '?'}] {row['input']}")
        if row["error"]:
            click.echo(f"  error:   {row['error']['type']}: {row['error']['message']}")
        else:
            click.echo(f"  base:    {row.get('base_caption')}")
            click.echo(
                f"  refined: {row['caption']!r}  (complies: {row.get('meta', {}).get('complies')})"
            )
    click.echo(f"\nwrote {output}")
    finish(summary.ok)
