"""The simulator's two-tier policy (gpuplane/simulate/two_tier.py)."""

from __future__ import annotations

import numpy as np
import pytest

from gpuplane.simulate import PolicyError, PriceSpec, ServiceModel, Trace, TrafficSpec, synthetic_trace
from gpuplane.simulate.two_tier import TwoTier, compare, endpoint_args, simulate_two_tier

SERVICE = ServiceModel(service_time_s=0.5, concurrency=2)


def trace(times: list[float], duration: float = 3600.0) -> Trace:
    return Trace(times_s=np.array(times, dtype=np.float64), endpoint=np.zeros(len(times), dtype=np.int32),
                 duration_s=duration, n_endpoints=1)


def test_requests_beyond_the_threshold_spill_and_the_rest_stay_on_the_steady_tier() -> None:
    # threshold 1: 0.0 admitted (busy until 0.5); 0.1 and 0.2 spill; 0.6 admitted again
    r = simulate_two_tier(trace([0.0, 0.1, 0.2, 0.6]), SERVICE, TwoTier(steady_replicas=1, spill_threshold=1),
                          slo_ms=100_000)
    assert r.extra["spilled_fraction"] == 0.5
    assert r.cold_starts == 1  # the burst tier started once for the two spilled requests
    assert r.slo_attainment == 1.0


def test_below_capacity_nothing_spills_and_the_cost_is_the_steady_tier_alone() -> None:
    prices = PriceSpec(usd_per_gpu_hour=1.0)
    r = simulate_two_tier(trace([0.0, 10.0, 20.0]), SERVICE, TwoTier(steady_replicas=2), prices)
    assert r.extra["spilled_fraction"] == 0.0
    assert r.cost_usd == pytest.approx(2.0)  # two replicas for one hour at $1
    assert (r.p99_ms, r.cold_start_fraction) == (500.0, 0.0)


def test_bad_settings_are_refused_naming_the_field() -> None:
    with pytest.raises(PolicyError, match=r"spill_threshold=5 must be in \[1, steady_replicas × concurrency = 4\]"):
        simulate_two_tier(trace([0.0]), SERVICE, TwoTier(steady_replicas=2, spill_threshold=5))
    with pytest.raises(PolicyError, match="steady_replicas=0 must be ≥ 1"):
        simulate_two_tier(trace([0.0]), SERVICE, TwoTier(steady_replicas=0))


def test_compare_recommends_the_cheapest_setting_meeting_the_slo_and_maps_it_to_endpoint_args() -> None:
    tr = synthetic_trace(TrafficSpec(mean_rps=1.0, duration_s=6 * 3600.0, bursts_per_day=4, burst_multiplier=4, seed=3))
    c = compare(tr, SERVICE, slo_ms=2000, slo_target=0.99)
    assert set(c.baselines) == {"static-peak", "knative", "serverless"}
    meeting = [r for r in c.two_tier if r.slo_attainment >= 0.99]
    assert c.recommended is not None and c.recommended.cost_usd == min(r.cost_usd for r in meeting)
    costs = [r.cost_usd for r in c.frontier]
    missed = [1 - r.slo_attainment for r in c.frontier]
    assert costs == sorted(costs) and missed == sorted(missed, reverse=True)
    args = endpoint_args(c.recommended, SERVICE)
    assert args["spill_threshold"] == c.recommended.params["spill_threshold"]
    assert args["target_concurrency"] == 2 and args["steady_replicas"] >= 1
    with pytest.raises(ValueError, match="not a two-tier result"):
        endpoint_args(c.baselines["knative"], SERVICE)
