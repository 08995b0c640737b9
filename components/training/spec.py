"""SpotTrainingCluster's spec: gang-scheduled torchrun jobs on spot GPUs with fallback.

``SpotTrainingCluster`` turns a ``KubernetesCluster`` into a training platform:

- GPU capacity: for every pool spec it creates one ``GpuNodePool`` child per capacity type in
  ``capacity_fallback`` (``["spot", "on_demand"]`` by default), named
  ``f"{name}-{pool}-{capacity}"``. The fallback order is declared once and emitted twice,
  consistently: at node level as GpuNodePool ``priority`` (Karpenter NodePool weights; managed
  node groups and GKE get one pool per capacity type) and at queue level as the order of the
  Kueue ResourceFlavors in the ClusterQueue (``flavorFungibility`` tries the next flavor
  before preempting). Every pool node carries ``gpuplane.dev/training-pool=<pool>`` (the job
  selects it) and ``gpuplane.dev/capacity-type`` (the flavor selects it). On an existing cluster,
  whose nodes gpuplane does not label, a pool's flavor and jobs select its nodes by the owner's
  ``node_labels`` (required with several pools, which would otherwise select the same nodes).
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

``TrainingJob`` (components/training_job/) submits one JobSet to a team's LocalQueue: N nodes x
G GPUs, torchrun with a static rendezvous on pod 0, exit code 75 (preempted after a checkpoint)
restarts the pod without counting as a failure, anything else restarts the whole gang up to
``max_restarts``.

This folder: ``spec.py`` (this module: args, plan dataclasses, declared features, the
``CloudTraining`` contract between a cloud backend and the Kubernetes one), ``planner.py``
(``plan_training_cluster``, pure and table-tested; it raises one ``ComponentInputError`` listing
every problem before any child exists), backends ``eks.py`` and ``gke.py`` (bucket, identities,
interruption handling) and ``kueue.py`` (Kueue, JobSet controller; the existing-cluster
variant), and ``component.py`` (the ComponentResource). What this capability deliberately does not do:
pick flavors after a spot stock-out (Kueue re-admits to the first flavor with quota; a
ProvisioningRequest admission check would be the next step), or run elastic (variable-size)
training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Required, TypedDict

import pulumi

from components.cluster import ClusterFacts, KubernetesCluster
from components.errors import Problems
from components.features import Feature, FeatureSupport
from components.node_pool import NodePoolPlan

CLUSTER_TYPE_TOKEN = "gpuplane:index:SpotTrainingCluster"

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

# The Kueue and JobSet releases the Kubernetes backend (kueue.py) installs; pinned here because the plan reports them.
KUEUE_VERSION = "0.19.2"

KUEUE_API = "kueue.x-k8s.io/v1beta2"

JOBSET_VERSION = "0.12.0"

JOBSET_API = "jobset.x-k8s.io/v1alpha2"


_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
BUCKET_URL = re.compile(r"(s3|gs)://([a-z0-9][a-z0-9._-]{1,61}[a-z0-9])(/.*)?")


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
    node_labels: dict[str, str]
    """Existing cluster only: labels the owner's nodes of this pool carry, which tell them apart from its other
    GPU nodes, e.g. ``{"nvidia.com/gpu.product": "NVIDIA-L4"}`` (NVIDIA GPU feature discovery) or the owner's own
    pool label. The pool's Kueue ResourceFlavor and its jobs' pods select them (with ``nvidia.com/gpu.present``).
    Required when the cluster has more than one pool. Default: every GPU node of the cluster."""


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
            "kueue": {"installed": self.install_kueue, "version": KUEUE_VERSION, "apiVersion": KUEUE_API},
            "jobset": {"installed": self.install_jobset, "version": JOBSET_VERSION, "apiVersion": JOBSET_API},
            "tags": dict(self.tags),
        }


def implementation_of(facts: ClusterFacts) -> str:
    return {"aws": "eks", "gcp": "gke"}.get(facts.cloud, "kubernetes")


# -- validation helpers shared by the planners (this one and TrainingJob's) --------------------------


def is_int(v: object) -> bool:
    """An int that is not a bool (YAML and JSON give both)."""
    return isinstance(v, int) and not isinstance(v, bool)



def dns_label(p: Problems, path: str, value: object, what: str, max_len: int = 63) -> bool:
    """Add a problem unless ``value`` is a DNS label of at most ``max_len`` characters; True when it is one."""
    if not isinstance(value, str) or not _DNS_LABEL.match(value) or len(value) > max_len:
        p.add(path, value, f"is not a valid {what}: lower-case letters, digits and '-', starting with a letter, at most {max_len} characters.", "rename it, e.g. 'h100' or 'recs'.")
        return False
    return True



# -- what each implementation supports -----------------------------------------------------------

EKS_FEATURES = FeatureSupport(
    implementation="eks",
    supported=frozenset(
        {Feature.GANG_SCHEDULING, Feature.SPOT, Feature.CHECKPOINT_BUCKET, Feature.INTERRUPTION_HANDLING}
    ),
    missing={
        Feature.RESERVED_CAPACITY: "GpuNodePool does not create Capacity Block or On-Demand Capacity Reservation node groups yet "
        "(they need a reservation id per node group); use 'spot' and 'on_demand'",
    },
)


GKE_FEATURES = FeatureSupport(
    implementation="gke",
    supported=frozenset({Feature.GANG_SCHEDULING, Feature.SPOT, Feature.CHECKPOINT_BUCKET, Feature.INTERRUPTION_HANDLING}),
    missing={
        Feature.RESERVED_CAPACITY: "GpuNodePool does not set GKE reservation affinity yet; use 'spot' and 'on_demand'",
    },
)


KUBERNETES_FEATURES = FeatureSupport(
    implementation="kubernetes",
    supported=frozenset({Feature.GANG_SCHEDULING}),
    missing={
        Feature.SPOT: "an existing cluster's nodes and their capacity types belong to its owner; gpuplane creates no nodes there, so use capacity_fallback=['on_demand']",
        Feature.INTERRUPTION_HANDLING: "node termination handling on an existing cluster is its owner's (pods still get SIGTERM and the grace period)",
        Feature.CHECKPOINT_BUCKET: "gpuplane creates buckets only where it can also bind workload identity (EKS, GKE); give checkpoint_bucket.url",
        Feature.RESERVED_CAPACITY: "an existing cluster's reservations belong to its owner",
    },
)


def feature_support(implementation: str) -> FeatureSupport:
    """The declared features of a SpotTrainingCluster implementation."""
    return {"eks": EKS_FEATURES, "gke": GKE_FEATURES}.get(implementation, KUBERNETES_FEATURES)


@dataclass
class CloudTraining:
    """What a cloud implementation made for the Kubernetes side."""

    checkpoint_url: pulumi.Output[Any]
    """``s3://bucket`` / ``gs://bucket`` or None."""
    service_account_annotations: dict[str, pulumi.Input[dict[str, str]]] = field(default_factory=dict)
    """Per team: annotations binding its service account to its cloud identity."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment every training pod gets (e.g. ``AWS_REGION``)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """Resources the Kubernetes objects wait for (identity bindings, handlers)."""
