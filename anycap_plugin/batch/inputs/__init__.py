"""What `anycap caption` reads: files, folders, globs, JSONL manifests, LLaVA/InternVL conversation
JSON, WebDataset shards, Parquet tables and Hugging Face datasets, all as one stream of `WorkItem`s."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterator, Sequence

from .conversations import conversation_file
from .files import manifest, paths
from .hf_datasets import dataset_items
from .items import ManifestError, WorkItem, bad_item, record_key
from .parquet import table_items
from .webdataset import shard_items

__all__ = ["ManifestError", "WorkItem", "bad_item", "expand_inputs", "record_key"]


def expand_inputs(inputs: Sequence[str], instruction: str | None = None, *, media_root: str | None = None,
                  columns: dict[str, str | None] | None = None) -> Iterator[WorkItem]:
    """Items from each input, lazily, in order. `columns` names the media, id and instruction columns
    of tables (`{"media": ..., "id": ..., "instruction": ...}`); `media_root` is where relative paths
    in conversation records start (default: the file's folder)."""
    columns = columns or {}
    root = Path(media_root).expanduser() if media_root else None
    for raw in inputs:
        if raw.startswith("hf:"):
            yield from dataset_items(raw, instruction, columns)
            continue
        for path in _expanded(raw):
            yield from _items_of(path, path != raw, instruction, root, columns)


def _expanded(raw: str) -> list[str]:
    """A glob's matches (sorted; none is no item), or the input itself."""
    if glob.has_magic(raw):
        return sorted(glob.glob(os.path.expanduser(raw), recursive=True))
    return [raw]


def _kind(p: Path) -> str:
    name = p.name.lower()
    if p.is_file() and (name.endswith(".tar") or name.endswith(".tar.gz") or name.endswith(".tgz")):
        return "shard"
    if p.is_file() and name.endswith(".parquet"):
        return "table"
    if p.is_file() and name.endswith(".jsonl"):
        return "manifest"
    if p.is_file() and name.endswith(".json"):
        return "conversations"
    return "paths"


def _items_of(path: str, matched: bool, instruction: str | None, root: Path | None,
              columns: dict[str, str | None]) -> Iterator[WorkItem]:
    p = Path(path).expanduser()
    kind = _kind(p)
    if kind == "shard":
        return shard_items(p, instruction)
    if kind == "table":
        return table_items(p, instruction, columns)
    if kind == "manifest":
        return manifest(p, instruction, root)
    if kind == "conversations":
        return conversation_file(p, instruction, root)
    return paths(path, instruction, matched)
