"""BatchJob on AWS Batch: compute environments, a job queue, a job definition, and what submits the job.

Creates, as children: an ECS instance role and instance profile; a job role the tasks run as
(read the dataset prefix, write the output and manifest prefixes); a managed compute environment
per capacity type, ``SPOT`` (``SPOT_PRICE_CAPACITY_OPTIMIZED``) first and ``EC2`` on-demand
(``BEST_FIT_PROGRESSIVE``) after when the job runs on spot, or the on-demand one alone, each with
the planned instance type, 0 vCPUs at rest and enough vCPUs for ``parallelism`` tasks, on the
``ECS_AL2023_NVIDIA`` AMI for GPU tasks; a job queue ordering them (spot, then on-demand
fallback); a container job definition with ``resourceRequirements`` GPU / VCPU / MEMORY, the task
timeout (``attemptDurationSeconds``, applied to each array child) and a ``retryStrategy`` of
max_attempts whose ``evaluateOnExit`` retries the retry exit codes (75) and spot reclaims
(``Host EC2*`` status reasons) and exits at once on the usage error (2). Batch counts every retry
as an attempt; size ``max_attempts`` for the preemptions you expect.

Array jobs: the array size (2-10,000, batch_limits.csv) is set when the job is submitted; tasks
read ``AWS_BATCH_JOB_ARRAY_INDEX``. A one-task job is submitted without array properties.

Triggers: ``bucket-objects``: S3 EventBridge notifications on the bucket (``BucketNotification``
with ``eventbridge=True``, which replaces the bucket's notification configuration) and an
EventBridge rule on ``Object Created`` under the prefix whose Batch target submits the array job,
the object's URI and etag in the env (triggers.py); ``schedule``: an EventBridge ``cron()`` rule
with the same target; an events role allowed ``batch:SubmitJob`` on this queue and definition.
``none``: the ``aws batch submit-job`` command is in the ``launch`` output.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from components.aws.iam import partition_of, service_role, service_trust_policy
from components.aws.s3 import prefix_statements
from components.batch_job.planner import bucket_access
from components.batch_job.spec import USAGE_EXIT_CODE, BatchJobPlan
from components.batch_job.triggers import S3_INPUT_PATHS, batch_input_template, eventbridge_schedule, s3_event_pattern

if TYPE_CHECKING:
    from components.batch_job.spec import BatchJobArgs

GPU_IMAGE_TYPE = "ECS_AL2023_NVIDIA"
SPOT_RECLAIM_REASON = "Host EC2*"
"""statusReason of a job whose instance went away (spot reclaim): https://docs.aws.amazon.com/batch/latest/userguide/job_retries.html"""


def s3_statements(plan: BatchJobPlan, partition: str) -> list[dict[str, Any]]:
    """Read the dataset prefix; read and write the output and manifest prefixes (pure)."""
    return [st for bucket, prefix, write in bucket_access(plan, "s3") for st in prefix_statements(bucket, prefix, write, partition)]


def container_properties(plan: BatchJobPlan, image: str, job_role_arn: str) -> str:
    """The job definition's containerProperties JSON (Batch API member names)."""
    requirements = [{"type": "VCPU", "value": f"{plan.cpu:g}"}, {"type": "MEMORY", "value": str(int(plan.memory_gib * 1024))}]
    if plan.gpus:
        requirements.insert(0, {"type": "GPU", "value": str(plan.gpus)})
    props: dict[str, Any] = {
        "image": image,
        "command": [*plan.command, *plan.args],
        "jobRoleArn": job_role_arn,
        "resourceRequirements": requirements,
        "environment": [{"name": k, "value": v} for k, v in sorted(plan.task_env().items())],
    }
    return json.dumps(props, sort_keys=True)


def retry_strategy(plan: BatchJobPlan) -> aws.batch.JobDefinitionRetryStrategyArgs:
    """Retry the retry codes and spot reclaims, exit on the usage error; anything else is retried while attempts last."""
    rules = [aws.batch.JobDefinitionRetryStrategyEvaluateOnExitArgs(action="RETRY", on_exit_code=str(c)) for c in sorted(plan.retry_exit_codes)]
    rules.append(aws.batch.JobDefinitionRetryStrategyEvaluateOnExitArgs(action="RETRY", on_status_reason=SPOT_RECLAIM_REASON))
    rules.append(aws.batch.JobDefinitionRetryStrategyEvaluateOnExitArgs(action="EXIT", on_exit_code=str(USAGE_EXIT_CODE)))
    return aws.batch.JobDefinitionRetryStrategyArgs(attempts=plan.max_attempts, evaluate_on_exits=rules)


def max_vcpus(plan: BatchJobPlan) -> int:
    return max(1, int(plan.parallelism * plan.cpu + 0.999))


def submit_command(plan: BatchJobPlan) -> str:
    array = f" --array-properties size={plan.sizing.tasks}" if plan.sizing.tasks >= 2 else ""
    return f"aws batch submit-job --region {plan.region} --job-name {plan.name} --job-queue {plan.name} --job-definition {plan.name}{array}"


def create_batch_job(component: pulumi.ComponentResource, name: str, plan: BatchJobPlan, args: BatchJobArgs) -> dict[str, Any]:
    opts = pulumi.ResourceOptions(parent=component)
    region = plan.region
    partition = partition_of(region)
    tags = dict(plan.tags)
    instance_role = service_role(component, f"{name}-instance-role", "ec2.amazonaws.com", ("service-role/AmazonEC2ContainerServiceforEC2Role",), region, tags)
    profile = aws.iam.InstanceProfile(f"{name}-instance-profile", role=instance_role.name, tags=tags, opts=opts)
    job_role = aws.iam.Role(f"{name}-job-role", assume_role_policy=service_trust_policy("ecs-tasks.amazonaws.com"), tags=tags, opts=opts)
    aws.iam.RolePolicy(f"{name}-job-s3", role=job_role.id,
                       policy=json.dumps({"Version": "2012-10-17", "Statement": s3_statements(plan, partition)}, sort_keys=True), opts=opts)
    capacities = ["SPOT", "EC2"] if plan.spot else ["EC2"]
    environments = []
    for capacity in capacities:
        environments.append(aws.batch.ComputeEnvironment(
            f"{name}-{'spot' if capacity == 'SPOT' else 'on-demand'}",
            type="MANAGED",
            region=region,
            compute_resources=aws.batch.ComputeEnvironmentComputeResourcesArgs(
                type=capacity,
                allocation_strategy="SPOT_PRICE_CAPACITY_OPTIMIZED" if capacity == "SPOT" else "BEST_FIT_PROGRESSIVE",
                instance_types=[plan.instance_type],
                min_vcpus=0,
                max_vcpus=max_vcpus(plan),
                subnets=args["subnet_ids"],
                security_group_ids=args["security_group_ids"],
                instance_role=profile.arn,
                ec2_configurations=[aws.batch.ComputeEnvironmentComputeResourcesEc2ConfigurationArgs(image_type=GPU_IMAGE_TYPE)] if plan.gpus else None,
                tags=tags or None,
            ),
            tags=tags,
            opts=opts,
        ))
    queue = aws.batch.JobQueue(
        f"{name}-queue",
        name=plan.name,
        region=region,
        priority=1,
        state="ENABLED",
        compute_environment_orders=[aws.batch.JobQueueComputeEnvironmentOrderArgs(order=i + 1, compute_environment=ce.arn) for i, ce in enumerate(environments)],
        tags=tags,
        opts=opts,
    )
    definition = aws.batch.JobDefinition(
        f"{name}-definition",
        name=plan.name,
        region=region,
        type="container",
        platform_capabilities=["EC2"],
        container_properties=pulumi.Output.all(args["image"], job_role.arn).apply(lambda v: container_properties(plan, str(v[0]), str(v[1]))),
        retry_strategy=retry_strategy(plan),
        timeout=aws.batch.JobDefinitionTimeoutArgs(attempt_duration_seconds=plan.sizing.task_timeout_seconds),
        propagate_tags=True,
        tags=tags,
        opts=opts,
    )
    t = plan.trigger
    if t.kind == "none":
        return {"job": definition.arn, "launch": submit_command(plan)}
    events_role = aws.iam.Role(f"{name}-events-role", assume_role_policy=service_trust_policy("events.amazonaws.com"), tags=tags, opts=opts)
    aws.iam.RolePolicy(
        f"{name}-events-submit",
        role=events_role.id,
        policy=pulumi.Output.all(queue.arn, definition.arn).apply(
            lambda v: json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "batch:SubmitJob", "Resource": [v[0], v[1].rsplit(":", 1)[0] + "*"]}]}, sort_keys=True)
        ),
        opts=opts,
    )
    after: list[pulumi.Resource] = []
    if t.kind == "schedule":
        rule = aws.cloudwatch.EventRule(f"{name}-rule", region=region, schedule_expression=eventbridge_schedule(t.schedule or ""),
                                        description=f"BatchJob {plan.name}: scheduled run", tags=tags, opts=opts)
        transformer = None
    else:
        after.append(aws.s3.BucketNotification(f"{name}-bucket-events", bucket=t.bucket, region=region, eventbridge=True, opts=opts))
        rule = aws.cloudwatch.EventRule(f"{name}-rule", region=region, event_pattern=s3_event_pattern(t),
                                        description=f"BatchJob {plan.name}: one run per new object under s3://{t.bucket}/{t.prefix}", tags=tags, opts=opts)
        transformer = aws.cloudwatch.EventTargetInputTransformerArgs(input_paths=S3_INPUT_PATHS, input_template=batch_input_template(plan))
    aws.cloudwatch.EventTarget(
        f"{name}-target",
        rule=rule.name,
        region=region,
        arn=queue.arn,
        role_arn=events_role.arn,
        batch_target=aws.cloudwatch.EventTargetBatchTargetArgs(
            job_definition=definition.arn, job_name=plan.name, array_size=plan.sizing.tasks if plan.sizing.tasks >= 2 else None,
        ),
        input_transformer=transformer,
        retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(maximum_retry_attempts=185, maximum_event_age_in_seconds=86400),
        opts=pulumi.ResourceOptions(parent=component, depends_on=after),
    )
    launch = f"EventBridge {'schedule ' + str(t.schedule) if t.kind == 'schedule' else f's3://{t.bucket}/{t.prefix} Object Created'} -> SubmitJob"
    return {"job": definition.arn, "launch": launch}


__all__ = ["container_properties", "create_batch_job", "max_vcpus", "retry_strategy", "s3_statements", "submit_command"]
