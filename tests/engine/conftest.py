"""The real-engine lane's fixtures: one `gpuplane sandbox` for the whole session.

The sandbox is started through the CLI, as a user starts it (`gpuplane sandbox up`), under a private
state root and a free base port, and stopped with `down --purge` at the end. Without the built
toolchain (`make engine`) the lane is skipped on a developer's machine and FAILS under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpuplane.sandbox import cluster, toolchain

REPO = Path(__file__).resolve().parents[2]


def run_gpuplane(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the gpuplane CLI of this tree in a fresh process."""
    return subprocess.run([sys.executable, "-m", "gpuplane.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def free_base_port(start: int = 26443) -> int:
    """A base port with twelve free ports from it (what a sandbox with controllers owns)."""
    for base in range(start, 60000, 20):
        if all(cluster.port_free(p) for p in range(base, base + 12)):
            return base
    raise RuntimeError("no twelve free consecutive loopback ports")


@dataclass
class Sandbox:
    name: str
    port: int
    env: dict[str, str]
    """The process environment with `gpuplane sandbox env`'s exports applied."""
    up_seconds: float
    layout: cluster.Layout

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["kubectl", *args], env=self.env, capture_output=True, text=True, input=input,
                              timeout=120, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc


def exports(text: str, base: dict[str, str]) -> dict[str, str]:
    """Apply `export K=V` lines (as a shell would, with $PATH expanded) to a copy of ``base``."""
    out = subprocess.run(["bash", "-c", text + "\nenv -0"], env=base, capture_output=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def require_toolchain() -> None:
    gone = toolchain.missing(toolchain.SANDBOX_BINARIES)
    if gone:
        why = f"sandbox programs not built: {', '.join(gone)} (in {toolchain.bin_dir()}); run `make engine`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


def start(name: str, root: Path, port: int | None = None, controllers: bool = False, knative: bool = False) -> Sandbox:
    """Start a sandbox on the first free base port from ``port``; another test session on this machine
    may take ports between the check and the start, so a port-in-use refusal moves on to the next ones."""
    env = {**os.environ, "GPUPLANE_SANDBOX_HOME": str(root)}
    port = free_base_port(port or 26443)
    extra = (("--controllers",) if controllers else ()) + (("--knative",) if knative else ())
    for _ in range(5):
        up = run_gpuplane("sandbox", "up", "--name", name, "--port", str(port), "--no-build", *extra, env=env)
        if not (up.returncode == 2 and "is in use" in up.stderr):
            break
        port = free_base_port(port + 20)
    assert up.returncode == 0, f"sandbox up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}"
    m = re.search(r"is up in ([0-9.]+) s", up.stdout)
    exp = run_gpuplane("sandbox", "env", "--name", name, env=env)
    assert exp.returncode == 0, exp.stderr
    return Sandbox(name, port, exports(exp.stdout, env), float(m.group(1)) if m else float("nan"),
                   cluster.load_layout(name, port, root))


def stop(sb: Sandbox) -> subprocess.CompletedProcess[str]:
    return run_gpuplane("sandbox", "down", "--name", sb.name, "--purge", env=sb.env)


@pytest.fixture(scope="session")
def gpuplane():
    """``gpuplane(*args, env=...)``: the CLI of this tree in a fresh process."""
    return run_gpuplane


@pytest.fixture(scope="session")
def sandbox_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandboxes")


@pytest.fixture(scope="session")
def sandbox(sandbox_root: Path) -> Iterator[Sandbox]:
    require_toolchain()
    sb = start("engine", sandbox_root)
    print(f"\nsandbox 'engine' up in {sb.up_seconds:.1f} s on port {sb.port}; env: "
          + " ".join(shlex.quote(f"{k}={sb.env[k]}") for k in ("KUBECONFIG", "PULUMI_BACKEND_URL")))
    try:
        yield sb
    finally:
        down = stop(sb)
        assert down.returncode == 0, f"sandbox down failed: {down.stderr}"


@pytest.fixture(scope="session")
def controllers_sandbox(sandbox_root: Path) -> Iterator[Sandbox]:
    """A sandbox of its own running the Kueue and JobSet controller managers (`up --controllers`)."""
    require_toolchain()
    from gpuplane.sandbox import controllers

    why = controllers.missing(toolchain.bin_dir())
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    sb = start("controllers", sandbox_root, controllers=True)
    print(f"\nsandbox 'controllers' (Kueue, JobSet) up in {sb.up_seconds:.1f} s on port {sb.port}")
    try:
        yield sb
    finally:
        down = stop(sb)
        assert down.returncode == 0, f"sandbox down failed: {down.stderr}"


@pytest.fixture(scope="session")
def sandboxes(sandbox_root: Path) -> Iterator[tuple]:
    """``(start, stop)`` for tests that need a sandbox of their own (stopped at the end if still up)."""
    require_toolchain()
    started: list[Sandbox] = []

    def _start(name: str, port: int | None = None, **flags: bool) -> Sandbox:
        sb = start(name, sandbox_root, port, **flags)
        started.append(sb)
        return sb

    yield _start, stop
    for sb in started:
        stop(sb)


@pytest.fixture(scope="session")
def charts_dir() -> Path:
    """The pinned chart archives: ``$GPUPLANE_CHARTS_DIR``, else ``../shared/charts`` beside the clone."""
    folder = Path(os.environ.get("GPUPLANE_CHARTS_DIR") or REPO.parent / "shared" / "charts")
    if not folder.is_dir():
        why = f"no chart archives at {folder} (set GPUPLANE_CHARTS_DIR)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    return folder


@pytest.fixture(scope="session")
def helm_built() -> None:
    if toolchain.missing(["helm"]):
        why = f"helm not built (in {toolchain.bin_dir()}); run `make engine`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


@pytest.fixture(scope="session")
def pulumi_built() -> None:
    gone = toolchain.missing(["pulumi", "pulumi-language-yaml", "pulumi-resource-kubernetes"])
    if gone:
        why = f"{', '.join(gone)} not built (in {toolchain.bin_dir()}); run `make engine`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
