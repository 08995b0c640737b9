"""Table tests for the pure GpuNodePool planner (no runtime)."""

from __future__ import annotations

import pytest

from components.cluster import ClusterFacts
from components.errors import ComponentInputError
from components.node_pool import plan_node_pool

AWS = ClusterFacts(cloud="aws", name="c", region="us-east-1", zones=("us-east-1a", "us-east-1b", "us-east-1c"), autoscaler="cluster-autoscaler", tags={"team": "ml"})
KARPENTER = ClusterFacts(cloud="aws", name="c", region="us-east-1", zones=("us-east-1a", "us-east-1b"), autoscaler="karpenter")
GKE = ClusterFacts(cloud="gcp", name="c", region="us-central1", zones=("us-central1-a", "us-central1-b", "us-central1-c"), autoscaler="gke")
EXISTING = ClusterFacts(cloud="kubernetes", name="c", region=None, zones=(), autoscaler="none")

VALID = [
    # (facts, args, expected implementation, instance type, gpus, resource, allocatable)
    (AWS, {"accelerator": "L4"}, "eks-managed-node-group", "g6.xlarge", 1, "nvidia.com/gpu", 1),
    (AWS, {"accelerator": "H100", "accelerators_per_node": 8, "efa": True}, "eks-managed-node-group", "p5.48xlarge", 8, "nvidia.com/gpu", 8),
    (AWS, {"accelerator": "A10G", "capacity_type": "spot", "gpu_sharing": {"strategy": "time-slicing", "replicas": 4}}, "eks-managed-node-group", "g5.xlarge", 1, "nvidia.com/gpu", 4),
    (KARPENTER, {"accelerator": "H100", "accelerators_per_node": 8, "capacity_type": "spot"}, "karpenter", "p5.48xlarge", 8, "nvidia.com/gpu", 8),
    (GKE, {"accelerator": "A100-40GB", "accelerators_per_node": 8, "compact_placement": True}, "gke-node-pool", "a2-highgpu-8g", 8, "nvidia.com/gpu", 8),
    (GKE, {"accelerator": "A100-80GB", "gpu_sharing": {"strategy": "mig", "mig_profile": "1g.10gb"}}, "gke-node-pool", "a2-ultragpu-1g", 1, "nvidia.com/gpu", 7),
    (GKE, {"accelerator": "L4", "gpu_sharing": {"strategy": "mps", "replicas": 8}}, "gke-node-pool", "g2-standard-4", 1, "nvidia.com/gpu", 8),
    (EXISTING, {"accelerator": "L4", "gpu_sharing": {"strategy": "time-slicing"}}, "existing-device-plugin", None, 1, "nvidia.com/gpu", 4),
]


@pytest.mark.parametrize(("facts", "args", "impl", "instance", "gpus", "resource", "allocatable"), VALID)
def test_valid_pools_plan(facts, args, impl, instance, gpus, resource, allocatable):
    plan = plan_node_pool("pool", args, facts)
    assert plan.implementation == impl
    assert (plan.instance_type.name if plan.instance_type else None) == instance
    assert plan.gpus_per_node == gpus
    assert plan.scheduling.resource_name == resource
    assert plan.scheduling.allocatable_per_node == allocatable
    assert plan.min_nodes == 0  # scale from zero is the default


def test_gpu_pools_are_tainted_by_default_and_pods_tolerate_it():
    plan = plan_node_pool("pool", {"accelerator": "L4"}, AWS)
    assert [(t.key, t.value, t.effect) for t in plan.taints] == [("nvidia.com/gpu", "present", "NoSchedule")]
    assert plan.scheduling.tolerations == ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},)
    assert plan.scheduling.node_selector == {"gpuplane.dev/pool": "pool"}
    assert plan.labels["gpuplane.dev/accelerator"] == "L4"
    assert plan.tags == {"team": "ml"}


def test_efa_and_compact_pools_are_pinned_to_one_zone():
    plan = plan_node_pool("p", {"accelerator": "H100", "accelerators_per_node": 8, "efa": True}, AWS)
    assert len(plan.zones) == 1


def test_spot_price_is_the_catalog_spot_price():
    from components.catalog import load_catalog

    cat = load_catalog()
    plan = plan_node_pool("p", {"accelerator": "L4", "capacity_type": "spot"}, AWS)
    assert plan.instance_type is not None
    name = plan.instance_type.name
    assert plan.usd_per_node_hour == cat.price("aws", name, "us-east-1", "spot") != cat.price("aws", name, "us-east-1", "on_demand")
    on_demand = plan_node_pool("p", {"accelerator": "L4", "capacity_type": "on_demand"}, AWS)
    assert on_demand.usd_per_node_hour == cat.price("aws", name, "us-east-1", "on_demand")


INVALID = [
    # (facts, args, [fragments that must all appear in the one error])
    (AWS, {"accelerator": "H100", "accelerators_per_node": 6}, ["accelerators_per_node = 6", "offered: 8", "set it to one of those"]),
    (AWS, {"accelerator": "L4", "efa": True}, ["cluster.region = 'us-east-1'", "does not offer 1 x L4 with EFA"]),
    (AWS, {"accelerator": "H100", "accelerators_per_node": 8, "gpu_sharing": {"strategy": "mig", "mig_profile": "1g.10gb"}}, ["eks-managed-node-group does not support mig"]),
    (GKE, {"accelerator": "L4", "gpu_sharing": {"strategy": "mig", "mig_profile": "1g.10gb"}}, ["L4 has no MIG"]),
    (GKE, {"accelerator": "H100", "gpu_sharing": {"strategy": "mig", "mig_profile": "9g.99gb"}}, ["gpu_sharing.mig_profile = '9g.99gb'", "1g.10gb"]),
    (GKE, {"accelerator": "L4", "efa": True}, ["gke-node-pool does not support efa"]),
    (ClusterFacts("aws", "c", "eu-central-1", ("eu-central-1a",), "cluster-autoscaler"), {"accelerator": "H100", "accelerators_per_node": 8}, ["does not offer 8 x H100", "us-east-1"]),
    (KARPENTER, {"accelerator": "L4", "gpu_sharing": {"strategy": "time-slicing"}}, ["karpenter does not support time-slicing", "karpenter#729"]),
    (EXISTING, {"accelerator": "L4", "capacity_type": "spot"}, ["existing-device-plugin does not support spot"]),
    (AWS, {"accelerator": "H900"}, ["accelerator = 'H900'", "is not in the GPU catalog"]),
    (AWS, {"accelerator": "L4", "min_nodes": 3, "max_nodes": 2}, ["max_nodes = 2", "is below min_nodes=3"]),
    (AWS, {"accelerator": "L4", "disk_size_gib": 20}, ["disk_size_gib = 20"]),
    (AWS, {"accelerator": "L4", "acelerators_per_node": 1}, ["acelerators_per_node = 1", "is not an argument of GpuNodePool"]),
]


@pytest.mark.parametrize(("facts", "args", "fragments"), INVALID, ids=[f[0] for *_, f in INVALID])
def test_impossible_requests_fail_with_one_message(facts, args, fragments):
    with pytest.raises(ComponentInputError) as exc:
        plan_node_pool("train", args, facts)
    message = str(exc.value)
    assert message.startswith("GpuNodePool 'train' has ")
    for fragment in fragments:
        assert fragment in message, message


def test_every_problem_is_reported_at_once():
    with pytest.raises(ComponentInputError) as exc:
        plan_node_pool("p", {"accelerator": "H100", "accelerators_per_node": 6, "disk_size_gib": 10, "max_nodes": 0}, AWS)
    paths = [p.path for p in exc.value.problems]
    assert {"accelerators_per_node", "disk_size_gib", "max_nodes"} <= set(paths)
