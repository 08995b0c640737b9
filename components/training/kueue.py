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
    return {
        "apiVersion": KUEUE_API,
        "kind": "ResourceFlavor",
        "metadata": {"name": cap.flavor, "labels": {"app.kubernetes.io/managed-by": "gpuplane"}},
        "spec": {"nodeLabels": labels, "tolerations": [dict(t) for t in pool.tolerations]},
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
                flavors.append(
                    {
                        "name": c.flavor,
                        "resources": [
                            {"name": "cpu", "nominalQuota": int(vcpus)},
                            {"name": "memory", "nominalQuota": _quantity_gib(mem)},
                            {"name": "nvidia.com/gpu", "nominalQuota": int(gpus)},
                        ],
                    }
                )
    return flavors


def cluster_queues(plan: TrainingClusterPlan) -> list[dict[str, Any]]:
    """The ClusterQueue(s): one shared, or one per team plus the unclaimed rest, in a cohort."""
    fungibility = {"whenCanBorrow": "MayStopSearch", "whenCanPreempt": "TryNextFlavor"}
    covered = ["cpu", "memory", "nvidia.com/gpu"]

    def queue(qname: str, selector: dict[str, Any], flavors: list[dict[str, Any]], per_team: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "namespaceSelector": selector,
            "queueingStrategy": "BestEffortFIFO",
            "resourceGroups": [{"coveredResources": covered, "flavors": flavors}],
            "flavorFungibility": fungibility,
            "preemption": {"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "Any" if per_team else "Never"},
        }
        if plan.cohort:
            spec["cohortName"] = plan.cohort
        return {"apiVersion": KUEUE_API, "kind": "ClusterQueue", "metadata": {"name": qname, "labels": {"app.kubernetes.io/managed-by": "gpuplane"}}, "spec": spec}

    if not plan.per_team_queues:
        namespaces = sorted({t.namespace for t in plan.teams})
        selector = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}
        return [queue(plan.name, selector, _flavor_quotas(plan, None), False)]
    queues = [
        queue(t.cluster_queue, {"matchLabels": {"kubernetes.io/metadata.name": t.namespace}}, _flavor_quotas(plan, t.gpu_quota), True)
        for t in plan.teams
    ]
    if plan.shared_queue:
        rest = {p.name: p.max_nodes * p.gpus_per_node - sum(t.gpu_quota.get(p.name, 0) for t in plan.teams) for p in plan.pools}
        # Lend-only: no namespace may submit to it; its quota is borrowed by the team queues.
        queues.append(queue(plan.shared_queue, {"matchLabels": {"gpuplane.dev/no-namespace": "true"}}, _flavor_quotas(plan, rest), True))
    return queues


def local_queue(plan: TrainingClusterPlan, team: TeamPlan) -> dict[str, Any]:
    return {
        "apiVersion": KUEUE_API,
        "kind": "LocalQueue",
        "metadata": {"name": team.local_queue, "namespace": team.namespace, "labels": {"app.kubernetes.io/managed-by": "gpuplane", "gpuplane.dev/team": team.name}},
        "spec": {"clusterQueue": team.cluster_queue},
    }


def kueue_values() -> dict[str, Any]:
    """Helm values for Kueue: the chart's default configuration plus waitForPodsReady."""
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


def _custom(name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
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
            ready.append(_custom(f"{name}-flavor-{pool.name}-{c.capacity.replace('_', '-')}", resource_flavor(plan, pool.name, c.capacity), after))
    flavors = list(ready[len(releases):])
    queue_opts = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=releases + flavors)
    for q in cluster_queues(plan):
        suffix = q["metadata"]["name"].removeprefix(name).lstrip("-") or "queue"
        ready.append(_custom(f"{name}-cq-{suffix}" if suffix != "queue" else f"{name}-queue", q, queue_opts))
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
        lq = _custom(f"{name}-{team.name}-local-queue", local_queue(plan, team), pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[ns, *releases, *queues]))
        ready += [ns, sa, lq]
    return ready


__all__ = [
    "JOBSET_API",
    "JOBSET_VERSION",
    "KUEUE_API",
    "KUEUE_VERSION",
    "CloudTraining",
    "cluster_queues",
    "create_cloud_resources",
    "create_training_platform",
    "kueue_values",
    "local_queue",
    "resource_flavor",
]
