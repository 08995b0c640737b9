"""The model server under real uvicorn: concurrent load, a full queue, and SIGTERM draining."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.workloads.test_serving_support import (  # noqa: F401 (one_torch_thread is a fixture)
    PYTHON,
    ROOT,
    free_port,
    infer_body,
    one_torch_thread,
    uvicorn_in_thread,
    wait_until,
    write_model_dir,
)
from workloads.serving.app import ServerConfig, create_app
from workloads.serving.model_runner import ModelRunner

INFER = "/v2/models/recommender/infer"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("model"))


async def blast(base_url: str, requests: int) -> list[httpx.Response]:
    """``requests`` inference requests at once, each with a different history."""
    limits = httpx.Limits(max_connections=requests, max_keepalive_connections=requests)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        return await asyncio.gather(*(
            client.post(INFER, json=infer_body([[1 + i % 50, 1 + (i * 7) % 50]], k=3)) for i in range(requests)))


def test_two_hundred_concurrent_requests_get_no_5xx_and_batch_together(model_dir: Path) -> None:
    app = create_app(ModelRunner(model_dir), ServerConfig(max_batch_size=32, max_batch_delay_ms=5, max_queue=256))
    with uvicorn_in_thread(app) as base_url:
        wait_until(lambda: httpx.get(f"{base_url}/v2/health/ready").status_code == 200, what="readiness")
        replies = asyncio.run(blast(base_url, 200))
        batches = app.state.batcher
        assert Counter(r.status_code for r in replies) == {200: 200}
        assert all(len(r.json()["outputs"][0]["data"]) == 3 for r in replies)
        assert batches.high_water_mark <= 256
        rows = _histogram(httpx.get(f"{base_url}/metrics").text, "gpuplane_serving_batch_size")
    assert rows["sum"] >= 200 and rows["count"] < 200, f"expected shared batches, got {rows}"


def test_full_queue_answers_503_with_retry_after_and_stays_bounded(model_dir: Path) -> None:
    app = create_app(ModelRunner(model_dir), ServerConfig(max_batch_size=1, max_batch_delay_ms=0, max_queue=2))
    with uvicorn_in_thread(app) as base_url:
        wait_until(lambda: httpx.get(f"{base_url}/v2/health/ready").status_code == 200, what="readiness")
        replies = asyncio.run(blast(base_url, 100))
        high_water = app.state.batcher.high_water_mark
    codes = Counter(r.status_code for r in replies)
    assert set(codes) <= {200, 503} and codes[503] > 0 and codes[200] > 0, codes
    refused = next(r for r in replies if r.status_code == 503)
    assert refused.headers["Retry-After"] == "1"
    assert "server is at capacity" in refused.json()["error"]
    assert high_water <= 2


def _histogram(metrics_text: str, name: str) -> dict[str, float]:
    values = {}
    for line in metrics_text.splitlines():
        for part in ("sum", "count"):
            if line.startswith(f"{name}_{part} "):
                values[part] = float(line.split()[1])
    return values


@pytest.fixture
def server_process(model_dir: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "workloads.serving", "--model-dir", str(model_dir), "--port", str(port),
             "--max-batch-delay-ms", "2000", "--max-batch-size", "64", "--torch-threads", "1"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc, f"http://127.0.0.1:{port}", log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return 0


@pytest.mark.slow
def test_sigterm_drains_in_flight_requests_then_exits_zero(
        server_process: tuple[subprocess.Popen[bytes], str, Path]) -> None:
    proc, base_url, log = server_process
    wait_until(lambda: _status(f"{base_url}/v2/health/ready") == 200, 60, "server readiness")
    replies: list[httpx.Response] = []

    def one(i: int) -> None:  # waits up to 2 s in the queue (--max-batch-delay-ms 2000)
        replies.append(httpx.post(f"{base_url}{INFER}", json=infer_body([[i + 1]], k=2), timeout=30))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    wait_until(lambda: "gpuplane_serving_in_flight_requests 5.0" in httpx.get(f"{base_url}/metrics").text,
               10, "5 requests in flight")
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: _status(f"{base_url}/v2/health/ready") == 503, 10, "readiness false after SIGTERM")
    late = httpx.post(f"{base_url}{INFER}", json=infer_body([[1]]), timeout=10)
    for t in threads:
        t.join(30)
    assert proc.wait(30) == 0, log.read_text()
    assert (late.status_code, late.json()["error"]) == (503, "server is shutting down; retry on another replica")
    assert [r.status_code for r in replies] == [200] * 5
    assert "stopped (exit code 0)" in log.read_text()
