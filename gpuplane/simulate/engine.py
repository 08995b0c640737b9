"""The simulation engine: one trace, one service model, one policy, prices → cost and latency.

Model (event-exact, no time bins, vectorised with numpy; cost O(n log n) in requests):

1. In-flight level. Request ``i`` arrives at ``a_i`` and leaves at ``a_i + w_i + S`` (``w_i`` its
   wait, ``S`` the service time). Sorting arrivals and departures per endpoint gives the number in
   flight ``N(t)``; the arrival's *level* is ``N`` just before it. Requests held while replicas
   start count as in flight, as Knative's activator counts them.
2. Replica slots. With target concurrency ``c``, slot ``j`` (1-based) is *needed* while
   ``N(t) > (j-1)·c``: ideal packing, so needed replicas are ``ceil(N/c)`` at every instant. Each
   slot's need intervals come straight from the level crossings of ``(j-1)·c``. Scale-up is
   immediate (the activator pokes the autoscaler at once); scale-down follows the policy's
   keep-alive. This is the reactive autoscaler every policy here shares; Knative's stable-window
   averaging is modelled only as keep-alive, so brief overlaps can start extra replicas
   (pessimistic for cost, optimistic for latency).
3. Runs. Per slot, need intervals closer than the keep-alive (or starting while the slot is
   still booting) merge into one billed *run*. A run begins cold: it is billed from its start and
   ready ``T_cold`` later. Slots ``≤ min_scale`` are up (and billed) the whole horizon.
4. Waits. A request on slot 1 waits until the slot is ready. A request on a higher slot waits
   until its slot is ready or until ``N`` falls back to ``(j-1)·c`` (a lower replica frees up),
   whichever is first. A request above ``max_scale`` queues until ``N`` falls to
   ``max_scale·c``. Because waits lengthen stays, the levels are recomputed with the waits of the
   previous pass (``passes``, default 2).
5. Billing is clipped to the horizon ``[0, duration)``. Static pays ``replicas × duration``; the
   oracle pays ``Σ min(S, duration - a_i) / c`` and never waits.

Deliberately not modelled: network and queueing inside a replica beyond the concurrency limit,
node bin-packing of several replicas per node, per-request service-time variance (one value per
endpoint), Knative panic mode, provider billing minimums other than whole-second rounding for
serverless.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gpuplane.simulate.policies import (
    HistogramKeepAlive,
    KnativeKeepAlive,
    Oracle,
    Policy,
    PolicyError,
    ServerlessPerRequest,
    StaticPeak,
)
from gpuplane.simulate.prices import PriceSpec
from gpuplane.simulate.service import ServiceModel
from gpuplane.simulate.traffic import Trace


@dataclass(frozen=True)
class PolicyResult:
    """What one policy costs and what latency it gives on one trace."""

    policy: str
    """Policy family: static-peak, knative, serverless, histogram, oracle."""
    params: dict[str, Any]
    """The policy's parameters (its dataclass fields)."""
    gpu_hours: float
    """Replica (GPU) hours billed, including cold starts and keep-alive."""
    cost_usd: float
    """Cost in USD."""
    cold_start_fraction: float
    """Fraction of requests that waited for a replica to cold-start."""
    queued_fraction: float
    """Fraction of requests that waited because the endpoint was at its max scale."""
    p50_ms: float
    p95_ms: float
    p99_ms: float
    """Latency percentiles (wait + service), milliseconds."""
    slo_ms: float
    """The SLO latency the attainment refers to."""
    slo_attainment: float
    """Fraction of requests with latency ≤ ``slo_ms``."""
    cold_starts: int
    """Replica starts (runs that began cold, plus pre-warm loads)."""
    mean_replicas: float
    """GPU-hours / horizon hours: the average number of billed replicas."""
    n_requests: int
    duration_s: float
    setting: str = ""
    """Short label of the swept knob (e.g. ``keep-alive 120 s``)."""
    extra: dict[str, float] = field(default_factory=dict)

    def savings_vs(self, baseline: PolicyResult) -> float:
        """1 − cost / baseline cost (0 when the baseline costs nothing)."""
        return 1.0 - self.cost_usd / baseline.cost_usd if baseline.cost_usd > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Level model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Levels:
    level: np.ndarray  # (n,) in-flight count just before each arrival
    peak: np.ndarray  # (n_endpoints,) maximum in-flight count
    # need intervals sorted by (endpoint, slot, start); slot is 0-based
    g_ep: np.ndarray
    g_slot: np.ndarray
    start: np.ndarray
    end: np.ndarray
    req_interval: np.ndarray  # (n,) index of the need interval of each request's lookup slot
    req_interval0: np.ndarray  # (n,) index of the slot-1 need interval at each request's arrival


def _levels(
    a: np.ndarray, ep: np.ndarray, stay: np.ndarray, c: int, n_endpoints: int, lookup_cap: np.ndarray | None
) -> _Levels:
    """Levels and need intervals. ``a``/``ep`` must be sorted by (endpoint, time)."""
    n = a.size
    d = a + stay
    # One float key per event orders by (endpoint, time): endpoint · 2^k + time, exact to well
    # under a microsecond for any realistic horizon. Arrival keys are sorted already and departure
    # keys nearly so, so the stable sort (timsort) runs close to linear time. Departures are
    # placed first so that at equal keys a replica frees up before the next arrival takes it.
    big = 2.0 ** math.ceil(math.log2(float(d.max(initial=0.0)) + 2.0))
    base = ep * big
    order = np.argsort(np.concatenate((base + d, base + a)), kind="stable")
    is_arr = order >= n
    delta = is_arr.astype(np.int32) * 2 - 1
    n_after = np.cumsum(delta, dtype=np.int32)  # per endpoint too: every earlier endpoint's events sum to 0
    n_before = n_after - delta
    per_ep = np.bincount(ep, minlength=n_endpoints)
    e_s = np.repeat(np.arange(n_endpoints, dtype=np.int64), 2 * per_ep)  # events are grouped by endpoint
    arr_pos = np.flatnonzero(is_arr)
    req = order[arr_pos] - n  # request index of each arrival event, in event order
    level = np.empty(n, np.int32)
    level[req] = n_before[arr_pos]
    peak = np.zeros(n_endpoints, np.int64)
    if n:
        bounds = np.concatenate(([0], np.cumsum(2 * per_ep)[:-1]))
        has = per_ep > 0
        peak[has] = np.maximum.reduceat(n_after, bounds[has])

    lvl_mod = n_before % c if c > 1 else None
    st_pos = arr_pos[lvl_mod[arr_pos] == 0] if lvl_mod is not None else arr_pos
    dep_pos = np.flatnonzero(~is_arr)
    en_pos = dep_pos[(n_after[dep_pos] % c) == 0] if c > 1 else dep_pos
    n_slots = int(n_before.max(initial=0)) // c + 2
    span = 2 * n + 1
    s_key = (e_s[st_pos] * n_slots + n_before[st_pos] // c) * span + st_pos
    f_key = (e_s[en_pos] * n_slots + n_after[en_pos] // c) * span + en_pos
    so = np.argsort(s_key, kind="stable")
    fo = np.argsort(f_key, kind="stable")
    if so.size != fo.size:  # pragma: no cover - an internal invariant, not an input error
        raise RuntimeError(f"simulator: {so.size} need-interval starts but {fo.size} ends")
    s_key = s_key[so]
    start = a[order[st_pos[so]] - n]
    end = d[order[en_pos[fo]]]
    grp = s_key // span
    g_ep, g_slot = grp // n_slots, grp % n_slots

    # Each request's need interval: the last start of its (endpoint, lookup slot) at or before
    # the request's own arrival event.
    r_slot = level // c
    if lookup_cap is not None:
        r_slot = np.minimum(r_slot, lookup_cap[ep])
    r_pos = np.empty(n, np.int64)
    r_pos[req] = arr_pos
    r_key = (ep * n_slots + r_slot) * span + r_pos
    req_interval = np.searchsorted(s_key, r_key, side="right") - 1
    req_interval0 = np.searchsorted(s_key, ep * n_slots * span + r_pos, side="right") - 1
    return _Levels(level, peak, g_ep, g_slot, start, end, req_interval, req_interval0)


@dataclass(frozen=True)
class _Desired:
    """Replica slots ≥ 2 wanted by a windowed autoscaler, as intervals sorted by (endpoint, slot, start)."""

    g_ep: np.ndarray
    g_slot: np.ndarray  # 0-based slot (always ≥ 1 here)
    start: np.ndarray
    end: np.ndarray
    req_interval: np.ndarray  # (n,) interval of each request's slot containing its arrival, -1 if none


def _desired(
    a: np.ndarray,
    ep: np.ndarray,
    stay: np.ndarray,
    c: float,
    n_endpoints: int,
    window_s: float,
    panic_s: float,
    cap: np.ndarray,
    r_slot: np.ndarray,
) -> _Desired:
    """Knative-style desired replicas ``max(ceil(mean_stable / c), ceil(mean_panic / c))`` over time.

    The mean in-flight count over a window is ``(F(t) - F(t - W)) / W`` with ``F = ∫ N``, which is
    piecewise linear with breaks at events and events + W; it is evaluated at those points and
    held in between. Slot 1 is left to the exact level model (it is wanted exactly while a
    request was in flight within the window). ``a``/``ep`` sorted by (endpoint, time).
    """
    n = a.size
    empty = np.zeros(0, np.int64)
    if n == 0:
        return _Desired(empty, empty, np.zeros(0), np.zeros(0), np.full(n, -1, np.int64))
    d = a + stay
    big = 2.0 ** math.ceil(math.log2(float(d.max()) + window_s + 2.0))
    base = ep * big
    keys = np.concatenate((base + d, base + a))
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    lev = np.cumsum(np.where(order >= n, 1.0, -1.0))
    f = np.concatenate(([0.0], np.cumsum(lev[:-1] * np.diff(k))))  # F at each event; 0-level gaps add nothing
    # Between events the window means only decay; sample the decay after quiet gaps (at the panic
    # and stable window lengths) instead of after every event: exact for busy endpoints, and it
    # bounds the cost at about 2n points.
    gap = np.append(np.diff(k), np.inf)
    quiet = gap > panic_s
    decay = np.concatenate((k[quiet] + panic_s, (k + window_s)[quiet & (gap > window_s)]))
    p = np.sort(np.concatenate((k, decay)), kind="stable")
    fp = np.interp(p, k, f)
    mean_s = (fp - np.interp(p - window_s, k, f)) / window_s
    mean_p = (fp - np.interp(p - panic_s, k, f)) / panic_s
    e_p = np.floor(p / big).astype(np.int64)
    stable = np.ceil(mean_s / c - 1e-9)
    panic = np.ceil(mean_p / c - 1e-9)
    # Knative enters panic mode when the panic-window demand reaches twice the current capacity
    # (panic threshold 200 %); the stable desired count stands in for the current capacity.
    want = np.where(panic >= 2.0 * np.maximum(stable, 1.0), panic, stable).astype(np.int64)
    want = np.minimum(np.maximum(want, 0), cap[e_p])
    first = np.ones(p.size, bool)
    first[1:] = e_p[1:] != e_p[:-1]
    prev = np.roll(want, 1)
    prev[first] = 0
    up = np.maximum(want - np.maximum(prev, 1), 0)  # new slots ≥ 2 wanted at this point
    down = np.maximum(prev - np.maximum(want, 1), 0)
    ui = np.repeat(np.arange(p.size), up)
    u_slot = np.maximum(prev[ui], 1) + (np.arange(ui.size) - np.repeat(np.cumsum(up) - up, up))  # 0-based slot
    di = np.repeat(np.arange(p.size), down)
    d_slot = np.maximum(want[di], 1) + (np.arange(di.size) - np.repeat(np.cumsum(down) - down, down))
    n_slots = int(max(u_slot.max(initial=0), d_slot.max(initial=0), r_slot.max(initial=0))) + 2
    span = p.size + 1
    s_key = (e_p[ui] * n_slots + u_slot) * span + ui
    f_key = (e_p[di] * n_slots + d_slot) * span + di
    so, fo = np.argsort(s_key, kind="stable"), np.argsort(f_key, kind="stable")
    if so.size != fo.size:  # pragma: no cover - an internal invariant
        raise RuntimeError(f"simulator: {so.size} desired-slot starts but {fo.size} ends")
    s_key, f_key = s_key[so], f_key[fo]
    start_i, end_i = ui[so], di[fo]
    g = s_key // span
    # each request: its slot's desired interval containing its arrival point
    a_pt = np.searchsorted(p, base + a, side="right") - 1
    r_key = (ep * n_slots + r_slot) * span + a_pt
    j = np.searchsorted(s_key, r_key, side="right") - 1
    ok = (j >= 0) & (j < s_key.size)
    jj = np.clip(j, 0, max(s_key.size - 1, 0))
    if s_key.size:
        ok &= (g[jj] == ep * n_slots + r_slot) & (end_i[jj] > a_pt)
    else:
        ok[:] = False
    return _Desired(
        g // n_slots, g % n_slots, p[start_i] - e_p[start_i] * big, p[end_i] - e_p[end_i] * big, np.where(ok, j, -1)
    )


def _segmented_cummax(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` that restarts where ``first`` is True (values ≥ 0)."""
    if values.size == 0:
        return values.copy()
    gid = np.cumsum(first) - 1
    big = 2.0 ** math.ceil(math.log2(float(values.max()) + 2.0))
    off = gid * big
    return np.maximum.accumulate(values + off) - off


@dataclass(frozen=True)
class _Runs:
    ready: np.ndarray  # per need interval: time the slot is ready (-inf when warm)
    billed_s: float
    cold_starts: int


def _keepalive_runs(
    lv: _Levels | _Desired, mask: np.ndarray, keep: np.ndarray | float, t_cold: float, horizon: float
) -> _Runs:
    """Runs of the need intervals selected by ``mask`` with keep-alive ``keep`` after each interval.

    A run starts cold at ``s0``, is ready at ``s0 + t_cold``, takes in every need that starts
    while it boots, then every need starting within the keep-alive of the previous one. When the
    keep-alive is at least the boot time the boot never matters and runs are the keep-alive
    chains; otherwise run starts are found by walking ``next run start`` pointers, one step per
    run (each step is O(1); the pointers themselves are computed vectorised).
    """
    ready = np.full(lv.start.size, -np.inf)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return _Runs(ready, 0.0, 0)
    m = idx.size
    s, e = lv.start[idx], lv.end[idx]
    k = keep[idx] if isinstance(keep, np.ndarray) else np.full(m, float(keep))
    grp = lv.g_ep[idx] * (int(lv.g_slot.max()) + 1) + lv.g_slot[idx]
    first = np.ones(m, bool)
    first[1:] = grp[1:] != grp[:-1]
    kbreak = first.copy()
    kbreak[1:] |= s[1:] > e[:-1] + k[:-1]
    if t_cold <= float(k.min()):
        cold = kbreak
    else:
        kstarts = np.flatnonzero(kbreak)
        kend = np.append(kstarts[1:] - 1, m - 1)[np.cumsum(kbreak) - 1]  # last interval of each K-chain
        big = 2.0 ** math.ceil(math.log2(float(max(e.max(), s.max())) + t_cold + 2.0))
        key = (np.cumsum(first) - 1) * big + s  # sorted: (slot group, start)
        j1 = np.searchsorted(key, key + t_cold, side="right") - 1  # last need starting during the boot
        nxt = kend[j1] + 1
        cold = np.zeros(m, bool)
        i = 0
        while i < m:  # one iteration per run
            cold[i] = True
            i = int(nxt[i])
    run = np.cumsum(cold) - 1
    r = (s[cold] + t_cold)[run]
    reach = np.maximum(_segmented_cummax(e + k, cold), r)
    last = np.ones(m, bool)
    last[:-1] = cold[1:]
    run_end = np.minimum(reach[last], horizon)
    ready[idx] = r
    return _Runs(ready, float(np.sum(np.maximum(run_end - s[cold], 0.0))), int(cold.sum()))


def _histogram_windows(
    lv: _Levels, idx: np.ndarray, pol: HistogramKeepAlive, horizon: float, n_endpoints: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pre-warm and keep-alive windows in force after each slot-1 need interval ``idx`` (ordered).

    The windows after an interval ending at ``t`` use only idle times observed before the start
    of the refit period containing ``t``.
    """
    s, e, ep = lv.start[idx], lv.end[idx], lv.g_ep[idx]
    n_bins = math.ceil(pol.range_s / pol.bin_s)
    refit = pol.refit_interval_s
    n_per = math.ceil(horizon / refit) + 1
    while n_endpoints * n_per * (n_bins + 1) > 60_000_000:  # bound memory on huge endpoint counts
        refit *= 2
        n_per = math.ceil(horizon / refit) + 1
    same = ep[1:] == ep[:-1]
    it = (s[1:] - e[:-1])[same]  # idle times between consecutive slot-1 needs of an endpoint
    it_ep = ep[1:][same]
    it_seen = s[1:][same]  # observed when the next request arrives
    b = np.minimum((it / pol.bin_s).astype(np.int64), n_bins)  # bin n_bins = out of bounds
    per = np.minimum((it_seen / refit).astype(np.int64), n_per - 1)
    key = (it_ep * n_per + per) * (n_bins + 1) + b
    hist = np.bincount(key, minlength=n_endpoints * n_per * (n_bins + 1)).reshape(n_endpoints, n_per, n_bins + 1)
    cum = np.cumsum(hist, axis=1)
    # windows for period p use observations from periods < p
    seen = np.concatenate((np.zeros((n_endpoints, 1, n_bins + 1), cum.dtype), cum[:, :-1]), axis=1)
    inb = seen[..., :n_bins].astype(np.float64)
    total_in = inb.sum(axis=-1)
    oob = seen[..., n_bins].astype(np.float64)
    total = total_in + oob
    mean = inb.mean(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.where(mean > 0, inb.std(axis=-1) / mean, 0.0)
        oob_frac = np.where(total > 0, oob / total, 1.0)
    good = (total >= pol.min_samples) & (cv >= pol.cv_threshold) & (oob_frac <= pol.max_out_of_bounds)
    cdf = np.cumsum(inb, axis=-1)
    head_bin = np.argmax(cdf >= (pol.prewarm_percentile / 100.0) * total_in[..., None], axis=-1)
    tail_bin = np.argmax(cdf >= (pol.keepalive_percentile / 100.0) * total_in[..., None], axis=-1)
    prewarm = head_bin * pol.bin_s * (1.0 - pol.margin)  # lower edge of the head bin, minus margin
    tail = (tail_bin + 1) * pol.bin_s * (1.0 + pol.margin)  # upper edge of the tail bin, plus margin
    keep = np.maximum(tail - prewarm, 0.0)
    prewarm = np.where(good, prewarm, 0.0)
    keep = np.where(good, keep, pol.fallback_keep_alive_s)
    p_of = np.minimum((e / refit).astype(np.int64), n_per - 1)
    return prewarm[ep, p_of], keep[ep, p_of]


def _histogram_runs(
    lv: _Levels, idx: np.ndarray, pol: HistogramKeepAlive, t_cold: float, horizon: float, n_endpoints: int
) -> _Runs:
    """Slot-1 billing and readiness under pre-warm/keep-alive windows (the paper's semantics, with
    the load started ``t_cold`` early so the replica is ready when the pre-warm window opens)."""
    ready = np.full(lv.start.size, -np.inf)
    if idx.size == 0:
        return _Runs(ready, 0.0, 0)
    s, e, ep = lv.start[idx], lv.end[idx], lv.g_ep[idx]
    pw, ka = _histogram_windows(lv, idx, pol, horizon, n_endpoints)
    first = np.ones(idx.size, bool)
    first[1:] = ep[1:] != ep[:-1]
    # windows after the previous interval
    pe, ppw, pka = np.roll(e, 1), np.roll(pw, 1), np.roll(ka, 1)
    load = pe + np.maximum(ppw - t_cold, 0.0)  # pre-warm load start
    warm_end = pe + ppw + pka
    plain = ppw <= 0
    # plain keep-alive
    warm_plain = s <= pe + pka
    gap_plain = np.minimum(s, pe + pka) - pe
    # pre-warm
    before_load = s < load
    in_window = (s >= load) & (s <= warm_end)
    gap_pw = np.where(before_load, 0.0, np.where(in_window, s - load, warm_end - load))
    r = np.where(
        first,
        s + t_cold,
        np.where(plain, np.where(warm_plain, -np.inf, s + t_cold), np.where(in_window, load + t_cold, s + t_cold)),
    )
    gap = np.where(first, 0.0, np.where(plain, gap_plain, gap_pw))
    starts = np.where(first, 1, np.where(plain, ~warm_plain, ~in_window)).astype(np.int64)
    starts += (~first & ~plain & ~before_load).astype(np.int64)  # pre-warm loads that happened
    last = np.ones(idx.size, bool)
    last[:-1] = first[1:]
    tail = np.where(
        pw <= 0,
        np.minimum(e + ka, horizon) - e,
        np.maximum(np.minimum(e + pw + ka, horizon) - np.minimum(e + np.maximum(pw - t_cold, 0.0), horizon), 0.0),
    )
    need = np.minimum(np.maximum(e, r), horizon) - s  # billed through the need (and any boot beyond it)
    billed = need.sum() + gap.sum() + np.where(last, np.maximum(tail, 0.0), 0.0).sum()
    starts += (last & (pw > 0) & (e + np.maximum(pw - t_cold, 0.0) < horizon)).astype(np.int64)  # final pre-warm load
    ready[idx] = r
    return _Runs(ready, float(billed), int(starts.sum()))


# ---------------------------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------------------------


def _percentiles(lat_s: np.ndarray) -> tuple[float, float, float]:
    if lat_s.size == 0:
        return 0.0, 0.0, 0.0
    q = np.quantile(lat_s, [0.5, 0.95, 0.99])
    return float(q[0] * 1e3), float(q[1] * 1e3), float(q[2] * 1e3)


def _result(
    policy: Policy,
    trace: Trace,
    *,
    billed_s: float,
    usd_per_s: float,
    lat_s: np.ndarray,
    cold: np.ndarray | None,
    queued: np.ndarray | None,
    slo_ms: float,
    cold_starts: int,
    setting: str,
    extra: dict[str, float] | None = None,
) -> PolicyResult:
    n = trace.n_requests
    p50, p95, p99 = _percentiles(lat_s)
    return PolicyResult(
        policy=policy.name,
        params=asdict(policy),
        gpu_hours=billed_s / 3600.0,
        cost_usd=billed_s * usd_per_s,
        cold_start_fraction=float(cold.mean()) if cold is not None and n else 0.0,
        queued_fraction=float(queued.mean()) if queued is not None and n else 0.0,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        slo_ms=slo_ms,
        slo_attainment=float(np.mean(lat_s * 1e3 <= slo_ms)) if n else 1.0,
        cold_starts=cold_starts,
        mean_replicas=billed_s / trace.duration_s,
        n_requests=n,
        duration_s=trace.duration_s,
        setting=setting,
        extra=extra or {},
    )


def simulate(
    trace: Trace,
    service: ServiceModel,
    policy: Policy,
    prices: PriceSpec | None = None,
    *,
    slo_ms: float = 1000.0,
    passes: int = 2,
    setting: str = "",
) -> PolicyResult:
    """Simulate ``policy`` serving ``trace`` (see the module docstring for the model)."""
    prices = prices or PriceSpec()
    service.validate(trace.n_endpoints)
    policy.validate()
    if trace.n_requests and (trace.endpoint.min() < 0 or trace.endpoint.max() >= trace.n_endpoints):
        raise ValueError(f"Trace: endpoint indices must lie in [0, {trace.n_endpoints})")
    if not slo_ms > 0:
        raise ValueError(f"slo_ms={slo_ms} must be > 0")
    if passes < 1:
        raise ValueError(f"passes={passes} must be ≥ 1")
    # Work in (endpoint, time) order; every output below is order-free.
    by_ep = trace.by_endpoint()
    a, ep = trace.times_s[by_ep], trace.endpoint[by_ep].astype(np.int64)
    st = service.service_times(trace.n_endpoints)[ep]
    horizon = trace.duration_s
    node_s = prices.usd_per_gpu_second

    if isinstance(policy, Oracle):
        busy = np.minimum(st, horizon - a).sum() / service.concurrency
        return _result(
            policy,
            trace,
            billed_s=float(busy),
            usd_per_s=node_s,
            lat_s=st,
            cold=None,
            queued=None,
            slo_ms=slo_ms,
            cold_starts=0,
            setting=setting or "lower bound",
        )

    if isinstance(policy, StaticPeak):
        if policy.window_s <= 0:
            peak = _levels(a, ep, st, service.concurrency, trace.n_endpoints, None).peak
        else:
            peak = _windowed_peak(a, ep, st, trace.n_endpoints, policy.window_s)
        replicas = np.maximum(
            np.ceil(peak / (service.concurrency * policy.target_utilization) - 1e-9).astype(np.int64),
            policy.min_replicas,
        )
        c, t_cold, usd = service.concurrency, 0.0, node_s
        min_e = max_e = replicas
        keep1 = keep2 = 0.0
        window = None
        setting = setting or f"{int(replicas.sum())} replicas (peak of {policy.window_s:g} s mean in-flight)"
    elif isinstance(policy, KnativeKeepAlive):
        c = policy.target_concurrency or service.concurrency
        t_cold = service.cold_start.node_s if policy.cold_phases == "node" else service.cold_start.pod_s
        min_e, max_e, usd = (*_per_endpoint(policy.min_scale, policy.max_scale, trace.n_endpoints), node_s)
        keep1, keep2 = policy.keep_alive_s, policy.scale_down_delay_s
        window = (policy.stable_window_s, max(policy.stable_window_s * policy.panic_window_fraction, 1e-3))
        target_util = policy.target_utilization
        setting = setting or f"keep-alive {policy.keep_alive_s:g} s, min-scale {policy.min_scale}"
    elif isinstance(policy, ServerlessPerRequest):
        c = service.concurrency
        t_cold = service.cold_start.serverless_s
        min_e, max_e, usd = (
            *_per_endpoint(policy.min_instances, policy.max_instances, trace.n_endpoints),
            prices.serverless_usd_per_second,
        )
        keep1 = keep2 = policy.idle_timeout_s
        window = None
        setting = setting or f"idle timeout {policy.idle_timeout_s:g} s, min instances {policy.min_instances}"
    elif isinstance(policy, HistogramKeepAlive):
        c = policy.target_concurrency or service.concurrency
        t_cold = service.cold_start.node_s if policy.cold_phases == "node" else service.cold_start.pod_s
        min_e, max_e, usd = (*_per_endpoint(0, policy.max_scale, trace.n_endpoints), node_s)
        keep1, keep2 = policy.fallback_keep_alive_s, policy.extra_keep_alive_s
        window = (60.0, 6.0)
        target_util = 0.7
        setting = setting or f"fallback keep-alive {policy.fallback_keep_alive_s:g} s"
    else:
        raise PolicyError(
            f"unknown policy {policy!r}; use one of StaticPeak, KnativeKeepAlive, ServerlessPerRequest, HistogramKeepAlive, Oracle"
        )

    wait = np.zeros(a.size)
    bounded = bool(np.any(max_e < np.iinfo(np.int64).max))
    for _ in range(passes):
        lv = _levels(a, ep, wait + st, c, trace.n_endpoints, max_e if bounded else None)
        slot = lv.g_slot
        billable = (slot >= min_e[lv.g_ep]) & (slot < max_e[lv.g_ep])
        r_slot = (lv.level // c).astype(np.int64)
        if window is not None:
            # slot 1 from the exact level model; slots ≥ 2 from the windowed autoscaler
            first_only = billable & (slot == 0)
            dz = _desired(a, ep, wait + st, c * target_util, trace.n_endpoints, window[0], window[1], max_e, r_slot)
            dz_bill = (dz.g_slot >= min_e[dz.g_ep]) & (dz.g_slot < max_e[dz.g_ep])
            runs_hi = _keepalive_runs(dz, dz_bill, keep2, t_cold, horizon)
        else:
            first_only = billable
            dz, runs_hi = None, None
        if isinstance(policy, HistogramKeepAlive):
            runs = _histogram_runs(lv, np.flatnonzero(first_only), policy, t_cold, horizon, trace.n_endpoints)
        else:
            runs = _keepalive_runs(lv, first_only, np.where(slot == 0, keep1, keep2), t_cold, horizon)
        billed, starts = runs.billed_s, runs.cold_starts
        if runs_hi is not None:
            billed += runs_hi.billed_s
            starts += runs_hi.cold_starts
        if isinstance(policy, ServerlessPerRequest) and policy.billing == "request":
            # billed only while serving, plus the start-up of every cold run, whole seconds per interval
            busy = np.ceil(np.minimum(lv.end, horizon) - lv.start)
            boot = np.where(np.isfinite(runs.ready), np.maximum(runs.ready - lv.start, 0.0), 0.0)
            billed = float(np.sum(np.where(billable, busy + boot, 0.0)))
        elif isinstance(policy, ServerlessPerRequest):
            billed = float(math.ceil(billed))
        iv = lv.req_interval
        r_min, r_max = min_e[ep], max_e[ep]
        over = r_slot >= r_max
        if dz is None:
            r_ready = runs.ready[iv]
            no_slot = np.zeros(a.size, bool)
        else:
            hit = dz.req_interval
            ready_hi = np.where(hit >= 0, runs_hi.ready[np.maximum(hit, 0)] if runs_hi.ready.size else np.inf, np.inf)
            r_ready = np.where(r_slot == 0, runs.ready[iv], ready_hi)
            no_slot = (r_slot > 0) & (hit < 0)  # the autoscaler does not want this replica yet
        # A request above the capacity of the replicas below its slot queues FIFO behind
        # (level - capacity + 1) others while capacity requests are in service, one leaving every
        # S / capacity; it is served by whichever comes first, a freed place or its own replica.
        below = np.minimum(r_slot, r_max) * c
        w_free = (lv.level - below + 1) * st / np.maximum(below, 1)
        w = np.where(r_slot == 0, r_ready - a, np.minimum(r_ready - a, w_free))
        w = np.where(r_slot < r_min, 0.0, np.maximum(w, 0.0))
        wait = np.where(over | no_slot, np.maximum(w_free, 0.0), w)
        # a cold-start wait: slot 1 was booting, or the request was served by a replica that
        # finished booting before a place freed up (otherwise it only queued)
        served_by_new = (r_ready > a) & (r_ready - a <= w_free) & ~no_slot & ~over
        booting = served_by_new | ((r_slot == 0) & (r_ready > a)) | (runs.ready[lv.req_interval0] > a)
        cold = (wait > 0) & booting
        queued = (wait > 0) & ~cold
    billed += float(min_e.sum()) * horizon
    extra = {"cold_start_s": t_cold}
    if isinstance(policy, StaticPeak):
        extra |= {"replicas": float(min_e.sum()), "max_endpoint_replicas": float(min_e.max(initial=0))}
    return _result(
        policy,
        trace,
        billed_s=billed,
        usd_per_s=usd,
        lat_s=wait + st,
        cold=cold,
        queued=queued,
        slo_ms=slo_ms,
        cold_starts=starts,
        setting=setting,
        extra=extra,
    )


def _per_endpoint(lo: int, hi: int | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full(n, lo, np.int64), np.full(n, np.iinfo(np.int64).max if hi is None else hi, np.int64)


def _windowed_peak(a: np.ndarray, ep: np.ndarray, st: np.ndarray, n_endpoints: int, window_s: float) -> np.ndarray:
    """Per endpoint, the maximum over t of the mean in-flight count over ``[t - window_s, t]``.

    The busy integral ``F(t) = ∫ N`` is piecewise linear with breaks at arrivals and departures,
    so ``F(t) - F(t - W)`` peaks where ``t`` or ``t - W`` is a break: evaluating at both sets is exact.
    ``a``/``ep`` sorted by (endpoint, time).
    """
    n = a.size
    if n == 0:
        return np.zeros(n_endpoints)
    d = a + st
    big = 2.0 ** math.ceil(math.log2(float(d.max()) + window_s + 2.0))
    base = ep * big
    keys = np.concatenate((base + d, base + a))
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    delta = np.where(order >= n, 1.0, -1.0)
    level_after = np.cumsum(delta)
    f = np.concatenate(([0.0], np.cumsum(level_after[:-1] * np.diff(k))))  # F at each event, keyed
    # within an endpoint F starts at 0; across endpoints the gap contributes level 0 × gap = 0
    # windows ending at each event, and windows starting at each event (ending W later); keys
    # are (endpoint, time) so a window never reaches into a neighbouring endpoint: F is flat there
    f_at = f
    busy_end = f_at - np.interp(k - window_s, k, f)
    busy_start = np.interp(k + window_s, k, f) - f_at
    busy = np.maximum(busy_end, busy_start)
    per_ep = 2 * np.bincount(ep, minlength=n_endpoints)
    peak = np.zeros(n_endpoints)
    has = per_ep > 0
    bounds = np.concatenate(([0], np.cumsum(per_ep)[:-1]))[has]
    peak[has] = np.maximum.reduceat(busy, bounds) / window_s
    return peak
