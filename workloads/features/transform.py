"""Batch transform: retail event log -> point-in-time feature tables (parquet). No Feast import.

Input: the event log of the data contract (``events.parquet``: user_id int64, item_id int64,
session_id int64, event_type string in {view, cart, purchase}, event_timestamp
timestamp[us, UTC], sorted by time).

Output: three tables, each with ``event_timestamp`` (the snapshot time) and
``created_timestamp`` (when the transform ran), one row per entity per snapshot at which that
entity's values changed:

- ``user_last_items``: user_id, last_items list<int64> (the user's last ``history_length``
  item ids, oldest first, all event types).
- ``user_activity``: user_id, events_24h, events_7d, purchases_7d, distinct_items (lifetime).
- ``item_popularity``: item_id, events_7d, purchases_7d.

Snapshots fall every ``snapshot_every_hours`` (a divisor of 24) on UTC boundaries. The row
stamped at snapshot time ``t`` summarises exactly the events with ``event_timestamp < t``, so a
point-in-time join (latest row with ``event_timestamp <= label time``) never sees an event from
after the label. Rows are emitted only when a value changes; windowed counts that decay to
zero get an explicit zero row, so "latest row" is always the true value and the feature views
need no TTL. The last snapshot is the first boundary after the newest event.

Deliberately vectorised numpy over (entity, bucket) keys: no Python loop per user or per
snapshot, so hourly snapshots over millions of events stay cheap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TIMESTAMP = pa.timestamp("us", tz="UTC")
EVENT_TYPES = ("view", "cart", "purchase")
HOUR_US = 3_600_000_000

TABLES = ("user_last_items", "user_activity", "item_popularity")
"""Names of the feature tables; each is written as ``<name>.parquet``."""


@dataclass(frozen=True)
class TransformConfig:
    """How the event log becomes feature tables."""

    history_length: int = 32
    """Items kept in ``last_items`` (the model's context length). Default 32."""
    snapshot_every_hours: int = 24
    """Hours between snapshots; a divisor of 24 so that the 24 h and 7 d windows are whole
    numbers of snapshots. Default 24 (daily)."""
    created_at: dt.datetime | None = None
    """Value of ``created_timestamp`` (timezone-aware); default: the time the transform runs."""

    def __post_init__(self) -> None:
        problems = []
        if self.history_length < 1:
            problems.append(f"history_length={self.history_length} must be >= 1")
        if self.snapshot_every_hours < 1 or 24 % self.snapshot_every_hours:
            problems.append(
                f"snapshot_every_hours={self.snapshot_every_hours} must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24)"
            )
        if self.created_at is not None and self.created_at.tzinfo is None:
            problems.append(f"created_at={self.created_at!r} must be timezone-aware (use datetime.timezone.utc)")
        if problems:
            raise ValueError("TransformConfig: " + "; ".join(problems) + ".")


@dataclass(frozen=True)
class FeatureTables:
    """The transform's output and the snapshot range it covers."""

    user_last_items: pa.Table
    user_activity: pa.Table
    item_popularity: pa.Table
    first_snapshot: dt.datetime
    last_snapshot: dt.datetime
    snapshots: int
    events: int
    stats: dict[str, int] = field(default_factory=dict)

    def tables(self) -> dict[str, pa.Table]:
        return {name: getattr(self, name) for name in TABLES}


def read_events(path: str | Path) -> pa.Table:
    """Read and check ``events.parquet`` against the data contract (columns and types)."""
    table = pq.read_table(path, columns=["user_id", "item_id", "event_type", "event_timestamp"])
    expected = {
        "user_id": pa.int64(),
        "item_id": pa.int64(),
        "event_type": pa.string(),
        "event_timestamp": TIMESTAMP,
    }
    problems = []
    for name, typ in expected.items():
        got = table.schema.field(name).type
        if got == pa.large_string() and typ == pa.string():
            continue
        if got != typ:
            problems.append(f"{name} has type {got}, expected {typ}")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems) + ". Regenerate it with `python -m workloads.data.generate`.")
    return table


def build_feature_tables(events: pa.Table, config: TransformConfig | None = None) -> FeatureTables:
    """Turn an event log into the three feature tables (see the module docstring)."""
    config = config or TransformConfig()
    if events.num_rows == 0:
        raise ValueError("build_feature_tables: the event log is empty; generate some events first.")
    created = config.created_at or dt.datetime.now(dt.UTC)
    step = config.snapshot_every_hours * HOUR_US

    ts = events.column("event_timestamp").cast(TIMESTAMP).to_numpy().astype("datetime64[us]").astype(np.int64)
    users = events.column("user_id").to_numpy().astype(np.int64)
    items = events.column("item_id").to_numpy().astype(np.int64)
    is_purchase = pc.equal(events.column("event_type"), "purchase").to_numpy(zero_copy_only=False)

    # Stable sort by time: the contract says sorted, but a stable order is cheap to guarantee.
    if np.any(np.diff(ts) < 0):
        order = np.argsort(ts, kind="stable")
        ts, users, items, is_purchase = ts[order], users[order], items[order], is_purchase[order]

    origin = (ts[0] // step) * step
    bucket = (ts - origin) // step  # event in bucket b is first visible at snapshot b + 1
    n_snapshots = int(bucket[-1]) + 1
    day = 24 // config.snapshot_every_hours
    week = 7 * day

    def snapshot_time(k: np.ndarray) -> pa.Array:
        return pa.array(origin + k.astype(np.int64) * step, type=pa.int64()).cast(TIMESTAMP)

    def created_col(n: int) -> pa.Array:
        return pa.array([created] * n, type=TIMESTAMP) if n else pa.array([], type=TIMESTAMP)

    # --- user_last_items -------------------------------------------------------------------
    order = np.argsort(users, kind="stable")  # by user, time order kept inside each user
    u, b, it = users[order], bucket[order], items[order]
    last_of_group = np.ones(len(u), dtype=bool)
    last_of_group[:-1] = (u[1:] != u[:-1]) | (b[1:] != b[:-1])
    p = np.flatnonzero(last_of_group)  # last event of each (user, bucket)
    user_start = np.searchsorted(u, u[p], side="left")
    lo = np.maximum(user_start, p - config.history_length + 1)
    lengths = p - lo + 1
    offsets = np.zeros(len(p) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    gather = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths) + np.repeat(lo, lengths)
    last_items = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(it[gather]))
    user_last_items = pa.table(
        {
            "user_id": pa.array(u[p]),
            "event_timestamp": snapshot_time(b[p] + 1),
            "created_timestamp": created_col(len(p)),
            "last_items": last_items,
        }
    )

    # --- windowed counts -------------------------------------------------------------------
    first_pair = _first_bucket_of_pairs(users, items, bucket)
    activity_cols, activity_keys = _windowed_rows(
        users,
        bucket,
        n_snapshots,
        counts={
            "events_24h": (None, day),
            "events_7d": (None, week),
            "purchases_7d": (is_purchase, week),
        },
        lifetime={"distinct_items": first_pair},
    )
    user_activity = pa.table(
        {
            "user_id": pa.array(activity_keys[0]),
            "event_timestamp": snapshot_time(activity_keys[1]),
            "created_timestamp": created_col(len(activity_keys[0])),
            **{name: pa.array(col) for name, col in activity_cols.items()},
        }
    )
    popularity_cols, popularity_keys = _windowed_rows(
        items,
        bucket,
        n_snapshots,
        counts={"events_7d": (None, week), "purchases_7d": (is_purchase, week)},
        lifetime={},
    )
    item_popularity = pa.table(
        {
            "item_id": pa.array(popularity_keys[0]),
            "event_timestamp": snapshot_time(popularity_keys[1]),
            "created_timestamp": created_col(len(popularity_keys[0])),
            **{name: pa.array(col) for name, col in popularity_cols.items()},
        }
    )

    def as_datetime(k: int) -> dt.datetime:
        return dt.datetime.fromtimestamp((origin + k * step) / 1e6, tz=dt.UTC)

    return FeatureTables(
        user_last_items=user_last_items,
        user_activity=user_activity,
        item_popularity=item_popularity,
        first_snapshot=as_datetime(1),
        last_snapshot=as_datetime(n_snapshots),
        snapshots=n_snapshots,
        events=len(ts),
        stats={
            "users": len(np.unique(users)),
            "items": len(np.unique(items)),
            **{f"{name}_rows": t.num_rows for name, t in (
                ("user_last_items", user_last_items),
                ("user_activity", user_activity),
                ("item_popularity", item_popularity),
            )},
        },
    )


def _first_bucket_of_pairs(users: np.ndarray, items: np.ndarray, bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(user, first bucket) of every distinct (user, item) pair, sorted by user then bucket."""
    order = np.lexsort((bucket, items, users))
    u, i, b = users[order], items[order], bucket[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    pu, pb = u[first], b[first]
    resort = np.lexsort((pb, pu))
    return pu[resort], pb[resort]


def _windowed_rows(
    entity: np.ndarray,
    bucket: np.ndarray,
    n_snapshots: int,
    counts: dict[str, tuple[np.ndarray | None, int]],
    lifetime: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Per-entity counts at the snapshots where any of them changes.

    ``counts[name] = (mask or None, window)``: events (matching the mask) in the ``window``
    buckets before the snapshot. ``lifetime[name] = (entity, bucket)`` of sorted "first
    occurrences": how many occurred before the snapshot. Snapshot k sees buckets < k.
    Returns the columns and the (entity, snapshot index) keys, rows sorted by entity then time.
    """
    stride = np.int64(n_snapshots + 2)

    def sorted_keys(e: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sort(e * stride + b)

    def count_before(keys: np.ndarray, e: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Events of entity e with lo <= bucket < hi (hi <= lo gives 0)."""
        lo = np.maximum(lo, 0)
        hi = np.maximum(hi, lo)
        return np.searchsorted(keys, e * stride + hi, side="left") - np.searchsorted(keys, e * stride + lo, side="left")

    # Candidate snapshots: where an event enters (b + 1) or leaves a window (b + 1 + window).
    pairs = np.unique(entity * stride + bucket)
    pe, pb = pairs // stride, pairs % stride
    shifts = [1] + [1 + w for w in sorted({w for _, w in counts.values()})]
    parts = []
    for shift in shifts:
        k = pb + shift
        ok = k <= n_snapshots  # no snapshot after the last one (and no overflow into the next entity)
        parts.append(pe[ok] * stride + k[ok])
    cand = np.concatenate(parts)
    cand = np.unique(cand)  # sorted by entity, then snapshot
    ce, ck = cand // stride, cand % stride

    cols: dict[str, np.ndarray] = {}
    for name, (mask, window) in counts.items():
        sel = slice(None) if mask is None else mask
        keys = sorted_keys(entity[sel], bucket[sel])
        cols[name] = count_before(keys, ce, ck - window, ck).astype(np.int64)
    for name, (le, lb) in lifetime.items():
        keys = le * stride + lb  # already sorted
        cols[name] = count_before(keys, ce, np.zeros_like(ck), ck).astype(np.int64)

    # Keep a row only where some value differs from the entity's previous row.
    changed = np.ones(len(ce), dtype=bool)
    if len(ce) > 1:
        same_entity = ce[1:] == ce[:-1]
        same_values = np.ones(len(ce) - 1, dtype=bool)
        for col in cols.values():
            same_values &= col[1:] == col[:-1]
        changed[1:] = ~(same_entity & same_values)
    return {name: col[changed] for name, col in cols.items()}, (ce[changed], ck[changed])


def write_feature_tables(
    tables: FeatureTables, out_dir: str | Path, layout: Callable[[str, str], str] | None = None
) -> dict[str, str]:
    """Write each table to ``layout(out_dir, name)`` (default ``out_dir/<name>.parquet``):
    locally atomically (temp file, rename); on a bucket URL (``s3://``, ``gs://``) with one PUT
    per object, which is atomic there."""
    paths = {}
    for name, table in tables.tables().items():
        target = layout(str(out_dir), name) if layout else f"{str(out_dir).rstrip('/')}/{name}.parquet"
        if "://" in target:
            pq.write_table(table, target)
        else:
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            pq.write_table(table, tmp)
            tmp.replace(path)
        paths[name] = target
    return paths
