"""Run the Feast feature server (``feast serve``) on loopback as a child process.

``FeatureServer(repo_dir)`` is a context manager: it starts
``feast -c REPO serve --host 127.0.0.1 --port PORT`` in its own process (Feast's HTTP server,
``POST /get-online-features``), waits until ``GET /health`` answers 200, records how long that
took (``startup_seconds``) and stops the process (SIGTERM, then SIGKILL) on exit. It is what
tests, benchmarks and ``gpuplane demo`` use; on a cluster the FeatureStore component runs the
same command in a Deployment. The process's output goes to ``log_path`` (default: a file in
the repository's ``data/`` folder) so a failed start can show its last lines.

This module never imports Feast (the child does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx


class FeatureServerStartError(RuntimeError):
    """``feast serve`` exited or did not become healthy in time; the message holds its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def feast_command() -> list[str]:
    """The ``feast`` CLI of this interpreter's environment."""
    beside = Path(sys.executable).with_name("feast")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("feast")
    if found:
        return [found]
    return [sys.executable, "-c", "from feast.cli.cli import cli; cli()"]


class FeatureServer:
    """``feast serve`` for ``repo_dir`` on ``host:port`` (a free port when not given)."""

    def __init__(
        self,
        repo_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout_s: float = 120.0,
        registry_ttl_seconds: int = 60,
        log_path: str | Path | None = None,
    ) -> None:
        self.repo_dir = Path(repo_dir).resolve()
        if not (self.repo_dir / "feature_store.yaml").exists():
            raise FileNotFoundError(
                f"FeatureServer: {self.repo_dir}/feature_store.yaml is missing. Run "
                f"`python -m workloads.features materialize --data DATA --repo-dir {self.repo_dir}` first."
            )
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout_s = startup_timeout_s
        self.registry_ttl_seconds = registry_ttl_seconds
        self.log_path = Path(log_path) if log_path else self.repo_dir / "data" / f"feature-server-{self.port}.log"
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FeatureServer:
        """Start the process and block until ``/health`` answers 200."""
        if self._process is not None:
            raise RuntimeError(f"FeatureServer on {self.url} is already started")
        cmd = [
            *feast_command(),
            "-c",
            str(self.repo_dir),
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--no-access-log",
            "--registry_ttl_sec",
            str(self.registry_ttl_seconds),
        ]
        env = {**os.environ, "FEAST_USAGE": "False"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.repo_dir, start_new_session=True
            )
        deadline = t0 + self.startup_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self._process.poll() is not None:
                    self._fail(f"exited with code {self._process.returncode} before becoming healthy")
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() > deadline:
                    self.stop()
                    self._fail(f"was not healthy after {self.startup_timeout_s:.0f} s")
                time.sleep(0.1)
        self.startup_seconds = time.perf_counter() - t0
        return self

    def _fail(self, what: str) -> None:
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        raise FeatureServerStartError(
            f"feast serve for {self.repo_dir} on {self.url} {what}. Log tail ({self.log_path}):\n{tail}"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the server's process group, then SIGKILL it after ``timeout_s``."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout_s)

    def __enter__(self) -> FeatureServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
