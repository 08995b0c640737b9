"""Typed stack configuration: ``stacks/Pulumi.<stack>.yaml`` → ``StackConfig``.

One namespace, ``gpuplane:``, camelCase keys, unknown keys rejected with their path. Defaults
live here and only here. Usage assumptions for the cost model (``usage``) are config too.

    config:
      gpuplane:environment: dev
      gpuplane:tags: {team: ml-platform, cost-center: cc-1234}
      gpuplane:cluster: {cloud: aws, region: us-east-1, autoscaler: cluster-autoscaler}
      gpuplane:gpuPools:
        - {name: infer-l4, accelerator: L4, capacityType: spot, maxNodes: 4}

A bad value raises ``StackConfigError`` (a ``pulumi.RunError``: shown without a traceback),
whose message names every offending key path and how to fix it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.catalog import load_catalog

NAMESPACE = "gpuplane"


class StackConfigError(pulumi.RunError, ValueError):
    """The stack config is wrong; the message names each key path and the fix."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ClusterConfig(_Model):
    cloud: Literal["aws", "gcp", "existing"]
    """aws (EKS), gcp (GKE) or existing (a kubeconfig)."""
    region: str | None = None
    """Cloud region (aws/gcp)."""
    zones: list[str] | None = None
    """Zones; default the first three of the region."""
    project: str | None = None
    """GCP project id."""
    kubernetes_version: str | None = None
    private_endpoint: bool = False
    private_nodes: bool = True
    autoscaler: Literal["karpenter", "cluster-autoscaler", "none"] | None = None
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] | None = None
    system_node_count: int = Field(2, ge=1)
    context: str | None = None
    """existing: kubeconfig context."""
    chart_source: str | None = None
    """Where the cluster's Helm charts come from (``chartSource``): unset for the upstream repositories, an
    ``http(s)://`` or ``oci://`` mirror, or a folder of ``<name>-<version>.tgz`` archives, relative to the
    project folder (the one holding Pulumi.yaml), e.g. ``../shared/charts`` for an offline sandbox."""

    @model_validator(mode="after")
    def _cloud_fields(self) -> ClusterConfig:
        if self.cloud in ("aws", "gcp"):
            if not self.region:
                raise ValueError(f"region is required for cloud '{self.cloud}'. Set gpuplane:cluster.region, e.g. {load_catalog().region_names(self.cloud)[0]}")
            names = load_catalog().region_names(self.cloud)
            if self.region not in names:
                raise ValueError(f"region '{self.region}' is not a {self.cloud} region in the catalog. Use one of {names}")
        if self.cloud == "gcp" and not self.project:
            raise ValueError("project is required for cloud 'gcp'. Set gpuplane:cluster.project to the GCP project id")
        return self


class GpuSharingConfig(_Model):
    strategy: Literal["time-slicing", "mps", "mig"]
    replicas: int | None = Field(None, ge=2, le=48)
    mig_profile: str | None = None


class GpuPoolConfig(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,38}$")
    """Pool name (lowercase letters, digits, dashes)."""
    accelerator: str
    accelerators_per_node: int | None = Field(None, ge=1)
    instance_type: str | None = None
    capacity_type: Literal["spot", "on_demand"] = "on_demand"
    min_nodes: int = Field(0, ge=0)
    max_nodes: int = Field(1, ge=1)
    zones: list[str] | None = None
    disk_size_gib: int = Field(200, ge=50)
    gpu_sharing: GpuSharingConfig | None = None
    compact_placement: bool = False
    efa: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    """Extra tags on the pool's resources, e.g. a policy exemption (gpuplane/exempt + gpuplane/exempt-reason)."""
    role: Literal["training", "inference", "general"] = "general"

    @field_validator("accelerator")
    @classmethod
    def _known_accelerator(cls, v: str) -> str:
        known = sorted(load_catalog().accelerators)
        if v not in known:
            raise ValueError(f"unknown accelerator '{v}'. Use one of {known}")
        return v


class ServingRuntimeConfig(_Model):
    """An endpoint's model server (InferenceEndpoint's ``runtime``); unset fields take the component's defaults."""

    kind: Literal["reference", "vllm", "custom"] = "reference"
    served_model_name: str | None = None
    """vllm: --served-model-name (default: the endpoint's modelName)."""
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=1)
    weights_loader: Literal["download", "stream"] | None = None
    extra_args: list[str] | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    port: int | None = Field(None, ge=1, le=65535)
    readiness_path: str | None = None
    liveness_path: str | None = None
    protocol: Literal["oip", "openai", "tgi", "triton", "other"] | None = None

    def component_args(self) -> dict[str, object]:
        """The set fields, under InferenceEndpoint's snake_case names."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class InferenceEndpointConfig(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,38}$")
    platform: Literal["knative", "cloud-run", "sagemaker"]
    image: str | None = None
    """Model server image (workloads/serving/Dockerfile for the reference runtime); vllm defaults to vLLM's image."""
    runtime: ServingRuntimeConfig | None = None
    """The model server (reference OIP server when unset)."""
    gpus: int | None = Field(None, ge=1)
    """GPUs per replica (vllm's tensor parallel size); default 1."""
    pool: str | None = None
    """knative: name of a GPU pool of this stack; none for CPU."""
    region: str | None = None
    """cloud-run / sagemaker: region; default the cluster's."""
    project: str | None = None
    """cloud-run: GCP project; default the cluster's."""
    model_uri: str | None = None
    model_name: str = "recommender"
    model_size_gib: float = Field(1.0, gt=0)
    image_size_gib: float = Field(8.0, gt=0)
    sagemaker_mode: Literal["inference-components", "async"] | None = None
    knative: Literal["install", "present"] = "install"
    min_scale: int = Field(0, ge=0)
    max_scale: int = Field(4, ge=1)
    target_concurrency: int = Field(8, ge=1)
    scale_down_delay_seconds: int = Field(300, ge=0)
    hold_requests: bool = True
    public: bool = False
    auth: Literal["none", "iam", "bearer-token"] | None = None
    prepull_image: bool = False
    zonal_redundancy: bool = False
    cpu: float | None = Field(None, gt=0)
    memory_gib: float | None = Field(None, gt=0)
    busy_hours_per_day: float | None = Field(None, ge=0, le=24)
    """Traffic profile for the cost model: hours per day with traffic (default usage.endpointBusyHoursPerDay)."""


class TwoTierEndpointConfig(_Model):
    """A TwoTierEndpoint (components/two_tier/): a steady tier on a pool of this stack, a scale-to-zero burst tier."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")
    pool: str
    """The GPU pool of this stack the steady tier runs on."""
    image: str
    """Serving image for the steady tier and the router."""
    burst_platform: Literal["cloud-run", "sagemaker"]
    burst_image: str | None = None
    """Serving image for the burst tier (Artifact Registry / ECR); default ``image``."""
    model_uri: str | None = None
    burst_model_uri: str | None = None
    model_name: str = "recommender"
    model_size_gib: float = Field(1.0, gt=0)
    image_size_gib: float = Field(8.0, gt=0)
    steady_replicas: int = Field(1, ge=1)
    steady_max_replicas: int | None = Field(None, ge=1)
    target_concurrency: int = Field(8, ge=1)
    spill_threshold: int | None = Field(None, gt=0)
    """Steady-tier in-flight requests at which requests spill (default steadyReplicas x targetConcurrency)."""
    burst_max_scale: int = Field(4, ge=1)
    burst_region: str | None = None
    burst_project: str | None = None
    scale_down_delay_seconds: int = Field(300, ge=0)
    hold_requests: bool = True
    router_replicas: int = Field(2, ge=1)
    cpu: float | None = Field(None, gt=0)
    memory_gib: float | None = Field(None, gt=0)


class TrainingPoolConfig(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,19}$")
    accelerator: str
    accelerators_per_node: int | None = Field(None, ge=1)
    instance_type: str | None = None
    max_nodes: int = Field(1, ge=1)
    efa: bool = False
    compact_placement: bool | None = None
    node_vcpus: int | None = Field(None, ge=1)
    """existing clusters: vCPUs of the pool's GPU nodes (their shape is not in the catalog)."""
    node_memory_gib: float | None = Field(None, gt=0)
    """existing clusters: memory of the pool's GPU nodes, GiB."""


class TrainingTeamConfig(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,19}$")
    namespace: str | None = None
    gpu_quota: dict[str, int] = Field(default_factory=dict)
    """GPUs per training pool this team may use (nominal quota)."""


class TrainingJobConfig(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")
    team: str
    image: str
    """Training image (workloads/training/Dockerfile; its entrypoint keeps exit code 75)."""
    pool: str | None = None
    nodes: int = Field(1, ge=1)
    gpus_per_node: int | None = Field(None, ge=1)
    preset: str = "tiny"
    generate_data: bool = True
    data_url: str | None = None
    """Copy the dataset from this bucket URL instead of generating it (its bucket must be in training.dataBuckets)."""
    extra_args: list[str] = Field(default_factory=list)
    max_restarts: int = Field(10, ge=0)


class TrainingConfig(_Model):
    pools: list[TrainingPoolConfig] = Field(min_length=1)
    capacity_fallback: list[Literal["spot", "on_demand", "reserved"]] | None = None
    """Capacity types in the order to try them. Default spot, then on-demand (on-demand only on existing clusters)."""
    teams: list[TrainingTeamConfig] = Field(default_factory=lambda: [TrainingTeamConfig(name="training")])
    checkpoint_bucket_url: str | None = None
    """Use this bucket for checkpoints instead of creating one."""
    checkpoint_retention_days: int = Field(30, ge=1)
    data_buckets: list[str] = Field(default_factory=list)
    """Buckets the teams may read training data from (s3:// on AWS, gs:// on GCP)."""
    jobs: list[TrainingJobConfig] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)


class BatchTriggerConfig(_Model):
    kind: Literal["bucket-objects", "schedule", "none"]
    prefix_uri: str | None = None
    """bucket-objects: the prefix to watch (default: the dataset URI)."""
    suffix: str | None = None
    schedule: str | None = None
    """schedule: five-field cron, UTC."""
    queue: str | None = None
    """kueue + bucket-objects: the SQS queue or Pub/Sub subscription the bucket notifies."""


class BatchJobConfig(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")
    platform: Literal["cloud-run", "aws-batch", "sagemaker", "kueue"]
    image: str
    """Workload image: the gpuplane-training image (workloads/training/Dockerfile) for the reference batch inference."""
    dataset_uri: str
    output_uri: str
    model_uri: str | None = None
    """The training export the tasks score with (GPUPLANE_MODEL_URI); required with the reference workload."""
    items: int = Field(ge=1)
    items_per_second: float = Field(gt=0)
    """Throughput of one task (items/s): an estimate, or measured with benchmarks/batch_throughput.py."""
    throughput_basis: Literal["estimate", "measured"] = "estimate"
    accelerator: str | None = None
    gpus: int | None = Field(None, ge=0)
    cpu: float | None = Field(None, gt=0)
    memory_gib: float | None = Field(None, gt=0)
    image_size_gib: float | None = Field(None, gt=0)
    model_size_gib: float | None = Field(None, ge=0)
    max_attempts: int = Field(3, ge=1)
    spot: bool | None = None
    max_task_seconds: int | None = Field(None, ge=60)
    tasks: int | None = Field(None, ge=1)
    parallelism: int | None = Field(None, ge=1)
    model_version: str = "1"
    reprocess_on_new_model_version: bool = False
    trigger: BatchTriggerConfig | None = None
    runs_per_month: float | None = Field(None, ge=0)
    """Cost model: runs a month (default 30 with a trigger, 1 without)."""
    region: str | None = None
    """cloud-run / aws-batch / sagemaker: default the cluster's region."""
    project: str | None = None
    """cloud-run: default the cluster's project."""
    sagemaker_mode: Literal["processing", "transform"] | None = None
    team: str | None = None
    """kueue: the training team whose namespace and LocalQueue admit the job (needs gpuplane:training)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """More tags on the job's resources (e.g. a policy exemption with its reason)."""


class FeatureStoreConfig(_Model):
    target: Literal["local", "kubernetes", "aws", "gcp"]
    """local (SQLite + files), kubernetes (Redis in the cluster), aws or gcp."""
    engine: Literal["feast", "managed"] = "feast"
    image: str | None = None
    """Image with gpuplane's features extra, for the feature server and materialisation CronJob."""
    online_store: Literal["redis", "dynamodb", "datastore", "bigtable", "sagemaker", "optimized"] | None = None
    offline_store: Literal["file", "athena", "bigquery", "s3"] | None = None
    offline_bucket: str | None = None
    materialize_schedule: str | None = None
    server_replicas: int | None = Field(None, ge=1)
    serve_endpoints: bool = True
    """Point the stack's knative endpoints at the feature server (``--feature-server-url``)."""


class ModelRegistryConfig(_Model):
    """MLflow tracking and model registry (components/model_registry/)."""

    target: Literal["local", "kubernetes", "aws", "gcp"]
    """local (SQLite + a directory), kubernetes (in-cluster Postgres), aws (RDS + S3) or gcp (Cloud SQL + GCS)."""
    namespace: str | None = None
    artifact_bucket: str | None = None
    """Use this bucket (s3://name[/prefix], gs://...) for artifacts instead of creating one; required on kubernetes."""
    instance_class: str | None = None
    """RDS instance class / Cloud SQL tier (default db.t4g.micro / db-custom-1-3840)."""
    storage_gib: int | None = Field(None, ge=10)
    high_availability: bool = False
    credentials_secret: str | None = None


class PipelineTriggerConfig(_Model):
    kind: Literal["bucket-events", "schedule", "manual"]
    """bucket-events (S3 -> SQS / GCS -> Pub/Sub), schedule (cron), or manual (the local loop)."""
    data_url: str
    """The event log the training step reads (s3://, gs://, or a local directory for manual)."""
    schedule: str | None = None
    suffix: str | None = None


class PipelineCanaryConfig(_Model):
    percent: int = Field(10, ge=0, le=100)
    window_seconds: int = Field(600, ge=60)
    max_error_rate: float = Field(0.01, ge=0, le=1)
    max_p99_ms: float = Field(500.0, gt=0)
    prometheus_url: str | None = None


class PipelineReplicaConfig(_Model):
    """A serving cloud's bucket the pipeline copies each promoted model to (components/model_pipeline/replication.py)."""

    url: str = Field(pattern=r"^(s3|gs)://")
    region: str
    model_size_gib: float = Field(gt=0)


class ModelPipelineConfig(_Model):
    """The model loop (components/model_pipeline/): retrain, evaluate, gate, canary."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,23}$")
    trigger: PipelineTriggerConfig
    team: str | None = None
    """Training team that runs it (default: the training config's first team)."""
    image: str | None = None
    """Training image with the workloads (default: the first training job's image)."""
    pool: str | None = None
    nodes: int = Field(1, ge=1)
    preset: str = "tiny"
    extra_args: list[str] = Field(default_factory=list)
    model_name: str = "recommender"
    metric: Literal["ndcg_at_10", "hit_rate_at_10"] = "ndcg_at_10"
    min_improvement: float = Field(0.002, ge=0)
    endpoint: str | None = None
    """Name of a knative endpoint of this stack to roll promoted models out to."""
    canary: PipelineCanaryConfig | None = None
    replicate_to: list[PipelineReplicaConfig] = Field(default_factory=list)
    """Buckets in other clouds/regions each promoted model is copied to (train here, serve there)."""


class ObservabilityConfig(_Model):
    """Prometheus, Grafana dashboards and alert rules for the stack's cluster (components/observability/).
    Unset fields take the component's defaults."""

    namespace: str | None = None
    """Namespace of the monitoring stack (component default ``monitoring``)."""
    retention_days: int | None = Field(None, ge=1)
    """Days of samples Prometheus keeps (default 15)."""
    grafana: bool | None = None
    """Install Grafana with the dashboards (default true)."""
    cold_start_slo_seconds: float | None = Field(None, gt=0)
    """Cold-start SLO behind the GpuplaneColdStartSloBreach alert, seconds (default 120)."""
    idle_gpu_utilization_percent: float | None = Field(None, gt=0, le=100)
    """A GPU below this utilisation is idle (default 5)."""
    idle_gpu_minutes: int | None = Field(None, ge=1)
    """Minutes idle before GpuplaneIdleGpu fires (default 30)."""


class UsageProfile(_Model):
    """Usage assumptions the cost model prices (monthly figures use 730 hours)."""

    training_hours_per_month: float = Field(200.0, ge=0, le=744)
    """Hours per month training pools run above their minimum."""
    endpoint_busy_hours_per_day: float = Field(6.0, ge=0, le=24)
    """Hours per day an endpoint serves traffic (drives scale-to-zero cost)."""
    storage_gib: float = Field(500.0, ge=0)
    """Bytes kept in buckets (checkpoints, features, models), GiB."""
    expected_node_fraction: float = Field(0.25, ge=0, le=1)
    """Expected nodes = min + fraction x (max - min), for autoscaled pools without a better estimate."""
    online_reads_per_month: float = Field(10_000_000.0, ge=0)
    """Online feature lookups per month (prices request-priced stores: DynamoDB, Datastore)."""
    online_storage_gib: float = Field(5.0, ge=0)
    """Data in the online feature store, GiB."""
    rollouts_per_month: float = Field(4.0, ge=0)
    """Models the model pipeline promotes per month (each copied to every replicateTo bucket)."""


class StackConfig(_Model):
    environment: Literal["dev", "staging", "prod"] = "dev"
    """prod turns on deletion protection and is held to the production policies."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags/labels on every taggable resource; team and cost-center are expected by policy."""
    cluster: ClusterConfig
    gpu_pools: list[GpuPoolConfig] = Field(default_factory=list)
    inference_endpoints: list[InferenceEndpointConfig] = Field(default_factory=list)
    two_tier_endpoints: list[TwoTierEndpointConfig] = Field(default_factory=list)
    """Steady tier on a pool plus a scale-to-zero serverless burst tier, behind one router."""
    training: TrainingConfig | None = None
    """A spot training cluster (Kueue, JobSet, checkpoint bucket) and reference jobs."""
    feature_store: FeatureStoreConfig | None = None
    model_registry: ModelRegistryConfig | None = None
    """MLflow tracking and registry for the model loop."""
    model_pipeline: ModelPipelineConfig | None = None
    """The model loop (needs modelRegistry; on a cluster also training)."""
    batch_jobs: list[BatchJobConfig] = Field(default_factory=list)
    """Finite batches over datasets (batch inference, feature extraction, evaluation), sharded to fit each platform."""
    observability: ObservabilityConfig | None = None
    """kube-prometheus-stack, GPU/serving/training monitors, dashboards and alerts on the stack's cluster."""
    """The retail feature definition (workloads/features) on the stack's target."""
    usage: UsageProfile = Field(default_factory=lambda: UsageProfile())

    @model_validator(mode="after")
    def _names_and_references(self) -> StackConfig:
        all_endpoints = [e.name for e in self.inference_endpoints] + [t.name for t in self.two_tier_endpoints]
        for kind, names in (("pool", [p.name for p in self.gpu_pools]), ("endpoint", all_endpoints)):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind} names must be unique; repeated: {dupes}")
        pools = {p.name for p in self.gpu_pools}
        for i, e in enumerate(self.inference_endpoints):
            if e.pool and e.pool not in pools:
                raise ValueError(f"inferenceEndpoints[{i}].pool '{e.pool}' is not a pool of this stack. Use one of {sorted(pools)} or drop it for CPU")
        for i, t in enumerate(self.two_tier_endpoints):
            if t.pool not in pools:
                raise ValueError(f"twoTierEndpoints[{i}].pool '{t.pool}' is not a pool of this stack. Use one of {sorted(pools)}")
        teams = {t.name for t in self.training.teams} if self.training else set()
        for i, j in enumerate(self.batch_jobs):
            if j.platform == "kueue" and j.team not in teams:
                raise ValueError(f"batchJobs[{i}].team {j.team!r} is not a training team of this stack; a kueue job runs in a team's queue. Use one of {sorted(teams)} (gpuplane:training.teams)")
        mp = self.model_pipeline
        if mp is not None:
            if self.model_registry is None:
                raise ValueError("modelPipeline needs modelRegistry: the loop registers challengers there. Add gpuplane:modelRegistry")
            if self.model_registry.target != "local" and self.training is None:
                raise ValueError("modelPipeline on a cluster needs training (its spot training cluster runs the training step). Add gpuplane:training")
            endpoints = {e.name for e in self.inference_endpoints}
            if mp.endpoint and mp.endpoint not in endpoints:
                raise ValueError(f"modelPipeline.endpoint '{mp.endpoint}' is not an endpoint of this stack. Use one of {sorted(endpoints)}")
        return self


def _path(loc: tuple[int | str, ...]) -> str:
    out = f"{NAMESPACE}:{loc[0]}" if loc else NAMESPACE
    for part in loc[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


_FIXES = {
    "extra_forbidden": "remove it or check its spelling (keys are camelCase)",
    "missing": "add it",
    "literal_error": "use one of the allowed values",
}


def parse_config(values: dict[str, Any]) -> StackConfig:
    """Build ``StackConfig`` from ``{"gpuplane:key": value}`` (values decoded), or raise ``StackConfigError``."""
    data: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        ns, _, name = key.partition(":")
        if ns == NAMESPACE:
            data[name] = value
    try:
        return StackConfig.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            loc = tuple(p for p in err["loc"] if p not in ("function-after",))
            got = err.get("input")
            got_text = "" if err["type"] in ("missing",) or isinstance(got, dict) else f" (got {json.dumps(got, default=str)})"
            msg = err["msg"].removeprefix("Value error, ")
            fix = _FIXES.get(err["type"])
            problems.append(f"{_path(loc)}: {msg}{got_text}" + (f". To fix: {fix}." if fix else "."))
    raise StackConfigError("invalid stack config:\n  - " + "\n  - ".join(problems))


def load_config() -> StackConfig:
    """Read the ``gpuplane:`` namespace of the running program's config (CLI or mock runtime).

    ``pulumi.Config`` reads one key at a time and cannot list keys, and an unknown key must
    fail, so the whole config map is read from the SDK's runtime (explicit config first, then
    the ``PULUMI_CONFIG`` bag the CLI passes).
    """
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = {}
    raw.update(runtime_config.get_config_env() or {})
    raw.update(runtime_config.CONFIG.get())
    values: dict[str, Any] = {}
    for key, value in raw.items():
        key = key.replace(f"{NAMESPACE}:config:", f"{NAMESPACE}:", 1)  # older CLIs' bag form
        if not key.startswith(f"{NAMESPACE}:"):
            continue
        try:
            values[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            values[key] = value
    return parse_config(values)
