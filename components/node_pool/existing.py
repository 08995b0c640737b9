"""GpuNodePool on an existing cluster: a device plugin on the cluster's own GPU nodes, or a Karpenter NodePool.

Without ``karpenter`` (implementation ``existing-device-plugin``) it creates NO nodes: it installs the
NVIDIA device plugin (with the pool's sharing config: time-slicing, MPS or the MIG strategy) and the
DCGM exporter onto the GPU nodes the cluster already has, selected by NVIDIA GPU feature discovery's
``nvidia.com/gpu.present`` label plus any labels given. Node count, capacity type and placement belong
to whoever owns the cluster, so asking for them fails with the reasons in spec.py.

With ``karpenter`` (implementation ``karpenter``: the cluster already runs Karpenter, e.g. the sandbox's
kwok provider) it also creates a ``karpenter.sh/v1`` NodePool, the same spec as on EKS (karpenter.py),
whose ``nodeClassRef`` is the node class the cluster has (gpuplane does not create it, nor Karpenter's
CRDs); the device plugin then selects the pool's own nodes (``gpuplane.dev/pool``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.device_plugin import create_device_plugin
from components.node_pool.karpenter import k8s_name, karpenter_node_pool_spec

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.node_pool.spec import NodePoolPlan


def create_node_pool(component: pulumi.ComponentResource, name: str, plan: NodePoolPlan, cluster: KubernetesCluster) -> None:
    if plan.node_class is not None:
        k8s.apiextensions.CustomResource(
            f"{name}-node-pool",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=k8s_name(name)),
            spec=karpenter_node_pool_spec(plan, plan.node_class),
            opts=pulumi.ResourceOptions(parent=component, provider=cluster.k8s_provider),
        )
    create_device_plugin(component, name, plan, cluster.k8s_provider, chart_source=cluster.chart_source)
