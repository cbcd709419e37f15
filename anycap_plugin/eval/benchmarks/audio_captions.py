"""AudioCaps and Clotho: audio captions scored with the classic caption metrics and Sentence-BERT
similarity (`eval.audio_captions`), in `anycap eval` and as lmms-eval tasks.

VLMEvalKit holds neither: its datasets are built around images and video (AnyCapEval's audio items
ride on its image flow only because they are one modality of an image/video benchmark).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..registry import Benchmark, LmmsTask, LmmsTasks

AUDIO_PROMPT = (
    "Describe the audio in one sentence."  # what the classic audio-caption references answer
)


NO_VLMEVAL = (
    "VLMEvalKit's datasets are image and video ones: audio-only benchmarks are run with "
    "`anycap eval` or lmms-eval."
)
LMMS_METRICS = (
    "METEOR",
    "ROUGE-L",
    "CIDEr-D",
    "SPICE",
    "SPIDEr",
    "Sentence-BERT",
    "failed_captions",
)


def _options(layout: str) -> tuple[Any, ...]:
    return (
        click.option(
            "--refs",
            required=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help=f"{layout}, or JSONL {{id, captions}}, or the release's {{audio_path, model_response}}.",
        ),
        click.option(
            "--captions",
            required=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="anycap caption records, {id, caption}, or the release's {audio_path, model_response}.",
        ),
        click.option(
            "--protocol",
            type=click.Choice(["standard", "release"]),
            default="standard",
            show_default=True,
            help="standard: PTB tokens, corpus-level, all references; release: the AnyCap release's script.",
        ),
        click.option(
            "--sbert",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="A sentence-transformer folder for Sentence-BERT similarity (the paper: all-mpnet-base-v2; "
            "default: the bundled all-MiniLM-L6-v2).",
        ),
        click.option(
            "--corenlp-dir",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Folder with the Stanford CoreNLP 3.6.0 jars SPICE needs (else SPICE and SPIDEr are not computed).",
        ),
        click.option(
            "--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path)
        ),
    )


def _benchmark(name: str, layout: str) -> Benchmark:
    def run(
        refs: Path,
        captions: Path,
        protocol: str,
        sbert: Path | None,
        corenlp_dir: Path | None,
        output: Path,
    ) -> bool:
        from .. import audio_captions as ac

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
        return True

    def lmms_tasks(values: dict[str, Any], settings: dict[str, Any]) -> list[LmmsTask]:
        """`--audiocaps` / `--clotho REFS AUDIO_DIR` (declared on `anycap lmms-eval-tasks`): one
        task, a sample per clip with an audio file."""
        from ...errors import TaskDataError
        from ...media import media_files_in
        from .. import audio_captions as ac

        if not values.get(name):
            return []
        refs, audio_dir = (Path(p).resolve() for p in values[name])
        if not audio_dir.is_dir():
            raise TaskDataError(f"No audio folder {audio_dir}.")
        protocol = values.get("audio_protocol") or "standard"
        references = ac.load_references(refs)
        files = {p.stem: p for p in media_files_in(audio_dir)}
        docs = [
            {
                "id": clip,
                "modality": "audio",
                "instruction": values.get("audio_instruction") or AUDIO_PROMPT,
                "media": str(files[clip]),
                "reference": captions[0],
            }
            for clip, captions in references.items()
            if clip in files
        ]
        if not docs:
            raise TaskDataError(
                f"None of the {len(references)} {name} clips has an audio file in {audio_dir}.",
                hint="Audio files are named by the clip (AudioCaps: youtube_id; Clotho: file name).",
            )
        metrics = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"] if protocol == "standard" else []
        metrics += LMMS_METRICS
        sbert, corenlp_dir = values.get("sbert"), values.get("corenlp_dir")
        spec = {
            "benchmark": name,
            "modality": "audio",
            "references": str(refs),
            "protocol": protocol,
            "sbert": str(sbert) if sbert else None,
            "corenlp_dir": str(corenlp_dir) if corenlp_dir else None,
            "clips_without_audio": len(references) - len(docs),
        }
        return [
            LmmsTask(f"anycap_{name}", docs, metrics, spec, max_new_tokens=128, tag="anycap_audio")
        ]

    return Benchmark(
        name=name,
        description=(
            f"Score audio captions on {'AudioCaps' if name == 'audiocaps' else 'Clotho'} with the "
            "classic caption metrics (BLEU, METEOR, ROUGE-L, CIDEr-D, SPICE, SPIDEr) and "
            "Sentence-BERT similarity."
        ),
        modalities=("audio",),
        options=_options(layout),
        run=run,
        no_vlmeval=NO_VLMEVAL,
        lmms_eval=LmmsTasks(options=(), tasks=lmms_tasks, report=lmms_report, metric=lmms_metric),
    )


def lmms_report(
    spec: dict[str, Any],
    settings: dict[str, Any],
    captions: dict[str, str | None],
    folder: Path,
) -> dict[str, Any]:
    from .. import audio_captions as ac

    report = ac.evaluate(
        ac.load_references(spec["references"]),
        {i: c for i, c in captions.items() if c is not None},
        benchmark=spec["benchmark"],
        protocol=spec["protocol"],
        sbert=Path(spec["sbert"]) if spec.get("sbert") else None,
        corenlp_dir=Path(spec["corenlp_dir"]) if spec.get("corenlp_dir") else None,
        references_file=Path(spec["references"]),
        failed=[{"id": i, "why": "no caption"} for i, c in captions.items() if c is None],
    )
    ac.write_report(report, folder)
    return report


def lmms_metric(report: dict[str, Any], spec: dict[str, Any], metric: str) -> float | None:
    if metric == "failed_captions":
        return report["counts"]["failed_candidates"]
    return report["metrics"].get(metric)


AUDIOCAPS = _benchmark(
    "audiocaps", "AudioCaps test.csv (audiocap_id,youtube_id,start_time,caption)"
)
CLOTHO = _benchmark(
    "clotho", "Clotho clotho_captions_evaluation.csv (file_name,caption_1..caption_5)"
)
