"""Parquet tables: one item per row, read in record batches. The media column holds a path, the
bytes, or the Hugging Face `Image`/`Audio`/`Video` struct `{bytes, path}`; a null is that row's error.
A row's place is its row number (`table:TABLE#row=N`): Parquet files do not change, and an id
column may repeat or hold nulls.

Columns: `media_column` (default: the first of image, media, video, audio, path, file that exists),
`id_column` (default: `id` if present), `instruction_column` (default: `instruction` if present).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from ...errors import OptionsError
from .items import WorkItem, bad_item

MEDIA_COLUMNS = ("image", "media", "video", "audio", "path", "file")


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise OptionsError("Reading Parquet needs pyarrow.", hint="pip install pyarrow") from None
    return pq


def table_columns(path: Path, columns: dict[str, str | None]) -> tuple[str, str | None, str | None] | None:
    """The media, id and instruction columns of a table, from its footer; None when the file is no
    Parquet (that is the table's item error when it is read)."""
    try:
        names = _pyarrow_parquet().ParquetFile(path).schema_arrow.names
    except OSError:
        return None
    except Exception as e:
        if type(e).__name__ == "ArrowInvalid":
            return None
        raise
    return pick_columns(names, columns, str(path))


def table_rows(path: Path) -> int:
    return _pyarrow_parquet().ParquetFile(path).metadata.num_rows


def table_items(path: Path, instruction: str | None, columns: dict[str, str | None]) -> Iterator[WorkItem]:
    pq = _pyarrow_parquet()
    try:
        table = pq.ParquetFile(path)
    except Exception as e:
        yield bad_item(str(path), f"Cannot read {path} as Parquet: {e}.", "Check the file.", instruction,
                       place=f"table:{path}")
        return
    names = table.schema_arrow.names
    media, id_col, instr_col = pick_columns(names, columns, str(path))
    batches = (batch.to_pylist() for batch in table.iter_batches(columns=[c for c in (media, id_col, instr_col) if c]))
    yield from rows_to_items((row for batch in batches for row in batch), str(path), f"table:{path}", path.parent,
                             media, id_col, instr_col, instruction)


def pick_columns(names: list[str], columns: dict[str, str | None], where: str) -> tuple[str, str | None, str | None]:
    media = columns.get("media") or next((c for c in MEDIA_COLUMNS if c in names), None)
    if media is None or media not in names:
        raise OptionsError(f"{where} has no media column {media or ''} (columns: {', '.join(names)}).",
                           hint="Name it with --media-column.")
    id_col = columns.get("id") or ("id" if "id" in names else None)
    instr_col = columns.get("instruction") or ("instruction" if "instruction" in names else None)
    for given in (id_col, instr_col):
        if given is not None and given not in names:
            raise OptionsError(f"{where} has no column {given!r} (columns: {', '.join(names)}).")
    return media, id_col, instr_col


def rows_to_items(rows: Iterable[dict[str, Any]], source: str, place: str, root: Path, media: str,
                  id_col: str | None, instr_col: str | None, instruction: str | None) -> Iterator[WorkItem]:
    """Rows (dicts) to items, placed by row number; shared by Parquet and Hugging Face datasets."""
    for i, row in enumerate(rows):
        yield row_item(row, f"{source}#row={i}", root, media, id_col, instr_col, instruction, origin={"row": i},
                       place=f"{place}#row={i}")


def row_item(row: dict[str, Any], ref: str, root: Path, media: str, id_col: str | None, instr_col: str | None,
             instruction: str | None, origin: dict[str, Any] | None, place: str) -> WorkItem:
    """One table row as an item: a path (relative to `root`), bytes, or the `{bytes, path}` struct."""
    item_id = row.get(id_col) if id_col else None
    item_id = None if item_id is None else str(item_id)
    text = row.get(instr_col) if instr_col else None
    text = text if isinstance(text, str) and text else instruction
    value = row.get(media)
    if isinstance(value, dict):  # the HF Image/Audio/Video struct
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray)) and value:
        return WorkItem(ref, text, id=item_id, data=bytes(value), origin=origin, place=place)
    if isinstance(value, str) and value:
        p = Path(value).expanduser()
        return WorkItem(str(p if p.is_absolute() else root / p), text, id=item_id, origin=origin, place=place)
    return bad_item(ref, f"{ref} has no media in column {media!r} (found {type(value).__name__}).",
                    "Fill or drop the row.", text, id=item_id, origin=origin, place=place)
