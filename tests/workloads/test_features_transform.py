"""The batch transform: exact values on a hand-made log, and a brute-force oracle on generated data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from workloads.data.generate import GenerateConfig, generate_tables
from workloads.features.transform import TIMESTAMP, TransformConfig, build_feature_tables

UTC = dt.UTC
CREATED = dt.datetime(2030, 1, 1, tzinfo=UTC)


def _log(rows: list[tuple[int, int, str, str]]) -> pa.Table:
    """(user, item, event_type, ISO time) rows -> an event log of the data contract."""
    rows = sorted(rows, key=lambda r: r[3])
    return pa.table(
        {
            "user_id": pa.array([r[0] for r in rows], pa.int64()),
            "item_id": pa.array([r[1] for r in rows], pa.int64()),
            "session_id": pa.array([0] * len(rows), pa.int64()),
            "event_type": pa.array([r[2] for r in rows], pa.string()),
            "event_timestamp": pa.array([dt.datetime.fromisoformat(r[3]) for r in rows], TIMESTAMP),
        }
    )


def _rows(table: pa.Table, key: str) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for row in table.to_pylist():
        out.setdefault(row[key], []).append(row)
    return out


def test_last_items_are_stamped_at_the_next_snapshot_and_keep_the_newest_n() -> None:
    log = _log(
        [(7, i, "view", f"2025-01-01T{10 + i}:00:00+00:00") for i in range(1, 6)]
        + [(7, 9, "purchase", "2025-01-02T08:00:00+00:00")]
    )
    tables = build_feature_tables(log, TransformConfig(history_length=3, created_at=CREATED))
    rows = _rows(tables.user_last_items, "user_id")[7]
    assert [(r["event_timestamp"], r["last_items"]) for r in rows] == [
        (dt.datetime(2025, 1, 2, tzinfo=UTC), [3, 4, 5]),
        (dt.datetime(2025, 1, 3, tzinfo=UTC), [4, 5, 9]),
    ]
    assert all(r["created_timestamp"] == CREATED for r in rows)
    assert tables.first_snapshot == dt.datetime(2025, 1, 2, tzinfo=UTC)
    assert tables.last_snapshot == dt.datetime(2025, 1, 3, tzinfo=UTC)


def test_windowed_counts_decay_to_an_explicit_zero_row() -> None:
    log = _log(
        [
            (1, 10, "view", "2025-01-01T09:00:00+00:00"),
            (1, 10, "purchase", "2025-01-01T09:05:00+00:00"),
            (1, 11, "view", "2025-01-01T09:10:00+00:00"),
            (2, 10, "view", "2025-01-09T12:00:00+00:00"),  # keeps the log running past day 8
        ]
    )
    tables = build_feature_tables(log, TransformConfig(created_at=CREATED))
    user1 = [
        (r["event_timestamp"].day, r["events_24h"], r["events_7d"], r["purchases_7d"], r["distinct_items"])
        for r in _rows(tables.user_activity, "user_id")[1]
    ]
    # Visible from Jan 2; the 24 h window empties on Jan 3, the 7 d window on Jan 9.
    assert user1 == [(2, 3, 3, 1, 2), (3, 0, 3, 1, 2), (9, 0, 0, 0, 2)]
    item10 = [
        (r["event_timestamp"].day, r["events_7d"], r["purchases_7d"])
        for r in _rows(tables.item_popularity, "item_id")[10]
    ]
    assert item10 == [(2, 2, 1), (9, 0, 0), (10, 1, 0)]


def test_config_rejects_snapshot_steps_that_do_not_divide_a_day_and_naive_times() -> None:
    with pytest.raises(ValueError, match=r"snapshot_every_hours=5 must divide 24.*created_at=.*timezone-aware"):
        TransformConfig(snapshot_every_hours=5, created_at=dt.datetime(2025, 1, 1))


@pytest.mark.parametrize("hours", [24, 6])
def test_every_row_equals_a_brute_force_recomputation_from_earlier_events_only(hours: int) -> None:
    events, _, _ = generate_tables(GenerateConfig(users=25, items=40, days=9, seed=3))
    n = 5
    tables = build_feature_tables(events, TransformConfig(history_length=n, snapshot_every_hours=hours))
    df = events.to_pandas()
    ts = df["event_timestamp"]

    def before(t):  # events strictly before the snapshot time
        return df[ts < t]

    for row in tables.user_last_items.to_pylist():
        seen = before(row["event_timestamp"])
        seen = seen[seen.user_id == row["user_id"]]
        assert row["last_items"] == seen.item_id.tolist()[-n:], row
    last_per_user: dict[int, dict] = {}
    for row in tables.user_activity.to_pylist():
        t = row["event_timestamp"]
        seen = before(t)
        mine = seen[seen.user_id == row["user_id"]]
        expected = {
            "events_24h": int((mine.event_timestamp >= t - dt.timedelta(hours=24)).sum()),
            "events_7d": int((mine.event_timestamp >= t - dt.timedelta(days=7)).sum()),
            "purchases_7d": int(
                ((mine.event_timestamp >= t - dt.timedelta(days=7)) & (mine.event_type == "purchase")).sum()
            ),
            "distinct_items": int(mine.item_id.nunique()),
        }
        assert {k: row[k] for k in expected} == expected, row
        previous = last_per_user.get(row["user_id"])
        assert previous is None or any(previous[k] != row[k] for k in expected), f"unchanged row kept: {row}"
        last_per_user[row["user_id"]] = row
    for row in tables.item_popularity.to_pylist():
        t = row["event_timestamp"]
        seen = before(t)
        mine = seen[(seen.item_id == row["item_id"]) & (seen.event_timestamp >= t - dt.timedelta(days=7))]
        assert (row["events_7d"], row["purchases_7d"]) == (len(mine), int((mine.event_type == "purchase").sum()))
    # The latest row of every user matches the whole log (nothing is lost at the end).
    final = tables.last_snapshot
    assert final > ts.max()
    latest = {r["user_id"]: r for r in tables.user_last_items.to_pylist()}
    for uid, group in df.groupby("user_id"):
        assert latest[uid]["last_items"] == group.item_id.tolist()[-n:]
    assert set(np.unique(tables.user_activity.column("event_timestamp").to_numpy())) <= set(
        np.datetime64(final.replace(tzinfo=None)) - np.arange(tables.snapshots) * np.timedelta64(hours, "h")
    )
