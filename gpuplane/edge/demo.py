"""``gpuplane edge demo``: simulated edge sites on loopback, a bad model rolled back, a good one rolled out.

The scenario, on N sites (default 6 in 3 groups) started with the fp32 export of the reference model:

1. Roll out a bad model (weights perturbed): the canary's gate (top-k agreement with the cloud
   PyTorch model on the held-out sample) fails at wave 0, the canary goes back to the fp32 model
   from its cache, the rollout stops; every other site never reloaded and serves the same digest.
2. Send one site a model whose digest does not match its bytes: refused (409), model unchanged.
3. Roll out the int8 model in waves (canary, then 50 % and 100 % of the fleet). Before wave 1 one
   site of the last wave loses its link (the controller cannot reach it) and reboots while cut off:
   it comes back serving the fp32 model from its cache, its local clients are answered throughout
   (except while the process restarts), its wave defers it; after the last wave its link comes back
   and the controller catches it up to the int8 model, gated like the others.

Local traffic goes to every site all along; the demo checks that no request failed during the hot
reloads. Output under ``out``: ``edge-report.json`` (everything), ``sites/NAME/report.json`` (one per
site: its events, model digest over time, gate figures, rollbacks, local traffic) and the site logs.
Returns the report; ``report.failed_checks()`` is empty when every claim above held.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gpuplane.demo.procs import Processes
from gpuplane.edge.fleet import Fleet, LocalTraffic, Models, prepare_models, site_names
from gpuplane.edge.rollout import Controller, Gate, ModelRef, Policy, RolloutResult, Sample


@dataclass(frozen=True)
class EdgeDemoConfig:
    sites: int = 6
    groups: int = 3
    sample: int = 60
    """Held-out histories each gate sends to a site."""
    percentages: tuple[float, ...] = (50.0, 100.0)
    max_unavailable_percent: float = 50.0
    gate: Gate = field(default_factory=Gate)
    seed: int = 0
    eval_fraction: float = 0.1
    """Share of users held out in training (the training default): the sample comes from them."""


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class EdgeReport:
    out_dir: str
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    sites: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    wall_seconds: float = 0.0

    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append(Check(name, bool(passed), detail))


def _rollout_json(r: RolloutResult) -> dict[str, Any]:
    return {"model": asdict(r.model), "outcome": r.outcome, "waves": r.waves, "failed_wave": r.failed_wave,
            "rolled_back": r.rolled_back, "rollback_failed": r.rollback_failed, "deferred": list(r.deferred), "gates": r.gates}


def _health_all(ctl: Controller) -> dict[str, dict[str, Any]]:
    return {name: link.health() for name, link in ctl.links.items() if not link.cut}


def run_edge_demo(out: Path, model_dir: Path, data_dir: Path, cfg: EdgeDemoConfig = EdgeDemoConfig(),
                  console: Console | None = None) -> EdgeReport:
    from workloads.training.data import load_dataset
    from workloads.training.onnx_export import load_reference, reference_top_k

    console = console or Console()
    t_start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    report = EdgeReport(str(out))
    block = int(json.loads((model_dir / "config.json").read_text())["block_size"])
    held = load_dataset(data_dir, block, cfg.eval_fraction, 5).eval_histories.numpy()  # (E, T)
    if held.shape[0] < cfg.sample + 10:
        raise ValueError(f"{data_dir} has {held.shape[0]} held-out histories; the demo needs {cfg.sample + 10}")
    gate_rows, local_rows = held[: cfg.sample], held[cfg.sample :]

    def say(text: str) -> None:
        console.print(f"[dim]{time.monotonic() - t_start:5.1f} s[/dim]  {text}", highlight=False)

    say(f"exporting {model_dir} to ONNX (fp32, int8) and making a bad model ...")
    models: Models = prepare_models(model_dir, out / "models", held[: max(cfg.sample, 300)], k=cfg.gate.k, seed=cfg.seed)
    for m in (models.current, models.new, models.bad):
        report.models[m.label] = {"sha256": m.sha256, "uri": m.uri, "bytes": models.sizes[m.label],
                                  f"export_top_{cfg.gate.k}_agreement": models.export_agreement[m.label]}
    labels = {m.sha256: m.label for m in (models.current, models.new, models.bad)}
    sample = Sample.of(gate_rows, reference_top_k(load_reference(model_dir), gate_rows, cfg.gate.k))

    names = site_names(cfg.sites, cfg.groups)
    policy = Policy(canary=(names[0][0],), percentages=cfg.percentages, max_unavailable_percent=cfg.max_unavailable_percent,
                    gate=cfg.gate)
    with Processes() as procs:
        fleet = Fleet(procs, out / "sites", names, models.current, sys.executable)
        say(f"starting {cfg.sites} sites in {cfg.groups} groups on loopback ...")
        fleet.start()
        say("sites ready; rolling out the bad model")
        links = fleet.links()
        ctl = Controller(links, sample)
        ctl.observe("start", models.current.label)
        previous = {name: models.current for name, _ in names}
        local = LocalTraffic({s.name: s.url for s in fleet.sites.values()},
                             [[int(v) for v in row if v] for row in local_rows], t0=ctl.t0)
        with local:
            # 1. The bad model: rejected at the canary, rolled back, nobody else touched.
            before = _health_all(ctl)
            bad = ctl.rollout(models.bad, policy, previous)
            report.rollouts.append(_rollout_json(bad))
            after = _health_all(ctl)
            canary = policy.canary[0]
            say(f"rollout of {models.bad.label}: {bad.outcome} at wave {bad.failed_wave}")
            report.check("bad model rejected at the first wave and rolled back",
                         bad.outcome == "rolled back" and bad.failed_wave == 0 and bad.rolled_back == [canary]
                         and after[canary]["model"]["sha256"] == models.current.sha256,
                         f"outcome {bad.outcome}, failed wave {bad.failed_wave}, rolled back {bad.rolled_back}, "
                         f"canary agreement {bad.gates[0].get('agreement', float('nan')) if bad.gates else float('nan'):.3f}")
            untouched = [n for n, _ in names if n != canary and after[n]["model"]["sha256"] == before[n]["model"]["sha256"]
                         and after[n]["reloads"] == before[n]["reloads"]]
            report.check("non-canary sites untouched by the bad rollout", len(untouched) == cfg.sites - 1,
                         f"{len(untouched)}/{cfg.sites - 1} kept digest {models.current.sha256[:12]} with no reload")

            # 2. A digest that does not match the bytes.
            victim = names[1][0]
            wrong = ModelRef(models.new.uri, models.current.sha256[::-1], "wrong-digest")
            code, body = ctl.links[victim].load(wrong)
            ctl.note(victim, "refused", body.get("sha256"), f"wrong digest: {code} {body.get('error', '')[:80]}")
            kept = ctl.links[victim].health()["model"]["sha256"]
            report.check("digest mismatch refused, model unchanged", code == 409 and kept == models.current.sha256,
                         f"HTTP {code}; {victim} serves {labels.get(kept, kept[:12])}")

            # 3. The good model, with a site cut off mid-rollout.
            cut = names[-1][0]
            during: dict[str, Any] = {}

            def before_wave(i: int, wave: list[str]) -> None:
                if i != 1:
                    return
                link = ctl.links[cut]
                link.cut = True
                ctl.note(cut, "link", ctl.records[cut].sha256, "link down")
                health = fleet.restart(cut)  # reboots while offline: comes back from its cache
                ctl.note(cut, "restart", health["model"]["sha256"], f"rebooted offline, model from {health['model']['source']}")
                during.update(source=health["model"]["source"], sha=health["model"]["sha256"],
                              ok=local.by_site[cut].ok, seen=len(local.by_site[cut].served))

            good = ctl.rollout(models.new, policy, previous, before_wave=before_wave)
            say(f"rollout of {models.new.label}: {good.outcome}; waves {good.waves}; deferred {good.deferred}")
            time.sleep(0.3)  # local clients keep using the cut-off site
            traffic = local.by_site[cut]
            served_cut = {s for _, s in traffic.served[max(0, during.get("seen", 1) - 1):]}
            ok_cut = traffic.ok - during.get("ok", 0)
            ctl.links[cut].cut = False
            ctl.note(cut, "link", ctl.records[cut].sha256, "link back")
            caught = ctl.catch_up(good, policy, previous)
            say(f"{cut}'s link is back: caught up {caught}")
            report.rollouts.append(_rollout_json(good))
            final = _health_all(ctl)
            report.check("good model rolled out to every reachable site in waves",
                         good.outcome == "completed" and all(g["passed"] for g in good.gates)
                         and all(final[n]["model"]["sha256"] == models.new.sha256 for n, _ in names),
                         f"waves {good.waves}, {sum(g['passed'] for g in good.gates)}/{len(good.gates)} gates passed")
            report.check("cut-off site served the old model from its cache while offline",
                         during.get("source") == "cache" and served_cut == {models.current.sha256} and ok_cut > 0,
                         f"{cut} restarted from {during.get('source')}, answered {ok_cut} local requests with "
                         f"{sorted(labels.get(s, s[:12]) for s in served_cut)}")
            report.check("cut-off site caught up after reconnecting", caught == [cut]
                         and final[cut]["model"]["sha256"] == models.new.sha256,
                         f"caught up {caught}; {cut} serves {labels.get(final[cut]['model']['sha256'], '?')}")
        errors = {n: t.http_errors for n, t in local.by_site.items() if t.http_errors}
        down = {n: t.down for n, t in local.by_site.items() if t.down}
        report.check("no local request failed during hot reloads", not errors and set(down) <= {cut},
                     f"{sum(t.ok for t in local.by_site.values())} answered; HTTP errors {errors or 0}; "
                     f"refused connections only while {cut} rebooted: {down or 0}")
        for name, rec in ctl.records.items():
            traffic = local.by_site[name]
            gates = [g for r in report.rollouts for g in r["gates"] if g["site"] == name]
            report.sites[name] = {
                "site": name, "group": rec.group, "url": rec.url, "final_sha256": rec.sha256,
                "digests_over_time": _digests(rec.events, labels), "rollbacks": rec.rollbacks,
                "gates": gates, "events": [asdict(e) for e in rec.events],
                "local_traffic": {"ok": traffic.ok, "http_errors": traffic.http_errors, "down": traffic.down,
                                  "served": [{"t_s": t, "sha256": s, "model": labels.get(s)} for t, s in traffic.served]},
            }
            path = out / "sites" / name / "report.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report.sites[name], indent=2) + "\n")
        for link in links:
            link.close()
    report.wall_seconds = time.monotonic() - t_start
    (out / "edge-report.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    print_report(report, console)
    return report


def _digests(events: list[Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The model a site served over time: one entry per change (with the event that caused it)."""
    out: list[dict[str, Any]] = []
    for e in events:
        if e.sha256 and (not out or out[-1]["sha256"] != e.sha256):
            out.append({"t_s": e.t_s, "sha256": e.sha256, "model": labels.get(e.sha256, e.sha256[:12]), "by": e.kind})
    return out


def print_report(report: EdgeReport, console: Console) -> None:
    models = Table(title="models", box=None, header_style="bold")
    for col in ("model", "sha256", "bytes", "top-10 agreement at export"):
        models.add_column(col)
    for label, m in report.models.items():
        agree = next(v for k, v in m.items() if k.startswith("export_top_"))
        models.add_row(label, m["sha256"][:12], f"{m['bytes']:,}", f"{agree:.4f}")
    console.print(models)
    sites = Table(title="sites", box=None, header_style="bold")
    for col in ("site", "group", "model over time", "gates (on-device p99 ms / agreement)", "rollbacks", "local ok / err"):
        sites.add_column(col)
    for name, s in report.sites.items():
        over = " → ".join(f"{d['model']}" + (f" ({d['by']})" if d["by"] in ("rollback", "restart") else "")
                          for d in s["digests_over_time"])
        gates = "; ".join(f"{g['p99_ms']:.1f}/{g['agreement']:.3f}{'' if g['passed'] else ' FAIL'}" if "p99_ms" in g
                          else "refused" for g in s["gates"]) or "-"
        lt = s["local_traffic"]
        sites.add_row(name, s["group"], over, gates, str(s["rollbacks"]), f"{lt['ok']} / {lt['http_errors']}")
    console.print(sites)
    for c in report.checks:
        mark = "[green]✓[/green]" if c.passed else "[red]✗[/red]"
        console.print(f"{mark} {c.name}: {c.detail}", highlight=False)
    console.print(f"report: {Path(report.out_dir) / 'edge-report.json'} ({report.wall_seconds:.1f} s)", highlight=False)
