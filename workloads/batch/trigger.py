"""The local stand-in for a bucket trigger: watch a folder (or prefix), run the batch on each new object.

``python -m workloads.batch watch --prefix DIR ...``. ``PollingWatcher.poll()`` lists the prefix
through fsspec every ``poll_seconds`` and returns an ``ObjectEvent`` for every (object,
generation) it has not returned before; its first poll returns every object already there, as a
restarted notification consumer replays its backlog. Polling, not inotify (``watchfiles``): the
same code lists a local folder, ``s3://`` and ``gs://``, and a missed filesystem event cannot lose
an object. Objects must appear whole (write elsewhere, then rename, as ``workloads.data.generate``
does; bucket PUTs are atomic); names starting with ``.`` or ``_`` are ignored.

Like EventBridge, Eventarc and Argo Events, delivery is at least once: ``deliver`` may be called
twice for one object (a redelivery, a restarted watcher, two watchers). Exactly one run processes
it: ``deliver`` starts a run for the object (the local runner) whose plan re-lists the object's
current generation and claims it in the manifest before any task starts; a second delivery finds
the claim (or the ``.done``) and its run is ``skipped`` without starting a process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from workloads.batch.dataset import ObjectRef, list_objects
from workloads.batch.runner import RunReport, run_local
from workloads.batch.task import TaskArgs


@dataclass(frozen=True)
class ObjectEvent:
    """A new object (or a new generation of one) under the watched prefix."""

    uri: str
    generation: str


class PollingWatcher:
    """New objects under ``prefix`` since the previous poll (see the module doc)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._seen: set[ObjectRef] = set()

    def poll(self) -> list[ObjectEvent]:
        refs = list_objects(self.prefix, "--prefix", allow_empty=True)
        new = [r for r in refs if r not in self._seen]
        self._seen.update(new)
        return [ObjectEvent(r.uri, r.generation) for r in new]


@dataclass(frozen=True)
class TriggerTarget:
    """What each delivered event runs: the batch over that one object."""

    task: TaskArgs
    """``data`` is replaced by the event's object."""
    tasks: int = 1
    platform: str = "cloud-run"
    max_attempts: int = 3


def deliver(event: ObjectEvent, target: TriggerTarget, log: Callable[[str], None] = print) -> RunReport:
    """Start the run for one delivered event; a duplicate delivery returns a ``skipped`` report."""
    log(f"trigger: new object {event.uri} ({event.generation})")
    return run_local(replace(target.task, data=event.uri), target.tasks, platform=target.platform,
                     max_attempts=target.max_attempts, log=log)


def watch(prefix: str, target: TriggerTarget, *, poll_seconds: float = 1.0, max_events: int | None = None,
          duration_seconds: float | None = None, log: Callable[[str], None] = print) -> list[RunReport]:
    """Poll ``prefix`` and deliver each new object, until ``max_events`` deliveries or ``duration_seconds``."""
    watcher = PollingWatcher(prefix)
    reports: list[RunReport] = []
    deadline = None if duration_seconds is None else time.monotonic() + duration_seconds
    while True:
        for event in watcher.poll():
            reports.append(deliver(event, target, log))
            if max_events is not None and len(reports) >= max_events:
                return reports
        if deadline is not None and time.monotonic() >= deadline:
            return reports
        time.sleep(poll_seconds)
