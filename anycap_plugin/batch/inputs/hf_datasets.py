"""Hugging Face datasets (`hf:NAME`, `hf:NAME:SPLIT`), streamed: only what is captioned is read.
Media columns are read undecoded (`{bytes, path}`), so the original file bytes are captioned."""

from __future__ import annotations

import os
from collections.abc import Iterator

from ...errors import OptionsError
from .base import InputFormat, ReadContext, Source
from .items import WorkItem
from .parquet import pick_columns, rows_to_items


def is_dataset(raw: str) -> bool:
    """`hf:NAME[:SPLIT]` names a dataset; `hf://...` is a file in a Hub repository (a URL)."""
    return raw.startswith("hf:") and not raw.startswith("hf://")


class Dataset(InputFormat):
    kind = "dataset"

    def claims(self, location: str, is_dir: bool) -> bool:
        return is_dataset(location)

    def count(self, source: Source, ctx: ReadContext) -> int | None:
        return None

    def items(self, source: Source, ctx: ReadContext) -> Iterator[WorkItem]:
        return dataset_items(source.location, ctx.instruction, ctx.columns)


def dataset_items(
    spec: str, instruction: str | None, columns: dict[str, str | None]
) -> Iterator[WorkItem]:
    try:
        import datasets
    except ImportError:
        raise OptionsError(
            f"{spec} needs the `datasets` library.", hint="pip install datasets"
        ) from None
    name, _, split = spec[len("hf:") :].partition(":")
    try:
        ds = datasets.load_dataset(name, split=split or "train", streaming=True)
    except Exception as e:
        raise OptionsError(
            f"Cannot open the Hugging Face dataset {name!r}: {e}.",
            hint="Check the name and split (hf:NAME:SPLIT), and HF_HUB_OFFLINE for local copies.",
        ) from None
    names = list(ds.features or {})
    media, id_col, instr_col = pick_columns(names, columns, spec)
    feature = ds.features[media]
    if hasattr(feature, "decode"):  # Image / Audio / Video: the stored bytes, not decoded objects
        ds = ds.cast_column(media, type(feature)(decode=False))
    yield from rows_to_items(
        ds,
        spec,
        f"hf:{name}:{split or 'train'}",
        os.getcwd(),
        media,
        id_col,
        instr_col,
        instruction,
    )
