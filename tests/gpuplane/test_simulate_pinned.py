"""Pinned outputs of every policy on two small seeded traces: the simulator's speed work must not
change what it computes.

The figures below were produced by the engine before its hot paths were rewritten for speed
(commit ``be533b3``). Every policy family and the knobs that take separate code paths are
covered: windowed autoscaler with and without panic, min/max scale, pod cold starts, per-request
and per-instance serverless billing, the histogram policy with and without a scale cap, static
sizing at the windowed and instantaneous peak, the oracle. A busy multi-endpoint trace exercises
replicas beyond the first (panic bursts, queueing at max scale); a sparse one exercises
scale-to-zero, keep-alive chains and the histogram's pre-warm windows.

Floats must agree to 1e-9 relative (floating-point noise only); replica-start counts exactly. If a
deliberate model change moves these numbers, regenerate them and say why in the commit.
"""

from __future__ import annotations

import pytest

from gpuplane.simulate import (
    ColdStart,
    HistogramKeepAlive,
    KnativeKeepAlive,
    Oracle,
    PolicyResult,
    PriceSpec,
    ServerlessPerRequest,
    ServiceModel,
    StaticPeak,
    Trace,
    TrafficSpec,
    simulate,
    synthetic_trace,
)

PRICES = PriceSpec(usd_per_gpu_hour=3.6)
COLD = ColdStart(node_provisioning_s=60.0, image_pull_s=30.0, model_load_s=10.0, serverless_instance_start_s=5.0)
SERVICES = {
    "busy": ServiceModel(service_time_s=(2.0, 1.5, 3.0, 1.0, 2.5), concurrency=2, cold_start=COLD),
    "sparse": ServiceModel(service_time_s=1.0, concurrency=2, cold_start=COLD),
}
TRAFFIC = {
    # about 129k requests over 12 h on five endpoints, bursty: several replicas, panic mode, queueing
    "busy": TrafficSpec(
        mean_rps=3.0, peak_to_mean=2.5, cv=2.0, duration_s=12 * 3600, endpoints=5, bursts_per_day=4, seed=11
    ),
    # about 3.4k near-periodic requests over 2 days on two endpoints: gaps around the keep-alive
    "sparse": TrafficSpec(mean_rps=0.02, peak_to_mean=1.5, cv=0.3, duration_s=2 * 86400, endpoints=2, seed=12),
}
POLICIES = {
    "static": StaticPeak(),
    "static-instant": StaticPeak(window_s=0.0, target_utilization=1.0),
    "oracle": Oracle(),
    "knative": KnativeKeepAlive(),
    "knative-delay600-min1": KnativeKeepAlive(scale_down_delay_s=600.0, min_scale=1),
    "knative-max2": KnativeKeepAlive(max_scale=2),
    "knative-pod-target1": KnativeKeepAlive(cold_phases="pod", target_concurrency=1, stable_window_s=30.0),
    "serverless": ServerlessPerRequest(),
    "serverless-idle0": ServerlessPerRequest(idle_timeout_s=0.0),
    "serverless-request": ServerlessPerRequest(billing="request", idle_timeout_s=60.0),
    "serverless-max2-min1": ServerlessPerRequest(max_instances=2, min_instances=1, idle_timeout_s=30.0),
    "histogram": HistogramKeepAlive(),
    "histogram-60-max3": HistogramKeepAlive(fallback_keep_alive_s=60.0, max_scale=3, extra_keep_alive_s=20.0),
}
SLO_MS = 5000.0
FIELDS = ("gpu_hours", "cold_start_fraction", "queued_fraction", "p50_ms", "p95_ms", "p99_ms", "slo_attainment")

# (trace, policy): (*FIELDS, cold_starts)
PINNED: dict[tuple[str, str], tuple[float, float, float, float, float, float, float, int]] = {
    ('busy', 'static'): (276.0, 0.0, 0.07014513855542992, 2000.0, 3000.0, 3750.0, 0.9978624204216299, 0),
    ('busy', 'static-instant'): (732.0, 0.0, 0.0, 2000.0, 3000.0, 3000.0, 1.0, 0),
    ('busy', 'oracle'): (35.37335759414599, 0.0, 0.0, 2000.0, 3000.0, 3000.0, 1.0, 0),
    ('busy', 'knative'): (201.6021178250536, 0.0075822116203782585, 0.45899874533372576, 2000.0, 3750.0, 5000.0, 0.9925262163292492, 4211),
    ('busy', 'knative-delay600-min1'): (282.4737357760934, 0.0, 0.3387211697826794, 2000.0, 3500.0, 4500.0, 0.9968323549001689, 248),
    ('busy', 'knative-max2'): (105.50152621356452, 0.007094285847054632, 0.6349385833113896, 3000.0, 14000.0, 21750.0, 0.7271875338837342, 1130),
    ('busy', 'knative-pod-target1'): (246.16625340396357, 0.010114778729534224, 0.4932697222695519, 2000.0, 3750.0, 5000.0, 0.9933007016837312, 36782),
    ('busy', 'serverless'): (357.2686111111111, 0.00020911104571012562, 0.0029585340541210367, 2000.0, 3000.0, 3000.0, 0.9999302963180966, 216),
    ('busy', 'serverless-idle0'): (178.68138888888888, 0.5264951439768274, 0.4453755479483883, 2333.3333333333335, 16500.0, 17993.321572802306, 0.896869530197184, 36434),
    ('busy', 'serverless-request'): (72.29588626772771, 0.007442804256571508, 0.05719574342849177, 2000.0, 3000.0, 3750.0, 0.9960888489598662, 3488),
    ('busy', 'serverless-max2-min1'): (103.44694444444444, 0.000991341253736892, 0.5453616072120077, 3000.0, 14000.0, 21500.0, 0.7364968478446072, 1316),
    ('busy', 'histogram'): (200.70379298265473, 0.001672888365681005, 0.36304000991341256, 2000.0, 3750.0, 4500.0, 0.9960423798385972, 2369),
    ('busy', 'histogram-60-max3'): (137.53759612458666, 0.004732105515884695, 0.516558496878824, 2500.0, 7000.0, 10666.666666666666, 0.8919902724639477, 1627),
    ('sparse', 'static'): (96.0, 0.0, 0.0, 1000.0, 1000.0, 1000.0, 1.0, 0),
    ('sparse', 'static-instant'): (96.0, 0.0, 0.0, 1000.0, 1000.0, 1000.0, 1.0, 0),
    ('sparse', 'oracle'): (0.4777777777777778, 0.0, 0.0, 1000.0, 1000.0, 1000.0, 1.0, 0),
    ('sparse', 'knative'): (101.1197321283896, 0.24476744186046512, 0.0008720930232558139, 1000.0, 101000.0, 101000.0, 0.7651162790697674, 1078),
    ('sparse', 'knative-delay600-min1'): (96.0, 0.0, 0.0, 1000.0, 1000.0, 1000.0, 1.0, 0),
    ('sparse', 'knative-max2'): (101.1197321283896, 0.24476744186046512, 0.0008720930232558139, 1000.0, 101000.0, 101000.0, 0.7651162790697674, 1078),
    ('sparse', 'knative-pod-target1'): (67.14020997152294, 0.6543604651162791, 0.0, 11000.0, 11000.0, 11000.0, 0.34563953488372096, 4704),
    ('sparse', 'serverless'): (95.97416666666666, 0.0005813953488372093, 0.0, 1000.0, 1000.0, 1000.0, 0.9994186046511628, 2),
    ('sparse', 'serverless-idle0'): (15.288055555555555, 0.9997093023255814, 0.0, 16000.0, 16000.0, 16000.0, 0.00029069767441860465, 3439),
    ('sparse', 'serverless-request'): (20.159722222222225, 0.6267441860465116, 0.0, 16000.0, 16000.0, 16000.0, 0.3732558139534884, 2156),
    ('sparse', 'serverless-max2-min1'): (96.0, 0.0, 0.0, 1000.0, 1000.0, 1000.0, 1.0, 0),
    ('sparse', 'histogram'): (96.09916172754893, 0.029651162790697676, 0.0, 1000.0, 1000.0, 39590.06854214452, 0.9741279069767442, 316),
    ('sparse', 'histogram-60-max3'): (96.01056018669814, 0.029651162790697676, 0.0, 1000.0, 1000.0, 101000.0, 0.9732558139534884, 248),
}


@pytest.fixture(scope="module")
def traces() -> dict[str, Trace]:
    return {name: synthetic_trace(spec) for name, spec in TRAFFIC.items()}


def _row(r: PolicyResult) -> tuple[float, ...]:
    return tuple(getattr(r, f) for f in FIELDS)


def test_every_policy_and_trace_is_pinned() -> None:
    assert set(PINNED) == {(t, p) for t in TRAFFIC for p in POLICIES}


@pytest.mark.parametrize("trace_name", list(TRAFFIC))
def test_outputs_match_the_pinned_figures(traces: dict[str, Trace], trace_name: str) -> None:
    tr = traces[trace_name]
    mismatches = []
    for name, pol in POLICIES.items():
        r = simulate(tr, SERVICES[trace_name], pol, PRICES, slo_ms=SLO_MS)
        *want, want_starts = PINNED[(trace_name, name)]
        got = _row(r)
        if got != pytest.approx(tuple(want), rel=1e-9, abs=1e-9) or r.cold_starts != want_starts:
            mismatches.append(f"{name}: got {(*got, r.cold_starts)}, pinned {(*want, want_starts)}")
    assert not mismatches, "\n".join(mismatches)
