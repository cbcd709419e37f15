"""Our benchmarks as lmms-eval tasks: a task folder written for your data, scored by our evaluators.

`write_tasks` (`anycap lmms-eval-tasks`) writes, for each benchmark given, a docs file (JSONL, one
sample a line, media as absolute paths), a task YAML that loads it with lmms-eval's local `json`
builder, and `anycap_tasks.json` (what the scorers need: reference files, judge or metric settings,
the judge cache). The YAMLs name the functions below (`!function`, imported by module path), so
the logic lives here and the folder only holds data and settings.

The benchmarks and their tasks come from the one benchmark registry (`eval.registry`): each entry
makes its tasks' samples and metric names, and scores a task's captions. Scoring:
`process_results` passes each sample's caption through (an empty answer, which is what the `anycap`
model gives a failed sample, counts as failed, never as a caption); the aggregation runs the
benchmark's evaluator once over the whole task and reads each metric from that report, so the
figures equal `anycap eval NAME` on the same captions. The full report is written beside the
folder's settings, under `reports/TASK/`.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import TaskDataError

if TYPE_CHECKING:
    from ...eval.registry import LmmsTasks

log = logging.getLogger(__name__)
SETTINGS = "anycap_tasks.json"
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
    spec = _settings(first["settings"])["tasks"][first["task"]]
    report = _report(first["settings"], first["task"], records)
    value = _benchmark(spec).metric(report, spec, first["metric"])
    return float("nan") if value is None else float(value)


# ---- scoring ---------------------------------------------------------------------------------------
def _settings(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _benchmark(spec: dict[str, Any]) -> LmmsTasks:
    """The registered benchmark that wrote this task (`eval.registry`) scores it."""
    from ...plugins import benchmarks

    found = benchmarks().get(spec["benchmark"])
    if found is None or found.lmms_eval is None:
        raise TaskDataError(
            f"The task's benchmark {spec['benchmark']!r} is not registered with lmms-eval tasks.",
            hint="Install the plugin that registers it, or rewrite the task folder with "
            "`anycap lmms-eval-tasks`.",
        )
    return found.lmms_eval


def _report(settings_path: str, task: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    captions = {r["id"]: r["caption"] for r in records}
    digest = json.dumps(sorted(captions.items(), key=lambda kv: kv[0]), ensure_ascii=False)
    key = (settings_path, task, digest)
    with _lock:
        if key not in _reports:
            settings = _settings(settings_path)
            spec = settings["tasks"][task]
            folder = Path(settings_path).parent / "reports" / task
            _reports[key] = _benchmark(spec).report(spec, settings, captions, folder)
        return _reports[key]


# ---- writing a task folder ---------------------------------------------------------------------
def write_tasks(output: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Write the task folder; returns its settings (task name -> what it scores).

    `values`: `anycap lmms-eval-tasks`' option values by parameter name. Each registered benchmark
    with lmms-eval tasks (`eval.registry`) makes its tasks from the options that give its data
    (AnyCapEval: `anycapeval_refs` + `media_root` and the judge's; `audiocaps` / `clotho`: (references,
    audio folder); `vidcapbench`: (QA file, video folder)); a judge's key never goes into the folder
    (it comes from OPENAI_API_KEY at run time)."""
    from ...plugins import benchmarks

    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    settings_path = output / SETTINGS
    settings: dict[str, Any] = {
        "tasks": {},
        "judge": None,
        "repeats": values.get("repeats", 1),
        "judge_cache": str(output / "judge_cache.sqlite"),
    }
    flags = []
    for name, benchmark in benchmarks().items():
        if benchmark.lmms_eval is None:
            continue
        flags.append(name)
        for task in benchmark.lmms_eval.tasks(values, settings):
            docs = [{"settings": str(settings_path), "task": task.name, **doc} for doc in task.docs]
            settings["tasks"][task.name] = {
                "benchmark": name,
                **task.spec,
                "metrics": task.metrics,
                "samples": len(docs),
            }
            _write_task(
                output,
                task.name,
                docs,
                task.metrics,
                tag=task.tag or name,
                max_new_tokens=task.max_new_tokens,
            )
    if not settings["tasks"]:
        raise TaskDataError(
            "No benchmark data given.",
            hint="Pass --anycapeval-refs, --audiocaps, --clotho or --vidcapbench (benchmarks with "
            f"lmms-eval tasks: {', '.join(flags)}).",
        )
    settings_path.write_text(json.dumps(settings, indent=2, ensure_ascii=False))
    return settings


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
