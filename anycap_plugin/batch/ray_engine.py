"""Captioning on Ray Data: the captioner (a whole chain, ACM included) lives in an actor pool, one
model load per actor, `batch_size` items per call, GPUs per actor when asked.

Two ways in:
- `run_on_ray(spec, inputs, output, ...)` behind `anycap caption --engine ray`: shards, tables
  and manifests are read on the cluster (`ray_read.read_sources`: the local engine's readers in
  Ray Data tasks), items already done are dropped there, and only records come back to the
  driver, each as its journal line, which it appends to the same resumable journal as the local
  engine (`loop.BatchRun`). The driver holds no media, so its memory does not grow with the
  number or the size of the media; media files it lists itself (as the local engine does) become
  item blocks there (paths, no media), with no read task to wait for.
- `caption_dataset(ds, "qwen2.5-vl:/m+acm:/acm", ...)` takes and returns a `ray.data.Dataset`, for
  pipelines already on Ray: the rows gain the record fields (`caption`, `error`, `key`, ...).

Records come back to the driver rather than each worker writing output shards: one journal keeps
the local engine's guarantees (whole lines, one record per input, a resume that never removes a
caption, Parquet and sidecars built from it), and records are small next to the media.

Failures are records with their error. An actor that dies has its batch retried by Ray; on a
retry the batch is captioned one item at a time, and an item whose captioning ended its worker
`ACTOR_RETRIES` times is recorded as failed (`WorkerCrashError`), so one poisonous item costs a
few restarts, not the run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import AnyCapError, ClusterUnreachableError, RayUnavailableError, WorkerCrashError
from .inputs import InputPlan, WorkItem, plan_inputs
from .journal import Journal
from .keys import identity
from .local import caption_records
from .loop import BatchRun, RunSummary
from .records import arrow_schema, failure_record, to_arrow_row

ACTOR_RETRIES = 3


# what a run needs on the cluster's workers, passed through Ray's runtime_env when joining a cluster
FORWARDED_ENV = (
    "OPENAI_",
    "AWS_",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_",
    "HF_",
    "HUGGING_FACE_",
    "ANYCAP_",
)


def connect(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Join the cluster at `address` (or start a local one on 127.0.0.1); fails fast with what to
    check. Joining a cluster passes the run's credentials and endpoints (`FORWARDED_ENV`) to its
    workers, so a cluster started without them works."""
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(
            "--engine ray needs Ray.", hint="pip install 'anycap-plugin[ray]'"
        ) from None
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {}
    if address in (None, "local"):
        kwargs["num_cpus"] = num_cpus
        _stay_on_loopback(ray)  # a private cluster: every process on 127.0.0.1
    else:
        kwargs["runtime_env"] = {"env_vars": forwarded_env()}
        if address != "auto":
            host = _reachable(address)  # ray.init would retry for 13 minutes (Ray 2.60)
            if _loopback(host):
                _stay_on_loopback(ray)
    try:
        ray.init(
            address=address or "local",
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
            logging_level="ERROR",  # type: ignore[arg-type]  # ray's stubs say int; names work
            **kwargs,
        )
    except Exception as e:
        raise ClusterUnreachableError(
            f"Cannot reach the Ray cluster at {address or 'local'}: {type(e).__name__}: {e}",
            hint="Check --ray-address (host:port of the head's GCS, or 'auto') and that "
            "`ray status` works there.",
        ) from None
    return ray


def forwarded_env() -> dict[str, str]:
    """The variables of this process a run's workers need (never printed: Ray keeps them in its job table)."""
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}


def _stay_on_loopback(ray: Any) -> None:
    """Ray rewrites a loopback address to this machine's interface address (`resolve_ip_for_localhost`),
    where a cluster bound to 127.0.0.1 does not listen, unless it runs as on a laptop: the switch it
    reads at each call (and, for the processes a local start spawns, from the environment)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray._private.ray_constants.ENABLE_RAY_CLUSTER = False


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _reachable(address: str, timeout: float = 5.0) -> str:
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return host or "127.0.0.1"
    except ValueError:
        raise ClusterUnreachableError(
            f"--ray-address {address!r} is not host:port.",
            hint="Give the head node's GCS address, e.g. 10.0.0.5:6379, or 'auto'.",
        ) from None
    except OSError as e:
        raise ClusterUnreachableError(
            f"Cannot reach the Ray cluster at {address}: {e}.",
            hint="Check the address and that the head node is up (`ray status` there).",
        ) from None


class _AttemptLedger:
    """How many times each batch or item has been started without finishing (a Ray actor)."""

    def __init__(self) -> None:
        self.starts: dict[str, int] = {}

    def start(self, name: str) -> int:
        self.starts[name] = self.starts.get(name, 0) + 1
        return self.starts[name]

    def forget(self, names: list[str]) -> None:
        for name in names:
            self.starts.pop(name, None)


_LEDGERS: dict[tuple[str, str], Any] = {}  # per (driver's node, job): one Ray session's


def _ledger() -> Any:
    """On the driver's node: a ledger on a node that is lost would fail every actor that asks it.
    One per driver session, kept for its later runs: an actor is a process to start, and what a
    finished run leaves in it (nothing, or the starts of a batch that crashed) is what the next run
    would count anyway (keys are content, not runs)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    context = ray.get_runtime_context()
    session = (context.get_node_id(), context.get_job_id())
    if session in _LEDGERS:
        try:  # alive (one round trip a run)
            ray.get(_LEDGERS[session].forget.remote([]), timeout=30)
        except Exception:
            del _LEDGERS[session]
    if session not in _LEDGERS:
        _LEDGERS.clear()  # an earlier session's actor went with it
        here = NodeAffinitySchedulingStrategy(session[0], soft=True)
        # ray's overloads list only some scheduling strategies; node affinity is one it takes
        _LEDGERS[session] = ray.remote(  # type: ignore[call-overload]
            num_cpus=0, scheduling_strategy=here
        )(_AttemptLedger).remote()
    return _LEDGERS[session]


class CaptionActor:
    """One captioner per actor process, built once; batches of rows in, records out (Arrow).

    `captioner` is a `wrapping.Chain` (shipped as a value), a spec (`model` or `model+post`), or
    any zero-argument function that builds a captioner.
    `columns` None: rows are items from `ray_read.read_sources`; else the media, id and instruction
    columns of a user's Dataset (`caption_dataset`), whose rows in `done` (ids or keys) are dropped."""

    def __init__(
        self,
        captioner: Any,
        options: dict[str, Any],
        columns: dict[str, str | None] | None,
        instruction: str | None,
        ledger: Any,
        cwd: str,
        done: frozenset[str] = frozenset(),
        store: Any = None,
    ) -> None:
        from .. import storage
        from .ray_read import work_in

        work_in(cwd)  # relative media paths mean what they meant on the driver
        if store is not None:
            storage.use(store)  # media named by URL are fetched with the run's storage options
        self.options, self.columns, self.instruction, self.ledger, self.done = (
            options,
            columns,
            instruction,
            ledger,
            done,
        )
        import ray

        self.node = ray.get_runtime_context().get_node_id()
        self.refused: AnyCapError | None = None
        try:
            self.captioner = captioner() if callable(captioner) else _from_spec(captioner)
        except AnyCapError as e:  # raised with the first batch: of an actor that dies building, Ray keeps a message only
            self.refused = e

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        if self.refused is not None and self.columns is not None:
            raise self.refused
        if self.columns is not None:  # a user's Dataset: rows gain the record's fields
            items = [
                i
                for i in map(self._dataset_item, batch.to_pylist())
                if i.key not in self.done and i.id not in self.done
            ]
            records = [
                {**to_arrow_row(r), "skipped": False, "aliases": None} for r in self._caption(items)
            ]
            return pa.Table.from_pylist(records, schema=_records_schema())
        if (
            self.refused is not None
        ):  # Ray Data passes on a UDF error's type only: the driver raises it again
            refusal = {
                "type": type(self.refused).__name__,
                "message": self.refused.message,
                "hint": self.refused.hint,
            }
            return pa.Table.from_pylist([{"refused": json.dumps(refusal)}], schema=_result_schema())
        return self._results(batch)

    def _results(self, batch: Any) -> Any:
        """`run_on_ray`'s items in; out, each item's record as its journal line (JSON, made once,
        here) beside the fields the driver takes it by, and markers of the items found done."""
        import pyarrow as pa

        from .ray_read import row_item

        todo: list[WorkItem] = []
        read_nodes: dict[str, str | None] = {}
        out: list[dict[str, Any]] = []
        for row in batch.to_pylist():
            item = row_item(row)
            if row["skipped"]:
                out.append(_result(item.key, row, skipped=True, aliases=row["aliases"]))
            else:
                todo.append(item)
                read_nodes[item.key] = row.get("read_node")
        aliases = {i.key: json.dumps(i.aliases) for i in todo if i.aliases}
        for record in self._caption(todo):
            key = record["key"]
            line = json.dumps(self._placed(record, read_nodes.get(key)), ensure_ascii=False)
            out.append(_result(key, record, line=line, aliases=aliases.get(key)))
        return pa.Table.from_pylist(out, schema=_result_schema())

    def _placed(self, record: dict[str, Any], read_node: str | None) -> dict[str, Any]:
        """A caption says which nodes read and captioned it (`meta.ray`), for a run on many nodes."""
        if record.get("error") is None:
            where = {"caption_node": self.node}
            if read_node:
                where["read_node"] = read_node
            record["meta"] = {**(record.get("meta") or {}), "ray": where}
        return record

    def _caption(self, items: list[WorkItem]) -> list[dict[str, Any]]:
        """The batch at once; after the batch's worker died, one item at a time, each item given up
        once its captioning has ended a worker `ACTOR_RETRIES` times."""
        import ray

        if not items:
            return []
        batch_id = "batch:" + hashlib.sha1("\n".join(i.key for i in items).encode()).hexdigest()
        if ray.get(self.ledger.start.remote(batch_id)) == 1:
            records = caption_records(self.captioner, items, self.options)
        else:
            records = []
            for item in items:
                if ray.get(self.ledger.start.remote(item.key)) > ACTOR_RETRIES:
                    records.append(
                        failure_record(
                            item,
                            WorkerCrashError(
                                f"Captioning {item.input!r} ended its Ray worker each of the {ACTOR_RETRIES} times it was "
                                "tried alone (a crash, or out of memory).",
                                hint="Check the item alone with the local engine; the rest of the run went on.",
                            ),
                        )
                    )
                else:
                    records += caption_records(self.captioner, [item], self.options)
                ray.get(self.ledger.forget.remote([item.key]))
        self.ledger.forget.remote([batch_id])
        return records

    def _dataset_item(self, row: dict[str, Any]) -> WorkItem:
        from .inputs.parquet import row_item as table_row_item

        columns = self.columns or {}
        media, id_col, instr_col = columns["media"], columns.get("id"), columns.get("instruction")
        assert media is not None  # caption_dataset's pick_columns always names one
        item_id = row.get(id_col) if id_col else None
        rest = json.dumps(
            {k: v for k, v in row.items() if k != media}, sort_keys=True, default=repr
        )
        digest = hashlib.sha1(rest.encode()).hexdigest()[:16]
        place = f"row:id={item_id}" if item_id is not None else f"row:sha1:{digest}"
        return table_row_item(
            row,
            f"ray:row-{digest}",
            os.getcwd(),
            media,
            id_col,
            instr_col,
            self.instruction,
            origin=None,
            place=place,
        )


def _result(
    key: str,
    fields: dict[str, Any],
    *,
    line: str | None = None,
    skipped: bool = False,
    aliases: str | None = None,
) -> dict[str, Any]:
    """One row of `RESULT_SCHEMA`: a record (`line`) or a marker of an item found done."""
    return {
        "key": key,
        "input": fields["input"],
        "id": fields["id"],
        "instruction": fields["instruction"],
        "line": line,
        "skipped": skipped,
        "aliases": aliases,
        "refused": None,
    }


@functools.cache
def _result_schema() -> Any:
    """What `run_on_ray`'s actors return: a record as its journal line (`line`) with its key and
    the fields its identity is made of, a marker of an item found done (`skipped`), or an actor's
    refusal to build its captioner (`refused`)."""
    import pyarrow as pa

    return pa.schema(
        [(c, pa.string()) for c in ("key", "input", "id", "instruction", "line")]
        + [("skipped", pa.bool_()), ("aliases", pa.string()), ("refused", pa.string())]
    )


def _records_schema() -> Any:
    """What `caption_dataset`'s actors return: the records' fields as columns."""
    import pyarrow as pa

    return (
        arrow_schema()
        .append(pa.field("skipped", pa.bool_()))
        .append(pa.field("refused", pa.string()))
        .append(pa.field("aliases", pa.string()))
    )


def _from_spec(spec: str) -> Any:
    from ..wrapping import Chain

    return Chain.parse(spec).build()


def caption_dataset(
    ds: Any,
    captioner: Any,
    *,
    media_column: str | None = None,
    id_column: str | None = None,
    instruction_column: str | None = None,
    instruction: str | None = None,
    batch_size: int = 8,
    concurrency: int | tuple[int, int] = 1,
    num_gpus: float = 0,
    num_cpus: float = 1,
    options: dict[str, Any] | None = None,
    done: Sequence[str] = (),
) -> Any:
    """Caption every row of a `ray.data.Dataset`; returns a Dataset of records, one per row whose
    id or key is not in `done`.

    The media column (default: the first of image, media, video, audio, path, file) holds a path,
    bytes, or the Hugging Face `{bytes, path}` struct."""
    from .inputs.parquet import pick_columns

    names = list(ds.schema().names)
    media, id_col, instr_col = pick_columns(
        names,
        {"media": media_column, "id": id_column, "instruction": instruction_column},
        "the dataset",
    )
    records = _map(
        ds,
        captioner,
        {"media": media, "id": id_col, "instruction": instr_col},
        instruction,
        batch_size,
        concurrency,
        num_gpus,
        num_cpus,
        options or {},
        frozenset(done),
    )
    return records.drop_columns(["skipped", "refused"])


def _map(
    ds: Any,
    captioner: Any,
    columns: dict[str, str | None] | None,
    instruction: str | None,
    batch_size: int,
    concurrency: int | tuple[int, int],
    num_gpus: float,
    num_cpus: float,
    options: dict[str, Any],
    done: frozenset[str] = frozenset(),
    store: Any = None,
) -> Any:
    """`num_cpus` per actor: below 1 for API captioners, which wait on the network, not the CPU."""
    import ray

    size: dict[str, Any] = (  # ActorPoolStrategy's size, or its min_size and max_size
        {"size": concurrency}
        if isinstance(concurrency, int)
        else dict(zip(("min_size", "max_size"), concurrency))
    )
    return ds.map_batches(
        CaptionActor,
        fn_constructor_kwargs={
            "captioner": captioner,
            "options": options,
            "columns": columns,
            "instruction": instruction,
            "ledger": _ledger(),
            "done": done,
            "cwd": os.getcwd(),
            "store": store,
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(**size),
        num_gpus=num_gpus or None,
        num_cpus=num_cpus,
    )


def run_on_ray(
    captioner: Any,
    inputs: Sequence[str] | InputPlan,
    output: str | Path,
    *,
    instruction: str | None = None,
    media_root: str | None = None,
    columns: dict[str, str | None] | None = None,
    batch_size: int = 8,
    concurrency: int | tuple[int, int] = 1,
    num_gpus: float = 0,
    num_cpus: float = 1,
    options: dict[str, Any] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    progress: bool | None = False,
) -> RunSummary:
    """The local engine's contract (same records, same journal, resume) with reading and captioning
    on Ray. `inputs`: what `anycap caption` takes (paths, folders, globs, shards, tables,
    manifests), or an `InputPlan`."""
    import ray

    plan = (
        inputs
        if isinstance(inputs, InputPlan)
        else plan_inputs(inputs, instruction, media_root=media_root, columns=columns)
    )
    datasets = [s.location for s in plan.sources if s.kind == "dataset"]
    if datasets:
        from ..errors import OptionsError

        raise OptionsError(
            f"{', '.join(datasets)}: Hugging Face datasets run on the local engine.",
            hint="Drop --engine ray, or read it with ray.data.from_huggingface and call "
            "anycap_plugin.batch.ray_engine.caption_dataset.",
        )
    _quiet_ray_data()
    with BatchRun(output, on_record=on_record, progress=progress, total=plan.count) as batch:
        from .ray_read import ROWS_PER_BLOCK, media_blocks, read_sources, source_rows

        rows, media = source_rows(plan)
        here = ray.get_runtime_context().get_node_id()
        rows_per_block = max(ROWS_PER_BLOCK, 4 * batch_size)  # a few model batches
        for attempt in range(1, PIPELINE_ATTEMPTS + 1) if rows or media else ():
            parts = []
            blocks = media_blocks(
                media,
                partial(_finished, batch, attempt == 1),
                here,
                rows_per_block,
            )
            if blocks:  # items made here, as a listing has no media to read
                # from_blocks: as made, their metadata taken here (from_arrow waits for a task)
                parts.append(ray.data.from_blocks(blocks))
            if rows:  # shards, tables and manifests: read on the cluster, their media never here
                reads = max(1, min(len(rows), int(ray.cluster_resources().get("CPU", 1))))
                done = ray.put(
                    _done_sets(batch.journal, batch.taken)
                )  # again: what this run recorded is done too
                parts.append(
                    ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
                        # ray's types want a one-argument function; fn_kwargs gives the rest
                        read_sources,  # type: ignore[arg-type]
                        batch_size=1,
                        batch_format="pyarrow",
                        fn_kwargs={
                            "context": plan.context,
                            "done": done,
                            "cwd": os.getcwd(),
                            "rows_per_block": rows_per_block,
                        },
                        # reads wait on disks, and must not wait for the CPUs the actors hold
                        num_cpus=0,
                        compute=ray.data.TaskPoolStrategy(size=reads),
                    )
                )
            if not parts:
                break
            items = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
            records = _map(
                items,
                captioner,
                None,
                None,
                batch_size,
                concurrency,
                num_gpus,
                num_cpus,
                options or {},
                store=plan.context.storage,
            )
            try:
                for block in records.iter_batches(batch_size=None, batch_format="pyarrow"):
                    _arrived(batch, block.to_pylist(), again=attempt > 1)
                break
            except Exception as e:
                if attempt == PIPELINE_ATTEMPTS or not _lost_to_the_cluster(e):
                    raise _plain(e) from None
                _say(
                    f"anycap: the cluster lost work ({_cause_name(e)}); going on from the {len(batch.taken)} "
                    "items recorded (none is captioned twice)"
                )
    return batch.summary


def _finished(batch: BatchRun, first: bool, item: WorkItem) -> bool:
    """Whether a media file listed by the driver is not to be sent: done before this run
    (counted as skipped, on the `first` attempt only), or recorded by it."""
    if batch.journal.is_done(item.key, item.identity, item.aliases):
        if first:
            batch.take(item.key, item.identity, item.id, item.aliases)
        return True
    return item.key in batch.taken


def _quiet_ray_data() -> None:
    """Our progress bar and our messages on the terminal; Ray Data's own go to its log files only."""
    import logging

    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    for handler in logging.getLogger("ray.data").handlers:
        if handler.get_name() == "console":
            handler.setLevel(logging.ERROR)


def _done_sets(
    journal: Journal, taken: AbstractSet[str] = frozenset()
) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(journal.done | taken), frozenset(journal.done_before_keys)


# Ray's errors of a cluster that lost a node, a worker or an object (not of our code or its input)
_LOST = {
    "ObjectLostError",
    "ObjectReconstructionFailedError",
    "ObjectReconstructionFailedMaxAttemptsExceededError",
    "ObjectReconstructionFailedLineageEvictedError",
    "OwnerDiedError",
    "ObjectFetchTimedOutError",
    "ActorDiedError",
    "ActorUnavailableError",
    "NodeDiedError",
    "WorkerCrashedError",
    "RaySystemError",
    "ReferenceCountingAssertionError",
    "OutOfDiskError",
    "LocalRayletDiedError",
}
PIPELINE_ATTEMPTS = (
    4  # the pipeline is started again after a loss Ray could not repair, from what is recorded
)


def _lost_to_the_cluster(error: BaseException) -> bool:
    """Whether the pipeline failed because the cluster lost something (a node, an object), so that
    running it again from the recorded items goes on; an error of ours (a refusal) is not."""
    seen: BaseException | None = error
    depth = 0
    while seen is not None and depth < 10:
        if isinstance(seen, AnyCapError) or isinstance(getattr(seen, "cause", None), AnyCapError):
            return False
        if type(seen).__name__ in _LOST or any(name in str(seen) for name in _LOST):
            return True
        cause = getattr(seen, "cause", None)
        seen = cause if isinstance(cause, BaseException) else seen.__cause__ or seen.__context__
        depth += 1
    return False


def _cause_name(error: BaseException) -> str:
    text = str(error)
    return next((name for name in sorted(_LOST) if name in text), type(error).__name__)


def _say(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


def _arrived(batch: BatchRun, rows: list[dict[str, Any]], again: bool = False) -> None:
    """Records (and markers of items found done on the cluster) into the journal, once per key.
    `again`: the pipeline was started again; what this run already recorded comes back as markers."""
    fresh = []
    for row in rows:
        if row["refused"]:
            raise _refusal(json.loads(row["refused"]))
        key, skipped = row["key"], row["skipped"]
        if again and skipped and key in batch.taken:
            continue  # counted when it was recorded
        aliases = tuple(json.loads(row["aliases"])) if row["aliases"] else ()
        taken = batch.take(
            key, identity(row["input"], row["instruction"], row["id"]), row["id"], aliases
        )
        if taken and not skipped:
            fresh.append(json.loads(row["line"]))
    batch.write(fresh)


def _refusal(refused: dict[str, Any]) -> AnyCapError:
    """The error an actor raised building its captioner, as the driver would have raised it."""
    kinds = [AnyCapError]
    for kind in kinds:  # the whole tree of AnyCap errors loaded in this process
        kinds += kind.__subclasses__()
    kind = next((k for k in kinds if k.__name__ == refused["type"]), AnyCapError)
    error = Exception.__new__(kind)
    AnyCapError.__init__(error, refused["message"], hint=refused["hint"])
    return error


def _plain(error: Exception) -> Exception:
    """The AnyCap error behind a Ray error (an actor that could not build its captioner), without
    Ray's remote traceback; else Ray's error, in one line."""
    seen: BaseException | None = error
    while seen is not None:
        cause = getattr(
            seen, "cause", None
        )  # a RayTaskError's cause: the exception raised on the worker
        if isinstance(cause, AnyCapError):
            return cause
        if isinstance(seen, AnyCapError) and cause is None:
            return seen
        seen = cause if isinstance(cause, BaseException) else seen.__cause__
    return RayUnavailableError(
        f"The Ray run failed: {type(error).__name__}: {str(error).splitlines()[0]}",
        hint="Records written so far are kept; run the same command again to resume.",
    )
