"""The demo's batch leg: batch inference of the trained model over the event log (``python -m workloads.batch``).

Three runs into ``batch/``, the first two through the local runner (a child process through ``ctx.procs``):

1. ``output/``: ``BATCH_TASKS`` task processes with Cloud Run's task variables; task 1 gets
   SIGKILL mid-shard (after ``KILL_AFTER_CHUNKS`` committed chunks), the runner starts it again
   and it resumes at its first uncommitted chunk;
2. the same event log delivered again (as a bucket trigger redelivers): the manifest says it is
   already processed by this model version, so the run is skipped and starts no task;
3. ``reference/``: the same batch uninterrupted, into a separate output, its tasks run one after
   the other in this process (``run_task``; one torch import instead of three).

The step fails unless the killed task was retried and resumed mid-shard, the redelivery was
skipped, every user with events appears exactly once, and the shards of run 1 are byte-identical
to the reference's.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from gpuplane.demo.procs import tail
from gpuplane.demo.steps import Context, Skip, StepFailed, have, python, run_logged

BATCH_TASKS = 3
CHUNK_ITEMS = 16
KILL_AFTER_CHUNKS = 1
CHUNK_PAUSE_SECONDS = 0.15
"""Pause after each commit, so the injected kill lands mid-shard on a fast machine and on a loaded one."""
RUN_LINE = re.compile(r"^run (\S+): (done|skipped|failed)(?:, (\d+) items, (\d+) tasks, (\d+) retried, ([0-9.]+) s)?")
RESUME_LINE = re.compile(r"task (\d+)/\d+: resuming at chunk (\d+)/(\d+)")


def _run(ctx: Context, output: Path, log_name: str, what: str, extra: list[str]) -> tuple[re.Match[str], list[str]]:
    args = python("-m", "workloads.batch", "run", "--data", str(ctx.data_dir), "--output", str(output),
                  "--model-dir", str(ctx.model_dir), "--tasks", str(BATCH_TASKS), "--chunk-items", str(CHUNK_ITEMS),
                  "--chunk-pause-seconds", str(CHUNK_PAUSE_SECONDS), *extra)
    code, seen = run_logged(ctx, args, log_name, what)
    found = [m for line in seen if (m := RUN_LINE.match(line))]
    if code != 0 or not found:
        raise StepFailed(f"{what}: python -m workloads.batch run exited {code}; see {ctx.logs / log_name}:\n"
                         f"{tail(ctx.logs / log_name)}")
    return found[-1], seen


def _reference(ctx: Context, output: Path, log_path: Path) -> float:
    """The same run, uninterrupted, its tasks one after the other in this process; its wall seconds."""
    from workloads.batch.task import TaskArgs, model_version_of, run_task
    from workloads.batch.taskenv import TaskIdentity

    t = time.perf_counter()
    args = TaskArgs(data=str(ctx.data_dir), output=str(output), model_dir=ctx.model_dir,
                    model_version=model_version_of(ctx.model_dir), chunk_items=CHUNK_ITEMS)
    with open(log_path, "w") as log:
        for index in range(BATCH_TASKS):
            ctx.progress(f"reference run: task {index}/{BATCH_TASKS}")
            result = run_task(args, TaskIdentity(index, BATCH_TASKS, "demo-reference", "flags"),
                              log=lambda text: print(text, file=log, flush=True))
            if result.code != 0:
                raise StepFailed(f"reference task {index} exited {result.code}; see {log_path}:\n{tail(log_path)}")
    return time.perf_counter() - t


def _shards(output: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(output.glob("sha-*/*/shard-*.jsonl"))]


def step_batch(ctx: Context) -> str:
    if not have("torch"):
        raise Skip("torch is not installed: no model to run")
    ctx.need("data", "training")
    root = ctx.out / "batch"
    killed, seen = _run(ctx, root / "output", "batch-run.log", "batch run",
                        ["--run-id", "demo-run", "--kill", f"1:{KILL_AFTER_CHUNKS}:KILL"])
    resumed = [m for line in seen if (m := RESUME_LINE.search(line))]
    if killed[2] != "done" or int(killed[5] or 0) < 1 or not resumed:
        raise StepFailed(f"expected the killed task to be retried and to resume mid-shard; see {ctx.logs / 'batch-run.log'}")
    r = resumed[0]
    ctx.say(f"   task {r[1]}: SIGKILL after chunk {KILL_AFTER_CHUNKS} → retried, resumed at chunk {r[2]}/{r[3]}; "
            f"run done: {killed[3]} items in {killed[4]} tasks, {float(killed[6]):.1f} s")
    again, _ = _run(ctx, root / "output", "batch-redelivery.log", "redelivery", ["--run-id", "demo-redelivery"])
    if again[2] != "skipped":
        raise StepFailed(f"the redelivered event log ran again ({again[2]}) instead of being skipped; see "
                         f"{ctx.logs / 'batch-redelivery.log'}")
    ctx.say("   the same event log delivered again: skipped (already processed by this model version)")
    reference_seconds = _reference(ctx, root / "reference", ctx.logs / "batch-reference.log")
    got, want = _shards(root / "output"), _shards(root / "reference")
    if not got or got != want:
        raise StepFailed(f"the shards in {root / 'output'} differ from the uninterrupted run's in {root / 'reference'}")
    users = [json.loads(line)["user_id"] for blob in got for line in blob.decode().splitlines()]
    import pyarrow.parquet as pq

    expected = set(pq.read_table(ctx.data_dir / "events.parquet", columns=["user_id"])["user_id"].to_pylist())
    if len(users) != len(set(users)) or set(users) != expected:
        raise StepFailed(f"{len(users)} output lines for {len(set(users))} users; {len(expected)} users have events")
    ctx.say(f"   uninterrupted reference run ({reference_seconds:.1f} s, in process): byte-identical shards, {len(users)} users "
            "each exactly once")
    return (f"{len(users)} users in {BATCH_TASKS} tasks; task {r[1]} SIGKILLed mid-shard → resumed at chunk "
            f"{r[2]}/{r[3]}, output identical to an uninterrupted run; redelivery skipped (exactly once) → {root}")
