"""Application Auto Scaling for SageMaker endpoints: one target with a target-tracking policy.

Shared by the endpoint's own variant or inference component (components/aws/inference.py, which
adds the step policy and alarm that leave zero) and a canary's champion variant
(components/aws/canary.py). Children are named ``{prefix}-scaling-target`` and
``{prefix}-target-tracking``.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.inference import EndpointPlan


def backlog_per_instance_policy(plan: EndpointPlan, endpoint_name: Any) -> dict[str, Any]:
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
    plan: EndpointPlan,
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
