"""Batch tasks in process: sharding, chunk commits, resume after a stop or a torn write (workloads/batch/task.py)."""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.workloads.test_serving_support import one_torch_thread, write_model_dir  # noqa: F401 (a fixture)
from workloads.batch.task import StopFlag, TaskArgs, model_version_of, run_task, shard_name, shard_range
from workloads.batch.taskenv import TaskIdentity
from workloads.data.generate import GenerateConfig, generate

TASKS = 3
CHUNK = 8

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # ModelRunner sets torch to 1 thread; restored after


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    generate(out, GenerateConfig(users=90, items=50, days=2, seed=3))
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("model"), num_items=50, block_size=8)


def users_in(data_dir: Path) -> set[int]:
    return set(pq.read_table(data_dir / "events.parquet", columns=["user_id"])["user_id"].to_pylist())


def args_for(data_dir: Path, model_dir: Path, output: str) -> TaskArgs:
    return TaskArgs(data=str(data_dir), output=output, model_dir=model_dir, model_version=model_version_of(model_dir),
                    chunk_items=CHUNK, k=5)


def run_all(args: TaskArgs, run_id: str, logs: list[str] | None = None) -> list[int]:
    log = (logs.append if logs is not None else lambda _: None)
    return [run_task(args, TaskIdentity(i, TASKS, run_id, "flags"), log=log).code for i in range(TASKS)]


def shards(output: Path, args: TaskArgs, run_id: str) -> list[bytes]:
    run_dir = output / args.model_version / run_id
    return [(run_dir / shard_name(i, TASKS)).read_bytes() for i in range(TASKS)]


def records(blobs: list[bytes]) -> list[dict]:
    return [json.loads(line) for blob in blobs for line in blob.decode().splitlines()]


@pytest.fixture(scope="module")
def reference(data_dir: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("reference")
    args = args_for(data_dir, model_dir, str(out))
    assert run_all(args, "ref") == [0, 0, 0]
    return shards(out, args, "ref")


def test_shard_ranges_tile_the_items_without_gaps_or_overlap():
    for n in (0, 1, 7, 100, 101):
        for count in (1, 3, 8):
            ranges = [shard_range(n, i, count) for i in range(count)]
            assert ranges[0][0] == 0 and ranges[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
            assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1


def test_an_uninterrupted_run_covers_every_user_once(reference: list[bytes], data_dir: Path):
    rows = records(reference)
    ids = Counter(r["user_id"] for r in rows)
    assert set(ids) == users_in(data_dir) and max(ids.values()) == 1
    assert [r["user_id"] for r in rows] == sorted(ids)  # shards in order hold the users in order
    assert all(len(r["items"]) == 5 and len(r["scores"]) == 5 for r in rows)


def test_a_stop_mid_shard_exits_75_and_the_rerun_writes_the_same_bytes(data_dir: Path, model_dir: Path,
                                                                        reference: list[bytes], tmp_path: Path):
    args = args_for(data_dir, model_dir, str(tmp_path))
    stop = StopFlag()

    def on_chunk(done: int, total: int) -> None:
        if done == 2:
            stop.set("SIGTERM")  # what the handler does on a preemption notice

    who = TaskIdentity(1, TASKS, "run", "flags")
    first = run_task(args, who, stop=stop, on_chunk=on_chunk)
    assert (first.code, first.chunks) == (75, 2)
    parts = tmp_path / args.model_version / "run" / ".parts" / "shard-00001"
    assert sorted(p.name for p in parts.iterdir()) == ["chunk-000000.jsonl", "chunk-000001.jsonl"]
    logs: list[str] = []
    assert run_all(args, "run", logs) == [0, 0, 0]
    assert any("task 1/3: resuming at chunk 2/" in line for line in logs), logs
    assert shards(tmp_path, args, "run") == reference
    assert not (tmp_path / args.model_version / "run" / ".parts").exists()


def test_a_torn_chunk_write_is_discarded_and_redone(data_dir: Path, model_dir: Path, reference: list[bytes],
                                                    tmp_path: Path):
    args = args_for(data_dir, model_dir, str(tmp_path))
    stop = StopFlag()
    run_task(args, TaskIdentity(0, TASKS, "run", "flags"), stop=stop,
             on_chunk=lambda done, total: stop.set("SIGKILL") if done == 1 else None)
    parts = tmp_path / args.model_version / "run" / ".parts" / "shard-00000"
    (parts / f".chunk-000001.jsonl.tmp-{os.getpid()}-dead").write_bytes(b'{"user_id": 9')  # killed mid-write
    assert run_all(args, "run") == [0, 0, 0]
    assert shards(tmp_path, args, "run") == reference


def test_output_to_a_bucket_url_writes_the_same_bytes(data_dir: Path, model_dir: Path, reference: list[bytes]):
    import fsspec

    base = f"memory://batch-out-{os.getpid()}"
    args = args_for(data_dir, model_dir, base)
    assert run_all(args, "mem") == [0, 0, 0]
    fs = fsspec.filesystem("memory")
    run_dir = f"{base}/{args.model_version}/mem"
    assert [fs.cat_file(f"{run_dir}/{shard_name(i, TASKS)}") for i in range(TASKS)] == reference
    assert fs.exists(f"{run_dir}/_SUCCESS") and not fs.exists(f"{run_dir}/.parts")
    done = fs.glob(f"{base}/_manifest/{args.model_version}/*.done")
    assert len(done) == 1 and json.loads(fs.cat_file(done[0]))["items"] == len(records(reference))


def test_a_second_run_finds_nothing_to_do_and_a_new_version_needs_reprocess(data_dir: Path, model_dir: Path,
                                                                            tmp_path: Path):
    args = args_for(data_dir, model_dir, str(tmp_path))
    assert run_all(args, "one") == [0, 0, 0]
    logs: list[str] = []
    assert run_all(args, "two", logs) == [0, 0, 0]
    assert not (tmp_path / args.model_version / "two" / shard_name(0, TASKS)).exists()
    assert any("already processed by model version" in line for line in logs)
    v2 = TaskArgs(**{**args.__dict__, "model_version": "v2"})
    logs.clear()
    run_all(v2, "three", logs)
    assert any("pass --reprocess" in line for line in logs), logs
    old = sorted(p.read_bytes() for p in (tmp_path / args.model_version / "one").glob("shard-*"))
    v2r = TaskArgs(**{**v2.__dict__, "reprocess": True})
    assert run_all(v2r, "four") == [0, 0, 0]
    assert len(records(shards(tmp_path, v2r, "four"))) == len(users_in(data_dir))
    assert sorted(p.read_bytes() for p in (tmp_path / args.model_version / "one").glob("shard-*")) == old


def test_an_object_replaced_during_the_run_stops_the_task_naming_it(data_dir: Path, model_dir: Path,
                                                                     tmp_path: Path):
    import shutil

    from workloads.batch.store import StoreError

    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    args = args_for(data, model_dir, str(tmp_path / "out"))
    assert run_task(args, TaskIdentity(0, TASKS, "run", "flags"), log=lambda _: None).code == 0
    generate(tmp_path / "other", GenerateConfig(users=20, items=50, days=1, seed=9))
    os.replace(tmp_path / "other" / "events.parquet", data / "events.parquet")  # a new generation lands mid-run
    with pytest.raises(StoreError, match=r"events\.parquet changed \(mtime-.* -> mtime-.*\) since the run was planned"):
        run_task(args, TaskIdentity(1, TASKS, "run", "flags"), log=lambda _: None)


def test_an_object_that_is_not_an_event_log_is_named_with_the_fix(model_dir: Path, tmp_path: Path):
    from workloads.batch.store import StoreError

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.parquet").write_bytes(b"PAR1 not really")
    args = TaskArgs(data=str(tmp_path / "in"), output=str(tmp_path / "out"), model_dir=model_dir, model_version="v")
    with pytest.raises(StoreError, match=r"object file://.*/broken\.parquet is not a readable Parquet file with columns "
                                         r"user_id .*follow the event-log schema of workloads\.data\.generate"):
        run_task(args, TaskIdentity(0, 1, "run", "flags"), log=lambda _: None)
    assert not list((tmp_path / "out").glob("_manifest/*/*.claim"))  # nothing claimed: the plan failed first
