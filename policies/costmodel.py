"""The cost model: every priced resource of a plan, priced from the catalog. Pure.

Input: the resources of a plan (``ResourceView``s), a usage profile and the catalog. Output: a
``CostReport`` with, per resource and for the stack, $/hour and $/month (730 h) as
min / expected / max, the basis of each figure as text, and the resources whose price is
unknown — with the reason, never as zero.

What is priced, and how:

- GPU node pools (GpuNodePool summaries; raw ``aws:eks/nodeGroup`` and ``gcp:container/nodePool``
  not made by a component), and single VMs (raw ``aws:ec2/instance`` and ``gcp:compute/instance``,
  one node, on demand unless they ask for the spot market; a type the catalog does not know is
  listed as unknown): nodes x catalog $/h of the instance type in the region at the pool's
  capacity type (GCP: host + GPUs). min = minNodes, max = maxNodes. expected: training pools
  (role ``training``, or inside a SpotTrainingCluster) run ``minNodes`` all month plus
  ``maxNodes - minNodes`` for ``trainingHoursPerMonth`` (an on-demand fallback pool inside a
  SpotTrainingCluster is expected idle above its minimum); other pools run
  ``min + expectedNodeFraction x (max - min)`` nodes all month.
- SpotTrainingCluster pools listed in its summary, when it has no GpuNodePool children.
- Cluster control planes (EKS/GKE fee, the catalog's ``cluster-hour`` rows) and system nodes
  (the instance catalog's CPU rows, else the ``system-node`` rows). Existing clusters are not priced (their owner pays for them).
- Inference endpoints: Cloud Run (per-second GPU + vCPU + memory rates while an instance is
  up), SageMaker (instance $/h). Replica-hours per day: min = minReplicas x 24; expected =
  max(minReplicas x 24, busy + busy x scaleDownDelay/3600) — every busy hour is taken to end
  with one scale-down tail, which is conservative; max = maxReplicas x 24. Knative endpoints
  run on node pools and are priced there.
- Feature stores: node-based online tiers (Bigtable, Vertex optimized) at node-hour rates;
  request-priced tiers (DynamoDB, SageMaker online store) are unknown (the usage profile has no
  request volume) unless the summary gives ``onlineStorageGib``; local/in-cluster stores cost
  nothing extra and are not listed.
- Databases (the ModelRegistry's RDS / Cloud SQL instances): instance-hours from the catalog
  (RDS ``<class>-<engine>-hour``; Cloud SQL ``db-custom`` tiers as vCPU + memory hours), doubled
  for Multi-AZ / REGIONAL, plus provisioned storage, all month (they do not scale to zero).
- Batch jobs (BatchJob summaries): the planned price of one run on the job's platform (tasks x
  (cold start + work) at its rate, components/batch_job/planner.py) x ``runsPerMonth``; a Kueue
  job runs on the cluster's pools, priced there. The summary also prices a run on every other
  platform (``runEstimates``), which ``gpuplane plan`` prints.
- Buckets: the usage profile's ``storageGib`` split evenly over the plan's buckets x the
  region's $/GiB-month.

A resource made by a priced component is not priced again (no double counting).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.catalog import HOURS_PER_MONTH, Catalog
from policies.resources import (
    ResourceView,
    dig,
    ec2_capacity,
    endpoint_facts,
    first,
    gce_capacity,
    gcp_accelerator,
    number,
    region_from_location,
    region_of,
    role_of,
)

CURRENCY = "USD"
_CLOUD_RUN_TAIL_SECONDS = 900.0
"""Cloud Run keeps an idle instance up to about 15 minutes before it scales in (approximate)."""


class UsageError(ValueError):
    """The usage profile is malformed; the message names the key and the fix."""


USAGE_KEYS: dict[str, tuple[str, float, float]] = {
    "trainingHoursPerMonth": ("training_hours_per_month", 0.0, 744.0),
    "endpointBusyHoursPerDay": ("endpoint_busy_hours_per_day", 0.0, 24.0),
    "storageGib": ("storage_gib", 0.0, math.inf),
    "expectedNodeFraction": ("expected_node_fraction", 0.0, 1.0),
    "onlineReadsPerMonth": ("online_reads_per_month", 0.0, math.inf),
    "onlineStorageGib": ("online_storage_gib", 0.0, math.inf),
    "rolloutsPerMonth": ("rollouts_per_month", 0.0, math.inf),
}
"""camelCase key -> (attribute, lowest, highest)."""


@dataclass(frozen=True)
class Usage:
    """Usage assumptions (stack config ``gpuplane:usage``); missing keys take these defaults."""

    training_hours_per_month: float = 200.0
    endpoint_busy_hours_per_day: float = 6.0
    storage_gib: float = 500.0
    expected_node_fraction: float = 0.25
    online_reads_per_month: float = 10_000_000.0
    """Online feature lookups per month (request-priced online stores: DynamoDB, Datastore)."""
    online_storage_gib: float = 5.0
    """Data kept in the online store, GiB (when the store's summary does not say)."""
    rollouts_per_month: float = 4.0
    """Models a pipeline promotes per month (each is copied to every ``replicate_to`` bucket)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Usage:
        """Parse camelCase keys; unknown keys and out-of-range values raise ``UsageError``."""
        values: dict[str, float] = {}
        for key, raw in dict(data or {}).items():
            spec = USAGE_KEYS.get(key)
            if spec is None:
                raise UsageError(f"usage profile: unknown key '{key}'. Use one of {sorted(USAGE_KEYS)}.")
            attr, lo, hi = spec
            value = number(raw) if not isinstance(raw, str) else None
            if value is None or not lo <= value <= hi:
                raise UsageError(f"usage profile: {key}={raw!r} must be a number from {lo:g} to {hi:g}.")
            values[attr] = value
        return cls(**values)

    def to_json(self) -> dict[str, float]:
        return {k: getattr(self, attr) for k, (attr, _, _) in USAGE_KEYS.items()}


@dataclass(frozen=True)
class Range:
    min: float
    expected: float
    max: float

    def __add__(self, other: Range) -> Range:
        return Range(self.min + other.min, self.expected + other.expected, self.max + other.max)

    def scale(self, k: float) -> Range:
        return Range(self.min * k, self.expected * k, self.max * k)

    def to_json(self) -> dict[str, float]:
        return {"min": round(self.min, 4), "expected": round(self.expected, 4), "max": round(self.max, 4)}


ZERO = Range(0.0, 0.0, 0.0)


@dataclass(frozen=True)
class ResourceCost:
    """The price of one resource (or one part of it, e.g. a cluster's control plane)."""

    urn: str
    type: str
    name: str
    hourly: Range | None
    """USD per hour; None when the price is unknown."""
    basis: str
    """How the figures were computed, or why the price is unknown."""
    part: str | None = None

    @property
    def monthly(self) -> Range | None:
        return None if self.hourly is None else self.hourly.scale(HOURS_PER_MONTH)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"urn": self.urn, "type": self.type, "name": self.name}
        if self.part:
            out["part"] = self.part
        if self.hourly is None:
            out["reason"] = self.basis
            return out
        out["hourly"] = self.hourly.to_json()
        out["monthly"] = self.monthly.to_json() if self.monthly else None
        out["basis"] = self.basis
        return out


@dataclass
class CostReport:
    """Per-resource and stack totals; ``unknown`` lists what could not be priced."""

    items: list[ResourceCost] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    @property
    def priced(self) -> list[ResourceCost]:
        return [i for i in self.items if i.hourly is not None]

    @property
    def unknown(self) -> list[ResourceCost]:
        return [i for i in self.items if i.hourly is None]

    @property
    def hourly(self) -> Range:
        total = ZERO
        for i in self.priced:
            total = total + i.hourly  # type: ignore[operator]
        return total

    @property
    def monthly(self) -> Range:
        return self.hourly.scale(HOURS_PER_MONTH)

    def to_json(self) -> dict[str, Any]:
        return {
            "currency": CURRENCY,
            "hours_per_month": HOURS_PER_MONTH,
            "usage": self.usage.to_json(),
            "hourly": self.hourly.to_json(),
            "monthly": self.monthly.to_json(),
            "by_resource": [i.to_json() for i in self.priced],
            "unknown": [i.to_json() for i in self.unknown],
        }


# ---------------------------------------------------------------------------------------------
# Price lookups with their basis


def _money(x: float) -> str:
    text = f"{x:,.4f}".rstrip("0").rstrip(".")
    return f"${text}"


def node_price(
    catalog: Catalog, cloud: str, instance_type: str, region: str, capacity: str
) -> tuple[float | None, str]:
    """(USD per node-hour, basis) or (None, reason)."""
    it = catalog.instance_type(cloud, instance_type)
    if it is None:
        return (
            None,
            f"{instance_type} is not a {cloud} type in the catalog (GPU types only). Add it to components/catalog/data.",
        )
    offering = catalog.offering(cloud, instance_type, region)
    if offering is None:
        return None, f"{instance_type} is not offered in {region} in the catalog."
    usd = offering.price(capacity)  # type: ignore[arg-type]
    if usd is None:
        return None, f"{instance_type} in {region} has no {capacity} price in the catalog."
    if cloud == "gcp":
        host = catalog.price_rows.get(("gcp", "machine", instance_type, region, capacity))
        gpu = catalog.price_rows.get(("gcp", "accelerator", it.accelerator, region, capacity))
        src = (
            f"host {_money(host.usd_per_hour)} + {it.gpus} x {it.accelerator} {_money(gpu.usd_per_hour)} ({gpu.source}; {gpu.fetched_at})"
            if host and gpu
            else "catalog"
        )
    else:
        row = catalog.price_rows.get(("aws", instance_type, region, capacity))
        src = f"{row.source}; {row.fetched_at}" if row else "catalog"
    return usd, f"{instance_type} {capacity.replace('_', '-')} in {region} at {_money(usd)}/h [{src}]"


def rate(catalog: Catalog, cloud: str, service: str, unit: str, region: str) -> tuple[float | None, str]:
    region = region.lower()  # GCS and BigQuery locations are upper-case (US-CENTRAL1)
    r = catalog.serverless_rate(cloud, service, unit, region)
    if r is None:
        return None, f"no catalog rate for {cloud} {service} {unit} in {region}. Add a row to serverless_prices.csv."
    return r.usd, f"{service} {unit} {r.usd:g} [{r.source}; {r.fetched_at}]"


# ---------------------------------------------------------------------------------------------
# Pricers


def _pool_cost(
    view: ResourceView,
    usage: Usage,
    catalog: Catalog,
    *,
    cloud: str | None,
    instance_type: Any,
    region: Any,
    capacity: str,
    min_nodes: float,
    max_nodes: float,
    training: bool,
    fallback: bool = False,
    part: str | None = None,
) -> ResourceCost:
    if not cloud or not isinstance(instance_type, str) or not isinstance(region, str):
        return ResourceCost(
            view.urn,
            view.type,
            view.name,
            None,
            f"pool has no known instance type / region (instanceType={instance_type!r}, region={region!r}).",
            part,
        )
    usd, basis = node_price(catalog, cloud, instance_type, region, capacity)
    if usd is None:
        return ResourceCost(view.urn, view.type, view.name, None, basis, part)
    hours = HOURS_PER_MONTH
    if fallback:
        expected_nodes = min_nodes
        how = f"on-demand fallback, expected idle above its minimum of {min_nodes:g}"
    elif training:
        expected_nodes = min_nodes + (max_nodes - min_nodes) * usage.training_hours_per_month / hours
        how = f"training: {min_nodes:g} nodes always + {max_nodes - min_nodes:g} more for {usage.training_hours_per_month:g} h/month"
    else:
        expected_nodes = min_nodes + usage.expected_node_fraction * (max_nodes - min_nodes)
        how = f"expected nodes = {min_nodes:g} + {usage.expected_node_fraction:g} x ({max_nodes:g} - {min_nodes:g})"
    hourly = Range(min_nodes * usd, expected_nodes * usd, max_nodes * usd)
    return ResourceCost(
        view.urn, view.type, view.name, hourly, f"{min_nodes:g}-{max_nodes:g} nodes x {basis}; {how}", part
    )


def _batch_cost(view: ResourceView) -> ResourceCost:
    """A BatchJob: its planned price per run (cold starts included) x runs per month, spread over the month's hours.

    min 0 (no run), expected at ``runsPerMonth``, max the same (runs are not capped). Kueue jobs on a
    cluster run on its pools, priced there: 0 here."""
    s = view.summary
    if s.get("platform") == "kueue":
        return ResourceCost(view.urn, view.type, view.name, ZERO, "kueue: its tasks run on the cluster's node pools, priced there")
    per_run, runs = number(s.get("usdPerRun")), number(s.get("runsPerMonth"))
    if per_run is None or runs is None:
        return ResourceCost(view.urn, view.type, view.name, None, "batch job has no planned price per run.")
    hourly = per_run * runs / HOURS_PER_MONTH
    est = next((e for e in s.get("runEstimates") or [] if isinstance(e, dict) and e.get("platform") == s.get("platform")), {})
    basis = f"{_money(per_run)} per run x {runs:g} runs/month ({est.get('reason', 'planned')})"
    return ResourceCost(view.urn, view.type, view.name, Range(0.0, hourly, hourly), basis)


def _replica_hours_per_day(min_r: float, max_r: float, busy: float, tail_seconds: float) -> tuple[Range, str]:
    awake = min(24.0, busy + busy * tail_seconds / 3600.0)
    expected = max(min_r * 24.0, awake if max_r >= 1 else 0.0)
    how = f"{busy:g} busy h/day + {tail_seconds:g} s scale-down tail per busy hour, min {min_r:g} / max {max_r:g} replicas"
    return Range(min_r * 24.0, expected, max_r * 24.0), how


def _endpoint_cost(
    view: ResourceView,
    usage: Usage,
    catalog: Catalog,
    *,
    kind: str,
    cloud: str,
    region: Any,
    accelerator: Any,
    gpus: float,
    vcpus: float | None,
    memory_gib: float | None,
    instance_type: Any,
    min_r: float,
    max_r: float,
    tail: float,
    zonal_redundancy: bool = False,
) -> ResourceCost:
    if not isinstance(region, str):
        return ResourceCost(view.urn, view.type, view.name, None, f"endpoint has no known region (region={region!r}).")
    if kind == "cloud-run":
        if not isinstance(accelerator, str):
            return ResourceCost(view.urn, view.type, view.name, None, "Cloud Run service has no known GPU type.")
        unit = f"{accelerator.lower()}-gpu-second" + ("-zonal-redundancy" if zonal_redundancy else "")
        parts: list[tuple[float | None, str]] = [rate(catalog, cloud, "cloud-run", unit, region)]
        if vcpus is None or memory_gib is None:
            return ResourceCost(
                view.urn,
                view.type,
                view.name,
                None,
                f"Cloud Run service without known CPU and memory limits (vcpus={vcpus}, memoryGib={memory_gib}).",
            )
        parts += [
            rate(catalog, cloud, "cloud-run", "vcpu-second", region),
            rate(catalog, cloud, "cloud-run", "gib-second", region),
        ]
        missing = [b for u, b in parts if u is None]
        if missing:
            return ResourceCost(view.urn, view.type, view.name, None, "; ".join(missing))
        g, c, m = (u for u, _ in parts)
        per_hour = 3600.0 * (gpus * g + vcpus * c + memory_gib * m)  # type: ignore[operator]
        basis = f"Cloud Run {gpus:g} x {accelerator} + {vcpus:g} vCPU + {memory_gib:g} GiB at {_money(per_hour)}/instance-hour [{parts[0][1]}]"
    else:
        if not isinstance(instance_type, str):
            return ResourceCost(view.urn, view.type, view.name, None, "SageMaker endpoint has no known instance type.")
        usd, b = node_price(catalog, "aws", instance_type, region, "on_demand")
        if usd is None:
            return ResourceCost(view.urn, view.type, view.name, None, b)
        per_hour, basis = usd, f"SageMaker {b}"
    per_day, how = _replica_hours_per_day(min_r, max_r, usage.endpoint_busy_hours_per_day, tail)
    return ResourceCost(view.urn, view.type, view.name, per_day.scale(per_hour / 24.0), f"{basis}; {how}")


def _quantity_cpu(v: Any) -> float | None:
    if isinstance(v, str) and v.endswith("m"):
        n = number(v[:-1])
        return None if n is None else n / 1000.0
    return number(v)


def _quantity_gib(v: Any) -> float | None:
    if isinstance(v, str):
        for suffix, k in (("Gi", 1.0), ("Mi", 1 / 1024), ("G", 1e9 / 2**30), ("M", 1e6 / 2**30)):
            if v.endswith(suffix):
                n = number(v[: -len(suffix)])
                return None if n is None else n * k
    n = number(v)
    return None if n is None else n / 2**30


class _Graph:
    def __init__(self, views: list[ResourceView]):
        self.views = views
        self.by_urn = {v.urn: v for v in views}

    def ancestors(self, view: ResourceView) -> list[ResourceView]:
        out, seen = [], set()
        cur = view.parent
        while cur and cur in self.by_urn and cur not in seen:
            seen.add(cur)
            out.append(self.by_urn[cur])
            cur = self.by_urn[cur].parent
        return out

    def has_component_descendant(self, view: ResourceView, component: str) -> bool:
        return any(v.component == component and view in self.ancestors(v) for v in self.views)


_PRICED_COMPONENTS = {"GpuNodePool", "KubernetesCluster", "SpotTrainingCluster", "InferenceEndpoint", "FeatureStore", "BatchJob"}


def price_resources(views: Iterable[ResourceView], usage: Usage, catalog: Catalog) -> CostReport:
    """Price every priced resource in ``views``."""
    views = list(views)
    graph = _Graph(views)
    report = CostReport(usage=usage)
    buckets = {
        v.urn
        for v in views
        if v.type in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "gcp:storage/bucket:Bucket")
    }
    for v in views:
        if v.component is None and v.urn not in buckets and any(a in _PRICED_COMPONENTS for a in v.component_ancestors):
            continue  # made by a component that is priced as a whole
        report.items.extend(_price_one(v, usage, catalog, graph, len(buckets)))
    return report


def _price_one(v: ResourceView, usage: Usage, catalog: Catalog, graph: _Graph, n_buckets: int) -> list[ResourceCost]:
    s, p, t = v.summary, v.props, v.type
    comp = v.component
    if comp == "GpuNodePool":
        if s.get("createsNodes") is False or s.get("cloud") not in ("aws", "gcp"):
            return []
        in_training_cluster = "SpotTrainingCluster" in v.component_ancestors
        training = role_of(v) == "training"
        fallback = in_training_cluster and s.get("capacityType") == "on_demand"
        return [
            _pool_cost(
                v,
                usage,
                catalog,
                cloud=s.get("cloud"),
                instance_type=s.get("instanceType"),
                region=s.get("region"),
                capacity=str(s.get("capacityType") or "on_demand"),
                min_nodes=number(s.get("minNodes")) or 0.0,
                max_nodes=number(s.get("maxNodes")) or 0.0,
                training=training,
                fallback=fallback,
            )
        ]
    if comp == "SpotTrainingCluster":
        if graph.has_component_descendant(v, "GpuNodePool"):
            return []
        out = []
        for i, pool in enumerate(s.get("pools") or []):
            if not isinstance(pool, dict):
                continue
            cap = str(pool.get("capacityType") or "spot")
            out.append(
                _pool_cost(
                    v,
                    usage,
                    catalog,
                    cloud=s.get("cloud"),
                    instance_type=pool.get("instanceType"),
                    region=first(pool, "region", default=s.get("region")),
                    capacity=cap,
                    min_nodes=number(pool.get("minNodes")) or 0.0,
                    max_nodes=number(pool.get("maxNodes")) or 0.0,
                    training=True,
                    fallback=i > 0 and cap == "on_demand",
                    part=f"pool {pool.get('name') or i}",
                )
            )
        return out
    if comp == "KubernetesCluster":
        return _cluster_cost(v, catalog)
    if comp == "BatchJob":
        return [_batch_cost(v)]
    if comp == "InferenceEndpoint":
        e = endpoint_facts(s)
        kind = e["platform"] if e["platform"] in ("cloud-run", "sagemaker") else None
        if kind is None:
            return []  # Knative: its replicas run on node pools, priced there
        tail = e["scaleDownDelaySeconds"]
        return [
            _endpoint_cost(
                v,
                usage,
                catalog,
                kind=kind,
                cloud=str(e["cloud"] or ("gcp" if kind == "cloud-run" else "aws")),
                region=e["region"],
                accelerator=e["accelerator"],
                gpus=e["gpus"] or 1.0,
                vcpus=e["vcpus"],
                memory_gib=e["memoryGib"],
                instance_type=e["instanceType"],
                min_r=e["minReplicas"] or 0.0,
                max_r=e["maxReplicas"] or 1.0,
                tail=tail if tail is not None else (_CLOUD_RUN_TAIL_SECONDS if kind == "cloud-run" else 0.0),
                zonal_redundancy=e["zonalRedundancy"],
            )
        ]
    if comp == "ModelPipeline" and s.get("replication"):
        return _replication_cost(v, usage)
    if comp == "FeatureStore":
        return _feature_store_cost(v, catalog, usage)
    if comp is not None:
        return []
    if t == "aws:eks/nodeGroup:NodeGroup":
        its = p.get("instanceTypes") or []
        cap = {"SPOT": "spot", "CAPACITY_BLOCK": "capacity_block"}.get(str(p.get("capacityType")), "on_demand")
        return [
            _pool_cost(
                v,
                usage,
                catalog,
                cloud="aws",
                instance_type=its[0] if its else None,
                region=region_of(v),
                capacity=cap,
                min_nodes=number(dig(p, "scalingConfig.minSize")) or 0.0,
                max_nodes=number(dig(p, "scalingConfig.maxSize")) or 0.0,
                training=role_of(v) == "training",
            )
        ]
    if t == "gcp:container/nodePool:NodePool":
        nc = p.get("nodeConfig") or {}
        auto = p.get("autoscaling") or {}
        mx = (
            number(first(auto, "totalMaxNodeCount", "maxNodeCount"))
            if isinstance(auto, dict) and auto
            else number(p.get("nodeCount"))
        )
        mn = number(first(auto, "totalMinNodeCount", "minNodeCount")) if isinstance(auto, dict) and auto else mx
        spot = isinstance(nc, dict) and (nc.get("spot") is True or nc.get("preemptible") is True)
        return [
            _pool_cost(
                v,
                usage,
                catalog,
                cloud="gcp",
                instance_type=nc.get("machineType") if isinstance(nc, dict) else None,
                region=region_of(v),
                capacity="spot" if spot else "on_demand",
                min_nodes=mn or 0.0,
                max_nodes=mx or 0.0,
                training=role_of(v) == "training",
            )
        ]
    if t == "aws:ec2/instance:Instance":
        return [
            _pool_cost(
                v,
                usage,
                catalog,
                cloud="aws",
                instance_type=p.get("instanceType"),
                region=region_of(v),
                capacity=ec2_capacity(p),
                min_nodes=1.0,
                max_nodes=1.0,
                training=False,
            )
        ]
    if t == "gcp:compute/instance:Instance":
        return [
            _pool_cost(
                v,
                usage,
                catalog,
                cloud="gcp",
                instance_type=p.get("machineType"),
                region=region_of(v),
                capacity=gce_capacity(p),
                min_nodes=1.0,
                max_nodes=1.0,
                training=False,
            )
        ]
    if t in ("aws:eks/cluster:Cluster", "gcp:container/cluster:Cluster"):
        cloud = "aws" if t.startswith("aws") else "gcp"
        region = region_of(v)
        usd, basis = rate(catalog, cloud, "eks" if cloud == "aws" else "gke", "cluster-hour", str(region))
        return [ResourceCost(v.urn, t, v.name, None if usd is None else Range(usd, usd, usd), basis, "control plane")]
    if t == "gcp:cloudrunv2/service:Service":
        c0 = (dig(p, "template.containers") or [{}])[0]
        lim = dig(c0, "resources.limits") or {}
        acc = gcp_accelerator(catalog, dig(p, "template.nodeSelector.accelerator"))
        if acc is None:
            return []  # CPU-only Cloud Run is outside the GPU cost model
        return [
            _endpoint_cost(
                v,
                usage,
                catalog,
                kind="cloud-run",
                cloud="gcp",
                region=region_of(v),
                accelerator=acc,
                gpus=number(lim.get("nvidia.com/gpu")) or 1.0,
                vcpus=_quantity_cpu(lim.get("cpu")),
                memory_gib=_quantity_gib(lim.get("memory")),
                instance_type=None,
                min_r=number(dig(p, "template.scaling.minInstanceCount")) or 0.0,
                max_r=number(dig(p, "template.scaling.maxInstanceCount")) or 1.0,
                tail=_CLOUD_RUN_TAIL_SECONDS,
                zonal_redundancy=p.get("gpuZonalRedundancyDisabled") is False,
            )
        ]
    if t == "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
        out = []
        for var in p.get("productionVariants") or []:
            if not isinstance(var, dict):
                continue
            mn = number(dig(var, "managedInstanceScaling.minInstanceCount"))
            mx = number(dig(var, "managedInstanceScaling.maxInstanceCount"))
            init = number(var.get("initialInstanceCount")) or 0.0
            out.append(
                _endpoint_cost(
                    v,
                    usage,
                    catalog,
                    kind="sagemaker",
                    cloud="aws",
                    region=region_of(v),
                    accelerator=None,
                    gpus=0,
                    vcpus=None,
                    memory_gib=None,
                    instance_type=var.get("instanceType"),
                    min_r=init if mn is None else mn,
                    max_r=max(init, mx or 0.0),
                    tail=0.0,
                )
            )
        return out
    if t in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "gcp:storage/bucket:Bucket"):
        cloud = "aws" if t.startswith("aws") else "gcp"
        region = region_of(v)
        share = usage.storage_gib / max(1, n_buckets)
        if not isinstance(region, str):
            return [ResourceCost(v.urn, t, v.name, None, "bucket has no known region.")]
        usd, basis = rate(catalog, cloud, "s3" if cloud == "aws" else "gcs", "gib-month", region)
        if usd is None:
            return [ResourceCost(v.urn, t, v.name, None, basis)]
        hourly = share * usd / HOURS_PER_MONTH
        return [
            ResourceCost(
                v.urn,
                t,
                v.name,
                Range(hourly, hourly, hourly),
                f"{share:g} GiB (storageGib {usage.storage_gib:g} / {n_buckets} buckets) x {basis} per GiB-month",
            )
        ]
    if t == "aws:rds/instance:Instance":
        return [_rds_cost(v, catalog)]
    if t == "gcp:sql/databaseInstance:DatabaseInstance":
        return [_cloud_sql_cost(v, catalog)]
    if t == "aws:dynamodb/table:Table":
        return [
            ResourceCost(
                v.urn,
                t,
                v.name,
                None,
                "DynamoDB is priced per request and GiB stored; the usage profile has no request volume.",
            )
        ]
    if t == "gcp:vertex/aiFeatureOnlineStore:AiFeatureOnlineStore":
        return _vertex_store_cost(v, catalog, p, region_of(v))
    return []


def _replication_cost(v: ResourceView, usage: Usage) -> list[ResourceCost]:
    """Train here, serve there: each promoted model copied to another cloud's bucket (egress per rollout, from the plan)."""
    out = []
    for r in v.summary.get("replication") or []:
        if not isinstance(r, dict):
            continue
        per = number(r.get("usdPerRollout")) or 0.0
        h = per * usage.rollouts_per_month / HOURS_PER_MONTH
        basis = (f"{usage.rollouts_per_month:g} rollouts/month (usage rolloutsPerMonth) x {number(r.get('gibPerRollout')) or 0:g} GiB x "
                 f"${number(r.get('usdPerGib')) or 0:g}/GiB {r.get('scope')} egress to {r.get('url')} ({r.get('cloud')} {r.get('region')}), "
                 f"{number(r.get('transferSeconds')) or 0:g} s per copy; {r.get('egressSource')}")
        out.append(ResourceCost(v.urn, v.type, v.name, Range(h, h, h), basis, f"replication to {r.get('url')}"))
    return out


def _rds_cost(v: ResourceView, catalog: Catalog) -> ResourceCost:
    """An RDS instance: instance-hours (x2 Multi-AZ) plus provisioned gp3 storage, all month."""
    p = v.props
    region = str(region_of(v))
    cls, engine = p.get("instanceClass"), p.get("engine")
    usd, basis = rate(catalog, "aws", "rds", f"{cls}-{engine}-hour", region)
    if usd is None:
        return ResourceCost(v.urn, v.type, v.name, None, basis, "database")
    gib = number(p.get("allocatedStorage")) or 0.0
    disk_usd, disk_basis = rate(catalog, "aws", "rds", f"{p.get('storageType') or 'gp3'}-gib-month", region)
    if disk_usd is None:
        return ResourceCost(v.urn, v.type, v.name, None, disk_basis, "database")
    copies = 2.0 if p.get("multiAz") is True else 1.0
    h = copies * (usd + gib * disk_usd / HOURS_PER_MONTH)
    return ResourceCost(v.urn, v.type, v.name, Range(h, h, h), f"{copies:g} x ({basis} + {gib:g} GiB x {disk_basis} per GiB-month)", "database")


def _cloud_sql_cost(v: ResourceView, catalog: Catalog) -> ResourceCost:
    """A Cloud SQL instance: a db-custom-<vCPU>-<MiB> tier's vCPU and memory hours (x2 REGIONAL) plus SSD."""
    import re

    p = v.props
    region = str(region_of(v))
    tier = str(dig(p, "settings.tier") or "")
    m = re.fullmatch(r"db-custom-(\d+)-(\d+)", tier)
    if m is None:
        return ResourceCost(v.urn, v.type, v.name, None, f"Cloud SQL tier {tier!r} is not priced (only db-custom-<vCPU>-<MiB> tiers are).", "database")
    vcpus, mem_gib = float(m.group(1)), int(m.group(2)) / 1024
    cpu_usd, cpu_basis = rate(catalog, "gcp", "cloud-sql", "vcpu-hour", region)
    mem_usd, mem_basis = rate(catalog, "gcp", "cloud-sql", "memory-gib-hour", region)
    disk_usd, disk_basis = rate(catalog, "gcp", "cloud-sql", "ssd-gib-month", region)
    missing = next((b for u, b in ((cpu_usd, cpu_basis), (mem_usd, mem_basis), (disk_usd, disk_basis)) if u is None), None)
    if missing is not None or cpu_usd is None or mem_usd is None or disk_usd is None:
        return ResourceCost(v.urn, v.type, v.name, None, str(missing), "database")
    gib = number(dig(p, "settings.diskSize")) or 10.0
    copies = 2.0 if dig(p, "settings.availabilityType") == "REGIONAL" else 1.0
    h = copies * (vcpus * cpu_usd + mem_gib * mem_usd + gib * disk_usd / HOURS_PER_MONTH)
    return ResourceCost(
        v.urn, v.type, v.name, Range(h, h, h),
        f"{copies:g} x ({vcpus:g} vCPU x {cpu_basis} + {mem_gib:g} GiB x {mem_basis} + {gib:g} GiB x {disk_basis} per GiB-month)", "database",
    )


def _cluster_cost(v: ResourceView, catalog: Catalog) -> list[ResourceCost]:
    s = v.summary
    cloud, region = s.get("cloud"), s.get("region")
    if cloud not in ("aws", "gcp"):
        return []
    region = str(region)
    usd, basis = rate(catalog, cloud, "eks" if cloud == "aws" else "gke", "cluster-hour", region)
    out = [ResourceCost(v.urn, v.type, v.name, None if usd is None else Range(usd, usd, usd), basis, "control plane")]
    n = number(s.get("systemNodeCount")) or 0.0
    it = s.get("systemInstanceType")
    if n > 0:
        if isinstance(it, str) and catalog.price(cloud, it, region) is not None:
            usd, basis = node_price(catalog, cloud, it, region, "on_demand")
        else:
            usd, basis = rate(catalog, cloud, "system-node", f"{it}-hour", region)
        out.append(
            ResourceCost(
                v.urn,
                v.type,
                v.name,
                None if usd is None else Range(n * usd, n * usd, n * usd),
                f"{n:g} x {basis}" if usd is not None else basis,
                "system nodes",
            )
        )
    return out


def _feature_store_cost(v: ResourceView, catalog: Catalog, usage: Usage) -> list[ResourceCost]:
    s = v.summary
    online = str(s.get("online") or "")
    cloud, region = str(s.get("cloud") or ""), s.get("region")
    if online in ("", "sqlite", "redis", "local", "none") or cloud not in ("aws", "gcp"):
        return []
    region = str(region)
    nodes = number(s.get("onlineNodes")) or 1.0
    if online in ("bigtable", "vertex-bigtable"):
        usd, basis = rate(catalog, "gcp", "bigtable", "node-hour", region)
    elif online.startswith("vertex"):
        usd, basis = rate(catalog, "gcp", "vertex-feature-store", "optimized-node-hour", region)
    else:
        # Request-priced stores: storage x GiB-month + reads x per-million rate (writes from
        # materialisation are small next to reads for a serving store and are not priced).
        gib = number(s.get("onlineStorageGib"))
        gib = usage.online_storage_gib if gib is None else gib
        service = {"dynamodb": "dynamodb", "datastore": "datastore"}.get(online, "sagemaker-feature-store")
        store_cloud = "gcp" if online == "datastore" else "aws"
        unit = "online-gib-month" if service == "sagemaker-feature-store" else "gib-month"
        usd, basis = rate(catalog, store_cloud, service, unit, region)
        if usd is None:
            return [ResourceCost(v.urn, v.type, v.name, None, basis, "online store")]
        reads_usd, reads_basis = rate(catalog, store_cloud, service, "read-million", region)
        if reads_usd is None:
            return [ResourceCost(v.urn, v.type, v.name, None, reads_basis, "online store")]
        millions = usage.online_reads_per_month / 1e6
        h = (gib * usd + millions * reads_usd) / HOURS_PER_MONTH
        return [
            ResourceCost(
                v.urn,
                v.type,
                v.name,
                Range(h, h, h),
                f"{gib:g} GiB x {basis} per GiB-month + {millions:g} M reads (onlineReadsPerMonth) x {reads_basis} per million (approximate)",
                "online store",
            )
        ]
    if usd is None:
        return [ResourceCost(v.urn, v.type, v.name, None, basis, "online store")]
    return [
        ResourceCost(
            v.urn,
            v.type,
            v.name,
            Range(nodes * usd, nodes * usd, nodes * usd),
            f"{nodes:g} nodes x {basis} (approximate)",
            "online store",
        )
    ]


def _vertex_store_cost(v: ResourceView, catalog: Catalog, p: Mapping[str, Any], region: Any) -> list[ResourceCost]:
    region = region_from_location(region) or str(region)
    if p.get("optimized") is not None:
        usd, basis = rate(catalog, "gcp", "vertex-feature-store", "optimized-node-hour", str(region))
        lo = hi = 1.0
    else:
        usd, basis = rate(catalog, "gcp", "bigtable", "node-hour", str(region))
        lo = number(dig(p, "bigtable.autoScaling.minNodeCount")) or 1.0
        hi = number(dig(p, "bigtable.autoScaling.maxNodeCount")) or lo
    if usd is None:
        return [ResourceCost(v.urn, v.type, v.name, None, basis)]
    return [
        ResourceCost(
            v.urn, v.type, v.name, Range(lo * usd, lo * usd, hi * usd), f"{lo:g}-{hi:g} nodes x {basis} (approximate)"
        )
    ]
