"""GpuNodePool on EKS: a managed node group, or a Karpenter NodePool + EC2NodeClass.

(Implementation in progress: feature declarations first.)
"""

from __future__ import annotations

from components.features import Feature, FeatureSupport

MANAGED_NODE_GROUP_FEATURES = FeatureSupport(
    implementation="eks-managed-node-group",
    supported=frozenset(
        {Feature.SPOT, Feature.SCALE_FROM_ZERO, Feature.TIME_SLICING, Feature.MPS, Feature.EFA, Feature.COMPACT_PLACEMENT, Feature.CREATES_NODES}
    ),
    missing={
        Feature.MIG: "MIG partitioning on EKS needs the NVIDIA GPU operator's MIG manager, which gpuplane does not install; "
        "use a GKE pool, or an existing cluster whose GPUs are already partitioned",
    },
)

KARPENTER_FEATURES = FeatureSupport(
    implementation="karpenter",
    supported=frozenset({Feature.SPOT, Feature.SCALE_FROM_ZERO, Feature.CREATES_NODES}),
    missing={
        Feature.TIME_SLICING: "Karpenter does not understand time-sliced GPU resources when scaling from zero "
        "(kubernetes-sigs/karpenter#729); use autoscaler='cluster-autoscaler' on the cluster",
        Feature.MPS: "Karpenter does not understand MPS-shared GPU resources when scaling from zero (kubernetes-sigs/karpenter#729)",
        Feature.MIG: "Karpenter cannot provision for MIG resources from zero (NVIDIA/gpu-operator#2670)",
        Feature.EFA: "gpuplane attaches EFA interfaces through a launch template, which Karpenter does not take; "
        "use autoscaler='cluster-autoscaler' for EFA pools",
        Feature.COMPACT_PLACEMENT: "Karpenter's EC2NodeClass has no placement-group setting; "
        "use autoscaler='cluster-autoscaler' for compact placement",
    },
)
