"""BatchJob on Cloud Run Jobs (GCP): the job, the identities, and what runs it.

Creates, as children: a runtime service account (reads the dataset bucket, writes the output and
manifest buckets), a ``gcp.cloudrunv2.Job`` with ``task_count`` = the planned tasks,
``parallelism``, the task ``timeout`` and ``max_retries`` = max_attempts - 1, one L4 per task
(``node_selector.accelerator = nvidia-l4``, ``gpu_zonal_redundancy_disabled``, the rate the
catalog prices), launch stage BETA only for the 12 h GPU timeout preview. Tasks find their shard
in ``CLOUD_RUN_TASK_INDEX`` (Cloud Run sets it, with ``CLOUD_RUN_TASK_COUNT``).

Triggers: ``bucket-objects``: an Eventarc trigger on ``google.cloud.storage.object.v1.finalized``
for the bucket -> a Workflow (triggers.workflow_source) that drops objects outside the prefix and
runs the job with the object's URI and generation as env overrides; an invoker service account
with ``roles/eventarc.eventReceiver`` and ``roles/workflows.invoker`` on the project and
``roles/run.jobsExecutorWithOverrides`` on the job. ``schedule``: a Cloud Scheduler job POSTing
the Admin API ``jobs.run`` with that account's OAuth token (``roles/run.invoker`` on the job). The
GCS service agent must be allowed to publish to Pub/Sub for direct GCS events (a project-level
grant gpuplane does not make). ``none``: run it with ``gcloud run jobs execute``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_gcp as gcp

from components.batch_job.planner import bucket_access
from components.batch_job.spec import BatchJobPlan
from components.batch_job.triggers import cloud_run_run_uri, workflow_source
from components.gcp.conventions import gcp_labels
from components.gcp.iam import account_id
from components.inference import CLOUD_RUN_GPUS

if TYPE_CHECKING:
    from components.batch_job.spec import BatchJobArgs


def _buckets(plan: BatchJobPlan) -> dict[str, str]:
    """Bucket -> role the runtime account needs on it (write wins over read)."""
    roles: dict[str, str] = {}
    for bucket, _, write in bucket_access(plan, "gs"):
        if write or roles.get(bucket) != "roles/storage.objectAdmin":
            roles[bucket] = "roles/storage.objectAdmin" if write else "roles/storage.objectViewer"
    return roles


def job_template(plan: BatchJobPlan, image: Any, service_account: Any) -> gcp.cloudrunv2.JobTemplateArgs:
    s = plan.sizing
    limits = {"cpu": f"{plan.cpu:g}", "memory": f"{plan.memory_gib:g}Gi"}
    if plan.gpus:
        limits["nvidia.com/gpu"] = str(plan.gpus)
    container = gcp.cloudrunv2.JobTemplateTemplateContainerArgs(
        image=image,
        commands=list(plan.command),
        args=list(plan.args) or None,
        envs=[gcp.cloudrunv2.JobTemplateTemplateContainerEnvArgs(name=k, value=v) for k, v in sorted(plan.task_env().items())],
        resources=gcp.cloudrunv2.JobTemplateTemplateContainerResourcesArgs(limits=limits),
    )
    return gcp.cloudrunv2.JobTemplateArgs(
        task_count=s.tasks,
        parallelism=plan.parallelism,
        labels=gcp_labels(plan.tags) or None,
        template=gcp.cloudrunv2.JobTemplateTemplateArgs(
            containers=[container],
            timeout=f"{s.task_timeout_seconds}s",
            max_retries=plan.max_attempts - 1,
            service_account=service_account,
            node_selector=gcp.cloudrunv2.JobTemplateTemplateNodeSelectorArgs(accelerator=CLOUD_RUN_GPUS[plan.accelerator or "L4"]) if plan.gpus else None,
            gpu_zonal_redundancy_disabled=True if plan.gpus else None,
        ),
    )


def create_cloud_run_job(component: pulumi.ComponentResource, name: str, plan: BatchJobPlan, args: BatchJobArgs) -> dict[str, Any]:
    opts = pulumi.ResourceOptions(parent=component)
    project = args["project"]
    runtime = gcp.serviceaccount.Account(f"{name}-runtime-sa", account_id=account_id(name, "batch"), display_name=f"BatchJob {name} tasks", project=project, opts=opts)
    for bucket, role in sorted(_buckets(plan).items()):
        gcp.storage.BucketIAMMember(f"{name}-{bucket}-{role.rsplit('.', 1)[-1].lower()}", bucket=bucket, role=role, member=runtime.member, opts=opts)
    job = gcp.cloudrunv2.Job(
        f"{name}-job",
        name=plan.name,
        location=plan.region,
        project=project,
        deletion_protection=False,
        launch_stage="BETA" if plan.cloud_run_gpu_preview else None,
        labels=gcp_labels(plan.tags) or None,
        template=job_template(plan, args["image"], runtime.email),
        opts=opts,
    )
    t = plan.trigger
    launch: Any = f"gcloud run jobs execute {plan.name} --region {plan.region}"
    if t.kind == "none":
        return {"job": job.id, "launch": launch}
    invoker = gcp.serviceaccount.Account(f"{name}-invoker-sa", account_id=account_id(name, "invoke"), display_name=f"BatchJob {name} trigger", project=project, opts=opts)
    if t.kind == "schedule":
        gcp.cloudrunv2.JobIamMember(f"{name}-invoker-run", name=job.name, location=plan.region, project=project, role="roles/run.invoker", member=invoker.member, opts=opts)
        gcp.cloudscheduler.Job(
            f"{name}-schedule",
            region=plan.region,
            project=project,
            schedule=t.schedule,
            time_zone="Etc/UTC",
            http_target=gcp.cloudscheduler.JobHttpTargetArgs(
                uri=pulumi.Output.all(project, job.name).apply(lambda v: cloud_run_run_uri(str(v[0]), str(plan.region), str(v[1]))),
                http_method="POST",
                oauth_token=gcp.cloudscheduler.JobHttpTargetOauthTokenArgs(service_account_email=invoker.email),
            ),
            opts=opts,
        )
        return {"job": job.id, "launch": f"Cloud Scheduler {t.schedule} (UTC)"}
    gcp.cloudrunv2.JobIamMember(f"{name}-invoker-run", name=job.name, location=plan.region, project=project,
                                role="roles/run.jobsExecutorWithOverrides", member=invoker.member, opts=opts)
    for role in ("roles/eventarc.eventReceiver", "roles/workflows.invoker"):
        gcp.projects.IAMMember(f"{name}-invoker-{role.rsplit('.', 1)[-1].lower()}", project=project, role=role, member=invoker.member, opts=opts)
    workflow = gcp.workflows.Workflow(
        f"{name}-workflow",
        region=plan.region,
        project=project,
        service_account=invoker.id,
        deletion_protection=False,
        description=f"BatchJob {plan.name}: run the job once per new object under gs://{t.bucket}/{t.prefix}",
        source_contents=pulumi.Output.all(project, job.name).apply(lambda v: workflow_source(plan, str(v[0]), str(v[1]))),
        labels=gcp_labels(plan.tags) or None,
        opts=opts,
    )
    gcp.eventarc.Trigger(
        f"{name}-trigger",
        location=plan.region,
        project=project,
        matching_criterias=[
            gcp.eventarc.TriggerMatchingCriteriaArgs(attribute="type", value="google.cloud.storage.object.v1.finalized"),
            gcp.eventarc.TriggerMatchingCriteriaArgs(attribute="bucket", value=t.bucket),
        ],
        destination=gcp.eventarc.TriggerDestinationArgs(workflow=workflow.id),
        service_account=invoker.email,
        labels=gcp_labels(plan.tags) or None,
        opts=opts,
    )
    return {"job": job.id, "launch": f"Eventarc gs://{t.bucket}/{t.prefix} -> Workflows -> jobs.run"}


__all__ = ["create_cloud_run_job", "job_template"]
