"""The sandbox's simulated nodes: Kubernetes ``Node`` objects that kwok keeps Ready.

Contract: ``node_objects()`` turns ``SANDBOX_POOLS`` into plain Node manifests (dicts). Each GPU
pool is planned by gpuplane's own ``plan_node_pool`` on an AWS/Karpenter cluster, so the nodes carry
exactly the labels and taints a ``GpuNodePool`` of that name gives its nodes (pool, accelerator and
capacity-type labels; ``nvidia.com/gpu=present:NoSchedule``), plus what the node would carry on
EKS (``node.kubernetes.io/instance-type``, ``karpenter.sh/capacity-type``, zone, region) and what
NVIDIA GPU feature discovery adds (``nvidia.com/gpu.present``, ``nvidia.com/gpu.count``), so that
both the EKS pools' selectors and an existing-cluster pool's selector match. Capacity comes from
the catalog (vCPUs, memory, GPUs). The annotation ``kwok.x-k8s.io/node=fake`` hands the node to
kwok (run with ``--manage-nodes-with-annotation-selector``). Pure: no cluster access.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.catalog import Catalog, load_catalog

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"
REGION = "us-east-1"
ZONE = "us-east-1a"
PODS_PER_NODE = 110


@dataclass(frozen=True)
class SandboxPool:
    """One group of simulated nodes."""

    name: str
    """Pool name (``gpuplane.dev/pool`` label); node names are ``<name>-<index>``."""
    instance_type: str
    """AWS instance type from the catalog (its vCPUs, memory and GPUs become the node's capacity)."""
    capacity_type: str
    """``spot`` or ``on_demand``."""
    count: int
    """Number of nodes."""


SANDBOX_POOLS: tuple[SandboxPool, ...] = (
    SandboxPool("gpu-spot-l4", "g6.xlarge", "spot", 2),
    SandboxPool("gpu-h100", "p5.48xlarge", "on_demand", 1),
    SandboxPool("system", "m6i.xlarge", "on_demand", 2),
)


def _pool_labels_and_taints(pool: SandboxPool, catalog: Catalog) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Labels and taints of a pool, from gpuplane's own GpuNodePool planner for GPU types."""
    from components.cluster import ClusterFacts
    from components.node_pool import LABEL_CAPACITY, LABEL_POOL, plan_node_pool

    it = catalog.instance_type("aws", pool.instance_type)
    if it is None:
        raise ValueError(f"sandbox pool {pool.name!r}: instance type {pool.instance_type!r} is not in the AWS catalog")
    if not it.gpus:
        return {LABEL_POOL: pool.name, LABEL_CAPACITY: pool.capacity_type.replace("_", "-")}, []
    facts = ClusterFacts(cloud="aws", name="sandbox", region=REGION, zones=(ZONE, "us-east-1b", "us-east-1c"),
                         autoscaler="karpenter")
    args: Any = {"accelerator": it.accelerator, "accelerators_per_node": it.gpus, "instance_type": it.name,
                 "capacity_type": pool.capacity_type, "max_nodes": pool.count}
    plan = plan_node_pool(pool.name, args, facts, catalog)
    taints = [{"key": t.key, "value": t.value, "effect": t.effect} for t in plan.taints]
    return dict(plan.labels), taints


def node_objects(pools: tuple[SandboxPool, ...] = SANDBOX_POOLS, catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """Node manifests for every node of every pool, in pool order."""
    catalog = catalog or load_catalog()
    nodes: list[dict[str, Any]] = []
    for pool in pools:
        it = catalog.instance_type("aws", pool.instance_type)
        if it is None:
            raise ValueError(f"sandbox pool {pool.name!r}: instance type {pool.instance_type!r} is not in the AWS catalog")
        labels, taints = _pool_labels_and_taints(pool, catalog)
        resources = {"cpu": str(it.vcpus), "memory": f"{int(it.memory_gib)}Gi", "pods": str(PODS_PER_NODE),
                     "ephemeral-storage": "200Gi"}
        if it.gpus:
            resources["nvidia.com/gpu"] = str(it.gpus)
            labels |= {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": str(it.gpus)}
        for i in range(pool.count):
            name = f"{pool.name}-{i}"
            nodes.append({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/arch": "amd64",
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/hostname": name,
                        "type": "kwok",
                        "node.kubernetes.io/instance-type": it.name,
                        "karpenter.sh/capacity-type": pool.capacity_type.replace("_", "-"),
                        "topology.kubernetes.io/region": REGION,
                        "topology.kubernetes.io/zone": ZONE,
                        **labels,
                    },
                },
                "spec": {"taints": taints} if taints else {},
                "status": {
                    "capacity": dict(resources),
                    "allocatable": dict(resources),
                    "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake",
                                 "kubeProxyVersion": "fake"},
                },
            })
    return nodes


def gpu_capacity(nodes: list[dict[str, Any]]) -> dict[str, int]:
    """``{node name: nvidia.com/gpu}`` for the GPU nodes among ``nodes``."""
    return {n["metadata"]["name"]: int(n["status"]["capacity"]["nvidia.com/gpu"])
            for n in nodes if "nvidia.com/gpu" in n["status"]["capacity"]}
