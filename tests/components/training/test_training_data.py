"""TrainingJob.data_url: the dataset is copied from a bucket the team's identity may read."""

from __future__ import annotations

import json

import pytest

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError
from components.training import SpotTrainingCluster
from components.training_job import TrainingJob
from tests.helpers import run, validate_all_core_objects

JOBSET = "kubernetes:jobset.x-k8s.io/v1alpha2:JobSet"


def _program(cloud: str, data_buckets, job_extra):
    def program() -> None:
        if cloud == "aws":
            cluster = KubernetesCluster("eks", {"cloud": "aws", "region": "us-east-1"})
            pool = {"name": "a10g", "accelerator": "A10G", "max_nodes": 2}
        else:
            cluster = KubernetesCluster("gke", {"cloud": "gcp", "region": "us-central1", "project": "acme"})
            pool = {"name": "l4", "accelerator": "L4", "max_nodes": 2}
        tc = SpotTrainingCluster("train", {"cluster": cluster, "pools": [pool], "checkpoint_bucket": {}, "data_buckets": data_buckets})
        TrainingJob("gpt", {"training_cluster": tc, "team": "training", "image": "img", "nodes": 2, **job_extra})

    return program


def _pod(result):
    spec = result.one(JOBSET).inputs["spec"]
    return spec["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]


def test_aws_job_copies_its_data_with_the_team_role_which_may_read_the_bucket():
    result = run(_program("aws", ["s3://retail-events"], {"data_url": "s3://retail-events/2026-11/"}))
    init = _pod(result)["initContainers"][0]
    assert init["command"][:3] == ["aws", "s3", "sync"] and "s3://retail-events/2026-11/" in init["command"]
    role_policy = next(r for r in result.by_type("aws:iam/rolePolicy:RolePolicy") if r.name.startswith("train-training-irsa"))
    statements = {s["Sid"]: s for s in json.loads(role_policy.inputs["policy"])["Statement"]}
    assert statements["ReadTrainingDataObjects"]["Resource"] == ["arn:aws:s3:::retail-events/*"]
    assert statements["ReadTrainingDataObjects"]["Action"] == ["s3:GetObject"]  # read only
    job = result.one("gpuplane:index:TrainingJob")
    assert job.inputs["gpuplane"]["dataUrl"] == "s3://retail-events/2026-11/"
    assert result.one("gpuplane:index:SpotTrainingCluster").inputs["gpuplane"]["dataBuckets"] == ["retail-events"]
    validate_all_core_objects(result)


def test_gcp_team_identity_gets_object_viewer_on_the_data_bucket():
    result = run(_program("gcp", ["gs://retail-events"], {"data_url": "gs://retail-events/events"}))
    grants = [r for r in result.by_type("gcp:storage/bucketIAMMember:BucketIAMMember") if r.inputs["bucket"] == "retail-events"]
    assert [g.inputs["role"] for g in grants] == ["roles/storage.objectViewer"]
    assert _pod(result)["initContainers"][0]["command"][:2] == ["gcloud", "storage"]


@pytest.mark.parametrize(
    ("cloud", "buckets", "job", "fragment"),
    [
        ("aws", [], {"data_url": "s3://retail-events/x"}, "is not one of the training cluster's data_buckets"),
        ("aws", ["s3://retail-events"], {"data_url": "s3://retail-events/x", "data_command": ["gen"]}, "and data_url both provide the dataset"),
        ("aws", ["s3://retail-events"], {"data_url": "ftp://x/y"}, "is not an s3:// or gs:// URL"),
    ],
)
def test_bad_data_urls_are_rejected(cloud, buckets, job, fragment):
    with pytest.raises(ComponentInputError, match="TrainingJob 'gpt'") as exc:
        run(_program(cloud, buckets, job))
    assert fragment in str(exc.value)


def test_a_data_bucket_of_the_wrong_cloud_is_rejected_before_anything_exists():
    with pytest.raises(ComponentInputError) as exc:
        run(_program("aws", ["gs://retail-events"], {}))
    assert "data_buckets[0] = 'gs://retail-events'" in str(exc.value)
