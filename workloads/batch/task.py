"""One task of a batch-inference run: its shard of the items, in chunks, committed one by one.

Contract:

- The task's place (index of count, run id) comes from ``taskenv`` (the platform's variables or
  flags). Its plan and member objects come from the manifest (``manifest.py``): the first
  process of the run writes the plan, every task claims, every task sees the same members.
- Sharding: the run's items (``dataset.py``: by object, then ``user_id``; counts from the plan) are cut into ``count``
  contiguous ranges, task ``i`` taking ``[floor(i*n/count), floor((i+1)*n/count))``: a pure
  function of the plan, so a retry on another machine gets the same shard.
- Chunks: the shard is processed ``chunk_items`` items at a time; chunk ``c`` is one model batch
  (the same rows on every attempt, so the same floats) written as one JSON line per item to
  ``.parts/shard-NNNNN/chunk-CCCCCC.jsonl`` atomically (``store.write_atomic``). A restarted task
  skips the chunks already committed and starts at the first missing one; a chunk cut short by a
  kill leaves at most a temporary file, which is deleted. When every chunk is in, they are
  concatenated into ``shard-NNNNN-of-MMMMM.jsonl`` (one atomic write) and the parts are removed.
  An uninterrupted run and any sequence of kills and restarts write the same bytes.
- Objects must not change during a run: a member whose generation differs from the plan's stops
  the task (exit 2) before it reads anything, since tasks reading different contents would lose
  or duplicate items.
- Completion: after its shard, a task looks for every shard of the run; the one that finds them
  all writes ``_SUCCESS`` and the members' ``.done`` markers (idempotent when several do).
- Exit codes: 0 the shard is committed (or there was nothing to do); 75 stopped by SIGTERM /
  SIGINT after committing the chunk in progress (a second signal exits 75 at once): requeue it,
  anywhere; 2 bad input (one message naming the field and the fix); 1 any other failure.
- Output line: ``{"items": [...k ids], "object": URI, "scores": [...k log-probabilities, 6
  decimals], "user_id": N}`` (keys sorted, compact separators).

Not done here: several devices per task, streaming objects larger than memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from workloads.batch.dataset import Item, list_objects, read_items
from workloads.batch.manifest import SUCCESS_FILE, Manifest, PlannedObject, RunPlan
from workloads.batch.store import StoreError, join, read_bytes, remove_tree, write_atomic
from workloads.batch.taskenv import TaskIdentity
from workloads.training.exit_codes import EXIT_OK, EXIT_PREEMPTED

SCORE_DECIMALS = 6


@dataclass(frozen=True)
class TaskArgs:
    """What one task needs besides its identity."""

    data: str
    """Dataset location (``dataset.py``); read only by the process that writes the plan."""
    output: str
    """Output location (local path or URL): manifest, plans and shards."""
    model_dir: Path
    """A training export: model.safetensors, config.json (and items.json)."""
    model_version: str
    """Names the model in the manifest and the output folder (``model_version_of`` by default)."""
    chunk_items: int = 64
    """Items per model batch and per committed chunk."""
    k: int = 10
    """Recommendations per item."""
    reprocess: bool = False
    """Process objects that another model version already processed."""
    device: str = "cpu"
    torch_threads: int = 1
    """torch intra-op threads (part of what makes a chunk's floats reproducible: keep it fixed per run)."""
    chunk_pause_seconds: float = 0.0
    """Pause after each committed chunk: for fault drills and demos, so an injected kill lands mid-shard."""
    manifest: str = ""
    """The processed-objects manifest's location; empty: ``<output>/_manifest``."""
    checkpoint_seconds: float = 0.0
    """The longest a chunk should take between commits (BatchJob's Young/Daly interval); 0: no check.
    A slower chunk is logged once with the fix (a smaller ``chunk_items``): a preemption loses at most a chunk."""


def model_version_of(model_dir: Path) -> str:
    """``sha-`` and 12 hex digits of the export's files: a new export is a new version."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "items.json"):
        path = model_dir / name
        if path.is_file():
            h.update(name.encode())
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return f"sha-{h.hexdigest()[:12]}"


class StopFlag:
    """Set by the first SIGTERM / SIGINT; a second one exits 75 at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


def install_stop_handlers(stop: StopFlag, log: Callable[[str], None]) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log(f"second {name}: exiting {EXIT_PREEMPTED} now; committed chunks are kept")
            sys.stdout.flush()
            os._exit(EXIT_PREEMPTED)
        log(f"{name}: committing the chunk in progress, then exiting {EXIT_PREEMPTED}")
        stop.set(name)

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, handler)


def shard_range(n: int, index: int, count: int) -> tuple[int, int]:
    """Items ``[start, stop)`` of task ``index`` of ``count`` over ``n`` items (contiguous, sizes differ by <= 1)."""
    return n * index // count, n * (index + 1) // count


def shard_name(index: int, count: int) -> str:
    return f"shard-{index:05d}-of-{count:05d}.jsonl"


def _chunk_name(c: int) -> str:
    return f"chunk-{c:06d}.jsonl"


def _shard_items(members: list[PlannedObject], block_size: int, start: int, stop: int) -> list[Item]:
    items: list[Item] = []
    offset = 0
    for obj in members:
        n = obj.items or 0
        lo, hi = max(start, offset) - offset, min(stop, offset + n) - offset
        if lo < hi:
            items.extend(read_items(obj.uri, block_size, lo, hi))
        offset += n
        if offset >= stop:
            break
    return items


def _lines(items: list[Item], predictions: list[Any]) -> bytes:
    out = []
    for item, pred in zip(items, predictions, strict=True):
        record = {"object": item.object_uri, "user_id": item.user_id, "items": pred.items[0],
                  "scores": [round(s, SCORE_DECIMALS) for s in pred.scores[0]]}
        out.append(json.dumps(record, sort_keys=True, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode() if out else b""


@dataclass
class TaskResult:
    code: int
    items: int = 0
    chunks: int = 0
    resumed_chunks: int = 0
    """Chunks found committed by an earlier attempt."""
    message: str = ""
    manifest_seconds: float = 0.0
    """Wall time in the manifest (plan and markers listed, claims, done markers; not the plan's item
    counting, which sharding needs anyway): the cost of exactly-once."""


def run_task(args: TaskArgs, who: TaskIdentity, *, stop: StopFlag | None = None,
             log: Callable[[str], None] = print, on_chunk: Callable[[int, int], None] | None = None) -> TaskResult:
    """Process this task's shard (see the module doc); the caller maps ``code`` to the exit status."""
    stop = stop or StopFlag()
    tag = f"task {who.index}/{who.count}"

    def say(text: str) -> None:
        log(f"{tag}: {text}")

    t_manifest = time.perf_counter()
    manifest = Manifest(args.output, args.manifest)
    plan, wrote = manifest.plan(data=args.data, run_id=who.run_id, model_version=args.model_version,
                                tasks=who.count, chunk_items=args.chunk_items, reprocess=args.reprocess)
    if wrote:
        say(f"wrote the plan of run {who.run_id}: {len(plan.taken)} of {len(plan.objects)} objects taken")
    members = manifest.claim(plan)
    manifest_seconds = time.perf_counter() - t_manifest - manifest.count_seconds
    for obj in plan.objects:
        if obj.skip:
            say(f"skip {obj.uri}: {obj.skip}")
    if not members:
        say("nothing to do: every object is processed or claimed by another run")
        return TaskResult(EXIT_OK, message="nothing to do", manifest_seconds=manifest_seconds)

    fs = manifest.fs
    run_dir = manifest.run_dir(plan.model_version, plan.run_id)
    final = join(run_dir, shard_name(who.index, who.count))
    if fs.exists(final):
        say(f"shard already committed: {fs.unstrip_protocol(final)}")
        manifest_seconds += _complete_if_last(manifest, plan, members, run_dir, say)
        return TaskResult(EXIT_OK, message="already committed", manifest_seconds=manifest_seconds)

    changed = _changed_objects(members)
    if changed:
        raise StoreError(f"run {plan.run_id}: {'; '.join(changed)} since the run was planned; its tasks could not agree "
                         "on the items, so this run stops here. The new generation is new data: deliver it to a new "
                         "run (the trigger does)")

    from workloads.serving.model_runner import ModelRunner, PredictJob

    runner = ModelRunner(args.model_dir, device=args.device, torch_threads=args.torch_threads)
    spec = runner.load()
    total = sum(o.items or 0 for o in members)
    start, stop_at = shard_range(total, who.index, who.count)
    items = _shard_items(members, spec.block_size, start, stop_at)
    n_chunks = -(-len(items) // plan.chunk_items)
    parts = join(run_dir, ".parts", f"shard-{who.index:05d}")
    committed = set()
    if fs.exists(parts):
        for path in fs.ls(parts, detail=False):
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("."):  # a chunk cut short by a kill
                fs.rm(path)
            elif name.startswith("chunk-"):
                committed.add(name)
    first = 0
    while _chunk_name(first) in committed:
        first += 1
    resumed = first
    if resumed:
        say(f"resuming at chunk {first}/{n_chunks}: {first} committed by an earlier attempt")
    say(f"items {start}..{stop_at - 1} of {total} ({len(items)} items, {n_chunks} chunks of {plan.chunk_items})")
    warned_slow = False
    for c in range(first, n_chunks):
        t_chunk = time.perf_counter()
        if stop.is_set():
            say(f"stopped ({stop.reason}) before chunk {c}/{n_chunks}; {c} committed; exiting {EXIT_PREEMPTED}")
            return TaskResult(EXIT_PREEMPTED, items=min(c * plan.chunk_items, len(items)), chunks=c,
                              resumed_chunks=resumed, manifest_seconds=manifest_seconds)
        batch = items[c * plan.chunk_items : (c + 1) * plan.chunk_items]
        predictions = runner.predict([PredictJob((item.history,), args.k) for item in batch])  # one row per item
        write_atomic(fs, join(parts, _chunk_name(c)), _lines(batch, predictions))
        done_items = min((c + 1) * plan.chunk_items, len(items))
        took = time.perf_counter() - t_chunk
        if args.checkpoint_seconds and took > args.checkpoint_seconds and not warned_slow:
            warned_slow = True
            say(f"chunk {c} took {took:.1f} s, above the checkpoint interval of {args.checkpoint_seconds:g} s "
                f"(GPUPLANE_CHECKPOINT_SECONDS): a preemption would lose more work than planned; lower --chunk-items "
                f"(a new run) or the job's checkpoint_seconds")
        say(f"chunk {c + 1}/{n_chunks} committed ({done_items}/{len(items)} items)")
        if on_chunk is not None:
            on_chunk(c + 1, n_chunks)
        if args.chunk_pause_seconds:
            stop.event.wait(args.chunk_pause_seconds)
    if stop.is_set() and n_chunks:
        say(f"stopped ({stop.reason}) after the last chunk; committing the shard")
    body = b"".join(read_bytes(fs, join(parts, _chunk_name(c))) or b"" for c in range(n_chunks))
    write_atomic(fs, final, body)
    remove_tree(fs, parts)
    say(f"shard committed: {len(items)} items, {n_chunks} chunks ({resumed} resumed) -> {fs.unstrip_protocol(final)}")
    manifest_seconds += _complete_if_last(manifest, plan, members, run_dir, say)
    return TaskResult(EXIT_OK, items=len(items), chunks=n_chunks, resumed_chunks=resumed,
                      manifest_seconds=manifest_seconds)


def _changed_objects(members: list[PlannedObject]) -> list[str]:
    """Members whose generation is no longer the planned one (replaced or deleted during the run)."""
    changed = []
    for obj in members:
        try:
            now = list_objects(obj.uri, "object")[0].generation
        except StoreError:
            now = "gone"
        if now != obj.generation:
            changed.append(f"{obj.uri} changed ({obj.generation} -> {now})")
    return changed


def _complete_if_last(manifest: Manifest, plan: RunPlan, members: list[PlannedObject], run_dir: str,
                      say: Callable[[str], None]) -> float:
    """Write ``_SUCCESS`` and the ``.done`` markers when every shard is in; the seconds spent on the markers."""
    fs = manifest.fs
    shards = [join(run_dir, shard_name(i, plan.tasks)) for i in range(plan.tasks)]
    missing = [s for s in shards if not fs.exists(s)]
    if missing:
        return 0.0
    if fs.exists(join(run_dir, ".parts")) and not fs.ls(join(run_dir, ".parts"), detail=False):
        remove_tree(fs, join(run_dir, ".parts"))
    items = {o.uri: o.items or 0 for o in members}
    output = fs.unstrip_protocol(run_dir)
    t = time.perf_counter()
    manifest.mark_done(plan, members, items, output)
    marking = time.perf_counter() - t
    summary = {"run_id": plan.run_id, "model_version": plan.model_version, "tasks": plan.tasks,
               "items": sum(items.values()), "objects": [o.uri for o in members],
               "shards": [s.rsplit("/", 1)[-1] for s in shards], "finished_at": time.time()}
    write_atomic(fs, join(run_dir, SUCCESS_FILE), (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode())
    say(f"run {plan.run_id} complete: {sum(items.values())} items in {plan.tasks} shards; "
        f"{len(members)} objects marked done for model version {plan.model_version}")
    return marking
