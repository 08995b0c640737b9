"""Table tests for the pure KubernetesCluster planner."""

from __future__ import annotations

import pytest

from components.cluster import plan_cluster
from components.errors import ComponentInputError


def test_aws_defaults():
    plan = plan_cluster("c", {"cloud": "aws", "region": "us-east-1"})
    assert plan.facts.cloud == "aws"
    assert plan.facts.zones == ("us-east-1a", "us-east-1b", "us-east-1c")
    assert plan.facts.autoscaler == "cluster-autoscaler"
    assert plan.system_instance_type == "m6i.large"
    assert not plan.private_endpoint and plan.facts.private_nodes


def test_gcp_and_existing():
    assert plan_cluster("c", {"cloud": "gcp", "region": "us-central1", "project": "p"}).facts.autoscaler == "gke"
    existing = plan_cluster("c", {"cloud": "existing"})
    assert existing.facts.cloud == "kubernetes" and existing.facts.region is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"cloud": "azure"}, "cloud = 'azure'"),
        ({"cloud": "aws", "region": "mars-1"}, "region = 'mars-1': is not a aws region"),
        ({"cloud": "aws", "region": "us-east-1", "zones": ["us-west-2a"]}, "are not zones of us-east-1"),
        ({"cloud": "gcp", "region": "us-central1"}, "project = None: is required"),
        ({"cloud": "gcp", "region": "us-central1", "project": "p", "autoscaler": "karpenter"}, "applies only to EKS"),
        ({"cloud": "existing", "region": "us-east-1"}, "has no effect on an existing cluster"),
        ({"cloud": "gcp", "region": "us-central1", "project": "p", "private_endpoint": True, "private_nodes": False}, "needs private nodes on GKE"),
        ({"cloud": "aws", "region": "us-east-1", "system_node_count": 0}, "system_node_count = 0"),
        ({"cloud": "aws", "region": "us-east-1", "privte_endpoint": True}, "privte_endpoint = True: is not an argument"),
    ],
)
def test_bad_cluster_args(args, fragment):
    with pytest.raises(ComponentInputError) as exc:
        plan_cluster("c", args)
    assert fragment in str(exc.value)
