"""Benchmark: scheduling on the sandbox by the real controllers, and what they cost while idle.

Prints, from one sandbox started for the run (``gpuplane sandbox up --controllers``: Kueue, JobSet and Karpenter's
kwok provider; fresh state folder):

- (a) pending GPU pod -> Ready kwok node via Karpenter: a pod that only a node of a ``GpuNodePool`` fits (the
  NodePool is what gpuplane's planner emits for the sandbox, ``karpenter.node_pool_object``); timed from the pod's
  creation to Karpenter's node Ready and to the pod bound to it; the pool is back at zero before each repeat
  (``consolidateAfter`` 0 s here, so the run is not dominated by the delay);
- (b) ``TrainingJob`` creation -> all pods bound: the JobSet gpuplane's TrainingJob emits (``jobset_manifest`` of
  ``plan_training_job``) for a ``--gang``-node job of one GPU per node, submitted to the LocalQueue of a
  ``SpotTrainingCluster`` planned for the sandbox (existing cluster; its ResourceFlavor, ClusterQueue, LocalQueue,
  namespace and service account applied once); Kueue admits it as one gang, JobSet creates the Job, the job
  controller the pods, the scheduler binds them to the sandbox's static GPU nodes. Beside it, the floor: an Indexed
  ``batch/v1`` Job of the same pods with no queue (job controller and scheduler alone, Kueue does not manage it);
- (c) the controllers' idle CPU: each controller process group's user+system CPU time from ``/proc/<pid>/stat``
  over ``--idle-seconds`` with nothing to do, as a share of one core.

Medians over ``--repeats``; every sample is printed too. The load average is printed before and after: other
processes on a 2-core machine inflate every figure.

    python -m benchmarks.sandbox_scheduling [--repeats 5] [--gang 4] [--idle-seconds 30]

Needs the toolchain (``make engine``, with the controllers); exits 2 when it is incomplete.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POOL = "bench-l4"


def _gpuplane(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "gpuplane.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"gpuplane {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def _until(check: Any, timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def pod_to_ready_node(layout: Any, repeats: int) -> list[tuple[float, float, str]]:
    """(a): per repeat, (seconds to the node Ready, seconds to the pod bound, instance type)."""
    from gpuplane.sandbox import karpenter
    from gpuplane.sandbox.cluster import api

    code, body = api(layout, "POST", "/apis/karpenter.sh/v1/nodepools",
                     karpenter.node_pool_object(POOL, max_nodes=1, scale_down_delay_seconds=0))
    if code != 201:
        raise SystemExit(f"creating the NodePool failed ({code}): {body}")
    _until(lambda: karpenter.condition(api(layout, "GET", f"/apis/karpenter.sh/v1/nodepools/{POOL}")[1], "Ready"), 60,
           "the NodePool Ready")
    samples = []
    for i in range(repeats):
        name = f"bench-{i}"
        started = time.monotonic()
        code, body = api(layout, "POST", "/api/v1/namespaces/default/pods", karpenter.gpu_pod(name, POOL))
        if code != 201:
            raise SystemExit(f"creating pod {name} failed ({code}): {body}")

        def node_ready() -> str | None:
            for claim in karpenter.nodeclaims(api, layout, POOL):
                node = claim.get("status", {}).get("nodeName")
                if node and karpenter.condition(api(layout, "GET", f"/api/v1/nodes/{node}")[1], "Ready"):
                    return str(node)
            return None

        node = _until(node_ready, 180, "Karpenter's node Ready")
        ready_s = time.monotonic() - started
        _until(lambda name=name: api(layout, "GET", f"/api/v1/namespaces/default/pods/{name}")[1].get("spec", {}).get("nodeName"),
               120, "the pod bound")
        bound_s = time.monotonic() - started
        itype = api(layout, "GET", f"/api/v1/nodes/{node}")[1]["metadata"]["labels"]["node.kubernetes.io/instance-type"]
        samples.append((ready_s, bound_s, itype))
        print(f"  (a) repeat {i + 1}: node {itype} Ready {ready_s:.2f} s, pod bound {bound_s:.2f} s", flush=True)
        api(layout, "DELETE", f"/api/v1/namespaces/default/pods/{name}?gracePeriodSeconds=0")
        _until(lambda node=node: not karpenter.nodeclaims(api, layout, POOL) and api(layout, "GET", f"/api/v1/nodes/{node}")[0] == 404,
               240, "the pool back at zero", every=0.5)
    api(layout, "DELETE", f"/apis/karpenter.sh/v1/nodepools/{POOL}")
    return samples


NAMESPACE = "bench"
TRAINING_POOL = {"name": "l4", "accelerator": "L4", "accelerators_per_node": 1, "node_vcpus": 4, "node_memory_gib": 16}


def training_plan(size: int) -> Any:
    """A SpotTrainingCluster planned for the sandbox (existing cluster): one L4 pool of ``size`` nodes, one team."""
    from components.cluster import ClusterFacts
    from components.training.planner import plan_training_cluster

    facts = ClusterFacts(cloud="kubernetes", name="sandbox", region=None, zones=(), autoscaler="none")
    args: Any = {"pools": [{**TRAINING_POOL, "max_nodes": size}], "teams": [{"name": NAMESPACE}],
                 "capacity_fallback": ["on_demand"], "checkpoint_bucket": {"url": "s3://bench-checkpoints"}}
    return plan_training_cluster("bench", args, facts)


def queue_objects(plan: Any) -> list[tuple[str, dict[str, Any]]]:
    """(path, object) for what SpotTrainingCluster applies in the cluster: namespace, service account, Kueue objects."""
    from components.training.kueue import cluster_queues, local_queue, resource_flavor

    team, kueue = plan.teams[0], "/apis/kueue.x-k8s.io/v1beta2"
    return [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": team.namespace}}),
        (f"/api/v1/namespaces/{team.namespace}/serviceaccounts",
         {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": team.service_account}}),
        *((f"{kueue}/resourceflavors", resource_flavor(plan, pool.name, c.capacity)) for pool in plan.pools for c in pool.capacities),
        *((f"{kueue}/clusterqueues", q) for q in cluster_queues(plan)),
        (f"{kueue}/namespaces/{team.namespace}/localqueues", local_queue(plan, team)),
    ]


def training_to_bound(layout: Any, repeats: int, size: int) -> list[float]:
    """(b): per repeat, seconds from the TrainingJob's JobSet creation to all of its pods bound."""
    from components.training_job.jobset import jobset_manifest
    from components.training_job.spec import plan_training_job
    from gpuplane.sandbox.cluster import api

    plan = training_plan(size)
    for path, body in queue_objects(plan):
        code, out = api(layout, "POST", path, body)
        if code not in (201, 409):
            raise SystemExit(f"creating {body['kind']} failed ({code}): {out}")
    samples = []
    for i in range(repeats):
        name = f"train-{i}"
        job = plan_training_job(name, {"team": NAMESPACE, "image": "ghcr.io/gpuplane/training:0.1.0", "nodes": size}, plan)  # type: ignore[typeddict-item]
        manifest = jobset_manifest(job, "ghcr.io/gpuplane/training:0.1.0", f"s3://bench-checkpoints/{name}")
        selector = f"jobset.sigs.k8s.io/jobset-name%3D{name}"
        started = time.monotonic()
        code, body = api(layout, "POST", f"/apis/jobset.x-k8s.io/v1alpha2/namespaces/{NAMESPACE}/jobsets", manifest)
        if code != 201:
            raise SystemExit(f"creating JobSet {name} failed ({code}): {body}")

        def bound(selector: str = selector) -> bool:
            _, pods = api(layout, "GET", f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={selector}")
            items = [p for p in pods.get("items", []) if not p["metadata"].get("deletionTimestamp")] if isinstance(pods, dict) else []
            return len(items) == size and all(p["spec"].get("nodeName") for p in items)

        _until(bound, 180, f"all {size} pods of TrainingJob {name} bound")
        samples.append(time.monotonic() - started)
        print(f"  (b) repeat {i + 1}: TrainingJob {name}: {size} pods bound {samples[-1]:.2f} s", flush=True)
        api(layout, "DELETE", f"/apis/jobset.x-k8s.io/v1alpha2/namespaces/{NAMESPACE}/jobsets/{name}?propagationPolicy=Foreground")
        _until(lambda selector=selector: not api(layout, "GET", f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={selector}")[1].get("items"),
               180, f"the pods of {name} gone", every=0.2)
    return samples


def gang_job(name: str, size: int) -> dict[str, Any]:
    """An Indexed Job of ``size`` one-GPU pods on the sandbox's GPU nodes, with no queue (Kueue leaves it alone)."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"completionMode": "Indexed", "completions": size, "parallelism": size, "backoffLimit": 0,
                     "template": {"spec": {
                         "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                         "nodeSelector": {"nvidia.com/gpu.present": "true"},
                         "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                         "containers": [{"name": "rank", "image": "registry.k8s.io/pause:3.10",
                                         "resources": {"requests": {"cpu": "100m", "nvidia.com/gpu": "1"},
                                                       "limits": {"nvidia.com/gpu": "1"}}}]}}}}


def gang_to_bound(layout: Any, repeats: int, size: int) -> list[float]:
    """(b) floor: per repeat, seconds from the plain Job's creation to all of its pods bound."""
    from gpuplane.sandbox.cluster import api

    samples = []
    for i in range(repeats):
        name = f"gang-{i}"
        started = time.monotonic()
        code, body = api(layout, "POST", "/apis/batch/v1/namespaces/default/jobs", gang_job(name, size))
        if code != 201:
            raise SystemExit(f"creating Job {name} failed ({code}): {body}")

        def bound(name: str = name) -> bool:
            _, pods = api(layout, "GET", f"/api/v1/namespaces/default/pods?labelSelector=job-name%3D{name}")
            items = pods.get("items", []) if isinstance(pods, dict) else []
            return len(items) == size and all(p["spec"].get("nodeName") for p in items)

        _until(bound, 120, f"all {size} pods of {name} bound")
        samples.append(time.monotonic() - started)
        print(f"  (b) floor repeat {i + 1}: plain Job {name}: {size} pods bound {samples[-1]:.2f} s", flush=True)
        api(layout, "DELETE", f"/apis/batch/v1/namespaces/default/jobs/{name}?propagationPolicy=Foreground&gracePeriodSeconds=0")
        _until(lambda name=name: not api(layout, "GET", f"/api/v1/namespaces/default/pods?labelSelector=job-name%3D{name}")[1].get("items"),
               120, f"the pods of {name} gone", every=0.2)
    return samples


def _group_ticks(pgid: int) -> int:
    """User+system clock ticks of every live process in process group ``pgid``."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total


def idle_cpu(layout: Any, seconds: float) -> dict[str, float]:
    """(c): each process group's CPU over ``seconds`` as a percentage of one core."""
    from gpuplane.sandbox.cluster import _read_pids

    pids = {n: int(e["pid"]) for n, e in _read_pids(layout).items()}
    hz = os.sysconf("SC_CLK_TCK")
    before = {n: _group_ticks(p) for n, p in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    return {n: 100.0 * (_group_ticks(p) - before[n]) / hz / elapsed for n, p in pids.items()}


def _med(xs: list[float]) -> str:
    return f"median {statistics.median(xs):6.2f} s  ({', '.join(f'{x:.2f}' for x in xs)})"


def main(argv: list[str] | None = None) -> int:
    from gpuplane.sandbox import cluster, karpenter, toolchain

    parser = argparse.ArgumentParser(prog="python -m benchmarks.sandbox_scheduling")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gang", type=int, default=3, help="nodes of the TrainingJob (one GPU each; the sandbox has 10 GPUs "
                        "on 3 nodes, and a pod sized for a 4-vCPU L4 node fits each of them once)")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    gone = toolchain.missing([*toolchain.SANDBOX_BINARIES, *toolchain.CONTROLLER_BINARIES, "helm"])
    if gone or karpenter.module_dir() is None:
        print(f"toolchain incomplete ({', '.join(gone) or karpenter.MODULE}): run `make engine`", file=sys.stderr)
        return 2
    print(f"load average before: {os.getloadavg()}")
    home = Path(tempfile.mkdtemp(prefix="sched-bench-"))
    env = {**os.environ, "GPUPLANE_SANDBOX_HOME": str(home)}
    port = next(b for b in range(46443, 60000, 20) if all(cluster.port_free(p) for p in range(b, b + 12)))
    started = time.monotonic()
    _gpuplane(env, "sandbox", "up", "--name", "bench", "--port", str(port), "--no-build", "--controllers")
    up_s = time.monotonic() - started
    layout = cluster.load_layout("bench", port, home)
    try:
        print(f"sandbox with Kueue, JobSet and Karpenter up in {up_s:.1f} s")
        a = pod_to_ready_node(layout, args.repeats)
        b = training_to_bound(layout, args.repeats, args.gang)
        b0 = gang_to_bound(layout, args.repeats, args.gang)
        time.sleep(2.0)  # let the last deletions settle before the idle window
        cpu = idle_cpu(layout, args.idle_seconds)
    finally:
        _gpuplane(env, "sandbox", "down", "--name", "bench", "--purge")
        shutil.rmtree(home, ignore_errors=True)
    print(f"\n(a) pending GPU pod -> Ready kwok node via Karpenter ({a[0][2]}, cheapest spot type the NodePool allows):")
    print(f"    node Ready   {_med([x[0] for x in a])}")
    print(f"    pod bound    {_med([x[1] for x in a])}")
    print(f"(b) {args.gang}-node TrainingJob -> all pods bound (Kueue admission, JobSet, job controller, scheduler):")
    print(f"    all bound    {_med(b)}")
    print(f"    floor: plain {args.gang}-pod Indexed Job, no queue  {_med(b0)}  (TrainingJob / floor "
          f"{statistics.median(b) / statistics.median(b0):.1f}x)")
    print(f"(c) idle CPU over {args.idle_seconds:.0f} s, % of one core (process group):")
    for n, pct in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"    {n:26} {pct:6.2f} %")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
