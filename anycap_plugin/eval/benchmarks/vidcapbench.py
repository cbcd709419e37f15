"""VidCapBench (AE, HE): video captions judged through QA pairs (accuracy, precision, coverage,
conciseness per category).

`anycap eval vidcapbench`, the VLMEvalKit datasets `VidCapBench-AE` / `-HE` and the lmms-eval task
`anycap_vidcapbench` all score with `eval.vidcapbench.evaluate`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ...command_line import JUDGE_CONCURRENCY_HELP, concurrency_option, judge_options
from ..registry import Benchmark, LmmsTask, LmmsTasks

OPTIONS = (
    click.option(
        "--qa",
        required=True,
        type=click.Path(exists=True, dir_okay=False),
        help="VidCapBench QA file (VidCapBench-AE_QA.jsonl or -HE_QA.jsonl).",
    ),
    click.option(
        "--captions",
        required=True,
        type=click.Path(exists=True, dir_okay=False),
        help="Captions JSONL: video_dir + model_generation (the release's), or id + caption (anycap caption).",
    ),
    judge_options(required=True),
    click.option(
        "--tokenizer",
        help="Tokenizer for conciseness (the release: google/flan-t5-base; a local folder "
        "works offline). Default: words.",
    ),
    concurrency_option(32, JUDGE_CONCURRENCY_HELP),
    click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path)),
)


def run(
    qa: str,
    captions: str,
    judge_model: str,
    judge_base_url: str | None,
    judge_options: dict[str, Any],
    tokenizer: str | None,
    concurrency: int,
    output: Path,
) -> bool:
    """Score captions on VidCapBench: accuracy, precision, coverage, conciseness per category."""
    from ...jsonl import read_jsonl
    from .. import vidcapbench as vcb

    pairs = vcb.load_qa(qa)
    caps = vcb.load_captions(row for _, row in read_jsonl(captions) if isinstance(row, dict))
    output.mkdir(parents=True, exist_ok=True)
    report = vcb.score(
        pairs,
        caps,
        judge_model=judge_model,
        judge_base_url=judge_base_url,
        tokenizer=tokenizer,
        concurrency=concurrency,
        judge_options=judge_options,
        cache_path=output / "judge_cache.sqlite",
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
    return not meta["failed"]


def vlmeval_datasets() -> Sequence[type]:
    from ..vlmeval_datasets import VidCapBench

    return [VidCapBench]


# ---- lmms-eval -----------------------------------------------------------------------------------
_path = click.Path(exists=True, path_type=Path)
LMMS_OPTIONS = (
    click.option(
        "--vidcapbench",
        nargs=2,
        type=_path,
        metavar="QA VIDEO_DIR",
        help="A VidCapBench QA file (VidCapBench-AE_QA.jsonl or -HE_QA.jsonl) and the folder of its "
        "videos (judged by --judge-model).",
    ),
)


def lmms_tasks(values: dict[str, Any], settings: dict[str, Any]) -> list[LmmsTask]:
    """One task, `anycap_vidcapbench`: a sample per video with a file in VIDEO_DIR."""
    from ...errors import TaskDataError
    from .. import vidcapbench as vcb

    if not values.get("vidcapbench"):
        return []
    if not values.get("judge_model") or values["judge_model"] == "offline":
        raise TaskDataError("VidCapBench tasks need an LLM judge: --judge-model NAME.")
    qa_file, video_dir = (Path(p).resolve() for p in values["vidcapbench"])
    qa = vcb.load_qa(qa_file)
    docs = [
        {
            "id": video,
            "modality": "video",
            "instruction": vcb.CAPTION_PROMPT,
            "media": str(video_dir / video),
            "reference": "",
        }
        for video in qa
        if (video_dir / video).is_file()
    ]
    if not docs:
        raise TaskDataError(
            f"None of the {len(qa)} VidCapBench videos is in {video_dir}.",
            hint="The folder holds the videos named as the QA file's video_dir fields.",
        )
    spec = {
        "qa": str(qa_file),
        "judge_model": values["judge_model"],
        "judge_base_url": values.get("judge_base_url"),
        "concurrency": values.get("concurrency", 32),
        "judge_options": values.get("judge_options", {}),
        "videos_without_file": len(qa) - len(docs),
    }
    metrics = [f"{c}|{k}" for c in ("overall", *vcb.CATEGORIES) for k in vcb.SCORES]
    metrics += ["failed", "missing_captions"]
    return [LmmsTask("anycap_vidcapbench", docs, metrics, spec, max_new_tokens=1024)]


def lmms_report(
    spec: dict[str, Any],
    settings: dict[str, Any],
    captions: dict[str, str | None],
    folder: Path,
) -> dict[str, Any]:
    from .. import vidcapbench as vcb

    report = vcb.score(
        vcb.load_qa(spec["qa"]),
        {v: c for v, c in captions.items() if c is not None},
        judge_model=spec["judge_model"],
        judge_base_url=spec["judge_base_url"],
        tokenizer=None,
        concurrency=spec["concurrency"],
        judge_options=spec.get("judge_options", {}),
        cache_path=Path(settings["judge_cache"]),
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return report


def lmms_metric(report: dict[str, Any], spec: dict[str, Any], metric: str) -> float | None:
    from .. import vidcapbench as vcb

    value = vcb.flat_scores(report).get(metric)
    return None if value is None else float(value)


BENCHMARK = Benchmark(
    name="vidcapbench",
    description="VidCapBench (AE, HE): a judge answers QA pairs from the caption alone; accuracy, "
    "precision, coverage and conciseness per category.",
    modalities=("video",),
    options=OPTIONS,
    run=run,
    vlmeval=vlmeval_datasets,
    lmms_eval=LmmsTasks(
        options=LMMS_OPTIONS, tasks=lmms_tasks, report=lmms_report, metric=lmms_metric
    ),
)
