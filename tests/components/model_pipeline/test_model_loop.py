"""ModelRegistry, ModelPipeline and the endpoint canary: planners, and every target under the mock runtime.

Argo's custom resources are validated against the upstream schemas held in gpuplane/schemas
(argo-events 2.4.22 / argo-workflows 1.0.18, through gpuplane/engine/schemas.py), the JobSet the
train step creates against the JobSet CRD, the Workflow the Sensor creates against the Workflow
CRD, and the Helm values against the charts' values and templates.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
import yaml

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError
from components.inference import InferenceEndpoint, plan_endpoint
from components.model_pipeline import ModelPipeline
from components.model_registry import ModelRegistry, plan_model_registry
from components.training import SpotTrainingCluster
from gpuplane.engine.runtime import ProgramRun
from gpuplane.engine.schemas import custom_resource_problems, validate_schemas
from tests.helpers import run, validate_all_core_objects

CLUSTERS = {
    "aws": {"cloud": "aws", "region": "us-east-1", "tags": {"team": "ml"}},
    "gcp": {"cloud": "gcp", "region": "us-central1", "project": "gpuplane-dev"},
    "kubernetes": {"cloud": "existing"},
}
SCHEME = {"aws": "s3", "gcp": "gs", "kubernetes": "s3"}
ACCELERATOR = {"aws": "A10G", "gcp": "L4", "kubernetes": "L4"}


def _loop(target: str, *, trigger: str | None = None, endpoint: bool = True, canary: dict[str, Any] | None = None,
          endpoint_owner: str = "pipeline") -> ProgramRun:
    def program() -> None:
        cluster = KubernetesCluster("ml", CLUSTERS[target])  # type: ignore[arg-type]
        scheme = SCHEME[target]
        pool: dict[str, Any] = {"name": "gpu", "accelerator": ACCELERATOR[target], "max_nodes": 2}
        tc_args: dict[str, Any] = {"cluster": cluster, "pools": [pool], "teams": [{"name": "recs"}]}
        reg_args: dict[str, Any] = {"target": target, "cluster": cluster}
        if target == "kubernetes":
            pool.update(node_vcpus=8, node_memory_gib=32)
            tc_args["checkpoint_bucket"] = {"url": "s3://ckpt"}
            reg_args["artifact_bucket"] = "s3://models/mlflow"
        else:
            tc_args["checkpoint_bucket"] = {}
            tc_args["data_buckets"] = [f"{scheme}://events-bucket"]
        tc = SpotTrainingCluster("train", tc_args)  # type: ignore[arg-type]
        registry = ModelRegistry("models", reg_args)  # type: ignore[arg-type]
        args: dict[str, Any] = {
            "target": target, "registry": registry, "training_cluster": tc, "team": "recs", "image": "train:1",
            "trigger": {"kind": trigger or ("schedule" if target == "kubernetes" else "bucket-events"), "data_url": f"{scheme}://events-bucket/events"},
        }
        if endpoint:
            args["endpoint"] = InferenceEndpoint("recs", {"platform": "knative", "cluster": cluster, "image": "srv:1", "model_uri": f"{scheme}://models-bucket/recommender",
                                                          "rollout_managed_by": endpoint_owner})
            args["canary"] = canary or {"percent": 20, "window_seconds": 900}
        pipeline = ModelPipeline("recs-loop", args)  # type: ignore[arg-type]
        pulumi.export("tracking", registry.tracking_uri)
        pulumi.export("artifacts", registry.artifact_uri)
        del pipeline

    return run(program)


@pytest.fixture(scope="module", params=["aws", "gcp", "kubernetes"])
def loop(request: pytest.FixtureRequest) -> tuple[str, ProgramRun]:
    return request.param, _loop(request.param)


def _children(r: ProgramRun, token: str, name: str) -> dict[str, str]:
    component = r.one(token, name)
    return {c.name: c.type for c in r.children_of(component.urn)}


# --- every custom resource and chart value against the upstream schemas ----------------------------


def test_every_argo_resource_and_chart_value_passes_the_upstream_schemas(loop: tuple[str, ProgramRun]) -> None:
    _target, r = loop
    report = validate_schemas(r.resources)
    assert report.problems == [], "\n".join(report.problems)
    kinds = {x.type.rsplit(":", 1)[-1] for x in r.resources if x.type.startswith("kubernetes:argoproj.io")}
    assert kinds == {"EventBus", "EventSource", "Sensor", "WorkflowTemplate"}, kinds
    assert not [u for u in report.unchecked if "argo" in u or "mlflow" in u], report.unchecked
    assert validate_all_core_objects(r) >= 10


def test_the_schema_check_catches_a_misspelt_argo_field() -> None:
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": "s"},
            "spec": {"dependencies": [{"name": "d", "eventSourceName": "e", "eventName": "n"}], "triggers": [{"template": {"name": "t", "k8s": {"operation": "create", "sorce": {}}}}]}}
    problems = custom_resource_problems(body) or []
    assert any("sorce" in p for p in problems), problems


def test_the_sensor_creates_a_workflow_of_the_template_that_passes_the_workflow_crd(loop: tuple[str, ProgramRun]) -> None:
    target, r = loop
    sensor = r.one("kubernetes:argoproj.io/v1alpha1:Sensor", "recs-loop-sensor").inputs["spec"]
    created = sensor["triggers"][0]["template"]["k8s"]["source"]["resource"]
    assert created["kind"] == "Workflow" and created["spec"]["workflowTemplateRef"] == {"name": "recs-loop"}
    assert custom_resource_problems(json.loads(json.dumps(created))) == []
    if target == "kubernetes":
        assert "parameters" not in sensor["triggers"][0]["template"]["k8s"]  # a schedule carries no object
    else:
        key = "body.Records.0.s3.object.key" if target == "aws" else "body.name"
        assert sensor["triggers"][0]["template"]["k8s"]["parameters"][0]["src"] == {"dependencyName": "new-data", "dataKey": key}
        assert sensor["dependencies"][0]["filters"]["data"][0]["value"] == [".*_SUCCESS$"]


def _template(r: ProgramRun) -> dict[str, Any]:
    spec = r.one("kubernetes:argoproj.io/v1alpha1:WorkflowTemplate", "recs-loop-workflow-template").inputs["spec"]
    return {t["name"]: t for t in spec["templates"]} | {"__spec__": spec}


def test_the_train_step_creates_the_teams_jobset_in_its_kueue_queue_and_waits_for_its_terminal_state(loop: tuple[str, ProgramRun]) -> None:
    target, r = loop
    train = _template(r)["train"]["resource"]
    jobset = yaml.safe_load(train["manifest"])
    assert jobset["kind"] == "JobSet" and jobset["metadata"]["name"] == "{{workflow.name}}"
    assert jobset["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "train" and jobset["metadata"]["namespace"] == "recs"
    assert train["successCondition"] == "status.terminalState == Completed" and train["failureCondition"] == "status.terminalState == Failed"
    assert custom_resource_problems(jobset) == []
    pod = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "trainer"
    assert pod["containers"][0]["command"][:2] == ["sh", "-c"] and "workloads.training.launch" in pod["containers"][0]["command"][2]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["MASTER_ADDR"] == "{{workflow.name}}-worker-0-0.{{workflow.name}}"
    assert env["MODEL_EXPORT_URL"].endswith("/recs/{{workflow.name}}/export")
    if target != "kubernetes":
        assert pod["initContainers"][0]["command"][-2] == f"{SCHEME[target]}://events-bucket/events"


def test_evaluate_and_promote_run_the_workload_step_clis_with_the_registry(loop: tuple[str, ProgramRun]) -> None:
    _target, r = loop
    t = _template(r)
    tracking = r.outputs["tracking"]
    evaluate = t["evaluate"]["container"]["command"]
    assert "exec python -m workloads.pipeline.evaluate" in evaluate[2]
    assert evaluate[evaluate.index("--tracking-uri") + 1] == tracking == "http://models-mlflow.mlflow.svc.cluster.local:80"
    assert evaluate[evaluate.index("--model-dir") + 1] == "/tmp/model"
    promote = t["promote"]["container"]["command"]
    assert promote[:3] == ["python", "-m", "workloads.pipeline.promote"]
    assert promote[promote.index("--metric") + 1] == "ndcg_at_10" and promote[promote.index("--margin") + 1] == "0.002"
    steps = t["retrain"]["steps"]
    assert [s[0]["name"] for s in steps[:3]] == ["train", "evaluate", "promote"]
    assert steps[2][0]["continueOn"] == {"failed": True}, "a rejection (exit 3) ends the run with the champion kept"


def test_the_rollout_splits_traffic_by_revision_tags_then_goes_full_or_rolls_back(loop: tuple[str, ProgramRun]) -> None:
    _target, r = loop
    t = _template(r)
    canary_ops = yaml.safe_load(t["canary"]["resource"]["manifest"])
    traffic = next(op["value"] for op in canary_ops if op["path"] == "/spec/traffic")
    assert traffic == [
        {"tag": "champion", "revisionName": "{{steps.champion.outputs.parameters.revision}}", "percent": 80},
        {"tag": "challenger", "revisionName": "recs-{{workflow.name}}", "percent": 20},
    ]
    assert t["bake"]["suspend"] == {"duration": "900s"}
    assert "serving_knative_dev_revision%3D%22recs-{{workflow.name}}%22" in t["verify-errors"]["http"]["url"]
    assert "<= 0.01" in t["verify-errors"]["http"]["successCondition"] and "<= 0.5" in t["verify-latency"]["http"]["successCondition"]
    full = yaml.safe_load(t["full"]["resource"]["manifest"])[0]["value"]
    back = yaml.safe_load(t["rollback"]["resource"]["manifest"])[0]["value"]
    assert full == [{"tag": "champion", "revisionName": "recs-{{workflow.name}}", "percent": 100}], "promotion retags"
    assert [(x["tag"], x["percent"]) for x in back] == [("champion", 100), ("challenger", 0)]
    last = t["retrain"]["steps"][-1]
    assert {s["name"] for s in last} == {"full", "rollback"} and "!= Succeeded" in next(s["when"] for s in last if s["name"] == "rollback")


def test_each_target_wires_its_event_source(loop: tuple[str, ProgramRun]) -> None:
    target, r = loop
    kids = _children(r, "gpuplane:index:ModelPipeline", "recs-loop")
    es = r.one("kubernetes:argoproj.io/v1alpha1:EventSource", "recs-loop-eventsource").inputs["spec"]
    if target == "aws":
        assert kids["recs-loop-queue"] == "aws:sqs/queue:Queue" and kids["recs-loop-bucket-notification"] == "aws:s3/bucketNotification:BucketNotification"
        policy = json.loads(r.one("aws:sqs/queuePolicy:QueuePolicy", "recs-loop-queue-policy").inputs["policy"])
        assert policy["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
        assert policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == "arn:aws:s3:::events-bucket"
        note = r.one("aws:s3/bucketNotification:BucketNotification").inputs["queues"][0]
        assert note["events"] == ["s3:ObjectCreated:*"] and note["filterPrefix"] == "events/" and note["filterSuffix"] == "_SUCCESS"
        assert es["sqs"]["new-data"]["jsonBody"] is True and "accessKey" not in es["sqs"]["new-data"]
    elif target == "gcp":
        assert kids["recs-loop-topic"] == "gcp:pubsub/topic:Topic" and kids["recs-loop-bucket-notification"] == "gcp:storage/notification:Notification"
        assert r.one("gcp:pubsub/topicIAMMember:TopicIAMMember").inputs["member"] == "serviceAccount:service-123456789@gs-project-accounts.iam.gserviceaccount.com"
        assert r.one("gcp:storage/notification:Notification").inputs["eventTypes"] == ["OBJECT_FINALIZE"]
        assert set(es["pubSub"]["new-data"]) == {"projectID", "subscriptionID", "jsonBody"}
    else:
        assert es["calendar"]["new-data"]["schedule"] == "0 3 * * *"
    releases = {x.name: x.inputs for x in r.by_type("kubernetes:helm.sh/v3:Release")}
    assert releases["recs-loop-argo-workflows"]["version"] == "1.0.18" and releases["recs-loop-argo-events"]["version"] == "2.4.22"


# --- the registry ------------------------------------------------------------------------------


def test_the_aws_registry_database_is_encrypted_private_and_in_the_clusters_subnets() -> None:
    r = _loop("aws", endpoint=False)
    kids = _children(r, "gpuplane:index:ModelRegistry", "models")
    assert kids["models-db"] == "aws:rds/instance:Instance" and kids["models-db-subnets"] == "aws:rds/subnetGroup:SubnetGroup"
    db = r.one("aws:rds/instance:Instance", "models-db").inputs
    assert db["storageEncrypted"] is True and db["publiclyAccessible"] is False and db["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:models-key"
    assert db["engine"] == "postgres" and db["instanceClass"] == "db.t4g.micro" and db["backupRetentionPeriod"] == 7
    sg = r.one("aws:ec2/securityGroup:SecurityGroup", "models-db-sg").inputs
    assert sg["ingress"] == [{"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "securityGroups": ["sg-ml"], "description": "EKS cluster security group (every node)"}]
    assert len(r.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"]) == 3
    role = r.one("aws:iam/role:Role", "models-server-role").inputs
    assert "system:serviceaccount:mlflow:models-server" in role["assumeRolePolicy"]
    sa = r.one("kubernetes:core/v1:ServiceAccount", "models-sa").inputs
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/models-server-role"}
    values = r.one("kubernetes:helm.sh/v3:Release", "models-mlflow").inputs["values"]
    assert values["artifactRoot"] == {"proxiedArtifactStorage": True, "s3": {"enabled": True, "bucket": "models-artifacts-bucket"}}
    assert "postgresql" not in values and values["backendStore"]["existingDatabaseSecret"]["name"] == "models-db"
    assert r.outputs["artifacts"] == "s3://models-artifacts-bucket"


def test_the_gcp_registry_database_has_a_private_ip_only() -> None:
    r = _loop("gcp", endpoint=False)
    db = r.one("gcp:sql/databaseInstance:DatabaseInstance", "models-db").inputs
    ip = db["settings"]["ipConfiguration"]
    assert ip["ipv4Enabled"] is False and ip["privateNetwork"] == "ml-network-id" and ip.get("authorizedNetworks", []) == []
    assert db["settings"]["backupConfiguration"]["pointInTimeRecoveryEnabled"] is True and db["deletionProtection"] is False
    assert r.one("gcp:servicenetworking/connection:Connection").inputs["service"] == "servicenetworking.googleapis.com"
    assert r.one("gcp:storage/bucket:Bucket", "models-artifacts").inputs["publicAccessPrevention"] == "enforced"
    grant = r.one("gcp:storage/bucketIAMMember:BucketIAMMember", "models-server-artifacts").inputs
    assert grant["role"] == "roles/storage.objectAdmin" and grant["member"].startswith("serviceAccount:models-server")


def test_the_kubernetes_registry_runs_the_charts_postgres_and_a_given_bucket() -> None:
    r = _loop("kubernetes", endpoint=False)
    kids = _children(r, "gpuplane:index:ModelRegistry", "models")
    assert not [n for n, t in kids.items() if t.startswith(("aws:", "gcp:"))]
    values = r.one("kubernetes:helm.sh/v3:Release", "models-mlflow").inputs["values"]
    assert values["postgresql"]["enabled"] is True and values["backendStore"]["postgres"]["host"] == "models-mlflow-postgresql"
    assert values["artifactRoot"]["s3"] == {"enabled": True, "bucket": "models", "path": "mlflow"}


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ({"target": "kubernetes"}, "cluster"),
        ({"target": "local", "artifact_bucket": "s3://x"}, "artifact_bucket"),
        ({"target": "local", "database": {"storage_gib": 5}}, "database"),
        ({"target": "cloud"}, "target"),
        ({"target": "local", "colour": "red"}, "colour"),
    ],
)
def test_registry_planner_rejects_bad_input_with_the_path(args: dict[str, Any], path: str) -> None:
    with pytest.raises(ComponentInputError) as err:
        plan_model_registry("models", args)  # type: ignore[arg-type]
    assert any(p.path == path for p in err.value.problems), err.value


def test_the_local_registry_is_sqlite_and_a_directory() -> None:
    plan = plan_model_registry("models", {"target": "local"})
    assert plan.tracking_uri == "sqlite:///pipeline-output/registry/mlflow.db" and plan.implementation == "mlflow-local"
    assert plan.summary()["database"]["engine"] == "sqlite"


# --- bad pipeline input: one clear error, nothing created ---------------------------------------


def _expect_error(target: str, match: str, **kw: Any) -> None:
    with pytest.raises(Exception, match=match):
        _loop(target, **kw)


def test_bucket_events_on_an_existing_cluster_fail_with_the_reason_before_anything_exists() -> None:
    _expect_error("kubernetes", "argo-kubernetes does not support bucket-events", trigger="bucket-events")


def test_an_unknown_event_source_kind_is_named() -> None:
    _expect_error("aws", r"trigger.kind = 'webhook': is not an event source kind", trigger="webhook")


@pytest.mark.parametrize("percent", [-5, 101, 12.5])
def test_a_pipeline_canary_outside_0_100_is_one_clear_error(percent: Any) -> None:
    _expect_error("aws", r"canary.percent = .*must be a whole percentage from 0 to 100", canary={"percent": percent})


# --- the endpoint canary on every platform --------------------------------------------------------


def _endpoint(platform: str, canary: dict[str, Any]) -> ProgramRun:
    def program() -> None:
        args: dict[str, Any] = {"platform": platform, "image": "srv:1", "canary": canary}
        if platform == "knative":
            args.update(cluster=KubernetesCluster("ml", {"cloud": "existing"}), model_uri="s3://m/challenger")
        else:
            args.update(region="us-central1", project="gpuplane-dev", model_uri="gs://m/challenger")
        InferenceEndpoint("recs", args)  # type: ignore[arg-type]

    return run(program)


def test_knative_canary_splits_traffic_by_revision_tags_and_passes_the_service_crd() -> None:
    r = _endpoint("knative", {"percent": 25, "champion_revision": "recs-00003"})
    svc = r.one("kubernetes:serving.knative.dev/v1:Service")
    assert svc.inputs["spec"]["traffic"] == [
        {"tag": "champion", "revisionName": "recs-00003", "percent": 75},
        {"tag": "challenger", "latestRevision": True, "percent": 25},
    ]
    assert validate_schemas(r.resources).problems == []
    summary = r.one("gpuplane:index:InferenceEndpoint").inputs["gpuplane"]["canary"]
    assert summary["percent"] == 25 and summary["championPercent"] == 75


def test_cloud_run_canary_sets_revision_traffic() -> None:
    r = _endpoint("cloud-run", {"percent": 10, "champion_revision": "recs-00007-abc"})
    traffics = r.one("gcp:cloudrunv2/service:Service").inputs["traffics"]
    assert traffics == [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "recs-00007-abc", "percent": 90, "tag": "champion"},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 10, "tag": "challenger"},
    ]


@pytest.mark.parametrize(
    ("platform", "canary", "match"),
    [
        ("knative", {"percent": 150, "champion_revision": "recs-00001"}, r"canary.percent = 150: must be a whole percentage from 0 to 100"),
        ("knative", {"percent": -1, "champion_revision": "recs-00001"}, r"canary.percent = -1"),
        ("knative", {"percent": 10}, r"canary.champion_revision = None"),
        ("sagemaker-inference-components", {"percent": 10, "champion_model_uri": "s3://m/champ"}, r"sagemaker-inference-components endpoints do not support canary-rollout"),
        ("sagemaker", {"percent": 10}, r"canary.champion_model_uri = None: is required for a SageMaker canary"),
        ("sagemaker", {"percent": 10, "champion_model_uri": "s3://m/c", "champion_revision": "recs-1"}, r"sagemaker-async has no revisions"),
    ],
)
def test_a_bad_endpoint_canary_is_one_error_before_anything_exists(platform: str, canary: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"platform": platform, "image": "srv:1", "canary": canary, "region": "us-east-1"}
    if platform == "sagemaker-inference-components":
        args.update(platform="sagemaker", sagemaker_mode="inference-components")
    if platform == "knative":
        args = {"platform": platform, "image": "srv:1", "canary": canary}
        args["cluster"] = None  # plan only: the canary problems are reported with the others
    with pytest.raises(ComponentInputError, match=match):
        plan_endpoint("recs", args)  # type: ignore[arg-type]


def test_sagemaker_canary_weights_two_production_variants_that_both_scale_from_zero() -> None:
    def program() -> None:
        InferenceEndpoint("recs", {"platform": "sagemaker", "sagemaker_mode": "async", "image": "srv:1", "region": "us-east-1",
                                   "model_uri": "s3://m/challenger/model.tar.gz", "canary": {"percent": 30, "champion_model_uri": "s3://m/champion/model.tar.gz"}})

    r = run(program)
    variants = r.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs["productionVariants"]
    assert [(v["variantName"], v["initialVariantWeight"]) for v in variants] == [("main", 30), ("champion", 70)]
    assert variants[1]["modelName"] == "recs-champion-model" and variants[0]["instanceType"] == variants[1]["instanceType"]
    assert r.one("aws:sagemaker/model:Model", "recs-champion-model").inputs["primaryContainer"]["modelDataUrl"] == "s3://m/champion/model.tar.gz"
    assert r.one("aws:appautoscaling/target:Target", "recs-champion-scaling-target").inputs["minCapacity"] == 0
    assert r.one("aws:appautoscaling/target:Target", "recs-champion-scaling-target").inputs["resourceId"].endswith("/variant/champion")
    assert "arn:aws:s3:::m/champion/model.tar.gz*" in r.one("aws:iam/rolePolicy:RolePolicy", "recs-champion-read").inputs["policy"]


def test_the_pipelines_canary_patch_targets_the_knative_fetch_model_init_container() -> None:
    """The rollout's JSON patch replaces initContainers/0's command: that is the model download."""
    from components.kubernetes.storage import sync_command
    from components.model_pipeline.argo import MODEL_DIR

    r = _endpoint("knative", {"percent": 0, "champion_revision": "recs-00001"})
    init = r.one("kubernetes:serving.knative.dev/v1:Service").inputs["spec"]["template"]["spec"]["initContainers"]
    assert init[0]["name"] == "fetch-model" and init[0]["command"] == sync_command("s3://m/challenger", MODEL_DIR)


# --- the pipeline planner (table) -----------------------------------------------------------------


def _local_registry() -> Any:
    """A local ModelRegistry component needs the mock runtime; the planner only reads its plan."""
    from types import SimpleNamespace

    registry = object.__new__(ModelRegistry)
    registry.plan = plan_model_registry("models", {"target": "local"})
    return SimpleNamespace(registry=registry)


@pytest.mark.parametrize(
    ("args", "path", "fragment"),
    [
        ({"trigger": {"kind": "manual", "data_url": "data/events"}}, None, None),
        ({"trigger": {"kind": "schedule", "data_url": "data/events"}}, "trigger.kind", "pipeline-local does not support scheduled-retraining"),
        ({"trigger": {"kind": "bucket-events", "data_url": "s3://b/e"}}, "trigger.kind", "pipeline-local does not support bucket-events"),
        ({"trigger": {"kind": "manual", "data_url": "data/events"}, "team": "recs"}, "team", "does not apply to the local target"),
        ({"trigger": {"kind": "manual", "data_url": "data/events"}, "gate": {"metric": "auc"}}, "gate.metric", "is not a metric the evaluation step records"),
        ({"trigger": {"kind": "manual", "data_url": "data/events"}, "gate": {"min_improvement": -1}}, "gate.min_improvement", "at least 0"),
        ({"trigger": {"kind": "manual", "data_url": "data/events"}, "canary": {"percent": 10}}, "canary", "needs an endpoint"),
        ({"trigger": "daily"}, "trigger", "must be a dict"),
    ],
)
def test_pipeline_planner_table(args: dict[str, Any], path: str | None, fragment: str | None) -> None:
    from components.model_pipeline import local_steps, plan_model_pipeline

    full = {"target": "local", "registry": _local_registry().registry, **args}
    if path is None:
        plan = plan_model_pipeline("recs-loop", full)  # type: ignore[arg-type]
        assert plan.implementation == "pipeline-local" and plan.job is None and plan.trigger.data_url == "data/events"
        steps = local_steps(plan, plan_model_registry("models", {"target": "local"}).tracking_uri)
        assert steps[1][:3] == ["python", "-m", "workloads.pipeline.promote"] and "sqlite:///pipeline-output/registry/mlflow.db" in steps[1]
        return
    with pytest.raises(ComponentInputError) as err:
        plan_model_pipeline("recs-loop", full)  # type: ignore[arg-type]
    hits = [p for p in err.value.problems if p.path == path]
    assert hits and fragment in hits[0].message, err.value


def test_a_cluster_pipeline_rejects_a_local_registry_and_a_long_name() -> None:
    from components.model_pipeline import plan_model_pipeline

    with pytest.raises(ComponentInputError) as err:
        plan_model_pipeline("a-very-long-pipeline-name-here", {"target": "aws", "registry": _local_registry().registry, "trigger": {"kind": "schedule", "data_url": "s3://b/e"}})  # type: ignore[typeddict-item]
    paths = {p.path for p in err.value.problems}
    assert {"name", "registry", "training_cluster"} <= paths, err.value


def test_an_existing_clusters_pipeline_can_pass_bucket_credentials_to_its_step_pods() -> None:
    from components.model_pipeline import plan_model_pipeline
    from components.model_pipeline.argo import workflow_template

    def program() -> None:
        cluster = KubernetesCluster("ml", {"cloud": "existing"})
        tc = SpotTrainingCluster("train", {"cluster": cluster, "checkpoint_bucket": {"url": "s3://ckpt"}, "teams": [{"name": "recs"}],
                                           "pools": [{"name": "gpu", "accelerator": "L4", "node_vcpus": 8, "node_memory_gib": 32}]})
        registry = ModelRegistry("models", {"target": "kubernetes", "cluster": cluster, "artifact_bucket": "s3://models"})
        base = {"target": "kubernetes", "registry": registry, "training_cluster": tc, "team": "recs", "image": "t:1",
                "trigger": {"kind": "schedule", "data_url": "s3://events/e"}}
        plan = plan_model_pipeline("loop", {**base, "credentials_secret": "minio"})  # type: ignore[typeddict-item]
        body = workflow_template(plan, "t:1", "s3://ckpt/recs/x", "http://mlflow", {}, None)
        containers = [t["container"] for t in body["spec"]["templates"] if "container" in t]
        assert containers and all(c["envFrom"] == [{"secretRef": {"name": "minio"}}] for c in containers)
        with pytest.raises(ComponentInputError, match="credentials_secret = 'Bad_Name'"):
            plan_model_pipeline("loop", {**base, "credentials_secret": "Bad_Name"})  # type: ignore[typeddict-item]

    run(program)
