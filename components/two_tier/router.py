"""TwoTierEndpoint's router in the steady cluster: ServiceAccount with the cloud identity that may
invoke the burst tier, the Envoy sidecar's ConfigMap, the router Deployment and its Service.

The router container runs ``python -m workloads.serving.router --mode overflow`` from the serving
image (workloads/serving/router.py), with the steady tier at its Knative cluster-local address and
the burst tier at the Envoy sidecar on ``127.0.0.1:8081``. Envoy adds TLS and the cloud's request
authentication (``gcp_authn``: an ID token for the Cloud Run URL; ``aws_request_signing``: SigV4
for the SageMaker runtime). See components/two_tier/ for why these pieces.
https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/gcp_authn_filter
https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/aws_request_signing_filter
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.inference import SERVING_PORT
from components.two_tier.spec import TwoTierPlan

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.inference import InferenceEndpoint

ENVOY_IMAGE = "envoyproxy/envoy:v1.34.1"
ENVOY_PORT = 8081
ENVOY_ADMIN_PORT = 9901
ROUTER_PORT = SERVING_PORT
GCP_METADATA_HOST = "metadata.google.internal"
SAGEMAKER_INFERENCE_COMPONENT_HEADER = "X-Amzn-SageMaker-Inference-Component"


def sagemaker_runtime_host(region: str) -> str:
    return f"runtime.sagemaker.{region}.amazonaws.com"


def envoy_config(plan: TwoTierPlan, burst_host: str) -> dict[str, Any]:
    """Envoy bootstrap: one listener on 127.0.0.1:8081 forwarding to the burst tier over TLS with
    the cloud's authentication filter. ``burst_host`` is the Cloud Run host (no scheme) or the
    SageMaker runtime host."""
    timeout = f"{plan.router_timeout_seconds}s"
    if plan.burst.platform == "cloud-run":
        auth_filter: dict[str, Any] = {
            "name": "envoy.filters.http.gcp_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.gcp_authn.v3.GcpAuthnFilterConfig",
                "http_uri": {"uri": f"http://{GCP_METADATA_HOST}/computeMetadata/v1/instance/service-accounts/"
                                    "default/identity?audience=[AUDIENCE]",
                             "cluster": "gcp_metadata", "timeout": "10s"},
                "cache_config": {"cache_size": 16},
            },
        }
        route: dict[str, Any] = {"cluster": "burst", "timeout": timeout, "host_rewrite_literal": burst_host}
    else:
        auth_filter = {
            "name": "envoy.filters.http.aws_request_signing",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.aws_request_signing.v3.AwsRequestSigning",
                "service_name": "sagemaker",
                "region": plan.burst.region,
                "host_rewrite": burst_host,
                "use_unsigned_payload": False,
            },
        }
        route = {"cluster": "burst", "timeout": timeout}
    burst_cluster: dict[str, Any] = {
        "name": "burst",
        "type": "LOGICAL_DNS",
        "connect_timeout": "10s",
        "dns_lookup_family": "V4_ONLY",
        "load_assignment": {"cluster_name": "burst", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": burst_host, "port_value": 443}}}}]}]},
        "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": burst_host}},
    }
    clusters = [burst_cluster]
    if plan.burst.platform == "cloud-run":
        burst_cluster["metadata"] = {"typed_filter_metadata": {"envoy.filters.http.gcp_authn": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.gcp_authn.v3.Audience",
            "url": f"https://{burst_host}"}}}
        clusters.append({
            "name": "gcp_metadata", "type": "STRICT_DNS", "connect_timeout": "5s", "dns_lookup_family": "V4_ONLY",
            "load_assignment": {"cluster_name": "gcp_metadata", "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": GCP_METADATA_HOST, "port_value": 80}}}}]}]},
        })
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": ENVOY_ADMIN_PORT}}},
        "static_resources": {
            "listeners": [{
                "name": "burst",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": ENVOY_PORT}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                                 "HttpConnectionManager",
                        "stat_prefix": "burst",
                        "route_config": {"name": "burst", "virtual_hosts": [{
                            "name": "burst", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": route}]}]},
                        "http_filters": [auth_filter, {
                            "name": "envoy.filters.http.router",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                    },
                }]}],
            }],
            "clusters": clusters,
        },
    }


def router_command(plan: TwoTierPlan, endpoint_name: str | None = None,
                   inference_component: str | None = None) -> list[str]:
    """The router container's arguments (after ``python -m workloads.serving.router``)."""
    args = ["--port", str(ROUTER_PORT), "--host", "0.0.0.0",
            "--backend", f"steady=http://{plan.steady_host}",
            "--backend", f"burst=http://127.0.0.1:{ENVOY_PORT}",
            "--mode", "overflow", "--overflow-threshold", str(plan.router_threshold),
            "--overflow-signal", "in-flight",
            "--upstream-timeout-seconds", str(plan.router_timeout_seconds),
            "--max-body-bytes", str(plan.steady.max_request_bytes),
            "--log-level", "info"]
    if plan.burst.platform == "sagemaker":
        args += ["--backend-path", f"burst=/endpoints/{endpoint_name}/invocations"]
        if inference_component:
            args += ["--backend-header", f"burst={SAGEMAKER_INFERENCE_COMPONENT_HEADER}:{inference_component}"]
    return args


def router_deployment(plan: TwoTierPlan, image: Any, sa_name: str, config_map: str, args: Any) -> dict[str, Any]:
    """The router Deployment's spec (core objects only, schema-checked in the tests)."""
    labels = {"app.kubernetes.io/name": "gpuplane-router", "gpuplane.dev/endpoint": plan.name}
    probe = {"httpGet": {"path": "/router/status", "port": ROUTER_PORT}, "periodSeconds": 5}
    security = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]}}
    return {
        "replicas": plan.router_replicas,
        "selector": {"matchLabels": labels},
        # The template's own component label is what the routers' PodMonitor selects; the selector
        # stays as it was (a Deployment's selector cannot change in place).
        "template": {
            "metadata": {"labels": {**labels, "gpuplane.dev/component": "router"}},
            "spec": {
                "serviceAccountName": sa_name,
                "containers": [
                    {
                        "name": "router", "image": image,
                        "command": ["python", "-m", "workloads.serving.router"], "args": args,
                        "ports": [{"name": "http", "containerPort": ROUTER_PORT}],
                        "readinessProbe": probe, "livenessProbe": probe,
                        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                        "securityContext": security,
                    },
                    {
                        "name": "proxy", "image": ENVOY_IMAGE,
                        "args": ["-c", "/etc/envoy/envoy.json", "--log-level", "warn"],
                        "volumeMounts": [{"name": "envoy", "mountPath": "/etc/envoy", "readOnly": True}],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": ENVOY_ADMIN_PORT}, "periodSeconds": 5},
                        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                        "securityContext": {**security, "runAsUser": 101},
                    },
                ],
                "volumes": [{"name": "envoy", "configMap": {"name": config_map}}],
            },
        },
    }


def _identity(parent: pulumi.ComponentResource, name: str, plan: TwoTierPlan, cluster: KubernetesCluster,
              sa_name: str, burst: InferenceEndpoint) -> Any:
    """The router's cloud identity, allowed to invoke the burst tier only: IRSA or Workload Identity."""
    if plan.burst.platform == "sagemaker":
        from components.aws.iam import irsa_role, partition_of

        partition, region = partition_of(plan.burst.region), plan.burst.region
        policy = burst.url.apply(lambda endpoint: json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["sagemaker:InvokeEndpoint"],
                           # SageMaker ARNs carry the endpoint name in lower case
                           "Resource": f"arn:{partition}:sagemaker:{region}:*:endpoint/{str(endpoint).lower()}"}],
        }, sort_keys=True))
        role = irsa_role(parent, f"{name}-router-invoker", cluster, plan.namespace, sa_name, policy, plan.tags)
        return role.arn.apply(lambda arn: {"eks.amazonaws.com/role-arn": arn})
    import pulumi_gcp as gcp

    from components.gcp.iam import workload_identity_sa

    identity = workload_identity_sa(parent, f"{name}-router", cluster, plan.namespace, sa_name,
                                    display_name=f"gpuplane two-tier router {name}")
    gcp.cloudrunv2.ServiceIamMember(
        f"{name}-router-invoker",
        name=plan.burst.name,  # the Cloud Run service is named after the burst endpoint
        location=plan.burst.region,
        project=plan.burst_args.get("project"),
        role="roles/run.invoker",
        member=identity.member,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[burst]),
    )
    return identity.annotations


def create_router(parent: pulumi.ComponentResource, name: str, plan: TwoTierPlan, cluster: KubernetesCluster,
                  image: Any, steady: InferenceEndpoint, burst: InferenceEndpoint) -> pulumi.Output[str]:
    """The router objects, children of ``parent``; returns the router Service's in-cluster URL."""
    provider = cluster.k8s_provider
    after_steady = pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[steady])  # its namespace
    sa_name = f"{name}-router"
    sa = k8s.core.v1.ServiceAccount(
        f"{name}-router-sa",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=sa_name, namespace=plan.namespace,
                                            annotations=_identity(parent, name, plan, cluster, sa_name, burst)),
        opts=after_steady,
    )
    if plan.burst.platform == "cloud-run":
        burst_host: Any = burst.url.apply(lambda uri: str(uri).removeprefix("https://").rstrip("/"))
    else:
        burst_host = sagemaker_runtime_host(str(plan.burst.region))
    envoy_json = pulumi.Output.from_input(burst_host).apply(lambda host: json.dumps(envoy_config(plan, host), indent=1))
    config_map_name = f"{name}-router-proxy"
    config_map = k8s.core.v1.ConfigMap(
        f"{name}-router-proxy",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=config_map_name, namespace=plan.namespace),
        data={"envoy.json": envoy_json},
        opts=after_steady,
    )
    if plan.burst.platform == "sagemaker":
        component = getattr(burst, "inference_component_name", None)
        args: Any = pulumi.Output.all(burst.url, component).apply(lambda v: router_command(plan, v[0], v[1]))
    else:
        args = router_command(plan)
    spec: Any = router_deployment(plan, image, sa_name, config_map_name, args)  # checked against the schema in tests
    selector: Any = {"matchLabels": spec["selector"]["matchLabels"]}
    k8s.apps.v1.Deployment(
        f"{name}-router",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-router", namespace=plan.namespace,
                                            labels={"gpuplane.dev/endpoint": name}),
        spec=spec,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[sa, config_map, steady]),
    )
    k8s.policy.v1.PodDisruptionBudget(
        f"{name}-router-pdb",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-router", namespace=plan.namespace),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(max_unavailable=1, selector=selector),
        opts=after_steady,
    )
    service = k8s.core.v1.Service(
        f"{name}-router-svc",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=plan.namespace, labels={"gpuplane.dev/endpoint": name}),
        spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=spec["selector"]["matchLabels"],
                                         ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port=ROUTER_PORT)]),
        opts=after_steady,
    )
    host = f"{name}.{plan.namespace}.svc.cluster.local"

    return service.id.apply(lambda _: f"http://{host}")
