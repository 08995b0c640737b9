"""The batch run's plan and exactly-once manifest (workloads/batch/manifest.py, store.py, dataset.py)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workloads.batch.dataset import list_objects
from workloads.batch.manifest import Manifest, PlanError
from workloads.batch.store import StoreError, create_exclusive, open_location, write_atomic


def write_object(path: Path, users: list[int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(users)
    table = pa.table({"user_id": pa.array(users, pa.int64()), "item_id": pa.array([1 + u % 5 for u in users], pa.int64()),
                      "session_id": pa.array([0] * n, pa.int64()), "event_type": pa.array(["view"] * n),
                      "event_timestamp": pa.array(list(range(n)), pa.timestamp("us", tz="UTC"))})
    tmp = path.with_name("." + path.name)
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def plan(m: Manifest, data: Path, run_id: str, version: str = "v1", reprocess: bool = False, tasks: int = 2):
    return m.plan(data=str(data), run_id=run_id, model_version=version, tasks=tasks, chunk_items=8, reprocess=reprocess)


def test_a_folder_lists_parquet_objects_in_name_order_and_ignores_hidden_names(tmp_path: Path):
    for name in ("b.parquet", "a.parquet", "sub/c.parquet", ".tmp.parquet", "_SUCCESS", "_staging/d.parquet",
                 "notes.txt"):
        (write_object(tmp_path / name, [1]) if name.endswith(".parquet") else (tmp_path / name).write_text("x"))
    uris = [o.uri for o in list_objects(str(tmp_path))]
    assert uris == [f"file://{tmp_path}/a.parquet", f"file://{tmp_path}/b.parquet", f"file://{tmp_path}/sub/c.parquet"]


def test_a_generated_data_directory_is_its_event_log(tmp_path: Path):
    write_object(tmp_path / "events.parquet", [1, 2])
    (tmp_path / "meta.json").write_text("{}")
    write_object(tmp_path / "users.parquet", [1])
    assert [o.uri for o in list_objects(str(tmp_path))] == [f"file://{tmp_path}/events.parquet"]


def test_replacing_an_object_changes_its_generation(tmp_path: Path):
    obj = write_object(tmp_path / "a.parquet", [1])
    before = list_objects(str(obj))[0]
    write_object(obj, [1, 2, 3])
    after = list_objects(str(obj))[0]
    assert before.uri == after.uri and before.generation != after.generation


@pytest.mark.parametrize(("data", "needle"), [
    ("nosuch://bucket/x", "--data='nosuch://bucket/x': the scheme 'nosuch' is unknown"),
    ("/definitely/not/here", "does not exist; point it at an event-log directory"),
])
def test_bad_data_locations_name_the_field_and_the_fix(data: str, needle: str):
    with pytest.raises(StoreError) as err:
        list_objects(data)
    assert needle in str(err.value) and ("s3://" in str(err.value) or "generate" in str(err.value))


def test_an_empty_folder_says_what_to_put_there(tmp_path: Path):
    with pytest.raises(StoreError, match=r"no \*\.parquet objects under it"):
        list_objects(str(tmp_path))


def test_the_first_plan_wins_and_later_tasks_read_it(tmp_path: Path):
    write_object(tmp_path / "in/a.parquet", [1])
    m = Manifest(str(tmp_path / "out"))
    first, wrote = plan(m, tmp_path / "in", "run-1")
    write_object(tmp_path / "in/b.parquet", [2])  # lands while the run starts
    second, wrote_again = plan(m, tmp_path / "in", "run-1")
    assert wrote and not wrote_again
    assert second == first and [o.uri.rsplit("/", 1)[-1] for o in second.objects] == ["a.parquet"]


def test_a_retry_with_other_settings_is_refused_naming_them(tmp_path: Path):
    write_object(tmp_path / "in/a.parquet", [1])
    m = Manifest(str(tmp_path / "out"))
    plan(m, tmp_path / "in", "run-1")
    with pytest.raises(PlanError, match=r"task count 3 differs from the plan's 2.*another --run-id"):
        plan(m, tmp_path / "in", "run-1", tasks=3)


def test_a_second_run_of_the_same_objects_skips_them(tmp_path: Path):
    write_object(tmp_path / "in/a.parquet", [1])
    m = Manifest(str(tmp_path / "out"))
    p1, _ = plan(m, tmp_path / "in", "run-1")
    assert [o.uri for o in m.claim(p1)] == [p1.objects[0].uri]
    p2, _ = plan(m, tmp_path / "in", "run-2")
    assert p2.objects[0].skip is not None and "claimed by run run-1" in p2.objects[0].skip
    assert m.claim(p2) == []
    m.mark_done(p1, m.claim(p1), {}, "out")
    p3, _ = plan(m, tmp_path / "in", "run-3")
    assert p3.objects[0].skip == "already processed by model version v1 (run run-1)"


def test_a_new_model_version_reprocesses_only_with_the_flag(tmp_path: Path):
    write_object(tmp_path / "in/a.parquet", [1])
    m = Manifest(str(tmp_path / "out"))
    p1, _ = plan(m, tmp_path / "in", "run-1")
    m.mark_done(p1, m.claim(p1), {}, "out")
    without, _ = plan(m, tmp_path / "in", "run-2", version="v2")
    assert "processed by model version v1 (run run-1); pass --reprocess" in (without.objects[0].skip or "")
    with_flag, _ = plan(m, tmp_path / "in", "run-3", version="v2", reprocess=True)
    assert with_flag.objects[0].skip is None and len(m.claim(with_flag)) == 1
    again, _ = plan(m, tmp_path / "in", "run-4", version="v2", reprocess=True)
    assert "claimed by run run-3" in (again.objects[0].skip or "")  # still once per model version


def test_concurrent_claims_have_exactly_one_winner(tmp_path: Path):
    write_object(tmp_path / "in/a.parquet", [1])
    m = Manifest(str(tmp_path / "out"))
    plans = [plan(m, tmp_path / "in", f"run-{i}")[0] for i in range(8)]  # all planned before anyone claims
    barrier = threading.Barrier(len(plans))
    won: dict[str, int] = {}

    def claim(p):  # type: ignore[no-untyped-def]
        barrier.wait()
        won[p.run_id] = len(Manifest(str(tmp_path / "out")).claim(p))

    threads = [threading.Thread(target=claim, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won.values()) == [0] * 7 + [1], won


@pytest.mark.parametrize("root", ["local", "memory"])
def test_exclusive_create_refuses_an_existing_object_and_keeps_its_content(tmp_path: Path, root: str):
    base = str(tmp_path) if root == "local" else f"memory://batch-test-{os.getpid()}"
    fs, path = open_location(base + "/m/x.claim", "--output")
    create_exclusive(fs, path, b"first")
    with pytest.raises(FileExistsError):
        create_exclusive(fs, path, b"second")
    assert fs.cat_file(path) == b"first"
    write_atomic(fs, path, b"replaced")
    assert fs.cat_file(path) == b"replaced"
    if root == "local":
        assert sorted(os.listdir(tmp_path / "m")) == ["x.claim"]  # no temporary file left behind
