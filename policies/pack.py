"""The pack's policy list, ``RULES``, and the one rule that needs that list: ``exemption-valid``.

``exemption-valid`` checks that every exemption tag names policies of this pack, so it lives
beside the list it reads (the list in turn holds it). Side-effect free: ``policies/__main__.py``
serves ``RULES`` to the Pulumi CLI, ``gpuplane plan`` evaluates them in-process.
"""

from __future__ import annotations

from policies import (
    batch,
    cost,
    edge,
    exemptions,
    gpu,
    network,
    placement,
    pods,
    reliability,
    security,
    storage,
    tagging,
)
from policies.framework import Config, ResourceRule, Rule
from policies.resources import ResourceView, label


def check_exemption(view: ResourceView, cfg: Config) -> list[str]:
    ex = exemptions.declared(view)
    if ex is None:
        return []
    problems = exemptions.problems(ex, {r.name for r in RULES})
    return [f"{label(view)}: {p}" for p in problems]


EXEMPTION_VALID = ResourceRule(
    name="exemption-valid",
    description="Checks whether every policy exemption tag names known policies and gives a reason.",
    check=check_exemption,
)

RULES: list[Rule] = [
    # cost
    cost.STACK_BUDGET,
    cost.TRAINING_ON_SPOT,
    cost.ENDPOINT_SCALE_TO_ZERO,
    cost.IDLE_TIMEOUT_BOUNDS,
    cost.TWO_TIER_STEADY_BOUNDED,
    # batch
    batch.BATCH_ON_SPOT,
    batch.BATCH_TIMEOUT_SET,
    # gpu
    gpu.GPU_TYPES_ALLOWED,
    gpu.GPU_POOL_MAX_NODES,
    gpu.GPU_TOTAL_MAX,
    # placement
    placement.ALLOWED_REGIONS,
    placement.TRAINING_DATA_COLOCATED,
    placement.GPU_OFFERED_IN_REGION,
    placement.MULTINODE_COMPACT_PLACEMENT,
    # reliability
    reliability.SPOT_CHECKPOINTING,
    reliability.GPU_POOL_TAINTED,
    reliability.ENDPOINT_READINESS,
    # edge
    edge.EDGE_ARTIFACTS_PINNED,
    # security
    storage.STORAGE_ENCRYPTED,
    storage.STORAGE_NOT_PUBLIC,
    security.ENDPOINT_PRIVATE,
    security.IMDSV2_REQUIRED,
    pods.NO_PRIVILEGED_PODS,
    pods.HELM_RELEASE_RENDERED,
    pods.WORKLOAD_IDENTITY,
    security.DELETION_PROTECTION,
    # network
    network.NETWORK_INGRESS_RESTRICTED,
    network.CLUSTER_HARDENED,
    # tagging
    tagging.REQUIRED_TAGS,
    EXEMPTION_VALID,
    tagging.EXEMPTION_SCOPE,
]
