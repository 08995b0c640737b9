"""Training on any Kubernetes cluster: Kueue queues, JobSet jobs, and the existing-cluster variant.

Two roles, like every ``<cloud>/training.py``:

1. ``FEATURES`` and ``create_cloud_resources`` for an *existing* cluster: no bucket is created
   and no cloud identity is bound (the cluster's owner runs both); a given ``s3://``/``gs://``
   URL is passed through, and ``service_account_annotations`` let the owner's identity binding
   reach the pods.
2. The Kubernetes objects every implementation shares (``create_training_platform``,
   ``create_training_job``), built by pure functions that return plain manifests (tested
   against the upstream API shapes):

   - Kueue (``kueue.x-k8s.io/v1beta2``, chart 0.19.2): ResourceFlavors per (pool, capacity
     type) with the node labels and tolerations of the pool; ClusterQueue(s) whose single
     resource group covers cpu, memory and ``nvidia.com/gpu`` with the flavors in fallback
     order and ``flavorFungibility {whenCanBorrow: MayStopSearch, whenCanPreempt:
     TryNextFlavor}`` (``MayStopSearch`` is v1beta2's name for v1beta1's ``Borrow``); a
     LocalQueue per team. The Kueue configuration turns on ``waitForPodsReady`` (its presence
     enables it in the v1beta2 configuration API) with ``blockAdmission``, so a gang is
     admitted all-or-nothing and evicted and requeued if it cannot start.
   - JobSet (``jobset.x-k8s.io/v1alpha2``, chart 0.12.0): one replicated job ``worker`` of one
     Indexed Job with N pods; DNS hostnames on a headless Service this module creates (named
     like the JobSet's subdomain, so the JobSet controller adopts it instead of creating its
     own) give pod 0 the stable name ``<jobset>-worker-0-0.<subdomain>`` for torchrun's static
     rendezvous.

Exit code 75 and torchrun. Plain torchrun exits 1 whenever a worker fails, hiding the
workload's "preempted, requeue" code 75. The container therefore runs the image's ENTRYPOINT,
which by the workload contract takes torchrun's arguments and keeps the codes (the reference
image's ``python -m workloads.training.launch``: 0 done, 75 preempted after a checkpoint or
stopped by SIGTERM, 2 usage error); ``TrainingJob(command=...)`` overrides it for other images.
``TORCH_ELASTIC_SHUTDOWN_TIMEOUT`` is set a few seconds below the pod's grace period, so
torchrun's agent lets workers finish their checkpoint (its default is 30 s). The Job's
podFailurePolicy ignores exit 75 and pods with a ``DisruptionTarget`` condition (restart
without counting), fails the Job on exit 2 (the JobSet then fails instead of retrying) and
counts anything else; the JobSet restarts the gang on ``BackoffLimitExceeded`` up to
``max_restarts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.features import Feature, FeatureSupport
from components.kubernetes.storage import sync_init_container

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.training import SpotTrainingCluster, TeamPlan, TrainingClusterPlan
    from components.training_job import TrainingJobPlan

KUEUE_CHART = "oci://registry.k8s.io/kueue/charts/kueue"
KUEUE_VERSION = "0.19.2"
KUEUE_API = "kueue.x-k8s.io/v1beta2"
KUEUE_NAMESPACE = "kueue-system"
KUEUE_POD_READY_TIMEOUT = "10m"
"""How long an admitted gang may take to get every pod running (GPU node start + image pull) before requeue."""
JOBSET_CHART = "oci://registry.k8s.io/jobset/charts/jobset"
JOBSET_VERSION = "0.12.0"
JOBSET_IMAGE = "registry.k8s.io/jobset/jobset"
JOBSET_API = "jobset.x-k8s.io/v1alpha2"
JOBSET_NAMESPACE = "jobset-system"
# Rank 0 serves Prometheus metrics here (workloads/training/metrics.py); Observability's training
# PodMonitor scrapes this port (its training_metrics_port default).
METRICS_ENV = "GPUPLANE_METRICS_PORT"
METRICS_PORT = 9090
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
CONTAINER = "trainer"
SHUTDOWN_MARGIN_SECONDS = 5
"""torchrun's agent SIGKILLs workers this long before the kubelet would SIGKILL the pod."""


FEATURES = FeatureSupport(
    implementation="kubernetes",
    supported=frozenset({Feature.GANG_SCHEDULING}),
    missing={
        Feature.SPOT: "an existing cluster's nodes and their capacity types belong to its owner; gpuplane creates no nodes there, so use capacity_fallback=['on_demand']",
        Feature.INTERRUPTION_HANDLING: "node termination handling on an existing cluster is its owner's (pods still get SIGTERM and the grace period)",
        Feature.CHECKPOINT_BUCKET: "gpuplane creates buckets only where it can also bind workload identity (EKS, GKE); give checkpoint_bucket.url",
        Feature.RESERVED_CAPACITY: "an existing cluster's reservations belong to its owner",
    },
)


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


def create_cloud_resources(component: SpotTrainingCluster, name: str, plan: TrainingClusterPlan, cluster: KubernetesCluster) -> CloudTraining:
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
    return {"managerConfig": {"controllerManagerConfigYaml": yaml.safe_dump(config, sort_keys=True)}}


def jobset_values() -> dict[str, Any]:
    # The chart's values.yaml points at a staging image with tag "main"; pin the release image.
    return {"image": {"repository": JOBSET_IMAGE, "tag": f"v{JOBSET_VERSION}", "pullPolicy": "IfNotPresent"}}


def headless_service(plan: TrainingJobPlan) -> dict[str, Any]:
    """The rendezvous Service, named like the JobSet's subdomain (the JobSet controller then does not make one)."""
    return {
        "metadata": {"name": plan.subdomain, "namespace": plan.team.namespace, "labels": {"app.kubernetes.io/managed-by": "gpuplane", JOBSET_NAME_LABEL: plan.name}},
        "spec": {
            "clusterIP": "None",
            "selector": {JOBSET_NAME_LABEL: plan.name},
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rendezvous", "port": plan.master_port, "targetPort": plan.master_port, "protocol": "TCP"}],
        },
    }


def torchrun_args(plan: TrainingJobPlan, checkpoint_url: Any) -> list[Any]:
    """The container's args: torchrun's flags (static rendezvous on pod 0), then the workload's command line."""
    return [
        f"--nnodes={plan.nodes}",
        f"--nproc-per-node={plan.gpus_per_node}",
        "--node-rank=$(NODE_RANK)",
        "--master-addr=$(MASTER_ADDR)",
        "--master-port=$(MASTER_PORT)",
        "-m",
        "workloads.training",
        "--preset",
        plan.preset,
        "--data",
        plan.data_dir,
        "--checkpoint-dir",
        checkpoint_url,
        "--export-dir",
        plan.export_dir,
        *plan.extra_args,
    ]


def jobset_manifest(plan: TrainingJobPlan, image: Any, checkpoint_url: Any, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """The JobSet (jobset.x-k8s.io/v1alpha2) for a training job."""
    pool = plan.pool
    gpu = str(plan.gpus_per_node)
    resources = {
        # Guaranteed QoS (requests == limits): the last pods evicted under node pressure.
        "requests": {"cpu": str(plan.cpu_per_pod), "memory": f"{plan.memory_gib_per_pod}Gi", "nvidia.com/gpu": gpu},
        "limits": {"cpu": str(plan.cpu_per_pod), "memory": f"{plan.memory_gib_per_pod}Gi", "nvidia.com/gpu": gpu},
    }
    env = [
        {"name": "NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
        {"name": "MASTER_ADDR", "value": plan.master_addr},
        {"name": "MASTER_PORT", "value": str(plan.master_port)},
        {"name": "TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "value": str(max(1, plan.termination_grace_period_seconds - SHUTDOWN_MARGIN_SECONDS))},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        *({"name": k, "value": v} for k, v in sorted({METRICS_ENV: str(METRICS_PORT), **(extra_env or {}), **plan.env}.items())),
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{plan.shm_gib}Gi"}},
        {"name": "outputs", "emptyDir": {}},
    ]
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}, {"name": "outputs", "mountPath": plan.export_dir}]
    init_containers = []
    if plan.data_command:
        volumes.append({"name": "data", "emptyDir": {}})
        mounts.append({"name": "data", "mountPath": plan.data_dir})
        init_containers.append({"name": "data", "image": image, "command": list(plan.data_command), "volumeMounts": [{"name": "data", "mountPath": plan.data_dir}]})
    elif plan.data_url:
        volumes.append({"name": "data", "emptyDir": {}})
        mounts.append({"name": "data", "mountPath": plan.data_dir})
        init_containers.append(sync_init_container("data", plan.data_url, "data", plan.data_dir))
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",  # required by podFailurePolicy
        "serviceAccountName": plan.team.service_account,
        "terminationGracePeriodSeconds": plan.termination_grace_period_seconds,
        "nodeSelector": dict(pool.node_selector),
        "tolerations": [dict(t) for t in pool.tolerations],
        "containers": [
            {
                "name": CONTAINER,
                "image": image,
                "args": torchrun_args(plan, checkpoint_url),
                "env": env,
                "ports": [{"name": "rendezvous", "containerPort": plan.master_port, "protocol": "TCP"},
                          {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
                "resources": resources,
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    if plan.command:
        pod_spec["containers"][0]["command"] = list(plan.command)
    if init_containers:
        pod_spec["initContainers"] = init_containers
    job_spec = {
        "parallelism": plan.nodes,
        "completions": plan.nodes,
        "completionMode": "Indexed",
        # Any counted failure fails the Job at once: a torchrun gang cannot continue without a
        # rank, so the JobSet restarts the whole gang instead.
        "backoffLimit": 0,
        "podFailurePolicy": {
            "rules": [
                {"action": "Ignore", "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [75]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [2]}},
            ]
        },
        "template": {"metadata": {"labels": {"gpuplane.dev/team": plan.team.name, "gpuplane.dev/job": plan.name}}, "spec": pod_spec},
    }
    spec: dict[str, Any] = {
        "network": {"enableDNSHostnames": True, "subdomain": plan.subdomain, "publishNotReadyAddresses": True},
        "failurePolicy": {
            "maxRestarts": plan.max_restarts,
            "restartStrategy": "BlockingRecreate",  # old pods gone before the gang re-forms on the same port
            "rules": [
                {"name": "failOnUsageError", "action": "FailJobSet", "onJobFailureReasons": ["PodFailurePolicy"]},
                {"name": "restartGang", "action": "RestartJobSet", "onJobFailureReasons": ["BackoffLimitExceeded"]},
            ],
        },
        "replicatedJobs": [{"name": plan.replicated_job, "replicas": 1, "template": {"spec": job_spec}}],
    }
    if plan.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = plan.ttl_seconds_after_finished
    return {
        "apiVersion": JOBSET_API,
        "kind": "JobSet",
        "metadata": {
            "name": plan.name,
            "namespace": plan.team.namespace,
            "labels": {QUEUE_LABEL: plan.team.local_queue, "gpuplane.dev/team": plan.team.name, "app.kubernetes.io/managed-by": "gpuplane"},
        },
        "spec": spec,
    }


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


def create_training_platform(component: SpotTrainingCluster, name: str, plan: TrainingClusterPlan, cluster: KubernetesCluster, cloud: CloudTraining) -> list[pulumi.Resource]:
    """Kueue, JobSet, flavors, queues, team namespaces and service accounts; returns what jobs wait for."""
    provider = cluster.k8s_provider
    opts = pulumi.ResourceOptions(parent=component, provider=provider)
    releases: list[pulumi.Resource] = []
    if plan.install_kueue:
        releases.append(
            k8s.helm.v3.Release(
                f"{name}-kueue",
                k8s.helm.v3.ReleaseArgs(chart=KUEUE_CHART, version=KUEUE_VERSION, namespace=KUEUE_NAMESPACE, create_namespace=True, values=kueue_values()),
                opts=opts,
            )
        )
    if plan.install_jobset:
        releases.append(
            k8s.helm.v3.Release(
                f"{name}-jobset",
                k8s.helm.v3.ReleaseArgs(chart=JOBSET_CHART, version=JOBSET_VERSION, namespace=JOBSET_NAMESPACE, create_namespace=True, values=jobset_values()),
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


def create_training_job(component: pulumi.ComponentResource, name: str, plan: TrainingJobPlan, training_cluster: SpotTrainingCluster, image: Any, checkpoint_url: Any) -> k8s.apiextensions.CustomResource:
    """The headless Service and the JobSet of one TrainingJob."""
    provider = training_cluster.cluster.k8s_provider
    svc = headless_service(plan)
    service = k8s.core.v1.Service(
        f"{name}-rendezvous",
        metadata=k8s.meta.v1.ObjectMetaArgs(**svc["metadata"]),
        spec=k8s.core.v1.ServiceSpecArgs(
            cluster_ip="None",
            selector=svc["spec"]["selector"],
            publish_not_ready_addresses=True,
            ports=[k8s.core.v1.ServicePortArgs(name="rendezvous", port=plan.master_port, target_port=plan.master_port, protocol="TCP")],
        ),
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=training_cluster.ready),
    )
    manifest = jobset_manifest(plan, image, checkpoint_url, extra_env=training_cluster.cloud_env)
    return _custom(f"{name}-jobset", manifest, pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[service, *training_cluster.ready]))


__all__ = [
    "FEATURES",
    "JOBSET_API",
    "JOBSET_VERSION",
    "KUEUE_API",
    "KUEUE_VERSION",
    "CloudTraining",
    "cluster_queues",
    "create_cloud_resources",
    "create_training_job",
    "create_training_platform",
    "headless_service",
    "jobset_manifest",
    "kueue_values",
    "local_queue",
    "resource_flavor",
    "torchrun_args",
]
