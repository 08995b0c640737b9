"""Two-tier endpoints in the reference stacks: both tiers' objects on aws-dev and gcp-dev, and the
config section's reference checks."""

from __future__ import annotations

import json

import pytest

from gpuplane.engine.plan import plan_stack
from stacks.config import StackConfigError, parse_config


def _by_type(plan, type_: str) -> dict[str, dict]:
    return {r.name: r.inputs for r in plan.resources if r.type == type_}


def test_aws_dev_plans_a_knative_steady_tier_a_sagemaker_burst_tier_and_the_router() -> None:
    plan = plan_stack("aws-dev")
    top = _by_type(plan, "gpuplane:index:TwoTierEndpoint")["recs-2t"]["gpuplane"]
    assert (top["implementation"], top["steady"]["pool"], top["spillThreshold"]) == ("knative+sagemaker", "g6-spot", 8)
    steady = _by_type(plan, "kubernetes:serving.knative.dev/v1:Service")["recs-2t-steady-service"]
    assert steady["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "1"
    assert "recs-2t-burst-inference-component" in _by_type(plan, "aws-native:sagemaker:InferenceComponent")
    assert _by_type(plan, "gpuplane:index:InferenceEndpoint")["recs-2t-burst"]["gpuplane"]["minScale"] == 0
    router = _by_type(plan, "kubernetes:apps/v1:Deployment")["recs-2t-router"]
    args = router["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--overflow-threshold") + 1] == "4"  # 8 over two router pods
    policy = json.loads(_by_type(plan, "aws:iam/rolePolicy:RolePolicy")["recs-2t-router-invoker-policy"]["policy"])
    assert policy["Statement"][0]["Action"] == ["sagemaker:InvokeEndpoint"]


def test_gcp_dev_plans_a_knative_steady_tier_a_cloud_run_burst_tier_and_the_router() -> None:
    plan = plan_stack("gcp-dev")
    top = _by_type(plan, "gpuplane:index:TwoTierEndpoint")["recs-2t"]["gpuplane"]
    assert (top["implementation"], top["steady"]["pool"]) == ("knative+cloud-run", "l4-shared")
    run = _by_type(plan, "gcp:cloudrunv2/service:Service")["recs-2t-burst-service"]
    assert run["template"]["scaling"]["minInstanceCount"] == 0
    assert run["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    invoker = _by_type(plan, "gcp:cloudrunv2/serviceIamMember:ServiceIamMember")["recs-2t-router-invoker"]
    assert invoker["role"] == "roles/run.invoker" and invoker["name"] == "recs-2t-burst"
    assert "recs-2t-router-svc" in _by_type(plan, "kubernetes:core/v1:Service")


BASE = {"gpuplane:cluster": {"cloud": "aws", "region": "us-east-1"},
        "gpuplane:gpuPools": [{"name": "g6", "accelerator": "L4", "acceleratorsPerNode": 1}]}
TIER = {"name": "t", "pool": "g6", "image": "i", "burstPlatform": "sagemaker"}


@pytest.mark.parametrize(("values", "fragment"), [
    ({**BASE, "gpuplane:twoTierEndpoints": [{**TIER, "pool": "nope"}]}, "twoTierEndpoints[0].pool 'nope' is not a pool"),
    ({**BASE, "gpuplane:twoTierEndpoints": [{**TIER, "spillThreshold": 0}]}, "spillThreshold"),
    ({**BASE, "gpuplane:twoTierEndpoints": [{**TIER, "burstPlatform": "knative"}]}, "burstPlatform"),
    ({**BASE, "gpuplane:inferenceEndpoints": [{"name": "t", "platform": "knative", "image": "i"}],
      "gpuplane:twoTierEndpoints": [TIER]}, "endpoint names must be unique"),
])
def test_two_tier_config_errors_name_the_key(values, fragment) -> None:
    with pytest.raises(StackConfigError, match=None) as err:
        parse_config(values)
    assert fragment in str(err.value), str(err.value)


def test_two_tier_config_maps_camel_case() -> None:
    cfg = parse_config({**BASE, "gpuplane:twoTierEndpoints": [{**TIER, "steadyReplicas": 2, "routerReplicas": 1}]})
    assert (cfg.two_tier_endpoints[0].steady_replicas, cfg.two_tier_endpoints[0].router_replicas) == (2, 1)
