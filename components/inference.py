"""InferenceEndpoint: a model endpoint that scales to zero and holds requests while it cold-starts.

Implementations (``platform``):

- ``knative`` (components/kubernetes/inference.py) on any ``KubernetesCluster``: a Knative
  Service (min-scale 0 by default) whose activator holds requests while a revision scales
  from zero, on a ``GpuNodePool`` (GPU requests, tolerations, node selector) or on CPU; Knative
  installed through its operator, or declared present.
- ``cloud-run`` (components/gcp/inference.py): Cloud Run with an L4 GPU, min instances 0.
- ``sagemaker`` (components/aws/inference.py): real-time inference components scaled to zero
  (``sagemaker_mode="inference-components"``) or asynchronous inference scaled to zero on its
  backlog (``sagemaker_mode="async"``).

Serving runtimes (``runtime``): gpuplane's reference OIP server (default), vLLM (``vllm serve``
with its OpenAI-compatible API on port 8000, readiness on ``/health``, tensor parallel size = the
replica's GPUs), or a ``custom`` image (command, args, port, probes, protocol of your choosing).
Each platform honours a runtime or declares what it lacks (SageMaker starts containers as
``docker run IMAGE serve`` and calls ``/ping`` and ``/invocations`` on 8080: vLLM runs there only
from a SageMaker build of its image, configured through ``SM_VLLM_*`` variables).

The cold-start budget has five phases: node provisioning, image pull, weight fetch (bucket to a
local volume), weight load (into GPU memory) and engine start (process, CUDA init, vLLM's
compile and CUDA-graph capture). Weight phases are the model's size over the bandwidth of the
path the platform offers (components/catalog/data/storage_bandwidth.csv, each row with its
source); engine start is a per-runtime catalog fact. Every timeout that could cut a cold start short
(Knative progress deadline and revision timeout, startup probes, SageMaker health-check and
download timeouts) is derived from it — the failure users report when a GPU node start outlasts
a default deadline (knative/serving#13208, kserve/kserve#1247).

Private by default: public only with ``public=True`` and an authentication mechanism.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Required, TypedDict

import pulumi

from components.canary import EndpointCanaryArgs, plan_endpoint_canary
from components.catalog import Catalog, load_catalog
from components.cluster import KubernetesCluster
from components.errors import Problems
from components.features import Feature, FeatureSupport
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
    """vCPUs per replica. Default 4 (Cloud Run's minimum with an L4)."""
    memory_gib: NotRequired[float]
    """Memory per replica, GiB. Default 16."""
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
    canary: NotRequired[EndpointCanaryArgs]
    """Serve ``model_uri`` as a challenger beside the champion revision at ``percent`` of traffic (Knative
    revision tags, Cloud Run revision traffic); see components/canary.py. Default: none (100% latest)."""


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
    image: Any = None
    """The image to run (the runtime's default when none was given); may be a pulumi Output."""
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The plan as the component's registered ``gpuplane`` input (read by policies and the cost model)."""
        return {
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


_KNOWN_KEYS = set(InferenceEndpointArgs.__annotations__)


_RUNTIME_KEYS = set(ServingRuntimeArgs.__annotations__)
_VLLM_ONLY = ("served_model_name", "gpu_memory_utilization", "max_model_len", "weights_loader", "extra_args")
_CUSTOM_ONLY = ("command", "args", "port", "readiness_path", "liveness_path", "protocol")


def _str_list(p: Problems, path: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        p.add(path, value, "must be a list of strings.", 'give each argument as its own string, e.g. ["--port", "8080"].')
        return ()
    return tuple(value)


def plan_runtime(p: Problems, runtime: ServingRuntimeArgs | dict[str, Any] | None, *, platform: str, gpus: int, model_name: str, model_uri: str | None) -> RuntimePlan:
    """Validate ``runtime`` for the platform and return the server's contract (pure)."""
    if runtime is None:
        runtime = {}
    if not isinstance(runtime, dict):
        p.add("runtime", runtime, "must be a mapping.", "pass {'kind': 'reference' | 'vllm' | 'custom', ...}.")
        return REFERENCE_RUNTIME
    for key in sorted(set(runtime) - _RUNTIME_KEYS):
        p.add(f"runtime.{key}", runtime[key], "is not a runtime field.", f"use one of {sorted(_RUNTIME_KEYS)}.")  # type: ignore[literal-required]
    kind = runtime.get("kind", "reference")
    if kind not in RUNTIMES:
        p.add("runtime.kind", kind, "is not a serving runtime.", f"use one of {list(RUNTIMES)}.")
        return REFERENCE_RUNTIME
    foreign = [k for k in (_CUSTOM_ONLY if kind != "custom" else ()) + (_VLLM_ONLY if kind != "vllm" else ()) if k in runtime]
    for key in foreign:
        owner = "custom" if key in _CUSTOM_ONLY else "vllm"
        p.add(f"runtime.{key}", runtime[key], f"applies to runtime kind '{owner}', not '{kind}'.", f"drop it, or set runtime.kind to '{owner}'.")  # type: ignore[literal-required]
    sagemaker = platform == "sagemaker"
    if kind == "reference":
        return REFERENCE_RUNTIME
    if kind == "vllm":
        util = runtime.get("gpu_memory_utilization", 0.9)
        if not isinstance(util, (int, float)) or isinstance(util, bool) or not 0 < util <= 1:
            p.add("runtime.gpu_memory_utilization", util, "must be a fraction in (0, 1].", "use e.g. 0.9 (vLLM's default).")
            util = 0.9
        max_len = runtime.get("max_model_len")
        if max_len is not None and (not isinstance(max_len, int) or isinstance(max_len, bool) or max_len < 1):
            p.add("runtime.max_model_len", max_len, "must be a whole number of tokens.", "give the context length, or drop it for the model's own.")
            max_len = None
        loader = runtime.get("weights_loader", "download")
        if loader not in ("download", "stream"):
            p.add("runtime.weights_loader", loader, "is not a weights loader.", "use 'download' or 'stream'.")
            loader = "download"
        if not model_uri:
            p.add("model_uri", None, "is required with runtime.kind='vllm' (gpuplane does not fetch from the Hugging Face Hub at cold start).", "put the weights in s3://, gs:// or pvc:// and name them here.")
        elif loader == "stream" and not model_uri.startswith(("s3://", "gs://")):
            p.add("runtime.weights_loader", loader, f"streams only from s3:// or gs://, not {model_uri.split('://', 1)[0]}://.", "use weights_loader='download' for a volume, or keep the weights in a bucket.")
        if gpus < 1:
            p.add("runtime.kind", kind, "vLLM serves on GPUs and this endpoint has none.", "pass pool=<GpuNodePool> (knative), or use runtime.kind='reference' on CPU.")
        extra = _str_list(p, "runtime.extra_args", runtime.get("extra_args"))
        for flag in extra:
            if flag.split("=", 1)[0] in ("--port", "--tensor-parallel-size", "-tp", "--served-model-name", "--load-format", "--gpu-memory-utilization", "--max-model-len"):
                p.add("runtime.extra_args", flag, "is set by gpuplane from the endpoint's fields.", "drop it and use the runtime field (port is fixed by the platform; tensor parallel size = gpus).")
        return RuntimePlan(
            kind="vllm",
            protocol="openai",
            port=SAGEMAKER_PORT if sagemaker else VLLM_PORT,
            readiness_path=SAGEMAKER_PING_PATH if sagemaker else VLLM_HEALTH_PATH,
            liveness_path=SAGEMAKER_PING_PATH if sagemaker else VLLM_HEALTH_PATH,
            command=None if sagemaker else VLLM_COMMAND,
            args=extra,
            served_model_name=str(runtime.get("served_model_name") or model_name),
            gpu_memory_utilization=float(util),
            max_model_len=max_len,
            weights_loader=str(loader),
            tensor_parallel_size=max(1, gpus),
        )
    # custom
    command = _str_list(p, "runtime.command", runtime.get("command")) or None
    args = _str_list(p, "runtime.args", runtime.get("args"))
    port = runtime.get("port", SAGEMAKER_PORT)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        p.add("runtime.port", port, "is not a TCP port.", "give the port the server listens on (1-65535).")
        port = SAGEMAKER_PORT
    elif platform == "knative" and port in KNATIVE_RESERVED_PORTS:
        p.add("runtime.port", port, f"is reserved by Knative's queue-proxy ({sorted(KNATIVE_RESERVED_PORTS)}).", "listen on another port, e.g. 8080.")
    readiness = runtime.get("readiness_path")
    if not isinstance(readiness, str) or not readiness.startswith("/"):
        p.add("runtime.readiness_path", readiness, "is required for a custom runtime and must start with '/'.", "give the path that answers 200 once the model is loaded, e.g. '/health'.")
        readiness = "/"
    liveness = runtime.get("liveness_path", readiness)
    if not isinstance(liveness, str) or not liveness.startswith("/"):
        p.add("runtime.liveness_path", liveness, "must start with '/'.", "give the path that answers 200 while the process is healthy.")
        liveness = readiness
    protocol = runtime.get("protocol")
    if protocol not in PROTOCOLS:
        p.add("runtime.protocol", protocol, "is required for a custom runtime.", f"name the API the server speaks: one of {list(PROTOCOLS)}.")
        protocol = "other"
    return RuntimePlan("custom", str(protocol), port, readiness, liveness, command, args)


def runtime_features(runtime: RuntimePlan, args: InferenceEndpointArgs) -> list[tuple[Feature, str, object]]:
    """The bring-your-own-server and cold-start-aid features the args ask for."""
    out: list[tuple[Feature, str, object]] = []
    if runtime.kind == "custom":
        if runtime.command or runtime.args:
            out.append((Feature.CUSTOM_COMMAND, "runtime.command" if runtime.command else "runtime.args", list(runtime.command or runtime.args)))
        if runtime.port != SAGEMAKER_PORT:
            out.append((Feature.CUSTOM_PORT, "runtime.port", runtime.port))
        if runtime.readiness_path != SAGEMAKER_PING_PATH:
            out.append((Feature.CUSTOM_PROBES, "runtime.readiness_path", runtime.readiness_path))
        elif runtime.liveness_path != SAGEMAKER_PING_PATH:
            out.append((Feature.CUSTOM_PROBES, "runtime.liveness_path", runtime.liveness_path))
    if args.get("prepull_image", False):
        out.append((Feature.IMAGE_PREPULL, "prepull_image", True))
    uri = args.get("model_uri") or ""
    if uri.startswith("pvc://") or (args.get("platform") == "cloud-run" and uri.startswith("gs://") and runtime.weights_loader != "stream"):
        out.append((Feature.WEIGHTS_VOLUME, "model_uri", uri))
    if runtime.weights_loader == "stream":
        out.append((Feature.STREAMING_WEIGHT_LOADER, "runtime.weights_loader", "stream"))
    return out


def _int(p: Problems, args: InferenceEndpointArgs, key: str, default: int, minimum: int, fix: str) -> int:
    value = args.get(key, default)  # type: ignore[misc]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        p.add(key, value, f"must be a whole number of at least {minimum}.", fix)
        return default
    return value


def plan_endpoint(name: str, args: InferenceEndpointArgs, catalog: Catalog | None = None) -> EndpointPlan:
    """Validate the args and derive the endpoint plan, or raise one ``ComponentInputError``."""
    catalog = catalog or load_catalog()
    p = Problems("InferenceEndpoint", name)
    for key in sorted(set(args) - _KNOWN_KEYS):
        p.add(key, args[key], "is not an argument of InferenceEndpoint.", f"use one of {sorted(_KNOWN_KEYS)}.")  # type: ignore[literal-required]
    platform = args.get("platform")
    if platform not in ("knative", "cloud-run", "sagemaker"):
        p.add("platform", platform, "is not a supported platform.", "use 'knative', 'cloud-run' or 'sagemaker'.")
        p.raise_if_any()

    min_scale = _int(p, args, "min_scale", 0, 0, "set it to 0 to scale to zero, or the replicas to keep warm.")
    max_scale = _int(p, args, "max_scale", 4, 1, "set the most replicas the endpoint may grow to.")
    if max_scale < min_scale:
        p.add("max_scale", max_scale, f"is below min_scale={min_scale}.", "raise max_scale or lower min_scale.")
    target = _int(p, args, "target_concurrency", 8, 1, "set how many in-flight requests one replica handles.")
    delay = _int(p, args, "scale_down_delay_seconds", 300, 0, "set the keep-alive after the last request, in seconds.")
    request_timeout = _int(p, args, "request_timeout_seconds", 60, 1, "set the longest a warm request may run, in seconds.")
    max_request = _int(p, args, "max_request_bytes", 1024 * 1024, 1, "set the largest request body, in bytes.")
    sizes: dict[str, float] = {}
    for key, default in (("model_size_gib", 1.0), ("image_size_gib", 8.0), ("cpu", 4.0), ("memory_gib", 16.0)):
        v = args.get(key, default)  # type: ignore[misc]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            p.add(key, v, "must be a positive number.", "give a size greater than zero.")
            v = default
        sizes[key] = float(v)

    model_uri = args.get("model_uri")
    if model_uri is not None and not str(model_uri).startswith(("s3://", "gs://", "pvc://")):
        p.add("model_uri", model_uri, "must be an s3://, gs:// or pvc://claim/path URI.", "give the weights' location, or drop model_uri to use weights baked into the image.")

    cloud, region, accelerator, instance_type, impl = "kubernetes", None, None, None, str(platform)
    gpus = 1
    node_seconds = 0
    namespace = args.get("namespace", "inference")
    mode = None
    cluster, pool = args.get("cluster"), args.get("pool")
    tags = dict(args.get("tags") or {})
    if platform == "knative":
        if not isinstance(cluster, KubernetesCluster):
            p.add("cluster", cluster, "is required for knative and must be a KubernetesCluster.", "pass the cluster to run on.")
        else:
            cloud, region = cluster.facts.cloud, cluster.facts.region
            tags = {**cluster.facts.tags, **tags}
        if pool is not None and not isinstance(pool, GpuNodePool):
            p.add("pool", pool, "is not a GpuNodePool.", "pass a GpuNodePool of the same cluster, or drop it for CPU.")
            pool = None
        if isinstance(pool, GpuNodePool):
            if isinstance(cluster, KubernetesCluster) and pool.cluster is not cluster:
                p.add("pool", pool.plan.name, "belongs to another cluster.", "pass a pool of the endpoint's cluster.")
            accelerator = pool.plan.accelerator.name
            instance_type = pool.plan.instance_type.name if pool.plan.instance_type else None
            gpus = args.get("gpus", 1)
            if not isinstance(gpus, int) or gpus < 1 or gpus > pool.scheduling.allocatable_per_node:
                p.add("gpus", gpus, f"does not fit pool '{pool.plan.name}' ({pool.scheduling.allocatable_per_node} x {pool.scheduling.resource_name} per node).", "request at most what one node offers.")
            if pool.plan.sharing in ("time-slicing", "mps") and isinstance(gpus, int) and gpus > 1:
                p.add("gpus", gpus, f"pool '{pool.plan.name}' shares GPUs ({pool.plan.sharing}); a container may request only one shared GPU.", "set gpus to 1 or use an unshared pool.")
            cpu_cap, mem_cap = pool.scheduling.vcpus_per_node, pool.scheduling.memory_gib_per_node
            if cpu_cap and sizes["cpu"] > cpu_cap - 0.5:
                p.add("cpu", sizes["cpu"], f"does not fit a {instance_type} node ({cpu_cap} vCPU, some reserved for the system).", f"request at most {cpu_cap - 0.5:g}.")
            if mem_cap and sizes["memory_gib"] > mem_cap * 0.9:
                p.add("memory_gib", sizes["memory_gib"], f"does not fit a {instance_type} node ({mem_cap:g} GiB).", f"request at most {mem_cap * 0.9:g}.")
            keeps_node = pool.plan.min_nodes > 0
            node_seconds = 0 if keeps_node or not pool.plan.summary()["createsNodes"] else catalog.cloud(cloud).node_provision_seconds
        else:
            gpus = 0
            if args.get("gpus"):
                p.add("gpus", args.get("gpus"), "needs a GPU pool.", "pass pool=<GpuNodePool>, or drop gpus for a CPU endpoint.")
        if args.get("model_uri", "").startswith("s3://") and cloud not in ("aws", "kubernetes"):
            p.add("model_uri", model_uri, f"is an S3 URI but the cluster is on {cloud}.", "keep weights in the cluster's cloud (data gravity): use gs:// or pvc://.")
        if args.get("model_uri", "").startswith("gs://") and cloud not in ("gcp", "kubernetes"):
            p.add("model_uri", model_uri, f"is a GCS URI but the cluster is on {cloud}.", "use s3:// or pvc://.")
    elif platform == "cloud-run":
        cloud, region = "gcp", args.get("region")
        accelerator = args.get("accelerator", "L4")
        if accelerator not in CLOUD_RUN_GPUS:
            p.add("accelerator", accelerator, "is not offered by Cloud Run.", f"use one of {sorted(CLOUD_RUN_GPUS)}.")
        if not args.get("project"):
            p.add("project", args.get("project"), "is required for cloud-run.", "set the GCP project id.")
        rate = catalog.serverless_rate("gcp", "cloud-run", "l4-gpu-second", region or "")
        if rate is None:
            where = sorted({k[3] for k in catalog.serverless if k[1] == "cloud-run" and k[2] == "l4-gpu-second"})
            p.add("region", region, "does not offer Cloud Run with L4 in the catalog.", f"use one of {where}.")
        gpus = args.get("gpus", 1)
        if gpus != 1:
            p.add("gpus", gpus, "Cloud Run attaches exactly one GPU per instance.", "set gpus to 1.")
        if sizes["cpu"] < 4 or sizes["memory_gib"] < 16:
            p.add("cpu", sizes["cpu"], f"with memory_gib={sizes['memory_gib']:g} is below Cloud Run's L4 minimum of 4 vCPU and 16 GiB.", "request at least 4 vCPU and 16 GiB.")
        if model_uri and not str(model_uri).startswith("gs://"):
            p.add("model_uri", model_uri, "Cloud Run mounts weights from Cloud Storage only.", "use a gs:// URI.")
        node_seconds = CLOUD_RUN_INSTANCE_START_SECONDS
    else:  # sagemaker
        cloud, region = "aws", args.get("region")
        mode = args.get("sagemaker_mode", "async")
        if mode not in ("inference-components", "async"):
            p.add("sagemaker_mode", mode, "is not a SageMaker mode.", "use 'inference-components' or 'async'.")
            mode = "async"
        impl = f"sagemaker-{mode}"
        accelerator = args.get("accelerator", "L4")
        wanted = args.get("instance_type")
        offers = [o for o in catalog.find_offerings("aws", accelerator, None, region, "on_demand", "sagemaker") if not wanted or o.instance_type.name == wanted]
        if wanted and not str(wanted).startswith("ml."):
            p.add("instance_type", wanted, "is not a SageMaker instance type.", "use an ml.* type, e.g. ml.g6.xlarge.")
        elif not offers:
            where = sorted({o.instance_type.name for o in catalog.find_offerings("aws", accelerator, None, None, "on_demand", "sagemaker")})
            p.add("instance_type" if wanted else "accelerator", wanted or accelerator, f"no SageMaker offering in {region} in the catalog.", f"use a region that offers it, or one of {where}.")
        else:
            instance_type = offers[0].instance_type.name
        gpus = offers[0].instance_type.gpus if offers else 1
        if model_uri and not str(model_uri).startswith("s3://"):
            p.add("model_uri", model_uri, "SageMaker reads model data from S3 only.", "use an s3:// URI.")
        node_seconds = SAGEMAKER_INSTANCE_START_SECONDS
    if platform in ("cloud-run", "sagemaker") and (region is None or catalog.region(cloud, region) is None):
        p.add("region", region, f"is not a {cloud} region in the catalog.", f"use one of {catalog.region_names(cloud)}.")

    model_name = args.get("model_name", "recommender")
    runtime = plan_runtime(p, args.get("runtime"), platform=str(platform), gpus=gpus if isinstance(gpus, int) else 1, model_name=model_name, model_uri=model_uri)
    image = args.get("image")
    if not image and runtime.kind == "vllm" and platform != "sagemaker":
        image = VLLM_IMAGE
    if not image:
        why = {
            "vllm": f"is required for vllm on SageMaker: {VLLM_IMAGE.split(':')[0]}'s entrypoint is `vllm serve` on port {VLLM_PORT}, "
            f"but SageMaker starts containers as `docker run IMAGE serve` and calls {SAGEMAKER_PING_PATH} and /invocations on {SAGEMAKER_PORT}.",
            "custom": "is required for a custom runtime.",
        }.get(runtime.kind, "is required for the reference runtime.")
        fix = {
            "vllm": "give a SageMaker build of vLLM (vLLM's docker/Dockerfile target vllm-sagemaker, whose entrypoint maps SM_VLLM_* variables to flags and listens on 8080).",
            "custom": "give your model server's container image.",
        }.get(runtime.kind, "give the model server's container image (workloads/serving/Dockerfile).")
        p.add("image", image, why, fix)
    elif platform == "sagemaker" and runtime.kind == "vllm" and isinstance(image, str) and image.startswith(VLLM_IMAGE.split(":")[0] + ":"):
        p.add("image", image, f"is vLLM's plain OpenAI image: it serves on {VLLM_PORT} with entrypoint `vllm serve`, and SageMaker runs `docker run IMAGE serve` against {SAGEMAKER_PING_PATH} on {SAGEMAKER_PORT}.", "build vLLM's docker/Dockerfile target vllm-sagemaker (or use AWS's vLLM SageMaker container) and give that image.")
    if runtime.kind != "reference" and args.get("feature_server_url") is not None:
        p.add("feature_server_url", "...", f"is read by the reference server only; a {runtime.kind} server does not take --feature-server-url.", "drop it, or fetch features in the client.")

    features = FEATURES[impl]
    requested: list[tuple[Feature, str, object]] = []
    if min_scale == 0:
        requested.append((Feature.SCALE_TO_ZERO, "min_scale", 0))
        if args.get("hold_requests", True):
            requested.append((Feature.REQUEST_HOLDING, "hold_requests", True))
    if args.get("streaming", False):
        requested.append((Feature.STREAMING, "streaming", True))
    limit = CLOUD_RUN_MAX_REQUEST_BYTES if impl == "cloud-run" else SAGEMAKER_MAX_PAYLOAD_BYTES if impl == "sagemaker-inference-components" else None
    if limit is not None and max_request > limit:
        requested.append((Feature.LARGE_REQUESTS, "max_request_bytes", max_request))
    if isinstance(pool, GpuNodePool) and pool.plan.sharing:
        requested.append((Feature.GPU_SHARING, "pool", pool.plan.name))
    requested += runtime_features(runtime, args)
    p.extend(features.check(requested))

    if args.get("feature_server_url") is not None and platform != "knative":
        p.add("feature_server_url", "...", f"{platform} cannot reach an in-cluster feature server.", "drop it, or serve on knative in the feature store's cluster.")
    default_auth = "iam" if platform in ("cloud-run", "sagemaker") else "none"
    auth = args.get("auth", default_auth)
    public = bool(args.get("public", False))
    if auth not in ("none", "iam", "bearer-token"):
        p.add("auth", auth, "is not an authentication mechanism.", "use 'iam', 'bearer-token' or 'none'.")
    if public and auth == "none":
        p.add("public", True, "a public endpoint needs authentication.", "set auth to 'iam' or 'bearer-token', or keep the endpoint private.")
    if platform == "knative" and auth == "iam":
        p.add("auth", auth, "knative has no IAM authentication.", "use 'bearer-token' with auth_token_secret.")
    if auth == "bearer-token" and platform == "knative" and not args.get("auth_token_secret"):
        p.add("auth_token_secret", None, "is required with auth='bearer-token'.", "name a Secret with key 'token' in the namespace.")
    if public and platform == "sagemaker":
        p.add("public", True, "SageMaker endpoints are reached through the AWS API with SigV4, not a public URL.", "drop public; grant sagemaker:InvokeEndpoint to callers.")

    budget = plan_cold_start(
        p,
        platform=str(platform),
        cloud=cloud,
        runtime=runtime.kind,
        model_uri=model_uri,
        loader=runtime.weights_loader,
        model_size_gib=sizes["model_size_gib"],
        image_size_gib=sizes["image_size_gib"],
        node_provision_seconds=node_seconds,
        overrides=args.get("cold_start_budget") or {},
        catalog=catalog,
    )
    if platform == "cloud-run" and budget.startup_seconds > CLOUD_RUN_STARTUP_PROBE_MAX_SECONDS:
        fix = "stream the weights (runtime.weights_loader='stream'), shrink the image or the weights, or use knative." if runtime.kind == "vllm" else "shrink the image or the weights, or use knative."
        p.add("cold_start_budget", budget.phases_text(), f"Cloud Run startup probes give up after {CLOUD_RUN_STARTUP_PROBE_MAX_SECONDS} s.", fix)
    canary = plan_endpoint_canary(p, name, impl, args.get("canary"))
    p.raise_if_any()

    startup = budget.startup_seconds
    timeouts = Timeouts(
        startup_probe_seconds=min(startup, CLOUD_RUN_STARTUP_PROBE_MAX_SECONDS) if platform == "cloud-run" else startup,
        progress_deadline_seconds=max(600, math.ceil(budget.total_seconds * 1.5)),
        request_timeout_seconds=budget.total_seconds + request_timeout,
    )
    return EndpointPlan(
        name=name,
        platform=str(platform),
        implementation=impl,
        cloud=cloud,
        region=region,
        model_name=model_name,
        model_uri=model_uri,
        accelerator=accelerator,
        instance_type=instance_type,
        gpus=gpus,
        cpu=sizes["cpu"],
        memory_gib=sizes["memory_gib"],
        min_scale=min_scale,
        max_scale=max_scale,
        target_concurrency=target,
        scale_down_delay_seconds=delay,
        budget=budget,
        timeouts=timeouts,
        public=public,
        auth=auth,
        namespace=namespace,
        knative=args.get("knative", "install"),
        sagemaker_mode=mode,
        prepull_image=bool(args.get("prepull_image", False)),
        zonal_redundancy=bool(args.get("zonal_redundancy", False)),
        deletion_protection=bool(args.get("deletion_protection", False)),
        max_request_bytes=max_request,
        env=dict(args.get("env") or {}),
        tags=tags,
        features=features,
        runtime=runtime,
        image=image,
        extra={"pool": pool.plan.name if isinstance(pool, GpuNodePool) else None, "canary": canary},
    )


def server_args(plan: EndpointPlan, model_dir: str) -> list[str]:
    """The reference serving workload's command line (workloads/serving)."""
    return ["--model-dir", model_dir, "--model-name", plan.model_name, "--port", str(SERVING_PORT), "--max-body-bytes", str(plan.max_request_bytes)]


def vllm_args(plan: EndpointPlan, model: str) -> list[str]:
    """``vllm serve`` arguments: ``model`` is a local path, or an s3:// / gs:// URI when streaming."""
    rt = plan.runtime
    out = [
        model,
        "--served-model-name",
        rt.served_model_name or plan.model_name,
        "--port",
        str(rt.port),
        "--tensor-parallel-size",
        str(rt.tensor_parallel_size),
        "--gpu-memory-utilization",
        f"{rt.gpu_memory_utilization or 0.9:g}",
    ]
    if rt.max_model_len:
        out += ["--max-model-len", str(rt.max_model_len)]
    if rt.weights_loader == "stream":
        out += ["--load-format", "runai_streamer"]
        if rt.tensor_parallel_size > 1:
            # each rank streams its own shard (docs.vllm.ai runai_model_streamer: distributed streaming)
            out += ["--model-loader-extra-config", '{"distributed": true}']
    return out + list(rt.args)


def server_command(plan: EndpointPlan, model_dir: str) -> tuple[list[str] | None, list[str]]:
    """(command, args) of the model server container; command None keeps the image's entrypoint.

    ``model_dir`` is where the platform puts the weights (a mount or a synced volume); a vLLM
    endpoint that streams reads the bucket URI instead.
    """
    rt = plan.runtime
    if rt.kind == "vllm":
        model = plan.model_uri if rt.weights_loader == "stream" and plan.model_uri else model_dir
        return list(rt.command or VLLM_COMMAND), vllm_args(plan, model)
    if rt.kind == "custom":
        return (list(rt.command) if rt.command else None), [a.replace("{model_dir}", model_dir) for a in rt.args]
    return None, server_args(plan, model_dir)


class InferenceEndpoint(pulumi.ComponentResource):
    """A scale-to-zero model endpoint; see the module docstring for the implementations.

    Outputs: ``url`` (in-cluster URL, Cloud Run URI or SageMaker endpoint name),
    ``cold_start_budget_seconds`` (total), ``cold_start_budget`` (every phase, in seconds, and
    the storage paths it was derived from), ``implementation``, ``runtime`` and ``protocol``.
    Attribute ``plan``.
    """

    plan: EndpointPlan
    url: pulumi.Output[str]
    """In-cluster URL (Knative), Cloud Run URI or SageMaker endpoint name."""
    cold_start_budget_seconds: pulumi.Output[int]
    """Planned worst-case cold start (node, image, weights, engine), in seconds."""
    implementation: pulumi.Output[str]
    """How the endpoint is served: ``knative``, ``cloud-run`` or ``sagemaker-<mode>`` (e.g. ``sagemaker-async``)."""
    cold_start_budget: pulumi.Output[dict[str, Any]]
    """Every cold-start phase in seconds (nodeProvision, imagePull, weightsFetch, weightsLoad, engineStart, total) and its basis (runtime, model size, storage paths)."""
    runtime: pulumi.Output[str]
    """The model server: ``reference``, ``vllm`` or ``custom``."""
    protocol: pulumi.Output[str]
    """The API clients speak to it: ``oip``, ``openai``, ``tgi``, ``triton`` or ``other``."""

    def __init__(self, name: str, args: InferenceEndpointArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_endpoint(name, args)  # raises before anything is registered
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        if plan.platform == "knative":
            from components.kubernetes.inference import create_knative_endpoint

            self.url = create_knative_endpoint(self, name, plan, args["cluster"], args.get("pool"), args)
        elif plan.platform == "cloud-run":
            from components.gcp.inference import create_cloud_run_endpoint

            self.url = create_cloud_run_endpoint(self, name, plan, args)
        else:
            from components.aws.inference import create_sagemaker_endpoint

            self.url = create_sagemaker_endpoint(self, name, plan, args)
        self.cold_start_budget_seconds = pulumi.Output.from_input(plan.budget.total_seconds)
        self.implementation = pulumi.Output.from_input(plan.implementation)
        self.cold_start_budget = pulumi.Output.from_input(plan.budget.to_json())
        self.runtime = pulumi.Output.from_input(plan.runtime.kind)
        self.protocol = pulumi.Output.from_input(plan.runtime.protocol)
        self.register_outputs(
            {
                "url": self.url,
                "cold_start_budget_seconds": self.cold_start_budget_seconds,
                "cold_start_budget": self.cold_start_budget,
                "implementation": self.implementation,
                "runtime": self.runtime,
                "protocol": self.protocol,
            }
        )

