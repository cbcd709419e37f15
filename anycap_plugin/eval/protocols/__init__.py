"""Judge protocols: what an AnyCapEval judge is asked, how its reply is read, and how it samples.

- `anycap` (default): our prompts and reply contract, temperature 0, JSON mode; the style judge
  sees the media only when `--media-root` is given. Deterministic and cache-stable.
- `release`: the AnyCap release's instruction files, filled and read as the release does,
  temperature 0.7, media always shown to the style judge. Numbers comparable with the paper's.

A protocol is named, with a hash of each prompt it uses, in every report (`meta.setup`).
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, Literal

from ...media import Media
from ..references import EvalItem

ProtocolName = Literal["anycap", "release"]
PROTOCOLS: tuple[str, ...] = ("anycap", "release")


class JudgeProtocol:
    """The questions and reply formats of one judge protocol (subclasses fill them in)."""

    name: str
    temperature: float  # the protocol's sampling temperature; `--temperature` overrides it
    json_mode: bool  # ask for `response_format: json_object`
    media_first: bool  # media parts before the text part (the release puts the text first)
    style_media_required: bool  # the style judge must see the media; missing media fails the item

    def content_prompt(self, item: EvalItem, caption: str) -> str:
        raise NotImplementedError

    def parse_content(self, text: str, item: EvalItem) -> list[int]:
        """Matched flags (0/1) in the order of `item.key_points`; ValueError when invalid."""
        raise NotImplementedError

    def style_prompt(self, item: EvalItem, caption: str) -> str:
        raise NotImplementedError

    def parse_style(self, text: str) -> int:
        raise NotImplementedError

    def content_reasons(self, text: str, item: EvalItem) -> list[str | None] | None:
        """The judge's reason for each key point of a reply `parse_content` accepted, where it gives them."""
        return None

    def style_reason(self, text: str) -> str | None:
        """The style judge's reason: both protocols' replies are `{"score": n, "reason": ...}`."""
        from ...openai_compat import json_object

        reason = json_object(text).get("reason")
        return reason if isinstance(reason, str) else None

    def style_media(self, media: Media, send_audio: bool) -> list[dict[str, Any]]:
        """The media as chat content parts for the style judge ([] = judge on text alone)."""
        raise NotImplementedError

    def prompt_hashes(self) -> dict[str, str]:
        """`{modality}_{axis}` -> sha256 of each prompt the protocol may send."""
        raise NotImplementedError

    @property
    def id(self) -> str:
        """Name and prompt hashes: part of the judge cache key, so a changed prompt re-judges."""
        digest = ",".join(f"{k}={v[7:19]}" for k, v in sorted(self.prompt_hashes().items()))
        return f"{self.name}[{digest}]"


def make_protocol(
    name: str,
    prompts: str | Path | None = None,
    needed: AbstractSet[tuple[str, str]] | None = None,
) -> JudgeProtocol:
    """`anycap` or `release` (which reads `prompts`; `needed` = the (modality, axis) pairs to check)."""
    from ...errors import AnyCapError

    if name == "anycap":
        if prompts is not None:
            raise AnyCapError(
                "--prompts is read by the release protocol only.",
                hint="Add --protocol release, or drop --prompts.",
            )
        from .anycap import AnyCapProtocol

        return AnyCapProtocol()
    if name == "release":
        from .release import ReleaseProtocol

        return ReleaseProtocol.from_folder(prompts, needed)
    raise AnyCapError(
        f"Unknown judge protocol {name!r}.", hint="Use one of: " + ", ".join(PROTOCOLS) + "."
    )
