"""FeatureStore's Feast runtime on Kubernetes, which every cluster target shares, and Redis.

``create_feast_runtime`` (used by the kubernetes, aws and gcp targets) creates, as children of
the store, in its namespace:

- ``{name}-config``: a ConfigMap holding the rendered ``feature_store.yaml`` (no secrets: the
  Redis password is referenced as ``${FEAST_REDIS_PASSWORD}`` and comes from a Secret);
- ``{name}-server``: the Feast feature server (``feast serve``, HTTP ``POST
  /get-online-features`` on port 6566) as a Deployment, non-root with a read-only root file
  system, rolled when the configuration changes (a checksum annotation);
- ``{name}-server-svc``: a ClusterIP Service (private: nothing outside the cluster reaches it),
  and ``{name}-server-pdb`` (one replica stays up during node drains);
- ``{name}-materialize``: a CronJob running ``python -m workloads.features materialize`` against
  the bucket, which writes the feature tables, applies the definitions to the registry and
  materialises into the online store. ``concurrencyPolicy: Forbid``.

``create_namespace_and_account`` makes the namespace and the service account (with the IRSA /
Workload Identity annotations its caller passes). For the kubernetes target (kubernetes.py,
which also makes the bucket: S3 on EKS, GCS on GKE, or the given one) ``create_redis`` makes Redis: ``{name}-redis-auth`` (a Secret with a generated or given password),
``{name}-redis`` (a one-replica StatefulSet with an append-only file on a persistent volume,
password required), ``{name}-redis-svc`` (ClusterIP) and ``{name}-redis-netpol`` (only the
store's own pods may connect). Encryption at rest of the volume is the storage class's: pass an
encrypted ``redis.storage_class``. It does not install a storage class, an ingress or TLS for
the in-cluster Redis.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.feature_store.spec import (
    CONFIG_DIR,
    FEATURE_SERVER_PORT,
    REDIS_IMAGE,
    REDIS_PASSWORD_ENV,
    FeatureStorePlan,
)

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.feature_store.spec import FeatureStoreArgs

LABEL_STORE = "gpuplane.dev/feature-store"
RUN_AS_USER = 10001
REDIS_UID = 999  # the redis user of the official alpine image


def _labels(plan: FeatureStorePlan, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": plan.name,
        "app.kubernetes.io/part-of": "gpuplane",
        LABEL_STORE: plan.name,
    }


def _restricted_container() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security(uid: int) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid, "seccompProfile": {"type": "RuntimeDefault"}}


def pod_env(plan: FeatureStorePlan) -> list[dict[str, Any]]:
    """Environment of the server and the CronJob (no secret values, only references)."""
    env: list[dict[str, Any]] = [{"name": "FEAST_USAGE", "value": "False"}, {"name": "HOME", "value": "/tmp"}]
    if plan.redis is not None:
        env.append({"name": REDIS_PASSWORD_ENV, "valueFrom": {"secretKeyRef": {"name": f"{plan.name}-redis-auth", "key": "password"}}})
    if plan.cloud == "aws" and plan.region:
        env += [{"name": "AWS_REGION", "value": plan.region}, {"name": "AWS_DEFAULT_REGION", "value": plan.region}]
    if plan.gcp_project:
        env.append({"name": "GOOGLE_CLOUD_PROJECT", "value": plan.gcp_project})
    return env


def _volumes(plan: FeatureStorePlan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": f"{plan.name}-feast-config"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}, {"name": "tmp", "mountPath": "/tmp"}]
    return volumes, mounts


def server_deployment(plan: FeatureStorePlan, image: str, config_text: str, env_from_secret: str | None = None) -> dict[str, Any]:
    """The feature server Deployment body (pure)."""
    labels = _labels(plan, "feast-feature-server")
    volumes, mounts = _volumes(plan)
    container: dict[str, Any] = {
        "name": "feature-server",
        "image": image,
        "command": ["feast", "-c", CONFIG_DIR, "serve", "--host", "0.0.0.0", "--port", str(FEATURE_SERVER_PORT),
                    "--no-access-log", "--registry_ttl_sec", "60"],
        "ports": [{"name": "http", "containerPort": FEATURE_SERVER_PORT}],
        "env": pod_env(plan),
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        # `import feast` alone takes seconds: give the start up to 5 minutes before liveness applies.
        "startupProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5, "failureThreshold": 60},
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 20, "failureThreshold": 3},
        "volumeMounts": mounts,
        "securityContext": _restricted_container(),
    }
    if env_from_secret:
        container["envFrom"] = [{"secretRef": {"name": env_from_secret}}]
    checksum = hashlib.sha256(config_text.encode()).hexdigest()
    return {
        "metadata": {"name": plan.server_name, "namespace": plan.namespace, "labels": labels},
        "spec": {
            "replicas": plan.server_replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": labels["app.kubernetes.io/name"], "app.kubernetes.io/instance": plan.name}},
            "template": {
                "metadata": {"labels": labels, "annotations": {"gpuplane.dev/config-sha256": checksum}},
                "spec": {
                    "serviceAccountName": f"{plan.name}-feast",
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(RUN_AS_USER),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def materialize_command(plan: FeatureStorePlan, bucket_url: str, events_uri: str | None) -> list[str]:
    """The CronJob's command line (pure)."""
    cmd = [
        "python", "-m", "workloads.features", "materialize",
        "--data", events_uri or f"{bucket_url}/events",
        "--repo-dir", "/tmp/repo",
        "--feature-store-yaml", f"{CONFIG_DIR}/feature_store.yaml",
        "--offline-root", f"{bucket_url}/features",
    ]
    if plan.offline_source == "athena":
        cmd += ["--source", "athena", "--source-option", f"database={plan.athena_database}"]
    elif plan.offline_source == "bigquery":
        cmd += ["--source", "bigquery", "--source-option", f"dataset={plan.gcp_project}.{plan.bigquery_dataset}"]
    return cmd


def materialize_cronjob(
    plan: FeatureStorePlan, image: str, bucket_url: str, events_uri: str | None, env_from_secret: str | None = None
) -> dict[str, Any]:
    """The materialisation CronJob body (pure)."""
    labels = _labels(plan, "feast-materialize")
    volumes, mounts = _volumes(plan)
    container: dict[str, Any] = {
        "name": "materialize",
        "image": image,
        "command": materialize_command(plan, bucket_url, events_uri),
        "env": pod_env(plan),
        "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
        "volumeMounts": mounts,
        "securityContext": _restricted_container(),
    }
    if env_from_secret:
        container["envFrom"] = [{"secretRef": {"name": env_from_secret}}]
    return {
        "metadata": {"name": f"{plan.name}-materialize", "namespace": plan.namespace, "labels": labels},
        "spec": {
            "schedule": plan.materialize_schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 3600,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "serviceAccountName": f"{plan.name}-feast",
                            "automountServiceAccountToken": False,
                            "restartPolicy": "OnFailure",
                            "securityContext": _pod_security(RUN_AS_USER),
                            "containers": [container],
                            "volumes": volumes,
                        },
                    },
                }
            },
        },
    }


def redis_statefulset(plan: FeatureStorePlan) -> dict[str, Any]:
    """The in-cluster Redis StatefulSet body (pure): password required, AOF on a volume."""
    assert plan.redis is not None and plan.redis.create  # only called for an in-cluster Redis
    r = plan.redis
    labels = _labels(plan, "redis")
    claim: dict[str, Any] = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{r.storage_gib}Gi"}}},
    }
    if r.storage_class:
        claim["spec"]["storageClassName"] = r.storage_class
    memory = f"{r.memory_gib:g}Gi"
    return {
        "metadata": {"name": f"{plan.name}-redis", "namespace": plan.namespace, "labels": labels},
        "spec": {
            "serviceName": f"{plan.name}-redis",
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": plan.name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(REDIS_UID),
                    "containers": [
                        {
                            "name": "redis",
                            "image": REDIS_IMAGE,
                            # $(VAR) is expanded by the kubelet from the Secret-backed variable.
                            "args": ["--requirepass", f"$({REDIS_PASSWORD_ENV})", "--appendonly", "yes", "--dir", "/data",
                                     "--maxmemory", f"{int(r.memory_gib * 1024 * 0.9)}mb", "--maxmemory-policy", "noeviction"],
                            "env": [{"name": REDIS_PASSWORD_ENV, "valueFrom": {"secretKeyRef": {"name": f"{plan.name}-redis-auth", "key": "password"}}}],
                            "ports": [{"name": "redis", "containerPort": r.port}],
                            "resources": {"requests": {"cpu": "250m", "memory": memory}, "limits": {"memory": memory}},
                            "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5},
                            "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 20},
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            "securityContext": _restricted_container(),
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [claim],
        },
    }


def create_namespace_and_account(
    component: pulumi.ComponentResource, name: str, plan: FeatureStorePlan, cluster: KubernetesCluster, annotations: Any
) -> tuple[k8s.core.v1.Namespace, k8s.core.v1.ServiceAccount]:
    """The namespace and the service account the server and CronJob run as (``{name}-feast``)."""
    provider = cluster.k8s_provider
    ns = k8s.core.v1.Namespace(
        f"{name}-ns",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=plan.namespace, labels={LABEL_STORE: name}),
        opts=pulumi.ResourceOptions(parent=component, provider=provider),
    )
    sa = k8s.core.v1.ServiceAccount(
        f"{name}-sa",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-feast", namespace=plan.namespace, labels={LABEL_STORE: name}, annotations=annotations),
        automount_service_account_token=False,
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[ns]),
    )
    return ns, sa


def create_feast_runtime(
    component: pulumi.ComponentResource,
    name: str,
    plan: FeatureStorePlan,
    cluster: KubernetesCluster,
    args: FeatureStoreArgs,
    *,
    yaml_text: pulumi.Output[str],
    bucket_url: pulumi.Output[str],
    depends_on: list[pulumi.Resource],
) -> None:
    """ConfigMap, feature server Deployment + Service + PodDisruptionBudget, materialisation CronJob."""
    provider = cluster.k8s_provider
    opts = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=depends_on)
    env_from = args.get("credentials_secret")
    config = k8s.core.v1.ConfigMap(
        f"{name}-config",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-feast-config", namespace=plan.namespace, labels={LABEL_STORE: name}),
        data=yaml_text.apply(lambda text: {"feature_store.yaml": text}),
        opts=opts,
    )
    image = pulumi.Output.from_input(args["image"])
    deployment = pulumi.Output.all(image, yaml_text).apply(lambda v: server_deployment(plan, v[0], v[1], env_from))
    k8s.apps.v1.Deployment(
        f"{name}-server",
        metadata=deployment.apply(lambda d: d["metadata"]),
        spec=deployment.apply(lambda d: d["spec"]),
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[*depends_on, config]),
    )
    selector = {"app.kubernetes.io/name": "feast-feature-server", "app.kubernetes.io/instance": name}
    k8s.core.v1.Service(
        f"{name}-server-svc",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=plan.server_name, namespace=plan.namespace, labels={LABEL_STORE: name}),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="ClusterIP",  # private: reachable only inside the cluster
            selector=selector,
            ports=[k8s.core.v1.ServicePortArgs(name="http", port=FEATURE_SERVER_PORT, target_port="http")],
        ),
        opts=opts,
    )
    if plan.server_replicas > 1:
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-server-pdb",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=plan.server_name, namespace=plan.namespace),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                min_available=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector)
            ),
            opts=opts,
        )
    events_uri = args.get("events_uri")
    cron = pulumi.Output.all(image, bucket_url).apply(lambda v: materialize_cronjob(plan, v[0], v[1], events_uri, env_from))
    k8s.batch.v1.CronJob(
        f"{name}-materialize",
        metadata=cron.apply(lambda c: c["metadata"]),
        spec=cron.apply(lambda c: c["spec"]),
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[*depends_on, config]),
    )


def create_redis(
    component: pulumi.ComponentResource, name: str, plan: FeatureStorePlan, cluster: KubernetesCluster,
    args: FeatureStoreArgs, namespace: k8s.core.v1.Namespace,
) -> list[pulumi.Resource]:
    """The password Secret and, unless an endpoint was given, the in-cluster Redis."""
    assert plan.redis is not None  # planned for the kubernetes target
    provider = cluster.k8s_provider
    opts = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[namespace])
    if plan.redis.generate_password:
        import pulumi_random as random

        password: pulumi.Input[str] = random.RandomPassword(
            f"{name}-redis-password",
            random.RandomPasswordArgs(length=40, special=False),
            opts=pulumi.ResourceOptions(parent=component),
        ).result
    else:
        password = (args.get("redis") or {})["password"]
    secret = k8s.core.v1.Secret(
        f"{name}-redis-auth",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-redis-auth", namespace=plan.namespace, labels={LABEL_STORE: name}),
        type="Opaque",
        string_data={"password": pulumi.Output.secret(password)},
        opts=opts,
    )
    created: list[pulumi.Resource] = [secret]
    if not plan.redis.create:
        return created
    body = redis_statefulset(plan)
    statefulset = k8s.apps.v1.StatefulSet(
        f"{name}-redis",
        metadata=body["metadata"],
        spec=body["spec"],
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[namespace, secret]),
    )
    redis_selector = {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": name}
    service = k8s.core.v1.Service(
        f"{name}-redis-svc",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-redis", namespace=plan.namespace, labels={LABEL_STORE: name}),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="ClusterIP",
            selector=redis_selector,
            ports=[k8s.core.v1.ServicePortArgs(name="redis", port=plan.redis.port, target_port="redis")],
        ),
        opts=opts,
    )
    policy = k8s.networking.v1.NetworkPolicy(
        f"{name}-redis-netpol",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-redis", namespace=plan.namespace),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=redis_selector),
            policy_types=["Ingress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={LABEL_STORE: name}))],
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=plan.redis.port, protocol="TCP")],
                )
            ],
        ),
        opts=opts,
    )
    return [*created, statefulset, service, policy]


