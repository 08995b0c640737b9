"""TwoTierEndpoint: planner table tests, and both implementations under the mock runtime."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError
from components.node_pool import GpuNodePool
from components.two_tier import TwoTierEndpoint, plan_two_tier
from components.two_tier.router import envoy_config, router_command
from tests.helpers import run, validate_all_core_objects

IMAGE = "ghcr.io/example/gpuplane-serving:1.0"


def gcp_program(**extra: Any) -> Any:
    def program() -> None:
        cluster = KubernetesCluster("gke", {"cloud": "gcp", "region": "us-central1", "project": "p"})
        pool = GpuNodePool("l4", {"cluster": cluster, "accelerator": "L4"})
        TwoTierEndpoint("recs", {"cluster": cluster, "pool": pool, "image": IMAGE, "burst_platform": "cloud-run",
                                 "model_uri": "gs://models/recs", "steady_replicas": 2, **extra})
    return program


def aws_program(**extra: Any) -> Any:
    def program() -> None:
        cluster = KubernetesCluster("eks", {"cloud": "aws", "region": "us-east-1"})
        pool = GpuNodePool("g6", {"cluster": cluster, "accelerator": "L4"})
        TwoTierEndpoint("recs", {"cluster": cluster, "pool": pool, "image": IMAGE, "burst_platform": "sagemaker",
                                 "model_uri": "s3://models/recs/", "burst_model_uri": "s3://models/recs/model.tar.gz",
                                 "hold_requests": False, **extra})
    return program


def router_args(result: Any) -> list[str]:
    deployment = result.one("kubernetes:apps/v1:Deployment", "recs-router")
    return list(deployment.inputs["spec"]["template"]["spec"]["containers"][0]["args"])


def test_gke_steady_tier_and_cloud_run_burst_tier_behind_one_router_service() -> None:
    result = run(gcp_program())
    top = result.one("gpuplane:index:TwoTierEndpoint", "recs")
    children = {(r.type, r.name) for r in result.children_of(top.urn)}
    assert {("gpuplane:index:InferenceEndpoint", "recs-steady"), ("gpuplane:index:InferenceEndpoint", "recs-burst"),
            ("kubernetes:apps/v1:Deployment", "recs-router"), ("kubernetes:core/v1:Service", "recs-router-svc"),
            ("kubernetes:core/v1:ConfigMap", "recs-router-proxy"), ("kubernetes:core/v1:ServiceAccount", "recs-router-sa"),
            ("gcp:cloudrunv2/serviceIamMember:ServiceIamMember", "recs-router-invoker")} <= children, children

    steady = result.one("kubernetes:serving.knative.dev/v1:Service", "recs-steady-service")
    annotations = steady.inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "2", steady.urn
    assert steady.inputs["metadata"]["namespace"] == "recs"
    burst = result.one("gcp:cloudrunv2/service:Service", "recs-burst-service")
    assert burst.inputs["template"]["scaling"]["minInstanceCount"] == 0, burst.urn
    assert burst.inputs["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"

    args = router_args(result)
    assert args[args.index("--mode") + 1] == "overflow"
    assert args[args.index("--overflow-threshold") + 1] == "8"  # 2 replicas x 8 in flight, over 2 router pods
    assert "steady=http://recs-steady.recs.svc.cluster.local" in args and "burst=http://127.0.0.1:8081" in args
    invoker = result.one("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    assert (invoker.inputs["name"], invoker.inputs["role"]) == ("recs-burst", "roles/run.invoker")
    assert invoker.inputs["member"] == "serviceAccount:recs-router@p.iam.gserviceaccount.com"
    envoy = json.loads(result.one("kubernetes:core/v1:ConfigMap", "recs-router-proxy").inputs["data"]["envoy.json"])
    filters = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    assert [f["name"] for f in filters] == ["envoy.filters.http.gcp_authn", "envoy.filters.http.router"]
    sa = result.one("kubernetes:core/v1:ServiceAccount", "recs-router-sa")
    assert sa.inputs["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "recs-router@p.iam.gserviceaccount.com"}
    assert validate_all_core_objects(result) >= 4

    summary = top.inputs["gpuplane"]
    assert (summary["spillThreshold"], summary["burst"]["minScale"], summary["burst"]["public"]) == (16, 0, False)
    assert summary["steady"]["minScale"] == 2


def test_eks_steady_tier_and_sagemaker_burst_tier_sign_with_the_routers_irsa_role() -> None:
    result = run(aws_program())
    component = result.one("aws-native:sagemaker:InferenceComponent", "recs-burst-inference-component")
    assert component.inputs["runtimeConfig"]["copyCount"] == 1  # scaled to 0 by its scaling target
    policy = json.loads(result.one("aws:iam/rolePolicy:RolePolicy", "recs-router-invoker-policy").inputs["policy"])
    assert policy["Statement"] == [{"Action": ["sagemaker:InvokeEndpoint"], "Effect": "Allow",
                                    "Resource": "arn:aws:sagemaker:us-east-1:*:endpoint/recs-burst-endpoint"}]
    args = router_args(result)
    assert args[args.index("--backend-path") + 1] == "burst=/endpoints/recs-burst-endpoint/invocations"
    envoy = json.loads(result.one("kubernetes:core/v1:ConfigMap", "recs-router-proxy").inputs["data"]["envoy.json"])
    signing = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]
    assert signing["typed_config"]["service_name"] == "sagemaker"
    assert signing["typed_config"]["host_rewrite"] == "runtime.sagemaker.us-east-1.amazonaws.com"
    steady = result.one("gpuplane:index:InferenceEndpoint", "recs-steady")
    assert steady.inputs["gpuplane"]["tags"]["gpuplane/exempt"] == "endpoint-scale-to-zero"
    assert validate_all_core_objects(result) >= 4


def test_the_router_names_the_inference_component_when_it_is_known() -> None:
    plan = plan_two_tier("recs", _aws_args())
    args = router_command(plan, "ep-1", "ic-1")
    assert args[-4:] == ["--backend-path", "burst=/endpoints/ep-1/invocations",
                         "--backend-header", "burst=X-Amzn-SageMaker-Inference-Component:ic-1"]
    cluster = envoy_config(plan, "runtime.sagemaker.us-east-1.amazonaws.com")["static_resources"]["clusters"][0]
    assert cluster["transport_socket"]["typed_config"]["sni"] == "runtime.sagemaker.us-east-1.amazonaws.com"


_CACHE: dict[str, Any] = {}


def _aws_args(**extra: Any) -> Any:
    """Args over a cluster and pool made once under the mock runtime (planners are pure)."""
    if "aws" not in _CACHE:
        def program() -> None:
            cluster = KubernetesCluster("eks", {"cloud": "aws", "region": "us-east-1"})
            _CACHE["aws"] = (cluster, GpuNodePool("g6", {"cluster": cluster, "accelerator": "L4"}))
            gcp = KubernetesCluster("gke", {"cloud": "gcp", "region": "us-central1", "project": "p"})
            _CACHE["gcp"] = (gcp, GpuNodePool("l4", {"cluster": gcp, "accelerator": "L4"}))
        run(program)
    cluster, pool = _CACHE["aws"]
    return {"cluster": cluster, "pool": pool, "image": IMAGE, "burst_platform": "sagemaker",
            "burst_model_uri": "s3://m/r/model.tar.gz", "hold_requests": False, **extra}


def _gcp_args(**extra: Any) -> Any:
    _aws_args()
    cluster, pool = _CACHE["gcp"]
    return {"cluster": cluster, "pool": pool, "image": IMAGE, "burst_platform": "cloud-run", **extra}


def test_defaults_derive_the_threshold_and_split_it_over_router_pods() -> None:
    plan = plan_two_tier("recs", _gcp_args(steady_replicas=3, target_concurrency=4, router_replicas=2))
    assert (plan.spill_threshold, plan.router_threshold) == (12, 6)
    assert (plan.steady.min_scale, plan.steady.max_scale, plan.burst.min_scale) == (3, 3, 0)
    assert plan.burst.auth == "iam" and not plan.burst.public
    assert plan.router_timeout_seconds == plan.burst.timeouts.request_timeout_seconds
    assert plan.steady.cpu == 3.5  # fits a g2-standard-4 (4 vCPU)
    explicit = plan_two_tier("recs", _gcp_args(spill_threshold=5, router_replicas=1, steady_max_replicas=4))
    assert (explicit.spill_threshold, explicit.router_threshold, explicit.steady.max_scale) == (5, 5, 4)


@pytest.mark.parametrize(("args", "messages"), [
    (lambda: _gcp_args(spill_threshold=0), ["spill_threshold = 0: must be a whole number of requests above 0."]),
    (lambda: _gcp_args(spill_threshold=-3, steady_replicas=0),
     ["spill_threshold = -3", "steady_replicas = 0: must be a whole number of at least 1"]),
    (lambda: _gcp_args(burst_platform="knative"),
     ["burst_platform = 'knative': is not a serverless GPU platform with scale-to-zero.",
      "burst to 'cloud-run' or 'sagemaker'"]),
    (lambda: {**_gcp_args(), "pool": None}, ["pool = None: is required: the steady tier runs on a GpuNodePool."]),
    (lambda: _gcp_args(burst_platform="sagemaker"), ["needs the steady cluster on aws", "'gke' is on gcp"]),
    (lambda: _aws_args(hold_requests=True),
     ["knative+sagemaker does not support request-holding", "NoCapacityInvocationFailures"]),
    (lambda: _gcp_args(router_replicas=5, spill_threshold=4), ["router_replicas = 5: exceeds spill_threshold=4"]),
    (lambda: _gcp_args(steady_replicas=3, steady_max_replicas=2), ["steady_max_replicas = 2: is below steady_replicas=3"]),
    (lambda: _gcp_args(burst_region="asia-northeast1"), ["burst_region = 'asia-northeast1'", "Cloud Run with L4"]),
    (lambda: _gcp_args(burst_model_uri="s3://x/y"), ["burst_model_uri = 's3://x/y'"]),
    (lambda: _gcp_args(minScale=1), ["minScale = 1: is not an argument of TwoTierEndpoint."]),
])
def test_bad_input_is_one_error_naming_every_problem(args: Any, messages: list[str]) -> None:
    with pytest.raises(ComponentInputError) as err:
        plan_two_tier("recs", args())
    text = str(err.value)
    assert text.startswith("TwoTierEndpoint 'recs' has"), text
    for message in messages:
        assert message in text, text


def test_bad_input_creates_nothing() -> None:
    def program() -> None:
        cluster = KubernetesCluster("gke", {"cloud": "gcp", "region": "us-central1", "project": "p"})
        pool = GpuNodePool("l4", {"cluster": cluster, "accelerator": "L4"})
        TwoTierEndpoint("recs", {"cluster": cluster, "pool": pool, "image": IMAGE, "burst_platform": "cloud-run",
                                 "spill_threshold": 0})

    with pytest.raises(Exception, match="spill_threshold = 0"):
        run(program)
