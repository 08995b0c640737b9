"""Pinned outputs of every policy on two small seeded traces: the simulator's speed work must not
change what it computes.

The figures below were first produced by the engine before its hot paths were rewritten for
speed (commit ``be533b3``), and regenerated for issue 11's model fixes, which moved them on
purpose: billing from the runs of the waits reported (the sparse Knative rows: a request arriving
just inside the keep-alive of a cold-started replica is warm and billed so), serverless billing per
instance in 100 ms increments with the start-up counted once (the request-billed rows halve),
queueing on the replicas that are up only (the busy Knative, histogram and serverless rows: p99
and SLO attainment worsen where bursts arrive while further replicas boot), the windowed desired
count from the arrivals' own demand, not the requests held during a start (busy Knative and
histogram GPU-hours drop 8–19 %), and the histogram policy updated at every idle time with a
forecast for out-of-bounds endpoints (the histogram rows). Every policy family and the knobs that take separate code paths are
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
    ('busy', 'knative'): (162.91043205283162, 0.007202713796682104, 0.5411638965907155, 2500.0, 9000.0, 17250.0, 0.8325795009216376, 3044),
    ('busy', 'knative-delay600-min1'): (243.57485906720567, 0.0, 0.3730618504004089, 2000.0, 3750.0, 4500.0, 0.9959029724747905, 210),
    ('busy', 'knative-max2'): (100.90732889389383, 0.0068309608265307705, 0.6692250499543053, 3500.0, 15000.0, 25000.0, 0.6455567775213371, 1120),
    ('busy', 'knative-pod-target1'): (219.11967957624844, 0.010858284669836894, 0.6056862714726065, 3000.0, 10583.96720918804, 15776.649551378363, 0.770659396830806, 32408),
    ('busy', 'serverless'): (357.5158888888889, 0.0002168558992549451, 0.0029430443470313977, 2000.0, 3000.0, 3000.0, 0.999744419833021, 216),
    ('busy', 'serverless-idle0'): (197.18069444444444, 0.3150296627890767, 0.6498164469709877, 5062.5, 17393.085957040148, 18000.0, 0.4959494415960594, 37037),
    ('busy', 'serverless-request'): (55.81977777777778, 0.00755123220619898, 0.05855883765237999, 2000.0, 3000.0, 6000.0, 0.987600489474744, 3556),
    ('busy', 'serverless-max2-min1'): (103.5621388888889, 0.000991341253736892, 0.5475611456187364, 3000.0, 14000.0, 21500.0, 0.7272262581514584, 1304),
    ('busy', 'histogram'): (173.84768859092205, 0.0017348471940395608, 0.4186325686581267, 2000.0, 4583.333333333334, 7500.0, 0.9650707105128642, 1881),
    ('busy', 'histogram-60-max3'): (127.3123850625149, 0.002021406775197881, 0.564351988103905, 2669.915081990136, 8333.333333333332, 12666.666666666666, 0.8296984154029647, 1478),
    ('sparse', 'static'): (96.0, 0.0, 0.0, 1000.0, 1000.0, 1000.0, 1.0, 0),
    ('sparse', 'static-instant'): (96.0, 0.0, 0.0, 1000.0, 1000.0, 1000.0, 1.0, 0),
    ('sparse', 'oracle'): (0.4777777777777778, 0.0, 0.0, 1000.0, 1000.0, 1000.0, 1.0, 0),
    ('sparse', 'knative'): (80.06482277873265, 0.24476744186046512, 0.0008720930232558139, 1000.0, 101000.0, 101000.0, 0.7604651162790698, 1139),
    ('sparse', 'knative-delay600-min1'): (96.0, 0.0, 0.0, 1000.0, 1000.0, 1000.0, 1.0, 0),
    ('sparse', 'knative-max2'): (80.06482277873265, 0.24476744186046512, 0.0008720930232558139, 1000.0, 101000.0, 101000.0, 0.7604651162790698, 1139),
    ('sparse', 'knative-pod-target1'): (59.29993634789026, 0.6543604651162791, 0.0, 11000.0, 11000.0, 11000.0, 0.34563953488372096, 2281),
    ('sparse', 'serverless'): (95.97394444444444, 0.0005813953488372093, 0.0, 1000.0, 1000.0, 1000.0, 0.9994186046511628, 2),
    ('sparse', 'serverless-idle0'): (15.331222222222221, 0.9997093023255814, 0.0, 16000.0, 16000.0, 16000.0, 0.00029069767441860465, 3439),
    ('sparse', 'serverless-request'): (10.17538888888889, 0.6267441860465116, 0.0, 16000.0, 16000.0, 16000.0, 0.3732558139534884, 2217),
    ('sparse', 'serverless-max2-min1'): (96.0, 0.0, 0.0, 1000.0, 1000.0, 1000.0, 1.0, 0),
    ('sparse', 'histogram'): (96.30020374778584, 0.026744186046511628, 0.0, 1000.0, 1000.0, 36376.07335108996, 0.9770348837209303, 648),
    ('sparse', 'histogram-60-max3'): (96.66554562002563, 0.021511627906976746, 0.0, 1000.0, 1000.0, 40619.09366843191, 0.9813953488372092, 787),
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
