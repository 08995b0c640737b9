"""Server-side dry run of a planned stack against a sandbox (used by test_server_dry_run.py).

For one reference stack: plan it in-process (``gpuplane.engine.plan.plan_stack``), take every
Kubernetes object and custom resource it records and every object its Helm releases render from
the chart archives (``gpuplane.engine.manifests``), then on the sandbox:

1. install the CRDs for real: every chart archive's CRDs rendered with default values, the CRDs
   pinned under ``gpuplane/schemas`` that no chart carries, then the stack's own releases' CRDs
   (last wins); conversion webhooks are switched off (no webhook runs in a sandbox);
2. create the stack's namespaces for real (and those any object names);
3. server-side apply every other object with ``dryRun=All`` and collect what the API server
   rejects, what it drops from what was sent (pruned), and its warnings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpuplane.engine import manifests
from gpuplane.engine.plan import StackPlan
from gpuplane.engine.schemas import HELM_RELEASE_TYPE
from tests.engine.kubeapi import KubeAPI

REPO = Path(__file__).resolve().parents[2]
_DEFAULT_VALUES = {"karpenter": {"settings": {"clusterName": "sandbox"}}}
"""Values a chart ``required``s before it renders at all."""


def charts_dir() -> Path | None:
    """``$GPUPLANE_CHARTS_DIR``, else the first ``shared/charts`` folder beside the clone or above it
    (``../shared/charts`` for a clone in the workspace root, ``../../shared/charts`` for a worktree)."""
    import os

    if os.environ.get("GPUPLANE_CHARTS_DIR"):
        return Path(os.environ["GPUPLANE_CHARTS_DIR"])
    for parent in REPO.parents:
        if (parent / "shared" / "charts").is_dir():
            return parent / "shared" / "charts"
    return None


@dataclass
class DryRunReport:
    stack: str
    objects: int = 0
    applied: int = 0
    rejected: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    render_errors: list[str] = field(default_factory=list)
    crds: int = 0
    seconds: float = 0.0

    def problems(self) -> list[str]:
        return self.render_errors + self.rejected + self.pruned


def chart_default_crds(charts: Path) -> dict[str, dict[str, Any]]:
    """Every CRD the archives in ``charts`` install with default values, by name."""
    out: dict[str, dict[str, Any]] = {}
    for archive in sorted(charts.glob("*.tgz")):
        name = archive.name.rsplit("-", 1)[0]
        for body in manifests.render_chart(archive, "crds", name, _DEFAULT_VALUES.get(name, {})):
            if body.get("kind") == "CustomResourceDefinition":
                out[body["metadata"]["name"]] = body
    return out


def _served(crd: dict[str, Any]) -> set[tuple[str, str]]:
    spec = crd["spec"]
    return {(f"{spec['group']}/{v['name']}", spec["names"]["kind"]) for v in spec["versions"] if v.get("served")}


def install_crds(api: KubeAPI, crds: dict[str, dict[str, Any]]) -> list[str]:
    """Apply the CRDs for real and wait until they are served; the problems, if any."""
    problems = []
    wanted: set[tuple[str, str]] = set()
    for name, crd in crds.items():
        res = api.apply(manifests.without_conversion_webhook(crd), dry_run=False)
        if not res.ok:
            problems.append(f"CRD {name}: {res.status} {res.message()}")
        else:
            wanted |= _served(crd)
    missing = api.wait_served(wanted)
    problems += [f"CRD for {av} {kind} not served after 60 s" for av, kind in sorted(missing)]
    return problems


def stack_objects(plan: StackPlan, charts: Path, api_versions: set[str]) -> tuple[list[manifests.KubeObject], list[str]]:
    objs = manifests.recorded_objects(plan.resources)
    errors = []
    for r in plan.resources:
        if r.type == HELM_RELEASE_TYPE:
            try:
                objs += manifests.release_objects(r, charts, api_versions=api_versions)
            except (FileNotFoundError, RuntimeError) as e:
                errors.append(str(e))
    return objs, errors


def base_crds(charts: Path) -> dict[str, dict[str, Any]]:
    """The charts' CRDs with default values, plus the pinned ones no chart carries."""
    crds = chart_default_crds(charts)
    crds.update({c["metadata"]["name"]: c for c in manifests.pinned_crds() if c["metadata"]["name"] not in crds})
    return crds


def dry_run_stack(plan: StackPlan, api: KubeAPI, installed: dict[str, dict[str, Any]], charts: Path) -> DryRunReport:
    """Dry-run ``plan``'s objects; ``installed`` (the CRDs on the server, by name) is updated with the
    stack's own CRDs where they differ."""
    started = time.perf_counter()
    report = DryRunReport(plan.stack)
    api_versions = {f"{c['spec']['group']}/{v['name']}" for c in installed.values() for v in c["spec"]["versions"]}
    objs, report.render_errors = stack_objects(plan, charts, api_versions)
    own = {o.name: o.body for o in objs if o.kind == "CustomResourceDefinition"}
    changed = {n: b for n, b in own.items() if installed.get(n) != b}
    report.crds = len(own)
    report.rejected += install_crds(api, changed)
    installed.update(changed)
    report.objects = len(objs)

    namespaces = [o for o in objs if o.kind == "Namespace"]
    named = {o.namespace for o in objs if o.namespace} - {o.name for o in namespaces}
    ns_bodies = [(o.source, o.body) for o in namespaces] + [
        ("(named by objects)", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}) for n in sorted(named)]
    for source, body in ns_bodies:
        _check(api, manifests.KubeObject(source, body), report, dry_run=False)
    for o in objs:
        if o.kind in ("Namespace", "CustomResourceDefinition"):
            continue
        _check(api, o, report, dry_run=True)
    report.seconds = time.perf_counter() - started
    return report


def _check(api: KubeAPI, obj: manifests.KubeObject, report: DryRunReport, *, dry_run: bool) -> None:
    res = api.apply(obj.body, dry_run=dry_run)
    if not res.ok:
        report.rejected.append(f"{obj.label()}: rejected ({res.status}): {res.message()}")
        return
    report.applied += 1
    dropped = manifests.dropped_fields(api.as_sent(obj.body), res.body)
    if dropped:
        report.pruned.append(f"{obj.label()}: dropped {', '.join(dropped)}")
    report.warnings += [f"{obj.label()}: {w}" for w in res.warnings]
