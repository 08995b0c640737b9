"""The synthetic event log: the data contract, determinism, and the structure it promises."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workloads.data.generate import GenerateConfig, generate, generate_tables, main

UTC_US = pa.timestamp("us", tz="UTC")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    assert main(["--out", str(out), "--users", "400", "--items", "300", "--days", "7", "--seed", "11"]) == 0
    return out


def test_files_follow_the_data_contract(generated: Path) -> None:
    events = pq.read_table(generated / "events.parquet")
    users = pq.read_table(generated / "users.parquet")
    items = pq.read_table(generated / "items.parquet")
    assert events.schema == pa.schema(
        [("user_id", pa.int64()), ("item_id", pa.int64()), ("session_id", pa.int64()),
         ("event_type", pa.string()), ("event_timestamp", UTC_US)]
    ), events.schema
    assert users.schema == pa.schema([("user_id", pa.int64()), ("segment", pa.int64()), ("created_timestamp", UTC_US)])
    assert items.schema == pa.schema([("item_id", pa.int64()), ("category", pa.int64()), ("price_usd", pa.float64())])

    ts = events["event_timestamp"].cast(pa.int64()).to_numpy()
    assert (np.diff(ts) >= 0).all(), "events.parquet must be sorted by event_timestamp"
    item_ids = events["item_id"].to_numpy()
    assert item_ids.min() >= 1 and item_ids.max() <= 300
    assert set(events["event_type"].to_pylist()) == {"view", "cart", "purchase"}
    assert set(events["user_id"].to_numpy()) <= set(users["user_id"].to_numpy())
    assert items["item_id"].to_pylist() == list(range(1, 301))
    assert (items["price_usd"].to_numpy() > 0).all()
    assert users.num_rows == 400 and events.num_rows > 400 * 7

    meta = json.loads((generated / "meta.json").read_text())
    assert set(meta) == {"users", "items", "days", "seed", "start"}
    assert (meta["users"], meta["items"], meta["days"], meta["seed"]) == (400, 300, 7, 11)
    start_us = pa.scalar(np.datetime64(meta["start"].replace("+00:00", ""), "us")).value
    assert ts.min() >= start_us and ts.max() < start_us + 8 * 86_400 * 1_000_000


def test_a_cart_or_purchase_follows_a_view_of_the_same_item_in_its_session(generated: Path) -> None:
    events = pq.read_table(generated / "events.parquet").to_pandas()
    seen: dict[int, set[int]] = defaultdict(set)
    for session, item, kind in zip(events.session_id, events.item_id, events.event_type, strict=True):
        if kind == "view":
            seen[session].add(item)
        else:
            assert item in seen[session], f"{kind} of item {item} in session {session} before any view of it"
    sessions_per_user = events.groupby("session_id").user_id.nunique()
    assert (sessions_per_user == 1).all(), "a session belongs to one user"


def test_same_seed_same_tables_and_another_seed_differs() -> None:
    cfg = GenerateConfig(users=200, items=150, days=3, seed=4)
    first, second = generate_tables(cfg), generate_tables(cfg)
    for a, b in zip(first, second, strict=True):
        assert a.equals(b)
    other = generate_tables(GenerateConfig(users=200, items=150, days=3, seed=5))
    assert not first[0].equals(other[0])


def test_popularity_is_skewed_and_next_items_are_predictable(generated: Path) -> None:
    """What the generator promises: Zipf-like popularity, and a next item that depends on the current one."""
    events = pq.read_table(generated / "events.parquet").to_pandas()
    views = events[events.event_type == "view"].sort_values(["session_id", "event_timestamp"])
    counts = np.sort(np.bincount(views.item_id, minlength=301)[1:])[::-1]
    assert counts[:30].sum() > 0.3 * counts.sum(), "the top 10% of items should draw a large share of views"

    session, item = views.session_id.to_numpy(), views.item_id.to_numpy()
    same_session = session[1:] == session[:-1]
    pairs = list(zip(item[:-1][same_session], item[1:][same_session], strict=True))
    half = len(pairs) // 2
    successors: dict[int, Counter[int]] = defaultdict(Counter)
    for a, b in pairs[:half]:
        successors[a][b] += 1
    top_item = Counter(b for _, b in pairs[:half]).most_common(1)[0][0]
    test = pairs[half:]
    markov = np.mean([successors[a].most_common(1)[0][0] == b if successors[a] else False for a, b in test])
    popular = np.mean([b == top_item for _, b in test])
    assert markov > 3 * popular, f"first-order Markov top-1 {markov:.3f} vs popularity top-1 {popular:.3f}"


def test_invalid_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--users", "0", "--start", "2025-01-01"]) == 2
    err = capsys.readouterr().err
    assert "--users=0 must be at least 1" in err and "has no UTC offset" in err
    assert not (tmp_path / "meta.json").exists()


def test_generate_writes_meta_last_and_returns_it(tmp_path: Path) -> None:
    meta = generate(tmp_path / "d", GenerateConfig(users=20, items=40, days=1, seed=0))
    assert json.loads((tmp_path / "d" / "meta.json").read_text()) == meta
    assert not list((tmp_path / "d").glob(".*tmp*")), "no temporary files left behind"
