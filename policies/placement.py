"""Placement policies: data residency, data locality, catalog offerings, compact placement.

- ``allowed-regions``: every regional resource (component summaries, and cloud resources
  including buckets and feature stores) is in an allowed region (glob patterns) and an allowed
  jurisdiction (``us``, ``eu``, ``apac`` from the catalog; GCS multi-regions ``US``/``EU``/
  ``ASIA`` map to theirs).
- ``training-data-colocated`` (stack): training (SpotTrainingCluster, TrainingJob) runs in the
  region of its data bucket (``dataUrl``) and checkpoint bucket. Bucket regions come from the
  buckets in the plan, or from ``bucketRegions`` in the config for buckets made elsewhere.
- ``gpu-offered-in-region``: the requested instance/machine type is offered in the chosen
  region and zones, per the catalog (Cloud Run GPUs: the catalog has a rate for the region).
- ``multinode-compact-placement``: a training pool that can hold more than one node uses
  compact placement, and EFA where the instance type has it (AWS).
"""

from __future__ import annotations

import re
from typing import Any

from components.catalog import load_catalog
from policies.framework import Config, ResourceRule, StackRule
from policies.resources import (
    UNKNOWN,
    ResourceView,
    dig,
    endpoint_facts,
    fmt,
    gpu_requests,
    jurisdiction_of,
    label,
    region_from_location,
    region_matches,
    region_of,
    role_of,
)

_DATA_TYPES = (
    "aws:s3/",
    "gcp:storage/bucket:",
    "aws:sagemaker/featureGroup:",
    "aws:dynamodb/table:",
    "gcp:vertex/",
    "gcp:bigtable/",
    "gcp:bigquery/dataset:",
)


_REGIONAL_COMPUTE = (
    "aws:ec2/instance:",
    "aws:eks/",
    "aws:autoscaling/group:",
    "aws:ec2/launchTemplate:",
    "aws:ec2/spotInstanceRequest:",
    "aws:sagemaker/",
    "aws:rds/",
    "aws:efs/",
    "aws:ebs/volume:",
    "gcp:container/",
    "gcp:compute/instance:",
    "gcp:cloudrunv2/service:",
    "gcp:sql/",
)


def _needs_region(view: ResourceView) -> bool:
    """Data stores and compute, not made by a component: where they live must be known."""
    if view.component or view.managed:
        return False
    if view.type.startswith("gcp:storage/bucket:"):
        return False  # a GCS bucket's location is required by the provider; IAM/ACL sub-resources have none
    return view.type.startswith(_DATA_TYPES + _REGIONAL_COMPUTE) and not view.type.startswith(
        ("aws:s3/bucketPolicy", "aws:s3/bucketPublicAccessBlock", "aws:s3/bucketServerSideEncryption", "aws:s3/bucketAcl", "aws:s3/accountPublicAccessBlock", "aws:s3/bucketOwnership", "aws:s3/bucketVersioning", "aws:s3/bucketLifecycle")
    )


def check_allowed_regions(view: ResourceView, cfg: Config) -> list[str]:
    if view.type.startswith("pulumi:providers:"):
        return []
    if view.managed and not view.component and not view.type.startswith(_DATA_TYPES):
        return []  # in its component's region, which is checked on the component
    region = region_of(view)
    if region is None and _needs_region(view):
        where = "aws:region" if view.type.startswith("aws") else "gcp:region"
        return [
            f"{label(view)} has no region that can be determined (no region on the resource, its provider has none{' (a zone only)' if view.provider_props.get('zone') else ''}), so data residency cannot be checked. Set region on the resource or its provider (stack config {where})."
        ]
    if region is None or region is UNKNOWN or not isinstance(region, str):
        return []
    patterns = list(cfg.get("allowedRegions") or ["*"])
    jurisdictions = list(cfg.get("allowedJurisdictions") or [])
    cloud = view.cloud
    juris = jurisdiction_of(load_catalog(), cloud, region)
    out = []
    if not region_matches(region, patterns):
        out.append(
            f"{label(view)} is in {region}, outside the allowed regions {patterns}. Move it to an allowed region, or change allowedRegions in the stack's policy config."
        )
    elif jurisdictions and juris is not None and juris not in jurisdictions:
        out.append(
            f"{label(view)} is in {region} ({juris}), outside the allowed jurisdictions {jurisdictions} (data residency). Move it to a region in {jurisdictions}."
        )
    return out


ALLOWED_REGIONS = ResourceRule(
    name="allowed-regions",
    description="Checks whether every regional resource, buckets and feature stores included, is in an allowed region and jurisdiction.",
    check=check_allowed_regions,
    schema={
        "allowedRegions": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["*"],
            "description": "Region glob patterns, e.g. ['us-*', 'europe-west4'].",
        },
        "allowedJurisdictions": {
            "type": "array",
            "items": {"type": "string", "enum": ["us", "eu", "apac"]},
            "default": ["us", "eu", "apac"],
            "description": "Data-residency areas allowed.",
        },
    },
)


_BUCKET_URL = re.compile(r"^(s3|gs)://([^/]+)")


def bucket_of(url: Any) -> str | None:
    """``s3://bucket/path`` -> ``bucket``; a bare bucket name is returned as is."""
    if not isinstance(url, str) or not url:
        return None
    m = _BUCKET_URL.match(url)
    if m:
        return m.group(2)
    return None if "/" in url or ":" in url else url


def _bucket_regions(views: list[ResourceView]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in views:
        if v.type in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "gcp:storage/bucket:Bucket"):
            region = region_of(v)
            if not isinstance(region, str):
                continue
            for name in (v.props.get("bucket"), v.props.get("name"), v.props.get("bucketPrefix"), v.name):
                if isinstance(name, str) and name:
                    out.setdefault(name, region)
    return out


def check_data_colocated(views: list[ResourceView], cfg: Config) -> list[tuple[str | None, str]]:
    known = {**_bucket_regions(views), **dict(cfg.get("bucketRegions") or {})}
    strict = bool(cfg.get("requireKnownBucketRegion", False))
    out: list[tuple[str | None, str]] = []
    for v in views:
        if v.component not in ("SpotTrainingCluster", "TrainingJob"):
            continue
        s = v.summary
        region = s.get("region")
        if not isinstance(region, str):
            continue
        for key in ("dataUrl", "checkpointUrl", "checkpointBucket"):
            ref = s.get(key)
            bucket = bucket_of(ref.get("url") if isinstance(ref, dict) else ref)
            if bucket is None:
                continue
            where = known.get(bucket)
            if where is None:
                if strict:
                    out.append(
                        (
                            v.urn,
                            f"{label(v)} reads {key} from bucket '{bucket}', whose region is unknown. Add it to bucketRegions in the stack's policy config.",
                        )
                    )
                continue
            where = region_from_location(where) or where
            if where.lower() != region.lower():
                out.append(
                    (
                        v.urn,
                        f"{label(v)} trains in {region} but its {key} bucket '{bucket}' is in {where}: cross-region reads are slow and billed as egress. Move the bucket or the training to the same region.",
                    )
                )
    return out


TRAINING_DATA_COLOCATED = StackRule(
    name="training-data-colocated",
    description="Checks whether training runs in the same region as its data and checkpoint buckets.",
    check=check_data_colocated,
    schema={
        "bucketRegions": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "default": {},
            "description": "Regions of buckets not created by this stack: {bucket: region}.",
        },
        "requireKnownBucketRegion": {
            "type": "boolean",
            "default": False,
            "description": "Report training whose bucket region cannot be found.",
        },
    },
)


def check_offered(view: ResourceView, cfg: Config) -> list[str]:
    catalog = load_catalog()
    if view.managed and not view.component:
        return []
    s, p, t = view.summary, view.props, view.type
    out: list[str] = []

    def check_type(cloud: str, it: Any, region: Any, zones: list[str], what: str) -> None:
        if not isinstance(it, str) or not isinstance(region, str) or catalog.instance_type(cloud, it) is None:
            return
        offering = catalog.offering(cloud, it, region)
        if offering is None:
            where = sorted(o.region for (c, name, _), o in catalog.offerings.items() if c == cloud and name == it)
            out.append(
                f"{label(view)}{what}: {it} is not offered in {region} (catalog). Use a region that offers it: {where}, or another instance type."
            )
            return
        bad = [z for z in zones if z not in offering.zones]
        if bad:
            out.append(
                f"{label(view)}{what}: {it} is not offered in zones {bad} of {region} (offered in {list(offering.zones)}). Use those zones."
            )

    if view.component == "GpuNodePool" and s.get("createsNodes", True):
        check_type(str(s.get("cloud")), s.get("instanceType"), s.get("region"), list(s.get("zones") or []), "")
    elif view.component == "InferenceEndpoint":
        impl = endpoint_facts(s)["platform"]
        region, acc = s.get("region"), s.get("accelerator")
        if (
            "cloud-run" in impl
            and isinstance(region, str)
            and isinstance(acc, str)
            and catalog.serverless_rate("gcp", "cloud-run", f"{acc.lower()}-gpu-second", region) is None
        ):
            out.append(
                f"{label(view)}: Cloud Run does not offer {acc} GPUs in {region} (catalog). Use a region with a Cloud Run {acc} rate, or another implementation."
            )
        elif "sagemaker" in impl:
            check_type("aws", s.get("instanceType"), region, [], "")
    elif t == "aws:eks/nodeGroup:NodeGroup":
        for it in p.get("instanceTypes") or []:
            check_type("aws", it, region_of(view), [], "")
    elif t == "aws:ec2/instance:Instance":
        az = p.get("availabilityZone")
        check_type("aws", p.get("instanceType"), region_of(view), [az] if isinstance(az, str) else [], "")
    elif t == "gcp:compute/instance:Instance":
        zone = p.get("zone")
        check_type("gcp", p.get("machineType"), region_of(view), [zone] if isinstance(zone, str) else [], "")
    elif t == "gcp:container/nodePool:NodePool":
        zones = [z for z in (p.get("nodeLocations") or []) if isinstance(z, str)]
        loc = p.get("location")
        if isinstance(loc, str) and region_from_location(loc) != loc:
            zones = zones or [loc]
        check_type("gcp", dig(p, "nodeConfig.machineType"), region_of(view), zones, "")
    elif t == "gcp:cloudrunv2/service:Service":
        for r in gpu_requests(view, catalog):
            region = region_of(view)
            if (
                isinstance(region, str)
                and catalog.serverless_rate("gcp", "cloud-run", f"{r.accelerator.lower()}-gpu-second", region) is None
            ):
                out.append(
                    f"{label(view)}: Cloud Run does not offer {r.accelerator} GPUs in {region} (catalog). Use a region with a Cloud Run {r.accelerator} rate."
                )
    elif t == "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
        for var in p.get("productionVariants") or []:
            if isinstance(var, dict):
                check_type("aws", var.get("instanceType"), region_of(view), [], "")
    return out


GPU_OFFERED_IN_REGION = ResourceRule(
    name="gpu-offered-in-region",
    description="Checks whether the requested GPU instance or machine type is offered in the chosen region and zones, per the catalog.",
    check=check_offered,
)


def check_compact(view: ResourceView, cfg: Config) -> list[str]:
    threshold = float(cfg.get("multiNodeThreshold", 2))
    require_efa = bool(cfg.get("requireEfa", True))
    catalog = load_catalog()
    pools: list[tuple[str, dict[str, Any]]] = []
    if view.component == "GpuNodePool" and role_of(view) == "training":
        pools.append(("", view.summary))  # SpotTrainingCluster pools are GpuNodePool children
    cloud = view.summary.get("cloud")
    if cloud not in ("aws", "gcp"):
        return []
    out = []
    for what, pool in pools:
        mx = pool.get("maxNodes")
        if not isinstance(mx, (int, float)) or mx < threshold:
            continue
        if not pool.get("compactPlacement", view.summary.get("compactPlacement")):
            out.append(
                f"{label(view)}{what} is a multi-node training pool (up to {fmt(mx)} nodes) without compact placement. Set compactPlacement: true (AWS cluster placement group, GKE COMPACT policy)."
            )
        it = catalog.instance_type(str(cloud), str(pool.get("instanceType")))
        if (
            cloud == "aws"
            and require_efa
            and it is not None
            and it.supports_efa
            and not pool.get("efa", view.summary.get("efa"))
        ):
            out.append(
                f"{label(view)}{what} is a multi-node training pool of {it.name}, which has {it.efa_interfaces} EFA interfaces, without EFA. Set efa: true."
            )
    return out


MULTINODE_COMPACT_PLACEMENT = ResourceRule(
    name="multinode-compact-placement",
    description="Checks whether multi-node training pools use compact placement, and EFA where the cloud offers it.",
    check=check_compact,
    schema={
        "multiNodeThreshold": {
            "type": "integer",
            "minimum": 2,
            "default": 2,
            "description": "Pools that can hold this many nodes or more count as multi-node.",
        },
        "requireEfa": {
            "type": "boolean",
            "default": True,
            "description": "Require EFA on AWS instance types that have it.",
        },
    },
)
