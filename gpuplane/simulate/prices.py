"""Prices for the simulator, as plain inputs, with a thin adapter onto ``components.catalog``.

:class:`PriceSpec` carries the two price shapes the policies need: a whole-replica hourly price
for node-based serving (static, Knative-like, histogram keep-alive, oracle) and per-second
serverless rates (Cloud Run-like). Callers may build one by hand; :func:`price_spec` fills it
from the catalog (the one source of price facts), falling back to the REFERENCE.md §6 figures
when the catalog is not importable or lacks the row. The simulator itself never reads files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class PriceError(ValueError):
    """A price is missing or out of range; the message names what was asked and the fix."""


@dataclass(frozen=True)
class PriceSpec:
    """Prices in USD. Defaults: AWS g6.xlarge (one L4) on-demand, Cloud Run L4 (REFERENCE.md §6)."""

    usd_per_gpu_hour: float = 0.8048
    """Price of one replica (one GPU node) per hour for node-based policies."""
    gpu_usd_per_second: float = 0.0001867
    """Serverless GPU rate per GPU-second (Cloud Run L4 without zonal redundancy)."""
    cpu_usd_per_vcpu_second: float = 0.000018
    """Serverless CPU rate per vCPU-second."""
    mem_usd_per_gib_second: float = 0.000002
    """Serverless memory rate per GiB-second."""
    vcpu: float = 4.0
    """vCPUs of one serverless instance (Cloud Run's minimum with an L4 is 4)."""
    mem_gib: float = 16.0
    """Memory of one serverless instance in GiB (Cloud Run's minimum with an L4 is 16)."""
    label: str = "aws g6.xlarge (L4) on-demand / Cloud Run L4"
    """Where the figures come from, for reports."""

    def __post_init__(self) -> None:
        bad = [
            f"{k}={v}"
            for k, v in self.__dict__.items()
            if k != "label" and not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0)
        ]
        if bad:
            raise PriceError(f"PriceSpec: {', '.join(bad)} must be finite and ≥ 0")

    @property
    def serverless_usd_per_second(self) -> float:
        """One serverless instance per second: GPU + vCPU × rate + GiB × rate."""
        return (
            self.gpu_usd_per_second
            + self.vcpu * self.cpu_usd_per_vcpu_second
            + self.mem_gib * self.mem_usd_per_gib_second
        )

    @property
    def usd_per_gpu_second(self) -> float:
        return self.usd_per_gpu_hour / 3600.0


def price_spec(
    cloud: str = "aws",
    instance_type: str = "g6.xlarge",
    region: str = "us-east-1",
    capacity: str = "on_demand",
    serverless_region: str = "us-central1",
    serverless_gpu: str = "l4",
) -> PriceSpec:
    """Look a :class:`PriceSpec` up in ``components.catalog``.

    The node price is the whole-node hourly price of ``instance_type`` divided by its GPU count
    (a replica holds one GPU). Serverless rates come from the catalog's ``cloud-run`` rows for
    ``serverless_gpu`` in ``serverless_region``. Raises :class:`PriceError` naming the missing
    row; when ``components.catalog`` cannot be imported, returns the REFERENCE.md defaults for
    the default arguments and raises for any other.
    """
    try:
        from components.catalog import load_catalog
    except ImportError:
        if (cloud, instance_type, region, capacity) == ("aws", "g6.xlarge", "us-east-1", "on_demand"):
            return PriceSpec()
        raise PriceError(
            f"components.catalog is not importable, so {cloud} {instance_type} {region} {capacity} has no price. "
            "To fix: pass --usd-per-gpu-hour explicitly"
        ) from None
    cat = load_catalog()
    it = cat.instance_type(cloud, instance_type)
    if it is None:
        raise PriceError(
            f"{cloud} instance type {instance_type!r} is not in the catalog. To fix: pick a catalog type or pass --usd-per-gpu-hour"
        )
    node = cat.price(cloud, instance_type, region, capacity)  # type: ignore[arg-type]
    if node is None:
        raise PriceError(
            f"{cloud} {instance_type} has no {capacity} price in {region}. To fix: pick another region "
            f"({', '.join(cat.region_names(cloud))}) or capacity, or pass --usd-per-gpu-hour"
        )
    rates = {}
    for unit in (f"{serverless_gpu}-gpu-second", "vcpu-second", "gib-second"):
        row = cat.serverless_rate("gcp", "cloud-run", unit, serverless_region)
        if row is None:
            raise PriceError(
                f"the catalog has no Cloud Run '{unit}' rate in {serverless_region}. To fix: use us-central1 or pass the rates"
            )
        rates[unit] = row.usd
    return PriceSpec(
        usd_per_gpu_hour=node / it.gpus,
        gpu_usd_per_second=rates[f"{serverless_gpu}-gpu-second"],
        cpu_usd_per_vcpu_second=rates["vcpu-second"],
        mem_usd_per_gib_second=rates["gib-second"],
        label=f"{cloud} {instance_type} {capacity} {region} (per GPU) / Cloud Run {serverless_gpu.upper()} {serverless_region}",
    )
