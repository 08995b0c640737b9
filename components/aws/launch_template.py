"""The EC2 launch template every EKS node group of gpuplane uses (system and GPU pools).

IMDSv2 required (hop limit 2, so pods behind the node's network namespace still reach it when
they must), an encrypted gp3 root volume, tags propagated to instances and volumes. Managed node
groups forbid an instance profile, subnets or spot options in the template, so none are set.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

ROOT_DEVICE = "/dev/xvda"
IMDS_HOP_LIMIT = 2


def node_launch_template(
    name: str,
    description: str,
    disk_size_gib: int,
    region: str | None,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
    *,
    network_interfaces: Sequence[aws.ec2.LaunchTemplateNetworkInterfaceArgs] | None = None,
    placement: aws.ec2.LaunchTemplatePlacementArgs | None = None,
) -> aws.ec2.LaunchTemplate:
    return aws.ec2.LaunchTemplate(
        name,
        aws.ec2.LaunchTemplateArgs(
            description=description,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=IMDS_HOP_LIMIT
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=disk_size_gib, volume_type="gp3", encrypted="true", delete_on_termination="true"
                    ),
                )
            ],
            network_interfaces=list(network_interfaces) if network_interfaces else None,
            placement=placement,
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=t, tags=tags) for t in ("instance", "volume")
            ]
            if tags
            else None,
            update_default_version=True,
            region=region,
            tags=tags,
        ),
        opts=opts,
    )
