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
- the node autoscaler (``eks_autoscaler.py``): Karpenter (controller role over IRSA, its own node role and EC2_LINUX
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
from typing import cast

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.iam import partition_of, service_role
from components.aws.launch_template import node_launch_template
from components.cluster.eks_autoscaler import (
    CLUSTER_AUTOSCALER_IMAGES,
    LABEL_ROLE,
    NODE_POLICIES,
    create_cluster_autoscaler,
    create_karpenter,
)
from components.cluster.spec import ClusterHandles, ClusterPlan, KubernetesClusterArgs
from components.errors import Problems
from components.kubernetes.kubeconfig import exec_kubeconfig

VPC_CIDR = "10.0.0.0/16"
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
CLUSTER_LOG_TYPES = ("api", "audit", "authenticator")
SYSTEM_DISK_GIB = 50

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)

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


# ---------------------------------------------------------------------------------------------
# Resources


def _tags(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    return {**base, **extra}



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


def create_eks(
    component: pulumi.Resource, name: str, plan: ClusterPlan, args: KubernetesClusterArgs, eks: EksPlan | None = None
) -> ClusterHandles:
    """Create the EKS cluster; return the handles ``KubernetesCluster`` documents for aws.

    ``KubernetesCluster`` passes the ``plan_eks`` result it validated before registering itself.
    """
    eks = eks or plan_eks(name, plan, args)
    facts = plan.facts
    region = facts.region or "us-east-1"
    tags = dict(facts.tags)
    cluster_name = name
    opts = pulumi.ResourceOptions(parent=component)
    handles = ClusterHandles()

    # -- network -------------------------------------------------------------------------------
    existing = args.get("existing_network")
    if existing:
        node_subnets: dict[str, pulumi.Output[str]] = {
            z: pulumi.Output.from_input(s) for z, s in (existing.get("subnet_ids_by_zone") or {}).items()
        }
        vpc_id: pulumi.Output[str] = pulumi.Output.from_input(existing.get("vpc_id"))  # type: ignore[arg-type]
    else:
        vpc_id, node_subnets = _network(component, name, cluster_name, eks, region, tags)
    handles.vpc_id = vpc_id

    # -- IAM and KMS ---------------------------------------------------------------------------
    cluster_role = service_role(component, f"{name}-cluster-role", "eks.amazonaws.com", CLUSTER_POLICIES, region, tags)
    node_role = service_role(component, f"{name}-node-role", "ec2.amazonaws.com", NODE_POLICIES, region, tags)
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

    handles.k8s_provider = provider
    handles.cluster_name = cluster.name
    handles.endpoint = cluster.endpoint
    handles.kubeconfig = kubeconfig
    handles.oidc_issuer_url = issuer
    handles.oidc_provider_arn = oidc.arn
    handles.node_role_arn = node_role.arn
    handles.node_role_name = node_role.name
    handles.subnet_ids_by_zone = node_subnets
    handles.security_group_id = security_group_id
    handles.system_node_group = system_nodes
    handles.autoscaler_release = None

    # -- node autoscaler -----------------------------------------------------------------------
    k8s_opts = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[system_nodes])
    if facts.autoscaler == "karpenter":
        create_karpenter(
            component,
            handles,
            name,
            cluster_name,
            cluster,
            security_group_id,
            existing_subnets=node_subnets if existing else None,
            region=region,
            tags=tags,
            k8s_opts=k8s_opts,
            system_node_count=plan.system_node_count,
            chart_source=args.get("chart_source"),
        )
    elif facts.autoscaler == "cluster-autoscaler":
        create_cluster_autoscaler(component, handles, name, cluster_name, eks.cluster_autoscaler_image, region, tags, k8s_opts,
                                  chart_source=args.get("chart_source"))
    return handles


__all__ = ["EksPlan", "SubnetLayout", "create_eks", "kubeconfig_json", "plan_eks", "subnet_layout"]
