"""TrainingJob's Kubernetes backend: the headless Service and the JobSet of one gang-scheduled torchrun job.

JobSet (``jobset.x-k8s.io/v1alpha2``): one replicated job ``worker`` of one Indexed Job with N
pods; DNS hostnames on a headless Service this module creates (named like the JobSet's
subdomain, so the JobSet controller adopts it instead of creating its own) give pod 0 the stable
name ``<jobset>-worker-0-0.<subdomain>`` for torchrun's static rendezvous. The pod carries the
team's Kueue LocalQueue label, so Kueue admits the gang all-or-nothing.

Exit code 75 and torchrun. Plain torchrun exits 1 whenever a worker fails, hiding the
workload's "preempted, requeue" code 75. The container therefore runs the image's ENTRYPOINT,
which by the workload contract takes torchrun's arguments and keeps the codes (the reference
image's ``python -m workloads.training.launch``: 0 done, 75 preempted after a checkpoint or
stopped by SIGTERM, 2 usage error); ``TrainingJob(command=...)`` overrides it for other images.
``TORCH_ELASTIC_SHUTDOWN_TIMEOUT`` is set a few seconds below the pod's grace period, so
torchrun's agent lets workers finish their checkpoint (its default is 30 s). The Job's
podFailurePolicy ignores exit 75 (every rank stops on the notice; each pod restarts without
counting), fails the Job on a pod with a ``DisruptionTarget`` condition (its node was preempted,
drained or deleted: the other ranks cannot go on without it) and on exit 2, and counts anything
else. The JobSet then restarts the whole gang on a disruption without counting it against
``max_restarts`` (``RestartJobSetAndIgnoreMaxRestarts``, matched by the Job controller's failure
message "... has condition DisruptionTarget ..."), fails on exit 2 instead of retrying, and
restarts the gang on ``BackoffLimitExceeded`` up to ``max_restarts``. (Ignoring the disrupted pod
instead, as this module once did, left the gang with one rank replaced alone: checked against the
real Job and JobSet controllers in the sandbox, tests/engine/test_kueue_jobset.py.)

The manifests are pure functions (tested against the upstream API shapes). Assumes the training
cluster installed Kueue and JobSet (SpotTrainingCluster's ``ready``); creates nothing else.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.storage import sync_init_container
from components.training import JOBSET_API
from components.training_job.spec import TrainingJobPlan

# Rank 0 serves Prometheus metrics here (workloads/training/metrics.py); Observability's training
# PodMonitor scrapes this port (its training_metrics_port default).
METRICS_ENV = "GPUPLANE_METRICS_PORT"
METRICS_PORT = 9090
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
CONTAINER = "trainer"
DISRUPTED_PATTERN = "has condition DisruptionTarget"
"""What the Job controller writes in the Job's failure message when a FailJob rule matched a pod's
``DisruptionTarget`` condition ("Pod <ns>/<pod> has condition DisruptionTarget matching FailJob rule at index 1",
kubernetes pkg/controller/job/pod_failure_policy.go)."""
SHUTDOWN_MARGIN_SECONDS = 5
"""torchrun's agent SIGKILLs workers this long before the kubelet would SIGKILL the pod."""


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
                {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
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
                # First match wins: a lost node restarts the whole gang, not counted; exit 2 fails the JobSet.
                {"name": "restartGangOnDisruption", "action": "RestartJobSetAndIgnoreMaxRestarts",
                 "onJobFailureReasons": ["PodFailurePolicy"], "onJobFailureMessagePatterns": [DISRUPTED_PATTERN]},
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


def create_training_job(
    component: pulumi.ComponentResource,
    name: str,
    plan: TrainingJobPlan,
    provider: k8s.Provider,
    ready: list[pulumi.Resource],
    cloud_env: dict[str, str],
    image: Any,
    checkpoint_url: Any,
) -> k8s.apiextensions.CustomResource:
    """The headless Service and the JobSet of one TrainingJob (``ready``: the cluster's Kueue/JobSet objects)."""
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
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=ready),
    )
    manifest = jobset_manifest(plan, image, checkpoint_url, extra_env=cloud_env)
    return k8s.apiextensions.CustomResource(
        f"{name}-jobset",
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        metadata=manifest["metadata"],
        spec=manifest["spec"],
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[service, *ready]))


__all__ = ["create_training_job", "headless_service", "jobset_manifest", "torchrun_args"]
