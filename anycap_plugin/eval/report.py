"""Reports: report.json, report.md (tables shaped like the paper's), a radar chart per modality,
and the comparison of two runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODALITIES = ("image", "video", "audio")


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}"


def _table(title: str, dims: dict[str, Any], other: dict[str, Any] | None = None) -> list[str]:
    names = [d for d in dims if d != "average"] + ["average"]
    lines = [f"**{title}**", "", "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    row = [_fmt(dims[n].get("score")) for n in names]
    lines.append("| score | " + " | ".join(row) + " |")
    if other is not None:
        deltas = []
        for n in names:
            a, b = (other.get(n) or {}).get("score"), dims[n].get("score")
            deltas.append("—" if a is None or b is None else f"{b - a:+.2f}")
        lines.append("| Δ vs A | " + " | ".join(deltas) + " |")
    if "recall" in next(iter(dims.values()), {}):
        lines.append("| recall | " + " | ".join(_fmt(dims[n].get("recall")) for n in names) + " |")
    lines.append("| n (failed) | " + " | ".join(
        f"{dims[n].get('n', dims[n].get('dimensions'))} ({dims[n].get('failed', 0)})" for n in names) + " |")
    return lines + [""]


def markdown(report: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    meta = report.get("meta", {})
    out = ["# AnyCapEval report", "",
           f"Judge: `{meta.get('judge')}`; repeats: {meta.get('repeats')}; judged {meta.get('judged')} of "
           f"{meta.get('items')} items; failed {meta.get('failed')}; missing captions {meta.get('missing_captions')}.",
           "Content score: key-point density (matched points per 100 words). Style score: 0-4 rubric.", ""]
    for modality in MODALITIES:
        if modality not in report:
            continue
        out += [f"## {modality}", ""]
        for axis in ("content", "style"):
            if axis in report[modality]:
                other = (baseline or {}).get(modality, {}).get(axis) if baseline else None
                out += _table(axis, report[modality][axis], other if baseline else None)
    return "\n".join(out)


def radar(report: dict[str, Any], modality: str, path: Path) -> None:
    """One radar per modality: every dimension, each axis normalised to its own scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels, values = [], []
    for axis, scale in (("content", None), ("style", 4.0)):
        dims = report[modality].get(axis, {})
        kpd_max = max((d["score"] or 0) for n, d in dims.items() if n != "average") if dims else 1
        for name, d in dims.items():
            if name == "average" or d["score"] is None:
                continue
            labels.append(f"{axis[0]}:{name}")
            values.append(d["score"] / (scale or max(kpd_max, 1e-9)))
    if len(labels) < 3:
        labels += [""] * (3 - len(labels))
        values += [0.0] * (3 - len(values))
    angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(6, 6), subplot_kw={"polar": True})
    ax.plot(angles + angles[:1], values + values[:1], linewidth=2)
    ax.fill(angles + angles[:1], values + values[:1], alpha=0.25)
    ax.set_xticks(angles)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title(f"AnyCapEval {modality} (content: KPD / best dimension; style: score / 4)", fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def write_report(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "report.md"]
    written[0].write_text(json.dumps(report, indent=2, ensure_ascii=False))
    written[1].write_text(markdown(report))
    for modality in MODALITIES:
        if modality in report:
            path = out / f"radar_{modality}.png"
            radar(report, modality, path)
            written.append(path)
    return written


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """B's tables with a row of deltas against A."""
    return markdown(b, baseline=a)
