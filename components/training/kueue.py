"""SpotTrainingCluster's Kubernetes backend: Kueue queues and the JobSet controller, on any cluster.

Two roles:

1. ``create_cloud_resources`` for an *existing* cluster (implementation ``kubernetes``): no bucket
   is created and no cloud identity is bound (the cluster's owner runs both); a given
   ``s3://``/``gs://`` URL is passed through, and ``service_account_annotations`` let the owner's
   identity binding reach the pods.
2. The Kubernetes objects every implementation shares (``create_training_platform``), built by
   pure functions that return plain manifests (tested against the upstream API shapes):

   - Kueue (``kueue.x-k8s.io/v1beta2``, chart 0.19.2): ResourceFlavors per (pool, capacity
     type) with the node labels and tolerations of the pool; ClusterQueue(s) whose single
     resource group covers cpu, memory and ``nvidia.com/gpu`` with the flavors in fallback
     order and ``flavorFungibility {whenCanBorrow: MayStopSearch, whenCanPreempt:
     TryNextFlavor}`` (``MayStopSearch`` is v1beta2's name for v1beta1's ``Borrow``); a
     LocalQueue per team. The Kueue configuration turns on ``waitForPodsReady`` (its presence
     enables it in the v1beta2 configuration API) with ``blockAdmission``, so a gang is
     admitted all-or-nothing and evicted and requeued if it cannot start.
   - JobSet (``jobset.x-k8s.io/v1alpha2``, chart 0.12.0): the controller; the JobSets themselves
     are TrainingJob's (components/training_job/jobset.py).

Cloud parts (bucket, identities, interruption handling) are eks.py's and gke.py's; this module
imports neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.kubernetes.charts import chart_args
from components.training.spec import JOBSET_API, JOBSET_VERSION, KUEUE_API, KUEUE_VERSION, CloudTraining

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.training.spec import TeamPlan, TrainingClusterPlan

KUEUE_CHART = "oci://registry.k8s.io/kueue/charts/kueue"
KUEUE_NAMESPACE = "kueue-system"
KUEUE_POD_READY_TIMEOUT = "10m"
"""How long an admitted gang may take to get every pod running (GPU node start + image pull) before requeue."""
JOBSET_CHART = "oci://registry.k8s.io/jobset/charts/jobset"
JOBSET_IMAGE = "registry.k8s.io/jobset/jobset"
JOBSET_NAMESPACE = "jobset-system"


def create_cloud_resources(component: pulumi.ComponentResource, name: str, plan: TrainingClusterPlan, cluster: KubernetesCluster) -> CloudTraining:
    """Existing cluster: nothing cloud-side; the given bucket URL (if any) is passed through."""
    url = plan.bucket.url if plan.bucket else None
    return CloudTraining(checkpoint_url=pulumi.Output.from_input(url))


# ---------------------------------------------------------------------------------------------
# Pure manifests


def _quantity_gib(gib: float) -> str:
    return f"{int(gib)}Gi"


def resource_flavor(plan: TrainingClusterPlan, pool_name: str, capacity: str) -> dict[str, Any]:
    """A ResourceFlavor selecting one pool's nodes at one capacity type."""
    pool = plan.pool(pool_name)
    if pool is None:
        raise KeyError(pool_name)
    cap = next(c for c in pool.capacities if c.capacity == capacity)
    labels = dict(pool.node_selector)
    if plan.facts.cloud in ("aws", "gcp"):
        labels["gpuplane.dev/capacity-type"] = capacity.replace("_", "-")
    return resource_flavor_manifest(cap.flavor, labels, pool.tolerations)


def resource_flavor_manifest(name: str, node_labels: dict[str, str] | None, tolerations: Iterable[dict[str, str]] = ()) -> dict[str, Any]:
    """A ResourceFlavor by name, selecting nodes by labels; ``node_labels=None``: a flavor that only
    counts quota and selects no nodes (a MultiKueue manager's, whose jobs run on the workers)."""
    spec: dict[str, Any] = {}
    if node_labels is not None:
        spec = {"nodeLabels": dict(node_labels), "tolerations": [dict(t) for t in tolerations]}
    return {
        "apiVersion": KUEUE_API,
        "kind": "ResourceFlavor",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "gpuplane"}},
        "spec": spec,
    }


def flavor_quota(name: str, gpus: int, vcpus: float, memory_gib: float) -> dict[str, Any]:
    """One flavor's entry in a ClusterQueue resource group (cpu, memory, GPUs)."""
    return {
        "name": name,
        "resources": [
            {"name": "cpu", "nominalQuota": int(vcpus)},
            {"name": "memory", "nominalQuota": _quantity_gib(memory_gib)},
            {"name": "nvidia.com/gpu", "nominalQuota": int(gpus)},
        ],
    }


def _flavor_quotas(plan: TrainingClusterPlan, gpu_share: dict[str, int] | None) -> list[dict[str, Any]]:
    """Flavors in fallback order; quotas are the pool's capacity, or a GPU share of it (with cpu/memory in proportion)."""
    flavors = []
    for capacity in plan.capacity_fallback:
        for pool in plan.pools:
            for c in pool.capacities:
                if c.capacity != capacity:
                    continue
                if gpu_share is None:
                    gpus, vcpus, mem = c.gpus, c.vcpus, c.memory_gib
                else:
                    gpus = min(gpu_share.get(pool.name, 0), c.gpus)
                    nodes = gpus // pool.gpus_per_node if pool.gpus_per_node else 0
                    vcpus, mem = nodes * pool.vcpus_per_node, nodes * pool.memory_gib_per_node
                flavors.append(flavor_quota(c.flavor, gpus, vcpus, mem))
    return flavors


def cluster_queues(plan: TrainingClusterPlan) -> list[dict[str, Any]]:
    """The ClusterQueue(s): one shared, or one per team plus the unclaimed rest, in a cohort."""

    def queue(qname: str, selector: dict[str, Any], flavors: list[dict[str, Any]], per_team: bool) -> dict[str, Any]:
        return cluster_queue_manifest(qname, selector, flavors, cohort=plan.cohort, reclaim_within_cohort=per_team)

    if not plan.per_team_queues:
        namespaces = sorted({t.namespace for t in plan.teams})
        return [queue(plan.name, namespaces_selector(namespaces), _flavor_quotas(plan, None), False)]
    queues = [
        queue(t.cluster_queue, {"matchLabels": {"kubernetes.io/metadata.name": t.namespace}}, _flavor_quotas(plan, t.gpu_quota), True)
        for t in plan.teams
    ]
    if plan.shared_queue:
        rest = {p.name: p.max_nodes * p.gpus_per_node - sum(t.gpu_quota.get(p.name, 0) for t in plan.teams) for p in plan.pools}
        # Lend-only: no namespace may submit to it; its quota is borrowed by the team queues.
        queues.append(queue(plan.shared_queue, {"matchLabels": {"gpuplane.dev/no-namespace": "true"}}, _flavor_quotas(plan, rest), True))
    return queues


def namespaces_selector(namespaces: Iterable[str]) -> dict[str, Any]:
    """A ClusterQueue namespaceSelector admitting exactly these namespaces."""
    return {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(set(namespaces))}]}


def cluster_queue_manifest(
    name: str,
    namespace_selector: dict[str, Any],
    flavors: list[dict[str, Any]],
    *,
    cohort: str | None = None,
    reclaim_within_cohort: bool = False,
    admission_checks: Iterable[str] = (),
) -> dict[str, Any]:
    """A ClusterQueue: one resource group over cpu, memory and GPUs with ``flavors`` (``flavor_quota``) in fallback order.

    ``admission_checks`` names AdmissionChecks every workload must pass (v1beta2's
    ``admissionChecksStrategy``), e.g. a MultiKueue manager's.
    """
    spec: dict[str, Any] = {
        "namespaceSelector": namespace_selector,
        "queueingStrategy": "BestEffortFIFO",
        "resourceGroups": [{"coveredResources": ["cpu", "memory", "nvidia.com/gpu"], "flavors": flavors}],
        "flavorFungibility": {"whenCanBorrow": "MayStopSearch", "whenCanPreempt": "TryNextFlavor"},
        "preemption": {"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "Any" if reclaim_within_cohort else "Never"},
    }
    if cohort:
        spec["cohortName"] = cohort
    checks = list(admission_checks)
    if checks:
        spec["admissionChecksStrategy"] = {"admissionChecks": [{"name": c} for c in checks]}
    return {"apiVersion": KUEUE_API, "kind": "ClusterQueue", "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "gpuplane"}}, "spec": spec}


def local_queue(plan: TrainingClusterPlan, team: TeamPlan) -> dict[str, Any]:
    return local_queue_manifest(team.local_queue, team.namespace, team.cluster_queue, team.name)


def local_queue_manifest(name: str, namespace: str, cluster_queue: str, team: str) -> dict[str, Any]:
    """A team's LocalQueue in its namespace, pointing at a ClusterQueue."""
    return {
        "apiVersion": KUEUE_API,
        "kind": "LocalQueue",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "gpuplane", "gpuplane.dev/team": team}},
        "spec": {"clusterQueue": cluster_queue},
    }


def kueue_values(multikueue: dict[str, Any] | None = None, feature_gates: dict[str, bool] | None = None) -> dict[str, Any]:
    """Helm values for Kueue: the chart's default configuration plus waitForPodsReady.

    ``multikueue``: the Configuration's ``multiKueue`` section for a MultiKueue manager
    (``dispatcherName``, ``incrementalDispatcherConfig``); None on any other cluster.
    ``feature_gates``: Kueue feature gates to set (``featureGates``); None: the release's defaults.
    """
    config = {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "health": {"healthProbeBindAddress": ":8081"},
        "metrics": {"bindAddress": ":8443"},
        "webhook": {"port": 9443},
        "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
        # All-or-nothing: admit one gang at a time until its pods are ready; evict and requeue
        # (with backoff) a gang whose pods are not all running within the timeout.
        "waitForPodsReady": {
            "timeout": KUEUE_POD_READY_TIMEOUT,
            "blockAdmission": True,
            "requeuingStrategy": {"timestamp": "Eviction", "backoffBaseSeconds": 60, "backoffMaxSeconds": 3600},
        },
        "integrations": {"frameworks": ["batch/job", "jobset.x-k8s.io/jobset"]},
    }
    if multikueue is not None:
        config["multiKueue"] = dict(multikueue)
    if feature_gates:
        config["featureGates"] = dict(feature_gates)
    # One Kueue per cluster, its objects named as upstream's own manifests name them
    # (kueue-controller-manager, ...). Without the override they are named after the release, which
    # Pulumi suffixes with 9 random characters: "<training cluster>-kueue-0123abcd-controller-manager-
    # metrics-service" is over a Service name's 63 characters from a 19-character cluster name on.
    return {"fullnameOverride": "kueue",
            "managerConfig": {"controllerManagerConfigYaml": yaml.safe_dump(config, sort_keys=True)}}


def jobset_values() -> dict[str, Any]:
    # The chart's values.yaml points at a staging image with tag "main"; pin the release image.
    return {"image": {"repository": JOBSET_IMAGE, "tag": f"v{JOBSET_VERSION}", "pullPolicy": "IfNotPresent"}}


# ---------------------------------------------------------------------------------------------
# Resources


def custom_resource(name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        name,
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        metadata=manifest["metadata"],
        spec=manifest["spec"],
        opts=opts,
    )


def create_training_platform(component: pulumi.ComponentResource, name: str, plan: TrainingClusterPlan, cluster: KubernetesCluster, cloud: CloudTraining) -> list[pulumi.Resource]:
    """Kueue, JobSet, flavors, queues, team namespaces and service accounts; returns what jobs wait for."""
    provider = cluster.k8s_provider
    opts = pulumi.ResourceOptions(parent=component, provider=provider)
    releases: list[pulumi.Resource] = []
    if plan.install_kueue:
        releases.append(
            k8s.helm.v3.Release(
                f"{name}-kueue",
                k8s.helm.v3.ReleaseArgs(**chart_args(cluster.chart_source, KUEUE_CHART, KUEUE_VERSION), namespace=KUEUE_NAMESPACE, create_namespace=True, values=kueue_values()),
                opts=opts,
            )
        )
    if plan.install_jobset:
        releases.append(
            k8s.helm.v3.Release(
                f"{name}-jobset",
                k8s.helm.v3.ReleaseArgs(**chart_args(cluster.chart_source, JOBSET_CHART, JOBSET_VERSION), namespace=JOBSET_NAMESPACE, create_namespace=True, values=jobset_values()),
                opts=opts,
            )
        )
    after = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=releases + list(cloud.depends_on))
    ready: list[pulumi.Resource] = list(releases)
    for pool in plan.pools:
        for c in pool.capacities:
            ready.append(custom_resource(f"{name}-flavor-{pool.name}-{c.capacity.replace('_', '-')}", resource_flavor(plan, pool.name, c.capacity), after))
    flavors = list(ready[len(releases):])
    queue_opts = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=releases + flavors)
    for q in cluster_queues(plan):
        suffix = q["metadata"]["name"].removeprefix(name).lstrip("-") or "queue"
        ready.append(custom_resource(f"{name}-cq-{suffix}" if suffix != "queue" else f"{name}-queue", q, queue_opts))
    queues = list(ready[len(releases) + len(flavors):])
    for team in plan.teams:
        ns = k8s.core.v1.Namespace(
            f"{name}-{team.name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=team.namespace, labels={"gpuplane.dev/team": team.name, "app.kubernetes.io/managed-by": "gpuplane"}),
            opts=pulumi.ResourceOptions(parent=component, provider=provider),
        )
        annotations = pulumi.Output.from_input(cloud.service_account_annotations.get(team.name, {})).apply(lambda a: {**plan.service_account_annotations, **(a or {})})
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-{team.name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=team.service_account, namespace=team.namespace, annotations=annotations, labels={"gpuplane.dev/team": team.name}),
            automount_service_account_token=True,
            opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[ns, *cloud.depends_on]),
        )
        lq = custom_resource(f"{name}-{team.name}-local-queue", local_queue(plan, team), pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[ns, *releases, *queues]))
        ready += [ns, sa, lq]
    return ready


__all__ = [
    "JOBSET_API",
    "JOBSET_VERSION",
    "KUEUE_API",
    "KUEUE_VERSION",
    "CloudTraining",
    "cluster_queue_manifest",
    "cluster_queues",
    "create_cloud_resources",
    "create_training_platform",
    "custom_resource",
    "flavor_quota",
    "kueue_values",
    "local_queue",
    "local_queue_manifest",
    "namespaces_selector",
    "resource_flavor",
    "resource_flavor_manifest",
]
