"""Dynamic batching: concurrent requests gathered into one model call.

The first waiting request opens a window of `window` seconds; requests arriving in it (or
already queued while the model was busy) join, up to `max_batch`. Batches run one at a time in a
worker thread, so the model is never shared between threads and the event loop stays free to
accept requests. `max_batch=1` turns batching off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class DynamicBatcher(Generic[T, R]):
    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R | BaseException]],
        max_batch: int = 8,
        window: float = 0.01,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.run_batch, self.max_batch, self.window = run_batch, max_batch, window
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = self.items = 0  # for /health and the benchmark

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def submit(self, item: T) -> R:
        if self._queue is None:
            raise RuntimeError("The batcher is not started.")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _gather(self) -> list[tuple[T, asyncio.Future[R]]]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _loop(self) -> None:
        while True:
            batch = await self._gather()
            live = [
                (item, fut) for item, fut in batch if not fut.cancelled()
            ]  # clients that hung up
            if not live:
                continue
            try:
                results: Sequence[Any] = await asyncio.to_thread(
                    self.run_batch, [item for item, _ in live]
                )
            except (
                Exception
            ) as e:  # run_batch reports per item; this is a bug in it: fail the batch, go on
                results = [e] * len(live)
            self.batches += 1
            self.items += len(live)
            for (_, future), result in zip(live, results):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
