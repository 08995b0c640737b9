"""EdgeDeployment's Kubernetes objects for one site, as pure dicts: the edge server's ConfigMap, Deployment and Service.

Shared by the Kubernetes-based backends: ``kubernetes_sites.py`` applies them to each site's cluster,
``fleet.py`` ships them in a Bundle, ``kubeedge.py`` and ``openyurt.py`` use the Deployment as the
template of an ``EdgeApplication`` / ``YurtAppSet``. The site's contract (spec.py's module
docstring) reaches the container as environment: ``envFrom`` the ConfigMap where gpuplane applies
the objects itself, explicit ``env`` where a controller overrides values per node group. The pod
template carries the model digest and a hash of the contract, so a change of model or gate rolls
the pods (maxUnavailable 0: the old pod serves until the new one is ready). The model cache is a
PersistentVolumeClaim, so a recreated pod finds its model and fallback without the link. The dict builders
create nothing; ``create_node_group_objects`` is the one resource-creating helper, shared by the node-group
backends (KubeEdge, OpenYurt), which may not import each other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from components.edge.spec import ENV_KEYS, EdgePlan, SitePlan

CONTAINER = "edge-server"
MODEL_DIGEST_ANNOTATION = "gpuplane.dev/model-digest"
CONFIG_HASH_ANNOTATION = "gpuplane.dev/edge-config-hash"
SITE_LABEL = "gpuplane.dev/edge-site"
WAVE_LABEL = "gpuplane.dev/edge-wave"
READINESS_PATH = "/v2/health/ready"
LIVENESS_PATH = "/v2/health/live"
MODEL_CACHE_PATH = "/var/cache/gpuplane-edge"


def labels(plan: EdgePlan, site: SitePlan) -> dict[str, str]:
    return {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/managed-by": "gpuplane", SITE_LABEL: site.name,
            "gpuplane.dev/edge-group": site.group}


def selector(plan: EdgePlan) -> dict[str, str]:
    return {"app.kubernetes.io/name": plan.name}


def config_hash(env: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:16]


def serving_digest(plan: EdgePlan, site: SitePlan) -> str:
    """The digest of the model a site serves now (new when its wave is promoted, else the previous one)."""
    model = plan.model if site.promoted else plan.previous_model
    return model.digest if model else ""


def config_map(plan: EdgePlan, site: SitePlan) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": plan.name, "namespace": plan.namespace, "labels": labels(plan, site)}, "data": plan.site_env(site)}


def deployment(plan: EdgePlan, site: SitePlan, *, env_from_config_map: bool = True) -> dict[str, Any]:
    """The edge server; ``env_from_config_map=False`` inlines the contract as ``env`` (for per-group overriders)."""
    env = plan.site_env(site)
    image = plan.tensorrt_image.ref if site.runtime == "tensorrt" and plan.tensorrt_image else plan.image.ref
    resources: dict[str, Any] = {
        "requests": {"cpu": f"{site.cpu:g}", "memory": f"{site.memory_mib}Mi"},
        "limits": {"memory": f"{site.memory_mib}Mi"},
    }
    if site.runtime == "tensorrt":
        resources["requests"]["nvidia.com/gpu"] = "1"
        resources["limits"]["nvidia.com/gpu"] = "1"
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        # A site caches the image: never pull again while it is offline.
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}],
        "resources": resources,
        "readinessProbe": {"httpGet": {"path": READINESS_PATH, "port": plan.port}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": LIVENESS_PATH, "port": plan.port}, "periodSeconds": 20, "failureThreshold": 6},
        # The gate replays the held-out sample before the server reports ready.
        "startupProbe": {"httpGet": {"path": READINESS_PATH, "port": plan.port}, "periodSeconds": 10, "failureThreshold": 60},
        "volumeMounts": [{"name": "model-cache", "mountPath": MODEL_CACHE_PATH}],
    }
    if env_from_config_map:
        container["envFrom"] = [{"configMapRef": {"name": plan.name}}]
    else:
        container["env"] = [{"name": k, "value": env[k]} for k in ENV_KEYS]
    pod_labels = labels(plan, site)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": plan.name, "namespace": plan.namespace, "labels": {**pod_labels, WAVE_LABEL: str(site.wave)},
                     "annotations": {MODEL_DIGEST_ANNOTATION: serving_digest(plan, site)}},
        "spec": {
            "replicas": site.replicas,
            "selector": {"matchLabels": selector(plan)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": pod_labels,
                             "annotations": {MODEL_DIGEST_ANNOTATION: serving_digest(plan, site), CONFIG_HASH_ANNOTATION: config_hash(env)}},
                "spec": {
                    "containers": [container],
                    # The model cache is a claim on the site's storage: a recreated pod finds the model
                    # and its fallback there without the link.
                    "volumes": [{"name": "model-cache", "persistentVolumeClaim": {"claimName": cache_claim_name(plan)}}],
                },
            },
        },
    }


def cache_claim_name(plan: EdgePlan) -> str:
    return f"{plan.name}-model-cache"


def cache_claim(plan: EdgePlan, site: SitePlan) -> dict[str, Any]:
    """The model cache (the site's default StorageClass, e.g. k3s local-path), sized to the site's declared cache."""
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": cache_claim_name(plan), "namespace": plan.namespace, "labels": labels(plan, site)},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{site.offline.cache_gib:g}Gi"}}}}


def service(plan: EdgePlan, site: SitePlan) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": plan.name, "namespace": plan.namespace, "labels": labels(plan, site)},
            "spec": {"type": "ClusterIP", "selector": selector(plan),
                     "ports": [{"name": "http", "port": plan.port, "targetPort": plan.port, "protocol": "TCP"}]}}


def deployed(plan: EdgePlan, site: SitePlan) -> bool:
    """Whether the site runs anything now: its wave is promoted, or it has a previous model to keep."""
    return site.promoted or plan.previous_model is not None


def clusters(plan: EdgePlan, kind: str) -> list[tuple[Any, dict[str, list[SitePlan]]]]:
    """(kubeconfig, runtime -> sites) per cluster for a node-group kind (sites sharing one kubeconfig
    value, or one Output object, share a cluster); sites with nothing to run yet are left out."""
    out: list[tuple[Any, dict[str, list[SitePlan]]]] = []
    for site in plan.sites:
        if site.kind != kind or not deployed(plan, site):
            continue
        entry = next((e for e in out if e[0] is site.kubeconfig or (isinstance(e[0], str) and e[0] == site.kubeconfig)), None)
        if entry is None:
            entry = (site.kubeconfig, {})
            out.append(entry)
        entry[1].setdefault(site.runtime, []).append(site)
    return out


__all__ = ["CONTAINER", "MODEL_DIGEST_ANNOTATION", "cache_claim", "clusters", "config_map", "deployed", "deployment", "labels", "service", "serving_digest"]


def create_node_group_objects(component: Any, name: str, plan: EdgePlan, kind: str,
                              build: Callable[[EdgePlan, list[SitePlan], str], dict[str, Any]]) -> list[Any]:
    """The node-group backends' resources (KubeEdge, OpenYurt): per cluster of ``kind`` sites, a provider on its
    kubeconfig, the namespace, and one object per runtime made by ``build(plan, sites, runtime)``."""
    import pulumi
    import pulumi_kubernetes as k8s

    created: list[Any] = []
    for i, (kubeconfig, by_runtime) in enumerate(clusters(plan, kind)):
        provider = k8s.Provider(f"{name}-{kind}-{i}-provider", kubeconfig=kubeconfig, enable_config_map_mutable=True,
                                opts=pulumi.ResourceOptions(parent=component))
        opts = pulumi.ResourceOptions(parent=component, provider=provider)
        ns = k8s.core.v1.Namespace(f"{name}-{kind}-{i}-ns", metadata=k8s.meta.v1.ObjectMetaArgs(name=plan.namespace), opts=opts)
        created += [provider, ns]
        for runtime, sites in by_runtime.items():
            obj = build(plan, sites, runtime)
            created.append(k8s.apiextensions.CustomResource(
                f"{name}-{kind}-{i}-{runtime}", api_version=obj["apiVersion"], kind=obj["kind"], metadata=obj["metadata"],
                spec=obj["spec"], opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[ns])))
    return created
