"""BatchJob's spec: constants, args, the declared features of every platform and the plan dataclasses.

A BatchJob is a finite batch over a dataset (batch inference, feature extraction, evaluation),
split into N independent tasks. Each task finds its shard from the platform's task-index variable
(``CLOUD_RUN_TASK_INDEX``, ``AWS_BATCH_JOB_ARRAY_INDEX``, ``JOB_COMPLETION_INDEX``; SageMaker
Processing: one task per instance, ``current_host`` ``algo-N`` in /opt/ml/config/resourceconfig.json)
and the task count gpuplane passes in
``GPUPLANE_TASK_COUNT``. The reference workload (``REFERENCE_COMMAND``, run in the
gpuplane-training image, workloads/training/Dockerfile, its entrypoint overridden) takes every
other input from the ``TASK_ENV`` variables below, which are the names ``workloads/batch/contract.py``
reads (tests/workloads/test_batch_contract.py holds the two lists equal): the dataset, output and
manifest URIs, the model export's URI (``model_uri``) and version, the reprocess flag, the run id
(Kubernetes: the Job's name, through the downward API; SageMaker: the pipeline execution id) and
the checkpoint interval. Exit code 75 means "interrupted, my progress is committed: run me again,
elsewhere"; every platform maps it to a retry that does not count as a failure where it can.

Exactly once. Every trigger here (EventBridge, Eventarc, Argo Events) delivers at least once, so
a run can start twice for the same object. The workload keeps a processed-objects manifest under
``manifest_uri``: one entry per (object URI, object generation/etag, model version), written
atomically (create-if-absent) after the object's output is committed. A run whose key is already
in the manifest exits 0 without work; a new object generation or (with
``reprocess_on_new_model_version``) a new model version is a new key. The trigger carries the key
to the run in ``GPUPLANE_OBJECT_URI``, ``GPUPLANE_OBJECT_GENERATION`` and
``GPUPLANE_MODEL_VERSION`` (see triggers.py for each platform's event fields).

Pure: creates nothing. ``planner.py`` turns args into a ``BatchJobPlan`` (fit check, sharding,
cold start, prices); the backends are ``cloud_run.py``, ``aws_batch.py``, ``sagemaker.py`` and
``kueue.py``; ``component.py`` validates, plans and dispatches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Required, TypedDict

import pulumi

from components.cluster import KubernetesCluster
from components.features import Feature, FeatureSupport
from components.training import SpotTrainingCluster

TYPE_TOKEN = "gpuplane:index:BatchJob"
PLATFORMS = ("cloud-run", "aws-batch", "sagemaker", "kueue")
RETRY_EXIT_CODE = 75
"""The workload contract's "interrupted, progress committed: run me again elsewhere" (ARCHITECTURE.md)."""
USAGE_EXIT_CODE = 2
"""The workload contract's usage error: retrying cannot help."""
REFERENCE_COMMAND = ("python", "-m", "workloads.batch")
"""The reference batch-inference workload (workloads/batch; its default ``task`` command, every input from ``TASK_ENV``)."""
DATASET_SCHEMES = {"cloud-run": ("gs",), "aws-batch": ("s3",), "sagemaker": ("s3",), "kueue": ("s3", "gs", "pvc")}
"""Dataset URI schemes each platform's tasks can read with their identity."""
TASK_INDEX_ENV = {  # where a task reads its index (SageMaker: a file, not a variable)
    "cloud-run": "CLOUD_RUN_TASK_INDEX",
    "aws-batch": "AWS_BATCH_JOB_ARRAY_INDEX",
    "sagemaker": "/opt/ml/config/resourceconfig.json:current_host",
    "kueue": "JOB_COMPLETION_INDEX",
}
# Environment gpuplane sets on every task (the workload's side of the contract, workloads/batch).
ENV_DATASET = "GPUPLANE_DATASET_URI"
ENV_OUTPUT = "GPUPLANE_OUTPUT_URI"
ENV_MANIFEST = "GPUPLANE_MANIFEST_URI"
ENV_MODEL_VERSION = "GPUPLANE_MODEL_VERSION"
ENV_TASK_COUNT = "GPUPLANE_TASK_COUNT"
ENV_CHECKPOINT = "GPUPLANE_CHECKPOINT_SECONDS"
ENV_OBJECT_URI = "GPUPLANE_OBJECT_URI"
ENV_OBJECT_GENERATION = "GPUPLANE_OBJECT_GENERATION"
ENV_REPROCESS = "GPUPLANE_REPROCESS_ON_NEW_MODEL_VERSION"
ENV_MODEL_URI = "GPUPLANE_MODEL_URI"
ENV_RUN_ID = "GPUPLANE_RUN_ID"
"""kueue: the Job's name (downward API, label batch.kubernetes.io/job-name); elsewhere the platform's execution / job id."""
TASK_ENV = (ENV_DATASET, ENV_OBJECT_URI, ENV_OBJECT_GENERATION, ENV_OUTPUT, ENV_MANIFEST, ENV_MODEL_URI, ENV_MODEL_VERSION,
            ENV_REPROCESS, ENV_TASK_COUNT, ENV_RUN_ID, ENV_CHECKPOINT)
"""Every variable of the workload contract (workloads/batch/contract.py's ``CONTRACT_ENV``), the task index aside."""
RESERVED_ENV = frozenset({*TASK_ENV, *(v for v in TASK_INDEX_ENV.values() if not v.startswith("/"))})
HEADROOM = {"estimate": 0.75, "measured": 0.9}
"""Share of a platform's task cap a task may plan to use: an estimated throughput gets more slack."""
SPOT_GAP_FRACTION = 0.25
"""On spot a task plans at most this share of the mean gap between preemptions (exp(-0.25): 78% of attempts finish unpreempted)."""
DEFAULT_PREEMPTIONS_PER_HOUR = 0.05
"""Spot preemption rate per running hour when none is given: the spot training model's default (gpuplane/simulate/training.py)."""


class BatchTriggerArgs(TypedDict, total=False):
    """What starts a run: new objects under a bucket prefix, a schedule, or nothing (``pulumi up`` / by hand)."""

    kind: Required[Literal["bucket-objects", "schedule", "none"]]
    """``bucket-objects`` (each new object starts one run over it), ``schedule`` (a cron run over the whole dataset) or ``none``."""
    prefix_uri: str
    """bucket-objects: ``s3://bucket/prefix`` or ``gs://bucket/prefix`` to watch. Default: the dataset URI."""
    suffix: str
    """bucket-objects: only objects whose key ends with this start a run, e.g. ``.parquet``. Default: any."""
    schedule: str
    """schedule: a five-field cron expression in UTC, e.g. ``0 3 * * *``."""
    queue: str
    """kueue + bucket-objects: the SQS queue name (s3) or Pub/Sub subscription id (gs) the bucket notifies; Argo Events reads it. Required there."""


class BatchJobArgs(TypedDict, total=False):
    """Arguments of ``BatchJob``."""

    platform: Required[Literal["cloud-run", "aws-batch", "sagemaker", "kueue"]]
    """Where the tasks run: ``cloud-run`` (Cloud Run Jobs, GCP), ``aws-batch`` (AWS Batch array jobs on spot with on-demand fallback), ``sagemaker`` (SageMaker Processing or Batch Transform, launched as a SageMaker Pipeline) or ``kueue`` (an Indexed Job admitted by Kueue on any gpuplane cluster)."""
    image: Required[pulumi.Input[str]]
    """Container image of the workload (the gpuplane-training image, workloads/training/Dockerfile, for the reference batch inference)."""
    command: NotRequired[list[str]]
    """The container command. Default: the reference workload ``python -m workloads.batch`` (its inputs from the contract's env; needs ``model_uri``)."""
    args: NotRequired[list[str]]
    """Extra arguments after the command. Default none."""
    dataset_uri: Required[str]
    """The input: ``gs://`` (cloud-run), ``s3://`` (aws-batch, sagemaker), or ``s3://``, ``gs://``, ``pvc://claim/path`` (kueue)."""
    output_uri: Required[str]
    """Where tasks write results (same schemes as the dataset)."""
    manifest_uri: NotRequired[str]
    """Where the processed-objects manifest lives. Default ``<output_uri>/_manifest``."""
    items: Required[int]
    """Items in the dataset (records, images, rows): with the throughput, sizes the tasks."""
    items_per_second: Required[float]
    """Throughput of one task, items per second, after its cold start."""
    throughput_basis: NotRequired[Literal["estimate", "measured"]]
    """``measured`` (e.g. benchmarks/batch_throughput.py on the same accelerator) plans tasks up to 90% of a cap, ``estimate`` up to 75%. Default ``estimate``."""
    item_size_kib: NotRequired[float]
    """Average item size, KiB (Batch Transform payload check). Default 4."""
    tasks: NotRequired[int]
    """Fix the task count. Default: sharded automatically, tasks = ceil(items / (throughput x safe task duration))."""
    parallelism: NotRequired[int]
    """Most tasks running at once. Default: all of them, up to 100."""
    max_task_seconds: NotRequired[int]
    """Plan tasks no longer than this (below the platform's cap). Default: the platform's cap."""
    accelerator: NotRequired[str]
    """GPU by catalog name (``L4``, ``A10G``, ...). Default ``L4`` on cloud-run and kueue, ``A10G`` on AWS."""
    gpus: NotRequired[int]
    """GPUs per task; 0 runs on CPU. Default 1."""
    cpu: NotRequired[float]
    """vCPUs per task. Default 4 (with a training_cluster: 85% of the team's GPU node's vCPUs per GPU share)."""
    memory_gib: NotRequired[float]
    """Memory per task, GiB. Default 16 (with a training_cluster: 80% of the node's memory per GPU share)."""
    image_size_gib: NotRequired[float]
    """Image size, GiB (cold start: pulled by every task). Default 8."""
    model_size_gib: NotRequired[float]
    """Model weights each task loads, GiB (cold start). Default 1."""
    model_uri: NotRequired[str]
    """Where the weights come from (``s3://``, ``gs://``, ``pvc://``), passed to every task as ``GPUPLANE_MODEL_URI``: picks the cold start's fetch and load path in storage_bandwidth.csv. Required with the reference command (the training export it scores with); with your own command, default: in the image."""
    max_attempts: NotRequired[int]
    """Attempts per task, the first included, before the task fails. Default 3."""
    retry_exit_codes: NotRequired[list[int]]
    """Exit codes that mean "retry elsewhere" (retried, where the platform can also tell them from failures). Default ``[75]`` where the platform maps exit codes (aws-batch, kueue), none elsewhere."""
    spot: NotRequired[bool]
    """Run on spot capacity (aws-batch: spot compute environment first, on-demand after; kueue: the queue's flavors decide). Default: True when max_attempts >= 2 and the platform has spot."""
    preemptions_per_hour: NotRequired[float]
    """Expected spot preemptions per running hour (sizes tasks below the gap and the checkpoint interval). Default 0.05."""
    checkpoint_seconds: NotRequired[float]
    """Time to commit a task's progress (flush outputs and the manifest). Default 10."""
    model_version: NotRequired[str]
    """Version of the model the job applies (part of the manifest key). Default ``1``."""
    reprocess_on_new_model_version: NotRequired[bool]
    """A new ``model_version`` reprocesses objects already done under an older one. Default False."""
    trigger: NotRequired[BatchTriggerArgs]
    """What starts a run; see BatchTriggerArgs. Default none."""
    runs_per_month: NotRequired[float]
    """Runs a month, for the monthly cost. Default 30 with a trigger, 1 without."""
    region: NotRequired[str]
    """cloud-run / aws-batch / sagemaker: region. Required there."""
    project: NotRequired[pulumi.Input[str]]
    """cloud-run: GCP project id. Required for cloud-run."""
    cloud_run_gpu_preview: NotRequired[bool]
    """cloud-run: use the 12 h GPU task timeout (preview, launch stage BETA) instead of 1 h. Default False."""
    subnet_ids: NotRequired[pulumi.Input[list[str]]]
    """aws-batch: subnets of the compute environments. Required for aws-batch."""
    security_group_ids: NotRequired[pulumi.Input[list[str]]]
    """aws-batch: security groups of the compute environments. Required for aws-batch."""
    sagemaker_mode: NotRequired[Literal["processing", "transform"]]
    """sagemaker: a Processing job running the command, or Batch Transform sending records to a model server (the image's ``serve``). Default ``processing``."""
    role_arn: NotRequired[pulumi.Input[str]]
    """sagemaker: execution role of the jobs and the pipeline. Default: one created with the bucket access the URIs need."""
    cluster: NotRequired[KubernetesCluster]
    """kueue: the cluster (any gpuplane cluster, existing ones included). Required for kueue unless training_cluster is given."""
    training_cluster: NotRequired[SpotTrainingCluster]
    """kueue: a SpotTrainingCluster whose team queue admits the job: its cluster, and the team's namespace, LocalQueue and service account; the Job waits for the cluster's Kueue install. Give it with ``team`` instead of cluster / namespace / queue."""
    team: NotRequired[str]
    """kueue + training_cluster: the team whose queue admits the job."""
    namespace: NotRequired[str]
    """kueue: namespace of the Job (must exist, with the LocalQueue). Default ``default``."""
    queue: NotRequired[str]
    """kueue: the Kueue LocalQueue in that namespace. Required for kueue."""
    service_account: NotRequired[str]
    """kueue: the Kubernetes service account the pods (and the Argo EventSource) run as, with the cloud identity that reads the dataset. Default: the namespace's default."""
    argo_events: NotRequired[Literal["install", "present"]]
    """kueue + a trigger: install the Argo Events chart (pinned, once per cluster) or use the one present. Default ``install``."""
    wait_for_completion: NotRequired[bool]
    """kueue without a trigger: ``pulumi up`` waits for the Job to complete. Default False (it returns once the Job exists)."""
    env: NotRequired[dict[str, str]]
    """Extra environment variables of every task."""
    tags: NotRequired[dict[str, str]]
    """Tags/labels on every taggable child (team, cost-center)."""


FEATURES: dict[str, FeatureSupport] = {
    "cloud-run": FeatureSupport(
        "cloud-run-jobs",
        frozenset({Feature.BUCKET_EVENTS, Feature.SCHEDULED_RUNS}),
        {
            Feature.SPOT: "Cloud Run jobs have no spot tier; instances bill at the on-demand rate (GPU tasks are still stopped by maintenance events)",
            Feature.RETRY_EXIT_CODES: "Cloud Run retries every failed task attempt up to maxRetries whatever its exit code: 75 is retried but "
            "counts as an attempt, and a usage error (2) is retried too",
        },
    ),
    "aws-batch": FeatureSupport(
        "aws-batch",
        frozenset({Feature.SPOT, Feature.BUCKET_EVENTS, Feature.SCHEDULED_RUNS, Feature.RETRY_EXIT_CODES}),
    ),
    "sagemaker": FeatureSupport(
        "sagemaker-pipeline",
        frozenset({Feature.BUCKET_EVENTS, Feature.SCHEDULED_RUNS}),
        {
            Feature.SPOT: "managed spot applies to SageMaker training jobs only; Processing and Batch Transform run on on-demand ml.* instances",
            Feature.RETRY_EXIT_CODES: "a Processing step retries on service faults only (RetryPolicies on SageMaker.JOB_INTERNAL_ERROR, "
            "SageMaker.CAPACITY_ERROR); the container's exit code is not consulted, so exit 75 fails the step",
        },
    ),
    "kueue": FeatureSupport(
        "kueue-indexed-job",
        frozenset({Feature.SPOT, Feature.BUCKET_EVENTS, Feature.SCHEDULED_RUNS, Feature.RETRY_EXIT_CODES}),
    ),
}


@dataclass(frozen=True)
class TriggerPlan:
    kind: str
    """``bucket-objects``, ``schedule`` or ``none``."""
    scheme: str | None = None
    bucket: str | None = None
    prefix: str = ""
    suffix: str = ""
    schedule: str | None = None
    queue: str | None = None


@dataclass(frozen=True)
class Limit:
    """One platform limit the plan was checked against, with its catalog source."""

    name: str
    value: float
    source: str


@dataclass(frozen=True)
class Sizing:
    """How the dataset is cut into tasks on one platform (pure numbers, seconds)."""

    tasks: int
    items_per_task: int
    cold_start_seconds: int
    """Image pull + weight load (+ instance start where the platform bills it), per task."""
    work_seconds: int
    """Expected processing time of one task after its cold start."""
    task_timeout_seconds: int
    """The timeout set on each task attempt (<= the cap)."""
    cap_seconds: int
    """The platform's (or the user's) task cap."""
    safe_seconds: int
    """Longest a task was allowed to plan: below the cap's headroom and, on spot, the preemption gap."""
    checkpoint_interval_seconds: int | None
    """Young/Daly interval between progress commits (None: no interruptions expected)."""
    bound: str
    """What bounded the task size: ``cap``, ``spot-gap``, ``max_task_seconds``, ``tasks`` or ``dataset``."""

    @property
    def task_seconds(self) -> int:
        return self.cold_start_seconds + self.work_seconds


@dataclass(frozen=True)
class RunEstimate:
    """One run of the job on one platform: fit, wall time and price."""

    platform: str
    fits: bool
    reason: str
    """Why it does not fit, or the price basis when it does."""
    sizing: Sizing | None = None
    usd_per_run: float | None = None
    wall_seconds: int | None = None
    resource: str | None = None
    """Instance/machine type or serverless shape that was priced."""
    region: str | None = None
    field: str | None = None
    """When it does not fit: the argument to change."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"platform": self.platform, "fits": self.fits, "reason": self.reason}
        if self.sizing is not None:
            out.update(
                tasks=self.sizing.tasks,
                taskSeconds=self.sizing.task_seconds,
                coldStartSeconds=self.sizing.cold_start_seconds,
                capSeconds=self.sizing.cap_seconds,
            )
        if self.usd_per_run is not None:
            out.update(usdPerRun=round(self.usd_per_run, 4), wallSeconds=self.wall_seconds, resource=self.resource, region=self.region)
        return out


@dataclass(frozen=True)
class BatchJobPlan:
    name: str
    platform: str
    implementation: str
    cloud: str
    region: str | None
    command: tuple[str, ...]
    args: tuple[str, ...]
    dataset_uri: str
    output_uri: str
    manifest_uri: str
    items: int
    items_per_second: float
    throughput_basis: str
    accelerator: str | None
    gpus: int
    cpu: float
    memory_gib: float
    instance_type: str | None
    """aws-batch / sagemaker: the instance type the tasks run on (catalog)."""
    sizing: Sizing
    parallelism: int
    max_attempts: int
    retry_exit_codes: tuple[int, ...]
    spot: bool
    preemptions_per_hour: float
    model_version: str
    reprocess_on_new_model_version: bool
    trigger: TriggerPlan
    runs_per_month: float
    features: FeatureSupport
    limits: tuple[Limit, ...]
    estimates: tuple[RunEstimate, ...]
    sagemaker_mode: str | None = None
    namespace: str = "default"
    queue: str | None = None
    service_account: str | None = None
    argo_events: str = "install"
    wait_for_completion: bool = False
    cloud_run_gpu_preview: bool = False
    model_uri: str | None = None
    """The weights' location (``GPUPLANE_MODEL_URI``); None: in the image."""
    env: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def estimate(self) -> RunEstimate:
        """The estimate of the platform this job runs on."""
        return next(e for e in self.estimates if e.platform == self.platform)

    def task_env(self) -> dict[str, str]:
        """The contract's environment on every task (the platform adds its task index; kueue adds ``GPUPLANE_RUN_ID``)."""
        model = {ENV_MODEL_URI: self.model_uri} if self.model_uri else {}
        return {
            **self.env,
            **model,
            ENV_DATASET: self.dataset_uri,
            ENV_OUTPUT: self.output_uri,
            ENV_MANIFEST: self.manifest_uri,
            ENV_MODEL_VERSION: self.model_version,
            ENV_TASK_COUNT: str(self.sizing.tasks),
            ENV_CHECKPOINT: str(self.sizing.checkpoint_interval_seconds or self.sizing.task_timeout_seconds),
            ENV_REPROCESS: "true" if self.reprocess_on_new_model_version else "false",
        }

    def summary(self) -> dict[str, Any]:
        """The plan as the component's registered ``gpuplane`` input (read by policies, the cost model and plan output)."""
        s = self.sizing
        est = self.estimate
        return {
            "platform": self.platform,
            "implementation": self.implementation,
            "cloud": self.cloud,
            "region": self.region,
            "accelerator": self.accelerator,
            "gpus": self.gpus,
            "cpu": self.cpu,
            "memoryGib": self.memory_gib,
            "instanceType": self.instance_type,
            "capacityType": "spot" if self.spot else "on_demand",
            "spot": self.spot,
            "items": self.items,
            "itemsPerSecond": self.items_per_second,
            "throughputBasis": self.throughput_basis,
            "tasks": s.tasks,
            "itemsPerTask": s.items_per_task,
            "parallelism": self.parallelism,
            "taskSeconds": s.task_seconds,
            "coldStartSeconds": s.cold_start_seconds,
            "taskTimeoutSeconds": s.task_timeout_seconds,
            "taskCapSeconds": s.cap_seconds,
            "sizingBound": s.bound,
            "checkpointIntervalSeconds": s.checkpoint_interval_seconds,
            "maxAttempts": self.max_attempts,
            "retryExitCodes": list(self.retry_exit_codes),
            "toleratesRetries": self.max_attempts >= 2,
            "modelVersion": self.model_version,
            "reprocessOnNewModelVersion": self.reprocess_on_new_model_version,
            "trigger": self.trigger.kind,
            "manifestUri": self.manifest_uri,
            "manifestKey": ["objectUri", "objectGeneration", "modelVersion"],
            "runsPerMonth": self.runs_per_month,
            "usdPerRun": round(est.usd_per_run, 4) if est.usd_per_run is not None else None,
            "runEstimates": [e.to_json() for e in self.estimates],
            "limits": [{"name": x.name, "value": x.value, "source": x.source} for x in self.limits],
            "tags": dict(self.tags),
        }
