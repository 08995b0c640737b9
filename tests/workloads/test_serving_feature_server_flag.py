"""`python -m workloads.serving --feature-server-url`: user_id requests are answered from a feature server.

The model server runs as a real process; a stand-in for `feast serve` (same HTTP contract as
tests/workloads/test_features_client.py) runs in a thread on loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.workloads.test_serving_support import free_port, uvicorn_in_thread, wait_until, write_model_dir

KNOWN = {7: [3, 4, 5], 8: [9]}


async def get_online_features(request: Request) -> JSONResponse:
    users = (await request.json())["entities"]["user_id"]
    return JSONResponse(
        {
            "metadata": {"feature_names": ["user_id", "last_items"]},
            "results": [
                {"values": users, "statuses": ["PRESENT"] * len(users), "event_timestamps": []},
                {"values": [KNOWN.get(u) for u in users], "statuses": ["PRESENT" if u in KNOWN else "NOT_FOUND" for u in users], "event_timestamps": []},
            ],
        }
    )


@pytest.mark.slow
def test_user_id_requests_use_the_feature_server(tmp_path):
    model_dir = write_model_dir(tmp_path / "model")
    fake_feast = Starlette(routes=[Route("/get-online-features", get_online_features, methods=["POST"])])
    with uvicorn_in_thread(fake_feast) as feast_url:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "workloads.serving", "--model-dir", str(model_dir), "--port", str(port), "--torch-threads", "1", "--feature-server-url", feast_url],
            env={**os.environ, "PYTHONPATH": os.getcwd()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _ready(base), 60.0, "model server ready")
            body = {"inputs": [{"name": "user_id", "datatype": "INT64", "shape": [2], "data": [7, 8]}, {"name": "k", "datatype": "INT64", "shape": [1], "data": [3]}]}
            r = httpx.post(f"{base}/v2/models/recommender/infer", json=body, timeout=10)
            assert r.status_code == 200, r.text
            outputs = {o["name"]: o for o in r.json()["outputs"]}
            assert outputs["top_items"]["shape"] == [2, 3]
            # The same histories sent as item_ids give the same answer (left-padded rows).
            direct = {"inputs": [{"name": "item_ids", "datatype": "INT64", "shape": [2, 3], "data": [[3, 4, 5], [0, 0, 9]]}, {"name": "k", "datatype": "INT64", "shape": [1], "data": [3]}]}
            r2 = httpx.post(f"{base}/v2/models/recommender/infer", json=direct, timeout=10)
            assert {o["name"]: o for o in r2.json()["outputs"]}["top_items"]["data"] == outputs["top_items"]["data"]
            unknown = {"inputs": [{"name": "user_id", "datatype": "INT64", "shape": [1], "data": [12345]}]}
            r3 = httpx.post(f"{base}/v2/models/recommender/infer", json=unknown, timeout=10)
            assert 400 <= r3.status_code < 500 and "error" in r3.json()
        finally:
            proc.terminate()
            proc.wait(30)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
