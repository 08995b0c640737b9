"""The local scale-to-zero activator (workloads/serving/activator.py).

Most tests put the activator (real uvicorn, in a thread) in front of a stand-in server: a
stdlib HTTP server started as a real subprocess, which turns ready after a set delay and
reports its pid. One test runs both real processes end to end with the real model server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.workloads.test_serving_support import PYTHON, ROOT, free_port, infer_body, uvicorn_in_thread, wait_until
from tests.workloads.test_serving_support import write_model_dir as write_model
from workloads.serving.activator import ActivatorConfig, create_activator_app, parse_args

STAND_IN = r"""
import http.server, json, os, signal, sys, threading, time
port = int(os.environ["PORT"] if sys.argv[1] == "env" else sys.argv[1])
ready_after = float(sys.argv[2])
started = time.monotonic()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, payload):
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/v2/health/ready":
            ready = time.monotonic() - started >= ready_after
            self.reply(200 if ready else 503, {"ready": ready})
        elif self.path == "/big":  # larger than one piece: streamed through the activator
            body = bytes(range(256)) * 1024
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Upstream", "yes")
            self.end_headers()
            for piece in (b"first,", b"second"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/slow":
            time.sleep(3)
            self.reply(200, {})
        else:
            self.reply(200, {"pid": os.getpid(), "path": self.path})

    def do_HEAD(self):  # the head of GET /big, without its body
        self.send_response(200)
        self.send_header("Content-Length", str(256 * 1024))
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.reply(201, {"pid": os.getpid(), "path": self.path, "body": body.decode(),
                         "auth": self.headers.get("Authorization")})

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
"""


def stand_in(ready_after_seconds: float = 0.3, port_from: str = "{port}") -> tuple[str, ...]:
    return (PYTHON, "-c", STAND_IN, port_from, str(ready_after_seconds))


@pytest.fixture
def activator(request: pytest.FixtureRequest) -> Iterator[tuple[str, object]]:
    """An activator in front of ``request.param`` (an ActivatorConfig); yields (url, app)."""
    app = create_activator_app(request.param)
    with uvicorn_in_thread(app) as url:
        yield url, app


def cfg(**kwargs: object) -> ActivatorConfig:
    settings: dict[str, object] = {"command": stand_in(), "idle_seconds": 30.0, "ready_timeout_seconds": 20.0}
    settings.update(kwargs)
    return ActivatorConfig(**settings)  # type: ignore[arg-type]


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/activator/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def burst(url: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=count)) as client:
        return await asyncio.gather(*(client.post(f"{url}/v2/models/m/infer", content=f"req-{i}".encode())
                                      for i in range(count)))


@pytest.mark.parametrize("activator", [cfg()], indirect=True)
def test_first_request_is_held_until_ready_then_forwarded(activator: tuple[str, object]) -> None:
    url, _ = activator
    assert httpx.get(f"{url}/activator/status").json()["upstream"] == "stopped"
    reply = httpx.post(f"{url}/v2/models/m/infer?x=1", content=b'{"a": 1}', headers={"Authorization": "Bearer t"},
                       timeout=30)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert (body["path"], body["body"], body["auth"]) == ("/v2/models/m/infer?x=1", '{"a": 1}', "Bearer t")
    assert is_running(body["pid"])
    assert metric(url, "gpuplane_activator_cold_starts_total") == 1
    assert metric(url, "gpuplane_activator_hold_seconds_count") == 1
    assert metric(url, "gpuplane_activator_held_requests") == 0
    assert metric(url, "gpuplane_activator_upstream_up") == 1
    warm = httpx.get(f"{url}/anything")
    assert (warm.status_code, warm.json()["pid"]) == (200, body["pid"])
    assert metric(url, "gpuplane_activator_hold_seconds_count") == 1  # warm requests are not held


@pytest.mark.parametrize("activator", [cfg(command=stand_in(1.0))], indirect=True)
def test_concurrent_requests_during_a_cold_start_all_succeed_on_one_server(activator: tuple[str, object]) -> None:
    url, _ = activator
    replies = asyncio.run(burst(url, 20))
    assert Counter(r.status_code for r in replies) == {201: 20}
    assert len({r.json()["pid"] for r in replies}) == 1
    assert sorted(r.json()["body"] for r in replies) == sorted(f"req-{i}" for i in range(20))
    assert metric(url, "gpuplane_activator_cold_starts_total") == 1
    assert metric(url, "gpuplane_activator_hold_seconds_count") == 20


@pytest.mark.parametrize("activator", [cfg(idle_seconds=0.4)], indirect=True)
def test_server_stops_after_the_idle_period_and_restarts_on_the_next_request(activator: tuple[str, object]) -> None:
    url, _ = activator
    first_pid = httpx.post(f"{url}/v2/models/m/infer", content=b"1", timeout=30).json()["pid"]
    wait_until(lambda: httpx.get(f"{url}/activator/status").json()["upstream"] == "stopped", 10, "scale to zero")
    wait_until(lambda: not is_running(first_pid), 10, "server process exit")
    assert metric(url, "gpuplane_activator_scale_downs_total") == 1
    assert metric(url, "gpuplane_activator_upstream_up") == 0
    again = httpx.post(f"{url}/v2/models/m/infer", content=b"2", timeout=30)
    assert again.status_code == 201
    assert again.json()["pid"] != first_pid
    assert metric(url, "gpuplane_activator_cold_starts_total") == 2


@pytest.mark.parametrize("activator", [cfg(command=stand_in(1.5), max_held=2)], indirect=True)
def test_requests_beyond_max_held_get_503_with_retry_after(activator: tuple[str, object]) -> None:
    url, _ = activator
    replies = asyncio.run(burst(url, 6))
    assert Counter(r.status_code for r in replies) == {201: 2, 503: 4}
    refused = next(r for r in replies if r.status_code == 503)
    assert refused.headers["Retry-After"] == "1"
    assert "--max-held 2" in refused.json()["error"]


@pytest.mark.parametrize("activator", [cfg(command=(PYTHON, "-c", "import sys; sys.exit(3)"))], indirect=True)
def test_server_that_exits_while_starting_answers_502(activator: tuple[str, object]) -> None:
    url, _ = activator
    reply = httpx.get(f"{url}/v2/health/ready", timeout=30)
    assert reply.status_code == 502
    assert reply.json() == {"error": "server exited with code 3 before becoming ready; see its log"}
    assert httpx.get(f"{url}/activator/status").json()["upstream"] == "stopped"


@pytest.mark.parametrize("activator", [cfg(command=stand_in(60), ready_timeout_seconds=0.5)], indirect=True)
def test_server_not_ready_in_time_answers_504_and_is_stopped(activator: tuple[str, object]) -> None:
    url, app = activator
    reply = httpx.get(f"{url}/v2/health/ready", timeout=30)
    assert reply.status_code == 504
    assert "not ready after 0s (--ready-timeout-seconds)" in reply.json()["error"]
    assert app.state.upstream.process is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("activator", [cfg(command=stand_in(0.1, port_from="env"), upstream_port=free_port())],
                         indirect=True)
def test_fixed_upstream_port_reaches_the_server_through_the_port_variable(activator: tuple[str, object]) -> None:
    url, app = activator
    assert httpx.get(f"{url}/x", timeout=30).status_code == 200
    assert app.state.upstream.port == app.state.upstream.config.upstream_port  # type: ignore[attr-defined]


@pytest.mark.parametrize("activator", [cfg(command=stand_in(0.1))], indirect=True)
def test_warm_requests_reuse_one_upstream_connection(activator: tuple[str, object]) -> None:
    url, app = activator
    with httpx.Client(base_url=url, timeout=30) as client:
        replies = [client.post("/v2/models/m/infer", content=f"{i}".encode()) for i in range(5)]
    assert [r.json()["body"] for r in replies] == ["0", "1", "2", "3", "4"]
    pool = app.state.upstream.pool  # type: ignore[attr-defined]
    assert pool.opened == 1  # readiness polls and all five requests on one keep-alive connection
    assert metric(url, 'gpuplane_activator_requests_total{code="201"}') == 5


@pytest.mark.parametrize("activator", [cfg(command=stand_in(0.1), upstream_timeout_seconds=0.5)], indirect=True)
def test_replies_are_passed_on_whole_streamed_or_rechunked(activator: tuple[str, object]) -> None:
    url, _ = activator
    big = httpx.get(f"{url}/big", timeout=30)
    assert (big.status_code, big.headers["content-length"], big.content) == (
        200, str(256 * 1024), bytes(range(256)) * 1024)
    assert big.headers["content-type"] == "application/octet-stream"
    chunked = httpx.get(f"{url}/chunked", timeout=30)
    assert (chunked.status_code, chunked.content, chunked.headers["x-upstream"]) == (200, b"first,second", "yes")
    head = httpx.head(f"{url}/big", timeout=30)
    assert (head.status_code, head.headers["content-length"], head.content) == (200, str(256 * 1024), b"")
    slow = httpx.get(f"{url}/slow", timeout=30)
    assert (slow.status_code, slow.json()) == (504, {"error": "server did not answer within 0s"})
    assert httpx.get(f"{url}/after-timeout", timeout=30).status_code == 200  # a fresh connection


@pytest.mark.parametrize("activator", [cfg(max_body_bytes=100)], indirect=True)
def test_oversized_bodies_and_unforwarded_methods_are_refused_without_starting_the_server(
        activator: tuple[str, object]) -> None:
    url, _ = activator
    too_big = httpx.post(f"{url}/v2/models/m/infer", content=b"x" * 101, timeout=30)
    assert (too_big.status_code, too_big.json()["error"]) == (
        413, "request body exceeds the activator's limit of 100 bytes (--max-body-bytes)")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"x" * 60
        yield b"x" * 60

    streamed = httpx.post(f"{url}/v2/models/m/infer", content=chunks(), timeout=30)
    assert streamed.status_code == 413
    trace = httpx.request("TRACE", f"{url}/v2", timeout=30)
    assert trace.status_code == 405 and "is not forwarded" in trace.json()["error"]
    assert httpx.get(f"{url}/activator/status").json()["upstream"] == "stopped"


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "1", "--idle-seconds", "5"], "missing '-- <server command>'"),
    (["--port", "1", "--idle-seconds", "5", "--"], "the server command after '--' is empty"),
    (["--port", "1", "--idle-seconds", "0", "--", "srv"], "--idle-seconds=0.0 must be positive"),
    (["--port", "1", "--idle-seconds", "5", "--upstream-port", "1", "--", "srv"], "must differ from --port"),
])
def test_bad_command_lines_are_refused(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_command_line_splits_options_from_the_server_command() -> None:
    args, command = parse_args(["--port", "9000", "--idle-seconds", "30", "--max-held", "5", "--",
                                "python", "-m", "workloads.serving", "--port", "{port}"])
    assert (args.port, args.idle_seconds, args.max_held) == (9000, 30.0, 5)
    assert command == ("python", "-m", "workloads.serving", "--port", "{port}")


@pytest.mark.slow
def test_activator_process_cold_starts_the_real_model_server_and_stops_it_on_sigterm(tmp_path: Path) -> None:
    model_dir = write_model(tmp_path / "model")
    port = free_port()
    log = tmp_path / "activator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "workloads.serving.activator", "--port", str(port), "--idle-seconds", "60", "--",
             PYTHON, "-m", "workloads.serving", "--model-dir", str(model_dir), "--port", "{port}",
             "--torch-threads", "1"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(f"{url}/activator/status"), 20, "activator listening")
        reply = httpx.post(f"{url}/v2/models/recommender/infer", json=infer_body([[1, 2]], k=3), timeout=60)
        assert reply.status_code == 200, log.read_text()
        assert reply.json()["outputs"][0]["shape"] == [1, 3]
        server_port = httpx.get(f"{url}/activator/status").json()["port"]
        assert metric(url, "gpuplane_activator_cold_starts_total") == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
        assert not _up(f"http://127.0.0.1:{server_port}/v2/health/live"), "model server outlived the activator"
        assert "stopped (exit code 0)" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
