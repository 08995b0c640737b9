"""BatchJob's planner: the fit check against each platform's limits, sharding, the checkpoint interval, prices, bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.batch_job import plan_batch_job, size_tasks, task_cap
from components.batch_job.spec import HEADROOM, SPOT_GAP_FRACTION
from components.catalog import load_catalog
from components.checkpointing import young_daly_interval
from components.errors import ComponentInputError

GS = {"dataset_uri": "gs://data/in", "output_uri": "gs://data/out", "model_uri": "gs://data/model"}
S3 = {"dataset_uri": "s3://data/in", "output_uri": "s3://data/out", "model_uri": "s3://data/model"}
BASE: dict[str, dict[str, Any]] = {
    "cloud-run": {"platform": "cloud-run", "image": "img", "region": "us-central1", "project": "p", **GS},
    "aws-batch": {"platform": "aws-batch", "image": "img", "region": "us-east-1", "subnet_ids": ["s"], "security_group_ids": ["g"], **S3},
    "sagemaker": {"platform": "sagemaker", "image": "img", "region": "us-east-1", **S3},
}


def job(platform: str, **extra: Any) -> dict[str, Any]:
    return {**BASE[platform], "items": 1_000_000, "items_per_second": 100.0, **extra}


def problems(exc: pytest.ExceptionInfo[ComponentInputError]) -> dict[str, str]:
    return {p.path: p.render() for p in exc.value.problems}


# -- the limits catalog ---------------------------------------------------------------------------


def test_every_batch_limit_has_a_source_url_and_a_date():
    catalog = load_catalog()
    assert len(catalog.batch_limits) >= 15
    for key, row in catalog.batch_limits.items():
        assert "https://" in row.source, key
        assert row.fetched_at == "2026-12-06", key


@pytest.mark.parametrize(
    ("platform", "limit", "value"),
    [
        ("cloud-run", "gpu-task-timeout", 3600),
        ("cloud-run", "gpu-task-timeout-preview", 12 * 3600),
        ("cloud-run", "cpu-task-timeout", 24 * 3600),
        ("cloud-run", "max-tasks", 10_000),
        ("aws-batch", "max-array-size", 10_000),
        ("sagemaker-transform", "invocation-timeout", 3600),
        ("sagemaker-transform", "max-payload", 100),
        ("sagemaker-processing", "max-runtime", 777_600),
        ("lambda", "max-timeout", 900),
        ("lambda", "max-gpus", 0),
    ],
)
def test_the_catalog_holds_the_documented_limits(platform, limit, value):
    assert load_catalog().batch_limit(platform, limit).value == value


# -- sharding ------------------------------------------------------------------------------------


def test_a_cloud_run_gpu_job_is_sharded_below_the_one_hour_cap():
    plan = plan_batch_job("b", job("cloud-run"))  # 1e6 items at 100/s = 10,000 s of work: does not fit one 1 h task
    s = plan.sizing
    assert s.cap_seconds == 3600
    assert s.safe_seconds == math.floor(HEADROOM["estimate"] * 3600) - s.cold_start_seconds
    assert s.tasks == math.ceil(1_000_000 / (100.0 * s.safe_seconds))
    assert s.task_seconds <= 3600 and s.task_timeout_seconds <= 3600
    assert s.items_per_task * s.tasks >= 1_000_000
    assert s.bound == "cap"


def test_the_preview_gpu_timeout_allows_longer_tasks():
    short = plan_batch_job("b", job("cloud-run"))
    long = plan_batch_job("b", job("cloud-run", cloud_run_gpu_preview=True))
    assert long.sizing.cap_seconds == 12 * 3600 and long.sizing.tasks < short.sizing.tasks


def test_a_measured_throughput_plans_closer_to_the_cap():
    est = plan_batch_job("b", job("cloud-run"))
    measured = plan_batch_job("b", job("cloud-run", throughput_basis="measured"))
    assert measured.sizing.safe_seconds > est.sizing.safe_seconds
    assert measured.sizing.tasks <= est.sizing.tasks


def test_spot_tasks_stay_below_the_preemption_gap_and_checkpoint_at_young_daly():
    plan = plan_batch_job("b", job("aws-batch", preemptions_per_hour=0.5, checkpoint_seconds=20))
    s = plan.sizing
    mtbf = 3600 / 0.5
    assert plan.spot and s.bound == "spot-gap"
    assert s.safe_seconds == math.floor(SPOT_GAP_FRACTION * mtbf) - s.cold_start_seconds
    assert s.checkpoint_interval_seconds == math.ceil(young_daly_interval(20, mtbf))
    assert plan.task_env()["GPUPLANE_CHECKPOINT_SECONDS"] == str(s.checkpoint_interval_seconds)


def test_on_demand_tasks_have_no_checkpoint_interval_and_use_the_cap():
    plan = plan_batch_job("b", job("aws-batch", spot=False, max_task_seconds=7200))
    assert not plan.spot and plan.sizing.checkpoint_interval_seconds is None
    assert plan.sizing.bound == "max_task_seconds" and plan.sizing.cap_seconds == 7200


def test_a_fixed_task_count_that_fits_is_kept():
    plan = plan_batch_job("b", job("cloud-run", tasks=50))
    assert plan.sizing.tasks == 50 and plan.sizing.bound == "tasks"


def test_a_fixed_task_count_whose_tasks_exceed_the_cap_is_rejected_naming_the_cap_and_the_fix():
    with pytest.raises(ComponentInputError) as exc:
        plan_batch_job("b", job("cloud-run", tasks=2))
    msg = problems(exc)["tasks"]
    assert "cloud-run gpu-task-timeout = 3600 s" in msg
    assert "docs.cloud.google.com/run/docs/configuring/task-timeout" in msg
    assert "use tasks >= " in msg and "leave it unset to shard automatically" in msg


def test_a_task_count_above_the_array_limit_is_rejected():
    with pytest.raises(ComponentInputError) as exc:
        plan_batch_job("b", job("aws-batch", items=10**9, items_per_second=1.0, spot=False, max_task_seconds=3600))
    msg = problems(exc)["items"]
    assert "above the platform's limit of 10000 tasks" in msg and "API_ArrayProperties" in msg
    assert "split the dataset into several jobs" in msg


@settings(max_examples=200, deadline=None)
@given(
    items=st.integers(1, 10**8),
    ips=st.floats(0.01, 1e4),
    cap=st.integers(600, 10**6),
    cold=st.integers(0, 300),
    spot=st.booleans(),
    lam=st.floats(0.01, 2.0),
    basis=st.sampled_from(["estimate", "measured"]),
)
def test_every_sizing_covers_the_dataset_and_fits_the_cap(items, ips, cap, cold, spot, lam, basis):
    s = size_tasks(items=items, items_per_second=ips, basis=basis, cap_seconds=cap, cold_start_seconds=cold, max_tasks=10**9,
                   spot=spot, preemptions_per_hour=lam, checkpoint_seconds=10)
    if isinstance(s, tuple):
        # without a task limit only a cold start that leaves no room, or one item slower than a whole task, fails
        assert s[0] in ("image_size_gib", "items_per_second"), s
        assert s[0] == "image_size_gib" or 1 / ips > s_allowed(cap, cold, basis, spot, lam)
        return
    assert s.tasks * s.items_per_task >= items  # nothing left out
    assert (s.tasks - 1) * s.items_per_task < items  # no empty task
    assert s.work_seconds <= s.safe_seconds  # the largest task fits what it was allowed
    assert s.task_seconds <= cap
    assert s.task_timeout_seconds <= cap
    if spot:
        assert s.cold_start_seconds + s.work_seconds <= SPOT_GAP_FRACTION * 3600 / lam + 1
        assert s.checkpoint_interval_seconds is not None and s.checkpoint_interval_seconds <= s.work_seconds


def s_allowed(cap: int, cold: int, basis: str, spot: bool, lam: float) -> float:
    safe = math.floor(HEADROOM[basis] * cap) - cold
    if spot:
        safe = min(safe, math.floor(SPOT_GAP_FRACTION * 3600 / lam) - cold)
    return safe


# -- prices on every platform -----------------------------------------------------------------------


def test_a_run_is_priced_on_every_platform_that_fits_with_cold_start_included():
    plan = plan_batch_job("b", job("cloud-run"))
    by = {e.platform: e for e in plan.estimates}
    assert set(by) == {"cloud-run", "aws-batch", "sagemaker", "kueue"}
    cr = by["cloud-run"]
    assert cr.fits and cr.usd_per_run is not None and cr.sizing is not None
    # Cloud Run L4 shape at catalog rates: GPU + 4 vCPU + 16 GiB per second, over tasks x (cold start + work).
    rate = 0.0001867 + 4 * 0.000018 + 16 * 0.000002
    assert cr.usd_per_run == pytest.approx(cr.sizing.tasks * cr.sizing.task_seconds * rate)
    assert cr.sizing.cold_start_seconds > 5  # instance start + image pull + weight load
    assert all(e.fits and e.usd_per_run for e in by.values())  # an L4 job fits everywhere in the catalog


def test_a_gpu_cloud_run_lacks_is_reported_as_not_fitting_there():
    plan = plan_batch_job("b", job("aws-batch", accelerator="A10G"))
    cr = next(e for e in plan.estimates if e.platform == "cloud-run")
    assert not cr.fits and "A10G" in cr.reason and cr.usd_per_run is None


def test_cold_start_counts_image_pull_and_weight_load_from_the_catalog_bandwidths():
    small = plan_batch_job("b", job("aws-batch", image_size_gib=1, model_size_gib=1))
    big = plan_batch_job("b", job("aws-batch", image_size_gib=20, model_size_gib=1))
    pull = load_catalog().bandwidth("registry-pull").gib_per_second
    assert big.sizing.cold_start_seconds - small.sizing.cold_start_seconds == math.ceil(20 / pull) - math.ceil(1 / pull)


def test_sagemaker_runs_on_demand_and_declares_why_not_spot():
    plan = plan_batch_job("b", job("sagemaker", max_attempts=3))
    assert not plan.spot and plan.instance_type and plan.instance_type.startswith("ml.")
    with pytest.raises(ComponentInputError) as exc:
        plan_batch_job("b", job("sagemaker", spot=True, retry_exit_codes=[75]))
    found = problems(exc)
    assert "managed spot applies to SageMaker training jobs only" in found["spot"]
    assert "exit code is not consulted" in found["retry_exit_codes"]


def test_the_task_cap_follows_gpu_or_cpu():
    catalog = load_catalog()
    assert task_cap("cloud-run", 1, False, catalog).value == 3600
    assert task_cap("cloud-run", 0, False, catalog).value == 86400


# -- bad input: one message per problem, all at once ------------------------------------------------


def test_bad_input_names_every_field_and_the_fix_at_once():
    args = job("cloud-run", dataset_uri="ftp://data/in", items_per_second=0, trigger={"kind": "bucket-objects", "prefix_uri": "s3://other/in"})
    with pytest.raises(ComponentInputError) as exc:
        plan_batch_job("b", args)
    found = problems(exc)
    assert set(found) >= {"dataset_uri", "items_per_second", "trigger.prefix_uri"}
    assert "scheme 'ftp'" in found["dataset_uri"] and "To fix: give a URI like gs://" in found["dataset_uri"]
    assert "must be a number above 0" in found["items_per_second"]
    assert "cloud-run is triggered by gs:// object events only" in found["trigger.prefix_uri"]
    assert str(exc.value).startswith("BatchJob 'b' has 3 problems:")


def test_a_bucket_trigger_on_a_volume_is_rejected():
    from components.cluster import KubernetesCluster
    from tests.helpers import run

    def program() -> None:
        cluster = KubernetesCluster("k", {"cloud": "existing"})
        with pytest.raises(ComponentInputError) as exc:
            plan_batch_job("b", {"platform": "kueue", "cluster": cluster, "queue": "q", "image": "i", "items": 10, "items_per_second": 1.0,
                                 "dataset_uri": "pvc://data/in", "output_uri": "pvc://data/out", "trigger": {"kind": "bucket-objects"}})
        assert "pvc volumes have no object events" in problems(exc)["trigger"]

    run(program)


@pytest.mark.parametrize(
    ("extra", "path", "needle"),
    [
        ({"region": None}, "region", "is not a gcp region"),
        ({"project": None}, "project", "is required on cloud-run"),
        ({"max_attempts": 20}, "max_attempts", "above cloud-run's limit of 11 attempts"),
        ({"accelerator": "H100"}, "accelerator", "does not fit cloud-run"),
        ({"gpus": 2}, "accelerator", "at most one GPU"),
        ({"env": {"GPUPLANE_TASK_COUNT": "3"}}, "env.GPUPLANE_TASK_COUNT", "set by BatchJob itself"),
        ({"trigger": {"kind": "schedule", "schedule": "every day"}}, "trigger.schedule", "five-field cron"),
        ({"queue": "q"}, "queue", "applies to kueue only"),
        ({"spot": True}, "spot", "Cloud Run jobs have no spot tier"),
        ({"bogus": 1}, "bogus", "is not an argument of BatchJob"),
    ],
)
def test_each_bad_field_is_named(extra, path, needle):
    with pytest.raises(ComponentInputError) as exc:
        plan_batch_job("b", {**job("cloud-run"), **extra})
    found = problems(exc)
    assert path in found and needle in found[path], found


def test_aws_batch_needs_its_network():
    with pytest.raises(ComponentInputError) as exc:
        plan_batch_job("b", {k: v for k, v in job("aws-batch").items() if k not in ("subnet_ids", "security_group_ids")})
    assert {"subnet_ids", "security_group_ids"} <= set(problems(exc))


def test_transform_rejects_items_above_the_payload_limit():
    with pytest.raises(ComponentInputError) as exc:
        plan_batch_job("b", job("sagemaker", sagemaker_mode="transform", item_size_kib=200 * 1024))
    assert "100 MB payload limit" in problems(exc)["item_size_kib"]


def test_an_aws_schedule_restricting_both_day_fields_is_rejected():
    with pytest.raises(ComponentInputError) as exc:
        plan_batch_job("b", job("aws-batch", trigger={"kind": "schedule", "schedule": "0 3 1 * 1"}))
    assert "EventBridge schedule cannot express" in problems(exc)["trigger.schedule"]


def test_a_kueue_s3_trigger_on_a_cluster_without_a_region_needs_the_queue_url():
    from components.cluster import KubernetesCluster
    from tests.helpers import run

    def program() -> None:
        cluster = KubernetesCluster("k", {"cloud": "existing"})
        args = {"platform": "kueue", "cluster": cluster, "queue": "q", "image": "i", "items": 10, "items_per_second": 1.0, **S3,
                "trigger": {"kind": "bucket-objects", "queue": "events"}}
        with pytest.raises(ComponentInputError) as exc:
            plan_batch_job("b", args)  # type: ignore[arg-type]
        assert "https://sqs.<region>.amazonaws.com" in problems(exc)["trigger.queue"]

    run(program)

