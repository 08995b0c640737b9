"""``python -m workloads.batch [task|run|watch]``: batch inference of the reference model over the event log.

- ``task`` (the default; what a platform runs in each container): this task's shard, its index,
  count and run id from the platform's variables (``taskenv.py``) or ``--task-index``,
  ``--task-count`` and ``--run-id``. Its other inputs default from the variables a ``BatchJob``
  sets (``contract.py``: ``GPUPLANE_DATASET_URI`` or a triggered run's ``GPUPLANE_OBJECT_URI``,
  ``GPUPLANE_OUTPUT_URI``, ``GPUPLANE_MODEL_URI``, ...), so the component's bare
  ``python -m workloads.batch`` is a whole command; a flag wins over its variable. Exit 0 done,
  75 stopped after a commit (retry elsewhere), 2 bad input, 1 failure.
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
from collections.abc import Mapping
from pathlib import Path

from workloads.batch import contract
from workloads.batch.store import StoreError, is_local, local_dir, open_location
from workloads.batch.taskenv import PLATFORMS, TaskEnvError, resolve
from workloads.training.exit_codes import EXIT_OK, EXIT_USAGE

COMMANDS = ("task", "run", "watch")
EXIT_FAILED = 1


def _common(p: argparse.ArgumentParser, data_flag: str = "--data", from_env: bool = False) -> None:
    """The flags every command takes. ``from_env`` (``task``): none is required by the parser, the
    unset ones default from BatchJob's variables (``contract.FLAG_ENV``), see ``apply_env``."""
    def env(flag: str) -> str:
        return f" (default ${contract.FLAG_ENV[flag]})" if from_env else ""

    if data_flag == "--data":
        p.add_argument("--data", required=not from_env,
                       help="event-log directory, a .parquet object or a folder/prefix of them (path, file://, s3://, gs://)"
                       + (f" (default ${contract.OBJECT_URI} when set, else ${contract.DATASET_URI})" if from_env else ""))
    p.add_argument("--output", required=not from_env, help="output location: plans and shards (path or URL)" + env("output"))
    p.add_argument("--manifest", default=None,
                   help="the processed-objects manifest's location (default <output>/_manifest)" + env("manifest"))
    p.add_argument("--model-dir", required=not from_env,
                   help="training export (model.safetensors, config.json): a path, or a file://, s3:// or gs:// "
                        "location copied to a local cache" + env("model_dir"))
    p.add_argument("--model-version", default=None,
                   help="the model's version in the manifest (default: sha- and a hash of the export's files)"
                   + env("model_version"))
    p.add_argument("--reprocess", action="store_true", default=None,
                   help="process objects another model version already processed (this version still runs each once)"
                   + env("reprocess"))
    p.add_argument("--chunk-items", type=int, default=64, help="items per model batch and committed chunk (default 64)")
    p.add_argument("--checkpoint-seconds", type=float, default=None,
                   help="log when a chunk takes longer than this between commits (default: no check)"
                   + env("checkpoint_seconds"))
    p.add_argument("--k", type=int, default=10, help="recommendations per user (default 10)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--chunk-pause-seconds", type=float, default=0.0,
                   help="pause after each committed chunk (fault drills: lets an injected kill land mid-shard)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.batch", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("task", help="one task of a run (the default command)")
    _common(t, from_env=True)
    t.add_argument("--platform", default="auto", choices=["auto", *PLATFORMS],
                   help="whose task-index variables to read (default: the one that is set)")
    t.add_argument("--task-index", type=int, default=None, help="this task's index (overrides the platform's)")
    t.add_argument("--task-count", type=int, default=None,
                   help=f"tasks in the run (default ${contract.TASK_COUNT}, else the platform's)")
    t.add_argument("--run-id", default=None,
                   help=f"the run's id (default ${contract.RUN_ID}, else the platform's execution / job id)")
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


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line as parsed, ``task`` when no command is named (a BatchJob runs the bare module)."""
    argv = list(argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "task")
    return parser().parse_args(argv)


def apply_env(args: argparse.Namespace, env: Mapping[str, str]) -> list[str]:
    """Fill the unset flags from BatchJob's variables (``task`` only), then the remaining defaults; a
    problem per input that is neither given nor set, naming the flag and the variable."""
    problems: list[str] = []
    if args.command == "task":
        values, problems = contract.flag_defaults(env)
        for key, value in values.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        for key, flag in (("data", "--data"), ("output", "--output"), ("model_dir", "--model-dir")):
            if getattr(args, key) is None:
                problems.append(f"{flag} is not given and ${contract.FLAG_ENV[key]} is not set; pass {flag} "
                                "(a BatchJob sets the variable)")
    args.manifest = args.manifest or ""
    args.model_version = args.model_version or ""
    args.reprocess = bool(args.reprocess)
    args.checkpoint_seconds = args.checkpoint_seconds or 0.0
    return problems


def _problems(args: argparse.Namespace) -> list[str]:
    problems = []
    for flag, value in (("--data", getattr(args, "data", None)), ("--prefix", getattr(args, "prefix", None)),
                        ("--output", args.output), ("--manifest", args.manifest or None),
                        ("--model-dir", args.model_dir)):
        if value is not None:
            try:
                open_location(value, flag)
            except StoreError as err:
                problems.append(str(err))
    from workloads.batch.runner import model_dir_ok

    if args.model_dir is not None and not any(p.startswith("--model-dir=") for p in problems):
        fs, local = open_location(args.model_dir, "--model-dir")
        if is_local(fs) and (bad := model_dir_ok(Path(local))) is not None:  # a bucket one is checked once fetched
            problems.append(bad.replace(f"--model-dir {local}", f"--model-dir {args.model_dir}"))
    if args.checkpoint_seconds < 0:
        problems.append(f"--checkpoint-seconds {args.checkpoint_seconds}: must be 0 (no check) or more")
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
    from workloads.batch.runner import model_dir_ok
    from workloads.batch.task import TaskArgs, model_version_of

    model_dir = local_dir(args.model_dir, "--model-dir", ("model.safetensors", "config.json"), ("items.json",))
    if (bad := model_dir_ok(model_dir)) is not None:
        raise StoreError(bad)
    return TaskArgs(data=data, output=args.output, model_dir=model_dir,
                    model_version=args.model_version or model_version_of(model_dir),
                    chunk_items=args.chunk_items, k=args.k, reprocess=args.reprocess, device=args.device,
                    torch_threads=args.torch_threads, chunk_pause_seconds=args.chunk_pause_seconds,
                    manifest=args.manifest, checkpoint_seconds=args.checkpoint_seconds)


def _event_note(env: Mapping[str, str], data: str) -> str | None:
    """A triggered run's object, and whether it was replaced since its event (then this run processes the
    generation it lists, and the replacement's own event finds it done)."""
    uri, generation = contract.get(env, contract.OBJECT_URI), contract.get(env, contract.OBJECT_GENERATION)
    if uri is None or uri != data:
        return None
    if generation is None:
        return f"triggered by {uri}"
    from workloads.batch.dataset import list_objects

    try:
        now = list_objects(uri, "--data")[0].generation
    except (StoreError, IndexError):
        return f"triggered by {uri} (generation {generation}); it is gone"
    if generation.strip('"') in now:
        return f"triggered by {uri} (generation {generation})"
    return f"triggered by {uri} (generation {generation}), replaced since ({now}): processing the current one"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    problems = apply_env(args, os.environ)
    problems += _problems(args)
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
            if (note := _event_note(os.environ, args.data)) is not None:
                print(f"task {who.index}/{who.count}: {note}", flush=True)
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
