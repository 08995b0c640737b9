"""BatchJob, the component: validate and plan (fit check, sharding, prices), then create one backend.

Platforms (``platform``): ``cloud-run`` (components/batch_job/cloud_run.py), ``aws-batch``
(aws_batch.py), ``sagemaker`` (sagemaker.py) and ``kueue`` (kueue.py, any gpuplane cluster,
existing ones included). Nothing is created when the plan has a problem: every problem is
reported at once, naming the field and the fix. The plan (tasks, task timeout, cold start,
checkpoint interval, run price on every platform that fits) is the component's registered
``gpuplane`` input, which ``gpuplane plan``, the cost model and the policy pack read.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.batch_job.planner import plan_batch_job
from components.batch_job.spec import TYPE_TOKEN, BatchJobArgs, BatchJobPlan


class BatchJob(pulumi.ComponentResource):
    """A finite batch over a dataset, sharded to fit the platform's limits, triggered by new data, exactly once per object and model version.

    Outputs: ``tasks``, ``task_timeout_seconds``, ``usd_per_run``, ``job`` (the job's id on its
    platform), ``launch`` (what starts a run), ``implementation``. Attribute ``plan``.
    """

    plan: BatchJobPlan
    tasks: pulumi.Output[int]
    """Tasks per run (array size, task count, completions or instances)."""
    task_timeout_seconds: pulumi.Output[int]
    """Timeout of one task attempt, at most the platform's cap."""
    usd_per_run: pulumi.Output[float | None]
    """Expected price of one run on this platform (None where the cluster's owner pays for the nodes)."""
    job: pulumi.Output[str]
    """The job on its platform: Cloud Run job id, Batch job definition ARN, SageMaker pipeline ARN or ``namespace/name`` of the Job."""
    launch: pulumi.Output[str]
    """What starts a run: the trigger route, or the command to run by hand."""
    implementation: pulumi.Output[str]
    """``cloud-run-jobs``, ``aws-batch``, ``sagemaker-pipeline`` or ``kueue-indexed-job``."""

    def __init__(self, name: str, args: BatchJobArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_batch_job(name, args)  # raises before anything is registered
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        created: dict[str, Any]
        if plan.platform == "cloud-run":
            from components.batch_job.cloud_run import create_cloud_run_job

            created = create_cloud_run_job(self, name, plan, args)
        elif plan.platform == "aws-batch":
            from components.batch_job.aws_batch import create_batch_job

            created = create_batch_job(self, name, plan, args)
        elif plan.platform == "sagemaker":
            from components.batch_job.sagemaker import create_sagemaker_job

            created = create_sagemaker_job(self, name, plan, args)
        else:
            from components.batch_job.kueue import create_kueue_job

            created = create_kueue_job(self, name, plan, args)
        self.tasks = pulumi.Output.from_input(plan.sizing.tasks)
        self.task_timeout_seconds = pulumi.Output.from_input(plan.sizing.task_timeout_seconds)
        self.usd_per_run = pulumi.Output.from_input(plan.estimate.usd_per_run)
        self.job = pulumi.Output.from_input(created["job"])
        self.launch = pulumi.Output.from_input(created["launch"])
        self.implementation = pulumi.Output.from_input(plan.implementation)
        self.register_outputs(
            {
                "tasks": self.tasks,
                "task_timeout_seconds": self.task_timeout_seconds,
                "usd_per_run": self.usd_per_run,
                "job": self.job,
                "launch": self.launch,
                "implementation": self.implementation,
            }
        )
