"""ModelPipeline's spec: args, the frozen ``ModelPipelinePlan``, the pure planners (``plan_model_pipeline``,
``plan_canary``), the local steps, declared features and ``PipelineCloud`` (what a cloud backend
hands the Argo side).

Creates nothing. Backends: ``argo.py`` (Argo Events and Workflows on the training cluster, every
target), ``aws.py`` (S3 notifications to SQS, IRSA) and ``gcp.py`` (GCS notifications to Pub/Sub,
Workload Identity); component.py's module docstring describes the loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Required, TypedDict

import pulumi

from components.errors import ComponentInputError, Problems
from components.features import Feature, FeatureSupport
from components.inference import InferenceEndpoint
from components.model_pipeline.replication import ReplicaArgs, ReplicaPlan, plan_replicas
from components.model_registry import ModelRegistry
from components.training import SpotTrainingCluster
from components.training_job import plan_training_job

TYPE_TOKEN = "gpuplane:index:ModelPipeline"
ARGO_HELM_REPO = "https://argoproj.github.io/argo-helm"
ARGO_WORKFLOWS_CHART, ARGO_WORKFLOWS_VERSION = "argo-workflows", "1.0.18"
ARGO_EVENTS_CHART, ARGO_EVENTS_VERSION = "argo-events", "2.4.22"
ARGO_API = "argoproj.io/v1alpha1"
RUN_PLACEHOLDER = "gpuplanerunname"
"""Stands for ``{{workflow.name}}`` while the JobSet is planned (it must be a DNS label then)."""
EXIT_REJECTED = 3
"""The promote step's exit code for "the gate kept the champion"."""

TARGETS = ("local", "kubernetes", "aws", "gcp")
IMPLEMENTATIONS = {"local": "pipeline-local", "kubernetes": "argo-kubernetes", "aws": "argo-aws", "gcp": "argo-gcp"}
TRIGGERS = ("bucket-events", "schedule", "manual")
"""``manual``: the local loop, run by ``gpuplane pipeline`` (local target only)."""
FEATURES: dict[str, FeatureSupport] = {
    "pipeline-local": FeatureSupport(
        "pipeline-local",
        frozenset(),
        {
            Feature.BUCKET_EVENTS: "the local loop runs when `gpuplane pipeline` is invoked on a new day of events",
            Feature.SCHEDULED_RETRAINING: "a laptop has no scheduler gpuplane manages; run `gpuplane pipeline` from cron",
            Feature.SPOT: "local training runs as local processes",
            Feature.CANARY_ROLLOUT: "the local loop's canary is the router's weighted split (gpuplane pipeline), not a cluster object",
        },
    ),
    "argo-kubernetes": FeatureSupport(
        "argo-kubernetes",
        frozenset({Feature.SCHEDULED_RETRAINING, Feature.CANARY_ROLLOUT}),
        {
            Feature.BUCKET_EVENTS: "an existing cluster's buckets have no notification wiring or identity gpuplane can create; use trigger kind 'schedule'",
            Feature.SPOT: "an existing cluster's capacity types belong to its owner (the training cluster runs on-demand)",
        },
    ),
    "argo-aws": FeatureSupport("argo-aws", frozenset({Feature.BUCKET_EVENTS, Feature.SCHEDULED_RETRAINING, Feature.SPOT, Feature.CANARY_ROLLOUT})),
    "argo-gcp": FeatureSupport("argo-gcp", frozenset({Feature.BUCKET_EVENTS, Feature.SCHEDULED_RETRAINING, Feature.SPOT, Feature.CANARY_ROLLOUT})),
}
CANARY_PLATFORMS = ("knative",)
"""Endpoints the pipeline rolls out by itself (it reads the canary's live metrics from Prometheus)."""

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_BUCKET_PREFIX = re.compile(r"(s3|gs)://([a-z0-9][a-z0-9._-]{1,61}[a-z0-9])(/[A-Za-z0-9_./=-]*)?")
_CRON = re.compile(r"^(\S+\s+){4}\S+$")
EVENT_NAME = "new-data"
"""The Argo Events event name every trigger emits."""
GATE_METRICS = ("ndcg_at_10", "hit_rate_at_10")
"""What workloads.pipeline.evaluate records (workloads/pipeline/gate.py METRICS)."""


class TriggerArgs(TypedDict, total=False):
    """What starts a run."""

    kind: Required[Literal["bucket-events", "schedule", "manual"]]
    """``bucket-events`` (new objects under ``data_url``: S3 -> SQS on aws, GCS -> Pub/Sub on gcp), ``schedule``, or
    ``manual`` (local target only: ``gpuplane pipeline`` runs when a new day lands)."""
    data_url: Required[str]
    """``s3://bucket/prefix`` / ``gs://bucket/prefix`` (a local directory for ``manual``) of the event log (a
    ``workloads.data.generate`` directory) the training step reads; with ``bucket-events`` new objects under it start a run. Its bucket must be one of
    the training cluster's ``data_buckets``."""
    schedule: str
    """``schedule``: five-field cron (UTC). Default ``0 3 * * *`` (daily at 03:00)."""
    suffix: str
    """``bucket-events``: only objects whose key ends with this start a run (e.g. the day's ``_SUCCESS`` marker).
    Default ``_SUCCESS``."""


class GateArgs(TypedDict, total=False):
    """The evaluation gate (workloads.pipeline.promote)."""

    metric: str
    """Held-out metric the challenger must win on: ``ndcg_at_10`` or ``hit_rate_at_10``. Default ``ndcg_at_10``."""
    min_improvement: float
    """How much the challenger must beat the champion (and the popularity baseline) by, absolute
    (promote ``--margin``). Default 0.002, the local gate's default."""


class CanaryArgs(TypedDict, total=False):
    """The rollout of a promoted model (Knative endpoints)."""

    percent: int
    """Share of requests the challenger gets during the canary, 0-100. Default 10."""
    window_seconds: int
    """How long the canary runs before its live metrics decide. Default 600."""
    max_error_rate: float
    """Highest 5xx share of the challenger's requests over the window (0-1). Default 0.01."""
    max_p99_ms: float
    """Highest p99 request latency of the challenger over the window, ms. Default 500."""
    prometheus_url: str
    """Prometheus HTTP API base the verify step queries. Default
    ``http://prometheus-operated.monitoring.svc.cluster.local:9090`` (kube-prometheus-stack)."""


class ModelPipelineArgs(TypedDict, total=False):
    """Arguments of ``ModelPipeline``."""

    target: Required[Literal["local", "kubernetes", "aws", "gcp"]]
    """``local`` (nothing created; ``gpuplane pipeline`` runs the loop), or the cluster kind of
    ``training_cluster`` (``kubernetes`` existing, ``aws`` EKS, ``gcp`` GKE). Required."""
    registry: Required[ModelRegistry]
    """Where challengers are registered and champions are read."""
    trigger: Required[TriggerArgs]
    """What starts a run; see TriggerArgs."""
    training_cluster: NotRequired[SpotTrainingCluster]
    """The spot training cluster whose team queue runs the training step. Required on a cluster."""
    team: NotRequired[str]
    """The training cluster's team that runs the pipeline (its namespace, queue and identity). Required on a cluster."""
    image: NotRequired[pulumi.Input[str]]
    """Training image with the workloads (training and pipeline). Required on a cluster."""
    pool: NotRequired[str]
    """Training pool. Default: the cluster's only pool."""
    nodes: NotRequired[int]
    """Nodes in the training gang. Default 1."""
    preset: NotRequired[str]
    """Training preset. Default ``tiny``."""
    extra_args: NotRequired[list[str]]
    """More training flags."""
    model_name: NotRequired[str]
    """Registered model name. Default ``recommender``."""
    gate: NotRequired[GateArgs]
    """The evaluation gate; see GateArgs."""
    endpoint: NotRequired[InferenceEndpoint]
    """The endpoint to roll promoted models out to (Knative). Default: none (register and promote only)."""
    canary: NotRequired[CanaryArgs]
    """The rollout; see CanaryArgs. Only with ``endpoint``."""
    replicate_to: NotRequired[list[ReplicaArgs]]
    """Buckets in other clouds or regions that each promoted model is copied to (train here, serve there);
    see components/model_pipeline/replication.py. Default: none."""
    credentials_secret: NotRequired[str]
    """kubernetes: a Secret in the team's namespace whose keys become the environment of the evaluate and publish
    pods, for buckets no workload identity covers (MinIO: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_ENDPOINT_URL). Default: none (aws and gcp use IRSA / Workload Identity)."""
    install_argo: NotRequired[bool]
    """Install Argo Workflows and Argo Events with Helm (once per cluster). False: present. Default True."""
    tags: NotRequired[dict[str, str]]
    """Tags/labels on every taggable child, merged over the training cluster's."""


@dataclass(frozen=True)
class CanaryPlan:
    percent: int
    window_seconds: int
    max_error_rate: float
    max_p99_ms: float
    prometheus_url: str


@dataclass(frozen=True)
class TriggerPlan:
    kind: str
    scheme: str
    bucket: str
    prefix: str
    schedule: str | None
    suffix: str

    @property
    def data_url(self) -> str:
        if not self.scheme:
            return self.prefix  # a local directory
        return f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")


@dataclass(frozen=True)
class ModelPipelinePlan:
    name: str
    target: str
    implementation: str
    cloud: str
    region: str | None
    namespace: str
    team: str | None
    queue: str | None
    capacity_fallback: tuple[str, ...]
    trigger: TriggerPlan
    model_name: str
    metric: str
    min_improvement: float
    canary: CanaryPlan | None
    endpoint: str | None
    install_argo: bool
    tags: dict[str, str]
    features: FeatureSupport
    job: Any = None
    """The TrainingJobPlan of the train step (named RUN_PLACEHOLDER); None locally."""
    credentials_secret: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    replicas: tuple[ReplicaPlan, ...] = ()
    """Copies of each promoted model to other clouds' buckets, priced (replication.py)."""

    @property
    def service_account(self) -> str:
        return f"{self.name}-workflow"

    @property
    def sensor_service_account(self) -> str:
        return f"{self.name}-sensor"

    @property
    def event_source_service_account(self) -> str:
        return f"{self.name}-events"

    def summary(self) -> dict[str, Any]:
        c = self.canary
        return {
            "implementation": self.implementation,
            "target": self.target,
            "cloud": self.cloud,
            "region": self.region,
            "namespace": self.namespace,
            "trigger": {"kind": self.trigger.kind, "dataUrl": self.trigger.data_url, "schedule": self.trigger.schedule, "suffix": self.trigger.suffix},
            "training": None
            if self.job is None
            else {
                "team": self.team,
                "queue": self.queue,
                "pool": self.job.pool.name,
                "accelerator": self.job.pool.accelerator,
                "nodes": self.job.nodes,
                "gpusPerNode": self.job.gpus_per_node,
                "capacityFallback": list(self.capacity_fallback),
            },
            "gate": {"modelName": self.model_name, "metric": self.metric, "minImprovement": self.min_improvement},
            "rollout": None
            if c is None
            else {"endpoint": self.endpoint, "percent": c.percent, "windowSeconds": c.window_seconds, "maxErrorRate": c.max_error_rate, "maxP99Ms": c.max_p99_ms},
            "replication": [r.summary() for r in self.replicas],
            "argo": {"workflows": ARGO_WORKFLOWS_VERSION, "events": ARGO_EVENTS_VERSION, "installed": self.install_argo},
            "tags": dict(self.tags),
        }


@dataclass
class PipelineCloud:
    """What a cloud implementation made for the Kubernetes side."""

    event_source: dict[str, Any] | None
    """The EventSource spec's source section, e.g. ``{"sqs": {...}}``; None: the calendar."""
    event_source_annotations: pulumi.Input[dict[str, str]] | None = None
    workflow_annotations: pulumi.Input[dict[str, str]] | None = None
    description: pulumi.Input[str] | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)


CloudPart = Callable[[pulumi.ComponentResource, str, "ModelPipelinePlan", SpotTrainingCluster, pulumi.Output[Any], dict[str, str] | None], PipelineCloud]
"""A cloud backend's ``create_pipeline_cloud``: bucket notifications, queues or topics, identities."""


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_KEYS = set(ModelPipelineArgs.__annotations__)
_TRIGGER_KEYS = set(TriggerArgs.__annotations__)
_GATE_KEYS = set(GateArgs.__annotations__)
_CANARY_KEYS = set(CanaryArgs.__annotations__)


def plan_canary(p: Problems, path: str, raw: Any) -> CanaryPlan | None:
    """Validate canary args (shared with InferenceEndpoint's canary); adds problems, returns None on error."""
    if not isinstance(raw, dict):
        p.add(path, raw, "must be a dict.", "give e.g. {'percent': 10, 'window_seconds': 600}.")
        return None
    ok = True
    for key in sorted(set(raw) - _CANARY_KEYS):
        p.add(f"{path}.{key}", raw[key], "is not a field of the canary.", f"use one of {sorted(_CANARY_KEYS)}.")
        ok = False
    percent = raw.get("percent", 10)
    if not _is_int(percent) or not 0 <= percent <= 100:
        p.add(f"{path}.percent", percent, "must be a whole percentage from 0 to 100.", "give the challenger's share of requests, e.g. 10.")
        ok = False
    window = raw.get("window_seconds", 600)
    if not _is_int(window) or window < 60:
        p.add(f"{path}.window_seconds", window, "must be a whole number of seconds, at least 60 (one Prometheus rate window).", "leave it unset for 600.")
        ok = False
    err = raw.get("max_error_rate", 0.01)
    if not _is_number(err) or not 0 <= err <= 1:
        p.add(f"{path}.max_error_rate", err, "must be a fraction from 0 to 1.", "give e.g. 0.01 (1% of requests may fail).")
        ok = False
    p99 = raw.get("max_p99_ms", 500.0)
    if not _is_number(p99) or p99 <= 0:
        p.add(f"{path}.max_p99_ms", p99, "must be a positive number of milliseconds.", "give e.g. 500.")
        ok = False
    url = raw.get("prometheus_url", "http://prometheus-operated.monitoring.svc.cluster.local:9090")
    if not isinstance(url, str) or not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9_./-]*)?", url):
        p.add(f"{path}.prometheus_url", url, "is not an http(s) URL.", "give the Prometheus base URL, e.g. http://prometheus-operated.monitoring.svc:9090.")
        ok = False
    if not ok:
        return None
    return CanaryPlan(int(percent), int(window), float(err), float(p99), str(url).rstrip("/"))


def plan_model_pipeline(name: str, args: ModelPipelineArgs) -> ModelPipelinePlan:
    """Validate everything (trigger, training step, gate, canary) and raise once."""
    p = Problems("ModelPipeline", name)
    for key in sorted(set(args) - _KEYS):
        p.add(key, args[key], "is not an argument of ModelPipeline.", f"use one of {sorted(_KEYS)}.")  # type: ignore[literal-required]
    raw_target = args.get("target")
    if raw_target not in TARGETS:
        p.add("target", raw_target, "is not a pipeline target.", f"use one of {list(TARGETS)}.")
        p.raise_if_any()
    target = str(raw_target)
    implementation = IMPLEMENTATIONS[target]
    features = FEATURES[implementation]
    if not isinstance(name, str) or not _DNS_LABEL.match(name) or len(name) > 24:
        # Run names are <name>-xxxxx and the JobSet's pod hostnames <run>-worker-0-0 must stay DNS labels.
        p.add("name", name, "is not a valid pipeline name: lower-case letters, digits and '-', at most 24 characters.", "rename it, e.g. 'recs-loop'.")
    registry = args.get("registry")
    if not isinstance(registry, ModelRegistry):
        p.add("registry", registry, "is required and must be a ModelRegistry.", "pass the ModelRegistry that holds the champion.")
    elif (registry.plan.target == "local") != (target == "local"):
        p.add("registry", registry.plan.name, f"is a {registry.plan.target} registry, which a {target} pipeline cannot reach.", "use a registry on the same side (local with local, a cluster registry with a cluster pipeline).")

    # -- trigger ---------------------------------------------------------------------------------
    requested: list[tuple[Feature, str, object]] = []
    raw_trigger: Any = args.get("trigger")
    trigger = TriggerPlan("schedule", "s3", "unknown", "", "0 3 * * *", "_SUCCESS")
    if not isinstance(raw_trigger, dict):
        p.add("trigger", raw_trigger, "is required and must be a dict.", "give {'kind': 'bucket-events' or 'schedule', 'data_url': 's3://bucket/events'}.")
    else:
        for key in sorted(set(raw_trigger) - _TRIGGER_KEYS):
            p.add(f"trigger.{key}", raw_trigger[key], "is not a field of the trigger.", f"use one of {sorted(_TRIGGER_KEYS)}.")
        kind = raw_trigger.get("kind")
        if kind not in TRIGGERS:
            p.add("trigger.kind", kind, "is not an event source kind.", f"use one of {list(TRIGGERS)}.")
        elif (kind == "manual") != (target == "local"):
            if kind == "manual":
                p.add("trigger.kind", kind, f"is the local loop's trigger; a {target} pipeline needs an event source.", "use 'bucket-events' or 'schedule'.")
            else:
                requested.append((Feature.BUCKET_EVENTS if kind == "bucket-events" else Feature.SCHEDULED_RETRAINING, "trigger.kind", kind))
        elif kind != "manual":
            requested.append((Feature.BUCKET_EVENTS if kind == "bucket-events" else Feature.SCHEDULED_RETRAINING, "trigger.kind", kind))
        url = raw_trigger.get("data_url")
        m = _BUCKET_PREFIX.fullmatch(url) if isinstance(url, str) else None
        if target == "local" and isinstance(url, str) and url and "://" not in url:
            m = re.fullmatch(r"()()(.*)", url)  # a local directory: scheme and bucket empty
        if m is None:
            p.add("trigger.data_url", url, "is not a bucket URL.", "write it like s3://bucket/events or gs://bucket/events.")
        schedule = raw_trigger.get("schedule", "0 3 * * *") if kind == "schedule" else None
        if kind == "schedule" and (not isinstance(schedule, str) or not _CRON.fullmatch(schedule.strip())):
            p.add("trigger.schedule", schedule, "is not a five-field cron schedule.", "write it like '0 3 * * *'.")
        if kind != "schedule" and "schedule" in raw_trigger:
            p.add("trigger.schedule", raw_trigger["schedule"], "applies only to kind 'schedule'.", "remove it.")
        suffix = raw_trigger.get("suffix", "_SUCCESS")
        if not isinstance(suffix, str):
            p.add("trigger.suffix", suffix, "must be a string.", "give e.g. '_SUCCESS' or '.parquet'.")
            suffix = "_SUCCESS"
        if m is not None:
            prefix = (m.group(3) or "") if not m.group(1) else (m.group(3) or "").strip("/")
            trigger = TriggerPlan(str(kind), m.group(1), m.group(2), prefix, schedule.strip() if isinstance(schedule, str) else None, suffix)
            cloud_scheme = {"aws": "s3", "gcp": "gs"}.get(target)
            if kind == "bucket-events" and cloud_scheme and m.group(1) != cloud_scheme:
                p.add("trigger.data_url", url, f"is on {m.group(1)}://; {target} bucket events come from {cloud_scheme}:// buckets.", f"give an {cloud_scheme}:// URL or use kind 'schedule'.")

    # -- gate ------------------------------------------------------------------------------------
    gate: Any = args.get("gate") or {}
    if not isinstance(gate, dict):
        p.add("gate", gate, "must be a dict.", "give {'metric': 'ndcg_at_10', 'min_improvement': 0.01}.")
        gate = {}
    for key in sorted(set(gate) - _GATE_KEYS):
        p.add(f"gate.{key}", gate[key], "is not a field of the gate.", f"use one of {sorted(_GATE_KEYS)}.")
    metric = gate.get("metric", "ndcg_at_10")
    if metric not in GATE_METRICS:
        p.add("gate.metric", metric, "is not a metric the evaluation step records.", f"use one of {list(GATE_METRICS)}.")
    margin = gate.get("min_improvement", 0.002)
    if not _is_number(margin) or margin < 0:
        p.add("gate.min_improvement", margin, "must be a number of at least 0.", "give e.g. 0.01.")
        margin = 0.002
    model_name = args.get("model_name", "recommender")
    if not isinstance(model_name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", model_name):
        p.add("model_name", model_name, "is not a registered model name.", "use letters, digits, '_' and '-'.")

    # -- endpoint and canary ---------------------------------------------------------------------
    endpoint = args.get("endpoint")
    canary: CanaryPlan | None = None
    if endpoint is not None:
        if not isinstance(endpoint, InferenceEndpoint):
            p.add("endpoint", endpoint, "is not an InferenceEndpoint.", "pass the endpoint to roll out to, or drop it.")
        else:
            requested.append((Feature.CANARY_ROLLOUT, "endpoint", endpoint.plan.name))
            if endpoint.plan.platform not in CANARY_PLATFORMS:
                p.add(
                    "endpoint", endpoint.plan.name,
                    f"is a {endpoint.plan.platform} endpoint; the pipeline rolls out only to {list(CANARY_PLATFORMS)} endpoints (it reads the canary's live metrics from Prometheus).",
                    "set the canary on the InferenceEndpoint itself (its canary argument: Cloud Run revision traffic / SageMaker variant weights) and drop endpoint here.",
                )
            elif args.get("canary") is not None and endpoint.plan.rollout_managed_by != "pipeline":
                p.add(
                    "endpoint", endpoint.plan.name,
                    f"is rollout_managed_by={endpoint.plan.rollout_managed_by!r}: the canary patches its Service (traffic, revision name, model), and each `pulumi up` that updates the Service would put the program's back.",
                    f"set rollout_managed_by='pipeline' on InferenceEndpoint '{endpoint.plan.name}'.",
                )
            elif not (endpoint.plan.model_uri or "").startswith(("s3://", "gs://")):
                p.add("endpoint", endpoint.plan.name, f"loads its weights from {endpoint.plan.model_uri!r}; a rollout swaps an s3:// / gs:// model_uri.", "give the endpoint a bucket model_uri.")
        canary = plan_canary(p, "canary", args.get("canary") or {})
    elif "canary" in args:
        p.add("canary", args.get("canary"), "needs an endpoint to roll out to.", "add endpoint, or remove canary.")

    # -- training step ---------------------------------------------------------------------------
    job = None
    team = queue = None
    namespace = name if isinstance(name, str) else "pipeline"
    fallback: tuple[str, ...] = ()
    tc = args.get("training_cluster")
    region: str | None = None
    cloud = "local"
    if target == "local":
        for key in ("training_cluster", "team", "image", "pool", "nodes", "install_argo", "endpoint", "canary"):
            if key in args:
                p.add(key, "...", "does not apply to the local target (gpuplane pipeline runs the loop on this machine).", "remove it.")
    elif not isinstance(tc, SpotTrainingCluster):
        p.add("training_cluster", tc, f"is required for target {target!r} and must be a SpotTrainingCluster.", "pass the spot training cluster whose queue trains the model.")
    else:
        facts = tc.plan.facts
        cloud, region = facts.cloud, facts.region
        if {"aws": "aws", "gcp": "gcp"}.get(facts.cloud, "kubernetes") != target:
            p.add("target", target, f"does not match the training cluster, which runs on {facts.cloud}.", f"set target to {'kubernetes' if facts.cloud == 'kubernetes' else facts.cloud!r}.")
        if isinstance(registry, ModelRegistry) and registry.plan.target != "local" and registry.plan.cloud != facts.cloud:
            p.add("registry", registry.plan.name, f"runs on {registry.plan.cloud} but training runs on {facts.cloud}.", "keep the registry beside the training cluster.")
        fallback = tc.plan.capacity_fallback
        if "spot" in fallback:
            requested.append((Feature.SPOT, "training_cluster", list(fallback)))
        job_args: dict[str, Any] = {
            "training_cluster": tc,
            "team": args.get("team"),
            "image": args.get("image"),
            "preset": args.get("preset", "tiny"),
            "nodes": args.get("nodes", 1),
            "extra_args": list(args.get("extra_args") or []),
            "data_url": trigger.data_url,
            # Rank 0 exports to /outputs; the wrapper (kubernetes/model_pipeline.py) uploads it for evaluation.
            "command": ["sh", "-c", "placeholder"],
        }
        if "pool" in args:
            job_args["pool"] = args["pool"]
        try:
            job = plan_training_job(RUN_PLACEHOLDER, job_args, tc.plan)  # type: ignore[arg-type]
        except ComponentInputError as err:
            for prob in err.problems:
                path = {"data_url": "trigger.data_url", "command": "image"}.get(prob.path, prob.path)
                p.add(path, prob.value, prob.message, prob.fix)
        if job is not None:
            team, queue, namespace = job.team.name, job.team.local_queue, job.team.namespace
    creds = args.get("credentials_secret")
    if creds is not None:
        if target != "kubernetes":
            p.add("credentials_secret", creds, f"applies only to the kubernetes target ({target} pods use workload identity).", "remove it.")
        elif not isinstance(creds, str) or not _DNS_LABEL.match(creds):
            p.add("credentials_secret", creds, "is not a valid Secret name.", "give the name of a Secret in the team's namespace.")
    replicas = plan_replicas(p, args.get("replicate_to"), cloud, region)
    if replicas and target == "local":
        p.add("replicate_to", [r.url for r in replicas], "needs a cluster target (the copy is a workflow step).", "set target to the training cluster's kind, or drop replicate_to.")
    p.extend(features.check(requested))
    tags = {**(tc.plan.tags if isinstance(tc, SpotTrainingCluster) else {}), **dict(args.get("tags") or {})}
    p.raise_if_any()
    return ModelPipelinePlan(
        name=name,
        target=target,
        implementation=implementation,
        cloud=cloud,
        region=region,
        namespace=namespace,
        team=team,
        queue=queue,
        capacity_fallback=fallback,
        trigger=trigger,
        model_name=str(model_name),
        metric=str(metric),
        min_improvement=float(margin),
        canary=canary,
        endpoint=endpoint.plan.name if isinstance(endpoint, InferenceEndpoint) else None,
        install_argo=bool(args.get("install_argo", True)),
        tags=tags,
        features=features,
        job=job,
        credentials_secret=creds if isinstance(creds, str) else None,
        replicas=replicas,
    )


def local_steps(plan: ModelPipelinePlan, tracking_uri: str) -> list[list[str]]:
    """What ``gpuplane pipeline`` runs for a local plan: the same step CLIs as the cluster's."""
    return [
        ["python", "-m", "workloads.pipeline.evaluate", "--model-dir", "<export dir>", "--data", plan.trigger.data_url, "--tracking-uri", tracking_uri, "--model-name", plan.model_name],
        ["python", "-m", "workloads.pipeline.promote", "--tracking-uri", tracking_uri, "--model-name", plan.model_name, "--metric", plan.metric, "--margin", f"{plan.min_improvement:g}"],
    ]


def feature_support(implementation: str) -> FeatureSupport:
    return FEATURES[implementation]


__all__ = [
    "CanaryArgs",
    "GateArgs",
    "ModelPipelineArgs",
    "ModelPipelinePlan",
    "TriggerArgs",
    "plan_canary",
    "plan_model_pipeline",
]


