"""GpuNodePool: GPU nodes that scale from zero, tainted, with drivers and a device plugin.

One component, four implementations chosen by the cluster it is attached to:

- ``eks-managed-node-group`` (components/node_pool/eks.py): an EKS managed node group on an
  NVIDIA AMI type, with a launch template (IMDSv2, disk, EFA interfaces and a cluster placement
  group when asked), the Cluster Autoscaler node-template tags that make scale-from-zero work,
  and the NVIDIA device plugin for the pool's sharing mode.
- ``karpenter`` (components/node_pool/eks.py): a Karpenter NodePool + EC2NodeClass; on an existing
  cluster that runs Karpenter (``karpenter`` arg, components/node_pool/existing.py), a NodePool that
  refers to the cluster's own node class (the sandbox's KWOKNodeClass). The NodePool spec is shared
  (components/node_pool/karpenter.py).
- ``gke-node-pool`` (components/node_pool/gke.py): a GKE node pool with guest accelerators,
  driver installation, sharing config, spot, compact placement and autoscaling.
- ``existing-device-plugin`` (components/node_pool/existing.py): for an existing cluster it
  creates NO nodes — only the NVIDIA device plugin (with the sharing config) and the DCGM
  exporter on the nodes the cluster already has.

``plan_node_pool`` is pure: args + cluster facts + catalog → a frozen ``NodePoolPlan``, with every
problem collected and raised once before any child resource exists. Pods that should land on
the pool use ``pool.scheduling`` (node selector, tolerations, GPU resource name).
"""

from __future__ import annotations

import pulumi

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError, Problem
from components.node_pool.spec import TYPE_TOKEN, GpuNodePoolArgs, NodePoolPlan, PoolScheduling, plan_node_pool


class GpuNodePool(pulumi.ComponentResource):
    """GPU nodes for a ``KubernetesCluster``; see the module docstring for the implementations.

    Outputs: ``implementation``, ``instance_type``, ``min_nodes``, ``max_nodes``,
    ``capacity_type``, ``node_selector``. Attributes: ``plan`` (the frozen plan) and
    ``scheduling`` (node selector, tolerations, resource name for pods).
    """

    plan: NodePoolPlan
    scheduling: PoolScheduling
    cluster: KubernetesCluster
    implementation: pulumi.Output[str]
    """How the pool is built: ``eks-managed-node-group``, ``karpenter``, ``gke-node-pool`` or ``existing-device-plugin`` (existing nodes)."""
    instance_type: pulumi.Output[str | None]
    """The instance/machine type chosen from the catalog (or given); None when the pool labels existing nodes."""
    min_nodes: pulumi.Output[int]
    """Fewest nodes of the pool."""
    max_nodes: pulumi.Output[int]
    """Most nodes of the pool."""
    capacity_type: pulumi.Output[str]
    """``spot`` or ``on_demand``."""
    node_selector: pulumi.Output[dict[str, str]]
    """Node labels a pod selects to land on the pool (tolerations are in ``scheduling`` for Python users)."""

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        cluster = args.get("cluster")
        if not isinstance(cluster, KubernetesCluster):
            raise _single("GpuNodePool", name, "cluster", cluster, "is not a KubernetesCluster.", "pass the KubernetesCluster the pool joins.")
        plan = plan_node_pool(name, args, cluster.facts)  # raises before anything is registered
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan, self.scheduling, self.cluster = plan, plan.scheduling, cluster
        if cluster.facts.cloud == "kubernetes":  # an existing cluster: device plugin, or a NodePool for its Karpenter
            from components.node_pool.existing import create_node_pool
        elif plan.implementation in ("eks-managed-node-group", "karpenter"):
            from components.node_pool.eks import create_node_pool  # type: ignore[assignment]
        elif plan.implementation == "gke-node-pool":
            from components.node_pool.gke import create_node_pool  # type: ignore[assignment]
        create_node_pool(self, name, plan, cluster)
        self.implementation = pulumi.Output.from_input(plan.implementation)
        self.instance_type = pulumi.Output.from_input(plan.instance_type.name if plan.instance_type else None)
        self.min_nodes = pulumi.Output.from_input(plan.min_nodes)
        self.max_nodes = pulumi.Output.from_input(plan.max_nodes)
        self.capacity_type = pulumi.Output.from_input(plan.capacity_type)
        self.node_selector = pulumi.Output.from_input(plan.scheduling.node_selector)
        self.register_outputs(
            {
                "implementation": self.implementation,
                "instance_type": self.instance_type,
                "min_nodes": self.min_nodes,
                "max_nodes": self.max_nodes,
                "capacity_type": self.capacity_type,
                "node_selector": self.node_selector,
            }
        )


def _single(component: str, name: str, path: str, value: object, message: str, fix: str) -> Exception:
    return ComponentInputError(component, name, [Problem(path, value, message, fix)])
