"""The demo's measurements and the report assembled from them: Markdown, JSON, PNG, key figures.

Every step of the demo fills one record below; :class:`DemoReport` holds them all (a record is
None when its step did not run). The functions here are pure apart from writing the files they
are asked to write: :func:`render_markdown` and :func:`key_figures` take a report and return
text, :func:`write_png` draws the replay timeline and the cost comparison with matplotlib's Agg
backend (no display needed), :func:`write_report` writes ``report.md``, ``report.json`` and
``report.png`` into one folder. Tests build reports from fake measurements.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gpuplane.demo.cost import (  # noqa: F401 (CostRow, PlatformCost: the demo's records all import from here)
    COST_HEADER,
    CostRecord,
    CostRow,
    PlatformCost,
    cost_figures,
    cost_table,
    money,
)
from gpuplane.demo.traces import tree_lines
from gpuplane.pipeline.report import LoopReport, loop_figures, loop_markdown

StepStatus = Literal["ok", "failed", "skipped"]


@dataclass
class StepRecord:
    number: int
    title: str
    status: StepStatus
    seconds: float
    summary: str = ""
    """One line: what the step measured, or why it failed or was skipped."""


@dataclass
class PlanRecord:
    """One reference stack planned offline."""

    stack: str
    resources: int = 0
    seconds: float = 0.0
    monthly_usd: float | None = None
    """Expected monthly cost (the cost model's usage profile); None when it could not be priced."""
    monthly_usd_max: float | None = None
    unknown_prices: int = 0
    mandatory: int = 0
    advisory: int = 0
    violations: list[str] = field(default_factory=list)
    """``level [policy] message`` per violation."""
    validation_problems: int = 0
    error: str = ""
    """Why the stack could not be planned ('' when it was)."""


@dataclass
class DataRecord:
    users: int
    items: int
    days: int
    events: int
    seed: int


@dataclass
class FeaturesRecord:
    materialized_rows: int = 0
    online_rows: int = 0
    materialize_seconds: float = 0.0
    server_startup_seconds: float | None = None
    """``feast serve`` start to healthy; None when the feature-server check did not run."""
    users_checked: int = 0
    users_matching: int = 0
    """Held-out users whose online ``last_items`` equal the tail of their history in the event log."""
    lookup_ms: float | None = None
    """Latency of one ``/get-online-features`` call for all checked users."""


@dataclass
class TrainingRecord:
    max_steps: int
    signalled_at_step: int | None = None
    """The last step logged before the demo sent SIGTERM."""
    preempted_at_step: int | None = None
    """The step at which the trainer stopped (it finishes the step in flight)."""
    checkpoint_step: int | None = None
    """The checkpoint the preempted run reported complete."""
    first_exit_code: int | None = None
    resumed_from_step: int | None = None
    final_exit_code: int | None = None
    run_seconds: list[float] = field(default_factory=list)
    loss: float | None = None
    hit_rate_at_10: float | None = None
    popularity_hit_rate_at_10: float | None = None
    ndcg_at_10: float | None = None
    export_files: list[str] = field(default_factory=list)


@dataclass
class ServingRecord:
    requests: int
    replay_seconds: float
    """Wall seconds the replay took (the compressed day plus the last replies)."""
    day_seconds: float
    """Wall seconds the 24 h day was compressed into."""
    speedup: float
    idle_seconds: float
    """The activator's idle period (wall seconds)."""
    expected_scale_to_zero: int
    """Gaps in the schedule longer than the idle period (plus margin)."""
    codes: dict[str, int] = field(default_factory=dict)
    """Replies by HTTP status; ``"none"`` counts requests that got no reply."""
    latency_all: dict[str, float | int] = field(default_factory=dict)
    latency_cold: dict[str, float | int] = field(default_factory=dict)
    latency_warm: dict[str, float | int] = field(default_factory=dict)
    user_id_requests: int = 0
    """Requests that sent ``user_id`` (the server looked the history up in ``feast serve``)."""
    latency_warm_by_user: dict[str, float | int] = field(default_factory=dict)
    cold_starts: int = 0
    """Server starts counted by the activator (``gpuplane_activator_cold_starts``)."""
    scale_downs: int = 0
    cold_start_mean_s: float | None = None
    """Start to ready, mean over cold starts (activator histogram)."""
    cold_start_observed_s: list[float] = field(default_factory=list)
    """Each start to ready as seen by polling ``/activator/status`` (± one poll interval)."""
    held_requests: int = 0
    hold_mean_s: float | None = None
    server_phases: list[dict[str, float]] = field(default_factory=list)
    """The model server's cold-start phases (interpreter, imports, weights, warmup, total) per start."""
    online_hit_rate_at_10: float | None = None
    """Share of successful replies whose top 10 held the item the user really viewed next."""
    errors: list[str] = field(default_factory=list)
    cold_start_trace: list[dict[str, Any]] = field(default_factory=list)
    """The first cold-start request's OpenTelemetry spans (gpuplane/demo/traces.py rows)."""

    @property
    def server_errors(self) -> int:
        return sum(v for k, v in self.codes.items() if k.startswith("5"))

    @property
    def failed(self) -> int:
        """Requests without a 200 reply."""
        return sum(v for k, v in self.codes.items() if k != "200")


@dataclass
class DemoReport:
    mode: str
    started: str
    """ISO 8601 start time."""
    out_dir: str
    wall_seconds: float = 0.0
    steps: list[StepRecord] = field(default_factory=list)
    plans: list[PlanRecord] = field(default_factory=list)
    data: DataRecord | None = None
    features: FeaturesRecord | None = None
    training: TrainingRecord | None = None
    serving: ServingRecord | None = None
    cost: CostRecord | None = None
    loop: LoopReport | None = None
    """The model loop's report (``pipeline/pipeline-report.json``); None when the loop did not run."""

    def failed_steps(self) -> list[StepRecord]:
        return [s for s in self.steps if s.status == "failed"]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if self.serving is not None:
            d["serving"]["server_errors"] = self.serving.server_errors
        return d


@dataclass
class Timeline:
    """Per-request series of the replay, for the PNG (not in report.json; see requests.csv)."""

    send_s: np.ndarray
    latency_s: np.ndarray
    cold: np.ndarray
    status: np.ndarray
    up: list[tuple[float, float]]
    """Intervals (wall seconds) during which a server was ready."""
    starting: list[tuple[float, float]]
    """Intervals during which a server was starting (requests held)."""
    rate_t: np.ndarray
    rate: np.ndarray
    """Requests per wall second of the schedule, in bins starting at ``rate_t``."""
    speedup: float

    @property
    def end_s(self) -> float:
        """Right end of the plots: the end of the schedule or the last send, whichever is later."""
        bin_s = float(self.rate_t[1] - self.rate_t[0]) if self.rate_t.size > 1 else 1.0
        schedule_end = float(self.rate_t[-1]) + bin_s if self.rate_t.size else 0.0
        sent = self.send_s[np.isfinite(self.send_s)]
        return max(schedule_end, float(sent.max()) if sent.size else 0.0)


# ---------------------------------------------------------------------------------------------
# Text


def _usd(x: float | None) -> str:
    return "unknown" if x is None else money(x)


def _ms(d: dict[str, float | int], key: str) -> str:
    return f"{d[key]:,.0f}" if d.get("n") else "–"


def key_figures(report: DemoReport) -> list[tuple[str, str]]:
    """The figures printed at the end of the demo and at the top of report.md."""
    out: list[tuple[str, str]] = [("demo wall time", f"{report.wall_seconds:.0f} s ({report.mode} mode)")]
    failed = report.failed_steps()
    out.append(("steps", f"{sum(s.status == 'ok' for s in report.steps)} ok, {len(failed)} failed, "
                         f"{sum(s.status == 'skipped' for s in report.steps)} skipped"
                         + (f" (failed: {', '.join(s.title for s in failed)})" if failed else "")))
    if report.plans:
        out.append(("stacks planned", ", ".join(
            f"{p.stack} {_usd(p.monthly_usd)}/month" if not p.error else f"{p.stack} not planned" for p in report.plans)
            + f"; {sum(p.mandatory for p in report.plans)} mandatory, {sum(p.advisory for p in report.plans)} advisory violations"))
    t = report.training
    if t is not None:
        pre = (f"SIGTERM after step {t.signalled_at_step} → stopped at step {t.preempted_at_step}, checkpoint step "
               f"{t.checkpoint_step}, exit {t.first_exit_code}"
               if t.preempted_at_step is not None else "no preemption")
        res = f"resumed from step {t.resumed_from_step} → exit {t.final_exit_code}" if t.resumed_from_step is not None else "not resumed"
        out.append(("training", f"{pre}; {res}"))
        if t.hit_rate_at_10 is not None:
            out.append(("model hit rate@10", f"{t.hit_rate_at_10:.3f} (popularity baseline {t.popularity_hit_rate_at_10:.3f})"))
    s = report.serving
    if s is not None:
        out.append(("requests replayed", f"{s.requests} in {s.replay_seconds:.0f} s (24 h at {s.speedup:,.0f}x); "
                                         f"{s.failed} without 200, {s.server_errors} 5xx"))
        out.append(("latency warm p50/p95/p99", f"{_ms(s.latency_warm, 'p50_ms')} / {_ms(s.latency_warm, 'p95_ms')} / "
                                                f"{_ms(s.latency_warm, 'p99_ms')} ms ({s.latency_warm.get('n', 0)} requests)"))
        out.append(("latency cold p50/p95/p99", f"{_ms(s.latency_cold, 'p50_ms')} / {_ms(s.latency_cold, 'p95_ms')} / "
                                                f"{_ms(s.latency_cold, 'p99_ms')} ms ({s.latency_cold.get('n', 0)} requests)"))
        mean = f"{s.cold_start_mean_s:.1f} s" if s.cold_start_mean_s is not None else "–"
        hold = f"{s.hold_mean_s:.1f} s" if s.hold_mean_s is not None else "–"
        out.append(("cold starts", f"{s.cold_starts} (start to ready {mean} mean; {s.held_requests} requests held, "
                                   f"{hold} mean hold); {s.scale_downs} scale-to-zero"))
        if s.online_hit_rate_at_10 is not None:
            out.append(("online hit rate@10", f"{s.online_hit_rate_at_10:.3f} on replayed held-out requests"))
    if report.cost is not None:
        out += cost_figures(report.cost)
    if report.loop is not None:
        out += loop_figures(report.loop)
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def render_markdown(report: DemoReport) -> str:
    """report.md: key figures, steps, plans, training, serving and traffic, cost."""
    md: list[str] = ["# gpuplane demo report", ""]
    md.append(f"Started {report.started}, {report.mode} mode, {report.wall_seconds:.1f} s wall time. "
              f"Every output is in `{report.out_dir}`.")
    md += ["", "## Key figures", ""]
    md += _table(["figure", "value"], [[k, v] for k, v in key_figures(report)])
    md += ["", "## Steps", ""]
    md += _table(["#", "step", "status", "seconds", "summary"],
                 [[str(s.number), s.title, s.status.upper() if s.status == "failed" else s.status, f"{s.seconds:.1f}",
                   s.summary.replace("|", "\\|").replace("\n", " ")] for s in report.steps])
    if report.plans:
        md += ["", "## Offline plans of the reference stacks", "",
               "Planned with the Pulumi mock runtime, priced with the catalog, checked with the policy pack "
               "(`plans/<stack>.json` and `plans/<stack>.md` hold the full plan and the pull-request comment).", ""]
        md += _table(["stack", "resources", "expected $/month", "max $/month", "unknown prices", "mandatory", "advisory",
                      "schema problems"],
                     [[p.stack, str(p.resources), _usd(p.monthly_usd), _usd(p.monthly_usd_max), str(p.unknown_prices),
                       str(p.mandatory), str(p.advisory), str(p.validation_problems)] if not p.error else
                      [p.stack, "–", "–", "–", "–", "–", "–", f"not planned: {p.error}"] for p in report.plans])
        viol = [(p.stack, v) for p in report.plans for v in p.violations]
        if viol:
            md += ["", "Violations:", ""] + [f"- {stack}: {v}" for stack, v in viol]
    if report.data is not None:
        d = report.data
        md += ["", "## Data", "", f"{d.events:,} events of {d.users:,} users over {d.items:,} items, {d.days} days "
               f"(seed {d.seed}), in `data/`."]
    if report.features is not None:
        f = report.features
        md += ["", "## Features (Feast, local SQLite online store)", "",
               f"{f.materialized_rows:,} rows materialised, {f.online_rows:,} latest entity rows online "
               f"({f.materialize_seconds:.1f} s)."]
        if f.server_startup_seconds is not None:
            md.append(f"`feast serve` was healthy after {f.server_startup_seconds:.1f} s; {f.users_matching} of "
                      f"{f.users_checked} held-out users' online `last_items` match their event log"
                      + (f" (one lookup of all of them: {f.lookup_ms:.0f} ms)." if f.lookup_ms is not None else "."))
    if report.training is not None:
        t = report.training
        md += ["", "## Training with an injected preemption", ""]
        md.append(f"- run 1: SIGTERM (a spot notice) after step {t.signalled_at_step}; the trainer stopped at step "
                  f"{t.preempted_at_step}, wrote checkpoint step {t.checkpoint_step} and exited {t.first_exit_code} "
                  f"(75 = preempted after a checkpoint, requeue) "
                  f"({t.run_seconds[0]:.1f} s)" if t.run_seconds else "- run 1 did not run")
        if len(t.run_seconds) > 1:
            md.append(f"- run 2: resumed from checkpoint step {t.resumed_from_step}, trained to step {t.max_steps}, "
                      f"exit code {t.final_exit_code} ({t.run_seconds[1]:.1f} s)")
        if t.hit_rate_at_10 is not None:
            md.append(f"- held-out users: hit rate@10 {t.hit_rate_at_10:.3f} (popularity {t.popularity_hit_rate_at_10:.3f}), "
                      f"NDCG@10 {t.ndcg_at_10:.3f}; final training loss {t.loss:.3f}")
        if t.export_files:
            md.append(f"- export in `model/`: {', '.join(sorted(t.export_files))}")
    if report.serving is not None:
        s = report.serving
        md += ["", "## Serving behind the scale-to-zero activator: one day of traffic", ""]
        md.append(f"A synthetic 24 h day (diurnal, bursty, quiet night) of {s.requests} requests, replayed in "
                  f"{s.day_seconds:.0f} s ({s.speedup:,.0f}x: one wall second is {s.speedup / 60:.0f} minutes of the day). "
                  f"Only arrival times are compressed; service times and cold starts are real. The activator stops "
                  f"the server after {s.idle_seconds:g} s idle; the schedule has {s.expected_scale_to_zero} gaps longer "
                  f"than that. Requests are OIP v2 `item_ids` of held-out users' real histories"
                  + (f"; {s.user_id_requests} send `user_id` instead, and the model server reads the user's "
                     f"history from `feast serve`." if s.user_id_requests else "."))
        md += [""]
        md += _table(["requests", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                     [[name, str(d.get("n", 0)), _ms(d, "p50_ms"), _ms(d, "p95_ms"), _ms(d, "p99_ms"), _ms(d, "max_ms")]
                      for name, d in (("all", s.latency_all), ("warm", s.latency_warm), ("cold (held)", s.latency_cold),
                                      ("warm, by user_id (feature lookup)", s.latency_warm_by_user)) if d.get("n")])
        md += ["", f"- replies by status: {', '.join(f'{k}: {v}' for k, v in sorted(s.codes.items()))}; "
                   f"{s.server_errors} 5xx"]
        observed = ", ".join(f"{x:.1f}" for x in s.cold_start_observed_s)
        md.append(f"- cold starts: {s.cold_starts} (activator), {s.scale_downs} scale-downs to zero; start to ready "
                  + (f"{s.cold_start_mean_s:.2f} s mean" if s.cold_start_mean_s is not None else "–")
                  + (f" (each: {observed} s)" if observed else ""))
        md.append(f"- held requests: {s.held_requests}, mean hold "
                  + (f"{s.hold_mean_s:.2f} s" if s.hold_mean_s is not None else "–"))
        if s.server_phases:
            keys = [k for k in s.server_phases[0] if k != "total"] + ["total"]
            md += ["", "Model server cold-start phases (seconds, from its log):", ""]
            md += _table(["start", *keys], [[str(i + 1), *(f"{ph.get(k, float('nan')):.2f}" for k in keys)]
                                            for i, ph in enumerate(s.server_phases)])
        if s.cold_start_trace:
            md += ["", "The first cold-start request's trace (OpenTelemetry spans written by the activator and the "
                       "model server to `traces/spans.jsonl`; offset from the request's arrival, duration):", "",
                   "```", *tree_lines(s.cold_start_trace), "```"]
        if s.online_hit_rate_at_10 is not None:
            md += ["", f"Online hit rate@10 on the replayed `item_ids` requests (the next item the user really "
                       f"viewed is in the top 10): {s.online_hit_rate_at_10:.3f}."]
        if s.errors:
            md += ["", "First errors:", ""] + [f"- `{e}`" for e in s.errors[:10]]
    if report.cost is not None:
        c = report.cost
        md += ["", "## Static-for-peak against scale-to-zero, at the same service, on the replayed day", ""]
        md.append(f"The simulator (`gpuplane simulate`) on the same trace in real time (24 h, {c.requests_per_day} "
                  f"requests), service time {c.service_time_ms:.1f} ms (warm median of the replay), model load "
                  f"{c.local_cold_start_s:.1f} s (the replay's measured start to ready), prices: {c.prices}. "
                  f"Knative on GPU nodes also pays node provisioning and image pull at each cold start "
                  f"(simulator defaults). The stated SLO is {c.slo}, cold-start waits included: each platform "
                  f"is shown at its cheapest setting that meets it, beside its aggressive scale-to-zero defaults, "
                  f"and every saving is against static-for-peak, which meets it too. No autoscaler on this node "
                  f"price could pay less than the lower bound, {100 * c.savings_bound:.0f}% below static.")
        md += [""]
        md += _table(COST_HEADER, cost_table(c))
    if report.loop is not None:
        md += ["", "## The model loop", "", "`gpuplane pipeline` on this demo's data and model (full report: "
               "`pipeline/pipeline-report.md`)."]
        md += loop_markdown(report.loop, level=3)
    md += [""]
    return "\n".join(md)


# ---------------------------------------------------------------------------------------------
# Picture


def write_png(path: Path, report: DemoReport, timeline: Timeline | None) -> Path:
    """report.png: request rate with server up-time, latency per request (cold vs warm), cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (2 if timeline is not None else 0) + (1 if report.cost is not None and report.cost.rows else 0)
    fig, axes = plt.subplots(max(1, panels), 1, figsize=(10, 3.2 * max(1, panels)), squeeze=False)
    ax_iter = iter(axes[:, 0])
    if timeline is not None:
        ax = next(ax_iter)
        ax.step(timeline.rate_t, timeline.rate, where="post", color="tab:blue", label="scheduled requests/s")
        for i, (a, b) in enumerate(timeline.up):
            ax.axvspan(a, b, color="tab:green", alpha=0.15, label="server up" if i == 0 else None)
        for i, (a, b) in enumerate(timeline.starting):
            ax.axvspan(a, b, color="tab:red", alpha=0.25, label="cold start (requests held)" if i == 0 else None)
        ax.set_ylabel("requests / s")
        ax.set_xlim(0, timeline.end_s)
        ax.set_title(f"one day of traffic replayed at {timeline.speedup:,.0f}x (1 s = {timeline.speedup / 60:.0f} min)")
        ax.legend(loc="upper left", fontsize=8)
        ax2 = ax.secondary_xaxis("top", functions=(lambda x: x * timeline.speedup / 3600,
                                                   lambda h: h * 3600 / timeline.speedup))
        ax2.set_xlabel("hour of the day")
        ax = next(ax_iter)
        ok = np.isfinite(timeline.latency_s)
        warm, cold = ok & ~timeline.cold, ok & timeline.cold
        ax.scatter(timeline.send_s[warm], timeline.latency_s[warm] * 1e3, s=6, color="tab:blue", label="warm")
        ax.scatter(timeline.send_s[cold], timeline.latency_s[cold] * 1e3, s=10, color="tab:red", label="cold (held)")
        bad = ok & (timeline.status >= 500)
        if bad.any():
            ax.scatter(timeline.send_s[bad], timeline.latency_s[bad] * 1e3, s=20, marker="x", color="black", label="5xx")
        ax.set_yscale("log")
        ax.set_xlim(0, timeline.end_s)
        ax.set_xlabel("replay time (s)")
        ax.set_ylabel("latency (ms)")
        ax.legend(loc="upper left", fontsize=8)
    if report.cost is not None and report.cost.rows:
        ax = next(ax_iter)
        rows = report.cost.rows
        bars = ax.barh([r.option for r in rows], [r.monthly_usd for r in rows],
                       color=["tab:gray" if r.option.startswith("static") else "tab:green" for r in rows])
        ax.bar_label(bars, labels=[_usd(r.monthly_usd) for r in rows], fontsize=8, padding=3)
        ax.set_xlim(0, 1.18 * max((r.monthly_usd for r in rows), default=1.0) or 1.0)  # room for the labels
        ax.invert_yaxis()
        ax.set_xlabel("USD / month for this traffic")
        ax.set_title("static-for-peak vs scale-to-zero at the SLO and aggressive (simulator, catalog prices)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(out_dir: Path, report: DemoReport, timeline: Timeline | None = None) -> list[Path]:
    """Write report.md, report.json and report.png into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    md.write_text(render_markdown(report))
    js = out_dir / "report.json"
    js.write_text(json.dumps(report.to_json(), indent=2, default=float))
    png = write_png(out_dir / "report.png", report, timeline)
    return [md, js, png]
