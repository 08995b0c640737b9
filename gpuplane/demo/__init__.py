"""``gpuplane demo``: the reference pipeline on one machine, step by step, with progress output.

Steps (each prints a rule, a live status line and its time; outputs go under one folder):

1. offline plan of every reference stack: resource tree, monthly cost, policy violations
   (``plans/<stack>.json`` and ``.md``);
2. synthetic retail events (``data/``);
3. Feast local materialisation into SQLite (``feature_repo/``), and a check of ``feast serve``
   against the event log (full mode);
4. training of the tiny model with an injected preemption: SIGTERM mid-run → exit 75 after a
   checkpoint → the same command again resumes from it → export (``checkpoints/``, ``model/``);
5. serving behind the local scale-to-zero activator, with a synthetic 24 h day of OIP v2
   requests (held-out users' histories) replayed in about a minute, idle gaps included so the
   server scales to zero and cold-starts again (``traffic/requests.csv``);
6. the same day through the two-tier router: a steady server and a scale-to-zero burst tier;
7. static-for-peak against scale-to-zero cost on the same day, with the simulator, catalog L4
   prices and the measured cold start;
8. the model loop (``gpuplane pipeline`` on the demo's data and model, ``pipeline/``): a new day
   of events, fine-tune, evaluation, MLflow registry, gate, canary through the router, 100 %;
   a shuffled-label model the gate rejects, a faulty server the canary rolls back (full mode;
   quick mode skips it with a note);
9. batch inference over the event log (``python -m workloads.batch``, ``batch/``): 3 task
   processes, one SIGKILLed mid-shard and resumed, output byte-identical to an uninterrupted run;
   the same data delivered again is skipped by the exactly-once manifest;
10. edge sites (``gpuplane edge demo`` on the exported model, ``edge/``): six local sites serving
    its ONNX export with onnxruntime; a bad model rolled back at the canary, the int8 model rolled
    out in gated waves with one site cut off and catching up;
11. the report: ``report.md``, ``report.json``, ``report.png``; key figures printed at the end.

Contract: :func:`run_demo` returns 0 when every step that ran succeeded, 1 when one failed
(each failure is named, and the steps that needed it are skipped, not failed), 130 on Ctrl-C
or SIGTERM. Steps whose optional dependency (torch, feast) is missing are skipped with the
reason. Every child process runs in its own process group, binds 127.0.0.1 on a free port
and is stopped before :func:`run_demo` returns, whatever happened. The output folder is
cleared of a previous demo's outputs first (only the names the demo writes).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from rich.console import Console

from gpuplane.demo.batch import step_batch
from gpuplane.demo.config import FULL, QUICK, DemoConfig
from gpuplane.demo.edge import step_edge
from gpuplane.demo.procs import Processes
from gpuplane.demo.report import DemoReport, StepRecord, key_figures, write_report
from gpuplane.demo.steps import (
    Context,
    Skip,
    StepFailed,
    step_cost,
    step_data,
    step_features,
    step_loop,
    step_plans,
    step_serving,
    step_training,
)
from gpuplane.demo.two_tier import step_two_tier

__all__ = ["FULL", "QUICK", "DemoConfig", "run_demo"]

STEPS: tuple[tuple[str, str, Callable[[Context], str]], ...] = (
    ("plans", "Offline plan of every reference stack", step_plans),
    ("data", "Event data generation", step_data),
    ("features", "Feast local materialisation", step_features),
    ("training", "Training with an injected preemption, then export", step_training),
    ("serving", "Serving behind the scale-to-zero activator: a day of traffic", step_serving),
    ("two-tier", "The day through the two-tier router: steady server + scale-to-zero burst tier", step_two_tier),
    ("cost", "Static-for-peak vs scale-to-zero cost (simulator, catalog prices)", step_cost),
    ("loop", "The model loop: a new day, retrain, MLflow, gate, canary, rollback", step_loop),
    ("batch", "Batch inference: 3 tasks, one killed mid-shard and resumed; a redelivery skipped", step_batch),
    ("edge", "Edge sites: ONNX rollout in gated waves, bad model rolled back, a site cut off", step_edge),
)
OUTPUT_NAMES = ("plans", "data", "feature_repo", "checkpoints", "model", "traffic", "traces", "logs", "report.md",
                "report.json", "report.png", "pipeline", "batch", "edge")
"""What the demo writes in its folder (and removes from a previous run first)."""


class Interrupted(BaseException):
    """SIGTERM to the demo: unwinds like Ctrl-C so that every child is stopped."""


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _clear(out: Path) -> None:
    for name in OUTPUT_NAMES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def run_demo(out: Path, *, quick: bool = False, config: DemoConfig | None = None, console: Console | None = None) -> int:
    """Run every step into ``out``; see the module docstring for the exit codes."""
    cfg = config or (QUICK if quick else FULL)
    cfg.validate()
    console = console or Console()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    (out / "logs").mkdir()
    started = time.perf_counter()
    report = DemoReport(mode=cfg.mode, started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), out_dir=str(out))
    code = 0
    with _sigterm_unwinds(), Processes() as procs:
        ctx = Context(cfg=cfg, out=out, console=console, procs=procs, report=report)
        try:
            for number, (key, title, fn) in enumerate(STEPS, start=1):
                _run_step(ctx, number, key, title, fn)
        except (KeyboardInterrupt, Interrupted) as exc:
            current = len(report.steps) + 1
            title = STEPS[current - 1][1] if current <= len(STEPS) else "the report"
            console.print(f"\n[red bold]interrupted ({type(exc).__name__}) during step {current}: {title}; "
                          "stopping every child process[/red bold]")
            report.steps.append(StepRecord(current, title, "failed", time.perf_counter() - ctx.step_started,
                                           f"interrupted ({type(exc).__name__})"))
            code = 130
        finally:
            ctx.progress("stopping child processes")
            ctx.close()
    # The report is written whatever happened above: it is how a failure is read afterwards.
    number = len(STEPS) + 1
    console.rule(f"[bold]{number}. Report")
    t = time.perf_counter()
    report.wall_seconds = time.perf_counter() - started
    try:
        paths = write_report(out, report, ctx.timeline)
        report.wall_seconds = time.perf_counter() - started
        report.steps.append(StepRecord(number, "Report", "ok", time.perf_counter() - t,
                                       ", ".join(p.name for p in paths)))
        paths = write_report(out, report, ctx.timeline)  # again, with its own step and the final wall time
        console.print(f"[green]✓[/green] report: {', '.join(str(p) for p in paths)}", highlight=False)
    except Exception as exc:  # the summary below must still print
        report.steps.append(StepRecord(number, "Report", "failed", time.perf_counter() - t, f"{type(exc).__name__}: {exc}"))
        console.print(f"[red]✗ report: {type(exc).__name__}: {exc}[/red]")
    report.wall_seconds = time.perf_counter() - started
    _print_summary(console, report, out)
    failed = report.failed_steps()
    if code == 0 and failed:
        code = 1
    return code


def _run_step(ctx: Context, number: int, key: str, title: str, fn: Callable[[Context], str]) -> None:
    console = ctx.console
    console.rule(f"[bold]{number}. {title}")
    t = ctx.step_started = time.perf_counter()
    try:
        with console.status(title) as status:
            ctx.status = status
            summary = fn(ctx)
        status_text, colour, mark = "ok", "green", "✓"
        ctx.ok.add(key)
    except Skip as exc:
        summary, status_text, colour, mark = str(exc), "skipped", "yellow", "–"
    except StepFailed as exc:
        summary, status_text, colour, mark = str(exc), "failed", "red", "✗"
    except Exception as exc:  # a bug in one step is reported as that step's failure
        summary, status_text, colour, mark = f"{type(exc).__name__}: {exc}", "failed", "red", "✗"
        with open(ctx.logs / "demo-errors.log", "a") as f:
            f.write(f"step {number} ({title}):\n{traceback.format_exc()}\n")
        summary += f" (traceback in {ctx.logs / 'demo-errors.log'})"
    finally:
        ctx.status = None
    seconds = time.perf_counter() - t
    first, _, rest = summary.partition("\n")
    ctx.report.steps.append(StepRecord(number, title, status_text, seconds, summary))  # type: ignore[arg-type]
    console.print(f"[{colour}]{mark} {status_text}[/{colour}] ({seconds:.1f} s): {first}", highlight=False)
    if rest:
        console.print(rest, highlight=False, markup=False)


def _print_summary(console: Console, report: DemoReport, out: Path) -> None:
    from rich.table import Table

    console.rule("[bold]Summary")
    steps = Table(show_header=True, header_style="bold", box=None)
    for col in ("#", "step", "status", "seconds"):
        steps.add_column(col, justify="right" if col in ("#", "seconds") else "left")
    for s in report.steps:
        colour = {"ok": "green", "failed": "red", "skipped": "yellow"}[s.status]
        steps.add_row(str(s.number), s.title, f"[{colour}]{s.status}[/{colour}]", f"{s.seconds:.1f}")
    console.print(steps)
    figures = Table(show_header=False, box=None)
    figures.add_column(style="bold")
    figures.add_column()
    for k, v in key_figures(report):
        figures.add_row(k, v)
    console.print(figures)
    failed = report.failed_steps()
    if failed:
        console.print("[red bold]failed:[/red bold] " + "; ".join(f"step {s.number} ({s.title})" for s in failed),
                      highlight=False)
    console.print(f"demo finished in {report.wall_seconds:.1f} s; every output is in [bold]{out}[/bold] "
                  f"(report.md, report.png)", highlight=False)
