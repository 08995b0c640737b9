"""TrainingFederation's spec: one Kueue MultiKueue manager dispatching training jobs to worker clusters.

``TrainingFederation`` takes a manager cluster and worker clusters (any cloud) and emits:

- on the manager (Kueue ``kueue.x-k8s.io/v1beta2``, chart 0.19.2, with the Configuration's
  ``multiKueue.dispatcherName`` set to the chosen dispatcher): one ResourceFlavor per federation
  flavor (quota only, no nodes: jobs never run on the manager), a ClusterQueue named after the
  component whose quota per flavor is the sum of what the workers offer and whose
  ``admissionChecksStrategy`` names one AdmissionCheck (controller ``kueue.x-k8s.io/multikueue``,
  parameters -> a MultiKueueConfig listing every worker), a MultiKueueCluster per worker
  (``clusterSource.kubeConfig`` with ``locationType: Secret``) annotated with the worker's cloud,
  region, preemption notice and catalog $/GPU-hour per flavor (the cost-aware dispatcher reads
  them), a kubeconfig Secret per worker in ``kueue-system`` (or a given one), and per team a
  namespace and a LocalQueue;
- on every worker (unless it is declared as managed elsewhere with ``existing_queues``): the
  Kueue chart (its CRDs and controller), the same namespaces and LocalQueues, a ClusterQueue of
  the same name with the worker's own quotas, and the ResourceFlavors it offers, selecting its
  GPU nodes by label.

MultiKueue needs the workers to mirror the manager (a job's remote copy is created in the same
namespace with the same queue label). A plan-time check compares what each worker will have
with the manager and reports every mismatch (namespace, LocalQueue, ClusterQueue, flavor), one
message each, before anything exists.

Dispatch modes (``dispatcher``): ``all_at_once`` and ``incremental`` are Kueue's own (first worker
to admit wins); ``external`` leaves ``status.nominatedClusterNames`` to gpuplane's cost-aware
dispatcher (gpuplane/dispatch), which ranks workers by price, preemption notice, free quota and
distance to the job's data.

This folder: ``spec.py`` (this module: args, plan dataclasses, names), ``manifests.py`` (pure
manifests, built with the training capability's Kueue builders), ``planner.py``
(``plan_federation`` and the mirror check, pure), ``multikueue.py`` (the resources) and
``component.py``. Deliberately not done: installing the dispatcher itself in the manager (run
``gpuplane dispatch run`` or your own Deployment of it), ClusterProfile-based worker discovery.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Required, TypedDict

from components.cluster import KubernetesCluster

FEDERATION_TYPE_TOKEN = "gpuplane:index:TrainingFederation"

MULTIKUEUE_CONTROLLER = "kueue.x-k8s.io/multikueue"
"""The AdmissionCheck controller name of MultiKueue (apis/kueue/v1beta2 ``MultiKueueControllerName``)."""
KUBECONFIG_KEY = "kubeconfig"
"""The Secret key MultiKueue reads a worker's kubeconfig from (``MultiKueueConfigSecretKey``)."""
KUEUE_NAMESPACE = "kueue-system"

DispatcherName = Literal["all_at_once", "incremental", "external"]
DISPATCHER_NAMES: dict[str, str] = {
    # apis/config/v1beta2 configuration_types.go: MultiKueueDispatcherModeAllAtOnce / ...Incremental
    "all_at_once": "kueue.x-k8s.io/multikueue-dispatcher-all-at-once",
    "incremental": "kueue.x-k8s.io/multikueue-dispatcher-incremental",
    # Any other name: Kueue leaves status.nominatedClusterNames to that external controller.
    "external": "gpuplane.dev/cost-aware-dispatcher",
}

ANNOTATION_CLOUD = "gpuplane.dev/cloud"
ANNOTATION_REGION = "gpuplane.dev/region"
ANNOTATION_NOTICE = "gpuplane.dev/preemption-notice-seconds"
ANNOTATION_PRICES = "gpuplane.dev/usd-per-gpu-hour"
"""On a MultiKueueCluster: JSON ``{flavor: $ per GPU-hour}`` for the flavors the worker offers."""
ANNOTATION_ACCELERATOR = "gpuplane.dev/accelerator"
ANNOTATION_CAPACITY = "gpuplane.dev/capacity-type"
LABEL_ACCELERATOR = "gpuplane.dev/accelerator"
LABEL_CAPACITY = "gpuplane.dev/capacity-type"

CapacityName = Literal["spot", "on_demand", "reserved"]
DEFAULT_TEAM = "training"
DEFAULT_INCREMENTAL_STEP = 3


# ---------------------------------------------------------------------------------------------
# Arguments


class FederationFlavorArgs(TypedDict, total=False):
    """A kind of GPU capacity the federation schedules: the same ResourceFlavor name on the manager and every worker offering it."""

    name: Required[str]
    """ResourceFlavor name (DNS label), e.g. ``h100-spot``."""
    accelerator: Required[str]
    """Catalog accelerator name, e.g. ``H100``, ``A100-80GB``, ``L4``."""
    capacity: CapacityName
    """``spot``, ``on_demand`` or ``reserved`` (prices and the preemption notice depend on it). Default ``on_demand``."""
    node_labels: dict[str, str]
    """Labels of the worker nodes the flavor selects. Default
    ``{"gpuplane.dev/accelerator": <accelerator>, "gpuplane.dev/capacity-type": <capacity with ->}``."""


class WorkerFlavorArgs(TypedDict, total=False):
    """One flavor a worker offers, with its quota."""

    name: Required[str]
    """A federation flavor's name."""
    gpus: Required[int]
    """GPUs of this flavor the worker's ClusterQueue admits at once (its nominal quota)."""
    vcpus: int
    """vCPU quota. Default: ``gpus`` x the vCPUs per GPU of the cheapest catalog type for the accelerator
    in the worker's cloud; required on an existing cluster."""
    memory_gib: float
    """Memory quota in GiB. Default as ``vcpus``, from the catalog's memory per GPU."""
    usd_per_gpu_hour: float
    """Price per GPU-hour the dispatcher ranks by. Default: the catalog's cheapest offering of the accelerator
    in the worker's region at the flavor's capacity; required on an existing cluster."""


class ExistingQueuesArgs(TypedDict, total=False):
    """What a worker managed elsewhere (another stack, by hand) already has; nothing is created on it."""

    namespaces: Required[list[str]]
    """Namespaces that exist on the worker."""
    local_queue: Required[str]
    """Name of the LocalQueue in each of those namespaces."""
    cluster_queue: Required[str]
    """The ClusterQueue those LocalQueues point at."""
    flavors: Required[list[str]]
    """ResourceFlavors in that ClusterQueue."""


class FederationWorkerArgs(TypedDict, total=False):
    """A worker cluster: where MultiKueue runs the jobs."""

    name: Required[str]
    """MultiKueueCluster name (DNS label), e.g. ``aws-use1``; the dispatcher nominates workers by it."""
    cluster: Required[KubernetesCluster]
    """The worker cluster (its provider creates the mirror; its kubeconfig reaches it)."""
    flavors: Required[list[WorkerFlavorArgs]]
    """Flavors the worker offers, with quotas (at least one)."""
    cloud: Literal["aws", "gcp", "kubernetes"]
    """Where the worker runs, for prices, egress and the preemption notice. Default: the cluster's cloud."""
    region: str
    """The worker's region (catalog name). Default: the cluster's region; required on an existing cluster
    for the dispatcher's residency and data-distance checks."""
    kubeconfig_secret: str
    """An existing Secret in the manager's ``kueue-system`` namespace with key ``kubeconfig``.
    Default: one is created from the cluster's ``kubeconfig`` output."""
    existing_queues: ExistingQueuesArgs
    """The worker's queues are managed elsewhere: declare them and the plan checks that they mirror the
    manager; nothing is created on the worker. Default: the federation creates the mirror."""
    install_kueue: bool
    """Install Kueue on the worker with Helm (when the federation creates the mirror). Default True."""


class FederationTeamArgs(TypedDict, total=False):
    """A team that submits jobs to the federation."""

    name: Required[str]
    """Team name (DNS label)."""
    namespace: str
    """The team's namespace, on the manager and every worker. Default: the team name."""


class TrainingFederationArgs(TypedDict, total=False):
    """Arguments of ``TrainingFederation``."""

    manager: Required[KubernetesCluster]
    """The MultiKueue manager cluster: jobs are submitted here and run on the workers."""
    flavors: Required[list[FederationFlavorArgs]]
    """The federation's flavors (at least one)."""
    workers: Required[list[FederationWorkerArgs]]
    """Worker clusters (1 to 20: Kueue nominates at most 20 clusters per workload)."""
    teams: list[FederationTeamArgs]
    """Teams (namespace + LocalQueue each). Default: one team ``training``."""
    dispatcher: DispatcherName
    """Who picks workers: ``all_at_once`` (Kueue: every worker at once, first to admit wins),
    ``incremental`` (Kueue: ``incremental_step`` more workers each round) or ``external`` (gpuplane's
    cost-aware dispatcher writes ``nominatedClusterNames``). Default ``external``."""
    incremental_step: int
    """Workers added per round with ``dispatcher='incremental'``. Default 3."""
    install_kueue: bool
    """Install Kueue on the manager with Helm, configured for MultiKueue. Default True."""


# ---------------------------------------------------------------------------------------------
# Plan


@dataclass(frozen=True)
class FlavorPlan:
    name: str
    accelerator: str
    capacity: str
    node_labels: dict[str, str]
    tolerations: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class WorkerFlavorPlan:
    name: str
    gpus: int
    vcpus: int
    memory_gib: float
    usd_per_gpu_hour: float | None


@dataclass(frozen=True)
class ExistingQueuesPlan:
    namespaces: tuple[str, ...]
    local_queue: str
    cluster_queue: str
    flavors: tuple[str, ...]


@dataclass(frozen=True)
class WorkerPlan:
    name: str
    index: int
    """Position in ``workers`` (for property paths)."""
    cloud: str
    region: str | None
    notice_seconds: int
    flavors: tuple[WorkerFlavorPlan, ...]
    kubeconfig_secret: str
    create_secret: bool
    existing: ExistingQueuesPlan | None
    install_kueue: bool

    def flavor(self, name: str) -> WorkerFlavorPlan | None:
        return next((f for f in self.flavors if f.name == name), None)

    def annotations(self) -> dict[str, str]:
        """What the cost-aware dispatcher reads from the worker's MultiKueueCluster."""
        prices = {f.name: f.usd_per_gpu_hour for f in self.flavors if f.usd_per_gpu_hour is not None}
        return {
            ANNOTATION_CLOUD: self.cloud,
            ANNOTATION_REGION: self.region or "",
            ANNOTATION_NOTICE: str(self.notice_seconds),
            ANNOTATION_PRICES: json.dumps(prices, sort_keys=True),
        }


@dataclass(frozen=True)
class TeamPlan:
    name: str
    namespace: str


@dataclass(frozen=True)
class FederationPlan:
    name: str
    queue: str
    """The ClusterQueue name (manager and workers) and each team's LocalQueue name."""
    teams: tuple[TeamPlan, ...]
    flavors: tuple[FlavorPlan, ...]
    workers: tuple[WorkerPlan, ...]
    dispatcher: str
    dispatcher_name: str
    incremental_step: int
    install_kueue: bool

    @property
    def admission_check(self) -> str:
        return f"{self.name}-multikueue"

    @property
    def multikueue_config(self) -> str:
        return self.name

    def flavor(self, name: str) -> FlavorPlan | None:
        return next((f for f in self.flavors if f.name == name), None)

    def manager_quota(self, flavor: str) -> tuple[int, int, float]:
        """(GPUs, vCPUs, GiB) of a flavor on the manager: the sum over the workers offering it."""
        offered = [wf for w in self.workers for wf in w.flavors if wf.name == flavor]
        return sum(f.gpus for f in offered), sum(f.vcpus for f in offered), sum(f.memory_gib for f in offered)

    def multikueue_section(self) -> dict[str, Any]:
        """The Kueue Configuration's ``multiKueue`` section on the manager."""
        section: dict[str, Any] = {"dispatcherName": self.dispatcher_name}
        if self.dispatcher == "incremental":
            section["incrementalDispatcherConfig"] = {"stepSize": self.incremental_step}
        return section

    def feature_gates(self) -> dict[str, bool]:
        """Kueue feature gates the manager needs.

        External dispatch: Kueue clears ``status.nominatedClusterNames`` when a worker admits the job
        (the two fields are mutually exclusive, a CEL rule on the Workload), but with server-side apply it
        can only clear fields its own field manager wrote. Upstream's answer is the chart's
        MutatingAdmissionPolicy ``clear-nominated-cluster-names`` (``enableMutatingAdmissionPolicy``,
        Kubernetes 1.36+); on older clusters ``WorkloadRequestUseMergePatch`` (alpha in 0.19) makes Kueue
        patch the Workload by merge patch, which clears the field whoever wrote it. Seen on the real
        v0.19.2 in the engine lane: without it the job never leaves the manager.
        """
        return {"WorkloadRequestUseMergePatch": True} if self.dispatcher == "external" else {}

    def summary(self) -> dict[str, Any]:
        """The plan as the component's registered ``gpuplane`` input (read by policies and the cost model)."""
        return {
            "queue": self.queue,
            "dispatcher": self.dispatcher,
            "dispatcherName": self.dispatcher_name,
            "admissionCheck": self.admission_check,
            "teams": [{"name": t.name, "namespace": t.namespace} for t in self.teams],
            "flavors": [{"name": f.name, "accelerator": f.accelerator, "capacityType": f.capacity} for f in self.flavors],
            "workers": [
                {
                    "name": w.name,
                    "cloud": w.cloud,
                    "region": w.region,
                    "preemptionNoticeSeconds": w.notice_seconds,
                    "managedElsewhere": w.existing is not None,
                    "flavors": [{"name": f.name, "gpus": f.gpus, "usdPerGpuHour": f.usd_per_gpu_hour} for f in w.flavors],
                }
                for w in self.workers
            ],
        }
