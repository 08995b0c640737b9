"""`feast serve` as a subprocess on loopback, read by the HTTP client and the serving history source."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from workloads.data.generate import GenerateConfig, generate
from workloads.features.client import FeastHistoryClient, UnknownUserError
from workloads.features.pipeline import materialize_local
from workloads.features.server import FeatureServer
from workloads.serving.history import FeastHistorySource


def test_feature_server_refuses_a_directory_that_is_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"feature_store\.yaml is missing"):
        FeatureServer(tmp_path)


@pytest.mark.slow
def test_feature_server_answers_the_client_with_each_users_latest_items(tmp_path: Path) -> None:
    generate(tmp_path / "raw", GenerateConfig(users=30, items=50, days=3, seed=7))
    materialize_local(tmp_path / "raw", tmp_path / "repo", history_length=8)
    table = pq.read_table(tmp_path / "repo" / "data" / "user_last_items.parquet").to_pandas()
    latest = table.sort_values("event_timestamp").groupby("user_id").last()["last_items"]
    users = [int(u) for u in sorted(latest.index)[:5]]

    with FeatureServer(tmp_path / "repo") as server:
        assert server.startup_seconds is not None and server.url.startswith("http://127.0.0.1:")

        async def scenario() -> None:
            async with FeastHistoryClient(server.url, cache_ttl_seconds=60) as client:
                assert await client.last_items(users) == [list(latest[u]) for u in users]
                with pytest.raises(UnknownUserError, match="123456789"):
                    await client.last_items([users[0], 123456789])
            source = FeastHistorySource(server.url)
            got = await source.histories([str(users[0]), "123456789", "not-a-user"])
            assert got == [tuple(latest[users[0]]), (), ()]
            await source.aclose()

        asyncio.run(scenario())
    assert all(len(items) <= 8 for items in latest)
