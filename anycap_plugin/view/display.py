"""What the viewer shows of one output record, whichever command wrote it.

`anycap caption` records (batch/records.py: key, input, instruction, caption, base_caption, media,
modality, models, timings, meta, error), CapFlow's (the same, with `meta.capflow`: domain, agents,
filter scores) and `anycap synth` ACD records (conversations in InternVL's SFT format). `summary`
is the row of the list; `NUMERIC` are the fields one can sort by.
"""

from __future__ import annotations

import re
from typing import Any

MODALITIES = ("image", "video", "audio")
NUMERIC = (
    "words",
    "seconds",
    "score",
)  # caption length, total time over the stages, CapFlow's filter score
_WORD = re.compile(r"\S+")
_ALIGNER = re.compile(
    r"The requirement is: '(.*?)'\.\s*The existing caption is: '(.*?)'\.?(?:\s*You only need|\s*$)",
    re.DOTALL,
)


def key_of(record: dict[str, Any], line: int) -> str:
    for field in ("key", "id"):
        if record.get(field) not in (None, ""):
            return str(record[field])
    return f"line:{line}"


def _synth_fields(record: dict[str, Any]) -> dict[str, Any]:
    """An ACD record: the last human turn is the instruction, the last gpt turn the caption."""
    turns = record.get("conversations") or []
    human = [t.get("value", "") for t in turns if isinstance(t, dict) and t.get("from") == "human"]
    gpt = [t.get("value", "") for t in turns if isinstance(t, dict) and t.get("from") == "gpt"]
    modality = next((m for m in MODALITIES if isinstance(record.get(m), str)), None)
    prompt = re.sub(r"<(image|video|audio)>\n?", "", human[-1]).strip() if human else None
    aligner = (
        _ALIGNER.search(prompt) if prompt else None
    )  # the aligner prompt: instruction + existing caption
    return {
        "instruction": aligner.group(1) if aligner else prompt,
        "caption": gpt[-1] if gpt else None,
        "modality": modality,
        "media": record.get(modality) if modality else None,
        "base_caption": aligner.group(2) if aligner else None,
    }


def display(record: dict[str, Any], line: int) -> dict[str, Any]:
    """The record as the page shows it (every field the record has, in one shape)."""
    fields = _synth_fields(record) if "conversations" in record and "caption" not in record else {}
    raw_meta = record.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    error = record.get("error") if isinstance(record.get("error"), dict) else None
    caption = fields.get("caption", record.get("caption"))
    timings = record.get("timings") if isinstance(record.get("timings"), dict) else {}
    capflow = meta.get("capflow") if isinstance(meta.get("capflow"), dict) else None
    score = None
    if capflow and isinstance(capflow.get("filter"), dict):
        scores = capflow["filter"].get("scores")
        if isinstance(scores, dict) and scores:
            values = [v for v in scores.values() if isinstance(v, (int, float))]
            score = sum(values) / len(values) if values else None
    media = fields.get("media") or record.get("media") or record.get("input")
    return {
        "line": line,
        "key": key_of(record, line),
        "status": "failed" if error is not None or caption is None else "ok",
        "error": error,
        "instruction": fields.get("instruction", record.get("instruction")),
        "caption": caption,
        "base_caption": fields.get("base_caption", record.get("base_caption")),
        "modality": fields.get("modality") or record.get("modality") or _guess_modality(media),
        "media": media,
        "complies": meta.get("complies"),
        "constraint": meta.get("constraint"),
        "models": record.get("models") or {},
        "timings": timings,
        "usage": record.get("usage") or {},
        "capflow": capflow,
        "meta": {k: v for k, v in meta.items() if k != "capflow"},
        "words": len(_WORD.findall(caption)) if isinstance(caption, str) else None,
        "seconds": sum(v for v in timings.values() if isinstance(v, (int, float)))
        if timings
        else None,
        "score": score,
    }


def _guess_modality(media: Any) -> str | None:
    if not isinstance(media, str):
        return None
    suffix = media.rsplit(".", 1)[-1].lower() if "." in media else ""
    if suffix in {"jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"}:
        return "image"
    if suffix in {"mp4", "mkv", "webm", "mov", "avi"}:
        return "video"
    if suffix in {"wav", "mp3", "flac", "ogg", "m4a", "aac", "opus"}:
        return "audio"
    return None


def summary(d: dict[str, Any]) -> dict[str, Any]:
    """The list row: short fields only (long captions are shown whole in the detail)."""
    return {
        k: d[k]
        for k in (
            "line",
            "key",
            "status",
            "modality",
            "complies",
            "words",
            "seconds",
            "score",
            "instruction",
            "caption",
            "base_caption",
        )
    } | {"error_type": d["error"].get("type") if d["error"] else None}
