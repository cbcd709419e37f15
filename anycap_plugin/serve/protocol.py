"""Reading chat-completions requests into what a captioner needs: media, instruction, base caption.

What `anycap serve` accepts in the last user message's content parts:

- an image: one `image_url` part; a video: several `image_url` parts (its frames, in order, each
  after a `Frame{i}: ` text part or not) or one `video_url` part; audio: one `input_audio` part (base64 wav, flac or mp3) or `audio_url`. URLs are
  `data:` URLs; `http(s)` URLs only when the server allows remote media, and then only on public
  hosts (`remote_media`); local paths (`file://` or plain) only under the server's media roots.
- text parts: either an ACM question (`acm.prompt`: the published aligner ask that `RemoteACM`
  sends, or another variant `parse_question` reads), or a plain instruction. A base caption can also come
  in the request body's `base_caption` field (`extra_body={"base_caption": ...}` in the SDK).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..acm.prompt import parse_question
from ..errors import AnyCapError, RequestError
from ..media import Media
from ..media.chat_parts import is_frame_label
from .policy import MediaPolicy


@dataclass(frozen=True)
class CaptionRequest:
    model: str
    media: Media | None
    instruction: str | None
    base_caption: str | None
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def parse_request(body: Any, policy: MediaPolicy) -> CaptionRequest:
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(
            "`model` must be a non-empty string.", hint="GET /v1/models lists the served model."
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("`messages` must be a non-empty list.")
    user = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not user:
        raise RequestError("No user message: the media and the instruction go in one.")
    content = user[-1].get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise RequestError("A message's `content` must be a string or a list of content parts.")
    images, media, texts = [], None, []
    for part in parts:
        kind = part.get("type")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise RequestError("A text part needs a string `text`.")
            if not is_frame_label(
                part["text"]
            ):  # `Frame{i}: ` before a video's frames (InternVL's format)
                texts.append(part["text"])
        elif kind == "image_url":
            images.append(_load(_url(part, "image_url"), policy, "image"))
        elif kind == "video_url":
            media = _one_media(media, _load(_url(part, "video_url"), policy, "video"))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
                raise RequestError("An input_audio part needs `input_audio.data` (base64).")
            media = _one_media(media, _media(_b64(audio["data"], policy), "audio"))
        elif kind == "audio_url":  # LMDeploy's audio part: one client format reaches both servers
            media = _one_media(media, _load(_url(part, "audio_url"), policy, "audio"))
        else:
            raise RequestError(
                f"Unsupported content part type {kind!r}.",
                hint="Use text, image_url, video_url, input_audio or audio_url.",
            )
    if images:
        media = _one_media(
            media,
            images[0]
            if len(images) == 1
            else Media.from_frames([im.image() for im in images], ref=f"frames:{len(images)}"),
        )
    instruction, base_caption = read_protocol_text("\n".join(texts).strip())
    extra = body.get("base_caption")
    if extra is not None:
        if not isinstance(extra, str):
            raise RequestError("`base_caption` must be a string.")
        base_caption = extra
    return CaptionRequest(
        model=model,
        media=media,
        instruction=instruction,
        base_caption=base_caption,
        max_tokens=_number(body, "max_tokens", int, 1, 8192)
        or _number(body, "max_completion_tokens", int, 1, 8192),
        temperature=_number(body, "temperature", float, 0.0, 2.0),
        stream=bool(body.get("stream", False)),
    )


def read_protocol_text(text: str) -> tuple[str | None, str | None]:
    """(instruction, existing caption) from an ACM question; other text is all instruction."""
    parsed = parse_question(text)
    if parsed is None:
        return text or None, None
    return parsed.instruction or None, parsed.caption


def _number(body: dict[str, Any], name: str, kind: type, low: float, high: float) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (kind is int and not isinstance(value, int))
    ):
        raise RequestError(f"`{name}` must be a{'n integer' if kind is int else ' number'}.")
    if not low <= value <= high:
        raise RequestError(f"`{name}` must be between {low:g} and {high:g}.")
    return kind(value)


def _one_media(current: Media | None, new: Media) -> Media:
    if current is not None:
        raise RequestError(
            "One media item per request: one image, one video (or its frames), or one audio clip."
        )
    return new


def _url(part: dict[str, Any], key: str) -> str:
    value = part.get(key)
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise RequestError(f"A {key} part needs `{key}.url`.")
    return url


def _b64(data: str, policy: MediaPolicy) -> bytes:
    if len(data) * 3 // 4 > policy.max_media_bytes:
        raise RequestError(
            f"Media larger than {policy.max_media_bytes} bytes.", status=413, code="media_too_large"
        )
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("Media data is not valid base64.") from None


def check_source(url: str, policy: MediaPolicy) -> Path | None:
    """Refuse, before anything is fetched or read, what the policy does not allow: malformed or oversized
    data URLs, remote URLs unless allowed, local paths outside the media roots, missing or oversized
    files. Returns the resolved file for a local path (None for data and remote URLs)."""
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise RequestError("Data URLs must be base64: data:<mime>;base64,<data>.")
        if len(payload) * 3 // 4 > policy.max_media_bytes:
            raise RequestError(
                f"Media larger than {policy.max_media_bytes} bytes.",
                status=413,
                code="media_too_large",
            )
        return None
    if url.startswith(("http://", "https://")):
        if not policy.allow_remote:
            raise RequestError(
                "Remote media URLs are refused by this server.",
                status=403,
                code="remote_media_refused",
                hint="Send the media as a data URL, or start the server with --allow-remote-media.",
            )
        return None
    resolved = Path(url.removeprefix("file://")).expanduser().resolve()
    if not any(resolved.is_relative_to(root.resolve()) for root in policy.local_roots):
        raise RequestError(
            "Local media paths are refused outside the server's media roots.",
            status=403,
            code="local_media_refused",
            hint="Send a data URL, or start the server with --media-root.",
        )
    if not resolved.is_file():
        raise RequestError(f"No media file at {url!r}.", status=404, code="media_not_found")
    if resolved.stat().st_size > policy.max_media_bytes:
        raise RequestError(
            f"Media larger than {policy.max_media_bytes} bytes.", status=413, code="media_too_large"
        )
    return resolved


def _load(url: str, policy: MediaPolicy, expected: str) -> Media:
    local = check_source(url, policy)
    if url.startswith("data:"):
        return _media(_b64(url.partition(",")[2], policy), expected)
    if local is None:
        return _media(_fetch(url, policy), expected)
    return _media(local.read_bytes(), expected, ref=str(local))


def _fetch(url: str, policy: MediaPolicy) -> bytes:
    from .remote_media import fetch  # only servers that allow remote media need it

    return fetch(url, policy)


def _media(data: bytes, expected: str, ref: str | None = None) -> Media:
    try:
        media = Media.from_bytes(data, name=ref)
        if media.modality == "image":
            media.image()  # decode now: a broken image is the client's error, not the model's
    except AnyCapError as e:
        raise RequestError(f"Undecodable media: {e.message}", code="invalid_media") from None
    if media.modality != expected and not (expected == "video" and media.modality == "image"):
        raise RequestError(
            f"A {expected} part carried {media.modality} data.", code="invalid_media"
        )
    return media
