"""SpotTrainingCluster on EKS: an S3 checkpoint bucket, IRSA identities, spot interruption handling.

``create_cloud_resources`` (called by ``SpotTrainingCluster`` for ``cloud="aws"``) makes, as
children of the component:

- the checkpoint bucket (unless ``checkpoint_bucket.url`` names one): ``aws.s3.Bucket`` with
  ACLs disabled (BucketOwnerEnforced), every public-access block on, versioning, default
  encryption (SSE-KMS with a new rotating KMS key and S3 Bucket Keys, a given key, or
  SSE-S3/AES256), a bucket policy that refuses plain HTTP, and lifecycle rules that expire
  checkpoints after ``retention_days``, noncurrent versions after ``noncurrent_retention_days``
  and incomplete multipart uploads (a preempted upload leaves parts behind) after one day;
- one IRSA role per team (components/aws/iam.irsa_role), trusted only by the team's training
  service account and allowed only ``s3://<bucket>/<team>/*`` (plus the KMS key);
- interruption handling for spot pools: with Karpenter nothing here — the cluster already runs
  Karpenter's SQS interruption queue, and Karpenter cordons and drains a node on the 2-minute
  notice; with managed node groups the aws-node-termination-handler chart in IMDS mode, as a
  DaemonSet on spot nodes only (host network, so it reaches IMDS with hop limit 1), draining on
  spot interruption and scheduled events and honouring each pod's own grace period.

Either way a preempted training pod receives SIGTERM and ``terminationGracePeriodSeconds``
(notice minus a margin, 110 s by default) to checkpoint. Pods get ``AWS_REGION`` so s3fs
signs for the bucket's region.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.iam import irsa_role, partition_of
from components.kubernetes.charts import chart_args
from components.training.spec import CloudTraining

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.training.spec import BucketPlan, TrainingClusterPlan

NTH_CHART = "oci://public.ecr.aws/aws-ec2/helm/aws-node-termination-handler"
NTH_VERSION = "0.27.6"
NTH_NAMESPACE = "kube-system"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
ABORT_MULTIPART_DAYS = 1


def tls_only_policy(bucket_arn: str) -> str:
    """Bucket policy refusing any request not made over TLS."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        },
        sort_keys=True,
    )


def team_policy(bucket_arn: str, team: str, kms_key_arn: str | None, data_bucket_arns: tuple[str, ...] = ()) -> str:
    """What a team's training pods may do: list, read, write and delete under ``<team>/`` only,
    and read the training data buckets."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ListTeamPrefix",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [bucket_arn],
            "Condition": {"StringLike": {"s3:prefix": [f"{team}/*", f"{team}"]}},
        },
        {"Sid": "BucketLocation", "Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [bucket_arn]},
        {
            "Sid": "TeamObjects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": [f"{bucket_arn}/{team}/*"],
        },
    ]
    if data_bucket_arns:
        statements.append({"Sid": "ReadTrainingData", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": list(data_bucket_arns)})
        statements.append({"Sid": "ReadTrainingDataObjects", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"{a}/*" for a in data_bucket_arns]})
    if kms_key_arn:
        statements.append(
            {
                "Sid": "CheckpointKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [kms_key_arn],
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def _team_policy_of(values: list[Any], team: str, data_bucket_arns: tuple[str, ...] = ()) -> str:
    return team_policy(values[0], team, values[1], data_bucket_arns)


def lifecycle_rules(bucket: BucketPlan) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    s3 = aws.s3
    return [
        s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-old-checkpoints",
            status="Enabled",
            filter=s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            expiration=s3.BucketLifecycleConfigurationRuleExpirationArgs(days=bucket.retention_days),
        ),
        s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-noncurrent-versions",
            status="Enabled",
            filter=s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            noncurrent_version_expiration=s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=bucket.noncurrent_retention_days
            ),
        ),
        s3.BucketLifecycleConfigurationRuleArgs(
            id="abort-incomplete-uploads",
            status="Enabled",
            filter=s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            abort_incomplete_multipart_upload=s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=ABORT_MULTIPART_DAYS
            ),
        ),
    ]


def nth_values(plan: TrainingClusterPlan) -> dict[str, Any]:
    """aws-node-termination-handler in IMDS mode, on spot nodes only."""
    return {
        "enableSpotInterruptionDraining": True,
        "enableScheduledEventDraining": True,
        "enableRebalanceMonitoring": False,
        "enableSqsTerminationDraining": False,  # IMDS mode
        "podTerminationGracePeriod": -1,  # each pod's own terminationGracePeriodSeconds
        "nodeTerminationGracePeriod": plan.notice_seconds,
        "daemonsetNodeSelector": {"gpuplane.dev/capacity-type": "spot"},
        "daemonsetTolerations": [{"operator": "Exists"}],
        "emitKubernetesEvents": True,
    }


def _create_bucket(
    component: pulumi.ComponentResource, name: str, plan: TrainingClusterPlan
) -> tuple[aws.s3.Bucket, pulumi.Output[str] | None]:
    bucket_plan = plan.bucket
    if bucket_plan is None:
        raise ValueError("no bucket planned")
    region = plan.facts.region
    opts = pulumi.ResourceOptions(parent=component)
    tags = {**plan.tags, "gpuplane.dev/role": "checkpoints"}
    key_arn: pulumi.Output[str] | None = None
    if bucket_plan.encryption == "aws:kms":
        if bucket_plan.kms_key is not None:
            key_arn = pulumi.Output.from_input(bucket_plan.kms_key)
        else:
            key = aws.kms.Key(
                f"{name}-checkpoint-key",
                description=f"gpuplane training checkpoints of {name}",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                region=region,
                tags=tags,
                opts=opts,
            )
            key_arn = key.arn
    bucket = aws.s3.Bucket(
        f"{name}-checkpoints", force_destroy=bucket_plan.force_destroy, region=region, tags=tags, opts=opts
    )
    child = pulumi.ResourceOptions(parent=component, depends_on=[bucket])
    aws.s3.BucketOwnershipControls(
        f"{name}-checkpoints-ownership",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        region=region,
        opts=child,
    )
    public_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-checkpoints-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        region=region,
        opts=child,
    )
    versioning = aws.s3.BucketVersioning(
        f"{name}-checkpoints-versioning",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        region=region,
        opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-checkpoints-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm=bucket_plan.encryption or "AES256", kms_master_key_id=key_arn
                ),
                bucket_key_enabled=bucket_plan.encryption == "aws:kms",
            )
        ],
        region=region,
        opts=child,
    )
    aws.s3.BucketPolicy(
        f"{name}-checkpoints-policy",
        bucket=bucket.id,
        policy=bucket.arn.apply(tls_only_policy),
        region=region,
        opts=pulumi.ResourceOptions(parent=component, depends_on=[bucket, public_block]),
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-checkpoints-lifecycle",
        bucket=bucket.id,
        rules=lifecycle_rules(bucket_plan),
        region=region,
        opts=pulumi.ResourceOptions(parent=component, depends_on=[versioning]),
    )
    return bucket, key_arn


def create_cloud_resources(
    component: pulumi.ComponentResource, name: str, plan: TrainingClusterPlan, cluster: KubernetesCluster
) -> CloudTraining:
    bucket_plan = plan.bucket
    region = plan.facts.region
    url: pulumi.Output[Any]
    annotations: dict[str, pulumi.Input[dict[str, str]]] = {}
    depends: list[pulumi.Resource] = []
    if bucket_plan is None:
        url = pulumi.Output.from_input(None)
    else:
        key_arn: pulumi.Output[str] | None = None
        if bucket_plan.create:
            bucket, key_arn = _create_bucket(component, name, plan)
            bucket_name: pulumi.Output[str] = bucket.bucket
            bucket_arn: pulumi.Output[str] = bucket.arn
        else:
            given = (bucket_plan.url or "").removeprefix("s3://")
            bucket_name = pulumi.Output.from_input(given)
            bucket_arn = pulumi.Output.from_input(f"arn:{partition_of(region)}:s3:::{given}")
        url = bucket_name.apply(lambda b: f"s3://{b}")
        for team in plan.teams:
            data_arns = tuple(f"arn:{partition_of(region)}:s3:::{b}" for b in plan.data_buckets)
            policy = pulumi.Output.all(bucket_arn, key_arn).apply(functools.partial(_team_policy_of, team=team.name, data_bucket_arns=data_arns))
            role = irsa_role(
                component,
                f"{name}-{team.name}-irsa",
                cluster,
                team.namespace,
                team.service_account,
                policy,
                tags=plan.tags,
            )
            annotations[team.name] = role.arn.apply(lambda arn: {IRSA_ANNOTATION: arn})
            depends.append(role)
    if plan.interruption_handling == "aws-node-termination-handler":
        depends.append(
            k8s.helm.v3.Release(
                f"{name}-node-termination-handler",
                k8s.helm.v3.ReleaseArgs(
                    **chart_args(cluster.chart_source, NTH_CHART, NTH_VERSION), namespace=NTH_NAMESPACE, values=nth_values(plan)
                ),
                opts=pulumi.ResourceOptions(parent=component, provider=cluster.k8s_provider),
            )
        )
    return CloudTraining(
        checkpoint_url=url,
        service_account_annotations=annotations,
        env={"AWS_REGION": region or ""},
        depends_on=depends,
    )


__all__ = [
    "NTH_VERSION",
    "create_cloud_resources",
    "lifecycle_rules",
    "nth_values",
    "team_policy",
    "tls_only_policy",
]
