"""EdgeDeployment's spec: args, the rollout contract (waves, gates, rollback), plan dataclasses, declared features.

An ``EdgeDeployment`` ships one ONNX model to a fleet of edge sites grouped by region or line and
rolls it out in waves. Pure: creates nothing and imports no provider SDK beyond ``pulumi`` for
``pulumi.Input`` annotations. ``planner.py`` turns args into an ``EdgePlan``; the backends are
``kubernetes_sites.py`` (a Deployment, Service and ConfigMap per site through a provider per
kubeconfig), ``fleet.py`` (a Rancher Fleet Bundle), ``kubeedge.py`` (``EdgeApplication``),
``openyurt.py`` (``YurtAppSet``) and ``greengrass.py`` (Greengrass v2 component + deployment);
``component.py`` validates, plans and dispatches.

The rollout contract (workloads mirror it; they may not import this module)
------------------------------------------------------------------------------
- **Waves.** ``rollout.waves`` is an ordered list. A wave names its sites (``sites``: a canary)
  or gives ``percent``: the cumulative share of the whole fleet (canary sites included) that runs
  the new model once the wave is promoted, rounded up to whole sites; its sites are the first
  not-yet-assigned sites in declaration order (groups in order, sites in order). Every wave adds at
  least one site; the last wave reaches every site.
- **Promotion.** ``rollout.promoted_waves`` (default: all) says how many waves run the new
  ``model``; every other site keeps ``previous_model``. Each ``pulumi up`` that raises it by one
  changes only the sites of that wave. Whoever raises it (CI, an operator, a rollout driver) must
  first see every site of the previous wave report ``gate=passed``; gpuplane does not read site
  status at plan time.
- **Gate (on the device).** A site given a new model loads it (checking its digest), replays the
  held-out sample (``gate.sample_uri``: inputs plus the cloud model's top-k per example) one
  request at a time and computes (a) p99 latency of those requests and (b) agreement = the mean over
  examples of ``|top_k(edge) ∩ top_k(cloud)| / k`` with ``k = gate.top_k``. The gate passes iff
  p99 <= ``gate.p99_latency_ms`` and agreement >= ``gate.min_agreement`` over at least
  ``gate.min_examples`` examples.
- **Rollback (on the device).** With ``rollout.auto_rollback`` (default true) a site whose gate
  fails keeps serving ``previous_model`` (cached beside the candidate, so no link is needed) and
  reports ``gate=failed``; the rollout halts because the next wave is never promoted. On a first
  rollout (no previous model) such a site serves nothing and reports the failure. Without it
  the site serves the candidate and reports the failure. A site offline at promotion keeps serving
  what it has and applies the wave when it reconnects.
- **What a site receives** (environment of the edge server; ConfigMap data on Kubernetes,
  component configuration on Greengrass): ``EDGE_SITE``, ``EDGE_GROUP``, ``EDGE_WAVE``,
  ``EDGE_MODEL_NAME``, ``EDGE_MODEL_URI``, ``EDGE_MODEL_DIGEST``, ``EDGE_FALLBACK_MODEL_URI``,
  ``EDGE_FALLBACK_MODEL_DIGEST`` (empty without a previous model), ``EDGE_RUNTIME``
  (``onnxruntime`` or ``tensorrt``), ``EDGE_GATE_P99_MS``, ``EDGE_GATE_MIN_AGREEMENT``,
  ``EDGE_GATE_TOP_K``, ``EDGE_GATE_MIN_EXAMPLES``, ``EDGE_GATE_SAMPLE_URI``, ``EDGE_AUTO_ROLLBACK``
  (``true``/``false``), ``EDGE_RESULTS_BUFFER_MIB``, ``EDGE_PORT``, and ``EDGE_PRESTAGE_MODEL_URI``,
  ``EDGE_PRESTAGE_MODEL_DIGEST``, ``EDGE_PRESTAGE_WINDOW_UTC``: on a site whose wave is not promoted
  yet, the new model to download into the local cache (digest-checked, inside the window when
  one is given) while it keeps serving, so promotion needs no transfer. Empty when there is none.
- **Pre-staging** covers the model; image layers not cached are pulled when the wave is promoted
  (the plan counts them in the wave's bytes) unless the site lists them in ``cached``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Required, TypedDict

import pulumi

from components.features import Feature, FeatureSupport

TYPE_TOKEN = "gpuplane:index:EdgeDeployment"
SITE_KINDS = ("kubernetes", "fleet", "kubeedge", "openyurt", "greengrass")
DEFAULT_NAMESPACE = "edge-inference"
DEFAULT_PORT = 8080
DEFAULT_MAX_OUTAGE_HOURS = 24.0
DEFAULT_CACHE_GIB = 8.0
DEFAULT_RESULTS_BUFFER_MIB = 256.0
DEFAULT_RESULTS_KIB_PER_SECOND = 1.0
DEFAULT_GATE_TOP_K = 10
DEFAULT_GATE_MIN_EXAMPLES = 200
MODEL_SCHEMES = ("oci://", "s3://", "gs://", "https://")
ENV_KEYS = (
    "EDGE_SITE", "EDGE_GROUP", "EDGE_WAVE", "EDGE_MODEL_NAME", "EDGE_MODEL_URI", "EDGE_MODEL_DIGEST", "EDGE_FALLBACK_MODEL_URI",
    "EDGE_FALLBACK_MODEL_DIGEST", "EDGE_RUNTIME", "EDGE_GATE_P99_MS", "EDGE_GATE_MIN_AGREEMENT", "EDGE_GATE_TOP_K",
    "EDGE_GATE_MIN_EXAMPLES", "EDGE_GATE_SAMPLE_URI", "EDGE_AUTO_ROLLBACK", "EDGE_RESULTS_BUFFER_MIB", "EDGE_PORT",
    "EDGE_PRESTAGE_MODEL_URI", "EDGE_PRESTAGE_MODEL_DIGEST", "EDGE_PRESTAGE_WINDOW_UTC",
)
"""Every key a site receives (the module docstring's contract), in this order."""


class EdgeModelArgs(TypedDict, total=False):
    """One model build: an ONNX file (optionally int8-quantized) at a URI, pinned by its digest."""

    uri: Required[str]
    """Where the site fetches it: ``oci://registry/repo@sha256:...`` (an OCI artifact), ``s3://``, ``gs://`` or ``https://``."""
    digest: Required[str]
    """``sha256:<64 hex>`` of the model file; the site refuses a file whose digest differs. Required (an unpinned model can change under a wave)."""
    size_mib: Required[float]
    """Size of the model file, MiB (drives transfer bytes, time, cost and the site cache check)."""
    quantization: NotRequired[Literal["none", "int8"]]
    """``int8`` for a dynamically quantized export (``python -m workloads.training.export --quantize int8``). Default ``none``."""
    name: NotRequired[str]
    """Model name the edge server serves (OIP ``/v2/models/{name}``). Default ``recommender``."""


class EdgeImageLayerArgs(TypedDict):
    """One layer of the edge server image."""

    digest: str
    """``sha256:<64 hex>`` of the (compressed) layer, as in the image manifest."""
    size_mib: float
    """Compressed size, MiB (what crosses the link)."""


class EdgeImageArgs(TypedDict, total=False):
    """The edge server image, pinned by digest, with its layers so cached layers are not counted twice."""

    ref: Required[str]
    """``registry/repo@sha256:...`` (a digest reference; a tag can move under a wave)."""
    layers: NotRequired[list[EdgeImageLayerArgs]]
    """The image's layers (``crane manifest REF``). Default: one layer of ``size_mib`` named by the image digest."""
    size_mib: NotRequired[float]
    """Compressed size, MiB, when ``layers`` is not given. Default 0 (then the plan counts model bytes only and says so)."""


class EdgeGateArgs(TypedDict, total=False):
    """The on-device gate of a wave (see the module docstring's contract)."""

    p99_latency_ms: Required[float]
    """Largest p99 latency of one request on the device, milliseconds, over the held-out sample."""
    min_agreement: Required[float]
    """Least top-k agreement with the cloud model on the held-out sample, in (0, 1]."""
    sample_uri: NotRequired[str]
    """Held-out sample with the cloud model's top-k per example. Default: ``<model uri>.gate-sample`` beside the model."""
    top_k: NotRequired[int]
    """k of the agreement. Default 10."""
    min_examples: NotRequired[int]
    """Fewest held-out examples the gate must see. Default 200."""


class EdgeWaveArgs(TypedDict, total=False):
    """One wave: named canary sites, or a cumulative percentage of the fleet."""

    name: NotRequired[str]
    """Label. Default ``wave-<n>``."""
    sites: NotRequired[list[str]]
    """Canary: the sites (by name) this wave adds. Give ``sites`` or ``percent``, not both."""
    percent: NotRequired[float]
    """Cumulative share of all sites on the new model after this wave, in (0, 100]."""
    gate: NotRequired[EdgeGateArgs]
    """This wave's gate. Default: the rollout's ``gate``."""


class EdgeRolloutArgs(TypedDict, total=False):
    """Waves, how far the rollout has got, the gate and rollback."""

    waves: Required[list[EdgeWaveArgs]]
    """Ordered waves; see the module docstring."""
    promoted_waves: NotRequired[int]
    """How many waves run the new model (0 .. len(waves)). Default: all of them."""
    gate: Required[EdgeGateArgs]
    """The gate of every wave without its own."""
    max_unavailable_percent: NotRequired[int]
    """Share of a wave's sites (or of a Greengrass site's devices) that may be unavailable at once, percent: Fleet's rollout maxUnavailable, Greengrass's base rollout rate and abort threshold. Kubernetes, KubeEdge and OpenYurt sites of a wave update together, each keeping its old pod until the new one is ready (maxUnavailable 0), so none goes down. Default 25."""
    auto_rollback: NotRequired[bool]
    """A site whose gate fails goes back to ``previous_model`` on its own (Greengrass: failureHandlingPolicy ROLLBACK). Default True."""


class EdgeSiteArgs(TypedDict, total=False):
    """One edge site: a cluster, a node group on a shared cluster, or a Greengrass thing group."""

    name: Required[str]
    """Site name (a DNS label), unique in the deployment."""
    kind: Required[Literal["kubernetes", "fleet", "kubeedge", "openyurt", "greengrass"]]
    """``kubernetes`` (its own cluster, e.g. k3s, by ``kubeconfig``), ``fleet`` (a Fleet downstream cluster named ``cluster``), ``kubeedge`` / ``openyurt`` (``node_group`` on the cluster of ``kubeconfig``), ``greengrass`` (``thing_group_arn``)."""
    kubeconfig: NotRequired[pulumi.Input[str]]
    """kubernetes, kubeedge, openyurt: kubeconfig contents (or path) of the cluster (fleet: of the Fleet management cluster). Node groups of one cluster share it: give them the same string or the same Output object."""
    cluster: NotRequired[str]
    """fleet: the downstream cluster's name in Fleet (``clusters.fleet.cattle.io``)."""
    node_group: NotRequired[str]
    """kubeedge: the ``NodeGroup``; openyurt: the ``NodePool``."""
    thing_group_arn: NotRequired[pulumi.Input[str]]
    """greengrass: ARN of the IoT thing group of the site's core devices."""
    devices: NotRequired[int]
    """Devices (nodes, core devices) that each download the model and image. Default 1."""
    bandwidth_mbps: Required[float]
    """Sustained downlink of the site, megabits per second (> 0)."""
    link_window_utc: NotRequired[str]
    """``HH:MM-HH:MM`` (UTC) when the link is good (off-peak, unmetered); pre-staging is planned inside it. Default: any time."""
    window_bandwidth_mbps: NotRequired[float]
    """Downlink inside ``link_window_utc``, Mbit/s. Default ``bandwidth_mbps``."""
    gpu: NotRequired[str]
    """NVIDIA GPU of the site's devices, by catalog name (edge_gpus.csv, e.g. ``jetson-orin-nano``, ``T4``). Default: none (CPU)."""
    runtime: NotRequired[Literal["auto", "onnxruntime", "tensorrt"]]
    """``auto`` follows the deployment's runtime (TensorRT falls back to ONNX Runtime where TensorRT cannot run, said in the plan); ``tensorrt`` demands it. Default ``auto``."""
    replicas: NotRequired[int]
    """Edge server replicas (Kubernetes-based kinds). Default 1."""
    cpu: NotRequired[float]
    """vCPUs per replica. Default 1."""
    memory_mib: NotRequired[int]
    """Memory per replica, MiB. Default 1024."""
    cached: NotRequired[list[str]]
    """Digests (model or image layers) already on the site's devices; not transferred again."""
    cache_gib: NotRequired[float]
    """Local storage for the model, the previous model and the image, GiB. Default 8."""
    results_buffer_mib: NotRequired[float]
    """Store-and-forward buffer for results while offline, MiB. Default 256."""
    results_kib_per_second: NotRequired[float]
    """Rate results are produced, KiB/s (fills the buffer while offline). Default 1."""
    credential_validity_hours: NotRequired[float]
    """Shortest lifetime of a credential the site must renew from the cloud to keep serving (its client certificate). Default: not declared (the plan says it is unchecked)."""
    max_outage_hours: NotRequired[float]
    """Longest link outage the site must ride out. Default: the group's, else the deployment's."""


class EdgeSiteGroupArgs(TypedDict, total=False):
    """Sites grouped by region or production line."""

    name: Required[str]
    """Group name (a label on every site's objects)."""
    sites: Required[list[EdgeSiteArgs]]
    """The group's sites."""
    region: NotRequired[str]
    """Where the group is (a label, e.g. ``eu-north`` or ``line-3``). Default: the group name."""
    max_outage_hours: NotRequired[float]
    """Longest outage every site of the group must ride out. Default: the deployment's."""


class EdgeDeploymentArgs(TypedDict, total=False):
    """Arguments of ``EdgeDeployment``."""

    groups: Required[list[EdgeSiteGroupArgs]]
    """The fleet: sites grouped by region or line."""
    model: Required[EdgeModelArgs]
    """The model being rolled out."""
    previous_model: NotRequired[EdgeModelArgs]
    """The model sites of unpromoted waves keep, and the rollback target. Default: none (first rollout: unpromoted sites get nothing)."""
    image: Required[EdgeImageArgs]
    """Edge server image with ONNX Runtime (CPU)."""
    tensorrt_image: NotRequired[EdgeImageArgs]
    """Edge server image with TensorRT (ONNX Runtime's TensorRT execution provider). Required when any site runs TensorRT."""
    runtime: NotRequired[Literal["onnxruntime", "tensorrt"]]
    """Preferred runtime: ``onnxruntime`` (CPU) or ``tensorrt`` on sites whose GPU runs it. Default ``onnxruntime``."""
    rollout: Required[EdgeRolloutArgs]
    """Waves, promotion, gate, rollback."""
    max_outage_hours: NotRequired[float]
    """Longest link outage every site must ride out (disconnect contract). Default 24."""
    source_cloud: NotRequired[Literal["aws", "gcp"]]
    """Cloud the model and image are served from (egress price). Default: from the model URI (``s3://`` aws, ``gs://`` gcp, ECR / Artifact Registry hosts)."""
    source_region: NotRequired[str]
    """Region they are served from. Default: from the model URI where it names one, else required for pricing."""
    namespace: NotRequired[str]
    """Kubernetes namespace on every cluster, created by the component. Default ``edge-inference``."""
    port: NotRequired[int]
    """Port the edge server listens on. Default 8080."""
    tags: NotRequired[dict[str, str]]
    """Labels on every object (team, cost-center)."""


# -- declared features ----------------------------------------------------------------------------

_K8S_FEATURES = frozenset({Feature.EDGE_WAVES, Feature.EDGE_GATE, Feature.EDGE_ROLLBACK, Feature.EDGE_PRESTAGE, Feature.EDGE_TENSORRT,
                           Feature.EDGE_OCI_MODEL})
FEATURES: dict[str, FeatureSupport] = {
    "kubernetes": FeatureSupport("kubernetes-sites", _K8S_FEATURES),
    "fleet": FeatureSupport("fleet-bundle", _K8S_FEATURES),
    "kubeedge": FeatureSupport("kubeedge-edgeapplication", _K8S_FEATURES),
    "openyurt": FeatureSupport("openyurt-yurtappset", _K8S_FEATURES),
    "greengrass": FeatureSupport(
        "greengrass-v2",
        frozenset({Feature.EDGE_WAVES, Feature.EDGE_GATE, Feature.EDGE_ROLLBACK}),
        {
            Feature.EDGE_PRESTAGE: "a Greengrass deployment downloads artifacts when it runs on the device; there is no download-only deployment, so pre-staging is the deployment itself",
            Feature.EDGE_TENSORRT: "gpuplane's Greengrass recipe runs the ONNX Runtime (CPU) server; a TensorRT component needs a JetPack-specific artifact per device type, which it does not build",
            Feature.EDGE_OCI_MODEL: "Greengrass artifacts come from s3:// (or docker: images), not OCI artifacts",
        },
    ),
}
"""Per site kind: what its backend offers and, for each feature it lacks, why. The gate and the
rollback run on the device (the edge server), so every backend that delivers the contract has them."""


# -- plans ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelPlan:
    uri: str
    digest: str
    size_mib: float
    quantization: str
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"uri": self.uri, "digest": self.digest, "sizeMib": self.size_mib, "quantization": self.quantization, "name": self.name}


@dataclass(frozen=True)
class ImagePlan:
    ref: str
    layers: tuple[tuple[str, float], ...]
    """(digest, MiB) per layer."""

    @property
    def size_mib(self) -> float:
        return sum(m for _, m in self.layers)


@dataclass(frozen=True)
class GatePlan:
    p99_latency_ms: float
    min_agreement: float
    sample_uri: str
    top_k: int
    min_examples: int

    def to_json(self) -> dict[str, Any]:
        return {"p99LatencyMs": self.p99_latency_ms, "minAgreement": self.min_agreement, "sampleUri": self.sample_uri, "topK": self.top_k, "minExamples": self.min_examples}


@dataclass(frozen=True)
class TransferPlan:
    """What one site downloads for the new model, how long it takes and what it costs."""

    bytes: int
    """Model plus image layers not already cached, times the site's devices."""
    items: tuple[str, ...]
    """What is transferred, e.g. ``model 12.0 MiB``, ``layer sha256:ab12.. 30.0 MiB``."""
    seconds: float
    """At the site's declared bandwidth."""
    cost_usd: float | None
    """At the catalog's egress price; None when the source is not priced."""
    window: str | None
    """The good-link window (``HH:MM-HH:MM`` UTC), None: any time."""
    window_hours: float | None
    window_seconds: float
    """Transfer time at the window bandwidth."""
    windows_needed: int
    """Good-link windows the pre-stage spans (0: nothing to move; 1: fits in one)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "bytes": self.bytes, "items": list(self.items), "seconds": round(self.seconds, 1),
            "costUsd": None if self.cost_usd is None else round(self.cost_usd, 4), "window": self.window,
            "windowHours": self.window_hours, "windowSeconds": round(self.window_seconds, 1), "windowsNeeded": self.windows_needed,
        }


@dataclass(frozen=True)
class OfflinePlan:
    """The disconnect contract of one site."""

    hours: float
    """How long the site serves with no link (inf: nothing it depends on runs out)."""
    limited_by: str
    """What ends it first: ``results-buffer``, ``credentials``, ``cache`` or ``nothing``."""
    cache_needed_gib: float
    cache_gib: float
    results_buffer_hours: float
    credential_hours: float | None
    max_outage_hours: float
    unchecked: tuple[str, ...] = ()
    """Parts of the contract the site did not declare (e.g. credentials)."""

    @property
    def ok(self) -> bool:
        return self.hours >= self.max_outage_hours

    def to_json(self) -> dict[str, Any]:
        hours = None if self.hours == float("inf") else round(self.hours, 1)
        return {
            "offlineHours": hours, "limitedBy": self.limited_by, "maxOutageHours": self.max_outage_hours, "ok": self.ok,
            "cacheNeededGib": round(self.cache_needed_gib, 3), "cacheGib": self.cache_gib,
            "resultsBufferHours": round(self.results_buffer_hours, 1), "credentialHours": self.credential_hours, "unchecked": list(self.unchecked),
        }


@dataclass(frozen=True)
class SitePlan:
    name: str
    group: str
    region: str
    kind: str
    wave: int
    """1-based wave that brings the new model to this site."""
    promoted: bool
    """Whether this site runs the new model now (its wave is promoted)."""
    runtime: str
    runtime_reason: str
    image: str
    replicas: int
    cpu: float
    memory_mib: int
    devices: int
    bandwidth_mbps: float
    transfer: TransferPlan
    offline: OfflinePlan
    results_buffer_mib: float = DEFAULT_RESULTS_BUFFER_MIB
    kubeconfig: Any = None
    cluster: str | None = None
    node_group: str | None = None
    thing_group_arn: Any = None
    gpu: str | None = None


@dataclass(frozen=True)
class WavePlan:
    index: int
    name: str
    sites: tuple[str, ...]
    percent: float
    """Cumulative share of sites on the new model after this wave."""
    gate: GatePlan
    promoted: bool
    bytes: int
    seconds: float
    """Sites transfer in parallel: the slowest site's time."""
    cost_usd: float | None
    max_unavailable: int
    """Sites of the wave updating at once."""


@dataclass(frozen=True)
class EdgePlan:
    name: str
    model: ModelPlan
    previous_model: ModelPlan | None
    image: ImagePlan
    tensorrt_image: ImagePlan | None
    runtime: str
    sites: tuple[SitePlan, ...]
    waves: tuple[WavePlan, ...]
    promoted_waves: int
    auto_rollback: bool
    max_unavailable_percent: int
    namespace: str
    port: int
    source: tuple[str, str] | None
    """(cloud, region) the model and image are served from; None when unknown."""
    egress_usd_per_gib: float | None
    tags: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def site(self, name: str) -> SitePlan:
        return next(s for s in self.sites if s.name == name)

    def kinds(self) -> list[str]:
        return sorted({s.kind for s in self.sites})

    def site_env(self, site: SitePlan) -> dict[str, str]:
        """The contract's keys for one site (module docstring), as strings."""
        wave = self.waves[site.wave - 1]
        model = self.model if site.promoted else self.previous_model
        fallback = self.previous_model if site.promoted else None
        gate = wave.gate
        values = [
            site.name, site.group, str(site.wave), (model or self.model).name, model.uri if model else "", model.digest if model else "",
            fallback.uri if fallback else "", fallback.digest if fallback else "", site.runtime, f"{gate.p99_latency_ms:g}",
            f"{gate.min_agreement:g}", str(gate.top_k), str(gate.min_examples), gate.sample_uri, "true" if self.auto_rollback else "false",
            f"{site.results_buffer_mib:g}", str(self.port),
            "" if site.promoted else self.model.uri, "" if site.promoted else self.model.digest,
            "" if site.promoted or site.transfer.window is None else site.transfer.window,
        ]
        return dict(zip(ENV_KEYS, values, strict=True))

    def summary(self) -> dict[str, Any]:
        """The plan as the component's ``gpuplane`` input (rendered by ``gpuplane plan``)."""
        return {
            "edge": True,
            "model": self.model.to_json(),
            "previousModel": self.previous_model.to_json() if self.previous_model else None,
            "runtime": self.runtime,
            "promotedWaves": self.promoted_waves,
            "autoRollback": self.auto_rollback,
            "source": list(self.source) if self.source else None,
            "egressUsdPerGib": self.egress_usd_per_gib,
            "waves": [
                {"index": w.index, "name": w.name, "sites": list(w.sites), "percent": w.percent, "promoted": w.promoted, "gate": w.gate.to_json(),
                 "bytes": w.bytes, "seconds": round(w.seconds, 1), "costUsd": None if w.cost_usd is None else round(w.cost_usd, 4),
                 "maxUnavailable": w.max_unavailable}
                for w in self.waves
            ],
            "sites": [
                {"name": s.name, "group": s.group, "region": s.region, "kind": s.kind, "wave": s.wave, "promoted": s.promoted,
                 "runtime": s.runtime, "runtimeReason": s.runtime_reason, "image": s.image, "devices": s.devices,
                 "bandwidthMbps": s.bandwidth_mbps, "transfer": s.transfer.to_json(), "offline": s.offline.to_json()}
                for s in self.sites
            ],
            "notes": list(self.notes),
            "tags": dict(self.tags),
        }


__all__ = [
    "DEFAULT_NAMESPACE",
    "ENV_KEYS",
    "FEATURES",
    "SITE_KINDS",
    "TYPE_TOKEN",
    "EdgeDeploymentArgs",
    "EdgeGateArgs",
    "EdgeImageArgs",
    "EdgeImageLayerArgs",
    "EdgeModelArgs",
    "EdgePlan",
    "EdgeRolloutArgs",
    "EdgeSiteArgs",
    "EdgeSiteGroupArgs",
    "EdgeWaveArgs",
    "GatePlan",
    "ImagePlan",
    "ModelPlan",
    "OfflinePlan",
    "SitePlan",
    "TransferPlan",
    "WavePlan",
]
