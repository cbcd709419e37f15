"""Reading on the cluster: an `InputPlan`'s sources as Ray Data read tasks.

The driver turns the plan into a small table of sources (text: a shard, a table or a manifest per
row) and Ray Data tasks read them with the readers
the local engine uses (`inputs.read_source`, through the same storage layer: a bucket is read on
whichever node the task runs), so both engines see the same items, the same keys and the same bad
records. Ray's `read_webdataset` fails the whole dataset on a truncated shard or on a
`__key__` that comes back later in a shard, `read_json` on one broken line, and neither says where
an item was (line, place), which keys need; hence these tasks. Items already finished are dropped
in the read task, so their media never leave it; the driver only ever sees records. Media files
named or listed from folders and prefixes are listed by the driver, as the local engine lists
them, and made into item blocks there (`media_blocks`: paths, a few model batches to a block).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import ray

from .. import storage
from ..errors import ManifestError
from .inputs import InputPlan, ReadContext, Source, WorkItem, read_source

ITEM_SCHEMA = pa.schema(
    [
        ("place", pa.string()),
        ("input", pa.string()),
        ("instruction", pa.string()),
        ("id", pa.string()),
        ("data", pa.binary()),
        ("origin", pa.string()),
        ("problem", pa.string()),
        ("skipped", pa.bool_()),
        ("aliases", pa.string()),
        ("read_node", pa.string()),
    ]
)
ROWS_PER_BLOCK = (
    16  # at least; records come back to the driver a block at a time, so blocks stay small
)
_BYTES_PER_BLOCK = 64 << 20
_done_sets: dict[
    str, tuple[frozenset[str], frozenset[str]]
] = {}  # per worker process, by object ref


def source_rows(plan: InputPlan) -> tuple[list[dict[str, Any]], list[WorkItem]]:
    """The plan split for the cluster: the sources its read tasks read (a shard, a table or a
    manifest per row, `read_sources`), and the media files, named or listed from folders and
    prefixes here as items by the local engine's own readers, which `media_blocks` puts in blocks
    here: a listing holds no media, and reading it again in a task would only wait for
    a worker process to start (Ray starts actors' processes first)."""
    rows: list[dict[str, Any]] = []
    media: list[WorkItem] = []
    for source in plan.sources:
        if source.kind not in ("media", "folder"):
            rows.append(
                {"kind": source.kind, "paths": [source.location], "spelled": [source.spelled]}
            )
            continue
        media += read_source(source, plan.context)
    return rows, media


def media_blocks(
    media: list[WorkItem],
    skip: Callable[[WorkItem], bool],
    node: str,
    rows_per_block: int = ROWS_PER_BLOCK,
) -> list[pa.Table]:
    """The media files' items (`ITEM_SCHEMA`) that `skip` keeps, `rows_per_block` to a block: a
    block is what one actor works through, so there are enough of them for every actor."""
    blocks: list[pa.Table] = []
    rows: list[dict[str, Any]] = []
    for item in media:
        if skip(item):
            continue
        rows.append({**item_row(item), "read_node": node})
        if len(rows) == rows_per_block:
            blocks.append(pa.Table.from_pylist(rows, schema=ITEM_SCHEMA))
            rows = []
    if rows:
        blocks.append(pa.Table.from_pylist(rows, schema=ITEM_SCHEMA))
    return blocks


def read_sources(
    batch: pa.Table,
    *,
    context: ReadContext,
    done: Any,
    cwd: str,
    rows_per_block: int = ROWS_PER_BLOCK,
) -> Iterator[pa.Table]:
    """A Ray Data task: the items of each source row, in blocks; finished items become markers.
    A block is what an actor's task works through before its records reach the driver (and what a
    lost node costs), so it holds a few model batches, not a whole shard."""
    work_in(cwd)
    storage.use(context.storage)
    keys, identities = _done(done)
    node = ray.get_runtime_context().get_node_id()
    rows: list[dict[str, Any]] = []
    size = 0
    for source in batch.to_pylist():
        for item in _items(source, context):
            finished = (
                item.key in keys
                or item.identity in identities
                or any(a in keys for a in item.aliases)
            )
            rows.append({**item_row(item, skipped=finished), "read_node": node})
            size += 0 if finished or item.data is None else len(item.data)
            if len(rows) >= rows_per_block or size >= _BYTES_PER_BLOCK:
                yield pa.Table.from_pylist(rows, schema=ITEM_SCHEMA)
                rows, size = [], 0
    if rows:
        yield pa.Table.from_pylist(rows, schema=ITEM_SCHEMA)


def _items(source: dict[str, Any], context: ReadContext) -> Iterator[WorkItem]:
    return read_source(Source(source["paths"][0], source["kind"], source["spelled"][0]), context)


def work_in(cwd: str) -> None:
    """Run where the driver runs, so relative paths mean what they meant there. Ray workers keep
    the directory `ray.init` ran in; on other nodes this is the same path on a shared filesystem."""
    if os.getcwd() != cwd and os.path.isdir(cwd):
        os.chdir(cwd)


def item_row(item: WorkItem, skipped: bool = False) -> dict[str, Any]:
    problem = (
        None
        if item.problem is None
        else json.dumps({"message": item.problem.message, "hint": item.problem.hint})
    )
    return {
        "place": item.place,
        "input": item.input,
        "instruction": item.instruction,
        "id": item.id,
        "data": None if skipped else item.data,
        "origin": json.dumps(item.origin) if item.origin else None,
        "problem": problem,
        "skipped": skipped,
        "aliases": json.dumps(item.aliases) if item.aliases else None,
    }


def row_item(row: dict[str, Any]) -> WorkItem:
    problem = json.loads(row["problem"]) if row["problem"] else None
    return WorkItem(
        row["input"],
        row["instruction"],
        id=row["id"],
        data=row["data"],
        place=row["place"],
        origin=json.loads(row["origin"]) if row["origin"] else None,
        problem=ManifestError(problem["message"], hint=problem["hint"]) if problem else None,
        aliases=tuple(json.loads(row["aliases"])) if row.get("aliases") else (),
    )


def _done(ref: Any) -> tuple[frozenset[str], frozenset[str]]:
    """The journal's finished keys and identities, fetched once per worker process."""
    if ref is None:
        return frozenset(), frozenset()
    name = ref.hex()
    if name not in _done_sets:
        _done_sets.clear()
        _done_sets[name] = ray.get(ref)
    return _done_sets[name]
