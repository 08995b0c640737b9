"""`gpuplane plan` on stacks with a BatchJob: the run priced on every platform, in the tree, the
Markdown comment and the cost report."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from gpuplane import render
from gpuplane.engine.cost import assess_plan
from gpuplane.engine.plan import plan_stack


@pytest.fixture(scope="module")
def aws_dev():
    return plan_stack("aws-dev")


def _job(plan):
    return next(r for r in plan.resources if r.type == "gpuplane:index:BatchJob")


def test_the_tree_shows_the_sizing_and_one_run_on_every_platform(aws_dev):
    out = io.StringIO()
    render.print_tree(aws_dev, Console(file=out, width=400, no_color=True))
    text = out.getvalue()
    summary = _job(aws_dev).inputs["gpuplane"]
    assert f"tasks={int(summary['tasks'])}x{int(summary['taskSeconds'])}s(cold {int(summary['coldStartSeconds'])})" in text
    assert "timeout=" in text and f"run=${summary['usdPerRun']:,.2f}" in text
    assert "one run on each platform" in text
    for platform in ("cloud-run", "aws-batch", "sagemaker", "kueue"):
        line = next(x for x in text.splitlines() if f"{platform}: " in x and ("per run" in x or "does not fit" in x))
        assert "cold start" in line or "does not fit" in line, line


def test_the_markdown_comment_lists_the_runs(aws_dev):
    md = render.markdown(aws_dev)
    assert "One run on each platform:" in md
    assert "- aws-batch: $" in md
    comment = assess_plan(aws_dev).markdown(aws_dev)  # what `gpuplane plan --format markdown` prints
    assert "**BatchJob `recs-scores`**: one run on each platform" in comment
    assert "- aws-batch: $" in comment and "- cloud-run: $" in comment


def test_the_cost_model_prices_runs_per_month(aws_dev):
    cost = assess_plan(aws_dev).cost.to_json()
    job = _job(aws_dev)
    item = next(i for i in cost["by_resource"] if i["urn"] == job.urn)
    s = job.inputs["gpuplane"]
    assert item["monthly"]["expected"] == pytest.approx(s["usdPerRun"] * s["runsPerMonth"], rel=1e-3)
    assert item["hourly"]["min"] == 0
    assert "per run x 30 runs/month" in item["basis"]


def test_a_kueue_job_is_priced_on_its_pools_not_twice():
    plan = plan_stack("batch")
    cost = assess_plan(plan).cost.to_json()
    job = _job(plan)
    item = next(i for i in cost["by_resource"] if i["urn"] == job.urn)
    assert item["monthly"]["expected"] == 0 and "priced there" in item["basis"]
    job_obj = next(r for r in plan.resources if r.type == "kubernetes:batch/v1:Job")
    local_queue = next(r for r in plan.resources if r.type == "kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue")
    assert job_obj.inputs["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == local_queue.inputs["metadata"]["name"]
    assert job_obj.inputs["metadata"]["namespace"] == local_queue.inputs["metadata"]["namespace"]
    # the Job waits for the cluster's Kueue install and the team's queue objects
    assert local_queue.urn in job_obj.dependencies
    assert job_obj.ignore_changes == ["spec.suspend"]  # Kueue unsuspends it; an update must not suspend it again
