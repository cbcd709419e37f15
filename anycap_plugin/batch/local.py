"""The local engine: items in, one record per input out, on the resumable loop (`loop.BatchRun`).

Batches go to the captioner's `caption_each`, so one bad item is its own record and the rest go
on. With `concurrency=1` (a local model) the next batch is opened while the model works on this
one; with more, several batches are in flight at once (API captioners).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from typing import Any

from .. import storage
from ..captioner import BaseCaptioner, validate_options
from ..errors import AnyCapError, MediaError, MediaNotFoundError
from ..media import Media
from ..storage import is_url
from .inputs import WorkItem
from .loop import BatchRun, RunSummary
from .records import failure_record, success_record

__all__ = ["caption_records", "media_of", "run"]


def media_of(item: WorkItem) -> Any:
    """What `caption_each` takes for an item: its path, its bytes as `Media` (an object in a store is
    fetched whole), or why it cannot be read."""
    if item.problem is not None:
        return item.problem
    data = item.data
    if data is None and not is_url(item.input):
        return item.input
    if data is None:
        store = storage.current()
        try:
            data = store.read_bytes(item.input)
        except FileNotFoundError:
            return MediaNotFoundError(
                f"No such object: {item.input!r}.", hint="Check the manifest or table."
            )
        except Exception as e:
            return MediaError(
                f"Cannot read {item.input}: {store.describe(item.input, e)}.",
                hint="Check the credentials and the endpoint of the store.",
            )
    try:
        return Media.from_bytes(data, name=item.input)
    except AnyCapError as e:
        return e


def loaded_media(item: WorkItem, decode: bool) -> Any:
    """`media_of`, opened now (and images decoded, when `decode`): what the runner prepares for the
    next batch while the model works on this one. An error is that item's outcome, as it would be later."""
    media = media_of(item)
    if isinstance(media, Exception):
        return media
    try:
        media = Media.load(media)
        if decode and media.modality == "image":
            media.image()
        return media
    except Exception as e:
        return e


def _decodes_images(media: list[Any]) -> bool:
    """Whether the captioner decoded this batch's images (API captioners send the file as it is)."""
    return any(isinstance(m, Media) and m.modality == "image" and m.decoded for m in media)


def caption_records(
    captioner: BaseCaptioner,
    batch: list[WorkItem],
    options: dict[str, Any],
    media: list[Any] | None = None,
) -> list[dict[str, Any]]:
    """Caption one batch into records; each failure is its own item's record (`caption_each`).
    `media`: the batch's media already loaded (`loaded_media`), else they are loaded by the captioner."""
    outcomes = captioner.caption_each(
        media if media is not None else [media_of(item) for item in batch],
        [item.instruction for item in batch],
        **options,
    )
    return [
        failure_record(item, o) if isinstance(o, Exception) else success_record(item, o)
        for item, o in zip(batch, outcomes)
    ]


def run(
    captioner: BaseCaptioner,
    items: Iterable[WorkItem],
    output: str | os.PathLike,
    *,
    batch_size: int = 1,
    concurrency: int = 1,
    options: dict[str, Any] | None = None,
    progress: bool | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    prefetch: bool = True,
    total: Callable[[], int | None] | None = None,
) -> RunSummary:
    """Caption `items` into `output` (JSONL), skipping those a previous run finished.

    With `concurrency=1` (a local model), `prefetch` opens the next batch in a thread while the
    model captions this one, and decodes its images once the captioner was seen decoding images
    (decoders and torch release the GIL). With more, the batches already overlap each other.
    `total` counts the inputs for the progress bar (`InputPlan.count`)."""
    if batch_size < 1 or concurrency < 1:
        raise ValueError("batch_size and concurrency must be at least 1")
    options = options or {}
    validate_options(captioner.Options, captioner.id, options)  # bad options fail before any work
    if total is None and isinstance(items, list):
        count = len(items)
        total = lambda: count
    with BatchRun(output, on_record=on_record, progress=progress, total=total) as batch:
        batches = _batched(batch.pending(items), batch_size)
        if concurrency == 1 and prefetch:
            with ThreadPoolExecutor(1, thread_name_prefix="anycap-prefetch") as loader:
                decode = False
                ahead = loader.submit(_load_next, batches, decode)
                while (ready := ahead.result()) is not None:
                    ahead = loader.submit(_load_next, batches, decode)
                    chunk, media = ready
                    batch.write(caption_records(captioner, chunk, options, media))
                    decode = decode or _decodes_images(media)
        elif concurrency == 1:
            for chunk in batches:
                batch.write(caption_records(captioner, chunk, options))
        else:
            with ThreadPoolExecutor(concurrency, thread_name_prefix="anycap") as pool:
                in_flight: set[Future[list[dict[str, Any]]]] = set()
                try:
                    for chunk in batches:
                        if len(in_flight) >= 2 * concurrency:
                            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                            for fut in finished:
                                batch.write(fut.result())
                        in_flight.add(pool.submit(caption_records, captioner, chunk, options))
                    for fut in as_completed(in_flight):
                        batch.write(fut.result())
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    return batch.summary


def _load_next(
    batches: Iterator[list[WorkItem]], decode: bool
) -> tuple[list[WorkItem], list[Any]] | None:
    """The next batch and its loaded media (the input stream is read in the loader thread too)."""
    batch = next(batches, None)
    return None if batch is None else (batch, [loaded_media(item, decode) for item in batch])


def _batched(items: Iterator[WorkItem], size: int) -> Iterator[list[WorkItem]]:
    while batch := list(itertools.islice(items, size)):
        yield batch
