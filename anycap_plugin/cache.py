"""Where AnyCap keeps what it builds once: converted checkpoints, generated samples, tiny models."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`ANYCAP_CACHE`, else ~/.cache/anycap; created on first use."""
    root = Path(os.environ.get("ANYCAP_CACHE") or Path.home() / ".cache" / "anycap")
    root.mkdir(parents=True, exist_ok=True)
    return root
