"""BatchJob's planner: args + catalog -> a frozen ``BatchJobPlan``. Pure; creates nothing.

The fit check. Each platform caps a task (batch_limits.csv, every row with its source and date):
Cloud Run GPU tasks 1 h (12 h in preview), CPU tasks 24 h here, AWS Batch and Kueue 14 days here,
SageMaker Processing 777,600 s; and caps the task count (Cloud Run 10,000 tasks, AWS Batch arrays
10,000 children, SageMaker 100 instances, Indexed Jobs 100,000 completions). ``size_tasks`` cuts
the dataset so every task fits: a task may plan ``HEADROOM`` of the cap (75% for an estimated
throughput, 90% for a measured one) less its cold start, and on spot no more than
``SPOT_GAP_FRACTION`` of the mean gap between preemptions; then
``tasks = ceil(items / (items_per_second x safe seconds))``. A fixed ``tasks`` whose task would
not fit, or a task count above the platform's limit, is rejected naming the cap, its source and
the fix. Tasks on spot commit progress every Young/Daly interval sqrt(2 x checkpoint cost x mean
gap) (components/checkpointing.py, the function the spot training simulator uses).

Cold start per task: image pull plus weight load from the catalog's bandwidths and the instance
start, computed by InferenceEndpoint's ``plan_cold_start`` (the same phases and catalog rows).

Prices: one run on every platform, each where it fits (``RunEstimate``): Cloud Run per
GPU/vCPU/GiB-second, AWS Batch the EC2 share a task uses (spot or on-demand), SageMaker the ml.*
instance per task, Kueue the nodes of a cluster of the same cloud (an existing cluster's nodes
are its owner's: not priced). A run is tasks x (cold start + work) of that price.
"""

from __future__ import annotations

import math
import re
from typing import Any

from components.batch_job.spec import (
    DATASET_SCHEMES,
    DEFAULT_PREEMPTIONS_PER_HOUR,
    FEATURES,
    HEADROOM,
    PLATFORMS,
    REFERENCE_COMMAND,
    RESERVED_ENV,
    RETRY_EXIT_CODE,
    SPOT_GAP_FRACTION,
    BatchJobArgs,
    BatchJobPlan,
    BatchTriggerArgs,
    Limit,
    RunEstimate,
    Sizing,
    TriggerPlan,
)
from components.catalog import Catalog, load_catalog
from components.checkpointing import young_daly_interval
from components.cluster import KubernetesCluster
from components.errors import Problems
from components.features import Feature
from components.inference import (
    CLOUD_RUN_GPUS,
    CLOUD_RUN_INSTANCE_START_SECONDS,
    SAGEMAKER_INSTANCE_START_SECONDS,
    plan_cold_start,
)
from components.training import NODE_CPU_FRACTION, NODE_MEMORY_FRACTION, SpotTrainingCluster

_KNOWN_KEYS = set(BatchJobArgs.__annotations__)
_TRIGGER_KEYS = set(BatchTriggerArgs.__annotations__)
_URI = re.compile(r"^([a-z][a-z0-9+.-]*)://([^/]+)(?:/(.*))?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")
_SQS_URL = re.compile(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/\d+/[^/]+$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")
MIN_TASK_TIMEOUT_SECONDS = 60
"""AWS Batch's floor on attemptDurationSeconds; used everywhere so a timeout is never absurdly short."""
TIMEOUT_FACTOR = 1.5
"""A task's timeout is its planned duration with 50% slack, at most the cap."""
DEFAULT_PARALLELISM = 100
SAGEMAKER_DEFAULT_PAYLOAD_MIB = 6
"""Batch Transform's default MaxPayloadInMB (mini-batches sent per invocation)."""
CLOUD = {"cloud-run": "gcp", "aws-batch": "aws", "sagemaker": "aws"}
MAX_TASKS_LIMIT = {"cloud-run": ("cloud-run", "max-tasks"), "aws-batch": ("aws-batch", "max-array-size"),
                   "sagemaker": ("sagemaker-processing", "max-instances"), "kueue": ("kueue", "max-completions")}


def parse_uri(uri: object) -> tuple[str, str, str] | None:
    """(scheme, bucket or claim, path) of ``scheme://bucket/path``, or None."""
    m = _URI.match(uri) if isinstance(uri, str) else None
    return (m.group(1), m.group(2), (m.group(3) or "").strip("/")) if m else None


def bucket_access(plan: BatchJobPlan, scheme: str) -> list[tuple[str, str, bool]]:
    """(bucket, prefix, write) the tasks need on ``scheme`` buckets: read the dataset and the model, write the output and manifest."""
    out = []
    for uri, write in ((plan.dataset_uri, False), (plan.model_uri, False), (plan.output_uri, True), (plan.manifest_uri, True)):
        if uri is None:
            continue
        parsed = parse_uri(uri)
        if parsed is not None and parsed[0] == scheme:
            out.append((parsed[1], parsed[2], write))
    return out


def task_cap(platform: str, gpus: int, preview: bool, catalog: Catalog) -> Limit:
    """The longest one task attempt may run on a platform."""
    key = {
        "cloud-run": ("cloud-run", ("gpu-task-timeout-preview" if preview else "gpu-task-timeout") if gpus else "cpu-task-timeout"),
        "aws-batch": ("aws-batch", "task-timeout"),
        "sagemaker": ("sagemaker-processing", "max-runtime"),
        "kueue": ("kueue", "task-timeout"),
    }[platform]
    row = catalog.batch_limit(*key)
    return Limit(f"{key[0]} {key[1]}", row.value, f"{row.source} ({row.fetched_at})")


def task_limit(platform: str, catalog: Catalog) -> Limit:
    row = catalog.batch_limit(*MAX_TASKS_LIMIT[platform])
    return Limit(f"{row.platform} {row.limit}", row.value, f"{row.source} ({row.fetched_at})")


def size_tasks(
    *,
    items: int,
    items_per_second: float,
    basis: str,
    cap_seconds: int,
    cold_start_seconds: int,
    max_tasks: int,
    spot: bool,
    preemptions_per_hour: float,
    checkpoint_seconds: float,
    fixed_tasks: int | None = None,
    max_task_seconds: int | None = None,
) -> Sizing | tuple[str, str]:
    """Cut ``items`` into tasks that fit the cap (and the spot gap); else (the field to change, why it cannot)."""
    cap = min(cap_seconds, max_task_seconds) if max_task_seconds else cap_seconds
    bound = "max_task_seconds" if max_task_seconds and max_task_seconds < cap_seconds else "cap"
    safe = math.floor(HEADROOM[basis] * cap) - cold_start_seconds
    mtbf = 3600.0 / preemptions_per_hour if spot and preemptions_per_hour > 0 else None
    if mtbf is not None and math.floor(SPOT_GAP_FRACTION * mtbf) - cold_start_seconds < safe:
        safe, bound = math.floor(SPOT_GAP_FRACTION * mtbf) - cold_start_seconds, "spot-gap"
    if safe < 1:
        return "image_size_gib", (f"a task's cold start of {cold_start_seconds} s leaves no time for work within {HEADROOM[basis]:.0%} of the "
                f"{cap} s task cap{' and the spot preemption gap' if bound == 'spot-gap' else ''}")
    if fixed_tasks is not None:
        per_task = math.ceil(items / fixed_tasks)
        work = math.ceil(per_task / items_per_second)
        if work > safe:
            need = math.ceil(items / (items_per_second * safe))
            return "tasks", (f"tasks={fixed_tasks} gives each task {per_task} items, {work} s of work + {cold_start_seconds} s cold start, beyond "
                    f"the {safe + cold_start_seconds} s a task may plan under the {cap} s cap; use tasks >= {need}, or leave tasks unset to shard automatically")
        tasks, bound = fixed_tasks, "tasks"
    else:
        most = math.floor(items_per_second * safe)  # whole items a task can finish in its safe time
        if most < 1:
            return "items_per_second", (f"one item takes {1 / items_per_second:.0f} s, beyond the {safe} s of work a task may plan under the "
                                        f"{cap} s cap{' and the spot preemption gap' if bound == 'spot-gap' else ''}")
        tasks = math.ceil(items / most)
        if tasks == 1:
            bound = "dataset"
    if tasks > max_tasks:
        return ("tasks" if fixed_tasks is not None else "items"), f"needs {tasks} tasks of at most {safe} s of work each, above the platform's limit of {max_tasks} tasks"
    per_task = math.ceil(items / tasks)
    work = math.ceil(per_task / items_per_second)
    timeout = min(cap, max(MIN_TASK_TIMEOUT_SECONDS, math.ceil((cold_start_seconds + work) * TIMEOUT_FACTOR)))
    interval = None
    if mtbf is not None:
        interval = max(1, min(work, math.ceil(young_daly_interval(checkpoint_seconds, mtbf))))
    return Sizing(tasks=tasks, items_per_task=per_task, cold_start_seconds=cold_start_seconds, work_seconds=work, task_timeout_seconds=timeout,
                  cap_seconds=cap, safe_seconds=safe, checkpoint_interval_seconds=interval, bound=bound)


def _cold_start(platform: str, cloud: str, image_gib: float, model_gib: float, model_uri: str | None, catalog: Catalog) -> int:
    node = {"cloud-run": CLOUD_RUN_INSTANCE_START_SECONDS, "sagemaker": SAGEMAKER_INSTANCE_START_SECONDS}.get(platform)
    if node is None:
        node = catalog.clouds[cloud].node_provision_seconds if cloud in catalog.clouds else 0  # type: ignore[index]
    scratch = Problems("BatchJob", "-")
    budget = plan_cold_start(scratch, platform=platform, cloud=cloud, runtime="reference", model_uri=model_uri, loader="download",
                             model_size_gib=model_gib, image_size_gib=image_gib, node_provision_seconds=node, overrides={}, catalog=catalog)
    return budget.total_seconds


def _instance(catalog: Catalog, cloud: str, service: str, accelerator: str | None, gpus: int, cpu: float, mem: float, region: str | None, capacity: str) -> Any:
    """The cheapest catalog offering that holds one task, or None."""
    offers = catalog.find_offerings(cloud=cloud, accelerator=accelerator if gpus else None, count=None if gpus else 0, region=region,
                                    capacity=capacity, service=service)  # type: ignore[arg-type]
    fit = [o for o in offers if o.instance_type.gpus >= gpus and o.instance_type.vcpus >= cpu and o.instance_type.memory_gib >= mem]
    return min(fit, key=lambda o: o.price(capacity)) if fit else None  # type: ignore[arg-type]


def estimate_run(platform: str, a: dict[str, Any], catalog: Catalog) -> RunEstimate:
    """Fit and price one run of the job on ``platform`` (its own region for its cloud, else the cheapest in the catalog)."""
    gpus, acc, cpu, mem = a["gpus"], a["accelerator"], a["cpu"], a["memory_gib"]
    cloud = CLOUD.get(platform) or a["cluster_cloud"]
    region = a["region"] if cloud == a["cloud"] else None
    capacity = "spot" if a["spot"] and FEATURES[platform].supports(Feature.SPOT) else "on_demand"
    resource: str | None
    if platform == "cloud-run":
        if gpus > 1 or (gpus and acc not in CLOUD_RUN_GPUS):
            return RunEstimate(platform, False, f"Cloud Run jobs attach at most one GPU of {sorted(CLOUD_RUN_GPUS)} per task (asked {gpus} x {acc})", field="accelerator")
        regions = [region] if region else sorted({r for (c, s, u, r) in catalog.serverless if c == "gcp" and s == "cloud-run" and u == "vcpu-second"})
        region = next((r for r in regions if catalog.serverless_rate("gcp", "cloud-run", "vcpu-second", r)), None)
        if region is None:
            return RunEstimate(platform, False, "no Cloud Run rates for the region in the catalog", field="region")
        rates = [catalog.serverless_rate("gcp", "cloud-run", "vcpu-second", region), catalog.serverless_rate("gcp", "cloud-run", "gib-second", region)]
        gpu_rate = catalog.serverless_rate("gcp", "cloud-run", f"{str(acc).lower()}-gpu-second", region) if gpus else None
        if None in rates or (gpus and gpu_rate is None):
            return RunEstimate(platform, False, f"no Cloud Run {acc} rate for {region} in the catalog", field="region")
        per_second = cpu * rates[0].usd + mem * rates[1].usd + (gpus * gpu_rate.usd if gpu_rate else 0.0)  # type: ignore[union-attr]
        resource = f"{cpu:g} vCPU / {mem:g} GiB" + (f" / {gpus} x {acc}" if gpus else "")
    elif platform in ("aws-batch", "sagemaker") or cloud in ("aws", "gcp"):
        service = {"aws-batch": "ec2", "sagemaker": "sagemaker"}.get(platform, "ec2" if cloud == "aws" else "compute")
        o = _instance(catalog, cloud, service, acc, gpus, cpu, mem, region, capacity)
        if o is None:
            return RunEstimate(platform, False, f"no {cloud} {service} type with {gpus} x {acc}, {cpu:g} vCPU and {mem:g} GiB at {capacity} in {region or 'any region'} in the catalog", field="accelerator")
        region, it = o.region, o.instance_type
        # SageMaker runs one task per instance; EC2 packs tasks, so a task pays its share of the node.
        share = 1.0 if platform == "sagemaker" else max(gpus / it.gpus if it.gpus else 0.0, cpu / it.vcpus, mem / it.memory_gib)
        per_second = o.price(capacity) * share / 3600.0  # type: ignore[operator]
        resource = f"{it.name} {capacity.replace('_', '-')}" + (f" x {share:.2f}" if share < 1 else "")
    else:
        per_second, resource = None, None  # an existing cluster: its owner pays for its nodes
    cold = _cold_start(platform, cloud, a["image_size_gib"], a["model_size_gib"], a["model_uri"], catalog)
    cap = task_cap(platform, gpus, a["cloud_run_gpu_preview"], catalog)
    limit = task_limit(platform, catalog)
    sized = size_tasks(items=a["items"], items_per_second=a["items_per_second"], basis=a["basis"], cap_seconds=int(cap.value), cold_start_seconds=cold,
                       max_tasks=int(limit.value), spot=capacity == "spot", preemptions_per_hour=a["preemptions_per_hour"],
                       checkpoint_seconds=a["checkpoint_seconds"], fixed_tasks=a["tasks"], max_task_seconds=a["max_task_seconds"])
    if isinstance(sized, tuple):
        return RunEstimate(platform, False, sized[1], field=sized[0])
    waves = math.ceil(sized.tasks / min(a["parallelism"] or sized.tasks, sized.tasks))
    wall = waves * sized.task_seconds
    if per_second is None:
        return RunEstimate(platform, True, "an existing cluster's nodes are paid by its owner", sized, None, wall, None, region)
    usd = sized.tasks * sized.task_seconds * per_second
    basis = f"{sized.tasks} tasks x {sized.task_seconds} s ({sized.cold_start_seconds} s cold start) x ${per_second * 3600:.4f}/h ({resource}, {region})"
    return RunEstimate(platform, True, basis, sized, usd, wall, resource, region)


def _trigger(p: Problems, raw: Any, platform: str, dataset: tuple[str, str, str] | None, region: str | None = None) -> TriggerPlan:
    if raw is None:
        return TriggerPlan("none")
    if not isinstance(raw, dict):
        p.add("trigger", raw, "must be a mapping.", "give e.g. {'kind': 'bucket-objects', 'prefix_uri': 's3://data/incoming'}.")
        return TriggerPlan("none")
    for key in sorted(set(raw) - _TRIGGER_KEYS):
        p.add(f"trigger.{key}", raw[key], "is not a trigger field.", f"use one of {sorted(_TRIGGER_KEYS)}.")
    kind = raw.get("kind")
    if kind not in ("bucket-objects", "schedule", "none"):
        p.add("trigger.kind", kind, "is not a trigger kind.", "use 'bucket-objects', 'schedule' or 'none'.")
        return TriggerPlan("none")
    if kind == "schedule":
        cron = raw.get("schedule")
        fields = cron.split() if isinstance(cron, str) else []
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            p.add("trigger.schedule", cron, "is not a five-field cron expression.", "give e.g. '0 3 * * *' (03:00 UTC daily).")
        elif platform in ("aws-batch", "sagemaker") and fields[2] != "*" and fields[4] != "*":
            # EventBridge cron() wants '?' in one of the two day fields (triggers.eventbridge_schedule).
            p.add("trigger.schedule", cron, "restricts both day-of-month and day-of-week, which an EventBridge schedule cannot express.",
                  "keep one of the two day fields '*'.")
        return TriggerPlan("schedule", schedule=cron if isinstance(cron, str) else None)
    if kind == "none":
        return TriggerPlan("none")
    given = raw.get("prefix_uri")
    uri = parse_uri(given) if given is not None else dataset
    if uri is None or uri[0] not in ("s3", "gs"):
        p.add("trigger.prefix_uri" if given is not None else "trigger", given, f"{'is not' if given is not None else 'has no'} an s3:// or gs:// prefix; "
              f"{'pvc volumes have no object events' if uri and uri[0] == 'pvc' else 'only buckets send object events'}.",
              "give trigger.prefix_uri as s3://bucket/prefix or gs://bucket/prefix, or use a schedule trigger.")
        return TriggerPlan("bucket-objects")
    want = {"cloud-run": "gs", "aws-batch": "s3", "sagemaker": "s3"}.get(platform)
    if want and uri[0] != want:
        p.add("trigger.prefix_uri", given or f"{uri[0]}://{uri[1]}/{uri[2]}", f"is a {uri[0]}:// bucket; {platform} is triggered by {want}:// object events only.",
              f"watch a {want}:// prefix, or run the job on a platform of that cloud.")
    queue = raw.get("queue")
    if platform == "kueue" and uri[0] == "s3" and not region and not (isinstance(queue, str) and _SQS_URL.match(queue)):
        p.add("trigger.queue", queue, "names an SQS queue, but the cluster has no region to find it in.",
              "give the queue's URL (https://sqs.<region>.amazonaws.com/<account>/<name>).")
    if platform == "kueue" and not queue:
        p.add("trigger.queue", queue, "is required on kueue: Argo Events reads the bucket's notifications from a queue.",
              "give the SQS queue name (s3) or Pub/Sub subscription id (gs) the bucket notifies.")
    suffix = raw.get("suffix") or ""
    return TriggerPlan("bucket-objects", scheme=uri[0], bucket=uri[1], prefix=uri[2], suffix=suffix, queue=queue)


def _number(p: Problems, args: dict[str, Any], key: str, default: Any, *, minimum: float, integer: bool, fix: str, strict: bool = False) -> Any:
    v = args.get(key, default)
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok or (v <= minimum if strict else v < minimum):
        p.add(key, v, f"must be {'a whole number' if integer else 'a number'} {'above' if strict else 'of at least'} {minimum:g}.", fix)
        return default
    return v


def plan_batch_job(name: str, args: BatchJobArgs, catalog: Catalog | None = None) -> BatchJobPlan:
    """Validate everything, size the tasks on the chosen platform, price a run on every platform."""
    catalog = catalog or load_catalog()
    p = Problems("BatchJob", name)
    a: dict[str, Any] = dict(args)
    for key in sorted(set(a) - _KNOWN_KEYS):
        p.add(key, a[key], "is not an argument of BatchJob.", f"use one of {sorted(_KNOWN_KEYS)}.")
    platform = a.get("platform")
    if platform not in PLATFORMS:
        p.add("platform", platform, "is not a BatchJob platform.", f"use one of {list(PLATFORMS)}.")
        p.raise_if_any()
    if not a.get("image"):
        p.add("image", a.get("image"), "is required.", "give the workload image (the gpuplane-training image, workloads/training/Dockerfile, for the reference batch inference).")
    dataset = parse_uri(a.get("dataset_uri"))
    schemes = DATASET_SCHEMES[platform]
    for key in ("dataset_uri", "output_uri", "manifest_uri", "model_uri"):
        if key in ("manifest_uri", "model_uri") and key not in a:
            continue
        uri = parse_uri(a.get(key))
        if uri is None or uri[0] not in schemes:
            scheme = f"scheme {uri[0]!r}" if uri else "no scheme"
            p.add(key, a.get(key), f"has {scheme}; {platform} tasks read and write {', '.join(s + '://' for s in schemes)} only.",
                  f"give a URI like {schemes[0]}://bucket/path.")
    items = _number(p, a, "items", None, minimum=1, integer=True, fix="give the number of items (records, rows, images) in the dataset.")
    ips = _number(p, a, "items_per_second", None, minimum=0, integer=False, strict=True,
                  fix="give one task's measured or expected items per second, e.g. from benchmarks/batch_throughput.py.")
    basis = a.get("throughput_basis", "estimate")
    if basis not in HEADROOM:
        p.add("throughput_basis", basis, "is not a throughput basis.", "use 'estimate' or 'measured'.")
        basis = "estimate"
    cloud = CLOUD.get(platform, "kubernetes")
    cluster = a.get("cluster")
    tc = a.get("training_cluster")
    if platform == "kueue" and tc is not None:
        team = tc.plan.team(a.get("team") or "") if isinstance(tc, SpotTrainingCluster) else None
        if team is None:
            p.add("team", a.get("team"), "is not a team of the training cluster, so it has no queue there.",
                  f"use one of {[t.name for t in tc.plan.teams] if isinstance(tc, SpotTrainingCluster) else []}.")
        for key in ("cluster", "namespace", "queue", "service_account"):
            if key in a:
                p.add(key, a[key], "is taken from training_cluster and team.", "remove it, or drop training_cluster.")
        if isinstance(tc, SpotTrainingCluster):
            a["cluster"] = cluster = tc.cluster
            # A task's share of one of the team's GPU nodes, as TrainingJob sizes its pods, so it fits a node.
            pool = tc.plan.pools[0]
            share = max(1, a.get("gpus", 1) if isinstance(a.get("gpus", 1), int) else 1) / pool.gpus_per_node
            a.setdefault("accelerator", pool.accelerator)
            a.setdefault("cpu", max(1, math.floor(pool.vcpus_per_node * NODE_CPU_FRACTION * share)))
            a.setdefault("memory_gib", max(1, math.floor(pool.memory_gib_per_node * NODE_MEMORY_FRACTION * share)))
        if team is not None:
            a.update(namespace=team.namespace, queue=team.local_queue, service_account=team.service_account)
    elif "training_cluster" in a or "team" in a:
        p.add("training_cluster", tc, f"applies to kueue only{', with a team' if platform == 'kueue' else ''}.", "remove it.")
    if platform == "kueue":
        if not isinstance(cluster, KubernetesCluster):
            p.add("cluster", cluster, "is required on kueue and must be a KubernetesCluster.", "pass the cluster whose Kueue admits the Job (an existing one works).")
        else:
            cloud = cluster.facts.cloud
        if not a.get("queue"):
            p.add("queue", a.get("queue"), "is required on kueue.", "give the Kueue LocalQueue in the job's namespace.")
        if not _DNS_LABEL.match(name):
            p.add("name", name, "is not a DNS label of at most 52 characters (it names the Job or CronJob).", "use lower-case letters, digits and '-'.")
    else:
        for key in ("cluster", "queue", "namespace", "argo_events", "wait_for_completion", "service_account"):
            if key in a:
                p.add(key, a[key], f"applies to kueue only, not {platform}.", "remove it.")
    default_acc = "A10G" if cloud == "aws" else "L4"
    gpus = _number(p, a, "gpus", 1, minimum=0, integer=True, fix="give the GPUs per task (0 for CPU).")
    acc = a.get("accelerator", default_acc) if gpus else None
    if acc is not None and acc not in catalog.accelerators:
        p.add("accelerator", acc, "is not in the catalog.", f"use one of {sorted(catalog.accelerators)}.")
        acc = default_acc
    cpu = _number(p, a, "cpu", 4, minimum=0, strict=True, integer=False, fix="give the vCPUs per task.")
    mem = _number(p, a, "memory_gib", 16, minimum=0, strict=True, integer=False, fix="give the memory per task in GiB.")
    region = a.get("region")
    if platform != "kueue":
        if region is None or catalog.region(cloud, region) is None:  # type: ignore[arg-type]
            p.add("region", region, f"is not a {cloud} region in the catalog.", f"use one of {catalog.region_names(cloud)}.")
    elif isinstance(cluster, KubernetesCluster):
        region = cluster.facts.region
    if platform == "cloud-run" and not a.get("project"):
        p.add("project", a.get("project"), "is required on cloud-run.", "give the GCP project id.")
    if platform == "aws-batch":
        for key in ("subnet_ids", "security_group_ids"):
            if not a.get(key):
                p.add(key, a.get(key), "is required on aws-batch (the compute environments' network).", "give the VPC subnets and security groups the tasks run in.")
    mode = a.get("sagemaker_mode", "processing") if platform == "sagemaker" else None
    if platform != "sagemaker" and "sagemaker_mode" in a:
        p.add("sagemaker_mode", a["sagemaker_mode"], f"applies to sagemaker only, not {platform}.", "remove it.")
    if mode not in (None, "processing", "transform"):
        p.add("sagemaker_mode", mode, "is not a SageMaker mode.", "use 'processing' or 'transform'.")
    max_attempts = _number(p, a, "max_attempts", 3, minimum=1, integer=True, fix="give the attempts per task, at least 1.")
    attempt_limit = {"cloud-run": ("cloud-run", "max-retries", 1), "aws-batch": ("aws-batch", "max-attempts", 0)}.get(platform)
    limits: list[Limit] = []
    if attempt_limit:
        row = catalog.batch_limit(attempt_limit[0], attempt_limit[1])
        most = int(row.value) + attempt_limit[2]
        if max_attempts > most:
            p.add("max_attempts", max_attempts, f"is above {platform}'s limit of {most} attempts ({row.source}).", f"use at most {most}.")
    default_codes = [RETRY_EXIT_CODE] if FEATURES[platform].supports(Feature.RETRY_EXIT_CODES) else []
    codes = a.get("retry_exit_codes", default_codes)
    if not isinstance(codes, list) or not all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 255 for c in codes):
        p.add("retry_exit_codes", codes, "must be a list of exit codes from 1 to 255.", "give e.g. [75].")
        codes = default_codes
    spot_default = max_attempts >= 2 and FEATURES[platform].supports(Feature.SPOT)
    spot = a.get("spot", spot_default)
    lam = _number(p, a, "preemptions_per_hour", DEFAULT_PREEMPTIONS_PER_HOUR, minimum=0, integer=False, fix="give the expected spot preemptions per running hour, e.g. 0.05.")
    ckpt = _number(p, a, "checkpoint_seconds", 10, minimum=0, integer=False, fix="give the seconds a task takes to commit its progress.")
    trigger = _trigger(p, a.get("trigger"), platform, dataset, region)
    requested = [(Feature.SPOT, "spot", spot)] if spot else []
    if codes and max_attempts >= 2:
        requested.append((Feature.RETRY_EXIT_CODES, "retry_exit_codes", codes))
    if trigger.kind == "bucket-objects":
        requested.append((Feature.BUCKET_EVENTS, "trigger.kind", trigger.kind))
    elif trigger.kind == "schedule":
        requested.append((Feature.SCHEDULED_RUNS, "trigger.kind", trigger.kind))
    p.extend(FEATURES[platform].check(requested))
    tasks = a.get("tasks")
    if tasks is not None and (not isinstance(tasks, int) or isinstance(tasks, bool) or tasks < 1):
        p.add("tasks", tasks, "must be a whole number of at least 1.", "leave it unset to shard automatically.")
        tasks = None
    parallelism = _number(p, a, "parallelism", 0, minimum=1, integer=True, fix="give the most tasks running at once.") if "parallelism" in a else 0
    max_task = a.get("max_task_seconds")
    if max_task is not None and (not isinstance(max_task, int) or isinstance(max_task, bool) or max_task < MIN_TASK_TIMEOUT_SECONDS):
        p.add("max_task_seconds", max_task, f"must be a whole number of seconds, at least {MIN_TASK_TIMEOUT_SECONDS}.", "leave it unset to use the platform's cap.")
        max_task = None
    for key in sorted(set(a.get("env") or {}) & RESERVED_ENV):
        p.add(f"env.{key}", a["env"][key], "is set by BatchJob itself (the workload contract).", "remove it.")
    image_gib = _number(p, a, "image_size_gib", 8, minimum=0, strict=True, integer=False, fix="give the image size in GiB.")
    model_gib = _number(p, a, "model_size_gib", 1, minimum=0, integer=False, fix="give the weights' size in GiB.")
    item_kib = _number(p, a, "item_size_kib", 4, minimum=0, strict=True, integer=False, fix="give the average item size in KiB.")
    command = a.get("command", list(REFERENCE_COMMAND))
    if not isinstance(command, list) or not command or not all(isinstance(x, str) and x for x in command):
        p.add("command", command, "must be a non-empty list of strings.", "give e.g. ['python', '-m', 'workloads.batch'], or leave it unset.")
        command = list(REFERENCE_COMMAND)
    if tuple(command) == REFERENCE_COMMAND and not a.get("model_uri"):
        p.add("model_uri", a.get("model_uri"), "is required with the reference workload (python -m workloads.batch): it "
              "scores with the training export it reads from GPUPLANE_MODEL_URI.",
              f"give the export's location, e.g. {schemes[0]}://bucket/models/recommender (the --export-dir of python -m workloads.training).")
    if p or items is None or ips is None:
        p.raise_if_any()
    facts = {"gpus": gpus, "accelerator": acc, "cpu": cpu, "memory_gib": mem, "region": region, "cloud": cloud,
             "cluster_cloud": cloud if platform == "kueue" else "kubernetes", "spot": spot, "items": items, "items_per_second": ips,
             "basis": basis, "tasks": tasks, "max_task_seconds": max_task, "parallelism": parallelism, "preemptions_per_hour": lam,
             "checkpoint_seconds": ckpt, "image_size_gib": image_gib, "model_size_gib": model_gib, "model_uri": a.get("model_uri"),
             "cloud_run_gpu_preview": bool(a.get("cloud_run_gpu_preview", False))}
    estimates = []
    for other in PLATFORMS:
        f = dict(facts)
        if other != platform:
            # Each other platform as it would run the job: spot where it has spot and the job tolerates retries.
            # Tasks no longer than this job's cap, so every platform is compared at a like wall time.
            f.update(tasks=None, cluster_cloud=cloud if cloud in ("aws", "gcp") else "kubernetes",
                     spot=max_attempts >= 2 and FEATURES[other].supports(Feature.SPOT),
                     max_task_seconds=max_task or int(task_cap(platform, gpus, facts["cloud_run_gpu_preview"], catalog).value))
        estimates.append(estimate_run(other, f, catalog))
    own = next(e for e in estimates if e.platform == platform)
    cap = task_cap(platform, gpus, facts["cloud_run_gpu_preview"], catalog)
    limit = task_limit(platform, catalog)
    limits += [cap, limit]
    if not own.fits:
        field = own.field or "platform"
        elsewhere = [e.platform for e in estimates if e.fits]
        fix = {
            "tasks": "raise tasks as shown, or leave it unset to shard automatically",
            "items": f"split the dataset into several jobs, raise items_per_second (a measured figure plans closer to the cap), or run on {elsewhere or 'another platform'}",
            "image_size_gib": "shrink the image or the weights, or choose a platform with a longer task cap",
            "items_per_second": "split items so one takes less time, or choose a platform with a longer task cap",
            "accelerator": "choose an accelerator and shape the platform offers (components/catalog/data)",
        }.get(field, f"run on one of {elsewhere}")
        source = limit.source if field in ("items", "tasks") and "limit of" in own.reason else cap.source
        p.add(field, a.get(field, facts.get(field)), f"does not fit {platform}: {own.reason} (task cap {cap.name} = {cap.value:g} s; "
              f"task limit {limit.name} = {limit.value:g}; source: {source}).", f"{fix}.")
    if mode == "transform" and own.sizing is not None:
        max_payload = catalog.batch_limit("sagemaker-transform", "max-payload")
        invocation = catalog.batch_limit("sagemaker-transform", "invocation-timeout")
        limits += [Limit("sagemaker-transform max-payload", max_payload.value, max_payload.source),
                   Limit("sagemaker-transform invocation-timeout", invocation.value, invocation.source)]
        if item_kib / 1024 > max_payload.value:
            p.add("item_size_kib", item_kib, f"is above Batch Transform's {max_payload.value:g} MB payload limit ({max_payload.source}).",
                  "use sagemaker_mode='processing', which reads items itself.")
        elif 1 / ips > HEADROOM[basis] * invocation.value:
            p.add("items_per_second", ips, f"means one record takes {1 / ips:.0f} s, beyond Batch Transform's {invocation.value:g} s invocation limit ({invocation.source}).",
                  "use sagemaker_mode='processing'.")
    p.raise_if_any()
    sizing = own.sizing
    if sizing is None:  # unreachable: a fitting estimate is sized; narrows the type
        raise ValueError(f"BatchJob {name!r}: {platform} fits but has no sizing")
    runs = a.get("runs_per_month", 30.0 if trigger.kind != "none" else 1.0)
    plan = BatchJobPlan(
        name=name, platform=platform, implementation=FEATURES[platform].implementation, cloud=cloud, region=region,
        command=tuple(command), args=tuple(a.get("args") or ()), dataset_uri=a["dataset_uri"], output_uri=a["output_uri"].rstrip("/"),
        manifest_uri=(a.get("manifest_uri") or f"{a['output_uri'].rstrip('/')}/_manifest"), items=items, items_per_second=float(ips),
        throughput_basis=basis, accelerator=acc, gpus=gpus, cpu=float(cpu), memory_gib=float(mem),
        instance_type=(own.resource or "").split(" ")[0] if platform in ("aws-batch", "sagemaker") else None,
        sizing=sizing, parallelism=min(parallelism or DEFAULT_PARALLELISM, sizing.tasks), max_attempts=max_attempts,
        retry_exit_codes=tuple(codes), spot=bool(spot), preemptions_per_hour=float(lam), model_version=str(a.get("model_version", "1")),
        reprocess_on_new_model_version=bool(a.get("reprocess_on_new_model_version", False)), trigger=trigger, runs_per_month=float(runs),
        features=FEATURES[platform], limits=tuple(limits), estimates=tuple(estimates), sagemaker_mode=mode,
        namespace=a.get("namespace", "default"), queue=a.get("queue"), service_account=a.get("service_account"), argo_events=a.get("argo_events", "install"),
        wait_for_completion=bool(a.get("wait_for_completion", False)), cloud_run_gpu_preview=facts["cloud_run_gpu_preview"],
        model_uri=a.get("model_uri"),
        env=dict(a.get("env") or {}), tags=dict(a.get("tags") or {}),
    )
    return plan


__all__ = ["bucket_access", "estimate_run", "parse_uri", "plan_batch_job", "size_tasks", "task_cap", "task_limit"]
