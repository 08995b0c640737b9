"""InferenceEndpoint on Knative Serving, on any cluster.

Creates, as children of the endpoint: a Namespace, a ServiceAccount (with the cloud identity
annotation when weights come from a bucket: IRSA on EKS, Workload Identity on GKE), the Knative
Service, and optionally an image pre-pull DaemonSet on the GPU pool.

The Service runs the endpoint's runtime: the reference server, ``vllm serve`` (as uid 1000 with
HOME on an emptyDir, /dev/shm in memory, weights synced by the init container, mounted from a
PVC, or streamed from the bucket with the service account's identity), or a custom image with
its own command, args, port and probe paths (one container port, as Knative requires; the
queue-proxy's ports are refused by the planner).

With ``knative="install"``
it installs Knative Serving once per cluster through the Knative Operator (Helm) and a
``KnativeServing`` resource with Kourier, the pod-spec features the Service needs (node
selector, tolerations, init containers, PVCs) and revision timeouts raised to the cold-start
budget; further endpoints on the same cluster reuse that install.

The Knative activator holds requests while a revision scales from zero; the revision's
progress deadline, timeout and startup probe are derived from the cold-start budget, so a cold
start that includes a GPU node start is not cut short (knative/serving#13208, #15316).
Documented annotations: https://knative.dev/docs/serving/autoscaling/
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.inference.canary import apply_knative_canary
from components.inference.planner import knative_serving_version, server_command
from components.inference.spec import EndpointPlan
from components.kubernetes.charts import chart_args
from components.kubernetes.storage import sync_init_container

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.inference.spec import InferenceEndpointArgs
    from components.node_pool import GpuNodePool

KNATIVE_OPERATOR_REPO = "https://knative.github.io/operator"
KNATIVE_OPERATOR_CHART = "knative-operator"
KNATIVE_OPERATOR_VERSION = "v1.23.0"
MODEL_DIR = "/models"
TOKEN_DIR = "/var/run/secrets/gpuplane"
PROBE_PERIOD_SECONDS = 5
CACHE_DIR = "/cache"
# vllm/vllm-openai runs as root; the pod runs it as this user with HOME (torch.compile,
# Triton and Hugging Face caches) on an emptyDir, so runAsNonRoot holds.
VLLM_UID = 1000
# What the pre-pull DaemonSet's init container runs once the image is on the node.
PREPULL_COMMANDS = {"reference": ["python", "-c", "pass"], "vllm": ["python3", "-c", "pass"], "custom": ["sh", "-c", "true"]}
# Feature flags the Service's pod spec uses (config-features); off by default in Knative.
REQUIRED_FEATURES = {
    "kubernetes.podspec-nodeselector": "enabled",
    "kubernetes.podspec-tolerations": "enabled",
    "kubernetes.podspec-init-containers": "enabled",
    "kubernetes.podspec-persistent-volume-claim": "enabled",
    "kubernetes.podspec-persistent-volume-write": "disabled",
}


# What a ModelPipeline's canary patches on the Service (components/model_pipeline/argo.py: canary, full,
# rollback), as Pulumi property paths. With rollout_managed_by="pipeline" Pulumi ignores them: it keeps
# them out of its server-side apply and never takes their ownership back (pulumi-kubernetes#2714, fixed
# in #2828), so `pulumi up` after a rollout leaves the promoted revision serving.
PIPELINE_OWNED_PATHS = ("spec.traffic", "spec.template.metadata.name", "spec.template.spec.initContainers[0].command")


def knative_serving_spec(max_revision_timeout_seconds: int, progress_deadline_seconds: int,
                         kubernetes_version: str | None = None) -> dict[str, Any]:
    """The ``KnativeServing`` spec: the Serving release the cluster's Kubernetes runs, Kourier ingress, pod-spec
    features, timeouts for GPU cold starts."""
    return {
        "version": knative_serving_version(kubernetes_version),
        "ingress": {"kourier": {"enabled": True}},
        "config": {
            "network": {"ingress-class": "kourier.ingress.networking.knative.dev"},
            "features": dict(REQUIRED_FEATURES),
            "autoscaler": {"enable-scale-to-zero": "true", "scale-to-zero-grace-period": "30s", "stable-window": "60s"},
            "defaults": {"max-revision-timeout-seconds": str(max(600, max_revision_timeout_seconds))},
            "deployment": {"progress-deadline": f"{max(600, progress_deadline_seconds)}s"},
            # Queue-proxy request metrics are off ("none") by default in 1.21 and 1.23; the canary gate and the
            # endpoints dashboard read them from each revision pod's http-usermetric port (9091).
            "observability": {"request-metrics-protocol": "prometheus"},
        },
    }


def _install_knative(endpoint: pulumi.ComponentResource, name: str, plan: EndpointPlan, cluster: KubernetesCluster) -> list[pulumi.Resource]:
    """Install Knative Serving once per cluster; later endpoints depend on the first install."""
    addons = cluster.addons
    if "knative-serving" in addons:
        return addons["knative-serving"]
    opts = pulumi.ResourceOptions(parent=endpoint, provider=cluster.k8s_provider)
    # The operator's namespace is a resource of its own, not the release's `create_namespace`: Helm never
    # deletes a namespace it created, so `pulumi destroy` left "knative-operator" behind (found by the
    # engine lane on the sandbox).
    operator_ns = k8s.core.v1.Namespace(f"{name}-knative-operator-ns",
                                        metadata=k8s.meta.v1.ObjectMetaArgs(name="knative-operator"), opts=opts)
    operator = k8s.helm.v3.Release(
        f"{name}-knative-operator",
        k8s.helm.v3.ReleaseArgs(
            **chart_args(cluster.chart_source, KNATIVE_OPERATOR_CHART, KNATIVE_OPERATOR_VERSION, KNATIVE_OPERATOR_REPO),
            namespace="knative-operator",
        ),
        opts=pulumi.ResourceOptions(parent=endpoint, provider=cluster.k8s_provider, depends_on=[operator_ns]),
    )
    ns = k8s.core.v1.Namespace(f"{name}-knative-serving-ns", metadata=k8s.meta.v1.ObjectMetaArgs(name="knative-serving"), opts=opts)
    serving = k8s.apiextensions.CustomResource(
        f"{name}-knative-serving",
        api_version="operator.knative.dev/v1beta1",
        kind="KnativeServing",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="knative-serving", namespace="knative-serving"),
        spec=knative_serving_spec(plan.timeouts.request_timeout_seconds, plan.timeouts.progress_deadline_seconds,
                                  getattr(getattr(cluster, "plan", None), "kubernetes_version", None)),
        opts=pulumi.ResourceOptions(parent=endpoint, provider=cluster.k8s_provider, depends_on=[operator, ns]),
    )
    addons["knative-serving"] = [operator_ns, operator, ns, serving]
    return addons["knative-serving"]


def knative_service_manifest(
    plan: EndpointPlan,
    image: Any,
    service_account: str,
    scheduling: dict[str, Any] | None,
    resource_name: str = "nvidia.com/gpu",
    feature_server_url: Any = None,
) -> dict[str, Any]:
    """The Knative Service body (pure; tested against the documented shape)."""
    annotations = {
        "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/min-scale": str(plan.min_scale),
        "autoscaling.knative.dev/max-scale": str(plan.max_scale),
        "autoscaling.knative.dev/target": str(plan.target_concurrency),
        "autoscaling.knative.dev/scale-down-delay": f"{plan.scale_down_delay_seconds}s",
        "serving.knative.dev/progress-deadline": f"{plan.timeouts.progress_deadline_seconds}s",
    }
    resources: dict[str, dict[str, str]] = {
        "requests": {"cpu": f"{plan.cpu:g}", "memory": f"{plan.memory_gib:g}Gi"},
        "limits": {"memory": f"{plan.memory_gib:g}Gi"},
    }
    if plan.gpus:
        resources["requests"][resource_name] = str(plan.gpus)
        resources["limits"][resource_name] = str(plan.gpus)
    rt = plan.runtime
    model_dir = MODEL_DIR
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    init: list[dict[str, Any]] = []
    env: list[dict[str, Any]] = []
    uri = plan.model_uri
    streams = rt.weights_loader == "stream"
    if uri and uri.startswith("pvc://"):
        claim, _, path = uri.removeprefix("pvc://").partition("/")
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        mounts.append({"name": "models", "mountPath": MODEL_DIR, "readOnly": True})
        model_dir = f"{MODEL_DIR}/{path}".rstrip("/")
    elif uri and not streams:
        volumes.append({"name": "models", "emptyDir": {}})
        mounts.append({"name": "models", "mountPath": MODEL_DIR})
        init.append(sync_init_container("fetch-model", uri, "models", MODEL_DIR))
    command, arg_list = server_command(plan, model_dir)
    args: list[Any] = list(arg_list)
    if feature_server_url is not None:
        args += ["--feature-server-url", feature_server_url]
    if plan.auth == "bearer-token":
        secret = plan.extra.get("auth_token_secret", "")
        if rt.kind == "vllm":
            # vLLM checks `Authorization: Bearer` against VLLM_API_KEY (same as --api-key).
            env.append({"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": secret, "key": "token"}}})
        else:
            volumes.append({"name": "auth-token", "secret": {"secretName": secret, "items": [{"key": "token", "path": "token"}]}})
            mounts.append({"name": "auth-token", "mountPath": TOKEN_DIR, "readOnly": True})
            if rt.kind == "reference":
                args += ["--auth-token-file", f"{TOKEN_DIR}/token"]
            else:
                env.append({"name": "GPUPLANE_AUTH_TOKEN_FILE", "value": f"{TOKEN_DIR}/token"})
    security: dict[str, Any] = {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    if rt.kind == "vllm":
        security.update({"runAsUser": VLLM_UID, "runAsGroup": VLLM_UID})
        volumes.append({"name": "cache", "emptyDir": {}})
        mounts.append({"name": "cache", "mountPath": CACHE_DIR})
        # NCCL and vLLM's workers share tensors through /dev/shm (docker's default is 64 MiB).
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{max(1, 2 * rt.tensor_parallel_size)}Gi"}})
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
        env += [{"name": "HOME", "value": CACHE_DIR}, {"name": "HF_HOME", "value": f"{CACHE_DIR}/huggingface"}]
    env += [{"name": k, "value": v} for k, v in sorted(plan.env.items())]
    startup_failures = max(1, math.ceil(plan.timeouts.startup_probe_seconds / PROBE_PERIOD_SECONDS))
    # Probe ports equal the container port: Knative accepts that (or no port), and the core
    # PodSpec schema requires one.
    port = rt.port
    container: dict[str, Any] = {
        "name": "server",
        "image": image,
        "ports": [{"name": "http1", "containerPort": port}],
        "env": env,
        "resources": resources,
        "readinessProbe": {"httpGet": {"path": rt.readiness_path, "port": port}, "periodSeconds": 2, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": rt.liveness_path, "port": port}, "periodSeconds": 10, "failureThreshold": 3},
        "startupProbe": {"httpGet": {"path": rt.readiness_path, "port": port}, "periodSeconds": PROBE_PERIOD_SECONDS, "failureThreshold": startup_failures},
        "securityContext": security,
    }
    if command:
        container["command"] = command
    if args:
        container["args"] = args
    if mounts:
        container["volumeMounts"] = mounts
    pod: dict[str, Any] = {
        "serviceAccountName": service_account,
        "containerConcurrency": 0,
        "timeoutSeconds": plan.timeouts.request_timeout_seconds,
        "containers": [container],
    }
    if init:
        pod["initContainers"] = init
    if volumes:
        pod["volumes"] = volumes
    if scheduling:
        pod["nodeSelector"] = dict(scheduling["node_selector"])
        pod["tolerations"] = [dict(t) for t in scheduling["tolerations"]]
    labels = {"gpuplane.dev/endpoint": plan.name, **_label_safe(plan.tags)}
    if not plan.public:
        labels["networking.knative.dev/visibility"] = "cluster-local"
    return {
        "metadata": {"name": plan.name, "namespace": plan.namespace, "labels": labels},
        "spec": {"template": {"metadata": {"annotations": annotations, "labels": {"gpuplane.dev/endpoint": plan.name}}, "spec": pod}},
    }


def _label_safe(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if "/" not in k or k.startswith("gpuplane")}


def _prepull_daemonset(plan: EndpointPlan, image: Any, scheduling: dict[str, Any]) -> dict[str, Any]:
    labels = {"gpuplane.dev/prepull": plan.name}
    return {
        "metadata": {"name": f"{plan.name}-prepull", "namespace": plan.namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # The init container pulls the model server image onto every pool node and exits;
                    # the pause container keeps the pod (and the image) in place at negligible cost.
                    "initContainers": [{"name": "pull", "image": image, "command": PREPULL_COMMANDS[plan.runtime.kind], "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                    "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}}}],
                    "nodeSelector": dict(scheduling["node_selector"]),
                    "tolerations": [dict(t) for t in scheduling["tolerations"]],
                },
            },
        },
    }


def create_knative_endpoint(
    endpoint: pulumi.ComponentResource,
    name: str,
    plan: EndpointPlan,
    cluster: KubernetesCluster,
    pool: GpuNodePool | None,
    args: InferenceEndpointArgs,
) -> pulumi.Output[str]:
    provider = cluster.k8s_provider
    opts = pulumi.ResourceOptions(parent=endpoint, provider=provider)
    installed = _install_knative(endpoint, name, plan, cluster) if plan.knative == "install" else []
    ns = k8s.core.v1.Namespace(f"{name}-ns", metadata=k8s.meta.v1.ObjectMetaArgs(name=plan.namespace, labels={"gpuplane.dev/endpoint": name}), opts=opts)
    sa_name = f"{name}-server"
    annotations = _identity_annotations(endpoint, name, plan, cluster, sa_name)
    sa = k8s.core.v1.ServiceAccount(
        f"{name}-sa",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=sa_name, namespace=plan.namespace, annotations=annotations),
        automount_service_account_token=False,
        opts=pulumi.ResourceOptions(parent=endpoint, provider=provider, depends_on=[ns]),
    )
    scheduling = None
    resource_name = "nvidia.com/gpu"
    if pool is not None:
        scheduling = {"node_selector": pool.scheduling.node_selector, "tolerations": pool.scheduling.tolerations}
        resource_name = pool.scheduling.resource_name
    if plan.auth == "bearer-token":
        plan.extra["auth_token_secret"] = args.get("auth_token_secret", "")
    body = knative_service_manifest(plan, plan.image, sa_name, scheduling, resource_name, args.get("feature_server_url"))
    apply_knative_canary(body, plan.extra.get("canary"))
    service = k8s.apiextensions.CustomResource(
        f"{name}-service",
        api_version="serving.knative.dev/v1",
        kind="Service",
        metadata=body["metadata"],
        spec=body["spec"],
        opts=pulumi.ResourceOptions(parent=endpoint, provider=provider, depends_on=[ns, sa, *installed],
                                    ignore_changes=list(PIPELINE_OWNED_PATHS) if plan.rollout_managed_by == "pipeline" else None),
    )
    if plan.prepull_image and scheduling is not None:
        ds = _prepull_daemonset(plan, plan.image, scheduling)
        k8s.apps.v1.DaemonSet(
            f"{name}-prepull",
            metadata=ds["metadata"],
            spec=ds["spec"],
            opts=pulumi.ResourceOptions(parent=endpoint, provider=provider, depends_on=[ns]),
        )
    host = f"{plan.name}.{plan.namespace}.svc.cluster.local"
    return service.id.apply(lambda _: f"http://{host}")


def _identity_annotations(endpoint: pulumi.ComponentResource, name: str, plan: EndpointPlan, cluster: KubernetesCluster, sa_name: str) -> Any:
    """Cloud identity for the model download: IRSA on EKS, Workload Identity on GKE."""
    uri = plan.model_uri or ""
    if uri.startswith("s3://") and cluster.facts.cloud == "aws":
        from components.aws.iam import irsa_role

        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}", "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}}},
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"},
            ],
        }
        role = irsa_role(endpoint, f"{name}-model-reader", cluster, plan.namespace, sa_name, policy, plan.tags)
        return role.arn.apply(lambda arn: {"eks.amazonaws.com/role-arn": arn})
    if uri.startswith("gs://") and cluster.facts.cloud == "gcp":
        from components.gcp.iam import workload_identity_sa

        identity = workload_identity_sa(endpoint, f"{name}-model-reader", cluster, plan.namespace, sa_name, ["roles/storage.objectViewer"])
        return identity.annotations
    return None
