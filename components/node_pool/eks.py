"""GpuNodePool on EKS: a managed node group, or a Karpenter NodePool + EC2NodeClass.

``create_node_pool`` is called by ``GpuNodePool`` with a validated plan. Children are named
``f"{name}-{role}"`` with ``parent=component``; cloud resources carry ``plan.tags`` and are pinned
to the cluster's region.

``eks-managed-node-group`` (clusters with ``autoscaler`` ``cluster-autoscaler`` or ``none``):

- a cluster placement group when ``compact_placement`` or ``efa`` (all nodes in one zone);
- a launch template: IMDSv2 required (hop limit 2), an encrypted gp3 root volume of
  ``disk_size_gib``, and with ``efa`` one EFA interface per network card of the instance type
  (catalog ``efa_interfaces``). No AMI, instance profile, subnets or spot options in the template:
  a managed node group sets those itself and rejects templates that do;
- the node group: NVIDIA AL2023 AMI type, the plan's instance type, capacity type, taints,
  labels and zones; ``desiredSize`` starts at ``min_nodes`` and is ignored on later updates when
  the autoscaler owns the count;
- with Cluster Autoscaler: tags on the node group's Auto Scaling group that describe the node
  template (labels, taints, GPU resource), which is what makes scale-from-zero work;
- the NVIDIA device plugin and DCGM exporter (components/kubernetes/device_plugin.py), and the
  AWS EFA device plugin for EFA pools.

``karpenter``: an EC2NodeClass (node role, AL2023 AMI alias, subnets and security groups found
by the ``karpenter.sh/discovery`` tag, IMDSv2, the root volume) and a NodePool (candidate
instance types from the catalog, capacity type, zones, taints, a GPU limit, consolidation of
empty nodes after ``scale_down_delay_seconds``, ``priority`` as weight; the spec is shared with
the existing-cluster backend, ``karpenter.py``), plus the device plugin.

Not done here: GPU driver installation (the NVIDIA AMIs ship it), MIG (see the declarations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.launch_template import IMDS_HOP_LIMIT, ROOT_DEVICE, node_launch_template
from components.errors import Problems
from components.kubernetes.charts import chart_args
from components.kubernetes.device_plugin import create_device_plugin, release_name
from components.node_pool.karpenter import (  # noqa: F401  (KARPENTER_CAPACITY_TYPES: re-exported)
    EC2_NODE_CLASS,
    KARPENTER_CAPACITY_TYPES,
    k8s_name,
    karpenter_node_pool_spec,
)

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.node_pool.spec import NodePoolPlan


# ---------------------------------------------------------------------------------------------
# Pure helpers (table-tested)

EKS_TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}
"""Kubernetes taint effect -> the EKS API's ``TaintEffect`` enum."""
EKS_CAPACITY_TYPES = {"on_demand": "ON_DEMAND", "spot": "SPOT", "capacity_block": "CAPACITY_BLOCK"}
GPU_AMI_TYPE = "AL2023_x86_64_NVIDIA"
CA_TAG_PREFIX = "k8s.io/cluster-autoscaler"
EFA_DEVICE_PLUGIN_REPO = "https://aws.github.io/eks-charts"
EFA_DEVICE_PLUGIN_CHART = "aws-efa-k8s-device-plugin"
EFA_DEVICE_PLUGIN_VERSION = "v0.5.7"


def efa_network_interfaces(efa_interfaces: int) -> list[dict[str, Any]]:
    """Launch-template network interfaces for an instance with ``efa_interfaces`` EFA devices.

    Network card 0 carries the primary interface as ``efa`` (ENA + EFA, device index 0); every
    other card gets an ``efa-only`` interface at device index 1, which saves an IP address per
    card (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa-acc-inst-types.html). Empty for
    ``efa_interfaces == 0``.
    """
    if efa_interfaces <= 0:
        return []
    return [{"device_index": 0, "network_card_index": 0, "interface_type": "efa"}] + [
        {"device_index": 1, "network_card_index": i, "interface_type": "efa-only"} for i in range(1, efa_interfaces)
    ]


def cluster_autoscaler_tags(plan: NodePoolPlan, cluster_name: str) -> dict[str, str]:
    """ASG tags that let Cluster Autoscaler scale the pool from zero and discover it.

    With no node running, the autoscaler builds a node template from these tags: labels, taints
    (value ``"<value>:<Effect>"``) and the GPU resource it would advertise (the allocatable count,
    so time-sliced pools count their replicas). Documented in the autoscaler's AWS FAQ:
    https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md#auto-discovery-setup
    """
    tags = {f"{CA_TAG_PREFIX}/enabled": "true", f"{CA_TAG_PREFIX}/{cluster_name}": "owned"}
    for key, value in sorted(plan.labels.items()):
        tags[f"{CA_TAG_PREFIX}/node-template/label/{key}"] = value
    for taint in plan.taints:
        tags[f"{CA_TAG_PREFIX}/node-template/taint/{taint.key}"] = f"{taint.value}:{taint.effect}"
    tags[f"{CA_TAG_PREFIX}/node-template/resources/{plan.scheduling.resource_name}"] = str(
        plan.scheduling.allocatable_per_node
    )
    return tags


def ec2_node_class_spec(plan: NodePoolPlan, cluster_name: str, node_role_name: str) -> dict[str, Any]:
    """``karpenter.k8s.aws/v1`` EC2NodeClass spec for the pool (Karpenter v1 CRD field names)."""
    return {
        "role": node_role_name,
        "amiSelectorTerms": [{"alias": "al2023@latest"}],  # resolves to the NVIDIA variant on GPU types
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster_name}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster_name}}],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": IMDS_HOP_LIMIT,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [
            {
                "deviceName": ROOT_DEVICE,
                "ebs": {
                    "volumeSize": f"{plan.disk_size_gib}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        "tags": dict(plan.tags),
    }


def _check(name: str, plan: NodePoolPlan, cluster: KubernetesCluster) -> None:
    """What only the AWS implementation knows: raise before creating anything."""
    p = Problems("GpuNodePool", name)
    if plan.instance_type is None:
        p.add(
            "instance_type",
            None,
            "no EC2 instance type was chosen.",
            "pick an accelerator and count the region offers.",
        )
    subnets = cluster.subnet_ids_by_zone or {}
    missing = [z for z in plan.zones if z not in subnets]
    if missing:
        p.add(
            "zones",
            list(plan.zones),
            f"the cluster has no node subnet in {missing}.",
            f"use zones from {sorted(subnets)}, or add subnets for those zones to the cluster.",
        )
    if plan.implementation == "karpenter" and not 0 <= plan.priority <= 100:
        p.add("priority", plan.priority, "is outside Karpenter's NodePool weight range.", "use 0 (no weight) to 100.")
    if any(
        getattr(cluster, a, None) is None
        for a in ("node_role_arn", "node_role_name", "security_group_id", "k8s_provider")
    ):
        p.add(
            "cluster",
            cluster.facts.name,
            "is not an EKS cluster created by KubernetesCluster.",
            "pass a KubernetesCluster with cloud='aws'.",
        )
    p.raise_if_any()


# ---------------------------------------------------------------------------------------------
# Resources


def create_node_pool(component: pulumi.ComponentResource, name: str, plan: NodePoolPlan, cluster: KubernetesCluster) -> None:
    """Create the pool's children (see the module docstring); validates before creating anything."""
    _check(name, plan, cluster)
    if plan.implementation == "karpenter":
        _karpenter_pool(component, name, plan, cluster)
    else:
        _managed_node_group(component, name, plan, cluster)
    create_device_plugin(component, name, plan, cluster.k8s_provider, chart_source=cluster.chart_source)
    if plan.efa:
        _efa_device_plugin(component, name, plan, cluster)


def _managed_node_group(component: pulumi.ComponentResource, name: str, plan: NodePoolPlan, cluster: KubernetesCluster) -> None:
    assert plan.instance_type is not None  # _check rejected None
    region = plan.region
    tags = dict(plan.tags)
    opts = pulumi.ResourceOptions(parent=component)
    placement = None
    if plan.compact_placement or plan.efa:
        group = aws.ec2.PlacementGroup(
            f"{name}-placement", aws.ec2.PlacementGroupArgs(strategy="cluster", region=region, tags=tags), opts=opts
        )
        placement = aws.ec2.LaunchTemplatePlacementArgs(group_name=group.name)
    interfaces = None
    if plan.efa:
        # With network interfaces in the template, EKS adds no security group itself: give each
        # interface the cluster security group, which allows all traffic between its members
        # (what EFA needs, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa-start.html#efa-start-security).
        interfaces = [
            aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                delete_on_termination="true",
                security_groups=[cast(pulumi.Output[str], cluster.security_group_id)],
                **nic,
            )
            for nic in efa_network_interfaces(plan.instance_type.efa_interfaces)
        ]
    template = node_launch_template(
        f"{name}-launch-template",
        f"GPU pool {name}: IMDSv2 required, {plan.disk_size_gib} GiB encrypted gp3 root volume",
        plan.disk_size_gib,
        region,
        tags,
        opts,
        network_interfaces=interfaces,
        placement=placement,
    )
    assert cluster.subnet_ids_by_zone is not None  # _check rejected None
    node_group = aws.eks.NodeGroup(
        f"{name}-node-group",
        aws.eks.NodeGroupArgs(
            cluster_name=cluster.cluster_name,
            node_role_arn=cluster.node_role_arn,  # type: ignore[arg-type]
            subnet_ids=[cluster.subnet_ids_by_zone[z] for z in plan.zones],
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=plan.min_nodes, max_size=plan.max_nodes, desired_size=plan.min_nodes
            ),
            instance_types=[plan.instance_type.name],
            ami_type=GPU_AMI_TYPE,
            capacity_type=EKS_CAPACITY_TYPES[plan.capacity_type],
            taints=[
                aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value or None, effect=EKS_TAINT_EFFECTS[t.effect])
                for t in plan.taints
            ],
            labels=dict(plan.labels),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            region=region,
            tags=tags,
        ),
        # The autoscaler moves desiredSize; Pulumi must not drag it back on the next update.
        opts=pulumi.ResourceOptions(
            parent=component,
            ignore_changes=["scalingConfig.desiredSize"] if plan.replicas_managed_by == "autoscaler" else None,
        ),
    )
    if cluster.facts.autoscaler == "cluster-autoscaler":
        asg_name = node_group.resources.apply(lambda rs: rs[0].autoscaling_groups[0].name)  # type: ignore[index, union-attr]
        used: set[str] = set()
        for key, value in cluster_autoscaler_tags(plan, cluster.facts.name).items():
            role = "ca-" + k8s_name(key.removeprefix(CA_TAG_PREFIX + "/"))
            while role in used:
                role += "-x"
            used.add(role)
            aws.autoscaling.Tag(
                f"{name}-{role}",
                aws.autoscaling.TagArgs(
                    autoscaling_group_name=asg_name,
                    tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                    region=region,
                ),
                opts=opts,
            )


def _karpenter_pool(component: pulumi.ComponentResource, name: str, plan: NodePoolPlan, cluster: KubernetesCluster) -> None:
    release = getattr(cluster, "autoscaler_release", None)  # the Karpenter chart installs the CRDs
    opts = pulumi.ResourceOptions(
        parent=component, provider=cluster.k8s_provider, depends_on=[release] if release is not None else None
    )
    object_name = k8s_name(name)
    node_class = k8s.apiextensions.CustomResource(
        f"{name}-node-class",
        api_version="karpenter.k8s.aws/v1",
        kind="EC2NodeClass",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=object_name),
        spec=cast(pulumi.Output[str], cluster.node_role_name).apply(
            lambda role: ec2_node_class_spec(plan, cluster.facts.name, role)
        ),
        opts=opts,
    )
    k8s.apiextensions.CustomResource(
        f"{name}-node-pool",
        api_version="karpenter.sh/v1",
        kind="NodePool",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=object_name),
        spec=karpenter_node_pool_spec(plan, {**EC2_NODE_CLASS, "name": object_name}),
        opts=pulumi.ResourceOptions(
            parent=component,
            provider=cluster.k8s_provider,
            depends_on=[node_class] + ([release] if release is not None else []),
        ),
    )


def _efa_device_plugin(component: pulumi.ComponentResource, name: str, plan: NodePoolPlan, cluster: KubernetesCluster) -> None:
    """Advertises ``vpc.amazonaws.com/efa`` on the pool's nodes so pods can request the interfaces."""
    k8s.helm.v3.Release(
        f"{name}-efa-device-plugin",
        k8s.helm.v3.ReleaseArgs(
            name=release_name(f"{name}-efa-device-plugin"),
            **chart_args(cluster.chart_source, EFA_DEVICE_PLUGIN_CHART, EFA_DEVICE_PLUGIN_VERSION, EFA_DEVICE_PLUGIN_REPO),
            namespace="kube-system",
            values={
                "nodeSelector": dict(plan.scheduling.node_selector),
                "tolerations": [dict(t) for t in plan.scheduling.tolerations],
            },
        ),
        opts=pulumi.ResourceOptions(parent=component, provider=cluster.k8s_provider),
    )
