"""`pulumi up` of a small training stack on the controllers sandbox, and what Kueue and JobSet say about it.

The stack is a Python program run the way tests/engine/pulumi_lane.py runs ``stacks/__main__.py`` (the
Automation API's inline program behind the toolchain's Pulumi CLI and Kubernetes provider): a
``KubernetesCluster`` on the existing-cluster backend (the sandbox's kubeconfig), one ``SpotTrainingCluster``
(its ``GpuNodePool`` children install the device plugin from the chart archives; Kueue and JobSet are
declared present: the sandbox runs them) and the ``TrainingJob`` s of ``TrainingStack.jobs``. A test changes
the stack and runs ``up`` again, as a platform team would.

Evidence helpers read the controllers' own objects (Workloads, ClusterQueues, Events, Pods) through the
sandbox's API server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpuplane.sandbox import cluster, toolchain
from tests.engine import pulumi_lane

IMAGE = "ghcr.io/gpuplane/training:0.1.0"
CHECKPOINTS = "s3://gpuplane-sandbox-checkpoints"
KUEUE = "/apis/kueue.x-k8s.io/v1beta2"


@dataclass
class TrainingStack:
    """What the program declares; tests mutate it between ``up`` s."""

    pools: list[dict[str, Any]]
    teams: list[dict[str, Any]]
    jobs: list[dict[str, Any]] = field(default_factory=list)
    capacity_fallback: list[str] = field(default_factory=lambda: ["on_demand"])
    name: str = "train"

    def program(self, charts: Path) -> Callable[[], None]:
        def run() -> None:
            from components import KubernetesCluster, SpotTrainingCluster, TrainingJob

            k8s_cluster = KubernetesCluster("sandbox", {"cloud": "existing", "chart_source": str(charts)})
            tc = SpotTrainingCluster(self.name, {
                "cluster": k8s_cluster, "pools": self.pools, "teams": self.teams,
                "capacity_fallback": self.capacity_fallback,  # type: ignore[typeddict-item]
                "checkpoint_bucket": {"url": CHECKPOINTS}, "install_kueue": False, "install_jobset": False,
            })
            for job in self.jobs:
                TrainingJob(job["name"], {"training_cluster": tc, "image": IMAGE,
                                          **{k: v for k, v in job.items() if k != "name"}})  # type: ignore[typeddict-item]

        return run


def select(work: Path, env: dict[str, str], program: Callable[[], None], stack: str = "sandbox") -> Any:
    """An Automation API stack of a scratch project on the sandbox's backend, running ``program`` in-process."""
    from pulumi import automation as auto

    work.mkdir(parents=True, exist_ok=True)
    (work / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "gpuplane-training", "runtime": "python"}))
    engine_env = pulumi_lane.engine_env(env)
    os.environ.update(engine_env)
    command = auto.PulumiCommand(root=str(toolchain.bin_dir().parent), skip_version_check=True)
    opts = auto.LocalWorkspaceOptions(work_dir=str(work), env_vars=engine_env, pulumi_command=command,
                                      pulumi_home=engine_env.get("PULUMI_HOME"))
    return auto.create_or_select_stack(stack_name=stack, project_name="gpuplane-training", program=program, opts=opts)


# -- capacity -------------------------------------------------------------------------------------


def add_nodes(layout: cluster.Layout, pool: str, count: int, instance_type: str = "g6.xlarge",
              capacity: str = "on_demand", labels: dict[str, str] | None = None) -> list[str]:
    """``count`` kwok nodes ``<pool>-<i>`` of a catalog instance type, labelled as gpuplane's sandbox nodes are
    (gpuplane/sandbox/nodes.py: ``gpuplane.dev/pool=<pool>``, GPU taint, catalog capacity) plus ``labels``."""
    from gpuplane.sandbox.nodes import SandboxPool, node_objects

    names = []
    for node in node_objects((SandboxPool(pool, instance_type, capacity, count),)):
        node["metadata"]["labels"].update(labels or {})
        code, body = cluster.api(layout, "POST", "/api/v1/nodes", node)
        assert code == 201, body
        names.append(str(node["metadata"]["name"]))
    wait_for(f"{count} {pool} nodes Ready", lambda: all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in (get(layout, f"/api/v1/nodes/{n}").get("status") or {}).get("conditions", []))
        for n in names))
    return names


def delete_nodes(layout: cluster.Layout, names: list[str]) -> None:
    for n in names:
        cluster.api(layout, "DELETE", f"/api/v1/nodes/{n}")


# -- evidence ---------------------------------------------------------------------------------------


def get(layout: cluster.Layout, path: str) -> Any:
    code, body = cluster.api(layout, "GET", path, timeout=15)
    assert code == 200, f"GET {path}: {code} {body}"
    return body


def workload_of(layout: cluster.Layout, namespace: str, jobset: str) -> dict[str, Any] | None:
    """Kueue's Workload for a JobSet (owned by it), or None."""
    items = get(layout, f"{KUEUE}/namespaces/{namespace}/workloads")["items"]
    mine = [w for w in items if any(o.get("kind") == "JobSet" and o.get("name") == jobset
                                    for o in w["metadata"].get("ownerReferences", []))]
    return mine[0] if mine else None


def condition(wl: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for c in ((wl or {}).get("status") or {}).get("conditions", []):
        if c["type"] == kind:
            return dict(c)
    return {}


def pods_of(layout: cluster.Layout, namespace: str, jobset: str) -> list[dict[str, Any]]:
    path = f"/api/v1/namespaces/{namespace}/pods?labelSelector=jobset.sigs.k8s.io/jobset-name%3D{jobset}"
    return [p for p in get(layout, path)["items"] if not p["metadata"].get("deletionTimestamp")]


def bound(pods: list[dict[str, Any]]) -> list[str]:
    return sorted(p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName"))


def events_for(layout: cluster.Layout, namespace: str, name: str) -> list[dict[str, Any]]:
    """Events about object ``name`` in ``namespace``, oldest first."""
    path = f"/api/v1/namespaces/{namespace}/events?fieldSelector=involvedObject.name%3D{name}"
    items = get(layout, path)["items"]
    return sorted(items, key=lambda e: (e.get("lastTimestamp") or e.get("eventTime") or "", e["metadata"]["name"]))


def cluster_queue(layout: cluster.Layout, name: str) -> dict[str, Any]:
    return dict(get(layout, f"{KUEUE}/clusterqueues/{name}"))


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
