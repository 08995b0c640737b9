"""The local pipeline for real: transform, feast apply, SQLite materialisation, point-in-time reads."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from workloads.data.generate import GenerateConfig, generate
from workloads.features.__main__ import main
from workloads.features.pipeline import historical_features, materialize_local, online_features
from workloads.features.render import render_feature_store_yaml


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("features")
    generate(base / "raw", GenerateConfig(users=40, items=60, days=9, seed=5))
    lines: list[str] = []
    summary = materialize_local(base / "raw", base / "repo", progress=lines.append)
    assert any("materialized" in line for line in lines), lines
    return base / "repo", summary


def test_materialize_local_writes_a_self_contained_feast_repository(repo: tuple[Path, dict]) -> None:
    path, summary = repo
    for name in ("feature_store.yaml", "features.py", "data/registry.db", "data/online.db"):
        assert (path / name).exists(), name
    for table in ("user_last_items", "user_activity", "item_popularity"):
        assert summary["rows"][table] == pq.read_metadata(path / "data" / f"{table}.parquet").num_rows > 0
    assert summary["snapshots"] in (9, 10)  # 9 days from midnight; the last sessions may spill over
    assert summary["events"] > 0 and summary["users"] <= 40
    assert set(summary["seconds"]) == {"read", "transform", "import_feast", "write", "apply", "materialize", "total"}


def test_online_store_serves_each_users_latest_snapshot(repo: tuple[Path, dict]) -> None:
    path, _ = repo
    table = pq.read_table(path / "data" / "user_last_items.parquet").to_pandas()
    latest = table.sort_values("event_timestamp").groupby("user_id").last()["last_items"]
    users = sorted(latest.index)[:10]
    got = online_features(path, [*users, 10_000_000])
    assert got["user_id"] == [*users, 10_000_000]
    assert got["last_items"][:-1] == [list(latest[u]) for u in users]
    assert got["last_items"][-1] is None  # unknown user


def test_historical_features_never_use_a_value_stamped_after_the_label(repo: tuple[Path, dict]) -> None:
    path, _ = repo
    rows = pq.read_table(path / "data" / "user_last_items.parquet").to_pandas().sort_values("event_timestamp")
    # Labels at every snapshot time of every user, and one microsecond before it.
    labels, expected = [], []
    for user_id, group in rows.groupby("user_id"):
        previous = None
        for ts, items in zip(group["event_timestamp"], group["last_items"], strict=True):
            labels += [(user_id, ts - pd.Timedelta(microseconds=1)), (user_id, ts)]
            expected += [previous, list(items)]
            previous = list(items)
    entity_df = pd.DataFrame(labels, columns=["user_id", "event_timestamp"])
    entity_df["label"] = range(len(entity_df))  # extra columns ride along
    got = historical_features(path, entity_df, features=["user_last_items:last_items"])
    assert got["label"].tolist() == list(range(len(entity_df)))
    values = [None if g is None or (not hasattr(g, "__len__") and pd.isna(g)) else list(g) for g in got["last_items"]]
    mismatches = [(u, t, e, g) for (u, t), e, g in zip(labels, expected, values, strict=True) if g != e]
    assert not mismatches, mismatches[:3]
    assert sum(e is None for e in expected) == rows["user_id"].nunique()  # each user's first label is null


def test_historical_activity_features_match_the_snapshot_table(repo: tuple[Path, dict]) -> None:
    path, _ = repo
    activity = pq.read_table(path / "data" / "user_activity.parquet").to_pandas()
    sample = activity.sample(n=min(20, len(activity)), random_state=0)
    entity_df = pd.DataFrame(
        {"user_id": sample["user_id"], "event_timestamp": sample["event_timestamp"] + pd.Timedelta(minutes=5)}
    )
    got = historical_features(path, entity_df)
    for column in ("events_24h", "events_7d", "purchases_7d", "distinct_items"):
        assert got[column].tolist() == sample[column].tolist(), column
        assert str(got[column].dtype) == "Int64"


def test_cli_materializes_and_prints_a_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate(tmp_path / "raw", GenerateConfig(users=5, items=10, days=2, seed=1))
    assert main(["materialize", "--data", str(tmp_path / "raw"), "--repo-dir", str(tmp_path / "repo")]) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert summary["repo_dir"] == str(tmp_path / "repo")
    assert "[features] materialized" in out.err


def test_cli_rejects_a_data_directory_without_meta_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["materialize", "--data", str(tmp_path), "--repo-dir", str(tmp_path / "repo")]) == 2
    assert "meta.json is missing" in capsys.readouterr().err


def test_historical_features_rejects_labels_without_a_timestamp(repo: tuple[Path, dict]) -> None:
    with pytest.raises(ValueError, match=r"lacks columns \['event_timestamp'\]"):
        historical_features(repo[0], pd.DataFrame({"user_id": [1]}))


def test_created_at_is_written_to_every_row(tmp_path: Path) -> None:
    generate(tmp_path / "raw", GenerateConfig(users=5, items=10, days=2, seed=2))
    created = dt.datetime(2031, 5, 1, tzinfo=dt.UTC)
    materialize_local(tmp_path / "raw", tmp_path / "repo", created_at=created)
    table = pq.read_table(tmp_path / "repo" / "data" / "user_activity.parquet")
    assert set(table.column("created_timestamp").to_pylist()) == {created}


@pytest.mark.slow
def test_events_tables_and_registry_can_live_on_a_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the cluster's materialisation job does: s3:// data, offline root and registry (moto)."""
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for key, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,  # boto3, s3fs and pyarrow
            "FEAST_S3_ENDPOINT_URL": endpoint,  # Feast's S3 registry store
        }.items():
            monkeypatch.setenv(key, value)
        import boto3
        import fsspec

        boto3.client("s3").create_bucket(Bucket="features-test")
        generate(tmp_path / "raw", GenerateConfig(users=10, items=20, days=2, seed=4))
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        for name in ("events.parquet", "meta.json"):
            fs.put(str(tmp_path / "raw" / name), f"features-test/events/{name}")
        rendered = tmp_path / "feature_store.yaml"
        rendered.write_text(
            render_feature_store_yaml("local").replace("path: data/registry.db", "path: s3://features-test/feast/registry.pb")
        )
        summary = materialize_local(
            "s3://features-test/events", tmp_path / "repo", feature_store_yaml=rendered,
            offline_root="s3://features-test/features",
        )
        assert sorted(fs.ls("features-test/features")) == [
            f"features-test/features/{t}.parquet" for t in ("item_popularity", "user_activity", "user_last_items")
        ]
        assert fs.exists("features-test/feast/registry.pb") and not (tmp_path / "repo" / "data" / "registry.db").exists()
        assert summary["offline_root"] == "s3://features-test/features"
        activity = pq.read_table("s3://features-test/features/user_activity.parquet").to_pandas()
        latest = activity.sort_values("event_timestamp").groupby("user_id").last()
        labels = pd.DataFrame({"user_id": latest.index, "event_timestamp": pd.Timestamp(summary["last_snapshot"])})
        got = historical_features(tmp_path / "repo", labels, features=["user_activity:events_7d"])
        assert got["events_7d"].tolist() == latest["events_7d"].tolist()
    finally:
        server.stop()
