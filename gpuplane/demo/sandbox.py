"""``gpuplane demo --sandbox``: the reference TrainingJob scheduled by the real controllers on a local sandbox.

Steps, each printed as it happens:

1. a sandbox of its own with Kueue, JobSet and Karpenter's kwok provider (``gpuplane sandbox up --controllers``),
   name ``demo``, on the first free base port from 56443, state in a temporary folder;
2. what gpuplane emits for the ``aws-dev`` stack's training (``gpuplane:training``), planned as on an EKS cluster with
   Karpenter in us-east-1 (the catalog region the sandbox's Karpenter offers): for each training pool and capacity
   type the ``GpuNodePool``'s NodePool (gpuplane's own planner and spec; ``nodeClassRef`` the sandbox's
   KWOKNodeClass, weights following the spot-first fallback), Kueue's ResourceFlavors, ClusterQueue(s) and
   LocalQueue(s), the team namespace, and the reference TrainingJob (``recs-gpt``) as its rendezvous Service and JobSet;
3. Kueue's admission of the job's Workload (ClusterQueue and flavor per pod set, or Kueue's pending message), the
   NodeClaims and nodes Karpenter created (type, capacity type, zone, catalog price) and where the pods run;
4. ``gpuplane sandbox down --purge``, whatever happened.

``run_sandbox_demo`` returns 0 when Kueue admitted the job and its pods all run on Karpenter's nodes, 1 otherwise
(Kueue's conditions on the Workload are printed), 2 when the toolchain is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
STACK = "aws-dev"
JOB = "recs-gpt"
NAME = "demo"


def _training_config() -> tuple[dict[str, Any], dict[str, Any]]:
    """(SpotTrainingCluster args less ``cluster``, the reference job's args) from the stack's config."""
    import yaml

    from stacks.config import parse_config

    values = yaml.safe_load((REPO / "stacks" / f"Pulumi.{STACK}.yaml").read_text())["config"]
    cfg = parse_config(values).training
    assert cfg is not None
    pools = []
    for p in cfg.pools:
        pool: dict[str, Any] = {"name": p.name, "accelerator": p.accelerator, "max_nodes": p.max_nodes}
        if p.accelerators_per_node:
            pool["accelerators_per_node"] = p.accelerators_per_node
        pools.append(pool)
    teams = [{"name": t.name, **({"gpu_quota": dict(t.gpu_quota)} if t.gpu_quota else {})} for t in cfg.teams]
    job = next(j for j in cfg.jobs if j.name == JOB)
    return ({"pools": pools, "teams": teams, "checkpoint_bucket": {"url": "s3://gpuplane-demo-checkpoints"}},
            {"team": job.team, "image": job.image, "nodes": job.nodes, "preset": job.preset})


def training_objects() -> dict[str, list[dict[str, Any]]]:
    """Everything step 2 applies, by kind of step (pure: planners and manifest functions only)."""
    from components.cluster import ClusterFacts
    from components.node_pool import plan_node_pool
    from components.node_pool.karpenter import karpenter_node_pool_spec
    from components.training.kueue import cluster_queues, local_queue, resource_flavor
    from components.training.planner import plan_training_cluster
    from components.training_job.jobset import headless_service, jobset_manifest
    from components.training_job.spec import plan_training_job
    from gpuplane.sandbox import karpenter

    cluster_args, job_args = _training_config()
    facts = ClusterFacts(cloud="aws", name="sandbox", region=karpenter.REGION, zones=(), autoscaler="karpenter")
    plan = plan_training_cluster("train", cluster_args, facts)  # type: ignore[arg-type]
    existing = ClusterFacts(cloud="kubernetes", name="sandbox", region=None, zones=(), autoscaler="none")
    node_pools = []
    for pool in plan.pools:
        for c in pool.capacities:
            args = {**c.node_pool_args, "karpenter": {"node_class": dict(karpenter.NODE_CLASS), "region": karpenter.REGION},
                    "scale_down_delay_seconds": 30}
            args.pop("tags", None)
            np_plan = plan_node_pool(c.node_pool_name, args, existing)  # type: ignore[arg-type]
            assert np_plan.node_class is not None
            node_pools.append({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": c.node_pool_name},
                               "spec": karpenter_node_pool_spec(np_plan, np_plan.node_class)})
    flavors = [resource_flavor(plan, pool.name, c.capacity) for pool in plan.pools for c in pool.capacities]
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": t.namespace}} for t in plan.teams]
    # The team's workload identity (SpotTrainingCluster makes it; the job's pods run as it).
    accounts = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": t.service_account, "namespace": t.namespace}}
                for t in plan.teams]
    queues = [*cluster_queues(plan), *(local_queue(plan, t) for t in plan.teams)]
    job = plan_training_job(JOB, job_args, plan)  # type: ignore[arg-type]
    svc = headless_service(job)
    service = {"apiVersion": "v1", "kind": "Service", **svc}
    jobset = jobset_manifest(job, job_args["image"], "s3://gpuplane-demo-checkpoints/recs-gpt")
    return {"node_pools": node_pools, "namespace_and_accounts": [*namespaces, *accounts], "kueue": [*flavors, *queues], "service": [service],
            "jobset": [jobset], "plan": [{"nodes": job.nodes, "namespace": job.team.namespace}]}


def _path(obj: dict[str, Any]) -> str:
    group_version, kind = obj["apiVersion"], obj["kind"]
    plural = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "Service": "services", "Job": "jobs", "NodePool": "nodepools",
              "ResourceFlavor": "resourceflavors", "ClusterQueue": "clusterqueues", "LocalQueue": "localqueues",
              "JobSet": "jobsets"}[kind]
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    ns = obj["metadata"].get("namespace")
    return f"{base}/namespaces/{ns}/{plural}" if ns else f"{base}/{plural}"


def run_sandbox_demo(echo: Callable[[str], None] = print, timeout_s: float = 240.0) -> int:
    from gpuplane.sandbox import cluster, toolchain
    from gpuplane.sandbox.cluster import api

    gone = toolchain.missing([*toolchain.SANDBOX_BINARIES, *toolchain.CONTROLLER_BINARIES, "helm"])
    if gone:
        echo(f"the sandbox's programs are not built ({', '.join(gone)}); run `make engine`")
        return 2
    home = Path(tempfile.mkdtemp(prefix="gpuplane-demo-sandbox-"))
    env = {**os.environ, "GPUPLANE_SANDBOX_HOME": str(home)}
    port = next(b for b in range(56443, 64000, 20) if all(cluster.port_free(p) for p in range(b, b + 12)))
    flag = "--controllers"
    echo(f"== 1. sandbox '{NAME}' with Kueue, JobSet and Karpenter's kwok provider ({flag})")
    up = subprocess.run([sys.executable, "-m", "gpuplane.cli", "sandbox", "up", "--name", NAME, "--port", str(port),
                         "--no-build", flag], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    echo(up.stdout.rstrip())
    layout = cluster.load_layout(NAME, port, home)
    try:
        if up.returncode != 0:
            echo(f"sandbox up failed ({up.returncode}): {up.stderr.strip()}")
            return 1
        return _run(layout, echo, timeout_s, api)
    finally:
        down = subprocess.run([sys.executable, "-m", "gpuplane.cli", "sandbox", "down", "--name", NAME, "--purge"],
                              cwd=REPO, env=env, capture_output=True, text=True, check=False)
        echo(f"== 4. {down.stdout.strip() or down.stderr.strip()}")
        if down.returncode == 0:
            shutil.rmtree(home, ignore_errors=True)


def _run(layout: Any, echo: Callable[[str], None], timeout_s: float, api: Any) -> int:
    from components.catalog import load_catalog
    from gpuplane.sandbox import karpenter

    objs = training_objects()
    jobset = objs["jobset"][0]
    ns, size = objs["plan"][0]["namespace"], objs["plan"][0]["nodes"]
    steps = ["node_pools", "namespace_and_accounts", "kueue", "service"]
    echo(f"== 2. what gpuplane emits for stack {STACK}'s training: "
         + ", ".join(f"{len(objs[s])} {s.replace('_', ' ')}" for s in steps) + f", TrainingJob {JOB} ({size} nodes)")
    for step in steps:
        for obj in objs[step]:
            code, body = api(layout, "POST", _path(obj), obj)
            if code not in (200, 201, 409):
                echo(f"   creating {obj['kind']} {obj['metadata']['name']} failed ({code}): {str(body)[:300]}")
                return 1
            echo(f"   {obj['kind']:<15} {obj['metadata']['name']}" + (
                f"  weight {obj['spec'].get('weight', '-')}, {obj['spec']['template']['spec']['requirements'][1]['values'][0]}"
                if obj["kind"] == "NodePool" else ""))
    submitted = jobset
    started = time.monotonic()
    code, body = api(layout, "POST", _path(submitted), submitted)
    if code != 201:
        echo(f"   submitting {submitted['kind']} {JOB} failed ({code}): {str(body)[:300]}")
        return 1
    echo(f"   {submitted['kind']:<15} {JOB} submitted to namespace {ns}")
    echo("== 3. what the controllers did")
    deadline, admitted_shown = time.monotonic() + timeout_s, False
    pods: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if not admitted_shown:
            _, wl = api(layout, "GET", f"/apis/kueue.x-k8s.io/v1beta2/namespaces/{ns}/workloads")
            for w in wl.get("items", []) if isinstance(wl, dict) else []:
                adm = w.get("status", {}).get("admission")
                if adm:
                    flavors = {a["name"]: a.get("flavors", {}) for a in adm.get("podSetAssignments", [])}
                    echo(f"   Kueue admitted Workload {w['metadata']['name']} to ClusterQueue {adm['clusterQueue']}: {flavors} "
                         f"({time.monotonic() - started:.1f} s)")
                    admitted_shown = True
        _, listed = api(layout, "GET", f"/api/v1/namespaces/{ns}/pods")
        pods = listed.get("items", []) if isinstance(listed, dict) else []
        if len(pods) >= size and all(p.get("status", {}).get("phase") == "Running" for p in pods):
            break
        time.sleep(1.0)
    catalog = load_catalog()
    claims = karpenter.nodeclaims(api, layout)
    for c in claims:
        node = c.get("status", {}).get("nodeName", "-")
        labels = c["metadata"].get("labels", {})
        itype, cap = labels.get("node.kubernetes.io/instance-type", "?"), labels.get("karpenter.sh/capacity-type", "?")
        price = catalog.price("aws", itype, karpenter.REGION, cap.replace("-", "_"))  # type: ignore[arg-type]
        echo(f"   Karpenter NodeClaim {c['metadata']['name']} (NodePool {labels.get('karpenter.sh/nodepool')}): {itype} {cap} "
             f"in {labels.get('topology.kubernetes.io/zone', '?')}, ${price}/h, node {node}, "
             f"{'Ready' if karpenter.condition(c, 'Initialized') else 'not initialized'}")
    for p in pods:
        echo(f"   pod {p['metadata']['name']}: {p.get('status', {}).get('phase')} on {p['spec'].get('nodeName', '-')}")
    karpenter_nodes = {c.get("status", {}).get("nodeName") for c in claims}
    ok = admitted_shown and len(pods) >= size and all(p["spec"].get("nodeName") in karpenter_nodes for p in pods)
    echo(f"   {'all' if ok else 'NOT all'} {size} pods of {JOB} run on nodes Karpenter created "
         f"({time.monotonic() - started:.1f} s after submission)")
    if not ok and not admitted_shown:
        _, wl = api(layout, "GET", f"/apis/kueue.x-k8s.io/v1beta2/namespaces/{ns}/workloads")
        for w in wl.get("items", []) if isinstance(wl, dict) else []:
            echo(f"   Kueue: Workload {w['metadata']['name']}: " + "; ".join(
                f"{c['type']}={c['status']} {c.get('message', '')}" for c in w.get("status", {}).get("conditions", [])))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(run_sandbox_demo())


__all__ = ["run_sandbox_demo", "training_objects"]
