"""Rules over gpuplane's GpuNodePool, as a team writes them against the component's properties.

A gpuplane component registers one input, ``gpuplane``: the component's plan in camelCase
(``GpuNodePool``: ``capacityType``, ``accelerator``, ``acceleratorsPerNode``, ``instanceType``,
``minNodes``, ``maxNodes``, ``role``, ``tags``, ...). A policy therefore reads
``args.props["gpuplane"]["capacityType"]``, never ``args.props["capacityType"]`` or the
snake_case argument name ``capacity_type``. The resource type is ``gpuplane:index:<ClassName>``.
Numbers arrive as floats (Pulumi's property values), so compare them as numbers.
"""

from __future__ import annotations

from typing import Any

GPU_NODE_POOL = "gpuplane:index:GpuNodePool"


def on_demand_gpus_bounded(args: Any, report_violation: Any) -> None:
    """Report an on-demand GpuNodePool that can grow past ``maxOnDemandGpus`` GPUs (spot pools pass)."""
    if args.resource_type != GPU_NODE_POOL:
        return
    pool = args.props.get("gpuplane") or {}
    if pool.get("capacityType") != "on_demand":
        return
    limit = int(args.get_config()["maxOnDemandGpus"])
    gpus = int(pool.get("acceleratorsPerNode") or 0) * int(pool.get("maxNodes") or 0)
    if gpus > limit:
        report_violation(
            f"GpuNodePool '{args.name}' is on-demand and can grow to {gpus} {pool.get('accelerator')} GPUs "
            f"({int(pool['maxNodes'])} nodes x {int(pool['acceleratorsPerNode'])}); on-demand capacity is capped "
            f"at {limit} GPUs per pool. Set capacityType: spot, or lower maxNodes to "
            f"{limit // max(1, int(pool['acceleratorsPerNode']))}."
        )
