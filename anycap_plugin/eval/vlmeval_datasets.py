"""AnyCapEval and VidCapBench as VLMEvalKit dataset classes.

Both read their text data from a folder (by default under VLMEvalKit's data root, `$LMUData`):

    AnyCapEval/anycapeval_{image,video,audio}_ref_{content,style}.jsonl   the references
    AnyCapEval/{image,video,audio}/...                                    their media
    VidCapBench/VidCapBench-{AE,HE}_QA.jsonl                              the QA pairs
    VidCapBench/videos/*.mp4                                              the videos

Evaluation runs our evaluators (`anycap_plugin.eval`), so a VLMEvalKit run and
`anycap eval anycapeval` give the same report on the same captions and judge. Judge settings come
from VLMEvalKit's judge kwargs: `model` (`offline` for the embedding judge), `api_base`, `key`,
`nproc`, and through `--judge-args`: `repeats`, `media_root` (AnyCapEval: let the style judge
see media; by default the dataset's own media folder under the release protocol), `protocol`
(`anycap` or `release`), `prompts` (the release's instruction folder), `temperature`,
`max_media_mb` (AnyCapEval), `tokenizer` (VidCapBench: the T5 tokenizer for conciseness).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from ..contained.vlmeval import import_vlmeval

import_vlmeval()

from vlmeval.dataset.image_base import ImageBaseDataset
from vlmeval.dataset.video_base import VideoBaseDataset
from vlmeval.inference import FAIL_MSG
from vlmeval.smp import LMUDataRoot, dump, load
from vlmeval.smp.file import INFER_FAIL_MSG, get_intermediate_file_path

from ..errors import AnyCapError
from . import vidcapbench as vcb
from .references import EvalItem, load_references

ROOTS: dict[str, str | None] = {"AnyCapEval": None, "VidCapBench": None}  # set by `register`


def data_folder(benchmark: str) -> Path:
    return Path(ROOTS.get(benchmark) or Path(LMUDataRoot()) / benchmark)


def _failed(prediction: Any) -> bool:
    return not isinstance(prediction, str) or INFER_FAIL_MSG in prediction or FAIL_MSG in prediction


def _predictions(eval_file: str) -> dict[int, str]:
    """Captions by row index from VLMEvalKit's result file; failed items are left out (missing, not scored).

    Rows are matched by `index`, not by id columns, which a spreadsheet round trip may retype."""
    data = load(eval_file)
    return {int(i): p for i, p in zip(data["index"], data["prediction"]) if not _failed(p)}


def _judge_settings(judge_kwargs: dict[str, Any]) -> dict[str, Any]:
    """VLMEvalKit's judge kwargs as our judges' arguments (`api_base` ends in /chat/completions)."""
    base = judge_kwargs.get("api_base")
    if base and base.rstrip("/").endswith("/chat/completions"):
        base = base.rstrip("/")[: -len("/chat/completions")]
    return {
        "model": judge_kwargs.get("model") or "gpt-4o-mini",
        "base_url": base,
        "api_key": judge_kwargs.get("key"),
        "concurrency": int(judge_kwargs.get("nproc") or 16),
    }


# ---- AnyCapEval ----------------------------------------------------------------------------
class _AnyCapEval:
    """What the three AnyCapEval modalities share: rows from references, our evaluator, our report."""

    TYPE = "Caption"
    ANYCAP_MODALITY: ClassVar[str] = "image"
    data: pd.DataFrame  # set by each dataset class's __init__ (`_frame()`)
    MEDIA_TYPE: ClassVar[str] = "image"

    @classmethod
    def supported_datasets(cls) -> list[str]:
        return [f"AnyCapEval_{cls.ANYCAP_MODALITY.capitalize()}"]

    @classmethod
    def reference_files(cls) -> list[Path]:
        folder = data_folder("AnyCapEval")
        files = [
            folder / f"anycapeval_{cls.ANYCAP_MODALITY}_ref_{axis}.jsonl"
            for axis in ("content", "style")
        ]
        found = [f for f in files if f.is_file()]
        if not found:
            raise AnyCapError(
                f"No AnyCapEval {cls.ANYCAP_MODALITY} references in {folder}.",
                hint=f"Put anycapeval_{cls.ANYCAP_MODALITY}_ref_content.jsonl / _style.jsonl there, "
                "or pass --data-root / register(anycapeval_root=...).",
            )
        return found

    def _items(self) -> list[EvalItem]:
        return load_references(self.reference_files())

    def _frame(self) -> pd.DataFrame:
        media_root = data_folder("AnyCapEval") / self.ANYCAP_MODALITY
        rows = [
            {
                "index": i,
                "ref_id": item.id,
                "axis": item.axis,
                "dimension": item.dimension,
                "question": item.instruction,
                "media": str(media_root / item.media),
            }
            for i, item in enumerate(self._items())
        ]
        return pd.DataFrame(rows)

    def _message(self, line: Any) -> list[dict[str, str]]:
        return [
            {"type": self.MEDIA_TYPE, "value": line["media"]},
            {"type": "text", "value": line["question"]},
        ]

    def evaluate(self, eval_file: str, **judge_kwargs: Any) -> dict[str, Any]:
        from . import JudgeCache, evaluate, make_protocol, write_report
        from .judges import anycapeval_judge

        predictions = _predictions(eval_file)
        items = self._items()
        captions = {
            (self.ANYCAP_MODALITY, str(r)): predictions[i]
            for i, r in zip(self.data["index"], self.data["ref_id"])
            if i in predictions
        }
        settings = _judge_settings(judge_kwargs)
        protocol = make_protocol(
            judge_kwargs.get("protocol", "anycap"),
            judge_kwargs.get("prompts"),
            {(i.modality, i.axis) for i in items},
        )
        media_root = judge_kwargs.get("media_root")
        if (
            media_root is None and protocol.style_media_required
        ):  # the release shows media: the dataset's own
            media_root = str(data_folder("AnyCapEval") / self.ANYCAP_MODALITY)
        judge = anycapeval_judge(
            settings["model"],
            protocol=protocol,
            base_url=settings["base_url"],
            api_key=settings["api_key"],
            concurrency=settings["concurrency"],
            media_root=media_root,
            audio=bool(judge_kwargs.get("judge_audio")),
            max_media_mb=float(judge_kwargs.get("max_media_mb", 20)),
            temperature=None
            if judge_kwargs.get("temperature") is None
            else float(judge_kwargs["temperature"]),
        )
        stem = str(Path(eval_file).with_suffix(""))
        with JudgeCache(f"{stem}_judge_cache.sqlite") as cache:
            report = evaluate(
                items,
                captions,
                judge,
                cache=cache,
                repeats=int(judge_kwargs.get("repeats", 1)),
                concurrency=settings["concurrency"],
            )
        write_report(report, Path(f"{stem}_anycapeval"))
        scores: dict[str, Any] = {}
        for axis, dims in report.get(self.ANYCAP_MODALITY, {}).items():
            for dim, summary in dims.items():
                if summary.get("score") is not None:
                    scores[f"{axis}|{dim}"] = summary["score"]
        scores["failed"], scores["missing_captions"] = (
            report["meta"]["failed"],
            report["meta"]["missing_captions"],
        )
        dump(scores, get_intermediate_file_path(eval_file, "_score", "json"))
        return scores


class _AnyCapEvalStill(_AnyCapEval, ImageBaseDataset):
    """Images and audio go through VLMEvalKit's image flow (one item, its prompt)."""

    MODALITY = "IMAGE"

    def __init__(self, dataset: str = "", **kwargs: Any) -> None:
        self.dataset_name = dataset or self.supported_datasets()[0]
        self.img_root = str(data_folder("AnyCapEval") / self.ANYCAP_MODALITY)
        self.data = self._frame()
        self.meta_only, self.skip_noimg = True, False

    def build_prompt(self, line: Any) -> list[dict[str, str]]:
        if isinstance(line, int):
            line = self.data.iloc[line]
        return self._message(line)

    def dump_image(self, line: Any) -> list[str]:
        return [line["media"]]


class AnyCapEvalImage(_AnyCapEvalStill):
    ANYCAP_MODALITY = "image"


class AnyCapEvalAudio(_AnyCapEvalStill):
    ANYCAP_MODALITY = "audio"
    MEDIA_TYPE = "audio"
    MODALITY = "AUDIO"


class _VideoFolder(VideoBaseDataset):
    """A video dataset over video files: frames for non-video models come from our own decoder."""

    def _setup(self, dataset: str, nframe: int, fps: float, data: pd.DataFrame) -> None:
        self.dataset_name, self.data, self.pack = dataset, data, False
        self.nframe, self.fps = nframe if nframe > 0 else (0 if fps > 0 else 8), fps
        self.videos = sorted(set(self.data["video"]))
        self.frame_root = os.path.join(LMUDataRoot(), "images", dataset)

    def prepare_dataset(self, dataset: str) -> dict[str, str]:  # rows are built in _setup instead
        raise NotImplementedError

    def frames(self, line: Any) -> list[str]:
        """JPEG frames of the row's video, sampled (and cached) by AnyCap's decoder."""
        from ..media import Media

        folder = Path(self.frame_root) / line["video"]
        n = self.nframe or 8
        paths = [folder / f"frame-{i + 1}-of-{n}.jpg" for i in range(n)]
        if not all(p.exists() for p in paths):
            folder.mkdir(parents=True, exist_ok=True)
            frames = Media.load(line["video_path"]).frames(num_frames=n).images
            paths = paths[: len(frames)]
            for image, path in zip(frames, paths):
                image.save(path, quality=95)
        return [str(p) for p in paths]

    def build_prompt(self, line: Any, video_llm: bool = True) -> list[dict[str, str]]:
        if isinstance(line, int):
            line = self.data.iloc[line]
        media = (
            [{"type": "video", "value": line["video_path"]}]
            if video_llm
            else [{"type": "image", "value": p} for p in self.frames(line)]
        )
        return media + [{"type": "text", "value": line["question"]}]


class AnyCapEvalVideo(_AnyCapEval, _VideoFolder):
    ANYCAP_MODALITY = "video"
    MEDIA_TYPE = "video"
    MODALITY = "VIDEO"

    def __init__(self, dataset: str = "", nframe: int = 0, fps: float = -1, **kwargs: Any) -> None:
        frame = self._frame().rename(columns={"media": "video_path"})
        frame["video"] = [Path(p).stem for p in frame["video_path"]]
        self._setup(dataset or self.supported_datasets()[0], nframe, fps, frame)


# ---- VidCapBench ---------------------------------------------------------------------------
class VidCapBench(_VideoFolder):
    """VidCapBench-AE / -HE: one row per video, asked for a detailed caption; judged through QA pairs."""

    TYPE = "Caption"
    MODALITY = "VIDEO"
    SUBSETS: ClassVar[tuple[str, ...]] = ("AE", "HE")

    @classmethod
    def supported_datasets(cls) -> list[str]:
        return [f"VidCapBench-{s}" for s in cls.SUBSETS]

    def __init__(
        self, dataset: str = "VidCapBench-AE", nframe: int = 0, fps: float = -1, **kwargs: Any
    ) -> None:
        self.qa = vcb.load_qa(self.qa_file(dataset))
        folder = data_folder("VidCapBench") / "videos"
        rows = [
            {
                "index": i,
                "video": Path(v).stem,
                "video_dir": v,
                "video_path": str(folder / v),
                "question": vcb.CAPTION_PROMPT,
            }
            for i, v in enumerate(self.qa)
        ]
        self._setup(dataset, nframe, fps, pd.DataFrame(rows))

    @staticmethod
    def qa_file(dataset: str) -> Path:
        path = data_folder("VidCapBench") / f"{dataset}_QA.jsonl"
        if not path.is_file():
            raise AnyCapError(
                f"No VidCapBench QA file {path}.",
                hint="Copy VidCapBench-AE_QA.jsonl / -HE_QA.jsonl there, or pass --data-root / "
                "register(vidcapbench_root=...).",
            )
        return path

    def evaluate(self, eval_file: str, **judge_kwargs: Any) -> dict[str, Any]:
        from .vidcapbench import flat_scores, score

        predictions = _predictions(eval_file)
        captions = {
            v: predictions[i]
            for i, v in zip(self.data["index"], self.data["video_dir"])
            if i in predictions
        }
        settings = _judge_settings(judge_kwargs)
        stem = str(Path(eval_file).with_suffix(""))
        report = score(
            self.qa,
            captions,
            judge_model=settings["model"],
            judge_base_url=settings["base_url"],
            api_key=settings["api_key"],
            tokenizer=judge_kwargs.get("tokenizer"),
            concurrency=settings["concurrency"],
            cache_path=Path(f"{stem}_judge_cache.sqlite"),
        )
        Path(f"{stem}_vidcapbench.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False)
        )
        scores = flat_scores(report)
        dump(scores, get_intermediate_file_path(eval_file, "_score", "json"))
        return scores
