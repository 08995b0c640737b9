"""TrainingJob: one gang-scheduled torchrun job (a JobSet) in a team's Kueue LocalQueue.

Public names of the capability. ``spec.py``: args, plan, ``plan_training_job`` (checked against
the SpotTrainingCluster's plan); ``jobset.py``: the Kubernetes backend (pure manifests and the
resources); ``component.py``: the ComponentResource.
"""

from components.training_job.component import TrainingJob
from components.training_job.jobset import CONTAINER, METRICS_ENV, METRICS_PORT, QUEUE_LABEL, jobset_manifest
from components.training_job.spec import JOB_TYPE_TOKEN, TrainingJobArgs, TrainingJobPlan, plan_training_job

__all__ = [
    "CONTAINER",
    "JOB_TYPE_TOKEN",
    "METRICS_ENV",
    "METRICS_PORT",
    "QUEUE_LABEL",
    "TrainingJob",
    "TrainingJobArgs",
    "TrainingJobPlan",
    "jobset_manifest",
    "plan_training_job",
]
