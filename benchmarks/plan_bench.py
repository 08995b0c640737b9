"""Benchmark: `gpuplane plan` end to end per reference stack, and scaling with resource count.

Prints, side by side in one run:

- each reference stack planned by a fresh `gpuplane plan` process, median of ``--runs`` runs:
  the whole wall time, the import phase (every module import, wherever it happens, summed from
  ``python -X importtime``: the provider SDK packages the program uses apart from everything
  else) and the run phase (the rest: program, validation, policy pack, pricing, output) —
  goal: under 2 s per stack on 2 cores. The process's CPU seconds (user + system) are shown
  too: on a busy machine they move much less than the wall time. The interpreter's own start
  is shown once. The load average is printed before and after, since other processes on the
  machine inflate every figure;
- with ``--against DIR`` (another checkout of this repository, e.g. ``git worktree add
  /tmp/base main``), the same plans from that checkout, run in turn with these (A B A B ...),
  and the median ratio this/that of wall and CPU time per stack: a before/after comparison
  that holds while the machine's load drifts;
- generated stacks with 25..200 GPU node pools planned in-process: resources, seconds,
  resources/s, and seconds per resource relative to the smallest (flat = linear growth).

    python -m benchmarks.plan_bench [--runs 3] [--stacks aws-dev,local] [--no-scaling] [--against DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SDKS = ("pulumi_aws", "pulumi_aws_native", "pulumi_gcp", "pulumi_kubernetes", "pulumi_random")
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")
GOAL_SECONDS = 2.0


@dataclass
class Run:
    wall: float
    cpu: float
    """User + system seconds of the process."""
    imports: float
    """Seconds spent importing modules (all of them)."""
    sdk_imports: float
    """Seconds of that spent in the provider SDK packages."""
    sdk_packages: tuple[str, ...]
    resources: int


def import_seconds(stderr: str) -> tuple[float, float, tuple[str, ...]]:
    """(all imports, provider SDK imports, SDK packages seen) from ``-X importtime`` output.

    A top-level line (no indent) is an import started by non-import code; its cumulative time
    covers everything it pulled in, so their sum is the whole import phase."""
    total = sdk = 0.0
    packages: set[str] = set()
    for line in stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if not m:
            continue
        package = m.group(4).split(".", 1)[0]
        if package in SDKS:
            packages.add(package)
        if m.group(3):
            continue
        seconds = int(m.group(2)) / 1e6
        total += seconds
        if package in SDKS:
            sdk += seconds
    return total, sdk, tuple(sorted(packages))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_plan(stack: str, root: Path = ROOT) -> Run:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, "-X", "importtime", "-m", "gpuplane.cli", "plan", "--stack", stack, "--format", "json", "--out", out.name]
        cpu, t = _children_cpu(), time.perf_counter()
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        wall, cpu = time.perf_counter() - t, _children_cpu() - cpu
        text = Path(out.name).read_text()
        if proc.returncode not in (0, 1) or not text:  # 1 with a plan written: a policy violation
            errors = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("import time:"))
            raise SystemExit(f"gpuplane plan --stack {stack} failed ({proc.returncode}):\n{errors[-2000:]}")
        imports, sdk, packages = import_seconds(proc.stderr)
        return Run(wall, cpu, imports, sdk, packages, len(json.loads(text)["resources"]))


def interpreter_start() -> float:
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def generated_config(pools: int) -> dict:
    accelerators = ["L4", "A10G", "L40S"]
    return {
        "aws:region": "us-east-1",
        "gpuplane:tags": {"team": "bench", "cost-center": "cc-0"},
        "gpuplane:cluster": {"cloud": "aws", "region": "us-east-1"},
        "gpuplane:gpuPools": [
            {"name": f"pool-{i}", "accelerator": accelerators[i % 3], "capacityType": "spot" if i % 2 else "on_demand", "maxNodes": 1 + i % 4}
            for i in range(pools)
        ],
    }


def fresh_process_table(stacks: list[str], runs: int) -> None:
    start = interpreter_start()
    print(f"== gpuplane plan, fresh process per run, median of {runs} (python -X importtime; interpreter start {start:.2f} s)")
    print(
        f"{'stack':<12}{'resources':>10}{'total s':>9}{'cpu s':>7}{'imports s':>11}{'of it SDKs':>12}{'other':>7}{'run s':>7}"
        f"{'goal <2 s':>11}  SDK packages imported"
    )
    for stack in stacks:
        results = [cli_plan(stack) for _ in range(runs)]
        wall = statistics.median(r.wall for r in results)
        cpu = statistics.median(r.cpu for r in results)
        imports = statistics.median(r.imports for r in results)
        sdk = statistics.median(r.sdk_imports for r in results)
        run = statistics.median(r.wall - r.imports - start for r in results)
        print(
            f"{stack:<12}{results[0].resources:>10}{wall:>9.2f}{cpu:>7.2f}{imports:>11.2f}{sdk:>12.2f}{imports - sdk:>7.2f}{run:>7.2f}"
            f"{'yes' if wall < GOAL_SECONDS else 'NO':>11}  {', '.join(results[0].sdk_packages) or '-'}"
        )
    print(
        "   imports = every module import; 'of it SDKs' = the provider SDK packages the program's resources need "
        "(each SDK loads only the submodules used); run = total - imports - interpreter start"
    )


def against_table(stacks: list[str], runs: int, other: Path) -> None:
    """This checkout against ``other``, in turn per run, median ratios (this / that)."""
    print(f"\n== this checkout (A) against {other} (B), fresh processes in turn A B A B ..., median of {runs}")
    print(f"{'stack':<12}{'A wall s':>10}{'B wall s':>10}{'A/B wall':>10}{'A cpu s':>9}{'B cpu s':>9}{'A/B cpu':>9}")
    for stack in stacks:
        cli_plan(stack, other)  # warm-up: byte-code and caches of both checkouts
        cli_plan(stack)
        pairs = [(cli_plan(stack), cli_plan(stack, other)) for _ in range(runs)]
        a_wall, b_wall = (statistics.median(p[i].wall for p in pairs) for i in (0, 1))
        a_cpu, b_cpu = (statistics.median(p[i].cpu for p in pairs) for i in (0, 1))
        wall_ratio = statistics.median(a.wall / b.wall for a, b in pairs)
        cpu_ratio = statistics.median(a.cpu / b.cpu for a, b in pairs)
        print(f"{stack:<12}{a_wall:>10.2f}{b_wall:>10.2f}{wall_ratio:>10.2f}{a_cpu:>9.2f}{b_cpu:>9.2f}{cpu_ratio:>9.2f}")


def scaling_table() -> None:
    from gpuplane.engine.plan import plan_stack

    print("\n== generated stacks (in-process, warm imports), median of 3")
    print(f"{'pools':>6}{'resources':>10}{'median s':>10}{'res/s':>8}{'ms/res':>8}{'vs 25':>7}")
    plan_stack("bench", config=generated_config(2))  # warm imports
    base = None
    for pools in (25, 50, 100, 200):
        times, n = [], 0
        for _ in range(3):
            t = time.perf_counter()
            result = plan_stack("bench", config=generated_config(pools))
            times.append(time.perf_counter() - t)
            n = len(result.resources)
        med = statistics.median(times)
        per = med / n
        base = base or per
        print(f"{pools:>6}{n:>10}{med:>10.2f}{n / med:>8.0f}{per * 1000:>8.2f}{per / base:>7.2f}")


def main() -> None:
    from gpuplane.engine.plan import available_stacks

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stacks", default=",".join(available_stacks()), help="comma-separated stack names")
    parser.add_argument("--no-scaling", action="store_true", help="skip the generated-stack scaling table")
    parser.add_argument("--against", type=Path, help="another checkout of this repository to compare with, run in turn")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    stacks = [s for s in args.stacks.split(",") if s]
    fresh_process_table(stacks, args.runs)
    if args.against:
        against_table(stacks, args.runs, args.against.resolve())
    if not args.no_scaling:
        scaling_table()
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
