"""The local two-tier / weighted router (workloads/serving/router.py).

The router runs in real uvicorn (in a thread) in front of stand-in upstreams: small ASGI apps in
real uvicorn threads that answer with their name after a set delay and export a settable
``gpuplane_serving_queue_depth``; the cold-start test puts the real activator (with its stand-in
server subprocess) behind the router as the burst tier; one test runs the router's command line
as a real process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest

from tests.workloads.test_activator_scale_to_zero import stand_in
from tests.workloads.test_serving_support import PYTHON, ROOT, free_port, uvicorn_in_thread, wait_until
from workloads.serving.activator import ActivatorConfig, create_activator_app
from workloads.serving.router import (
    BadRouterInput,
    RouterConfig,
    RouterMetrics,
    RouterState,
    config_from_args,
    create_router_app,
)


class StandIn:
    """An upstream that answers ``{"tier": name, "path": ...}`` after ``delay_seconds``."""

    def __init__(self, name: str, delay_seconds: float = 0.0) -> None:
        self.name, self.delay_seconds = name, delay_seconds
        self.queue_depth = 0.0
        self.seen = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/metrics":
            payload = b"# TYPE gpuplane_serving_queue_depth gauge\ngpuplane_serving_queue_depth %f\n" % self.queue_depth
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(payload))]})
            await send({"type": "http.response.body", "body": payload})
            return
        self.seen += 1
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        out = json.dumps({"tier": self.name, "path": scope["path"], "body": body.decode()}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]})
        await send({"type": "http.response.body", "body": out})


@contextmanager
def router(config_backends: dict[str, str], **kwargs: Any) -> Iterator[tuple[str, Any]]:
    app = create_router_app(RouterConfig(backends=tuple(config_backends.items()), **kwargs))
    with uvicorn_in_thread(app) as url:
        yield url, app


@contextmanager
def two_tiers(steady_delay: float = 0.0, burst_delay: float = 0.0, **kwargs: Any) -> Iterator[tuple[str, StandIn, StandIn]]:
    steady, burst = StandIn("steady", steady_delay), StandIn("burst", burst_delay)
    with ExitStack() as stack:
        steady_url = stack.enter_context(uvicorn_in_thread(steady))
        burst_url = stack.enter_context(uvicorn_in_thread(burst))
        url, _ = stack.enter_context(router({"steady": steady_url, "burst": burst_url}, **kwargs))
        yield url, steady, burst


async def concurrent(url: str, count: int, path: str = "/v2/models/m/infer") -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        return await asyncio.gather(*(client.post(f"{url}{path}", content=f"req-{i}".encode()) for i in range(count)))


def tiers(replies: list[httpx.Response]) -> Counter[str]:
    return Counter(r.headers.get("x-gpuplane-backend", "?") for r in replies)


def status(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/router/status").json()  # type: ignore[no-any-return]


def test_below_the_threshold_every_request_goes_to_the_steady_tier() -> None:
    with two_tiers(steady_delay=0.2, overflow_threshold=4) as (url, steady, burst):
        sequential = [httpx.post(f"{url}/v2/models/m/infer", content=b"x", timeout=30) for _ in range(5)]
        parallel = asyncio.run(concurrent(url, 4))  # exactly at the steady tier's capacity
        replies = sequential + parallel
        assert Counter(r.status_code for r in replies) == {200: 9}
        assert {r.json()["tier"] for r in replies} == {"steady"}
        assert tiers(replies) == {"steady": 9}
        assert (steady.seen, burst.seen) == (9, 0)
        s = status(url)
        assert s["mode"] == "overflow" and s["overflows"] == 0
        assert s["backends"]["steady"]["requests"] == 9 and s["backends"]["burst"]["requests"] == 0


def test_above_the_threshold_the_surplus_goes_to_the_burst_tier() -> None:
    with two_tiers(steady_delay=1.0, overflow_threshold=3) as (url, _steady, _burst):
        replies = asyncio.run(concurrent(url, 10))
        assert Counter(r.status_code for r in replies) == {200: 10}
        assert Counter(r.json()["tier"] for r in replies) == {"steady": 3, "burst": 7}
        assert sorted(r.json()["body"] for r in replies) == sorted(f"req-{i}" for i in range(10))
        s = status(url)
        assert (s["backends"]["steady"]["requests"], s["backends"]["burst"]["requests"], s["overflows"]) == (3, 7, 7)
        assert s["backends"]["steady"]["latency_ms"]["p50"] >= 1000 > s["backends"]["burst"]["latency_ms"]["p50"]
        # once the surge has drained, requests go back to the steady tier
        assert httpx.post(f"{url}/v2/models/m/infer", timeout=30).json()["tier"] == "steady"


def test_queue_depth_signal_spills_while_the_polled_queue_is_at_the_threshold() -> None:
    with two_tiers(overflow_threshold=5, overflow_signal="queue-depth", poll_interval_seconds=0.02) as (
            url, steady, _burst):
        assert httpx.post(f"{url}/a", timeout=30).json()["tier"] == "steady"
        steady.queue_depth = 7  # other clients queue on the steady server
        wait_until(lambda: status(url)["steady_load"] >= 7, 5, "queue depth polled")
        assert httpx.post(f"{url}/b", timeout=30).json()["tier"] == "burst"
        steady.queue_depth = 4
        wait_until(lambda: status(url)["steady_load"] == 4, 5, "queue depth polled")
        assert httpx.post(f"{url}/c", timeout=30).json()["tier"] == "steady"


def test_the_burst_tiers_cold_start_holds_requests_router_to_activator_to_server() -> None:
    steady = StandIn("steady", delay_seconds=3.0)
    activator = create_activator_app(ActivatorConfig(command=stand_in(1.0), idle_seconds=30.0,
                                                     ready_timeout_seconds=20.0))
    with uvicorn_in_thread(steady) as steady_url, uvicorn_in_thread(activator) as burst_url, \
            router({"steady": steady_url, "burst": burst_url}, overflow_threshold=1) as (url, _):
        assert httpx.get(f"{burst_url}/activator/status").json()["upstream"] == "stopped"
        started = time.monotonic()
        replies = asyncio.run(concurrent(url, 6))
        assert Counter(r.status_code for r in replies) == {200: 1, 201: 5}  # the stand-in server answers POST 201
        assert tiers(replies) == {"steady": 1, "burst": 5}
        assert len({r.json()["pid"] for r in replies if r.status_code == 201}) == 1  # one server start
        assert time.monotonic() - started >= 1.0  # held through the start, not refused
        metrics = httpx.get(f"{burst_url}/activator/metrics").text
        assert "gpuplane_activator_cold_starts_total 1.0" in metrics
        assert "gpuplane_activator_hold_seconds_count 5.0" in metrics
        assert status(url)["backends"]["burst"]["errors_5xx"] == 0


def test_a_burst_tier_that_fails_answers_502_naming_it_and_the_steady_tier_keeps_serving() -> None:
    steady = StandIn("steady", delay_seconds=0.5)
    dead = f"http://127.0.0.1:{free_port()}"
    with uvicorn_in_thread(steady) as steady_url, \
            router({"steady": steady_url, "burst": dead}, overflow_threshold=1, eject_seconds=30) as (url, _):
        replies = asyncio.run(concurrent(url, 3))
        codes = Counter((r.status_code, r.headers["x-gpuplane-backend"]) for r in replies)
        assert codes[(200, "steady")] >= 1 and codes[(502, "burst")] >= 1, codes
        failed = next(r for r in replies if r.status_code == 502)
        assert failed.json()["backend"] == "burst"
        assert failed.json()["error"].startswith(f"backend 'burst' ({dead}) unreachable")
        # the burst tier is ejected: overflow stays on the steady tier instead of failing
        again = asyncio.run(concurrent(url, 3))
        assert Counter(r.status_code for r in again) == {200: 3} and tiers(again) == {"steady": 3}
        s = status(url)["backends"]
        assert s["burst"]["ejected"] and s["burst"]["errors_5xx"] >= 1 and s["steady"]["errors_5xx"] == 0


def test_a_steady_tier_that_fails_answers_502_naming_it_and_the_burst_tier_takes_the_traffic() -> None:
    burst = StandIn("burst")
    dead = f"http://127.0.0.1:{free_port()}"
    with uvicorn_in_thread(burst) as burst_url, \
            router({"steady": dead, "burst": burst_url}, overflow_threshold=4, eject_seconds=3.0) as (url, _):
        first = httpx.post(f"{url}/infer", timeout=30)
        assert (first.status_code, first.json()["backend"]) == (502, "steady")
        after = [httpx.post(f"{url}/infer", timeout=30) for _ in range(3)]
        assert [(r.status_code, r.json()["tier"]) for r in after] == [(200, "burst")] * 3
        # Ejection long enough that three requests fit inside it on a loaded 2-core machine (0.5 s did not).
        time.sleep(3.1)  # ejection over: the steady tier is tried again (and fails again)
        assert httpx.post(f"{url}/infer", timeout=30).status_code == 502


def test_only_posts_spill_and_a_backend_path_and_header_are_applied_to_the_burst_tier() -> None:
    steady, burst = StandIn("steady", delay_seconds=1.0), StandIn("burst")
    seen: list[dict[str, Any]] = []

    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await burst(scope, receive, send)
            return
        seen.append({"path": scope["path"], "query": scope["query_string"], "headers": dict(scope["headers"])})
        await burst(scope, receive, send)

    with uvicorn_in_thread(steady) as steady_url, uvicorn_in_thread(echo) as burst_url, \
            router({"steady": steady_url, "burst": burst_url}, overflow_threshold=1,
                   backend_paths={"burst": "/endpoints/e/invocations"},
                   backend_headers={"burst": (("X-Amzn-SageMaker-Inference-Component", "ic-1"),)}) as (url, _):

        async def scenario() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                first = asyncio.create_task(client.post(f"{url}/v2/models/m/infer"))
                await asyncio.sleep(0.3)  # the steady tier is now at its threshold
                health, spilled = await asyncio.gather(client.get(f"{url}/v2/health/ready"),
                                                       client.post(f"{url}/v2/models/m/infer?x=1", content=b"{}"))
                return [await first, health, spilled]

        first, health, spilled = asyncio.run(scenario())
        assert tiers([first, health, spilled]) == {"steady": 2, "burst": 1}
        assert health.headers["x-gpuplane-backend"] == "steady"  # a GET never spills
        assert seen == [{"path": "/endpoints/e/invocations", "query": b"x=1", "headers": {
            **seen[0]["headers"], b"x-amzn-sagemaker-inference-component": b"ic-1"}}]


def test_a_backend_that_does_not_answer_in_time_gets_504_naming_it() -> None:
    with two_tiers(steady_delay=2.0, overflow_threshold=5, upstream_timeout_seconds=0.3) as (url, _, _):
        slow = httpx.post(f"{url}/infer", timeout=30)
        assert (slow.status_code, slow.json()["backend"]) == (504, "steady")
        assert "did not answer within 0.3s" in slow.json()["error"]


def test_split_weights_are_respected_over_http_and_in_the_choice() -> None:
    with two_tiers(mode="split", weights={"steady": 70, "burst": 30}, seed=7) as (url, steady, burst):
        with httpx.Client(base_url=url, timeout=30) as client:
            replies = [client.get("/x") for _ in range(400)]
        counts = tiers(replies)
        assert counts["steady"] + counts["burst"] == 400
        assert abs(counts["burst"] - 120) < 5 * (400 * 0.3 * 0.7) ** 0.5  # five standard deviations
        assert (steady.seen, burst.seen) == (counts["steady"], counts["burst"])
    state = RouterState(RouterConfig(backends=(("a", "http://h:1"), ("b", "http://h:2"), ("c", "http://h:3")),
                                     mode="split", weights={"a": 50, "b": 10, "c": 40}, seed=1), RouterMetrics())
    draws = Counter(state.choose().name for _ in range(50_000))
    assert {n: round(c / 50_000, 2) for n, c in draws.items()} == {"a": 0.5, "b": 0.1, "c": 0.4}
    state.set_weights({"b": 100})
    assert {state.choose().name for _ in range(100)} == {"b"}


def test_split_skips_an_ejected_backend() -> None:
    steady = StandIn("steady")
    dead = f"http://127.0.0.1:{free_port()}"
    with uvicorn_in_thread(steady) as steady_url, \
            router({"stable": steady_url, "canary": dead}, mode="split", weights={"stable": 50, "canary": 50},
                   seed=3, eject_seconds=30) as (url, _):
        replies = [httpx.get(f"{url}/x", timeout=30) for _ in range(20)]
        assert Counter(r.status_code for r in replies) == {502: 1, 200: 19}
        assert status(url)["backends"]["canary"]["requests"] == 1


def test_admin_routes_validate_weights_change_backends_reset_and_export_metrics() -> None:
    with two_tiers(mode="split", weights={"steady": 100}) as (url, _, _):
        bad = httpx.put(f"{url}/router/weights", json={"steady": 60, "burst": 30})
        assert bad.status_code == 422
        assert bad.json()["error"] == 'weights must sum to 100, got {"steady": 60, "burst": 30} (sum 90)'
        unknown = httpx.put(f"{url}/router/weights", json={"steady": 50, "canary": 50})
        assert (unknown.status_code, unknown.json()["error"]) == (
            422, "weights name unknown backends 'canary' (backends: steady, burst)")
        negative = httpx.put(f"{url}/router/weights", json={"steady": 120, "burst": -20})
        assert negative.status_code == 422 and "from 0 to 100" in negative.json()["error"]
        assert httpx.put(f"{url}/router/weights", content=b"{nope").status_code == 422
        assert status(url)["backends"]["steady"]["weight"] == 100  # unchanged by the refused requests

        ok = httpx.put(f"{url}/router/weights", json={"steady": 0, "burst": 100})
        assert ok.status_code == 200 and ok.json()["backends"]["burst"]["weight"] == 100
        assert httpx.get(f"{url}/y").json()["tier"] == "burst"

        canary = StandIn("canary")
        with uvicorn_in_thread(canary) as canary_url:
            added = httpx.put(f"{url}/router/backends", json={"canary": canary_url})
            assert added.status_code == 200 and added.json()["backends"]["canary"] == {
                "url": canary_url, "weight": 0.0, "requests": 0, "errors_5xx": 0, "in_flight": 0,
                "latency_ms": {"p50": None, "p99": None}, "ejected": False}
            assert httpx.put(f"{url}/router/weights", json={"canary": 100}).status_code == 200
            assert httpx.get(f"{url}/z").json()["tier"] == "canary"
        bad_url = httpx.put(f"{url}/router/backends", json={"x": "https://example.com/v1"})
        assert bad_url.status_code == 422 and "must be http://HOST:PORT" in bad_url.json()["error"]

        metrics = httpx.get(f"{url}/router/metrics").text
        assert 'gpuplane_router_requests_total{backend="canary",code="200"} 1.0' in metrics
        assert 'gpuplane_router_weight_percent{backend="canary"} 100.0' in metrics
        assert status(url)["backends"]["burst"]["requests"] == 1
        reset = httpx.post(f"{url}/router/reset").json()
        assert all(b["requests"] == 0 and b["latency_ms"]["p50"] is None for b in reset["backends"].values())


def test_overflow_mode_refuses_a_third_backend_but_replaces_a_url() -> None:
    with two_tiers(overflow_threshold=2) as (url, _, _burst):
        third = httpx.put(f"{url}/router/backends", json={"extra": "http://127.0.0.1:9"})
        assert third.status_code == 422 and "exactly two backends" in third.json()["error"]
        other = StandIn("other-burst")
        with uvicorn_in_thread(other) as other_url:
            assert httpx.put(f"{url}/router/backends", json={"burst": other_url}).status_code == 200
            assert status(url)["backends"]["burst"]["url"] == other_url


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "1", "--backend", "a=http://h:1"], "exactly two backends"),
    (["--port", "1", "--backend", "a"], "--backend takes NAME=VALUE"),
    (["--port", "1", "--backend", "a=http://h:1", "--backend", "a=http://h:2"], "backend names repeat"),
    (["--port", "1", "--backend", "a=http://h:1", "--backend", "b=http://h:2", "--overflow-threshold", "0"],
     "--overflow-threshold=0 must be at least 1"),
    (["--port", "1", "--backend", "a=https://h", "--backend", "b=http://h:2"], "must be http://HOST:PORT"),
    (["--port", "1", "--mode", "split", "--backend", "a=http://h:1", "--backend", "b=http://h:2",
      "--weight", "a=90"], "weights must sum to 100"),
    (["--port", "1", "--backend", "a=http://h:1", "--backend", "b=http://h:2", "--weight", "a=100"],
     "--weight applies to --mode split"),
    (["--port", "1"], "no backends"),
    (["--port", "1", "--backend", "a=http://h:1", "--backend", "b=http://h:2", "--backend-path", "c=/x"],
     "name unknown backends c"),
    (["--port", "1", "--backend", "a=http://h:1", "--backend", "b=http://h:2", "--backend-header", "b=nocolon"],
     "give HEADER:VALUE"),
])
def test_bad_command_lines_are_refused(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        config_from_args(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_settings_in_code_raise_one_error() -> None:
    with pytest.raises(BadRouterInput, match="mode 'random' is not one of overflow, split"):
        RouterState(RouterConfig(backends=(("a", "http://h:1"),), mode="random"), RouterMetrics())


def test_the_command_line_runs_a_router_process_that_exits_cleanly_on_sigterm() -> None:
    steady, burst = StandIn("steady", 0.5), StandIn("burst")
    port = free_port()
    with uvicorn_in_thread(steady) as steady_url, uvicorn_in_thread(burst) as burst_url:
        proc = subprocess.Popen([PYTHON, "-m", "workloads.serving.router", "--port", str(port),
                                 "--backend", f"steady={steady_url}", "--backend", f"burst={burst_url}",
                                 "--mode", "overflow", "--overflow-threshold", "1", "--log-level", "warning"],
                                cwd=ROOT)
        try:
            url = f"http://127.0.0.1:{port}"

            def up() -> bool:
                try:
                    return httpx.get(f"{url}/router/status").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(up, 20, "router process start")
            replies = asyncio.run(concurrent(url, 4))
            assert tiers(replies) == {"steady": 1, "burst": 3}
        finally:
            proc.terminate()
            assert proc.wait(20) == 0


def test_replacing_a_busy_backend_leaves_no_phantom_in_flight_requests() -> None:
    with ExitStack() as stack:
        old = stack.enter_context(uvicorn_in_thread(StandIn("old", 1.0)))
        new = stack.enter_context(uvicorn_in_thread(StandIn("new")))
        other = stack.enter_context(uvicorn_in_thread(StandIn("other")))
        url, _ = stack.enter_context(router({"steady": old, "burst": other}, mode="overflow", overflow_threshold=4))

        async def replace_mid_flight() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                busy = [asyncio.create_task(client.post(f"{url}/v2/models/m/infer", content=b"x")) for _ in range(3)]
                await asyncio.sleep(0.3)
                assert (await client.get(f"{url}/router/status")).json()["backends"]["steady"]["in_flight"] == 3
                assert (await client.put(f"{url}/router/backends", json={"steady": new})).status_code == 200
                return await asyncio.gather(*busy)

        replies = asyncio.run(replace_mid_flight())
        assert [r.status_code for r in replies] == [200, 200, 200]
        assert status(url)["backends"]["steady"]["in_flight"] == 0
