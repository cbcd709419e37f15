"""`anycap eval ...`: AnyCapEval runs, comparisons, and caption manifests from references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .common import concurrency_option, judge_options
from .exit_codes import AnyCapGroup, finish

_JUDGE_CONCURRENCY = (
    "Judge calls in flight (32 by default: each waits on the network; lower it for an endpoint "
    "that limits rates)."
)


@click.group("eval", cls=AnyCapGroup)
def eval_group() -> None:
    """Evaluate captions (AnyCapEval)."""


@eval_group.command("anycapeval")
@click.option(
    "--refs",
    "refs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="AnyCapEval reference JSONL (repeatable).",
)
@click.option(
    "--captions",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Candidate JSONL: id, caption (and modality when refs mix modalities).",
)
@judge_options(required=True, model_help="Judge model name, or 'offline' for the embedding judge.")
@click.option(
    "--protocol",
    type=click.Choice(["anycap", "release"]),
    default="anycap",
    show_default=True,
    help="Judge prompts and reply format: ours, or the AnyCap release's (numbers comparable with the paper).",
)
@click.option(
    "--prompts",
    type=click.Path(),
    help="Folder of the release's judge instructions (--protocol release).",
)
@click.option(
    "--temperature",
    type=click.FloatRange(0, 2),
    help="Judge sampling temperature (default: the protocol's, anycap 0, release 0.7).",
)
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(1))
@concurrency_option(32, _JUDGE_CONCURRENCY)
@click.option(
    "--media-root",
    type=click.Path(exists=True, file_okay=False),
    help="Folder of the media, so the style judge sees them (required by --protocol release).",
)
@click.option(
    "--judge-audio", is_flag=True, help="The judge model takes audio: send it to the style judge."
)
@click.option(
    "--max-media-mb",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Largest media payload sent to the judge; larger items are counted failures.",
)
@click.option(
    "--cache",
    "cache_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Judge cache (default: OUTPUT/judge_cache.sqlite).",
)
def anycapeval_command(
    refs: tuple[str, ...],
    captions: str,
    judge_model: str,
    judge_base_url: str | None,
    judge_options: dict[str, Any],
    protocol: str,
    prompts: str | None,
    temperature: float | None,
    output: Path,
    repeats: int,
    concurrency: int,
    media_root: str | None,
    judge_audio: bool,
    max_media_mb: float,
    cache_path: Path | None,
) -> None:
    """Judge candidate captions against AnyCapEval references; write report.json, report.md, radars.

    Every item that cannot be judged (missing, corrupt or oversized media, judge timeouts, replies
    that stay invalid) is a counted failure: the reports are written and the exit status is 1.
    """
    from ..eval.anycapeval import evaluate
    from ..eval.cache import JudgeCache
    from ..eval.judges import judge_for_items
    from ..eval.references import load_captions, load_references
    from ..eval.report import write_report

    items = load_references(refs)
    cands = load_captions(captions, items)
    judge = judge_for_items(
        items,
        judge_model,
        protocol=protocol,
        prompts=prompts,
        media_root=media_root,
        temperature=temperature,
        base_url=judge_base_url,
        concurrency=concurrency,
        audio=judge_audio,
        max_media_mb=max_media_mb,
        **judge_options,
    )
    with JudgeCache(cache_path or output / "judge_cache.sqlite") as cache:
        report = evaluate(
            items, cands, judge, cache=cache, repeats=repeats, concurrency=concurrency
        )
    for path in write_report(report, output):
        click.echo(f"wrote {path}", err=True)
    meta = report["meta"]
    click.echo(
        f"{meta['judged']} judged, {meta['failed']} failed, {meta['missing_captions']} without a caption; "
        f"protocol {meta['setup']['protocol']}; cache {meta['cache']['hits']} hits / "
        f"{meta['cache']['misses']} misses [{meta['seconds']}s]",
        err=True,
    )
    for failure in meta["failures"][:10]:
        click.echo(
            f"  failed: {failure['modality']} {failure['axis']} {failure['id']}: {failure['error']}",
            err=True,
        )
    finish(not meta["failed"])


@eval_group.command("vidcapbench")
@click.option(
    "--qa",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="VidCapBench QA file (VidCapBench-AE_QA.jsonl or -HE_QA.jsonl).",
)
@click.option(
    "--captions",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Captions JSONL: video_dir + model_generation (the release's), or id + caption (anycap caption).",
)
@judge_options(required=True)
@click.option(
    "--tokenizer",
    help="Tokenizer for conciseness (the release: google/flan-t5-base; a local folder "
    "works offline). Default: words.",
)
@concurrency_option(32, _JUDGE_CONCURRENCY)
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path))
def vidcapbench_command(
    qa: str,
    captions: str,
    judge_model: str,
    judge_base_url: str | None,
    judge_options: dict[str, Any],
    tokenizer: str | None,
    concurrency: int,
    output: Path,
) -> None:
    """Score captions on VidCapBench: accuracy, precision, coverage, conciseness per category."""
    from ..eval import vidcapbench as vcb
    from ..eval.cache import JudgeCache
    from ..jsonl import read_jsonl

    pairs = vcb.load_qa(qa)
    caps = vcb.load_captions(row for _, row in read_jsonl(captions) if isinstance(row, dict))
    counter, unit = vcb.length_counter(tokenizer)
    judge = vcb.VidCapBenchJudge(
        judge_model,
        base_url=judge_base_url,
        concurrency=concurrency,
        **judge_options,
    )
    output.mkdir(parents=True, exist_ok=True)
    with JudgeCache(output / "judge_cache.sqlite") as cache:
        report = vcb.evaluate(
            pairs,
            caps,
            judge,
            cache=cache,
            token_counter=counter,
            token_unit=unit,
            concurrency=concurrency,
        )
    (output / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    click.echo(f"{'':<18}{'accuracy':>10}{'precision':>11}{'coverage':>10}{'concise':>9}{'n':>7}")
    for name in ("overall", *vcb.CATEGORIES):
        m = report[name]
        cells = "".join(
            f"{'—' if m[k] is None else format(m[k], '.2f'):>{w}}"
            for k, w in (("accuracy", 10), ("precision", 11), ("coverage", 10), ("conciseness", 9))
        )
        click.echo(f"{name:<18}{cells}{m['n']:>7}")
    meta = report["meta"]
    click.echo(
        f"{meta['judged']} pairs judged, {meta['failed']} failed, {meta['missing_captions']} videos without a "
        f"caption; length in {meta['length_unit']} -> {output / 'report.json'}",
        err=True,
    )
    finish(not meta["failed"])


def _audio_benchmark(name: str, layout: str) -> None:
    about = (
        f"Score audio captions on {name} with the classic caption metrics (BLEU, METEOR, ROUGE-L, "
        "CIDEr-D, SPICE, SPIDEr) and Sentence-BERT similarity."
    )

    @eval_group.command(name, help=about)
    @click.option(
        "--refs",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=f"{layout}, or JSONL {{id, captions}}, or the release's {{audio_path, model_response}}.",
    )
    @click.option(
        "--captions",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="anycap caption records, {id, caption}, or the release's {audio_path, model_response}.",
    )
    @click.option(
        "--protocol",
        type=click.Choice(["standard", "release"]),
        default="standard",
        show_default=True,
        help="standard: PTB tokens, corpus-level, all references; release: the AnyCap release's script.",
    )
    @click.option(
        "--sbert",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="A sentence-transformer folder for Sentence-BERT similarity (the paper: all-mpnet-base-v2; "
        "default: the bundled all-MiniLM-L6-v2).",
    )
    @click.option(
        "--corenlp-dir",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Folder with the Stanford CoreNLP 3.6.0 jars SPICE needs (else SPICE and SPIDEr are not computed).",
    )
    @click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path))
    def command(
        refs: Path,
        captions: Path,
        protocol: str,
        sbert: Path | None,
        corenlp_dir: Path | None,
        output: Path,
    ) -> None:
        from ..eval import audio_captions as ac

        references = ac.load_references(refs)
        cands, failed = ac.load_candidates(captions)
        report = ac.evaluate(
            references,
            cands,
            benchmark=name,
            protocol=protocol,
            sbert=sbert,
            corenlp_dir=corenlp_dir,
            references_file=refs,
            failed=failed,
        )
        for path in ac.write_report(report, output):
            click.echo(f"wrote {path}", err=True)
        click.echo(ac.markdown(report))


_audio_benchmark("audiocaps", "AudioCaps test.csv (audiocap_id,youtube_id,start_time,caption)")
_audio_benchmark("clotho", "Clotho clotho_captions_evaluation.csv (file_name,caption_1..caption_5)")


@eval_group.command("compare")
@click.argument("a", type=click.Path(exists=True))
@click.argument("b", type=click.Path(exists=True))
def compare_command(a: str, b: str) -> None:
    """Print B's tables with deltas against A (report.json files or their folders); warn when the
    two were judged under setups whose numbers are not comparable."""
    from ..eval.report import comparability_warnings, compare

    def read(p: str) -> dict:
        path = Path(p) / "report.json" if Path(p).is_dir() else Path(p)
        return json.loads(path.read_text())

    ra, rb = read(a), read(b)
    for warning in comparability_warnings(ra, rb):
        click.echo(f"warning: {warning}", err=True)
    click.echo(compare(ra, rb))


@eval_group.command("manifest")
@click.option(
    "--refs", "refs", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False)
)
@click.option("--media-root", required=True, type=click.Path(file_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path))
def manifest_command(refs: tuple[str, ...], media_root: str, output: Path) -> None:
    """Write an `anycap caption` manifest (id, media, instruction) for these references."""
    from ..eval.references import caption_manifest, load_references

    rows = caption_manifest(load_references(refs), media_root)
    output.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    click.echo(f"wrote {len(rows)} items to {output}", err=True)
