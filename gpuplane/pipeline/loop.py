"""The local model loop: new data → features → retrain → evaluate → register → gate → canary → 100 %
(or rollback), while requests keep flowing through the router.

Serving topology (all on 127.0.0.1, every process in its own group, stopped on the way out):

    request generator ──▶ router (split mode) ──▶ champion:   activator ──▶ model server (vN)
                                               └─▶ challenger: activator ──▶ model server (vN+1)

Rounds (each a candidate model; every decision is recorded with its metrics):

0. bootstrap: day-1 window, a model from scratch (or the demo's export), evaluated, registered,
   gated against the popularity baseline (first model) and served as the champion;
1. new day: the next day of events lands, features are re-materialised, the champion is
   fine-tuned (vocabulary unchanged) or a model is trained from scratch (it changed), evaluated
   on the new window's held-out users together with the champion, gated, canaried at
   ``canary.percent``, promoted to 100 % when the canary's 5xx rate and p99 stay in bounds for
   the window: the ``champion`` alias moves, the old server is drained and stopped;
2. worse model (drill): trained from scratch on shuffled item ids; the gate rejects it;
3. serving fault (drill): another day lands, the fine-tune passes the gate, but its server
   answers a share of infer requests 500 (``workloads.pipeline.faults``); the canary rolls it
   back to the champion.

The pipeline steps are the in-cluster entry points with the cluster's arguments: training as a
child process (``python -m workloads.training``), ``workloads.pipeline.evaluate`` and
``workloads.pipeline.promote --no-move`` through their ``main(argv)`` in this process (MLflow is
imported once); the alias moves here, after the canary. The registry is MLflow on SQLite
(``registry/mlflow.db``) with artifacts in ``registry/artifacts``; the model servers read the
versions downloaded from it (``serving/vN``), not the training exports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from gpuplane.demo.procs import Processes, free_port, lines, tail
from gpuplane.pipeline.config import LoopConfig
from gpuplane.pipeline.data import append_day, item_ids, shuffle_items
from gpuplane.pipeline.report import LoopReport, RoundRecord, write_report
from gpuplane.pipeline.traffic import RequestGenerator, summarise, write_csv

MODEL_NAME = "recommender"
CHAMPION, CHALLENGER = "champion", "challenger"
OUTPUT_NAMES = ("registry", "data", "feature_repo", "models", "serving", "logs", "decisions", "requests.csv",
                "pipeline-report.md", "pipeline-report.json")


class LoopFailed(Exception):
    """A stage failed; the message says which and where its log is."""


@dataclass
class Server:
    """One activator-managed model server."""

    label: str
    version: str
    url: str
    proc: Any
    log: Path


@dataclass
class Loop:
    cfg: LoopConfig
    out: Path
    console: Console
    procs: Processes
    report: LoopReport
    python: str
    registry: Any = None
    router_url: str = ""
    champion: Server | None = None
    traffic: RequestGenerator | None = None
    periods: list[tuple[str, float, float]] = field(default_factory=list)

    # ---- output ------------------------------------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.out / "logs"

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    @contextlib.contextmanager
    def stage(self, rd: RoundRecord, name: str, what: str) -> Iterator[dict[str, str]]:
        """Print the stage, time it into ``rd.stage_seconds[name]``; the body may set ``done['text']``."""
        self.say(f"  [bold]▸ {name}[/bold]: {what}")
        t = time.perf_counter()
        done: dict[str, str] = {}
        yield done
        seconds = time.perf_counter() - t
        rd.stage_seconds[name] = seconds
        self.say(f"    [green]✓[/green] {name} ({seconds:.1f} s){': ' + done['text'] if done.get('text') else ''}")

    def child(self, args: list[str], log_name: str, on_line: Callable[[str], None] | None = None) -> int:
        log = self.logs / log_name
        p = self.procs.spawn([self.python, *args], log, pipe=True)
        for line in lines(p, log):
            if on_line is not None:
                on_line(line)
        return p.wait()

    def mark(self, name: str, start: float, end: float | None = None) -> None:
        if self.traffic is not None:
            self.periods.append((name, start, self.traffic.now() if end is None else end))

    def now(self) -> float:
        return self.traffic.now() if self.traffic is not None else 0.0

    # ---- pipeline steps (child processes: the in-cluster entry points) -----------------------------

    def train(self, label: str, data: Path, steps: int, seed: int, init_from: Path | None) -> tuple[Path, str]:
        export = self.out / "models" / label
        args = ["-m", "workloads.training", "--preset", "tiny", "--data", str(data), "--export-dir", str(export),
                "--max-steps", str(steps), "--seed", str(seed), "--log-every", str(self.cfg.log_every),
                "--threads", str(self.cfg.train_threads), "--checkpoint-every", "0"]
        if init_from is not None:
            args += ["--init-from", str(init_from)]
        last = {"eval": ""}

        def watch(line: str) -> None:
            if line.startswith("eval:"):
                last["eval"] = line.removeprefix("eval: ").strip()

        code = self.child(args, f"train-{label}.log", watch)
        if code != 0:
            log = self.logs / f"train-{label}.log"
            raise LoopFailed(f"training {label} exited {code}; see {log}:\n{tail(log)}")
        return export, last["eval"]

    def step(self, module: str, args: list[str], log_name: str) -> int:
        """Run an in-cluster step's ``main(argv)`` in this process (same arguments, output to its log).

        In-process rather than a child: MLflow and torch are imported once for the whole loop
        instead of once per step (seconds each on a small machine)."""
        import importlib
        import io
        import logging

        main = importlib.import_module(module).main
        buf = io.StringIO()
        handler = logging.StreamHandler(buf)
        logging.getLogger().addHandler(handler)
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                code = int(main(args))
        finally:
            logging.getLogger().removeHandler(handler)
            with open(self.logs / log_name, "a") as f:
                f.write(f"$ python -m {module} {' '.join(args)}\n{buf.getvalue()}exit {code}\n")
        return code

    def evaluate(self, label: str, export: Path, data: Path) -> dict[str, Any]:
        summary = self.out / "decisions" / f"{label}-evaluation.json"
        code = self.step("workloads.pipeline.evaluate",
                         ["--model-dir", str(export), "--data", str(data), "--tracking-uri", self.report.tracking_uri,
                          "--artifact-root", str(self.out / "registry" / "artifacts"), "--model-name", MODEL_NAME,
                          "--run-name", label, "--tag", f"round={label}", "--output", str(summary)],
                         f"evaluate-{label}.log")
        if code != 0:
            log = self.logs / f"evaluate-{label}.log"
            raise LoopFailed(f"evaluation of {label} exited {code}; see {log}:\n{tail(log)}")
        return dict(json.loads(summary.read_text()))

    def gate(self, label: str) -> tuple[bool, dict[str, Any]]:
        decision = self.out / "decisions" / f"{label}-gate.json"
        g = self.cfg.gate
        code = self.step("workloads.pipeline.promote",
                         ["--tracking-uri", self.report.tracking_uri, "--model-name", MODEL_NAME, "--metric", g.metric,
                          "--margin", repr(g.margin), "--no-move", "--output", str(decision)], f"gate-{label}.log")
        if code not in (0, 3):
            log = self.logs / f"gate-{label}.log"
            raise LoopFailed(f"the gate for {label} exited {code}; see {log}:\n{tail(log)}")
        return code == 0, dict(json.loads(decision.read_text()))

    # ---- serving -----------------------------------------------------------------------------------

    def serve(self, version: str, fault_rate: float | None = None) -> Server:
        """Download ``version`` from the registry and start an activator for it; warm it (cold start)."""
        import httpx

        model_dir = self.out / "serving" / f"v{version}"
        if not (model_dir / "config.json").is_file():
            model_dir = self.registry.download(MODEL_NAME, version, model_dir)
        if fault_rate is None:
            server = [self.python, "-m", "workloads.serving"]
        else:
            server = [self.python, "-m", "workloads.pipeline.faults", "--error-rate", repr(fault_rate),
                      "--seed", str(self.cfg.seed), "--"]
        server += ["--model-dir", str(model_dir), "--model-name", MODEL_NAME, "--host", "127.0.0.1",
                   "--port", "{port}", "--torch-threads", str(self.cfg.serving_threads)]
        port = free_port()
        log = self.logs / f"serving-v{version}.log"
        proc = self.procs.spawn([self.python, "-m", "workloads.serving.activator", "--host", "127.0.0.1",
                                 "--port", str(port), "--idle-seconds", "3600", "--ready-timeout-seconds", "120",
                                 "--stop-timeout-seconds", "10", "--log-level", "warning", "--", *server], log)
        url = f"http://127.0.0.1:{port}"
        _wait_ok(f"{url}/activator/status", proc, 30.0, log)
        # The first request starts the model server (cold start); readiness through the activator
        # returns once it is ready, so no live request pays for the start.
        try:
            r = httpx.get(f"{url}/v2/health/ready", timeout=150.0)
        except httpx.HTTPError as exc:
            raise LoopFailed(f"model server v{version} did not start: {exc}; see {log}:\n{tail(log)}") from None
        if r.status_code != 200:
            raise LoopFailed(f"model server v{version} is not ready ({r.status_code}); see {log}:\n{tail(log)}")
        return Server(CHALLENGER, version, url, proc, log)

    def stop(self, server: Server) -> None:
        code = self.procs.stop(server.proc, timeout_s=20.0)
        if code not in (0, None):
            self.report.notes.append(f"the activator of v{server.version} exited {code} on SIGTERM; see {server.log}")

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        r = httpx.request(method, f"{self.router_url}{path}", json=body, timeout=10.0)
        if r.status_code >= 300:
            raise LoopFailed(f"router {method} {path} {json.dumps(body)} answered {r.status_code}: {r.text[:300]}")
        return r.json() if r.content else None

    def start_router(self, champion: Server) -> None:
        port = free_port()
        log = self.logs / "router.log"
        proc = self.procs.spawn([self.python, "-m", "workloads.serving.router", "--host", "127.0.0.1",
                                 "--port", str(port), "--mode", "split", "--backend", f"{CHAMPION}={champion.url}",
                                 "--weight", f"{CHAMPION}=100", "--seed", str(self.cfg.seed),
                                 "--log-level", "warning"], log)
        self.router_url = f"http://127.0.0.1:{port}"
        _wait_ok(f"{self.router_url}/router/status", proc, 30.0, log)

    def canary(self, rd: RoundRecord, challenger: Server) -> str:
        """Split ``canary.percent`` to the challenger, judge it each 0.5 s; return the verdict's action."""
        from workloads.pipeline.canary import CanaryStats, judge

        assert self.champion is not None
        policy = self.cfg.canary
        self.admin("PUT", "/router/backends", {CHALLENGER: challenger.url})
        self.admin("POST", "/router/reset")
        self.admin("PUT", "/router/weights", {CHAMPION: 100 - policy.percent, CHALLENGER: policy.percent})
        started = time.perf_counter()
        observations: list[dict[str, Any]] = []
        while True:
            time.sleep(0.5)
            status = self.admin("GET", "/router/status")["backends"][CHALLENGER]
            stats = CanaryStats(elapsed_seconds=time.perf_counter() - started, requests=int(status["requests"]),
                                errors_5xx=int(status["errors_5xx"]), p99_ms=status["latency_ms"]["p99"])
            verdict = judge(policy, stats)
            observations.append(verdict.to_json())
            if self.console.is_terminal or verdict.action != "continue" or len(observations) % 4 == 0:
                self.console.print(f"    canary {policy.percent:g}% → v{challenger.version}: {stats.elapsed_seconds:.1f} s, "
                                   f"{stats.requests} requests, {stats.errors_5xx} 5xx, p99 {_f(stats.p99_ms)} ms: "
                                   f"{verdict.action}", highlight=False)
            if verdict.action != "continue":
                rd.canary = {"percent": policy.percent, "verdict": verdict.to_json(), "observations": observations}
                return verdict.action

    def promote_to_100(self, rd: RoundRecord, challenger: Server) -> None:
        assert self.champion is not None
        old = self.champion
        self.admin("PUT", "/router/weights", {CHAMPION: 0, CHALLENGER: 100})
        self.registry.set_alias(MODEL_NAME, CHAMPION, challenger.version)
        self.registry.set_tag(MODEL_NAME, challenger.version, "rollout", "promoted")
        # Rotate names so that the next round's challenger slot is free: `champion` now points at
        # the new server too, then takes the whole share; the old server gets nothing and is drained.
        self.admin("PUT", "/router/backends", {CHAMPION: challenger.url})
        self.admin("PUT", "/router/weights", {CHAMPION: 100, CHALLENGER: 0})
        time.sleep(self.cfg.drain_seconds)
        self.stop(old)
        challenger.label = CHAMPION
        self.champion = challenger

    def rollback(self, rd: RoundRecord, challenger: Server, reason: str) -> None:
        self.admin("PUT", "/router/weights", {CHAMPION: 100, CHALLENGER: 0})
        self.registry.set_tag(MODEL_NAME, challenger.version, "rollout", "rolled_back")
        self.registry.set_tag(MODEL_NAME, challenger.version, "rollout_reason", reason[:500])
        time.sleep(self.cfg.drain_seconds)
        self.stop(challenger)


def _f(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}"


def _wait_ok(url: str, proc: Any, timeout_s: float, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LoopFailed(f"{url.split('/')[-2]} process exited {proc.returncode} at start; see {log}:\n{tail(log)}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise LoopFailed(f"{url} did not answer within {timeout_s:.0f} s; see {log}")


# ---------------------------------------------------------------------------------------------
# rounds


def _features(loop: Loop, rd: RoundRecord, data: Path) -> None:
    import importlib.util

    if not loop.cfg.features:
        rd.stage_seconds["features"] = 0.0
        return
    if importlib.util.find_spec("feast") is None:
        loop.report.notes.append("features not re-materialised: feast is not installed (pip install 'gpuplane[features]')")
        rd.stage_seconds["features"] = 0.0
        return
    with loop.stage(rd, "features", f"Feast materialisation of {data.name} into the online store (SQLite)") as done:
        code = loop.child(["-m", "workloads.features", "materialize", "--data", str(data), "--repo-dir",
                           str(loop.out / "feature_repo")], f"features-{rd.key}.log")
        if code != 0:
            log = loop.logs / f"features-{rd.key}.log"
            raise LoopFailed(f"feature materialisation exited {code}; see {log}:\n{tail(log)}")
        done["text"] = f"online store updated from {data.name}"


def _candidate(loop: Loop, rd: RoundRecord, data: Path, train_data: Path, seed: int, *, force_scratch: str | None,
               fault_rate: float | None, landed_at: float | None) -> None:
    """Train, evaluate, register, gate and (when promoted) canary one candidate."""
    from workloads.pipeline.retrain import RetrainPlan, retrain_plan

    cfg = loop.cfg
    champion = loop.registry.find_alias(MODEL_NAME, CHAMPION)
    champion_dir = None
    if champion is not None:
        champion_dir = loop.out / "serving" / f"v{champion.version}"
        if not (champion_dir / "items.json").is_file():
            champion_dir = loop.registry.download(MODEL_NAME, champion.version, champion_dir)
    if force_scratch:
        plan = RetrainPlan("scratch", force_scratch)
    else:
        champ_items = json.loads((champion_dir / "items.json").read_text()) if champion_dir is not None else None
        plan = retrain_plan(champ_items, item_ids(data), champion.version if champion is not None else None)
    rd.retrain_mode, rd.retrain_reason = plan.mode, plan.reason
    steps = cfg.finetune_steps if plan.mode == "fine-tune" else cfg.bootstrap_steps
    with loop.stage(rd, "train", f"{plan.mode} ({plan.reason}), {steps} steps on {train_data.name}") as done:
        export, line = loop.train(rd.key, train_data, steps, seed, champion_dir if plan.mode == "fine-tune" else None)
        done["text"] = line
    with loop.stage(rd, "evaluate", f"held-out users of {data.name}; log the run, register, alias challenger") as done:
        ev = loop.evaluate(rd.key, export, data)
        rd.version, rd.metrics = str(ev["version"]), {k: float(v) for k, v in ev["metrics"].items()}
        m = rd.metrics
        done["text"] = (f"v{rd.version}: hit@10 {m['hit_rate_at_10']:.4f}, NDCG@10 {m['ndcg_at_10']:.4f} "
                        f"(baseline {m['baseline_ndcg_at_10']:.4f}"
                        + (f", champion {m['champion_ndcg_at_10']:.4f}" if "champion_ndcg_at_10" in m else "") + ")")
    with loop.stage(rd, "gate", f"{cfg.gate.metric} must beat the baseline and the champion by > {cfg.gate.margin:g}") \
            as done:
        promoted, decision = loop.gate(rd.key)
        rd.gate = decision
        done["text"] = ("[green]promoted[/green]: " if promoted else "[yellow]rejected[/yellow]: ") + decision["reason"]
    if not promoted:
        rd.outcome = "rejected by the gate"
        return
    if loop.champion is None:  # bootstrap: the first champion, straight to 100 % (nothing to compare live)
        with loop.stage(rd, "serve", f"start v{rd.version} behind the activator and the router") as done:
            loop.champion = loop.serve(rd.version)
            loop.champion.label = CHAMPION
            loop.start_router(loop.champion)
            loop.registry.set_alias(MODEL_NAME, CHAMPION, rd.version)
            done["text"] = f"router {loop.router_url} → champion v{rd.version} ({loop.champion.url})"
        rd.outcome = "serving 100% (first champion)"
        return
    switch_start = loop.now()
    with loop.stage(rd, "canary-start", f"start v{rd.version}" + (" with injected infer errors" if fault_rate else "")
                    + " behind its own activator (cold start before any traffic)") as done:
        challenger = loop.serve(rd.version, fault_rate)
        done["text"] = f"v{rd.version} ready at {challenger.url}"
    with loop.stage(rd, "canary", f"{cfg.canary.percent:g}% of requests to v{rd.version} for "
                    f"{cfg.canary.window_seconds:g} s (5xx ≤ {100 * cfg.canary.max_error_rate:g}%, p99 ≤ "
                    f"{cfg.canary.max_p99_ms:g} ms)") as done:
        action = loop.canary(rd, challenger)
        assert rd.canary is not None
        done["text"] = f"{action}: {rd.canary['verdict']['reason']}"
    if action == "promote":
        with loop.stage(rd, "promote", f"100% to v{rd.version}, alias champion → v{rd.version}, drain the old "
                        "server") as done:
            loop.promote_to_100(rd, challenger)
            done["text"] = f"serving v{rd.version}"
        if landed_at is not None:
            rd.new_data_to_100_seconds = time.perf_counter() - landed_at
        rd.outcome = "serving 100%"
    else:
        with loop.stage(rd, "rollback", f"100% back to champion v{loop.champion.version if loop.champion else '?'}; "
                        f"stop v{rd.version}") as done:
            loop.rollback(rd, challenger, rd.canary["verdict"]["reason"])
            done["text"] = f"serving v{loop.champion.version if loop.champion else '?'}"
        rd.outcome = "rolled back"
    loop.mark(f"switch: {rd.title}", switch_start)


def _new_day(loop: Loop, rd: RoundRecord, prev: Path, name: str) -> tuple[Path, float]:
    with loop.stage(rd, "data", f"{loop.cfg.new_days} new day(s) of events land after {prev.name}") as done:
        out = loop.out / "data" / name
        meta = append_day(prev, out, loop.cfg.new_days)
        rd.data = {"dir": str(out), **meta}
        done["text"] = f"{meta['new_events']:,} new events (window now {meta['days']} days, {meta['events']:,} events)"
    return out, time.perf_counter()


def run_loop(out: Path, cfg: LoopConfig, *, console: Console | None = None, python: str | None = None,
             bootstrap_data: Path | None = None, bootstrap_model: Path | None = None,
             procs: Processes | None = None) -> LoopReport:
    """Run the loop into ``out``; see the module docstring. Returns the report (also written to ``out``).

    ``bootstrap_data`` / ``bootstrap_model``: start from an existing window and export (the demo's)
    instead of generating day 1 and training the first model here.
    """
    import shutil
    import sys

    from workloads.pipeline.registry import Registry, local_tracking_uri

    cfg.validate()
    console = console or Console()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_NAMES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for sub in ("logs", "decisions", "data", "models", "serving", "registry"):
        (out / sub).mkdir()
    started = time.perf_counter()
    report = LoopReport(mode=cfg.mode, started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        out_dir=str(out), tracking_uri=local_tracking_uri(out / "registry"))
    own = procs is None
    procs = procs or Processes()
    loop = Loop(cfg, out, console, procs, report, python or sys.executable)
    try:
        loop.registry = Registry(report.tracking_uri, out / "registry" / "artifacts")
        _rounds(loop, bootstrap_data, bootstrap_model)
    except LoopFailed as exc:
        report.error = str(exc)
        console.print(f"[red]✗ {exc}[/red]", highlight=False)
    finally:
        if loop.traffic is not None:
            loop.traffic.stop()
        if own:
            procs.close()
    if loop.traffic is not None:
        records = loop.traffic.snapshot()
        write_csv(out / "requests.csv", records)
        report.traffic = {name: summarise(records, a, b) for name, a, b in sorted(loop.periods, key=lambda p: p[1])}
        report.traffic["whole loop"] = summarise(records, 0.0, float("inf"))
    with contextlib.suppress(Exception):
        report.aliases = loop.registry.aliases(MODEL_NAME)
        report.champion_version = report.aliases.get(CHAMPION)
    _checks(report)
    report.wall_seconds = time.perf_counter() - started
    paths = write_report(out, report)
    console.print(f"report: {', '.join(str(p) for p in paths)}", highlight=False)
    return report


def _rounds(loop: Loop, bootstrap_data: Path | None, bootstrap_model: Path | None) -> None:
    from gpuplane.demo.traffic import held_out_examples
    from workloads.data.generate import GenerateConfig, generate

    cfg, console = loop.cfg, loop.console
    # ---- 0. bootstrap
    console.rule("[bold]Round 0: the first champion")
    rd = RoundRecord("bootstrap", "day-1 model (first champion)", expected="serving 100% (first champion)")
    loop.report.rounds.append(rd)
    day1 = loop.out / "data" / "day-1"
    with loop.stage(rd, "data", "day-1 event window") as done:
        if bootstrap_data is not None:
            shutil_copy(bootstrap_data, day1)
        else:
            generate(day1, GenerateConfig(users=cfg.users, items=cfg.items, days=cfg.days, seed=cfg.seed))
        meta = json.loads((day1 / "meta.json").read_text())
        rd.data = {"dir": str(day1), **meta}
        done["text"] = f"{meta['users']} users, {meta['items']} items, {meta['days']} days"
    if bootstrap_model is not None:
        rd.retrain_mode, rd.retrain_reason = "existing", f"the export at {bootstrap_model}"
        with loop.stage(rd, "evaluate", "held-out users of day-1; log the run, register, alias challenger") as done:
            ev = loop.evaluate(rd.key, bootstrap_model, day1)
            rd.version, rd.metrics = str(ev["version"]), {k: float(v) for k, v in ev["metrics"].items()}
            done["text"] = f"v{rd.version}: NDCG@10 {rd.metrics['ndcg_at_10']:.4f}"
        with loop.stage(rd, "gate", "first model: must beat the popularity baseline") as done:
            promoted, rd.gate = loop.gate(rd.key)
            done["text"] = rd.gate["reason"]
        if not promoted:
            rd.outcome = "rejected by the gate"
            raise LoopFailed(f"the first model was rejected: {rd.gate['reason']}; nothing to serve")
        with loop.stage(rd, "serve", f"start v{rd.version} behind the activator and the router") as done:
            loop.champion = loop.serve(rd.version)
            loop.champion.label = CHAMPION
            loop.start_router(loop.champion)
            loop.registry.set_alias(MODEL_NAME, CHAMPION, rd.version)
            done["text"] = f"router {loop.router_url}"
        rd.outcome = "serving 100% (first champion)"
    else:
        _candidate(loop, rd, day1, day1, cfg.seed, force_scratch=None, fault_rate=None, landed_at=None)
    if loop.champion is None:
        raise LoopFailed(f"no first champion: {rd.outcome}; see {loop.out / 'decisions'}")

    # ---- traffic for the rest of the loop
    block = int(json.loads((loop.out / "serving" / f"v{loop.champion.version}" / "config.json").read_text())["block_size"])
    examples = held_out_examples(day1, block)
    loop.traffic = RequestGenerator(f"{loop.router_url}/v2/models/{MODEL_NAME}/infer", examples,
                                    cfg.request_rate_per_s, cfg.max_in_flight)
    loop.traffic.start()
    console.print(f"requests: {cfg.request_rate_per_s:g}/s through the router from now on "
                  f"({len(examples)} held-out histories)", highlight=False)
    time.sleep(cfg.steady_seconds)
    loop.mark("steady (champion only, nothing else running)", min(0.5, cfg.steady_seconds / 4))

    # ---- 1. a new day
    console.rule("[bold]Round 1: a new day of events")
    rd = RoundRecord("day-2", "day-2 fine-tune", expected="serving 100%")
    loop.report.rounds.append(rd)
    t_round = loop.now()
    day2, landed = _new_day(loop, rd, day1, "day-2")
    _features(loop, rd, day2)
    _candidate(loop, rd, day2, day2, cfg.seed + 1, force_scratch=None, fault_rate=None, landed_at=landed)
    loop.mark("retrain: new data to the challenger's start (training on the same CPUs)", t_round,
              next((b for n, b, _ in reversed(loop.periods) if n.startswith("switch")), None))

    # ---- 2. a worse model
    if cfg.worse_drill:
        console.rule("[bold]Round 2 (drill): a model trained on shuffled labels")
        rd = RoundRecord("shuffled", "shuffled-label model", expected="rejected by the gate")
        loop.report.rounds.append(rd)
        shuffled = loop.out / "data" / "day-2-shuffled"
        with loop.stage(rd, "data", "day-2 window with the events' item ids permuted") as done:
            shuffle_items(day2, shuffled, cfg.seed + 7)
            rd.data = {"dir": str(shuffled), "trained_on": "shuffled item ids", "evaluated_on": str(day2)}
            done["text"] = "popularity kept, sequences destroyed"
        _candidate(loop, rd, day2, shuffled, cfg.seed + 2,
                   force_scratch="deliberately worse: trained from scratch on shuffled item ids (labels)",
                   fault_rate=None, landed_at=None)

    # ---- 3. a model that fails at serving time
    if cfg.fault_drill:
        console.rule("[bold]Round 3 (drill): a model that errors at serving time")
        rd = RoundRecord("day-3-faulty", "day-3 fine-tune, faulty server", expected="rolled back")
        loop.report.rounds.append(rd)
        day3, landed = _new_day(loop, rd, day2, "day-3")
        _candidate(loop, rd, day3, day3, cfg.seed + 3, force_scratch=None, fault_rate=cfg.fault_error_rate,
                   landed_at=landed)
    time.sleep(0.5)
    loop.mark("after the loop (champion only)", max(0.0, loop.now() - 0.5))


def shutil_copy(src: Path, dst: Path) -> None:
    import shutil

    shutil.copytree(src, dst, dirs_exist_ok=True)


def _checks(r: LoopReport) -> None:
    for rd in r.rounds:
        if rd.expected:
            r.checks.append((f"{rd.title}: {rd.expected} (got: {rd.outcome or 'did not run'})", rd.outcome == rd.expected))
    for name, t in r.traffic.items():
        if name.startswith("switch: ") and "faulty" not in name:
            r.checks.append((f"{name}: zero 5xx and no dropped request (got {t['errors_5xx']} 5xx, {t['no_reply']} "
                             "without reply)", t["errors_5xx"] == 0 and t["no_reply"] == 0))
