"""BatchJob: a finite batch over a dataset, sharded to fit each platform's limits, triggered by new data, exactly once.

Public names of the capability. ``spec.py``: args, features, plan dataclasses; ``planner.py``:
the fit check, sharding and per-platform run prices; ``triggers.py``: the bucket-event and
schedule routes (pure); backends ``cloud_run.py``, ``aws_batch.py``, ``sagemaker.py``,
``kueue.py``; ``component.py``: the ComponentResource.
"""

from components.batch_job.component import BatchJob
from components.batch_job.planner import estimate_run, parse_uri, plan_batch_job, size_tasks, task_cap, task_limit
from components.batch_job.spec import (
    FEATURES,
    PLATFORMS,
    REFERENCE_COMMAND,
    RETRY_EXIT_CODE,
    TASK_INDEX_ENV,
    TYPE_TOKEN,
    BatchJobArgs,
    BatchJobPlan,
    BatchTriggerArgs,
    RunEstimate,
    Sizing,
)

__all__ = [
    "FEATURES",
    "PLATFORMS",
    "REFERENCE_COMMAND",
    "RETRY_EXIT_CODE",
    "TASK_INDEX_ENV",
    "TYPE_TOKEN",
    "BatchJob",
    "BatchJobArgs",
    "BatchJobPlan",
    "BatchTriggerArgs",
    "RunEstimate",
    "Sizing",
    "estimate_run",
    "parse_uri",
    "plan_batch_job",
    "size_tasks",
    "task_cap",
    "task_limit",
]
