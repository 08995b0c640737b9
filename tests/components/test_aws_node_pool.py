"""GpuNodePool on EKS (components/aws/node_pool.py): managed node groups and Karpenter pools."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from components.aws.node_pool import (
    EKS_TAINT_EFFECTS,
    KARPENTER_CAPACITY_TYPES,
    cluster_autoscaler_tags,
    efa_network_interfaces,
    k8s_name,
)
from components.cluster import ClusterFacts, KubernetesCluster
from components.errors import ComponentInputError
from components.node_pool import GpuNodePool, plan_node_pool
from gpuplane.engine.aws_enums import allowed_values, check_aws_enums
from gpuplane.engine.runtime import ProgramRun, RecordedResource
from tests.helpers import run

CLUSTER_TAGS = {"team": "ml"}


def _program(
    autoscaler: str,
    pool: dict[str, Any],
    errors: list[Exception] | None = None,
    cluster_args: dict[str, Any] | None = None,
):
    def program() -> None:
        c = KubernetesCluster(
            "gpu",
            {
                "cloud": "aws",
                "region": "us-east-1",
                "autoscaler": autoscaler,
                "tags": CLUSTER_TAGS,
                **(cluster_args or {}),
            },
        )  # type: ignore[typeddict-item]
        try:
            GpuNodePool(pool.pop("name", "pool"), {"cluster": c, **pool})  # type: ignore[typeddict-item]
        except ComponentInputError as e:
            if errors is None:
                raise
            errors.append(e)

    return program


@functools.cache
def _run(autoscaler: str, frozen: str) -> ProgramRun:
    return run(_program(autoscaler, json.loads(frozen)))


def pool(autoscaler: str = "cluster-autoscaler", **args: Any) -> ProgramRun:
    return _run(autoscaler, json.dumps(args, sort_keys=True))


def _pool_component(r: ProgramRun, name: str = "pool") -> RecordedResource:
    return r.one("gpuplane:index:GpuNodePool", name)


def _pool_children(r: ProgramRun, name: str = "pool") -> list[RecordedResource]:
    return r.children_of(_pool_component(r, name).urn)


# -- managed node groups ------------------------------------------------------------------------


@pytest.mark.parametrize(("capacity", "wire"), [("on_demand", "ON_DEMAND"), ("spot", "SPOT")])
def test_managed_node_group_uses_the_nvidia_ami_and_the_plan(capacity, wire):
    r = pool(accelerator="L4", capacity_type=capacity, max_nodes=3, labels={"app": "serve"}, tags={"env": "dev"})
    ng = r.one("aws:eks/nodeGroup:NodeGroup", "pool-node-group")
    assert ng.name == "pool-node-group" and ng.parent == _pool_component(r).urn, ng.urn
    i = ng.inputs
    assert i["amiType"] == "AL2023_x86_64_NVIDIA" and i["capacityType"] == wire, ng.urn
    assert i["instanceTypes"] == ["g6.xlarge"]
    assert i["scalingConfig"] == {"minSize": 0, "maxSize": 3, "desiredSize": 0}
    assert i["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert i["labels"] == {
        "app": "serve",
        "gpuplane.dev/pool": "pool",
        "gpuplane.dev/accelerator": "L4",
        "gpuplane.dev/capacity-type": capacity.replace("_", "-"),
    }
    assert i["subnetIds"] == ["gpu-private-us-east-1a-id", "gpu-private-us-east-1b-id", "gpu-private-us-east-1c-id"]
    assert i["nodeRoleArn"].endswith(":role/gpu-node-role") and i["clusterName"] == "gpu"
    assert i["launchTemplate"] == {"id": "pool-launch-template-id", "version": "1"}
    assert i["tags"] == {"team": "ml", "env": "dev"}
    assert ng.ignore_changes == ["scalingConfig.desiredSize"], ng.urn
    assert check_aws_enums(r.resources) == []


def test_iac_owned_pool_does_not_ignore_desired_size():
    ng = pool(accelerator="L4", replicas_managed_by="iac", min_nodes=1, max_nodes=2).one(
        "aws:eks/nodeGroup:NodeGroup", "pool-node-group"
    )
    assert ng.ignore_changes == [] and ng.inputs["scalingConfig"] == {"minSize": 1, "maxSize": 2, "desiredSize": 1}


def test_taint_effects_are_translated_to_the_eks_enum():
    taints = [{"key": "a", "value": "1", "effect": "NoExecute"}, {"key": "b", "effect": "PreferNoSchedule"}]
    ng = pool(accelerator="L4", taints=taints).one("aws:eks/nodeGroup:NodeGroup", "pool-node-group")
    assert ng.inputs["taints"] == [
        {"key": "a", "value": "1", "effect": "NO_EXECUTE"},
        {"key": "b", "effect": "PREFER_NO_SCHEDULE"},
    ]


def test_launch_template_requires_imdsv2_and_encrypts_the_gp3_root_volume():
    r = pool(accelerator="L4", disk_size_gib=300)
    lt = r.one("aws:ec2/launchTemplate:LaunchTemplate", "pool-launch-template")
    assert lt.name == "pool-launch-template" and lt.parent == _pool_component(r).urn
    assert (
        lt.inputs["metadataOptions"]["httpTokens"] == "required"
        and lt.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 2
    )
    assert lt.inputs["blockDeviceMappings"] == [
        {
            "deviceName": "/dev/xvda",
            "ebs": {"volumeSize": 300, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"},
        }
    ]
    assert "networkInterfaces" not in lt.inputs and "placement" not in lt.inputs and "imageId" not in lt.inputs
    assert r.by_type("aws:ec2/placementGroup:PlacementGroup") == []


def test_efa_pool_gets_every_efa_interface_a_placement_group_and_one_zone():
    r = pool(accelerator="H100", efa=True, capacity_type="spot", max_nodes=4)
    lt = r.one("aws:ec2/launchTemplate:LaunchTemplate", "pool-launch-template").inputs
    nics = lt["networkInterfaces"]
    assert len(nics) == 32  # p5.48xlarge: 32 EFA interfaces (catalog)
    assert nics[0] == {
        "deviceIndex": 0,
        "networkCardIndex": 0,
        "interfaceType": "efa",
        "deleteOnTermination": "true",
        "securityGroups": ["sg-gpu"],
    }
    assert [n["networkCardIndex"] for n in nics] == list(range(32))
    assert {n["interfaceType"] for n in nics[1:]} == {"efa-only"} and {n["deviceIndex"] for n in nics[1:]} == {1}
    group = r.one("aws:ec2/placementGroup:PlacementGroup")
    assert group.name == "pool-placement" and group.inputs["strategy"] == "cluster"
    assert lt["placement"] == {"groupName": "pool-placement"}
    ng = r.one("aws:eks/nodeGroup:NodeGroup", "pool-node-group").inputs
    assert ng["instanceTypes"] == ["p5.48xlarge"] and len(ng["subnetIds"]) == 1
    efa = r.one("kubernetes:helm.sh/v3:Release", "pool-efa-device-plugin")
    assert efa.inputs["chart"] == "aws-efa-k8s-device-plugin" and efa.inputs["values"]["nodeSelector"] == {
        "gpuplane.dev/pool": "pool"
    }
    assert check_aws_enums(r.resources) == []


def test_compact_placement_without_efa_adds_only_the_placement_group():
    r = pool(accelerator="A10G", accelerators_per_node=4, compact_placement=True)
    lt = r.one("aws:ec2/launchTemplate:LaunchTemplate", "pool-launch-template").inputs
    assert "networkInterfaces" not in lt and lt["placement"] == {"groupName": "pool-placement"}
    assert r.by_type("kubernetes:helm.sh/v3:Release") and not [
        x for x in r.by_type("kubernetes:helm.sh/v3:Release") if "efa" in x.name
    ]


def test_cluster_autoscaler_can_scale_the_pool_from_zero():
    r = pool(accelerator="L4", gpu_sharing={"strategy": "time-slicing", "replicas": 4})
    tags = {x.inputs["tag"]["key"]: x for x in r.by_type("aws:autoscaling/tag:Tag")}
    asg = {x.inputs["autoscalingGroupName"] for x in tags.values()}
    assert asg == {"eks-pool-node-group-asg"}  # node_group.resources[0].autoscaling_groups[0].name
    values = {k: x.inputs["tag"]["value"] for k, x in tags.items()}
    assert values == {
        "k8s.io/cluster-autoscaler/enabled": "true",
        "k8s.io/cluster-autoscaler/gpu": "owned",
        "k8s.io/cluster-autoscaler/node-template/label/gpuplane.dev/pool": "pool",
        "k8s.io/cluster-autoscaler/node-template/label/gpuplane.dev/accelerator": "L4",
        "k8s.io/cluster-autoscaler/node-template/label/gpuplane.dev/capacity-type": "on-demand",
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "present:NoSchedule",
        "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu": "4",  # 1 GPU x 4 time-slices
    }
    pool_urn = _pool_component(r).urn
    for x in tags.values():
        assert x.parent == pool_urn and x.name.startswith("pool-ca-"), x.urn
        assert x.inputs["tag"]["propagateAtLaunch"] is False


def test_without_cluster_autoscaler_no_asg_tags_are_made():
    assert pool("none", accelerator="L4").by_type("aws:autoscaling/tag:Tag") == []


def test_device_plugin_runs_through_the_cluster_provider():
    r = pool(accelerator="L4")
    provider = r.one("pulumi:providers:kubernetes").urn
    releases = {x.name: x for x in _pool_children(r) if x.type == "kubernetes:helm.sh/v3:Release"}
    assert set(releases) == {"pool-device-plugin", "pool-dcgm-exporter"}
    for x in releases.values():
        assert x.provider and x.provider.startswith(provider), x.urn


# -- Karpenter --------------------------------------------------------------------------------


def test_karpenter_pool_is_a_nodepool_and_ec2nodeclass():
    r = pool("karpenter", accelerator="L4", capacity_type="spot", max_nodes=5, priority=30, tags={"env": "dev"})
    comp, provider = _pool_component(r), r.one("pulumi:providers:kubernetes").urn
    node_pool = r.one("kubernetes:karpenter.sh/v1:NodePool")
    node_class = r.one("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    for x in (node_pool, node_class):
        assert x.parent == comp.urn and x.provider and x.provider.startswith(provider), x.urn
        assert r.one("kubernetes:helm.sh/v3:Release", "gpu-karpenter").urn in x.dependencies, (
            f"{x.urn} must wait for the Karpenter CRDs"
        )
    assert node_pool.name == "pool-node-pool" and node_class.name == "pool-node-class"
    spec = node_pool.inputs["spec"]
    assert spec["template"]["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "pool",
    }
    reqs = {q["key"]: q for q in spec["template"]["spec"]["requirements"]}
    assert reqs["node.kubernetes.io/instance-type"]["values"] == ["g6.2xlarge", "g6.xlarge"]
    assert reqs["karpenter.sh/capacity-type"] == {
        "key": "karpenter.sh/capacity-type",
        "operator": "In",
        "values": ["spot"],
    }
    assert reqs["topology.kubernetes.io/zone"]["values"] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert spec["template"]["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert spec["template"]["metadata"]["labels"]["gpuplane.dev/pool"] == "pool"
    assert spec["limits"] == {"nvidia.com/gpu": 5}
    assert spec["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "5m"}
    assert spec["weight"] == 30
    nc = node_class.inputs["spec"]
    assert nc["role"] == "gpu-karpenter-node-role"
    assert nc["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
    assert (
        nc["subnetSelectorTerms"] == nc["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "gpu"}}]
    )
    assert nc["metadataOptions"]["httpTokens"] == "required"
    assert nc["blockDeviceMappings"][0]["ebs"] == {
        "volumeSize": "200Gi",
        "volumeType": "gp3",
        "encrypted": True,
        "deleteOnTermination": True,
    }
    assert nc["tags"] == {"team": "ml", "env": "dev"}
    assert r.by_type("aws:eks/nodeGroup:NodeGroup") == [r.one("aws:eks/nodeGroup:NodeGroup", "gpu-system-nodes")]
    assert check_aws_enums(r.resources) == []


def test_karpenter_pool_without_priority_has_no_weight():
    spec = (
        pool("karpenter", accelerator="H100", accelerators_per_node=8, max_nodes=2)
        .one("kubernetes:karpenter.sh/v1:NodePool")
        .inputs["spec"]
    )
    assert "weight" not in spec and spec["limits"] == {"nvidia.com/gpu": 16}


# -- impossible requests fail before any child of the pool exists ------------------------------


IMPOSSIBLE = [
    ("cluster-autoscaler", {"accelerator": "L4", "efa": True}, "does not offer 1 x L4 with EFA"),
    (
        "cluster-autoscaler",
        {
            "accelerator": "H100",
            "accelerators_per_node": 8,
            "gpu_sharing": {"strategy": "mig", "mig_profile": "1g.10gb"},
        },
        "eks-managed-node-group does not support mig",
    ),
    (
        "cluster-autoscaler",
        {"accelerator": "H100", "accelerators_per_node": 6},
        "accelerators_per_node = 6: is not offered for H100 on aws (offered: 8)",
    ),
    ("karpenter", {"accelerator": "H100", "efa": True}, "karpenter does not support efa"),
    (
        "karpenter",
        {"accelerator": "L4", "gpu_sharing": {"strategy": "time-slicing"}},
        "karpenter does not support time-slicing",
    ),
]


@pytest.mark.parametrize(("autoscaler", "args", "message"), IMPOSSIBLE, ids=[m for *_, m in IMPOSSIBLE])
def test_impossible_request_registers_nothing_of_the_pool(autoscaler, args, message):
    errors: list[Exception] = []
    r = run(_program(autoscaler, {"name": "bad", **args}, errors))
    assert len(errors) == 1 and message in str(errors[0]), errors
    assert [x.urn for x in r.resources if x.name == "bad" or x.name.startswith("bad-")] == []


def test_region_without_the_gpu_registers_nothing_of_the_pool():
    errors: list[Exception] = []
    r = run(_program("cluster-autoscaler", {"name": "bad", "accelerator": "H100"}, errors, {"region": "eu-central-1"}))
    assert "cluster.region = 'eu-central-1': does not offer 8 x H100 (on-demand)" in str(errors[0])
    assert [x.urn for x in r.resources if x.name.startswith("bad")] == []


def test_zone_without_a_cluster_subnet_creates_no_child():
    # The cluster spans 1a/1b; the pool asks for 1c, which has no node subnet.
    errors: list[Exception] = []
    r = run(
        _program(
            "cluster-autoscaler",
            {"name": "bad", "accelerator": "L4", "zones": ["us-east-1c"]},
            errors,
            {"zones": ["us-east-1a", "us-east-1b"]},
        )
    )
    assert "the cluster has no node subnet in ['us-east-1c']" in str(errors[0])
    assert [x.urn for x in r.resources if x.name.startswith("bad-")] == []


def test_karpenter_weight_above_100_is_rejected():
    errors: list[Exception] = []
    r = run(_program("karpenter", {"name": "bad", "accelerator": "L4", "priority": 150}, errors))
    assert "priority = 150: is outside Karpenter's NodePool weight range" in str(errors[0])
    assert [x.urn for x in r.resources if x.name.startswith("bad-")] == []


# -- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "cards", "efa_only"), [(0, [], 0), (1, [0], 0), (4, [0, 1, 2, 3], 3), (32, list(range(32)), 31)]
)
def test_efa_network_interfaces(count, cards, efa_only):
    nics = efa_network_interfaces(count)
    assert [n["network_card_index"] for n in nics] == cards
    assert sum(n["interface_type"] == "efa-only" for n in nics) == efa_only
    assert all(n["device_index"] == (0 if n["network_card_index"] == 0 else 1) for n in nics)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("pool", "pool"), ("Train_H100.spot", "train-h100-spot"), ("-x-", "x"), ("a" * 80, "a" * 63), ("__", "pool")],
)
def test_k8s_name(name, expected):
    assert k8s_name(name) == expected


def _facts(autoscaler: str = "cluster-autoscaler") -> ClusterFacts:
    return ClusterFacts(
        cloud="aws", name="c", region="us-east-1", zones=("us-east-1a", "us-east-1b"), autoscaler=autoscaler
    )


@pytest.mark.parametrize(
    ("args", "resource", "allocatable"),
    [
        ({"accelerator": "L4"}, "nvidia.com/gpu", "1"),
        ({"accelerator": "H100", "accelerators_per_node": 8}, "nvidia.com/gpu", "8"),
        (
            {"accelerator": "A10G", "accelerators_per_node": 4, "gpu_sharing": {"strategy": "mps", "replicas": 3}},
            "nvidia.com/gpu",
            "12",
        ),
    ],
)
def test_cluster_autoscaler_tags_advertise_the_allocatable_gpus(args, resource, allocatable):
    plan = plan_node_pool("p", {"cluster": None, **args}, _facts())  # type: ignore[typeddict-item]
    tags = cluster_autoscaler_tags(plan, "c")
    assert tags[f"k8s.io/cluster-autoscaler/node-template/resources/{resource}"] == allocatable
    assert tags["k8s.io/cluster-autoscaler/c"] == "owned"


def test_untainted_pool_has_no_taint_tags():
    plan = plan_node_pool("p", {"cluster": None, "accelerator": "L4", "taints": []}, _facts())  # type: ignore[typeddict-item]
    assert not [k for k in cluster_autoscaler_tags(plan, "c") if "/taint/" in k]


def test_enum_translations_are_valid_for_the_apis():
    assert set(EKS_TAINT_EFFECTS.values()) <= allowed_values("eks", "TaintEffect")
    assert set(KARPENTER_CAPACITY_TYPES) >= {"on_demand", "spot"}
