"""Serving rough edges: over-limit bodies get a readable 413, Triton's own HTTP client works
(JSON and binary tensors), every route's behaviour before the model is ready, and an activator
whose server listens on the wrong port fails fast with the fix.

Servers run as real uvicorn servers in a thread on loopback; the activator's upstream is the
stand-in server process of test_activator_scale_to_zero."""

from __future__ import annotations

import contextlib
import http.client
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.workloads.test_activator_scale_to_zero import stand_in
from tests.workloads.test_serving_support import (  # noqa: F401 (one_torch_thread is a fixture)
    free_port,
    infer_body,
    one_torch_thread,
    uvicorn_in_thread,
    wait_until,
    write_model_dir,
)
from workloads.serving.activator import ActivatorConfig, create_activator_app, fixed_port_in, parse_args
from workloads.serving.app import ServerConfig, create_app
from workloads.serving.bodies import worth_discarding
from workloads.serving.history import InMemoryHistorySource
from workloads.serving.model_runner import ModelRunner, PredictJob
from workloads.serving.protocol import ProtocolError, parse_infer_request

pytestmark = pytest.mark.usefixtures("one_torch_thread")
INFER = "/v2/models/recommender/infer"
BIG = b"x" * (64 << 20)  # the size the issue tried


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[str]:
    history = InMemoryHistorySource({"alice": [1, 2, 3], "bob": [4, 5]})
    app = create_app(ModelRunner(model_dir), ServerConfig(max_batch_size=8, max_batch_delay_ms=1), history_source=history)
    with uvicorn_in_thread(app) as url:
        wait_until(lambda: httpx.get(f"{url}/v2/health/ready").status_code == 200, 30, "readiness")
        yield url


def urllib_post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """urllib writes the whole body before it reads a reply: the client that used to see ECONNRESET."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --- 413 -----------------------------------------------------------------------------------


def test_a_64_mib_body_gets_a_413_with_an_oip_error_not_a_reset(server: str) -> None:
    status, body = urllib_post(server + INFER, BIG, {"Content-Type": "application/json"})
    assert status == 413
    assert b'"error"' in body and b"exceeds the limit of 1048576 bytes" in body
    assert httpx.get(f"{server}/v2/health/ready").status_code == 200  # and the server goes on


def test_a_chunked_body_over_the_limit_gets_a_413_too(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("POST", INFER, body=iter([b"x" * (1 << 20)] * 8), encode_chunked=True)
    reply = conn.getresponse()
    assert reply.status == 413 and b"exceeds the limit" in reply.read()
    assert reply.getheader("connection") == "close"
    conn.close()


def test_an_over_limit_body_is_not_read_when_the_client_waits_for_100_continue() -> None:
    expect = [(b"content-length", b"99999999"), (b"expect", b"100-continue")]
    assert not worth_discarding(expect)
    assert worth_discarding([(b"content-length", str(64 << 20).encode())])
    assert not worth_discarding([(b"content-length", str(1 << 30).encode())])  # beyond the discard budget


@pytest.fixture
def activator() -> Iterator[str]:
    app = create_activator_app(ActivatorConfig(command=stand_in(), idle_seconds=30.0, ready_timeout_seconds=20.0))
    with uvicorn_in_thread(app) as url:
        yield url


def test_the_activator_answers_a_64_mib_body_413_without_starting_the_server(activator: str) -> None:
    status, body = urllib_post(f"{activator}/v2/models/m/infer", BIG)
    assert status == 413 and b"activator's limit" in body
    assert httpx.get(f"{activator}/activator/status").json()["upstream"] == "stopped"


# --- the activator and a server on the wrong port -------------------------------------------


def test_a_server_listening_on_another_port_fails_held_requests_fast_with_the_fix() -> None:
    wrong = free_port()
    app = create_activator_app(ActivatorConfig(command=stand_in(port_from=str(wrong)), idle_seconds=30.0,
                                               ready_timeout_seconds=120.0))
    with uvicorn_in_thread(app) as url:
        started = time.monotonic()
        reply = httpx.get(f"{url}/v2/health/ready", timeout=60)
        waited = time.monotonic() - started
        assert reply.status_code == 502
        message = reply.json()["error"]
        assert f"listens on port {wrong}" in message and "{port}" in message and f"--upstream-port {wrong}" in message
        assert waited < 60, f"waited {waited:.0f}s: the wrong port was not detected before the ready timeout"
        assert httpx.get(f"{url}/activator/status").json()["upstream"] == "stopped"


@pytest.mark.parametrize(("command", "found"), [
    (["vllm", "serve", "m", "--port", "8000"], ("--port 8000", 8000)),
    (["text-generation-launcher", "--port=8080"], ("--port=8080", 8080)),
    (["srv", "-p", "9000"], ("-p 9000", 9000)),
    (["python", "-m", "workloads.serving", "--port", "{port}"], None),
    (["srv", "--port"], None),
    (["srv", "--model", "8000"], None),
])
def test_a_literal_port_in_the_server_command_is_found(command: list[str], found: tuple[str, int] | None) -> None:
    assert fixed_port_in(command) == found


def test_a_fixed_port_command_without_upstream_port_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--port", "9000", "--idle-seconds", "5", "--", "vllm", "serve", "m", "--port", "8000"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "fixed port ('--port 8000')" in err and "--port {port}" in err and "--upstream-port 8000" in err
    args, _ = parse_args(["--port", "9000", "--idle-seconds", "5", "--upstream-port", "8000", "--",
                          "vllm", "serve", "m", "--port", "8000"])
    assert args.upstream_port == 8000


# --- Triton's HTTP client -------------------------------------------------------------------


def client_of(url: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url.removeprefix("http://"), network_timeout=30.0)


def item_ids(rows: Sequence[Sequence[int]], binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("item_ids", [len(rows), len(rows[0])], "INT64")
    tensor.set_data_from_numpy(np.array(rows, dtype=np.int64), binary_data=binary)
    return tensor


def test_triton_client_health_and_metadata(server: str) -> None:
    c = client_of(server)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("recommender")
    assert not c.is_model_ready("other")
    assert "binary_tensor_data" in c.get_server_metadata()["extensions"]
    meta = c.get_model_metadata("recommender")
    assert {i["name"] for i in meta["inputs"]} == {"item_ids", "user_id", "k"}
    assert [o["name"] for o in meta["outputs"]] == ["top_items", "scores"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_triton_client_infer_matches_a_plain_json_request(server: str, binary: bool) -> None:
    rows = [[1, 2, 3], [4, 5, 6]]
    expected = httpx.post(server + INFER, json=infer_body(rows)).json()
    top = next(o for o in expected["outputs"] if o["name"] == "top_items")
    outputs = [triton.InferRequestedOutput("top_items", binary_data=binary), triton.InferRequestedOutput("scores")]
    result = client_of(server).infer("recommender", [item_ids(rows, binary)], outputs=outputs)
    assert result.as_numpy("top_items").tolist() == np.array(top["data"]).reshape(top["shape"]).tolist()
    assert result.as_numpy("scores").shape == (2, 10)


def test_triton_client_binary_bytes_user_ids_use_the_history_source(server: str) -> None:
    users = triton.InferInput("user_id", [2], "BYTES")
    users.set_data_from_numpy(np.array([b"alice", b"bob"], dtype=np.object_), binary_data=True)
    k = triton.InferInput("k", [1], "INT64")
    k.set_data_from_numpy(np.array([3], dtype=np.int64), binary_data=True)
    result = client_of(server).infer("recommender", [users, k])
    direct = client_of(server).infer("recommender", [item_ids([[1, 2, 3], [0, 4, 5]], False), k])
    assert result.as_numpy("top_items").tolist() == direct.as_numpy("top_items").tolist()


def test_an_unsupported_binary_datatype_answers_a_clear_400(server: str) -> None:
    tensor = triton.InferInput("item_ids", [1, 2], "FP32")
    tensor.set_data_from_numpy(np.array([[1.0, 2.0]], dtype=np.float32), binary_data=True)
    with pytest.raises(InferenceServerException) as err:
        client_of(server).infer("recommender", [tensor])
    assert err.value.status() == "400" and "binary data of datatype 'FP32' is not accepted" in err.value.message()


def _binary_request(json_part: bytes, data: bytes) -> tuple[str, bytes]:
    """(Inference-Header-Content-Length, body) of a binary tensor request."""
    return str(len(json_part)), json_part + data


@pytest.mark.parametrize(("header", "body", "message"), [
    ("abc", b"{}", "Inference-Header-Content-Length: 'abc' must be the byte length"),
    ("99", b"{}", "at most the body's 2 bytes"),
    (*_binary_request(b'{"inputs":[{"name":"item_ids","datatype":"INT64","shape":[1,3],"parameters":{"binary_data_size":24}}]}',
                      struct.pack("<2q", 1, 2)), "binary_data_size is 24 bytes but only 16 follow"),
    (*_binary_request(b'{"inputs":[{"name":"item_ids","datatype":"INT64","shape":[1,1],"parameters":{"binary_data_size":8}}]}',
                      struct.pack("<2q", 1, 2)), "8 bytes after the JSON part belong to no input"),
    (*_binary_request(b'{"inputs":[{"name":"item_ids","datatype":"INT64","shape":[1,1],"data":[1],"parameters":{"binary_data_size":8}}]}',
                      struct.pack("<q", 1)), "has both 'data' and binary data"),
    (*_binary_request(b'{"inputs":[{"name":"user_id","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]}',
                      struct.pack("<I", 9) + b"ab"), "runs past the data"),
])
def test_malformed_binary_requests_are_400_naming_the_problem(header: str, body: bytes, message: str, model_dir: Path) -> None:
    spec = ModelRunner(model_dir).load()
    with pytest.raises(ProtocolError) as err:
        parse_infer_request(body, spec, 8, header)
    assert err.value.status == 400 and message in err.value.message


def test_a_binary_int64_request_parses_to_the_same_rows_as_json(model_dir: Path) -> None:
    spec = ModelRunner(model_dir).load()
    json_part = b'{"inputs":[{"name":"item_ids","datatype":"INT64","shape":[2,2],"parameters":{"binary_data_size":32}}]}'
    binary = parse_infer_request(json_part + struct.pack("<4q", 1, 2, 0, 3), spec, 8, str(len(json_part)))
    import json as _json

    plain = parse_infer_request(_json.dumps(infer_body([[1, 2], [0, 3]])).encode(), spec, 8)
    assert binary.histories == plain.histories == ((1, 2), (3,))


# --- before ready ---------------------------------------------------------------------------


class GatedRunner:
    """A ModelRunner whose load() waits until the test opens the gate."""

    def __init__(self, model_dir: Path) -> None:
        self.runner, self.gate = ModelRunner(model_dir), threading.Event()

    @property
    def phases(self) -> Any:
        return self.runner.phases

    def load(self) -> Any:
        assert self.gate.wait(30)
        return self.runner.load()

    def predict(self, jobs: Sequence[PredictJob]) -> Any:
        return self.runner.predict(jobs)


@contextlib.contextmanager
def loading_server(model_dir: Path) -> Iterator[tuple[str, GatedRunner]]:
    runner = GatedRunner(model_dir)
    app = create_app(runner, ServerConfig(max_batch_size=8, max_batch_delay_ms=1, retry_after_seconds=2))
    try:
        with uvicorn_in_thread(app) as url:
            yield url, runner
    finally:
        runner.gate.set()


# (method, path, status while loading, Retry-After, a key of the JSON body) — app.py's docstring table.
BEFORE_READY = [
    ("GET", "/v2/health/live", 200, None, "live"),
    ("GET", "/v2/health/ready", 503, None, "ready"),
    ("GET", "/v2", 200, None, "extensions"),
    ("GET", "/v2/models/recommender", 503, "2", "error"),
    ("GET", "/v2/models/recommender/ready", 503, None, "ready"),
    ("POST", INFER, 503, "2", "error"),
    ("GET", "/metrics", 200, None, None),
    ("GET", "/v2/models/other/ready", 404, None, "error"),
]


def test_every_route_before_the_model_is_ready_then_after(model_dir: Path) -> None:
    with loading_server(model_dir) as (url, runner):
        for method, path, status, retry_after, key in BEFORE_READY:
            reply = httpx.request(method, url + path, json=infer_body([[1, 2]]) if method == "POST" else None)
            assert reply.status_code == status, f"{method} {path} while loading: {reply.status_code} {reply.text}"
            assert reply.headers.get("retry-after") == retry_after, f"{method} {path}"
            if key is not None:
                assert key in reply.json(), f"{method} {path}: {reply.text}"
        c = client_of(url)
        assert c.is_server_live() and not c.is_server_ready() and not c.is_model_ready("recommender")
        with pytest.raises(InferenceServerException) as err:
            c.infer("recommender", [item_ids([[1, 2]], True)])
        assert err.value.status() == "503" and "still loading" in err.value.message()
        runner.gate.set()
        wait_until(lambda: httpx.get(url + "/v2/health/ready").status_code == 200, 30, "readiness")
        for method, path, *_ in BEFORE_READY[:-1]:
            reply = httpx.request(method, url + path, json=infer_body([[1, 2]]) if method == "POST" else None)
            assert reply.status_code == 200, f"{method} {path} once ready: {reply.status_code} {reply.text}"
