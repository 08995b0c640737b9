"""The gpuplane policy pack, as the Pulumi CLI runs it.

    pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json

Lists every policy explicitly. ``PolicyPack(...)`` starts the analyzer's gRPC server and never
returns, so it is built only when this file runs as the program (the CLI runs it with
``run_name="__main__"``); ``gpuplane plan`` imports ``RULES`` from here and evaluates them
in-process (gpuplane/engine/policy.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The CLI runs this file with policies/ on sys.path, not the repo root: make the repo importable.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies import cost, gpu, network, placement, pods, reliability, security, storage, tagging  # noqa: E402
from policies.framework import Rule, to_policy  # noqa: E402

PACK_NAME = "gpuplane"
DEFAULT_ENFORCEMENT = EnforcementLevel.MANDATORY

RULES: list[Rule] = [
    # cost
    cost.STACK_BUDGET,
    cost.TRAINING_ON_SPOT,
    cost.ENDPOINT_SCALE_TO_ZERO,
    cost.IDLE_TIMEOUT_BOUNDS,
    cost.TWO_TIER_STEADY_BOUNDED,
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
    tagging.EXEMPTION_VALID,
    tagging.EXEMPTION_SCOPE,
]

if __name__ == "__main__":
    PolicyPack(
        name=PACK_NAME,
        enforcement_level=DEFAULT_ENFORCEMENT,
        policies=[to_policy(rule) for rule in RULES],
    )
