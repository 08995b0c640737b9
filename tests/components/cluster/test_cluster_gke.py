"""GKE KubernetesCluster (components/cluster/gke.py) and the Workload Identity helper, under mocks."""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pytest
import yaml

from components.cluster import KubernetesCluster
from components.cluster.gke import NODE_ROLES, SUBNET_CIDR, gke_kubeconfig
from components.gcp.conventions import gcp_labels, per_zone
from components.gcp.iam import KSA_ANNOTATION, WORKLOAD_IDENTITY_USER, account_id, workload_identity_sa
from gpuplane.engine.runtime import ProgramRun
from tests.helpers import run

PROJECT = "acme-ml"
CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"


def _cluster_program(extra: dict[str, Any] | None = None, after: Any = None) -> Any:
    def program() -> None:
        c = KubernetesCluster(
            "ml",
            {
                "cloud": "gcp",
                "region": "us-central1",
                "project": PROJECT,
                "tags": {"team": "ML Platform", "Cost.Center": "42"},
                **(extra or {}),
            },
        )
        pulumi.export("issuer", c.oidc_issuer_url)
        pulumi.export("kubeconfig", c.kubeconfig)
        pulumi.export("pool", c.workload_identity_pool)
        pulumi.export("endpoint", c.endpoint)
        pulumi.export("nodeSa", c.node_service_account_email)
        pulumi.export("name", c.cluster_name)
        if after:
            after(c)

    return program


@pytest.fixture(scope="module")
def default_run() -> ProgramRun:
    return run(_cluster_program())


def test_gke_cluster_creates_network_nat_node_account_cluster_system_pool_and_provider(default_run: ProgramRun) -> None:
    root = default_run.one("gpuplane:index:KubernetesCluster", "ml")
    children = {(r.type, r.name) for r in default_run.children_of(root.urn)}
    expected = {
        ("gcp:compute/network:Network", "ml-network"),
        ("gcp:compute/subnetwork:Subnetwork", "ml-subnet"),
        ("gcp:compute/router:Router", "ml-router"),
        ("gcp:compute/routerNat:RouterNat", "ml-nat"),
        ("gcp:serviceaccount/account:Account", "ml-nodes"),
        (CLUSTER, "ml-cluster"),
        (NODE_POOL, "ml-system"),
        ("pulumi:providers:kubernetes", "ml-provider"),
    } | {
        ("gcp:projects/iAMMember:IAMMember", f"ml-nodes-{re.sub('[^a-z0-9]+', '-', r.removeprefix('roles/').lower())}")
        for r in NODE_ROLES
    }
    assert children == expected
    # everything the component made is its child; nothing else was registered
    assert len(default_run.resources) == len(expected) + 1


def test_gke_cluster_inputs_are_hardened_and_vpc_native(default_run: ProgramRun) -> None:
    c = default_run.one(CLUSTER).inputs
    assert c["location"] == "us-central1"
    assert c["nodeLocations"] == ["us-central1-a", "us-central1-b", "us-central1-c"]
    assert c["removeDefaultNodePool"] is True and c["initialNodeCount"] == 1
    assert c["networkingMode"] == "VPC_NATIVE"
    assert c["ipAllocationPolicy"] == {"clusterSecondaryRangeName": "pods", "servicesSecondaryRangeName": "services"}
    assert c["workloadIdentityConfig"] == {"workloadPool": f"{PROJECT}.svc.id.goog"}
    assert c["releaseChannel"] == {"channel": "REGULAR"}
    assert c["privateClusterConfig"] == {"enablePrivateNodes": True, "enablePrivateEndpoint": False}
    assert "masterAuthorizedNetworksConfig" not in c
    assert "databaseEncryption" not in c  # Google-managed keys (module docstring)
    assert c["deletionProtection"] is False
    assert c["enableShieldedNodes"] is True
    assert c["binaryAuthorization"] == {"evaluationMode": "DISABLED"}
    assert "DCGM" in c["monitoringConfig"]["enableComponents"]
    assert c["resourceLabels"] == {"team": "ml_platform", "cost_center": "42", "gpuplane-cluster": "ml"}
    assert c["nodeConfig"]["serviceAccount"] == f"ml-nodes@{PROJECT}.iam.gserviceaccount.com"
    assert default_run.one(CLUSTER).ignore_changes == ["nodeConfig"]
    subnet = default_run.one("gcp:compute/subnetwork:Subnetwork").inputs
    assert subnet["privateIpGoogleAccess"] is True and subnet["ipCidrRange"] == SUBNET_CIDR
    assert {r["rangeName"] for r in subnet["secondaryIpRanges"]} == {"pods", "services"}
    assert default_run.one("gcp:compute/network:Network").inputs["autoCreateSubnetworks"] is False


def test_system_pool_uses_total_limits_node_account_and_gke_metadata(default_run: ProgramRun) -> None:
    pool = default_run.one(NODE_POOL, "ml-system")
    assert pool.inputs["autoscaling"] == {"totalMinNodeCount": 2, "totalMaxNodeCount": 4, "locationPolicy": "BALANCED"}
    assert pool.inputs["initialNodeCount"] == 1  # per zone, 3 zones cover 2 nodes
    assert pool.ignore_changes == ["initialNodeCount", "nodeCount"]
    cfg = pool.inputs["nodeConfig"]
    assert cfg["machineType"] == "e2-standard-4"
    assert cfg["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert cfg["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}
    assert cfg["serviceAccount"] == f"ml-nodes@{PROJECT}.iam.gserviceaccount.com"
    assert "guestAccelerators" not in cfg


def test_node_account_gets_only_the_minimal_roles(default_run: ProgramRun) -> None:
    grants = default_run.by_type("gcp:projects/iAMMember:IAMMember")
    assert sorted(g.inputs["role"] for g in grants) == sorted(NODE_ROLES)
    assert {g.inputs["member"] for g in grants} == {f"serviceAccount:ml-nodes@{PROJECT}.iam.gserviceaccount.com"}
    assert not any("editor" in r or "owner" in r for r in NODE_ROLES)


def test_outputs_issuer_pool_endpoint_and_kubeconfig(default_run: ProgramRun) -> None:
    out = default_run.outputs
    assert (
        out["issuer"]
        == f"https://container.googleapis.com/v1/projects/{PROJECT}/locations/us-central1/clusters/ml-cluster"
    )
    assert out["pool"] == f"{PROJECT}.svc.id.goog"
    assert out["endpoint"] == "https://10.0.0.2"
    assert out["nodeSa"] == f"ml-nodes@{PROJECT}.iam.gserviceaccount.com"
    kc = yaml.safe_load(out["kubeconfig"])
    assert kc["clusters"][0]["cluster"]["server"] == "https://10.0.0.2"
    assert kc["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    provider = default_run.one("pulumi:providers:kubernetes")
    assert default_run.one(NODE_POOL, "ml-system").urn in provider.dependencies


def test_existing_network_and_public_nodes_create_no_network_and_no_private_config() -> None:
    r = run(
        _cluster_program(
            {"existing_network": {"network": "shared-vpc", "subnetwork": "gke-subnet"}, "private_nodes": False}
        )
    )
    for typ in (
        "gcp:compute/network:Network",
        "gcp:compute/subnetwork:Subnetwork",
        "gcp:compute/router:Router",
        "gcp:compute/routerNat:RouterNat",
    ):
        assert not r.by_type(typ), typ
    c = r.one(CLUSTER).inputs
    assert (c["network"], c["subnetwork"]) == ("shared-vpc", "gke-subnet")
    assert "privateClusterConfig" not in c


def test_private_endpoint_limits_authorized_networks_to_the_subnet_and_deletion_protection() -> None:
    r = run(
        _cluster_program(
            {"private_endpoint": True, "deletion_protection": True, "release_channel": "STABLE", "system_node_count": 3}
        )
    )
    c = r.one(CLUSTER).inputs
    assert c["privateClusterConfig"] == {"enablePrivateNodes": True, "enablePrivateEndpoint": True}
    assert c["masterAuthorizedNetworksConfig"]["cidrBlocks"][0]["cidrBlock"] == SUBNET_CIDR
    assert c["masterAuthorizedNetworksConfig"]["gcpPublicCidrsAccessEnabled"] is False
    assert c["deletionProtection"] is True
    assert c["releaseChannel"] == {"channel": "STABLE"}
    assert r.one(NODE_POOL, "ml-system").inputs["autoscaling"]["totalMinNodeCount"] == 3


def test_workload_identity_sa_binds_the_ksa_member_and_grants_roles() -> None:
    made: dict[str, Any] = {}

    def after(c: KubernetesCluster) -> None:
        wi = workload_identity_sa(c, "ml-trainer", c, "training", "trainer", ["roles/aiplatform.user"])
        account, binding = wi  # unpacks as (account, binding)
        assert (account, binding) == (wi.account, wi.binding)
        made["wi"] = wi
        pulumi.export("annotations", wi.annotations)

    r = run(_cluster_program(after=after))
    root = r.one("gpuplane:index:KubernetesCluster").urn
    gsa = r.one("gcp:serviceaccount/account:Account", "ml-trainer-gsa")
    assert gsa.parent == root and gsa.inputs["accountId"] == "ml-trainer" and gsa.inputs["project"] == PROJECT
    wi = r.one("gcp:serviceaccount/iAMMember:IAMMember", "ml-trainer-wi")
    assert wi.parent == root
    assert wi.inputs["role"] == WORKLOAD_IDENTITY_USER
    assert wi.inputs["member"] == f"serviceAccount:{PROJECT}.svc.id.goog[training/trainer]"
    assert (
        wi.inputs["serviceAccountId"]
        == f"projects/{PROJECT}/serviceAccounts/ml-trainer@{PROJECT}.iam.gserviceaccount.com"
    )
    grant = r.one("gcp:projects/iAMMember:IAMMember", "ml-trainer-aiplatform-user")
    assert grant.inputs == {
        "project": PROJECT,
        "role": "roles/aiplatform.user",
        "member": f"serviceAccount:ml-trainer@{PROJECT}.iam.gserviceaccount.com",
    }
    assert r.outputs["annotations"] == {KSA_ANNOTATION: f"ml-trainer@{PROJECT}.iam.gserviceaccount.com"}
    assert len(made["wi"].grants) == 1


def test_workload_identity_sa_rejects_a_cluster_that_is_not_gke() -> None:
    def program() -> None:
        c = KubernetesCluster("kind", {"cloud": "existing"})
        with pytest.raises(ValueError, match="needs a GKE cluster"):
            workload_identity_sa(c, "x", c, "ns", "ksa")

    r = run(program)
    assert not r.by_type("gcp:serviceaccount/account:Account")


@pytest.mark.parametrize(
    ("tags", "labels"),
    [
        ({"team": "ml"}, {"team": "ml"}),
        ({"Team": "ML Platform"}, {"team": "ml_platform"}),
        ({"cost.center": "CC/42"}, {"cost_center": "cc_42"}),
        ({"1st": "x"}, {"t1st": "x"}),
        ({"k": "v" * 80}, {"k": "v" * 63}),
        ({"Team": "a", "team": "b"}, {"team": "b"}),  # collision: the key sorting last wins
    ],
)
def test_gcp_labels_follow_gcp_label_rules(tags: dict[str, str], labels: dict[str, str]) -> None:
    assert gcp_labels(tags) == labels
    for k, v in gcp_labels(tags).items():
        assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", k) and re.fullmatch(r"[a-z0-9_-]{0,63}", v)


@pytest.mark.parametrize(
    ("base", "suffix"),
    [("ml", "nodes"), ("ml", ""), ("ML_Cluster.Prod", "nodes"), ("9lives", ""), ("a" * 50, "nodes"), ("x", "")],
)
def test_account_id_is_a_valid_service_account_id(base: str, suffix: str) -> None:
    aid = account_id(base, suffix)
    assert re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", aid), aid


def test_account_id_keeps_long_names_distinct() -> None:
    assert account_id("a" * 40 + "-one") != account_id("a" * 40 + "-two")
    assert account_id("ml", "nodes") == "ml-nodes"


def test_gke_kubeconfig_and_per_zone_counts() -> None:
    kc = yaml.safe_load(gke_kubeconfig("c", "1.2.3.4", "Q0E="))
    assert kc["current-context"] == "c"
    assert kc["clusters"][0]["cluster"] == {"server": "https://1.2.3.4", "certificate-authority-data": "Q0E="}
    assert kc["users"][0]["user"]["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert [per_zone(t, 3) for t in (0, 1, 3, 4)] == [0, 1, 1, 2]
