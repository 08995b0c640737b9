"""EKS node autoscalers for ``KubernetesCluster(cloud="aws")``: Karpenter or Cluster Autoscaler.

``create_karpenter`` makes Karpenter's controller role (IRSA), its own node role and EC2_LINUX
access entry, the SQS interruption queue fed by four EventBridge rules, the discovery tags on the
cluster security group (and given subnets) and the Helm release. ``create_cluster_autoscaler``
makes its IRSA role and the Helm release with auto-discovery. The IAM policy documents are pure
functions (table-tested). Called only by ``eks.create_eks``, which has made the cluster, its
OIDC provider and the Kubernetes provider first; it records the node role and the release on the
``ClusterHandles`` it is given. Deliberately not done: Karpenter NodePools (GpuNodePool makes them).
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.iam import irsa_role, partition_of, service_role
from components.cluster.spec import ClusterHandles
from components.kubernetes.charts import chart_args

LABEL_ROLE = "gpuplane.dev/role"
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



def create_karpenter(
    component: pulumi.Resource,
    handles: ClusterHandles,
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
    chart_source: str | None = None,
) -> None:
    opts = pulumi.ResourceOptions(parent=component)
    # Karpenter nodes get their own role and access entry: an access entry per principal is
    # unique, and EKS already made one for the managed node group's role (a second one fails
    # with ResourceInUseException, terraform-aws-modules/terraform-aws-eks#2977).
    node_role = service_role(component, f"{name}-karpenter-node-role", "ec2.amazonaws.com", NODE_POLICIES, region, tags)
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
        handles,
        KARPENTER_NAMESPACE,
        KARPENTER_SERVICE_ACCOUNT,
        policy,
        tags,
    )
    release = k8s.helm.v3.Release(
        f"{name}-karpenter",
        k8s.helm.v3.ReleaseArgs(
            **chart_args(chart_source, KARPENTER_CHART, KARPENTER_VERSION),
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
    handles.node_role_arn = node_role.arn
    handles.node_role_name = node_role.name
    handles.autoscaler_release = release


def create_cluster_autoscaler(
    component: pulumi.Resource,
    handles: ClusterHandles,
    name: str,
    cluster_name: str,
    image: str | None,
    region: str,
    tags: dict[str, str],
    k8s_opts: pulumi.ResourceOptions,
    chart_source: str | None = None,
) -> None:
    role = irsa_role(
        component,
        f"{name}-cluster-autoscaler",
        handles,
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
    if image:
        values["image"] = {"tag": image}
    release = k8s.helm.v3.Release(
        f"{name}-cluster-autoscaler",
        k8s.helm.v3.ReleaseArgs(
            **chart_args(chart_source, CLUSTER_AUTOSCALER_CHART, CLUSTER_AUTOSCALER_VERSION, CLUSTER_AUTOSCALER_REPO),
            namespace=CLUSTER_AUTOSCALER_NAMESPACE,
            values=values,
        ),
        opts=k8s_opts,
    )
    handles.autoscaler_release = release
