"""Kill a batch task mid-shard, for real (SIGKILL, SIGTERM), under the local runner: the retry resumes and
the output is byte-identical to an uninterrupted run, no user lost or duplicated (workloads/batch/runner.py)."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.workloads.test_serving_support import one_torch_thread, write_model_dir  # noqa: F401 (a fixture)
from workloads.batch.runner import KillSpec, run_local
from workloads.batch.task import TaskArgs, model_version_of, run_task, shard_name
from workloads.batch.taskenv import TaskIdentity
from workloads.data.generate import GenerateConfig, generate

TASKS = 2
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    generate(out, GenerateConfig(users=80, items=40, days=2, seed=5))
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("model"), num_items=40, block_size=8)


def task_args(data_dir: Path, model_dir: Path, output: Path, pause: float = 0.0) -> TaskArgs:
    return TaskArgs(data=str(data_dir), output=str(output), model_dir=model_dir,
                    model_version=model_version_of(model_dir), chunk_items=6, k=4, chunk_pause_seconds=pause)


def read_shards(output: Path, args: TaskArgs, run_id: str) -> list[bytes]:
    return [(output / args.model_version / run_id / shard_name(i, TASKS)).read_bytes() for i in range(TASKS)]


@pytest.fixture(scope="module")
def reference(data_dir: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("reference")
    args = task_args(data_dir, model_dir, out)
    for i in range(TASKS):
        assert run_task(args, TaskIdentity(i, TASKS, "ref", "flags"), log=lambda _: None).code == 0
    return read_shards(out, args, "ref")


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "platform", "first_exit"), [
    (signal.SIGKILL, "aws-batch", -signal.SIGKILL),
    (signal.SIGTERM, "kubernetes", 75),
])
def test_a_task_killed_mid_shard_resumes_and_writes_what_an_uninterrupted_run_writes(
        sig: int, platform: str, first_exit: int, data_dir: Path, model_dir: Path, reference: list[bytes],
        tmp_path: Path):
    args = task_args(data_dir, model_dir, tmp_path, pause=0.3)  # the kill lands in a pause, mid-shard
    logs: list[str] = []
    report = run_local(args, TASKS, platform=platform, run_id="drill", kill=KillSpec(1, 2, sig), log=logs.append)
    text = "\n".join(logs)
    assert report.status == "done", text
    assert report.attempts == {0: [0], 1: [first_exit, 0]}, text
    resumed = [line for line in logs if "task 1/2: resuming at chunk" in line]
    assert resumed, text
    n_chunks = int(resumed[0].split("resuming at chunk ")[1].split(":")[0].split("/")[1])
    at = int(resumed[0].split("resuming at chunk ")[1].split("/")[0])
    assert 2 <= at < n_chunks, resumed  # killed mid-shard, after its second commit
    if sig == signal.SIGTERM:
        assert "committing the chunk in progress, then exiting 75" in text
    got = read_shards(tmp_path, args, "drill")
    assert got == reference
    users = Counter(json.loads(line)["user_id"] for blob in got for line in blob.decode().splitlines())
    expected = set(pq.read_table(data_dir / "events.parquet", columns=["user_id"])["user_id"].to_pylist())
    assert set(users) == expected and max(users.values()) == 1
