"""Where a cluster's Helm charts come from: their upstream repositories, a mirror, or a folder of archives.

Every Helm release gpuplane installs names its chart by upstream repository (or ``oci://``
reference), name and pinned version. An air-gapped cluster, or a test lane with no network, points
the cluster's ``chart_source`` elsewhere and every release on that cluster follows:

- unset: the upstream repository or ``oci://`` reference (the default);
- an ``http(s)://`` URL: a Helm repository mirroring the charts (``<url>/index.yaml``), by name;
- an ``oci://`` URL: a registry mirroring them, ``<url>/<name>``;
- anything else: a folder holding the packaged charts as ``<name>-<version>.tgz`` (what ``helm pull``
  writes), e.g. ``../shared/charts``; the release's chart is that archive's path. A relative folder is
  resolved by the Pulumi Kubernetes provider against its working directory, so stacks pass an absolute one.

A building block: it imports no capability. It reads nothing (the archive need not exist at plan
time; Helm reports a missing one at ``pulumi up``).
"""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s


def chart_name(chart: str) -> str:
    """``oci://registry.k8s.io/kueue/charts/kueue`` -> ``kueue``; a plain name stays as it is."""
    return chart.rstrip("/").rsplit("/", 1)[-1]


def chart_args(source: str | None, chart: str, version: str, repo: str | None = None) -> dict[str, Any]:
    """The ``chart``, ``version`` and ``repository_opts`` of a ``helm.v3.ReleaseArgs`` for a pinned chart.

    ``chart`` and ``repo`` are the upstream ones (``repo`` None for an ``oci://`` chart); ``source`` is
    the cluster's ``chart_source``."""
    name = chart_name(chart)
    if not source:
        args: dict[str, Any] = {"chart": chart, "version": version}
        if repo:
            args["repository_opts"] = k8s.helm.v3.RepositoryOptsArgs(repo=repo)
        return args
    base = source.rstrip("/")
    if base.startswith(("http://", "https://")):
        return {"chart": name, "version": version, "repository_opts": k8s.helm.v3.RepositoryOptsArgs(repo=base)}
    if base.startswith("oci://"):
        return {"chart": f"{base}/{name}", "version": version}
    # A folder of archives: Helm loads a chart path as it is; the version stays for the record
    # (policies and `gpuplane plan` look the chart up by name and version).
    return {"chart": f"{base}/{name}-{version}.tgz", "version": version}
