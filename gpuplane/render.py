"""Rendering a stack plan: a terminal tree, JSON for machines, Markdown for pull requests."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from gpuplane.engine.cost import batch_estimates
from gpuplane.engine.plan import StackPlan
from gpuplane.engine.runtime import RecordedResource

_KEY_INPUTS = ("instanceTypes", "instanceType", "capacityType", "amiType", "machineType", "chart", "kind", "location", "region")


def _label(r: RecordedResource) -> str:
    summary = r.inputs.get("gpuplane") if isinstance(r.inputs.get("gpuplane"), dict) else None
    detail = ""
    if summary:
        keys = ("cloud", "region", "accelerator", "acceleratorsPerNode", "instanceType", "capacityType", "minNodes", "maxNodes")
        parts = [f"{k}={_short(summary[k])}" for k in keys if summary.get(k) not in (None, "", [])]
        runtime = summary.get("runtime")
        if isinstance(runtime, dict) and runtime.get("kind"):
            parts.append(f"runtime={runtime['kind']}/{runtime.get('protocol')}")
        budget = summary.get("coldStartBudget")
        if isinstance(budget, dict) and "totalSeconds" in budget:
            parts.append(_cold_start(budget))
        if "runEstimates" in summary:
            parts.append(_batch(summary))
        detail = " ".join(parts)
    else:
        parts = [f"{k}={_short(r.inputs[k])}" for k in _KEY_INPUTS if k in r.inputs and r.inputs[k] not in (None, "")]
        detail = " ".join(parts[:3])
    return f"[bold]{r.name}[/bold] [dim]{r.type}[/dim]" + (f"  {detail}" if detail else "")


# InferenceEndpoint's cold-start phases, in the order they happen.
_PHASES = (("node", "nodeProvisionSeconds"), ("image", "imagePullSeconds"), ("fetch", "weightsFetchSeconds"), ("load", "weightsLoadSeconds"), ("engine", "engineStartSeconds"))


def _cold_start(budget: dict[str, Any]) -> str:
    """``coldStart=259s(node 5 + image 100 + fetch 0 + load 64 + engine 90)``; phases shown when present."""
    phases = " + ".join(f"{label} {_short(budget[key])}" for label, key in _PHASES if key in budget)
    return f"coldStart={_short(budget['totalSeconds'])}s" + (f"({phases})" if phases else "")


def _batch(s: dict[str, Any]) -> str:
    """``tasks=20x2602s(cold 102) timeout=3600s/cap 3600s run=$15.13``: a BatchJob's sizing and its run price."""
    price = f" run=${float(s['usdPerRun']):,.2f}" if s.get("usdPerRun") is not None else ""
    return (f"tasks={_short(s.get('tasks'))}x{_short(s.get('taskSeconds'))}s(cold {_short(s.get('coldStartSeconds'))}) "
            f"timeout={_short(s.get('taskTimeoutSeconds'))}s/cap {_short(s.get('taskCapSeconds'))}s{price}")


def _short(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, list):
        return ",".join(_short(x) for x in v)
    return str(v)


def children_map(plan: StackPlan) -> dict[str | None, list[RecordedResource]]:
    children: dict[str | None, list[RecordedResource]] = defaultdict(list)
    urns = {r.urn for r in plan.resources}
    for r in plan.resources:
        parent = r.parent if r.parent in urns else None
        children[parent].append(r)
    for items in children.values():
        items.sort(key=lambda r: (r.type.startswith("pulumi:providers"), r.type, r.name))
    return children


def tree(plan: StackPlan) -> Tree:
    root = Tree(f"[bold cyan]{plan.project}[/bold cyan] / [bold]{plan.stack}[/bold]  ({len(plan.resources)} resources)")
    children = children_map(plan)

    def add(node: Tree, parent: str | None) -> None:
        for r in children.get(parent, []):
            child = node.add(_label(r))
            summary = r.inputs.get("gpuplane")
            if isinstance(summary, dict) and "runEstimates" in summary:
                runs = child.add("[dim]one run on each platform[/dim]")
                for line in batch_estimates(summary):
                    runs.add(escape(line), highlight=False)
            add(child, r.urn)

    add(root, None)
    return root


def edge_rollouts(plan: StackPlan) -> list[tuple[str, dict[str, Any]]]:
    """(name, plan summary) of every EdgeDeployment in the plan (its ``gpuplane`` input has ``edge: true``)."""
    return [(r.name, r.inputs["gpuplane"]) for r in plan.resources
            if isinstance(r.inputs.get("gpuplane"), dict) and r.inputs["gpuplane"].get("edge") is True]


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def print_edge_rollout(name: str, summary: dict[str, Any], console: Console) -> None:
    """Per wave and per site: bytes, time at the declared bandwidth, egress cost, pre-stage window, disconnect contract.

    Reads the summary as recorded (numbers may arrive as floats, ``None`` values may be absent)."""
    from rich.table import Table

    model = summary["model"]
    source = summary.get("source")
    console.print(f"[bold]edge rollout {name}[/bold]: model {model['digest'][:19]}.. ({_short(model['sizeMib'])} MiB, {model['quantization']}), "
                  f"{_short(summary['promotedWaves'])} of {len(summary['waves'])} waves promoted; egress "
                  + (f"${_short(summary['egressUsdPerGib'])}/GiB from {'/'.join(source)}" if source else "not priced"), highlight=False)
    waves = Table("wave", "sites", "fleet%", "up", "gate p99ms/agree", "MiB", "time", "cost $")
    for w in summary["waves"]:
        cost = w.get("costUsd")
        waves.add_row(f"{_short(w['index'])} {w['name']}", ", ".join(w["sites"]), _short(w["percent"]), "yes" if w["promoted"] else "no",
                      f"{_short(w['gate']['p99LatencyMs'])}/{_short(w['gate']['minAgreement'])}", f"{w['bytes'] / 2**20:.1f}",
                      _hours(w["seconds"]), "-" if cost is None else f"{cost:.4f}")
    console.print(waves)
    sites = Table("site", "kind", "wave", "runtime", "MiB", "time", "cost $", "pre-stage (UTC)", "offline h", "outage h")
    unchecked = False
    for s in summary["sites"]:
        t, o = s["transfer"], s["offline"]
        window = t.get("window")
        prestage = "any time" if window is None else f"{window} x{_short(t['windowsNeeded'])}"
        hours = o.get("offlineHours")
        offline = ("unlimited" if hours is None else f"{_short(hours)}") + f" ({o['limitedBy']})" + (" *" if o.get("unchecked") else "")
        unchecked = unchecked or bool(o.get("unchecked"))
        cost = t.get("costUsd")
        sites.add_row(s["name"], s["kind"], _short(s["wave"]), s["runtime"], f"{t['bytes'] / 2**20:.1f}", _hours(t["seconds"]),
                      "-" if cost is None else f"{cost:.4f}", prestage, offline, _short(o["maxOutageHours"]))
    console.print(sites)
    for s in summary["sites"]:
        console.print(f"  runtime {s['name']}: {s['runtimeReason']}", highlight=False)
    if unchecked:
        console.print("  * credentials not declared (credential_validity_hours): not checked", highlight=False)
    for note in summary.get("notes", []):
        console.print(f"  note: {note}", highlight=False)


def print_tree(plan: StackPlan, console: Console | None = None) -> None:
    console = console or Console()
    console.print(tree(plan))
    for name, summary in edge_rollouts(plan):
        print_edge_rollout(name, summary, console)
    if plan.validation_problems:
        console.print(f"[red]{len(plan.validation_problems)} validation problem(s):[/red]")
        for p in plan.validation_problems:
            console.print(f"  [red]-[/red] {p}", highlight=False)
    else:
        console.print(f"[green]valid[/green]: {plan.kubernetes_objects_checked} Kubernetes objects checked against the {_k8s()} schema; AWS enums checked against botocore.")
    if plan.schemas is not None:
        sr = plan.schemas
        console.print(
            f"{sr.custom_resources_checked} custom resources checked against their upstream CRD schemas, "
            f"{sr.helm_releases_checked} Helm releases' values against their charts"
            + (f"; no schema held for: {', '.join(sr.unchecked)}" if sr.unchecked else ""),
            highlight=False,
        )


def _k8s() -> str:
    from gpuplane.engine.validate import KUBERNETES_VERSION

    return f"Kubernetes {KUBERNETES_VERSION}"


def to_json(plan: StackPlan, extra: dict[str, Any] | None = None) -> str:
    data = plan.to_json()
    data.update(extra or {})
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def markdown(plan: StackPlan) -> str:
    """Resources grouped by top-level component, for a pull-request comment."""
    children = children_map(plan)
    lines = [f"### gpuplane plan: `{plan.stack}`", "", f"{len(plan.resources)} resources.", ""]
    for top in children.get(None, []):
        descendants: list[RecordedResource] = []
        stack = [top.urn]
        while stack:
            for c in children.get(stack.pop(), []):
                descendants.append(c)
                stack.append(c.urn)
        counts: dict[str, int] = defaultdict(int)
        for d in descendants:
            counts[d.type] += 1
        lines.append(f"<details><summary><b>{top.name}</b> <code>{top.type}</code> — {len(descendants)} children</summary>")
        lines.append("")
        summary = top.inputs.get("gpuplane")
        if isinstance(summary, dict) and "runEstimates" in summary:
            lines += ["One run on each platform:", ""] + [f"- {x}" for x in batch_estimates(summary)] + [""]
        lines.append("| type | count |")
        lines.append("| --- | ---: |")
        lines += [f"| `{t}` | {n} |" for t, n in sorted(counts.items())]
        lines += ["", "</details>", ""]
    if plan.validation_problems:
        lines.append("**Validation problems**")
        lines += [f"- {p}" for p in plan.validation_problems]
    return "\n".join(lines) + "\n"
