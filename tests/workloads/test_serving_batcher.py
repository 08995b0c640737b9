"""Dynamic batcher behaviour (workloads/serving/batcher.py), with a fake model and no HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from workloads.serving.batcher import DynamicBatcher, QueueFullError


class FakeModel:
    """Doubles each job's rows; records batches; can be held in the model call."""

    def __init__(self) -> None:
        self.batches: list[list[list[int]]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_next = False

    def __call__(self, jobs: list[list[int]]) -> list[list[int]]:
        self.batches.append(jobs)
        self.entered.set()
        self.release.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("model exploded")
        return [[2 * x for x in job] for job in jobs]


def make(model: FakeModel, **kwargs: Any) -> DynamicBatcher[list[int], list[int]]:
    settings: dict[str, Any] = {"max_batch_size": 4, "max_delay_seconds": 0.02, "max_queue": 100}
    settings.update(kwargs)
    return DynamicBatcher(model, rows_of=len, **settings)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


async def wait_for_model(model: FakeModel) -> None:
    while not model.entered.is_set():
        await asyncio.sleep(0.005)


def test_concurrent_jobs_share_batches_up_to_the_row_limit() -> None:
    model = FakeModel()

    async def scenario() -> None:
        batcher = make(model)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit([i]) for i in range(10)))
        await batcher.stop()
        assert [r for r, _ in results] == [[2 * i] for i in range(10)]
        assert [len(b) for b in model.batches] == [4, 4, 2]
        assert all(t.queue_seconds >= 0 and t.inference_seconds >= 0 for _, t in results)

    run(scenario)


def test_a_job_is_never_split_across_batches() -> None:
    model = FakeModel()

    async def scenario() -> None:
        batcher = make(model)
        batcher.start()
        await asyncio.gather(batcher.submit([1, 2, 3]), batcher.submit([4, 5, 6]), batcher.submit([7]))
        await batcher.stop()
        assert model.batches == [[[1, 2, 3]], [[4, 5, 6], [7]]]

    run(scenario)


def test_a_lone_job_runs_once_the_delay_has_passed() -> None:
    model = FakeModel()

    async def scenario() -> None:
        batcher = make(model, max_delay_seconds=0.01)
        batcher.start()
        result, _ = await batcher.submit([5])
        assert result == [10]
        assert model.batches == [[[5]]]
        await batcher.stop()

    run(scenario)


def test_full_queue_raises_at_once_and_never_grows_past_max_queue() -> None:
    model = FakeModel()
    model.release.clear()

    async def scenario() -> None:
        batcher = make(model, max_batch_size=1, max_queue=2)
        batcher.start()
        running = asyncio.create_task(batcher.submit([1]))
        await wait_for_model(model)  # job 1 is in the model; the queue is empty
        queued = [asyncio.create_task(batcher.submit([i])) for i in (2, 3)]
        await asyncio.sleep(0)
        assert batcher.depth == 2
        with pytest.raises(QueueFullError, match="max_queue=2"):
            await batcher.submit([4])
        model.release.set()
        assert [r for r, _ in await asyncio.gather(running, *queued)] == [[2], [4], [6]]
        assert batcher.high_water_mark == 2
        await batcher.stop()

    run(scenario)


def test_jobs_of_callers_that_went_away_are_skipped() -> None:
    model = FakeModel()
    model.release.clear()

    async def scenario() -> None:
        batcher = make(model, max_batch_size=1)
        batcher.start()
        first = asyncio.create_task(batcher.submit([1]))
        await wait_for_model(model)
        abandoned = asyncio.create_task(batcher.submit([2]))
        kept = asyncio.create_task(batcher.submit([3]))
        await asyncio.sleep(0)
        abandoned.cancel()
        model.release.set()
        await asyncio.gather(first, kept)
        await batcher.stop()
        assert model.batches == [[[1]], [[3]]]

    run(scenario)


def test_a_model_error_reaches_every_job_of_its_batch_and_the_next_batch_runs() -> None:
    model = FakeModel()
    model.fail_next = True

    async def scenario() -> None:
        batcher = make(model)
        batcher.start()
        outcomes = await asyncio.gather(batcher.submit([1]), batcher.submit([2]), return_exceptions=True)
        assert [str(o) for o in outcomes] == ["model exploded", "model exploded"]
        assert (await batcher.submit([3]))[0] == [6]
        await batcher.stop()

    run(scenario)


def test_stop_finishes_queued_jobs_and_refuses_new_ones() -> None:
    model = FakeModel()
    model.release.clear()

    async def scenario() -> None:
        batcher = make(model, max_batch_size=1)
        batcher.start()
        jobs = [asyncio.create_task(batcher.submit([i])) for i in range(3)]
        await wait_for_model(model)
        stopping = asyncio.create_task(batcher.stop())
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError, match="stopping"):
            await batcher.submit([9])
        model.release.set()
        await stopping
        assert [r for r, _ in await asyncio.gather(*jobs)] == [[0], [2], [4]]

    run(scenario)


def test_work_runs_off_the_event_loop_thread() -> None:
    async def scenario() -> None:
        batcher = make(FakeModel())
        loop_thread = threading.get_ident()
        worker_thread = await batcher.run_in_worker(threading.get_ident)
        assert worker_thread != loop_thread
        await batcher.stop()

    run(scenario)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_batch_size": 0}, "max_batch_size=0 must be at least 1"),
    ({"max_delay_seconds": -1}, "max_delay_seconds=-1 must not be negative"),
    ({"max_queue": 0}, "max_queue=0 must be at least 1"),
])
def test_invalid_settings_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(FakeModel(), **kwargs)
