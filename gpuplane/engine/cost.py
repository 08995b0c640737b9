"""Pricing a planned stack, comparing two prices, and the pull-request comment.

- ``price_run(run, usage, catalog)``: the cost model (policies/costmodel.py) over a recorded
  program, with the usage profile from the stack's ``gpuplane:usage``.
- ``cost_diff(base, head)``: what changes between two cost reports (another stack's plan, or a
  saved ``gpuplane plan --format json`` file), matched by resource identity (type chain + name,
  so two stacks of the same program line up although their URNs differ in the stack name).
- ``render_pr_comment(...)``: Markdown for a pull request: resources by component with their
  expected monthly cost, the cost table, the diff, violations and exemptions.

Every figure keeps its basis; an unknown price stays unknown (listed, never summed as $0).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.catalog import Catalog, load_catalog
from gpuplane.engine.policy import LoadedPack, PolicyReport, resource_views
from gpuplane.engine.runtime import ProgramRun
from policies.costmodel import CostReport, Usage, price_resources


def price_run(
    run: ProgramRun,
    usage: Mapping[str, Any] | Usage | None = None,
    catalog: Catalog | None = None,
    *,
    provider_defaults: Mapping[str, Mapping[str, Any]] | None = None,
) -> CostReport:
    """Price every priced resource of a recorded program (``UsageError`` for a bad profile)."""
    profile = usage if isinstance(usage, Usage) else Usage.from_dict(usage)
    return price_resources(resource_views(run.resources, provider_defaults), profile, catalog or load_catalog())


# ---------------------------------------------------------------------------------------------
# Diff


def resource_key(urn: str, part: str | None = None) -> str:
    """A URN without its stack and project: ``<type chain>::<name>`` (+ ``#part``)."""
    parts = urn.split("::")
    key = "::".join(parts[2:]) if len(parts) >= 4 else urn
    return f"{key}#{part}" if part else key


def load_cost_json(path: Path) -> dict[str, Any]:
    """The cost section of a saved plan (``gpuplane plan --format json``) or a bare cost report."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(
            f"cannot read cost report {path}: {e}. Give a file written by `gpuplane plan --format json`."
        ) from None
    cost = data.get("cost", data) if isinstance(data, dict) else None
    if not isinstance(cost, dict) or "monthly" not in cost or "by_resource" not in cost:
        raise ValueError(
            f"{path} has no cost report (no 'cost' key with 'monthly' and 'by_resource'). Write it with `gpuplane plan --format json`."
        )
    return cost


@dataclass
class CostDiff:
    base_label: str
    head_label: str
    base_monthly: dict[str, float]
    head_monthly: dict[str, float]
    changes: list[dict[str, Any]] = field(default_factory=list)
    """{"key", "name", "type", "change": added|removed|changed, "base", "head", "delta"} (expected monthly)."""

    @property
    def delta_monthly(self) -> dict[str, float]:
        return {k: round(self.head_monthly[k] - self.base_monthly[k], 4) for k in ("min", "expected", "max")}

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base_label,
            "head": self.head_label,
            "monthly": {"base": self.base_monthly, "head": self.head_monthly, "delta": self.delta_monthly},
            "changes": self.changes,
        }

    def markdown(self) -> str:
        d = self.delta_monthly["expected"]
        lines = [
            f"#### Cost change vs `{self.base_label}`: {_signed(d)}/month expected",
            "",
            "| | base | head | delta |",
            "| --- | ---: | ---: | ---: |",
        ]
        for k in ("min", "expected", "max"):
            lines.append(
                f"| monthly {k} | {_usd(self.base_monthly[k])} | {_usd(self.head_monthly[k])} | {_signed(self.head_monthly[k] - self.base_monthly[k])} |"
            )
        if self.changes:
            lines += ["", "| resource | change | base | head | delta |", "| --- | --- | ---: | ---: | ---: |"]
            for c in self.changes:
                lines.append(
                    f"| `{c['name']}` | {c['change']} | {_usd(c['base'])} | {_usd(c['head'])} | {_signed(c['delta'])} |"
                )
        return "\n".join(lines) + "\n"


def _as_json(report: CostReport | Mapping[str, Any]) -> dict[str, Any]:
    return report.to_json() if isinstance(report, CostReport) else dict(report)


def cost_diff(
    base: CostReport | Mapping[str, Any],
    head: CostReport | Mapping[str, Any],
    *,
    base_label: str = "base",
    head_label: str = "head",
) -> CostDiff:
    """Per-resource and total changes in expected monthly cost from ``base`` to ``head``."""
    b, h = _as_json(base), _as_json(head)

    def index(rep: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {resource_key(i["urn"], i.get("part")): i for i in rep.get("by_resource", [])}

    bi, hi = index(b), index(h)
    changes = []
    for key in sorted(set(bi) | set(hi)):
        bv = bi[key]["monthly"]["expected"] if key in bi else 0.0
        hv = hi[key]["monthly"]["expected"] if key in hi else 0.0
        item = hi.get(key) or bi[key]
        change = "added" if key not in bi else "removed" if key not in hi else "changed"
        if change == "changed" and abs(hv - bv) < 0.005:
            continue
        name = item["name"] + (f" ({item['part']})" if item.get("part") else "")
        changes.append(
            {
                "key": key,
                "name": name,
                "type": item["type"],
                "change": change,
                "base": bv,
                "head": hv,
                "delta": round(hv - bv, 4),
            }
        )
    changes.sort(key=lambda c: -abs(c["delta"]))
    return CostDiff(base_label, head_label, dict(b["monthly"]), dict(h["monthly"]), changes)


# ---------------------------------------------------------------------------------------------
# Markdown


def _usd(x: float | None) -> str:
    return "unknown" if x is None else f"${x:,.2f}"


def _signed(x: float) -> str:
    return f"{'+' if x >= 0 else '-'}${abs(x):,.2f}"


def cost_markdown(report: CostReport) -> str:
    """The cost table: stack totals, then every priced resource with its basis, then the unknowns."""
    h, m = report.hourly, report.monthly
    lines = [
        f"#### Cost (USD; month = 730 h; usage {json.dumps(report.usage.to_json())})",
        "",
        "| | min | expected | max |",
        "| --- | ---: | ---: | ---: |",
        f"| per hour | {_usd(h.min)} | {_usd(h.expected)} | {_usd(h.max)} |",
        f"| per month | {_usd(m.min)} | {_usd(m.expected)} | {_usd(m.max)} |",
    ]
    if report.priced:
        lines += [
            "",
            "<details><summary>By resource</summary>",
            "",
            "| resource | monthly min | expected | max | basis |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for i in sorted(report.priced, key=lambda i: -(i.monthly.expected if i.monthly else 0.0)):
            mm = i.monthly
            assert mm is not None
            name = i.name + (f" ({i.part})" if i.part else "")
            lines.append(
                f"| `{name}` | {_usd(mm.min)} | {_usd(mm.expected)} | {_usd(mm.max)} | {' '.join(i.basis.split()).replace('|', '/')} |"
            )
        lines += ["", "</details>"]
    if report.unknown:
        lines += ["", f"**{len(report.unknown)} resource(s) with unknown price** (not included above):"]
        lines += [f"- `{i.name}`{f' ({i.part})' if i.part else ''}: {i.basis}" for i in report.unknown]
    return "\n".join(lines) + "\n"


def _components(run: ProgramRun, report: CostReport) -> list[tuple[str, str, int, float, int]]:
    """(name, type, descendants, expected monthly, unknown prices) per top-level resource."""
    urns = {r.urn for r in run.resources}
    parent = {r.urn: (r.parent if r.parent in urns else None) for r in run.resources}

    def top(urn: str) -> str:
        seen = set()
        while parent.get(urn) and urn not in seen:
            seen.add(urn)
            urn = parent[urn]  # type: ignore[assignment]
        return urn

    rows: dict[str, list[Any]] = {}
    by_urn = {r.urn: r for r in run.resources}
    for r in run.resources:
        if r.type.startswith("pulumi:providers:"):
            continue
        t = top(r.urn)
        row = rows.setdefault(t, [by_urn[t].name, by_urn[t].type, -1, 0.0, 0])
        row[2] += 1
    for i in report.items:
        if i.urn in by_urn:
            row = rows.setdefault(top(i.urn), [by_urn[top(i.urn)].name, by_urn[top(i.urn)].type, 0, 0.0, 0])
            if i.monthly is None:
                row[4] += 1
            else:
                row[3] += i.monthly.expected
    return [tuple(r) for r in rows.values()]  # type: ignore[misc]


def batch_estimates(summary: dict[str, Any]) -> list[str]:
    """One line per platform: a run's price and wall time where it fits, why not where it does not."""
    lines = []
    for e in summary.get("runEstimates") or []:
        if not isinstance(e, dict):
            continue
        if not e.get("fits"):
            lines.append(f"{e.get('platform')}: does not fit: {e.get('reason')}")
        elif e.get("usdPerRun") is None:
            lines.append(f"{e.get('platform')}: {_plain(e.get('tasks'))} tasks, not priced ({e.get('reason')})")
        else:
            wall = float(e.get("wallSeconds") or 0) / 60
            lines.append(f"{e.get('platform')}: ${float(e['usdPerRun']):,.2f} per run, {_plain(e.get('tasks'))} tasks x "
                         f"{_plain(e.get('taskSeconds'))} s (cold start {_plain(e.get('coldStartSeconds'))} s), {wall:,.0f} min wall, {e.get('resource')} in {e.get('region')}")
    return lines


def _plain(v: Any) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _batch_runs(run: ProgramRun) -> list[str]:
    """A section per BatchJob: the price of one run on every platform that fits."""
    out: list[str] = []
    for r in run.resources:
        s = r.inputs.get("gpuplane") if r.type == "gpuplane:index:BatchJob" else None
        if isinstance(s, dict):
            out += [f"**BatchJob `{r.name}`**: one run on each platform", "", *[f"- {x}" for x in batch_estimates(s)], ""]
    return out


def render_pr_comment(
    stack: str,
    run: ProgramRun,
    cost: CostReport,
    policy: PolicyReport | None = None,
    diff: CostDiff | None = None,
    validation_problems: list[str] | None = None,
) -> str:
    """The pull-request comment for one stack's plan."""
    status = "✅ passes policy" if policy is None or policy.passed else f"❌ {policy.mandatory} mandatory violation(s)"
    lines = [
        f"### gpuplane plan: `{stack}` — {status}",
        "",
        f"{len(run.resources)} resources · expected {_usd(cost.monthly.expected)}/month (max {_usd(cost.monthly.max)}/month, {_usd(cost.hourly.max)}/h at full scale)"
        + (f" · {len(cost.unknown)} unknown price(s)" if cost.unknown else ""),
        "",
        "| component | type | resources | expected monthly |",
        "| --- | --- | ---: | ---: |",
    ]
    for name, typ, n, monthly, unknown in sorted(_components(run, cost), key=lambda r: (-r[3], r[0])):
        lines.append(f"| `{name}` | `{typ}` | {n + 1} | {_usd(monthly)}{f' + {unknown} unknown' if unknown else ''} |")
    by_cloud = cost_by_cloud(run, cost)
    if len(by_cloud) > 1:
        lines += ["", "| cloud | expected monthly | max monthly |", "| --- | ---: | ---: |"]
        lines += [f"| {c} | {_usd(v['expected'])} | {_usd(v['max'])} |" for c, v in sorted(by_cloud.items())]
    lines += ["", cost_markdown(cost)]
    lines += _batch_runs(run)
    if diff is not None:
        lines.append(diff.markdown())
    if policy is not None:
        lines.append(policy.markdown())
    if validation_problems:
        lines += [
            "**Validation problems** (the real API would reject these)",
            *[f"- {p}" for p in validation_problems],
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# One call for `gpuplane plan`: policy + cost + optional diff


@dataclass
class PlanChecks:
    """What ``gpuplane plan`` adds to a plan: its policy report, its cost, and a cost diff."""

    policy: PolicyReport
    cost: CostReport
    diff: CostDiff | None = None
    policy_config_file: Path | None = None
    by_cloud: dict[str, dict[str, float]] | None = None
    """Monthly min / expected / max per cloud (a multicloud stack's parts)."""

    def to_json(self) -> dict[str, Any]:
        """The ``policy`` and ``cost`` keys (and ``cost_diff``) of ``gpuplane plan --format json``."""
        out: dict[str, Any] = {
            "policy": {
                **self.policy.to_json(),
                "config_file": str(self.policy_config_file) if self.policy_config_file else None,
            },
            "cost": {**self.cost.to_json(), "by_cloud": self.by_cloud or {}},
        }
        if self.diff is not None:
            out["cost_diff"] = self.diff.to_json()
        return out

    def markdown(self, plan: Any) -> str:
        return render_pr_comment(
            plan.stack, plan.run, self.cost, self.policy, self.diff, list(plan.validation_problems)
        )

    def print_summary(self, console: Any) -> None:
        """Cost totals and violations under the terminal tree."""
        h, m = self.cost.hourly, self.cost.monthly
        console.print(
            f"[bold]cost[/bold]: expected ${m.expected:,.2f}/month (min ${m.min:,.2f}, max ${m.max:,.2f}); ${h.max:,.2f}/h at full scale"
            + (f"; [yellow]{len(self.cost.unknown)} unknown price(s)[/yellow]" if self.cost.unknown else ""),
            highlight=False,
        )
        if self.by_cloud and len(self.by_cloud) > 1:
            parts = ", ".join(f"{c} ${v['expected']:,.2f}" for c, v in sorted(self.by_cloud.items()))
            console.print(f"  by cloud (expected per month): {parts}", highlight=False)
        for i in self.cost.unknown:
            console.print(
                f"  [yellow]?[/yellow] {i.name}{f' ({i.part})' if i.part else ''}: {i.basis}", highlight=False
            )
        if self.diff is not None:
            d = self.diff.delta_monthly["expected"]
            console.print(f"[bold]vs {self.diff.base_label}[/bold]: {_signed(d)}/month expected", highlight=False)
        p = self.policy
        colour = "red" if p.mandatory else "yellow" if p.advisory else "green"
        console.print(
            f"[bold]policy[/bold] ({p.pack} {p.version}): [{colour}]{p.mandatory} mandatory, {p.advisory} advisory[/{colour}]",
            highlight=False,
        )
        for v in sorted(p.violations, key=lambda v: (v.level != "mandatory", v.policy)):
            mark = "[red]✗[/red]" if v.level == "mandatory" else "[yellow]![/yellow]"
            console.print(f"  {mark} [{v.policy}] {v.message}", highlight=False)
        # Every exemption is listed (never silent); children that inherit an exemption from their
        # component's tags and suppress nothing themselves are counted on one line.
        quiet = [e for e in p.exemptions if e.honoured and not e.suppressed]
        for e in p.exemptions:
            if e in quiet and len(quiet) > 1:
                continue
            state = (
                f"honoured, suppressed {len(e.suppressed)}" if e.honoured else "NOT honoured: " + "; ".join(e.problems)
            )
            console.print(
                f"  [cyan]exempt[/cyan] {e.urn.rsplit('::', 1)[-1]} from {', '.join(e.policies)} ({e.reason or 'no reason'}): {state}",
                highlight=False,
            )
        if len(quiet) > 1:
            names = ", ".join(e.urn.rsplit("::", 1)[-1] for e in quiet)
            console.print(f"  [cyan]exempt[/cyan] also (tagged, nothing suppressed): {names}", highlight=False)


def assess_plan(
    plan: Any,
    policy_config_file: Path | None = None,
    compare_to: str | None = None,
    *,
    catalog: Catalog | None = None,
    pack: LoadedPack | None = None,
) -> PlanChecks:
    """Evaluate the pack and price a ``StackPlan`` (``.stack``, ``.run``, ``.config``, ``.usage()``).

    The pack is ``pack`` (``load_policy_pack``) or gpuplane's own. The policy config is
    ``policy_config_file``, else — for gpuplane's pack on this repository's own project —
    ``policies/config/<stack>.json`` when it exists (another project's stacks get the pack's
    defaults). ``compare_to`` is a saved ``gpuplane plan --format json`` file or another stack
    of the same project. Raises ``PolicyConfigError`` / ``PolicyPackError`` / ``UsageError`` /
    ``ValueError`` with a one-line reason.
    """
    from gpuplane.engine.policy import (
        evaluate_policies,
        load_policy_config,
        provider_defaults_from_config,
        stack_policy_config_path,
    )

    source = getattr(plan, "source", None)
    own_stack = pack is None and (source is None or source.is_repo)
    config_file = policy_config_file or (stack_policy_config_path(plan.stack) if own_stack else None)
    policy_config = load_policy_config(config_file) if config_file else None
    defaults = provider_defaults_from_config(plan.config)
    usage = plan.usage()
    policy = evaluate_policies(plan.run, policy_config, plan.stack, usage=usage, provider_defaults=defaults, pack=pack)
    cost = price_run(plan.run, usage, catalog, provider_defaults=defaults)
    diff = None
    if compare_to:
        path = Path(compare_to)
        if path.exists():
            base: CostReport | dict[str, Any] = load_cost_json(path)
        else:
            from gpuplane.engine.plan import plan_stack

            other = plan_stack(compare_to, validate=False, project=source)
            base = price_run(
                other.run, other.usage(), catalog, provider_defaults=provider_defaults_from_config(other.config)
            )
        diff = cost_diff(base, cost, base_label=compare_to, head_label=plan.stack)
    return PlanChecks(policy, cost, diff, config_file, cost_by_cloud(plan.run, cost))


def cost_by_cloud(run: Any, cost: CostReport) -> dict[str, dict[str, float]]:
    """Monthly cost per cloud: a priced resource's cloud is its component's ``cloud`` (from the
    ``gpuplane`` summary) or its provider package (``aws:``, ``aws-native:``, ``gcp:``)."""
    clouds: dict[str, str] = {}
    for r in run.resources:
        summary = r.inputs.get("gpuplane")
        cloud = summary.get("cloud") if isinstance(summary, dict) else None
        if not isinstance(cloud, str):
            package = r.type.split(":", 1)[0]
            cloud = {"aws-native": "aws"}.get(package, package)
        clouds[r.urn] = cloud
    totals: dict[str, dict[str, float]] = {}
    for item in cost.priced:
        monthly = item.monthly
        if monthly is None:
            continue
        t = totals.setdefault(clouds.get(item.urn, "other"), {"min": 0.0, "expected": 0.0, "max": 0.0})
        t["min"] += monthly.min
        t["expected"] += monthly.expected
        t["max"] += monthly.max
    return {c: {k: round(v, 2) for k, v in t.items()} for c, t in totals.items()}
