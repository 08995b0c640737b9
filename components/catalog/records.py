"""The catalog's record types, constants and error: plain frozen dataclasses, one per kind of fact.

Pure data; the loader and the lookups are in ``__init__.py``. Imports nothing of gpuplane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Cloud = Literal["aws", "gcp", "kubernetes"]
Capacity = Literal["on_demand", "spot", "capacity_block"]

DATA_DIR = Path(__file__).parent / "data"
CAPACITIES: tuple[Capacity, ...] = ("on_demand", "spot", "capacity_block")
# Public catalogs have shipped 700.0, 999.0 and 9999.0 as "unknown": nothing real costs that
# much per hour, and the dearest row we ship (p5e) is about 110.
MAX_PLAUSIBLE_USD_PER_HOUR = 500.0
SENTINEL_PRICES = frozenset({700.0, 999.0, 999.99, 9999.0, 99999.0})
HOURS_PER_MONTH = 730.0
# PCIe 5.0 x16 moves about 63 GB/s per direction (REFERENCE.md §7): no weight path is faster.
MAX_PLAUSIBLE_GIB_PER_SECOND = 60.0
SERVING_RUNTIMES = ("reference", "vllm", "custom")


class CatalogError(ValueError):
    """A catalog file is wrong; the message names the file, line and fix."""


@dataclass(frozen=True)
class Accelerator:
    name: str
    """Canonical name, e.g. ``H100``, ``A100-80GB``, ``L4``."""
    vendor: str
    memory_gib: float
    bf16_dense_tflops: float
    interconnect: str
    """``nvlink`` or ``pcie``."""
    mig_profiles: tuple[str, ...]
    """MIG profiles, empty when the GPU has no MIG."""
    gcp_accelerator_type: str | None
    """GCP's ``guest_accelerators.type`` name, None when GCP does not offer it."""

    @property
    def supports_mig(self) -> bool:
        return bool(self.mig_profiles)


@dataclass(frozen=True)
class InstanceType:
    cloud: Cloud
    name: str
    accelerator: str
    """Canonical accelerator name; empty for a CPU-only type (``gpus == 0``)."""
    gpus: int
    vcpus: int
    memory_gib: float
    efa_interfaces: int = 0
    """AWS EFA interfaces (0: no EFA). For GCP, 1 when the machine type has GPUDirect RDMA."""
    service: str = "ec2"
    """``ec2`` or ``sagemaker`` on AWS, ``compute`` on GCP."""

    @property
    def supports_efa(self) -> bool:
        return self.efa_interfaces > 0


@dataclass(frozen=True)
class Offering:
    """One instance/machine type in one region, with the zones that offer it and its prices."""

    cloud: Cloud
    instance_type: InstanceType
    region: str
    zones: tuple[str, ...]
    usd_per_hour: dict[Capacity, float]
    """Whole-node price per capacity type offered (GCP: host + GPUs)."""

    def price(self, capacity: Capacity) -> float | None:
        return self.usd_per_hour.get(capacity)


@dataclass(frozen=True)
class PriceRow:
    usd_per_hour: float
    source: str
    fetched_at: str


@dataclass(frozen=True)
class CloudFacts:
    cloud: Cloud
    spot_notice_seconds: int
    notice_poll_seconds: int
    notice_mechanism: str
    node_provision_seconds: int
    """Typical time for a new GPU node to join the cluster (cold-start budget input)."""


@dataclass(frozen=True)
class Region:
    cloud: Cloud
    name: str
    zones: tuple[str, ...]
    jurisdiction: str
    """Data-residency area: ``us``, ``eu``, ``apac``."""
    latitude: float
    longitude: float

    def distance_km(self, other: Region) -> float:
        """Great-circle distance, the data-locality measure used by ``gpuplane offers``."""
        lat1, lon1, lat2, lon2 = map(math.radians, (self.latitude, self.longitude, other.latitude, other.longitude))
        h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        return 2 * 6371.0 * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class ServerlessRate:
    cloud: Cloud
    service: str
    unit: str
    region: str
    usd: float
    source: str
    fetched_at: str


@dataclass(frozen=True)
class StorageBandwidth:
    """How fast weights move along one path (bucket, volume, registry, loader), for cold-start budgets."""

    path: str
    """Identifier, e.g. ``s3-sync``, ``gcs-stream``, ``pvc-ebs-gp3``."""
    medium: str
    """What moves the bytes, in words."""
    gib_per_second: float
    """Sustained throughput one replica gets, GiB/s (conservative: a budget must err long)."""
    source: str
    fetched_at: str


EGRESS_SCOPES = ("same-region", "same-jurisdiction", "other-jurisdiction", "other-cloud")
"""How far data moves, from the source's point of view: inside its region, to another region of the same
cloud in the same data-residency area, to another area, or out to another cloud (the internet)."""


@dataclass(frozen=True)
class Egress:
    """What moving data out of a region costs and how fast it goes (egress.csv), per source cloud and scope."""

    cloud: Cloud
    """The cloud the data leaves (the source bills the egress)."""
    scope: str
    """One of ``EGRESS_SCOPES``."""
    usd_per_gib: float
    """Egress price per GiB (first volume tier)."""
    gib_per_second: float
    """Sustained copy throughput budgeted for the path (conservative)."""
    source: str
    fetched_at: str

    def transfer_seconds(self, gib: float) -> float:
        return gib / self.gib_per_second if gib > 0 else 0.0


@dataclass(frozen=True)
class EngineStart:
    """Time a serving runtime takes from process start to ready, excluding weight loading."""

    runtime: str
    """``reference``, ``vllm`` or ``custom``."""
    seconds: int
    source: str
    fetched_at: str


@dataclass(frozen=True)
class BatchLimit:
    """A hard limit of a batch platform (batch_limits.csv), with where it is documented."""

    platform: str
    """``cloud-run``, ``aws-batch``, ``sagemaker-processing``, ``sagemaker-transform``, ``lambda`` or ``kueue``."""
    limit: str
    """e.g. ``gpu-task-timeout``, ``max-array-size``."""
    value: float
    unit: str
    """``seconds``, ``tasks``, ``attempts``, ``instances``, ``megabytes`` or ``gpus``."""
    source: str
    fetched_at: str


@dataclass(frozen=True)
class EdgeGpu:
    """A GPU an edge site may declare (``EdgeDeployment`` sites), with what its architecture runs."""

    name: str
    """Name a site declares, e.g. ``jetson-orin-nano``, ``T4``."""
    architecture: str
    """NVIDIA architecture, e.g. ``Ampere``."""
    compute_capability: str
    """CUDA compute capability, e.g. ``8.7``."""
    tensorrt: bool
    """Whether a current TensorRT (the one gpuplane's edge TensorRT image ships) builds engines for it."""
    note: str
    """Why not, when ``tensorrt`` is false; else empty."""
    source: str
    fetched_at: str
