"""The service model of an inference endpoint: service time, concurrency, cold-start phases.

One replica holds one GPU and serves up to ``concurrency`` requests at once, each taking
``service_time_s``. A replica started from nothing is ready after the sum of its cold-start
phases; which phases apply depends on where it runs (a Kubernetes node that must be provisioned
pays all three; a serverless instance pays the platform's instance start and the model load).
Defaults follow REFERENCE.md §7: EKS node start 1–1.5 min (75 s), image pull of a multi-GB
serving image (45 s), weight load of a ~16 GB model at ~0.8 GB/s (20 s), Cloud Run L4 instance
ready in ~5 s. All are plain inputs; nothing here reads the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ServiceModelError(ValueError):
    """A service-model parameter is out of range; the message names the field and the fix."""


@dataclass(frozen=True)
class ColdStart:
    """Cold-start time by phase, in seconds."""

    node_provisioning_s: float = 75.0
    """Time to get a GPU node into the cluster (EKS/Karpenter 1–1.5 min). 0 when nodes stay up."""
    image_pull_s: float = 45.0
    """Time to pull the serving image onto a fresh node (minutes for 10 GB images; less if cached)."""
    model_load_s: float = 20.0
    """Process and CUDA init plus weight load until the replica is ready."""
    serverless_instance_start_s: float = 5.0
    """Managed serverless instance start before the model load (Cloud Run L4: ~5 s)."""

    def validate(self) -> None:
        bad = [f"{k}={v}" for k, v in self.__dict__.items() if not (np.isfinite(v) and v >= 0)]
        if bad:
            raise ServiceModelError(f"ColdStart: {', '.join(bad)} must be finite and ≥ 0 seconds")

    @property
    def node_s(self) -> float:
        """Cold start of a replica that needs a new node: provisioning + image pull + model load."""
        return self.node_provisioning_s + self.image_pull_s + self.model_load_s

    @property
    def pod_s(self) -> float:
        """Cold start of a replica on a node that is already up with the image cached: model load only."""
        return self.model_load_s

    @property
    def serverless_s(self) -> float:
        """Cold start of a managed serverless instance: instance start + model load."""
        return self.serverless_instance_start_s + self.model_load_s


@dataclass(frozen=True)
class ServiceModel:
    """How an endpoint serves requests."""

    service_time_s: float | tuple[float, ...] = 0.5
    """Time to serve one request, seconds; one value, or one per endpoint of the trace."""
    concurrency: int = 4
    """Requests one replica serves at once (Knative containerConcurrency, Cloud Run concurrency)."""
    cold_start: ColdStart = ColdStart()
    """Cold-start phases."""

    def validate(self, n_endpoints: int | None = None) -> None:
        problems = []
        st = np.atleast_1d(np.asarray(self.service_time_s, dtype=np.float64))
        if not (np.all(np.isfinite(st)) and np.all(st > 0)):
            problems.append(f"service_time_s={self.service_time_s} must be > 0 seconds")
        if n_endpoints is not None and st.size not in (1, n_endpoints):
            problems.append(f"service_time_s has {st.size} values; give one, or one per endpoint ({n_endpoints})")
        if int(self.concurrency) != self.concurrency or self.concurrency < 1:
            problems.append(f"concurrency={self.concurrency} must be an integer ≥ 1")
        if problems:
            raise ServiceModelError("ServiceModel: " + "; ".join(problems))
        self.cold_start.validate()

    def service_times(self, n_endpoints: int) -> np.ndarray:
        """Service time per endpoint, float64 array of length ``n_endpoints``."""
        st = np.atleast_1d(np.asarray(self.service_time_s, dtype=np.float64))
        return np.broadcast_to(st, (n_endpoints,)).copy() if st.size == 1 else st
