"""Training's Prometheus metrics (workloads/training/metrics.py): inert by default and on other
ranks, and a real CPU run in this process serving the expected figures on $GPUPLANE_METRICS_PORT."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.workloads.test_serving_support import free_port
from workloads.data.generate import GenerateConfig, generate
from workloads.training.config import parse_args
from workloads.training.metrics import TrainingMetrics
from workloads.training.train import run

pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled")


def scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out


@pytest.mark.parametrize(("rank", "environ"), [(0, {}), (1, {"GPUPLANE_METRICS_PORT": "9090"}),
                                               (0, {"GPUPLANE_METRICS_PORT": " "})])
def test_metrics_are_inert_without_the_port_or_off_rank_zero(rank: int, environ: dict[str, str]) -> None:
    metrics = TrainingMetrics.from_env(rank, environ)
    assert not metrics.enabled
    metrics.stepped(3)  # no collectors, no error
    metrics.checkpointed("periodic", 0.1)


def test_a_bad_port_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match=r"GPUPLANE_METRICS_PORT='http' must be a port number"):
        TrainingMetrics.from_env(0, {"GPUPLANE_METRICS_PORT": "http"})


@pytest.mark.slow
def test_a_run_serves_steps_checkpoints_and_its_resume_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    generate(data, GenerateConfig(users=200, items=100, days=5, seed=2))
    argv = ["--preset", "tiny", "--data", str(data), "--batch-size", "8", "--max-steps", "12", "--threads", "1",
            "--log-every", "4", "--checkpoint-every", "5", "--checkpoint-dir", str(tmp_path / "ckpt")]
    port = free_port()
    monkeypatch.setenv("GPUPLANE_METRICS_PORT", str(port))
    assert run(parse_args(argv), log=lambda m: None).exit_code == 0
    first = scrape(port)
    assert first["gpuplane_training_steps_total"] == 12 and first["gpuplane_training_step"] == 12
    assert first["gpuplane_training_resumed_from_step"] == -1
    assert first["gpuplane_training_checkpoints_total{kind=periodic}"] == 2  # steps 5 and 10
    assert first["gpuplane_training_checkpoints_total{kind=final}"] == 1  # step 12
    assert first["gpuplane_training_checkpoint_seconds"] > 0 and first["gpuplane_training_loss"] > 0
    assert first["gpuplane_training_tokens_per_second"] > 0 and first["gpuplane_training_preemptions_total"] == 0

    port = free_port()  # a restart is a new process: a new series from a new server
    monkeypatch.setenv("GPUPLANE_METRICS_PORT", str(port))
    argv[argv.index("--max-steps") + 1] = "14"
    assert run(parse_args(argv), log=lambda m: None).exit_code == 0
    second = scrape(port)
    assert second["gpuplane_training_resumed_from_step"] == 12
    assert second["gpuplane_training_steps_total"] == 2 and second["gpuplane_training_step"] == 14
