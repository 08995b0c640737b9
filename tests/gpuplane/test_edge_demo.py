"""``gpuplane edge demo`` end to end on real site processes (loopback): the bad model's rollback leaves
the non-canary sites untouched, a digest mismatch is refused, the cut-off site serves from its cache
and catches up. Also the command's bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.workloads.edge_support import Trained, trained  # noqa: F401 (a fixture)


def test_bad_flags_are_reported_together_and_nothing_runs(tmp_path: Path) -> None:
    from gpuplane.cli import app

    r = CliRunner().invoke(app, ["edge", "demo", "--sites", "2", "--model-dir", str(tmp_path / "none"), "--out",
                                 str(tmp_path / "out")])
    assert r.exit_code == 2
    err = " ".join(r.stderr.split())  # the console wraps long lines
    assert "--sites=2: at least 3" in err and f"--model-dir={tmp_path / 'none'}: no model.safetensors" in err
    assert "--data: needed with --model-dir" in err and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_edge_demo_on_real_sites(trained: Trained, tmp_path: Path) -> None:  # noqa: F811
    from gpuplane.edge.demo import EdgeDemoConfig, run_edge_demo

    out = tmp_path / "edge"
    console = Console(record=True, width=160)
    report = run_edge_demo(out, trained.model_dir, trained.data_dir, EdgeDemoConfig(sample=40), console=console)
    assert not report.failed_checks(), console.export_text()[-4000:]

    saved = json.loads((out / "edge-report.json").read_text())
    v1, v2, bad = (saved["models"][k]["sha256"] for k in ("v1-fp32", "v2-int8", "bad"))
    assert saved["models"]["v2-int8"]["bytes"] < saved["models"]["v1-fp32"]["bytes"] / 2
    bad_rollout, good_rollout = saved["rollouts"]
    assert bad_rollout["outcome"] == "rolled back" and bad_rollout["failed_wave"] == 0
    assert [g["site"] for g in bad_rollout["gates"]] == ["plant-a-1"] and not bad_rollout["gates"][0]["passed"]

    sites = {name: json.loads((out / "sites" / name / "report.json").read_text()) for name in report.sites}
    assert len(sites) == 6
    # The canary went v1 -> bad -> v1 -> v2; every other site never served the bad model.
    assert [d["sha256"] for d in sites["plant-a-1"]["digests_over_time"]] == [v1, bad, v1, v2]
    assert sites["plant-a-1"]["rollbacks"] == 1
    for name, site in sites.items():
        served = {d["sha256"] for d in site["digests_over_time"]} | {s["sha256"] for s in site["local_traffic"]["served"]}
        if name != "plant-a-1":
            assert bad not in served and site["rollbacks"] == 0, name
        assert site["final_sha256"] == v2 and site["local_traffic"]["http_errors"] == 0, name
    # The digest mismatch was refused at plant-a-2 and left it on v1.
    refused = [e for e in sites["plant-a-2"]["events"] if e["kind"] == "refused"]
    assert refused and refused[0]["sha256"] == v1 and "409" in refused[0]["detail"]
    # The cut-off site: deferred in its wave, rebooted from its cache, caught up after the link came back.
    kinds = [e["kind"] for e in sites["plant-c-2"]["events"]]
    assert kinds.index("link") < kinds.index("restart") < kinds.index("deferred") < kinds.index("catch-up")
    restart = next(e for e in sites["plant-c-2"]["events"] if e["kind"] == "restart")
    assert restart["sha256"] == v1 and "from cache" in restart["detail"]
    assert good_rollout["deferred"] == [] and any(g["site"] == "plant-c-2" and g["passed"] for g in good_rollout["gates"])
