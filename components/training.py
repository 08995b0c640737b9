"""SpotTrainingCluster and TrainingJob: gang-scheduled torchrun jobs on spot GPUs with fallback.

``SpotTrainingCluster`` turns a ``KubernetesCluster`` into a training platform:

- GPU capacity: for every pool spec it creates one ``GpuNodePool`` child per capacity type in
  ``capacity_fallback`` (``["spot", "on_demand"]`` by default), named
  ``f"{name}-{pool}-{capacity}"``. The fallback order is declared once and emitted twice,
  consistently: at node level as GpuNodePool ``priority`` (Karpenter NodePool weights; managed
  node groups and GKE get one pool per capacity type) and at queue level as the order of the
  Kueue ResourceFlavors in the ClusterQueue (``flavorFungibility`` tries the next flavor
  before preempting). Every pool node carries ``gpuplane.dev/training-pool=<pool>`` (the job
  selects it) and ``gpuplane.dev/capacity-type`` (the flavor selects it).
- Queues: Kueue (``kueue.x-k8s.io/v1beta2``) ResourceFlavors per (pool, capacity type), one
  shared ClusterQueue, or one ClusterQueue per team in a cohort when teams have GPU quotas
  (the unassigned rest goes to a lend-only ``<name>-shared`` queue), and a LocalQueue per team
  in the team's namespace. Kueue and JobSet come from pinned Helm charts (Kueue with
  ``waitForPodsReady`` for all-or-nothing admission), or are declared present.
- A checkpoint bucket (S3 or GCS, encrypted, never public, lifecycle-expired) reachable only
  through workload identity: one identity per team (IRSA role / GKE Workload Identity service
  account), bound to the team's ``trainer`` Kubernetes service account and scoped to the
  team's prefix ``<bucket>/<team>/``. On an existing cluster: a given bucket URL or none.
- Interruption handling sized to the cloud's notice (catalog): pods get
  ``terminationGracePeriodSeconds`` = notice minus a safety margin (AWS 120 s -> 110 s, GCP
  30 s -> 25 s); see the per-cloud modules for who delivers the SIGTERM.

``TrainingJob`` (components/training_job.py, also importable from here) submits one JobSet to
a team's LocalQueue: N nodes x G GPUs, torchrun with a static rendezvous on pod 0, exit code 75
(preempted after a checkpoint) restarts the pod without counting as a failure, anything else
restarts the whole gang up to ``max_restarts``.

Both components plan first (pure functions, table-tested) and raise one ``ComponentInputError``
listing every problem before any child exists. What this module deliberately does not do:
pick flavors after a spot stock-out (Kueue re-admits to the first flavor with quota; a
ProvisioningRequest admission check would be the next step), or run elastic (variable-size)
training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Required, TypedDict

import pulumi

from components.catalog import Catalog, load_catalog
from components.cluster import ClusterFacts, KubernetesCluster
from components.errors import ComponentInputError, Problem, Problems
from components.features import Feature, FeatureSupport
from components.node_pool import GpuNodePool, GpuNodePoolArgs, NodePoolPlan, plan_node_pool

CLUSTER_TYPE_TOKEN = "gpuplane:index:SpotTrainingCluster"
JOB_TYPE_TOKEN = "gpuplane:index:TrainingJob"

LABEL_TRAINING_POOL = "gpuplane.dev/training-pool"
LABEL_CAPACITY = "gpuplane.dev/capacity-type"
GPU_RESOURCE = "nvidia.com/gpu"
EXIT_PREEMPTED = 75
"""The workload contract's exit code for "stopped on a preemption notice after a checkpoint; requeue"."""
EXIT_USAGE = 2
"""The workload contract's exit code for a usage error (restarting cannot help)."""

CapacityName = Literal["spot", "on_demand", "reserved"]
CAPACITY_NAMES: tuple[str, ...] = ("spot", "on_demand", "reserved")
DEFAULT_FALLBACK: tuple[str, ...] = ("spot", "on_demand")

NODE_CPU_FRACTION = 0.85
"""Share of a node's vCPUs a training pod requests: the rest is kubelet/system reservation and
the daemon sets every GPU node runs (device plugin, DCGM exporter, CNI, termination handler)."""
NODE_MEMORY_FRACTION = 0.80
"""Share of a node's memory a training pod requests (GKE reserves ~17% of a 16 GiB node; EKS ~7%)."""
SHM_FRACTION = 0.25
"""Share of the pod's memory given to the /dev/shm emptyDir (data loader workers, NCCL)."""
DEFAULT_RETENTION_DAYS = 30
DEFAULT_NONCURRENT_RETENTION_DAYS = 7
DEFAULT_MAX_RESTARTS = 10
DEFAULT_MASTER_PORT = 29500
DEFAULT_SERVICE_ACCOUNT = "trainer"

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_BUCKET_URL = re.compile(r"(s3|gs)://([a-z0-9][a-z0-9._-]{1,61}[a-z0-9])(/.*)?")


def grace_margin_seconds(notice_seconds: int) -> int:
    """Seconds kept back from the notice for the drain to start and SIGTERM to arrive: ~8%, at least 5 s."""
    return max(5, notice_seconds // 12)


def default_grace_seconds(notice_seconds: int) -> int:
    """``terminationGracePeriodSeconds`` for a cloud's notice: AWS 120 -> 110, GCP 30 -> 25."""
    return max(1, notice_seconds - grace_margin_seconds(notice_seconds))


# ---------------------------------------------------------------------------------------------
# Arguments


class TrainingPoolArgs(TypedDict, total=False):
    """One GPU pool of the training cluster; a GpuNodePool is made from it per capacity type."""

    name: Required[str]
    """Pool name (DNS label), e.g. ``h100``. Jobs choose a pool by this name."""
    accelerator: Required[str]
    """Catalog accelerator name, e.g. ``H100``, ``A100-80GB``, ``L4``, ``A10G``."""
    accelerators_per_node: int
    """GPUs per node. Default: the smallest count the cloud offers."""
    instance_type: str
    """Instance/machine type instead of the cheapest matching catalog type."""
    max_nodes: int
    """Most nodes per capacity type (each fallback pool may grow to this). Default 1."""
    min_nodes: int
    """Fewest nodes per capacity type. Default 0 (scale from zero)."""
    zones: list[str]
    """Zones for the nodes. Default: the cluster's zones that offer the type."""
    disk_size_gib: int
    """Root disk per node in GiB. Default 200."""
    efa: bool
    """AWS EFA interfaces for multi-node collectives. Default False."""
    compact_placement: bool
    """Place nodes close together (one zone). Default True when ``max_nodes`` > 1 and the pool
    implementation supports it (managed node groups, GKE), else False (Karpenter, existing)."""
    node_vcpus: int
    """vCPUs per node. Required on an existing cluster (no catalog type); default: the catalog's."""
    node_memory_gib: float
    """Memory per node in GiB. Required on an existing cluster; default: the catalog's."""


class TeamArgs(TypedDict, total=False):
    """A team that submits training jobs: a namespace, a LocalQueue, an identity."""

    name: Required[str]
    """Team name (DNS label), e.g. ``recs``. TrainingJob's ``team`` refers to it."""
    namespace: str
    """Kubernetes namespace of the team's jobs. Default: the team name."""
    gpu_quota: dict[str, int]
    """GPUs guaranteed to the team per pool name and capacity type, e.g. ``{"h100": 16}``.
    When any team has one, each team gets its own ClusterQueue in a cohort and may borrow
    what others leave idle. Default: none (one shared ClusterQueue)."""


class CheckpointBucketArgs(TypedDict, total=False):
    """The checkpoint bucket: give ``url`` to use an existing one, otherwise one is created."""

    url: str
    """An existing bucket, ``s3://name`` or ``gs://name`` (the cluster's cloud). Default: create one."""
    retention_days: int
    """Checkpoints (current object versions) older than this are deleted. Default 30."""
    noncurrent_retention_days: int
    """Overwritten/deleted versions are kept this many days. Default 7."""
    encryption: Literal["kms", "managed"]
    """``kms``: customer-managed key (AWS: SSE-KMS with a new rotating key, or ``kms_key``; GCP:
    CMEK, needs ``kms_key``). ``managed``: the cloud's own key (AWS SSE-S3 AES256, GCP
    Google-managed). Default ``kms`` on AWS, ``managed`` on GCP."""
    kms_key: pulumi.Input[str]
    """An existing key: AWS KMS key ARN, or GCP ``projects/.../cryptoKeys/...``. Only with ``encryption='kms'``."""
    force_destroy: bool
    """Allow deleting the bucket with objects in it. Default False."""


class SpotTrainingClusterArgs(TypedDict, total=False):
    """Arguments of ``SpotTrainingCluster``."""

    cluster: Required[KubernetesCluster]
    """The cluster to train on."""
    pools: Required[list[TrainingPoolArgs]]
    """GPU pools (at least one)."""
    capacity_fallback: list[CapacityName]
    """Capacity types in the order to try them. Default ``["spot", "on_demand"]`` on AWS and GCP,
    ``["on_demand"]`` on an existing cluster (whose nodes' capacity belongs to its owner)."""
    teams: list[TeamArgs]
    """Teams and their quotas. Default: one team ``training`` in namespace ``training``."""
    checkpoint_bucket: CheckpointBucketArgs
    """The checkpoint bucket (``{}`` creates one with defaults). Required with spot capacity. Default: none."""
    termination_grace_period_seconds: int
    """Pod grace period on preemption, at most the cloud's notice. Default: notice minus ~8% (AWS 110, GCP 25)."""
    install_kueue: bool
    """Install Kueue with Helm. False: it is already present. Default True."""
    install_jobset: bool
    """Install JobSet with Helm. False: it is already present. Default True."""
    service_account_name: str
    """Name of the Kubernetes service account training pods run as, in each team namespace. Default ``trainer``."""
    service_account_annotations: dict[str, str]
    """Extra annotations on those service accounts (e.g. an existing cluster's identity binding). Default none."""
    tags: dict[str, str]
    """Extra tags/labels on cloud resources (merged over the cluster's)."""
    data_buckets: list[str]
    """Buckets (``s3://name`` on EKS, ``gs://name`` on GKE) the teams' identities may read training data from,
    for ``TrainingJob.data_url``. Default: none."""


# ---------------------------------------------------------------------------------------------
# Plan


@dataclass(frozen=True)
class CapacityPoolPlan:
    """One GpuNodePool: a pool spec at one capacity type."""

    pool: str
    capacity: str
    """``spot``, ``on_demand`` or ``reserved``."""
    node_pool_name: str
    """The GpuNodePool child's name, ``<cluster>-<pool>-<capacity>``."""
    node_pool_args: dict[str, Any]
    """GpuNodePool args without ``cluster``."""
    node_plan: NodePoolPlan
    flavor: str
    """Kueue ResourceFlavor name (cluster-scoped), ``<cluster>-<pool>-<capacity>``."""
    priority: int
    """Karpenter weight: higher is tried first, following ``capacity_fallback``."""
    max_nodes: int
    gpus: int
    """GPUs of the pool at ``max_nodes``."""
    vcpus: int
    memory_gib: float


@dataclass(frozen=True)
class TrainingPoolPlan:
    name: str
    accelerator: str
    gpus_per_node: int
    vcpus_per_node: int
    memory_gib_per_node: float
    max_nodes: int
    capacities: tuple[CapacityPoolPlan, ...]
    """In fallback order."""
    node_selector: dict[str, str]
    """What a job's pods select (the capacity label is added by Kueue on admission)."""
    tolerations: tuple[dict[str, str], ...]
    instance_type: str | None


@dataclass(frozen=True)
class TeamPlan:
    name: str
    namespace: str
    local_queue: str
    cluster_queue: str
    gpu_quota: dict[str, int]
    service_account: str


@dataclass(frozen=True)
class BucketPlan:
    create: bool
    url: str | None
    """The given URL, or None when the bucket is created (its name is chosen at creation)."""
    scheme: str
    """``s3`` or ``gs``."""
    encryption: str | None
    """``aws:kms``, ``AES256``, ``cmek``, ``google-managed``; None for a given bucket (unknown)."""
    kms_key: Any
    retention_days: int
    noncurrent_retention_days: int
    force_destroy: bool


@dataclass(frozen=True)
class TrainingClusterPlan:
    name: str
    implementation: str
    facts: ClusterFacts
    capacity_fallback: tuple[str, ...]
    pools: tuple[TrainingPoolPlan, ...]
    teams: tuple[TeamPlan, ...]
    per_team_queues: bool
    cohort: str | None
    shared_queue: str | None
    """The ClusterQueue holding capacity no team quota claims (None without per-team queues or
    when quotas claim everything)."""
    bucket: BucketPlan | None
    notice_seconds: int
    termination_grace_period_seconds: int
    interruption_handling: str
    install_kueue: bool
    install_jobset: bool
    service_account_annotations: dict[str, str]
    tags: dict[str, str]
    data_buckets: tuple[str, ...] = ()
    """Bucket names (no scheme) the teams may read training data from."""

    def pool(self, name: str) -> TrainingPoolPlan | None:
        return next((p for p in self.pools if p.name == name), None)

    def team(self, name: str) -> TeamPlan | None:
        return next((t for t in self.teams if t.name == name), None)

    def summary(self) -> dict[str, Any]:
        """The plan as the component's registered ``gpuplane`` input (read by policies and the cost model)."""
        from components.kubernetes import training as k8s_training

        b = self.bucket
        return {
            "implementation": self.implementation,
            "cloud": self.facts.cloud,
            "region": self.facts.region,
            "dataBuckets": list(self.data_buckets),
            "capacityFallback": list(self.capacity_fallback),
            "pools": [
                {
                    "name": p.name,
                    "nodePool": c.node_pool_name,
                    "capacityType": c.capacity,
                    "accelerator": p.accelerator,
                    "acceleratorsPerNode": p.gpus_per_node,
                    "instanceType": p.instance_type,
                    "minNodes": c.node_plan.min_nodes,
                    "maxNodes": c.max_nodes,
                    "priority": c.priority,
                    "flavor": c.flavor,
                }
                for p in self.pools
                for c in p.capacities
            ],
            "checkpointBucket": None
            if b is None
            else {
                # A created bucket's physical name gets a random suffix at creation, after this
                # summary is registered; it is named here by its Pulumi resource (which policies
                # resolve to the bucket resource) and the real URL is the checkpoint_url output.
                "url": b.url or f"{b.scheme}://{self.name}-checkpoints",
                "resource": f"{self.name}-checkpoints" if b.create else None,
                "created": b.create,
                "encrypted": True if b.create else None,
                "encryption": b.encryption,
                "public": False if b.create else None,
                "retentionDays": b.retention_days if b.create else None,
                "noncurrentRetentionDays": b.noncurrent_retention_days if b.create else None,
            },
            "terminationGracePeriodSeconds": self.termination_grace_period_seconds,
            "noticeSeconds": self.notice_seconds,
            "interruptionHandling": self.interruption_handling,
            "teams": [
                {
                    "name": t.name,
                    "namespace": t.namespace,
                    "queue": t.local_queue,
                    "clusterQueue": t.cluster_queue,
                    "gpuQuota": dict(t.gpu_quota),
                    "serviceAccount": t.service_account,
                }
                for t in self.teams
            ],
            "cohort": self.cohort,
            "kueue": {"installed": self.install_kueue, "version": k8s_training.KUEUE_VERSION, "apiVersion": k8s_training.KUEUE_API},
            "jobset": {"installed": self.install_jobset, "version": k8s_training.JOBSET_VERSION, "apiVersion": k8s_training.JOBSET_API},
            "tags": dict(self.tags),
        }


def _implementation(facts: ClusterFacts) -> str:
    return {"aws": "eks", "gcp": "gke"}.get(facts.cloud, "kubernetes")


def feature_support(implementation: str) -> FeatureSupport:
    """The declared features of a SpotTrainingCluster implementation."""
    if implementation == "eks":
        from components.aws import training as aws_training

        return aws_training.FEATURES
    if implementation == "gke":
        from components.gcp import training as gcp_training

        return gcp_training.FEATURES
    from components.kubernetes import training as k8s_training

    return k8s_training.FEATURES


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _dns_label(p: Problems, path: str, value: object, what: str, max_len: int = 63) -> bool:
    if not isinstance(value, str) or not _DNS_LABEL.match(value) or len(value) > max_len:
        p.add(path, value, f"is not a valid {what}: lower-case letters, digits and '-', starting with a letter, at most {max_len} characters.", "rename it, e.g. 'h100' or 'recs'.")
        return False
    return True


def _interruption_handling(facts: ClusterFacts, spot: bool) -> str:
    if not spot:
        return "none"
    if facts.cloud == "aws":
        return "karpenter-interruption-queue" if facts.uses_karpenter else "aws-node-termination-handler"
    if facts.cloud == "gcp":
        return "gke-graceful-node-shutdown"
    return "none"


_POOL_KEYS = set(TrainingPoolArgs.__annotations__)
_TEAM_KEYS = set(TeamArgs.__annotations__)
_BUCKET_KEYS = set(CheckpointBucketArgs.__annotations__)
_CLUSTER_KEYS = set(SpotTrainingClusterArgs.__annotations__)
_NODE_POOL_KEYS = ("accelerator", "accelerators_per_node", "instance_type", "max_nodes", "min_nodes", "zones", "disk_size_gib", "efa", "compact_placement")


def plan_training_cluster(name: str, args: SpotTrainingClusterArgs, facts: ClusterFacts, catalog: Catalog | None = None) -> TrainingClusterPlan:
    """Validate the args and decide pools, queues, bucket and grace period; raise once listing every problem."""
    catalog = catalog or load_catalog()
    p = Problems("SpotTrainingCluster", name)
    impl = _implementation(facts)
    support = feature_support(impl)
    for key in sorted(set(args) - _CLUSTER_KEYS):
        p.add(key, args[key], "is not an argument of SpotTrainingCluster.", f"use one of {sorted(_CLUSTER_KEYS)}.")  # type: ignore[literal-required]
    _dns_label(p, "name", name, "training cluster name", max_len=40)

    # -- capacity fallback ---------------------------------------------------------------------
    default_fallback = list(DEFAULT_FALLBACK) if facts.cloud in ("aws", "gcp") else ["on_demand"]
    fallback_arg = args.get("capacity_fallback", default_fallback)
    fallback: list[str] = []
    if not isinstance(fallback_arg, (list, tuple)) or not fallback_arg:
        p.add("capacity_fallback", fallback_arg, "must list at least one capacity type.", "give e.g. ['spot', 'on_demand'].")
    else:
        for i, cap in enumerate(fallback_arg):
            if cap not in CAPACITY_NAMES:
                p.add(f"capacity_fallback[{i}]", cap, "is not a capacity type.", f"use {list(CAPACITY_NAMES)}.")
            elif cap in fallback:
                p.add(f"capacity_fallback[{i}]", cap, "appears twice.", "list each capacity type once, in the order to try them.")
            else:
                fallback.append(cap)
    spot = "spot" in fallback
    requested: list[tuple[Feature, str, object]] = [(Feature.GANG_SCHEDULING, "teams", "kueue")]
    if spot:
        requested.append((Feature.SPOT, "capacity_fallback", list(fallback)))
        if support.supports(Feature.SPOT):  # one message is enough where spot itself is missing
            requested.append((Feature.INTERRUPTION_HANDLING, "capacity_fallback", list(fallback)))
    if "reserved" in fallback:
        requested.append((Feature.RESERVED_CAPACITY, "capacity_fallback", list(fallback)))

    # -- checkpoint bucket ---------------------------------------------------------------------
    bucket: BucketPlan | None = None
    bucket_args = args.get("checkpoint_bucket")
    if bucket_args is not None:
        if not isinstance(bucket_args, dict):
            p.add("checkpoint_bucket", bucket_args, "must be a dict.", "give {} to create a bucket or {'url': 's3://...'} to use one.")
        else:
            bucket = _plan_bucket(p, bucket_args, facts, requested)
    elif spot:
        p.add(
            "checkpoint_bucket",
            None,
            "is required with spot capacity: a preempted job resumes only from a checkpoint outside the node.",
            "add checkpoint_bucket={} to create one, or {'url': 's3://...' / 'gs://...'} to use an existing bucket.",
        )
    p.extend(support.check(requested))

    # -- grace period --------------------------------------------------------------------------
    notice = catalog.notice_seconds(facts.cloud)
    grace = args.get("termination_grace_period_seconds", default_grace_seconds(notice))
    if not _is_int(grace) or grace < 1:
        p.add("termination_grace_period_seconds", grace, "must be a whole number of seconds, at least 1.", f"leave it unset for {default_grace_seconds(notice)} s.")
        grace = default_grace_seconds(notice)
    elif grace > notice:
        p.add(
            "termination_grace_period_seconds",
            grace,
            f"is longer than the {facts.cloud} preemption notice of {notice} s: the node is gone before the pod's grace period ends, so a checkpoint taken late is lost.",
            f"set it to at most {notice} (default {default_grace_seconds(notice)}, which leaves {grace_margin_seconds(notice)} s for the drain).",
        )

    # -- pools ---------------------------------------------------------------------------------
    pools: list[TrainingPoolPlan] = []
    pool_args = args.get("pools")
    if not isinstance(pool_args, list) or not pool_args:
        p.add("pools", pool_args, "must list at least one GPU pool.", "give e.g. [{'name': 'h100', 'accelerator': 'H100', 'max_nodes': 2}].")
        pool_args = []
    seen_pools: set[str] = set()
    for i, spec in enumerate(pool_args):
        path = f"pools[{i}]"
        if not isinstance(spec, dict):
            p.add(path, spec, "must be a dict.", "give {'name': ..., 'accelerator': ...}.")
            continue
        for key in sorted(set(spec) - _POOL_KEYS):
            p.add(f"{path}.{key}", spec[key], "is not a field of a training pool.", f"use one of {sorted(_POOL_KEYS)}.")  # type: ignore[literal-required]
        pname = spec.get("name")
        if not _dns_label(p, f"{path}.name", pname, "pool name", max_len=20):
            continue
        if pname in seen_pools:
            p.add(f"{path}.name", pname, "is used by another pool.", "give every pool its own name.")
            continue
        seen_pools.add(pname)  # type: ignore[arg-type]
        # Capacity types the implementation lacks were reported above; plan node pools for the rest.
        node_fallback = [c for c in fallback if c == "on_demand" or (c == "spot" and support.supports(Feature.SPOT))]
        plan = _plan_pool(p, name, path, spec, node_fallback, facts, catalog)
        if plan is not None:
            pools.append(plan)

    # -- teams and queues ----------------------------------------------------------------------
    sa_name = args.get("service_account_name", DEFAULT_SERVICE_ACCOUNT)
    _dns_label(p, "service_account_name", sa_name, "service account name")
    team_args = args.get("teams", [{"name": "training", "namespace": "training"}])
    teams_raw: list[tuple[str, str, dict[str, int]]] = []
    if not isinstance(team_args, list) or not team_args:
        p.add("teams", team_args, "must list at least one team.", "give e.g. [{'name': 'recs'}], or leave it unset for one 'training' team.")
        team_args = []
    seen_teams: set[str] = set()
    seen_ns: dict[str, str] = {}
    for i, team in enumerate(team_args):
        path = f"teams[{i}]"
        if not isinstance(team, dict):
            p.add(path, team, "must be a dict.", "give {'name': ..., 'namespace': ..., 'gpu_quota': {...}}.")
            continue
        for key in sorted(set(team) - _TEAM_KEYS):
            p.add(f"{path}.{key}", team[key], "is not a field of a team.", f"use one of {sorted(_TEAM_KEYS)}.")  # type: ignore[literal-required]
        tname = team.get("name")
        if not _dns_label(p, f"{path}.name", tname, "team name", max_len=20):
            continue
        if tname in seen_teams:
            p.add(f"{path}.name", tname, "is used by another team.", "give every team its own name.")
            continue
        seen_teams.add(tname)  # type: ignore[arg-type]
        ns = team.get("namespace", tname)
        if _dns_label(p, f"{path}.namespace", ns, "namespace"):
            if ns in seen_ns:
                p.add(f"{path}.namespace", ns, f"is already team {seen_ns[ns]!r}'s namespace; each team's service account and identity live in its own.", "give each team its own namespace.")
            seen_ns[str(ns)] = str(tname)
        quota = team.get("gpu_quota") or {}
        if not isinstance(quota, dict):
            p.add(f"{path}.gpu_quota", quota, "must map pool names to GPU counts.", "give e.g. {'h100': 16}.")
            quota = {}
        clean: dict[str, int] = {}
        for pool_name, gpus in quota.items():
            pool_plan = next((x for x in pools if x.name == pool_name), None)
            if pool_name not in seen_pools:
                p.add(f"{path}.gpu_quota.{pool_name}", gpus, "names no pool of this training cluster.", f"use one of {sorted(seen_pools)}.")
            elif not _is_int(gpus) or gpus < 0:
                p.add(f"{path}.gpu_quota.{pool_name}", gpus, "must be a whole number of GPUs, at least 0.", "give the GPUs the team is guaranteed.")
            elif pool_plan is not None and gpus % pool_plan.gpus_per_node:
                p.add(f"{path}.gpu_quota.{pool_name}", gpus, f"is not a multiple of the pool's {pool_plan.gpus_per_node} GPUs per node, so part of it could never be used.", f"use a multiple of {pool_plan.gpus_per_node}.")
            else:
                clean[pool_name] = gpus
        teams_raw.append((tname, ns, clean))  # type: ignore[arg-type]
    per_team = any(q for _, _, q in teams_raw)
    shared_queue: str | None = None
    if per_team:
        for pool in pools:
            total = sum(q.get(pool.name, 0) for _, _, q in teams_raw)
            capacity = pool.max_nodes * pool.gpus_per_node
            if total > capacity:
                p.add(
                    "teams[*].gpu_quota",
                    {t: q.get(pool.name, 0) for t, _, q in teams_raw},
                    f"guarantee {total} GPUs of pool {pool.name!r}, which holds only {capacity} ({pool.max_nodes} nodes x {pool.gpus_per_node}) per capacity type.",
                    f"lower the quotas or raise pools[{pool.name}].max_nodes.",
                )
            elif total < capacity:
                shared_queue = f"{name}-shared"
    teams = tuple(
        TeamPlan(
            name=t,
            namespace=ns,
            local_queue=name,
            cluster_queue=f"{name}-{t}" if per_team else name,
            gpu_quota=q,
            service_account=sa_name,
        )
        for t, ns, q in teams_raw
    )
    data_buckets: list[str] = []
    scheme = {"aws": "s3", "gcp": "gs"}.get(facts.cloud)
    for i, url in enumerate(args.get("data_buckets") or []):
        m = _BUCKET_URL.fullmatch(url) if isinstance(url, str) else None
        if m is None or scheme is None or m.group(1) != scheme:
            fix = f"give {scheme}://<bucket>." if scheme else "drop it: an existing cluster has no workload identity to grant."
            p.add(f"data_buckets[{i}]", url, f"is not a bucket this {facts.cloud} cluster's identities can be granted.", fix)
            continue
        data_buckets.append(m.group(2))
    annotations = args.get("service_account_annotations") or {}
    if not isinstance(annotations, dict):
        p.add("service_account_annotations", annotations, "must be a dict of strings.", "give e.g. {'eks.amazonaws.com/role-arn': '...'}.")
        annotations = {}
    p.raise_if_any()
    return TrainingClusterPlan(
        name=name,
        implementation=impl,
        facts=facts,
        capacity_fallback=tuple(fallback),
        pools=tuple(pools),
        teams=teams,
        per_team_queues=per_team,
        cohort=name if per_team else None,
        shared_queue=shared_queue,
        bucket=bucket,
        notice_seconds=notice,
        termination_grace_period_seconds=grace,
        interruption_handling=_interruption_handling(facts, spot),
        install_kueue=bool(args.get("install_kueue", True)),
        install_jobset=bool(args.get("install_jobset", True)),
        service_account_annotations=dict(annotations),
        tags={**facts.tags, **dict(args.get("tags") or {})},
        data_buckets=tuple(data_buckets),
    )


def _plan_bucket(p: Problems, b: CheckpointBucketArgs, facts: ClusterFacts, requested: list[tuple[Feature, str, object]]) -> BucketPlan:
    for key in sorted(set(b) - _BUCKET_KEYS):
        p.add(f"checkpoint_bucket.{key}", b[key], "is not a field of checkpoint_bucket.", f"use one of {sorted(_BUCKET_KEYS)}.")  # type: ignore[literal-required]
    cloud_scheme = {"aws": "s3", "gcp": "gs"}.get(facts.cloud)
    url = b.get("url")
    scheme = cloud_scheme or "s3"
    if url is not None:
        m = re.match(r"^(s3|gs)://([a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9])/?$", url) if isinstance(url, str) else None
        if m is None:
            p.add("checkpoint_bucket.url", url, "is not a bucket URL.", "give s3://<bucket> or gs://<bucket> (no path: each team writes under <bucket>/<team>/).")
        else:
            scheme = m.group(1)
            if cloud_scheme and scheme != cloud_scheme:
                p.add("checkpoint_bucket.url", url, f"is a {scheme}:// bucket but the cluster runs on {facts.cloud}, whose workload identity grants {cloud_scheme}:// access.", f"use a {cloud_scheme}:// bucket.")
            url = f"{scheme}://{m.group(2)}"
        for key in ("retention_days", "noncurrent_retention_days", "encryption", "kms_key", "force_destroy"):
            if key in b:
                p.add(f"checkpoint_bucket.{key}", b[key], "applies only to a bucket gpuplane creates; the given bucket keeps its own settings.", "remove it, or drop url to create a bucket.")  # type: ignore[literal-required]
    else:
        requested.append((Feature.CHECKPOINT_BUCKET, "checkpoint_bucket", b))
    retention = b.get("retention_days", DEFAULT_RETENTION_DAYS)
    if not _is_int(retention) or retention < 1:
        p.add("checkpoint_bucket.retention_days", retention, "must be a whole number of days, at least 1.", f"leave it unset for {DEFAULT_RETENTION_DAYS}.")
    noncurrent = b.get("noncurrent_retention_days", DEFAULT_NONCURRENT_RETENTION_DAYS)
    if not _is_int(noncurrent) or noncurrent < 1:
        p.add("checkpoint_bucket.noncurrent_retention_days", noncurrent, "must be a whole number of days, at least 1.", f"leave it unset for {DEFAULT_NONCURRENT_RETENTION_DAYS}.")
    default_enc = "kms" if facts.cloud == "aws" else "managed"
    enc = b.get("encryption", default_enc)
    encryption: str | None = None
    if enc not in ("kms", "managed"):
        p.add("checkpoint_bucket.encryption", enc, "is not an encryption mode.", "use 'kms' or 'managed'.")
    elif url is None:
        if facts.cloud == "aws":
            encryption = "aws:kms" if enc == "kms" else "AES256"
        else:
            encryption = "cmek" if enc == "kms" else "google-managed"
            if enc == "kms" and not b.get("kms_key"):
                p.add("checkpoint_bucket.kms_key", None, "is required for CMEK on GCS (gpuplane does not create GCP key rings: they can never be deleted).", "give an existing projects/.../cryptoKeys/... key, or use encryption='managed'.")
    if b.get("kms_key") is not None and enc != "kms":
        p.add("checkpoint_bucket.kms_key", b.get("kms_key"), "is only used with encryption='kms'.", "remove it or set encryption='kms'.")
    return BucketPlan(
        create=url is None,
        url=url,
        scheme=scheme,
        encryption=encryption,
        kms_key=b.get("kms_key"),
        retention_days=retention if _is_int(retention) else DEFAULT_RETENTION_DAYS,
        noncurrent_retention_days=noncurrent if _is_int(noncurrent) else DEFAULT_NONCURRENT_RETENTION_DAYS,
        force_destroy=bool(b.get("force_destroy", False)),
    )


def _node_pool_support(facts: ClusterFacts) -> FeatureSupport:
    from components.node_pool import feature_support as node_pool_features

    impl = {"aws": "karpenter" if facts.uses_karpenter else "eks-managed-node-group", "gcp": "gke-node-pool"}.get(facts.cloud, "existing-device-plugin")
    return node_pool_features(impl)


def _plan_pool(p: Problems, name: str, path: str, spec: TrainingPoolArgs, fallback: list[str], facts: ClusterFacts, catalog: Catalog) -> TrainingPoolPlan | None:
    pname = spec["name"]
    capacities: list[CapacityPoolPlan] = []
    node_capacities = fallback or ["on_demand"]
    ok = True
    max_nodes = spec.get("max_nodes", 1)
    compact_default = _is_int(max_nodes) and max_nodes > 1 and _node_pool_support(facts).supports(Feature.COMPACT_PLACEMENT)
    for rank, cap in enumerate(node_capacities):
        np_name = f"{name}-{pname}-{cap.replace('_', '-')}"
        np_args: dict[str, Any] = {k: spec[k] for k in _NODE_POOL_KEYS if k in spec}  # type: ignore[literal-required]
        np_args["capacity_type"] = cap
        if "compact_placement" not in spec and compact_default:
            # A multi-node gang talks all-to-all: keep its nodes close where the pool can.
            np_args["compact_placement"] = True
        np_args["priority"] = 10 * (len(node_capacities) - rank)
        if facts.cloud in ("aws", "gcp"):
            # Existing clusters keep their owner's labels: their pool selects nodes by GPU presence.
            np_args["labels"] = {LABEL_TRAINING_POOL: pname}
        if facts.tags:
            np_args["tags"] = dict(facts.tags)
        try:
            node_plan = plan_node_pool(np_name, GpuNodePoolArgs(**np_args), facts, catalog)  # type: ignore[typeddict-item]
        except ComponentInputError as err:
            ok = False
            for prob in err.problems:
                # Problems of the capacity-independent fields are reported once, for the first capacity type.
                if rank == 0 or prob.path == "capacity_type" or prob.path.startswith("cluster.region"):
                    p.add(f"{path}.{prob.path}" + (f" ({cap})" if rank else ""), prob.value, prob.message, prob.fix)
            continue
        capacities.append(
            CapacityPoolPlan(
                pool=pname,
                capacity=cap,
                node_pool_name=np_name,
                node_pool_args=np_args,
                node_plan=node_plan,
                flavor=np_name,
                priority=np_args["priority"],
                max_nodes=node_plan.max_nodes,
                gpus=0,
                vcpus=0,
                memory_gib=0.0,
            )
        )
    if not ok or not capacities:
        return None
    first = capacities[0].node_plan
    vcpus = spec.get("node_vcpus", first.scheduling.vcpus_per_node)
    memory = spec.get("node_memory_gib", first.scheduling.memory_gib_per_node)
    if first.instance_type is None and ("node_vcpus" not in spec or "node_memory_gib" not in spec):
        p.add(f"{path}.node_vcpus", spec.get("node_vcpus"), "and node_memory_gib are required on an existing cluster, whose node shapes are not in the catalog (they size pod requests and queue quotas).", "give the vCPUs and memory (GiB) of the pool's GPU nodes.")
        return None
    if not _is_int(vcpus) or vcpus < 1:
        p.add(f"{path}.node_vcpus", vcpus, "must be a whole number of at least 1.", "give the nodes' vCPUs.")
        return None
    if not isinstance(memory, (int, float)) or isinstance(memory, bool) or memory <= 0:
        p.add(f"{path}.node_memory_gib", memory, "must be a positive number of GiB.", "give the nodes' memory.")
        return None
    gpn = first.scheduling.allocatable_per_node
    sized = tuple(
        CapacityPoolPlan(**{**c.__dict__, "gpus": c.max_nodes * gpn, "vcpus": c.max_nodes * vcpus, "memory_gib": c.max_nodes * float(memory)}) for c in capacities
    )
    return TrainingPoolPlan(
        name=pname,
        accelerator=first.accelerator.name,
        gpus_per_node=gpn,
        vcpus_per_node=vcpus,
        memory_gib_per_node=float(memory),
        max_nodes=first.max_nodes,
        capacities=sized,
        node_selector=({**first.scheduling.node_selector} if first.implementation == "existing-device-plugin" else {LABEL_TRAINING_POOL: pname}),
        tolerations=first.scheduling.tolerations,
        instance_type=first.instance_type.name if first.instance_type else None,
    )


# ---------------------------------------------------------------------------------------------
# SpotTrainingCluster


class SpotTrainingCluster(pulumi.ComponentResource):
    """Spot GPU pools with fallback, Kueue queues, JobSet, a checkpoint bucket and identities.

    Outputs: ``checkpoint_url`` (``s3://``/``gs://`` bucket URL or None), ``queues`` (team ->
    LocalQueue name), ``service_accounts`` (team -> ``namespace/name``). Attributes: ``plan``,
    ``cluster``, ``node_pools`` (GpuNodePool children by name), ``ready`` (resources a
    TrainingJob waits for: the Kueue/JobSet releases and the team's queue objects).
    """

    plan: TrainingClusterPlan
    cluster: KubernetesCluster
    node_pools: dict[str, GpuNodePool]
    checkpoint_url: pulumi.Output[str | None]
    """The checkpoint bucket's URL (``s3://`` or ``gs://``); None without a bucket."""
    queues: pulumi.Output[dict[str, str]]
    """Kueue LocalQueue name per team."""
    service_accounts: pulumi.Output[dict[str, str]]
    """Kubernetes service account (``namespace/name``) per team, bound to the cloud identity."""
    cloud_env: dict[str, str]
    """Environment every training pod on this cluster gets (e.g. ``AWS_REGION``)."""
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: SpotTrainingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        cluster = args.get("cluster")
        if not isinstance(cluster, KubernetesCluster):
            raise ComponentInputError("SpotTrainingCluster", name, [Problem("cluster", cluster, "is not a KubernetesCluster.", "pass the KubernetesCluster to train on.")])
        plan = plan_training_cluster(name, args, cluster.facts)  # raises before anything is registered
        # The summary must not wait on a child's output (children register only after this
        # component does), so a created bucket appears in it by resource name; see summary().
        super().__init__(CLUSTER_TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan, self.cluster = plan, cluster
        self.node_pools = {
            c.node_pool_name: GpuNodePool(c.node_pool_name, GpuNodePoolArgs(cluster=cluster, **c.node_pool_args), opts=pulumi.ResourceOptions(parent=self))  # type: ignore[typeddict-item]
            for pool in plan.pools
            for c in pool.capacities
        }
        if plan.implementation == "eks":
            from components.aws.training import create_cloud_resources
        elif plan.implementation == "gke":
            from components.gcp.training import create_cloud_resources  # type: ignore[assignment]
        else:
            from components.kubernetes.training import create_cloud_resources  # type: ignore[assignment]
        cloud = create_cloud_resources(self, name, plan, cluster)
        from components.kubernetes.training import create_training_platform

        self.checkpoint_url = cloud.checkpoint_url
        self.cloud_env = dict(cloud.env)
        self.ready = create_training_platform(self, name, plan, cluster, cloud)
        self.queues = pulumi.Output.from_input({t.name: t.local_queue for t in plan.teams})
        self.service_accounts = pulumi.Output.from_input({t.name: f"{t.namespace}/{t.service_account}" for t in plan.teams})
        self.register_outputs(
            {
                "checkpoint_url": self.checkpoint_url,
                "queues": self.queues,
                "service_accounts": self.service_accounts,
            }
        )

    def checkpoint_url_for(self, team: str, job: str) -> pulumi.Output[str | None]:
        """Where a team's job keeps its checkpoints: ``<bucket>/<team>/<job>`` (None without a bucket)."""
        return self.checkpoint_url.apply(lambda url: f"{url}/{team}/{job}" if url else None)


_JOB_NAMES = ("TrainingJob", "TrainingJobArgs", "TrainingJobPlan", "plan_training_job")


def __getattr__(name: str) -> Any:
    """TrainingJob lives in components/training_job.py (which imports this module); the names stay
    importable from here, loaded on first use to keep the import acyclic."""
    if name in _JOB_NAMES:
        from components import training_job

        return getattr(training_job, name)
    raise AttributeError(f"module 'components.training' has no attribute {name!r}")

__all__ = [
    "CLUSTER_TYPE_TOKEN",
    "JOB_TYPE_TOKEN",
    "CheckpointBucketArgs",
    "SpotTrainingCluster",
    "SpotTrainingClusterArgs",
    "TeamArgs",
    "TrainingClusterPlan",
    "TrainingPoolArgs",
    "default_grace_seconds",
    "plan_training_cluster",
]
