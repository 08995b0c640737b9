"""``gpuplane offers``: where can I get N GPUs of a type, and at what price?

    gpuplane offers --gpu H100 --count 8 --spot --regions 'us-*,europe-*' --near-region us-central1

Every catalog offering that fits — instance/machine types with the GPU, in regions matching the
patterns, at the capacity type asked for — ranked by total $/h for ``count`` GPUs. An offering
fits when ``count`` is a whole number of its nodes (8 GPUs: one 8-GPU node or eight 1-GPU
nodes). Each row shows the nodes needed, $/h in total and per GPU, the preemption notice for
spot (catalog), and the great-circle distance to ``--near-region`` (data locality), which
breaks ties. SageMaker ``ml.*`` types serve endpoints, not clusters, and are left out unless
``--sagemaker``. Pure function ``find_offers`` plus the typer command ``offers_command``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from components.catalog import Capacity, Catalog, Region, load_catalog
from policies.resources import region_matches


class OffersError(ValueError):
    """Bad arguments; the message names the argument, the value and the choices."""


@dataclass(frozen=True)
class Offer:
    cloud: str
    instance_type: str
    service: str
    region: str
    zones: tuple[str, ...]
    accelerator: str
    gpus_per_node: int
    nodes: int
    capacity: str
    usd_per_node_hour: float
    notice_seconds: int | None
    """Preemption notice for spot capacity (None for on-demand)."""
    distance_km: float | None

    @property
    def usd_per_hour(self) -> float:
        return self.nodes * self.usd_per_node_hour

    @property
    def usd_per_gpu_hour(self) -> float:
        return self.usd_per_node_hour / self.gpus_per_node

    def to_json(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "instanceType": self.instance_type,
            "service": self.service,
            "region": self.region,
            "zones": list(self.zones),
            "accelerator": self.accelerator,
            "gpusPerNode": self.gpus_per_node,
            "nodes": self.nodes,
            "capacity": self.capacity,
            "usdPerHour": round(self.usd_per_hour, 4),
            "usdPerGpuHour": round(self.usd_per_gpu_hour, 4),
            "noticeSeconds": self.notice_seconds,
            "distanceKm": None if self.distance_km is None else round(self.distance_km, 1),
        }


def resolve_gpu(catalog: Catalog, gpu: str) -> list[str]:
    """Catalog accelerator names for ``gpu``: exact (any case), else every name it prefixes (``A100``)."""
    names = sorted(catalog.accelerators)
    exact = [n for n in names if n.lower() == gpu.lower()]
    if exact:
        return exact
    prefixed = [n for n in names if n.lower().startswith(gpu.lower())]
    if not prefixed:
        raise OffersError(f"--gpu {gpu!r} is not in the catalog. Use one of {', '.join(names)}.")
    return prefixed


def find_region(catalog: Catalog, name: str) -> Region:
    for (_, r), region in sorted(catalog.regions.items()):
        if r == name:
            return region
    raise OffersError(
        f"--near-region {name!r} is not a catalog region. Use one of {', '.join(sorted({r for _, r in catalog.regions}))}."
    )


def find_offers(
    catalog: Catalog,
    gpu: str,
    count: int = 1,
    *,
    spot: bool = False,
    regions: list[str] | None = None,
    near_region: str | None = None,
    clouds: list[str] | None = None,
    include_sagemaker: bool = False,
) -> list[Offer]:
    """Every fitting offering, cheapest total $/h first (to the cent; then nearest, then name)."""
    if count < 1:
        raise OffersError(f"--count {count} must be at least 1.")
    accelerators = set(resolve_gpu(catalog, gpu))
    near = find_region(catalog, near_region) if near_region else None
    capacity: Capacity = "spot" if spot else "on_demand"
    out: list[Offer] = []
    for (cloud, name, region), o in catalog.offerings.items():
        it = o.instance_type
        if it.accelerator not in accelerators or count % it.gpus != 0:
            continue
        if clouds and cloud not in clouds:
            continue
        if it.service == "sagemaker" and not include_sagemaker:
            continue
        if regions and not region_matches(region, regions):
            continue
        price = o.price(capacity)
        if price is None:
            continue
        here = catalog.region(cloud, region)
        distance = here.distance_km(near) if here is not None and near is not None else None
        out.append(
            Offer(
                cloud=cloud,
                instance_type=name,
                service=it.service,
                region=region,
                zones=o.zones,
                accelerator=it.accelerator,
                gpus_per_node=it.gpus,
                nodes=count // it.gpus,
                capacity=capacity,
                usd_per_node_hour=price,
                notice_seconds=catalog.notice_seconds(cloud) if spot else None,
                distance_km=distance,
            )
        )
    return sorted(
        out,
        key=lambda x: (
            round(x.usd_per_hour, 2),
            x.distance_km if x.distance_km is not None else math.inf,
            x.cloud,
            x.instance_type,
            x.region,
        ),
    )


class OffersFormat(StrEnum):
    table = "table"
    json = "json"


def render_table(offers: list[Offer], gpu: str, count: int, spot: bool, near_region: str | None) -> Table:
    title = f"{count} x {gpu} ({'spot' if spot else 'on-demand'}): {len(offers)} offering(s), cheapest first"
    table = Table(title=title)
    for col, justify in (
        ("cloud", "left"),
        ("type", "left"),
        ("region", "left"),
        ("zones", "right"),
        ("nodes", "right"),
        ("$/h", "right"),
        ("$/GPU-h", "right"),
        ("notice", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    if near_region:
        table.add_column(f"km to {near_region}", justify="right", no_wrap=True)
    for o in offers:
        row = [
            o.cloud,
            o.instance_type,
            o.region,
            str(len(o.zones)),
            f"{o.nodes} x {o.gpus_per_node}",
            f"{o.usd_per_hour:,.2f}",
            f"{o.usd_per_gpu_hour:,.3f}",
            f"{o.notice_seconds} s" if o.notice_seconds is not None else "-",
        ]
        if near_region:
            row.append(f"{o.distance_km:,.0f}" if o.distance_km is not None else "-")
        table.add_row(*row)
    return table


def offers_command(
    gpu: str = typer.Option(
        ..., "--gpu", "-g", help="Accelerator: H100, H200, A100-80GB, A100 (both sizes), L4, L40S, A10G."
    ),
    count: int = typer.Option(1, "--count", "-n", help="GPUs wanted in total (a whole number of nodes)."),
    spot: bool = typer.Option(False, "--spot", help="Spot/preemptible prices (with their notice window)."),
    regions: str | None = typer.Option(None, "--regions", help="Comma-separated region globs, e.g. 'us-*,europe-*'."),
    near_region: str | None = typer.Option(
        None, "--near-region", help="Show the distance to this region (where the data is)."
    ),
    cloud: str | None = typer.Option(None, "--cloud", help="Comma-separated clouds: aws, gcp."),
    sagemaker: bool = typer.Option(False, "--sagemaker", help="Include SageMaker ml.* instance types."),
    format: OffersFormat = typer.Option(OffersFormat.table, "--format", "-f", help="table or json."),
) -> None:
    """List every catalog offering that fits, ranked by $/h, with notice window and data-locality distance."""
    patterns = [p.strip() for p in regions.split(",") if p.strip()] if regions else None
    clouds = [c.strip() for c in cloud.split(",") if c.strip()] if cloud else None
    try:
        offers = find_offers(
            load_catalog(),
            gpu,
            count,
            spot=spot,
            regions=patterns,
            near_region=near_region,
            clouds=clouds,
            include_sagemaker=sagemaker,
        )
    except OffersError as e:
        Console(stderr=True).print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    if format is OffersFormat.json:
        typer.echo(
            json.dumps(
                {
                    "gpu": gpu,
                    "count": count,
                    "capacity": "spot" if spot else "on_demand",
                    "offers": [o.to_json() for o in offers],
                },
                indent=2,
            )
        )
        return
    console = Console(width=max(Console().width, 132))
    if not offers:
        console.print(
            f"No catalog offering has {count} x {gpu}{' on spot' if spot else ''}{f' in {regions}' if regions else ''}. Try another count, capacity or region."
        )
        return
    console.print(render_table(offers, gpu, count, spot, near_region))
