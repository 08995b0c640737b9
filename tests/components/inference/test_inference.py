"""InferenceEndpoint: planner table tests, and each implementation under the mock runtime."""

from __future__ import annotations

import pytest

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError
from components.inference import InferenceEndpoint, plan_endpoint
from components.node_pool import GpuNodePool
from tests.helpers import run, validate_all_core_objects, validate_k8s

IMAGE = "ghcr.io/example/gpuplane-serving:1.0"
KNATIVE_FIELDS = {"containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds", "idleTimeoutSeconds"}
KNATIVE_ANNOTATIONS = {
    "autoscaling.knative.dev/class",
    "autoscaling.knative.dev/metric",
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/max-scale",
    "autoscaling.knative.dev/target",
    "autoscaling.knative.dev/scale-down-delay",
    "serving.knative.dev/progress-deadline",
}


def assert_knative_service_shape(resource) -> None:
    """serving.knative.dev/v1 Service: documented fields, and the pod spec part valid as a core PodSpec."""
    inputs = resource.inputs
    assert inputs["apiVersion"] == "serving.knative.dev/v1" and inputs["kind"] == "Service", resource.urn
    assert set(inputs["spec"]) == {"template"}, resource.urn
    template = inputs["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert set(annotations) <= KNATIVE_ANNOTATIONS, set(annotations) - KNATIVE_ANNOTATIONS
    assert all(isinstance(v, str) for v in annotations.values()), "Knative annotations are strings"
    spec = dict(template["spec"])
    for key in KNATIVE_FIELDS & set(spec):
        assert float(spec[key]).is_integer() and spec[key] >= 0, key
    pod = {k: v for k, v in spec.items() if k not in KNATIVE_FIELDS}
    assert len(pod["containers"]) == 1, "Knative serves one container per revision (plus sidecars)"
    validate_k8s({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": _ints(pod)})


def _ints(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {k: _ints(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_ints(x) for x in v]
    return v


def test_knative_on_existing_cluster_cpu_defaults():
    def program():
        cluster = KubernetesCluster("local", {"cloud": "existing"})
        InferenceEndpoint("recs", {"platform": "knative", "cluster": cluster, "image": IMAGE})

    result = run(program)
    svc = result.one("kubernetes:serving.knative.dev/v1:Service")
    assert svc.name == "recs-service"
    assert svc.parent.endswith("gpuplane:index:InferenceEndpoint::recs")
    assert_knative_service_shape(svc)
    ann = svc.inputs["spec"]["template"]["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/min-scale"] == "0"
    assert svc.inputs["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"  # private by default
    container = svc.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert "nvidia.com/gpu" not in container["resources"]["requests"]
    # Knative is installed once, through its operator.
    assert result.one("kubernetes:helm.sh/v3:Release").inputs["chart"] == "knative-operator"
    serving = result.one("kubernetes:operator.knative.dev/v1beta1:KnativeServing")
    assert serving.inputs["spec"]["config"]["features"]["kubernetes.podspec-tolerations"] == "enabled"
    assert validate_all_core_objects(result) >= 3


def test_knative_on_a_gpu_pool_with_model_from_a_volume_and_prepull():
    def program():
        cluster = KubernetesCluster("local", {"cloud": "existing"})
        pool = GpuNodePool("gpus", {"cluster": cluster, "accelerator": "L4"})
        InferenceEndpoint("a", {"platform": "knative", "cluster": cluster, "pool": pool, "image": IMAGE, "model_uri": "pvc://models/recommender", "prepull_image": True})
        InferenceEndpoint("b", {"platform": "knative", "cluster": cluster, "pool": pool, "image": IMAGE, "min_scale": 1})

    result = run(program)
    services = result.by_type("kubernetes:serving.knative.dev/v1:Service")
    assert len(services) == 2
    assert len(result.by_type("kubernetes:operator.knative.dev/v1beta1:KnativeServing")) == 1  # installed once per cluster
    a = next(s for s in services if s.name == "a-service")
    assert_knative_service_shape(a)
    pod = a.inputs["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "models"
    assert "/models/recommender" in pod["containers"][0]["args"]
    assert result.one("kubernetes:apps/v1:DaemonSet").name == "a-prepull"
    validate_all_core_objects(result)


def test_timeouts_are_derived_from_the_cold_start_budget():
    facts_cluster = None

    def program():
        nonlocal facts_cluster
        facts_cluster = KubernetesCluster("local", {"cloud": "existing"})

    run(program)
    plan = plan_endpoint("e", {"platform": "knative", "cluster": facts_cluster, "image": IMAGE, "model_size_gib": 20, "image_size_gib": 10, "cold_start_budget": {"node_provision_seconds": 90}})
    phases = {k: v for k, v in plan.budget.to_json().items() if k != "basis"}
    assert phases == {"nodeProvisionSeconds": 90, "imagePullSeconds": 100, "weightsFetchSeconds": 0, "weightsLoadSeconds": 40, "engineStartSeconds": 15, "totalSeconds": 245}
    assert plan.timeouts.startup_probe_seconds == 155
    assert plan.timeouts.request_timeout_seconds == 245 + 60
    assert plan.timeouts.progress_deadline_seconds >= plan.budget.total_seconds


def test_cloud_run_l4_endpoint():
    def program():
        InferenceEndpoint("recs", {"platform": "cloud-run", "region": "us-central1", "project": "p", "image": IMAGE, "model_uri": "gs://models/recs", "invokers": ["serviceAccount:app@p.iam.gserviceaccount.com", "allUsers"]})

    result = run(program)
    svc = result.one("gcp:cloudrunv2/service:Service")
    t = svc.inputs["template"]
    assert svc.inputs["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    assert t["scaling"]["minInstanceCount"] == 0
    assert t["nodeSelector"]["accelerator"] == "nvidia-l4"
    assert t["gpuZonalRedundancyDisabled"] is True
    c = t["containers"][0]
    assert c["resources"]["cpuIdle"] is False and c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    members = [r.inputs["member"] for r in result.by_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")]
    assert members == ["serviceAccount:app@p.iam.gserviceaccount.com"]  # allUsers is never granted
    assert result.one("gcp:storage/bucketIAMMember:BucketIAMMember").inputs["role"] == "roles/storage.objectViewer"


@pytest.mark.parametrize("mode", ["async", "inference-components"])
def test_sagemaker_scales_to_zero(mode):
    hold = mode == "async"

    def program():
        InferenceEndpoint("recs", {"platform": "sagemaker", "region": "us-east-1", "image": IMAGE, "model_uri": "s3://models/recs/model.tar.gz", "sagemaker_mode": mode, "hold_requests": hold})

    result = run(program)
    target = result.one("aws:appautoscaling/target:Target")
    assert target.inputs["minCapacity"] == 0
    expected_dim = "sagemaker:variant:DesiredInstanceCount" if mode == "async" else "sagemaker:inference-component:DesiredCopyCount"
    assert target.inputs["scalableDimension"] == expected_dim
    alarm = result.one("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarm.inputs["metricName"] == ("HasBacklogWithoutCapacity" if mode == "async" else "NoCapacityInvocationFailures")
    config = result.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    variant = config.inputs["productionVariants"][0]
    assert variant["instanceType"] == "ml.g6.xlarge"
    if mode == "async":
        assert "asyncInferenceConfig" in config.inputs
    else:
        assert variant["managedInstanceScaling"]["minInstanceCount"] == 0 and "modelName" not in variant
        assert result.one("aws-native:sagemaker:InferenceComponent").inputs["variantName"] == "main"


INVALID = [
    ({"platform": "sagemaker", "region": "us-east-1", "image": IMAGE, "sagemaker_mode": "inference-components"}, ["sagemaker-inference-components does not support request-holding", "NoCapacityInvocationFailures"]),
    ({"platform": "cloud-run", "region": "us-central1", "project": "p", "image": IMAGE, "cpu": 2}, ["below Cloud Run's L4 minimum of 4 vCPU and 16 GiB"]),
    ({"platform": "cloud-run", "region": "asia-northeast1", "project": "p", "image": IMAGE}, ["does not offer Cloud Run with L4"]),
    ({"platform": "cloud-run", "region": "us-central1", "project": "p", "image": IMAGE, "public": True, "auth": "none"}, ["a public endpoint needs authentication"]),
    ({"platform": "cloud-run", "region": "us-central1", "project": "p", "image": IMAGE, "max_request_bytes": 64 * 1024 * 1024}, ["cloud-run does not support large-requests"]),
    ({"platform": "sagemaker", "region": "us-east-1", "image": IMAGE, "model_uri": "gs://x/y"}, ["SageMaker reads model data from S3 only"]),
    ({"platform": "knative", "image": IMAGE}, ["cluster = None: is required for knative"]),
    ({"platform": "lambda", "image": IMAGE}, ["platform = 'lambda'"]),
    ({"platform": "sagemaker", "region": "us-east-1", "image": IMAGE, "min_scale": 3, "max_scale": 1}, ["max_scale = 1: is below min_scale=3"]),
]


@pytest.mark.parametrize(("args", "fragments"), INVALID, ids=[f[0] for _, f in INVALID])
def test_bad_endpoints_are_rejected_before_anything_exists(args, fragments):
    with pytest.raises(ComponentInputError) as exc:
        plan_endpoint("e", args)
    for fragment in fragments:
        assert fragment in str(exc.value), str(exc.value)


def test_rejected_endpoint_registers_nothing():
    def program():
        InferenceEndpoint("e", {"platform": "cloud-run", "region": "us-central1", "project": "p", "image": IMAGE, "cpu": 1})

    with pytest.raises(ComponentInputError):
        run(program)


@pytest.mark.parametrize(("kubernetes", "serving"), [("1.33", "1.21"), ("1.34", "1.23"), ("1.35", "1.23"),
                                                     ("v1.33.13", "1.21"), (None, "1.23")])
def test_knative_serving_release_follows_the_clusters_kubernetes(kubernetes, serving):
    """Serving 1.22 and 1.23 refuse Kubernetes 1.33 (knative.dev/pkg version/version.go, seen on the sandbox's
    1.33.13 with v0.50.0's controller: "Version check failed"); gpuplane's default cluster is 1.33."""
    from components.inference.planner import knative_serving_version

    assert knative_serving_version(kubernetes) == serving


def test_knative_on_a_default_cluster_installs_a_serving_release_that_runs_on_it():
    def program():
        cluster = KubernetesCluster("local", {"cloud": "existing"})
        InferenceEndpoint("recs", {"platform": "knative", "cluster": cluster, "image": IMAGE})

    serving = run(program).one("kubernetes:operator.knative.dev/v1beta1:KnativeServing")
    assert serving.inputs["spec"]["version"] == "1.21"


def test_knative_install_on_a_cluster_older_than_every_serving_release_is_refused():
    def program():
        cluster = KubernetesCluster("old", {"cloud": "gcp", "region": "us-central1", "project": "p",
                                            "kubernetes_version": "1.31"})
        InferenceEndpoint("recs", {"platform": "knative", "cluster": cluster, "image": IMAGE})

    with pytest.raises(ComponentInputError, match=r"cluster.kubernetes_version.*1\.31.*1\.33 or newer"):
        run(program)
