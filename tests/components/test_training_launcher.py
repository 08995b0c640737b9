"""The JobSet container's launcher keeps the workload's exit code 75 that torchrun would hide.

Runs ``LAUNCHER`` for real (CPU torch, two local workers) in one subprocess that imports torch
once: a worker exiting 75 makes the launcher exit 75, any other failure exits 1, success 0,
and a SIGTERM to the launcher (a drain or preemption) exits 75 after the workers stop.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from components.kubernetes.training import LAUNCHER

pytest.importorskip("torch.distributed.run")

WORKER = textwrap.dedent(
    """
    import os, signal, sys, time
    rank = int(os.environ["RANK"])
    mode = os.environ["CASE"]
    if mode == "sigterm":
        if rank == 0:
            os.kill(os.getppid(), signal.SIGTERM)  # the agent is told to stop, as the kubelet would
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(75))
        time.sleep(30)
    sys.exit(int(mode.split(",")[rank]))
    """
)

DRIVER = textwrap.dedent(
    """
    import json, os, sys
    launcher, worker, ports = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    results = {}
    for case, port in zip(["0,0", "75,0", "0,3", "sigterm"], ports):
        os.environ["CASE"] = case
        os.environ["TORCH_ELASTIC_SHUTDOWN_TIMEOUT"] = "10"
        sys.argv = ["-c", "--nnodes=1", "--nproc-per-node=2", "--node-rank=0", "--master-addr=127.0.0.1", f"--master-port={port}", worker]
        try:
            exec(launcher, {"__name__": "__main__"})
            results[case] = 0
        except SystemExit as e:
            results[case] = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    print("RESULTS " + json.dumps(results))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # imports torch in a subprocess and starts four local torchrun gangs (~6 s idle, more under load)
def test_launcher_exit_codes_preserve_preemption(tmp_path: Path) -> None:
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    ports = ",".join(str(_free_port()) for _ in range(4))
    proc = subprocess.run([sys.executable, "-c", DRIVER, LAUNCHER, str(worker), ports], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert lines, f"driver failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    results = json.loads(lines[-1].removeprefix("RESULTS "))
    assert results == {"0,0": 0, "75,0": 75, "0,3": 1, "sigterm": 75}, proc.stderr[-3000:]
