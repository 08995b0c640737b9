"""BatchJob on SageMaker: a SageMaker Pipeline with one Processing (or Batch Transform) step.

pulumi-aws 7.51 has no Processing job or Transform job resource (``aws.sagemaker`` offers
``Pipeline``, ``Model``, ``TrainingJob``, ...); pulumi-aws-native has ``sagemaker.ProcessingJob``,
but a job resource runs once when created and cannot be started again by an event. So the job
is a ``aws.sagemaker.Pipeline`` whose definition (JSON, schema version 2020-12-01) holds one step:

- ``processing`` (default): ``Type: Processing``, the CreateProcessingJob request without its name:
  ``ProcessingResources.ClusterConfig`` = one ml.* instance per task (at most 100), the command as
  ``AppSpecification.ContainerEntrypoint``, the contract env (``GPUPLANE_RUN_ID`` = the pipeline
  execution id), ``StoppingCondition.MaxRuntimeInSeconds``
  = the task timeout (<= 777,600 s). Each instance is one task: it reads ``current_host`` (algo-N)
  and ``hosts`` from /opt/ml/config/resourceconfig.json and reads and writes the URIs itself.
  Step ``RetryPolicies`` retry SageMaker's own faults (internal and capacity errors); the
  container's exit code is not consulted (declared: no retry-exit-codes).
- ``transform``: ``Type: Transform`` over a ``aws.sagemaker.Model`` of the image (a SageMaker
  model server: /ping and /invocations on 8080): records split by line, ``MultiRecord``
  mini-batches of at most 6 MB (Batch Transform's default; the limit is 100 MB), each invocation
  under ``InvocationsTimeoutInSeconds`` <= 3,600 s (checked at plan time).

Launch: ``aws sagemaker start-pipeline-execution`` (``none``), an EventBridge ``cron()`` rule
(``schedule``), or an EventBridge rule on S3 ``Object Created`` events under the prefix
(``bucket-objects``, with EventBridge notifications on the bucket) whose SageMaker Pipeline target
starts an execution. Pipeline parameters on a rule target are static, so a triggered run scans
the prefix and the manifest skips objects already done (triggers.py). Identities: an execution
role for the pipeline and its jobs (AmazonSageMakerFullAccess plus the buckets) and an events
role allowed ``sagemaker:StartPipelineExecution`` on this pipeline.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from components.aws.iam import managed_policy_arn, partition_of, service_trust_policy
from components.aws.s3 import prefix_statements
from components.batch_job.planner import bucket_access
from components.batch_job.spec import ENV_MODEL_VERSION, ENV_RUN_ID, BatchJobPlan
from components.batch_job.triggers import eventbridge_schedule, s3_event_pattern

if TYPE_CHECKING:
    from components.batch_job.spec import BatchJobArgs

PIPELINE_SCHEMA_VERSION = "2020-12-01"
STEP = "batch"
VOLUME_GIB = 30
TRANSFORM_PAYLOAD_MIB = 6
RETRY_ERRORS = ["SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR"]


def processing_arguments(plan: BatchJobPlan, image: str, role_arn: str) -> dict[str, Any]:
    """The Processing step's Arguments: a CreateProcessingJob request without ProcessingJobName."""
    app: dict[str, Any] = {"ImageUri": image, "ContainerEntrypoint": list(plan.command)}
    if plan.args:
        app["ContainerArguments"] = list(plan.args)
    return {
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": plan.sizing.tasks, "InstanceType": plan.instance_type, "VolumeSizeInGB": VOLUME_GIB}},
        "AppSpecification": app,
        # The run id every instance (task) of one execution shares, retries of the step included.
        "Environment": {**plan.task_env(), ENV_MODEL_VERSION: {"Get": "Parameters.ModelVersion"},
                        ENV_RUN_ID: {"Get": "Execution.PipelineExecutionId"}},
        "StoppingCondition": {"MaxRuntimeInSeconds": plan.sizing.task_timeout_seconds},
        "RoleArn": role_arn,
    }


def transform_arguments(plan: BatchJobPlan, model_name: str) -> dict[str, Any]:
    """The Transform step's Arguments: a CreateTransformJob request without TransformJobName."""
    return {
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": TRANSFORM_PAYLOAD_MIB,
        "ModelClientConfig": {"InvocationsTimeoutInSeconds": min(3600, plan.sizing.task_timeout_seconds), "InvocationsMaxRetries": min(3, plan.max_attempts - 1)},
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": plan.dataset_uri}}, "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": plan.output_uri, "AssembleWith": "Line"},
        "TransformResources": {"InstanceCount": plan.sizing.tasks, "InstanceType": plan.instance_type},
        "Environment": {**plan.task_env(), ENV_MODEL_VERSION: {"Get": "Parameters.ModelVersion"}},
    }


def pipeline_definition(plan: BatchJobPlan, step_arguments: dict[str, Any]) -> str:
    step: dict[str, Any] = {"Name": STEP, "Type": "Processing" if plan.sagemaker_mode == "processing" else "Transform", "Arguments": step_arguments}
    step["RetryPolicies"] = [{"ExceptionType": RETRY_ERRORS, "IntervalSeconds": 60, "BackoffRate": 2.0, "MaxAttempts": max(1, plan.max_attempts - 1)}]
    return json.dumps(
        {"Version": PIPELINE_SCHEMA_VERSION, "Parameters": [{"Name": "ModelVersion", "Type": "String", "DefaultValue": plan.model_version}], "Steps": [step]},
        sort_keys=True,
    )


def create_sagemaker_job(component: pulumi.ComponentResource, name: str, plan: BatchJobPlan, args: BatchJobArgs) -> dict[str, Any]:
    opts = pulumi.ResourceOptions(parent=component)
    region = plan.region
    tags = dict(plan.tags)
    role_arn: Any = args.get("role_arn")
    if role_arn is None:
        role = aws.iam.Role(f"{name}-execution-role", assume_role_policy=service_trust_policy("sagemaker.amazonaws.com"),
                            tags=tags, opts=opts)
        aws.iam.RolePolicyAttachment(f"{name}-execution-sagemaker", role=role.name, policy_arn=managed_policy_arn("AmazonSageMakerFullAccess", region), opts=opts)
        aws.iam.RolePolicy(f"{name}-execution-s3", role=role.id,
                           policy=json.dumps({"Version": "2012-10-17", "Statement": [st for b, pre, w in bucket_access(plan, "s3") for st in prefix_statements(b, pre, w, partition_of(region))]}, sort_keys=True), opts=opts)
        role_arn = role.arn
    image = pulumi.Output.from_input(args["image"])
    if plan.sagemaker_mode == "transform":
        model = aws.sagemaker.Model(
            f"{name}-model", region=region, execution_role_arn=role_arn,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(image=image, environment=plan.task_env()), tags=tags, opts=opts,
        )
        definition = model.name.apply(lambda m: pipeline_definition(plan, transform_arguments(plan, m)))
    else:
        definition = pulumi.Output.all(image, role_arn).apply(lambda v: pipeline_definition(plan, processing_arguments(plan, str(v[0]), str(v[1]))))
    pipeline = aws.sagemaker.Pipeline(
        f"{name}-pipeline", region=region, pipeline_name=plan.name, pipeline_display_name=plan.name, role_arn=role_arn,
        pipeline_definition=definition, pipeline_description=f"BatchJob {plan.name} ({plan.sagemaker_mode})", tags=tags, opts=opts,
    )
    t = plan.trigger
    if t.kind == "none":
        return {"job": pipeline.arn, "launch": f"aws sagemaker start-pipeline-execution --region {region} --pipeline-name {plan.name}"}
    events_role = aws.iam.Role(f"{name}-events-role", assume_role_policy=service_trust_policy("events.amazonaws.com"), tags=tags, opts=opts)
    aws.iam.RolePolicy(
        f"{name}-events-start", role=events_role.id,
        policy=pipeline.arn.apply(lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sagemaker:StartPipelineExecution", "Resource": arn}]}, sort_keys=True)),
        opts=opts,
    )
    after: list[pulumi.Resource] = []
    if t.kind == "schedule":
        rule = aws.cloudwatch.EventRule(f"{name}-rule", region=region, schedule_expression=eventbridge_schedule(t.schedule or ""), tags=tags, opts=opts)
    else:
        after.append(aws.s3.BucketNotification(f"{name}-bucket-events", bucket=t.bucket, region=region, eventbridge=True, opts=opts))
        rule = aws.cloudwatch.EventRule(f"{name}-rule", region=region, event_pattern=s3_event_pattern(t), tags=tags, opts=opts)
    aws.cloudwatch.EventTarget(
        f"{name}-target", rule=rule.name, region=region, arn=pipeline.arn, role_arn=events_role.arn,
        sagemaker_pipeline_target=aws.cloudwatch.EventTargetSagemakerPipelineTargetArgs(
            pipeline_parameter_lists=[aws.cloudwatch.EventTargetSagemakerPipelineTargetPipelineParameterListArgs(name="ModelVersion", value=plan.model_version)],
        ),
        opts=pulumi.ResourceOptions(parent=component, depends_on=after),
    )
    return {"job": pipeline.arn, "launch": f"EventBridge -> SageMaker Pipeline {plan.name}"}


__all__ = ["create_sagemaker_job", "pipeline_definition", "processing_arguments", "transform_arguments"]
