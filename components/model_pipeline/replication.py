"""Train here, serve there: copying each promoted model to the serving cloud's bucket, and what that costs.

A ``ModelPipeline`` trains on one cluster (the training cluster's cloud and region) and may serve
elsewhere: an endpoint on another cloud or region reads its weights from a bucket there.
``replicate_to`` lists those buckets; after the gate promotes a model, the workflow's ``replicate``
steps copy the export to ``<url>/<run>`` and then to ``<url>/champion`` (``python -m
workloads.pipeline.replicate``, the training image; ``config.json`` first and ``model.safetensors``
last, so a server that starts mid-copy reads the old weights or the new ones whole — not atomic
across files, which a serving endpoint reading ``<url>/champion`` tolerates at cold start).

``plan_replicas`` is pure: per bucket, the GiB moved per rollout, the catalog's egress price and
copy throughput from the source region to the bucket's (components/catalog/data/egress.csv), the
transfer time and the dollars per rollout. The plan summary carries them, ``gpuplane plan`` prices
them per month (usage ``rolloutsPerMonth``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Required, TypedDict

from components.catalog import load_catalog
from components.errors import Problems

_URL = re.compile(r"^(s3|gs)://([a-z0-9][a-z0-9._-]{1,61}[a-z0-9])(/.*)?$")
SCHEME_CLOUD = {"s3": "aws", "gs": "gcp"}


class ReplicaArgs(TypedDict, total=False):
    """A bucket in the serving cloud that every promoted model is copied to."""

    url: Required[str]
    """``s3://bucket/prefix`` or ``gs://bucket/prefix``; the serving endpoint reads ``<url>/champion``."""
    region: Required[str]
    """The bucket's region (catalog name), for the egress price and time."""
    model_size_gib: Required[float]
    """Size of one exported model in GiB (what each rollout moves)."""


@dataclass(frozen=True)
class ReplicaPlan:
    url: str
    cloud: str
    region: str
    gib: float
    scope: str
    """``same-region``, ``same-jurisdiction``, ``other-jurisdiction`` or ``other-cloud`` (catalog egress scope)."""
    usd_per_gib: float
    seconds: float
    """Transfer time of one copy at the catalog's budgeted throughput."""
    egress_source: str

    @property
    def usd_per_rollout(self) -> float:
        return self.gib * self.usd_per_gib

    def summary(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "cloud": self.cloud,
            "region": self.region,
            "gibPerRollout": self.gib,
            "scope": self.scope,
            "usdPerGib": self.usd_per_gib,
            "transferSeconds": round(self.seconds, 1),
            "usdPerRollout": round(self.usd_per_rollout, 4),
            "egressSource": self.egress_source,
        }


def plan_replicas(p: Problems, raw: Any, source_cloud: str, source_region: str | None) -> tuple[ReplicaPlan, ...]:
    """Validate ``replicate_to`` and price each copy from (source cloud, region); problems go to ``p``."""
    if raw is None:
        return ()
    cat = load_catalog()
    out: list[ReplicaPlan] = []
    for i, r in enumerate(raw if isinstance(raw, list) else [raw]):
        path = f"replicate_to[{i}]"
        if not isinstance(r, dict):
            p.add(path, r, "is not a replica.", "give {url, region, model_size_gib}.")
            continue
        url, region, gib = r.get("url"), r.get("region"), r.get("model_size_gib")
        m = _URL.match(url) if isinstance(url, str) else None
        if m is None:
            p.add(f"{path}.url", url, "is not an s3:// or gs:// bucket URL.", "give the serving cloud's bucket, e.g. gs://models-us/recommender.")
            continue
        cloud = SCHEME_CLOUD[m.group(1)]
        if not isinstance(region, str) or cat.region(cloud, region) is None:
            p.add(f"{path}.region", region, f"is not a {cloud} region in the catalog.", f"use one of {cat.region_names(cloud)}.")
            continue
        if isinstance(gib, bool) or not isinstance(gib, (int, float)) or gib <= 0:
            p.add(f"{path}.model_size_gib", gib, "must be a positive size in GiB.", "give the exported model's size, e.g. 0.5.")
            continue
        if any(x.url == url.rstrip("/") for x in out):
            p.add(f"{path}.url", url, "is listed twice.", "list each bucket once.")
            continue
        e = cat.egress(source_cloud, source_region, cloud, region)
        out.append(ReplicaPlan(url.rstrip("/"), cloud, region, float(gib), e.scope, e.usd_per_gib, e.transfer_seconds(float(gib)), f"{e.source} ({e.fetched_at})"))
    return tuple(out)
