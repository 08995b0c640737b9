"""GpuNodePool on GKE: a node pool with guest accelerators.

(Implementation in progress: feature declarations first.)
"""

from __future__ import annotations

from components.features import Feature, FeatureSupport

FEATURES = FeatureSupport(
    implementation="gke-node-pool",
    supported=frozenset(
        {Feature.SPOT, Feature.SCALE_FROM_ZERO, Feature.TIME_SLICING, Feature.MPS, Feature.MIG, Feature.COMPACT_PLACEMENT, Feature.CREATES_NODES}
    ),
    missing={
        Feature.EFA: "EFA is an AWS network adapter; GKE's GPUDirect-RDMA multi-networking on A3 is not configured by gpuplane yet",
    },
)
