"""The local runner: a run's N task processes on this machine, as a platform would start them.

``python -m workloads.batch run --tasks N ...`` (``run_local``):

1. computes the model version, writes the run's plan and claims its objects in this process
   (no torch needed), so a run with nothing to do (every object processed or claimed by another
   run: a duplicate delivery) ends here, as ``skipped``, without starting a process;
2. starts the N tasks (``python -m workloads.batch task``), at most ``parallelism`` at a time,
   each with the environment its platform would give it (``taskenv.task_env``: Cloud Run, AWS
   Batch or Kubernetes variables), relays their progress lines, and
3. applies the exit-code contract: 0 done; 75 (stopped after committing, "retry elsewhere") and
   death by a signal (a lost node, SIGKILL) start the task again, up to ``max_attempts``
   attempts in all, as Cloud Run's max retries and AWS Batch's ``evaluateOnExit`` would; any
   other code fails the task at once (a bug does not get better by retrying).

The run is ``done`` when its ``_SUCCESS`` is written. ``kill`` injects a fault for drills and
tests: signal one task's first attempt once it has committed some chunks.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workloads.batch.manifest import SUCCESS_FILE, Manifest
from workloads.batch.store import join, read_bytes
from workloads.batch.task import TaskArgs, model_version_of
from workloads.batch.taskenv import PLATFORMS, task_env
from workloads.training.exit_codes import EXIT_OK, EXIT_PREEMPTED

CHUNK_LINE = re.compile(r"^task (\d+)/(\d+): chunk (\d+)/(\d+) committed")


@dataclass(frozen=True)
class KillSpec:
    """Signal task ``task``'s first attempt after it has committed ``after_chunks`` chunks."""

    task: int
    after_chunks: int
    signal: int = signal.SIGKILL

    @classmethod
    def parse(cls, text: str) -> KillSpec:
        """``TASK:CHUNKS[:SIGNAL]``, e.g. ``1:2:KILL`` or ``0:1:TERM``."""
        parts = text.split(":")
        try:
            task, chunks = int(parts[0]), int(parts[1])
            sig = signal.Signals["SIG" + parts[2].upper().removeprefix("SIG")] if len(parts) > 2 else signal.SIGKILL
        except (IndexError, ValueError, KeyError):
            raise ValueError(f"--kill {text!r}: expected TASK:CHUNKS[:SIGNAL], e.g. 1:2:KILL or 0:1:TERM") from None
        if len(parts) > 3 or task < 0 or chunks < 1:
            raise ValueError(f"--kill {text!r}: expected TASK:CHUNKS[:SIGNAL] with TASK >= 0 and CHUNKS >= 1")
        return cls(task, chunks, int(sig))


@dataclass
class RunReport:
    run_id: str
    model_version: str
    tasks: int
    status: str = "running"
    """``done``, ``skipped`` (nothing to do) or ``failed``."""
    attempts: dict[int, list[int]] = field(default_factory=dict)
    """Exit status of every attempt, per task (negative: killed by that signal)."""
    items: int = 0
    seconds: float = 0.0
    output: str = ""
    skipped: list[str] = field(default_factory=list)
    """One line per object the plan left out, with the reason."""
    message: str = ""

    @property
    def retried(self) -> int:
        return sum(len(a) - 1 for a in self.attempts.values())


def task_command(args: TaskArgs) -> list[str]:
    cmd = [sys.executable, "-m", "workloads.batch", "task", "--data", args.data, "--output", args.output,
           "--model-dir", str(args.model_dir), "--model-version", args.model_version,
           "--chunk-items", str(args.chunk_items), "--k", str(args.k), "--device", args.device,
           "--torch-threads", str(args.torch_threads), "--chunk-pause-seconds", str(args.chunk_pause_seconds)]
    if args.manifest:
        cmd += ["--manifest", args.manifest]
    if args.checkpoint_seconds:
        cmd += ["--checkpoint-seconds", str(args.checkpoint_seconds)]
    return [*cmd, "--reprocess"] if args.reprocess else cmd


class _Attempt:
    def __init__(self, index: int, number: int, proc: subprocess.Popen[str]) -> None:
        self.index, self.number, self.proc = index, number, proc
        self.tail: deque[str] = deque(maxlen=30)
        self.reader: threading.Thread | None = None


def run_local(args: TaskArgs, tasks: int, *, platform: str = "cloud-run", max_attempts: int = 3,
              parallelism: int | None = None, run_id: str | None = None, kill: KillSpec | None = None,
              log: Callable[[str], None] = print, extra_env: dict[str, str] | None = None) -> RunReport:
    """Run every task of one run to completion (see the module doc); never raises for a task's failure."""
    if tasks < 1:
        raise ValueError(f"--tasks {tasks}: must be at least 1")
    if max_attempts < 1:
        raise ValueError(f"--max-attempts {max_attempts}: must be at least 1")
    if platform not in PLATFORMS:
        raise ValueError(f"--platform {platform!r} is unknown; use one of {', '.join(PLATFORMS)}")
    if kill is not None and kill.task >= tasks:
        raise ValueError(f"--kill task {kill.task} does not exist in a run of {tasks} tasks (0..{tasks - 1})")
    t0 = time.perf_counter()
    if not args.model_version:
        args = TaskArgs(**{**args.__dict__, "model_version": model_version_of(args.model_dir)})
    run_id = run_id or f"local-{uuid.uuid4().hex[:12]}"
    report = RunReport(run_id, args.model_version, tasks)
    manifest = Manifest(args.output, args.manifest)
    plan, _ = manifest.plan(data=args.data, run_id=run_id, model_version=args.model_version, tasks=tasks,
                            chunk_items=args.chunk_items, reprocess=args.reprocess)
    report.skipped = [f"{o.uri}: {o.skip}" for o in plan.objects if o.skip]
    members = manifest.claim(plan)
    run_dir = manifest.run_dir(args.model_version, run_id)
    report.output = manifest.fs.unstrip_protocol(run_dir)
    if not members:
        report.status = "skipped"
        report.message = "nothing to do: " + ("; ".join(report.skipped) or "no object left after claiming")
        report.seconds = time.perf_counter() - t0
        log(f"run {run_id}: skipped, {report.message}")
        return report
    log(f"run {run_id}: {len(members)} objects, {tasks} tasks on {platform}, model version {args.model_version}, "
        f"output {report.output}")

    cmd = task_command(args)
    # A runner started inside a task of some platform must not hand that platform's variables on.
    inherited = {v for p in PLATFORMS.values() for v in (p.index_var, p.count_var, p.run_var)}
    base_env = {**{k: v for k, v in os.environ.items() if k not in inherited}, "PYTHONUNBUFFERED": "1",
                **(extra_env or {})}
    pending = deque(range(tasks))
    attempts: dict[int, int] = dict.fromkeys(range(tasks), 0)
    running: list[_Attempt] = []
    failed: list[str] = []
    limit = parallelism or tasks
    killed = False

    def relay(att: _Attempt) -> None:
        nonlocal killed
        assert att.proc.stdout is not None
        for line in att.proc.stdout:
            line = line.rstrip("\n")
            att.tail.append(line)
            log(f"  {line}" if line.startswith("task ") else f"  [task {att.index} attempt {att.number}] {line}")
            m = CHUNK_LINE.match(line)
            if (kill is not None and not killed and m and att.index == kill.task and att.number == 1
                    and int(m[3]) >= kill.after_chunks):
                killed = True
                log(f"  ⚡ injected fault: {signal.Signals(kill.signal).name} to task {att.index} after chunk {m[3]}")
                os.kill(att.proc.pid, kill.signal)

    def start(index: int) -> None:
        attempts[index] += 1
        env = {**base_env, **task_env(platform, index, tasks, run_id)}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        att = _Attempt(index, attempts[index], proc)
        att.reader = threading.Thread(target=relay, args=(att,), daemon=True)
        att.reader.start()
        running.append(att)

    try:
        while pending or running:
            while pending and len(running) < limit:
                start(pending.popleft())
            time.sleep(0.05)
            for att in [a for a in running if a.proc.poll() is not None]:
                running.remove(att)
                if att.reader is not None:
                    att.reader.join(timeout=5)
                code = att.proc.returncode
                report.attempts.setdefault(att.index, []).append(code)
                if code == EXIT_OK:
                    continue
                why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited {code}"
                if (code == EXIT_PREEMPTED or code < 0) and att.number < max_attempts:
                    log(f"  task {att.index} {why}: retrying (attempt {att.number + 1}/{max_attempts})")
                    pending.append(att.index)
                else:
                    reason = "attempts exhausted" if code == EXIT_PREEMPTED or code < 0 else "not retried"
                    failed.append(f"task {att.index} {why} ({reason}); last lines:\n    " + "\n    ".join(att.tail))
    finally:
        for att in running:  # interrupted: stop what is still running
            if att.proc.poll() is None:
                os.killpg(att.proc.pid, signal.SIGTERM)
                att.proc.wait(30)
    report.seconds = time.perf_counter() - t0
    success = read_bytes(manifest.fs, join(run_dir, SUCCESS_FILE))
    if failed or success is None:
        report.status = "failed"
        report.message = "; ".join(failed) or f"no {SUCCESS_FILE} in {report.output}"
    else:
        import json

        report.status = "done"
        report.items = int(json.loads(success)["items"])
    log(f"run {run_id}: {report.status}, {report.items} items, {tasks} tasks, {report.retried} retried, "
        f"{report.seconds:.1f} s" + (f": {report.message}" if report.status == "failed" else ""))
    return report


def model_dir_ok(model_dir: Path) -> str | None:
    """A problem with the export directory, or None."""
    missing = [f for f in ("model.safetensors", "config.json") if not (model_dir / f).is_file()]
    if not model_dir.is_dir() or missing:
        return (f"--model-dir {model_dir}: not a training export (missing {', '.join(missing) or 'the folder'}); "
                "point it at the --export-dir of python -m workloads.training")
    return None
