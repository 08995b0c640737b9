"""GpuNodePool on an existing cluster: creates NO nodes.

It installs the NVIDIA device plugin (with the pool's sharing config: time-slicing, MPS or the
MIG strategy) and the DCGM exporter onto the GPU nodes the cluster already has, selected by
NVIDIA GPU feature discovery's ``nvidia.com/gpu.present`` label plus any labels given. Node
count, capacity type and placement belong to whoever owns the cluster, so asking for them fails
with the reasons below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi

from components.kubernetes.device_plugin import create_device_plugin

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.node_pool.spec import NodePoolPlan


def create_node_pool(component: pulumi.ComponentResource, name: str, plan: NodePoolPlan, cluster: KubernetesCluster) -> None:
    create_device_plugin(component, name, plan, cluster.k8s_provider, chart_source=cluster.chart_source)
