"""The demo's traffic day: a synthetic 24 h trace, compressed into about a minute and replayed.

Pure parts (no I/O except reading the event log):

- :class:`DaySpec` → :func:`traffic_day`: a seeded 24 h trace from the simulator's generator
  (``gpuplane.simulate.synthetic_trace``): diurnal rate, Gamma inter-arrivals, bursts.
- :func:`compress_day`: the replay schedule. Trace time is divided by one constant speed-up
  (``duration / wall_seconds``), so shapes (diurnal curve, bursts, quiet night) are kept and a
  gap of ``g`` trace seconds becomes ``g / speedup`` wall seconds. Only the arrival times are
  compressed: service times and cold starts in the replay are real (wall) seconds.
- :func:`scale_to_zero_gaps`: the gaps of the schedule long enough for the activator to stop
  the server (idle period plus a margin for its idle check), i.e. where a cold start is expected.
- :func:`held_out_examples`: request payloads from held-out users' histories (the same user split
  as the trainer, ``is_held_out``), each with the item that really came next, so the replay
  measures the online hit rate as well as latency.
- :func:`classify_cold`: which requests were held by the activator, from a polled timeline of
  the activator's upstream state.

The replayer (:func:`replay`) is open-loop: request ``i`` is sent at ``send_at_s[i]`` whatever
happened to earlier ones (as real users do), over one keep-alive ``httpx.AsyncClient``, while a
poller samples ``/activator/status``. It does not judge the results; callers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gpuplane.simulate.traffic import DAY_S, Trace, TrafficSpec, synthetic_trace

HELD_OUT_FRACTION = 0.1
"""Share of users the trainer holds out (``workloads.training`` ``--eval-fraction`` default)."""


@dataclass(frozen=True)
class DaySpec:
    """One synthetic day of requests to the recommendation endpoint."""

    requests: float = 600.0
    """Expected requests over the day (the mean rate is this / 86 400 s). Compressed into about a
    minute this peaks near 50 requests/s, which one CPU model server behind the activator serves
    without queueing on a busy 2-core host."""
    peak_to_mean: float = 3.0
    """Diurnal peak / mean rate; the night trough is then close to zero (a retailer's night)."""
    cv: float = 2.0
    """Coefficient of variation of inter-arrival gaps (1 = Poisson; 2 = bursty, as LLM traffic)."""
    bursts_per_day: float = 4.0
    burst_duration_s: float = 1800.0
    burst_multiplier: float = 2.5
    seed: int = 0

    def traffic_spec(self) -> TrafficSpec:
        return TrafficSpec(
            mean_rps=self.requests / DAY_S,
            peak_to_mean=self.peak_to_mean,
            cv=self.cv,
            duration_s=DAY_S,
            bursts_per_day=self.bursts_per_day,
            burst_duration_s=self.burst_duration_s,
            burst_multiplier=self.burst_multiplier,
            seed=self.seed,
        )


def traffic_day(spec: DaySpec) -> Trace:
    """The 24 h trace of ``spec`` (one endpoint), in trace seconds."""
    if spec.requests <= 0:
        raise ValueError(f"DaySpec: requests={spec.requests} must be > 0")
    return synthetic_trace(spec.traffic_spec())


@dataclass(frozen=True)
class Schedule:
    """When to send each request of a trace in a compressed replay."""

    trace: Trace
    """The trace being replayed (trace seconds)."""
    speedup: float
    """Trace seconds per wall second."""
    send_at_s: np.ndarray
    """Wall seconds from the replay start at which request ``i`` is sent (sorted)."""

    @property
    def wall_seconds(self) -> float:
        return self.trace.duration_s / self.speedup

    def clock(self, wall_s: float) -> str:
        """Trace time of day at ``wall_s`` into the replay, ``HH:MM``."""
        t = (wall_s * self.speedup) % DAY_S
        return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}"

    def rate_per_bin(self, bin_wall_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(bin starts, requests per wall second) over the replay, for plots."""
        n = max(1, math.ceil(self.wall_seconds / bin_wall_s))
        idx = np.minimum((self.send_at_s / bin_wall_s).astype(np.int64), n - 1)
        return np.arange(n) * bin_wall_s, np.bincount(idx, minlength=n) / bin_wall_s


def compress_day(trace: Trace, wall_seconds: float) -> Schedule:
    """Replay ``trace`` in ``wall_seconds``: every arrival time is divided by the same speed-up."""
    if not wall_seconds > 0:
        raise ValueError(f"compress_day: wall_seconds={wall_seconds} must be > 0")
    speedup = trace.duration_s / wall_seconds
    return Schedule(trace=trace, speedup=speedup, send_at_s=np.asarray(trace.times_s, dtype=np.float64) / speedup)


def scale_to_zero_gaps(schedule: Schedule, idle_seconds: float, margin_s: float = 1.0) -> np.ndarray:
    """Indices ``i`` of requests preceded by a gap longer than ``idle_seconds + margin_s`` (wall).

    Those are where the activator should have stopped the server, so request ``i`` starts it
    again. The first request always finds the server stopped and is not counted here. The margin
    covers the activator's idle check interval and the server's drain; a cold start itself
    shortens the next gap, so this is an expectation, not a measurement.
    """
    gaps = np.diff(schedule.send_at_s)
    return np.flatnonzero(gaps > idle_seconds + margin_s) + 1


# ---------------------------------------------------------------------------------------------
# Request payloads


@dataclass(frozen=True)
class Example:
    """One inference request from a held-out user: their recent items and what came next."""

    user_id: int
    history: tuple[int, ...]
    """Item ids, oldest first, at most the model's block size (repeats collapsed, as in training)."""
    target: int
    """The item the user moved to next, in the event log."""


def is_held_out(user_id: np.ndarray, fraction: float) -> np.ndarray:
    """The trainer's user split (``workloads.training.data.is_held_out``; a test keeps them equal).

    Repeated here so that the demo process does not import torch just to pick request payloads.
    """
    h = (user_id.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return (h.astype(np.float64) / 2**32) < fraction


def examples_from_events(
    user_ids: np.ndarray, item_ids: np.ndarray, block_size: int, fraction: float = HELD_OUT_FRACTION
) -> list[Example]:
    """Every (history, next item) position of held-out users, from events sorted by time.

    A user's history is their item ids in time order with consecutive repeats collapsed.
    """
    if block_size < 1:
        raise ValueError(f"block_size={block_size} must be ≥ 1")
    user_ids = np.asarray(user_ids, dtype=np.int64)
    item_ids = np.asarray(item_ids, dtype=np.int64)
    mask = is_held_out(user_ids, fraction)
    users, items = user_ids[mask], item_ids[mask]
    order = np.argsort(users, kind="stable")  # per user, time order is kept
    users, items = users[order], items[order]
    out: list[Example] = []
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if users.size else np.array([], dtype=np.int64)
    for s, e in zip(starts, np.r_[starts[1:], users.size], strict=True):
        seq = items[s:e]
        seq = seq[np.r_[True, seq[1:] != seq[:-1]]]
        for j in range(1, seq.size):
            out.append(Example(int(users[s]), tuple(int(x) for x in seq[max(0, j - block_size) : j]), int(seq[j])))
    return out


def held_out_examples(data_dir: Path, block_size: int, fraction: float = HELD_OUT_FRACTION) -> list[Example]:
    """:func:`examples_from_events` over ``data_dir/events.parquet`` (workloads.data.generate)."""
    import pyarrow.parquet as pq

    table = pq.read_table(data_dir / "events.parquet", columns=["user_id", "item_id"])
    return examples_from_events(
        table.column("user_id").to_numpy(), table.column("item_id").to_numpy(), block_size, fraction
    )


def pick_examples(examples: Sequence[Example], n: int, seed: int) -> list[Example]:
    """``n`` examples drawn uniformly with replacement (seeded)."""
    if not examples:
        raise ValueError("no held-out examples: generate more users or days")
    rng = np.random.default_rng(seed)
    return [examples[i] for i in rng.integers(0, len(examples), n)]


def infer_body(example: Example, k: int = 10, *, by_user: bool = False) -> dict[str, object]:
    """The OIP v2 request for one example: ``item_ids`` INT64 [1, len], or with ``by_user`` the
    ``user_id`` INT64 [1] (the server reads the history from the feature store); and ``k``."""
    first: dict[str, object] = (
        {"name": "user_id", "datatype": "INT64", "shape": [1], "data": [example.user_id]} if by_user else
        {"name": "item_ids", "datatype": "INT64", "shape": [1, len(example.history)], "data": list(example.history)}
    )
    return {
        "id": f"u{example.user_id}",
        "inputs": [first, {"name": "k", "datatype": "INT64", "shape": [1], "data": [k]}],
        "outputs": [{"name": "top_items"}],
    }


# ---------------------------------------------------------------------------------------------
# Measurements


def classify_cold(send_s: np.ndarray, obs_t: np.ndarray, obs_ready: np.ndarray) -> np.ndarray:
    """Whether each request was held by the activator (a cold request).

    ``obs_t`` (sorted) and ``obs_ready`` are the polled timeline: at ``obs_t[j]`` the upstream
    was ready (True) or stopped / starting / stopping (False). A request counts as cold when the
    first observation after it was sent shows the server not ready: it arrived while no server
    was up, or raced the idle stop. A request sent while a start was finishing and answered
    within one poll interval counts as warm. With no observation after it, the last one decides.
    """
    send_s = np.asarray(send_s, dtype=np.float64)
    obs_t = np.asarray(obs_t, dtype=np.float64)
    obs_ready = np.asarray(obs_ready, dtype=bool)
    if obs_t.size == 0:
        raise ValueError("classify_cold: no observations of the activator state")
    idx = np.minimum(np.searchsorted(obs_t, send_s, side="right"), obs_t.size - 1)
    return ~obs_ready[idx]


def state_intervals(obs_t: np.ndarray, obs_state: Sequence[str], state: str, end_s: float) -> list[tuple[float, float]]:
    """Intervals (start, end) during which the polled state was ``state``, for plots."""
    out: list[tuple[float, float]] = []
    start: float | None = None
    for t, r in zip(np.asarray(obs_t, dtype=np.float64), (s == state for s in obs_state), strict=True):
        if r and start is None:
            start = float(t)
        elif not r and start is not None:
            out.append((start, float(t)))
            start = None
    if start is not None:
        out.append((start, float(end_s)))
    return out


def start_durations(obs_t: np.ndarray, obs_state: Sequence[str]) -> list[float]:
    """Length of each observed ``starting`` period that ended ``ready`` (± one poll interval)."""
    out: list[float] = []
    began: float | None = None
    for t, s in zip(obs_t, obs_state, strict=True):
        if s == "starting" and began is None:
            began = float(t)
        elif s == "ready" and began is not None:
            out.append(float(t) - began)
            began = None
        elif s not in ("starting", "ready"):
            began = None
    return out


def latency_summary(latency_s: np.ndarray) -> dict[str, float | int]:
    """Count, p50, p95, p99 and max of latencies, in milliseconds (zeros when empty)."""
    lat = np.asarray(latency_s, dtype=np.float64)
    if lat.size == 0:
        return {"n": 0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    q = np.quantile(lat, [0.5, 0.95, 0.99]) * 1e3
    return {"n": int(lat.size), "p50_ms": float(q[0]), "p95_ms": float(q[1]), "p99_ms": float(q[2]),
            "max_ms": float(lat.max() * 1e3)}


# ---------------------------------------------------------------------------------------------
# The replayer


@dataclass
class ReplayResult:
    """What the client saw: one entry per request, plus the polled activator state."""

    send_s: np.ndarray
    """Wall seconds from the replay start at which each request was actually sent."""
    latency_s: np.ndarray
    """Send to full reply, seconds (NaN when no reply came)."""
    status: np.ndarray
    """HTTP status per request; 0 when the request failed without a reply."""
    hit: np.ndarray
    """Whether the example's next item is in the reply's top items."""
    errors: list[str] = field(default_factory=list)
    """The first few error texts (status and body, or the exception)."""
    obs_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    obs_state: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0


ProgressFn = Callable[[float, int, int, str], None]
"""(wall seconds into the replay, requests sent, total, activator state) → None."""


async def replay(
    base_url: str,
    model_name: str,
    schedule: Schedule,
    examples: Sequence[Example],
    *,
    k: int = 10,
    by_user: np.ndarray | None = None,
    poll_interval_s: float = 0.05,
    request_timeout_s: float = 120.0,
    progress: ProgressFn | None = None,
    progress_interval_s: float = 0.5,
) -> ReplayResult:
    """Send ``examples[i]`` at ``schedule.send_at_s[i]`` to ``base_url`` (an activator); by
    ``user_id`` where ``by_user[i]`` (those replies are not scored: the store's history of a
    user ends after the example's target)."""
    import httpx

    n = schedule.send_at_s.size
    if len(examples) != n:
        raise ValueError(f"replay: {len(examples)} examples for {n} scheduled requests")
    user = np.zeros(n, dtype=bool) if by_user is None else np.asarray(by_user, dtype=bool)
    if user.shape != (n,):
        raise ValueError(f"replay: by_user has shape {user.shape}, expected ({n},)")
    url = f"{base_url}/v2/models/{model_name}/infer"
    send_s = np.full(n, np.nan)
    latency = np.full(n, np.nan)
    status = np.zeros(n, dtype=np.int64)
    hit = np.zeros(n, dtype=bool)
    errors: list[str] = []
    obs_t: list[float] = []
    obs_state: list[str] = []
    now_state = ["unknown"]
    sent_count = [0]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(timeout=httpx.Timeout(request_timeout_s, connect=10.0), limits=limits) as client:
        t0 = time.perf_counter()

        async def one(i: int) -> None:
            sent = time.perf_counter()
            send_s[i] = sent - t0
            try:
                reply = await client.post(url, json=infer_body(examples[i], k, by_user=bool(user[i])))
            except httpx.HTTPError as exc:
                if len(errors) < 20:
                    errors.append(f"request {i}: {type(exc).__name__}: {exc}")
                return
            latency[i] = time.perf_counter() - sent
            status[i] = reply.status_code
            if reply.status_code != 200:
                if len(errors) < 20:
                    errors.append(f"request {i}: HTTP {reply.status_code}: {reply.text[:300]}")
                return
            try:
                outputs = {o["name"]: o for o in reply.json()["outputs"]}
                top = outputs["top_items"]["data"]
                hit[i] = not user[i] and examples[i].target in top
            except (ValueError, KeyError, TypeError) as exc:
                if len(errors) < 20:
                    errors.append(f"request {i}: unreadable reply ({exc}): {reply.text[:300]}")

        async def poll(stop: asyncio.Event) -> None:
            status_url = f"{base_url}/activator/status"
            while not stop.is_set():
                try:
                    r = await client.get(status_url, timeout=5.0)
                    now_state[0] = str(r.json().get("upstream", "unknown"))
                except (httpx.HTTPError, ValueError):
                    now_state[0] = "unreachable"
                obs_t.append(time.perf_counter() - t0)
                obs_state.append(now_state[0])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_interval_s)

        async def report(stop: asyncio.Event) -> None:
            while not stop.is_set() and progress is not None:
                progress(time.perf_counter() - t0, sent_count[0], n, now_state[0])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), progress_interval_s)

        stop = asyncio.Event()
        background = [asyncio.create_task(poll(stop)), asyncio.create_task(report(stop))]
        tasks: list[asyncio.Task[None]] = []
        try:
            for i, at in enumerate(schedule.send_at_s):
                delay = t0 + float(at) - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
                sent_count[0] = i + 1
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            stop.set()
            await asyncio.gather(*background, return_exceptions=True)
        wall = time.perf_counter() - t0
    return ReplayResult(send_s=send_s, latency_s=latency, status=status, hit=hit, errors=errors,
                        obs_t=np.asarray(obs_t), obs_state=obs_state, wall_seconds=wall)
