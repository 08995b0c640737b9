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
   keep-alive. Serverless uses these slots as they are. Knative and the histogram policy use them
   for slot 1 only; their higher slots follow the windowed desired count (stable and panic
   windows over the exact integral of ``N``, see :func:`_desired`).
3. Runs. Per slot, need intervals closer than the keep-alive (or starting while the slot is
   still booting) merge into one billed *run*. A run begins cold: it is billed from its start and
   ready ``T_cold`` later. Slots ``≤ min_scale`` are up (and billed) the whole horizon.
4. Waits. A request on slot 1 waits until the slot is ready. A request on a higher slot waits
   until its slot is ready or until ``N`` falls back to ``(j-1)·c`` (a lower replica frees up),
   whichever is first. A request above ``max_scale`` queues until ``N`` falls to
   ``max_scale·c``. Because waits lengthen stays, the levels are recomputed with the waits of the
   previous pass (``passes``, default 2; a pass in which nobody waited ends the loop, since the
   next would repeat it).
5. Billing is clipped to the horizon ``[0, duration)``. Static pays ``replicas × duration``; the
   oracle pays ``Σ min(S, duration - a_i) / c`` and never waits, plus, with ``Oracle.start_s``,
   one start per endpoint and ``min(gap, start_s)`` per idle gap between busy periods.

Deliberately not modelled: network and queueing inside a replica beyond the concurrency limit,
node bin-packing of several replicas per node, per-request service-time variance (one value per
endpoint), provider billing minimums other than whole-second rounding for serverless.

Implementation, for speed (a 7-day trace of millions of requests in seconds; see
benchmarks/simulate_speed.py): each pass merges arrivals and departures of all endpoints once
(:func:`_events`; departures are already sorted in the first pass, so the merge is linear) and
every stage reads that merge. The windowed autoscaler is evaluated only where a cheap bound on the
window means says it may want more than one replica; elsewhere it provably wants at most one,
which asks for no slot ≥ 2; static sizing likewise evaluates the windowed peak only in blocks
of events that can hold it. Requests on slot 1, the vast majority, take a short path for their
waits. None of this changes a result: tests/gpuplane/test_simulate_pinned.py holds the figures
of the earlier, unscreened implementation.
"""

from __future__ import annotations

import itertools
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
    idle_gpu_hours: float = 0.0
    """Billed replica-hours in which the replica served nothing: boot, keep-alive, pre-warm (the
    wasted memory time of Shahrad et al.). Billed minus ``∫ min(ceil(N/c), max_scale) dt`` of the
    arrivals' own demand ``N`` (stays of one service time)."""
    app_cold_start_median: float = 0.0
    """Median over endpoints (applications) of each one's fraction of cold-start waits."""
    app_cold_start_q3: float = 0.0
    """Third quartile over endpoints of the same: the paper's headline metric (the 75th-percentile app)."""

    def savings_vs(self, baseline: PolicyResult) -> float:
        """1 − cost / baseline cost (0 when the baseline costs nothing)."""
        return 1.0 - self.cost_usd / baseline.cost_usd if baseline.cost_usd > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Events and the level model
# ---------------------------------------------------------------------------------------------


def _key_scale(d_max: float, window_s: float = 0.0) -> float:
    """``big`` for event keys ``endpoint · big + time``: a power of two above every time (plus a
    window), so keys order by (endpoint, time) and endpoints never overlap. One float key per
    event is exact to well under a microsecond for any realistic horizon."""
    return 2.0 ** math.ceil(math.log2(d_max + window_s + 2.0))


@dataclass(frozen=True)
class _Events:
    """Arrivals and departures of one pass, every endpoint, merged in (endpoint, time) order.

    Requests are in (endpoint, time) order, so arrivals enter the merge in request order;
    departures are sorted first (a no-op when every request of an endpoint stays equally long, as
    in the first pass), so the merge of two sorted runs is linear. At equal keys a departure comes
    first (a replica frees up before the next arrival takes it), and equal departures keep request
    order: the same order a stable sort of all events gives.
    """

    big: float
    keys: np.ndarray  # (2n,) departure keys (sorted), then arrival keys: the merge's input
    order: np.ndarray  # (2n,) event → index into ``keys``
    n_after: np.ndarray  # (2n,) int32 in-flight count after each event (per endpoint: earlier ones sum to 0)
    arr_pos: np.ndarray  # (n,) event position of request i's arrival
    dep_pos: np.ndarray  # (n,) event position of the j-th departure in (endpoint, time) order
    dep_time: np.ndarray  # (n,) time of the j-th departure
    level: np.ndarray  # (n,) int32 in-flight count just before request i arrives

    @property
    def sorted_keys(self) -> np.ndarray:
        return self.keys[self.order]


def _events(a: np.ndarray, ep: np.ndarray, d: np.ndarray, big: float) -> _Events:
    """Merge arrivals ``a`` and departures ``d`` (``a``/``ep`` sorted by (endpoint, time))."""
    n = a.size
    base = ep * big
    ak = base + a
    dk = base + d
    if n > 1 and not bool(np.all(dk[1:] >= dk[:-1])):
        perm = np.argsort(dk, kind="stable")
        dk, d = dk[perm], d[perm]
    keys = np.concatenate((dk, ak))
    order = np.argsort(keys, kind="stable")  # two sorted runs: a linear merge
    is_arr = order >= n
    n_after = np.cumsum(is_arr.view(np.int8) * np.int8(2) - np.int8(1), dtype=np.int32)
    arr_pos = np.flatnonzero(is_arr)  # arrivals leave the merge in request order
    dep_pos = np.flatnonzero(~is_arr)
    level = n_after[arr_pos] - np.int32(1)
    return _Events(big, keys, order, n_after, arr_pos, dep_pos, d, level)


@dataclass(frozen=True)
class _Levels:
    level: np.ndarray  # (n,) in-flight count just before each arrival
    # need intervals grouped by (endpoint, slot), each group in start order: every endpoint's
    # slot-1 intervals first (in (endpoint, time) order), then the higher slots sorted by
    # (endpoint, slot, start); slot is 0-based
    g_ep: np.ndarray
    g_slot: np.ndarray
    start: np.ndarray
    end: np.ndarray
    req_interval: np.ndarray | None  # (n,) need interval of each request's lookup slot ("all" only)
    req_interval0: np.ndarray  # (n,) the slot-1 need interval at each request's arrival


def _levels(ev: _Events, a: np.ndarray, ep: np.ndarray, c: int, lookup_cap: np.ndarray | None, slots: str) -> _Levels:
    """Need intervals of ``slots``: ``"first"`` (slot 1 only, for the windowed autoscalers, whose
    higher slots come from :func:`_desired`) or ``"all"``. ``a``/``ep`` sorted by (endpoint, time).

    Slot ``j`` (0-based) starts needing a replica at an arrival that lifts the level from
    ``j·c`` and stops at a departure that brings it back to ``j·c``.
    """
    n = a.size
    level = ev.level
    na_dep = ev.n_after[ev.dep_pos]
    new0 = level == 0
    s0 = np.flatnonzero(new0)
    e0 = np.flatnonzero(na_dep == 0)
    if s0.size != e0.size:  # pragma: no cover - an internal invariant, not an input error
        raise RuntimeError(f"simulator: {s0.size} busy-period starts but {e0.size} ends")
    req_interval0 = np.cumsum(new0, dtype=np.int64) - 1  # requests and busy periods share one order
    g_ep, start, end = ep[s0], a[s0], ev.dep_time[e0]
    g_slot = np.zeros(s0.size, np.int64)
    if slots == "first" or n == 0:
        return _Levels(level, g_ep, g_slot, start, end, None, req_interval0)
    # Higher slots: the j-th departure belongs to the same endpoint as the j-th request (each
    # endpoint has as many departures as arrivals, both in (endpoint, time) order).
    if c > 1:
        s_hi = np.flatnonzero((level >= c) & (level % c == 0))
        e_hi = np.flatnonzero((na_dep >= c) & (na_dep % c == 0))
    else:
        s_hi = np.flatnonzero(level >= 1)
        e_hi = np.flatnonzero(na_dep >= 1)
    if s_hi.size != e_hi.size:  # pragma: no cover - an internal invariant
        raise RuntimeError(f"simulator: {s_hi.size} need-interval starts but {e_hi.size} ends")
    r_slot = (level // c).astype(np.int64)
    if lookup_cap is not None:
        r_slot = np.minimum(r_slot, lookup_cap[ep])
    n_slots = int(level.max(initial=0)) // c + 2
    span = 2 * n + 1
    s_key = (ep[s_hi] * n_slots + level[s_hi] // c) * span + ev.arr_pos[s_hi]
    f_key = (ep[e_hi] * n_slots + na_dep[e_hi] // c) * span + ev.dep_pos[e_hi]
    so = np.argsort(s_key, kind="stable")
    fo = np.argsort(f_key, kind="stable")
    s_key = s_key[so]
    s_hi = s_hi[so]
    n0 = s0.size
    g_ep = np.concatenate((g_ep, ep[s_hi]))
    g_slot = np.concatenate((g_slot, (level[s_hi] // c).astype(np.int64)))
    start = np.concatenate((start, a[s_hi]))
    end = np.concatenate((end, ev.dep_time[e_hi[fo]]))
    req_interval = req_interval0.copy()
    hi = np.flatnonzero(r_slot > 0)
    if hi.size:
        r_key = (ep[hi] * n_slots + r_slot[hi]) * span + ev.arr_pos[hi]
        req_interval[hi] = np.searchsorted(s_key, r_key, side="right") - 1 + n0
    return _Levels(level, g_ep, g_slot, start, end, req_interval, req_interval0)


def _busy_integral(ev: _Events) -> tuple[np.ndarray, np.ndarray]:
    """Sorted event keys and ``F = ∫ N`` at each (piecewise linear in between; 0-level gaps,
    including those between endpoints, add nothing)."""
    k = ev.sorted_keys
    f = np.empty(k.size)
    if k.size:
        f[0] = 0.0
        g = f[1:]
        np.subtract(k[1:], k[:-1], out=g)
        g *= ev.n_after[:-1]
        np.cumsum(g, out=g)
    return k, f


def _f_floor(f: np.ndarray, kb: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A lower bound of ``F(x)`` (``x`` sorted): ``F`` at the last block start at or before ``x``
    (0 before the first event). ``kb = k[::_BLOCK]``, a small array to search."""
    ib = np.searchsorted(kb, x, side="right") - 1
    return np.where(ib >= 0, f[np.maximum(ib, 0) * _BLOCK], 0.0)


def _f_ceil(f: np.ndarray, kb: np.ndarray, x: np.ndarray) -> np.ndarray:
    """An upper bound of ``F(x)`` (``x`` sorted): ``F`` at the first block start after ``x``, or
    at the last event (F is flat after it)."""
    ib = np.searchsorted(kb, x, side="right")
    return f[np.minimum(ib * _BLOCK, f.size - 1)]


@dataclass(frozen=True)
class _Desired:
    """Replica slots ≥ 2 wanted by a windowed autoscaler, as intervals sorted by (endpoint, slot, start)."""

    g_ep: np.ndarray
    g_slot: np.ndarray  # 0-based slot (always ≥ 1 here)
    start: np.ndarray
    end: np.ndarray
    # lookup of a request's slot interval (see :func:`_desired_lookup`)
    s_key: np.ndarray  # sorted start keys (group · span + point)
    end_pt: np.ndarray  # end point of each interval, in s_key order
    span: int
    n_slots: int
    arr_pt: np.ndarray  # (n,) evaluated point of each arrival, -1 where its block was skipped


def _desired_lookup(dz: _Desired, ep: np.ndarray, r_slot: np.ndarray) -> np.ndarray:
    """Per request on a slot ≥ 2: the desired interval of its slot containing its arrival point
    (the last evaluated point at or before it; skipped points open and close no interval), -1
    when the autoscaler does not want that slot then."""
    n = ep.size
    req_interval = np.full(n, -1, np.int64)
    q = np.flatnonzero(r_slot > 0)
    if not (q.size and dz.s_key.size):
        return req_interval
    span, n_slots = dz.span, dz.n_slots
    g = dz.s_key // span
    grp_q = ep[q] * n_slots + np.minimum(r_slot[q], n_slots - 1)  # the top slot never has an interval
    a_pt = dz.arr_pt[q]
    jq = np.searchsorted(dz.s_key, grp_q * span + a_pt, side="right") - 1
    jj = np.maximum(jq, 0)
    ok = (jq >= 0) & (a_pt >= 0) & (g[jj] == grp_q) & (dz.end_pt[jj] > a_pt)
    req_interval[q] = np.where(ok, jq, -1)
    return req_interval


_BLOCK = 8
"""Events per block in :func:`_desired`'s screen."""


def _new_slots(count: np.ndarray, above: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Point index and 0-based slot of every slot opened (or closed) at each point: ``count[i]``
    slots, numbered from ``above[i]`` upwards."""
    nz = np.flatnonzero(count)
    cnt = count[nz]
    at = np.repeat(nz, cnt)
    return at, np.repeat(above[nz] - np.cumsum(cnt) + cnt, cnt) + np.arange(at.size)


def _desired(
    ev: _Events,
    a: np.ndarray,
    ep: np.ndarray,
    c: float,
    window_s: float,
    panic_s: float,
    cap: np.ndarray,
    max_slot: int = 0,
) -> _Desired:
    """Knative-style desired replicas ``max(ceil(mean_stable / c), ceil(mean_panic / c))`` over time.

    The mean in-flight count over a window is ``(F(t) - F(t - W)) / W`` with ``F = ∫ N``, which is
    piecewise linear with breaks at events and events + W; it is evaluated at every event, and
    after quiet gaps at the panic and stable window lengths (between events the window means only
    decay), and held in between. Slot 1 is left to the exact level model (it is wanted exactly
    while a request was in flight within the window). ``a``/``ep`` sorted by (endpoint, time).

    Only the points where more than one replica may be wanted are evaluated: events are taken in
    blocks of :data:`_BLOCK`, and a window ending anywhere in a block holds at most
    ``F(next block's first event) - F(block's first event - W)``; where that bound keeps both
    means at or below one replica's target the desired count is at most 1, which asks for no slot
    ≥ 2, so those points are skipped. Each evaluated run of blocks is followed by one skipped
    point, which closes the intervals open at its end. The evaluated points and the values at
    them are exactly those of evaluating everywhere.
    """
    n = a.size
    empty = np.zeros(0, np.int64)
    if n == 0:
        return _Desired(empty, empty, np.zeros(0), np.zeros(0), empty, empty, 1, 1, np.full(n, -1, np.int64))
    big = ev.big
    k, f = _busy_integral(ev)
    m = k.size
    # Screen: a block can want a slot ≥ 2 only if a window ending in it holds more than c·window.
    b0 = np.arange(0, m, _BLOCK)
    kb = k[b0]
    f_hi = f[np.minimum(b0 + _BLOCK, m - 1)]  # F is flat after the last event
    hot = np.zeros(b0.size, bool)
    for w in (window_s, panic_s):
        hot |= f_hi - _f_floor(f, kb, kb - w) > 0.999 * c * w
    if not hot.any():
        return _Desired(empty, empty, np.zeros(0), np.zeros(0), empty, empty, 1, 1, np.full(n, -1, np.int64))
    sel = np.repeat(hot, _BLOCK)[:m]
    sel[1:] |= sel[:-1]  # one more event after each run: its points want at most one replica
    j = np.flatnonzero(sel)
    kj = k[j]
    gap = k[np.minimum(j + 1, m - 1)] - kj
    if j[-1] == m - 1:
        gap[-1] = np.inf
    # The points of each selected event, in time order: the event, then after a quiet gap the
    # nearer and the farther of its panic and stable decay points (both after a gap longer than
    # either window). F at an event is f itself; at a decay point it is interpolated.
    quiet = gap > panic_s
    late = quiet & (gap > window_s)
    cnt = quiet.astype(np.int64) + late + 1
    pos = np.cumsum(cnt) - cnt
    p = np.empty(int(pos[-1] + cnt[-1]))
    fp = np.empty(p.size)
    p[pos] = kj
    fp[pos] = f[j]
    near, far = (panic_s, window_s) if window_s >= panic_s else (window_s, panic_s)
    for mask, dt, off in ((quiet, near, 1), (late, far, 2)):
        i = np.flatnonzero(mask)
        x = kj[i] + dt
        p[pos[i] + off] = x
        fp[pos[i] + off] = np.interp(x, k, f)
    mean_s = (fp - np.interp(p - window_s, k, f)) / window_s
    mean_p = (fp - np.interp(p - panic_s, k, f)) / panic_s
    e_p = np.floor(p / big).astype(np.int64)
    stable = np.ceil(mean_s / c - 1e-9)
    panic = np.ceil(mean_p / c - 1e-9)
    # Knative enters panic mode when the panic-window demand reaches twice the current capacity
    # (panic threshold 200 %); the stable desired count stands in for the current capacity.
    want = np.where(panic >= 2.0 * np.maximum(stable, 1.0), panic, stable).astype(np.int64)
    np.maximum(want, 0, out=want)
    if bool(np.any(cap < np.iinfo(np.int64).max)):
        np.minimum(want, cap[e_p], out=want)
    first = np.ones(p.size, bool)
    first[1:] = e_p[1:] != e_p[:-1]
    prev = np.roll(want, 1)
    prev[first] = 0
    up = np.maximum(want - np.maximum(prev, 1), 0)  # new slots ≥ 2 wanted at this point
    down = np.maximum(prev - np.maximum(want, 1), 0)
    ui, u_slot = _new_slots(up, np.maximum(prev, 1))
    di, d_slot = _new_slots(down, np.maximum(want, 1))
    n_slots = int(max(u_slot.max(initial=0), d_slot.max(initial=0), max_slot)) + 2
    span = p.size + 1
    s_key = (e_p[ui] * n_slots + u_slot) * span + ui
    f_key = (e_p[di] * n_slots + d_slot) * span + di
    so, fo = np.argsort(s_key, kind="stable"), np.argsort(f_key, kind="stable")
    if so.size != fo.size:  # pragma: no cover - an internal invariant
        raise RuntimeError(f"simulator: {so.size} desired-slot starts but {fo.size} ends")
    s_key, f_key = s_key[so], f_key[fo]
    start_i, end_i = ui[so], di[fo]
    g = s_key // span
    # an arrival's own point when it was evaluated (points of equal time want the same), -1
    # otherwise: then its block wants at most one replica and no interval of slot ≥ 2 is open
    point_of = np.full(m, -1, np.int64)
    point_of[j] = pos
    return _Desired(
        g // n_slots,
        g % n_slots,
        p[start_i] - e_p[start_i] * big,
        p[end_i] - e_p[end_i] * big,
        s_key,
        end_i,
        span,
        n_slots,
        point_of[ev.arr_pos],
    )


def _segmented_cummax(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` that restarts where ``first`` is True (values ≥ 0)."""
    if values.size == 0:
        return values.copy()
    gid = np.cumsum(first) - 1
    big = 2.0 ** math.ceil(math.log2(float(values.max()) + 2.0))
    off = gid * big
    return np.maximum.accumulate(values + off) - off


_EMPTY_F = np.zeros(0)
_EMPTY_I = np.zeros(0, np.int64)


@dataclass(frozen=True)
class _Runs:
    ready: np.ndarray  # per need interval: time the slot is ready (-inf when warm)
    billed_s: float
    cold_starts: int
    # per run (one replica from its cold start to its removal), in (slot group, start) order;
    # empty for the histogram policy's first slot, whose readiness is known per request
    run_ep: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    run_slot: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    run_start: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    run_ready: np.ndarray = field(default_factory=lambda: _EMPTY_F)  # clipped to the horizon
    run_end: np.ndarray = field(default_factory=lambda: _EMPTY_F)  # clipped to the horizon
    iv: np.ndarray = field(
        default_factory=lambda: _EMPTY_I
    )  # the need intervals the runs cover (indices), in run order
    iv_run: np.ndarray = field(default_factory=lambda: _EMPTY_I)  # run of each of them


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
    run_start = s[cold]
    return _Runs(
        ready,
        float(np.sum(np.maximum(run_end - run_start, 0.0))),
        int(cold.sum()),
        lv.g_ep[idx][cold],
        lv.g_slot[idx][cold],
        run_start,
        np.minimum(run_start + t_cold, horizon),
        np.maximum(run_end, np.minimum(run_start, horizon)),
        idx,
        run,
    )


def _segment_cumsum(x: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Inclusive running sum of ``x`` that restarts where ``first`` is True (``first[0]`` True)."""
    cs = np.cumsum(x, dtype=np.float64)
    starts = np.flatnonzero(first)
    offset = cs[starts] - x[starts]
    return cs - np.repeat(offset, np.diff(np.append(starts, x.size)))


def _ses_forecast(gap: np.ndarray, has: np.ndarray, first: np.ndarray, want: np.ndarray, alpha: float) -> np.ndarray:
    """Simple exponential smoothing of each endpoint's idle times, read after each interval:
    ``level = α·x + (1 − α)·level``, starting at the first idle time. This is the forecast of an
    ARIMA(0,1,1) model with θ = 1 − α. Evaluated only for the endpoints with an interval in
    ``want`` (those whose idle times fall mostly beyond the histogram: a handful per day each)."""
    out = np.full(gap.size, np.nan)
    seg = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:], gap.size)
    for sg in np.unique(seg[want]):
        level = np.nan
        for k in range(int(starts[sg]), int(ends[sg])):
            if has[k]:
                level = gap[k] if np.isnan(level) else alpha * gap[k] + (1.0 - alpha) * level
            out[k] = level
    return out


def _histogram_windows(
    lv: _Levels, idx: np.ndarray, pol: HistogramKeepAlive
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pre-warm and keep-alive windows in force after each slot-1 need interval ``idx`` (ordered),
    and which rule set them (0 fallback keep-alive, 1 histogram, 2 forecast).

    As in the paper the histogram is updated at every idle time: the windows after an interval
    use the endpoint's idle times observed up to its start (no look-ahead). Per endpoint:

    - more than ``max_out_of_bounds`` of the idle times beyond ``range_s``: the next idle time is
      forecast (simple exponential smoothing, see :func:`_ses_forecast`; the paper fits ARIMA)
      and the replica is pre-warmed ``forecast_margin`` before it and kept ``forecast_margin``
      after it;
    - fewer than ``min_samples`` idle times in range, or a bin-count CV below ``cv_threshold``
      (the histogram is not representative): the fixed ``fallback_keep_alive_s``;
    - otherwise pre-warm = the ``prewarm_percentile`` of idle time (lower edge of its bin, less
      ``margin``), keep-alive to the ``keepalive_percentile`` (upper edge, plus ``margin``).
    """
    s, e, ep = lv.start[idx], lv.end[idx], lv.g_ep[idx]
    m = idx.size
    n_bins = math.ceil(pol.range_s / pol.bin_s)
    first = np.ones(m, bool)
    first[1:] = ep[1:] != ep[:-1]
    has = ~first  # the idle time ending at interval k, observed when it starts
    gap = np.where(has, s - np.roll(e, 1), 0.0)
    b = np.where(has, np.minimum((gap / pol.bin_s).astype(np.int64), n_bins), -1)
    inb = has & (b < n_bins)
    n_in = _segment_cumsum(inb.astype(np.float64), first)
    n_oob = _segment_cumsum((has & ~inb).astype(np.float64), first)
    total = n_in + n_oob
    # sum of squared bin counts, kept up to date: an idle time landing in a bin that already
    # holds r adds 2r + 1
    seg = np.cumsum(first) - 1
    pin = np.flatnonzero(inb)
    key = seg[pin] * (n_bins + 1) + b[pin]
    order = np.argsort(key, kind="stable")
    ks = key[order]
    gstart = np.flatnonzero(np.concatenate(([True], ks[1:] != ks[:-1])))
    rank = np.arange(ks.size) - np.repeat(gstart, np.diff(np.append(gstart, ks.size)))
    inc = np.zeros(m)
    inc[pin[order]] = 2.0 * rank + 1.0
    sq = _segment_cumsum(inc, first)
    mean = n_in / n_bins
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.where(mean > 0, np.sqrt(np.maximum(sq / n_bins - mean**2, 0.0)) / mean, 0.0)
        oob_frac = np.where(total > 0, n_oob / total, 0.0)
    # head and tail bins of each prefix histogram: the first bin whose cumulative count reaches
    # the percentile (one running count per bin that holds any idle time)
    # the first bin whose cumulative count reaches the percentile; the bins are walked upwards and
    # only the intervals whose tail is not found yet are counted (most are done after a bin or two)
    head = np.full(m, -1, np.int64)
    tail = np.full(m, -1, np.int64)
    h_thr = pol.prewarm_percentile / 100.0 * n_in
    t_thr = pol.keepalive_percentile / 100.0 * n_in
    seg_first = np.flatnonzero(first)[seg]  # first interval of each interval's endpoint
    by_bin = pin[np.argsort(b[pin], kind="stable")]  # in-range idle times by (bin, position)
    bins_sorted = b[by_bin]
    cuts = np.flatnonzero(np.concatenate(([True], bins_sorted[1:] != bins_sorted[:-1], [True])))
    running = np.zeros(m)
    k = np.flatnonzero(n_in > 0)
    for c0, c1 in itertools.pairwise(cuts.tolist()):
        if not k.size:
            break
        bb = bins_sorted[c0]
        pos = by_bin[c0:c1]  # positions of this bin's idle times, ascending
        running[k] += np.searchsorted(pos, k, side="right") - np.searchsorted(pos, seg_first[k], side="left")
        rk = running[k]
        hit_h = (head[k] < 0) & (rk >= h_thr[k])
        head[k[hit_h]] = bb
        hit_t = rk >= t_thr[k]
        tail[k[hit_t]] = bb
        k = k[~hit_t]
    prewarm = np.maximum(head, 0) * pol.bin_s * (1.0 - pol.margin)
    keep = np.maximum((tail + 1) * pol.bin_s * (1.0 + pol.margin) - prewarm, 0.0)
    good = (n_in >= pol.min_samples) & (cv >= pol.cv_threshold)
    forecast = (total > 0) & (oob_frac > pol.max_out_of_bounds)
    rule = np.where(forecast, 2, np.where(good, 1, 0))
    pw = np.where(rule == 1, prewarm, 0.0)
    ka = np.where(rule == 1, keep, pol.fallback_keep_alive_s)
    if forecast.any():
        f = _ses_forecast(gap, has, first, forecast, pol.forecast_alpha)
        pw = np.where(forecast, f * (1.0 - pol.forecast_margin), pw)
        ka = np.where(forecast, f * 2.0 * pol.forecast_margin, ka)
    return pw, ka, rule


def _histogram_runs(
    lv: _Levels, idx: np.ndarray, pol: HistogramKeepAlive, t_cold: float, horizon: float, n_endpoints: int
) -> _Runs:
    """Slot-1 billing and readiness under pre-warm/keep-alive windows (the paper's semantics, with
    the load started ``t_cold`` early so the replica is ready when the pre-warm window opens)."""
    ready = np.full(lv.start.size, -np.inf)
    if idx.size == 0:
        return _Runs(ready, 0.0, 0)
    s, e, ep = lv.start[idx], lv.end[idx], lv.g_ep[idx]
    pw, ka, _ = _histogram_windows(lv, idx, pol)
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
    busy_s: float = 0.0,
    ep: np.ndarray | None = None,
) -> PolicyResult:
    n = trace.n_requests
    p50, p95, p99 = _percentiles(lat_s)
    app_med = app_q3 = 0.0
    if cold is not None and ep is not None and n:
        per_ep = np.bincount(ep, minlength=trace.n_endpoints)
        frac = (
            np.bincount(ep, weights=cold.astype(np.float64), minlength=trace.n_endpoints)[per_ep > 0]
            / per_ep[per_ep > 0]
        )
        app_med, app_q3 = (float(x) for x in np.percentile(frac, [50, 75]))
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
        idle_gpu_hours=max(billed_s - busy_s, 0.0) / 3600.0,
        app_cold_start_median=app_med,
        app_cold_start_q3=app_q3,
    )


def _oracle_start_s(a: np.ndarray, ep: np.ndarray, end: np.ndarray, start_s: float) -> float:
    """Start cost of the oracle: per endpoint, one start plus ``min(gap, start_s)`` per idle gap.

    ``a``, ``ep``, ``end`` are in (endpoint, time) order; a gap is the time between the end of a
    busy period (the running maximum of request ends) and the next arrival on the same endpoint.
    """
    if start_s <= 0 or a.size == 0:
        return 0.0
    first = np.r_[True, ep[1:] != ep[:-1]]  # the first request of each endpoint
    seg = np.cumsum(first) - 1
    # running max of ends within each endpoint: offset each endpoint above the previous ones' ends
    offset = seg * (float(end.max()) + 1.0)
    run_end = np.maximum.accumulate(end + offset) - offset
    gaps = a[1:] - run_end[:-1]
    gaps = gaps[~first[1:] & (gaps > 0)]
    return float(first.sum() * start_s + np.minimum(gaps, start_s).sum())


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
        starts = _oracle_start_s(a, ep, np.minimum(a + st, horizon), policy.start_s)
        return _result(
            policy,
            trace,
            billed_s=float(busy + starts),
            usd_per_s=node_s,
            lat_s=st,
            cold=None,
            queued=None,
            slo_ms=slo_ms,
            cold_starts=0,
            setting=setting or "lower bound",
        )

    ev0 = None  # events of the first pass, when sizing static replicas has them already
    if isinstance(policy, StaticPeak):
        peak, ev0 = _static_peak(a, ep, st, trace.n_endpoints, policy.window_s)
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

    bounded = bool(np.any(max_e < np.iinfo(np.int64).max))
    fixed = bool(np.all(min_e == max_e))  # every slot always up: only the levels matter
    slots = "first" if window is not None else "all"
    # The demand the arrivals make, before anyone waits: every request stays one service time.
    d0 = a + st
    d0_max = float(d0.max(initial=0.0))
    if ev0 is None:
        ev0 = _events(a, ep, d0, _key_scale(d0_max))
    busy_s = _busy_replica_seconds(ev0, c, max_e, horizon)
    dz: _Desired | None = None
    runs_hi: _Runs | None = None
    if window is not None and not fixed:
        # Replicas beyond the first follow the windowed desired count of that demand. Requests held
        # while a replica starts wait for capacity already on its way; counting them would ask for
        # replicas the arrivals never needed (a burst held through a 140 s node start multiplies the
        # in-flight count by the hold time, and each extra replica starts cold and holds more).
        big_w = _key_scale(d0_max, window[0])
        ev_w = ev0 if big_w == ev0.big else _events(a, ep, d0, big_w)
        dz = _desired(ev_w, a, ep, c * target_util, window[0], window[1], max_e)
        dz_bill = (dz.g_slot >= min_e[dz.g_ep]) & (dz.g_slot < max_e[dz.g_ep])
        runs_hi = _keepalive_runs(dz, dz_bill, keep2, t_cold, horizon)

    def bill(wait: np.ndarray) -> _Pass:
        """Levels, runs and the billed seconds of stays ``a + wait + S``."""
        if wait.any():
            d = a + (wait + st)  # the order of the sums the pinned figures were made with
            ev = _events(a, ep, d, _key_scale(float(d.max(initial=0.0))))
        else:
            ev = ev0
        r_slot = (ev.level // c).astype(np.int64)
        if fixed:
            return _Pass(ev, None, _Runs(np.zeros(0), 0.0, 0), np.full(a.size, -np.inf), r_slot, 0.0, 0)
        lv = _levels(ev, a, ep, c, max_e if bounded else None, slots)
        slot = lv.g_slot
        billable = (slot >= min_e[lv.g_ep]) & (slot < max_e[lv.g_ep])
        first_only = billable & (slot == 0) if window is not None else billable
        if isinstance(policy, HistogramKeepAlive):
            runs = _histogram_runs(lv, np.flatnonzero(first_only), policy, t_cold, horizon, trace.n_endpoints)
        else:
            runs = _keepalive_runs(lv, first_only, np.where(slot == 0, keep1, keep2), t_cold, horizon)
        billed, starts = runs.billed_s, runs.cold_starts
        if runs_hi is not None:
            billed += runs_hi.billed_s
            starts += runs_hi.cold_starts
        if isinstance(policy, ServerlessPerRequest):
            billed = _serverless_billed(policy, lv, runs, horizon)
        return _Pass(ev, lv, runs, runs.ready[lv.req_interval0], r_slot, billed, starts)

    def waits(ps: _Pass) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Wait, cold-start flag and queued flag of every request under the runs of ``ps``."""
        level, r_slot, ready0 = ps.ev.level, ps.r_slot, ps.ready0
        r_min, r_max = min_e[ep], max_e[ep]
        # Most requests find a place on the first replica (slot 1): they wait only for it to be
        # ready, and such a wait is a cold-start wait.
        first_slot = (r_slot == 0) & (r_max > 0)
        wait = np.where(r_min > 0, 0.0, np.maximum(ready0 - a, 0.0))
        cold = wait > 0
        queued = np.zeros(a.size, bool)
        g = np.flatnonzero(~first_slot)
        if not g.size:
            return wait, cold, queued
        rs_g = r_slot[g]
        if ps.lv is None:  # every slot always up
            r_ready, no_slot = np.full(g.size, -np.inf), np.zeros(g.size, bool)
            n_up, t_next = np.minimum(rs_g, r_max[g]), np.full(g.size, np.inf)
        else:
            if dz is not None and runs_hi is not None:
                hit = _desired_lookup(dz, ep, r_slot)[g]
                ready_hi = np.where(
                    hit >= 0, runs_hi.ready[np.maximum(hit, 0)] if runs_hi.ready.size else np.inf, np.inf
                )
                r_ready = np.where(rs_g == 0, ready0[g], ready_hi)
                no_slot = (rs_g > 0) & (hit < 0)  # the autoscaler does not want this replica yet
                hi_runs = runs_hi
            else:
                iv = ps.lv.req_interval if ps.lv.req_interval is not None else ps.lv.req_interval0
                r_ready, no_slot = ps.runs.ready[iv[g]], np.zeros(g.size, bool)
                hi_runs = ps.runs
            n_up, t_next = _replicas_up(hi_runs, ep[g], a[g], ready0[g], r_min[g], horizon)
        return _scatter(
            (wait, cold, queued),
            g,
            _higher_slot_waits(
                a[g], st[g], level[g], rs_g, r_min[g], r_max[g], c, ready0[g], r_ready, no_slot, n_up, t_next
            ),
        )

    # Waits lengthen stays, so the runs are recomputed with the waits of the previous pass; the
    # bill is always that of the runs built with the waits reported (a pass whose waits repeat
    # the previous ones is consistent and ends the loop).
    wait = np.zeros(a.size)
    ps = bill(wait)
    cold = queued = np.zeros(a.size, bool)
    for i in range(passes):
        new_wait, cold, queued = waits(ps)
        if np.array_equal(new_wait, wait):
            break
        wait = new_wait
        if fixed and i == passes - 1:
            break  # every slot always up: the bill does not depend on the waits
        ps = bill(wait)
    billed = ps.billed_s + float(min_e.sum()) * horizon
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
        cold_starts=ps.cold_starts,
        setting=setting,
        extra=extra,
        busy_s=busy_s,
        ep=ep,
    )


@dataclass(frozen=True)
class _Pass:
    """One evaluation of the runs for given waits."""

    ev: _Events
    lv: _Levels | None
    runs: _Runs
    ready0: np.ndarray  # (n,) when each request's first replica is ready (-inf: warm)
    r_slot: np.ndarray  # (n,) 0-based slot each request lands on
    billed_s: float
    cold_starts: int


def _scatter(
    into: tuple[np.ndarray, np.ndarray, np.ndarray], g: np.ndarray, values: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for arr, v in zip(into, values, strict=True):
        arr[g] = v
    return into


def _busy_replica_seconds(ev: _Events, c: int, max_e: np.ndarray, horizon: float) -> float:
    """Replica-seconds the arrivals keep busy: ``∫ min(ceil(N / c), max_scale) dt`` over the
    horizon with the in-flight count ``N`` of stays of one service time (no waits). Billed time
    beyond it is idle: boot, keep-alive, pre-warm (the paper's wasted memory time)."""
    k = ev.sorted_keys
    if k.size < 2:
        return 0.0
    e_k = np.floor(k / ev.big).astype(np.int64)
    t = np.minimum(k - e_k * ev.big, horizon)
    n = ev.n_after[:-1].astype(np.int64)
    rep = np.minimum(-(-n // c), max_e[e_k[:-1]])
    return float(np.sum(np.diff(t) * rep))  # the last event of each endpoint leaves N = 0


def _replicas_up(
    runs: _Runs, ep: np.ndarray, a: np.ndarray, ready0: np.ndarray, r_min: np.ndarray, horizon: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per request: how many of its endpoint's replicas are up (ready) at its arrival, and when
    the next one becomes ready (inf: none is starting). Counts slot 1 (ready at ``ready0``), the
    always-up ``min_scale`` slots and every run of a higher slot between its ready time and its end."""
    big = _key_scale(horizon)
    sel = runs.run_slot >= 1
    rk = np.sort(runs.run_ep[sel] * big + runs.run_ready[sel])
    ek = np.sort(runs.run_ep[sel] * big + runs.run_end[sel])
    ak = ep * big + a
    n_ready = np.searchsorted(rk, ak, side="right")
    hi_up = n_ready - np.searchsorted(ek, ak, side="right")
    nxt = np.minimum(n_ready, max(rk.size - 1, 0))
    t_next = np.full(a.size, np.inf)
    if rk.size:
        same = (n_ready < rk.size) & (np.floor(rk[nxt] / big).astype(np.int64) == ep)
        t_next = np.where(same, rk[nxt] - ep * big, np.inf)
    slot0_up = (r_min >= 1) | (ready0 <= a)
    t_next = np.where(slot0_up, t_next, np.minimum(t_next, ready0))
    return slot0_up.astype(np.int64) + np.maximum(r_min - 1, 0) + hi_up, t_next


def _serverless_billed(policy: ServerlessPerRequest, lv: _Levels, runs: _Runs, horizon: float) -> float:
    """Serverless billed seconds, rounded per instance as Cloud Run documents it.

    Cloud Run bills "only for the resources you use, rounded up to the nearest 100 millisecond"
    (https://cloud.google.com/run/pricing). Instance-based billing charges "the entire lifecycle
    of instances"; request-based billing charges instances "only when they process requests, when
    they start, and when they shut down" (https://cloud.google.com/run/docs/configuring/billing-settings).
    So: instance-based, each instance's lifetime from its start to its removal, rounded up to
    ``billing_increment_s``; request-based, each instance's serving periods (its need intervals:
    the first one of a cold instance begins with the request that started it, so it holds the
    start-up once) plus any start-up it did not spend serving, each rounded up. Shutdown time is
    not modelled (0).
    """
    inc = policy.billing_increment_s

    def up(x: np.ndarray) -> np.ndarray:
        return np.ceil(x / inc - 1e-9) * inc if inc > 0 else x

    if policy.billing == "instance":
        return float(up(np.maximum(runs.run_end - runs.run_start, 0.0)).sum())
    iv, run = runs.iv, runs.iv_run
    if iv.size == 0:
        return 0.0
    s = np.minimum(lv.start[iv], horizon)
    e = np.minimum(lv.end[iv], horizon)
    serve = np.maximum(e - s, 0.0)
    # start-up not spent serving: a cold instance whose first requests were served by another
    # replica before it was ready (it is billed from its start to ready all the same)
    covered = runs.run_start.copy()
    during = s < runs.run_ready[run]
    np.maximum.at(covered, run[during], e[during])
    boot_extra = np.maximum(runs.run_ready - covered, 0.0)
    return float(up(serve).sum() + up(boot_extra).sum())


def _higher_slot_waits(
    a: np.ndarray,
    st: np.ndarray,
    level: np.ndarray,
    r_slot: np.ndarray,
    r_min: np.ndarray,
    r_max: np.ndarray,
    c: int,
    ready0: np.ndarray,
    r_ready: np.ndarray,
    no_slot: np.ndarray,
    n_up: np.ndarray,
    t_next: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wait, cold-start flag and queued flag of requests that arrive above the first replica's
    capacity or above ``max_scale``: per request, its arrival, service time, level, slot, the
    endpoint's min/max scale, when slot 1 and its own slot are ready, whether the autoscaler
    wants its slot at all, how many replicas are up at its arrival and when the next is ready."""
    over = r_slot >= r_max
    # A request above the capacity of the replicas below its slot queues FIFO behind
    # (level - capacity + 1) others, where capacity counts only the replicas that are up; they
    # serve one request every S / capacity. When one more replica becomes ready before its turn,
    # the queue drains faster from then on. It is served by whichever comes first: a freed place
    # or its own replica.
    below = np.minimum(r_slot, r_max)
    up = np.minimum(n_up, below)
    q = (level - up * c + 1).astype(np.float64)
    rate = up * c / st  # departures per second now
    with np.errstate(divide="ignore", invalid="ignore"):
        w_now = np.where(up > 0, q / np.where(up > 0, rate, 1.0), np.inf)
        up2 = np.minimum(up + 1, below)
        dt = np.maximum(t_next - a, 0.0)
        step = (up2 > up) & np.isfinite(t_next) & (w_now > dt)
        left = np.maximum(q - np.where(step, dt, 0.0) * rate, 0.0)
        w_step = dt + left * st / np.maximum(up2 * c, 1)
    w_free = np.where(step, w_step, w_now)
    w = np.where(r_slot == 0, r_ready - a, np.minimum(r_ready - a, w_free))
    w = np.where(r_slot < r_min, 0.0, np.maximum(w, 0.0))
    wait = np.where(over | no_slot, np.maximum(w_free, 0.0), w)
    # a cold-start wait: slot 1 was booting, or the request was served by a replica that
    # finished booting before a place freed up (otherwise it only queued)
    served_by_new = (r_ready > a) & (r_ready - a <= w_free) & ~no_slot & ~over
    booting = served_by_new | ((r_slot == 0) & (r_ready > a)) | (ready0 > a)
    cold = (wait > 0) & booting
    return wait, cold, (wait > 0) & ~cold


def _per_endpoint(lo: int, hi: int | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full(n, lo, np.int64), np.full(n, np.iinfo(np.int64).max if hi is None else hi, np.int64)


def _windowed_peak(
    a: np.ndarray, ep: np.ndarray, st: np.ndarray, n_endpoints: int, window_s: float, ev: _Events | None = None
) -> np.ndarray:
    """Per endpoint, the maximum over t of the mean in-flight count over ``[t - window_s, t]``.

    The busy integral ``F(t) = ∫ N`` is piecewise linear with breaks at arrivals and departures,
    so ``F(t) - F(t - W)`` peaks where ``t`` or ``t - W`` is a break: evaluating at both sets is exact.
    ``a``/``ep`` sorted by (endpoint, time); ``ev``, when given, are their events with stays ``st``
    keyed with ``_key_scale(max(a + st), window_s)``.
    """
    n = a.size
    if n == 0:
        return np.zeros(n_endpoints)
    if ev is None:
        d = a + st
        ev = _events(a, ep, d, _key_scale(float(d.max()), window_s))
    k, f = _busy_integral(ev)
    m, w = k.size, window_s
    # Screen blocks of events: the window means at a block start bound each endpoint's peak from
    # below, the block's extreme F values bound every window ending or starting in it from above;
    # a block of one endpoint whose bound stays below that endpoint's lower bound cannot hold its
    # peak. The peak is then the maximum over the remaining events, as if taken over all.
    b0 = np.arange(0, m, _BLOCK)
    bl = np.minimum(b0 + _BLOCK - 1, m - 1)
    kb, fb, kl = k[b0], f[b0], k[bl]
    upper = np.maximum(f[bl] - _f_floor(f, kb, kb - w), _f_ceil(f, kb, kl + w) - fb)
    lower = fb - _f_ceil(f, kb, kb - w)
    e0, e1 = (kb / ev.big).astype(np.int64), (kl / ev.big).astype(np.int64)
    lower_ep = np.zeros(n_endpoints)
    np.maximum.at(lower_ep, e0, lower)
    margin = 1e-6 + 1e-9 * float(f[-1])  # far above the rounding of F, far below any window's content
    keep = (e0 != e1) | (upper >= lower_ep[e0] - margin)
    j = np.flatnonzero(np.repeat(keep, _BLOCK)[:m])
    kj, fj = k[j], f[j]
    # windows ending at each event, and windows starting at each event (ending W later); keys
    # are (endpoint, time) so a window never reaches into a neighbouring endpoint: F is flat there
    busy = np.interp(kj + w, k, f) - fj
    np.maximum(busy, fj - np.interp(kj - w, k, f), out=busy)
    ej = (kj / ev.big).astype(np.int64)
    bounds = np.flatnonzero(np.concatenate(([True], ej[1:] != ej[:-1])))
    peak = np.zeros(n_endpoints)
    peak[ej[bounds]] = np.maximum.reduceat(busy, bounds) / window_s
    return peak


def _static_peak(
    a: np.ndarray, ep: np.ndarray, st: np.ndarray, n_endpoints: int, window_s: float
) -> tuple[np.ndarray, _Events | None]:
    """Per endpoint, the peak in-flight count (``window_s`` ≤ 0) or the peak of its ``window_s``
    mean, and the events of the first pass when they can be reused (same key scale)."""
    if a.size == 0:
        return np.zeros(n_endpoints), None
    d = a + st
    d_max = float(d.max())
    big = _key_scale(d_max)
    if window_s <= 0:
        ev = _events(a, ep, d, big)
        per_ep = np.bincount(ep, minlength=n_endpoints)
        has = per_ep > 0
        bounds = np.concatenate(([0], np.cumsum(per_ep)[:-1]))[has]
        peak = np.zeros(n_endpoints, np.int64)
        peak[has] = np.maximum.reduceat(ev.level, bounds) + 1
        return peak, ev
    ev_w = _events(a, ep, d, _key_scale(d_max, window_s))
    return _windowed_peak(a, ep, st, n_endpoints, window_s, ev_w), (ev_w if ev_w.big == big else None)
