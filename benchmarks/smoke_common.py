"""Every benchmark script at tiny sizes: a smoke run that catches a benchmark that crashes.

``python -m benchmarks.smoke_common [NAME ...]`` (``make bench-smoke``) runs each script in
``benchmarks/`` with the arguments in ``SMOKE`` and prints one line per script; it exits 1 when
any script exits non-zero. No figure is checked: smoke sizes are far too small to mean anything.
``tests/test_benchmarks.py`` runs the same table, so a new script without an entry here fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELPERS = frozenset({"__init__", "serving_common", "reference_common", "smoke_common"})
"""Modules in benchmarks/ that are not benchmark scripts."""

SMOKE: dict[str, list[str]] = {
    "batch_throughput": ["--users", "60", "--items", "50", "--days", "1", "--repeats", "1", "--concurrency", "4",
                         "--objects", "3"],
    "dispatch": ["--workloads", "20", "--clusters", "3", "--days", "0.5", "--jobs-per-day", "20", "--runs", "1"],
    "edge_inference": ["--requests", "20", "--repeats", "1"],
    "engine_vs_plan": ["--runs", "1", "--no-up"],  # needs the sandbox toolchain: smoke-run in the engine lane
    "features_bench": ["--users", "50", "--items", "40", "--days", "2", "--iterations", "3", "--batch-sizes", "1,4"],
    "gpu_h200": ["--preset", "tiny", "--steps", "10", "--batch-size", "4", "--no-compile"],  # SIGTERM at a logged step (every 10)
    "pipeline_loop": ["--repeats", "1", "--steady-seconds", "2"],
    "plan_bench": ["--runs", "1", "--stacks", "local", "--no-scaling"],
    "policy_bench": ["--repeats", "1", "--sizes", "5,10"],
    "router_overhead": ["--requests", "20"],
    "sandbox_scheduling": ["--repeats", "1", "--gang", "2", "--idle-seconds", "2"],  # sandbox toolchain: engine lane
    "serving_coldstart": ["--model-mb", "1", "--repeats", "1"],
    "serving_throughput": ["--duration", "0.5", "--concurrency", "2", "--models", "tiny", "--load-generator", "python",
                           "--repeats", "1", "--activator-requests", "5"],
    "simulate_hybrid": ["--head", "30"],  # without the trace it prints where to get it and exits 0
    "simulate_savings": ["--days", "0.05", "--mean-rps", "0.5"],
    "simulate_speed": ["--days", "0.05", "--endpoints", "2", "--runs", "1", "--mean-rps", "0.5"],
    "tracing_overhead": ["--requests", "5", "--rounds", "1"],
    "training_checkpoint": ["--repeats", "1", "--skip-small"],
    "training_overhead": ["--steps", "3", "--repeats", "1", "--batch-size", "4"],
    "two_tier_sim": ["--mean-rps", "0.05", "--bursts-per-day", "2"],
}
"""Tiny arguments per script (its own flags; nothing here changes what a full run measures)."""

ENGINE_LANE = frozenset({"engine_vs_plan", "sandbox_scheduling"})
"""Scripts that need `gpuplane sandbox`'s toolchain: tests/engine/test_benchmark_smoke.py runs them."""


def scripts() -> list[str]:
    return sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem not in HELPERS)


def run(name: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *SMOKE[name]], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or scripts()
    failed = []
    for name in names:
        if name not in SMOKE:
            print(f"benchmarks/{name}.py: no smoke arguments; add it to SMOKE in benchmarks/smoke_common.py")
            failed.append(name)
            continue
        t = time.perf_counter()
        r = run(name)
        status = "ok" if r.returncode == 0 else f"FAILED (exit {r.returncode})"
        print(f"benchmarks/{name}.py: {status} in {time.perf_counter() - t:.1f} s", flush=True)
        if r.returncode != 0:
            failed.append(name)
            print((r.stdout + r.stderr)[-2000:])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
