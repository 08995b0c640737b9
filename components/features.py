"""Optional features, declared per implementation with a reason for each one missing.

Each implementation of a component publishes a ``FeatureSupport``: the features it offers and,
for every one it lacks, why. A planner asks ``support.check(requested)`` once; every
unsupported request becomes one ``Problem`` naming the feature, the implementation and the
reason, so a user learns about all of them at once (SkyPilot's CloudImplementationFeatures).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from components.errors import Problem


class Feature(StrEnum):
    # node pools
    SPOT = "spot"
    SCALE_FROM_ZERO = "scale-from-zero"
    MIG = "mig"
    TIME_SLICING = "time-slicing"
    MPS = "mps"
    EFA = "efa"
    COMPACT_PLACEMENT = "compact-placement"
    CREATES_NODES = "creates-nodes"
    # training
    GANG_SCHEDULING = "gang-scheduling"
    CHECKPOINT_BUCKET = "checkpoint-bucket"
    INTERRUPTION_HANDLING = "interruption-handling"
    RESERVED_CAPACITY = "reserved-capacity"
    # inference
    SCALE_TO_ZERO = "scale-to-zero"
    REQUEST_HOLDING = "request-holding"
    GPU_SHARING = "gpu-sharing"
    STREAMING = "streaming"
    LARGE_REQUESTS = "large-requests"
    # inference: bring your own model server, and large-model cold-start aids
    CUSTOM_COMMAND = "custom-command"
    CUSTOM_PORT = "custom-port"
    CUSTOM_PROBES = "custom-probes"
    IMAGE_PREPULL = "image-prepull"
    WEIGHTS_VOLUME = "weights-volume"
    STREAMING_WEIGHT_LOADER = "streaming-weight-loader"
    # feature stores
    MANAGED_ONLINE_STORE = "managed-online-store"
    # model registry
    MANAGED_DATABASE = "managed-database"
    WORKLOAD_IDENTITY = "workload-identity"
    # model pipeline
    BUCKET_EVENTS = "bucket-events"
    SCHEDULED_RETRAINING = "scheduled-retraining"
    CANARY_ROLLOUT = "canary-rollout"
    # batch jobs
    SCHEDULED_RUNS = "scheduled-runs"
    RETRY_EXIT_CODES = "retry-exit-codes"
    # observability
    GPU_METRICS = "gpu-metrics"
    MANAGED_PROMETHEUS = "managed-prometheus"
    # edge deployment
    EDGE_WAVES = "edge-waves"
    EDGE_GATE = "edge-on-device-gate"
    EDGE_ROLLBACK = "edge-auto-rollback"
    EDGE_PRESTAGE = "edge-prestage"
    EDGE_TENSORRT = "edge-tensorrt"
    EDGE_OCI_MODEL = "edge-oci-model"


@dataclass(frozen=True)
class FeatureSupport:
    implementation: str
    """Name of the implementation, e.g. ``eks-managed-node-group``."""
    supported: frozenset[Feature]
    missing: Mapping[Feature, str] = field(default_factory=dict)
    """Reason for each feature the implementation lacks."""

    def __post_init__(self) -> None:
        overlap = self.supported & set(self.missing)
        if overlap:
            raise ValueError(f"{self.implementation}: features both supported and missing: {sorted(f.value for f in overlap)}")

    def supports(self, feature: Feature) -> bool:
        return feature in self.supported

    def check(self, requested: Iterable[tuple[Feature, str, object]]) -> list[Problem]:
        """One problem per requested (feature, property path, value) this implementation lacks."""
        problems = []
        for feature, path, value in requested:
            if feature in self.supported:
                continue
            reason = self.missing.get(feature, "not implemented")
            problems.append(
                Problem(path, value, f"{self.implementation} does not support {feature.value}: {reason}.", "remove the setting or choose an implementation that supports it.")
            )
        return problems

    def table(self) -> list[tuple[str, str, str]]:
        """(feature, "yes"/"no", reason) rows for docs and ``gpuplane`` output."""
        rows = [(f.value, "yes", "") for f in sorted(self.supported, key=lambda f: f.value)]
        rows += [(f.value, "no", r) for f, r in sorted(self.missing.items(), key=lambda kv: kv[0].value)]
        return rows
