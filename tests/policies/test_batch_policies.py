"""Batch policies: a compliant BatchJob, then one mutation per test with the exact message; and the
GPU-type policy on a BatchJob's summary, the same summary the component registers."""

from __future__ import annotations

from typing import Any

from policies import batch, gpu
from policies.framework import ResourceRule
from tests.policies.fixtures import TAGS, component, view


def defaults(rule: ResourceRule, **over: Any) -> dict[str, Any]:
    return {**{k: v["default"] for k, v in rule.schema.items()}, **over}


def job(**over: Any) -> Any:
    s = {"platform": "aws-batch", "cloud": "aws", "region": "us-east-1", "accelerator": "A10G", "gpus": 1, "instanceType": "g5.xlarge",
         "capacityType": "spot", "spot": True, "maxAttempts": 3, "taskTimeoutSeconds": 3600, "parallelism": 10, "tags": dict(TAGS)}
    s.update(over)
    return component("BatchJob", s, "embed")


def test_a_retryable_spot_job_with_a_timeout_passes_both():
    assert batch.check_batch_on_spot(job(), defaults(batch.BATCH_ON_SPOT)) == []
    assert batch.check_batch_timeout(job(), defaults(batch.BATCH_TIMEOUT_SET)) == []


def test_a_retryable_job_on_demand_is_told_to_use_spot():
    assert batch.check_batch_on_spot(job(spot=False, capacityType="on_demand"), {}) == [
        "BatchJob 'embed' tolerates retries (maxAttempts 3) but runs on on-demand capacity on aws-batch. Set spot: True (tasks commit "
        "progress and exit 75 to be retried), or set max_attempts to 1 if the job must not be interrupted."
    ]


def test_a_job_that_must_not_be_retried_may_stay_on_demand():
    assert batch.check_batch_on_spot(job(spot=False, maxAttempts=1), {}) == []


def test_platforms_without_spot_are_not_asked_for_it():
    assert batch.check_batch_on_spot(job(platform="cloud-run", spot=False), {}) == []
    assert batch.check_batch_on_spot(job(platform="sagemaker", spot=False), {}) == []


def test_a_task_timeout_over_the_limit_is_reported():
    assert batch.check_batch_timeout(job(taskTimeoutSeconds=48 * 3600), defaults(batch.BATCH_TIMEOUT_SET)) == [
        "BatchJob 'embed' lets a task run 48 h (taskTimeoutSeconds), over the limit of 24 h. Shorten it (shard into more tasks), or raise "
        "maxTaskHours in the stack's policy config."
    ]


def test_a_raw_batch_job_definition_without_a_timeout_is_reported():
    raw = view("aws:batch/jobDefinition:JobDefinition", {"type": "container"}, "jd")
    assert batch.check_batch_timeout(raw, defaults(batch.BATCH_TIMEOUT_SET)) == [
        "aws:batch/jobDefinition 'jd' sets no task timeout (timeout.attemptDurationSeconds). Set one, at most 24 h, so a stuck task does not hold its GPU."
    ]
    ok = view("aws:batch/jobDefinition:JobDefinition", {"type": "container", "timeout": {"attemptDurationSeconds": 3600}}, "jd")
    assert batch.check_batch_timeout(ok, defaults(batch.BATCH_TIMEOUT_SET)) == []


def test_a_raw_cloud_run_job_is_judged_by_its_timeout_or_the_ten_minute_default():
    long = view("gcp:cloudrunv2/job:Job", {"template": {"template": {"timeout": "172800s"}}}, "crj")
    assert batch.check_batch_timeout(long, defaults(batch.BATCH_TIMEOUT_SET)) == [
        "gcp:cloudrunv2/job 'crj' lets a task run 48 h (template.template.timeout), over the limit of 24 h. Shorten it (shard into more tasks), "
        "or raise maxTaskHours in the stack's policy config."
    ]
    default = view("gcp:cloudrunv2/job:Job", {"template": {"template": {}}}, "crj")
    assert batch.check_batch_timeout(default, defaults(batch.BATCH_TIMEOUT_SET)) == []


def test_a_kueue_job_without_a_deadline_is_reported_and_other_jobs_are_not():
    queued = view("kubernetes:batch/v1:Job", {"metadata": {"labels": {"kueue.x-k8s.io/queue-name": "q"}}, "spec": {"template": {"spec": {}}}}, "kj")
    assert batch.check_batch_timeout(queued, defaults(batch.BATCH_TIMEOUT_SET)) == [
        "kubernetes:batch/v1:Job 'kj' sets no task timeout (activeDeadlineSeconds). Set one, at most 24 h, so a stuck task does not hold its GPU."
    ]
    with_deadline = view("kubernetes:batch/v1:Job", {"metadata": {"labels": {"kueue.x-k8s.io/queue-name": "q"}},
                                                     "spec": {"template": {"spec": {"activeDeadlineSeconds": 3600}}}}, "kj")
    assert batch.check_batch_timeout(with_deadline, defaults(batch.BATCH_TIMEOUT_SET)) == []
    unqueued = view("kubernetes:batch/v1:Job", {"metadata": {}, "spec": {}}, "other")
    assert batch.check_batch_timeout(unqueued, defaults(batch.BATCH_TIMEOUT_SET)) == []


def test_resources_made_by_a_batch_job_are_judged_on_the_component():
    child = view("aws:batch/jobDefinition:JobDefinition", {"type": "container"}, "embed-definition", parents=("gpuplane:index:BatchJob",))
    assert batch.check_batch_timeout(child, defaults(batch.BATCH_TIMEOUT_SET)) == []


def test_the_gpu_type_of_a_batch_job_is_checked():
    cfg = defaults(gpu.GPU_TYPES_ALLOWED, allowedGpus=["L4"])
    assert gpu.check_gpu_types(job(), cfg) == [
        "BatchJob 'embed' asks for A10G, which this stack does not allow (allowedGpus: L4). Use one of those, or add A10G to allowedGpus in the stack's policy config."
    ]
    assert gpu.check_gpu_types(job(accelerator="L4"), cfg) == []
    assert gpu.check_gpu_types(job(gpus=0, accelerator=None), cfg) == []


def test_batch_tasks_count_towards_the_stack_gpu_total_except_on_a_cluster():
    cfg = defaults(gpu.GPU_TOTAL_MAX, maxTotalGpus=8)
    assert [m for _, m in gpu.check_total_gpus([job(parallelism=10)], cfg)] == [
        "The stack can hold 10 GPUs at once (pools and endpoints at their maximum size), over the limit of 8. Largest: BatchJob 'embed' 10. "
        "Lower their maxNodes / maxReplicas, or raise maxTotalGpus in the stack's policy config."
    ]
    assert gpu.check_total_gpus([job(platform="kueue", parallelism=10)], cfg) == []
    assert gpu.check_pool_max_nodes(job(parallelism=100), defaults(gpu.GPU_POOL_MAX_NODES)) == []
