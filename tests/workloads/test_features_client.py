"""FeastHistoryClient against a scripted feature server (httpx.MockTransport; no Feast import)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest

from workloads.features.client import (
    FeastHistoryClient,
    FeatureServerError,
    InvalidUserIdError,
    UnknownUserError,
    parse_user_id,
)
from workloads.serving.history import FeastHistorySource, HistoryLookupError, HistorySource

KNOWN = {1: [5, 6, 7], 2: [9], 3: [4, 4, 8]}


class FakeFeatureServer:
    """Answers /get-online-features the way `feast serve` does (see test_features_server.py)."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[dict] = []
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/get-online-features"
        body = json.loads(request.content)
        self.requests.append(body)
        if self.status != 200:
            return httpx.Response(self.status, json="boom")
        users = body["entities"]["user_id"]
        return httpx.Response(
            200,
            json={
                "metadata": {"feature_names": ["user_id", "last_items"]},
                "results": [
                    {"values": users, "statuses": ["PRESENT"] * len(users), "event_timestamps": []},
                    {
                        "values": [KNOWN.get(u) for u in users],
                        "statuses": ["PRESENT" if u in KNOWN else "NOT_FOUND" for u in users],
                        "event_timestamps": [],
                    },
                ],
            },
        )


def _client(server: FakeFeatureServer, **kwargs) -> FeastHistoryClient:
    return FeastHistoryClient("http://features:6566/", transport=httpx.MockTransport(server), **kwargs)


def test_last_items_posts_one_request_and_keeps_request_order() -> None:
    server = FakeFeatureServer()
    got = asyncio.run(_client(server).last_items([3, "1", b"2", 3]))
    assert got == [[4, 4, 8], [5, 6, 7], [9], [4, 4, 8]]
    assert server.requests == [{"features": ["user_last_items:last_items"], "entities": {"user_id": [3, 1, 2]}}]


def test_unknown_users_are_all_named_with_a_404_status() -> None:
    with pytest.raises(UnknownUserError, match=r"unknown user_id \(2\): 77, 78") as err:
        asyncio.run(_client(FakeFeatureServer()).last_items([1, 77, 78]))
    assert err.value.status == 404 and err.value.user_ids == [77, 78]


@pytest.mark.parametrize("bad", ["abc", -1, 2**63, 1.5, True, b"\xff", "12a"])
def test_non_integer_user_ids_are_a_400_and_send_nothing(bad: object) -> None:
    server = FakeFeatureServer()
    with pytest.raises(InvalidUserIdError) as err:
        asyncio.run(_client(server).last_items([1, bad]))
    assert err.value.status == 400 and server.requests == []


def test_parse_user_id_accepts_ints_and_decimal_text() -> None:
    assert [parse_user_id(v) for v in (0, "42", b" 7 ", 2**63 - 1)] == [0, 42, 7, 2**63 - 1]


def test_feature_server_failures_are_a_503() -> None:
    with pytest.raises(FeatureServerError, match="answered 500") as err:
        asyncio.run(_client(FakeFeatureServer(status=500)).last_items([1]))
    assert err.value.status == 503

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = FeastHistoryClient("http://127.0.0.1:9", transport=httpx.MockTransport(refuse))
    with pytest.raises(FeatureServerError, match="unreachable"):
        asyncio.run(client.last_items([1]))

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": []})

    client = FeastHistoryClient("http://x", transport=httpx.MockTransport(garbage))
    with pytest.raises(FeatureServerError, match="unexpected reply"):
        asyncio.run(client.last_items([1]))


def test_cache_serves_known_users_until_the_ttl_expires() -> None:
    server = FakeFeatureServer()
    now = [100.0]
    client = _client(server, cache_ttl_seconds=30.0, clock=lambda: now[0])

    async def scenario() -> None:
        assert await client.last_items([1, 2]) == [[5, 6, 7], [9]]
        assert await client.last_items([2, 1, 3]) == [[9], [5, 6, 7], [4, 4, 8]]  # only 3 is fetched
        with pytest.raises(UnknownUserError):
            await client.last_items([1, 99])
        with pytest.raises(UnknownUserError):  # unknown users are not cached
            await client.last_items([99])
        now[0] += 31.0
        assert await client.last_items([1]) == [[5, 6, 7]]  # expired: fetched again

    asyncio.run(scenario())
    assert [r["entities"]["user_id"] for r in server.requests] == [[1, 2], [3], [99], [99], [1]]


def test_cache_is_bounded_least_recently_used_first() -> None:
    server = FakeFeatureServer()
    client = _client(server, cache_ttl_seconds=60.0, cache_max_entries=2)

    async def scenario() -> None:
        await client.last_items([1, 2])
        await client.last_items([1])  # 1 is now the most recent
        await client.last_items([3])  # evicts 2
        await client.last_items([1, 2])

    asyncio.run(scenario())
    assert [r["entities"]["user_id"] for r in server.requests] == [[1, 2], [3], [2]]


def test_serving_history_source_gives_unknown_and_invalid_users_an_empty_history() -> None:
    source = FeastHistorySource("http://features:6566", transport=httpx.MockTransport(FakeFeatureServer()))
    assert isinstance(source, HistorySource)
    assert asyncio.run(source.histories(["1", "77", "abc", "2"])) == [(5, 6, 7), (), (), (9,)]
    assert "http://features:6566" in source.name


def test_serving_history_source_turns_server_failures_into_lookup_errors() -> None:
    source = FeastHistorySource("http://features:6566", transport=httpx.MockTransport(FakeFeatureServer(503)))
    with pytest.raises(HistoryLookupError, match="answered 503"):
        asyncio.run(source.histories(["1"]))


def test_client_and_renderer_do_not_import_feast() -> None:
    code = (
        "import sys, workloads.features.client, workloads.features.render, workloads.features.server, "
        "workloads.features.pipeline, workloads.serving.history; "
        "print(sorted(m for m in sys.modules if m == 'feast' or m.startswith('feast.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
