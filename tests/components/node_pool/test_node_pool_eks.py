"""GpuNodePool on EKS (components/node_pool/eks.py): managed node groups and Karpenter pools."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from components.cluster import ClusterFacts, KubernetesCluster
from components.errors import ComponentInputError
from components.node_pool import GpuNodePool, plan_node_pool
from components.node_pool.eks import (
    EKS_TAINT_EFFECTS,
    KARPENTER_CAPACITY_TYPES,
    cluster_autoscaler_tags,
    efa_network_interfaces,
    k8s_name,
)
from gpuplane.engine.aws_enums import allowed_values, check_aws_enums
from gpuplane.engine.runtime import ProgramRun, RecordedResource
from tests.helpers import run

CLUSTER_TAGS = {"team": "ml"}
TWO_ZONES = {"zones": ["us-east-1a", "us-east-1b"]}

# One program per cluster kind with many pools keeps the suite fast: each test reads its pool.
CA_POOLS: dict[str, dict[str, Any]] = {
    "od": {
        "accelerator": "L4",
        "capacity_type": "on_demand",
        "max_nodes": 3,
        "labels": {"app": "serve"},
        "tags": {"env": "dev"},
        "disk_size_gib": 300,
    },
    "spot": {
        "accelerator": "L4",
        "capacity_type": "spot",
        "max_nodes": 3,
        "labels": {"app": "serve"},
        "tags": {"env": "dev"},
    },
    "iac": {"accelerator": "L4", "replicas_managed_by": "iac", "min_nodes": 1, "max_nodes": 2},
    "tainted": {
        "accelerator": "L4",
        "taints": [{"key": "a", "value": "1", "effect": "NoExecute"}, {"key": "b", "effect": "PreferNoSchedule"}],
    },
    "efa": {"accelerator": "H100", "efa": True, "capacity_type": "spot", "max_nodes": 4},
    "compact": {"accelerator": "A10G", "accelerators_per_node": 4, "compact_placement": True},
    "sliced": {"accelerator": "L4", "gpu_sharing": {"strategy": "time-slicing", "replicas": 4}},
}
KARPENTER_POOLS: dict[str, dict[str, Any]] = {
    "kp": {"accelerator": "L4", "capacity_type": "spot", "max_nodes": 5, "priority": 30, "tags": {"env": "dev"}},
    "kp8": {"accelerator": "H100", "accelerators_per_node": 8, "max_nodes": 2},
}
# Impossible requests, each expected to fail with the message given and leave nothing behind.
CA_BAD: dict[str, tuple[dict[str, Any], str]] = {
    "bad-efa": ({"accelerator": "L4", "efa": True}, "does not offer 1 x L4 with EFA"),
    "bad-mig": (
        {
            "accelerator": "H100",
            "accelerators_per_node": 8,
            "gpu_sharing": {"strategy": "mig", "mig_profile": "1g.10gb"},
        },
        "eks-managed-node-group does not support mig",
    ),
    "bad-h100x6": (
        {"accelerator": "H100", "accelerators_per_node": 6},
        "accelerators_per_node = 6: is not offered for H100 on aws (offered: 8)",
    ),
}
KARPENTER_BAD: dict[str, tuple[dict[str, Any], str]] = {
    "bad-kefa": ({"accelerator": "H100", "efa": True}, "karpenter does not support efa"),
    "bad-sliced": (
        {"accelerator": "L4", "gpu_sharing": {"strategy": "time-slicing"}},
        "karpenter does not support time-slicing",
    ),
    "bad-weight": (
        {"accelerator": "L4", "priority": 150},
        "priority = 150: is outside Karpenter's NodePool weight range",
    ),
}


def _program(
    autoscaler: str, pools: dict[str, dict[str, Any]], errors: dict[str, Exception] | None = None, **cluster_args: Any
):
    def program() -> None:
        args = {"cloud": "aws", "region": "us-east-1", "autoscaler": autoscaler, "tags": CLUSTER_TAGS, **cluster_args}
        c = KubernetesCluster("gpu", args)  # type: ignore[arg-type]
        for name, pool_args in pools.items():
            try:
                GpuNodePool(name, {"cluster": c, **pool_args})  # type: ignore[typeddict-item]
            except ComponentInputError as e:
                if errors is None:
                    raise
                errors[name] = e

    return program


@functools.cache
def ca_run() -> ProgramRun:
    return run(_program("cluster-autoscaler", CA_POOLS))


@functools.cache
def karpenter_run() -> ProgramRun:
    return run(_program("karpenter", KARPENTER_POOLS))


@functools.cache
def bad_runs() -> tuple[ProgramRun, dict[str, Exception]]:
    """Every impossible request of CA_BAD and KARPENTER_BAD, plus a zone without a subnet and a
    region without the GPU, collected from three programs."""
    errors: dict[str, Exception] = {}
    ca = run(
        _program(
            "cluster-autoscaler",
            {**{k: a for k, (a, _) in CA_BAD.items()}, "bad-zone": {"accelerator": "L4", "zones": ["us-east-1c"]}},
            errors,
            **TWO_ZONES,
        )
    )
    kp = run(_program("karpenter", {k: a for k, (a, _) in KARPENTER_BAD.items()}, errors))
    eu = run(_program("cluster-autoscaler", {"bad-region": {"accelerator": "H100"}}, errors, region="eu-central-1"))
    return ProgramRun("gpuplane", "test", ca.resources + kp.resources + eu.resources, {}), errors


def _pool(r: ProgramRun, name: str, type_: str) -> RecordedResource:
    """The one child of pool ``name`` with type ``type_``."""
    comp = r.one("gpuplane:index:GpuNodePool", name)
    found = [x for x in r.children_of(comp.urn) if x.type == type_]
    assert len(found) == 1, f"{comp.urn}: expected one {type_}, found {[x.urn for x in found]}"
    return found[0]


def _children(r: ProgramRun, name: str, type_: str | None = None) -> list[RecordedResource]:
    comp = r.one("gpuplane:index:GpuNodePool", name)
    return [x for x in r.children_of(comp.urn) if type_ is None or x.type == type_]


NODE_GROUP, LAUNCH_TEMPLATE = "aws:eks/nodeGroup:NodeGroup", "aws:ec2/launchTemplate:LaunchTemplate"
RELEASE, PLACEMENT, ASG_TAG = (
    "kubernetes:helm.sh/v3:Release",
    "aws:ec2/placementGroup:PlacementGroup",
    "aws:autoscaling/tag:Tag",
)


def test_every_pool_child_is_named_after_its_pool_and_passes_the_aws_enum_check():
    for r, pools in ((ca_run(), CA_POOLS), (karpenter_run(), KARPENTER_POOLS)):
        for name in pools:
            children = _children(r, name)
            assert children, name
            for x in children:
                assert x.name.startswith(f"{name}-"), x.urn
        assert check_aws_enums(r.resources) == []


# -- managed node groups ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "wire"), [("od", "ON_DEMAND"), ("spot", "SPOT")])
def test_managed_node_group_uses_the_nvidia_ami_and_the_plan(name, wire):
    ng = _pool(ca_run(), name, NODE_GROUP)
    assert ng.name == f"{name}-node-group", ng.urn
    i = ng.inputs
    assert i["amiType"] == "AL2023_x86_64_NVIDIA" and i["capacityType"] == wire, ng.urn
    assert i["instanceTypes"] == ["g6.xlarge"]
    assert i["scalingConfig"] == {"minSize": 0, "maxSize": 3, "desiredSize": 0}
    assert i["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    capacity = CA_POOLS[name]["capacity_type"].replace("_", "-")
    assert i["labels"] == {
        "app": "serve",
        "gpuplane.dev/pool": name,
        "gpuplane.dev/accelerator": "L4",
        "gpuplane.dev/capacity-type": capacity,
    }
    assert i["subnetIds"] == ["gpu-private-us-east-1a-id", "gpu-private-us-east-1b-id", "gpu-private-us-east-1c-id"]
    assert i["nodeRoleArn"].endswith(":role/gpu-node-role") and i["clusterName"] == "gpu"
    assert i["launchTemplate"] == {"id": f"{name}-launch-template-id", "version": "1"}
    assert i["tags"] == {"team": "ml", "env": "dev"}
    assert ng.ignore_changes == ["scalingConfig.desiredSize"], ng.urn


def test_iac_owned_pool_does_not_ignore_desired_size():
    ng = _pool(ca_run(), "iac", NODE_GROUP)
    assert ng.ignore_changes == [] and ng.inputs["scalingConfig"] == {"minSize": 1, "maxSize": 2, "desiredSize": 1}


def test_taint_effects_are_translated_to_the_eks_enum():
    ng = _pool(ca_run(), "tainted", NODE_GROUP)
    assert ng.inputs["taints"] == [
        {"key": "a", "value": "1", "effect": "NO_EXECUTE"},
        {"key": "b", "effect": "PREFER_NO_SCHEDULE"},
    ]


def test_launch_template_requires_imdsv2_and_encrypts_the_gp3_root_volume():
    r = ca_run()
    lt = _pool(r, "od", LAUNCH_TEMPLATE)
    assert lt.name == "od-launch-template"
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
    assert _children(r, "od", PLACEMENT) == []


def test_efa_pool_gets_every_efa_interface_a_placement_group_and_one_zone():
    r = ca_run()
    lt = _pool(r, "efa", LAUNCH_TEMPLATE).inputs
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
    group = _pool(r, "efa", PLACEMENT)
    assert group.name == "efa-placement" and group.inputs["strategy"] == "cluster"
    assert lt["placement"] == {"groupName": "efa-placement"}
    ng = _pool(r, "efa", NODE_GROUP).inputs
    assert ng["instanceTypes"] == ["p5.48xlarge"] and len(ng["subnetIds"]) == 1
    efa = r.one(RELEASE, "efa-efa-device-plugin")
    assert efa.inputs["chart"] == "aws-efa-k8s-device-plugin" and efa.inputs["values"]["nodeSelector"] == {
        "gpuplane.dev/pool": "efa"
    }


def test_compact_placement_without_efa_adds_only_the_placement_group():
    r = ca_run()
    lt = _pool(r, "compact", LAUNCH_TEMPLATE).inputs
    assert "networkInterfaces" not in lt and lt["placement"] == {"groupName": "compact-placement"}
    assert sorted(x.name for x in _children(r, "compact", RELEASE)) == [
        "compact-dcgm-exporter",
        "compact-device-plugin",
    ]


def test_cluster_autoscaler_can_scale_the_pool_from_zero():
    tags = {x.inputs["tag"]["key"]: x for x in _children(ca_run(), "sliced", ASG_TAG)}
    assert {x.inputs["autoscalingGroupName"] for x in tags.values()} == {
        "eks-sliced-node-group-asg"
    }  # node_group.resources[0].autoscaling_groups[0].name
    values = {k: x.inputs["tag"]["value"] for k, x in tags.items()}
    assert values == {
        "k8s.io/cluster-autoscaler/enabled": "true",
        "k8s.io/cluster-autoscaler/gpu": "owned",
        "k8s.io/cluster-autoscaler/node-template/label/gpuplane.dev/pool": "sliced",
        "k8s.io/cluster-autoscaler/node-template/label/gpuplane.dev/accelerator": "L4",
        "k8s.io/cluster-autoscaler/node-template/label/gpuplane.dev/capacity-type": "on-demand",
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "present:NoSchedule",
        "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu": "4",  # 1 GPU x 4 time-slices
    }
    for x in tags.values():
        assert x.name.startswith("sliced-ca-") and x.inputs["tag"]["propagateAtLaunch"] is False, x.urn


def test_without_cluster_autoscaler_no_asg_tags_are_made():
    r = run(_program("none", {"plain": {"accelerator": "L4"}}))
    assert r.by_type(ASG_TAG) == [] and _pool(r, "plain", NODE_GROUP)


def test_device_plugin_runs_through_the_cluster_provider():
    r = ca_run()
    provider = r.one("pulumi:providers:kubernetes").urn
    releases = {x.name: x for x in _children(r, "od", RELEASE)}
    assert set(releases) == {"od-device-plugin", "od-dcgm-exporter"}
    for x in releases.values():
        assert x.provider and x.provider.startswith(provider), x.urn


# -- Karpenter --------------------------------------------------------------------------------


def test_karpenter_pool_is_a_nodepool_and_ec2nodeclass():
    r = karpenter_run()
    provider = r.one("pulumi:providers:kubernetes").urn
    node_pool = _pool(r, "kp", "kubernetes:karpenter.sh/v1:NodePool")
    node_class = _pool(r, "kp", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    for x in (node_pool, node_class):
        assert x.provider and x.provider.startswith(provider), x.urn
        assert r.one(RELEASE, "gpu-karpenter").urn in x.dependencies, f"{x.urn} must wait for the Karpenter CRDs"
    assert node_pool.name == "kp-node-pool" and node_class.name == "kp-node-class"
    spec = node_pool.inputs["spec"]
    assert spec["template"]["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "kp",
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
    assert spec["template"]["metadata"]["labels"]["gpuplane.dev/pool"] == "kp"
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
    assert [x.name for x in r.by_type(NODE_GROUP)] == ["gpu-system-nodes"]


def test_karpenter_pool_without_priority_has_no_weight():
    spec = _pool(karpenter_run(), "kp8", "kubernetes:karpenter.sh/v1:NodePool").inputs["spec"]
    assert "weight" not in spec and spec["limits"] == {"nvidia.com/gpu": 16}


# -- impossible requests fail before any child of the pool exists ------------------------------

BAD = {**CA_BAD, **KARPENTER_BAD}


@pytest.mark.parametrize("name", sorted(BAD))
def test_impossible_request_registers_nothing_of_the_pool(name):
    r, errors = bad_runs()
    message = BAD[name][1]
    assert message in str(errors.get(name)), errors.get(name)
    assert [x.urn for x in r.resources if x.name.startswith(f"{name}-")] == []
    comps = [x for x in r.resources if x.name == name]
    assert all(r.children_of(c.urn) == [] for c in comps)


def test_region_without_the_gpu_registers_nothing_of_the_pool():
    r, errors = bad_runs()
    assert "cluster.region = 'eu-central-1': does not offer 8 x H100 (on-demand)" in str(errors["bad-region"])
    assert [x.urn for x in r.resources if x.name.startswith("bad-region")] == []


def test_zone_outside_the_cluster_is_rejected_before_anything_is_registered():
    # The cluster spans 1a/1b; the pool asks for 1c, which has no node subnet.
    r, errors = bad_runs()
    assert "['us-east-1c'] are not zones of cluster" in str(errors["bad-zone"])
    assert [x.urn for x in r.resources if x.name == "bad-zone" or x.name.startswith("bad-zone-")] == []


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
