"""Captioning on Ray Data: the captioner (a whole chain, ACM included) lives in an actor pool, one
model load per actor, `batch_size` items per call, GPUs per actor when asked.

Two ways in:
- `caption_dataset(ds, "qwen2.5-vl:/m+acm:/acm", ...)` takes and returns a `ray.data.Dataset`, for
  pipelines already on Ray (`ray.data.read_parquet`, `read_webdataset`, `read_images`...): the
  rows gain the record fields of the local runner (`caption`, `error`, `key`, ...).
- `run_on_ray(...)` behind `anycap caption --engine ray`: the same items as the local runner,
  the results streamed back into the same resumable JSONL journal.

Failures are rows with their error. An actor that dies has its batch retried on another one
(`max_restarts`/`max_task_retries`, bounded so an item that kills every actor cannot loop forever).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import AnyCapError
from .inputs import WorkItem
from .outputs import NESTED, flat_record, record_schema
from .runner import OutputLog, RunSummary, caption_records, failure_record

ACTOR_RETRIES = 3


class RayUnavailableError(AnyCapError):
    """Ray is not installed, or the cluster cannot be reached."""


def connect(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Join the cluster at `address` (or start a local one); fails fast with what to check."""
    try:
        import ray
    except ImportError:
        raise RayUnavailableError("--engine ray needs Ray.", hint="pip install 'anycap-plugin[ray]'") from None
    if ray.is_initialized():
        return ray
    if address not in (None, "auto", "local"):
        _reachable(address)  # ray.init would retry for minutes
    try:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True)
    except Exception as e:
        raise RayUnavailableError(f"Cannot reach the Ray cluster at {address or 'local'}: {type(e).__name__}: {e}",
                                  hint="Check --ray-address (host:port of the head's GCS, or 'auto') and that "
                                       "`ray status` works there.") from None
    return ray


def _reachable(address: str, timeout: float = 5.0) -> None:
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return
    except ValueError:
        raise RayUnavailableError(f"--ray-address {address!r} is not host:port.",
                                  hint="Give the head node's GCS address, e.g. 10.0.0.5:6379, or 'auto'.") from None
    except OSError as e:
        raise RayUnavailableError(f"Cannot reach the Ray cluster at {address}: {e}.",
                                  hint="Check the address and that the head node is up (`ray status` there).") from None


class CaptionActor:
    """One captioner per actor process, built once; batches of rows in, records out (Arrow).
    `captioner` is a spec (`model` or `model+post`) or a zero-argument function that builds one."""

    def __init__(self, captioner: Any, options: dict[str, Any], columns: dict[str, str | None] | None,
                 instruction: str | None, done: frozenset[str]) -> None:
        self.captioner = captioner() if callable(captioner) else _from_spec(captioner)
        self.options, self.columns, self.instruction, self.done = options, columns, instruction, done

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        items = [self._item(row) for row in batch.to_pylist()]
        items = [i for i in items if i.key not in self.done]
        records = caption_records(self.captioner, items, self.options) if items else []
        return pa.Table.from_pylist([flat_record(r) for r in records], schema=record_schema())

    def _item(self, row: dict[str, Any]) -> WorkItem:
        if self.columns is None:  # rows made by run_on_ray from WorkItems
            return WorkItem(row["input"], row["instruction"], id=row["id"], data=row["data"],
                            origin=json.loads(row["origin"]) if row["origin"] else None)
        from .inputs.parquet import row_item

        media, id_col, instr_col = self.columns["media"], self.columns.get("id"), self.columns.get("instruction")
        return row_item(row, _row_ref(row, media), Path.cwd(), media, id_col, instr_col, self.instruction, origin=None)


def _row_ref(row: dict[str, Any], media: str) -> str:
    """A name for a row of a Dataset (which has no stable row number): the hash of its other columns,
    so rows whose media is missing do not share one key."""
    import hashlib

    rest = json.dumps({k: v for k, v in row.items() if k != media}, sort_keys=True, default=repr)
    return "ray:row-" + hashlib.sha1(rest.encode()).hexdigest()[:16]


def _from_spec(spec: str) -> Any:
    from .plugins import get_captioner

    return get_captioner(spec)


def caption_dataset(ds: Any, captioner: Any, *, media_column: str | None = None, id_column: str | None = None,
                    instruction_column: str | None = None, instruction: str | None = None, batch_size: int = 8,
                    concurrency: int | tuple[int, int] = 1, num_gpus: float = 0, num_cpus: float = 1,
                    options: dict[str, Any] | None = None, done: Iterable[str] = ()) -> Any:
    """Caption every row of a `ray.data.Dataset`; returns a Dataset of records (one per row not in `done`).

    The media column (default: the first of image, media, video, audio, path, file) holds a path,
    bytes, or the Hugging Face `{bytes, path}` struct."""
    from .inputs.parquet import pick_columns

    names = list(ds.schema().names)
    media, id_col, instr_col = pick_columns(names, {"media": media_column, "id": id_column,
                                                    "instruction": instruction_column}, "the dataset")
    return _map(ds, captioner, {"media": media, "id": id_col, "instruction": instr_col}, instruction,
                batch_size, concurrency, num_gpus, num_cpus, options or {}, frozenset(done))


def _map(ds: Any, captioner: Any, columns: dict[str, str | None] | None, instruction: str | None, batch_size: int,
         concurrency: int | tuple[int, int], num_gpus: float, num_cpus: float, options: dict[str, Any],
         done: frozenset[str]) -> Any:
    """`num_cpus` per actor: below 1 for API captioners, which wait on the network, not the CPU."""
    return ds.map_batches(
        CaptionActor, fn_constructor_kwargs={"captioner": captioner, "options": options, "columns": columns,
                                             "instruction": instruction, "done": done},
        batch_size=batch_size, batch_format="pyarrow", concurrency=concurrency,
        num_gpus=num_gpus or None, num_cpus=num_cpus, max_restarts=ACTOR_RETRIES, max_task_retries=ACTOR_RETRIES)


def run_on_ray(captioner: Any, items: Iterable[WorkItem], output: str | Path, *, batch_size: int = 8,
               concurrency: int | tuple[int, int] = 1, num_gpus: float = 0, num_cpus: float = 1,
               options: dict[str, Any] | None = None,
               on_record: Callable[[dict[str, Any]], None] | None = None) -> RunSummary:
    """The local runner's contract (same records, same journal, resume) with the work on Ray."""
    import ray

    started = time.perf_counter()
    log = OutputLog(Path(output))
    summary = RunSummary()

    def record(row: dict[str, Any]) -> None:
        log.write(row)
        summary.count(row)
        if on_record is not None:
            on_record(row)

    rows = []
    try:
        for item in items:
            summary.total += 1
            if item.key in log.done:
                summary.skipped += 1
            elif item.problem is not None:  # unreadable records need no actor
                record(failure_record(item, item.problem))
            else:
                rows.append({"input": item.input, "instruction": item.instruction, "id": item.id, "data": item.data,
                             "origin": json.dumps(item.origin) if item.origin else None})
        if rows:
            ray.data.DataContext.get_current().enable_progress_bars = False
            blocks = min(max(-(-len(rows) // batch_size), 1), 200)  # a block per batch, up to 200
            ds = ray.data.from_items(rows, override_num_blocks=blocks)
            results = _map(ds, captioner, None, None, batch_size, concurrency, num_gpus, num_cpus, options or {},
                           frozenset())
            for batch in results.iter_batches(batch_size=None, batch_format="pyarrow"):
                for flat in batch.to_pylist():
                    record(_unflat(flat))
    finally:
        log.close()
        summary.seconds = time.perf_counter() - started
    return summary


def _unflat(flat: dict[str, Any]) -> dict[str, Any]:
    """A record exactly as the local runner writes it, from its Arrow row (nested fields are JSON text)."""
    nested = {k: json.loads(flat[k]) if flat[k] is not None else None for k in NESTED}
    record = {k: flat[k] for k in ("key", "input", "id", "instruction")}
    record.update({k: flat[k] for k in ("shard", "__key__", "row") if flat.get(k) is not None})
    record.update(caption=flat["caption"], error=nested["error"])
    if nested["error"] is None:
        record.update({k: flat[k] for k in ("media", "modality")})
        record.update({k: nested[k] for k in ("models", "timings", "usage", "meta")}, base_caption=flat["base_caption"])
    return record
