"""``gpuplane demo``: its pure pieces (traffic-day compression, request payloads, cold/warm
classification, report assembly from fake measurements, process clean-up) and one end-to-end
run in quick mode (marked slow)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gpuplane.demo.config import FULL, QUICK, DemoConfig
from gpuplane.demo.procs import Processes, alive, descendants
from gpuplane.demo.report import (
    CostRecord,
    CostRow,
    DemoReport,
    PlanRecord,
    PlatformCost,
    ServingRecord,
    StepRecord,
    Timeline,
    TrainingRecord,
    key_figures,
    render_markdown,
    write_report,
)
from gpuplane.demo.steps import activator_metrics, server_phases
from gpuplane.demo.traffic import (
    DaySpec,
    Example,
    classify_cold,
    compress_day,
    examples_from_events,
    infer_body,
    is_held_out,
    latency_summary,
    scale_to_zero_gaps,
    start_durations,
    state_intervals,
    traffic_day,
)
from gpuplane.simulate.traffic import DAY_S, Trace

# ---------------------------------------------------------------------------------------------
# traffic day and its compression


def _trace(times: list[float], duration: float = DAY_S) -> Trace:
    return Trace(times_s=np.array(times, dtype=np.float64), endpoint=np.zeros(len(times), dtype=np.int32),
                 duration_s=duration, n_endpoints=1)


def test_compression_divides_every_arrival_by_one_speedup():
    trace = _trace([0.0, 3600.0, 43_200.0, 86_000.0])
    s = compress_day(trace, 72.0)
    assert s.speedup == pytest.approx(1200.0)
    np.testing.assert_allclose(s.send_at_s, [0.0, 3.0, 36.0, 86_000.0 / 1200.0])
    assert s.wall_seconds == pytest.approx(72.0)
    assert s.clock(36.0) == "12:00"
    assert s.clock(3.0) == "01:00"


def test_compression_rejects_a_non_positive_wall_time():
    with pytest.raises(ValueError, match="wall_seconds=0"):
        compress_day(_trace([1.0]), 0.0)


def test_scale_to_zero_gaps_are_those_longer_than_idle_plus_margin():
    # Wall gaps 0.5, 4.0, 2.9, 3.1 with idle 2 + margin 1: requests 2 and 4 follow a long gap.
    s = compress_day(_trace([0.0, 0.5, 4.5, 7.4, 10.5], duration=20.0), 20.0)
    np.testing.assert_array_equal(scale_to_zero_gaps(s, idle_seconds=2.0, margin_s=1.0), [2, 4])


def test_rate_per_bin_counts_requests_per_wall_second():
    s = compress_day(_trace([0.1, 0.2, 1.5, 3.9], duration=4.0), 4.0)
    t, rate = s.rate_per_bin(1.0)
    np.testing.assert_array_equal(t, [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(rate, [2.0, 1.0, 0.0, 1.0])


@pytest.mark.parametrize("cfg", [FULL, QUICK], ids=["full", "quick"])
def test_default_days_have_night_gaps_that_scale_the_server_to_zero(cfg: DemoConfig):
    """The demo relies on its seeded day having quiet spells longer than the activator's idle period."""
    trace = traffic_day(cfg.day)
    s = compress_day(trace, cfg.day_wall_seconds)
    assert trace.n_requests > 0.5 * cfg.day.requests
    gaps = scale_to_zero_gaps(s, cfg.idle_seconds)
    assert gaps.size >= (2 if cfg is FULL else 1), f"{gaps.size} long gaps in the {cfg.mode} day"
    # The diurnal shape survives: the busiest wall second is well above the mean.
    _, rate = s.rate_per_bin(1.0)
    assert rate.max() > 2.5 * trace.n_requests / cfg.day_wall_seconds


def test_traffic_day_is_seeded():
    a, b = traffic_day(DaySpec(seed=3)), traffic_day(DaySpec(seed=3))
    np.testing.assert_array_equal(a.times_s, b.times_s)
    assert traffic_day(DaySpec(seed=4)).n_requests != a.n_requests or not np.array_equal(
        traffic_day(DaySpec(seed=4)).times_s, a.times_s)


# ---------------------------------------------------------------------------------------------
# request payloads


def test_held_out_split_matches_the_trainer():
    torch_data = pytest.importorskip("workloads.training.data")
    ids = np.arange(0, 5000, dtype=np.int64)
    np.testing.assert_array_equal(is_held_out(ids, 0.1), torch_data.is_held_out(ids, 0.1))


def test_examples_come_from_held_out_users_with_repeats_collapsed_and_the_true_next_item():
    held = int(np.flatnonzero(is_held_out(np.arange(1, 200), 0.1))[0]) + 1
    kept = int(np.flatnonzero(~is_held_out(np.arange(1, 200), 0.1))[0]) + 1
    users = np.array([held, kept, held, held, held, kept, held])
    items = np.array([5, 9, 5, 7, 8, 9, 3])  # held-out user's history: 5 5 7 8 3 -> 5 7 8 3
    ex = examples_from_events(users, items, block_size=2)
    assert ex == [Example(held, (5,), 7), Example(held, (5, 7), 8), Example(held, (7, 8), 3)]


def test_infer_body_is_oip_v2_with_item_ids_or_user_id():
    e = Example(7, (1, 2, 3), 4)
    body = infer_body(e, k=5)
    assert body["inputs"] == [
        {"name": "item_ids", "datatype": "INT64", "shape": [1, 3], "data": [1, 2, 3]},
        {"name": "k", "datatype": "INT64", "shape": [1], "data": [5]},
    ]
    by_user = infer_body(e, by_user=True)
    assert by_user["inputs"][0] == {"name": "user_id", "datatype": "INT64", "shape": [1], "data": [7]}  # type: ignore[index]


def test_infer_body_is_accepted_by_the_server_protocol():
    from workloads.serving.protocol import ModelSpec, parse_infer_request

    spec = ModelSpec(name="recommender", num_items=10, block_size=4, valid_items=range(1, 11), num_valid_items=10)
    req = parse_infer_request(json.dumps(infer_body(Example(7, (1, 2, 3), 4), k=5)).encode(), spec, max_batch_size=8)
    assert req.histories == ((1, 2, 3),) and req.k == 5
    req = parse_infer_request(json.dumps(infer_body(Example(7, (1,), 4), by_user=True)).encode(), spec, max_batch_size=8)
    assert req.user_ids == ("7",)


# ---------------------------------------------------------------------------------------------
# measurements


def test_a_request_is_cold_when_the_next_observation_shows_no_ready_server():
    obs_t = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    state = ["stopped", "starting", "ready", "ready", "stopping", "starting"]
    ready = np.array([s == "ready" for s in state])
    send = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 9.0])
    np.testing.assert_array_equal(classify_cold(send, obs_t, ready), [True, False, False, True, True, True])


def test_state_intervals_and_start_durations_from_the_polled_timeline():
    obs_t = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    state = ["stopped", "starting", "starting", "ready", "stopping", "starting", "ready"]
    assert state_intervals(obs_t, state, "ready", 8.0) == [(3.0, 4.0), (6.0, 8.0)]
    assert state_intervals(obs_t, state, "starting", 8.0) == [(1.0, 3.0), (5.0, 6.0)]
    assert start_durations(obs_t, state) == [2.0, 1.0]


def test_latency_summary_in_milliseconds():
    s = latency_summary(np.array([0.010, 0.020, 0.030, 1.0]))
    assert s["n"] == 4 and s["p50_ms"] == pytest.approx(25.0) and s["max_ms"] == pytest.approx(1000.0)
    assert latency_summary(np.array([]))["n"] == 0


def test_server_phases_are_read_from_the_ready_log_line():
    log = ("2026 INFO gpuplane.serving: ready: model 'recommender' (1000 items, block_size 32); cold start "
           "interpreter=0.644s server_start=0.102s imports=4.483s weights=0.004s warmup=0.016s total=5.250s\n"
           "other line\n")
    assert server_phases(log) == [{"interpreter": 0.644, "server_start": 0.102, "imports": 4.483, "weights": 0.004,
                                   "warmup": 0.016, "total": 5.25}]


def test_activator_metrics_keep_counters_and_histogram_sums():
    text = ("# TYPE gpuplane_activator_cold_starts counter\ngpuplane_activator_cold_starts_total 3.0\n"
            "# TYPE gpuplane_activator_hold_seconds histogram\n"
            'gpuplane_activator_hold_seconds_bucket{le="1.0"} 2.0\ngpuplane_activator_hold_seconds_bucket{le="+Inf"} 4.0\n'
            "gpuplane_activator_hold_seconds_count 4.0\ngpuplane_activator_hold_seconds_sum 6.0\n")
    m = activator_metrics(text)
    assert m["gpuplane_activator_cold_starts_total"] == 3.0
    assert m["gpuplane_activator_hold_seconds_sum"] / m["gpuplane_activator_hold_seconds_count"] == 1.5
    assert not any("bucket" in k for k in m)


# ---------------------------------------------------------------------------------------------
# configuration


def test_config_rejects_a_preemption_that_could_never_be_injected():
    with pytest.raises(ValueError, match="preempt_at_step=30 must be below max_steps=30"):
        replace(QUICK, preempt_at_step=30).validate()
    with pytest.raises(ValueError, match="no logged step"):
        replace(QUICK, max_steps=20, preempt_at_step=16, log_every=5).validate()
    FULL.validate()
    QUICK.validate()


# ---------------------------------------------------------------------------------------------
# report assembly from fake measurements


def _fake_report(tmp_path: Path) -> tuple[DemoReport, Timeline]:
    report = DemoReport(mode="full", started="2026-01-01T00:00:00+00:00", out_dir=str(tmp_path), wall_seconds=201.4)
    report.steps = [StepRecord(1, "Offline plan of every reference stack", "ok", 12.0, "3 stacks"),
                    StepRecord(3, "Feast local materialisation", "skipped", 0.0, "feast is not installed"),
                    StepRecord(5, "Serving", "failed", 70.0, "2 of 600 requests got no 200")]
    report.plans = [PlanRecord("aws-dev", resources=82, monthly_usd=24341.96, monthly_usd_max=146345.29, advisory=1,
                               violations=["advisory [gpu-spot] use spot"]),
                    PlanRecord("broken", error="PlanError: bad key")]
    report.training = TrainingRecord(max_steps=120, signalled_at_step=50, preempted_at_step=51, checkpoint_step=51,
                                     first_exit_code=75, resumed_from_step=51, final_exit_code=0, run_seconds=[40.0, 41.0],
                                     loss=2.9, hit_rate_at_10=0.79, popularity_hit_rate_at_10=0.29, ndcg_at_10=0.57,
                                     export_files=["model.safetensors", "config.json"])
    report.serving = ServingRecord(
        requests=600, replay_seconds=76.0, day_seconds=75.0, speedup=1152.0, idle_seconds=2.0, expected_scale_to_zero=4,
        codes={"200": 598, "503": 2}, latency_all=latency_summary(np.array([0.02] * 590 + [3.0] * 10)),
        latency_warm=latency_summary(np.array([0.02] * 590)), latency_cold=latency_summary(np.array([3.0] * 10)),
        user_id_requests=100, latency_warm_by_user=latency_summary(np.array([0.03] * 100)),
        cold_starts=5, scale_downs=4, cold_start_mean_s=3.5, cold_start_observed_s=[3.6, 3.4], held_requests=10,
        hold_mean_s=2.8, server_phases=[{"imports": 3.1, "total": 3.5}], online_hit_rate_at_10=0.75,
        errors=["request 7: HTTP 503: busy"])
    static = CostRow("static-for-peak (g6.xlarge)", "1 replica", 587.5, 24.0, 0.0, 18.0, 0.0, 1.0)
    at_slo = CostRow("Cloud Run L4: cheapest meeting the SLO", "idle timeout 3600 s, min instances 0", 540.0, 23.0,
                     0.01, 900.0, 0.081, 0.991)
    aggressive = CostRow("Cloud Run L4: aggressive (defaults)", "idle timeout 900 s, min instances 0", 511.9, 16.1,
                         0.05, 8527.0, 0.129, 0.95)
    bound = CostRow("lower bound (oracle: busy time + a model load per start)", "lower bound", 9.61, 0.39, 0.0, 18.0,
                    0.98, 1.0)
    report.cost = CostRecord(prices="aws g6.xlarge / Cloud Run L4", requests_per_day=600, service_time_ms=18.0,
                             local_cold_start_s=3.5, savings_bound=0.98, rows=[static, at_slo, aggressive, bound],
                             slo_ms=1000.0, slo_target=0.99, static=static,
                             platforms=[PlatformCost("Cloud Run L4", at_slo, aggressive)], bound=bound)
    send = np.linspace(0.0, 74.0, 600)
    timeline = Timeline(send_s=send, latency_s=np.r_[np.full(10, 3.0), np.full(590, 0.02)],
                        cold=np.r_[np.ones(10, bool), np.zeros(590, bool)], status=np.r_[np.full(598, 200), [503, 503]],
                        up=[(3.0, 74.0)], starting=[(0.0, 3.0)], rate_t=np.arange(75.0), rate=np.full(75, 8.0),
                        speedup=1152.0)
    return report, timeline


def test_markdown_report_shows_every_measurement_and_names_the_failed_step(tmp_path: Path):
    report, _ = _fake_report(tmp_path)
    md = render_markdown(report)
    assert "| 5 | Serving | FAILED | 70.0 | 2 of 600 requests got no 200 |" in md
    assert "| aws-dev | 82 | $24,341.96 | $146,345.29 | 0 | 0 | 1 | 0 |" in md
    assert "broken" in md and "not planned: PlanError: bad key" in md
    assert "- aws-dev: advisory [gpu-spot] use spot" in md
    assert "SIGTERM (a spot notice) after step 50; the trainer stopped at step 51" in md
    assert "exited 75" in md and "resumed from checkpoint step 51" in md
    assert "| warm | 590 | 20 | 20 | 20 | 20 |" in md
    assert "| cold (held) | 10 | 3,000 | 3,000 | 3,000 | 3,000 |" in md
    assert "| warm, by user_id (feature lookup) | 100 | 30 |" in md
    assert "cold starts: 5 (activator), 4 scale-downs to zero; start to ready 3.50 s mean (each: 3.6, 3.4 s)" in md
    assert "200: 598, 503: 2; 2 5xx" in md
    assert ("| Cloud Run L4: cheapest meeting the SLO | idle timeout 3600 s, min instances 0 | $540.00 | 23.00 | 1.0% "
            "| 99.1% | 900 | 8% |") in md
    assert ("| Cloud Run L4: aggressive (defaults) | idle timeout 900 s, min instances 0 | $511.90 | 16.10 | 5.0% "
            "| 95.0% | 8,527 | 13% |") in md
    assert "The stated SLO is 99% of requests within 1,000 ms" in md


def test_key_figures_compare_scale_to_zero_with_static(tmp_path: Path):
    report, _ = _fake_report(tmp_path)
    figures = dict(key_figures(report))
    assert figures["steps"] == "1 ok, 1 failed, 1 skipped (failed: Serving)"
    assert figures["requests replayed"].endswith("2 without 200, 2 5xx")
    assert figures["cost Cloud Run L4"] == (
        "at 99% of requests within 1,000 ms: idle timeout 3600 s, min instances 0, $540.00/month, 8% below static, "
        "1.0% of requests cold; aggressive (idle timeout 900 s, min instances 0): $511.90/month, 13% below static, "
        "but 5.0% of requests cold, 95.0% within 1,000 ms, p99 8.5 s")
    assert figures["cost baseline"].startswith("static-for-peak (g6.xlarge): $587.50/month")
    assert figures["cost lower bound"].startswith("$9.61/month (98% below static)")
    assert figures["training"].startswith("SIGTERM after step 50 → stopped at step 51, checkpoint step 51, exit 75")


def test_write_report_writes_markdown_json_and_a_png(tmp_path: Path):
    report, timeline = _fake_report(tmp_path)
    paths = write_report(tmp_path, report, timeline)
    assert [p.name for p in paths] == ["report.md", "report.json", "report.png"]
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["serving"]["server_errors"] == 2 and data["training"]["first_exit_code"] == 75
    # Without a replay (serving skipped) the PNG still holds the cost panel.
    report.serving = None
    write_report(tmp_path / "no-replay", report, None)
    assert (tmp_path / "no-replay" / "report.png").stat().st_size > 1000


# ---------------------------------------------------------------------------------------------
# process clean-up


def test_processes_stop_the_group_and_descendants_in_their_own_session(tmp_path: Path):
    # A child that starts a grandchild in a new session (as the activator starts the model server).
    script = ("import subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
              "time.sleep(60)\n")
    with Processes() as procs:
        p = procs.spawn([sys.executable, "-c", script], tmp_path / "child.log")
        deadline = time.monotonic() + 10
        while not descendants(p.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        grandchildren = descendants(p.pid)
        assert grandchildren, "the grandchild did not start"
    assert p.poll() is not None and p.returncode == -signal.SIGTERM
    assert not [pid for pid in grandchildren if alive(pid)]


def test_processes_escalate_to_sigkill(tmp_path: Path):
    procs = Processes()
    p = procs.spawn([sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                     "print('ready', flush=True)\ntime.sleep(60)"], tmp_path / "stubborn.log", pipe=True)
    assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
    assert procs.stop(p, timeout_s=0.5) == -signal.SIGKILL
    procs.close()


# ---------------------------------------------------------------------------------------------
# the runner, with fake steps


def _console(tmp_path: Path):
    from rich.console import Console

    return Console(file=(tmp_path / "console.txt").open("w"), width=200)


def test_a_failed_step_is_named_its_dependents_are_skipped_and_the_exit_code_is_1(tmp_path: Path, monkeypatch):
    import gpuplane.demo as demo
    from gpuplane.demo.steps import Context, StepFailed

    def ok(ctx: Context) -> str:
        return "fine"

    def broken(ctx: Context) -> str:
        raise StepFailed("the trainer exited 1; see logs/training-run1.log")

    def dependent(ctx: Context) -> str:
        ctx.need("training")
        return "unreachable"

    def buggy(ctx: Context) -> str:
        raise KeyError("oops")

    monkeypatch.setattr(demo, "STEPS", (("data", "Data", ok), ("training", "Training", broken),
                                        ("serving", "Serving", dependent), ("cost", "Cost", buggy)))
    console = _console(tmp_path)
    code = demo.run_demo(tmp_path / "out", config=QUICK, console=console)
    console.file.close()
    printed = (tmp_path / "console.txt").read_text()
    assert code == 1
    statuses = {s["title"]: s["status"] for s in json.loads((tmp_path / "out" / "report.json").read_text())["steps"]}
    assert statuses == {"Data": "ok", "Training": "failed", "Serving": "skipped", "Cost": "failed", "Report": "ok"}
    assert "needs the training step, which did not succeed" in printed
    assert "failed: step 2 (Training); step 4 (Cost)" in printed
    assert "KeyError: 'oops'" in (tmp_path / "out" / "report.md").read_text()
    assert "KeyError" in (tmp_path / "out" / "logs" / "demo-errors.log").read_text()


@pytest.mark.parametrize("missing", ["torch", "feast"])
def test_a_missing_optional_dependency_skips_its_steps_with_the_reason(tmp_path: Path, monkeypatch, missing: str):
    import gpuplane.demo as demo
    import gpuplane.demo.steps as steps

    real = steps.have
    monkeypatch.setattr(steps, "have", lambda module: module != missing and real(module))
    picked = tuple(s for s in demo.STEPS if s[0] in ("features", "training", "serving"))
    monkeypatch.setattr(demo, "STEPS", picked)
    console = _console(tmp_path)
    code = demo.run_demo(tmp_path / "out", config=QUICK, console=console)
    console.file.close()
    printed = (tmp_path / "console.txt").read_text()
    assert code == 0
    assert f"{missing} is not installed" in printed
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert all(s["status"] == "skipped" for s in report["steps"][:-1])  # the others need the data step


def test_ctrl_c_stops_every_child_and_exits_130(tmp_path: Path, monkeypatch):
    import gpuplane.demo as demo
    from gpuplane.demo.steps import Context

    started: list[int] = []

    def serve(ctx: Context) -> str:
        p = ctx.procs.spawn([sys.executable, "-c", "import time; time.sleep(60)"], ctx.logs / "sleeper.log")
        started.append(p.pid)
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "STEPS", (("serving", "Serving", serve),))
    console = _console(tmp_path)
    code = demo.run_demo(tmp_path / "out", config=QUICK, console=console)
    console.file.close()
    assert code == 130
    assert started and not alive(started[0])
    assert "interrupted (KeyboardInterrupt) during step 1: Serving" in (tmp_path / "console.txt").read_text()
    assert (tmp_path / "out" / "report.md").exists()


# ---------------------------------------------------------------------------------------------
# end to end


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_demo_runs_the_whole_pipeline(tmp_path: Path):
    pytest.importorskip("torch")
    from rich.console import Console

    from gpuplane.demo import STEPS, run_demo

    out = tmp_path / "demo-output"
    console = Console(file=(tmp_path / "console.txt").open("w"), width=120)
    code = run_demo(out, quick=True, console=console)
    console.file.close()
    printed = (tmp_path / "console.txt").read_text()
    report = json.loads((out / "report.json").read_text())
    failed = [s for s in report["steps"] if s["status"] == "failed"]
    assert code == 0, f"failed steps: {failed}\n{printed[-3000:]}"
    # The whole pipeline: every step ran, except the model loop, which quick mode leaves out by design.
    statuses = {s["title"]: s["status"] for s in report["steps"]}
    expected = {title: "skipped" if key == "loop" else "ok" for key, title, _ in STEPS} | {"Report": "ok"}
    assert statuses == expected, {t: (statuses.get(t), s["summary"]) for s in report["steps"] for t in [s["title"]] if statuses.get(t) != expected.get(t)}
    assert (out / "report.md").exists() and (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (out / "plans").glob("*.json")), "no plans/*.json"
    for name in ("model.safetensors", "config.json", "items.json", "metrics.json"):
        assert (out / "model" / name).exists(), name
    training = report["training"]
    assert training["first_exit_code"] == 75 and training["checkpoint_step"] is not None
    assert training["resumed_from_step"] == training["checkpoint_step"] and training["final_exit_code"] == 0
    serving = report["serving"]
    assert serving["cold_starts"] >= 1 and serving["server_errors"] == 0
    assert serving["codes"] == {"200": serving["requests"]}
    two_tier = next(s for s in report["steps"] if s["title"].startswith("The day through the two-tier router"))
    assert two_tier["status"] == "ok" and "all 200 (0 5xx)" in two_tier["summary"], two_tier
    md = (out / "report.md").read_text()
    assert "exited 75" in md and f"resumed from checkpoint step {training['checkpoint_step']}" in md
    assert "every output is in" in printed and str(out) in printed
    # Nothing the demo started is left running.
    leftover = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert not leftover, f"processes still running: {leftover}"


@pytest.mark.slow
@pytest.mark.full_demo
@pytest.mark.timeout(1200)  # 199 s on an idle 2-core machine; over 900 s when the 2 cores ran at load 12-14
def test_full_demo_runs_every_step_including_the_model_loop(tmp_path: Path):
    """`make demo` (what README says takes about 3.5 minutes on 2 cores): every step ok, no skips."""
    pytest.importorskip("torch")
    pytest.importorskip("feast")
    pytest.importorskip("mlflow")
    from rich.console import Console

    from gpuplane.demo import OUTPUT_NAMES, STEPS, run_demo

    out = tmp_path / "demo-output"
    console = Console(file=(tmp_path / "console.txt").open("w"), width=120)
    code = run_demo(out, console=console)
    console.file.close()
    printed = (tmp_path / "console.txt").read_text()
    report = json.loads((out / "report.json").read_text())
    statuses = {s["title"]: s["status"] for s in report["steps"]}
    assert statuses == {title: "ok" for _, title, _ in STEPS} | {"Report": "ok"}, (statuses, printed[-3000:])
    assert code == 0
    missing = [name for name in OUTPUT_NAMES if not (out / name).exists()]
    assert not missing, missing
    assert (out / "traces" / "spans.jsonl").stat().st_size > 0
    assert (out / "pipeline" / "pipeline-report.json").exists()
    leftover = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert not leftover, f"processes still running: {leftover}"
