"""EdgeDeployment's AWS IoT Greengrass v2 backend: a component version per model, a deployment per site (thing group).

Resources from ``pulumi_aws_native.greengrassv2`` (pulumi-aws 7.51 has no Greengrass v2 module;
CloudFormation ``AWS::GreengrassV2::ComponentVersion`` / ``AWS::GreengrassV2::Deployment``):

- ``ComponentVersion`` (``inline_recipe``, recipe format 2020-01-25) per model build (the new one
  and the previous one), named ``gpuplane.edge.<deployment>`` with version ``1.0.<n>`` where ``n``
  is the model digest's first 24 bits (component versions are immutable: a new model is a new
  version). Artifacts: the edge server image (``docker:`` URI, pulled by
  ``aws.greengrass.DockerApplicationManager``) and the model (``s3://``). Lifecycle ``Run``
  starts the server with the contract as environment, read from the component configuration.
- ``Deployment`` per site, ``target_arn`` = the site's thing group, with the site's configuration
  merged, ``iot_job_configuration.job_executions_rollout_config.exponential_rate`` (base rate = the
  wave's max unavailable share of the site's devices, doubling per succeeded batch),
  ``abort_config`` (cancel when failed executions pass ``max_unavailable_percent``) and
  ``deployment_policies.failure_handling_policy`` ``ROLLBACK`` (``DO_NOTHING`` without
  auto-rollback). A device whose gate fails exits the component's Run step non-zero, so Greengrass
  counts it failed and rolls that device back to the previous component version.

Lacks (spec.FEATURES): pre-staging, TensorRT, OCI model artifacts, each with its reason.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pulumi

from components.edge.manifests import MODEL_CACHE_PATH, deployed
from components.edge.spec import ENV_KEYS, EdgePlan, ModelPlan, SitePlan

RECIPE_FORMAT = "2020-01-25"
DOCKER_MANAGER = "aws.greengrass.DockerApplicationManager"


def component_name(plan: EdgePlan) -> str:
    return f"gpuplane.edge.{plan.name}"


def component_version(model: ModelPlan) -> str:
    return f"1.0.{int(model.digest.removeprefix('sha256:')[:6], 16)}"


def local_model_uri(model: ModelPlan) -> str:
    """Where the server finds the model artifact Greengrass downloaded ({artifacts:path} is mounted at the cache path)."""
    return f"file://{MODEL_CACHE_PATH}/{model.uri.rstrip('/').rsplit('/', 1)[-1]}"


def recipe(plan: EdgePlan, model: ModelPlan) -> dict[str, Any]:
    """The component recipe for one model build (Greengrass v2 recipe reference, format 2020-01-25)."""
    env_flags = " ".join(f"-e {k}={{configuration:/{k}}}" for k in ENV_KEYS)
    run = (f"docker run --rm --name {plan.name} -p {plan.port}:{plan.port} -v {{artifacts:path}}:{MODEL_CACHE_PATH} "
           f"{env_flags} {plan.image.ref}")
    return {
        "RecipeFormatVersion": RECIPE_FORMAT,
        "ComponentName": component_name(plan),
        "ComponentVersion": component_version(model),
        "ComponentDescription": f"gpuplane edge server for {plan.name}: model {model.digest}",
        "ComponentPublisher": "gpuplane",
        "ComponentDependencies": {DOCKER_MANAGER: {"VersionRequirement": ">=2.0.0 <3.0.0", "DependencyType": "HARD"}},
        "ComponentConfiguration": {"DefaultConfiguration": {k: "" for k in ENV_KEYS}},
        "Manifests": [{
            "Platform": {"os": "linux"},
            "Artifacts": [{"Uri": f"docker:{plan.image.ref}"}, {"Uri": model.uri, "Unarchive": "NONE"}],
            "Lifecycle": {"Run": run},
        }],
    }


def job_configuration(plan: EdgePlan, site: SitePlan) -> dict[str, Any]:
    """Rollout within the site's thing group: exponential rate, abort on failures, as plain dicts (wire names)."""
    base = max(1, math.floor(site.devices * plan.max_unavailable_percent / 100))
    return {
        "jobExecutionsRolloutConfig": {
            "exponentialRate": {"baseRatePerMinute": base, "incrementFactor": 2.0, "rateIncreaseCriteria": {"numberOfSucceededThings": base}},
            "maximumPerMinute": max(base, site.devices),
        },
        "abortConfig": {"criteriaList": [{"action": "CANCEL", "failureType": "FAILED", "minNumberOfExecutedThings": base,
                                          "thresholdPercentage": float(max(1, plan.max_unavailable_percent))}]},
    }


def create_greengrass_sites(component: pulumi.ComponentResource, name: str, plan: EdgePlan) -> list[pulumi.Resource]:
    import pulumi_aws_native as aws_native

    gg = aws_native.greengrassv2
    sites = [s for s in plan.sites if s.kind == "greengrass" and deployed(plan, s)]
    if not sites:
        return []
    created: list[pulumi.Resource] = []
    versions: dict[str, Any] = {}
    for role, model in (("model", plan.model), ("previous", plan.previous_model)):
        if model is None or not any((s.promoted and role == "model") or (not s.promoted and role == "previous") for s in sites):
            continue
        versions[model.digest] = gg.ComponentVersion(f"{name}-gg-{role}", inline_recipe=json.dumps(recipe(plan, model), sort_keys=True),
                                                     tags=plan.tags or None, opts=pulumi.ResourceOptions(parent=component))
        created.append(versions[model.digest])
    for site in sites:
        model = plan.model if site.promoted else plan.previous_model
        assert model is not None  # deployed() holds
        env = plan.site_env(site)
        # Greengrass downloads the model artifact next to the component: the server reads it there.
        # No pre-staging on Greengrass (spec.FEATURES).
        env.update(EDGE_MODEL_URI=local_model_uri(model), EDGE_PRESTAGE_MODEL_URI="", EDGE_PRESTAGE_MODEL_DIGEST="", EDGE_PRESTAGE_WINDOW_UTC="")
        job = job_configuration(plan, site)
        rate, abort = job["jobExecutionsRolloutConfig"], job["abortConfig"]["criteriaList"][0]
        created.append(gg.Deployment(
            f"{name}-{site.name}-gg-deployment",
            target_arn=site.thing_group_arn,
            deployment_name=f"{name}-{site.name}",
            components={
                component_name(plan): gg.DeploymentComponentDeploymentSpecificationArgs(
                    component_version=component_version(model),
                    configuration_update=gg.DeploymentComponentConfigurationUpdateArgs(merge=json.dumps(env, sort_keys=True))),
            },
            iot_job_configuration=gg.DeploymentIoTJobConfigurationArgs(
                job_executions_rollout_config=gg.DeploymentIoTJobExecutionsRolloutConfigArgs(
                    exponential_rate=gg.DeploymentIoTJobExponentialRolloutRateArgs(
                        base_rate_per_minute=rate["exponentialRate"]["baseRatePerMinute"], increment_factor=rate["exponentialRate"]["incrementFactor"],
                        rate_increase_criteria=gg.DeploymentIoTJobRateIncreaseCriteriaArgs(number_of_succeeded_things=rate["exponentialRate"]["baseRatePerMinute"])),
                    maximum_per_minute=rate["maximumPerMinute"]),
                abort_config=gg.DeploymentIoTJobAbortConfigArgs(criteria_list=[gg.DeploymentIoTJobAbortCriteriaArgs(
                    action=gg.DeploymentIoTJobAbortCriteriaAction.CANCEL, failure_type=gg.DeploymentIoTJobAbortCriteriaFailureType.FAILED,
                    min_number_of_executed_things=abort["minNumberOfExecutedThings"], threshold_percentage=abort["thresholdPercentage"])]),
            ),
            deployment_policies=gg.DeploymentPoliciesArgs(
                failure_handling_policy=gg.DeploymentPoliciesFailureHandlingPolicy.ROLLBACK if plan.auto_rollback
                else gg.DeploymentPoliciesFailureHandlingPolicy.DO_NOTHING),
            tags=plan.tags or None,
            opts=pulumi.ResourceOptions(parent=component, depends_on=[versions[model.digest]]),
        ))
    return created


__all__ = ["component_name", "component_version", "create_greengrass_sites", "job_configuration", "local_model_uri", "recipe"]
