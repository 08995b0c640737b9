"""FeatureStore's S3 storage on AWS: the KMS key (or a given one) and the IRSA role that reaches the bucket.

Used by the ``feast-aws`` backend (aws.py) and by ``feast-kubernetes`` on EKS (kubernetes.py);
the bucket itself is the shared building block ``components/aws/s3.py``. Creates nothing else.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.aws.iam import irsa_role, partition_of
from components.aws.s3 import bucket_statements
from components.cluster import KubernetesCluster
from components.feature_store.spec import FeatureStoreArgs, FeatureStorePlan


def _opts(parent: pulumi.Resource) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent)


def create_kms_key(parent: pulumi.Resource, name: str, plan: FeatureStorePlan, args: FeatureStoreArgs) -> pulumi.Output[str]:
    """The given key's ARN, or a new key with rotation."""
    given = args.get("kms_key_arn")
    if given is not None:
        return pulumi.Output.from_input(given)
    key = aws.kms.Key(
        f"{name}-key",
        aws.kms.KeyArgs(
            description=f"gpuplane FeatureStore {name}: buckets, tables and feature groups",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            region=plan.region,
            tags=plan.tags,
        ),
        opts=_opts(parent),
    )
    return key.arn


def bucket_access_role(
    parent: pulumi.Resource, name: str, plan: FeatureStorePlan, cluster: KubernetesCluster, service_account: str,
    bucket_name: pulumi.Input[str], key_arn: pulumi.Input[str] | None,
) -> aws.iam.Role:
    """IRSA role for the store's pods on EKS: the bucket only (kubernetes target)."""
    partition = partition_of(plan.region)
    policy = pulumi.Output.all(bucket_name, key_arn).apply(
        lambda v: json.dumps({"Version": "2012-10-17", "Statement": bucket_statements(v[0], v[1], partition)}, sort_keys=True)
    )
    return irsa_role(parent, f"{name}-feast-role", cluster, plan.namespace, service_account, policy, plan.tags)
