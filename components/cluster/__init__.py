"""KubernetesCluster: a cluster with secure defaults (EKS, GKE) or a handle to an existing one.

Public names of the capability; other capabilities import only these. ``spec.py`` holds the
args, plan dataclasses and the pure planner; ``eks.py``, ``eks_autoscaler.py``, ``gke.py`` and
``existing.py`` are the backends; ``component.py`` validates, plans and dispatches.
"""

from components.cluster.component import KubernetesCluster
from components.cluster.spec import (
    DEFAULT_KUBERNETES_VERSION,
    DEFAULT_SYSTEM_TYPES,
    TYPE_TOKEN,
    Cloud,
    ClusterFacts,
    ClusterHandles,
    ClusterPlan,
    ExistingNetworkArgs,
    KubernetesClusterArgs,
    plan_cluster,
)

__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "DEFAULT_SYSTEM_TYPES",
    "TYPE_TOKEN",
    "Cloud",
    "ClusterFacts",
    "ClusterHandles",
    "ClusterPlan",
    "ExistingNetworkArgs",
    "KubernetesCluster",
    "KubernetesClusterArgs",
    "plan_cluster",
]
