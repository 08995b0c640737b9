"""Batch policies: batch jobs that can be retried run on spot, and every batch task has a timeout.

- ``batch-on-spot``: a ``BatchJob`` that tolerates retries (``maxAttempts`` >= 2) on a platform
  with spot capacity (AWS Batch, Kueue) runs on spot. Cloud Run and SageMaker Processing have no
  spot tier and are not asked to; raw AWS Batch queues are not judged (a queue does not say
  whether its jobs tolerate retries).
- ``batch-timeout-set``: every batch task has a timeout no longer than ``maxTaskHours``: a
  ``BatchJob``'s planned task timeout, an ``aws:batch/jobDefinition``'s
  ``timeout.attemptDurationSeconds``, a ``gcp:cloudrunv2/job``'s ``template.template.timeout``
  and a Kubernetes Job submitted to Kueue (``kueue.x-k8s.io/queue-name``) with
  ``activeDeadlineSeconds`` on its pods or itself. A task without one holds its GPU until someone
  notices.

The GPU type of a BatchJob is checked by ``gpu-types-allowed`` (policies/gpu.py) through the
component's summary (policies/resources.py ``gpu_requests``). Pure validators.
"""

from __future__ import annotations

from policies.framework import Config, ResourceRule
from policies.resources import ResourceView, duration_seconds, fmt, label, number

SPOT_PLATFORMS = ("aws-batch", "kueue")
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def check_batch_on_spot(view: ResourceView, cfg: Config) -> list[str]:
    s = view.summary
    if view.component == "BatchJob":
        attempts = number(s.get("maxAttempts")) or 1
        if s.get("platform") in SPOT_PLATFORMS and attempts >= 2 and not s.get("spot"):
            return [
                f"{label(view)} tolerates retries (maxAttempts {fmt(attempts)}) but runs on on-demand capacity on {s.get('platform')}. "
                "Set spot: True (tasks commit progress and exit 75 to be retried), or set max_attempts to 1 if the job must not be interrupted."
            ]
        return []
    return []


BATCH_ON_SPOT = ResourceRule(
    name="batch-on-spot",
    description="Checks whether batch jobs that tolerate retries run on spot capacity where the platform has it.",
    check=check_batch_on_spot,
)


def _timeout_problem(view: ResourceView, seconds: float | None, limit_h: float, where: str) -> list[str]:
    if seconds is None or seconds <= 0:
        return [f"{label(view)} sets no task timeout ({where}). Set one, at most {fmt(limit_h)} h, so a stuck task does not hold its GPU."]
    if seconds > limit_h * 3600:
        return [f"{label(view)} lets a task run {fmt(seconds / 3600)} h ({where}), over the limit of {fmt(limit_h)} h. Shorten it (shard into more tasks), or raise maxTaskHours in the stack's policy config."]
    return []


def check_batch_timeout(view: ResourceView, cfg: Config) -> list[str]:
    limit_h = float(cfg.get("maxTaskHours", 24))
    if view.component == "BatchJob":
        return _timeout_problem(view, number(view.summary.get("taskTimeoutSeconds")), limit_h, "taskTimeoutSeconds")
    if view.managed:
        return []  # judged on the BatchJob
    if view.type == "aws:batch/jobDefinition:JobDefinition":
        return _timeout_problem(view, number(view.get("timeout.attemptDurationSeconds")), limit_h, "timeout.attemptDurationSeconds")
    if view.type == "gcp:cloudrunv2/job:Job":
        # Cloud Run's default task timeout is 10 minutes (https://docs.cloud.google.com/run/docs/configuring/task-timeout).
        raw = view.get("template.template.timeout")
        return _timeout_problem(view, duration_seconds(raw) if raw is not None else 600.0, limit_h, "template.template.timeout")
    if view.type == "kubernetes:batch/v1:Job" and QUEUE_LABEL in (view.get("metadata.labels") or {}):
        seconds = number(view.get("spec.activeDeadlineSeconds")) or number(view.get("spec.template.spec.activeDeadlineSeconds"))
        return _timeout_problem(view, seconds, limit_h, "activeDeadlineSeconds")
    return []


BATCH_TIMEOUT_SET = ResourceRule(
    name="batch-timeout-set",
    description="Checks whether every batch task has a timeout within the stack's maximum task duration.",
    check=check_batch_timeout,
    schema={
        "maxTaskHours": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 24,
            "description": "Longest a batch task attempt may run, hours.",
        }
    },
)
