"""The model loop's report: every decision with its metrics, stage times and traffic figures.

``pipeline-report.json`` is the whole :class:`LoopReport`; ``pipeline-report.md`` renders it for
people: one row per candidate model (retrain mode, held-out metrics, gate, canary, outcome), the
reasons in words, the stage times from new data to 100 %, and latency / 5xx per traffic period.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RoundRecord:
    key: str
    title: str
    data: dict[str, Any] = field(default_factory=dict)
    retrain_mode: str = ""
    retrain_reason: str = ""
    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    gate: dict[str, Any] | None = None
    canary: dict[str, Any] | None = None
    """``{"verdict": {...}, "observations": [...], "percent": p}`` when a canary ran."""
    outcome: str = ""
    """"serving 100%", "rejected by the gate", "rolled back", "failed: ..."."""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    new_data_to_100_seconds: float | None = None
    expected: str = ""
    """The outcome the loop expects of this round (drills), checked in ``checks``."""


@dataclass
class LoopReport:
    mode: str
    started: str
    out_dir: str
    tracking_uri: str = ""
    rounds: list[RoundRecord] = field(default_factory=list)
    traffic: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per period (steady, retrain, switch, ...): requests, codes, 5xx, p50/p99 ms."""
    champion_version: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    wall_seconds: float = 0.0

    def failed_checks(self) -> list[str]:
        return [name for name, ok in self.checks if not ok]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _f(v: Any, digits: int = 4) -> str:
    return "–" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def loop_figures(r: LoopReport) -> list[tuple[str, str]]:
    """Key figures of a loop run (for the demo's summary and report)."""
    out: list[tuple[str, str]] = []
    if r.error:
        out.append(("model loop", f"failed: {r.error.splitlines()[0]}"))
    for rd in r.rounds[1:]:
        m = rd.metrics
        figure = f"NDCG@10 {m['ndcg_at_10']:.3f}" if "ndcg_at_10" in m else "no metrics"
        if "champion_ndcg_at_10" in m:
            figure += f" vs champion {m['champion_ndcg_at_10']:.3f}"
        timed = f", new data → 100% in {rd.new_data_to_100_seconds:.0f} s" if rd.new_data_to_100_seconds else ""
        out.append((f"loop: {rd.title}", f"{'v' + rd.version if rd.version else '–'} {rd.outcome or 'did not run'} "
                                         f"({figure}{timed})"))
    switch = next((t for n, t in r.traffic.items() if n.startswith("switch: ") and "faulty" not in n), None)
    if switch is not None:
        out.append(("loop: requests during the switch", f"{switch['requests']}, {switch['errors_5xx']} 5xx, p99 "
                                                        f"{_f(switch['p99_ms'], 0)} ms"))
    return out


def loop_markdown(r: LoopReport, level: int = 2) -> list[str]:
    """The body of the report: decisions, reasons, stage times, traffic, checks, notes."""
    h = "#" * level
    out: list[str] = []
    if r.error:
        out += ["", f"**Failed:** {r.error}"]
    out += ["", f"{h} Decisions", "",
            "| round | version | retrain | hit@10 | NDCG@10 | baseline NDCG@10 | champion NDCG@10 | gate | canary | outcome |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for rd in r.rounds:
        m = rd.metrics
        gate = "–" if rd.gate is None else ("promoted" if rd.gate.get("promoted") else "rejected")
        canary = "–" if rd.canary is None else rd.canary.get("verdict", {}).get("action", "–")
        out.append(f"| {rd.title} | {'v' + rd.version if rd.version else '–'} | {rd.retrain_mode or '–'} | "
                   f"{_f(m.get('hit_rate_at_10'))} | {_f(m.get('ndcg_at_10'))} | {_f(m.get('baseline_ndcg_at_10'))} | "
                   f"{_f(m.get('champion_ndcg_at_10'))} | {gate} | {canary} | {rd.outcome} |")
    out += ["", "Champion NDCG@10 is the serving champion re-scored on the round's held-out users (the figure "
                "the gate compares).", "", f"{h} Why", ""]
    for rd in r.rounds:
        out.append(f"- **{rd.title}**" + (f" (v{rd.version})" if rd.version else "") + ":")
        if rd.retrain_reason:
            out.append(f"  - retrain: {rd.retrain_mode}: {rd.retrain_reason}")
        if rd.gate is not None:
            out.append(f"  - gate: {rd.gate.get('reason')}")
        if rd.canary is not None:
            v = rd.canary.get("verdict", {})
            out.append(f"  - canary at {rd.canary.get('percent'):g}%: {v.get('action')}: {v.get('reason')}")
        out.append(f"  - outcome: {rd.outcome}")
    timed = [rd for rd in r.rounds if rd.new_data_to_100_seconds is not None]
    if timed:
        out += ["", f"{h} New data to 100 %", "", "| round | " + " | ".join(timed[0].stage_seconds) + " | total |",
                "|---|" + "---|" * (len(timed[0].stage_seconds) + 1)]
        for rd in timed:
            out.append(f"| {rd.title} | " + " | ".join(f"{s:.1f} s" for s in rd.stage_seconds.values())
                       + f" | **{rd.new_data_to_100_seconds:.1f} s** |")
    if r.traffic:
        out += ["", f"{h} Traffic through the router", "",
                "| period | requests | 5xx | no reply | p50 ms | p99 ms | by backend |", "|---|---|---|---|---|---|---|"]
        for name, t in r.traffic.items():
            out.append(f"| {name} | {t['requests']} | {t['errors_5xx']} | {t['no_reply']} | {_f(t['p50_ms'], 1)} | "
                       f"{_f(t['p99_ms'], 1)} | " + ", ".join(f"{k} {v}" for k, v in sorted(t['by_backend'].items()))
                       + " |")
    if r.checks:
        out += ["", f"{h} Checks", ""] + [f"- {'✓' if ok else '✗'} {name}" for name, ok in r.checks]
    if r.notes:
        out += ["", f"{h} Notes", ""] + [f"- {n}" for n in r.notes]
    return out


def render_markdown(r: LoopReport) -> str:
    out = [f"# The model loop ({r.mode})", "",
           f"Registry: `{r.tracking_uri}`; champion at the end: v{r.champion_version}; aliases "
           + (", ".join(f"`{a}`→v{v}" for a, v in sorted(r.aliases.items())) or "none") + "."]
    out += loop_markdown(r)
    out += ["", f"Wall time: {r.wall_seconds:.1f} s.", ""]
    return "\n".join(out)


def write_report(out: Path, r: LoopReport) -> list[Path]:
    j, md = out / "pipeline-report.json", out / "pipeline-report.md"
    j.write_text(json.dumps(r.to_json(), indent=2, sort_keys=False, default=str) + "\n")
    md.write_text(render_markdown(r))
    return [md, j]
