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

The cold-start budget (node provisioning + image pull + process start + model load) is derived
from the catalog and the sizes given, and every timeout that could cut a cold start short
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
# Default loaders reach 0.5-0.9 GB/s (REFERENCE.md §7); registry pulls of large images are
# the biggest share of container start. Conservative rates so the budget errs long.
MODEL_LOAD_GIB_PER_SECOND = 0.5
IMAGE_PULL_GIB_PER_SECOND = 0.1
PROCESS_START_SECONDS = 15
CLOUD_RUN_INSTANCE_START_SECONDS = 5
SAGEMAKER_INSTANCE_START_SECONDS = 300
SAGEMAKER_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
SAGEMAKER_ASYNC_MAX_PAYLOAD_BYTES = 1024**3
CLOUD_RUN_MAX_REQUEST_BYTES = 32 * 1024 * 1024
CLOUD_RUN_GPUS = {"L4": "nvidia-l4"}


class ColdStartBudgetArgs(TypedDict, total=False):
    """Seconds each cold-start phase may take; unset phases are derived."""

    node_provision_seconds: int
    """Time for a new GPU node to join. Default: the cloud's figure in the catalog (0 when the pool keeps a node or on serverless)."""
    image_pull_seconds: int
    """Time to pull the image. Default: image_size_gib / 0.1 GiB/s."""
    model_load_seconds: int
    """Process start plus weight load and warm-up. Default: 15 s + model_size_gib / 0.5 GiB/s."""


class InferenceEndpointArgs(TypedDict, total=False):
    """Arguments of ``InferenceEndpoint``."""

    platform: Required[Literal["knative", "cloud-run", "sagemaker"]]
    """Where the endpoint runs: ``knative`` (any cluster), ``cloud-run`` (GCP, L4) or ``sagemaker`` (AWS)."""
    image: Required[pulumi.Input[str]]
    """Container image of the model server (workloads/serving/Dockerfile speaks OIP v2 on port 8080)."""
    model_uri: NotRequired[str]
    """Where the weights come from: ``s3://bucket/prefix``, ``gs://bucket/prefix`` or ``pvc://claim/path``. Default: baked into the image."""
    model_name: NotRequired[str]
    """OIP model name. Default ``recommender``."""
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
    """knative: a DaemonSet that pre-pulls the image on the pool's nodes. Default False."""
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


FEATURES: dict[str, FeatureSupport] = {
    "knative": FeatureSupport(
        "knative",
        frozenset({Feature.SCALE_TO_ZERO, Feature.REQUEST_HOLDING, Feature.GPU_SHARING, Feature.STREAMING, Feature.LARGE_REQUESTS}),
    ),
    "cloud-run": FeatureSupport(
        "cloud-run",
        frozenset({Feature.SCALE_TO_ZERO, Feature.REQUEST_HOLDING, Feature.STREAMING}),
        {
            Feature.GPU_SHARING: "Cloud Run attaches one whole L4 to each instance",
            Feature.LARGE_REQUESTS: "Cloud Run caps HTTP/1 request bodies at 32 MiB",
        },
    ),
    "sagemaker-inference-components": FeatureSupport(
        "sagemaker-inference-components",
        frozenset({Feature.SCALE_TO_ZERO, Feature.GPU_SHARING, Feature.STREAMING}),
        {
            Feature.REQUEST_HOLDING: "at zero copies invocations fail with NoCapacityInvocationFailures until the alarm "
            "scales a copy out; clients must retry (use sagemaker_mode='async' to hold requests)",
            Feature.LARGE_REQUESTS: "real-time payloads are capped at 6 MB (use sagemaker_mode='async' for up to 1 GB)",
        },
    ),
    "sagemaker-async": FeatureSupport(
        "sagemaker-async",
        frozenset({Feature.SCALE_TO_ZERO, Feature.REQUEST_HOLDING, Feature.LARGE_REQUESTS}),
        {
            Feature.GPU_SHARING: "an async variant owns its instances",
            Feature.STREAMING: "async results are written to S3, not streamed",
        },
    ),
}


@dataclass(frozen=True)
class ColdStartBudget:
    node_provision_seconds: int
    image_pull_seconds: int
    model_load_seconds: int

    @property
    def total_seconds(self) -> int:
        return self.node_provision_seconds + self.image_pull_seconds + self.model_load_seconds

    def to_json(self) -> dict[str, int]:
        return {
            "nodeProvisionSeconds": self.node_provision_seconds,
            "imagePullSeconds": self.image_pull_seconds,
            "modelLoadSeconds": self.model_load_seconds,
            "totalSeconds": self.total_seconds,
        }


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
            "readinessPath": READINESS_PATH,
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
    if not args.get("image"):
        p.add("image", args.get("image"), "is required.", "give the model server's container image.")

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

    budget_args = args.get("cold_start_budget") or {}
    budget = ColdStartBudget(
        node_provision_seconds=int(budget_args.get("node_provision_seconds", node_seconds)),
        image_pull_seconds=int(budget_args.get("image_pull_seconds", math.ceil(sizes["image_size_gib"] / IMAGE_PULL_GIB_PER_SECOND))),
        model_load_seconds=int(budget_args.get("model_load_seconds", PROCESS_START_SECONDS + math.ceil(sizes["model_size_gib"] / MODEL_LOAD_GIB_PER_SECOND))),
    )
    if platform == "cloud-run" and budget.image_pull_seconds + budget.model_load_seconds > 240:
        p.add("cold_start_budget", budget.to_json(), "Cloud Run startup probes give up after 240 s.", "shrink the image or the weights, or use knative.")
    canary = plan_endpoint_canary(p, name, platform, args.get("canary"))
    p.raise_if_any()

    startup = budget.image_pull_seconds + budget.model_load_seconds
    timeouts = Timeouts(
        startup_probe_seconds=min(startup, 240) if platform == "cloud-run" else startup,
        progress_deadline_seconds=max(600, math.ceil(budget.total_seconds * 1.5)),
        request_timeout_seconds=budget.total_seconds + request_timeout,
    )
    return EndpointPlan(
        name=name,
        platform=str(platform),
        implementation=impl,
        cloud=cloud,
        region=region,
        model_name=args.get("model_name", "recommender"),
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
        extra={"pool": pool.plan.name if isinstance(pool, GpuNodePool) else None, "canary": canary},
    )


def server_args(plan: EndpointPlan, model_dir: str) -> list[str]:
    """The serving workload's command line (workloads/serving)."""
    return ["--model-dir", model_dir, "--model-name", plan.model_name, "--port", str(SERVING_PORT), "--max-body-bytes", str(plan.max_request_bytes)]


class InferenceEndpoint(pulumi.ComponentResource):
    """A scale-to-zero model endpoint; see the module docstring for the implementations.

    Outputs: ``url`` (in-cluster URL, Cloud Run URI or SageMaker endpoint name),
    ``cold_start_budget_seconds``, ``implementation``. Attribute ``plan``.
    """

    plan: EndpointPlan
    url: pulumi.Output[str]
    """In-cluster URL (Knative), Cloud Run URI or SageMaker endpoint name."""
    cold_start_budget_seconds: pulumi.Output[int]
    """Planned worst-case cold start (node, image, weights, engine), in seconds."""
    implementation: pulumi.Output[str]
    """How the endpoint is served: ``knative``, ``cloud-run`` or ``sagemaker-<mode>`` (e.g. ``sagemaker-async``)."""

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
        self.register_outputs({"url": self.url, "cold_start_budget_seconds": self.cold_start_budget_seconds, "implementation": self.implementation})

