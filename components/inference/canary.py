"""An InferenceEndpoint's canary: the challenger model beside the champion, at a share of traffic.

``InferenceEndpoint(canary=...)`` makes the endpoint's platform objects carry the split, so a
plan shows exactly what is served (the endpoint's ``model_uri`` is the challenger):

- Knative: the Service's ``spec.traffic`` by revision tags, ``champion`` (the given revision,
  ``100 - percent``) and ``challenger`` (the latest revision, ``percent``), each reachable by its
  tag URL. https://knative.dev/docs/serving/traffic-management/
- Cloud Run: ``traffics`` on the ``cloudrunv2.Service``: the champion revision (type
  ``TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION``) and the latest revision, tagged the same way.
- SageMaker (async mode): two production variants with ``initial_variant_weight`` ``percent``
  (``main``, the challenger) and ``100 - percent`` (``champion``, a second Model from
  ``champion_model_uri``), each scaled from zero (components/inference/sagemaker.py).

Inference-components mode has no variant weights (requests name a component), so a canary there
fails with that reason.
``ModelPipeline`` moves this split on a cluster (canary -> verify -> full or rollback); the
endpoint's ``canary`` argument is how a stack pins it, or rolls it forward to 100, by hand.
Planning is pure (``plan_endpoint_canary``); the emitters only shape bodies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from components.errors import Problems


class EndpointCanaryArgs(TypedDict, total=False):
    """A canary on an InferenceEndpoint (the endpoint's ``model_uri`` is the challenger)."""

    percent: int
    """Share of requests the challenger gets, 0-100 (100 completes the rollout, 0 rolls it back). Required."""
    champion_revision: NotRequired[str]
    """knative / cloud-run: the revision serving the champion, e.g. ``recs-00003``. Required there."""
    champion_model_uri: NotRequired[str]
    """Where the champion's weights are (recorded in the plan; a rollback points model_uri back at it)."""
    window_seconds: NotRequired[int]
    """How long the canary should run before it is judged. Default 600 (recorded in the plan)."""
    max_error_rate: NotRequired[float]
    """Highest tolerated 5xx share of the challenger's requests (0-1). Default 0.01."""
    max_p99_ms: NotRequired[float]
    """Highest tolerated p99 latency of the challenger, ms. Default 500."""


UNSUPPORTED = {
    "sagemaker-inference-components": "requests name an inference component, so production-variant weights do not split them; "
    "use sagemaker_mode='async' (two weighted variants) or a knative / cloud-run endpoint",
}
REVISION_PLATFORMS = ("knative", "cloud-run")


@dataclass(frozen=True)
class EndpointCanary:
    percent: int
    champion_revision: str | None
    champion_model_uri: str | None
    window_seconds: int
    max_error_rate: float
    max_p99_ms: float

    def summary(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "championPercent": 100 - self.percent,
            "championRevision": self.champion_revision,
            "championModelUri": self.champion_model_uri,
            "windowSeconds": self.window_seconds,
            "maxErrorRate": self.max_error_rate,
            "maxP99Ms": self.max_p99_ms,
        }


_KEYS = set(EndpointCanaryArgs.__annotations__)


def plan_endpoint_canary(p: Problems, name: str, platform: Any, raw: Any) -> EndpointCanary | None:
    """Validate ``canary`` of an InferenceEndpoint (``platform`` is the implementation: ``knative``,
    ``cloud-run``, ``sagemaker-async``, ...); adds problems to ``p``; None when absent or wrong."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        p.add("canary", raw, "must be a dict.", "give e.g. {'percent': 10, 'champion_revision': 'recs-00001'}.")
        return None
    ok = True
    for key in sorted(set(raw) - _KEYS):
        p.add(f"canary.{key}", raw[key], "is not a field of the canary.", f"use one of {sorted(_KEYS)}.")
        ok = False
    if platform in UNSUPPORTED:
        p.add("canary", raw, f"{platform} endpoints do not support canary-rollout: {UNSUPPORTED[platform]}.", "drop canary, or serve on knative or cloud-run.")
        return None
    percent = raw.get("percent")
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
        p.add("canary.percent", percent, "must be a whole percentage from 0 to 100.", "give the challenger's share of requests, e.g. 10.")
        ok = False
    revision = raw.get("champion_revision")
    if platform in REVISION_PLATFORMS:
        if not isinstance(revision, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", revision) or not revision.startswith(f"{name}-"):
            p.add("canary.champion_revision", revision, f"must name the revision serving the champion, which {platform} prefixes with the service name.", f"give e.g. '{name}-00001' (kubectl get revisions / gcloud run revisions list).")
            ok = False
    elif revision is not None:
        p.add("canary.champion_revision", revision, f"{platform} has no revisions; the champion is a second production variant.", "drop it and give champion_model_uri.")
        ok = False
    champion_uri = raw.get("champion_model_uri")
    if platform == "sagemaker-async" and not str(champion_uri or "").startswith("s3://"):
        p.add("canary.champion_model_uri", champion_uri, "is required for a SageMaker canary: the champion variant serves its own model.", "give the champion's s3:// model data.")
        ok = False
    elif champion_uri is not None and not str(champion_uri).startswith(("s3://", "gs://", "pvc://")):
        p.add("canary.champion_model_uri", champion_uri, "must be an s3://, gs:// or pvc:// URI.", "give where the champion's weights are.")
        ok = False
    window = raw.get("window_seconds", 600)
    err = raw.get("max_error_rate", 0.01)
    p99 = raw.get("max_p99_ms", 500.0)
    if not isinstance(window, int) or isinstance(window, bool) or window < 60:
        p.add("canary.window_seconds", window, "must be a whole number of seconds, at least 60.", "leave it unset for 600.")
        ok = False
    if not isinstance(err, int | float) or isinstance(err, bool) or not 0 <= err <= 1:
        p.add("canary.max_error_rate", err, "must be a fraction from 0 to 1.", "give e.g. 0.01.")
        ok = False
    if not isinstance(p99, int | float) or isinstance(p99, bool) or p99 <= 0:
        p.add("canary.max_p99_ms", p99, "must be a positive number of milliseconds.", "give e.g. 500.")
        ok = False
    if not ok:
        return None
    return EndpointCanary(int(percent), revision, champion_uri, int(window), float(err), float(p99))  # type: ignore[arg-type]


def knative_traffic(canary: EndpointCanary | None) -> list[dict[str, Any]] | None:
    """``spec.traffic`` of the Knative Service (None: Knative's default, 100% to the latest revision)."""
    if canary is None:
        return None
    return [
        {"tag": "champion", "revisionName": canary.champion_revision, "percent": 100 - canary.percent},
        {"tag": "challenger", "latestRevision": True, "percent": canary.percent},
    ]


def apply_knative_canary(body: dict[str, Any], canary: EndpointCanary | None) -> dict[str, Any]:
    """Set the traffic split on a Knative Service body (in place; returns it)."""
    traffic = knative_traffic(canary)
    if traffic is not None:
        body["spec"]["traffic"] = traffic
    return body


def cloud_run_traffics(canary: EndpointCanary | None) -> list[Any] | None:
    """``traffics`` of the cloudrunv2.Service (None: the provider's default, 100% to the latest)."""
    if canary is None:
        return None
    import pulumi_gcp as gcp

    return [
        gcp.cloudrunv2.ServiceTrafficArgs(type="TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", revision=canary.champion_revision, percent=100 - canary.percent, tag="champion"),
        gcp.cloudrunv2.ServiceTrafficArgs(type="TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", percent=canary.percent, tag="challenger"),
    ]
