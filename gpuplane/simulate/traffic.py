"""Request traces for the simulator: a seeded synthetic generator and readers for real trace files.

A :class:`Trace` is a set of request arrival times (seconds from the trace start, float64,
sorted) each tagged with an endpoint index, over a horizon ``[0, duration_s)``. Everything the
simulator needs about traffic is in it; no Python object per request exists anywhere.

Synthetic traffic (:func:`synthetic_trace`, configured by :class:`TrafficSpec`):

- a diurnal rate ``λ(t) = mean · f(t)``, where ``f`` is a von Mises bump with mean 1 over a day
  and a maximum equal to the requested peak/mean ratio (any ratio ≥ 1, unlike a sine wave, which
  stops at 2);
- Gamma renewal inter-arrivals with a given coefficient of variation (CV 1 is Poisson; LLM
  request gaps fit CV 1–4 better than Poisson), laid out in operational time so the rate follows
  ``λ(t)``;
- an optional burst regime: bursts start as a Poisson process (``bursts_per_day``), last
  ``burst_duration_s`` and multiply the rate by ``burst_multiplier``;
- Zipf popularity (exponent ``zipf_s``) across ``endpoints`` endpoints;
- everything drawn from ``numpy.random.default_rng(seed)``: the same spec gives the same trace.

Readers:

- :func:`read_azure_functions` reads the public Azure Functions 2019 invocation-count CSV, one
  row per function, per-minute counts, columns found by name in any order: the day files'
  ``HashOwner,HashApp,HashFunction,Trigger,1..1440`` and the invitro sample's
  ``HashFunction,HashApp,HashOwner,minute_1..minute_1440``. Counts are spread uniformly at
  random inside their minute (seeded). Several day files are laid end to end.
- :func:`read_timestamps` reads a plain CSV of timestamps: one number of seconds per line, or a
  header with a ``timestamp`` column (seconds, or ISO date-times such as the Azure LLM inference
  trace's ``TIMESTAMP`` column) and optionally an ``endpoint`` column.

A malformed file raises :class:`TraceFormatError` naming the file, the line and the fix. This
module does not model service or cost; see ``engine.py``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DAY_S = 86_400.0
AZURE_MINUTES = 1440


class TraceFormatError(ValueError):
    """A trace file is malformed; the message names the file, the line and the fix."""


class TrafficSpecError(ValueError):
    """A synthetic traffic parameter is out of range; the message names the field and the fix."""


@dataclass(frozen=True)
class Trace:
    """Request arrivals: ``times_s[i]`` (sorted) at endpoint ``endpoint[i]``, over ``[0, duration_s)``."""

    times_s: np.ndarray
    """Arrival times in seconds from the trace start, float64, non-decreasing."""
    endpoint: np.ndarray
    """Endpoint index of each request, int32 in ``[0, n_endpoints)``."""
    duration_s: float
    """Horizon of the trace in seconds; every arrival is below it."""
    n_endpoints: int
    """Number of endpoints (some may receive no request)."""
    endpoint_names: tuple[str, ...] = ()
    """Optional names, one per endpoint (function hashes for Azure traces)."""
    nominal_peak_to_mean: float | None = None
    """The generator's configured diurnal peak/mean, None for traces read from files."""

    _cache: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.times_s.shape != self.endpoint.shape:
            raise ValueError(f"Trace: times_s has shape {self.times_s.shape} but endpoint has {self.endpoint.shape}")
        if self.duration_s <= 0:
            raise ValueError(f"Trace: duration_s={self.duration_s} must be > 0")

    def by_endpoint(self) -> np.ndarray:
        """Permutation sorting requests by (endpoint, time); computed once per trace."""
        if "by_endpoint" not in self._cache:
            ep = self.endpoint.astype(np.int16) if self.n_endpoints < 2**15 else self.endpoint  # int16 sorts by radix
            self._cache["by_endpoint"] = np.argsort(ep, kind="stable")  # times are sorted already
        return self._cache["by_endpoint"]

    @property
    def n_requests(self) -> int:
        return int(self.times_s.size)

    def rate_per_bin(self, bin_s: float = 60.0) -> np.ndarray:
        """Requests per second in consecutive bins of ``bin_s`` seconds (all endpoints together)."""
        n_bins = max(1, math.ceil(self.duration_s / bin_s))
        idx = np.minimum((self.times_s / bin_s).astype(np.int64), n_bins - 1)
        return np.bincount(idx, minlength=n_bins) / bin_s

    def peak_to_mean(self, bin_s: float = 3600.0) -> float:
        """Realised peak/mean of the request rate measured in ``bin_s`` bins (1.0 for an empty trace)."""
        r = self.rate_per_bin(bin_s)
        return float(r.max() / r.mean()) if r.sum() > 0 else 1.0


@dataclass(frozen=True)
class TrafficSpec:
    """Parameters of the synthetic generator. Units are in the names; defaults make a 1-day trace."""

    mean_rps: float = 2.0
    """Mean request rate over the whole trace, all endpoints together (requests per second)."""
    peak_to_mean: float = 2.0
    """Diurnal peak rate / mean rate (≥ 1). 1.43 and 2.5 bracket "30–60 % savings"."""
    cv: float = 1.0
    """Coefficient of variation of inter-arrival gaps (Gamma renewal). 1 = Poisson, > 1 = burstier."""
    duration_s: float = DAY_S
    """Length of the trace in seconds (7 days = 604800)."""
    endpoints: int = 1
    """Number of endpoints sharing the traffic."""
    zipf_s: float = 1.0
    """Zipf exponent of endpoint popularity (0 = uniform)."""
    peak_hour: float = 14.0
    """Hour of the day (0–24) at which the diurnal rate peaks."""
    bursts_per_day: float = 0.0
    """Mean number of bursts per day (0 = no burst regime)."""
    burst_duration_s: float = 600.0
    """Length of each burst in seconds."""
    burst_multiplier: float = 3.0
    """Rate multiplier while a burst lasts (≥ 1)."""
    seed: int = 0
    """Seed of the random generator."""

    def validate(self) -> None:
        problems = []
        if not self.mean_rps > 0:
            problems.append(f"mean_rps={self.mean_rps} must be > 0")
        if not 1 <= self.peak_to_mean <= 50:
            problems.append(f"peak_to_mean={self.peak_to_mean} must be in [1, 50] (1 = constant rate)")
        if not self.cv > 0:
            problems.append(f"cv={self.cv} must be > 0 (1 = Poisson)")
        if not self.duration_s > 0:
            problems.append(f"duration_s={self.duration_s} must be > 0")
        if self.endpoints < 1:
            problems.append(f"endpoints={self.endpoints} must be ≥ 1")
        if self.zipf_s < 0:
            problems.append(f"zipf_s={self.zipf_s} must be ≥ 0")
        if not 0 <= self.peak_hour < 24:
            problems.append(f"peak_hour={self.peak_hour} must be in [0, 24)")
        if self.bursts_per_day < 0 or self.burst_duration_s <= 0 or self.burst_multiplier < 1:
            problems.append(
                f"bursts_per_day={self.bursts_per_day}, burst_duration_s={self.burst_duration_s}, "
                f"burst_multiplier={self.burst_multiplier}: need ≥ 0, > 0 and ≥ 1"
            )
        if problems:
            raise TrafficSpecError("TrafficSpec: " + "; ".join(problems) + ". Fix these values and retry.")


def von_mises_kappa(peak_to_mean: float) -> float:
    """The concentration κ whose day shape ``exp(κ cos θ) / I0(κ)`` has maximum ``peak_to_mean``."""
    if peak_to_mean <= 1.0:
        return 0.0
    target = math.log(peak_to_mean)

    def log_peak(k: float) -> float:  # log(e^k / I0(k)), increasing in k; use the scaled I0 for large k
        return k - math.log(float(np.i0(k))) if k < 500 else 0.5 * math.log(2 * math.pi * k)

    lo, hi = 0.0, 1.0
    while log_peak(hi) < target:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if log_peak(mid) < target else (lo, mid)
    return 0.5 * (lo + hi)


def diurnal_shape(t_s: np.ndarray, peak_to_mean: float, peak_hour: float = 14.0) -> np.ndarray:
    """Relative rate at times ``t_s``: mean 1 over a whole day, maximum ``peak_to_mean`` at ``peak_hour``."""
    kappa = von_mises_kappa(peak_to_mean)
    theta = 2 * np.pi * (np.asarray(t_s) / DAY_S - peak_hour / 24.0)
    if kappa == 0.0:
        return np.ones_like(theta, dtype=np.float64)
    return np.exp(kappa * (np.cos(theta) - 1.0)) * (math.exp(kappa) / float(np.i0(kappa)))


def zipf_weights(n: int, s: float) -> np.ndarray:
    """Popularity shares of ``n`` endpoints ranked 1..n, ∝ 1/rank^s, summing to 1."""
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return w / w.sum()


def _rate_grid(spec: TrafficSpec, rng: np.random.Generator, grid_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Relative rate on a grid (knots at multiples of ``grid_s``) and its cumulative integral Λ."""
    n = max(2, math.ceil(spec.duration_s / grid_s) + 1)
    knots = np.linspace(0.0, spec.duration_s, n)
    rel = diurnal_shape(knots, spec.peak_to_mean, spec.peak_hour)
    if spec.bursts_per_day > 0:
        n_bursts = rng.poisson(spec.bursts_per_day * spec.duration_s / DAY_S)
        starts = rng.uniform(0.0, spec.duration_s, n_bursts)
        in_burst = np.zeros(n, dtype=bool)
        for s in np.sort(starts):  # a handful of bursts; each marks a slice of the grid
            in_burst |= (knots >= s) & (knots < s + spec.burst_duration_s)
        rel = np.where(in_burst, rel * spec.burst_multiplier, rel)
    # Λ(t): trapezoid integral of the relative rate, normalised below so the mean rate is exact.
    cum = np.concatenate(([0.0], np.cumsum(0.5 * (rel[1:] + rel[:-1]) * np.diff(knots))))
    return knots, cum


def synthetic_trace(spec: TrafficSpec) -> Trace:
    """A seeded synthetic trace following ``spec`` (see the module docstring for the model)."""
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    grid_s = min(60.0, spec.duration_s / 16)
    knots, cum = _rate_grid(spec, rng, grid_s)
    total_expected = spec.mean_rps * spec.duration_s
    op_end = cum[-1]  # operational time at the horizon, in "relative-rate seconds"
    shares = zipf_weights(spec.endpoints, spec.zipf_s)
    expected = shares * total_expected
    # Draw a few standard deviations more gaps than needed per endpoint, then truncate at the horizon.
    var_factor = spec.cv**2
    draws = np.ceil(expected + 6.0 * np.sqrt(expected * var_factor + 1.0) + 8.0).astype(np.int64)
    shape = 1.0 / spec.cv**2
    gaps = rng.gamma(shape, 1.0 / shape, int(draws.sum()))  # unit-mean Gamma gaps, CV = spec.cv
    ep = np.repeat(np.arange(spec.endpoints, dtype=np.int32), draws)
    # Stationary start: the first gap of a renewal process is a forward recurrence time, here
    # approximated by a uniform fraction of a gap, so no endpoint starts exactly at t = 0.
    first = np.concatenate(([0], np.cumsum(draws)[:-1]))
    gaps[first] *= rng.uniform(0.0, 1.0, spec.endpoints)
    csum = np.cumsum(gaps)
    offsets = np.repeat(csum[first] - gaps[first], draws)
    unit_time = csum - offsets  # per-endpoint cumulative gaps, unit rate
    # Endpoint e runs at rate shares[e] * total_expected / op_end in operational time.
    op = unit_time * (op_end / np.repeat(expected, draws))
    keep = op < op_end
    times = np.interp(op[keep], cum, knots)
    ep = ep[keep]
    order = np.argsort(times, kind="stable")
    times, ep = times[order], ep[order]
    times = np.minimum(times, np.nextafter(spec.duration_s, 0.0))
    return Trace(
        times_s=times,
        endpoint=ep,
        duration_s=float(spec.duration_s),
        n_endpoints=spec.endpoints,
        endpoint_names=tuple(f"endpoint-{i}" for i in range(spec.endpoints)),
        nominal_peak_to_mean=float(spec.peak_to_mean),
    )


def _fail(path: Path, line: int | None, msg: str, fix: str) -> TraceFormatError:
    where = f"{path}" + (f", line {line}" if line is not None else "")
    return TraceFormatError(f"{where}: {msg}. To fix: {fix}")


def read_azure_functions(
    paths: str | Path | list[str | Path],
    *,
    group_by: str = "function",
    top: int | None = None,
    seed: int = 0,
    max_requests: int = 50_000_000,
) -> Trace:
    """Read Azure Functions 2019 invocation-count CSVs (one file per day, laid end to end).

    ``group_by`` is ``"function"`` (one endpoint per HashOwner/HashApp/HashFunction) or ``"app"``
    (per HashOwner/HashApp). ``top`` keeps only the busiest endpoints. Counts are spread uniformly
    at random inside their minute with ``seed``. More than ``max_requests`` requests raise rather
    than exhaust memory (the public trace holds billions of invocations; pick ``top``).
    """
    if group_by not in ("function", "app"):
        raise ValueError(f"read_azure_functions: group_by={group_by!r} must be 'function' or 'app'")
    files = [Path(p) for p in (paths if isinstance(paths, list) else [paths])]
    if not files:
        raise ValueError("read_azure_functions: no file given. Pass at least one invocations_per_function CSV")
    per_day: list[tuple[list[str], np.ndarray]] = []
    for path in files:
        per_day.append(_read_azure_day(path, group_by))
    names = sorted({k for keys, _ in per_day for k in keys})
    index = {k: i for i, k in enumerate(names)}
    counts = np.zeros((len(names), len(files) * AZURE_MINUTES), dtype=np.int64)
    for d, (keys, c) in enumerate(per_day):
        rows = np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
        np.add.at(counts[:, d * AZURE_MINUTES : (d + 1) * AZURE_MINUTES], rows, c)
    if top is not None:
        if top < 1:
            raise ValueError(f"read_azure_functions: top={top} must be ≥ 1")
        keep = np.argsort(-counts.sum(axis=1), kind="stable")[:top]
        counts = counts[keep]
        names = [names[i] for i in keep]
    total = int(counts.sum())
    if total > max_requests:
        raise _fail(
            files[0],
            None,
            f"the trace holds {total:,} invocations, more than max_requests={max_requests:,}",
            "keep only the busiest endpoints (top=N / --top N) or raise max_requests",
        )
    rng = np.random.default_rng(seed)
    flat = counts.ravel()
    nz = np.flatnonzero(flat)
    reps = flat[nz]
    ep = np.repeat((nz // counts.shape[1]).astype(np.int32), reps)
    minute = np.repeat(nz % counts.shape[1], reps)
    times = (minute + rng.random(total)) * 60.0
    order = np.argsort(times, kind="stable")
    return Trace(
        times_s=times[order],
        endpoint=ep[order],
        duration_s=float(len(files) * DAY_S),
        n_endpoints=len(names),
        endpoint_names=tuple(names),
    )


def _azure_columns(path: Path, header: list[str], group_by: str) -> tuple[list[int], list[int]]:
    """Indices of the key columns and of the 1440 minute columns, found by name.

    Public copies of the trace order and name the columns differently: the original day files
    have ``HashOwner,HashApp,HashFunction,Trigger,1..1440``; the invitro sample (vhive-serverless/
    invitro) has ``HashFunction,HashApp,HashOwner,minute_1..minute_1440`` and no Trigger.
    """
    names = {h: i for i, h in enumerate(header)}
    want = ["HashOwner", "HashApp"] + (["HashFunction"] if group_by == "function" else [])
    missing = [k for k in want if k not in names]
    minutes: list[int] = []
    for m in range(1, AZURE_MINUTES + 1):
        i = names.get(str(m), names.get(f"minute_{m}"))
        if i is None:
            missing.append(f"{m} (or minute_{m})")
            break
        minutes.append(i)
    if missing:
        raise _fail(
            path,
            1,
            f"header is not the Azure Functions 2019 format (no column {missing[0]!r})",
            "the header must name HashOwner, HashApp, HashFunction and the minutes 1..1440 (or minute_1..minute_1440), "
            "in any order (for one timestamp per line use --trace-format timestamps)",
        )
    return [names[k] for k in want], minutes


def _read_azure_day(path: Path, group_by: str) -> tuple[list[str], np.ndarray]:
    """Keys and an (n_rows, 1440) int64 count matrix of one Azure day file, validated."""
    if not path.is_file():
        raise _fail(path, None, "no such file", "pass the path of an invocations_per_function_md.anon.dNN.csv file")
    keys: list[str] = []
    rows: list[list[str]] = []
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise _fail(path, 1, "the file is empty", "use an Azure Functions 2019 invocations_per_function CSV")
        header = [h.strip() for h in header]
        key_cols, minute_cols = _azure_columns(path, header, group_by)
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise _fail(
                    path,
                    line_no,
                    f"{len(row)} fields, expected {len(header)}",
                    "every row needs the hash columns and 1440 per-minute counts, as the header names them",
                )
            keys.append("/".join(row[i] for i in key_cols))
            rows.append([row[i] for i in minute_cols])
    if not rows:
        return [], np.zeros((0, AZURE_MINUTES), dtype=np.int64)
    cells = np.array(rows, dtype=str)
    numeric = np.char.isdigit(np.char.strip(cells))
    if not numeric.all():
        r, c = np.argwhere(~numeric)[0]
        raise _fail(
            path,
            int(r) + 2,
            f"column {minute_cols[c] + 1} (minute {c + 1}) holds {str(cells[r, c])!r}, not a non-negative integer count",
            "per-minute columns must be whole invocation counts ≥ 0",
        )
    return keys, cells.astype(np.int64)


def read_timestamps(path: str | Path, *, duration_s: float | None = None) -> Trace:
    """Read a CSV of request timestamps in seconds.

    Either one number per line (no header), or a header naming a ``timestamp`` column (seconds,
    or ISO date-times as in the Azure LLM inference traces) and optionally an ``endpoint`` column (any string; each distinct value is an endpoint). Times
    are shifted so the earliest is 0 and sorted. ``duration_s`` defaults to the last time
    rounded up to a whole second (at least 1 s).
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, None, "no such file", "pass the path of a CSV with one timestamp (seconds) per line")
    with path.open(newline="") as f:
        rows = [(i, r) for i, r in enumerate(csv.reader(f), start=1) if r and any(c.strip() for c in r)]
    if not rows:
        raise _fail(path, 1, "the file holds no timestamp", "write one timestamp in seconds per line")
    first = [c.strip().lower() for c in rows[0][1]]
    ts_col, ep_col = 0, None
    if not _is_number(first[0]):
        if "timestamp" not in first:
            raise _fail(
                path,
                rows[0][0],
                f"header {rows[0][1]!r} has no 'timestamp' column",
                "name the column of seconds 'timestamp' (optionally add an 'endpoint' column), or drop the header",
            )
        ts_col = first.index("timestamp")
        ep_col = first.index("endpoint") if "endpoint" in first else None
        rows = rows[1:]
    times = np.empty(len(rows), dtype=np.float64)
    labels: list[str] = []
    for k, (line_no, row) in enumerate(rows):
        if len(row) <= ts_col or (ep_col is not None and len(row) <= ep_col):
            raise _fail(
                path,
                line_no,
                f"row {row!r} is missing the timestamp or endpoint field",
                "give every row the same columns",
            )
        cell = row[ts_col].strip()
        try:
            value = float(cell)
        except ValueError:
            iso = _iso_seconds(cell)
            if iso is None:
                raise _fail(
                    path,
                    line_no,
                    f"timestamp {cell!r} is not a number",
                    "write timestamps as seconds, e.g. 1712345678.25, or as ISO date-times, e.g. 2023-11-16 18:17:03.98",
                ) from None
            value = iso
        if not math.isfinite(value):
            raise _fail(path, line_no, f"timestamp {cell!r} is not finite", "remove NaN/inf rows")
        times[k] = value
        if ep_col is not None:
            labels.append(row[ep_col].strip())
    if times.size == 0:
        raise _fail(path, rows[0][0] if rows else 1, "the file has a header but no timestamp", "add rows of timestamps")
    times -= times.min()
    if ep_col is not None:
        names, ep = np.unique(np.array(labels, dtype=str), return_inverse=True)
        endpoint_names = tuple(str(n) for n in names)
    else:
        ep = np.zeros(times.size, dtype=np.int64)
        endpoint_names = ("endpoint-0",)
    order = np.argsort(times, kind="stable")
    horizon = duration_s if duration_s is not None else max(1.0, math.floor(times.max()) + 1.0)
    if times.max() >= horizon:
        raise _fail(
            path,
            None,
            f"the last timestamp is {times.max():.3f} s after the first, beyond duration_s={horizon}",
            "raise duration_s",
        )
    return Trace(
        times_s=times[order],
        endpoint=ep.astype(np.int32)[order],
        duration_s=float(horizon),
        n_endpoints=len(endpoint_names),
        endpoint_names=endpoint_names,
    )


def _iso_seconds(text: str) -> float | None:
    """Seconds since the epoch of an ISO date-time (any number of fraction digits), None if it is not one."""
    try:
        t = np.datetime64(text.replace(" ", "T", 1), "ns")
    except ValueError:
        return None
    if np.isnat(t):
        return None
    return float(t.astype(np.int64)) / 1e9


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class TraceSummary:
    """Facts about a trace for reports."""

    n_requests: int
    n_endpoints: int
    duration_s: float
    mean_rps: float
    peak_to_mean_hourly: float
    nominal_peak_to_mean: float | None = None
    busiest_endpoint_share: float = field(default=0.0)


def summarize(trace: Trace) -> TraceSummary:
    counts = np.bincount(trace.endpoint, minlength=trace.n_endpoints) if trace.n_requests else np.zeros(1)
    return TraceSummary(
        n_requests=trace.n_requests,
        n_endpoints=trace.n_endpoints,
        duration_s=trace.duration_s,
        mean_rps=trace.n_requests / trace.duration_s,
        peak_to_mean_hourly=trace.peak_to_mean(min(3600.0, trace.duration_s)),
        nominal_peak_to_mean=trace.nominal_peak_to_mean,
        busiest_endpoint_share=float(counts.max() / max(1, trace.n_requests)),
    )
