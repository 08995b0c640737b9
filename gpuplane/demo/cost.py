"""The demo's cost headline: scale-to-zero against static-for-peak at the same service level.

A saving means something only when both sides give the same service. For each platform
(Knative on the catalog's GPU node, Cloud Run with an L4) :func:`compare_costs` reports, side by
side on the replayed day:

- the cheapest setting of that platform that meets the stated SLO (the simulator's sweep finds
  it, ``gpuplane.simulate.cheapest_meeting``) and its saving against static-for-peak, which
  meets the SLO too (static sized for the instantaneous peak when the windowed one does not);
- the aggressive setting (the platform's scale-to-zero defaults) with what it saves and what it
  costs in cold requests and SLO attainment;
- the lower bound: an oracle that knows every arrival and still pays a model load per start
  (``Oracle.start_s``), so a day with traffic never prints as $0.00.

Pure: a trace, a service model and prices in, records out; ``steps.step_cost`` feeds it the
replay's measurements and ``report.py`` renders the records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuplane.simulate import (
    KnativeKeepAlive,
    Oracle,
    PolicyResult,
    PriceSpec,
    ServerlessPerRequest,
    ServiceModel,
    StaticPeak,
    SweepSpec,
    Trace,
    cheapest_meeting,
    run_sweep,
    simulate,
)

HOURS_PER_MONTH = 730.0
"""The cost model's month (components.catalog.HOURS_PER_MONTH; gpuplane does not import the components here)."""


@dataclass
class CostRow:
    option: str
    setting: str
    monthly_usd: float
    gpu_hours_per_day: float
    cold_start_fraction: float
    p99_ms: float
    savings_vs_static: float
    slo_attainment: float = 1.0
    """Fraction of requests within the SLO latency."""


@dataclass
class PlatformCost:
    """One platform's setting at the SLO and its aggressive setting, side by side."""

    platform: str
    at_slo: CostRow | None
    """The cheapest setting meeting the SLO; None when no setting of this platform meets it."""
    aggressive: CostRow
    """The platform's scale-to-zero defaults."""


@dataclass
class CostRecord:
    prices: str
    """Where the prices come from (catalog rows)."""
    requests_per_day: int
    service_time_ms: float
    """Per-request service time used (the replay's warm median)."""
    local_cold_start_s: float
    """Process start to ready measured in the replay (model load phase of the service model)."""
    rows: list[CostRow] = field(default_factory=list)
    """Every row, in the order of the report's table and chart."""
    savings_bound: float = 0.0
    """1 − bound / static: the most any autoscaler on the same node price could save."""
    slo_ms: float = 1000.0
    slo_target: float = 0.99
    """The stated SLO: ``slo_target`` of requests within ``slo_ms``, cold-start waits included."""
    static: CostRow | None = None
    """Static-for-peak, the baseline every saving is measured against."""
    platforms: list[PlatformCost] = field(default_factory=list)
    bound: CostRow | None = None
    """The oracle's lower bound (busy time plus a model load per start)."""

    @property
    def slo(self) -> str:
        return f"{self.slo_target:.0%} of requests within {self.slo_ms:,.0f} ms"


def _row(option: str, r: PolicyResult, static: PolicyResult, per_month: float, days: float) -> CostRow:
    return CostRow(option=option, setting=r.setting, monthly_usd=r.cost_usd * per_month,
                   gpu_hours_per_day=r.gpu_hours / days, cold_start_fraction=r.cold_start_fraction, p99_ms=r.p99_ms,
                   savings_vs_static=r.savings_vs(static), slo_attainment=r.slo_attainment)


def compare_costs(trace: Trace, service: ServiceModel, prices: PriceSpec, *, node: str, serverless: str,
                  slo_ms: float, slo_target: float) -> CostRecord:
    """Static-for-peak, each platform at the SLO and at its aggressive defaults, and the bound (see module doc)."""
    days = trace.duration_s / 86_400.0
    per_month = HOURS_PER_MONTH / 24.0 / days
    sweep = run_sweep(trace, service, prices, slo_ms=slo_ms, slo_target=slo_target,
                      spec=SweepSpec(families=("knative", "serverless")))
    static = sweep.static
    static_label = f"static-for-peak ({node})"
    if static.slo_attainment < slo_target:  # bursts queue inside its window: size it for the instantaneous peak
        static = simulate(trace, service, StaticPeak(window_s=0.0, target_utilization=1.0), prices, slo_ms=slo_ms)
        static_label = f"static for the instantaneous peak ({node})"
    static_row = _row(static_label, static, static, per_month, days)
    rows = [static_row]
    platforms = []
    for family, name, aggressive in (("knative", f"Knative on {node} nodes", KnativeKeepAlive()),
                                     ("serverless", serverless, ServerlessPerRequest())):
        best = cheapest_meeting(sweep.results, slo_target, family)
        at_slo = _row(f"{name}: cheapest meeting the SLO", best, static, per_month, days) if best else None
        agg = _row(f"{name}: aggressive (defaults)", simulate(trace, service, aggressive, prices, slo_ms=slo_ms),
                   static, per_month, days)
        platforms.append(PlatformCost(name, at_slo, agg))
        rows += [r for r in (at_slo, agg) if r is not None]
    oracle = simulate(trace, service, Oracle(start_s=service.cold_start.pod_s), prices, slo_ms=slo_ms)
    bound = _row("lower bound (oracle: busy time + a model load per start)", oracle, static, per_month, days)
    rows.append(bound)
    return CostRecord(prices=prices.label, requests_per_day=int(trace.n_requests / days),
                      service_time_ms=1e3 * (st if isinstance(st := service.service_time_s, float | int) else st[0]),
                      local_cold_start_s=service.cold_start.model_load_s, rows=rows,
                      savings_bound=bound.savings_vs_static, slo_ms=slo_ms, slo_target=slo_target,
                      static=static_row, platforms=platforms, bound=bound)


def money(usd: float) -> str:
    """``$1,234.56``; a positive amount below a cent reads ``<$0.01``, never ``$0.00``."""
    return "<$0.01" if 0 < usd < 0.005 else f"${usd:,.2f}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def cost_figures(c: CostRecord) -> list[tuple[str, str]]:
    """Key-figure lines: the baseline, each platform at the SLO beside its aggressive setting, the bound."""
    out: list[tuple[str, str]] = []
    if c.static is None:
        return out
    s = c.static
    out.append(("cost baseline", f"{s.option}: {money(s.monthly_usd)}/month ({s.setting}); "
                                 f"{_pct(s.slo_attainment)} within {c.slo_ms:,.0f} ms"))
    for p in c.platforms:
        if p.at_slo is None:
            slo_part = f"no setting meets {c.slo}"
        elif p.at_slo.savings_vs_static < 0.005:
            than = "as much as" if p.at_slo.savings_vs_static > -0.005 else \
                f"{-100 * p.at_slo.savings_vs_static:.0f}% more than"
            slo_part = (f"at {c.slo}: {p.at_slo.setting}, {money(p.at_slo.monthly_usd)}/month, {than} static "
                        "(no saving at this SLO)")
        else:
            slo_part = (f"at {c.slo}: {p.at_slo.setting}, {money(p.at_slo.monthly_usd)}/month, "
                        f"{100 * p.at_slo.savings_vs_static:.0f}% below static, {_pct(p.at_slo.cold_start_fraction)} "
                        f"of requests cold")
        a = p.aggressive
        agg_part = (f"aggressive ({a.setting}): {money(a.monthly_usd)}/month, {100 * a.savings_vs_static:.0f}% below "
                    f"static, but {_pct(a.cold_start_fraction)} of requests cold, {_pct(a.slo_attainment)} within "
                    f"{c.slo_ms:,.0f} ms, p99 {a.p99_ms / 1e3:,.1f} s")
        out.append((f"cost {p.platform}", f"{slo_part}; {agg_part}"))
    if c.bound is not None:
        out.append(("cost lower bound", f"{money(c.bound.monthly_usd)}/month ({100 * c.savings_bound:.0f}% below "
                                        "static): an oracle that knows every arrival, pays busy time and a model "
                                        "load per start"))
    return out


def cost_table(c: CostRecord) -> list[list[str]]:
    """Rows of the report's cost table (header: :data:`COST_HEADER`)."""
    return [[r.option, r.setting, money(r.monthly_usd), f"{r.gpu_hours_per_day:.2f}", _pct(r.cold_start_fraction),
             _pct(r.slo_attainment), f"{r.p99_ms:,.0f}", f"{100 * r.savings_vs_static:.0f}%"] for r in c.rows]


COST_HEADER = ["option", "setting", "$/month", "GPU-h/day", "cold requests", "within SLO", "p99 ms", "saved vs static"]
