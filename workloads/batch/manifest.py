"""The exactly-once manifest and a run's plan, as objects under the output location.

Layout under ``--output`` (any fsspec location; the markers under ``--manifest`` when given, which
replaces ``<output>/_manifest``)::

    _manifest/<model_version>/<key>.claim    {"run_id", "uri", "generation", "model_version", "claimed_at"}
    _manifest/<model_version>/<key>.done     {"run_id", "uri", "generation", "model_version", "items", "output"}
    <model_version>/<run_id>/plan.json       the run's objects, task count and chunk size (fixed at the start)
    <model_version>/<run_id>/shard-00000-of-00003.jsonl, ..., _SUCCESS

``key`` is a hash of (object URI, object generation): the manifest is keyed by (object, generation,
model version), so a replaced object (new generation) is new data, and a new model version has
its own manifest and its own output folder; the old outputs are never touched.

Exactly once per model version, although every bucket trigger delivers at least once:

1. The plan. The first process of a run (the local runner, or the first task to start on a
   platform) lists ``--data`` and the markers (one listing each) and decides per object: skip it (a ``.done`` or another run's
   ``.claim`` exists for this model version; or, without ``reprocess``, a ``.done`` exists for
   another model version) or take it, counting the items of those it takes. It writes ``plan.json`` with ``create_exclusive``; a
   process that loses the race reads the winner's plan. Every task of the run therefore works
   on the same list, even if objects land while the run starts.
2. The claims. Every task tries to ``create_exclusive`` the ``.claim`` of each object the plan
   takes, holding the run id. A claim is never rewritten, so "the claim names this run" has one
   answer for every task and every retry: that is the run's member list. A duplicate delivery
   (another run id) finds the claim and skips the object; a retry (same run id) finds its own.
3. ``.done`` is written for each member object after every shard of the run is committed.

Why marker objects and not SQLite: the same code works on a local disk and in S3 / GCS (atomic
``create-if-absent`` via conditional writes, see ``store.create_exclusive``), tasks on different
machines need no shared database, and a claim is one request. A run whose tasks failed for good
leaves its claims without ``.done``; the message of a skipped object names the claim to delete to
hand the object to a new run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from workloads.batch.dataset import ObjectRef, count_items, list_objects
from workloads.batch.store import create_exclusive, join, open_location, read_bytes, write_atomic

PLAN_FILE = "plan.json"
SUCCESS_FILE = "_SUCCESS"
MANIFEST_DIR = "_manifest"


class PlanError(ValueError):
    """A task's arguments disagree with its run's plan; the message names the field and the fix."""


def object_key(obj: ObjectRef) -> str:
    return hashlib.sha256(f"{obj.uri}\n{obj.generation}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PlannedObject:
    uri: str
    generation: str
    skip: str | None = None
    """Why the run leaves this object out (decided when the plan was written), or None."""
    items: int | None = None
    """Items (users) in the object at ``generation``; None for a skipped object."""

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.uri, self.generation)


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    model_version: str
    tasks: int
    chunk_items: int
    reprocess: bool
    data: str
    objects: tuple[PlannedObject, ...]

    def to_json(self) -> bytes:
        raw = dataclasses.asdict(self)
        return (json.dumps(raw, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> RunPlan:
        raw = json.loads(data)
        raw["objects"] = tuple(PlannedObject(**o) for o in raw["objects"])
        return cls(**raw)

    @property
    def taken(self) -> list[PlannedObject]:
        return [o for o in self.objects if o.skip is None]


class Manifest:
    """The markers and run folders under one output location."""

    def __init__(self, output: str, manifest: str = "") -> None:
        self.output = output
        self.fs, self.root = open_location(output, "--output")
        if manifest:  # BatchJob's manifest_uri: markers elsewhere than under the output
            self.markers_fs, self.markers_root = open_location(manifest, "--manifest")
        else:
            self.markers_fs, self.markers_root = self.fs, join(self.root, MANIFEST_DIR)
        self.count_seconds = 0.0
        """Seconds ``plan`` spent counting items (reading objects), as opposed to manifest work."""

    def run_dir(self, model_version: str, run_id: str) -> str:
        return join(self.root, model_version, run_id)

    def _marker(self, model_version: str, obj: ObjectRef, suffix: str) -> str:
        return join(self.markers_root, model_version, f"{object_key(obj)}.{suffix}")

    def _read_json(self, path: str) -> dict[str, Any] | None:
        data = read_bytes(self.markers_fs, path)
        return None if data is None else dict(json.loads(data))

    def done_record(self, model_version: str, obj: ObjectRef) -> dict[str, Any] | None:
        return self._read_json(self._marker(model_version, obj, "done"))

    def claim_record(self, model_version: str, obj: ObjectRef) -> dict[str, Any] | None:
        return self._read_json(self._marker(model_version, obj, "claim"))

    def markers(self) -> set[tuple[str, str]]:
        """Every marker as (model version, file name), from one listing of ``_manifest/`` (a plan reads this
        once instead of asking about each object: one LIST instead of a request per object and version)."""
        base = self.markers_root
        if not self.markers_fs.exists(base):
            return set()
        found = set()
        for path in self.markers_fs.find(base):
            parts = path.rstrip("/").split("/")
            found.add((parts[-2], parts[-1]))
        return found

    def _skip_reason(self, model_version: str, run_id: str, obj: ObjectRef, reprocess: bool,
                     markers: set[tuple[str, str]]) -> str | None:
        key = object_key(obj)
        if (model_version, f"{key}.done") in markers:
            done = self.done_record(model_version, obj) or {}
            return f"already processed by model version {model_version} (run {done.get('run_id')})"
        if (model_version, f"{key}.claim") in markers:
            claim = self.claim_record(model_version, obj) or {}
            if claim.get("run_id") != run_id:
                return (f"claimed by run {claim.get('run_id')} of model version {model_version}, not done yet; if "
                        f"that run failed for good, delete {self._marker(model_version, obj, 'claim')} and deliver "
                        "it again")
        if not reprocess:
            others = sorted(v for v, name in markers if name == f"{key}.done" and v != model_version)
            if others:
                other = self.done_record(others[0], obj) or {}
                return (f"processed by model version {others[0]} (run {other.get('run_id')}); pass "
                        f"--reprocess to process it again with model version {model_version}")
        return None

    def plan(self, *, data: str, run_id: str, model_version: str, tasks: int, chunk_items: int,
             reprocess: bool, objects: list[ObjectRef] | None = None) -> tuple[RunPlan, bool]:
        """The run's plan: the existing one, else a new one written now; and whether this call wrote it.

        A new plan lists ``data`` (or takes ``objects``) and decides each object's skip. An
        existing plan must agree with ``tasks`` and ``chunk_items`` (its shards were cut by them)."""
        path = join(self.run_dir(model_version, run_id), PLAN_FILE)
        existing = read_bytes(self.fs, path)
        wrote = False
        if existing is None:
            refs = objects if objects is not None else list_objects(data)
            markers = self.markers()
            skips = [self._skip_reason(model_version, run_id, o, reprocess, markers) for o in refs]
            # Item counts of the taken objects, so that no task has to read every object to find its range
            # (sharding work, not the manifest's: timed apart in ``count_seconds``).
            t = time.perf_counter()
            planned = tuple(PlannedObject(o.uri, o.generation, skip, None if skip else count_items(o.uri))
                            for o, skip in zip(refs, skips, strict=True))
            self.count_seconds += time.perf_counter() - t
            new = RunPlan(run_id, model_version, tasks, chunk_items, reprocess, data, planned)
            try:
                create_exclusive(self.fs, path, new.to_json())
                wrote = True
            except FileExistsError:  # another task of this run wrote it first: use theirs
                pass
            existing = read_bytes(self.fs, path)
        assert existing is not None  # written above or by the task that won the race
        plan = RunPlan.from_json(existing)
        problems = []
        if plan.tasks != tasks:
            problems.append(f"task count {tasks} differs from the plan's {plan.tasks}")
        if plan.chunk_items != chunk_items:
            problems.append(f"--chunk-items {chunk_items} differs from the plan's {plan.chunk_items}")
        if problems:
            raise PlanError(f"run {run_id}: {'; '.join(problems)} ({path}); a retry must use the run's settings, "
                            f"or start a new run (another --run-id)")
        return plan, wrote

    def claim(self, plan: RunPlan) -> list[PlannedObject]:
        """Claim every object the plan takes; return the members (claims that name this run), in plan order."""
        members = []
        for obj in plan.taken:
            path = self._marker(plan.model_version, obj.ref, "claim")
            record = {"run_id": plan.run_id, "uri": obj.uri, "generation": obj.generation,
                      "model_version": plan.model_version, "claimed_at": time.time()}
            try:
                create_exclusive(self.markers_fs, path, (json.dumps(record, sort_keys=True) + "\n").encode())
            except FileExistsError:
                record = self.claim_record(plan.model_version, obj.ref) or {}
            if record.get("run_id") == plan.run_id:
                members.append(obj)
        return members

    def mark_done(self, plan: RunPlan, members: list[PlannedObject], items: dict[str, int], output: str) -> None:
        """Write ``.done`` for every member (idempotent: every finishing task may call it)."""
        for obj in members:
            record = {"run_id": plan.run_id, "uri": obj.uri, "generation": obj.generation,
                      "model_version": plan.model_version, "items": items.get(obj.uri, 0), "output": output}
            write_atomic(self.markers_fs, self._marker(plan.model_version, obj.ref, "done"),
                         (json.dumps(record, sort_keys=True) + "\n").encode())
