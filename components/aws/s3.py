"""S3 building blocks shared by the AWS backends: a private, SSE-KMS, versioned bucket and its IAM statements.

``create_bucket`` creates, as children of ``parent``: ``{name}-bucket`` and its encryption,
public-access block, ownership controls (ACLs disabled) and versioning. ``bucket_statements``
is pure: read/write on one bucket and use of its key. Creates no key and no role (callers do).
A low-level building block: it imports no capability (``BucketSettings`` is what it needs of a plan).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws


class BucketSettings(Protocol):
    """What a bucket needs of its owner's plan (FeatureStorePlan and ModelRegistryPlan have it)."""

    @property
    def region(self) -> str | None: ...

    @property
    def tags(self) -> Mapping[str, str]: ...

    @property
    def deletion_protection(self) -> bool: ...


def _opts(parent: pulumi.Resource) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent)


def create_bucket(parent: pulumi.Resource, name: str, plan: BucketSettings, key_arn: pulumi.Input[str]) -> aws.s3.Bucket:
    """A private, SSE-KMS, versioned bucket with public access blocked and ACLs disabled."""
    bucket = aws.s3.Bucket(f"{name}-bucket", aws.s3.BucketArgs(region=plan.region, tags=plan.tags, force_destroy=not plan.deletion_protection), opts=_opts(parent))
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-bucket-sse",
        aws.s3.BucketServerSideEncryptionConfigurationInitArgs(
            bucket=bucket.id,
            region=plan.region,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=key_arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
        ),
        opts=_opts(parent),
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-bucket-public-block",
        aws.s3.BucketPublicAccessBlockArgs(
            bucket=bucket.id, region=plan.region, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True,
        ),
        opts=_opts(parent),
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-bucket-ownership",
        aws.s3.BucketOwnershipControlsArgs(
            bucket=bucket.id, region=plan.region, rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced")
        ),
        opts=_opts(parent),
    )
    aws.s3.BucketVersioning(
        f"{name}-bucket-versioning",
        aws.s3.BucketVersioningInitArgs(
            bucket=bucket.id, region=plan.region,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        ),
        opts=_opts(parent),
    )
    return bucket


def bucket_statements(bucket_name: str, key_arn: str | None, partition: str) -> list[dict[str, Any]]:
    """Read/write on one bucket and use of its key (pure)."""
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": f"arn:{partition}:s3:::{bucket_name}"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": f"arn:{partition}:s3:::{bucket_name}/*"},
    ]
    if key_arn:
        statements.append({"Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": key_arn})
    return statements


def prefix_statements(bucket_name: str, prefix: str, write: bool, partition: str) -> list[dict[str, Any]]:
    """Read (and with ``write``, write and delete) the objects under one prefix, and list the bucket (pure)."""
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] if write else ["s3:GetObject"]
    objects = f"arn:{partition}:s3:::{bucket_name}/{prefix.strip('/') + '/' if prefix.strip('/') else ''}*"
    return [
        {"Effect": "Allow", "Action": actions, "Resource": objects},
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:{partition}:s3:::{bucket_name}"},
    ]

