"""GpuNodePool: GPU nodes that scale from zero, tainted, with drivers and a device plugin.

Public names of the capability; other capabilities import only these. ``spec.py``: args, plan,
declared features, ``plan_node_pool``; backends ``eks.py`` (managed node group, Karpenter),
``gke.py``, ``existing.py``; ``component.py``: the ``GpuNodePool`` ComponentResource.
"""

from components.node_pool.component import GpuNodePool
from components.node_pool.spec import (
    GPU_TAINT_KEY,
    IMPLEMENTATIONS,
    LABEL_ACCELERATOR,
    LABEL_CAPACITY,
    LABEL_POOL,
    TYPE_TOKEN,
    GpuNodePoolArgs,
    GpuSharingArgs,
    NodePoolPlan,
    PoolScheduling,
    Taint,
    TaintArgs,
    feature_support,
    plan_node_pool,
)

__all__ = [
    "GPU_TAINT_KEY",
    "IMPLEMENTATIONS",
    "LABEL_ACCELERATOR",
    "LABEL_CAPACITY",
    "LABEL_POOL",
    "TYPE_TOKEN",
    "GpuNodePool",
    "GpuNodePoolArgs",
    "GpuSharingArgs",
    "NodePoolPlan",
    "PoolScheduling",
    "Taint",
    "TaintArgs",
    "feature_support",
    "plan_node_pool",
]
