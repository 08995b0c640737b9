"""The local model loop: its pure pieces (retrain rule, new-day data, shuffled labels, report,
fault injection, fine-tune start) and the whole loop end to end in its tiny size (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpuplane.pipeline.report import LoopReport, RoundRecord, render_markdown, write_report
from workloads.pipeline.retrain import retrain_plan

# (name, champion items, data items, mode, words)
RETRAIN_TABLE = [
    ("no champion: scratch", None, [1, 2, 3], "scratch", "no champion yet"),
    ("same vocabulary: fine-tune", [1, 2, 3], [3, 2, 1], "fine-tune", "item vocabulary unchanged (3 items)"),
    ("new items: scratch", [1, 2, 3], [1, 2, 3, 4, 5], "scratch", "+2 / -0 items"),
    ("removed items: scratch", [1, 2, 3], [1, 2], "scratch", "+0 / -1 items"),
]


@pytest.mark.parametrize(("champion", "data", "mode", "words"), [r[1:] for r in RETRAIN_TABLE],
                         ids=[r[0] for r in RETRAIN_TABLE])
def test_retrain_rule_table(champion, data, mode, words):
    plan = retrain_plan(champion, data, "7" if champion else None)
    assert plan.mode == mode
    assert words in plan.reason
    if champion:
        assert "champion v7" in plan.reason


def test_a_new_day_lands_in_the_same_world(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from gpuplane.pipeline.data import append_day, item_ids, shuffle_items
    from workloads.data.generate import GenerateConfig, generate

    generate(tmp_path / "d1", GenerateConfig(users=100, items=80, days=2, seed=3))
    meta = append_day(tmp_path / "d1", tmp_path / "d2")
    old = pq.read_table(tmp_path / "d1" / "events.parquet")
    new = pq.read_table(tmp_path / "d2" / "events.parquet")
    assert meta["days"] == 3 and meta["new_window_start"].startswith("2025-01-08")
    assert new.num_rows == old.num_rows + meta["new_events"] and meta["new_events"] > 0
    assert new.slice(0, old.num_rows).equals(old)  # the old window is kept as it was
    appended = new.slice(old.num_rows)
    assert appended["event_timestamp"][0].as_py() >= old["event_timestamp"][-1].as_py().replace(hour=0, minute=0, second=0, microsecond=0)
    assert set(appended["session_id"].to_pylist()).isdisjoint(old["session_id"].to_pylist())
    # same seed, same world: items (and their categories, prices) identical
    assert pq.read_table(tmp_path / "d2" / "items.parquet").equals(pq.read_table(tmp_path / "d1" / "items.parquet"))
    assert item_ids(tmp_path / "d2") == list(range(1, 81))
    shuffle_items(tmp_path / "d2", tmp_path / "shuffled", seed=1)
    shuffled = pq.read_table(tmp_path / "shuffled" / "events.parquet")["item_id"].to_numpy()
    original = new["item_id"].to_numpy()
    assert sorted(shuffled) == sorted(original) and not np.array_equal(shuffled, original)
    assert json.loads((tmp_path / "shuffled" / "meta.json").read_text())["shuffled_item_ids"] is True


def test_the_report_shows_each_decision_with_its_metrics_and_reason(tmp_path):
    r = LoopReport(mode="tiny", started="2026-01-01T00:00:00+00:00", out_dir=str(tmp_path), tracking_uri="sqlite:///x")
    r.rounds = [
        RoundRecord("day-2", "day-2 fine-tune", version="2", retrain_mode="fine-tune", retrain_reason="vocab same",
                    metrics={"hit_rate_at_10": 0.8, "ndcg_at_10": 0.55, "baseline_ndcg_at_10": 0.2,
                             "champion_ndcg_at_10": 0.47},
                    gate={"promoted": True, "reason": "beats the champion"},
                    canary={"percent": 20.0, "verdict": {"action": "promote", "reason": "all good"}},
                    outcome="serving 100%", stage_seconds={"train": 10.0, "canary": 5.0}, new_data_to_100_seconds=15.0),
        RoundRecord("shuffled", "shuffled-label model", version="3", metrics={"ndcg_at_10": 0.18},
                    gate={"promoted": False, "reason": "does not beat the popularity baseline"},
                    outcome="rejected by the gate"),
    ]
    r.traffic = {"steady": {"requests": 10, "errors_5xx": 0, "no_reply": 0, "p50_ms": 20.0, "p99_ms": 40.0,
                            "by_backend": {"champion": 10}}}
    r.checks = [("day-2: serving 100%", True), ("shuffled: rejected", False)]
    md = render_markdown(r)
    assert "| day-2 fine-tune | v2 | fine-tune | 0.8000 | 0.5500 | 0.2000 | 0.4700 | promoted | promote | serving 100% |" in md
    assert "| shuffled-label model | v3 | – | – | 0.1800 | – | – | rejected | – | rejected by the gate |" in md
    assert "gate: does not beat the popularity baseline" in md and "canary at 20%: promote: all good" in md
    assert "**15.0 s**" in md and "✗ shuffled: rejected" in md
    assert r.failed_checks() == ["shuffled: rejected"]
    paths = write_report(tmp_path, r)
    assert [p.name for p in paths] == ["pipeline-report.md", "pipeline-report.json"]
    assert json.loads(paths[1].read_text())["rounds"][1]["gate"]["promoted"] is False


def test_the_fault_injector_fails_infer_only():
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from workloads.pipeline.faults import InjectInferErrors

    async def ok(request):
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/v2/models/m/infer", ok, methods=["POST"]), Route("/v2/health/ready", ok)])
    app.add_middleware(InjectInferErrors, error_rate=1.0)
    with TestClient(app) as client:
        assert client.get("/v2/health/ready").status_code == 200
        r = client.post("/v2/models/m/infer", json={})
        assert r.status_code == 500 and "injected fault 1" in r.json()["error"]
    half = Starlette(routes=[Route("/v2/models/m/infer", ok, methods=["POST"])])
    half.add_middleware(InjectInferErrors, error_rate=0.5, seed=0)
    with TestClient(half) as client:
        codes = [client.post("/v2/models/m/infer", json={}).status_code for _ in range(200)]
    assert 60 < codes.count(500) < 140 and set(codes) == {200, 500}


def test_fine_tuning_refuses_an_export_of_another_vocabulary(tmp_path):
    torch = pytest.importorskip("torch")
    from workloads.model import ModelConfig, NextItemModel
    from workloads.training.config import UsageError
    from workloads.training.export import export_model
    from workloads.training.train import init_from_export

    small = ModelConfig(num_items=50, block_size=8, n_layer=1, n_head=2, n_embd=16)
    torch.manual_seed(0)
    source = NextItemModel(small)
    export_model(source, tmp_path / "e", list(range(1, 51)), {})
    same = NextItemModel(small)
    init_from_export(same, str(tmp_path / "e"), small)
    for (name, a), b in zip(source.state_dict().items(), same.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    other = ModelConfig(num_items=60, block_size=8, n_layer=1, n_head=2, n_embd=16)
    with pytest.raises(UsageError, match=r"num_items 50 vs 60.*train from scratch"):
        init_from_export(NextItemModel(other), str(tmp_path / "e"), other)


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_the_whole_loop_promotes_rejects_and_rolls_back(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("mlflow")
    from rich.console import Console

    from gpuplane.pipeline import TINY, run_loop
    from workloads.pipeline.registry import Registry

    report = run_loop(tmp_path, TINY, console=Console(width=120, record=True, force_terminal=False))
    assert report.error is None, report.error
    assert report.failed_checks() == [], report.checks
    by_key = {rd.key: rd for rd in report.rounds}
    assert [rd.outcome for rd in report.rounds] == ["serving 100% (first champion)", "serving 100%",
                                                    "rejected by the gate", "rolled back"]
    day2, faulty = by_key["day-2"], by_key["day-3-faulty"]
    assert day2.retrain_mode == "fine-tune" and by_key["shuffled"].retrain_mode == "scratch"
    assert day2.canary["verdict"]["action"] == "promote" and faulty.canary["verdict"]["action"] == "rollback"
    assert "5xx rate" in faulty.canary["verdict"]["reason"]
    assert by_key["shuffled"].gate["promoted"] is False and "baseline" in by_key["shuffled"].gate["reason"]
    assert day2.new_data_to_100_seconds and set(day2.stage_seconds) >= {"data", "train", "evaluate", "gate",
                                                                        "canary-start", "canary", "promote"}
    # the registry says the same: day-2's model is the champion, the faulty one is tagged rolled back
    reg = Registry(report.tracking_uri)
    assert reg.by_alias("recommender", "champion").version == day2.version == report.champion_version
    assert reg.get_version("recommender", faulty.version).tags["rollout"] == "rolled_back"
    assert reg.get_version("recommender", by_key["shuffled"].version).tags["gate"] == "rejected"
    # requests kept flowing: none without a reply, and no 5xx outside the faulty canary
    switch = report.traffic["switch: day-2 fine-tune"]
    assert switch["requests"] > 0 and switch["errors_5xx"] == 0 and switch["no_reply"] == 0
    assert set(switch["by_backend"]) == {"champion", "challenger"}
    whole = report.traffic["whole loop"]
    assert whole["no_reply"] == 0
    assert whole["errors_5xx"] == report.traffic["switch: day-3 fine-tune, faulty server"]["errors_5xx"] > 0
    assert (tmp_path / "pipeline-report.md").read_text().count("| v") >= 4
    assert (tmp_path / "requests.csv").is_file()


def _fake_loop_report(tmp_path) -> LoopReport:
    r = LoopReport(mode="demo full", started="2026-01-01T00:00:00+00:00", out_dir=str(tmp_path))
    r.rounds = [RoundRecord("bootstrap", "day-1 model (first champion)", version="1", outcome="serving 100% (first champion)"),
                RoundRecord("day-2", "day-2 fine-tune", version="2", metrics={"ndcg_at_10": 0.55,
                            "champion_ndcg_at_10": 0.47}, gate={"promoted": True, "reason": "beats"},
                            outcome="serving 100%", new_data_to_100_seconds=31.0)]
    r.traffic = {"switch: day-2 fine-tune": {"requests": 120, "errors_5xx": 0, "no_reply": 0, "p50_ms": 30.0,
                                             "p99_ms": 61.0, "by_backend": {}}}
    return r


def test_the_demo_report_carries_the_loop_decisions(tmp_path):
    from gpuplane.demo.report import DemoReport, key_figures
    from gpuplane.demo.report import render_markdown as demo_markdown

    report = DemoReport(mode="full", started="2026-01-01T00:00:00+00:00", out_dir=str(tmp_path))
    report.loop = _fake_loop_report(tmp_path)
    figures = dict(key_figures(report))
    assert figures["loop: day-2 fine-tune"] == "v2 serving 100% (NDCG@10 0.550 vs champion 0.470, new data → 100% in 31 s)"
    assert figures["loop: requests during the switch"] == "120, 0 5xx, p99 61 ms"
    md = demo_markdown(report)
    assert "## The model loop" in md and "### Decisions" in md and "| day-2 fine-tune | v2 |" in md
    assert json.loads(json.dumps(report.to_json()))["loop"]["rounds"][1]["version"] == "2"


def test_the_demo_runs_the_loop_after_the_cost_and_quick_mode_skips_it_with_a_note(tmp_path):
    from gpuplane import demo
    from gpuplane.demo.config import FULL, QUICK
    from gpuplane.demo.steps import Skip, step_loop

    keys = [key for key, _, _ in demo.STEPS]
    # The loop follows the cost summary; the batch and edge steps come after it (they reuse the trained model).
    assert keys[keys.index("cost") + 1] == "loop" and keys[-2:] == ["batch", "edge"]
    assert FULL.loop and not QUICK.loop and "pipeline" in demo.OUTPUT_NAMES

    class Ctx:
        cfg = QUICK

    with pytest.raises(Skip, match=r"quick mode leaves the model loop out to stay quick; run `gpuplane pipeline --tiny`"):
        step_loop(Ctx())  # type: ignore[arg-type]
