"""Benchmark: `gpuplane plan` end to end per reference stack, and scaling with resource count.

Prints, side by side in one run:
- each reference stack planned by a fresh `gpuplane plan` process (imports included): median
  wall time of 3 runs, resources, resources/s — goal: under 5 s per stack on 2 cores;
- generated stacks with 25..200 GPU node pools planned in-process: resources, seconds,
  resources/s, and seconds per resource relative to the smallest (flat = linear growth).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cli_plan(stack: str) -> tuple[float, int]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gpuplane.cli", "plan", "--stack", stack, "--format", "json", "--out", out.name], cwd=ROOT, check=True, capture_output=True)
        elapsed = time.perf_counter() - t
        return elapsed, len(json.loads(Path(out.name).read_text())["resources"])


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


def main() -> None:
    from gpuplane.engine.plan import available_stacks, plan_stack

    print("== gpuplane plan, fresh process per run (imports included), median of 3")
    print(f"{'stack':<12}{'resources':>10}{'median s':>10}{'res/s':>8}{'goal <5 s':>11}")
    for stack in available_stacks():
        runs = [cli_plan(stack) for _ in range(3)]
        med = statistics.median(r[0] for r in runs)
        n = runs[0][1]
        print(f"{stack:<12}{n:>10}{med:>10.2f}{n / med:>8.0f}{'yes' if med < 5 else 'NO':>11}")

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


if __name__ == "__main__":
    main()
