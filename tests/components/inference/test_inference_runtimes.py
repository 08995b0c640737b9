"""Bring your own model server: each runtime (reference / vllm / custom) on each platform.

Mock-runtime tests assert the emitted objects (command, args, port, probes, volumes, identity);
Knative Services are checked against the documented shape with their pod spec validated as a
core PodSpec, and every core object in the run against the Kubernetes schema. The combinations a
platform cannot run fail before anything is created, naming the field, the value and the reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError
from components.inference import VLLM_IMAGE, InferenceEndpoint, plan_endpoint
from components.node_pool import GpuNodePool
from tests.components.inference.test_inference import assert_knative_service_shape
from tests.helpers import run, validate_all_core_objects

IMAGE = "ghcr.io/example/gpuplane-serving:1.0"
TGI = "ghcr.io/huggingface/text-generation-inference:3.0"
VLLM_GCS = "us-docker.pkg.dev/p/serving/vllm-openai-gcs:v0.11.0"
SM_VLLM = "123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm-sagemaker:v0.11.0"
CLOUD_RUN = {"platform": "cloud-run", "region": "us-central1", "project": "p"}
SAGEMAKER = {"platform": "sagemaker", "region": "us-east-1"}
CUSTOM_TGI = {"kind": "custom", "args": ["--model-id", "{model_dir}", "--port", "8080"], "port": 8080, "readiness_path": "/health", "protocol": "tgi"}


def _knative(endpoint: dict[str, Any], *, cloud: str = "existing", accelerators_per_node: int | None = None):
    """Run one Knative endpoint on a GPU pool; return (run, the Service, its container)."""

    def program():
        cluster_args: dict[str, Any] = {"cloud": cloud}
        if cloud == "aws":
            cluster_args["region"] = "us-east-1"
        cluster = KubernetesCluster("c", cluster_args)  # type: ignore[arg-type]
        pool_args: dict[str, Any] = {"cluster": cluster, "accelerator": "L4"}
        if accelerators_per_node:
            pool_args["accelerators_per_node"] = accelerators_per_node
        pool = GpuNodePool("gpus", pool_args)  # type: ignore[arg-type]
        InferenceEndpoint("llm", {"platform": "knative", "cluster": cluster, "pool": pool, **endpoint})  # type: ignore[typeddict-item]

    result = run(program)
    svc = result.one("kubernetes:serving.knative.dev/v1:Service")
    assert svc.parent.endswith("gpuplane:index:InferenceEndpoint::llm"), svc.urn
    assert_knative_service_shape(svc)
    validate_all_core_objects(result)
    return result, svc, svc.inputs["spec"]["template"]["spec"]["containers"][0]


# -- knative --------------------------------------------------------------------------------------


def test_reference_runtime_on_knative_is_todays_server():
    _, _svc, c = _knative({"image": IMAGE, "model_uri": "pvc://models/recs"})
    assert "command" not in c, "the reference image's entrypoint runs the server"
    assert c["args"][:2] == ["--model-dir", "/models/recs"]
    assert c["ports"] == [{"name": "http1", "containerPort": 8080}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_vllm_on_knative_serves_from_a_volume_with_its_health_route():
    _, svc, c = _knative({"runtime": {"kind": "vllm", "served_model_name": "llama-8b", "gpu_memory_utilization": 0.85, "max_model_len": 8192}, "model_uri": "pvc://models/llama-3.1-8b"})
    assert c["image"] == VLLM_IMAGE
    assert c["command"] == ["vllm", "serve"]
    args = c["args"]
    assert args[0] == "/models/llama-3.1-8b", args
    flags = dict(zip(args[1::2], args[2::2], strict=False))
    assert flags == {"--served-model-name": "llama-8b", "--port": "8000", "--tensor-parallel-size": "1", "--gpu-memory-utilization": "0.85", "--max-model-len": "8192"}
    assert c["ports"] == [{"name": "http1", "containerPort": 8000}]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": 8000}, probe
    # vllm/vllm-openai runs as root: the pod runs it as a user, caches on an emptyDir.
    assert c["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["runAsUser"] == 1000
    assert {"name": "HOME", "value": "/cache"} in c["env"]
    pod = svc.inputs["spec"]["template"]["spec"]
    assert {v["name"] for v in pod["volumes"]} == {"models", "cache", "dshm"}
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert "initContainers" not in pod, "weights on a PVC need no copy"


def test_vllm_on_eks_knative_tensor_parallel_equals_gpus_and_streams_from_s3_with_irsa():
    result, svc, c = _knative(
        {"runtime": {"kind": "vllm", "weights_loader": "stream", "extra_args": ["--enable-prefix-caching"]}, "model_uri": "s3://weights/llama-70b", "gpus": 4, "model_size_gib": 70},
        cloud="aws",
        accelerators_per_node=4,
    )
    args = c["args"]
    assert args[0] == "s3://weights/llama-70b", "the streamer reads the bucket itself"
    assert args[args.index("--tensor-parallel-size") + 1] == "4"
    assert args[args.index("--load-format") + 1] == "runai_streamer"
    assert args[-1] == "--enable-prefix-caching"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "4"
    pod = svc.inputs["spec"]["template"]["spec"]
    assert "initContainers" not in pod and "models" not in {v["name"] for v in pod["volumes"]}
    sa = next(r for r in result.by_type("kubernetes:core/v1:ServiceAccount") if r.name == "llm-sa")
    assert "eks.amazonaws.com/role-arn" in sa.inputs["metadata"]["annotations"], "the streamer reads S3 as the pod's IRSA role"
    dshm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert dshm["emptyDir"]["medium"] == "Memory"


def test_vllm_on_knative_downloads_from_a_bucket_with_the_sync_init_container():
    _, svc, c = _knative({"runtime": {"kind": "vllm"}, "model_uri": "s3://weights/qwen"})
    pod = svc.inputs["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["command"][:3] == ["aws", "s3", "sync"]
    assert c["args"][0] == "/models"


def test_vllm_bearer_token_reaches_vllm_as_its_api_key():
    _, _, c = _knative({"runtime": {"kind": "vllm"}, "model_uri": "pvc://m/x", "auth": "bearer-token", "auth_token_secret": "llm-token"})
    key = next(e for e in c["env"] if e["name"] == "VLLM_API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "llm-token", "key": "token"}


def test_custom_runtime_on_knative_runs_the_image_command_port_and_probes():
    _, _svc, c = _knative(
        {
            "image": TGI,
            "model_uri": "pvc://models/mistral",
            "runtime": {**CUSTOM_TGI, "command": ["text-generation-launcher"], "port": 8081, "args": ["--model-id", "{model_dir}", "--port", "8081"], "liveness_path": "/live"},
            "prepull_image": True,
        }
    )
    assert c["command"] == ["text-generation-launcher"]
    assert c["args"] == ["--model-id", "/models/mistral", "--port", "8081"]
    assert c["ports"] == [{"name": "http1", "containerPort": 8081}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8081}
    assert c["livenessProbe"]["httpGet"] == {"path": "/live", "port": 8081}


def test_custom_runtime_on_a_knative_reserved_port_is_rejected():
    def program():
        cluster = KubernetesCluster("c", {"cloud": "existing"})
        pool = GpuNodePool("gpus", {"cluster": cluster, "accelerator": "L4"})
        InferenceEndpoint("llm", {"platform": "knative", "cluster": cluster, "pool": pool, "image": TGI, "runtime": {**CUSTOM_TGI, "port": 8012}})

    with pytest.raises(ComponentInputError) as exc:
        run(program)
    assert "runtime.port = 8012: is reserved by Knative's queue-proxy" in str(exc.value)


# -- cloud run ------------------------------------------------------------------------------------


def _cloud_run(endpoint: dict[str, Any]):
    def program():
        InferenceEndpoint("llm", {**CLOUD_RUN, **endpoint})  # type: ignore[typeddict-item]

    result = run(program)
    svc = result.one("gcp:cloudrunv2/service:Service")
    assert svc.parent.endswith("gpuplane:index:InferenceEndpoint::llm"), svc.urn
    return result, svc.inputs["template"], svc.inputs["template"]["containers"][0]


def test_reference_runtime_on_cloud_run_is_unchanged():
    _, _t, c = _cloud_run({"image": IMAGE, "model_uri": "gs://models/recs"})
    assert "commands" not in c and c["args"][:2] == ["--model-dir", "/models/recs"]
    assert c["ports"]["containerPort"] == 8080 and c["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert "livenessProbe" not in c


def test_vllm_on_cloud_run_reads_the_gcs_mount():
    result, t, c = _cloud_run({"runtime": {"kind": "vllm"}, "model_uri": "gs://models/gemma-2b", "model_size_gib": 5})
    assert c["image"] == VLLM_IMAGE and c["commands"] == ["vllm", "serve"]
    assert c["args"][0] == "/models/gemma-2b"
    assert c["ports"]["containerPort"] == 8000
    assert c["startupProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert t["volumes"][0]["gcs"] == {"bucket": "models", "readOnly": True}
    assert result.one("gcp:storage/bucketIAMMember:BucketIAMMember").inputs["role"] == "roles/storage.objectViewer"


def test_vllm_on_cloud_run_streaming_mounts_nothing():
    # an image with runai-model-streamer[gcs] (vllm/vllm-openai:v0.11.0 has only [s3]: see test_inference_upstream.py)
    _, t, c = _cloud_run({"image": VLLM_GCS, "runtime": {"kind": "vllm", "weights_loader": "stream"}, "model_uri": "gs://models/gemma-2b"})
    assert c["args"][0] == "gs://models/gemma-2b" and "runai_streamer" in c["args"]
    assert "volumes" not in t and "volumeMounts" not in c


def test_custom_runtime_on_cloud_run():
    _, _t, c = _cloud_run({"image": TGI, "model_uri": "gs://models/mistral", "runtime": {**CUSTOM_TGI, "command": ["text-generation-launcher"]}})
    assert c["commands"] == ["text-generation-launcher"]
    assert c["args"] == ["--model-id", "/models/mistral", "--port", "8080"]
    assert c["startupProbe"]["httpGet"] == {"path": "/health", "port": 8080}


# -- sagemaker ------------------------------------------------------------------------------------


def _sagemaker(endpoint: dict[str, Any]):
    def program():
        InferenceEndpoint("llm", {**SAGEMAKER, **endpoint})  # type: ignore[typeddict-item]

    result = run(program)
    model = result.one("aws:sagemaker/model:Model")
    assert model.parent.endswith("gpuplane:index:InferenceEndpoint::llm"), model.urn
    return result, model.inputs["primaryContainer"]


def test_reference_runtime_on_sagemaker_is_unchanged():
    _, pc = _sagemaker({"image": IMAGE, "model_uri": "s3://models/recs/model.tar.gz"})
    assert pc["modelDataUrl"] == "s3://models/recs/model.tar.gz"
    assert pc["environment"] == {"GPUPLANE_MODEL_NAME": "recommender"}


def test_vllm_on_sagemaker_is_configured_through_sm_vllm_variables_with_model_data_from_s3():
    _, pc = _sagemaker({"image": SM_VLLM, "runtime": {"kind": "vllm", "served_model_name": "llama", "extra_args": ["--enable-prefix-caching", "--max-num-seqs", "64"]}, "model_uri": "s3://weights/llama-8b"})
    assert pc["image"] == SM_VLLM
    env = pc["environment"]
    assert env["SM_VLLM_MODEL"] == "/opt/ml/model"
    assert env["SM_VLLM_SERVED_MODEL_NAME"] == "llama"
    assert env["SM_VLLM_TENSOR_PARALLEL_SIZE"] == "1"  # ml.g6.xlarge: one L4
    assert env["SM_VLLM_ENABLE_PREFIX_CACHING"] == "" and env["SM_VLLM_MAX_NUM_SEQS"] == "64"
    s3 = pc["modelDataSource"]["s3DataSources"][0]
    assert s3 == {"s3Uri": "s3://weights/llama-8b/", "s3DataType": "S3Prefix", "compressionType": "None"}
    assert "modelDataUrl" not in pc


def test_vllm_on_sagemaker_streaming_reads_s3_itself():
    _, pc = _sagemaker({"image": SM_VLLM, "runtime": {"kind": "vllm", "weights_loader": "stream"}, "model_uri": "s3://weights/llama-8b"})
    assert pc["environment"]["SM_VLLM_MODEL"] == "s3://weights/llama-8b"
    assert pc["environment"]["SM_VLLM_LOAD_FORMAT"] == "runai_streamer"
    assert "modelDataSource" not in pc and "modelDataUrl" not in pc


def test_custom_runtime_that_honours_sagemakers_contract_runs():
    _, pc = _sagemaker({"image": TGI, "model_uri": "s3://weights/m.tar.gz", "runtime": {"kind": "custom", "readiness_path": "/ping", "protocol": "tgi"}})
    assert pc["image"] == TGI and pc["modelDataUrl"] == "s3://weights/m.tar.gz"


# -- what a platform cannot run fails first, with the reason -----------------------------------------

UNSUPPORTED = [
    (
        {**SAGEMAKER, "runtime": {"kind": "vllm"}, "model_uri": "s3://w/llama"},
        ["image = None: is required for vllm on SageMaker", "`docker run IMAGE serve`", "vllm-sagemaker"],
    ),
    (
        {**SAGEMAKER, "image": VLLM_IMAGE, "runtime": {"kind": "vllm"}, "model_uri": "s3://w/llama"},
        ["is vLLM's plain OpenAI image"],
    ),
    (
        {**SAGEMAKER, "image": TGI, "runtime": {**CUSTOM_TGI, "command": ["text-generation-launcher"]}},
        ["runtime.command = ['text-generation-launcher']: sagemaker-async does not support custom-command", "no command or args"],
    ),
    (
        {**SAGEMAKER, "image": TGI, "runtime": {"kind": "custom", "port": 80, "readiness_path": "/health", "protocol": "tgi"}},
        ["runtime.port = 80: sagemaker-async does not support custom-port", "runtime.readiness_path = '/health': sagemaker-async does not support custom-probes"],
    ),
    (
        {**SAGEMAKER, "image": IMAGE, "prepull_image": True},
        ["prepull_image = True: sagemaker-async does not support image-prepull"],
    ),
    (
        {**CLOUD_RUN, "image": IMAGE, "prepull_image": True},
        ["prepull_image = True: cloud-run does not support image-prepull", "imports the image"],
    ),
    (
        {**CLOUD_RUN, "runtime": {"kind": "vllm"}, "model_uri": "gs://m/llama-8b", "model_size_gib": 16, "image_size_gib": 10},
        ["cold_start_budget = '259 s = node 5 + image 100 + fetch 0 + load 64 + engine 90'", "Cloud Run startup probes give up after 240 s", "weights_loader='stream'"],
    ),
]


@pytest.mark.parametrize(("args", "fragments"), UNSUPPORTED, ids=["sagemaker-vllm-no-image", "sagemaker-vllm-plain-image", "sagemaker-custom-command", "sagemaker-custom-port-probes", "sagemaker-prepull", "cloud-run-prepull", "cloud-run-vllm-too-slow"])
def test_unsupported_runtime_combinations_fail_with_the_reason(args, fragments):
    with pytest.raises(ComponentInputError) as exc:
        plan_endpoint("e", args)
    for fragment in fragments:
        assert fragment in str(exc.value), str(exc.value)


BAD_RUNTIMES = [
    ({"kind": "tgi"}, {}, "runtime.kind = 'tgi': is not a serving runtime"),
    ({"kind": "vllm"}, {}, "model_uri = None: is required with runtime.kind='vllm'"),
    ({"kind": "vllm", "gpu_memory_utilization": 1.5}, {"model_uri": "gs://m/x"}, "runtime.gpu_memory_utilization = 1.5: must be a fraction in (0, 1]"),
    ({"kind": "vllm", "weights_loader": "stream"}, {"model_uri": "pvc://m/x"}, "streams only from s3:// or gs://"),
    ({"kind": "vllm", "extra_args": ["--tensor-parallel-size", "2"]}, {"model_uri": "gs://m/x"}, "runtime.extra_args = '--tensor-parallel-size': is set by gpuplane"),
    ({"kind": "vllm", "port": 9000}, {"model_uri": "gs://m/x"}, "runtime.port = 9000: applies to runtime kind 'custom', not 'vllm'"),
    ({"kind": "reference", "served_model_name": "x"}, {}, "runtime.served_model_name = 'x': applies to runtime kind 'vllm'"),
    ({"kind": "custom", "protocol": "openai"}, {"image": TGI}, "runtime.readiness_path = None: is required for a custom runtime"),
    ({"kind": "custom", "readiness_path": "/health"}, {"image": TGI}, "runtime.protocol = None: is required for a custom runtime"),
    ({"kind": "custom", "readiness_path": "/health", "protocol": "grpc"}, {"image": TGI}, "runtime.protocol = 'grpc'"),
    ({"kind": "custom", "readiness_path": "/h", "protocol": "tgi", "args": "--port 80"}, {"image": TGI}, "runtime.args = '--port 80': must be a list of strings"),
    ({"kind": "custom", "readiness_path": "/h", "protocol": "tgi"}, {}, "image = None: is required for a custom runtime"),
    ({"kind": "vllm", "tensor_parallel": 2}, {"model_uri": "gs://m/x"}, "runtime.tensor_parallel = 2: is not a runtime field"),
]


@pytest.mark.parametrize(("runtime", "extra", "fragment"), BAD_RUNTIMES, ids=[f for _, _, f in BAD_RUNTIMES])
def test_bad_runtime_is_rejected_naming_field_value_and_fix(runtime, extra, fragment):
    with pytest.raises(ComponentInputError) as exc:
        plan_endpoint("e", {**CLOUD_RUN, "runtime": runtime, **extra})  # type: ignore[typeddict-item]
    assert fragment in str(exc.value), str(exc.value)
    assert "To fix:" in str(exc.value)


def test_vllm_needs_a_gpu_on_knative():
    def program():
        cluster = KubernetesCluster("c", {"cloud": "existing"})
        InferenceEndpoint("llm", {"platform": "knative", "cluster": cluster, "runtime": {"kind": "vllm"}, "model_uri": "pvc://m/x"})

    with pytest.raises(ComponentInputError) as exc:
        run(program)
    assert "vLLM serves on GPUs and this endpoint has none" in str(exc.value)


def test_runtime_and_protocol_are_in_the_summary_and_outputs():
    def program():
        InferenceEndpoint("llm", {**CLOUD_RUN, "runtime": {"kind": "vllm"}, "model_uri": "gs://m/x"})  # type: ignore[typeddict-item]

    result = run(program)
    comp = result.one("gpuplane:index:InferenceEndpoint")
    summary = comp.inputs["gpuplane"]
    assert summary["readinessPath"] == "/health"
    assert summary["runtime"]["kind"] == "vllm" and summary["runtime"]["protocol"] == "openai" and summary["runtime"]["metricsPath"] == "/metrics"
    assert summary["coldStartBudget"]["engineStartSeconds"] == 90


def test_stack_config_takes_the_runtime_in_camel_case_and_rejects_unknown_keys():
    from stacks.config import StackConfigError, parse_config

    base = {"gpuplane:cluster": {"cloud": "gcp", "region": "us-central1", "project": "p"}}
    endpoint = {"name": "chat", "platform": "cloud-run", "modelUri": "gs://m/x", "runtime": {"kind": "vllm", "servedModelName": "g", "weightsLoader": "stream", "gpuMemoryUtilization": 0.8}}
    cfg = parse_config({**base, "gpuplane:inferenceEndpoints": [endpoint]})
    rt = cfg.inference_endpoints[0].runtime
    assert rt is not None and rt.component_args() == {"kind": "vllm", "served_model_name": "g", "weights_loader": "stream", "gpu_memory_utilization": 0.8}
    with pytest.raises(StackConfigError) as exc:
        parse_config({**base, "gpuplane:inferenceEndpoints": [{**endpoint, "runtime": {"kind": "vllm", "tensorParallel": 2}}]})
    assert "gpuplane:inferenceEndpoints[0].runtime.tensorParallel: Extra inputs are not permitted" in str(exc.value)
