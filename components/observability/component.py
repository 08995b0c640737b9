"""Observability: one view per cluster of requests, cold starts, queueing, training, GPUs and cost.

A component of its own, next to ``KubernetesCluster`` rather than an argument of it, because it
has its own lifecycle and owners: a platform team adds it to a cluster that already runs, removes
it without touching the cluster, and points it at an existing cluster whose control plane it does
not own. It takes the cluster and creates, as its children (components/observability/prometheus.py):

- ``kube-prometheus-stack`` (Helm, pinned; Prometheus Operator, Prometheus, Alertmanager,
  kube-state-metrics, node exporter and Grafana), told to pick up every PodMonitor,
  ServiceMonitor and PrometheusRule in the cluster (not only those carrying its release label),
  with Grafana's dashboard sidecar watching ConfigMaps labelled ``grafana_dashboard: "1"``;
  Grafana's admin password is generated (pulumi-random) into a Secret, never the chart's default.
- PodMonitors for the GPU metrics (the DCGM exporter of every ``GpuNodePool`` on EKS and existing
  clusters, GKE's managed DCGM exporter in ``gke-managed-system`` on GKE; ``honorLabels`` keeps
  the GPU's workload ``namespace``/``pod``), the model server's pods (label
  ``gpuplane.dev/endpoint``, port 8080, ``/metrics``), training pods (label ``gpuplane.dev/job``,
  port ``training_metrics_port``) and the local-contract activator / router when they run in the
  cluster (label ``gpuplane.dev/component`` = ``activator`` | ``router``).
- Three Grafana dashboards as code (components/observability/dashboards/*.json): endpoints (request
  rate, p50/p99, cold starts by phase, queue, tier split), training (steps/s, checkpoints,
  preemptions, restarts) and GPUs (utilisation, memory, idle GPU-hours and their cost), each in
  a ConfigMap for the sidecar.
- One PrometheusRule: cold-start SLO breach (a replica's measured cold start, and the activator's
  held-request p99), idle GPUs, and training stuck in a preemption loop (restarted again and again
  without making progress).

Prometheus choice (``prometheus``): ``in-cluster`` everywhere. The clouds' managed Prometheus is a
declared feature that no implementation offers yet (``managed-prometheus``), with the reason.
What it does not do: remote-write, long-term storage, persistent Prometheus volumes (the chart
keeps ``retention_days`` on the pod's disk), log or trace collection (traces go wherever the
workloads' ``OTEL_*`` variables send them).
"""

from __future__ import annotations

import pulumi

from components.cluster import KubernetesCluster
from components.errors import Problems
from components.observability.spec import TYPE_TOKEN, ObservabilityArgs, ObservabilityPlan, plan_observability


class Observability(pulumi.ComponentResource):
    """kube-prometheus-stack, monitors, dashboards and alert rules for one cluster (module docstring).

    Outputs: ``namespace``, ``grafana_service`` (``<namespace>/<service>`` to port-forward, None without
    Grafana), ``dashboards`` (the dashboards' uids), ``alerts`` (the alert names)."""

    plan: ObservabilityPlan
    namespace: pulumi.Output[str]
    """The namespace the monitoring stack runs in."""
    grafana_service: pulumi.Output[str | None]
    """Grafana's Service as ``<namespace>/<service>`` (to port-forward); None without Grafana."""
    dashboards: pulumi.Output[list[str]]
    """The uids of the Grafana dashboards it installs."""
    alerts: pulumi.Output[list[str]]
    """The names of the alert rules it installs."""

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None):
        cluster = args.get("cluster")
        if not isinstance(cluster, KubernetesCluster):
            problems = Problems("Observability", name)
            problems.add("cluster", cluster, "must be a KubernetesCluster.", "pass the KubernetesCluster to observe.")
            problems.raise_if_any()
        assert isinstance(cluster, KubernetesCluster)  # for the type checker; checked above
        plan = plan_observability(name, args, cluster.facts.cloud, cluster.facts.tags)  # raises before anything is registered
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        from components.observability.prometheus import create_observability

        created = create_observability(self, name, plan, cluster)
        self.namespace = pulumi.Output.from_input(plan.namespace)
        self.grafana_service = created.grafana_service
        self.dashboards = pulumi.Output.from_input(created.dashboard_uids)
        self.alerts = pulumi.Output.from_input(created.alert_names)
        self.register_outputs({"namespace": self.namespace, "grafana_service": self.grafana_service,
                               "dashboards": self.dashboards, "alerts": self.alerts})
