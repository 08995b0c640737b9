"""Issue 11's simulator fixes, each as a small exact case that the earlier engine got wrong.

Billing uses the waits of the pass it bills; serverless bills per instance as Cloud Run documents
it; queueing counts only replicas that are up; held requests do not inflate the desired replica
count; the Azure reader takes either column order; per-endpoint cold-start quartiles; the hybrid
histogram policy forecasts out-of-bounds endpoints; the recommendation never misses the SLO.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpuplane.simulate import (
    ColdStart,
    HistogramKeepAlive,
    KnativeKeepAlive,
    PriceSpec,
    ServerlessPerRequest,
    ServiceModel,
    StaticPeak,
    SweepSpec,
    Trace,
    TrafficSpec,
    read_azure_functions,
    read_timestamps,
    run_sweep,
    simulate,
    synthetic_trace,
)
from gpuplane.simulate.traffic import AZURE_MINUTES

TRACES = Path(__file__).resolve().parents[3] / "shared" / "reference-data" / "traces"
SVC = ServiceModel()  # 0.5 s, concurrency 4, node start 75 + 45 + 20 = 140 s, serverless 5 + 20 = 25 s


def _trace(times: list[float], duration: float, endpoint: list[int] | None = None, n_endpoints: int = 1) -> Trace:
    t = np.asarray(times, dtype=np.float64)
    e = np.asarray(endpoint if endpoint is not None else [0] * len(times), dtype=np.int32)
    order = np.argsort(t, kind="stable")
    return Trace(times_s=t[order], endpoint=e[order], duration_s=duration, n_endpoints=n_endpoints)


def _billed_s(r) -> float:
    return r.gpu_hours * 3600.0


def test_billing_uses_the_waits_of_the_pass_it_bills() -> None:
    # The first request waits the 140 s start and leaves at 140.5; the keep-alive (90 s) reaches
    # 230.5 exactly, so the second is warm and leaves at 231: one run, 0 → 231 + 90 = 321 s.
    # Billing the runs built from the first pass's waits (both requests cold) gave 461 s.
    r = simulate(_trace([0.0, 230.5], 10_000.0), SVC, KnativeKeepAlive())
    assert r.cold_start_fraction == 0.5
    assert _billed_s(r) == pytest.approx(321.0)
    assert r.idle_gpu_hours * 3600 == pytest.approx(321.0 - 1.0)  # two 0.5 s services


def test_request_based_serverless_counts_start_up_once() -> None:
    # 25 s start + 0.5 s service: the request's stay holds the start-up; it was counted twice (51 s)
    r = simulate(_trace([0.0], 10_000.0), SVC, ServerlessPerRequest(billing="request"))
    assert _billed_s(r) == pytest.approx(25.5)


@pytest.mark.parametrize(("increment", "billed"), [(0.1, 76.5), (1.0, 78.0)])
@pytest.mark.parametrize("billing", ["instance", "request"])
def test_serverless_rounds_per_instance(increment: float, billed: float, billing: str) -> None:
    # three instances of 25.5 s each (idle timeout 0): rounded per instance, not once over the
    # total (which gave 77 s at whole seconds). Cloud Run's documented increment is 100 ms.
    tr = _trace([0.0, 100.0, 200.0], 10_000.0)
    pol = ServerlessPerRequest(billing=billing, idle_timeout_s=0.0, billing_increment_s=increment)  # type: ignore[arg-type]
    r = simulate(tr, SVC, pol)
    assert r.cold_starts == 3
    assert _billed_s(r) == pytest.approx(billed)


def test_queueing_uses_only_the_replicas_that_are_up() -> None:
    # 100 requests at t = 10 s with one replica up and the second 140 s away: one replica serves
    # four every 0.5 s, so the 99th waits (99 - 4 + 1) / 4 · 0.5 s ≈ 12 s; with two up, ≈ 6 s.
    tr = _trace([10.0] * 100, 3600.0)
    one = simulate(tr, SVC, KnativeKeepAlive(min_scale=1, max_scale=2), slo_ms=20_000)
    two = simulate(tr, SVC, KnativeKeepAlive(min_scale=2, max_scale=2), slo_ms=20_000)
    assert two.p99_ms == pytest.approx(5_700 + 500, abs=100)
    assert one.p99_ms == pytest.approx(11_900 + 500, abs=100)
    assert one.p99_ms / two.p99_ms == pytest.approx(2.0, rel=0.05)
    assert one.cold_start_fraction == 0.0  # nobody was served by the replica that was starting


@pytest.fixture(scope="module")
def llm_code() -> Trace:
    """The Azure LLM inference trace (code, 2023-11-16): 8,819 requests in 57 minutes."""
    path = TRACES / "AzureLLMInferenceTrace_code.csv"
    if not path.is_file():  # pragma: no cover - the reference data ships with the workspace
        pytest.skip(f"{path} is not present")
    return read_timestamps(path)


def test_held_requests_do_not_inflate_the_desired_replica_count(llm_code: Trace) -> None:
    # Static-for-peak needs 3 replicas for this hour. Counting the requests held through the
    # first 140 s start as demand asked the autoscaler for dozens of replicas, each starting cold
    # and holding more: 18.5 GPU-hours for an hour that peaks at 3 replicas.
    static = simulate(llm_code, SVC, StaticPeak())
    assert static.extra["replicas"] == 3
    for pol in (KnativeKeepAlive(), HistogramKeepAlive()):
        r = simulate(llm_code, SVC, pol)
        assert r.gpu_hours <= static.gpu_hours, (pol.name, r.gpu_hours)
        assert r.gpu_hours >= simulate(llm_code, SVC, KnativeKeepAlive(min_scale=1, max_scale=1)).gpu_hours * 0.5


def _write_azure(path: Path, order: list[str], rows: list[tuple[str, str, str, dict[int, int]]], prefix: str) -> None:
    header = [*order, *(f"{prefix}{m}" for m in range(1, AZURE_MINUTES + 1))]
    lines = [",".join(header)]
    for owner, app, fn, counts in rows:
        cells = ["0"] * AZURE_MINUTES
        for minute, c in counts.items():
            cells[minute - 1] = str(c)
        by_name = {"HashOwner": owner, "HashApp": app, "HashFunction": fn, "Trigger": "http"}
        lines.append(",".join([*(by_name[k] for k in order), *cells]))
    path.write_text("\n".join(lines) + "\n")


def test_azure_reader_takes_either_column_order(tmp_path: Path) -> None:
    rows = [("o1", "a1", "f1", {1: 3, 5: 2}), ("o1", "a1", "f2", {10: 1}), ("o2", "a2", "f3", {2: 4})]
    day = tmp_path / "d01.csv"
    invitro = tmp_path / "invitro.csv"
    _write_azure(day, ["HashOwner", "HashApp", "HashFunction", "Trigger"], rows, "")
    _write_azure(invitro, ["HashFunction", "HashApp", "HashOwner"], rows, "minute_")
    for group_by, n in (("function", 3), ("app", 2)):
        a = read_azure_functions(day, group_by=group_by, seed=3)
        b = read_azure_functions(invitro, group_by=group_by, seed=3)
        assert a.endpoint_names == b.endpoint_names and a.n_endpoints == n
        assert np.array_equal(a.times_s, b.times_s) and np.array_equal(a.endpoint, b.endpoint)
    assert read_azure_functions(invitro).endpoint_names == ("o1/a1/f1", "o1/a1/f2", "o2/a2/f3")


def test_azure_reader_reads_the_shipped_invitro_sample(tmp_path: Path) -> None:
    src = TRACES / "azure_functions_2019_invitro_sample_1200_inv.csv"
    if not src.is_file():  # pragma: no cover
        pytest.skip(f"{src} is not present")
    with src.open() as f:
        head = [next(f) for _ in range(21)]  # the real header and 20 functions
    assert head[0].startswith("HashFunction,HashApp,HashOwner,minute_1,")
    part = tmp_path / "sample.csv"
    part.write_text("".join(head))
    tr = read_azure_functions(part, group_by="app")
    counts = sum(sum(int(v) for v in line.strip().split(",")[3:]) for line in head[1:])
    assert tr.n_endpoints == 20 and tr.n_requests == counts


def test_cold_starts_per_endpoint_are_reported_as_quartiles() -> None:
    # endpoint k's later requests come after its first replica is ready, within the keep-alive:
    # only the first of each is cold
    times, eps = [], []
    for k, n in enumerate((1, 2, 4, 5)):
        times += [1000.0 * k] + [1000.0 * k + 150.0 + i for i in range(n - 1)]
        eps += [k] * n
    r = simulate(_trace(times, 10_000.0, eps, 4), SVC, KnativeKeepAlive())
    per_endpoint = np.array([1.0, 0.5, 0.25, 0.2])
    assert r.cold_start_fraction == pytest.approx(4 / 12)
    assert r.app_cold_start_median == pytest.approx(np.median(per_endpoint))
    assert r.app_cold_start_q3 == pytest.approx(np.percentile(per_endpoint, 75))


def test_hybrid_policy_forecasts_endpoints_idle_beyond_the_histogram() -> None:
    # one request every 5 h for 5 days: every idle time is beyond the 4 h histogram, so the
    # paper's policy forecasts the next one and pre-warms for it; a fixed keep-alive is always cold
    times = [600.0 + 5 * 3600.0 * i for i in range(24)]
    tr = _trace(times, 5 * 86_400.0)
    svc = ServiceModel(service_time_s=1.0, concurrency=1, cold_start=ColdStart(model_load_s=10.0))
    hybrid = simulate(tr, svc, HistogramKeepAlive(cold_phases="pod"))
    fixed = simulate(tr, svc, KnativeKeepAlive(cold_phases="pod", scale_down_delay_s=510.0))
    assert fixed.cold_start_fraction == 1.0
    assert hybrid.cold_start_fraction <= 3 / 24  # the first two idle times teach it the period
    # pre-warm windows of ±15 % of 5 h: far less than keeping the replica up all the time
    assert hybrid.gpu_hours < 0.4 * tr.duration_s / 3600


def test_hybrid_windows_follow_the_percentiles_of_the_idle_times_seen_so_far() -> None:
    from gpuplane.simulate.engine import _events, _histogram_windows, _key_scale, _levels

    # idle times of 30 min (20 of them), then the windows: pre-warm 27 min, keep until 34.1 min
    times = np.array([1800.0 * i for i in range(25)])
    a, ep = times, np.zeros(times.size, np.int64)
    d = a + 1.0
    lv = _levels(_events(a, ep, d, _key_scale(float(d.max()))), a, ep, 1, None, "first")
    pw, ka, rule = _histogram_windows(lv, np.arange(lv.start.size), HistogramKeepAlive())
    assert list(rule[:10]) == [0] * 10  # fewer than 10 idle times: the fixed fallback
    assert rule[10] == 1 and rule[-1] == 1
    assert pw[-1] == pytest.approx(29 * 60 * 0.9)  # lower edge of the 29-30 min bin (idle 1799 s), less 10 %
    assert pw[-1] + ka[-1] == pytest.approx(30 * 60 * 1.1)  # upper edge, plus 10 %


def _burst_trace() -> Trace:
    # a quiet day with one burst of 40 requests inside a second: 1.6 % of all requests
    rng = np.random.default_rng(0)
    quiet = np.sort(rng.uniform(0, 86_400.0, 2_400))
    burst = 40_000.0 + np.linspace(0.0, 1.0, 40)
    return _trace(list(np.concatenate((quiet, burst))), 86_400.0)


def test_the_recommendation_never_misses_the_slo() -> None:
    tr = _burst_trace()
    svc = ServiceModel(service_time_s=1.0, concurrency=2)
    sw = run_sweep(
        tr,
        svc,
        PriceSpec(),
        slo_ms=1500.0,
        slo_target=0.99,
        spec=SweepSpec(keep_alives_s=(0.0, 600.0), min_scales=(0, 1)),
    )
    assert sw.static.slo_attainment < 0.99  # the burst queues behind the 60 s-window sizing
    assert sw.recommended is not None and sw.recommended.slo_attainment >= 0.99
    assert all(r.slo_attainment < 0.99 for r in sw.results) or sw.recommended in sw.results
    assert "never queues" in sw.reason or "Cheapest setting" in sw.reason


def test_no_recommendation_when_the_service_time_alone_breaks_the_slo() -> None:
    tr = synthetic_trace(TrafficSpec(mean_rps=0.2, duration_s=6 * 3600, seed=3))
    sw = run_sweep(
        tr, ServiceModel(service_time_s=3.0), PriceSpec(), slo_ms=1000.0, spec=SweepSpec(keep_alives_s=(60.0,))
    )
    assert sw.recommended is None and "No setting meets" in sw.reason


def test_static_cheapest_is_explained_with_the_oracle_bound() -> None:
    # a constant, busy load: the oracle bound is small and cold starts eat it
    tr = synthetic_trace(TrafficSpec(mean_rps=4.0, peak_to_mean=1.0, cv=0.2, duration_s=6 * 3600, seed=4))
    svc = ServiceModel(service_time_s=2.0, concurrency=2)
    sw = run_sweep(tr, svc, PriceSpec(), slo_ms=5000.0, slo_target=0.95, spec=SweepSpec(keep_alives_s=(0.0, 600.0)))
    assert sw.recommended is sw.static
    bound = 1 - sw.oracle.gpu_hours / sw.static.gpu_hours
    assert sw.reason.startswith("Static-for-peak is cheapest") and f"{bound:.1%}" in sw.reason and "oracle" in sw.reason
