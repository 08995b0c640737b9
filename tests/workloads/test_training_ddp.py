"""Two-process DDP on CPU (gloo) under torchrun equals one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from workloads.data.generate import GenerateConfig, generate
from workloads.training.checkpoint import MARKER, step_name
from workloads.training.config import parse_args
from workloads.training.launch import exit_code_for
from workloads.training.train import run

pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled")

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_rank_ddp_matches_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    generate(tmp_path / "data", GenerateConfig(users=200, items=150, days=5, seed=9))
    common = ["--preset", "tiny", "--data", str(tmp_path / "data"), "--batch-size", "16", "--grad-accum", "2",
              "--max-steps", "16", "--threads", "1", "--log-every", "4", "--seed", "1", "--checkpoint-every", "5"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "workloads.training", *common, "--async-checkpoint",
         "--checkpoint-dir", str(tmp_path / "ddp-ckpt"), "--export-dir", str(tmp_path / "ddp")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    assert "step 16/16" in ddp.stdout

    single = run(parse_args([*common, "--export-dir", str(tmp_path / "one")]), log=lambda m: None)
    assert single.exit_code == 0

    got, want = load_file(tmp_path / "ddp" / "model.safetensors"), load_file(tmp_path / "one" / "model.safetensors")
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-5, msg=lambda m, n=name: f"{n}: {m}")

    final = tmp_path / "ddp-ckpt" / step_name(16)
    assert (final / MARKER).is_file()
    assert {p.name[:3] for p in final.glob("__*_*.distcp")} == {"__0", "__1"}, "each rank wrote its shard"


def test_launcher_maps_worker_exit_codes_to_the_workload_contract() -> None:
    assert exit_code_for([75, 75]) == 75
    assert exit_code_for([75, -15]) == 75, "a rank stopped by the agent after another exited 75"
    assert exit_code_for([2, 2]) == 2
    assert exit_code_for([1, 75]) == 1
    assert exit_code_for([]) == 0
