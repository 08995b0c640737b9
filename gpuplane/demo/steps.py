"""The demo's steps. Each takes the shared :class:`Context`, fills its record of the report and
returns a one-line summary; it raises :class:`Skip` when an optional part is missing or an
earlier step it needs did not succeed, and any other exception when it fails.

Every child process is started through ``ctx.procs`` (its own process group, output in
``logs/``) and stopped before the step returns, or by the runner's ``finally`` on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from rich.console import Console
from rich.status import Status

from gpuplane.demo.config import DemoConfig
from gpuplane.demo.procs import Processes, free_port, lines, tail
from gpuplane.demo.report import (
    DataRecord,
    DemoReport,
    FeaturesRecord,
    PlanRecord,
    ServingRecord,
    Timeline,
    TrainingRecord,
)
from gpuplane.demo.traces import SPANS_FILE, TRACING_ENV, cold_start_tree, load_spans
from gpuplane.demo.traffic import (
    Schedule,
    classify_cold,
    compress_day,
    held_out_examples,
    is_held_out,
    latency_summary,
    pick_examples,
    replay,
    scale_to_zero_gaps,
    start_durations,
    state_intervals,
    traffic_day,
)

EXIT_PREEMPTED = 75
"""The training workload's exit code after a preemption notice and a complete checkpoint."""
MODEL_NAME = "recommender"
EXPORT_FILES = ("model.safetensors", "config.json", "items.json", "metrics.json")


class FeatureServerLike(Protocol):
    """What the demo uses of ``workloads.features.server.FeatureServer`` (imported lazily)."""

    @property
    def url(self) -> str: ...

    def stop(self, timeout_s: float = 10.0) -> None: ...


class Skip(Exception):
    """The step does not apply (an optional dependency is missing, or a step it needs failed)."""


class StepFailed(Exception):
    """The step ran and failed; the message says what and where to look."""


@dataclass
class Context:
    cfg: DemoConfig
    out: Path
    console: Console
    procs: Processes
    report: DemoReport
    status: Status | None = None
    step_started: float = 0.0
    """``time.perf_counter()`` when the current step began."""
    ok: set[str] = field(default_factory=set)
    """Keys of the steps that succeeded (``data``, ``training``, ...)."""
    schedule: Schedule | None = None
    timeline: Timeline | None = None
    feature_server: FeatureServerLike | None = None
    """``feast serve``, kept running from the features step for the replay's ``user_id`` requests."""

    def close(self) -> None:
        """Stop what the steps left running for later steps (child processes are ``procs``')."""
        if self.feature_server is not None:
            self.feature_server.stop()
            self.feature_server = None

    @property
    def logs(self) -> Path:
        return self.out / "logs"

    @property
    def data_dir(self) -> Path:
        return self.out / "data"

    @property
    def model_dir(self) -> Path:
        return self.out / "model"

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def progress(self, text: str) -> None:
        if self.status is not None:
            self.status.update(text)

    def need(self, *keys: str) -> None:
        missing = [k for k in keys if k not in self.ok]
        if missing:
            raise Skip(f"needs the {', '.join(missing)} step, which did not succeed")


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def run_logged(ctx: Context, args: list[str], log_name: str, what: str,
               on_line: Callable[[str], None] | None = None) -> tuple[int, list[str]]:
    """Run a child to completion, streaming its lines to the status line and ``logs/<log_name>``."""
    log_path = ctx.logs / log_name
    p = ctx.procs.spawn(args, log_path, pipe=True)
    seen: list[str] = []
    for line in lines(p, log_path):
        seen.append(line)
        if line.strip():
            ctx.progress(f"{what}: {line.strip()[:110]}")
        if on_line is not None:
            on_line(line)
    return p.wait(), seen


# ---------------------------------------------------------------------------------------------
# 1. plans


def step_plans(ctx: Context) -> str:
    from gpuplane import render
    from gpuplane.engine.cost import assess_plan
    from gpuplane.engine.plan import available_stacks, plan_stack

    plans_dir = ctx.out / "plans"
    plans_dir.mkdir(parents=True, exist_ok=True)
    stacks = available_stacks()
    if not stacks:
        raise StepFailed("no reference stacks found (stacks/Pulumi.<name>.yaml)")
    bad: list[str] = []
    for name in stacks:
        ctx.progress(f"planning {name} (Pulumi mock runtime, policy pack, cost model)")
        rec = PlanRecord(stack=name)
        ctx.report.plans.append(rec)
        t = time.perf_counter()
        try:
            plan = plan_stack(name)
            checks = assess_plan(plan)
        except Exception as exc:  # PlanError, PolicyConfigError, ...: one stack must not hide the others
            rec.error = f"{type(exc).__name__}: {exc}"
            rec.seconds = time.perf_counter() - t
            ctx.say(f"[red]✗ {name}: {rec.error}[/red]")
            bad.append(name)
            continue
        rec.seconds = time.perf_counter() - t
        render.print_tree(plan, ctx.console)
        checks.print_summary(ctx.console)
        (plans_dir / f"{name}.json").write_text(render.to_json(plan, checks.to_json()))
        (plans_dir / f"{name}.md").write_text(checks.markdown(plan))
        monthly = checks.cost.monthly
        rec.resources = len(plan.resources)
        rec.monthly_usd, rec.monthly_usd_max = monthly.expected, monthly.max
        rec.unknown_prices = len(checks.cost.unknown)
        rec.mandatory, rec.advisory = checks.policy.mandatory, checks.policy.advisory
        rec.violations = [f"{v.level} [{v.policy}] {v.message}" for v in checks.policy.violations]
        rec.validation_problems = len(plan.validation_problems)
        ctx.say(f"[dim]{name}: {rec.resources} resources, ${monthly.expected:,.2f}/month expected, "
                f"{rec.mandatory} mandatory / {rec.advisory} advisory violations, planned in {rec.seconds:.1f} s "
                f"→ {plans_dir / name}.json[/dim]")
        if rec.mandatory or rec.validation_problems:
            bad.append(name)
    if bad:
        raise StepFailed(f"{', '.join(bad)}: not planned, a mandatory violation, or a schema problem (see above)")
    return f"{len(stacks)} stacks: " + ", ".join(
        f"{p.stack} {p.resources} res ${p.monthly_usd or 0:,.0f}/mo" for p in ctx.report.plans)


# ---------------------------------------------------------------------------------------------
# 2. data


def step_data(ctx: Context) -> str:
    cfg = ctx.cfg
    code, _ = run_logged(ctx, python("-m", "workloads.data.generate", "--out", str(ctx.data_dir), "--users",
                                     str(cfg.users), "--items", str(cfg.items), "--days", str(cfg.days),
                                     "--seed", str(cfg.seed)), "data.log", "generating events")
    if code != 0:
        raise StepFailed(f"workloads.data.generate exited {code}; see {ctx.logs / 'data.log'}:\n{tail(ctx.logs / 'data.log')}")
    import pyarrow.parquet as pq

    meta = json.loads((ctx.data_dir / "meta.json").read_text())
    events = pq.ParquetFile(ctx.data_dir / "events.parquet").metadata.num_rows
    ctx.report.data = DataRecord(users=int(meta["users"]), items=int(meta["items"]), days=int(meta["days"]),
                                 events=int(events), seed=int(meta["seed"]))
    return f"{events:,} events, {meta['users']} users, {meta['items']} items, {meta['days']} days → {ctx.data_dir}"


# ---------------------------------------------------------------------------------------------
# 3. features


def _last_json_object(text_lines: list[str]) -> dict[str, object]:
    for i in range(len(text_lines) - 1, -1, -1):
        if text_lines[i] == "{":
            return dict(json.loads("\n".join(text_lines[i:])))
    raise ValueError("no JSON summary in the output")


def step_features(ctx: Context) -> str:
    if not have("feast"):
        raise Skip("feast is not installed (pip install 'gpuplane[features]')")
    ctx.need("data")
    repo = ctx.out / "feature_repo"
    code, out = run_logged(ctx, python("-m", "workloads.features", "materialize", "--data", str(ctx.data_dir),
                                       "--repo-dir", str(repo)), "features.log", "feast")
    if code != 0:
        raise StepFailed(f"feature materialisation exited {code}; see {ctx.logs / 'features.log'}:\n"
                         f"{tail(ctx.logs / 'features.log')}")
    summary = _last_json_object(out)
    seconds = summary.get("seconds")
    rec = FeaturesRecord(materialized_rows=int(summary.get("materialized_rows", 0)),  # type: ignore[call-overload]
                         online_rows=int(summary.get("online_rows", 0)),  # type: ignore[call-overload]
                         materialize_seconds=float(seconds.get("total", 0.0)) if isinstance(seconds, dict) else 0.0)
    ctx.report.features = rec
    text = f"{rec.materialized_rows:,} rows materialised, {rec.online_rows:,} online (SQLite)"
    if ctx.cfg.feature_server_check:
        _check_feature_server(ctx, repo, rec)
        text += (f"; feast serve healthy in {rec.server_startup_seconds:.1f} s, {rec.users_matching}/"
                 f"{rec.users_checked} users' online history matches the log")
        if ctx.feature_server is not None:
            text += f"; kept running on {ctx.feature_server.url} for user_id requests"
    return text


def _check_feature_server(ctx: Context, repo: Path, rec: FeaturesRecord) -> None:
    """Start ``feast serve``, read held-out users' ``last_items`` over HTTP, compare with the log.

    The server stays up (``ctx.feature_server``) when the replay will send ``user_id`` requests.
    """
    import pyarrow.parquet as pq

    from workloads.features.client import FeastHistoryClient
    from workloads.features.server import FeatureServer

    table = pq.read_table(ctx.data_dir / "events.parquet", columns=["user_id", "item_id"])
    users, items = table.column("user_id").to_numpy(), table.column("item_id").to_numpy()
    held = np.unique(users[is_held_out(users, 0.1)])[: ctx.cfg.feature_users_checked]
    expected = {int(u): tuple(int(x) for x in items[users == u][-32:]) for u in held}
    ctx.progress("starting feast serve (imports Feast: seconds)")
    server = FeatureServer(repo, log_path=ctx.logs / "feature-server.log")
    keep = False
    try:
        server.start()
        rec.server_startup_seconds = server.startup_seconds

        async def lookup() -> list[tuple[int, ...]]:
            client = FeastHistoryClient(server.url, timeout_s=10.0)
            return await client.histories([str(u) for u in expected])

        t = time.perf_counter()
        got = asyncio.run(lookup())
        rec.lookup_ms = (time.perf_counter() - t) * 1e3
        keep = ctx.cfg.user_id_share > 0
    finally:
        if keep:
            ctx.feature_server = server
        else:
            server.stop()
    rec.users_checked = len(expected)
    rec.users_matching = sum(tuple(g) == e for g, e in zip(got, expected.values(), strict=True))
    if rec.users_matching < rec.users_checked:
        ctx.close()  # a store that disagrees with the log must not serve the replay either
        raise StepFailed(f"only {rec.users_matching} of {rec.users_checked} users' online last_items match the event "
                         f"log; see {ctx.logs / 'feature-server.log'}")


# ---------------------------------------------------------------------------------------------
# 4. training


STEP_LINE = re.compile(r"^step (\d+)/(\d+) loss ([0-9.]+)")
PREEMPTED_LINE = re.compile(r"preempted \(.*\) at step (\d+); checkpoint step (\d+) is complete; exiting (\d+)")
RESUMED_LINE = re.compile(r"resumed from checkpoint step (\d+)")


def step_training(ctx: Context) -> str:
    if not have("torch"):
        raise Skip("torch is not installed (pip install 'gpuplane[workloads]' with the CPU wheel index)")
    ctx.need("data")
    cfg = ctx.cfg
    rec = TrainingRecord(max_steps=cfg.max_steps)
    ctx.report.training = rec
    args = python("-m", "workloads.training", "--preset", "tiny", "--data", str(ctx.data_dir),
                  "--checkpoint-dir", str(ctx.out / "checkpoints"), "--export-dir", str(ctx.model_dir),
                  "--max-steps", str(cfg.max_steps), "--seed", str(cfg.seed),
                  "--checkpoint-every", str(cfg.checkpoint_every), "--log-every", str(cfg.log_every))

    # Run 1: a spot notice (SIGTERM to the process group, as the kubelet sends) at preempt_at_step.
    log1 = ctx.logs / "training-run1.log"
    t = time.perf_counter()
    p = ctx.procs.spawn(args, log1, pipe=True)
    signalled = False
    for line in lines(p, log1):
        if m := STEP_LINE.match(line):
            step = int(m[1])
            ctx.progress(f"run 1: step {step}/{m[2]} loss {m[3]} — SIGTERM at step ≥ {cfg.preempt_at_step}")
            if step >= cfg.preempt_at_step and not signalled:
                os.killpg(p.pid, signal.SIGTERM)  # the whole group, as a node drain signals every process
                signalled = True
                rec.signalled_at_step = step
                ctx.say(f"[yellow]⚡ injected preemption: SIGTERM to the trainer at step {step}[/yellow]")
        elif m := PREEMPTED_LINE.search(line):
            rec.preempted_at_step, rec.checkpoint_step = int(m[1]), int(m[2])
            ctx.say(f"   trainer: {line.strip()}")
    rec.first_exit_code = p.wait()
    rec.run_seconds.append(time.perf_counter() - t)
    if not signalled:
        raise StepFailed(f"training ended (exit {rec.first_exit_code}) before step {cfg.preempt_at_step}, so no "
                         f"preemption was injected; see {log1}:\n{tail(log1)}")
    if rec.first_exit_code != EXIT_PREEMPTED or rec.checkpoint_step is None:
        raise StepFailed(f"after SIGTERM the trainer exited {rec.first_exit_code}, expected {EXIT_PREEMPTED} after a "
                         f"complete checkpoint; see {log1}:\n{tail(log1)}")
    ctx.say(f"   run 1 exited {rec.first_exit_code} (preempted, requeue) after {rec.run_seconds[0]:.1f} s; restarting")

    # Run 2: the orchestrator requeues the same command; it resumes from the newest checkpoint.
    log2 = ctx.logs / "training-run2.log"
    t = time.perf_counter()

    def watch(line: str) -> None:
        if m := RESUMED_LINE.search(line):
            rec.resumed_from_step = int(m[1])
            ctx.say(f"   trainer: {line.strip()}")
        elif line.startswith("eval:"):
            ctx.say(f"   trainer: {line.strip()}")

    rec.final_exit_code, _ = run_logged(ctx, args, "training-run2.log", "run 2", watch)
    rec.run_seconds.append(time.perf_counter() - t)
    if rec.final_exit_code != 0:
        raise StepFailed(f"the resumed run exited {rec.final_exit_code}; see {log2}:\n{tail(log2)}")
    if rec.resumed_from_step is None:
        raise StepFailed(f"the second run did not resume from a checkpoint; see {log2}")
    missing = [f for f in EXPORT_FILES if not (ctx.model_dir / f).exists()]
    if missing:
        raise StepFailed(f"the export in {ctx.model_dir} lacks {', '.join(missing)}")
    rec.export_files = sorted(p.name for p in ctx.model_dir.iterdir())
    metrics = json.loads((ctx.model_dir / "metrics.json").read_text())
    rec.loss = metrics.get("loss")
    rec.hit_rate_at_10 = metrics.get("hit_rate_at_10")
    rec.popularity_hit_rate_at_10 = metrics.get("popularity_hit_rate_at_10")
    rec.ndcg_at_10 = metrics.get("ndcg_at_10")
    return (f"SIGTERM after step {rec.signalled_at_step} → exit {rec.first_exit_code}; resumed from step "
            f"{rec.resumed_from_step} → exit 0; hit@10 {rec.hit_rate_at_10:.3f} (popularity "
            f"{rec.popularity_hit_rate_at_10:.3f}); export → {ctx.model_dir}")


# ---------------------------------------------------------------------------------------------
# 5. serving + traffic


PHASES_LINE = re.compile(r"cold start ((?:\w+=[0-9.]+s ?)+)")


def server_phases(log_text: str) -> list[dict[str, float]]:
    """The model server's cold-start phases, one dict per ``ready: ... cold start k=v s ...`` log line."""
    out = []
    for m in PHASES_LINE.finditer(log_text):
        out.append({k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)s", m[1])})
    return out


def activator_metrics(text: str) -> dict[str, float]:
    """The activator's counters and histogram sums/counts from its Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith(("_total", "_sum", "_count")) and "le" not in s.labels:
                key = s.name + "".join(f"{{{k}={v}}}" for k, v in sorted(s.labels.items()))
                out[key] = float(s.value)
    return out


def _wait_listening(url: str, p: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise StepFailed(f"the activator exited {p.returncode} at start; see {log}:\n{tail(log)}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise StepFailed(f"the activator did not answer {url} within {timeout_s:.0f} s; see {log}")


def step_serving(ctx: Context) -> str:
    if not have("torch"):
        raise Skip("torch is not installed: no model to serve")
    ctx.need("training")
    import httpx

    cfg = ctx.cfg
    block_size = int(json.loads((ctx.model_dir / "config.json").read_text())["block_size"])
    trace = traffic_day(cfg.day)
    schedule = compress_day(trace, cfg.day_wall_seconds)
    ctx.schedule = schedule
    examples = pick_examples(held_out_examples(ctx.data_dir, block_size), trace.n_requests, cfg.seed)
    expected_gaps = scale_to_zero_gaps(schedule, cfg.idle_seconds)
    ctx.say(f"traffic: {trace.n_requests} requests over 24 h (peak/mean {cfg.day.peak_to_mean:g}, CV {cfg.day.cv:g}, "
            f"{cfg.day.bursts_per_day:g} bursts/day) replayed in {schedule.wall_seconds:.0f} s ({schedule.speedup:,.0f}x); "
            f"{expected_gaps.size} gaps longer than the {cfg.idle_seconds:g} s idle period")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = ctx.logs / "serving.log"
    server_cmd = python("-m", "workloads.serving", "--model-dir", str(ctx.model_dir), "--model-name", MODEL_NAME,
                        "--host", "127.0.0.1", "--port", "{port}", "--torch-threads", str(cfg.serving_threads))
    by_user = np.zeros(trace.n_requests, dtype=bool)
    if ctx.feature_server is not None:
        server_cmd += ["--feature-server-url", ctx.feature_server.url]
        by_user = np.random.default_rng(cfg.seed + 1).random(trace.n_requests) < cfg.user_id_share
        ctx.say(f"{int(by_user.sum())} requests send user_id: the model server reads their history from "
                f"feast serve ({ctx.feature_server.url})")
    spans_file = ctx.out / "traces" / SPANS_FILE  # OpenTelemetry spans of the activator and servers
    spans_file.parent.mkdir(parents=True, exist_ok=True)
    spans_file.unlink(missing_ok=True)
    act = ctx.procs.spawn(python("-m", "workloads.serving.activator", "--host", "127.0.0.1", "--port", str(port),
                                 "--idle-seconds", str(cfg.idle_seconds), "--ready-timeout-seconds", "120",
                                 "--stop-timeout-seconds", "10", "--", *server_cmd), log,
                          env={**TRACING_ENV, "GPUPLANE_TRACES_FILE": str(spans_file)})
    try:
        _wait_listening(f"{base}/activator/status", act, 30.0, log)
        ctx.say(f"activator on {base} (scale-to-zero after {cfg.idle_seconds:g} s idle); model server not started yet")

        def progress(wall: float, sent: int, total: int, state: str) -> None:
            ctx.progress(f"replaying: {schedule.clock(wall)} of the day, {sent}/{total} requests sent, server {state}")

        result = asyncio.run(replay(base, MODEL_NAME, schedule, examples, by_user=by_user, progress=progress))
        metrics_text = httpx.get(f"{base}/activator/metrics", timeout=10.0).text
    finally:
        ctx.progress("stopping the activator (it drains the model server)")
        act_code = ctx.procs.stop(act, timeout_s=20.0)

    m = activator_metrics(metrics_text)
    ready = np.array([s == "ready" for s in result.obs_state], dtype=bool)
    cold = classify_cold(result.send_s, result.obs_t, ready)
    ok = result.status == 200
    codes: dict[str, int] = {}
    for s in result.status:
        key = "none" if s == 0 else str(int(s))
        codes[key] = codes.get(key, 0) + 1
    hold_n = m.get("gpuplane_activator_hold_seconds_count", 0.0)
    cs_n = m.get("gpuplane_activator_cold_start_seconds_count", 0.0)
    rec = ServingRecord(
        requests=int(result.send_s.size), replay_seconds=result.wall_seconds, day_seconds=schedule.wall_seconds,
        speedup=schedule.speedup, idle_seconds=cfg.idle_seconds, expected_scale_to_zero=int(expected_gaps.size),
        codes=codes,
        latency_all=latency_summary(result.latency_s[ok]),
        latency_cold=latency_summary(result.latency_s[ok & cold]),
        latency_warm=latency_summary(result.latency_s[ok & ~cold]),
        user_id_requests=int(by_user.sum()),
        latency_warm_by_user=latency_summary(result.latency_s[ok & ~cold & by_user]),
        cold_starts=int(m.get("gpuplane_activator_cold_starts_total", 0.0)),
        scale_downs=int(m.get("gpuplane_activator_scale_downs_total", 0.0)),
        cold_start_mean_s=m["gpuplane_activator_cold_start_seconds_sum"] / cs_n if cs_n else None,
        cold_start_observed_s=start_durations(result.obs_t, result.obs_state),
        held_requests=int(hold_n),
        hold_mean_s=m["gpuplane_activator_hold_seconds_sum"] / hold_n if hold_n else None,
        server_phases=server_phases(log.read_text(errors="replace")),
        online_hit_rate_at_10=float(result.hit[ok & ~by_user].mean()) if (ok & ~by_user).any() else None,
        errors=result.errors,
        cold_start_trace=cold_start_tree(load_spans(spans_file)),
    )
    ctx.report.serving = rec
    rate_t, rate = schedule.rate_per_bin(max(0.25, schedule.wall_seconds / 120))
    ctx.timeline = Timeline(send_s=result.send_s, latency_s=result.latency_s, cold=cold, status=result.status,
                            up=state_intervals(result.obs_t, result.obs_state, "ready", result.wall_seconds),
                            starting=state_intervals(result.obs_t, result.obs_state, "starting", result.wall_seconds), rate_t=rate_t, rate=rate,
                            speedup=schedule.speedup)
    _write_requests_csv(ctx.out / "traffic" / "requests.csv", schedule, result.send_s, result.latency_s,
                        result.status, cold, by_user, result.hit)
    if act_code != 0:
        raise StepFailed(f"the activator exited {act_code} on SIGTERM (expected 0 after draining); see {log}")
    if rec.failed:
        raise StepFailed(f"{rec.failed} of {rec.requests} requests got no 200 ({codes}); first errors: "
                         + "; ".join(result.errors[:3]) + f"; see {log}")
    if rec.cold_starts < 1:
        raise StepFailed(f"the activator counted no cold start; see {log}")
    return (f"{rec.requests} requests, all 200; warm p50 {rec.latency_warm.get('p50_ms', 0):.0f} ms, cold p50 "
            f"{rec.latency_cold.get('p50_ms', 0):,.0f} ms; {rec.cold_starts} cold starts, {rec.scale_downs} "
            f"scale-downs; online hit@10 {rec.online_hit_rate_at_10:.3f}")


def _write_requests_csv(path: Path, schedule: Schedule, send_s: np.ndarray, latency_s: np.ndarray,
                        status: np.ndarray, cold: np.ndarray, by_user: np.ndarray, hit: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["trace_time_s,scheduled_s,sent_s,latency_ms,status,cold,by_user_id,hit_at_10"]
    for i in range(send_s.size):
        lat = "" if not np.isfinite(latency_s[i]) else f"{latency_s[i] * 1e3:.3f}"
        rows.append(f"{schedule.trace.times_s[i]:.3f},{schedule.send_at_s[i]:.4f},{send_s[i]:.4f},{lat},"
                    f"{int(status[i])},{int(cold[i])},{int(by_user[i])},{int(hit[i])}")
    path.write_text("\n".join(rows) + "\n")


# ---------------------------------------------------------------------------------------------
# 6. cost


def step_cost(ctx: Context) -> str:
    """Each platform at its cheapest setting meeting the SLO and at its aggressive defaults, vs static (cost.py)."""
    from gpuplane.demo.cost import compare_costs, money
    from gpuplane.simulate import ColdStart, ServiceModel
    from gpuplane.simulate.prices import price_spec

    cfg = ctx.cfg
    trace = ctx.schedule.trace if ctx.schedule is not None else traffic_day(cfg.day)
    s = ctx.report.serving
    if s is None or not s.latency_warm.get("n", 0) or s.cold_start_mean_s is None:
        raise Skip("needs the serving step's measured service time and cold start")
    service_s = float(s.latency_warm["p50_ms"]) / 1e3
    prices = price_spec("aws", "g6.xlarge", "us-east-1", "on_demand", serverless_region="us-central1",
                        serverless_gpu="l4")
    service = ServiceModel(service_time_s=service_s, concurrency=cfg.concurrency,
                           cold_start=ColdStart(model_load_s=s.cold_start_mean_s))
    c = compare_costs(trace, service, prices, node="g6.xlarge", serverless="Cloud Run L4",
                      slo_ms=cfg.slo_ms, slo_target=cfg.slo_target)
    ctx.report.cost = c
    parts = [f"static {money(c.static.monthly_usd)}/month" if c.static else "static –"]
    for p in c.platforms:
        parts.append(f"{p.platform} at the SLO " + (f"{money(p.at_slo.monthly_usd)}/month" if p.at_slo else "–")
                     + f" (aggressive {money(p.aggressive.monthly_usd)}, {100 * p.aggressive.cold_start_fraction:.0f}%"
                       " cold)")
    return "; ".join(parts) + f"; SLO {c.slo}"


# ---------------------------------------------------------------------------------------------
# 7. the model loop


def step_loop(ctx: Context) -> str:
    """``gpuplane pipeline`` on the demo's data window and trained model (``pipeline/``)."""
    if not ctx.cfg.loop:
        raise Skip(f"{ctx.cfg.mode} mode leaves the model loop out to stay quick; run `gpuplane pipeline --tiny` "
                   "(or the full demo) for it")
    if not have("torch") or not have("mlflow"):
        raise Skip("torch and mlflow-skinny are needed (pip install 'gpuplane[workloads]')")
    ctx.need("data", "training")
    from dataclasses import replace

    from gpuplane.pipeline import FULL as LOOP_FULL
    from gpuplane.pipeline import run_loop

    cfg = replace(LOOP_FULL, mode=f"demo {ctx.cfg.mode}", seed=ctx.cfg.seed, bootstrap_steps=ctx.cfg.max_steps,
                  finetune_steps=ctx.cfg.loop_finetune_steps, log_every=ctx.cfg.log_every,
                  features="features" in ctx.ok)
    ctx.progress("the model loop: new data → retrain → evaluate → register → gate → canary")
    report = run_loop(ctx.out / "pipeline", cfg, console=ctx.console, bootstrap_data=ctx.data_dir,
                      bootstrap_model=ctx.model_dir)
    ctx.report.loop = report
    if report.error:
        raise StepFailed(f"{report.error} (report: {ctx.out / 'pipeline' / 'pipeline-report.md'})")
    failed = report.failed_checks()
    if failed:
        raise StepFailed("; ".join(failed) + f" (report: {ctx.out / 'pipeline' / 'pipeline-report.md'})")
    return "; ".join(f"{rd.title}: {rd.outcome}" for rd in report.rounds[1:])
