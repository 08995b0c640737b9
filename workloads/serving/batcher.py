"""Dynamic batching on asyncio: requests queue, and run together in one model call.

Contract:

- ``submit(job)`` queues one job and returns its result with the time it spent queued and in
  the model. A batch closes when it holds ``max_batch_size`` rows or when its oldest job has
  waited ``max_delay_seconds`` (counted from arrival, as Triton's max queue delay is), whichever
  comes first; a job is never split across batches.
- The queue is bounded: when ``max_queue`` jobs are waiting, ``submit`` raises
  ``QueueFullError`` at once instead of letting memory grow (the HTTP layer answers 503 with
  Retry-After). ``high_water_mark`` records the deepest the queue has been.
- The model runs in one dedicated worker thread (``run_in_worker``), one batch at a time, so the
  event loop stays responsive; jobs arriving meanwhile form the next batch.
- Jobs whose caller has gone away (cancelled) are dropped before they reach the model.
- ``stop()`` runs every queued job to completion, then ends the loop and the worker thread.

Single event loop, no locks: every method except the ``run_batch`` callable runs on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")


class QueueFullError(Exception):
    """The batching queue holds ``max_queue`` jobs; the caller should retry later."""


@dataclass(frozen=True)
class StageTimes:
    """Seconds one job spent waiting for its batch and in the model call."""

    queue_seconds: float
    inference_seconds: float
    enqueued_at: float = 0.0
    """``time.perf_counter()`` when the job was queued (the batch starts ``queue_seconds`` later)."""
    model_started_at: float = 0.0
    """``time.perf_counter()`` when ``run_batch`` began in the worker thread."""
    model_ended_at: float = 0.0
    """``time.perf_counter()`` when ``run_batch`` returned."""
    batch_rows: int = 0
    """Rows in the job's batch."""
    batch_requests: int = 0
    """Jobs in the job's batch."""


@dataclass
class _Pending(Generic[J, R]):
    job: J
    rows: int
    future: asyncio.Future[tuple[R, StageTimes]]
    enqueued_at: float


class DynamicBatcher(Generic[J, R]):
    """Collects jobs into batches for ``run_batch`` (blocking, called in the worker thread)."""

    def __init__(
        self,
        run_batch: Callable[[list[J]], Sequence[R]],
        *,
        rows_of: Callable[[J], int],
        max_batch_size: int,
        max_delay_seconds: float,
        max_queue: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size={max_batch_size} must be at least 1")
        if max_delay_seconds < 0:
            raise ValueError(f"max_delay_seconds={max_delay_seconds} must not be negative")
        if max_queue < 1:
            raise ValueError(f"max_queue={max_queue} must be at least 1")
        self._run_batch = run_batch
        self._rows_of = rows_of
        self.max_batch_size = max_batch_size
        self.max_delay_seconds = max_delay_seconds
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._queue: collections.deque[_Pending[J, R]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-worker")
        self.high_water_mark = 0
        """The most jobs ever waiting at once (never above ``max_queue``)."""

    @property
    def depth(self) -> int:
        """Jobs waiting for a batch (not counting the batch in the model)."""
        return len(self._queue)

    async def run_in_worker(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the model worker thread (e.g. ``load()``, which must precede batches)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="dynamic-batcher")

    async def stop(self) -> None:
        """Finish every queued job, then stop the loop and the worker thread."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    async def submit(self, job: J) -> tuple[R, StageTimes]:
        if self._stopping:
            raise QueueFullError("the batcher is stopping")
        if len(self._queue) >= self.max_queue:
            raise QueueFullError(f"{len(self._queue)} requests are already queued (max_queue={self.max_queue})")
        loop = asyncio.get_running_loop()
        pending: _Pending[J, R] = _Pending(job, self._rows_of(job), loop.create_future(), time.perf_counter())
        self._queue.append(pending)
        self.high_water_mark = max(self.high_water_mark, len(self._queue))
        self._wakeup.set()
        return await pending.future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if batch is None:
                return
            if batch:
                await self._execute(loop, batch)

    async def _collect(self) -> list[_Pending[J, R]] | None:
        """The next batch; [] when only cancelled jobs were found; None when stopped and drained."""
        while not self._queue:
            if self._stopping:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        batch: list[_Pending[J, R]] = []
        rows = 0
        deadline = self._queue[0].enqueued_at + self.max_delay_seconds
        while rows < self.max_batch_size:
            if not self._queue:
                timeout = deadline - time.perf_counter()
                if self._stopping or timeout <= 0 or not batch:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
                except TimeoutError:
                    break
                continue
            head = self._queue[0]
            if head.future.done():  # caller went away
                self._queue.popleft()
                continue
            if batch and rows + head.rows > self.max_batch_size:
                break
            batch.append(self._queue.popleft())
            rows += head.rows
        return batch

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending[J, R]]) -> None:
        started = time.perf_counter()
        rows = sum(p.rows for p in batch)
        model_times = [0.0, 0.0]

        def run_timed(jobs: list[J]) -> Sequence[R]:
            model_times[0] = time.perf_counter()
            try:
                return self._run_batch(jobs)
            finally:
                model_times[1] = time.perf_counter()

        try:
            results = await loop.run_in_executor(self._executor, run_timed, [p.job for p in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} jobs")
        except Exception as exc:  # the model failed: every caller of this batch gets the error
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        inference_seconds = time.perf_counter() - started
        if self._on_batch is not None:
            self._on_batch(rows)
        for p, result in zip(batch, results, strict=True):
            if not p.future.done():
                p.future.set_result((result, StageTimes(started - p.enqueued_at, inference_seconds, p.enqueued_at,
                                                        model_times[0], model_times[1], rows, len(batch))))
