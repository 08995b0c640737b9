"""The demo's edge leg: ``gpuplane edge demo`` (gpuplane/edge/demo.py) on the model the training step
exported and the data it was trained on, into ``OUT/edge``.

Six simulated sites on loopback serve the ONNX export with onnxruntime; a bad model is rejected at
the canary and rolled back, the int8 model goes out in waves with one site cut off and catching
up. The step fails when any of the edge demo's checks fails (each is named in the summary).
"""

from __future__ import annotations

from gpuplane.demo.steps import Context, Skip, StepFailed, have


def step_edge(ctx: Context) -> str:
    if not have("torch") or not have("onnxruntime") or not have("onnxscript"):
        raise Skip("torch, onnxscript and onnxruntime are needed (pip install 'gpuplane[workloads]')")
    ctx.need("data", "training")
    from gpuplane.edge.demo import EdgeDemoConfig, run_edge_demo

    ctx.progress("edge: exporting to ONNX, starting 6 sites, rolling out in gated waves")
    report = run_edge_demo(ctx.out / "edge", ctx.model_dir, ctx.data_dir, EdgeDemoConfig(seed=ctx.cfg.seed),
                           console=ctx.console)
    failed = report.failed_checks()
    if failed:
        raise StepFailed("; ".join(f"{c.name}: {c.detail}" for c in failed) + f" (report: {ctx.out / 'edge'})")
    bad, good = report.rollouts
    int8, fp32 = report.models["v2-int8"], report.models["v1-fp32"]
    return (f"bad model rolled back at wave {bad['failed_wave']} (canary agreement "
            f"{bad['gates'][0].get('agreement', 0):.2f}); int8 ({int8['bytes']:,} B vs {fp32['bytes']:,} B fp32) "
            f"out in {len(good['waves'])} waves, {sum(g['passed'] for g in good['gates'])} gates passed; "
            f"{len(report.checks)} checks ok in {report.wall_seconds:.0f} s")
