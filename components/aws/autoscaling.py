"""Application Auto Scaling for SageMaker endpoints: one target with a target-tracking policy.

Shared by the endpoint's own variant or inference component and a canary's champion variant
(both in components/inference/sagemaker.py, which adds the step policy and alarm that leave
zero). Children are named ``{prefix}-scaling-target`` and ``{prefix}-target-tracking``. A
low-level building block: it imports no capability (``ScalingPlan`` is what it needs of a plan).
"""

from __future__ import annotations

from typing import Any, Protocol

import pulumi
import pulumi_aws as aws


class ScalingPlan(Protocol):
    """What a scaling target needs of an endpoint's plan (InferenceEndpoint's ``EndpointPlan`` has it)."""

    @property
    def min_scale(self) -> int: ...

    @property
    def max_scale(self) -> int: ...

    @property
    def region(self) -> str | None: ...

    @property
    def target_concurrency(self) -> int: ...

    @property
    def scale_down_delay_seconds(self) -> int: ...


def backlog_per_instance_policy(plan: ScalingPlan, endpoint_name: Any) -> dict[str, Any]:
    """Target tracking on the async queue: ``target_concurrency`` queued requests per instance."""
    return {
        "target_value": float(plan.target_concurrency),
        "customized_metric_specification": aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs(
            metric_name="ApproximateBacklogSizePerInstance",
            namespace="AWS/SageMaker",
            statistic="Average",
            dimensions=[
                aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationDimensionArgs(
                    name="EndpointName", value=endpoint_name
                )
            ],
        ),
        "scale_in_cooldown": plan.scale_down_delay_seconds,
        "scale_out_cooldown": 60,
    }


def target_tracking(
    endpoint: pulumi.ComponentResource,
    prefix: str,
    plan: ScalingPlan,
    resource_id: Any,
    dimension: str,
    target_policy: dict[str, Any],
) -> aws.appautoscaling.Target:
    """A scalable target between ``min_scale`` and ``max_scale`` with one target-tracking policy."""
    opts = pulumi.ResourceOptions(parent=endpoint)
    target = aws.appautoscaling.Target(
        f"{prefix}-scaling-target",
        service_namespace="sagemaker",
        resource_id=resource_id,
        scalable_dimension=dimension,
        min_capacity=plan.min_scale,
        max_capacity=plan.max_scale,
        region=plan.region,
        opts=opts,
    )
    aws.appautoscaling.Policy(
        f"{prefix}-target-tracking",
        policy_type="TargetTrackingScaling",
        service_namespace="sagemaker",
        resource_id=target.resource_id,
        scalable_dimension=dimension,
        region=plan.region,
        target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
            **target_policy
        ),
        opts=opts,
    )
    return target
