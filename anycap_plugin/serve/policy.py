"""What a request may not do, and how the server says so: `RequestError` (an OpenAI-style error
with its HTTP status) and `MediaPolicy` (where media may come from). Shared by the request parser
(`protocol`), the remote-media fetcher (`remote_media`) and the LMDeploy guards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MediaPolicy:
    """Where media may come from: data URLs always; remote URLs (public hosts only, `remote_media`)
    and local paths only when allowed. `resolver` and `connector` replace DNS and TCP in tests."""

    allow_remote: bool = False
    local_roots: tuple[Path, ...] = ()
    max_media_bytes: int = 32 * 1024 * 1024
    remote_timeout: float = 10.0
    allowed_hosts: tuple[str, ...] = ()  # empty: any public host
    max_redirects: int = 5
    resolver: Callable[[str, int], list[str]] | None = field(
        default=None, compare=False, repr=False
    )
    connector: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
