"""AnyCapEval (image, video, audio): content and style judged against the release's references.

`anycap eval anycapeval`, the VLMEvalKit datasets `AnyCapEval_{Image,Video,Audio}` and the lmms-eval
tasks `anycapeval_{image,video,audio}` all score with `eval.anycapeval.evaluate` and write
`eval.report.write_report`'s report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ...command_line import JUDGE_CONCURRENCY_HELP, concurrency_option, judge_options
from ..registry import Benchmark, LmmsTask, LmmsTasks


def modality_folder(media_root: Path, modality: str) -> Path:
    """Where a modality's media are: ROOT/MODALITY/ when it exists (the release's and VLMEvalKit's layout), else ROOT."""
    return media_root / modality if (media_root / modality).is_dir() else media_root


OPTIONS = (
    click.option(
        "--refs",
        "refs",
        multiple=True,
        required=True,
        type=click.Path(exists=True, dir_okay=False),
        help="AnyCapEval reference JSONL (repeatable).",
    ),
    click.option(
        "--captions",
        required=True,
        type=click.Path(exists=True, dir_okay=False),
        help="Candidate JSONL: id, caption (and modality when refs mix modalities).",
    ),
    judge_options(
        required=True, model_help="Judge model name, or 'offline' for the embedding judge."
    ),
    click.option(
        "--protocol",
        type=click.Choice(["anycap", "release"]),
        default="anycap",
        show_default=True,
        help="Judge prompts and reply format: ours, or the AnyCap release's (numbers comparable with the paper).",
    ),
    click.option(
        "--prompts",
        type=click.Path(),
        help="Folder of the release's judge instructions (--protocol release).",
    ),
    click.option(
        "--temperature",
        type=click.FloatRange(0, 2),
        help="Judge sampling temperature (default: the protocol's, anycap 0, release 0.7).",
    ),
    click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path)),
    click.option("--repeats", default=1, show_default=True, type=click.IntRange(1)),
    concurrency_option(32, JUDGE_CONCURRENCY_HELP),
    click.option(
        "--media-root",
        type=click.Path(exists=True, file_okay=False),
        help="Folder of the media, so the style judge sees them (required by --protocol release).",
    ),
    click.option(
        "--judge-audio",
        is_flag=True,
        help="The judge model takes audio: send it to the style judge.",
    ),
    click.option(
        "--max-media-mb",
        default=20.0,
        show_default=True,
        type=click.FloatRange(min=0, min_open=True),
        help="Largest media payload sent to the judge; larger items are counted failures.",
    ),
    click.option(
        "--cache",
        "cache_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Judge cache (default: OUTPUT/judge_cache.sqlite).",
    ),
)


def run(
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
) -> bool:
    """Judge candidate captions against AnyCapEval references; write report.json, report.md, radars.

    Every item that cannot be judged (missing, corrupt or oversized media, judge timeouts, replies
    that stay invalid) is a counted failure: the reports are written and the exit status is 1.
    """
    from ..anycapeval import evaluate
    from ..cache import JudgeCache
    from ..judges import judge_for_items
    from ..references import load_captions, load_references
    from ..report import write_report

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
    return not meta["failed"]


def vlmeval_datasets() -> Sequence[type]:
    from ..vlmeval_datasets import AnyCapEvalAudio, AnyCapEvalImage, AnyCapEvalVideo

    return [AnyCapEvalImage, AnyCapEvalVideo, AnyCapEvalAudio]


# ---- lmms-eval -----------------------------------------------------------------------------------
# Its data and judge options are declared on `anycap lmms-eval-tasks` itself (cli/lmms_eval.py).
COUNTS = ("failed_captions", "judge_failures", "missing_captions")


def lmms_tasks(values: dict[str, Any], settings: dict[str, Any]) -> list[LmmsTask]:
    """One task per modality of the references given by --anycapeval-refs."""
    from ...errors import TaskDataError
    from ..judges import protocol_for_items
    from ..references import load_references

    if not values.get("anycapeval_refs"):
        return []
    if values.get("media_root") is None:
        raise TaskDataError(
            "AnyCapEval tasks need --media-root, the folder the references' media are in."
        )
    if not values.get("judge_model"):
        raise TaskDataError("AnyCapEval tasks need a judge: --judge-model NAME (or offline).")
    judge = {
        "model": values["judge_model"],
        "base_url": values.get("judge_base_url"),
        "protocol": values.get("protocol", "anycap"),
        "prompts": values.get("prompts"),
        "temperature": values.get("temperature"),
        "concurrency": values.get("concurrency", 32),
        "audio": bool(values.get("judge_audio")),
        "max_media_mb": values.get("max_media_mb", 20.0),
        **values.get("judge_options", {}),
    }
    shown = bool(values.get("judge_sees_media")) or judge["protocol"] == "release"
    settings["judge"] = {**judge, "shows_media": shown}
    refs = [Path(p).resolve() for p in values["anycapeval_refs"]]
    media_root = Path(values["media_root"]).resolve()
    items = load_references(refs)
    protocol_for_items(
        items, judge["protocol"], judge["prompts"], str(media_root)
    )  # now, not after captioning
    if judge["model"] == "offline" and judge["protocol"] != "anycap":
        raise TaskDataError(
            "The offline judge asks no prompts, so it cannot follow the release protocol.",
            hint="Use an LLM judge (--judge-model NAME) for --protocol release.",
        )
    tasks = []
    for modality in sorted({i.modality for i in items}):
        mine = [i for i in items if i.modality == modality]
        folder = modality_folder(media_root, modality)
        metrics = ["content", "style"]
        metrics += sorted({f"{i.axis}_{i.dimension}" for i in mine})
        metrics += list(COUNTS)
        docs = [
            {
                "id": i.id,
                "modality": modality,
                "axis": i.axis,
                "dimension": i.dimension,
                "instruction": i.instruction,
                "media": str(folder / i.media),
                "reference": i.reference,
            }
            for i in mine
        ]
        spec = {
            "modality": modality,
            "references": [str(p) for p in refs],
            "media_root": str(folder),
        }
        tasks.append(LmmsTask(f"anycapeval_{modality}", docs, metrics, spec, max_new_tokens=1024))
    return tasks


def lmms_report(
    spec: dict[str, Any],
    settings: dict[str, Any],
    captions: dict[str, str | None],
    folder: Path,
) -> dict[str, Any]:
    import logging

    from .. import JudgeCache, evaluate, load_references, write_report
    from ..judges import judge_for_items

    items = [i for i in load_references(spec["references"]) if i.modality == spec["modality"]]
    judge_settings = dict(settings["judge"])
    shows_media = judge_settings.pop("shows_media")
    judge = judge_for_items(
        items,
        judge_settings.pop("model"),
        media_root=spec["media_root"] if shows_media else None,
        **judge_settings,
    )
    with JudgeCache(settings["judge_cache"]) as cache:
        report = evaluate(
            items,
            {(spec["modality"], i): c for i, c in captions.items() if c is not None},
            judge,
            cache=cache,
            repeats=settings["repeats"],
            concurrency=judge_settings.get("concurrency", 32),
        )
    report["meta"]["failed_captions"] = sum(c is None for c in captions.values())
    write_report(report, folder)
    logging.getLogger(__name__).warning(
        "anycap: %s: %d judged, %d judge failures, %d samples without a caption; report in %s",
        spec["modality"],
        report["meta"]["judged"],
        report["meta"]["failed"],
        report["meta"]["failed_captions"],
        folder,
    )
    return report


def lmms_metric(report: dict[str, Any], spec: dict[str, Any], metric: str) -> float | None:
    """`content`/`style` (the axis average), `AXIS_DIMENSION`, or one of the counts."""
    import math

    if metric in COUNTS:
        meta = report["meta"]
        return {
            "failed_captions": meta["failed_captions"],
            "judge_failures": meta["failed"],
            "missing_captions": meta["missing_captions"],
        }[metric]
    axis, _, dimension = metric.partition("_")
    summary = report.get(spec["modality"], {}).get(axis, {}).get(dimension or "average")
    value = summary.get("score") if summary else None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


BENCHMARK = Benchmark(
    name="anycapeval",
    description="AnyCapEval (image, video, audio): content as key-point density, style on the "
    "0-4 rubric, per dimension; LLM or offline judge.",
    modalities=("image", "video", "audio"),
    options=OPTIONS,
    run=run,
    vlmeval=vlmeval_datasets,
    lmms_eval=LmmsTasks(options=(), tasks=lmms_tasks, report=lmms_report, metric=lmms_metric),
)
