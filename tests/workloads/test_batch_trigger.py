"""The local bucket trigger: a new object runs the batch exactly once, whatever the deliveries (workloads/batch/trigger.py)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.workloads.test_serving_support import write_model_dir
from workloads.batch.runner import RunReport
from workloads.batch.task import TaskArgs, model_version_of
from workloads.batch.trigger import PollingWatcher, TriggerTarget, deliver
from workloads.data.generate import GenerateConfig, generate


def land(folder: Path, name: str, seed: int) -> Path:
    """An object appears whole: generated elsewhere, then renamed into the watched folder."""
    staging = folder.parent / f"staging-{name}"
    generate(staging, GenerateConfig(users=30, items=40, days=1, seed=seed))
    folder.mkdir(exist_ok=True)
    os.replace(staging / "events.parquet", folder / name)
    return folder / name


def test_the_watcher_reports_each_object_and_generation_once(tmp_path: Path):
    inbox = tmp_path / "inbox"
    watcher = PollingWatcher(str(inbox))
    assert watcher.poll() == []  # nothing there yet is not an error
    land(inbox, "day-1.parquet", 1)
    (inbox / ".day-2.parquet.tmp").write_bytes(b"half")  # a writer's temporary file
    first = watcher.poll()
    assert [e.uri.rsplit("/", 1)[-1] for e in first] == ["day-1.parquet"]
    assert watcher.poll() == []
    land(inbox, "day-1.parquet", 2)  # replaced: a new generation is new data
    again = watcher.poll()
    assert [e.uri for e in again] == [first[0].uri] and again[0].generation != first[0].generation
    assert [e.uri for e in PollingWatcher(str(inbox)).poll()] == [first[0].uri]  # a restart replays the backlog


def lines_under(output: Path) -> list[dict]:
    return [json.loads(line) for p in sorted(output.glob("*/*/shard-*.jsonl")) for line in p.read_text().splitlines()]


@pytest.mark.slow
def test_duplicate_deliveries_of_a_new_object_start_exactly_one_run(tmp_path: Path):
    model_dir = write_model_dir(tmp_path / "model", num_items=40, block_size=8)
    inbox, output = tmp_path / "inbox", tmp_path / "out"
    target = TriggerTarget(TaskArgs(data="", output=str(output), model_dir=model_dir,
                                    model_version=model_version_of(model_dir), chunk_items=16), tasks=1)
    watcher = PollingWatcher(str(inbox))
    a = land(inbox, "day-1.parquet", 1)
    [event] = watcher.poll()

    reports: list[RunReport] = []
    barrier = threading.Barrier(2)

    def delivery() -> None:
        barrier.wait()
        reports.append(deliver(event, target, log=lambda _: None))

    threads = [threading.Thread(target=delivery) for _ in range(2)]  # the same event delivered twice at once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in reports) == ["done", "skipped"], [r.message for r in reports]
    redelivered = deliver(event, target, log=lambda _: None)  # later, once more
    [replayed] = PollingWatcher(str(inbox)).poll()  # a restarted watcher replays it
    assert redelivered.status == deliver(replayed, target, log=lambda _: None).status == "skipped"
    users_a = set(pq.read_table(a, columns=["user_id"])["user_id"].to_pylist())
    rows = lines_under(output)
    assert sorted(r["user_id"] for r in rows) == sorted(users_a)  # each user once: one run
    assert len(list(output.glob("*/*/_SUCCESS"))) == 1

    land(inbox, "day-2.parquet", 7)  # the next object triggers its own run; the first is not redone
    events = watcher.poll()
    assert [e.uri.rsplit("/", 1)[-1] for e in events] == ["day-2.parquet"]
    assert deliver(events[0], target, log=lambda _: None).status == "done"
    assert len(list(output.glob("*/*/_SUCCESS"))) == 2
    assert len(lines_under(output)) == len(rows) + len(set(pq.read_table(inbox / "day-2.parquet",
                                                                          columns=["user_id"])["user_id"].to_pylist()))
