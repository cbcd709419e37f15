"""JSON Lines input with line numbers, so every reader reports bad lines the same way."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[str, Any]]:
    """(`file:line`, row) for each non-blank line; row is the parsed value, or the `ValueError`
    that the line raised, for the caller to record or raise."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                yield where, json.loads(line)
            except ValueError as e:
                yield where, e
