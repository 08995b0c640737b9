"""TwoTierEndpoint's spec: args, the frozen ``TwoTierPlan`` and the pure planner ``plan_two_tier``.

Both tiers are planned with InferenceEndpoint's own planner (its public ``plan_endpoint``), so a
tier that InferenceEndpoint would reject is rejected here with the same reason, renamed to the
two-tier field. Creates nothing; what the component creates is in component.py's module
docstring, the router (Envoy on the steady tier's cluster) in router.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, Required, TypedDict

import pulumi

from components.catalog import Catalog
from components.cluster import KubernetesCluster
from components.errors import ComponentInputError, Problems
from components.features import Feature, FeatureSupport
from components.inference import FEATURES as ENDPOINT_FEATURES
from components.inference import EndpointPlan, InferenceEndpointArgs, plan_endpoint
from components.node_pool import GpuNodePool

TYPE_TOKEN = "gpuplane:index:TwoTierEndpoint"
STEADY_EXEMPTION_POLICY = "endpoint-scale-to-zero"
BURST_PLATFORMS = ("cloud-run", "sagemaker")
BURST_CLOUD = {"cloud-run": "gcp", "sagemaker": "aws"}


class TwoTierEndpointArgs(TypedDict, total=False):
    """Arguments of ``TwoTierEndpoint``."""

    cluster: Required[KubernetesCluster]
    """The cluster the steady tier and the router run on (EKS for a SageMaker burst tier, GKE for Cloud Run)."""
    pool: Required[GpuNodePool]
    """The GPU pool of ``cluster`` the steady tier runs on."""
    image: Required[pulumi.Input[str]]
    """Serving image (workloads/serving/Dockerfile); the steady tier and the router run it."""
    burst_platform: Required[Literal["cloud-run", "sagemaker"]]
    """Where the burst tier runs: ``cloud-run`` (GCP, L4) or ``sagemaker`` (AWS, inference components)."""
    burst_image: NotRequired[pulumi.Input[str]]
    """Serving image for the burst tier (Artifact Registry / ECR). Default: ``image``."""
    model_uri: NotRequired[str]
    """Steady tier's weights (``s3://``, ``gs://`` or ``pvc://``). Default: baked into the image."""
    burst_model_uri: NotRequired[str]
    """Burst tier's weights (``gs://`` for Cloud Run, ``s3://.../model.tar.gz`` for SageMaker). Default: ``model_uri``."""
    model_name: NotRequired[str]
    """OIP model name on both tiers. Default ``recommender``."""
    model_size_gib: NotRequired[float]
    """Size of the weights, GiB (both tiers' cold-start budgets). Default 1."""
    image_size_gib: NotRequired[float]
    """Size of the serving image, GiB. Default 8."""
    steady_replicas: NotRequired[int]
    """Steady-tier replicas always up (Knative min-scale), at least 1. Default 1."""
    steady_max_replicas: NotRequired[int]
    """Most steady-tier replicas (Knative max-scale); equal to ``steady_replicas`` for a fixed size. Default: ``steady_replicas``."""
    target_concurrency: NotRequired[int]
    """In-flight requests one replica handles (both tiers' autoscaling target). Default 8."""
    spill_threshold: NotRequired[int]
    """Steady-tier in-flight requests at which requests spill to the burst tier. Default: ``steady_replicas`` x ``target_concurrency``."""
    burst_region: NotRequired[str]
    """Burst tier's region. Default: the cluster's."""
    burst_project: NotRequired[pulumi.Input[str]]
    """cloud-run: GCP project. Default: the cluster's project."""
    burst_max_scale: NotRequired[int]
    """Most burst-tier instances / copies. Default 4."""
    burst_instance_type: NotRequired[str]
    """sagemaker: ``ml.*`` instance type. Default: the cheapest with an L4 in the catalog."""
    scale_down_delay_seconds: NotRequired[int]
    """Burst tier's keep-alive after its last request before it scales to zero. Default 300."""
    hold_requests: NotRequired[bool]
    """Require that requests spilled to a burst tier at zero are held, not failed. Default True (False needed on sagemaker)."""
    cpu: NotRequired[float]
    """vCPUs per steady replica. Default 4, or less to fit one node of the pool (3.5 on a 4-vCPU node)."""
    memory_gib: NotRequired[float]
    """Memory per steady replica, GiB. Default 16, or 90% of a node's memory when that is less."""
    knative: NotRequired[Literal["install", "present"]]
    """Install Knative Serving on the cluster, or use the one there. Default ``install`` (once per cluster)."""
    namespace: NotRequired[str]
    """Namespace of the steady tier and the router, created by the steady endpoint. Default: the component's name."""
    router_replicas: NotRequired[int]
    """Router pods; each spills at ``ceil(spill_threshold / router_replicas)`` of its own in-flight requests. Default 2."""
    tags: NotRequired[dict[str, str]]
    """Tags/labels on every taggable child (team, cost-center)."""


FEATURES: dict[str, FeatureSupport] = {
    "knative+cloud-run": FeatureSupport(
        "knative+cloud-run",
        frozenset({Feature.SCALE_TO_ZERO, Feature.REQUEST_HOLDING, Feature.STREAMING}),
    ),
    "knative+sagemaker": FeatureSupport(
        "knative+sagemaker",
        frozenset({Feature.SCALE_TO_ZERO}),
        {
            Feature.REQUEST_HOLDING: "requests spilled to SageMaker inference components at zero copies fail "
            "(NoCapacityInvocationFailures) until the alarm scales a copy out; set hold_requests=False to accept "
            "that, or burst to cloud-run",
            Feature.STREAMING: "the router calls InvokeEndpoint, which buffers the reply "
            "(InvokeEndpointWithResponseStream is another API)",
        },
    ),
}


@dataclass(frozen=True)
class TwoTierPlan:
    name: str
    implementation: str
    cloud: str
    namespace: str
    steady: EndpointPlan
    burst: EndpointPlan
    steady_args: InferenceEndpointArgs
    burst_args: InferenceEndpointArgs
    spill_threshold: int
    router_replicas: int
    router_threshold: int
    """Per router pod: ``ceil(spill_threshold / router_replicas)``."""
    router_timeout_seconds: int
    """Longest a spilled request may wait: the burst tier's cold start plus a warm request."""
    features: FeatureSupport
    tags: dict[str, str]

    @property
    def steady_host(self) -> str:
        return f"{self.steady.name}.{self.namespace}.svc.cluster.local"

    def summary(self) -> dict[str, Any]:
        """The plan as the component's registered ``gpuplane`` input (read by policies and the cost model)."""
        return {
            "implementation": self.implementation,
            "cloud": self.cloud,
            "namespace": self.namespace,
            "steady": {"endpoint": self.steady.name, "pool": self.steady.extra.get("pool"),
                       "minScale": self.steady.min_scale, "maxScale": self.steady.max_scale,
                       "accelerator": self.steady.accelerator, "gpus": self.steady.gpus},
            "burst": {"endpoint": self.burst.name, "platform": self.burst.platform,
                      "implementation": self.burst.implementation, "region": self.burst.region,
                      "minScale": self.burst.min_scale, "maxScale": self.burst.max_scale,
                      "public": self.burst.public, "auth": self.burst.auth,
                      "holdsRequests": self.features.supports(Feature.REQUEST_HOLDING)},
            "spillThreshold": self.spill_threshold,
            "routerReplicas": self.router_replicas,
            "routerThresholdPerReplica": self.router_threshold,
            "routerTimeoutSeconds": self.router_timeout_seconds,
            "tags": dict(self.tags),
        }


_KNOWN_KEYS = set(TwoTierEndpointArgs.__annotations__)


def _whole(p: Problems, args: TwoTierEndpointArgs, key: str, default: int, minimum: int, fix: str) -> int:
    value = args.get(key, default)  # type: ignore[misc]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        p.add(key, value, f"must be a whole number of at least {minimum}.", fix)
        return default
    return value


def _tier_problems(p: Problems, tier: str, exc: ComponentInputError, renames: dict[str, str]) -> None:
    """A tier's InferenceEndpoint problems, with paths in this component's args."""
    for problem in exc.problems:
        path = renames.get(problem.path, f"{tier}.{problem.path}")
        p.add(path, problem.value, problem.message, problem.fix)


def plan_two_tier(name: str, args: TwoTierEndpointArgs, catalog: Catalog | None = None) -> TwoTierPlan:
    """Validate the args and derive both tiers' plans and the router's, or raise one ``ComponentInputError``."""
    p = Problems("TwoTierEndpoint", name)
    for key in sorted(set(args) - _KNOWN_KEYS):
        p.add(key, args[key], "is not an argument of TwoTierEndpoint.", f"use one of {sorted(_KNOWN_KEYS)}.")  # type: ignore[literal-required]
    cluster, pool = args.get("cluster"), args.get("pool")
    if not isinstance(cluster, KubernetesCluster):
        p.add("cluster", cluster, "is required and must be a KubernetesCluster.", "pass the cluster the steady tier runs on.")
    if not isinstance(pool, GpuNodePool):
        p.add("pool", pool, "is required: the steady tier runs on a GpuNodePool.", "pass a GPU pool of the cluster.")
    burst_platform = args.get("burst_platform")
    if burst_platform not in BURST_PLATFORMS:
        fix = ("a knative burst tier would share the steady tier's cluster; burst to 'cloud-run' or 'sagemaker'."
               if burst_platform == "knative" else "use 'cloud-run' (GCP) or 'sagemaker' (AWS).")
        p.add("burst_platform", burst_platform, "is not a serverless GPU platform with scale-to-zero.", fix)
    if not isinstance(cluster, KubernetesCluster) or not isinstance(pool, GpuNodePool) or burst_platform not in BURST_PLATFORMS:
        p.raise_if_any()
    assert isinstance(cluster, KubernetesCluster) and isinstance(pool, GpuNodePool)  # narrowed by the raise above
    cloud = cluster.facts.cloud
    wanted_cloud = BURST_CLOUD[str(burst_platform)]
    if cloud != wanted_cloud:
        p.add("burst_platform", burst_platform, f"needs the steady cluster on {wanted_cloud} (the router calls it with "
              f"the cluster's workload identity), but cluster '{cluster.facts.name}' is on {cloud}.",
              f"burst to {'cloud-run' if cloud == 'gcp' else 'sagemaker'}, or run the steady tier on a {wanted_cloud} cluster.")

    steady_replicas = _whole(p, args, "steady_replicas", 1, 1, "keep at least one steady replica; a tier that scales "
                             "to zero is the burst tier.")
    steady_max = _whole(p, args, "steady_max_replicas", steady_replicas, 1, "set the most steady replicas.")
    if steady_max < steady_replicas:
        p.add("steady_max_replicas", steady_max, f"is below steady_replicas={steady_replicas}.",
              "raise steady_max_replicas or lower steady_replicas.")
    target = _whole(p, args, "target_concurrency", 8, 1, "set how many in-flight requests one replica handles.")
    threshold = args.get("spill_threshold", steady_replicas * target)
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold <= 0:
        p.add("spill_threshold", threshold, "must be a whole number of requests above 0.",
              f"set the steady tier's in-flight requests at which requests spill, e.g. {steady_replicas * target} "
              "(steady_replicas x target_concurrency).")
        threshold = steady_replicas * target
    routers = _whole(p, args, "router_replicas", 2, 1, "run at least one router pod.")
    if isinstance(threshold, int) and routers > threshold:
        p.add("router_replicas", routers, f"exceeds spill_threshold={threshold}: each router pod spills at "
              "ceil(threshold / replicas) of its own requests, so the tier would spill early.",
              "run fewer router pods or raise spill_threshold.")
    burst_max = _whole(p, args, "burst_max_scale", 4, 1, "set the most burst instances.")
    delay = _whole(p, args, "scale_down_delay_seconds", 300, 0, "set the burst tier's keep-alive, in seconds.")

    namespace = args.get("namespace", name)
    tags = {**cluster.facts.tags, **dict(args.get("tags") or {})}
    common: dict[str, Any] = {k: args[k] for k in ("model_name", "model_size_gib", "image_size_gib") if k in args}  # type: ignore[literal-required]
    steady_args: InferenceEndpointArgs = {
        "platform": "knative", "cluster": cluster, "pool": pool, "image": args.get("image"),  # type: ignore[typeddict-item]
        "knative": args.get("knative", "install"), "namespace": namespace,
        "min_scale": steady_replicas, "max_scale": steady_max, "target_concurrency": target,
        "tags": {**tags, "gpuplane/tier": "steady", "gpuplane/exempt": STEADY_EXEMPTION_POLICY,
                 # label-safe (the Knative Service carries gpuplane/* tags as labels)
                 "gpuplane/exempt-reason": f"steady-tier-of-{name}-whose-burst-tier-scales-to-zero"[:63].strip("-")},
        **common,  # type: ignore[typeddict-item]
    }
    if "model_uri" in args:
        steady_args["model_uri"] = args["model_uri"]
    # Default requests that fit one node of the pool (InferenceEndpoint's 4 vCPU / 16 GiB do not fit a g2-standard-4).
    cpu_cap, mem_cap = pool.scheduling.vcpus_per_node, pool.scheduling.memory_gib_per_node
    steady_args["cpu"] = args.get("cpu", min(4.0, cpu_cap - 0.5) if cpu_cap else 4.0)
    steady_args["memory_gib"] = args.get("memory_gib", min(16.0, round(mem_cap * 0.9, 1)) if mem_cap else 16.0)
    region = args.get("burst_region") or cluster.facts.region
    burst_args: InferenceEndpointArgs = {
        "platform": burst_platform,  # type: ignore[typeddict-item]
        "image": args.get("burst_image") or args.get("image"),  # type: ignore[typeddict-item]
        "region": region or "", "min_scale": 0, "max_scale": burst_max, "target_concurrency": target,
        "scale_down_delay_seconds": delay, "hold_requests": bool(args.get("hold_requests", True)),
        "public": False, "auth": "iam", "tags": {**tags, "gpuplane/tier": "burst"}, **common,  # type: ignore[typeddict-item]
    }
    burst_uri = args.get("burst_model_uri", args.get("model_uri"))
    if burst_uri is not None:
        burst_args["model_uri"] = burst_uri
    if burst_platform == "cloud-run":
        burst_args["project"] = args.get("burst_project") or cluster.project or ""  # type: ignore[typeddict-item]
    else:
        burst_args["sagemaker_mode"] = "inference-components"
        burst_args["hold_requests"] = False  # the two-tier feature check below says why, in this component's terms
        if "burst_instance_type" in args:
            burst_args["instance_type"] = args["burst_instance_type"]

    steady_plan = burst_plan = None
    try:
        steady_plan = plan_endpoint(f"{name}-steady", steady_args, catalog)
    except ComponentInputError as exc:
        _tier_problems(p, "steady", exc, {"min_scale": "steady_replicas", "max_scale": "steady_max_replicas",
                                          "model_uri": "model_uri", "pool": "pool", "gpus": "pool",
                                          "cpu": "cpu", "memory_gib": "memory_gib", "image": "image"})
    try:
        burst_plan = plan_endpoint(f"{name}-burst", burst_args, catalog)
    except ComponentInputError as exc:
        _tier_problems(p, "burst", exc, {"model_uri": "burst_model_uri", "region": "burst_region",
                                         "project": "burst_project", "instance_type": "burst_instance_type",
                                         "max_scale": "burst_max_scale", "hold_requests": "hold_requests",
                                         "image": "burst_image" if "burst_image" in args else "image"})
    implementation = f"knative+{burst_platform}"
    features = FEATURES[implementation]
    if burst_plan is not None and not ENDPOINT_FEATURES[burst_plan.implementation].supports(Feature.SCALE_TO_ZERO):
        p.add("burst_platform", burst_platform, f"{burst_plan.implementation} does not scale to zero.",
              "burst to a platform that does (cloud-run, sagemaker inference components).")
    requested: list[tuple[Feature, str, object]] = [(Feature.SCALE_TO_ZERO, "burst_platform", burst_platform)]
    if args.get("hold_requests", True):
        requested.append((Feature.REQUEST_HOLDING, "hold_requests", True))
    if burst_plan is None or steady_plan is None:
        p.raise_if_any()
    p.extend(features.check(requested))
    p.raise_if_any()
    assert steady_plan is not None and burst_plan is not None
    return TwoTierPlan(
        name=name, implementation=implementation, cloud=cloud, namespace=namespace,
        steady=steady_plan, burst=burst_plan, steady_args=steady_args, burst_args=burst_args,
        spill_threshold=int(threshold), router_replicas=routers,
        router_threshold=max(1, math.ceil(int(threshold) / routers)),
        router_timeout_seconds=burst_plan.timeouts.request_timeout_seconds,
        features=features, tags=tags,
    )
