"""Train here, serve there: the pipeline copies each promoted model to another cloud's bucket, priced in the plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError, Problems
from components.model_pipeline.replication import plan_replicas
from components.model_registry import ModelRegistry
from components.training import SpotTrainingCluster
from tests.helpers import run
from workloads.pipeline import replicate


def test_a_copy_to_another_cloud_is_priced_from_the_catalogs_egress():
    p = Problems("ModelPipeline", "loop")
    (r,) = plan_replicas(p, [{"url": "gs://models-us/recommender/", "region": "us-central1", "model_size_gib": 2.0}], "aws", "us-east-1")
    assert not p.items
    assert (r.url, r.cloud, r.scope, r.usd_per_gib) == ("gs://models-us/recommender", "gcp", "other-cloud", 0.09)
    assert r.usd_per_rollout == pytest.approx(0.18) and r.seconds == pytest.approx(2.0 / 0.1)
    (eu,) = plan_replicas(p, [{"url": "s3://models-eu/r", "region": "eu-west-1", "model_size_gib": 2.0}], "aws", "us-east-1")
    assert eu.scope == "other-jurisdiction" and eu.usd_per_rollout == pytest.approx(0.04)


@pytest.mark.parametrize(("replica", "path", "fragment"), [
    ({"url": "https://x/y", "region": "us-central1", "model_size_gib": 1}, "replicate_to[0].url", "is not an s3:// or gs:// bucket URL"),
    ({"url": "gs://mdl/r", "region": "us-east-1", "model_size_gib": 1}, "replicate_to[0].region", "is not a gcp region in the catalog"),
    ({"url": "gs://mdl/r", "region": "us-central1", "model_size_gib": 0}, "replicate_to[0].model_size_gib", "must be a positive size"),
])
def test_a_bad_replica_is_one_problem_with_the_path(replica: dict[str, Any], path: str, fragment: str):
    p = Problems("ModelPipeline", "loop")
    assert plan_replicas(p, [replica], "aws", "us-east-1") == ()
    assert [x.path for x in p.items] == [path] and fragment in p.items[0].message


def _pipeline(replicate_to: list[dict[str, Any]]) -> Any:
    from components.model_pipeline import plan_model_pipeline

    cluster = KubernetesCluster("ml", {"cloud": "aws", "region": "us-east-1"})
    tc = SpotTrainingCluster("train", {"cluster": cluster, "pools": [{"name": "gpu", "accelerator": "A10G"}], "teams": [{"name": "recs"}],
                                       "checkpoint_bucket": {}, "data_buckets": ["s3://events"]})
    registry = ModelRegistry("models", {"target": "aws", "cluster": cluster})
    return plan_model_pipeline("loop", {"target": "aws", "registry": registry, "training_cluster": tc, "team": "recs", "image": "t:1",  # type: ignore[typeddict-item]
                                        "trigger": {"kind": "schedule", "schedule": "0 3 * * *", "data_url": "s3://events/e"}, "replicate_to": replicate_to})


def test_the_workflow_copies_the_promoted_export_after_the_gate_and_the_plan_reports_it():
    from components.model_pipeline.argo import workflow_template

    out: dict[str, Any] = {}

    def program() -> None:
        plan = _pipeline([{"url": "gs://models-us/recommender", "region": "us-central1", "model_size_gib": 0.5}])
        out["summary"] = plan.summary()
        out["body"] = workflow_template(plan, "t:1", "s3://ckpt/recs/x", "http://mlflow", {}, None)
        with pytest.raises(ComponentInputError, match=r"replicate_to\[0\]\.region = 'mars-1'"):
            _pipeline([{"url": "gs://mdl/r", "region": "mars-1", "model_size_gib": 1}])

    run(program)
    steps = [s["name"] for group in out["body"]["spec"]["templates"][0]["steps"] for s in group]
    assert steps.index("replicate-0") == steps.index("promote") + 1
    step = next(s for g in out["body"]["spec"]["templates"][0]["steps"] for s in g if s["name"] == "replicate-0")
    assert step["when"] == "{{steps.promote.exitCode}} == 0"
    tmpl = next(t for t in out["body"]["spec"]["templates"] if t["name"] == "replicate-0")
    cmd = tmpl["container"]["command"] + tmpl["container"].get("args", [])
    assert cmd[:3] == ["python", "-m", "workloads.pipeline.replicate"]
    assert "gs://models-us/recommender/{{workflow.name}}" in cmd and "gs://models-us/recommender/champion" in cmd
    (rep,) = out["summary"]["replication"]
    assert rep["usdPerRollout"] == pytest.approx(0.045) and rep["transferSeconds"] == pytest.approx(5.0) and rep["scope"] == "other-cloud"


def test_the_cost_model_prices_rollouts_per_month():
    from policies.costmodel import Usage, _replication_cost

    class View:
        urn, type, name = "urn:x", "gpuplane:index:ModelPipeline", "loop"
        summary: ClassVar[dict[str, Any]] = {"replication": [{"url": "gs://mdl/r", "cloud": "gcp", "region": "us-central1", "gibPerRollout": 0.5, "scope": "other-cloud",
                                    "usdPerGib": 0.09, "transferSeconds": 5.0, "usdPerRollout": 0.045, "egressSource": "src"}]}

    (c,) = _replication_cost(View(), Usage.from_dict({"rolloutsPerMonth": 20}))  # type: ignore[arg-type]
    assert c.monthly.expected == pytest.approx(0.9) and "20 rollouts/month" in c.basis and c.part == "replication to gs://mdl/r"


def test_replicate_copies_config_first_and_weights_last(tmp_path: Path, capsys):
    src = tmp_path / "export"
    (src / "sub").mkdir(parents=True)
    (src / "model.safetensors").write_bytes(b"w" * 1000)
    (src / "config.json").write_text("{}")
    (src / "sub" / "metrics.json").write_text("{}")
    order = [p.rsplit("/", 1)[-1] for p in replicate._files(*__import__("fsspec").core.url_to_fs(str(src)))]
    assert order[0] == "config.json" and order[-1] == "model.safetensors"
    assert replicate.main(["--src", str(src), "--dst", str(tmp_path / "gcs" / "run-1"), "--also", str(tmp_path / "gcs" / "champion")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report[str(tmp_path / "gcs" / "run-1")] == {**report[str(tmp_path / "gcs" / "run-1")], "files": 3, "bytes": 1004}
    assert (tmp_path / "gcs" / "champion" / "sub" / "metrics.json").exists()
    assert (tmp_path / "gcs" / "champion" / "model.safetensors").read_bytes() == b"w" * 1000
    assert replicate.main(["--src", str(tmp_path / "nothing"), "--dst", str(tmp_path / "x")]) == 2
