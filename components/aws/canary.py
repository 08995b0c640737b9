"""SageMaker canary: the champion as a second, weighted production variant (async mode).

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
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.autoscaling import backlog_per_instance_policy, target_tracking
from components.inference import EndpointPlan

CHAMPION_VARIANT = "champion"


def production_variants(endpoint: pulumi.ComponentResource, name: str, plan: EndpointPlan, role: aws.iam.Role, variant: Any) -> list[Any]:
    """The endpoint configuration's variants: ``[variant]``, or challenger and champion weighted."""
    canary = plan.extra.get("canary")
    if canary is None:
        return [variant]
    from components.aws.inference import _model  # the same container and environment as the challenger

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
