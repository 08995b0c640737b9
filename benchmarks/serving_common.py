"""Helpers for the serving benchmarks: a generated model export, server processes on loopback,
a minimal keep-alive HTTP/1.1 client whose own cost stays small next to the server's, ``wrk``
(a C load generator, ``apt-get install wrk``) when installed, and per-process CPU accounting.

Not a benchmark itself; run ``python -m benchmarks.serving_coldstart`` or
``python -m benchmarks.serving_throughput`` from the repository root.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
INFER_PATH = "/v2/models/recommender/infer"


def make_model(path: Path, *, num_items: int, n_embd: int, n_layer: int, n_head: int, block_size: int,
               seed: int = 0) -> int:
    """Write a randomly initialised export (model.safetensors + config.json); returns weight bytes."""
    import torch
    from safetensors.torch import save_file

    from workloads.model import ModelConfig, NextItemModel

    torch.manual_seed(seed)
    cfg = ModelConfig(num_items=num_items, block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    path.mkdir(parents=True, exist_ok=True)
    save_file(NextItemModel(cfg).state_dict(), str(path / "model.safetensors"))
    (path / "config.json").write_text(cfg.to_json())
    return (path / "model.safetensors").stat().st_size


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def spawn_server(model_dir: Path, port: int, extra: Sequence[str] = (), log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
    return subprocess.Popen([PYTHON, "-m", "workloads.serving", "--model-dir", str(model_dir), "--port", str(port),
                             "--log-level", "warning", *extra], cwd=ROOT, env=env(), stdout=out,
                            stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


def wait_ready(base_url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_get(f"{base_url}/v2/health/ready")[0] == 200:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{base_url} not ready within {timeout}s")


def metric_values(metrics_text: str, name: str) -> dict[str, float]:
    """``{label value or '': value}`` for the samples of ``name`` (first label only)."""
    values = {}
    for line in metrics_text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            label = key.split('"')[1] if '"' in key else ""
            values[label] = float(value)
    return values


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid``, all its threads (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


def loadavg() -> float:
    """The 1-minute load average (others' work on the machine inflates every figure)."""
    return os.getloadavg()[0]


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """``command`` pinned to ``cpu`` with taskset when both are available, else as is."""
    if cpu is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(cpu), *command]


def generator_cpu() -> int | None:
    """The CPU a load generator is pinned to: the last one, leaving the others to the server."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return cpus[-1] if len(cpus) > 1 else None


WRK_SCRIPT = """
local path = os.getenv("GPUPLANE_INFER_PATH")
local requests, i, threads = {}, 0, {}
for line in io.lines(os.getenv("GPUPLANE_BODIES")) do
  requests[#requests + 1] = wrk.format("POST", path, {["Content-Type"] = "application/json"}, line)
end
function setup(thread) table.insert(threads, thread) end
function init(args) codes = {} end
function request() i = i % #requests + 1; return requests[i] end
function response(status, headers, body) codes[status] = (codes[status] or 0) + 1 end
function done(summary, latency, _)
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("codes")) do io.write(string.format("gpuplane-code %d %d\\n", code, n)) end
  end
  local e = summary.errors
  io.write(string.format("gpuplane-result %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(port: int, bodies: Sequence[bytes], connections: int, seconds: float,
            cpu: int | None = None) -> dict[str, object]:
    """A closed loop of ``connections`` keep-alive connections for ``seconds`` with wrk (one
    thread, pinned to ``cpu``), cycling through ``bodies``. Returns requests, seconds, req_s,
    p50_s, p99_s, socket errors and status codes."""
    with tempfile.TemporaryDirectory(prefix="gpuplane-wrk-") as tmp:
        script, body_file = Path(tmp) / "post.lua", Path(tmp) / "bodies.jsonl"
        script.write_text(WRK_SCRIPT)
        body_file.write_bytes(b"\n".join(bodies) + b"\n")
        command = pinned(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
                          "-s", str(script), f"http://127.0.0.1:{port}"], cpu)
        out = subprocess.run(command, capture_output=True, text=True, check=True,
                             env={**os.environ, "GPUPLANE_BODIES": str(body_file), "GPUPLANE_INFER_PATH": INFER_PATH})
    codes: Counter[int] = Counter()
    result: list[int] = []
    for line in out.stdout.splitlines():
        if line.startswith("gpuplane-code "):
            _, code, n = line.split()
            codes[int(code)] += int(n)
        elif line.startswith("gpuplane-result "):
            result = [int(v) for v in line.split()[1:]]
    if not result:
        raise RuntimeError(f"wrk printed no result: {out.stdout} {out.stderr}")
    requests, micros, p50, p99, errors = result
    return {"requests": requests, "seconds": micros / 1e6, "req_s": requests / (micros / 1e6), "p50_s": p50 / 1e6,
            "p99_s": p99 / 1e6, "errors": errors, "codes": codes}


def infer_bodies(count: int, num_items: int, rows: int = 1, seq_len: int = 16, k: int = 10,
                 seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        data = [[rng.randint(1, num_items) for _ in range(seq_len)] for _ in range(rows)]
        bodies.append(json.dumps({"inputs": [
            {"name": "item_ids", "datatype": "INT64", "shape": [rows, seq_len], "data": data},
            {"name": "k", "datatype": "INT64", "shape": [1], "data": [k]}]}).encode())
    return bodies


class Connection:
    """One keep-alive HTTP/1.1 connection; ``post`` returns (status, seconds)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, float]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        started = time.perf_counter()
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.host.encode(), len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        if b"connection: close" in head.lower():
            await self.close()
        return status, time.perf_counter() - started

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_async(coro: object) -> object:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
