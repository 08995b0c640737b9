"""KubernetesCluster on AWS: an EKS cluster with secure defaults and a node autoscaler.

``create_eks`` is called by ``KubernetesCluster`` for ``cloud="aws"``. Every child is named
``f"{name}-{role}"`` with ``parent=component``, carries the cluster's tags when the resource type
is taggable, and is pinned to ``plan.facts.region`` through the provider's per-resource
``region`` argument (pulumi-aws 7), so one default AWS provider can serve several regions.

What it creates:

- network (unless ``existing_network``): a VPC (10.0.0.0/16), one public and one private subnet
  per zone, an internet gateway, ONE NAT gateway (in the first zone; a zone outage cuts private
  egress in the others — the price of not paying for three), route tables. Node subnets are
  tagged ``kubernetes.io/role/internal-elb`` and ``karpenter.sh/discovery=<cluster name>``.
  With ``private_nodes=False`` nodes go in the public subnets (public IPs) and no NAT is made.
- IAM: the cluster role and the node role, with AWS managed policy attachments.
- a KMS key (rotation on) for envelope encryption of Kubernetes secrets.
- ``aws.eks.Cluster`` named exactly ``name`` (Karpenter discovery tags and IAM conditions need the
  name before the cluster exists): private endpoint always on, public endpoint unless
  ``private_endpoint``; access entries and the aws-auth config map both accepted
  (``API_AND_CONFIG_MAP``); api, audit and authenticator logs; ``protect`` when
  ``deletion_protection``.
- an IAM OIDC provider for IRSA (see components/aws/iam.py).
- a system managed node group (on-demand, AL2023 standard AMI) whose launch template requires
  IMDSv2 (hop limit 2, so pods that still use IMDS keep working) and encrypts the root volume.
- a ``pulumi_kubernetes`` provider from a generated kubeconfig that runs ``aws eks get-token``.
- the node autoscaler: Karpenter (controller role over IRSA, its own node role and EC2_LINUX
  access entry, SQS interruption queue fed by four EventBridge rules, the discovery tag on the
  cluster security group, the Helm release) or Cluster Autoscaler (IRSA role, Helm release with
  auto-discovery); nothing for ``autoscaler="none"``.

Deliberately not done: EKS add-ons beyond the defaults (VPC CNI, CoreDNS, kube-proxy come with
the cluster), Pod Identity (IRSA covers every consumer here), Bottlerocket, IPv6.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.iam import irsa_role, managed_policy_arn, partition_of, service_trust_policy
from components.aws.launch_template import node_launch_template
from components.errors import Problems
from components.kubernetes.kubeconfig import exec_kubeconfig

if TYPE_CHECKING:
    from components.cluster import ClusterPlan, KubernetesCluster, KubernetesClusterArgs

VPC_CIDR = "10.0.0.0/16"
KARPENTER_CHART = "oci://public.ecr.aws/karpenter/karpenter"
KARPENTER_VERSION = "1.6.3"  # supports Kubernetes 1.29-1.34 (karpenter.sh compatibility matrix)
KARPENTER_NAMESPACE = "kube-system"
KARPENTER_SERVICE_ACCOUNT = "karpenter"
CLUSTER_AUTOSCALER_REPO = "https://kubernetes.github.io/autoscaler"
CLUSTER_AUTOSCALER_CHART = "cluster-autoscaler"
CLUSTER_AUTOSCALER_VERSION = "9.50.0"
CLUSTER_AUTOSCALER_NAMESPACE = "kube-system"
CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
# Cluster Autoscaler must match the Kubernetes minor version (its README); images as kops pins them.
CLUSTER_AUTOSCALER_IMAGES = {
    "1.30": "v1.30.6",
    "1.31": "v1.31.4",
    "1.32": "v1.32.3",
    "1.33": "v1.33.1",
    "1.34": "v1.34.0",
}
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
CLUSTER_LOG_TYPES = ("api", "audit", "authenticator")
SYSTEM_DISK_GIB = 50
LABEL_ROLE = "gpuplane.dev/role"

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
)

# EventBridge rules Karpenter's interruption controller consumes
# (https://karpenter.sh/docs/concepts/disruption/#interruption).
INTERRUPTION_RULES: dict[str, dict[str, list[str]]] = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
}


# ---------------------------------------------------------------------------------------------
# Pure planning


@dataclass(frozen=True)
class SubnetLayout:
    zone: str
    private_cidr: str
    public_cidr: str


@dataclass(frozen=True)
class EksPlan:
    """Decisions ``create_eks`` takes before creating anything (table-tested)."""

    create_network: bool
    subnets: tuple[SubnetLayout, ...]
    """Subnet CIDRs per zone (empty with an existing network)."""
    nodes_in_private_subnets: bool
    nat_gateway: bool
    partition: str
    cluster_autoscaler_image: str | None


def subnet_layout(zones: tuple[str, ...], vpc_cidr: str = VPC_CIDR) -> tuple[SubnetLayout, ...]:
    """A /19 private subnet (8,190 addresses: pods take VPC IPs with the VPC CNI) and a /24 public
    subnet per zone, private ones from the bottom of the VPC, public ones from its top half."""
    net = ipaddress.IPv4Network(vpc_cidr)
    private = list(net.subnets(new_prefix=19))
    public = list(list(net.subnets(new_prefix=17))[1].subnets(new_prefix=24))[::-1]
    return tuple(SubnetLayout(z, str(private[i]), str(public[i])) for i, z in enumerate(zones))


def plan_eks(name: str, plan: ClusterPlan, args: KubernetesClusterArgs) -> EksPlan:
    """Validate what only EKS cares about and lay out the network; raises before any child exists."""
    facts = plan.facts
    p = Problems("KubernetesCluster", name)
    existing = args.get("existing_network")
    if len(facts.zones) < 2:
        p.add(
            "zones",
            list(facts.zones),
            "EKS needs subnets in at least two availability zones.",
            "give two or more zones (default: the region's first three).",
        )
    if len(facts.zones) > 4 and not existing:
        p.add("zones", list(facts.zones), "gpuplane's VPC layout has room for four zones.", "give at most four zones.")
    if not 1 <= len(name) <= 100 or not name[0].isalnum() or not all(c.isalnum() or c in "-_" for c in name):
        p.add(
            "name",
            name,
            "is not a valid EKS cluster name (1-100 letters, digits, '-' and '_', starting alphanumeric).",
            "rename the component.",
        )
    if facts.autoscaler == "cluster-autoscaler" and plan.kubernetes_version not in CLUSTER_AUTOSCALER_IMAGES:
        p.add(
            "kubernetes_version",
            plan.kubernetes_version,
            "has no pinned Cluster Autoscaler image (it must match the Kubernetes minor).",
            f"use one of {sorted(CLUSTER_AUTOSCALER_IMAGES)}.",
        )
    p.raise_if_any()
    private_nodes = facts.private_nodes
    return EksPlan(
        create_network=not existing,
        subnets=() if existing else subnet_layout(facts.zones),
        nodes_in_private_subnets=private_nodes,
        nat_gateway=not existing and private_nodes,
        partition=partition_of(facts.region),
        cluster_autoscaler_image=CLUSTER_AUTOSCALER_IMAGES.get(plan.kubernetes_version),
    )


def kubeconfig_json(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig whose user runs ``aws eks get-token`` (no long-lived credentials in state)."""
    exec_config = {
        "command": "aws",
        "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
        "interactiveMode": "Never",
    }
    return json.dumps(exec_kubeconfig(cluster_name, endpoint, ca_data, exec_config), sort_keys=True)


def karpenter_controller_policy(
    cluster_name: str, region: str, node_role_arn: str, cluster_arn: str, queue_arn: str
) -> str:
    """The Karpenter v1 controller's permissions, condensed from its reference CloudFormation
    template (https://karpenter.sh/docs/reference/cloudformation/): launch and tag instances,
    terminate only instances Karpenter launched for this cluster, pass the node role, manage the
    instance profiles it derives from ``EC2NodeClass.spec.role``, read prices and AMI parameters,
    and drain the interruption queue."""
    partition = partition_of(region)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Read",
                    "Effect": "Allow",
                    "Action": [
                        "ec2:DescribeAvailabilityZones",
                        "ec2:DescribeCapacityReservations",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypeOfferings",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeInstances",
                        "ec2:DescribeLaunchTemplates",
                        "ec2:DescribePlacementGroups",
                        "ec2:DescribeSecurityGroups",
                        "ec2:DescribeSpotPriceHistory",
                        "ec2:DescribeSubnets",
                        "pricing:GetProducts",
                        "iam:GetInstanceProfile",
                        "iam:ListInstanceProfiles",
                    ],
                    "Resource": "*",
                },
                {
                    "Sid": "Launch",
                    "Effect": "Allow",
                    "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate", "ec2:CreateTags"],
                    "Resource": "*",
                },
                {
                    "Sid": "TerminateOwnInstances",
                    "Effect": "Allow",
                    "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}": "owned"},
                        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                    },
                },
                {
                    "Sid": "PassNodeRole",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": node_role_arn,
                    "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
                },
                {
                    "Sid": "InstanceProfiles",
                    "Effect": "Allow",
                    "Action": [
                        "iam:AddRoleToInstanceProfile",
                        "iam:CreateInstanceProfile",
                        "iam:DeleteInstanceProfile",
                        "iam:RemoveRoleFromInstanceProfile",
                        "iam:TagInstanceProfile",
                    ],
                    "Resource": f"arn:{partition}:iam::*:instance-profile/*",
                },
                {
                    "Sid": "AmiParameters",
                    "Effect": "Allow",
                    "Action": "ssm:GetParameter",
                    "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/*",
                },
                {"Sid": "Cluster", "Effect": "Allow", "Action": "eks:DescribeCluster", "Resource": cluster_arn},
                {
                    "Sid": "InterruptionQueue",
                    "Effect": "Allow",
                    "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
                    "Resource": queue_arn,
                },
            ],
        },
        sort_keys=True,
    )


def cluster_autoscaler_policy(cluster_name: str) -> str:
    """Cluster Autoscaler's permissions (its AWS README): read ASGs, launch templates and node
    groups everywhere; change the size only of ASGs tagged as owned by this cluster."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Read",
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                        "eks:DescribeNodegroup",
                    ],
                    "Resource": "*",
                },
                {
                    "Sid": "ScaleOwnGroups",
                    "Effect": "Allow",
                    "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}
                    },
                },
            ],
        },
        sort_keys=True,
    )


def interruption_queue_policy(queue_arn: str) -> str:
    """Lets EventBridge (and SQS itself) deliver to the interruption queue; denies plain HTTP."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "EventBridgeDelivery",
                    "Effect": "Allow",
                    "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                },
                {
                    "Sid": "DenyHTTP",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": queue_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        },
        sort_keys=True,
    )


# ---------------------------------------------------------------------------------------------
# Resources


def _tags(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    return {**base, **extra}


def _role(
    component: pulumi.Resource,
    name: str,
    service: str,
    policies: tuple[str, ...],
    region: str | None,
    tags: dict[str, str],
) -> aws.iam.Role:
    opts = pulumi.ResourceOptions(parent=component)
    role = aws.iam.Role(name, aws.iam.RoleArgs(assume_role_policy=service_trust_policy(service), tags=tags), opts=opts)
    for policy in policies:
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.lower().replace('_', '-')}",
            aws.iam.RolePolicyAttachmentArgs(role=role.name, policy_arn=managed_policy_arn(policy, region)),
            opts=opts,
        )
    return role


def _network(
    component: pulumi.Resource, name: str, cluster_name: str, eks: EksPlan, region: str, base_tags: dict[str, str]
) -> tuple[pulumi.Output[str], dict[str, pulumi.Output[str]]]:
    """VPC, subnets, gateways, routes. Returns the VPC id and the node subnet id per zone."""
    opts = pulumi.ResourceOptions(parent=component)
    vpc = aws.ec2.Vpc(
        f"{name}-vpc",
        aws.ec2.VpcArgs(
            cidr_block=VPC_CIDR,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            region=region,
            tags=_tags(base_tags, Name=f"{name}-vpc"),
        ),
        opts=opts,
    )
    igw = aws.ec2.InternetGateway(
        f"{name}-igw",
        aws.ec2.InternetGatewayArgs(vpc_id=vpc.id, region=region, tags=_tags(base_tags, Name=f"{name}-igw")),
        opts=opts,
    )
    cluster_tag = {f"kubernetes.io/cluster/{cluster_name}": "shared"}
    node_tags = {"karpenter.sh/discovery": cluster_name}  # on the subnets nodes live in
    public_rt = aws.ec2.RouteTable(
        f"{name}-public-rt",
        aws.ec2.RouteTableArgs(
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            region=region,
            tags=_tags(base_tags, Name=f"{name}-public"),
        ),
        opts=opts,
    )
    public: dict[str, aws.ec2.Subnet] = {}
    private: dict[str, aws.ec2.Subnet] = {}
    for layout in eks.subnets:
        z = layout.zone
        public[z] = aws.ec2.Subnet(
            f"{name}-public-{z}",
            aws.ec2.SubnetArgs(
                vpc_id=vpc.id,
                cidr_block=layout.public_cidr,
                availability_zone=z,
                map_public_ip_on_launch=not eks.nodes_in_private_subnets,
                region=region,
                tags={
                    **base_tags,
                    "Name": f"{name}-public-{z}",
                    **cluster_tag,
                    "kubernetes.io/role/elb": "1",
                    **({} if eks.nodes_in_private_subnets else node_tags),
                },
            ),
            opts=opts,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-{z}-rta",
            aws.ec2.RouteTableAssociationArgs(subnet_id=public[z].id, route_table_id=public_rt.id, region=region),
            opts=opts,
        )
        private[z] = aws.ec2.Subnet(
            f"{name}-private-{z}",
            aws.ec2.SubnetArgs(
                vpc_id=vpc.id,
                cidr_block=layout.private_cidr,
                availability_zone=z,
                map_public_ip_on_launch=False,
                region=region,
                tags={
                    **base_tags,
                    "Name": f"{name}-private-{z}",
                    **cluster_tag,
                    "kubernetes.io/role/internal-elb": "1",
                    **(node_tags if eks.nodes_in_private_subnets else {}),
                },
            ),
            opts=opts,
        )
    if eks.nat_gateway:
        first = eks.subnets[0].zone
        eip = aws.ec2.Eip(
            f"{name}-nat-eip",
            aws.ec2.EipArgs(domain="vpc", region=region, tags=_tags(base_tags, Name=f"{name}-nat")),
            opts=opts,
        )
        nat = aws.ec2.NatGateway(
            f"{name}-nat",
            aws.ec2.NatGatewayArgs(
                allocation_id=eip.id,
                subnet_id=public[first].id,
                region=region,
                tags=_tags(base_tags, Name=f"{name}-nat"),
            ),
            opts=pulumi.ResourceOptions(parent=component, depends_on=[igw]),
        )
        private_rt = aws.ec2.RouteTable(
            f"{name}-private-rt",
            aws.ec2.RouteTableArgs(
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                region=region,
                tags=_tags(base_tags, Name=f"{name}-private"),
            ),
            opts=opts,
        )
        for z, subnet in private.items():
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{z}-rta",
                aws.ec2.RouteTableAssociationArgs(subnet_id=subnet.id, route_table_id=private_rt.id, region=region),
                opts=opts,
            )
    nodes = private if eks.nodes_in_private_subnets else public
    return vpc.id, {z: s.id for z, s in nodes.items()}


def create_eks(component: KubernetesCluster, name: str, plan: ClusterPlan, args: KubernetesClusterArgs, eks: EksPlan | None = None) -> None:
    """Create the EKS cluster and set the attributes ``KubernetesCluster`` documents for aws.

    ``KubernetesCluster`` passes the ``plan_eks`` result it validated before registering itself.
    """
    eks = eks or plan_eks(name, plan, args)
    facts = plan.facts
    region = facts.region or "us-east-1"
    tags = dict(facts.tags)
    cluster_name = name
    opts = pulumi.ResourceOptions(parent=component)

    # -- network -------------------------------------------------------------------------------
    existing = args.get("existing_network")
    if existing:
        node_subnets: dict[str, pulumi.Output[str]] = {
            z: pulumi.Output.from_input(s) for z, s in (existing.get("subnet_ids_by_zone") or {}).items()
        }
        vpc_id: pulumi.Output[str] = pulumi.Output.from_input(existing.get("vpc_id"))  # type: ignore[arg-type]
    else:
        vpc_id, node_subnets = _network(component, name, cluster_name, eks, region, tags)
    component.vpc_id = vpc_id

    # -- IAM and KMS ---------------------------------------------------------------------------
    cluster_role = _role(component, f"{name}-cluster-role", "eks.amazonaws.com", CLUSTER_POLICIES, region, tags)
    node_role = _role(component, f"{name}-node-role", "ec2.amazonaws.com", NODE_POLICIES, region, tags)
    key = aws.kms.Key(
        f"{name}-secrets-key",
        aws.kms.KeyArgs(
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            region=region,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(parent=component, protect=plan.deletion_protection),
    )

    # -- the cluster ---------------------------------------------------------------------------
    cluster = aws.eks.Cluster(
        f"{name}-eks",
        aws.eks.ClusterArgs(
            name=cluster_name,
            version=plan.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(node_subnets.values()),
                endpoint_private_access=True,
                endpoint_public_access=not plan.private_endpoint,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API_AND_CONFIG_MAP", bootstrap_cluster_creator_admin_permissions=True
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"], provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn)
            ),
            enabled_cluster_log_types=list(CLUSTER_LOG_TYPES),
            deletion_protection=True if plan.deletion_protection else None,
            region=region,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(parent=component, protect=plan.deletion_protection),
    )
    issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)  # type: ignore[index, union-attr]
    oidc = aws.iam.OpenIdConnectProvider(
        f"{name}-oidc",
        aws.iam.OpenIdConnectProviderArgs(url=issuer, client_id_lists=["sts.amazonaws.com"], tags=tags),
        opts=opts,
    )
    security_group_id = cast(pulumi.Output[str], cluster.vpc_config.apply(lambda v: v.cluster_security_group_id))  # type: ignore[union-attr]

    # -- system nodes --------------------------------------------------------------------------
    system_lt = node_launch_template(
        f"{name}-system-launch-template",
        f"System nodes of EKS cluster {cluster_name}: IMDSv2 required, encrypted root volume",
        SYSTEM_DISK_GIB,
        region,
        tags,
        opts,
    )
    system_nodes = aws.eks.NodeGroup(
        f"{name}-system-nodes",
        aws.eks.NodeGroupArgs(
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=list(node_subnets.values()),
            instance_types=[plan.system_instance_type],
            ami_type=SYSTEM_AMI_TYPE,
            capacity_type="ON_DEMAND",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=plan.system_node_count, max_size=plan.system_node_count, desired_size=plan.system_node_count
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=system_lt.id, version=system_lt.latest_version.apply(str)
            ),
            labels={LABEL_ROLE: "system"},
            region=region,
            tags=tags,
        ),
        opts=opts,
    )

    # -- Kubernetes provider -------------------------------------------------------------------
    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(  # type: ignore[arg-type]
        pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority).apply(
            lambda v: kubeconfig_json(v[0], v[1], v[2]["data"] if isinstance(v[2], dict) else v[2].data, region)
        )
    )
    provider = k8s.Provider(f"{name}-k8s", k8s.ProviderArgs(kubeconfig=kubeconfig), opts=opts)

    component.k8s_provider = provider
    component.cluster_name = cluster.name
    component.endpoint = cluster.endpoint
    component.kubeconfig = kubeconfig
    component.oidc_issuer_url = issuer
    component.oidc_provider_arn = oidc.arn
    component.node_role_arn = node_role.arn
    component.node_role_name = node_role.name
    component.subnet_ids_by_zone = node_subnets
    component.security_group_id = security_group_id
    component.system_node_group = system_nodes
    component.autoscaler_release = None

    # -- node autoscaler -----------------------------------------------------------------------
    k8s_opts = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[system_nodes])
    if facts.autoscaler == "karpenter":
        _karpenter(
            component,
            name,
            cluster_name,
            cluster,
            security_group_id,
            existing_subnets=node_subnets if existing else None,
            region=region,
            tags=tags,
            k8s_opts=k8s_opts,
            system_node_count=plan.system_node_count,
        )
    elif facts.autoscaler == "cluster-autoscaler":
        _cluster_autoscaler(component, name, cluster_name, eks, region, tags, k8s_opts)


def _karpenter(
    component: KubernetesCluster,
    name: str,
    cluster_name: str,
    cluster: aws.eks.Cluster,
    security_group_id: pulumi.Output[str],
    *,
    existing_subnets: dict[str, pulumi.Output[str]] | None,
    region: str,
    tags: dict[str, str],
    k8s_opts: pulumi.ResourceOptions,
    system_node_count: int,
) -> None:
    opts = pulumi.ResourceOptions(parent=component)
    # Karpenter nodes get their own role and access entry: an access entry per principal is
    # unique, and EKS already made one for the managed node group's role (a second one fails
    # with ResourceInUseException, terraform-aws-modules/terraform-aws-eks#2977).
    node_role = _role(component, f"{name}-karpenter-node-role", "ec2.amazonaws.com", NODE_POLICIES, region, tags)
    aws.eks.AccessEntry(
        f"{name}-karpenter-node-access",
        aws.eks.AccessEntryArgs(
            cluster_name=cluster.name, principal_arn=node_role.arn, type="EC2_LINUX", region=region, tags=tags
        ),
        opts=opts,
    )
    # EC2NodeClasses select security groups and subnets by the discovery tag.
    aws.ec2.Tag(
        f"{name}-sg-discovery-tag",
        aws.ec2.TagArgs(resource_id=security_group_id, key="karpenter.sh/discovery", value=cluster_name, region=region),
        opts=opts,
    )
    for zone, subnet_id in (existing_subnets or {}).items():
        aws.ec2.Tag(
            f"{name}-subnet-{zone}-discovery-tag",
            aws.ec2.TagArgs(resource_id=subnet_id, key="karpenter.sh/discovery", value=cluster_name, region=region),
            opts=opts,
        )

    queue = aws.sqs.Queue(
        f"{name}-interruption-queue",
        aws.sqs.QueueArgs(message_retention_seconds=300, sqs_managed_sse_enabled=True, region=region, tags=tags),
        opts=opts,
    )
    aws.sqs.QueuePolicy(
        f"{name}-interruption-queue-policy",
        aws.sqs.QueuePolicyArgs(queue_url=queue.url, policy=queue.arn.apply(interruption_queue_policy), region=region),
        opts=opts,
    )
    for rule_name, pattern in INTERRUPTION_RULES.items():
        rule = aws.cloudwatch.EventRule(
            f"{name}-{rule_name}",
            aws.cloudwatch.EventRuleArgs(
                description=f"Karpenter interruption events for {cluster_name}: {pattern['detail-type'][0]}",
                event_pattern=json.dumps(pattern, sort_keys=True),
                region=region,
                tags=tags,
            ),
            opts=opts,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-{rule_name}-target",
            aws.cloudwatch.EventTargetArgs(
                rule=rule.name, arn=queue.arn, target_id="KarpenterInterruptionQueue", region=region
            ),
            opts=opts,
        )

    policy = pulumi.Output.all(node_role.arn, cluster.arn, queue.arn).apply(
        lambda v: karpenter_controller_policy(cluster_name, region, v[0], v[1], v[2])
    )
    controller = irsa_role(
        component,
        f"{name}-karpenter-controller",
        component,
        KARPENTER_NAMESPACE,
        KARPENTER_SERVICE_ACCOUNT,
        policy,
        tags,
    )
    release = k8s.helm.v3.Release(
        f"{name}-karpenter",
        k8s.helm.v3.ReleaseArgs(
            chart=KARPENTER_CHART,
            version=KARPENTER_VERSION,
            namespace=KARPENTER_NAMESPACE,
            values={
                "settings": {"clusterName": cluster_name, "interruptionQueue": queue.name},
                "serviceAccount": {
                    "name": KARPENTER_SERVICE_ACCOUNT,
                    "annotations": {"eks.amazonaws.com/role-arn": controller.arn},
                },
                "replicas": min(2, system_node_count),
                # Karpenter must not run on nodes it manages: keep it on the system nodes.
                "nodeSelector": {LABEL_ROLE: "system"},
            },
        ),
        opts=k8s_opts,
    )
    # GPU pools on this cluster run as the Karpenter node role.
    component.node_role_arn = node_role.arn
    component.node_role_name = node_role.name
    component.autoscaler_release = release


def _cluster_autoscaler(
    component: KubernetesCluster,
    name: str,
    cluster_name: str,
    eks: EksPlan,
    region: str,
    tags: dict[str, str],
    k8s_opts: pulumi.ResourceOptions,
) -> None:
    role = irsa_role(
        component,
        f"{name}-cluster-autoscaler",
        component,
        CLUSTER_AUTOSCALER_NAMESPACE,
        CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
        cluster_autoscaler_policy(cluster_name),
        tags,
    )
    values: dict[str, Any] = {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "rbac": {
            "serviceAccount": {
                "create": True,
                "name": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role.arn},
            }
        },
        "extraArgs": {
            "balance-similar-node-groups": True,
            "skip-nodes-with-system-pods": False,
            "expander": "least-waste",
        },
        "nodeSelector": {LABEL_ROLE: "system"},
    }
    if eks.cluster_autoscaler_image:
        values["image"] = {"tag": eks.cluster_autoscaler_image}
    release = k8s.helm.v3.Release(
        f"{name}-cluster-autoscaler",
        k8s.helm.v3.ReleaseArgs(
            chart=CLUSTER_AUTOSCALER_CHART,
            version=CLUSTER_AUTOSCALER_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CLUSTER_AUTOSCALER_REPO),
            namespace=CLUSTER_AUTOSCALER_NAMESPACE,
            values=values,
        ),
        opts=k8s_opts,
    )
    component.autoscaler_release = release


__all__ = [
    "EksPlan",
    "SubnetLayout",
    "cluster_autoscaler_policy",
    "create_eks",
    "interruption_queue_policy",
    "karpenter_controller_policy",
    "kubeconfig_json",
    "plan_eks",
    "subnet_layout",
]
