"""Spot training under faults, each injected into the real training process (``python -m workloads.training``).

- A damaged newest checkpoint (a truncated shard, garbage ``.metadata``, one flipped bit in a
  shard, a garbled marker) is never loaded: the run falls back to the newest intact checkpoint,
  logs which it skipped and why, and ends bit-equal to an uninterrupted run.
- SIGTERM in the first moments of the process (before torch has loaded, long before the loop)
  ends with exit 75 and the checkpoints as they were; a restart resumes and ends bit-equal.
- A truncated or malformed events file: one line naming the file and the fix, exit 2, no traceback.

The damaged checkpoints and the reference run are written in this process (fast); every
process that must survive the fault is a child process, as on a node.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from workloads.data.generate import GenerateConfig, generate
from workloads.training.checkpoint import MARKER, Checkpointer, step_name
from workloads.training.config import CheckpointConfig, parse_args
from workloads.training.train import run

pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled")

REPO = Path(__file__).resolve().parents[2]
STEPS = 40


def train_args(data: Path, ckpt: Path | None = None, export: Path | None = None, *extra: str) -> list[str]:
    argv = ["--preset", "tiny", "--data", str(data), "--batch-size", "16", "--max-steps", str(STEPS),
            "--lr-decay-steps", str(STEPS), "--threads", "1", "--log-every", "1", "--seed", "3",
            "--checkpoint-every", "5"]
    if ckpt is not None:
        argv += ["--checkpoint-dir", str(ckpt)]
    if export is not None:
        argv += ["--export-dir", str(export)]
    return argv + list(extra)


def spawn(argv: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "workloads.training", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def params(export: Path) -> dict[str, torch.Tensor]:
    return load_file(export / "model.safetensors")


def assert_bit_equal(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys()
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert not different, f"parameters differ from the uninterrupted run: {different}"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    generate(out, GenerateConfig(users=300, items=200, days=7, seed=5))
    return out


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    """Parameters of an uninterrupted run."""
    out = tmp_path_factory.mktemp("reference")
    result = run(parse_args(train_args(data, out / "ckpt", out / "export")), log=lambda m: None)
    assert result.exit_code == 0 and result.step == STEPS
    return params(out / "export")


@pytest.fixture(scope="module")
def checkpoints_to_12(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint directory holding steps 5, 10 and 12 (a run stopped at 12 of the same schedule)."""
    out = tmp_path_factory.mktemp("ckpt12") / "ckpt"
    argv = [*train_args(data, out), "--max-steps", "12"]
    assert run(parse_args(argv), log=lambda m: None).exit_code == 0
    assert Checkpointer(CheckpointConfig(location=str(out))).complete_steps() == [5, 10, 12]
    return out


def largest_shard(step_dir: Path) -> Path:
    return max(step_dir.glob("*.distcp"), key=lambda p: p.stat().st_size)


def truncate_shard(step_dir: Path) -> None:
    shard = largest_shard(step_dir)
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size // 2)


def garbage_metadata(step_dir: Path) -> None:
    (step_dir / ".metadata").write_bytes(b"\x00" + b"not a DCP metadata file " * 10)


def flip_one_bit(step_dir: Path) -> None:
    shard = largest_shard(step_dir)
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0x10  # the middle of the largest shard is tensor data
    shard.write_bytes(bytes(raw))


def garbled_marker(step_dir: Path) -> None:
    (step_dir / MARKER).write_bytes(b"\x00\xffnot json")


FAULTS = {
    "truncated-shard": (truncate_shard, "truncated or overwritten"),
    "garbage-metadata": (garbage_metadata, ".metadata"),
    "one-flipped-bit": (flip_one_bit, "(corrupted)"),
    "garbled-marker": (garbled_marker, "not valid JSON"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_damaged_newest_checkpoint_is_skipped_and_the_run_resumes_from_the_previous_one(
    data: Path, reference, checkpoints_to_12: Path, tmp_path: Path, fault: str
) -> None:
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoints_to_12, ckpt)
    damage, reason = FAULTS[fault]
    damage(ckpt / step_name(12))

    proc = spawn(train_args(data, ckpt, tmp_path / "export"))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"{fault}: rc={proc.returncode}\n{out}\n{err}"
    assert "Traceback" not in err, err
    skipped = [line for line in out.splitlines() if line.startswith(f"checkpoint {step_name(12)} ")]
    assert len(skipped) == 1 and "skipped" in skipped[0] and reason in skipped[0], out
    assert f"resumed from checkpoint step 10 at {ckpt}" in out, out
    assert_bit_equal(params(tmp_path / "export"), reference)


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (bit 15 of SigCgt in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def _has_loaded_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the child's signal mask from /proc")
def test_sigterm_before_the_loop_exits_75_and_the_run_resumes_bit_equal(
    data: Path, reference, checkpoints_to_12: Path, tmp_path: Path
) -> None:
    """The signal lands as soon as the child catches SIGTERM, or once torch is loading, whichever is first.

    The entry point installs its handler before importing torch, so the signal arrives before
    the loop (and before torch); code that installed it only in the loop would be loading torch
    with SIGTERM's default action, and die by the signal.
    """
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoints_to_12, ckpt)
    before = {p.name: p.read_bytes() for p in (ckpt / step_name(12)).iterdir()}
    proc = spawn(train_args(data, ckpt, tmp_path / "export"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if _catches_sigterm(proc.pid) or _has_loaded_torch(proc.pid):
                break
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, f"rc={proc.returncode} (-15: died by the signal)\n{out}\n{err}"
    assert "Traceback" not in err, err
    assert not any(line.startswith("step ") for line in out.splitlines()), f"trained after SIGTERM:\n{out}"
    assert "preempted (SIGTERM)" in out, out
    saved = Checkpointer(CheckpointConfig(location=str(ckpt)))
    assert saved.complete_steps() == [5, 10, 12] and saved.latest_step() == 12
    assert {p.name: p.read_bytes() for p in (ckpt / step_name(12)).iterdir()} == before
    assert not list(ckpt.glob(".tmp-*")), "no half-written save"

    resumed = spawn(train_args(data, ckpt, tmp_path / "export"))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and f"resumed from checkpoint step 12 at {ckpt}" in out, f"{out}\n{err}"
    assert_bit_equal(params(tmp_path / "export"), reference)


def _truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _malform(path: Path) -> None:
    path.write_text("user_id,item_id,event_timestamp\n1,2,2026-01-01\n")


@pytest.mark.parametrize("damage", [_truncate, _malform], ids=["truncated", "malformed"])
def test_a_damaged_events_file_is_one_line_naming_the_file_and_the_fix_exit_2(
    data: Path, tmp_path: Path, damage
) -> None:
    broken = tmp_path / "data"
    shutil.copytree(data, broken)
    damage(broken / "events.parquet")
    proc = spawn(train_args(broken))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, f"rc={proc.returncode}\n{out}\n{err}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(broken / "events.parquet") in lines[0], lines[0]
    assert "python -m workloads.data.generate --out" in lines[0], lines[0]


def test_a_marker_from_before_checksums_is_loaded_only_when_its_metadata_parses(checkpoints_to_12: Path,
                                                                                tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoints_to_12, ckpt)
    marker = ckpt / step_name(12) / MARKER
    legacy = {k: v for k, v in json.loads(marker.read_text()).items() if k != "files"}
    marker.write_text(json.dumps(legacy))
    skipped: list[str] = []
    assert Checkpointer(CheckpointConfig(location=str(ckpt))).latest_step(log=skipped.append) == 12 and not skipped
    garbage_metadata(ckpt / step_name(12))
    assert Checkpointer(CheckpointConfig(location=str(ckpt))).latest_step(log=skipped.append) == 10
    assert len(skipped) == 1 and skipped[0].startswith(
        f"checkpoint {step_name(12)} at {ckpt} skipped: it has no checksums and its .metadata does not parse ("), skipped
