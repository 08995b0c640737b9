"""KubernetesCluster on GCP: a regional GKE Standard cluster with secure defaults.

``create_gke`` creates, as children of the component (names ``{name}-{role}``):

- ``network``, ``subnet`` (unless ``existing_network`` is given): a custom-mode VPC and one
  regional subnetwork with Private Google Access and the secondary ranges ``pods`` and
  ``services`` that VPC-native clusters need; ``router`` and ``nat`` (Cloud Router + Cloud NAT)
  when nodes are private, so nodes without public IPs still reach registries.
- ``nodes``: the node Google service account, with only the roles nodes need
  (``nodes-<role>`` grants: log and metric writing, metadata, Artifact Registry read). Nodes
  never run as the Compute Engine default account, which holds project Editor.
- ``cluster``: ``gcp.container.Cluster`` — regional (control plane replicated over the zones),
  VPC-native, Workload Identity (``<project>.svc.id.goog``), a release channel, private nodes /
  private endpoint as planned (a PSC-based control plane: no ``master_ipv4_cidr_block``),
  authorized networks limited to the subnet when the endpoint is private, shielded nodes,
  Binary Authorization off, system and workload logs, system + DCGM (GPU) metrics with Managed
  Prometheus, ``deletion_protection`` from the plan, labels from the cluster's tags. The default
  node pool is removed (``remove_default_node_pool``); its short-lived node config uses the node
  service account and is ignored afterwards (``ignore_changes=["nodeConfig"]``).
- ``system``: a small on-demand CPU node pool for controllers (Kueue, Knative, ...), autoscaled
  between ``system_node_count`` and twice that in total (GKE total limits, never per zone).
- ``provider``: a ``pulumi_kubernetes`` Provider from the cluster's kubeconfig, which
  authenticates with ``gke-gcloud-auth-plugin`` (must be on PATH where ``pulumi up`` runs).

Encryption at rest: etcd and disks are encrypted with Google-managed keys. Application-layer
secrets encryption with a customer-managed Cloud KMS key (``database_encryption``) is not set,
because ``KubernetesClusterArgs`` takes no KMS key yet; EKS clusters get envelope encryption
from a key gpuplane creates.

Handles returned for the component (``ClusterHandles``): ``cluster_name``, ``endpoint`` (``https://<ip>``), ``kubeconfig``
(secret), ``oidc_issuer_url`` (the GKE issuer), ``project``, ``node_service_account_email``,
``workload_identity_pool``, ``k8s_provider``.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import yaml

from components.cluster.spec import ClusterHandles, ClusterPlan, KubernetesClusterArgs
from components.gcp.conventions import OAUTH_SCOPES, gcp_labels, per_zone
from components.gcp.iam import account_id, role_suffix
from components.kubernetes.kubeconfig import exec_kubeconfig

SUBNET_CIDR = "10.0.0.0/20"
"""Primary range of the created subnetwork (nodes): 4,096 addresses."""
PODS_RANGE, PODS_CIDR = "pods", "10.4.0.0/14"
"""Secondary range for pod IPs: 262,144 addresses (GKE gives each node a /24 by default)."""
SERVICES_RANGE, SERVICES_CIDR = "services", "10.8.0.0/20"
"""Secondary range for ClusterIP services."""
NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
)
"""The least-privilege node service account roles GKE's hardening guide lists, plus image pulls."""
SYSTEM_POOL_LABEL = {"gpuplane.dev/pool": "system"}
SYSTEM_DISK_GB = 100
AUTH_PLUGIN = "gke-gcloud-auth-plugin"

def gke_kubeconfig(cluster_name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig for a GKE cluster that authenticates through ``gke-gcloud-auth-plugin``.

    ``endpoint`` is the cluster's IP or host (GKE reports no scheme); ``ca_certificate`` is the
    base64 PEM from ``master_auth.cluster_ca_certificate``.
    """
    server = endpoint if endpoint.startswith("https://") else f"https://{endpoint}"
    exec_config = {
        "command": AUTH_PLUGIN,
        "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin "
        "(https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl).",
        "provideClusterInfo": True,
    }
    config = exec_kubeconfig(cluster_name, server, ca_certificate, exec_config)
    return yaml.safe_dump(config, sort_keys=False)


def create_gke(component: pulumi.Resource, name: str, plan: ClusterPlan, args: KubernetesClusterArgs) -> ClusterHandles:
    """Create the GKE cluster's children; return the component's outputs (see module docstring)."""
    handles = ClusterHandles()
    facts = plan.facts
    region = facts.region or ""
    zones = list(facts.zones)
    project: pulumi.Input[str] = args["project"]
    labels = gcp_labels({**facts.tags, "gpuplane-cluster": name})
    child = pulumi.ResourceOptions(parent=component)

    # -- network -----------------------------------------------------------------------------
    existing = args.get("existing_network")
    authorized_cidrs: list[str] = []
    if existing:
        network: pulumi.Input[str] = existing["network"]
        subnetwork: pulumi.Input[str] = existing["subnetwork"]
    else:
        vpc = gcp.compute.Network(
            f"{name}-network",
            gcp.compute.NetworkArgs(project=project, auto_create_subnetworks=False, routing_mode="REGIONAL"),
            opts=child,
        )
        subnet = gcp.compute.Subnetwork(
            f"{name}-subnet",
            gcp.compute.SubnetworkArgs(
                project=project,
                region=region,
                network=vpc.id,
                ip_cidr_range=SUBNET_CIDR,
                private_ip_google_access=True,
                secondary_ip_ranges=[
                    gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=PODS_RANGE, ip_cidr_range=PODS_CIDR),
                    gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=SERVICES_RANGE, ip_cidr_range=SERVICES_CIDR),
                ],
            ),
            opts=child,
        )
        network, subnetwork = vpc.id, subnet.id
        authorized_cidrs = [SUBNET_CIDR]
        if facts.private_nodes:
            router = gcp.compute.Router(
                f"{name}-router",
                gcp.compute.RouterArgs(project=project, region=region, network=vpc.id),
                opts=child,
            )
            gcp.compute.RouterNat(
                f"{name}-nat",
                gcp.compute.RouterNatArgs(
                    project=project,
                    region=region,
                    router=router.name,
                    nat_ip_allocate_option="AUTO_ONLY",
                    source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
                    log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
                ),
                opts=child,
            )

    # -- node service account --------------------------------------------------------------------
    node_sa = gcp.serviceaccount.Account(
        f"{name}-nodes",
        gcp.serviceaccount.AccountArgs(
            project=project,
            account_id=account_id(name, "nodes"),
            display_name=f"gpuplane GKE nodes of {name}",
        ),
        opts=child,
    )
    node_member = pulumi.Output.concat("serviceAccount:", node_sa.email)
    grants = [
        gcp.projects.IAMMember(
            f"{name}-nodes-{role_suffix(role)}",
            gcp.projects.IAMMemberArgs(project=project, role=role, member=node_member),
            opts=child,
        )
        for role in NODE_ROLES
    ]

    # -- cluster -------------------------------------------------------------------------------
    workload_pool = pulumi.Output.concat(project, ".svc.id.goog")
    cluster = gcp.container.Cluster(
        f"{name}-cluster",
        gcp.container.ClusterArgs(
            project=project,
            location=region,
            node_locations=zones,
            network=network,
            subnetwork=subnetwork,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=PODS_RANGE,
                services_secondary_range_name=SERVICES_RANGE,
            ),
            remove_default_node_pool=True,
            initial_node_count=1,
            # The default pool exists for minutes before it is removed; give it the node
            # account and hardened settings anyway, then ignore this block (it would otherwise
            # show a diff forever once the pool is gone).
            node_config=gcp.container.ClusterNodeConfigArgs(
                service_account=node_sa.email,
                oauth_scopes=OAUTH_SCOPES,
                shielded_instance_config=gcp.container.ClusterNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
                workload_metadata_config=gcp.container.ClusterNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
            ),
            min_master_version=plan.kubernetes_version,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=plan.release_channel),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(workload_pool=workload_pool),
            # GKE applies enable_private_endpoint only together with private nodes.
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=facts.private_nodes,
                enable_private_endpoint=plan.private_endpoint,
            )
            if facts.private_nodes or plan.private_endpoint
            else None,
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                        cidr_block=c, display_name=f"{name} subnet"
                    )
                    for c in authorized_cidrs
                ],
                gcp_public_cidrs_access_enabled=False,
            )
            if plan.private_endpoint
            else None,
            enable_shielded_nodes=True,
            binary_authorization=gcp.container.ClusterBinaryAuthorizationArgs(evaluation_mode="DISABLED"),
            logging_config=gcp.container.ClusterLoggingConfigArgs(enable_components=["SYSTEM_COMPONENTS", "WORKLOADS"]),
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                enable_components=["SYSTEM_COMPONENTS", "DCGM"],
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(enabled=True),
            ),
            deletion_protection=plan.deletion_protection,
            resource_labels=labels,
        ),
        opts=pulumi.ResourceOptions(parent=component, depends_on=grants, ignore_changes=["nodeConfig"]),
    )

    # -- system node pool ----------------------------------------------------------------------
    system_pool = gcp.container.NodePool(
        f"{name}-system",
        gcp.container.NodePoolArgs(
            project=project,
            cluster=cluster.name,
            location=region,
            node_locations=zones,
            initial_node_count=per_zone(plan.system_node_count, len(zones)),
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=plan.system_node_count,
                total_max_node_count=2 * plan.system_node_count,
                location_policy="BALANCED",
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=plan.system_instance_type,
                disk_size_gb=SYSTEM_DISK_GB,
                disk_type="pd-balanced",
                image_type="COS_CONTAINERD",
                service_account=node_sa.email,
                oauth_scopes=OAUTH_SCOPES,
                labels=dict(SYSTEM_POOL_LABEL),
                resource_labels=labels,
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                    mode="GKE_METADATA"
                ),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
            ),
        ),
        # The autoscaler owns the count; initialNodeCount only matters at creation (and forces
        # replacement if GKE reports a different value after a resize).
        opts=pulumi.ResourceOptions(parent=component, ignore_changes=["initialNodeCount", "nodeCount"]),
    )

    # -- outputs -------------------------------------------------------------------------------
    endpoint = cluster.endpoint.apply(lambda e: f"https://{e}" if e else e)
    plain_kubeconfig: pulumi.Output[str] = pulumi.Output.all(
        cluster.name, cluster.endpoint, cluster.master_auth.cluster_ca_certificate
    ).apply(lambda v: gke_kubeconfig(v[0], v[1] or "", v[2] or ""))
    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(plain_kubeconfig)
    handles.project = project
    handles.network = network
    handles.cluster_name = cluster.name
    handles.endpoint = endpoint
    handles.kubeconfig = kubeconfig
    handles.oidc_issuer_url = pulumi.Output.concat(
        "https://container.googleapis.com/v1/projects/", project, "/locations/", region, "/clusters/", cluster.name
    )
    handles.node_service_account_email = node_sa.email
    handles.workload_identity_pool = workload_pool
    handles.k8s_provider = k8s.Provider(
        f"{name}-provider",
        k8s.ProviderArgs(kubeconfig=kubeconfig),
        # Kubernetes objects go in once nodes exist to run them.
        opts=pulumi.ResourceOptions(parent=component, depends_on=[system_pool]),
    )
    return handles
