"""What media are: the modalities, the extensions each is known by, defaults shared by decoders."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Modality = Literal["image", "video", "audio"]
MODALITIES: tuple[Modality, ...] = ("image", "video", "audio")
AUDIO_SAMPLE_RATE = 16_000
DEFAULT_NUM_FRAMES = 8
MEDIA_EXTENSIONS = {
    "image": {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"},
    "video": {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpeg", ".mpg"},
    "audio": {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus"},
}


def media_files_in(folder: Path) -> list[Path]:
    """Files under `folder` (recursively, sorted) whose extension names a known media type."""
    exts = set().union(*MEDIA_EXTENSIONS.values())
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in exts)
