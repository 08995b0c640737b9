"""Spot training model: Young/Daly, limits, and analytic vs Monte-Carlo."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuplane.simulate.training import (
    SpotJob,
    TrainingModelError,
    estimate,
    expected_hours,
    monte_carlo,
    young_daly_interval,
)


@given(st.floats(0.001, 2.0), st.floats(0.5, 1000.0))
def test_young_daly_interval_is_sqrt_two_c_mtbf(c: float, mtbf: float) -> None:
    assert young_daly_interval(c, mtbf) == pytest.approx(math.sqrt(2 * c * mtbf))


def test_default_interval_is_young_daly_and_close_to_the_numeric_optimum() -> None:
    job = SpotJob(work_hours=200.0, preemptions_per_hour=0.1, checkpoint_hours=0.02, notice_s=0.0)  # no emergency save
    assert job.interval == pytest.approx(math.sqrt(2 * 0.02 * 10.0))
    grid = [job.interval * f for f in (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 4.0)]
    times = [expected_hours(job, t) for t in grid]
    best = grid[times.index(min(times))]
    assert 0.75 * job.interval <= best <= 1.25 * job.interval
    assert expected_hours(job) <= min(times) * 1.01


def test_no_preemptions_costs_the_work_plus_checkpoints() -> None:
    job = SpotJob(work_hours=10.0, preemptions_per_hour=0.0, checkpoint_hours=0.1, interval_hours=2.0)
    assert expected_hours(job) == pytest.approx(10.0 + 5 * 0.1)


def test_emergency_save_in_the_notice_loses_no_work() -> None:
    fits = SpotJob(checkpoint_hours=1 / 60, notice_s=120.0, preemptions_per_hour=0.5, interval_hours=5.0)
    lossy = SpotJob(checkpoint_hours=1 / 60, notice_s=30.0, preemptions_per_hour=0.5, interval_hours=5.0)
    assert fits.save_success == 1.0 and lossy.save_success == 0.0
    # lossless: exposure (W + n·C) stretched by λ(C + R) per hour
    exposed = fits.work_hours + math.ceil(fits.work_hours / 5.0) * fits.checkpoint_hours
    assert expected_hours(fits) == pytest.approx(exposed * (1 + 0.5 * (fits.checkpoint_hours + fits.restart_hours)))
    assert expected_hours(lossy) > expected_hours(fits)


@pytest.mark.parametrize("save", [0.0, 1.0])
@pytest.mark.parametrize("lam", [0.05, 0.5])
def test_monte_carlo_agrees_with_the_analytic_time(save: float, lam: float) -> None:
    job = SpotJob(
        work_hours=50.0, preemptions_per_hour=lam, checkpoint_hours=0.05, restart_hours=0.1, notice_save_success=save
    )
    samples = monte_carlo(job, runs=3000, seed=3)
    stderr = samples.std(ddof=1) / math.sqrt(samples.size)
    # exact for lossy preemptions; with emergency saves the simulation also lets a save replace a
    # periodic checkpoint it interrupted, which the first-order formula does not credit (≤ 0.5 %)
    slack = 0.0 if save == 0.0 else 0.005 * expected_hours(job)
    assert abs(samples.mean() - expected_hours(job)) <= 4 * stderr + slack


def test_spot_vs_on_demand_comparison() -> None:
    job = SpotJob(
        work_hours=100.0, preemptions_per_hour=0.2, gpus=8, spot_usd_per_gpu_hour=1.0, on_demand_usd_per_gpu_hour=3.0
    )
    est = estimate(job, monte_carlo_runs=500)
    assert est.on_demand_hours == 100.0 and est.on_demand_cost_usd == pytest.approx(2400.0)
    assert est.spot_hours > 100.0 and est.spot_cost_usd == pytest.approx(est.spot_hours * 8)
    assert est.savings == pytest.approx(1 - est.spot_cost_usd / est.on_demand_cost_usd)
    assert est.monte_carlo_hours == pytest.approx(est.spot_hours, rel=0.03)
    assert est.young_daly_hours == pytest.approx(math.sqrt(2 * 0.05 * 5.0))


@given(st.floats(0.0, 1.0), st.floats(0.01, 1.0))
@settings(max_examples=30, deadline=None)
def test_expected_time_grows_with_the_preemption_rate(save: float, lam: float) -> None:
    base = SpotJob(work_hours=20.0, preemptions_per_hour=lam, interval_hours=1.0, notice_save_success=save)
    more = SpotJob(work_hours=20.0, preemptions_per_hour=lam * 1.5, interval_hours=1.0, notice_save_success=save)
    assert base.work_hours <= expected_hours(base) <= expected_hours(more)


@pytest.mark.parametrize(
    ("field", "value"), [("work_hours", 0.0), ("preemptions_per_hour", -1.0), ("gpus", 0), ("notice_save_success", 2.0)]
)
def test_bad_job_parameters_are_named(field: str, value: float) -> None:
    with pytest.raises(TrainingModelError, match=field):
        estimate(SpotJob(**{field: value}))
