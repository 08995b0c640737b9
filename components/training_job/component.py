"""TrainingJob, the component: check the job against its SpotTrainingCluster, then create its JobSet.

It creates what ``jobset.py`` creates (a headless Service and a JobSet) and nothing else; it
assumes the training cluster installed Kueue and JobSet and made the team's queue.
"""

from __future__ import annotations

import pulumi

from components.errors import ComponentInputError, Problem
from components.training import SpotTrainingCluster
from components.training_job.spec import JOB_TYPE_TOKEN, TrainingJobArgs, TrainingJobPlan, plan_training_job


class TrainingJob(pulumi.ComponentResource):
    """A gang-scheduled torchrun job (JobSet) in a team's Kueue LocalQueue.

    Outputs: ``jobset_name``, ``namespace``, ``queue``, ``checkpoint_url``. Attribute: ``plan``.
    """

    plan: TrainingJobPlan
    jobset_name: pulumi.Output[str]
    """Name of the JobSet object (the component's name)."""
    namespace: pulumi.Output[str]
    """The team's namespace the job runs in."""
    queue: pulumi.Output[str]
    """The Kueue LocalQueue the job is admitted through."""
    checkpoint_url: pulumi.Output[str | None]
    """Where the job keeps checkpoints (``<bucket>/<team>/<job>`` or the given URL); None without a bucket."""
    jobset: pulumi.Output[str]
    """The JobSet's Kubernetes id (``namespace/name``)."""

    def __init__(self, name: str, args: TrainingJobArgs, opts: pulumi.ResourceOptions | None = None):
        tc = args.get("training_cluster")
        if not isinstance(tc, SpotTrainingCluster):
            raise ComponentInputError("TrainingJob", name, [Problem("training_cluster", tc, "is not a SpotTrainingCluster.", "pass the SpotTrainingCluster whose queue runs the job.")])
        plan = plan_training_job(name, args, tc.plan)  # raises before anything is registered
        given = args.get("checkpoint_url")
        checkpoint_url = pulumi.Output.from_input(given) if given is not None else tc.checkpoint_url_for(plan.team.name, name)
        image = args["image"]
        super().__init__(JOB_TYPE_TOKEN, name, {"gpuplane": plan.summary(image=image, checkpoint_url=checkpoint_url)}, opts)
        self.plan = plan
        from components.training_job.jobset import create_training_job

        jobset = create_training_job(self, name, plan, tc.cluster.k8s_provider, tc.ready, tc.cloud_env, image, checkpoint_url)
        self.jobset_name = pulumi.Output.from_input(name)
        self.namespace = pulumi.Output.from_input(plan.team.namespace)
        self.queue = pulumi.Output.from_input(plan.team.local_queue)
        self.checkpoint_url = checkpoint_url
        self.jobset = jobset.id
        self.register_outputs(
            {
                "jobset_name": self.jobset_name,
                "namespace": self.namespace,
                "queue": self.queue,
                "checkpoint_url": self.checkpoint_url,
                "jobset": self.jobset,
            }
        )
