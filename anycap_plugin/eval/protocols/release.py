"""The `release` judge protocol: the AnyCap release's instruction files, used as the release uses them.

- Prompts: `{modality}_{content,style}.txt` in one folder (the layout of our shared copy), or the
  release's own tree `anycapeval_{modality}/instruction_{content,style}.txt`. Read verbatim and
  filled with the release's chained `str.replace`: content `{key_points}` (the key points joined
  by newlines), then `{answer}`; style `{caption_type}` (`restriction[0]`), then `{output}`, then
  `{reference}`.
- Replies: content `{"caption_evaluation": {"key_points_scores": {point: 0/1}, "total_score": n,
  ...}}`, style `{"score": n, "reason": ...}`. Validated more strictly than the release (which only
  checks types and that `total_score` is the sum): every key point scored exactly once with 0 or
  1, keyed by its text (with or without its parenthesised detail) or as `key_point_<i>`.
- Sampling at temperature 0.7, no JSON mode, the text part first. The style judge always sees
  the media: an image's own bytes (JPEG, PNG, WebP, GIF; others as PNG), a video's 8 frames at
  `linspace(0, n - 1, 8)` as JPEG, a wav file's own bytes (other audio as wav). The judge model
  must take audio, as the release's gpt-4o-audio-preview does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from ...errors import PromptFilesError
from ...media import Media
from ...media.chat_parts import media_parts
from ...openai_compat import json_object
from ..references import EvalItem
from ..replies import rubric_score
from . import JudgeProtocol

PLACEHOLDERS = {
    "content": ("{key_points}", "{answer}"),
    "style": ("{caption_type}", "{output}", "{reference}"),
}
WHERE_FROM = (
    "The release's judge instructions are in the AnyCap repository (github.com/qishisuren123/AnyCap), "
    "eval/AnyCapEval/anycapeval_{image,video,audio}/instruction_{content,style}.txt: pass that "
    "eval/AnyCapEval folder, or a folder of {modality}_{content,style}.txt files."
)
VIDEO_FRAMES = 8
JPEG_QUALITY = 75  # PIL's default, which the release's frame encoder uses


def prompt_file(folder: Path, modality: str, axis: str) -> Path | None:
    """The instruction file for (modality, axis) in either layout, or None."""
    for candidate in (
        folder / f"{modality}_{axis}.txt",
        folder / f"anycapeval_{modality}" / f"instruction_{axis}.txt",
    ):
        if candidate.is_file():
            return candidate
    return None


def fill_content(template: str, key_points: tuple[str, ...], caption: str) -> str:
    return template.replace("{key_points}", "\n".join(key_points)).replace("{answer}", caption)


def fill_style(template: str, caption_type: str, caption: str, reference: str) -> str:
    return (
        template.replace("{caption_type}", caption_type)
        .replace("{output}", caption)
        .replace("{reference}", reference)
    )


_PAREN_TAIL = re.compile(r"\s*\([^()]*\)\s*$")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_POSITIONAL = re.compile(r"key_point_(\d+)")


def _norm(text: str) -> str:
    return " ".join(text.translate(_QUOTES).casefold().split()).rstrip(".:;, ")


def key_point_index(key_points: tuple[str, ...]) -> dict[str, int]:
    """Reply keys a judge may use for each key point: its text, or its text without the
    parenthesised detail (as the release's examples do). A short form two points share is left out."""
    index: dict[str, int] = {}
    shared: set[str] = set()
    for i, point in enumerate(key_points):
        for form in {_norm(point), _norm(_PAREN_TAIL.sub("", point))}:
            if form in index and index[form] != i:
                shared.add(form)
            index.setdefault(form, i)
    full = {_norm(p): i for i, p in enumerate(key_points)}
    return {f: i for f, i in index.items() if f not in shared} | full


def parse_release_content(text: str, key_points: tuple[str, ...]) -> list[int]:
    """Flags in key-point order from a release-format reply; ValueError unless each point is scored once."""
    data = json_object(text)
    evaluation = data.get("caption_evaluation")
    evaluation = evaluation if isinstance(evaluation, dict) else {}
    scores = evaluation.get("key_points_scores")
    if not isinstance(scores, dict):
        raise ValueError("no 'caption_evaluation.key_points_scores' object")  # noqa: TRY004 - a malformed reply: the re-ask loop catches ValueError
    index = key_point_index(key_points)
    flags: list[int | None] = [None] * len(key_points)
    for key, value in scores.items():
        positional = _POSITIONAL.fullmatch(key.strip())
        i = (
            int(positional.group(1)) - 1
            if positional
            else index.get(_norm(key), index.get(_norm(_PAREN_TAIL.sub("", key))))
        )
        if i is None or not 0 <= i < len(key_points):
            raise ValueError(f"{key!r} is not one of the {len(key_points)} key points")
        if isinstance(value, bool) or value not in (0, 1) or not isinstance(value, int):
            raise ValueError(f"score {value!r} for {key!r} is not 0 or 1")
        if flags[i] is not None:
            raise ValueError(f"key point {i + 1} scored twice")
        flags[i] = value
    missing = [i + 1 for i, f in enumerate(flags) if f is None]
    if missing:
        raise ValueError(f"key points {missing} not scored")
    total = evaluation.get("total_score")  # a dict: scores came out of it
    if total is not None and (isinstance(total, bool) or total != sum(flags)):  # type: ignore[arg-type]
        raise ValueError(f"total_score {total!r} is not the sum of the key point scores")
    return flags  # type: ignore[return-value]


def release_reasons(text: str, key_points: tuple[str, ...]) -> list[str | None] | None:
    """`score_reasons` in key-point order, keyed as the scores are (text, short form, key_point_<i>)."""
    evaluation = json_object(text).get("caption_evaluation") or {}
    reasons = evaluation.get("score_reasons") if isinstance(evaluation, dict) else None
    if not isinstance(reasons, dict):
        return None
    index = key_point_index(key_points)
    out: list[str | None] = [None] * len(key_points)
    for key, reason in reasons.items():
        positional = _POSITIONAL.fullmatch(str(key).strip())
        i = (
            int(positional.group(1)) - 1
            if positional
            else index.get(_norm(str(key)), index.get(_norm(_PAREN_TAIL.sub("", str(key)))))
        )
        if i is not None and 0 <= i < len(key_points) and isinstance(reason, str):
            out[i] = reason
    return out


class ReleaseProtocol(JudgeProtocol):
    name = "release"
    temperature = 0.7
    json_mode = False
    media_first = False
    style_media_required = True

    def __init__(self, templates: dict[tuple[str, str], str], hashes: dict[str, str]) -> None:
        self.templates, self._hashes = templates, hashes

    @classmethod
    def from_folder(
        cls, folder: str | Path | None, needed: AbstractSet[tuple[str, str]] | None = None
    ) -> ReleaseProtocol:
        if folder is None:
            raise PromptFilesError(
                "The release protocol needs the release's judge instructions (--prompts DIR).",
                hint=WHERE_FROM,
            )
        root = Path(folder)
        if not root.is_dir():
            raise PromptFilesError(f"No prompt folder {str(root)!r}.", hint=WHERE_FROM)
        pairs = needed or {
            (m, a) for m in ("image", "video", "audio") for a in ("content", "style")
        }
        templates: dict[tuple[str, str], str] = {}
        hashes: dict[str, str] = {}
        for modality, axis in sorted(pairs):
            path = prompt_file(root, modality, axis)
            if path is None:
                if needed is None:
                    continue  # without a list of needs, load what is there
                raise PromptFilesError(
                    f"No {modality} {axis} instruction in {str(root)!r} (looked for {modality}_{axis}.txt and "
                    f"anycapeval_{modality}/instruction_{axis}.txt).",
                    hint=WHERE_FROM,
                )
            raw = path.read_bytes()
            text = raw.decode("utf-8")
            absent = [p for p in PLACEHOLDERS[axis] if p not in text]
            if absent:
                raise PromptFilesError(
                    f"{path} is not a release {axis} instruction: no {', '.join(absent)} placeholder.",
                    hint=WHERE_FROM,
                )
            templates[(modality, axis)] = text
            hashes[f"{modality}_{axis}"] = "sha256:" + hashlib.sha256(raw).hexdigest()
        if not templates:
            raise PromptFilesError(
                f"No release instruction files in {str(root)!r}.", hint=WHERE_FROM
            )
        return cls(templates, hashes)

    def _template(self, item: EvalItem) -> str:
        try:
            return self.templates[(item.modality, item.axis)]
        except KeyError:
            raise PromptFilesError(
                f"No {item.modality} {item.axis} instruction was loaded.", hint=WHERE_FROM
            ) from None

    def content_prompt(self, item: EvalItem, caption: str) -> str:
        return fill_content(self._template(item), item.key_points or (), caption)

    def parse_content(self, text: str, item: EvalItem) -> list[int]:
        return parse_release_content(text, item.key_points or ())

    def style_prompt(self, item: EvalItem, caption: str) -> str:
        return fill_style(self._template(item), item.dimension, caption, item.reference)

    def parse_style(self, text: str) -> int:
        return rubric_score(json_object(text))

    def content_reasons(self, text: str, item: EvalItem) -> list[str | None] | None:
        return release_reasons(text, item.key_points or ())

    def style_media(self, media: Media, send_audio: bool) -> list[dict[str, Any]]:
        return media_parts(media, VIDEO_FRAMES, JPEG_QUALITY, own_bytes=True, spread="ends")

    def prompt_hashes(self) -> dict[str, str]:
        return dict(self._hashes)
