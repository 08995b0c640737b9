"""Benchmark: `gpuplane plan --stack local` against `pulumi preview --stack local` on the sandbox, and the
sandbox itself.

Prints, measured side by side in one run (fresh processes, medians of ``--runs``):

- ``gpuplane sandbox up`` cold (a new sandbox: certificates, etcd data, nodes) and warm (``up`` again
  after ``down``, data kept), and ``down``;
- ``gpuplane plan --stack local`` (offline: mock runtime, validation, policies, pricing);
- ``pulumi preview --stack local`` on the sandbox with the toolchain's CLI and Kubernetes provider
  (the program in-process behind the CLI's ``--client``: tests/engine/pulumi_lane.py), and the ratio;
- ``pulumi up`` of the local stack (charts from ../shared/charts), then ``destroy``.

    python -m benchmarks.engine_vs_plan [--runs 3] [--no-up]

Needs the toolchain (``make engine``); the load average is printed before and after, since other
processes on a 2-core machine inflate every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _run(cmd: list[str], env: dict[str, str], timeout: float = 900) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc


def _gpuplane(*args: str) -> list[str]:
    return [sys.executable, "-m", "gpuplane.cli", *args]


def main() -> int:
    from tests.engine import dry_run, pulumi_lane
    from tests.engine.conftest import exports, free_base_port

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-up", action="store_true", help="skip pulumi up/destroy")
    args = parser.parse_args()
    missing = pulumi_lane.missing_programs()
    if missing:
        print(f"toolchain incomplete ({', '.join(missing)}): run `make engine`", file=sys.stderr)
        return 2
    print(f"load average before: {os.getloadavg()}")
    home = Path(tempfile.mkdtemp(prefix="engine-bench-"))
    env = {**os.environ, "GPUPLANE_SANDBOX_HOME": str(home)}
    port = str(free_base_port(36443))
    up = ["sandbox", "up", "--name", "bench", "--port", port, "--no-build"]
    cold, _ = _run(_gpuplane(*up), env)
    down_s, _ = _run(_gpuplane("sandbox", "down", "--name", "bench"), env)
    warm, _ = _run(_gpuplane(*up), env)
    try:
        _, exp = _run(_gpuplane("sandbox", "env", "--name", "bench"), env)
        sb_env = exports(exp.stdout, env)
        plan = [_run(_gpuplane("plan", "--stack", "local", "-f", "json"), env)[0] for _ in range(args.runs)]
        charts = dry_run.charts_dir()
        work = home / "project"
        lane = [sys.executable, "-m", "tests.engine.pulumi_lane"]
        extra = ["--stack", "local", "--work", str(work)] + (["--chart-source", str(charts)] if charts else [])
        preview = [_run([*lane, "preview", *extra], sb_env)[0] for _ in range(args.runs)]
        print(f"sandbox up cold {cold:.1f} s, warm {warm:.1f} s, down {down_s:.1f} s")
        p, q = statistics.median(plan), statistics.median(preview)
        print(f"gpuplane plan --stack local      median {p:.2f} s  ({', '.join(f'{x:.2f}' for x in plan)})")
        print(f"pulumi preview --stack local     median {q:.2f} s  ({', '.join(f'{x:.2f}' for x in preview)})")
        print(f"ratio preview / plan             {q / p:.1f}x")
        if not args.no_up:
            # Knative Serving's CRDs come from its operator at run time, which does not run on kwok nodes:
            # install the pinned Service CRD first, as tests/engine/test_pulumi_local.py does.
            from gpuplane.engine import manifests
            from tests.engine.kubeapi import KubeAPI

            api = KubeAPI(Path(sb_env["KUBECONFIG"]))
            knative = {c["metadata"]["name"]: c for c in manifests.pinned_crds()
                       if c["metadata"]["name"] == "services.serving.knative.dev"}
            assert dry_run.install_crds(api, knative) == []
            up_s, up_proc = _run([*lane, "up", *extra], sb_env)
            destroy_s, _ = _run([*lane, "destroy", *extra], sb_env)
            print(f"pulumi up --stack local          {up_s:.1f} s ({json.loads(up_proc.stdout.splitlines()[-1])['changes']})")
            print(f"pulumi destroy --stack local     {destroy_s:.1f} s")
    finally:
        _run(_gpuplane("sandbox", "down", "--name", "bench", "--purge"), env)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
