"""The ``karpenter.sh/v1`` NodePool a Karpenter GpuNodePool becomes, shared by every backend that emits one.

Contract: ``karpenter_node_pool_spec(plan, node_class)`` is pure and returns the NodePool ``spec`` for a
planned pool; the caller supplies the node class reference (``eks.py``: the EC2NodeClass it creates;
``existing.py``: the node class the cluster already has, e.g. the sandbox's ``KWOKNodeClass``). Field
names follow Karpenter's NodePool CRD (sigs.k8s.io/karpenter v1.14, ``charts/crds/karpenter.sh_nodepools.yaml``):

- ``template.metadata.labels``: the pool's labels (pool, accelerator, capacity type, extra labels);
- ``template.spec.nodeClassRef``: ``{group, kind, name}``;
- ``template.spec.requirements``: the catalog's candidate instance types (``In``), the capacity type
  (``karpenter.sh/capacity-type``: ``spot`` | ``on-demand``) and the zones; Karpenter picks the cheapest
  offering these allow;
- ``template.spec.taints``: the pool's taints;
- ``limits``: ``nvidia.com/gpu`` = ``max_nodes x gpus per node``;
- ``disruption``: ``consolidationPolicy: WhenEmpty`` and ``consolidateAfter`` = the pool's
  ``scale_down_delay_seconds`` (CRD pattern ``^(([0-9]+(s|m|h))+|Never)$``);
- ``weight``: the pool's ``priority`` when set (1-100).

Creates nothing; no Pulumi import.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.node_pool.spec import NodePoolPlan

KARPENTER_CAPACITY_TYPES = {"on_demand": "on-demand", "spot": "spot", "capacity_block": "reserved"}
"""gpuplane capacity type -> the value of Karpenter's ``karpenter.sh/capacity-type`` label."""
LABEL_KARPENTER_CAPACITY = "karpenter.sh/capacity-type"
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_ZONE = "topology.kubernetes.io/zone"
EC2_NODE_CLASS = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass"}
"""The node class group and kind of Karpenter's AWS provider (the name is per pool)."""


def k8s_name(name: str) -> str:
    """A DNS-1123 name for a Kubernetes object derived from a Pulumi resource name."""
    out = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return out[:63].rstrip("-") or "pool"


def duration(seconds: int) -> str:
    """Seconds as a Karpenter duration (``90`` -> ``90s``, ``300`` -> ``5m``, ``7200`` -> ``2h``)."""
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def karpenter_node_pool_spec(plan: NodePoolPlan, node_class: dict[str, str]) -> dict[str, Any]:
    """``karpenter.sh/v1`` NodePool spec of a planned pool referring to ``node_class`` (``group``, ``kind``, ``name``)."""
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": dict(plan.labels)},
            "spec": {
                "nodeClassRef": {"group": node_class["group"], "kind": node_class["kind"], "name": node_class["name"]},
                "requirements": [
                    {"key": LABEL_INSTANCE_TYPE, "operator": "In", "values": list(plan.candidate_instance_types)},
                    {"key": LABEL_KARPENTER_CAPACITY, "operator": "In",
                     "values": [KARPENTER_CAPACITY_TYPES[plan.capacity_type]]},
                    {"key": LABEL_ZONE, "operator": "In", "values": list(plan.zones)},
                ],
                "taints": [
                    {"key": t.key, "value": t.value, "effect": t.effect} if t.value else {"key": t.key, "effect": t.effect}
                    for t in plan.taints
                ],
            },
        },
        "limits": {"nvidia.com/gpu": plan.max_nodes * plan.gpus_per_node},
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": duration(plan.scale_down_delay_seconds)},
    }
    if plan.priority:
        spec["weight"] = plan.priority  # the CRD allows 1-100; 0 means "no weight"
    return spec
