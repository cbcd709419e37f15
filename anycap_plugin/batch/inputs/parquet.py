"""Parquet tables: one item per row, read in record batches of about `BATCH_BYTES`. The media
column holds a path, the bytes, or the Hugging Face `Image`/`Audio`/`Video` struct `{bytes, path}`;
a null is that row's error. A row's place is its row number (`table:TABLE#row=N`): Parquet files do
not change, and an id column may repeat or hold nulls. A table in a bucket is read by row group
with range reads.

Columns: `media_column` (default: the first of image, media, video, audio, path, file that exists),
`id_column` (default: `id` if present), `instruction_column` (default: `instruction` if present).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ...errors import OptionsError
from ...storage import is_url, join, local_path, parent_of
from .base import InputFormat, ReadContext, Source, name_of
from .items import WorkItem, bad_item

MEDIA_COLUMNS = ("image", "media", "video", "audio", "path", "file")
# bytes of rows aimed at in one record batch: rows of image or clip bytes are held a batch at a time
BATCH_BYTES = 16 << 20
# pyarrow's own batch size: rows of paths still come this many at a time
MAX_BATCH_ROWS = 65_536


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise OptionsError("Reading Parquet needs pyarrow.", hint="pip install pyarrow") from None
    return pq


class Table(InputFormat):
    kind = "table"

    def claims(self, location: str, is_dir: bool) -> bool:
        return not is_dir and name_of(location).endswith(".parquet")

    def check(self, source: Source, ctx: ReadContext) -> None:
        table_columns(source, ctx)  # raises for a missing column

    def holds_something(self, source: Source, ctx: ReadContext) -> bool:
        return self.count(source, ctx) > 0

    def count(self, source: Source, ctx: ReadContext) -> int:
        with _parquet(source, ctx) as table:
            return table.metadata.num_rows

    def items(self, source: Source, ctx: ReadContext) -> Iterator[WorkItem]:
        return table_items(source, ctx)


class _parquet:
    """A `ParquetFile` over the storage layer (range reads from a bucket), closed with its file. A
    local table is read by pyarrow's own file, not a Python one: no lock held and no copy per read."""

    def __init__(self, source: Source, ctx: ReadContext) -> None:
        pq = _pyarrow_parquet()
        if is_url(source.location):
            self._file = ctx.storage.open(
                source.location, "rb", block_size=1 << 20, cache_type="none"
            )
        else:
            import pyarrow as pa

            self._file = pa.OSFile(str(local_path(source.location)), "r")
        try:
            self.table = pq.ParquetFile(self._file)
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> Any:
        return self.table

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def table_columns(source: Source, ctx: ReadContext) -> tuple[str, str | None, str | None] | None:
    """The media, id and instruction columns of a table, from its footer; None when the file is no
    Parquet (that is the table's item error when it is read)."""
    try:
        with _parquet(source, ctx) as table:
            names = table.schema_arrow.names
    except OSError:
        return None
    except Exception as e:
        if type(e).__name__ == "ArrowInvalid":
            return None
        raise
    return pick_columns(names, ctx.columns, source.location)


def table_items(source: Source, ctx: ReadContext) -> Iterator[WorkItem]:
    path, instruction, columns = source.location, ctx.instruction, ctx.columns
    try:
        opened = _parquet(source, ctx)
    except Exception as e:
        yield bad_item(
            path,
            f"Cannot read {path} as Parquet: {e}.",
            "Check the file.",
            instruction,
            place=f"table:{path}",
        )
        return
    with opened as table:
        names = table.schema_arrow.names
        media, id_col, instr_col = pick_columns(names, columns, path)
        batches = (
            b.to_pylist()
            for b in record_batches(table, [c for c in (media, id_col, instr_col) if c])
        )
        yield from rows_to_items(
            (row for batch in batches for row in batch),
            path,
            f"table:{path}",
            parent_of(path),
            media,
            id_col,
            instr_col,
            instruction,
        )


def record_batches(table: Any, columns: list[str], target: int | None = None) -> Iterator[Any]:
    """The table's rows in order, in record batches of about `target` bytes (`BATCH_BYTES`) and at
    least one row, not pyarrow's 65,536 rows (as many images at once). Rows per batch come from each
    row group's footer (the read columns' uncompressed size over its rows), or from the batches read
    so far where those hold more per row: a dictionary-encoded column's footer size is its
    dictionary's, not its rows'. A batch over twice the target is the last of its size: its row
    group is read again past the rows already given, in smaller batches."""
    target = target or BATCH_BYTES
    meta = table.metadata
    per_row = 0.0  # the most bytes per row seen so far
    for group in range(meta.num_row_groups):
        rg = meta.row_group(group)
        chunks = [rg.column(j) for j in range(rg.num_columns)]
        size = sum(
            c.total_uncompressed_size
            for c in chunks
            if any(c.path_in_schema == n or c.path_in_schema.startswith(n + ".") for n in columns)
        )
        per_row = max(per_row, size / max(rg.num_rows, 1))
        done = 0
        while done < rg.num_rows:
            rows = max(1, min(rg.num_rows, MAX_BATCH_ROWS, int(target // max(per_row, 1.0))))
            skip, too_large = done, False
            for batch in table.iter_batches(batch_size=rows, row_groups=[group], columns=columns):
                if skip:  # rows given before: read again, in the smaller batches, and passed over
                    batch, skip = batch.slice(skip), max(skip - batch.num_rows, 0)
                if batch.num_rows == 0:
                    continue
                per_row = max(per_row, batch.nbytes / batch.num_rows)
                done += batch.num_rows
                yield batch
                too_large = batch.nbytes > 2 * target and batch.num_rows > 1
                if too_large:
                    break
            if not too_large:
                break


def pick_columns(
    names: list[str], columns: dict[str, str | None], where: str
) -> tuple[str, str | None, str | None]:
    media = columns.get("media") or next((c for c in MEDIA_COLUMNS if c in names), None)
    if media is None or media not in names:
        raise OptionsError(
            f"{where} has no media column {media or ''} (columns: {', '.join(names)}).",
            hint="Name it with --media-column.",
        )
    id_col = columns.get("id") or ("id" if "id" in names else None)
    instr_col = columns.get("instruction") or ("instruction" if "instruction" in names else None)
    for given in (id_col, instr_col):
        if given is not None and given not in names:
            raise OptionsError(f"{where} has no column {given!r} (columns: {', '.join(names)}).")
    return media, id_col, instr_col


def rows_to_items(
    rows: Iterable[dict[str, Any]],
    source: str,
    place: str,
    root: str,
    media: str,
    id_col: str | None,
    instr_col: str | None,
    instruction: str | None,
) -> Iterator[WorkItem]:
    """Rows (dicts) to items, placed by row number; shared by Parquet and Hugging Face datasets."""
    for i, row in enumerate(rows):
        yield row_item(
            row,
            f"{source}#row={i}",
            root,
            media,
            id_col,
            instr_col,
            instruction,
            origin={"row": i},
            place=f"{place}#row={i}",
        )


def row_item(
    row: dict[str, Any],
    ref: str,
    root: str,
    media: str,
    id_col: str | None,
    instr_col: str | None,
    instruction: str | None,
    origin: dict[str, Any] | None,
    place: str,
) -> WorkItem:
    """One table row as an item: a path or URL (relative to `root`), bytes, or the `{bytes, path}` struct."""
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
        return WorkItem(join(root, value), text, id=item_id, origin=origin, place=place)
    return bad_item(
        ref,
        f"{ref} has no media in column {media!r} (found {type(value).__name__}).",
        "Fill or drop the row.",
        text,
        id=item_id,
        origin=origin,
        place=place,
    )
