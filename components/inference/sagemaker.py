"""InferenceEndpoint on SageMaker, scaled to zero.

Two modes (REFERENCE.md §3):

- ``inference-components``: an endpoint configuration whose variant has no model and managed
  instance scaling down to 0 instances, the endpoint, a SageMaker Model, and an inference
  component (pulumi-aws-native; pulumi-aws has none) whose copy count Application Auto Scaling
  tracks from 0 — target tracking on concurrent requests per copy, plus a step policy fired by
  a CloudWatch alarm on ``NoCapacityInvocationFailures`` to leave zero. While at zero, requests
  fail until a copy is up: the client retries (declared: no request holding).
- ``async``: a variant with the model, ``async_inference_config`` writing results to S3, and the
  variant's instance count tracked from 0 on ``ApproximateBacklogSizePerInstance``, with a step
  policy on ``HasBacklogWithoutCapacity`` to leave zero. Requests wait in the queue.

The execution role may read the model prefix, pull from ECR and write logs; async also writes
its output prefix. Health-check and download timeouts are sized to the cold-start budget.

Runtimes: the reference server; ``vllm`` from a SageMaker build of vLLM (vLLM's Dockerfile
target ``vllm-sagemaker``: its entrypoint maps ``SM_VLLM_*`` variables to ``vllm serve`` flags and
listens on 8080, where vLLM answers ``/ping`` and ``/invocations``), with weights downloaded by
SageMaker to /opt/ml/model (an uncompressed S3 prefix through ModelDataSource) or streamed
from S3 by the Run:ai streamer under the execution role; or a custom image that already
honours SageMaker's contract (no command, args, other port or probe paths: declared missing).

Canary (async mode): SageMaker canary: the champion as a second, weighted production variant (async mode).

``production_variants`` turns the endpoint's one variant (``main``, the challenger: the
endpoint's ``model_uri``) into two: ``main`` with ``initial_variant_weight = percent`` and
``champion`` (a second ``aws.sagemaker.Model`` from ``champion_model_uri``, the execution role
granted read on it) with ``100 - percent``. ``scale_champion`` gives the champion variant its own
Application Auto Scaling target (0 to ``max_scale``) tracking the endpoint's backlog per instance,
so both variants scale to zero. Moving the weights later is
``UpdateEndpointWeightsAndCapacities`` or a stack update of ``canary.percent``.
https://docs.aws.amazon.com/sagemaker/latest/dg/model-ab-testing.html
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from components.aws.autoscaling import backlog_per_instance_policy, target_tracking
from components.aws.iam import managed_policy_arn, service_trust_policy
from components.inference.spec import EndpointPlan

if TYPE_CHECKING:
    from components.inference.spec import InferenceEndpointArgs

VARIANT = "main"
SAGEMAKER_MODEL_DIR = "/opt/ml/model"


def _execution_role(
    endpoint: pulumi.ComponentResource, name: str, plan: EndpointPlan, output_prefix: str | None
) -> aws.iam.Role:
    opts = pulumi.ResourceOptions(parent=endpoint)
    role = aws.iam.Role(
        f"{name}-execution-role",
        assume_role_policy=service_trust_policy("sagemaker.amazonaws.com"),
        tags=plan.tags,
        opts=opts,
    )
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "cloudwatch:PutMetricData"],
            "Resource": "*",
        },
    ]
    if plan.model_uri:
        bucket, _, prefix = plan.model_uri.removeprefix("s3://").partition("/")
        statements.append(
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"}
        )
        statements.append({"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}"})
    if output_prefix:
        bucket, _, prefix = output_prefix.removeprefix("s3://").partition("/")
        statements.append(
            {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"}
        )
    aws.iam.RolePolicy(
        f"{name}-execution-policy",
        role=role.id,
        policy=json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True),
        opts=opts,
    )
    aws.iam.RolePolicyAttachment(
        f"{name}-ecr-read",
        role=role.name,
        policy_arn=managed_policy_arn("AmazonEC2ContainerRegistryReadOnly", plan.region),
        opts=opts,
    )
    return role


def vllm_environment(plan: EndpointPlan) -> dict[str, str]:
    """``SM_VLLM_*`` variables: the SageMaker build of vLLM turns each into a ``vllm serve`` flag.

    vLLM's docker/Dockerfile target ``vllm-sagemaker`` runs examples/online_serving/
    sagemaker-entrypoint.sh: ``SM_VLLM_GPU_MEMORY_UTILIZATION=0.9`` becomes
    ``--gpu-memory-utilization 0.9`` (an empty value gives a bare flag), after ``--port 8080``.
    """
    rt = plan.runtime
    streams = rt.weights_loader == "stream" and plan.model_uri
    env = {
        "SM_VLLM_MODEL": plan.model_uri if streams else SAGEMAKER_MODEL_DIR,
        "SM_VLLM_SERVED_MODEL_NAME": rt.served_model_name or plan.model_name,
        "SM_VLLM_TENSOR_PARALLEL_SIZE": str(rt.tensor_parallel_size),
        "SM_VLLM_GPU_MEMORY_UTILIZATION": f"{rt.gpu_memory_utilization or 0.9:g}",
    }
    if rt.max_model_len:
        env["SM_VLLM_MAX_MODEL_LEN"] = str(rt.max_model_len)
    if streams:
        env["SM_VLLM_LOAD_FORMAT"] = "runai_streamer"
    flags = list(rt.args)
    i = 0
    while i < len(flags):
        flag, _, value = flags[i].removeprefix("--").partition("=")
        if not value and i + 1 < len(flags) and not flags[i + 1].startswith("--"):
            value, i = flags[i + 1], i + 1
        env["SM_VLLM_" + flag.upper().replace("-", "_")] = value
        i += 1
    return {k: str(v) for k, v in env.items()}


def _model_data(plan: EndpointPlan) -> dict[str, Any]:
    """Model data: a .tar.gz through ModelDataUrl, an uncompressed prefix through ModelDataSource."""
    uri = plan.model_uri
    if not uri or (plan.runtime.kind == "vllm" and plan.runtime.weights_loader == "stream"):
        return {}
    if plan.runtime.kind == "reference" or uri.endswith(".tar.gz"):
        return {"model_data_url": uri}
    return {
        "model_data_source": aws.sagemaker.ModelPrimaryContainerModelDataSourceArgs(
            s3_data_sources=[
                aws.sagemaker.ModelPrimaryContainerModelDataSourceS3DataSourceArgs(
                    s3_uri=uri.rstrip("/") + "/", s3_data_type="S3Prefix", compression_type="None"
                )
            ]
        )
    }


def _model(
    endpoint: pulumi.ComponentResource, name: str, plan: EndpointPlan, image: Any, role: aws.iam.Role
) -> aws.sagemaker.Model:
    if plan.runtime.kind == "vllm":
        env = {**vllm_environment(plan), **plan.env}
    else:
        env = {"GPUPLANE_MODEL_NAME": plan.model_name, **plan.env}
    return aws.sagemaker.Model(
        f"{name}-model",
        execution_role_arn=role.arn,
        region=plan.region,
        primary_container=aws.sagemaker.ModelPrimaryContainerArgs(image=image, environment=env, **_model_data(plan)),
        tags=plan.tags,
        opts=pulumi.ResourceOptions(parent=endpoint),
    )


def _scale_from_zero(
    endpoint: pulumi.ComponentResource,
    name: str,
    plan: EndpointPlan,
    resource_id: Any,
    dimension: str,
    target_policy: dict[str, Any],
    alarm_metric: str,
    alarm_dims: Any,
) -> None:
    opts = pulumi.ResourceOptions(parent=endpoint)
    target = target_tracking(endpoint, name, plan, resource_id, dimension, target_policy)
    step = aws.appautoscaling.Policy(
        f"{name}-scale-out-from-zero",
        policy_type="StepScaling",
        service_namespace="sagemaker",
        resource_id=target.resource_id,
        scalable_dimension=dimension,
        region=plan.region,
        step_scaling_policy_configuration=aws.appautoscaling.PolicyStepScalingPolicyConfigurationArgs(
            adjustment_type="ChangeInCapacity",
            cooldown=60,
            metric_aggregation_type="Maximum",
            step_adjustments=[
                aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                    metric_interval_lower_bound="0", scaling_adjustment=1
                )
            ],
        ),
        opts=opts,
    )
    aws.cloudwatch.MetricAlarm(
        f"{name}-leave-zero",
        alarm_description=f"Scale {plan.name} out of zero when requests arrive with no capacity",
        namespace="AWS/SageMaker",
        metric_name=alarm_metric,
        dimensions=alarm_dims,
        statistic="Maximum",
        period=60,
        evaluation_periods=1,
        threshold=1 if alarm_metric == "HasBacklogWithoutCapacity" else 0,
        comparison_operator="GreaterThanOrEqualToThreshold"
        if alarm_metric == "HasBacklogWithoutCapacity"
        else "GreaterThanThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=[step.arn],
        region=plan.region,
        tags=plan.tags,
        opts=opts,
    )


def create_sagemaker_endpoint(
    endpoint: pulumi.ComponentResource, name: str, plan: EndpointPlan, args: InferenceEndpointArgs
) -> pulumi.Output[str]:
    opts = pulumi.ResourceOptions(parent=endpoint)
    async_mode = plan.sagemaker_mode == "async"
    output_prefix = None
    if async_mode and plan.model_uri:
        bucket = plan.model_uri.removeprefix("s3://").split("/", 1)[0]
        output_prefix = f"s3://{bucket}/async-results/{plan.name}/"
    role = _execution_role(endpoint, name, plan, output_prefix)
    model = _model(endpoint, name, plan, plan.image, role)
    startup = min(3600, max(60, plan.timeouts.startup_probe_seconds))
    if async_mode:
        variant = aws.sagemaker.EndpointConfigurationProductionVariantArgs(
            variant_name=VARIANT,
            model_name=model.name,
            instance_type=plan.instance_type,
            initial_instance_count=max(1, plan.min_scale),
            container_startup_health_check_timeout_in_seconds=startup,
            model_data_download_timeout_in_seconds=startup,
        )
        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=production_variants(endpoint, name, plan, role, variant),
            async_inference_config=aws.sagemaker.EndpointConfigurationAsyncInferenceConfigArgs(
                output_config=aws.sagemaker.EndpointConfigurationAsyncInferenceConfigOutputConfigArgs(
                    s3_output_path=output_prefix or f"s3://{plan.name}-async-results/"
                ),
                client_config=aws.sagemaker.EndpointConfigurationAsyncInferenceConfigClientConfigArgs(
                    max_concurrent_invocations_per_instance=plan.target_concurrency
                ),
            ),
            region=plan.region,
            tags=plan.tags,
            opts=opts,
        )
    else:
        variant = aws.sagemaker.EndpointConfigurationProductionVariantArgs(
            variant_name=VARIANT,
            instance_type=plan.instance_type,
            initial_instance_count=max(1, plan.min_scale),
            managed_instance_scaling=aws.sagemaker.EndpointConfigurationProductionVariantManagedInstanceScalingArgs(
                status="ENABLED", min_instance_count=plan.min_scale, max_instance_count=plan.max_scale
            ),
            routing_configs=[
                aws.sagemaker.EndpointConfigurationProductionVariantRoutingConfigArgs(
                    routing_strategy="LEAST_OUTSTANDING_REQUESTS"
                )
            ],
            container_startup_health_check_timeout_in_seconds=startup,
            model_data_download_timeout_in_seconds=startup,
        )
        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=[variant],
            execution_role_arn=role.arn,
            region=plan.region,
            tags=plan.tags,
            opts=opts,
        )
    sm_endpoint = aws.sagemaker.Endpoint(
        f"{name}-endpoint", endpoint_config_name=config.name, region=plan.region, tags=plan.tags, opts=opts
    )
    scale_champion(endpoint, name, plan, sm_endpoint.name)
    if async_mode:
        resource_id = sm_endpoint.name.apply(lambda n: f"endpoint/{n}/variant/{VARIANT}")
        _scale_from_zero(
            endpoint,
            name,
            plan,
            resource_id,
            "sagemaker:variant:DesiredInstanceCount",
            backlog_per_instance_policy(plan, sm_endpoint.name),
            "HasBacklogWithoutCapacity",
            sm_endpoint.name.apply(lambda n: {"EndpointName": n}),
        )
    else:
        import pulumi_aws_native as aws_native

        component = aws_native.sagemaker.InferenceComponent(
            f"{name}-inference-component",
            endpoint_name=sm_endpoint.name,
            variant_name=VARIANT,
            specification=aws_native.sagemaker.InferenceComponentSpecificationArgs(
                model_name=model.name,
                compute_resource_requirements=aws_native.sagemaker.InferenceComponentComputeResourceRequirementsArgs(
                    number_of_accelerator_devices_required=float(plan.gpus),
                    min_memory_required_in_mb=int(plan.memory_gib * 1024),
                ),
            ),
            runtime_config=aws_native.sagemaker.InferenceComponentRuntimeConfigArgs(copy_count=max(1, plan.min_scale)),
            opts=opts,
        )
        resource_id = component.inference_component_name.apply(lambda n: f"inference-component/{n}")
        _scale_from_zero(
            endpoint,
            name,
            plan,
            resource_id,
            "sagemaker:inference-component:DesiredCopyCount",
            {
                "target_value": float(plan.target_concurrency),
                "predefined_metric_specification": aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
                ),
                "scale_in_cooldown": plan.scale_down_delay_seconds,
                "scale_out_cooldown": 60,
            },
            "NoCapacityInvocationFailures",
            component.inference_component_name.apply(lambda n: {"InferenceComponentName": n}),
        )
        endpoint.inference_component_name = component.inference_component_name  # type: ignore[attr-defined]  # TwoTierEndpoint's router names it in InvokeEndpoint
    result: Any = sm_endpoint.name
    return result


# -- canary: the champion as a second weighted variant ------------------------------------------

CHAMPION_VARIANT = "champion"


def production_variants(endpoint: pulumi.ComponentResource, name: str, plan: EndpointPlan, role: aws.iam.Role, variant: Any) -> list[Any]:
    """The endpoint configuration's variants: ``[variant]``, or challenger and champion weighted."""
    canary = plan.extra.get("canary")
    if canary is None:
        return [variant]
    opts = pulumi.ResourceOptions(parent=endpoint)
    uri = str(canary.champion_model_uri)
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    grant = aws.iam.RolePolicy(
        f"{name}-champion-read",
        role=role.id,
        policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"},
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}"},
        ]}, sort_keys=True),
        opts=opts,
    )
    champion_model = _model(endpoint, f"{name}-champion", dataclasses.replace(plan, model_uri=uri), plan.image, role)
    variant.initial_variant_weight = float(canary.percent)
    champion = aws.sagemaker.EndpointConfigurationProductionVariantArgs(
        variant_name=CHAMPION_VARIANT,
        model_name=champion_model.name,
        instance_type=plan.instance_type,
        initial_instance_count=max(1, plan.min_scale),
        initial_variant_weight=float(100 - canary.percent),
        container_startup_health_check_timeout_in_seconds=variant.container_startup_health_check_timeout_in_seconds,
        model_data_download_timeout_in_seconds=variant.model_data_download_timeout_in_seconds,
    )
    del grant  # created before the endpoint configuration that the champion variant belongs to
    return [variant, champion]


def scale_champion(endpoint: pulumi.ComponentResource, name: str, plan: EndpointPlan, endpoint_name: pulumi.Output[str]) -> None:
    """The champion variant scales from 0 like ``main`` (target tracking on the backlog per instance)."""
    if plan.extra.get("canary") is None:
        return
    target_tracking(
        endpoint,
        f"{name}-champion",
        plan,
        endpoint_name.apply(lambda n: f"endpoint/{n}/variant/{CHAMPION_VARIANT}"),
        "sagemaker:variant:DesiredInstanceCount",
        backlog_per_instance_policy(plan, endpoint_name),
    )
