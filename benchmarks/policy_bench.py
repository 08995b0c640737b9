"""Policy evaluation time: per resource, and for the largest reference stack and a generated one.

Prints, side by side in one run (medians of several repeats):
- the in-process analyzer path (``evaluate_policies``: Remediate + Analyze per resource,
  AnalyzeStack once) for each reference stack, and per resource;
- a generated large program (N GPU pools, endpoints, buckets with their encryption and access
  blocks, under one cluster) at two sizes, to show how evaluation scales with the graph;
- the pure rule checks alone (no protobuf round trip), so the analyzer's overhead is visible.

    .venv/bin/python benchmarks/policy_bench.py [--repeats 5] [--sizes 100,400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpuplane.engine.policy import evaluate_policies, provider_defaults_from_config, resource_views  # noqa: E402
from gpuplane.engine.runtime import ProgramRun, RecordedResource  # noqa: E402
from policies.__main__ import RULES  # noqa: E402
from policies.framework import StackRule, config_for  # noqa: E402

TAGS = {"team": "ml-platform", "cost-center": "cc-4711"}


def _urn(type_: str, name: str, parent: str | None = None) -> str:
    chain = f"{parent}${type_}" if parent else type_
    return f"urn:pulumi:bench::gpuplane::{chain}::{name}"


def generated_program(n: int) -> ProgramRun:
    """About ``n`` resources: pools with node groups, endpoints, buckets with SSE and access blocks."""
    out: list[RecordedResource] = []

    def add(
        type_: str,
        name: str,
        inputs: dict,
        parent_type: str | None = None,
        parent: str | None = None,
        deps: list[str] | None = None,
    ) -> RecordedResource:
        r = RecordedResource(
            _urn(type_, name, parent_type),
            type_,
            name,
            parent,
            not type_.startswith("gpuplane:"),
            False,
            None,
            inputs,
            dependencies=deps or [],
        )
        out.append(r)
        return r

    cluster = add(
        "gpuplane:index:KubernetesCluster",
        "k",
        {
            "gpuplane": {
                "cloud": "aws",
                "region": "us-east-1",
                "systemNodeCount": 2,
                "systemInstanceType": "m6i.large",
                "tags": TAGS,
            }
        },
    )
    i = 0
    while len(out) < n:
        pool = add(
            "gpuplane:index:GpuNodePool",
            f"pool-{i}",
            {
                "gpuplane": {
                    "cloud": "aws",
                    "region": "us-east-1",
                    "zones": ["us-east-1a"],
                    "accelerator": "L4",
                    "acceleratorsPerNode": 1,
                    "instanceType": "g6.xlarge",
                    "capacityType": "spot",
                    "minNodes": 0,
                    "maxNodes": 4,
                    "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
                    "labels": {},
                    "createsNodes": True,
                    "tags": TAGS,
                }
            },
            parent=cluster.urn,
        )
        add(
            "aws:eks/nodeGroup:NodeGroup",
            f"pool-{i}-ng",
            {
                "instanceTypes": ["g6.xlarge"],
                "capacityType": "SPOT",
                "scalingConfig": {"minSize": 0, "maxSize": 4},
                "amiType": "AL2023_x86_64_NVIDIA",
                "tags": TAGS,
                "region": "us-east-1",
            },
            "gpuplane:index:GpuNodePool",
            pool.urn,
        )
        add(
            "aws:ec2/launchTemplate:LaunchTemplate",
            f"pool-{i}-lt",
            {"metadataOptions": {"httpTokens": "required"}, "tags": TAGS},
            "gpuplane:index:GpuNodePool",
            pool.urn,
        )
        add(
            "gpuplane:index:InferenceEndpoint",
            f"ep-{i}",
            {
                "gpuplane": {
                    "platform": "knative",
                    "cloud": "aws",
                    "region": "us-east-1",
                    "accelerator": "L4",
                    "gpus": 1,
                    "minScale": 0,
                    "maxScale": 2,
                    "scaleDownDelaySeconds": 300,
                    "coldStartBudget": {"totalSeconds": 240},
                    "timeouts": {"requestTimeoutSeconds": 300, "progressDeadlineSeconds": 360},
                    "readinessPath": "/v2/health/ready",
                    "public": False,
                    "auth": "none",
                    "tags": TAGS,
                }
            },
        )
        b = add("aws:s3/bucket:Bucket", f"b-{i}", {"bucket": f"b-{i}", "region": "us-east-1", "tags": TAGS})
        add(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"b-{i}-sse",
            {"bucket": f"b-{i}", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
            deps=[b.urn],
        )
        add(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"b-{i}-pab",
            {
                "bucket": f"b-{i}",
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            deps=[b.urn],
        )
        i += 1
    return ProgramRun("gpuplane", "bench", out, {}, "urn:pulumi:bench::gpuplane::pulumi:pulumi:Stack::gpuplane-bench")


def timed(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def pure_checks(run: ProgramRun) -> None:
    views = resource_views(run.resources)
    for rule in RULES:
        cfg = config_for(rule, None)
        if isinstance(rule, StackRule):
            rule.check(views, cfg)
        else:
            for v in views:
                rule.check(v, cfg)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default="100,400")
    args = ap.parse_args()
    rows: list[tuple[str, int, float, float]] = []

    try:
        from gpuplane.engine.plan import available_stacks, plan_stack

        for stack in available_stacks():
            plan = plan_stack(stack, validate=False)
            defaults = provider_defaults_from_config(plan.config)
            t = timed(
                lambda p=plan, d=defaults: evaluate_policies(
                    p.run, None, p.stack, usage=p.usage(), provider_defaults=d
                ),
                args.repeats,
            )
            rows.append(
                (
                    f"stack {stack} (analyzer)",
                    len(plan.resources),
                    t,
                    timed(lambda p=plan: pure_checks(p.run), args.repeats),
                )
            )
    except Exception as e:  # a stack that does not plan is reported, not fatal for the benchmark
        print(f"(reference stacks skipped: {e})")

    for n in (int(s) for s in args.sizes.split(",")):
        run = generated_program(n)
        t = timed(lambda r=run: evaluate_policies(r), args.repeats)
        rows.append(
            (f"generated x{n} (analyzer)", len(run.resources), t, timed(lambda r=run: pure_checks(r), args.repeats))
        )

    print(f"policy evaluation, {len(RULES)} policies, median of {args.repeats}")
    print(
        f"{'program':32} {'resources':>9} {'analyzer s':>11} {'ms/resource':>12} {'pure checks s':>14} {'analyzer/pure':>14}"
    )
    for name, n, t, pure in rows:
        print(
            f"{name:32} {n:9d} {t:11.3f} {1000 * t / max(n, 1):12.2f} {pure:14.3f} {t / pure if pure else float('nan'):14.1f}"
        )
    gen = [r for r in rows if r[0].startswith("generated")]
    if len(gen) >= 2:
        (_, n1, t1, _), (_, n2, t2, _) = gen[0], gen[-1]
        print(f"scaling: {n2 / n1:.1f}x resources -> {t2 / t1:.1f}x time")


if __name__ == "__main__":
    main()
