"""Our benchmarks as lmms-eval tasks: a task folder written for your data, scored by our evaluators.

`write_tasks` (`anycap lmms-eval-tasks`) writes, for each benchmark given, a docs file (JSONL, one
sample a line, media as absolute paths), a task YAML that loads it with lmms-eval's local `json`
builder, and `anycap_tasks.json` (what the scorers need: reference files, judge or metric settings,
the judge cache). The YAMLs name the functions below (`!function`, imported by module path), so
the logic lives here and the folder only holds data and settings.

Scoring: `process_results` passes each sample's caption through (an empty answer, which is what the
`anycap` model gives a failed sample, counts as failed, never as a caption); the aggregation runs
our evaluator once over the whole task (`anycapeval.evaluate`, `audio_captions.evaluate`) and reads
each metric from that report, so the figures equal `anycap eval` on the same captions. The full
report is written beside the folder's settings, under `reports/TASK/`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import TaskDataError

log = logging.getLogger(__name__)
SETTINGS = "anycap_tasks.json"
AUDIO_PROMPT = (
    "Describe the audio in one sentence."  # what the classic audio-caption references answer
)
MODULE = __name__
_reports: dict[tuple[str, str, str], dict[str, Any]] = {}
_lock = threading.Lock()


# ---- the functions task YAMLs name --------------------------------------------------------------
def doc_to_messages(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """A chat model's request: the sample's media (a path, typed) and its instruction."""
    return [
        {
            "role": "user",
            "content": [
                {"type": doc["modality"], "url": doc["media"]},
                {"type": "text", "text": doc["instruction"]},
            ],
        }
    ]


def doc_to_visual(doc: dict[str, Any]) -> list[Any]:
    """What lmms-eval's simple models take: images as PIL, videos as paths, audio as {array, sampling_rate}."""
    from ...media import Media

    media = Media.load(doc["media"])
    if doc["modality"] == "image":
        return [media.image()]
    if doc["modality"] == "audio":
        clip = media.audio() if media.modality == "audio" else media.as_modality("audio").audio()
        return [{"array": clip.samples, "sampling_rate": clip.sample_rate, "path": doc["media"]}]
    return [doc["media"]]


def doc_to_text(doc: dict[str, Any]) -> str:
    return doc["instruction"]


def doc_to_target(doc: dict[str, Any]) -> str:
    return doc.get("reference") or ""


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Every metric of the task gets the same record; the aggregation scores the task as a whole."""
    answer = results[0] if results else ""
    caption = answer.strip() if isinstance(answer, str) and answer.strip() else None
    record = {
        "settings": doc["settings"],
        "task": doc["task"],
        "modality": doc["modality"],
        "id": doc["id"],
        "caption": caption,
    }
    return {
        metric: {**record, "metric": metric}
        for metric in _settings(doc["settings"])["tasks"][doc["task"]]["metrics"]
    }


def aggregate(records: list[dict[str, Any]]) -> float:
    """One metric's value, read from the task's report (computed once per set of captions)."""
    first = records[0]
    report = _report(first["settings"], first["task"], records)
    value = _metric(report, _settings(first["settings"])["tasks"][first["task"]], first["metric"])
    return float("nan") if value is None else float(value)


# ---- scoring ---------------------------------------------------------------------------------------
def _settings(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _report(settings_path: str, task: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    captions = {r["id"]: r["caption"] for r in records}
    digest = json.dumps(sorted(captions.items(), key=lambda kv: kv[0]), ensure_ascii=False)
    key = (settings_path, task, digest)
    with _lock:
        if key not in _reports:
            settings = _settings(settings_path)
            spec = settings["tasks"][task]
            folder = Path(settings_path).parent / "reports" / task
            if spec["kind"] == "anycapeval":
                _reports[key] = _anycapeval_report(spec, settings, records, folder)
            else:
                _reports[key] = _audio_report(spec, records, folder)
        return _reports[key]


def _anycapeval_report(
    spec: dict[str, Any], settings: dict[str, Any], records: list[dict[str, Any]], folder: Path
) -> dict[str, Any]:
    from ...eval import JudgeCache, evaluate, load_references, write_report
    from ...eval.judges import judge_for_items

    items = [i for i in load_references(spec["references"]) if i.modality == spec["modality"]]
    captions = {(r["modality"], r["id"]): r["caption"] for r in records if r["caption"] is not None}
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
            captions,
            judge,
            cache=cache,
            repeats=settings["repeats"],
            concurrency=judge_settings.get("concurrency", 32),
        )
    report["meta"]["failed_captions"] = sum(r["caption"] is None for r in records)
    write_report(report, folder)
    log.warning(
        "anycap: %s: %d judged, %d judge failures, %d samples without a caption; report in %s",
        spec["modality"],
        report["meta"]["judged"],
        report["meta"]["failed"],
        report["meta"]["failed_captions"],
        folder,
    )
    return report


def _audio_report(
    spec: dict[str, Any], records: list[dict[str, Any]], folder: Path
) -> dict[str, Any]:
    from ...eval import audio_captions as ac

    refs = ac.load_references(spec["references"])
    cands = {r["id"]: r["caption"] for r in records if r["caption"] is not None}
    failed = [{"id": r["id"], "why": "no caption"} for r in records if r["caption"] is None]
    report = ac.evaluate(
        refs,
        cands,
        benchmark=spec["benchmark"],
        protocol=spec["protocol"],
        sbert=Path(spec["sbert"]) if spec.get("sbert") else None,
        corenlp_dir=Path(spec["corenlp_dir"]) if spec.get("corenlp_dir") else None,
        references_file=Path(spec["references"]),
        failed=failed,
    )
    ac.write_report(report, folder)
    return report


def _metric(report: dict[str, Any], spec: dict[str, Any], metric: str) -> float | None:
    if spec["kind"] != "anycapeval":
        return {"failed_captions": report["counts"]["failed_candidates"]}.get(
            metric, report["metrics"].get(metric)
        )
    if metric in ("failed_captions", "judge_failures", "missing_captions"):
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


# ---- writing a task folder ---------------------------------------------------------------------
def write_tasks(
    output: Path,
    *,
    anycapeval_refs: Sequence[Path] = (),
    media_root: Path | None = None,
    judge: dict[str, Any] | None = None,
    judge_sees_media: bool = False,
    repeats: int = 1,
    audio: dict[str, tuple[Path, Path]] | None = None,
    audio_protocol: str = "standard",
    sbert: Path | None = None,
    corenlp_dir: Path | None = None,
    audio_instruction: str = AUDIO_PROMPT,
) -> dict[str, Any]:
    """Write the task folder; returns its settings (task name -> what it scores).

    `anycapeval_refs` + `media_root`: AnyCapEval references (one task per modality, tagged `anycapeval`);
    `judge`: the judge's settings as `anycap eval anycapeval` takes them (model, base_url, protocol,
    prompts, temperature, concurrency, audio, max_media_mb; never a key: that comes from OPENAI_API_KEY);
    `judge_sees_media`: show the style judge the media, as `anycap eval anycapeval --media-root` does
    (always so under the release protocol, which requires it);
    `audio`: {"audiocaps"|"clotho": (references file, audio folder)}."""
    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    settings_path = output / SETTINGS
    settings: dict[str, Any] = {
        "tasks": {},
        "judge": None,
        "repeats": repeats,
        "judge_cache": str(output / "judge_cache.sqlite"),
    }
    if anycapeval_refs:
        if media_root is None:
            raise TaskDataError(
                "AnyCapEval tasks need --media-root, the folder the references' media are in."
            )
        if not judge or not judge.get("model"):
            raise TaskDataError("AnyCapEval tasks need a judge: --judge-model NAME (or offline).")
        shown = judge_sees_media or judge.get("protocol") == "release"
        settings["judge"] = {**judge, "shows_media": shown}
        _anycapeval_tasks(
            output,
            settings,
            [Path(p).resolve() for p in anycapeval_refs],
            Path(media_root).resolve(),
        )
    for benchmark, (refs, audio_dir) in (audio or {}).items():
        _audio_task(
            output,
            settings,
            benchmark,
            Path(refs).resolve(),
            Path(audio_dir).resolve(),
            audio_protocol,
            sbert,
            corenlp_dir,
            audio_instruction,
        )
    if not settings["tasks"]:
        raise TaskDataError(
            "No benchmark data given.", hint="Pass --anycapeval-refs, --audiocaps or --clotho."
        )
    settings_path.write_text(json.dumps(settings, indent=2, ensure_ascii=False))
    return settings


def _anycapeval_tasks(
    output: Path, settings: dict[str, Any], refs: list[Path], media_root: Path
) -> None:
    from ...eval import load_references
    from ...eval.judges import protocol_for_items

    items = load_references(refs)
    judge = settings["judge"]
    protocol_for_items(
        items, judge["protocol"], judge["prompts"], str(media_root)
    )  # now, not after captioning
    if judge["model"] == "offline" and judge["protocol"] != "anycap":
        raise TaskDataError(
            "The offline judge asks no prompts, so it cannot follow the release protocol.",
            hint="Use an LLM judge (--judge-model NAME) for --protocol release.",
        )
    for modality in sorted({i.modality for i in items}):
        mine = [i for i in items if i.modality == modality]
        name = f"anycapeval_{modality}"
        folder = modality_folder(media_root, modality)
        metrics = ["content", "style"]
        metrics += sorted({f"{i.axis}_{i.dimension}" for i in mine})
        metrics += ["failed_captions", "judge_failures", "missing_captions"]
        docs = [
            {
                "settings": str(output / SETTINGS),
                "task": name,
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
        settings["tasks"][name] = {
            "kind": "anycapeval",
            "modality": modality,
            "metrics": metrics,
            "references": [str(p) for p in refs],
            "media_root": str(folder),
            "samples": len(docs),
        }
        _write_task(output, name, docs, metrics, tag="anycapeval", max_new_tokens=1024)


def modality_folder(media_root: Path, modality: str) -> Path:
    """Where a modality's media are: ROOT/MODALITY/ when it exists (the release's and VLMEvalKit's layout), else ROOT."""
    return media_root / modality if (media_root / modality).is_dir() else media_root


def _audio_task(
    output: Path,
    settings: dict[str, Any],
    benchmark: str,
    refs: Path,
    audio_dir: Path,
    protocol: str,
    sbert: Path | None,
    corenlp_dir: Path | None,
    instruction: str,
) -> None:
    from ...eval import audio_captions as ac
    from ...media import media_files_in

    if not audio_dir.is_dir():
        raise TaskDataError(f"No audio folder {audio_dir}.")
    references = ac.load_references(refs)
    files = {p.stem: p for p in media_files_in(audio_dir)}
    docs = [
        {
            "settings": str(output / SETTINGS),
            "task": f"anycap_{benchmark}",
            "id": clip,
            "modality": "audio",
            "instruction": instruction,
            "media": str(files[clip]),
            "reference": captions[0],
        }
        for clip, captions in references.items()
        if clip in files
    ]
    if not docs:
        raise TaskDataError(
            f"None of the {len(references)} {benchmark} clips has an audio file in {audio_dir}.",
            hint="Audio files are named by the clip (AudioCaps: youtube_id; Clotho: file name).",
        )
    metric_names = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"] if protocol == "standard" else []
    metric_names += [
        "METEOR",
        "ROUGE-L",
        "CIDEr-D",
        "SPICE",
        "SPIDEr",
        "Sentence-BERT",
        "failed_captions",
    ]
    settings["tasks"][f"anycap_{benchmark}"] = {
        "kind": "audio_captions",
        "benchmark": benchmark,
        "modality": "audio",
        "metrics": metric_names,
        "references": str(refs),
        "protocol": protocol,
        "sbert": str(sbert) if sbert else None,
        "corenlp_dir": str(corenlp_dir) if corenlp_dir else None,
        "samples": len(docs),
        "clips_without_audio": len(references) - len(docs),
    }
    _write_task(
        output, f"anycap_{benchmark}", docs, metric_names, tag="anycap_audio", max_new_tokens=128
    )


def _write_task(
    output: Path,
    name: str,
    docs: list[dict[str, Any]],
    metrics: list[str],
    *,
    tag: str,
    max_new_tokens: int,
) -> None:
    (output / f"{name}.jsonl").write_text(
        "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    )
    lower_better = {"failed_captions", "judge_failures", "missing_captions"}
    lines = [
        f"task: {name}",
        f"tag: {tag}",
        "dataset_path: json",
        f"dataset_kwargs: {{data_files: {{test: {name}.jsonl}}}}",
        "test_split: test",
        "output_type: generate_until",
        f"doc_to_messages: !function {MODULE}.doc_to_messages",
        f"doc_to_visual: !function {MODULE}.doc_to_visual",
        f"doc_to_text: !function {MODULE}.doc_to_text",
        f"doc_to_target: !function {MODULE}.doc_to_target",
        f"process_results: !function {MODULE}.process_results",
        "generation_kwargs:",
        f"  max_new_tokens: {max_new_tokens}",
        "  temperature: 0",
        "  do_sample: false",
        "metric_list:",
    ]
    for metric in metrics:
        lines += [
            f"  - metric: {json.dumps(metric)}",
            f"    aggregation: !function {MODULE}.aggregate",
            f"    higher_is_better: {'false' if metric in lower_better else 'true'}",
        ]
    lines += [
        "metadata:",
        "  version: 1",
        f"  anycap_settings: {json.dumps(str(output / SETTINGS))}",
    ]
    (output / f"{name}.yaml").write_text("\n".join(lines) + "\n")
