"""Synthetic retail event log: users, items and sessions with learnable structure.

``python -m workloads.data.generate --out DIR --users N --items M --days D --seed S``

Data contract (the feature store and the trainer depend on it; change it only with both):

- ``DIR/events.parquet``: ``user_id`` int64, ``item_id`` int64 (1..M), ``session_id`` int64,
  ``event_type`` string in {"view", "cart", "purchase"}, ``event_timestamp`` timestamp[us, UTC];
  rows sorted by ``event_timestamp``.
- ``DIR/users.parquet``: ``user_id`` int64, ``segment`` int64, ``created_timestamp`` timestamp[us, UTC].
- ``DIR/items.parquet``: ``item_id`` int64, ``category`` int64, ``price_usd`` float64.
- ``DIR/meta.json``: ``{"users", "items", "days", "seed", "start"}`` (``start`` is ISO 8601, UTC),
  written last, so a directory with ``meta.json`` is complete.

The structure a model can learn, and a popularity baseline cannot:

- Item popularity is Zipf-distributed (exponent ``ZIPF_EXPONENT``) over a random ranking.
- Users belong to taste segments; each segment prefers a few categories, and a session browses
  one category drawn from the user's segment.
- Within a session the next item follows the current one: with probability ``P_FOLLOW`` it is
  one of the current item's few "related" items (same category), otherwise a popular item of the
  session's category, and now and then the session switches category.

Everything is drawn from one ``numpy.random.Generator`` seeded with ``seed``, so the output is a
pure function of the arguments. Sessions are simulated step by step, vectorised across sessions,
so 1,000 users x 1,000 items x 7 days takes well under a second. The log is synthetic: no claim
is made that its statistics match any real retailer beyond the properties listed above.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EVENTS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("session_id", pa.int64()),
        ("event_type", pa.string()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
    ]
)
USERS_SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("segment", pa.int64()), ("created_timestamp", pa.timestamp("us", tz="UTC"))]
)
ITEMS_SCHEMA = pa.schema([("item_id", pa.int64()), ("category", pa.int64()), ("price_usd", pa.float64())])
EVENT_TYPES = ("view", "cart", "purchase")

DEFAULT_START = "2025-01-06T00:00:00+00:00"
ZIPF_EXPONENT = 1.07
"""Popularity of the item ranked r is proportional to r ** -ZIPF_EXPONENT."""
SESSIONS_PER_USER_DAY = 0.6
"""Mean sessions per user per day (each user's rate is scaled by a Gamma(2, 1/2) activity)."""
MEAN_VIEWS_PER_SESSION = 8.0
P_FOLLOW = 0.65
"""Probability that the next viewed item is one of the current item's related items."""
P_SWITCH = 0.1
"""Probability (when not following) that a session moves to another category of the segment."""
RELATED_PER_ITEM = 3
P_CART = 0.12
P_PURCHASE_GIVEN_CART = 0.35
MEAN_GAP_SECONDS = 45.0


@dataclass(frozen=True)
class GenerateConfig:
    """Arguments of one generation run."""

    users: int
    items: int
    days: int
    seed: int
    start: str = DEFAULT_START
    """First instant of the log, ISO 8601 with a UTC offset."""

    def validate(self) -> None:
        problems = []
        for name in ("users", "items", "days"):
            if getattr(self, name) < 1:
                problems.append(f"--{name}={getattr(self, name)} must be at least 1")
        if self.seed < 0:
            problems.append(f"--seed={self.seed} must be non-negative")
        try:
            parsed = dt.datetime.fromisoformat(self.start)
            if parsed.tzinfo is None:
                problems.append(f"--start={self.start!r} has no UTC offset; write it like {DEFAULT_START!r}")
        except ValueError:
            problems.append(f"--start={self.start!r} is not ISO 8601; write it like {DEFAULT_START!r}")
        if problems:
            raise ValueError("workloads.data.generate: " + "; ".join(problems))


def _popularity_sampler(category: np.ndarray, weight: np.ndarray, n_categories: int):
    """Return ``sample(categories, rng) -> item ids`` drawing items by popularity within a category."""
    order = np.argsort(category, kind="stable")  # item indices grouped by category
    cum = np.cumsum(weight[order])  # (M,)
    counts = np.bincount(category, minlength=n_categories)
    ends = np.cumsum(counts)  # exclusive end index of each category in `order`
    starts = ends - counts
    lo = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)  # cumulative mass before the category
    mass = cum[ends - 1] - lo

    def sample(cats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = lo[cats] + rng.random(cats.shape[0]) * mass[cats]
        idx = np.searchsorted(cum, u, side="right")
        idx = np.clip(idx, starts[cats], ends[cats] - 1)  # guard the float edge at the category end
        return order[idx] + 1  # item ids are 1-based

    return sample


def _sample_rows(cdf: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one column index per row from per-row CDFs ``cdf`` (R, K)."""
    u = rng.random(rows.shape[0])[:, None]
    return np.minimum((cdf[rows] < u).sum(axis=1), cdf.shape[1] - 1)


def generate_tables(cfg: GenerateConfig) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Generate (events, users, items) as Arrow tables that follow the data contract."""
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    M, N = cfg.items, cfg.users
    start_us = int(dt.datetime.fromisoformat(cfg.start).timestamp() * 1_000_000)

    # Items: balanced categories, Zipf popularity over a random ranking, log-normal prices.
    n_categories = max(1, min(64, M // 30))
    category = rng.permutation(np.arange(M) % n_categories)  # (M,), every category non-empty
    popularity = (rng.permutation(M) + 1.0) ** -ZIPF_EXPONENT  # (M,)
    category_price = np.exp(rng.normal(3.0, 0.8, n_categories))
    price = np.round(category_price[category] * np.exp(rng.normal(0.0, 0.3, M)), 2)
    price = np.maximum(price, 0.01)
    sample_in_category = _popularity_sampler(category, popularity, n_categories)
    related = sample_in_category(np.repeat(category, RELATED_PER_ITEM), rng).reshape(M, RELATED_PER_ITEM)

    # Users: taste segments, each preferring a few categories (15% of sessions go anywhere).
    n_segments = max(1, min(16, n_categories // 2))
    category_mass = np.bincount(category, weights=popularity, minlength=n_categories)
    segment_prefs = np.tile(0.15 * category_mass / category_mass.sum(), (n_segments, 1))  # (S, C)
    n_pref = min(3, n_categories)
    for s in range(n_segments):
        preferred = rng.choice(n_categories, size=n_pref, replace=False)
        segment_prefs[s, preferred] += 0.85 * rng.dirichlet(np.ones(n_pref))
    segment_cdf = np.cumsum(segment_prefs, axis=1)
    segment_cdf /= segment_cdf[:, -1:]
    segment = rng.integers(0, n_segments, N)
    created_us = start_us - (rng.random(N) * 365 * 86_400 * 1_000_000).astype(np.int64)

    # Sessions: per-user Poisson counts, uniform start times, 2 + Poisson views each.
    activity = rng.gamma(2.0, 0.5, N)
    n_sessions = rng.poisson(SESSIONS_PER_USER_DAY * cfg.days * activity)  # (N,)
    s_user = np.repeat(np.arange(N), n_sessions)  # (n_s,)
    n_s = s_user.shape[0]
    s_start = rng.random(n_s) * cfg.days * 86_400.0  # seconds after start
    s_len = 2 + rng.poisson(MEAN_VIEWS_PER_SESSION - 2, n_s)
    s_segment = segment[s_user]
    s_category = _sample_rows(segment_cdf, s_segment, rng)

    # Walk all sessions one step at a time.
    max_len = int(s_len.max()) if n_s else 0
    views = np.zeros((n_s, max_len), dtype=np.int64)  # item ids, 0 past a session's end
    current = sample_in_category(s_category, rng)
    for t in range(max_len):
        views[:, t] = np.where(t < s_len, current, 0)
        follow = rng.random(n_s) < P_FOLLOW
        switch = rng.random(n_s) < P_SWITCH
        pick = rng.integers(0, RELATED_PER_ITEM, n_s)
        s_category = np.where(~follow & switch, _sample_rows(segment_cdf, s_segment, rng), s_category)
        fresh = sample_in_category(s_category, rng)
        current = np.where(follow, related[current - 1, pick], fresh)
    gaps = 1.0 + rng.exponential(MEAN_GAP_SECONDS - 1.0, (n_s, max_len))  # seconds to the next view
    offsets = s_start[:, None] + np.cumsum(gaps, axis=1) - gaps[:, :1]  # (n_s, max_len)

    # Events: every view, some carts right after the view, some purchases after the cart.
    sess_idx, step_idx = np.nonzero(views)
    view_item = views[sess_idx, step_idx]
    view_t = offsets[sess_idx, step_idx]
    view_gap = gaps[sess_idx, step_idx]
    cart = rng.random(view_item.shape[0]) < P_CART
    purchase = cart & (rng.random(view_item.shape[0]) < P_PURCHASE_GIVEN_CART)
    parts = [
        (np.zeros(view_item.shape[0], np.int64), view_t, np.ones_like(cart)),
        (np.ones(view_item.shape[0], np.int64), view_t + 0.3 * view_gap, cart),
        (np.full(view_item.shape[0], 2, np.int64), view_t + 0.6 * view_gap, purchase),
    ]
    kind = np.concatenate([k[m] for k, _, m in parts])
    t_sec = np.concatenate([t[m] for _, t, m in parts])
    e_sess = np.concatenate([sess_idx[m] for _, _, m in parts])
    e_item = np.concatenate([view_item[m] for _, _, m in parts])
    ts_us = start_us + np.round(t_sec * 1_000_000).astype(np.int64)
    order = np.lexsort((kind, e_sess, ts_us))  # by time; ties broken by session then event kind
    ts_us, e_sess, e_item, kind = ts_us[order], e_sess[order], e_item[order], kind[order]

    events = pa.table(
        {
            "user_id": pa.array(s_user[e_sess], pa.int64()),
            "item_id": pa.array(e_item, pa.int64()),
            "session_id": pa.array(e_sess, pa.int64()),
            "event_type": pa.array(np.asarray(EVENT_TYPES, dtype=object)[kind], pa.string()),
            "event_timestamp": pa.array(ts_us, pa.timestamp("us", tz="UTC")),
        },
        schema=EVENTS_SCHEMA,
    )
    users = pa.table(
        {
            "user_id": pa.array(np.arange(N), pa.int64()),
            "segment": pa.array(segment, pa.int64()),
            "created_timestamp": pa.array(created_us, pa.timestamp("us", tz="UTC")),
        },
        schema=USERS_SCHEMA,
    )
    items = pa.table(
        {
            "item_id": pa.array(np.arange(1, M + 1), pa.int64()),
            "category": pa.array(category, pa.int64()),
            "price_usd": pa.array(price, pa.float64()),
        },
        schema=ITEMS_SCHEMA,
    )
    return events, users, items


def _write_table_atomically(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def generate(out: str | os.PathLike[str], cfg: GenerateConfig) -> dict[str, object]:
    """Write the three tables and ``meta.json`` (last) under ``out``; return the meta dict."""
    events, users, items = generate_tables(cfg)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "meta.json").unlink(missing_ok=True)  # the directory is incomplete until it is back
    _write_table_atomically(items, out_dir / "items.parquet")
    _write_table_atomically(users, out_dir / "users.parquet")
    _write_table_atomically(events, out_dir / "events.parquet")
    meta = {"users": cfg.users, "items": cfg.items, "days": cfg.days, "seed": cfg.seed, "start": cfg.start}
    tmp = out_dir / f".meta.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, out_dir / "meta.json")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workloads.data.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--users", type=int, default=1000, help="number of users (default 1000)")
    parser.add_argument("--items", type=int, default=1000, help="number of items, ids 1..items (default 1000)")
    parser.add_argument("--days", type=int, default=7, help="days of events (default 7)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--start", default=DEFAULT_START, help=f"first instant, ISO 8601 UTC (default {DEFAULT_START})")
    args = parser.parse_args(argv)
    cfg = GenerateConfig(users=args.users, items=args.items, days=args.days, seed=args.seed, start=args.start)
    try:
        cfg.validate()
    except ValueError as err:
        parser.print_usage(sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 2
    generate(args.out, cfg)
    n_events = pq.read_metadata(Path(args.out) / "events.parquet").num_rows
    print(f"wrote {n_events} events, {cfg.users} users, {cfg.items} items to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
