"""Whole training runs on CPU: interruption at a random step, resume, and bit-equal results.

Every run here uses the tiny preset with a small batch, one CPU thread and a fixed seed, so an
uninterrupted run (the module's ``reference``) and any interrupted-then-resumed run must export
exactly the same parameters. SIGKILL and SIGTERM (once, and twice) hit real child processes; the
metadata-notice run (a spot notice served on 127.0.0.1), the save that dies before its marker
and the s3:// run (moto on 127.0.0.1) run in this process to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from safetensors.torch import load_file

from workloads.data.generate import GenerateConfig, generate
from workloads.training.checkpoint import MARKER, Checkpointer, step_name
from workloads.training.config import CheckpointConfig, parse_args
from workloads.training.train import TrainResult, run

pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled")

REPO = Path(__file__).resolve().parents[2]
STEPS = 40


def train_args(data: Path, ckpt: Path | str | None = None, export: Path | None = None, *extra: str) -> list[str]:
    argv = ["--preset", "tiny", "--data", str(data), "--batch-size", "16", "--max-steps", str(STEPS),
            "--lr-decay-steps", str(STEPS), "--threads", "1", "--log-every", "1", "--seed", "3",
            "--checkpoint-every", "5"]
    if ckpt is not None:
        argv += ["--checkpoint-dir", str(ckpt)]
    if export is not None:
        argv += ["--export-dir", str(export)]
    return argv + list(extra)


def run_here(argv: list[str]) -> TrainResult:
    return run(parse_args(argv), log=lambda m: None)


def spawn(argv: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "workloads.training", *argv]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_step(proc: subprocess.Popen[str], step: int) -> list[str]:
    """Read the child's log until it reports ``step`` (or it exits); return the lines read."""
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("step ") and int(line.split()[1].split("/")[0]) >= step:
            return lines
    raise AssertionError(f"process exited (rc={proc.wait()}) before step {step}:\n{''.join(lines)}")


def finish(proc: subprocess.Popen[str], lines: list[str]) -> str:
    out, _ = proc.communicate(timeout=120)
    return "".join(lines) + out


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
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, torch.Tensor], dict]:
    """Parameters and metrics of an uninterrupted run."""
    out = tmp_path_factory.mktemp("reference")
    result = run_here(train_args(data, out / "ckpt", out / "export"))
    assert result.exit_code == 0 and result.step == STEPS
    return params(out / "export"), json.loads((out / "export" / "metrics.json").read_text())


def test_tiny_model_beats_the_popularity_baseline(reference: tuple[dict, dict]) -> None:
    _, metrics = reference
    assert metrics["steps"] == STEPS and metrics["loss"] > 0 and metrics["mfu"] is None
    assert metrics["hit_rate_at_10"] > 1.5 * metrics["popularity_hit_rate_at_10"], metrics
    assert metrics["ndcg_at_10"] > metrics["popularity_ndcg_at_10"], metrics


def test_sigkill_at_a_random_step_then_resume_equals_an_uninterrupted_run(data: Path, reference, tmp_path) -> None:
    kill_at = random.randint(8, 30)
    proc = spawn(train_args(data, tmp_path / "ckpt"))
    lines = wait_for_step(proc, kill_at)
    proc.kill()
    finish(proc, lines)
    assert proc.returncode == -signal.SIGKILL
    saved = Checkpointer(CheckpointConfig(location=str(tmp_path / "ckpt"))).complete_steps()
    assert saved and saved[-1] < STEPS, f"killed at step {kill_at}: checkpoints {saved}"

    result = run_here(train_args(data, tmp_path / "ckpt", tmp_path / "export"))
    assert result.exit_code == 0 and result.resumed_from == saved[-1]
    assert_bit_equal(params(tmp_path / "export"), reference[0])


@pytest.mark.parametrize("signals", [1, pytest.param(2, marks=pytest.mark.slow)], ids=["sigterm", "sigterm-twice"])
def test_sigterm_checkpoints_exits_75_and_resume_is_bit_equal(data: Path, reference, tmp_path, signals: int) -> None:
    stop_at = random.randint(8, 30)
    proc = spawn(train_args(data, tmp_path / "ckpt"))
    lines = wait_for_step(proc, stop_at)
    for _ in range(signals):  # the second one lands during the save, or right after it
        proc.send_signal(signal.SIGTERM)
    log = finish(proc, lines)
    assert proc.returncode == 75, log
    latest = Checkpointer(CheckpointConfig(location=str(tmp_path / "ckpt"))).latest_step()
    assert latest is not None and latest < STEPS, log
    if signals == 1:
        preempted = next(line for line in log.splitlines() if line.startswith("preempted (SIGTERM) at step"))
        assert latest == int(preempted.split("at step ")[1].split(";")[0]), log

    result = run_here(train_args(data, tmp_path / "ckpt", tmp_path / "export"))
    assert result.exit_code == 0 and result.resumed_from == latest
    assert_bit_equal(params(tmp_path / "export"), reference[0])


class _SpotMetadata(BaseHTTPRequestHandler):
    """AWS IMDS: a token on PUT, 404 for instance-action until the test arms it."""

    armed = threading.Event()
    tokens_seen: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        self._reply(200, "imds-token" if self.path == "/latest/api/token" else "")

    def do_GET(self) -> None:
        type(self).tokens_seen.append(self.headers.get("X-aws-ec2-metadata-token", ""))
        if self.path == "/latest/meta-data/spot/instance-action" and type(self).armed.is_set():
            self._reply(200, json.dumps({"action": "terminate", "time": "2026-11-28T20:00:00Z"}))
        else:
            self._reply(404, "Not Found")

    def _reply(self, code: int, body: str) -> None:
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture()
def spot_metadata() -> Iterator[tuple[str, type[_SpotMetadata]]]:
    handler = type("Handler", (_SpotMetadata,), {"armed": threading.Event(), "tokens_seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/latest/meta-data/spot/instance-action", handler
    server.shutdown()


def test_aws_spot_notice_stops_the_run_checkpoints_and_exits_75(data: Path, reference, tmp_path,
                                                                 spot_metadata) -> None:
    url, handler = spot_metadata
    arm_at = random.randint(8, 30)
    lines: list[str] = []

    def log(line: str) -> None:  # arm the metadata server once training reaches `arm_at`
        lines.append(line)
        if line.startswith(f"step {arm_at}/"):
            handler.armed.set()

    argv = train_args(data, tmp_path / "ckpt", None, "--notice-kind", "aws", "--notice-url", url,
                      "--notice-poll-seconds", "0.02")
    result = run(parse_args(argv), log=log)
    assert result.exit_code == 75, lines
    assert any(line.startswith("preempted (aws-notice)") for line in lines), lines
    assert "imds-token" in handler.tokens_seen, "the poller uses an IMDSv2 token"
    latest = Checkpointer(CheckpointConfig(location=str(tmp_path / "ckpt"))).latest_step()
    assert latest == result.step and arm_at <= latest < STEPS, (arm_at, latest)
    assert result.stop_to_checkpoint_seconds is not None and result.stop_to_checkpoint_seconds < 30

    resumed = run_here(train_args(data, tmp_path / "ckpt", tmp_path / "export"))
    assert resumed.exit_code == 0 and resumed.resumed_from == latest
    assert_bit_equal(params(tmp_path / "export"), reference[0])


class _KilledBeforeMarker(Exception):
    pass


def test_a_checkpoint_killed_before_its_marker_is_never_loaded(data: Path, reference, tmp_path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The second save dies after its shards are renamed into place and before COMPLETE is written."""
    original = Checkpointer.write_marker

    def write_marker(self: Checkpointer, directory: Path, payload: dict) -> None:
        if payload["step"] == 10:
            raise _KilledBeforeMarker  # nothing after this point runs, as with SIGKILL
        original(self, directory, payload)

    monkeypatch.setattr(Checkpointer, "write_marker", write_marker)
    with pytest.raises(_KilledBeforeMarker):
        run_here(train_args(data, tmp_path / "ckpt"))
    monkeypatch.undo()
    torn = tmp_path / "ckpt" / step_name(10)
    assert torn.is_dir() and (torn / ".metadata").is_file() and not (torn / MARKER).exists()
    assert Checkpointer(CheckpointConfig(location=str(tmp_path / "ckpt"))).latest_step() == 5

    result = run_here(train_args(data, tmp_path / "ckpt", tmp_path / "export"))
    assert result.exit_code == 0 and result.resumed_from == 5
    assert_bit_equal(params(tmp_path / "export"), reference[0])


def test_s3_checkpoints_on_a_local_moto_server_resume_bit_equal(data: Path, reference, tmp_path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        fs = s3fs.S3FileSystem(endpoint_url=endpoint)
        fs.mkdir("ckpt-bucket")
        url = "s3://ckpt-bucket/runs/tiny"
        common = ["--storage-endpoint-url", endpoint, "--staging-dir", str(tmp_path / "staging")]
        first = run_here([*train_args(data, url, None, *common), "--max-steps", "22"])
        assert first.exit_code == 0 and first.step == 22
        assert fs.exists(f"ckpt-bucket/runs/tiny/{step_name(22)}/{MARKER}")
        assert fs.exists(f"ckpt-bucket/runs/tiny/{step_name(22)}/.metadata")
        assert not fs.exists(f"ckpt-bucket/runs/tiny/{step_name(10)}"), "keep-last 3 pruned the oldest"

        second = run_here(train_args(data, url, tmp_path / "export", *common))
        assert second.exit_code == 0 and second.resumed_from == 22
        assert_bit_equal(params(tmp_path / "export"), reference[0])
    finally:
        server.stop()
