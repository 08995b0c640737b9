"""Fast tests of the training workload's parts: config, data, sampler, metrics, checkpoints, notices."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from workloads.data.generate import GenerateConfig, generate
from workloads.model import ModelConfig, NextItemModel
from workloads.training.__main__ import main
from workloads.training.checkpoint import MARKER, TMP_PREFIX, Checkpointer, step_name
from workloads.training.config import (
    CheckpointConfig,
    OptimConfig,
    PreemptionConfig,
    UsageError,
    parse_args,
    peak_tflops_for,
    validate,
)
from workloads.training.data import IGNORE_INDEX, BatchSampler, is_held_out, load_dataset, split_batch
from workloads.training.evaluate import ranking_metrics
from workloads.training.export import export_model
from workloads.training.preemption import NoticePoller, StopFlag
from workloads.training.train import lr_at

pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    generate(out, GenerateConfig(users=150, items=120, days=5, seed=2))
    return out


# ---- config -----------------------------------------------------------------------------------


def test_presets_and_flags_build_a_typed_config(data_dir: Path) -> None:
    cfg = parse_args(["--preset", "tiny", "--data", str(data_dir), "--max-steps", "7", "--batch-size", "8",
                      "--checkpoint-dir", "s3://b/run", "--async-checkpoint", "--notice-kind", "aws"])
    assert (cfg.train.max_steps, cfg.train.batch_size, cfg.model.n_layer) == (7, 8, 2)
    assert cfg.checkpoint.location == "s3://b/run" and cfg.checkpoint.async_save
    assert cfg.checkpoint.every_steps == 100, "the preset's interval applies when --checkpoint-every is absent"
    assert cfg.preemption.notice_kind == "aws" and cfg.preemption.notice_url is None


def test_environment_supplies_notice_and_endpoint_flags(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("GPUPLANE_NOTICE_KIND", "gce")
    monkeypatch.setenv("GPUPLANE_NOTICE_URL", "http://127.0.0.1:1/preempted")
    monkeypatch.setenv("GPUPLANE_STORAGE_ENDPOINT_URL", "http://127.0.0.1:2")
    cfg = parse_args(["--data", str(data_dir)])
    assert cfg.preemption.notice_kind == "gce"
    assert cfg.preemption.notice_url == "http://127.0.0.1:1/preempted"
    assert cfg.checkpoint.endpoint_url == "http://127.0.0.1:2"


def test_every_invalid_field_is_reported_at_once(data_dir: Path) -> None:
    with pytest.raises(UsageError) as err:
        parse_args(["--data", str(data_dir), "--max-steps", "0", "--batch-size", "10", "--grad-accum", "3",
                    "--keep-last", "0", "--checkpoint-dir", "ftp://x/y"])
    msg = str(err.value)
    for part in ("--max-steps=0", "--batch-size=10 is not divisible", "--keep-last=0", "scheme 'ftp'"):
        assert part in msg, msg


def test_batch_must_divide_over_world_size(data_dir: Path) -> None:
    cfg = parse_args(["--data", str(data_dir), "--batch-size", "6"])
    validate(cfg, world_size=3)
    with pytest.raises(UsageError, match="world_size\\*grad_accum=4\\*1"):
        validate(cfg, world_size=4)


def test_usage_errors_exit_2(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(data_dir), "--lr", "-1"]) == 2
    assert "--lr=-1.0 must be positive" in capsys.readouterr().err
    assert main(["--data", str(tmp_path), "--max-steps", "1"]) == 2
    assert "missing events.parquet" in capsys.readouterr().err


def test_peak_table_matches_specific_names_first() -> None:
    assert peak_tflops_for("NVIDIA H200") == 989.0
    assert peak_tflops_for("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops_for("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops_for("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak_tflops_for("NVIDIA L40S") == 362.0
    assert peak_tflops_for("NVIDIA L4") == 121.0
    assert peak_tflops_for("Tesla T4") is None


def test_lr_warms_up_then_decays_to_min() -> None:
    o = OptimConfig(lr=1.0, min_lr=0.1, warmup_steps=10)
    lrs = [lr_at(s, o, 100) for s in range(120)]
    assert lrs[0] < lrs[5] < lrs[9] < 1.0
    assert lrs[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:101]))
    assert lrs[100] == lrs[119] == 0.1


# ---- data -------------------------------------------------------------------------------------


def test_windows_cover_every_training_transition_once_and_held_out_users_are_separate(data_dir: Path) -> None:
    from workloads.training.data import user_histories

    ds = load_dataset(data_dir, block_size=8, eval_fraction=0.2, eval_positions=3)
    users, histories = user_histories(data_dir / "events.parquet")
    held = is_held_out(users, 0.2)
    transitions = sum(len(h) - 1 for h, out in zip(histories, held, strict=True) if not out and len(h) >= 2)
    x, y = ds.windows[:, :-1], ds.windows[:, 1:]
    assert int(((x != 0) & (y != 0)).sum()) == transitions
    assert ds.eval_histories.shape == (ds.eval_targets.shape[0], 8)
    assert ds.item_counts[0] == 0 and ds.item_counts.sum() > 0
    assert 0 < ds.eval_users < ds.train_users
    assert is_held_out(np.arange(1000), 0.1).mean() == pytest.approx(0.1, abs=0.03)


def test_sampler_resumes_the_same_order_across_epochs() -> None:
    full = BatchSampler(num_windows=10, global_batch=4, seed=7)
    seen = [full.next_indices() for _ in range(6)]  # 24 samples: 2.4 epochs
    first_epoch = torch.cat(seen)[:10]
    assert sorted(first_epoch.tolist()) == list(range(10))
    resumed = BatchSampler(num_windows=10, global_batch=4, seed=7)
    partial = BatchSampler(num_windows=10, global_batch=4, seed=7)
    for _ in range(3):
        partial.next_indices()
    resumed.load_state_dict(partial.state_dict())
    assert all(torch.equal(resumed.next_indices(), seen[i]) for i in range(3, 6))
    with pytest.raises(UsageError, match="trained on 10 windows"):
        BatchSampler(num_windows=11, global_batch=4, seed=7).load_state_dict(partial.state_dict())


def test_ranks_and_micro_steps_partition_the_global_batch() -> None:
    windows = torch.tensor([[0, 0, 1, 2], [0, 3, 4, 5], [6, 7, 8, 9], [0, 0, 0, 1]] * 2)  # (8, T + 1)
    idx = torch.arange(8)
    (whole,), n_all = split_batch(windows, idx, 1, 1, 0)
    parts = [split_batch(windows, idx, 2, 2, r) for r in range(2)]
    assert all(int(n) == int(n_all) == 12 for _, n in parts)
    xs = torch.cat([parts[r][0][m][0] for m in range(2) for r in range(2)])
    assert torch.equal(xs, whole[0])
    assert whole[1][0].tolist() == [IGNORE_INDEX, IGNORE_INDEX, 2], "no target where the input is padding"


def test_ranking_metrics_by_hand() -> None:
    recs = torch.tensor([[5, 6, 7], [1, 2, 3], [9, 8, 7]])
    out = ranking_metrics(recs, torch.tensor([5, 3, 4]))
    assert out["hit_rate_at_3"] == pytest.approx(2 / 3)
    assert out["ndcg_at_3"] == pytest.approx((1.0 + 1 / np.log2(4)) / 3)


# ---- export -----------------------------------------------------------------------------------


def test_export_writes_the_serving_contract(tmp_path: Path) -> None:
    cfg = ModelConfig(num_items=30, block_size=8, n_layer=1, n_head=2, n_embd=16)
    model = NextItemModel(cfg)
    export_model(model, tmp_path, [1, 2, 30], {"hit_rate_at_10": 0.5})
    assert ModelConfig.from_json((tmp_path / "config.json").read_text()) == cfg
    again = NextItemModel(cfg)
    again.load_state_dict(load_file(tmp_path / "model.safetensors"), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))
    assert json.loads((tmp_path / "items.json").read_text()) == [1, 2, 30]
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"hit_rate_at_10": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "items.json", "metrics.json", "model.safetensors"]


# ---- checkpoints ------------------------------------------------------------------------------


def _state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((4, 3), value), "step": torch.tensor(int(value))}


def test_checkpoint_round_trip_keeps_last_k_and_deletes_markers_first(tmp_path: Path) -> None:
    ck = Checkpointer(CheckpointConfig(location=str(tmp_path), keep_last=2))
    for step in (10, 20, 30):
        ck.save(step, _state(step))
    assert ck.complete_steps() == [20, 30] and ck.latest_step() == 30
    assert not (tmp_path / step_name(10)).exists()
    loaded = _state(0)
    ck.load(20, loaded)
    assert torch.equal(loaded["w"], torch.full((4, 3), 20.0)) and int(loaded["step"]) == 20
    assert json.loads((tmp_path / step_name(30) / MARKER).read_text())["step"] == 30


def test_checkpoints_without_a_marker_or_in_temporary_dirs_are_never_loaded(tmp_path: Path) -> None:
    ck = Checkpointer(CheckpointConfig(location=str(tmp_path)))
    ck.save(10, _state(10))
    (tmp_path / f"{TMP_PREFIX}{step_name(20)}").mkdir()  # a save killed while writing shards
    (tmp_path / f"{TMP_PREFIX}{step_name(20)}" / "__0_0.distcp").write_bytes(b"partial")
    torn = tmp_path / step_name(30)  # renamed, killed before the marker
    torn.mkdir()
    (torn / ".metadata").write_bytes(b"garbage")
    assert Checkpointer(CheckpointConfig(location=str(tmp_path))).latest_step() == 10
    assert not (tmp_path / f"{TMP_PREFIX}{step_name(20)}").exists(), "stale temporary saves are cleaned on start"
    ck.save(30, _state(30))  # the torn step is replaced, then committed
    assert ck.complete_steps() == [10, 30]
    loaded = _state(0)
    ck.load(30, loaded)
    assert int(loaded["step"]) == 30


def test_async_save_commits_only_after_the_write_finishes(tmp_path: Path) -> None:
    ck = Checkpointer(CheckpointConfig(location=str(tmp_path), async_save=True))
    state = _state(5)
    ck.save(5, state, blocking=False)
    state["w"].fill_(99.0)  # training goes on; the staged copy must not see this
    assert ck.has_pending() and ck.complete_steps() == []
    ck.wait()
    assert not ck.has_pending() and ck.complete_steps() == [5]
    loaded = _state(0)
    ck.load(5, loaded)
    assert torch.equal(loaded["w"], torch.full((4, 3), 5.0))


# ---- preemption notices -----------------------------------------------------------------------


class _Metadata(BaseHTTPRequestHandler):
    """A cloud metadata service: 404 (AWS) / FALSE (GCE) until ``armed``."""

    armed = False
    seen_headers: ClassVar[list[dict[str, str]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_PUT(self) -> None:  # IMDSv2 token
        self._reply(200, "token-123")

    def do_GET(self) -> None:
        type(self).seen_headers.append(dict(self.headers))
        if self.path.endswith("instance-action"):
            if type(self).armed:
                self._reply(200, json.dumps({"action": "terminate", "time": "2026-01-01T00:00:00Z"}))
            else:
                self._reply(404, "Not Found")
        else:
            self._reply(200, "TRUE" if type(self).armed else "FALSE")

    def _reply(self, code: int, body: str) -> None:
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.mark.parametrize(("kind", "path", "header"), [
    ("aws", "/latest/meta-data/spot/instance-action", "X-aws-ec2-metadata-token"),
    ("gce", "/computeMetadata/v1/instance/preempted", "Metadata-Flavor"),
])
def test_notice_poller_sets_the_stop_flag_when_the_notice_appears(kind: str, path: str, header: str) -> None:
    handler = type("Handler", (_Metadata,), {"armed": False, "seen_headers": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        stop = StopFlag()
        poller = NoticePoller(PreemptionConfig(notice_kind=kind, notice_url=url, poll_seconds=0.02), stop,
                              log=lambda m: None)
        assert poller.check() is None
        poller.start()
        handler.armed = True
        poller.join(timeout=10)
        assert stop.is_set() and stop.reason == f"{kind}-notice"
        assert header.lower() in {h.lower() for h in handler.seen_headers[-1]}
    finally:
        server.shutdown()
