"""The demo's cost headline at equal service (gpuplane/demo/cost.py) and the oracle's start cost.

On the demo's own traffic day: each platform's cheapest setting meeting the SLO is what a
brute-force search over the sweep's grid finds; its saving is against a static-for-peak that
meets the SLO too; the aggressive defaults sit beside it with their cold requests; the lower
bound is never $0.00 with traffic, and no policy the simulator knows costs less than it.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpuplane.demo.config import DemoConfig
from gpuplane.demo.cost import compare_costs, cost_figures, money
from gpuplane.demo.traffic import traffic_day
from gpuplane.simulate import (
    ColdStart,
    HistogramKeepAlive,
    KnativeKeepAlive,
    Oracle,
    PolicyError,
    PriceSpec,
    ServerlessPerRequest,
    ServiceModel,
    StaticPeak,
    Trace,
    TrafficSpec,
    simulate,
    synthetic_trace,
)
from gpuplane.simulate.prices import price_spec
from gpuplane.simulate.sweep import DEFAULT_KEEP_ALIVES_S

PRICES = PriceSpec(usd_per_gpu_hour=3.6)
COLD = ColdStart(node_provisioning_s=60.0, image_pull_s=30.0, model_load_s=10.0, serverless_instance_start_s=5.0)
SVC = ServiceModel(service_time_s=1.0, concurrency=2, cold_start=COLD)


def _trace(times: list[float], duration: float, endpoint: list[int] | None = None, n_endpoints: int = 1) -> Trace:
    t = np.asarray(times, dtype=np.float64)
    e = np.asarray(endpoint if endpoint is not None else [0] * len(times), dtype=np.int32)
    order = np.argsort(t, kind="stable")
    return Trace(times_s=t[order], endpoint=e[order], duration_s=duration, n_endpoints=n_endpoints)


@pytest.mark.parametrize(("times", "endpoint", "billed_s"), [
    ([100.0], None, 0.5 + 10.0),  # one start, 1 s of work at concurrency 2
    ([100.0, 1000.0], None, 1.0 + 10.0 + 10.0),  # the 899 s gap: stop and start again (10 s)
    ([100.0, 105.0], None, 1.0 + 10.0 + 4.0),  # the 4 s gap: cheaper to stay up
    ([100.0, 100.5], None, 1.0 + 10.0),  # overlapping requests: one busy period
    ([100.0, 105.0], [0, 1], 1.0 + 10.0 + 10.0),  # two endpoints: one start each
])
def test_the_oracle_pays_one_start_per_busy_period_or_keeps_the_gap(times, endpoint, billed_s) -> None:
    tr = _trace(times, 10_000.0, endpoint, n_endpoints=2 if endpoint else 1)
    svc = ServiceModel(service_time_s=1.0, concurrency=2, cold_start=COLD)
    r = simulate(tr, svc, Oracle(start_s=10.0), PRICES)
    assert r.gpu_hours * 3600 == pytest.approx(billed_s)
    assert r.cold_start_fraction == 0.0
    assert simulate(tr, svc, Oracle(), PRICES).gpu_hours * 3600 == pytest.approx(len(times) * 0.5)  # busy time only


def test_an_oracle_start_that_is_not_a_duration_is_rejected() -> None:
    with pytest.raises(PolicyError, match="start_s=-1"):
        simulate(_trace([1.0], 100.0), SVC, Oracle(start_s=-1.0), PRICES)


POLICIES = [
    StaticPeak(),
    KnativeKeepAlive(),
    KnativeKeepAlive(cold_phases="pod"),
    KnativeKeepAlive(scale_down_delay_s=600.0, min_scale=1),
    KnativeKeepAlive(max_scale=1),
    ServerlessPerRequest(),
    ServerlessPerRequest(idle_timeout_s=0.0),
    HistogramKeepAlive(),
    HistogramKeepAlive(cold_phases="pod"),
]
"""Every policy that bills instance time. Request-based serverless billing (``billing="request"``)
pays only while requests run, starts included in none of them, so no start-paying bound applies
to it; Cloud Run with a GPU requires instance-based billing anyway."""


@pytest.fixture(scope="module")
def traces() -> dict[str, Trace]:
    return {
        "mixed": synthetic_trace(TrafficSpec(mean_rps=1.5, peak_to_mean=2.5, cv=2.0, duration_s=12 * 3600, endpoints=4,
                                             bursts_per_day=3, seed=7)),
        "demo-day": traffic_day(DemoConfig().day),
    }


@pytest.mark.parametrize("trace_name", ["mixed", "demo-day"])
@pytest.mark.parametrize("policy", POLICIES, ids=[f"{p.name}-{i}" for i, p in enumerate(POLICIES)])
def test_the_oracle_with_a_model_load_per_start_still_costs_no_more_than_any_policy(traces, trace_name,
                                                                                     policy) -> None:
    trace = traces[trace_name]
    oracle = simulate(trace, SVC, Oracle(start_s=SVC.cold_start.pod_s), PRICES)
    r = simulate(trace, SVC, policy, PRICES)
    assert oracle.gpu_hours > simulate(trace, SVC, Oracle(), PRICES).gpu_hours
    rate = PRICES.serverless_usd_per_second * 3600 if r.policy == "serverless" else PRICES.usd_per_gpu_hour
    assert oracle.gpu_hours * rate <= r.cost_usd + 1e-9, r.setting


@pytest.fixture(scope="module")
def demo_costs():
    trace = traffic_day(DemoConfig().day)
    prices = price_spec("aws", "g6.xlarge", "us-east-1", "on_demand", serverless_region="us-central1",
                        serverless_gpu="l4")
    service = ServiceModel(service_time_s=0.012, concurrency=4, cold_start=ColdStart(model_load_s=3.0))
    record = compare_costs(trace, service, prices, node="g6.xlarge", serverless="Cloud Run L4",
                           slo_ms=1000.0, slo_target=0.99)
    return trace, service, prices, record


def test_each_platform_is_shown_at_its_cheapest_setting_meeting_the_slo(demo_costs) -> None:
    trace, service, prices, c = demo_costs
    assert [p.platform for p in c.platforms] == ["Knative on g6.xlarge nodes", "Cloud Run L4"]
    days = trace.duration_s / 86_400
    for p, family in zip(c.platforms, ("knative", "serverless"), strict=True):
        grid = []
        for k in DEFAULT_KEEP_ALIVES_S:
            for m in (0, 1):
                pol = KnativeKeepAlive(scale_down_delay_s=k, min_scale=m) if family == "knative" else \
                    ServerlessPerRequest(idle_timeout_s=k, min_instances=m)
                grid.append(simulate(trace, service, pol, prices, slo_ms=1000.0))
        meeting = [r for r in grid if r.slo_attainment >= 0.99]
        best = min(meeting, key=lambda r: r.cost_usd)
        assert p.at_slo is not None and p.at_slo.setting == best.setting, p.platform
        assert p.at_slo.slo_attainment >= 0.99
        assert p.at_slo.monthly_usd == pytest.approx(best.cost_usd * 730 / 24 / days)
        assert c.static is not None and c.static.slo_attainment >= 0.99, "the baseline gives the same service"
        assert p.at_slo.savings_vs_static == pytest.approx(1 - p.at_slo.monthly_usd / c.static.monthly_usd)
        # the aggressive defaults: cheaper, and paid for in cold requests and a missed SLO
        assert p.aggressive.slo_attainment < 0.99 and p.aggressive.cold_start_fraction > p.at_slo.cold_start_fraction
        assert p.aggressive.monthly_usd < p.at_slo.monthly_usd


def test_the_headline_puts_the_slo_setting_beside_the_aggressive_one(demo_costs) -> None:
    *_, c = demo_costs
    figures = dict(cost_figures(c))
    knative = figures["cost Knative on g6.xlarge nodes"]
    assert knative.startswith("at 99% of requests within 1,000 ms: keep-alive ")
    assert "% below static" in knative.split("; aggressive")[0]
    assert "; aggressive (keep-alive 90 s, min-scale 0): " in knative and "% of requests cold, " in knative
    cloud_run = figures["cost Cloud Run L4"]
    assert "more than static (no saving at this SLO)" in cloud_run or "below static" in cloud_run
    assert figures["cost baseline"].startswith("static-for-peak (g6.xlarge): $587.50/month")


def test_the_lower_bound_is_not_zero_when_there_is_traffic(demo_costs) -> None:
    *_, c = demo_costs
    assert c.bound is not None and c.bound.monthly_usd >= 1.0, c.bound
    assert money(c.bound.monthly_usd) != "$0.00"
    assert 0 < c.savings_bound < 1
    assert all(c.bound.monthly_usd <= r.monthly_usd for r in c.rows if "Cloud Run" not in r.option)
    assert "$0.00" not in dict(cost_figures(c))["cost lower bound"]


def test_money_never_rounds_a_positive_amount_to_zero() -> None:
    assert money(0.0004) == "<$0.01" and money(0.0) == "$0.00" and money(1234.5) == "$1,234.50"


def test_a_setting_that_costs_what_static_costs_reads_as_no_saving() -> None:
    from gpuplane.demo.cost import CostRecord, CostRow, PlatformCost

    static = CostRow("static-for-peak (g6.xlarge)", "1 replica", 587.5, 24.0, 0.0, 18.0, 0.0, 1.0)
    same = CostRow("Knative: cheapest meeting the SLO", "keep-alive 90 s, min-scale 1", 587.5, 24.0, 0.0, 18.0, 0.0, 1.0)
    agg = CostRow("Knative: aggressive (defaults)", "keep-alive 90 s, min-scale 0", 78.8, 3.0, 0.8, 129_900.0, 0.87, 0.2)
    c = CostRecord("p", 120, 10.0, 2.5, [static, same, agg], static=static, platforms=[PlatformCost("Knative", same, agg)])
    line = dict(cost_figures(c))["cost Knative"]
    assert "$587.50/month, as much as static (no saving at this SLO)" in line and "-0%" not in line
