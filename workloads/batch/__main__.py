"""``python -m workloads.batch [task|run|watch]``: batch inference of the reference model over the event log.

- ``task`` (the default; what a platform runs in each container): this task's shard, its index,
  count and run id from the platform's variables (``taskenv.py``) or ``--task-index``,
  ``--task-count`` and ``--run-id``. Exit 0 done, 75 stopped after a commit (retry elsewhere),
  2 bad input, 1 failure.
- ``run --tasks N``: the local runner (``runner.py``): N task processes with a platform's
  variables, progress, retries of exit 75 up to ``--max-attempts``.
- ``watch --prefix DIR``: the local bucket trigger (``trigger.py``): a run per new object,
  exactly once per model version.

Bad input (an unknown scheme, a missing model, no task index) is one message per problem naming
the flag or variable and the fix, and exit 2, before anything is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from workloads.batch.store import StoreError, open_location
from workloads.batch.taskenv import PLATFORMS, TaskEnvError, resolve
from workloads.training.exit_codes import EXIT_OK, EXIT_USAGE

COMMANDS = ("task", "run", "watch")
EXIT_FAILED = 1


def _common(p: argparse.ArgumentParser, data_flag: str = "--data") -> None:
    if data_flag == "--data":
        p.add_argument("--data", required=True,
                       help="event-log directory, a .parquet object or a folder/prefix of them (path, file://, s3://, gs://)")
    p.add_argument("--output", required=True, help="output location: manifest, plans and shards (path or URL)")
    p.add_argument("--model-dir", required=True, type=Path, help="training export (model.safetensors, config.json)")
    p.add_argument("--model-version", default="",
                   help="the model's version in the manifest (default: sha- and a hash of the export's files)")
    p.add_argument("--reprocess", action="store_true",
                   help="process objects another model version already processed (this version still runs each once)")
    p.add_argument("--chunk-items", type=int, default=64, help="items per model batch and committed chunk (default 64)")
    p.add_argument("--k", type=int, default=10, help="recommendations per user (default 10)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--chunk-pause-seconds", type=float, default=0.0,
                   help="pause after each committed chunk (fault drills: lets an injected kill land mid-shard)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.batch", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("task", help="one task of a run (the default command)")
    _common(t)
    t.add_argument("--platform", default="auto", choices=["auto", *PLATFORMS],
                   help="whose task-index variables to read (default: the one that is set)")
    t.add_argument("--task-index", type=int, default=None, help="this task's index (overrides the platform's)")
    t.add_argument("--task-count", type=int, default=None, help="tasks in the run (overrides the platform's)")
    t.add_argument("--run-id", default=None, help="the run's id (overrides the platform's execution / job id)")
    r = sub.add_parser("run", help="run all N tasks locally")
    _common(r)
    r.add_argument("--tasks", type=int, required=True, help="task processes (the array size)")
    r.add_argument("--platform", default="cloud-run", choices=list(PLATFORMS),
                   help="whose environment variables the tasks get (default cloud-run)")
    r.add_argument("--max-attempts", type=int, default=3, help="attempts per task, retries of exit 75 included")
    r.add_argument("--parallelism", type=int, default=0, help="tasks at once (default: all)")
    r.add_argument("--run-id", default=None, help="resume or name a run (default: a new id)")
    r.add_argument("--kill", default=None, metavar="TASK:CHUNKS[:SIGNAL]",
                   help="fault drill: signal (default KILL) task TASK's first attempt after CHUNKS chunks")
    w = sub.add_parser("watch", help="run the batch on each new object under a folder or prefix")
    w.add_argument("--prefix", required=True, help="the watched folder or bucket prefix")
    _common(w, data_flag="")
    w.add_argument("--tasks", type=int, default=1, help="task processes per run (default 1)")
    w.add_argument("--platform", default="cloud-run", choices=list(PLATFORMS))
    w.add_argument("--max-attempts", type=int, default=3)
    w.add_argument("--poll-seconds", type=float, default=1.0, help="listing interval (default 1 s)")
    w.add_argument("--max-events", type=int, default=None, help="stop after this many deliveries")
    w.add_argument("--duration-seconds", type=float, default=None, help="stop after this long")
    return p


def _problems(args: argparse.Namespace) -> list[str]:
    problems = []
    for flag, value in (("--data", getattr(args, "data", None)), ("--prefix", getattr(args, "prefix", None)),
                        ("--output", args.output)):
        if value is not None:
            try:
                open_location(value, flag)
            except StoreError as err:
                problems.append(str(err))
    from workloads.batch.runner import model_dir_ok

    if (bad := model_dir_ok(args.model_dir)) is not None:
        problems.append(bad)
    for flag, value in (("--chunk-items", args.chunk_items), ("--k", args.k), ("--torch-threads", args.torch_threads),
                        ("--tasks", getattr(args, "tasks", 1)), ("--max-attempts", getattr(args, "max_attempts", 1))):
        if value < 1:
            problems.append(f"{flag} {value}: must be at least 1")
    if args.chunk_pause_seconds < 0:
        problems.append(f"--chunk-pause-seconds {args.chunk_pause_seconds}: must be 0 or more")
    if getattr(args, "kill", None):
        from workloads.batch.runner import KillSpec

        try:
            KillSpec.parse(args.kill)
        except ValueError as err:
            problems.append(str(err))
    if getattr(args, "parallelism", 0) < 0:
        problems.append(f"--parallelism {args.parallelism}: must be 0 (all) or more")
    if getattr(args, "poll_seconds", 1.0) <= 0:
        problems.append(f"--poll-seconds {args.poll_seconds}: must be above 0")
    return problems


def _task_args(args: argparse.Namespace, data: str):  # type: ignore[no-untyped-def]
    from workloads.batch.task import TaskArgs, model_version_of

    return TaskArgs(data=data, output=args.output, model_dir=args.model_dir,
                    model_version=args.model_version or model_version_of(args.model_dir),
                    chunk_items=args.chunk_items, k=args.k, reprocess=args.reprocess, device=args.device,
                    torch_threads=args.torch_threads, chunk_pause_seconds=args.chunk_pause_seconds)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "task")
    p = parser()
    args = p.parse_args(argv)
    problems = _problems(args)
    who = None
    if args.command == "task":
        try:
            who = resolve(os.environ, platform=args.platform, index=args.task_index, count=args.task_count,
                          run_id=args.run_id)
        except TaskEnvError as err:
            problems.append(str(err))
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "task":
            from workloads.batch.task import StopFlag, install_stop_handlers, run_task

            stop = StopFlag()  # installed first: a SIGTERM from here on ends in a commit and exit 75
            install_stop_handlers(stop, lambda text: print(f"task {who.index}/{who.count}: {text}", flush=True))
            task_args = _task_args(args, args.data)
            return run_task(task_args, who, stop=stop, log=lambda text: print(text, flush=True)).code
        if args.command == "run":
            from workloads.batch.runner import KillSpec, run_local

            kill = KillSpec.parse(args.kill) if args.kill else None
            report = run_local(_task_args(args, args.data), args.tasks, platform=args.platform,
                               max_attempts=args.max_attempts, parallelism=args.parallelism or None,
                               run_id=args.run_id, kill=kill, log=lambda text: print(text, flush=True))
            return EXIT_OK if report.status in ("done", "skipped") else EXIT_FAILED
        from workloads.batch.trigger import TriggerTarget, watch

        target = TriggerTarget(_task_args(args, args.prefix), args.tasks, args.platform, args.max_attempts)
        reports = watch(args.prefix, target, poll_seconds=args.poll_seconds, max_events=args.max_events,
                        duration_seconds=args.duration_seconds, log=lambda text: print(text, flush=True))
        return EXIT_FAILED if any(r.status == "failed" for r in reports) else EXIT_OK
    except _bad_input_types() as err:  # bad input found late (an unreadable object): a message, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _bad_input_types() -> tuple[type[Exception], ...]:
    """Errors that mean bad input. The training and serving ones only where their module was loaded (a
    UsageError cannot come from an unloaded module, and importing workloads.training.config loads torch)."""
    from workloads.batch.manifest import PlanError

    found: list[type[Exception]] = [StoreError, PlanError, TaskEnvError]
    for module, name in (("workloads.training.config", "UsageError"), ("workloads.serving.model_runner", "ModelDirError")):
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


if __name__ == "__main__":
    sys.exit(main())
