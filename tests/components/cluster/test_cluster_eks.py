"""KubernetesCluster on AWS (components/cluster/eks.py) under the mock runtime, and its pure helpers."""

from __future__ import annotations

import functools
import inspect
import ipaddress
import json
from typing import Any

import pulumi
import pulumi_aws
import pytest

from components.aws.iam import irsa_role, irsa_trust_policy, managed_policy_arn, partition_of
from components.cluster import KubernetesCluster, plan_cluster
from components.cluster.eks import kubeconfig_json, plan_eks, subnet_layout
from components.cluster.eks_autoscaler import (
    CLUSTER_AUTOSCALER_IMAGES,
    INTERRUPTION_RULES,
    KARPENTER_CHART,
    KARPENTER_VERSION,
    cluster_autoscaler_policy,
    karpenter_controller_policy,
)
from components.errors import ComponentInputError
from gpuplane.engine.aws_enums import check_aws_enums
from gpuplane.engine.runtime import ProgramRun, RecordedResource
from tests.helpers import run

TAGS = {"team": "ml", "cost-center": "42"}
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


def _program(name: str, args: dict[str, Any], errors: list[Exception] | None = None):
    def program() -> None:
        try:
            c = KubernetesCluster(name, {"cloud": "aws", "region": "us-east-1", "tags": TAGS, **args})  # type: ignore[typeddict-item]
        except ComponentInputError as e:
            if errors is None:
                raise
            errors.append(e)
            return
        pulumi.export("subnet_ids_by_zone", c.subnet_ids_by_zone)
        pulumi.export("security_group_id", c.security_group_id)
        pulumi.export("node_role_name", c.node_role_name)
        pulumi.export("node_role_arn", c.node_role_arn)
        pulumi.export("oidc_provider_arn", c.oidc_provider_arn)
        pulumi.export("oidc_issuer_url", c.oidc_issuer_url)
        pulumi.export("cluster_name", c.cluster_name)
        pulumi.export("kubeconfig", c.kubeconfig)

    return program


@functools.cache
def _run(name: str, frozen_args: str) -> ProgramRun:
    return run(_program(name, json.loads(frozen_args)))


def eks(name: str = "gpu", **args: Any) -> ProgramRun:
    args.setdefault("autoscaler", "cluster-autoscaler")
    return _run(name, json.dumps(args, sort_keys=True))


HARDENED = {"private_endpoint": True, "deletion_protection": True, "system_node_count": 3, "autoscaler": "none"}


def _component(r: ProgramRun, name: str) -> RecordedResource:
    return r.one("gpuplane:index:KubernetesCluster", name)


def _taggable(type_: str) -> bool:
    if not type_.startswith("aws:"):
        return False
    module, cls = type_.split(":")[1].split("/")[0], type_.split(":")[2]
    args = getattr(getattr(pulumi_aws, module, None), f"{cls}Args", None)
    return args is not None and "tags" in inspect.signature(args).parameters


AUTOSCALERS = ["karpenter", "cluster-autoscaler", "none"]


@pytest.mark.parametrize("autoscaler", AUTOSCALERS)
def test_children_are_named_after_the_cluster_parented_to_it_and_tagged(autoscaler):
    r = eks(autoscaler=autoscaler)
    comp = _component(r, "gpu")
    children = [x for x in r.resources if x is not comp]
    assert len(children) > 30
    for x in children:
        assert x.parent == comp.urn, f"{x.urn} is not a child of {comp.urn}"
        assert x.name.startswith("gpu-"), f"{x.urn} is not named gpu-<role>"
        if _taggable(x.type):
            tags = x.inputs.get("tags") or {}
            assert TAGS.items() <= tags.items(), f"{x.urn} lacks the cluster tags: {tags}"
    assert check_aws_enums(r.resources) == []


def test_eks_cluster_has_secure_defaults():
    r = eks()
    cluster = r.one("aws:eks/cluster:Cluster")
    key = r.one("aws:kms/key:Key")
    i = cluster.inputs
    assert cluster.name == "gpu-eks" and i["name"] == "gpu", cluster.urn
    assert i["version"] == "1.33" and i["region"] == "us-east-1"
    assert i["vpcConfig"]["endpointPrivateAccess"] is True and i["vpcConfig"]["endpointPublicAccess"] is True
    assert i["accessConfig"]["authenticationMode"] == "API_AND_CONFIG_MAP"
    assert set(i["enabledClusterLogTypes"]) == {"api", "audit", "authenticator"}
    assert i["encryptionConfig"] == {
        "resources": ["secrets"],
        "provider": {"keyArn": "arn:aws:kms:us-east-1:123456789012:gpu-secrets-key"},
    }
    assert key.inputs["enableKeyRotation"] is True, key.urn
    assert i["roleArn"].endswith(":role/gpu-cluster-role")
    assert not cluster.protect and not key.protect and "deletionProtection" not in i


def test_private_endpoint_turns_public_access_off():
    vpc = eks(**HARDENED).one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is False and vpc["endpointPrivateAccess"] is True


def test_deletion_protection_protects_the_cluster_and_its_key():
    r = eks(**HARDENED)
    cluster, key = r.one("aws:eks/cluster:Cluster"), r.one("aws:kms/key:Key")
    assert cluster.protect and key.protect, (cluster.urn, key.urn)
    assert cluster.inputs["deletionProtection"] is True
    assert not r.one("aws:ec2/vpc:Vpc").protect


def test_network_has_public_and_private_subnets_per_zone_one_nat_and_discovery_tags():
    r = eks(autoscaler="karpenter")
    subnets = r.by_type("aws:ec2/subnet:Subnet")
    assert sorted(s.name for s in subnets) == sorted(
        [f"gpu-private-{z}" for z in ZONES] + [f"gpu-public-{z}" for z in ZONES]
    )
    for s in subnets:
        tags = s.inputs["tags"]
        assert tags["kubernetes.io/cluster/gpu"] == "shared", s.urn
        if "private" in s.name:
            assert tags["kubernetes.io/role/internal-elb"] == "1" and tags["karpenter.sh/discovery"] == "gpu", s.urn
            assert s.inputs["mapPublicIpOnLaunch"] is False
        else:
            assert tags["kubernetes.io/role/elb"] == "1" and "karpenter.sh/discovery" not in tags, s.urn
    cidrs = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in subnets]
    vpc = ipaddress.ip_network(r.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"])
    assert all(c.subnet_of(vpc) for c in cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])
    nat = r.one("aws:ec2/natGateway:NatGateway")
    assert nat.inputs["subnetId"] == "gpu-public-us-east-1a-id"
    private_rt = r.one("aws:ec2/routeTable:RouteTable", "gpu-private-rt")
    assert private_rt.inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "natGatewayId": "gpu-nat-id"}]
    assert len(r.by_type("aws:ec2/routeTableAssociation:RouteTableAssociation")) == 6
    assert r.outputs["subnet_ids_by_zone"] == {z: f"gpu-private-{z}-id" for z in ZONES}


def test_public_nodes_need_no_nat_and_use_public_subnets():
    r = eks(private_nodes=False)
    assert r.by_type("aws:ec2/natGateway:NatGateway") == []
    assert r.outputs["subnet_ids_by_zone"] == {z: f"gpu-public-{z}-id" for z in ZONES}
    public = r.named("gpu-public-us-east-1a")
    assert public.inputs["mapPublicIpOnLaunch"] is True and public.inputs["tags"]["karpenter.sh/discovery"] == "gpu"


def test_existing_network_creates_no_vpc_and_tags_its_subnets_for_karpenter():
    net = {"vpc_id": "vpc-1", "subnet_ids_by_zone": {"us-east-1a": "subnet-a", "us-east-1b": "subnet-b"}}
    r = eks(existing_network=net, autoscaler="karpenter")
    assert not [
        x
        for x in r.resources
        if x.type.startswith("aws:ec2/") and x.type.split(":")[2] in ("Vpc", "Subnet", "NatGateway", "InternetGateway")
    ]
    assert r.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]["subnetIds"] == ["subnet-a", "subnet-b"]
    tags = {x.name: x.inputs for x in r.by_type("aws:ec2/tag:Tag")}
    assert tags["gpu-subnet-us-east-1a-discovery-tag"] == {
        "resourceId": "subnet-a",
        "key": "karpenter.sh/discovery",
        "value": "gpu",
        "region": "us-east-1",
    }
    assert tags["gpu-sg-discovery-tag"]["resourceId"] == "sg-gpu"
    assert r.outputs["subnet_ids_by_zone"] == {"us-east-1a": "subnet-a", "us-east-1b": "subnet-b"}


def test_system_nodes_are_on_demand_al2023_with_imdsv2_required():
    r = eks(**HARDENED)
    ng = r.one("aws:eks/nodeGroup:NodeGroup", "gpu-system-nodes")
    i = ng.inputs
    assert i["amiType"] == "AL2023_x86_64_STANDARD" and i["capacityType"] == "ON_DEMAND", ng.urn
    assert i["instanceTypes"] == ["m6i.large"]
    assert i["scalingConfig"] == {"minSize": 3, "maxSize": 3, "desiredSize": 3}
    assert i["launchTemplate"] == {"id": "gpu-system-launch-template-id", "version": "1"}
    assert i["nodeRoleArn"].endswith(":role/gpu-node-role")
    lt = r.one("aws:ec2/launchTemplate:LaunchTemplate", "gpu-system-launch-template").inputs
    assert lt["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 2}
    assert lt["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"


def test_node_role_has_the_worker_policies_and_trusts_ec2():
    r = eks(autoscaler="none")
    role = r.one("aws:iam/role:Role", "gpu-node-role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    attached = {
        x.inputs["policyArn"]
        for x in r.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if x.name.startswith("gpu-node-role-")
    }
    assert attached == {
        managed_policy_arn(p)
        for p in (
            "AmazonEKSWorkerNodePolicy",
            "AmazonEKS_CNI_Policy",
            "AmazonEC2ContainerRegistryReadOnly",
            "AmazonSSMManagedInstanceCore",
        )
    }
    assert r.outputs["node_role_name"] == "gpu-node-role"


def test_oidc_provider_and_outputs_for_workload_identity():
    r = eks()
    oidc = r.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert oidc.inputs["url"] == r.outputs["oidc_issuer_url"]
    assert r.outputs["oidc_provider_arn"].startswith(
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/"
    )
    assert r.outputs["security_group_id"] == "sg-gpu"
    assert r.outputs["cluster_name"] == "gpu"


def test_kubernetes_provider_authenticates_with_aws_eks_get_token():
    r = eks()
    provider = r.one("pulumi:providers:kubernetes", "gpu-k8s")
    config = json.loads(provider.inputs["kubeconfig"])
    assert config == json.loads(r.outputs["kubeconfig"])
    user = config["users"][0]["user"]["exec"]
    assert (
        user["command"] == "aws"
        and user["args"][:4] == ["eks", "get-token", "--cluster-name", "gpu"]
        and "us-east-1" in user["args"]
    )
    assert config["clusters"][0]["cluster"]["server"] == "https://gpu.mock.eks.amazonaws.com"


def test_karpenter_gets_an_interruption_queue_fed_by_four_event_rules():
    r = eks(autoscaler="karpenter")
    queue = r.one("aws:sqs/queue:Queue")
    rules = {x.name: json.loads(x.inputs["eventPattern"]) for x in r.by_type("aws:cloudwatch/eventRule:EventRule")}
    assert rules == {f"gpu-{k}": v for k, v in INTERRUPTION_RULES.items()}
    assert {tuple(v["detail-type"]) for v in rules.values()} == {
        ("EC2 Spot Instance Interruption Warning",),
        ("EC2 Instance Rebalance Recommendation",),
        ("EC2 Instance State-change Notification",),
        ("AWS Health Event",),
    }
    targets = r.by_type("aws:cloudwatch/eventTarget:EventTarget")
    assert {t.inputs["rule"] for t in targets} == set(rules) and {t.inputs["arn"] for t in targets} == {
        "arn:aws:sqs:us-east-1:123456789012:gpu-interruption-queue"
    }
    policy = json.loads(r.one("aws:sqs/queuePolicy:QueuePolicy").inputs["policy"])
    assert policy["Statement"][0]["Principal"]["Service"] == ["events.amazonaws.com", "sqs.amazonaws.com"]
    assert queue.inputs["sqsManagedSseEnabled"] is True


def test_karpenter_release_is_pinned_and_wired_to_its_irsa_role_and_queue():
    r = eks(autoscaler="karpenter")
    provider = r.one("pulumi:providers:kubernetes")
    release = r.one("kubernetes:helm.sh/v3:Release", "gpu-karpenter")
    assert release.provider and release.provider.startswith(provider.urn), release.urn
    assert release.inputs["chart"] == KARPENTER_CHART and release.inputs["version"] == KARPENTER_VERSION
    values = release.inputs["values"]
    assert values["settings"] == {"clusterName": "gpu", "interruptionQueue": "gpu-interruption-queue"}
    assert values["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/gpu-karpenter-controller"
    }
    assert r.one("aws:eks/nodeGroup:NodeGroup").urn in release.dependencies
    trust = json.loads(r.named("gpu-karpenter-controller").inputs["assumeRolePolicy"])["Statement"][0]
    issuer = r.outputs["oidc_issuer_url"].removeprefix("https://")
    assert trust["Condition"]["StringEquals"] == {
        f"{issuer}:sub": "system:serviceaccount:kube-system:karpenter",
        f"{issuer}:aud": "sts.amazonaws.com",
    }
    assert trust["Principal"]["Federated"] == r.outputs["oidc_provider_arn"]
    policy = json.loads(r.named("gpu-karpenter-controller-policy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["PassNodeRole"]["Resource"] == "arn:aws:iam::123456789012:role/gpu-karpenter-node-role"
    assert by_sid["InterruptionQueue"]["Resource"] == "arn:aws:sqs:us-east-1:123456789012:gpu-interruption-queue"
    entry = r.one("aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["type"] == "EC2_LINUX" and entry.inputs["principalArn"] == by_sid["PassNodeRole"]["Resource"]
    assert r.outputs["node_role_name"] == "gpu-karpenter-node-role"


def test_cluster_autoscaler_release_discovers_the_cluster_with_an_irsa_role():
    r = eks(autoscaler="cluster-autoscaler")
    release = r.one("kubernetes:helm.sh/v3:Release")
    assert release.name == "gpu-cluster-autoscaler" and release.inputs["repositoryOpts"] == {
        "repo": "https://kubernetes.github.io/autoscaler"
    }
    values = release.inputs["values"]
    assert values["autoDiscovery"] == {"clusterName": "gpu"} and values["awsRegion"] == "us-east-1"
    assert values["rbac"]["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/gpu-cluster-autoscaler"
    }
    assert values["image"] == {"tag": CLUSTER_AUTOSCALER_IMAGES["1.33"]}
    policy = json.loads(r.named("gpu-cluster-autoscaler-policy").inputs["policy"])
    scale = next(s for s in policy["Statement"] if s["Sid"] == "ScaleOwnGroups")
    assert scale["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/gpu": "owned"}}
    assert r.by_type("aws:sqs/queue:Queue") == []


def test_no_autoscaler_installs_nothing_in_the_cluster():
    r = eks(autoscaler="none")
    assert r.by_type("kubernetes:helm.sh/v3:Release") == []


def test_eks_specific_mistakes_fail_before_anything_is_registered():
    errors: list[Exception] = []
    r = run(_program("one", {"zones": ["us-east-1a"], "kubernetes_version": "1.20"}, errors))
    assert len(errors) == 1
    message = str(errors[0])
    assert "zones = ['us-east-1a']: EKS needs subnets in at least two availability zones" in message
    assert "kubernetes_version = '1.20'" in message
    assert [x.urn for x in r.resources if x.name == "one" or x.name.startswith("one-")] == []


# -- pure helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"zones": ["us-east-1a"]}, "at least two availability zones"),
        ({"zones": ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"]}, "room for four zones"),
        ({"kubernetes_version": "1.25", "autoscaler": "cluster-autoscaler"}, "no pinned Cluster Autoscaler image"),
    ],
)
def test_plan_eks_rejects(args, problem):
    full = {"cloud": "aws", "region": "us-east-1", **args}
    with pytest.raises(ComponentInputError, match=problem):
        plan_eks("c", plan_cluster("c", full), full)  # type: ignore[arg-type]


def test_plan_eks_rejects_a_name_eks_would_refuse():
    args = {"cloud": "aws", "region": "us-east-1"}
    with pytest.raises(ComponentInputError, match="not a valid EKS cluster name"):
        plan_eks("-bad.name", plan_cluster("-bad.name", args), args)  # type: ignore[arg-type]


def test_plan_eks_with_karpenter_ignores_the_autoscaler_image_table():
    args = {"cloud": "aws", "region": "us-east-1", "kubernetes_version": "1.25", "autoscaler": "karpenter"}
    assert plan_eks("c", plan_cluster("c", args), args).cluster_autoscaler_image is None  # type: ignore[arg-type]


@pytest.mark.parametrize("zones", [2, 3, 4])
def test_subnet_layout_never_overlaps(zones):
    layout = subnet_layout(tuple(f"z{i}" for i in range(zones)))
    nets = [ipaddress.ip_network(c) for s in layout for c in (s.private_cidr, s.public_cidr)]
    assert len(nets) == 2 * zones
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert all(ipaddress.ip_network(s.private_cidr).num_addresses == 8192 for s in layout)


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("us-east-1", "aws"),
        ("eu-west-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        (None, "aws"),
    ],
)
def test_partition_of_region(region, partition):
    assert partition_of(region) == partition
    assert (
        managed_policy_arn("AmazonEKSClusterPolicy", region)
        == f"arn:{partition}:iam::aws:policy/AmazonEKSClusterPolicy"
    )


def test_policies_are_valid_json_with_unique_statement_ids():
    for doc in (
        cluster_autoscaler_policy("c"),
        karpenter_controller_policy("c", "us-east-1", "arn:role", "arn:cluster", "arn:queue"),
    ):
        statements = json.loads(doc)["Statement"]
        assert len({s["Sid"] for s in statements}) == len(statements)
        assert all(s["Effect"] == "Allow" for s in statements)


def test_irsa_trust_policy_pins_subject_and_audience():
    doc = json.loads(irsa_trust_policy("arn:oidc", "https://oidc.example/id/X", "ns", "sa"))
    cond = doc["Statement"][0]["Condition"]["StringEquals"]
    assert cond == {
        "oidc.example/id/X:sub": "system:serviceaccount:ns:sa",
        "oidc.example/id/X:aud": "sts.amazonaws.com",
    }
    assert doc["Statement"][0]["Action"] == "sts:AssumeRoleWithWebIdentity"


def test_kubeconfig_json_round_trips():
    cfg = json.loads(kubeconfig_json("c", "https://x", "Q0E=", "eu-west-1"))
    assert cfg["current-context"] == "c" and cfg["clusters"][0]["cluster"]["certificate-authority-data"] == "Q0E="
    assert cfg["users"][0]["user"]["exec"]["args"][-3:] == ["eu-west-1", "--output", "json"]


def test_irsa_role_attaches_managed_policies_or_an_inline_document():
    def program() -> None:
        c = KubernetesCluster("c", {"cloud": "aws", "region": "us-east-1", "autoscaler": "none"})
        irsa_role(
            c, "c-reader", c, "apps", "reader", ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"], {"team": "ml"}
        )
        irsa_role(c, "c-writer", c, "apps", "writer", {"Version": "2012-10-17", "Statement": []})

    r = run(program)
    assert (
        r.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "c-reader-amazons3readonlyaccess")
        .inputs["policyArn"]
        .endswith("AmazonS3ReadOnlyAccess")
    )
    assert json.loads(r.one("aws:iam/rolePolicy:RolePolicy", "c-writer-policy").inputs["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [],
    }
    assert r.named("c-reader").inputs["tags"] == {"team": "ml"}
    sub = json.loads(r.named("c-writer").inputs["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert "system:serviceaccount:apps:writer" in sub.values()


def test_irsa_role_refuses_a_cluster_without_oidc_before_creating_anything():
    errors: list[Exception] = []

    def program() -> None:
        c = KubernetesCluster("k", {"cloud": "existing"})
        try:
            irsa_role(c, "k-role", c, "ns", "sa", [])
        except ComponentInputError as e:
            errors.append(e)

    r = run(program)
    assert "has no IAM OIDC provider" in str(errors[0]) and "grants nothing" in str(errors[0])
    assert r.by_type("aws:iam/role:Role") == []
