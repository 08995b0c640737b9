"""The NVIDIA device plugin and DCGM exporter, configured for one GPU pool.

Used by every implementation whose nodes do not come with a managed device plugin (EKS managed
node groups, Karpenter pools, existing clusters); GKE installs its own. One Helm release per
pool, pinned to the pool's nodes by its node selector, so each pool carries its own sharing
config (time-slicing, MPS or MIG strategy) — the device plugin's documented config-file format:
https://github.com/NVIDIA/k8s-device-plugin#shared-access-to-gpus

A low-level building block: it imports no capability (``GpuPoolShape`` is what it needs of a pool).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.kubernetes.charts import chart_args


class _Scheduling(Protocol):
    @property
    def node_selector(self) -> Mapping[str, str]: ...

    @property
    def tolerations(self) -> Sequence[Mapping[str, str]]: ...


class GpuPoolShape(Protocol):
    """What the device plugin needs of a pool (GpuNodePool's ``NodePoolPlan`` has it)."""

    @property
    def sharing(self) -> str | None: ...

    @property
    def sharing_replicas(self) -> int: ...

    @property
    def scheduling(self) -> _Scheduling: ...


DEVICE_PLUGIN_REPO = "https://nvidia.github.io/k8s-device-plugin"
DEVICE_PLUGIN_CHART = "nvidia-device-plugin"
DEVICE_PLUGIN_VERSION = "0.17.4"
DCGM_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_CHART = "dcgm-exporter"
DCGM_VERSION = "4.4.1"
NAMESPACE = "nvidia-device-plugin"


def sharing_config(plan: GpuPoolShape) -> dict[str, Any]:
    """The device plugin config file for the pool's sharing mode."""
    config: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": "single" if plan.sharing == "mig" else "none"}}
    if plan.sharing in ("time-slicing", "mps"):
        key = "timeSlicing" if plan.sharing == "time-slicing" else "mps"
        config["sharing"] = {key: {"resources": [{"name": "nvidia.com/gpu", "replicas": plan.sharing_replicas}]}}
    return config


NFD_NAME_MAX = 63 - len("-master")
"""Longest name for the node-feature-discovery subchart's objects: it names its Service
``<fullname>-master``, and a Service name is a DNS label (63 characters at most)."""


def nfd_fullname(pool: str) -> str:
    """The node-feature-discovery subchart's ``fullnameOverride`` for a pool's release.

    Without it the subchart names its objects after the release (``<release>-node-feature-discovery``,
    cut to 63, then ``-master``), and the release name is the resource name plus Pulumi's 9-character
    random suffix: from a 23-character pool name on, the master Service is over 63 characters and the
    API server rejects it. Unique per pool (several pools share the namespace); long names are cut
    and keep a short hash."""
    name = f"{pool}-nfd"
    if len(name) <= NFD_NAME_MAX:
        return name
    digest = hashlib.sha256(pool.encode()).hexdigest()[:6]
    return f"{pool[: NFD_NAME_MAX - len('-nfd') - 7].rstrip('-')}-{digest}-nfd"


DEVICE_PLUGIN_NAME_MAX = 63 - len("-gpu-feature-discovery")
"""Longest ``fullname`` that keeps the chart's three DaemonSets apart: it names them ``<fullname>``,
``<fullname>-mps-control-daemon`` and ``<fullname>-gpu-feature-discovery``, each cut to 63 characters
(nvidia-device-plugin 0.17.4, templates/daemonset-*.yml)."""


def device_plugin_fullname(pool: str) -> str:
    """The device plugin chart's ``fullnameOverride`` for a pool's release.

    Without it the chart names its DaemonSets after the release (``<release>-nvidia-device-plugin``, cut
    to 63): from a 20-character pool name on (Pulumi adds 9 random characters to the release), the device
    plugin's and the MPS daemon's names are cut to the same 63 characters and the second DaemonSet is
    refused with "already exists" (found in the sandbox with a pool ``batchtc-l4-on-demand``). Unique per
    pool; long names are cut and keep a short hash."""
    name = f"{pool}-ndp"
    if len(name) <= DEVICE_PLUGIN_NAME_MAX:
        return name
    digest = hashlib.sha256(pool.encode()).hexdigest()[:6]
    return f"{pool[: DEVICE_PLUGIN_NAME_MAX - len('-ndp') - 7].rstrip('-')}-{digest}-ndp"


HELM_RELEASE_NAME_MAX = 53
"""Helm refuses a longer release name."""


def release_name(resource_name: str) -> str | None:
    """The Helm release name to set for a per-pool release, or None to let Pulumi autoname it.

    Pulumi names a release ``<resource name>-<8 random hex>``; when that would pass Helm's 53
    characters (a pool name of 30 or more), the release gets a fixed name instead: the resource
    name, cut, with a short hash that keeps pools apart."""
    if len(resource_name) + len("-0123abcd") <= HELM_RELEASE_NAME_MAX:
        return None
    if len(resource_name) <= HELM_RELEASE_NAME_MAX:
        return resource_name
    digest = hashlib.sha256(resource_name.encode()).hexdigest()[:6]
    return f"{resource_name[: HELM_RELEASE_NAME_MAX - 7].rstrip('-')}-{digest}"


def device_plugin_values(plan: GpuPoolShape, pool: str) -> dict[str, Any]:
    """Helm values of the device plugin release for one pool (``pool``: the GpuNodePool's name)."""
    return {
        "config": {"map": {"default": yaml.safe_dump(sharing_config(plan), sort_keys=True)}, "default": "default"},
        "migStrategy": "single" if plan.sharing == "mig" else "none",
        "gfd": {"enabled": True},
        "fullnameOverride": device_plugin_fullname(pool),
        "nfd": {"fullnameOverride": nfd_fullname(pool)},
        "nodeSelector": dict(plan.scheduling.node_selector),
        "tolerations": [dict(t) for t in plan.scheduling.tolerations],
    }


def create_device_plugin(parent: pulumi.Resource, name: str, plan: GpuPoolShape, provider: k8s.Provider, *, dcgm: bool = True,
                         chart_source: str | None = None) -> list[pulumi.Resource]:
    """Device plugin (and DCGM exporter) releases for the pool, children of ``parent``; charts from
    ``chart_source`` (the cluster's, ``components/kubernetes/charts.py``)."""
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    created: list[pulumi.Resource] = [
        k8s.helm.v3.Release(
            f"{name}-device-plugin",
            k8s.helm.v3.ReleaseArgs(
                name=release_name(f"{name}-device-plugin"),
                **chart_args(chart_source, DEVICE_PLUGIN_CHART, DEVICE_PLUGIN_VERSION, DEVICE_PLUGIN_REPO),
                namespace=NAMESPACE,
                create_namespace=True,
                values=device_plugin_values(plan, name),
            ),
            opts=opts,
        )
    ]
    if dcgm:
        created.append(
            k8s.helm.v3.Release(
                f"{name}-dcgm-exporter",
                k8s.helm.v3.ReleaseArgs(
                    name=release_name(f"{name}-dcgm-exporter"),
                    **chart_args(chart_source, DCGM_CHART, DCGM_VERSION, DCGM_REPO),
                    namespace=NAMESPACE,
                    create_namespace=True,
                    values={"nodeSelector": dict(plan.scheduling.node_selector), "tolerations": [dict(t) for t in plan.scheduling.tolerations], "serviceMonitor": {"enabled": False}},
                ),
                opts=opts,
            )
        )
    return created
