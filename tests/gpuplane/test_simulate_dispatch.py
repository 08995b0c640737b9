"""``gpuplane simulate dispatch``: MultiKueue dispatch policies replayed on small traces whose outcome is known by hand."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from components.catalog import load_catalog
from gpuplane.dispatch.ranking import Residency
from gpuplane.simulate.cli import app
from gpuplane.simulate.dispatch import (
    DispatchSimError,
    SimJob,
    SimWorker,
    read_jobs,
    reference_workers,
    simulate_dispatch,
    synthetic_jobs,
    write_jobs,
)

CAT = load_catalog()
AWS = SimWorker("a-aws", "aws", "us-east-1", 120, {"l4": 8}, {"l4": 0.40})
GCP = SimWorker("b-gcp", "gcp", "us-central1", 30, {"l4": 8}, {"l4": 0.30})


def _job(i: int, t: float = 0.0, gpus: int = 8, hours: float = 2.0, **kw) -> SimJob:
    return SimJob(f"j{i}", t, "l4", gpus, hours, kw.pop("capacity", "on_demand"), **kw)


def test_first_fit_takes_the_first_worker_cost_aware_the_cheapest():
    jobs = [_job(0)]
    ff = simulate_dispatch(jobs, [AWS, GCP], "all_at_once", CAT)
    ca = simulate_dispatch(jobs, [AWS, GCP], "cost_aware", CAT)
    assert ff.compute_usd == pytest.approx(0.40 * 8 * 2) and ff.per_worker_gpu_hours == {"a-aws": 16.0, "b-gcp": 0.0}
    assert ca.compute_usd == pytest.approx(0.30 * 8 * 2) and ca.per_worker_gpu_hours == {"a-aws": 0.0, "b-gcp": 16.0}
    assert ff.wait_mean_h == ca.wait_mean_h == 0.0 and ff.completion_mean_h == pytest.approx(2.0)


def test_a_full_worker_makes_the_next_job_wait_or_move():
    jobs = [_job(0), _job(1, t=60.0)]
    one = simulate_dispatch(jobs, [AWS], "all_at_once", CAT)
    assert one.wait_mean_h == pytest.approx((2 * 3600 - 60) / 3600 / 2, rel=1e-3)  # the second waits for the first
    ca = simulate_dispatch(jobs, [AWS, GCP], "cost_aware", CAT)
    assert ca.per_worker_gpu_hours == {"a-aws": 16.0, "b-gcp": 16.0} and ca.wait_mean_h == 0.0


def test_data_far_away_pays_egress_and_cost_aware_follows_the_data():
    jobs = [_job(0, data_cloud="aws", data_region="us-east-1", data_gib=100.0)]
    ff = simulate_dispatch(jobs, [GCP, AWS], "all_at_once", CAT)
    ca = simulate_dispatch(jobs, [GCP, AWS], "cost_aware", CAT)
    assert ff.egress_usd == pytest.approx(100 * 0.09)  # AWS internet egress to GCP (catalog egress.csv)
    assert ff.completion_mean_h == pytest.approx(2.0 + 100 / 0.1 / 3600)  # the copy holds the GPUs
    assert ca.egress_usd == 0.0 and ca.per_worker_gpu_hours["a-aws"] == pytest.approx(8 * (2 + 100 / 0.5 / 3600), abs=0.01)  # in-region copy at 0.5 GiB/s


def test_incremental_adds_workers_every_five_minutes():
    w = [SimWorker(f"w{i}", "aws", "us-east-1", 120, {"l4": 8}, {"l4": 0.4}) for i in range(3)]
    jobs = [_job(0, hours=10), _job(1, hours=10), _job(2, t=1.0, hours=1)]  # w0, w1 full; step 1: job 2 waits for round 3
    r = simulate_dispatch(jobs, w, "incremental", CAT, incremental_step=1)
    assert r.wait_p95_h * 3600 == pytest.approx(600 - 1.0, abs=30)
    assert simulate_dispatch(jobs, w, "all_at_once", CAT).wait_mean_h == 0.0


def test_short_notice_loses_work_on_preemption():
    aws = SimWorker("aws", "aws", "us-east-1", 120, {"l4": 8}, {"l4": 0.4})
    gcp = SimWorker("gcp", "gcp", "us-central1", 30, {"l4": 8}, {"l4": 0.4})
    jobs = [_job(i, t=i * 3600 * 30, hours=20, capacity="spot") for i in range(5)]
    ra = simulate_dispatch(jobs, [aws], "all_at_once", CAT, preemptions_per_hour=0.5)
    rg = simulate_dispatch(jobs, [gcp], "all_at_once", CAT, preemptions_per_hour=0.5)
    assert ra.preemptions > 0 and rg.preemptions > 0
    assert rg.completion_mean_h > ra.completion_mean_h  # 30 s < 60 s checkpoint: half an interval lost each time


def test_bad_input_is_one_message_with_the_fix():
    with pytest.raises(DispatchSimError, match=r"1 jobs ask for flavors no worker offers: \['h100'\] \(offered: \['l4'\]\)\. To fix"):
        simulate_dispatch([SimJob("x", 0, "h100", 1, 1.0)], [AWS], "cost_aware", CAT)
    with pytest.raises(DispatchSimError, match=r"the residency rule excludes every worker \(a-aws \(aws us-east-1\)\) \(eu.json\)\. To fix"):
        simulate_dispatch([_job(0)], [AWS], "cost_aware", CAT, residency=Residency(("eu-*",), (), "eu.json"))
    with pytest.raises(DispatchSimError, match="policy 'fifo' is not a dispatch policy"):
        simulate_dispatch([_job(0)], [AWS], "fifo", CAT)


def test_trace_csv_round_trip_and_a_week_replays(tmp_path):
    jobs = synthetic_jobs(days=7, jobs_per_day=40, flavors=("l4-spot", "h100-spot"), seed=3)
    assert 200 < len(jobs) < 360 and jobs[-1].submit_s < 7 * 86_400
    write_jobs(tmp_path / "t.csv", jobs)
    back = read_jobs(tmp_path / "t.csv")
    assert [j.job_id for j in back] == [j.job_id for j in jobs] and back[5].data_region == "us-east-1"
    results = {p: simulate_dispatch(back, reference_workers(CAT), p, CAT) for p in ("all_at_once", "incremental", "cost_aware")}
    assert all(r.completed == len(jobs) for r in results.values())
    assert results["cost_aware"].cost_usd < results["all_at_once"].cost_usd


def test_cli_prints_a_table_and_json_and_names_bad_input(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["dispatch", "--days", "1", "--jobs-per-day", "20", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert [x["policy"] for x in out["results"]] == ["all_at_once", "incremental", "cost_aware"] and out["trace"].startswith("synthetic")
    r = runner.invoke(app, ["dispatch", "--days", "1", "--jobs-per-day", "20", "--policy", "cost_aware"])
    assert r.exit_code == 0 and "cost_aware" in r.output and "all_at_once" not in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("job_id,submit_s\n1,0\n")
    r = runner.invoke(app, ["dispatch", "--trace", str(bad)])
    assert r.exit_code == 2 and "missing columns ['flavor', 'gpus', 'hours', 'capacity', 'data_region', 'data_gib']" in r.output
