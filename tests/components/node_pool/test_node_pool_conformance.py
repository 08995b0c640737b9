"""The GpuNodePool contract, parametrized over every implementation (one conformance suite)."""

from __future__ import annotations

import pytest

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError
from components.features import Feature
from components.node_pool import IMPLEMENTATIONS, GpuNodePool, feature_support
from tests.helpers import run, validate_all_core_objects

CLUSTERS = {
    "eks-managed-node-group": ({"cloud": "aws", "region": "us-east-1"}, "L4"),
    "karpenter": ({"cloud": "aws", "region": "us-east-1", "autoscaler": "karpenter"}, "L4"),
    "gke-node-pool": ({"cloud": "gcp", "region": "us-central1", "project": "p"}, "L4"),
    "existing-device-plugin": ({"cloud": "existing"}, "L4"),
}


def test_every_implementation_is_covered():
    assert set(CLUSTERS) == set(IMPLEMENTATIONS)


@pytest.fixture(params=IMPLEMENTATIONS)
def pool_run(request):
    impl = request.param
    cluster_args, accelerator = CLUSTERS[impl]
    holder = {}

    def program():
        cluster = KubernetesCluster("c", cluster_args)
        holder["pool"] = GpuNodePool("gpu", {"cluster": cluster, "accelerator": accelerator, "max_nodes": 2, "tags": {"team": "ml"}})

    return impl, run(program), holder


def test_pool_registers_its_plan_summary(pool_run):
    impl, result, _ = pool_run
    pool = result.one("gpuplane:index:GpuNodePool")
    summary = pool.inputs["gpuplane"]
    assert summary["implementation"] == impl, pool.urn
    assert summary["accelerator"] == "L4"
    assert summary["createsNodes"] == (impl != "existing-device-plugin")
    assert summary["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


def test_children_are_named_after_and_parented_to_the_pool(pool_run):
    _, result, _ = pool_run
    pool = result.one("gpuplane:index:GpuNodePool")
    children = result.children_of(pool.urn)
    assert children, f"{pool.urn} created nothing"
    for child in children:
        assert child.name.startswith("gpu-"), f"{child.urn} is not named after its pool"
    kube_children = [c for c in children if c.type.startswith("kubernetes:")]
    cluster_provider = [r for r in result.resources if r.type == "pulumi:providers:kubernetes"]
    assert len(cluster_provider) == 1
    for child in kube_children:
        assert child.provider and child.provider.startswith(cluster_provider[0].urn), f"{child.urn} does not use the cluster's provider"


def test_pods_can_land_on_the_pool(pool_run):
    _, result, holder = pool_run
    scheduling = holder["pool"].scheduling
    assert scheduling.resource_name == "nvidia.com/gpu"
    assert scheduling.tolerations == ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},)
    assert scheduling.node_selector
    validate_all_core_objects(result)


def test_nodes_carry_the_selector_labels_and_taints(pool_run):
    impl, result, holder = pool_run
    if impl == "existing-device-plugin":
        pytest.skip("creates no nodes (declared)")
    selector = holder["pool"].scheduling.node_selector
    pool_urn = result.one("gpuplane:index:GpuNodePool").urn
    node_objects = [r for r in result.children_of(pool_urn) if r.type in ("aws:eks/nodeGroup:NodeGroup", "gcp:container/nodePool:NodePool", "kubernetes:karpenter.sh/v1:NodePool")]
    assert len(node_objects) == 1, [r.type for r in result.resources]
    text = repr(node_objects[0].inputs)
    for key, value in selector.items():
        assert key in text and value in text, f"{node_objects[0].urn} does not label nodes {key}={value}"
    assert "nvidia.com/gpu" in text


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_an_unsupported_feature_fails_before_anything_is_registered(impl):
    support = feature_support(impl)
    missing = next(iter(support.missing))
    cluster_args, _ = CLUSTERS[impl]
    asks = {
        Feature.MIG: {"accelerator": "A100-40GB", "gpu_sharing": {"strategy": "mig", "mig_profile": "1g.5gb"}},
        Feature.TIME_SLICING: {"accelerator": "L4", "gpu_sharing": {"strategy": "time-slicing"}},
        Feature.EFA: {"accelerator": "H100", "accelerators_per_node": 8, "efa": True},
        Feature.SPOT: {"accelerator": "L4", "capacity_type": "spot"},
    }
    args = asks.get(missing)
    if args is None:
        pytest.skip(f"no request shape for {missing}")
    registered = []

    def program():
        cluster = KubernetesCluster("c", cluster_args)
        registered.append("cluster")
        GpuNodePool("gpu", {"cluster": cluster, **args})

    with pytest.raises(ComponentInputError) as exc:
        run(program)
    assert f"{impl} does not support {missing.value}" in str(exc.value)
    assert support.missing[missing][:30] in str(exc.value)
