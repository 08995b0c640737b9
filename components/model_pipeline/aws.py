"""ModelPipeline on AWS: S3 -> SQS event wiring and the IRSA identities of the Argo pods.

Creates, as children of the pipeline (bucket-events triggers): an SQS queue (SSE on, messages kept
4 days), a queue policy letting only the data bucket's S3 service principal send to it (with
``aws:SourceArn`` and ``aws:SourceAccount`` conditions), and the bucket's ``ObjectCreated``
notification filtered by the data prefix and suffix. Note: S3 keeps one notification
configuration per bucket, so this replaces any other on the data bucket (give the pipeline its
own event bucket or prefix). Identities: an IRSA role for the EventSource pod (receive and delete
on that queue only) and one for the workflow pods (read the data and the team's checkpoint
prefix, write the endpoint's model prefix for the rollout).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from components.aws.iam import irsa_role, partition_of
from components.model_pipeline.spec import EVENT_NAME, ModelPipelinePlan, PipelineCloud

if TYPE_CHECKING:
    from components.training import SpotTrainingCluster


def queue_policy(queue_arn: str, bucket: str, account: str, partition: str) -> str:
    """Only the data bucket may send, and only from this account (pure)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DataBucketEvents",
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:{partition}:s3:::{bucket}"}, "StringEquals": {"aws:SourceAccount": account}},
                }
            ],
        },
        sort_keys=True,
    )


def workflow_statements(partition: str, data_bucket: str, data_prefix: str, checkpoint_url: str, model_uri: str | None) -> list[dict[str, Any]]:
    """What the evaluate / promote / publish pods may touch (pure)."""
    ck_bucket, _, ck_prefix = checkpoint_url.removeprefix("s3://").partition("/")
    ck_team = ck_prefix.split("/", 1)[0]
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:{partition}:s3:::{data_bucket}", f"arn:{partition}:s3:::{ck_bucket}"]},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:{partition}:s3:::{data_bucket}/{data_prefix}*", f"arn:{partition}:s3:::{ck_bucket}/{ck_team}/*"]},
        # Buckets gpuplane creates are SSE-KMS; S3 uses the key on the caller's behalf only.
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*", "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}},
    ]
    if model_uri:
        bucket, _, prefix = model_uri.removeprefix("s3://").partition("/")
        statements.append({"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": f"arn:{partition}:s3:::{bucket}/{prefix}*"})
        statements.append({"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:{partition}:s3:::{bucket}"})
    return statements


def create_pipeline_cloud(
    component: pulumi.ComponentResource, name: str, plan: ModelPipelinePlan, tc: SpotTrainingCluster, checkpoint: pulumi.Output[Any], endpoint: dict[str, str] | None
) -> PipelineCloud:
    opts = pulumi.ResourceOptions(parent=component)
    cluster = tc.cluster
    partition = partition_of(plan.region)
    t = plan.trigger
    model_uri = endpoint["model_uri"] if endpoint else None
    wf_policy = checkpoint.apply(lambda ck: json.dumps({"Version": "2012-10-17", "Statement": workflow_statements(partition, t.bucket, t.prefix, str(ck), model_uri)}, sort_keys=True))
    wf_role = irsa_role(component, f"{name}-workflow-role", cluster, plan.namespace, plan.service_account, wf_policy, plan.tags)
    cloud = PipelineCloud(event_source=None, workflow_annotations=wf_role.arn.apply(lambda a: {"eks.amazonaws.com/role-arn": a}), depends_on=[wf_role])
    if t.kind != "bucket-events":
        return cloud
    queue = aws.sqs.Queue(
        f"{name}-queue",
        aws.sqs.QueueArgs(sqs_managed_sse_enabled=True, message_retention_seconds=4 * 24 * 3600, visibility_timeout_seconds=300, region=plan.region, tags=plan.tags),
        opts=opts,
    )
    account = aws.get_caller_identity_output().account_id
    policy = aws.sqs.QueuePolicy(
        f"{name}-queue-policy",
        aws.sqs.QueuePolicyArgs(queue_url=queue.url, policy=pulumi.Output.all(queue.arn, account).apply(lambda v: queue_policy(v[0], t.bucket, v[1], partition)), region=plan.region),
        opts=opts,
    )
    notification = aws.s3.BucketNotification(
        f"{name}-bucket-notification",
        aws.s3.BucketNotificationArgs(
            bucket=t.bucket,
            region=plan.region,
            queues=[aws.s3.BucketNotificationQueueArgs(queue_arn=queue.arn, events=["s3:ObjectCreated:*"], filter_prefix=f"{t.prefix}/" if t.prefix else None, filter_suffix=t.suffix or None)],
        ),
        opts=pulumi.ResourceOptions(parent=component, depends_on=[policy]),
    )
    es_policy = queue.arn.apply(
        lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"], "Resource": arn}]}, sort_keys=True)
    )
    es_role = irsa_role(component, f"{name}-events-role", cluster, plan.namespace, plan.event_source_service_account, es_policy, plan.tags)
    cloud.event_source = {"sqs": {EVENT_NAME: {"region": plan.region, "queue": queue.name, "waitTimeSeconds": 20, "jsonBody": True}}}
    cloud.event_source_annotations = es_role.arn.apply(lambda a: {"eks.amazonaws.com/role-arn": a})
    cloud.description = queue.url.apply(lambda u: f"sqs:{u}")
    cloud.depends_on += [es_role, notification]
    return cloud
