"""Hugging Face datasets (`hf:NAME`, `hf:NAME:SPLIT`), streamed: only what is captioned is read.
Media columns are read undecoded (`{bytes, path}`), so the original file bytes are captioned."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...errors import OptionsError
from .items import WorkItem
from .parquet import pick_columns, rows_to_items


def dataset_items(spec: str, instruction: str | None, columns: dict[str, str | None]) -> Iterator[WorkItem]:
    try:
        import datasets
    except ImportError:
        raise OptionsError(f"{spec} needs the `datasets` library.", hint="pip install datasets") from None
    name, _, split = spec[len("hf:"):].partition(":")
    try:
        ds = datasets.load_dataset(name, split=split or "train", streaming=True)
    except Exception as e:
        raise OptionsError(f"Cannot open the Hugging Face dataset {name!r}: {e}.",
                           hint="Check the name and split (hf:NAME:SPLIT), and HF_HUB_OFFLINE for local copies.") from None
    names = list(ds.features or {})
    media, id_col, instr_col = pick_columns(names, columns, spec)
    feature = ds.features[media]
    if hasattr(feature, "decode"):  # Image / Audio / Video: the stored bytes, not decoded objects
        ds = ds.cast_column(media, type(feature)(decode=False))
    yield from rows_to_items(ds, spec, f"hf:{name}:{split or 'train'}", Path.cwd(), media, id_col, instr_col,
                             instruction)
