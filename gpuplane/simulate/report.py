"""Reports of a sweep: Markdown, JSON and a PNG of the cost / cold-start frontier.

``write_report(out_dir, ...)`` writes ``report.md``, ``report.json`` and ``frontier.png`` and
returns their paths. The PNG is drawn with matplotlib's Agg backend (no display needed). Savings
are against static-for-peak; the *bound* column is ``1 − oracle / static`` (the most any
autoscaler on the same node price could save on this trace, ≈ 1 − mean/peak of the load).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpuplane.simulate.engine import PolicyResult
from gpuplane.simulate.prices import PriceSpec
from gpuplane.simulate.service import ServiceModel
from gpuplane.simulate.sweep import SweepResult, endpoint_args
from gpuplane.simulate.traffic import Trace, summarize


def savings_bound(sweep: SweepResult) -> float:
    """1 − oracle / static on GPU-hours: the most any autoscaler can save on this trace."""
    return 1.0 - sweep.oracle.gpu_hours / sweep.static.gpu_hours if sweep.static.gpu_hours > 0 else 0.0


def report_dict(sweep: SweepResult, trace: Trace, service: ServiceModel, prices: PriceSpec) -> dict[str, Any]:
    s = summarize(trace)
    static_replicas = int(sweep.static.extra.get("max_endpoint_replicas", 1))
    rows = []
    frontier = set(sweep.frontier)
    for i, r in enumerate(sweep.results):
        d = r.to_dict()
        d["savings_vs_static"] = r.savings_vs(sweep.static)
        d["on_frontier"] = i in frontier
        rows.append(d)
    rec = sweep.recommended
    return {
        "trace": {
            "requests": s.n_requests,
            "endpoints": s.n_endpoints,
            "duration_s": s.duration_s,
            "mean_rps": s.mean_rps,
            "peak_to_mean_hourly": s.peak_to_mean_hourly,
            "nominal_peak_to_mean": s.nominal_peak_to_mean,
        },
        "service": {
            "service_time_s": service.service_time_s,
            "concurrency": service.concurrency,
            "cold_start": service.cold_start.__dict__,
        },
        "prices": prices.__dict__ | {"serverless_usd_per_second": prices.serverless_usd_per_second},
        "slo": {"latency_ms": sweep.slo_ms, "target_attainment": sweep.slo_target},
        "savings_bound": savings_bound(sweep),
        "static": sweep.static.to_dict(),
        "oracle": sweep.oracle.to_dict() | {"savings_vs_static": sweep.oracle.savings_vs(sweep.static)},
        "results": rows,
        "recommended": None
        if rec is None
        else rec.to_dict()
        | {
            "savings_vs_static": rec.savings_vs(sweep.static),
            "inference_endpoint_args": endpoint_args(rec, service, static_replicas),
        },
        "recommendation": sweep.reason,
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _row(r: PolicyResult, static: PolicyResult, mark: str = "") -> str:
    return (
        f"| {r.policy}{mark} | {r.setting} | {r.gpu_hours:,.1f} | {r.idle_gpu_hours:,.1f} | {r.cost_usd:,.2f} | "
        f"{_pct(r.savings_vs(static))} | {_pct(r.cold_start_fraction)} | {_pct(r.app_cold_start_median)} | "
        f"{_pct(r.app_cold_start_q3)} | {r.p50_ms:,.0f} | {r.p95_ms:,.0f} | {r.p99_ms:,.0f} | {_pct(r.slo_attainment)} |"
    )


def report_markdown(sweep: SweepResult, trace: Trace, service: ServiceModel, prices: PriceSpec) -> str:
    d = report_dict(sweep, trace, service, prices)
    t = d["trace"]
    rec = sweep.recommended
    lines = [
        "# Inference cost and cold-start simulation",
        "",
        f"Trace: {t['requests']:,} requests, {t['endpoints']} endpoint(s), {t['duration_s'] / 3600:,.1f} h, "
        f"mean {t['mean_rps']:.3g} req/s, hourly peak/mean {t['peak_to_mean_hourly']:.2f}"
        + (f" (configured {t['nominal_peak_to_mean']:.2f})" if t["nominal_peak_to_mean"] else "")
        + ".",
        f"Service: {service.service_time_s} s per request, concurrency {service.concurrency} per replica; cold start "
        f"{service.cold_start.node_s:g} s on a new node, {service.cold_start.serverless_s:g} s serverless.",
        f"Prices: {prices.label}: {prices.usd_per_gpu_hour:.4f} $/GPU-h on nodes, "
        f"{prices.serverless_usd_per_second * 3600:.4f} $/h per serverless instance.",
        f"SLO: {sweep.slo_target:.1%} of requests within {sweep.slo_ms:g} ms.",
        "",
        (
            f"**Recommended: {rec.policy}, {rec.setting}** — {rec.cost_usd:,.2f} USD "
            f"({_pct(rec.savings_vs(sweep.static))} below static-for-peak; the bound on this trace is {_pct(d['savings_bound'])}), "
            f"{_pct(rec.cold_start_fraction)} of requests wait for a cold start, p99 {rec.p99_ms:,.0f} ms."
            if rec is not None
            else "**No recommendation: no setting meets the SLO.**"
        ),
        "",
        sweep.reason,
        "",
    ]
    if d["recommended"] is not None:
        lines += ["InferenceEndpoint arguments: `" + json.dumps(d["recommended"]["inference_endpoint_args"]) + "`", ""]
    lines += [
        "| policy | setting | GPU-h | idle GPU-h | cost USD | savings | cold-start waits | per-endpoint median | "
        "per-endpoint Q3 | p50 ms | p95 ms | p99 ms | SLO met |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        _row(sweep.static, sweep.static),
        _row(sweep.oracle, sweep.static),
    ]
    frontier = set(sweep.frontier)
    for i, r in enumerate(sweep.results):
        lines.append(_row(r, sweep.static, " ★" if i in frontier else ""))
    lines += [
        "",
        "★ on the cost / cold-start Pareto frontier. Savings are against static-for-peak. Cold-start waits are "
        "the fraction of requests; per-endpoint median and Q3 are the distribution over endpoints (applications) "
        "of each one's fraction (Shahrad et al.'s metric). Idle GPU-h: billed while serving nothing (boot, "
        "keep-alive, pre-warm).",
        "",
    ]
    return "\n".join(lines)


def plot_frontier(sweep: SweepResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    colors = {"knative": "tab:blue", "serverless": "tab:orange", "histogram": "tab:green"}
    for fam, color in colors.items():
        pts = [r for r in sweep.results if r.policy == fam]
        if pts:
            ax.scatter(
                [r.cost_usd for r in pts], [100 * r.cold_start_fraction for r in pts], c=color, label=fam, alpha=0.75
            )
    front = [sweep.results[i] for i in sweep.frontier]
    if front:
        ax.plot(
            [r.cost_usd for r in front],
            [100 * r.cold_start_fraction for r in front],
            "k--",
            lw=1,
            label="Pareto frontier",
        )
    ax.axvline(sweep.static.cost_usd, color="tab:red", ls=":", label=f"static-for-peak {sweep.static.cost_usd:,.0f} $")
    ax.axvline(sweep.oracle.cost_usd, color="tab:gray", ls=":", label=f"oracle {sweep.oracle.cost_usd:,.0f} $")
    rec = sweep.recommended
    if rec is not None:
        ax.scatter(
            [rec.cost_usd],
            [100 * rec.cold_start_fraction],
            s=220,
            facecolors="none",
            edgecolors="k",
            lw=2,
            label="recommended",
        )
    ax.set_xlabel("cost (USD)")
    ax.set_ylabel("requests waiting for a cold start (%)")
    ax.set_title(f"cost vs cold starts (SLO {sweep.slo_target:.0%} ≤ {sweep.slo_ms:g} ms)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(
    out_dir: str | Path, sweep: SweepResult, trace: Trace, service: ServiceModel, prices: PriceSpec
) -> dict[str, Path]:
    """Write report.md, report.json and frontier.png under ``out_dir`` (created if missing)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "report.md"
    js = out / "report.json"
    md.write_text(report_markdown(sweep, trace, service, prices))
    js.write_text(json.dumps(report_dict(sweep, trace, service, prices), indent=2, default=str) + "\n")
    png = plot_frontier(sweep, out / "frontier.png")
    return {"markdown": md, "json": js, "png": png}
