"""BatchJob on any gpuplane cluster: a Kueue-admitted Indexed Job (batch/v1), or what starts one.

The Job: ``completionMode: Indexed`` with ``completions`` = the planned tasks (each pod reads its
shard from ``JOB_COMPLETION_INDEX``), ``parallelism``, created ``suspend: true`` with the
``kueue.x-k8s.io/queue-name`` label so Kueue admits it (quota, flavors, spot or on-demand) and
unsuspends it. ``backoffLimitPerIndex`` = max_attempts - 1 retries a failed task alone;
``podFailurePolicy`` ignores the retry exit codes (75: progress committed, run me again) and
pods with a ``DisruptionTarget`` condition (preempted, evicted), so those do not count, and fails
the index at once on exit 2 (usage error). Each pod's ``activeDeadlineSeconds`` is the planned
task timeout. An Indexed Job gives a pod only its index, so the container's env also carries the
task count (``GPUPLANE_TASK_COUNT`` = ``completions``) and the run id (``GPUPLANE_RUN_ID`` from the
pod label ``batch.kubernetes.io/job-name`` through the downward API: one value for every index and
retry of a Job, a new one for each Job a CronJob or a Sensor creates); ``pvc://`` URIs (dataset,
output, manifest, model) become the claims' mount paths.

What creates it:
- trigger ``none``: the Job itself (``pulumi up`` submits it; Kueue unsuspends it, so
  ``spec.suspend`` is ignored on later updates; ``wait_for_completion`` makes the provider wait).
- ``schedule``: a CronJob whose Jobs carry the queue label (Kueue manages Jobs a CronJob creates).
- ``bucket-objects``: Argo Events (chart installed once per cluster, or present): an EventBus, an
  EventSource on the bucket's notification queue, and a Sensor creating one Job per new object with
  its URI and generation in the env (triggers.py); a service account with RBAC to create Jobs.

Assumes the namespace and the Kueue LocalQueue exist (a SpotTrainingCluster's team queue, or your
own); works on an existing cluster (``KubernetesCluster(existing=...)``), e.g. the sandbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.batch_job.spec import ENV_OBJECT_GENERATION, ENV_OBJECT_URI, ENV_RUN_ID, USAGE_EXIT_CODE, BatchJobPlan
from components.batch_job.triggers import argo_event_bus, argo_event_source, argo_sensor
from components.kubernetes.charts import chart_args

if TYPE_CHECKING:
    from components.batch_job.spec import BatchJobArgs

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
"""Set by the Job controller on every pod of a Job (Kubernetes 1.27+): the run id's source."""
CONTAINER = "batch"
ARGO_HELM_REPO = "https://argoproj.github.io/argo-helm"
ARGO_EVENTS_CHART, ARGO_EVENTS_VERSION = "argo-events", "2.4.22"
"""The pinned chart (its copy is /work/shared/charts/argo-events-2.4.22.tgz, schemas in gpuplane/schemas)."""


def local_uri(uri: str) -> str:
    """``pvc://claim/path`` -> the path where the claim is mounted in the pod; other URIs unchanged."""
    if not uri.startswith("pvc://"):
        return uri
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    return f"/mnt/{claim}" + (f"/{path}" if path else "")


def _claims(plan: BatchJobPlan) -> list[str]:
    uris = (plan.dataset_uri, plan.output_uri, plan.manifest_uri, plan.model_uri or "")
    return sorted({u.removeprefix("pvc://").split("/", 1)[0] for u in uris if u.startswith("pvc://")})


def env_list(plan: BatchJobPlan) -> list[dict[str, Any]]:
    """The container env: the contract (pvc URIs as mount paths), the object slots a Sensor fills, and
    the run id from the pod's Job-name label."""
    env: dict[str, Any] = {k: {"value": local_uri(v) if v.startswith("pvc://") else v} for k, v in plan.task_env().items()}
    env.setdefault(ENV_OBJECT_URI, {"value": ""})
    env.setdefault(ENV_OBJECT_GENERATION, {"value": ""})
    env[ENV_RUN_ID] = {"valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_NAME_LABEL}']"}}}
    return [{"name": k, **v} for k, v in sorted(env.items())]


def job_spec(plan: BatchJobPlan, image: Any, service_account: str | None = None) -> dict[str, Any]:
    """The Indexed Job's spec (suspended; Kueue admits it)."""
    s = plan.sizing
    quantity = {"cpu": f"{plan.cpu:g}", "memory": f"{plan.memory_gib:g}Gi"}
    if plan.gpus:
        quantity["nvidia.com/gpu"] = str(plan.gpus)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "command": list(plan.command),
        "env": env_list(plan),
        "resources": {"requests": dict(quantity), "limits": dict(quantity)},
    }
    if plan.args:
        container["args"] = list(plan.args)
    claims = _claims(plan)
    if claims:
        container["volumeMounts"] = [{"name": f"pvc-{i}", "mountPath": f"/mnt/{c}"} for i, c in enumerate(claims)]
    pod: dict[str, Any] = {
        "restartPolicy": "Never",  # required by podFailurePolicy
        "activeDeadlineSeconds": s.task_timeout_seconds,
        "containers": [container],
    }
    if service_account:
        pod["serviceAccountName"] = service_account
    if plan.gpus:
        pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    if claims:
        pod["volumes"] = [{"name": f"pvc-{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    rules: list[dict[str, Any]] = []
    if plan.retry_exit_codes:
        rules.append({"action": "Ignore", "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": sorted(plan.retry_exit_codes)}})
    rules += [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailIndex", "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [USAGE_EXIT_CODE]}},
    ]
    return {
        "completionMode": "Indexed",
        "completions": s.tasks,
        "parallelism": plan.parallelism,
        "suspend": True,
        "backoffLimitPerIndex": plan.max_attempts - 1,
        "podFailurePolicy": {"rules": rules},
        "template": {"metadata": {"labels": {"gpuplane.dev/batch-job": plan.name}}, "spec": pod},
    }


def _metadata(plan: BatchJobPlan, wait: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": plan.name,
        "namespace": plan.namespace,
        "labels": {QUEUE_LABEL: plan.queue or "", "app.kubernetes.io/managed-by": "gpuplane", **{k: v for k, v in plan.tags.items() if _label_ok(k, v)}},
    }
    if not wait:
        meta["annotations"] = {"pulumi.com/skipAwait": "true"}
    return meta


def _label_ok(key: str, value: str) -> bool:
    import re

    return bool(re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,62}", key) and re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61}[A-Za-z0-9]?)?", value))


def job_manifest(plan: BatchJobPlan, image: Any, service_account: str | None = None) -> dict[str, Any]:
    """The batch/v1 Job a ``pulumi up`` submits (trigger none) or a Sensor creates per object."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(plan, plan.wait_for_completion), "spec": job_spec(plan, image, service_account)}


def cronjob_manifest(plan: BatchJobPlan, image: Any, service_account: str | None = None) -> dict[str, Any]:
    """A CronJob (UTC) whose Jobs carry the queue label and start suspended; a run is skipped while the last one runs."""
    meta = _metadata(plan, True)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta,
        "spec": {
            "schedule": plan.trigger.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"metadata": {"labels": dict(meta["labels"])}, "spec": job_spec(plan, image, service_account)},
        },
    }


def sensor_rbac(plan: BatchJobPlan, service_account: str) -> dict[str, Any]:
    """The Role the Sensor's service account needs: create Jobs in the namespace, nothing else."""
    return {"metadata": {"name": f"{plan.name}-sensor", "namespace": plan.namespace},
            "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]}


def _argo_events(component: pulumi.ComponentResource, name: str, plan: BatchJobPlan, cluster: Any) -> list[pulumi.Resource]:
    if plan.argo_events == "present":
        return []
    for key in ("argo", "argo-events"):  # a ModelPipeline or another BatchJob installed it already
        if key in cluster.addons:
            return list(cluster.addons[key])
    release = k8s.helm.v3.Release(
        f"{name}-argo-events",
        k8s.helm.v3.ReleaseArgs(**chart_args(cluster.chart_source, ARGO_EVENTS_CHART, ARGO_EVENTS_VERSION, ARGO_HELM_REPO),
                                namespace="argo-events", create_namespace=True, values={"crds": {"install": True}}),
        opts=pulumi.ResourceOptions(parent=component, provider=cluster.k8s_provider),
    )
    cluster.addons["argo-events"] = [release]
    return [release]


def _custom(name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(name, api_version=body["apiVersion"], kind=body["kind"], metadata=body["metadata"], spec=body["spec"], opts=opts)


def create_kueue_job(component: pulumi.ComponentResource, name: str, plan: BatchJobPlan, args: BatchJobArgs) -> dict[str, Any]:
    """The Job, CronJob or Argo Events route; returns the outputs (``job``, ``launch``)."""
    tc = args.get("training_cluster")
    cluster = tc.cluster if tc is not None else args["cluster"]
    ready: list[pulumi.Resource] = list(tc.ready) if tc is not None else []  # Kueue, JobSet and the team's queue objects
    provider = cluster.k8s_provider
    image = pulumi.Output.from_input(args["image"])
    sa = plan.service_account
    opts = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=ready)
    kind = plan.trigger.kind
    if kind == "none":
        body = image.apply(lambda img: job_manifest(plan, img, sa))
        job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=body.apply(lambda b: b["metadata"]),
            spec=body.apply(lambda b: b["spec"]),
            # Kueue flips spec.suspend when it admits the Job; a later update must not suspend it again.
            opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=ready, ignore_changes=["spec.suspend"]),
        )
        return {"job": job.metadata.apply(lambda m: f"{m['namespace']}/{m['name']}"), "launch": "submitted by pulumi up; Kueue admits it"}
    if kind == "schedule":
        body = image.apply(lambda img: cronjob_manifest(plan, img, sa))
        k8s.batch.v1.CronJob(f"{name}-cronjob", metadata=body.apply(lambda b: b["metadata"]), spec=body.apply(lambda b: b["spec"]), opts=opts)
        return {"job": f"{plan.namespace}/{plan.name}", "launch": f"CronJob {plan.trigger.schedule} (UTC)"}
    installed = _argo_events(component, name, plan, cluster) + ready
    after = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=installed)
    sensor_sa, source_sa = f"{plan.name}-sensor", sa or f"{plan.name}-events"
    labels = {"app.kubernetes.io/managed-by": "gpuplane"}
    accounts = [k8s.core.v1.ServiceAccount(f"{name}-sensor-sa", metadata=k8s.meta.v1.ObjectMetaArgs(name=sensor_sa, namespace=plan.namespace, labels=labels), opts=after)]
    if not sa:
        accounts.append(k8s.core.v1.ServiceAccount(f"{name}-events-sa", metadata=k8s.meta.v1.ObjectMetaArgs(name=source_sa, namespace=plan.namespace, labels=labels), opts=after))
    role_body = sensor_rbac(plan, sensor_sa)
    role = k8s.rbac.v1.Role(f"{name}-sensor-role", metadata=role_body["metadata"], rules=role_body["rules"], opts=after)
    k8s.rbac.v1.RoleBinding(
        f"{name}-sensor-binding",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{plan.name}-sensor", namespace=plan.namespace, labels=labels),
        role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=f"{plan.name}-sensor"),
        subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=sensor_sa, namespace=plan.namespace)],
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[role, *installed]),
    )
    bus = _custom(f"{name}-eventbus", argo_event_bus(plan), after)
    deps = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[bus, *accounts, *installed])
    source = _custom(f"{name}-eventsource", argo_event_source(plan, source_sa), deps)
    env_names = [e["name"] for e in env_list(plan)]
    index = {ENV_OBJECT_URI: env_names.index(ENV_OBJECT_URI), ENV_OBJECT_GENERATION: env_names.index(ENV_OBJECT_GENERATION)}
    sensor = image.apply(lambda img: argo_sensor(plan, job_manifest(plan, img, sa), sensor_sa, index))
    k8s.apiextensions.CustomResource(
        f"{name}-sensor", api_version="argoproj.io/v1alpha1", kind="Sensor", metadata=sensor.apply(lambda b: b["metadata"]),
        spec=sensor.apply(lambda b: b["spec"]), opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[source, *accounts, *installed]),
    )
    return {"job": f"{plan.namespace}/{plan.name}-<per object>", "launch": f"Argo Events {plan.trigger.scheme} notifications from {plan.trigger.queue}"}


__all__ = ["CONTAINER", "JOB_NAME_LABEL", "QUEUE_LABEL", "create_kueue_job", "cronjob_manifest", "env_list", "job_manifest", "job_spec", "local_uri", "sensor_rbac"]
