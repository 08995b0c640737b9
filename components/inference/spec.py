"""InferenceEndpoint's spec: constants, args, the declared features of every platform, the plan
dataclasses and the cold-start budget planner (``plan_cold_start``).

The cold-start budget has five phases: node provisioning, image pull, weight fetch (bucket to a
local volume), weight load (into GPU memory) and engine start (process, CUDA init, vLLM's
compile and CUDA-graph capture). Weight phases are the model's size over the bandwidth of the
path the platform offers (components/catalog/data/storage_bandwidth.csv, each row with its
source); engine start is a per-runtime catalog fact. Every timeout that could cut a cold start short
(Knative progress deadline and revision timeout, startup probes, SageMaker health-check and
download timeouts) is derived from it — the failure users report when a GPU node start outlasts
a default deadline (knative/serving#13208, kserve/kserve#1247).

Pure: creates nothing. ``planner.py`` turns args into an ``EndpointPlan``; ``canary.py`` plans
the endpoint's canary; the backends are ``knative.py``, ``cloud_run.py`` and ``sagemaker.py``;
``component.py`` (whose module docstring describes the platforms) validates, plans and dispatches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Required, TypedDict

import pulumi

from components.catalog import Catalog
from components.cluster import KubernetesCluster
from components.errors import Problems
from components.features import Feature, FeatureSupport
from components.inference.canary import EndpointCanaryArgs
from components.node_pool import GpuNodePool

TYPE_TOKEN = "gpuplane:index:InferenceEndpoint"
SERVING_PORT = 8080
READINESS_PATH = "/v2/health/ready"
LIVENESS_PATH = "/v2/health/live"
METRICS_PATH = "/metrics"
# vLLM's OpenAI-compatible server (docs.vllm.ai serve CLI): port 8000, liveness/readiness on
# /health, Prometheus metrics on /metrics. The image's entrypoint is ``vllm serve``; gpuplane
# sets the command explicitly so a derived image with another entrypoint still serves.
VLLM_IMAGE = "vllm/vllm-openai:v0.11.0"
VLLM_PORT = 8000
VLLM_HEALTH_PATH = "/health"
VLLM_COMMAND = ("vllm", "serve")
# SageMaker's container contract: GET /ping and POST /invocations on port 8080.
# https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html
SAGEMAKER_PORT = 8080
SAGEMAKER_PING_PATH = "/ping"
# Ports Knative's queue-proxy keeps for itself (knative.dev/serving pkg/apis/serving/k8s_validation.go).
KNATIVE_RESERVED_PORTS = frozenset({8008, 8012, 8013, 8022, 9090, 9091})
PROTOCOLS = ("oip", "openai", "tgi", "triton", "other")
RUNTIMES = ("reference", "vllm", "custom")
CLOUD_RUN_INSTANCE_START_SECONDS = 5
CLOUD_RUN_STARTUP_PROBE_MAX_SECONDS = 240
SAGEMAKER_INSTANCE_START_SECONDS = 300
SAGEMAKER_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
SAGEMAKER_ASYNC_MAX_PAYLOAD_BYTES = 1024**3
CLOUD_RUN_MAX_REQUEST_BYTES = 32 * 1024 * 1024
CLOUD_RUN_GPUS = {"L4": "nvidia-l4"}


class ColdStartBudgetArgs(TypedDict, total=False):
    """Seconds each cold-start phase may take; unset phases are derived from the catalog."""

    node_provision_seconds: int
    """Time for a new GPU node to join. Default: the cloud's figure in the catalog (0 when the pool keeps a node; the instance start on serverless)."""
    image_pull_seconds: int
    """Time to pull the image. Default: image_size_gib over the catalog's registry-pull bandwidth."""
    weights_fetch_seconds: int
    """Time to copy the weights to a local volume before the server starts (bucket sync, SageMaker model download). Default: model_size_gib over the path's bandwidth; 0 when weights are mounted, streamed or in the image."""
    weights_load_seconds: int
    """Time to read the weights into GPU memory. Default: model_size_gib over the slower of the loader and the volume (or the streamer's bandwidth)."""
    engine_start_seconds: int
    """Process start, CUDA init and warm-up (vLLM: compile and CUDA-graph capture), excluding weights. Default: the runtime's figure in the catalog."""


class ServingRuntimeArgs(TypedDict, total=False):
    """The model server: gpuplane's reference OIP server, vLLM, or any image you bring."""

    kind: Literal["reference", "vllm", "custom"]
    """``reference`` (workloads/serving: OIP v2 on 8080), ``vllm`` (``vllm serve``: OpenAI-compatible API on 8000, readiness on /health) or ``custom`` (your image, command, port, probes). Default ``reference``."""
    served_model_name: str
    """vllm: ``--served-model-name``, the ``model`` clients name in requests. Default: ``model_name``."""
    gpu_memory_utilization: float
    """vllm: ``--gpu-memory-utilization``, fraction of each GPU's memory for weights and KV cache, in (0, 1]. Default 0.9."""
    max_model_len: int
    """vllm: ``--max-model-len``, context length in tokens. Default: the model's own."""
    weights_loader: Literal["download", "stream"]
    """vllm: ``download`` (weights copied or mounted to a local path, then loaded) or ``stream`` (``--load-format runai_streamer`` reads s3:// or gs:// straight into GPU memory with the endpoint's identity). Default ``download``."""
    extra_args: list[str]
    """vllm: more ``vllm serve`` flags, e.g. ``["--enable-prefix-caching"]``. Default none."""
    command: list[str]
    """custom: the container command (entrypoint). Default: the image's."""
    args: list[str]
    """custom: the container arguments; ``{model_dir}`` in an argument becomes the weights' local path. Default: the image's."""
    port: int
    """custom: the HTTP port the server listens on. Default 8080."""
    readiness_path: str
    """custom: HTTP path that answers 200 once the model is loaded (startup and readiness probes). Required for custom."""
    liveness_path: str
    """custom: HTTP path that answers 200 while the process is healthy (liveness probe). Default: readiness_path."""
    protocol: Literal["oip", "openai", "tgi", "triton", "other"]
    """custom: the API the server speaks (recorded in the plan and outputs for clients). Required for custom."""


class InferenceEndpointArgs(TypedDict, total=False):
    """Arguments of ``InferenceEndpoint``."""

    platform: Required[Literal["knative", "cloud-run", "sagemaker"]]
    """Where the endpoint runs: ``knative`` (any cluster), ``cloud-run`` (GCP, L4) or ``sagemaker`` (AWS)."""
    image: NotRequired[pulumi.Input[str]]
    """Container image of the model server. Required for the reference runtime (workloads/serving/Dockerfile, OIP v2 on 8080) and custom; vllm defaults to ``vllm/vllm-openai:v0.11.0`` (on SageMaker give a SageMaker build of vLLM)."""
    runtime: NotRequired[ServingRuntimeArgs]
    """The model server and its protocol; see ServingRuntimeArgs. Default: the reference OIP server."""
    model_uri: NotRequired[str]
    """Where the weights come from: ``s3://bucket/prefix``, ``gs://bucket/prefix`` or ``pvc://claim/path``. Default: baked into the image (required for vllm)."""
    model_name: NotRequired[str]
    """Model name (OIP model name; vllm's default ``--served-model-name``). Default ``recommender``."""
    model_size_gib: NotRequired[float]
    """Size of the weights, GiB (drives the cold-start budget). Default 1."""
    image_size_gib: NotRequired[float]
    """Size of the image, GiB (drives the cold-start budget). Default 8."""
    cluster: NotRequired[KubernetesCluster]
    """knative: the cluster to run on. Required for knative."""
    pool: NotRequired[GpuNodePool]
    """knative: the GPU pool to run on. Default: none (CPU)."""
    knative: NotRequired[Literal["install", "present"]]
    """knative: install Knative Serving (operator + Kourier) or use the one already there. Default ``install`` (once per cluster)."""
    namespace: NotRequired[str]
    """knative: namespace, created by the component. Default ``inference``."""
    region: NotRequired[str]
    """cloud-run / sagemaker: region. Required for those platforms."""
    project: NotRequired[pulumi.Input[str]]
    """cloud-run: GCP project id. Required for cloud-run."""
    accelerator: NotRequired[str]
    """cloud-run / sagemaker: GPU by catalog name. Default ``L4``. (knative takes the pool's.)"""
    instance_type: NotRequired[str]
    """sagemaker: ``ml.*`` instance type. Default: the cheapest with the accelerator in the catalog."""
    sagemaker_mode: NotRequired[Literal["inference-components", "async"]]
    """sagemaker: real-time inference components or async inference. Default ``async`` (it holds requests)."""
    gpus: NotRequired[int]
    """GPUs per replica. Default 1 (0 for a knative endpoint without a pool)."""
    cpu: NotRequired[float]
    """vCPUs per replica. Default 4 (Cloud Run's minimum with an L4); on a GPU pool at most the node's vCPUs less 0.5 (catalog), so a g6.xlarge gets 3.5."""
    memory_gib: NotRequired[float]
    """Memory per replica, GiB. Default 16; on a GPU pool at most 90 % of the node's memory (catalog), so a g6.xlarge gets 14.25."""
    min_scale: NotRequired[int]
    """Fewest replicas. Default 0 (scale to zero)."""
    max_scale: NotRequired[int]
    """Most replicas. Default 4."""
    target_concurrency: NotRequired[int]
    """In-flight requests per replica before scaling out. Default 8."""
    scale_down_delay_seconds: NotRequired[int]
    """Keep-alive after the last request before scaling down (Knative scale-down-delay). Default 300."""
    request_timeout_seconds: NotRequired[int]
    """Longest a warm request may take. Default 60."""
    cold_start_budget: NotRequired[ColdStartBudgetArgs]
    """Override cold-start phases; see ColdStartBudgetArgs."""
    hold_requests: NotRequired[bool]
    """Require that requests arriving at zero are held, not failed. Default True."""
    streaming: NotRequired[bool]
    """Require streaming responses. Default False."""
    max_request_bytes: NotRequired[int]
    """Largest request body to accept, bytes. Default 1 MiB."""
    public: NotRequired[bool]
    """Expose outside the cluster/VPC. Default False; True needs ``auth``."""
    auth: NotRequired[Literal["none", "iam", "bearer-token"]]
    """``iam`` (Cloud Run invoker / SageMaker SigV4), ``bearer-token`` (the server's token file from a Secret), or ``none``. Default ``iam`` where the platform has it, else ``none``."""
    auth_token_secret: NotRequired[str]
    """knative + bearer-token: name of a Kubernetes Secret (key ``token``) in the namespace."""
    invokers: NotRequired[list[str]]
    """cloud-run + iam: members allowed to invoke, e.g. ``serviceAccount:app@p.iam.gserviceaccount.com``."""
    prepull_image: NotRequired[bool]
    """knative: a DaemonSet that pre-pulls the image on the pool's nodes (declared missing on cloud-run and sagemaker, with the reason). Default False."""
    zonal_redundancy: NotRequired[bool]
    """cloud-run: GPU zonal redundancy (dearer, survives a zone outage). Default False."""
    deletion_protection: NotRequired[bool]
    """cloud-run: protect the service from deletion. Default False (the stack decides)."""
    feature_server_url: NotRequired[pulumi.Input[str]]
    """knative: the Feast feature server (a FeatureStore's ``online_endpoint``); lets requests send ``user_id``."""
    env: NotRequired[dict[str, str]]
    """Extra environment variables for the server."""
    tags: NotRequired[dict[str, str]]
    """Tags/labels on every taggable child (team, cost-center)."""
    rollout_managed_by: NotRequired[Literal["iac", "pipeline"]]
    """Who owns the served revision of a Knative endpoint: ``iac`` (each ``pulumi up`` applies the
    program's template and traffic) or ``pipeline`` (a ModelPipeline's canary patches the Service:
    ``spec.traffic``, the revision name and the fetch-model command; Pulumi ignores those paths so an
    update never reverts a promotion). A ModelPipeline with a canary requires ``pipeline``. Default ``iac``."""
    canary: NotRequired[EndpointCanaryArgs]
    """Serve ``model_uri`` as a challenger beside the champion revision at ``percent`` of traffic (Knative
    revision tags, Cloud Run revision traffic); see components/inference/canary.py. Default: none (100% latest)."""


# Bring-your-own-server and large-model cold-start aids, shared by both SageMaker modes.
_SAGEMAKER_SERVER_GAPS = {
    Feature.CUSTOM_COMMAND: "SageMaker starts every container as `docker run IMAGE serve` and a ContainerDefinition has "
    "no command or args; bake them into the image's entrypoint (vllm is configured through SM_VLLM_* variables instead)",
    Feature.CUSTOM_PORT: f"SageMaker sends /ping and /invocations to port {SAGEMAKER_PORT} only",
    Feature.CUSTOM_PROBES: f"SageMaker's health check is GET {SAGEMAKER_PING_PATH}; it has no configurable readiness or liveness path",
    Feature.IMAGE_PREPULL: "SageMaker pulls the image from ECR onto each instance it launches; there is no hook to "
    "pre-pull onto instances that do not exist yet",
}
_SAGEMAKER_SERVER = frozenset({Feature.WEIGHTS_VOLUME, Feature.STREAMING_WEIGHT_LOADER})

FEATURES: dict[str, FeatureSupport] = {
    "knative": FeatureSupport(
        "knative",
        frozenset(
            {
                Feature.SCALE_TO_ZERO,
                Feature.REQUEST_HOLDING,
                Feature.GPU_SHARING,
                Feature.STREAMING,
                Feature.LARGE_REQUESTS,
                Feature.CUSTOM_COMMAND,
                Feature.CUSTOM_PORT,
                Feature.CUSTOM_PROBES,
                Feature.IMAGE_PREPULL,
                Feature.WEIGHTS_VOLUME,
                Feature.STREAMING_WEIGHT_LOADER,
            }
        ),
    ),
    "cloud-run": FeatureSupport(
        "cloud-run",
        frozenset(
            {
                Feature.SCALE_TO_ZERO,
                Feature.REQUEST_HOLDING,
                Feature.STREAMING,
                Feature.CUSTOM_COMMAND,
                Feature.CUSTOM_PORT,
                Feature.CUSTOM_PROBES,
                Feature.WEIGHTS_VOLUME,
                Feature.STREAMING_WEIGHT_LOADER,
            }
        ),
        {
            Feature.GPU_SHARING: "Cloud Run attaches one whole L4 to each instance",
            Feature.LARGE_REQUESTS: "Cloud Run caps HTTP/1 request bodies at 32 MiB",
            Feature.IMAGE_PREPULL: "Cloud Run imports the image into its own storage at deploy time and has no node to "
            "pre-pull onto; keep large weights out of the image (Cloud Run GPU best practices)",
        },
    ),
    "sagemaker-inference-components": FeatureSupport(
        "sagemaker-inference-components",
        frozenset({Feature.SCALE_TO_ZERO, Feature.GPU_SHARING, Feature.STREAMING, *_SAGEMAKER_SERVER}),
        {
            Feature.REQUEST_HOLDING: "at zero copies invocations fail with NoCapacityInvocationFailures until the alarm "
            "scales a copy out; clients must retry (use sagemaker_mode='async' to hold requests)",
            Feature.LARGE_REQUESTS: "real-time payloads are capped at 6 MB (use sagemaker_mode='async' for up to 1 GB)",
            **_SAGEMAKER_SERVER_GAPS,
        },
    ),
    "sagemaker-async": FeatureSupport(
        "sagemaker-async",
        frozenset({Feature.SCALE_TO_ZERO, Feature.REQUEST_HOLDING, Feature.LARGE_REQUESTS, *_SAGEMAKER_SERVER}),
        {
            Feature.GPU_SHARING: "an async variant owns its instances",
            Feature.STREAMING: "async results are written to S3, not streamed",
            **_SAGEMAKER_SERVER_GAPS,
        },
    ),
}


@dataclass(frozen=True)
class ColdStartBudget:
    """Seconds each phase of a cold start may take, and the facts they were derived from."""

    node_provision_seconds: int
    image_pull_seconds: int
    weights_fetch_seconds: int
    """Bucket to local volume before the server starts (0 when mounted, streamed or baked in)."""
    weights_load_seconds: int
    """Into GPU memory, at the slower of the loader and the volume, or at the streamer's rate."""
    engine_start_seconds: int
    runtime: str = "reference"
    model_size_gib: float = 1.0
    fetch_path: str | None = None
    """storage_bandwidth.csv path of the fetch, None when there is none."""
    load_path: str = "safetensors-load"
    """storage_bandwidth.csv path that bounds the load."""
    load_gib_per_second: float = 0.5

    @property
    def startup_seconds(self) -> int:
        """What a startup probe must cover: everything after the node is there."""
        return self.image_pull_seconds + self.weights_fetch_seconds + self.weights_load_seconds + self.engine_start_seconds

    @property
    def total_seconds(self) -> int:
        return self.node_provision_seconds + self.startup_seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "nodeProvisionSeconds": self.node_provision_seconds,
            "imagePullSeconds": self.image_pull_seconds,
            "weightsFetchSeconds": self.weights_fetch_seconds,
            "weightsLoadSeconds": self.weights_load_seconds,
            "engineStartSeconds": self.engine_start_seconds,
            "totalSeconds": self.total_seconds,
            "basis": {
                "runtime": self.runtime,
                "modelSizeGib": self.model_size_gib,
                "fetchPath": self.fetch_path,
                "loadPath": self.load_path,
                "loadGibPerSecond": self.load_gib_per_second,
            },
        }

    def phases_text(self) -> str:
        """One line for people: ``245 s = node 90 + image 100 + fetch 0 + load 40 + engine 15``."""
        return (
            f"{self.total_seconds} s = node {self.node_provision_seconds} + image {self.image_pull_seconds} + fetch "
            f"{self.weights_fetch_seconds} + load {self.weights_load_seconds} + engine {self.engine_start_seconds}"
        )


BUDGET_PHASES = ("node_provision_seconds", "image_pull_seconds", "weights_fetch_seconds", "weights_load_seconds", "engine_start_seconds")


def weight_paths(platform: str, cloud: str, model_uri: str | None, loader: str) -> tuple[str | None, str]:
    """(fetch path, load path) in storage_bandwidth.csv for where the weights live and how they load."""
    scheme = model_uri.split("://", 1)[0] if model_uri and "://" in model_uri else None
    if loader == "stream" and scheme in ("s3", "gs"):
        return None, "s3-stream" if scheme == "s3" else "gcs-stream"
    if scheme == "pvc":
        return None, {"aws": "pvc-ebs-gp3", "gcp": "pvc-pd-balanced"}.get(cloud, "pvc-unknown")
    if scheme is None:
        return None, "safetensors-load"  # in the image: read from the node's disk
    if platform == "cloud-run":
        return None, "cloud-run-gcs-mount"  # mounted through Cloud Storage FUSE, read while loading
    if platform == "sagemaker":
        return "sagemaker-s3-model-data", "safetensors-load"
    return ("s3-sync" if scheme == "s3" else "gcs-sync"), "safetensors-load"


def plan_cold_start(
    p: Problems,
    *,
    platform: str,
    cloud: str,
    runtime: str,
    model_uri: str | None,
    loader: str,
    model_size_gib: float,
    image_size_gib: float,
    node_provision_seconds: int,
    overrides: ColdStartBudgetArgs | dict[str, Any],
    catalog: Catalog,
) -> ColdStartBudget:
    """The cold-start budget, phase by phase (pure; overrides replace derived phases)."""
    fetch_path, load_path = weight_paths(platform, cloud, model_uri, loader)
    loader_rate = catalog.bandwidth("safetensors-load").gib_per_second
    load_rate = catalog.bandwidth(load_path).gib_per_second
    if load_path not in ("s3-stream", "gcs-stream"):
        load_rate = min(load_rate, loader_rate)  # a fast volume still waits on the loader
    derived = {
        "node_provision_seconds": node_provision_seconds,
        "image_pull_seconds": math.ceil(image_size_gib / catalog.bandwidth("registry-pull").gib_per_second),
        "weights_fetch_seconds": math.ceil(model_size_gib / catalog.bandwidth(fetch_path).gib_per_second) if fetch_path else 0,
        "weights_load_seconds": math.ceil(model_size_gib / load_rate),
        "engine_start_seconds": catalog.engine_start(runtime).seconds,
    }
    if not isinstance(overrides, dict):
        p.add("cold_start_budget", overrides, "must be a mapping of phase to seconds.", f"use keys from {list(BUDGET_PHASES)}.")
        overrides = {}
    given: dict[str, Any] = dict(overrides)
    for key in sorted(set(given) - set(BUDGET_PHASES)):
        p.add(f"cold_start_budget.{key}", given[key], "is not a cold-start phase.", f"use one of {list(BUDGET_PHASES)}.")
    for key in BUDGET_PHASES:
        if key in given:
            value = given[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                p.add(f"cold_start_budget.{key}", value, "must be a whole number of seconds, 0 or more.", "give the seconds the phase takes.")
            else:
                derived[key] = value
    return ColdStartBudget(
        **derived,
        runtime=runtime,
        model_size_gib=model_size_gib,
        fetch_path=fetch_path,
        load_path=load_path,
        load_gib_per_second=load_rate,
    )


@dataclass(frozen=True)
class RuntimePlan:
    """The model server's contract: what runs, on which port, answering which probes."""

    kind: str
    protocol: str
    port: int
    readiness_path: str
    liveness_path: str
    command: tuple[str, ...] | None = None
    """None: the image's entrypoint."""
    args: tuple[str, ...] = ()
    """custom: the arguments as given ({model_dir} unresolved); vllm: extra flags."""
    served_model_name: str | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    weights_loader: str = "download"
    tensor_parallel_size: int = 1

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "protocol": self.protocol,
            "port": self.port,
            "readinessPath": self.readiness_path,
            "livenessPath": self.liveness_path,
            "metricsPath": METRICS_PATH if self.kind in ("reference", "vllm") else None,
            "servedModelName": self.served_model_name,
            "tensorParallelSize": self.tensor_parallel_size if self.kind == "vllm" else None,
            "weightsLoader": self.weights_loader,
        }


REFERENCE_RUNTIME = RuntimePlan("reference", "oip", SERVING_PORT, READINESS_PATH, LIVENESS_PATH)


@dataclass(frozen=True)
class Timeouts:
    """Every deadline that could cut a cold start short, derived from the budget."""

    startup_probe_seconds: int
    """Startup probe period x failure threshold: covers image pull + model load."""
    progress_deadline_seconds: int
    """Knative revision progress deadline: the whole budget with 50% headroom."""
    request_timeout_seconds: int
    """Longest a request may wait plus run: the whole budget (held at zero) + the warm timeout."""


@dataclass(frozen=True)
class EndpointPlan:
    name: str
    platform: str
    implementation: str
    cloud: str
    region: str | None
    model_name: str
    model_uri: str | None
    accelerator: str | None
    instance_type: str | None
    gpus: int
    cpu: float
    memory_gib: float
    min_scale: int
    max_scale: int
    target_concurrency: int
    scale_down_delay_seconds: int
    budget: ColdStartBudget
    timeouts: Timeouts
    public: bool
    auth: str
    namespace: str
    knative: str
    sagemaker_mode: str | None
    prepull_image: bool
    zonal_redundancy: bool
    deletion_protection: bool
    max_request_bytes: int
    env: dict[str, str]
    tags: dict[str, str]
    features: FeatureSupport
    runtime: RuntimePlan = REFERENCE_RUNTIME
    rollout_managed_by: str = "iac"
    """``iac`` or ``pipeline`` (see InferenceEndpointArgs.rollout_managed_by)."""
    image: Any = None
    """The image to run (the runtime's default when none was given); may be a pulumi Output."""
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The plan as the component's registered ``gpuplane`` input (read by policies and the cost model)."""
        return {
            "rolloutManagedBy": self.rollout_managed_by,
            "platform": self.platform,
            "implementation": self.implementation,
            "cloud": self.cloud,
            "region": self.region,
            "modelName": self.model_name,
            "modelUri": self.model_uri,
            "accelerator": self.accelerator,
            "instanceType": self.instance_type,
            "gpus": self.gpus,
            "cpu": self.cpu,
            "memoryGib": self.memory_gib,
            "minScale": self.min_scale,
            "maxScale": self.max_scale,
            "targetConcurrency": self.target_concurrency,
            "scaleDownDelaySeconds": self.scale_down_delay_seconds,
            "coldStartBudget": self.budget.to_json(),
            "timeouts": {
                "startupProbeSeconds": self.timeouts.startup_probe_seconds,
                "progressDeadlineSeconds": self.timeouts.progress_deadline_seconds,
                "requestTimeoutSeconds": self.timeouts.request_timeout_seconds,
            },
            "readinessPath": self.runtime.readiness_path,
            "runtime": self.runtime.summary(),
            "public": self.public,
            "auth": self.auth,
            "holdsRequests": self.features.supports(Feature.REQUEST_HOLDING),
            "zonalRedundancy": self.zonal_redundancy,
            "deletionProtection": self.deletion_protection,
            "pool": self.extra.get("pool"),
            "canary": self.extra["canary"].summary() if self.extra.get("canary") else None,
            "tags": dict(self.tags),
        }
