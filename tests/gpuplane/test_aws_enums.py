"""gpuplane/engine/aws_enums.py: AWS enum values checked against botocore's service models."""

from __future__ import annotations

from components.catalog import load_catalog
from gpuplane.engine.aws_enums import allowed_values, check_aws_enums
from gpuplane.engine.runtime import RecordedResource


def _res(type_: str, inputs: dict, name: str = "x") -> RecordedResource:
    return RecordedResource(
        urn=f"urn:pulumi:s::p::{type_}::{name}",
        type=type_,
        name=name,
        parent=None,
        custom=True,
        remote=False,
        provider=None,
        inputs=inputs,
    )


def test_wrong_node_group_values_are_reported_with_urn_path_and_hint():
    ng = _res(
        "aws:eks/nodeGroup:NodeGroup",
        {
            "amiType": "AL2023_x86_64_GPU",
            "capacityType": "spot",
            "taints": [{"key": "a", "effect": "NoSchedule"}],
            "instanceTypes": ["g6.xlarge", "p9.huge"],
        },
        "ng",
    )
    problems = check_aws_enums([ng])
    assert len(problems) == 4, problems
    assert all(p.startswith(ng.urn + ": ") for p in problems)
    text = "\n".join(problems)
    assert (
        "amiType = 'AL2023_x86_64_GPU' is not a valid eks AMITypes. Allowed: " in text
        and "AL2023_x86_64_NVIDIA" in text
    )
    assert "capacityType = 'spot' is not a valid eks CapacityTypes. Did you mean 'SPOT'?" in text
    assert "taints[0].effect = 'NoSchedule' is not a valid eks TaintEffect. Did you mean 'NO_SCHEDULE'?" in text
    assert "instanceTypes[1] = 'p9.huge' is not a valid ec2 InstanceType." in text


def test_launch_template_placement_and_cluster_values_are_checked():
    resources = [
        _res(
            "aws:ec2/launchTemplate:LaunchTemplate",
            {
                "metadataOptions": {"httpTokens": "mandatory"},
                "networkInterfaces": [{"interfaceType": "efa"}, {"interfaceType": "efa_only"}],
                "blockDeviceMappings": [{"ebs": {"volumeType": "gp4"}}],
            },
        ),
        _res("aws:ec2/placementGroup:PlacementGroup", {"strategy": "compact"}),
        _res(
            "aws:eks/cluster:Cluster",
            {"enabledClusterLogTypes": ["api", "controller"], "accessConfig": {"authenticationMode": "API"}},
        ),
    ]
    paths = [p.split(": ", 1)[1].split(" = ")[0] for p in check_aws_enums(resources)]
    assert paths == [
        "metadataOptions.httpTokens",
        "blockDeviceMappings[0].ebs.volumeType",
        "networkInterfaces[1].interfaceType",
        "strategy",
        "enabledClusterLogTypes[1]",
    ]


def test_karpenter_nodepool_instance_types_are_checked():
    spec = {
        "template": {
            "spec": {
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g6.xlarge", "g6.xxl"]},
                    {"key": "karpenter.sh/capacity-type", "values": ["spot"]},
                ]
            }
        }
    }
    problems = check_aws_enums([_res("kubernetes:karpenter.sh/v1:NodePool", {"spec": spec})])
    assert len(problems) == 1 and "spec.template.spec.requirements[0].values[1] = 'g6.xxl'" in problems[0]


def test_unknown_values_and_other_types_are_skipped():
    resources = [
        _res("aws:eks/nodeGroup:NodeGroup", {"amiType": None, "capacityType": 1.0}),
        _res("aws:s3/bucket:Bucket", {"acl": "whatever"}),
        _res("kubernetes:apps/v1:Deployment", {"spec": {}}),
    ]
    assert check_aws_enums(resources) == []


def test_every_catalog_instance_type_exists_in_the_aws_api():
    cat = load_catalog()
    ec2, sagemaker = allowed_values("ec2", "InstanceType"), allowed_values("sagemaker", "ProductionVariantInstanceType")
    for (cloud, name), it in cat.instance_types.items():
        if cloud == "aws":
            assert name in (ec2 if it.service == "ec2" else sagemaker), (
                f"catalog {it.service} type {name} is not in botocore's model"
            )
