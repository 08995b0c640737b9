"""``gpuplane demo``: the reference pipeline, locally, step by step with progress output.

Every step writes into one output folder. Steps that need optional parts (torch, Feast) say
so and are skipped when those parts are not installed.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

console = Console()


def step(title: str) -> float:
    console.rule(f"[bold]{title}")
    return time.perf_counter()


def plan_all(out: Path) -> int:
    from gpuplane import render
    from gpuplane.engine.plan import PlanError, available_stacks, plan_stack

    failures = 0
    plans_dir = out / "plans"
    plans_dir.mkdir(parents=True, exist_ok=True)
    for name in available_stacks():
        t = time.perf_counter()
        try:
            result = plan_stack(name)
        except PlanError as e:
            console.print(f"[red]{name}: {e}[/red]")
            failures += 1
            continue
        render.print_tree(result, console)
        (plans_dir / f"{name}.json").write_text(render.to_json(result))
        (plans_dir / f"{name}.md").write_text(render.markdown(result))
        console.print(f"[dim]{name}: {len(result.resources)} resources planned in {time.perf_counter() - t:.2f} s -> {plans_dir / name}.json[/dim]")
        failures += bool(result.validation_problems)
    return failures


def run_demo(out: Path) -> int:
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    step("1. Offline plan of every reference stack")
    failures = plan_all(out)
    console.rule()
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s; outputs in [bold]{out}[/bold]")
    return 1 if failures else 0
