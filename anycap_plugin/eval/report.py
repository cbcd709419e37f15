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
    lines.append(
        "| n (failed) | "
        + " | ".join(
            f"{dims[n].get('n', dims[n].get('dimensions'))} ({dims[n].get('failed', 0)})"
            for n in names
        )
        + " |"
    )
    return lines + [""]


def _setup_line(setup: dict[str, Any]) -> str:
    if not setup:
        return "Setup: not recorded (a report from before AnyCap recorded its judge protocol)."
    line = (
        f"Protocol: **{setup.get('protocol')}**; judge model `{setup.get('judge_model')}`; temperature "
        f"{setup.get('temperature')}; style judge sees: {setup.get('style_media')}; AnyCap {setup.get('anycap_version')}."
    )
    if setup.get("protocol") != "release":
        line += " Not comparable with the AnyCap paper's numbers (those use `--protocol release`)."
    return line


def markdown(
    report: dict[str, Any],
    baseline: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
) -> str:
    meta = report.get("meta", {})
    out = ["# AnyCapEval report", ""]
    out += [f"> **Warning:** {w}" for w in warnings or []] + ([""] if warnings else [])
    out += [
        _setup_line(meta.get("setup") or {}),
        (
            f"Repeats: {meta.get('repeats')}; judged {meta.get('judged')} of {meta.get('items')} "
            f"items; failed {meta.get('failed')}; missing captions {meta.get('missing_captions')}; "
            f"content items without key points {meta.get('no_key_points', 0)}; constraints outside "
            f"the release's table (unchecked) "
            f"{sum((meta.get('unchecked_constraints') or {}).values())}."
        ),
        "Content score: key-point density (matched points per 100 words). Style score: 0-4 rubric.",
        "",
    ]
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
    ax.set_title(
        f"AnyCapEval {modality} (content: KPD / best dimension; style: score / 4)", fontsize=9
    )
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


COMPARED = {
    "protocol": "judge protocol",
    "prompts": "judge prompts",
    "judge_model": "judge model",
    "temperature": "judge temperature",
    "style_media": "media shown to the style judge",
    "counting": "word counting and length rule",
}


def comparability_warnings(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Why the numbers of reports A and B do not sit in one table ([] when they do)."""
    sa, sb = (r.get("meta", {}).get("setup") for r in (a, b))
    if not sa or not sb:
        return [
            (
                "A report does not record its setup (made before AnyCap recorded judge "
                "protocols): the two may not be comparable."
            )
        ]
    warnings = [
        f"Different {what}: A {sa.get(key)!r}, B {sb.get(key)!r}."
        for key, what in COMPARED.items()
        if key != "prompts" and sa.get(key) != sb.get(key)
    ]
    pa, pb = sa.get("prompts") or {}, sb.get("prompts") or {}
    changed = sorted(k for k in set(pa) & set(pb) if pa[k] != pb[k])
    if changed and sa.get("protocol") == sb.get("protocol"):
        warnings.append(
            f"Different judge prompts for {', '.join(changed)} (the files' hashes differ)."
        )
    if sa.get("anycap_version") != sb.get("anycap_version"):
        warnings.append(
            f"Made by different AnyCap versions ({sa.get('anycap_version')} and "
            f"{sb.get('anycap_version')}): see the changelog for scoring changes."
        )
    return warnings


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """B's tables with a row of deltas against A, under a warning for each setup that differs."""
    return markdown(b, baseline=a, warnings=comparability_warnings(a, b))
