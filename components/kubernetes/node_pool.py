"""GpuNodePool on an existing cluster: creates NO nodes.

It installs the NVIDIA device plugin (with the pool's sharing config: time-slicing, MPS or the
MIG strategy) and the DCGM exporter onto the GPU nodes the cluster already has, selected by
NVIDIA GPU feature discovery's ``nvidia.com/gpu.present`` label plus any labels given. Node
count, capacity type and placement belong to whoever owns the cluster, so asking for them fails
with the reasons below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.features import Feature, FeatureSupport
from components.kubernetes.device_plugin import create_device_plugin

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.node_pool import GpuNodePool, NodePoolPlan

_NO_NODES = "an existing cluster's nodes belong to its owner; gpuplane creates no nodes there"
FEATURES = FeatureSupport(
    implementation="existing-device-plugin",
    supported=frozenset({Feature.TIME_SLICING, Feature.MPS, Feature.MIG}),
    missing={
        Feature.SPOT: _NO_NODES,
        Feature.SCALE_FROM_ZERO: _NO_NODES,
        Feature.COMPACT_PLACEMENT: _NO_NODES,
        Feature.EFA: _NO_NODES,
        Feature.CREATES_NODES: _NO_NODES,
    },
)


def create_node_pool(component: GpuNodePool, name: str, plan: NodePoolPlan, cluster: KubernetesCluster) -> None:
    create_device_plugin(component, name, plan, cluster.k8s_provider)
