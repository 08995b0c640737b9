"""BatchJob's backends under the mock runtime: children, names, parents, key inputs; request bodies
checked against botocore's service models, Kubernetes objects against the OpenAPI schema and Argo
objects against the upstream CRDs (gpuplane/schemas)."""

from __future__ import annotations

import copy
import json
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.validate import ParamValidator

from components.batch_job import BatchJob
from components.batch_job.triggers import eventbridge_schedule, s3_event_pattern
from components.cluster import KubernetesCluster
from gpuplane.engine.aws_enums import check_aws_enums
from gpuplane.engine.runtime import ProgramRun
from gpuplane.engine.schemas import custom_resource_problems
from tests.helpers import run, validate_all_core_objects, validate_k8s

GS = {"dataset_uri": "gs://data/in", "output_uri": "gs://data/out", "model_uri": "gs://data/model"}
S3 = {"dataset_uri": "s3://data/in", "output_uri": "s3://data/out", "model_uri": "s3://data/model"}
CLOUD_RUN = {"platform": "cloud-run", "image": "img", "items": 1_000_000, "items_per_second": 100.0, "region": "us-central1", "project": "p", **GS}
BATCH = {"platform": "aws-batch", "image": "img", "items": 1_000_000, "items_per_second": 50.0, "region": "us-east-1",
         "subnet_ids": ["subnet-1"], "security_group_ids": ["sg-1"], "max_task_seconds": 3600, **S3}
SAGEMAKER = {"platform": "sagemaker", "image": "img", "items": 100_000, "items_per_second": 50.0, "region": "us-east-1", **S3}
KUEUE = {"queue": "team-a", "image": "img", "items": 100_000, "items_per_second": 50.0, **S3}


def one_job(args: dict[str, Any], *, name: str = "batch") -> ProgramRun:
    def program() -> None:
        a = dict(args)
        if a.get("platform") == "kueue":
            a["cluster"] = KubernetesCluster("sandbox", {"cloud": "existing"})
        BatchJob(name, a)  # type: ignore[arg-type]

    return run(program)


def children(r: ProgramRun) -> dict[str, Any]:
    comp = r.one("gpuplane:index:BatchJob")
    kids = {x.name: x for x in r.resources if x.parent == comp.urn}
    for x in kids.values():
        assert x.name.startswith("batch-"), f"{x.urn} is not named after the component"
    return kids


def botocore_problems(service: str, operation: str, params: dict[str, Any]) -> str:
    model = botocore.session.get_session().get_service_model(service)
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    return report.generate_report() if report.has_errors() else ""


# -- Cloud Run Jobs -------------------------------------------------------------------------------


def test_cloud_run_job_has_the_planned_tasks_timeout_retries_and_one_l4():
    r = one_job({**CLOUD_RUN, "max_attempts": 4})
    plan = r.one("gpuplane:index:BatchJob").inputs["gpuplane"]
    job = children(r)["batch-job"]
    assert job.type == "gcp:cloudrunv2/job:Job"
    t = job.inputs["template"]
    assert t["taskCount"] == plan["tasks"] and t["parallelism"] == min(100, plan["tasks"])
    inner = t["template"]
    assert inner["timeout"] == f"{int(plan['taskTimeoutSeconds'])}s" and plan["taskTimeoutSeconds"] <= 3600
    assert inner["maxRetries"] == 3
    assert inner["nodeSelector"] == {"accelerator": "nvidia-l4"} and inner["gpuZonalRedundancyDisabled"] is True
    c = inner["containers"][0]
    assert c["resources"]["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert c["commands"] == ["python", "-m", "workloads.batch"]
    env = {e["name"]: e["value"] for e in c["envs"]}
    assert env["GPUPLANE_TASK_COUNT"] == str(int(plan["tasks"])) and env["GPUPLANE_MANIFEST_URI"] == "gs://data/out/_manifest"
    assert "launchStage" not in job.inputs or job.inputs["launchStage"] is None


def test_cloud_run_bucket_trigger_is_eventarc_to_a_workflow_that_runs_the_job_with_the_object():
    r = one_job({**CLOUD_RUN, "trigger": {"kind": "bucket-objects", "prefix_uri": "gs://data/incoming", "suffix": ".jsonl"}, "model_version": "7"})
    kids = children(r)
    trig = kids["batch-trigger"]
    assert {m["attribute"]: m["value"] for m in trig.inputs["matchingCriterias"]} == {"type": "google.cloud.storage.object.v1.finalized", "bucket": "data"}
    source = yaml.safe_load(kids["batch-workflow"].inputs["sourceContents"])
    run_step = next(s["run"] for s in source["main"]["steps"] if "run" in s)
    assert run_step["call"] == "googleapis.run.v2.projects.locations.jobs.run"
    env = {e["name"]: e["value"] for e in run_step["args"]["body"]["overrides"]["containerOverrides"][0]["env"]}
    assert env == {"GPUPLANE_OBJECT_URI": '${"gs://" + object.bucket + "/" + object.name}', "GPUPLANE_OBJECT_GENERATION": "${object.generation}",
                   "GPUPLANE_MODEL_VERSION": "7"}
    assert "incoming/" in json.dumps(source["main"]["steps"][1])
    assert kids["batch-invoker-run"].inputs["role"] == "roles/run.jobsExecutorWithOverrides"


def test_cloud_run_schedule_is_cloud_scheduler_posting_jobs_run():
    r = one_job({**CLOUD_RUN, "trigger": {"kind": "schedule", "schedule": "0 3 * * *"}})
    sched = children(r)["batch-schedule"]
    assert sched.inputs["schedule"] == "0 3 * * *" and sched.inputs["timeZone"] == "Etc/UTC"
    assert sched.inputs["httpTarget"]["uri"].endswith("/locations/us-central1/jobs/batch:run")
    assert sched.inputs["httpTarget"]["httpMethod"] == "POST"


def test_the_gpu_preview_timeout_sets_launch_stage_beta():
    r = one_job({**CLOUD_RUN, "cloud_run_gpu_preview": True})
    job = children(r)["batch-job"]
    assert job.inputs["launchStage"] == "BETA"
    assert int(job.inputs["template"]["template"]["timeout"].rstrip("s")) > 3600


# -- AWS Batch ------------------------------------------------------------------------------------


def test_aws_batch_queue_orders_spot_then_on_demand_and_the_definition_retries_exit_75():
    r = one_job(BATCH)
    kids = children(r)
    spot, od = kids["batch-spot"], kids["batch-on-demand"]
    assert spot.inputs["computeResources"]["type"] == "SPOT" and od.inputs["computeResources"]["type"] == "EC2"
    assert spot.inputs["computeResources"]["allocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert spot.inputs["computeResources"]["ec2Configurations"] == [{"imageType": "ECS_AL2023_NVIDIA"}]
    assert spot.inputs["computeResources"]["minVcpus"] == 0
    orders = kids["batch-queue"].inputs["computeEnvironmentOrders"]
    assert [o["order"] for o in orders] == [1, 2]
    jd = kids["batch-definition"]
    retry = jd.inputs["retryStrategy"]
    assert retry["attempts"] == 3
    assert {"action": "RETRY", "onExitCode": "75"} in retry["evaluateOnExits"]
    assert {"action": "EXIT", "onExitCode": "2"} in retry["evaluateOnExits"]
    assert {"action": "RETRY", "onStatusReason": "Host EC2*"} in retry["evaluateOnExits"]
    plan = r.one("gpuplane:index:BatchJob").inputs["gpuplane"]
    assert jd.inputs["timeout"]["attemptDurationSeconds"] == plan["taskTimeoutSeconds"] <= 3600
    props = json.loads(jd.inputs["containerProperties"])
    assert props["resourceRequirements"][0] == {"type": "GPU", "value": "1"}
    assert botocore_problems("batch", "RegisterJobDefinition", {"jobDefinitionName": "x", "type": "container", "containerProperties": props}) == ""
    assert check_aws_enums(r.resources) == []


def test_aws_batch_bucket_trigger_submits_an_array_job_with_the_object_and_etag():
    r = one_job({**BATCH, "trigger": {"kind": "bucket-objects", "prefix_uri": "s3://data/incoming", "suffix": ".parquet"}})
    kids = children(r)
    plan = r.one("gpuplane:index:BatchJob").inputs["gpuplane"]
    assert plan["tasks"] >= 2
    assert kids["batch-bucket-events"].inputs["eventbridge"] is True
    pattern = json.loads(kids["batch-rule"].inputs["eventPattern"])
    assert pattern["detail-type"] == ["Object Created"] and pattern["detail"]["object"]["key"] == [{"wildcard": "incoming/*.parquet"}]
    target = kids["batch-target"]
    assert target.inputs["batchTarget"]["arraySize"] == plan["tasks"]
    tpl = json.loads(target.inputs["inputTransformer"]["inputTemplate"].replace("<bucket>", "b").replace("<key>", "k").replace("<etag>", "e"))
    env = {e["Name"]: e["Value"] for e in tpl["ContainerOverrides"]["Environment"]}
    assert env["GPUPLANE_OBJECT_URI"] == "s3://b/k" and env["GPUPLANE_OBJECT_GENERATION"] == "e"
    assert target.inputs["inputTransformer"]["inputPaths"]["etag"] == "$.detail.object.etag"


def test_aws_batch_on_demand_only_without_spot():
    kids = children(one_job({**BATCH, "spot": False}))
    assert "batch-spot" not in kids and len(kids["batch-queue"].inputs["computeEnvironmentOrders"]) == 1


def test_eventbridge_schedule_translates_cron_days():
    assert eventbridge_schedule("0 3 * * *") == "cron(0 3 * * ? *)"
    assert eventbridge_schedule("30 2 * * 1-5") == "cron(30 2 ? * 2-6 *)"
    assert eventbridge_schedule("0 0 1 * *") == "cron(0 0 1 * ? *)"
    with pytest.raises(ValueError, match="only one of them"):
        eventbridge_schedule("0 0 1 * 1")


# -- SageMaker -------------------------------------------------------------------------------------


def _step(r: ProgramRun) -> dict[str, Any]:
    definition = json.loads(children(r)["batch-pipeline"].inputs["pipelineDefinition"])
    assert definition["Version"] == "2020-12-01" and len(definition["Steps"]) == 1
    return definition["Steps"][0]


def _strings(args: dict[str, Any]) -> dict[str, Any]:
    """Pipeline property references ({"Get": ...}) as placeholder strings, for botocore's validator."""
    out = copy.deepcopy(args)
    for k, v in list(out.get("Environment", {}).items()):
        if isinstance(v, dict):
            out["Environment"][k] = "ref"
    return out


def test_sagemaker_processing_step_is_a_valid_create_processing_job_request():
    r = one_job(SAGEMAKER)
    step = _step(r)
    assert step["Type"] == "Processing"
    plan = r.one("gpuplane:index:BatchJob").inputs["gpuplane"]
    cluster = step["Arguments"]["ProcessingResources"]["ClusterConfig"]
    assert cluster["InstanceCount"] == plan["tasks"] and cluster["InstanceType"].startswith("ml.")
    assert step["Arguments"]["StoppingCondition"]["MaxRuntimeInSeconds"] == plan["taskTimeoutSeconds"] <= 777_600
    assert step["Arguments"]["Environment"]["GPUPLANE_MODEL_VERSION"] == {"Get": "Parameters.ModelVersion"}
    assert botocore_problems("sagemaker", "CreateProcessingJob", {"ProcessingJobName": "x", **_strings(step["Arguments"])}) == ""


def test_sagemaker_transform_step_is_a_valid_create_transform_job_request():
    r = one_job({**SAGEMAKER, "sagemaker_mode": "transform"})
    step = _step(r)
    assert step["Type"] == "Transform"
    args = step["Arguments"]
    assert args["MaxPayloadInMB"] <= 100 and args["ModelClientConfig"]["InvocationsTimeoutInSeconds"] <= 3600
    args = {**_strings(args), "ModelName": "m"}
    assert botocore_problems("sagemaker", "CreateTransformJob", {"TransformJobName": "x", **args}) == ""
    assert children(r)["batch-model"].type == "aws:sagemaker/model:Model"


def test_sagemaker_bucket_trigger_starts_the_pipeline_from_eventbridge():
    r = one_job({**SAGEMAKER, "trigger": {"kind": "bucket-objects"}, "model_version": "3"})
    target = children(r)["batch-target"]
    assert target.inputs["sagemakerPipelineTarget"]["pipelineParameterLists"] == [{"name": "ModelVersion", "value": "3"}]
    pattern = json.loads(children(r)["batch-rule"].inputs["eventPattern"])
    assert pattern["detail"]["bucket"]["name"] == ["data"] and pattern["detail"]["object"]["key"] == [{"prefix": "in/"}]


# -- Kueue ----------------------------------------------------------------------------------------


def test_kueue_job_is_indexed_suspended_and_queued():
    r = one_job({"platform": "kueue", **KUEUE, "max_attempts": 4})
    validate_all_core_objects(r)
    job = children(r)["batch-job"]
    assert job.type == "kubernetes:batch/v1:Job"
    meta, spec = job.inputs["metadata"], job.inputs["spec"]
    assert meta["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert meta["annotations"]["pulumi.com/skipAwait"] == "true"
    plan = r.one("gpuplane:index:BatchJob").inputs["gpuplane"]
    assert spec["completionMode"] == "Indexed" and spec["suspend"] is True and spec["completions"] == plan["tasks"]
    assert spec["backoffLimitPerIndex"] == 3
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onExitCodes": {"containerName": "batch", "operator": "In", "values": [75]}}
    assert {"action": "FailIndex", "onExitCodes": {"containerName": "batch", "operator": "In", "values": [2]}} in rules
    pod = spec["template"]["spec"]
    assert pod["activeDeadlineSeconds"] == plan["taskTimeoutSeconds"] and pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_kueue_job_on_an_existing_cluster_validates_as_a_real_job_object():
    from components.batch_job.kueue import job_manifest
    from components.batch_job.planner import plan_batch_job

    def program() -> None:
        cluster = KubernetesCluster("sandbox", {"cloud": "existing"})
        plan = plan_batch_job("batch", {"platform": "kueue", "cluster": cluster, **KUEUE, "gpus": 0, "cpu": 1, "memory_gib": 1,  # type: ignore[typeddict-item]
                                        "dataset_uri": "pvc://data/in", "output_uri": "pvc://data/out", "model_uri": "pvc://models/recs"})
        body = job_manifest(plan, "img")
        validate_k8s(body)
        pod = body["spec"]["template"]["spec"]
        assert pod["volumes"] == [{"name": "pvc-0", "persistentVolumeClaim": {"claimName": "data"}},
                                  {"name": "pvc-1", "persistentVolumeClaim": {"claimName": "models"}}]
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}
        assert env["GPUPLANE_DATASET_URI"] == "/mnt/data/in" and "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
        assert env["GPUPLANE_MODEL_URI"] == "/mnt/models/recs"
        # An Indexed Job gives a pod only its index: the count and the run id (the Job's name) are in the env.
        assert env["GPUPLANE_TASK_COUNT"] == str(body["spec"]["completions"])
        assert env["GPUPLANE_RUN_ID"] == {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}

    run(program)


def test_kueue_schedule_is_a_cronjob_whose_jobs_carry_the_queue_label():
    r = one_job({"platform": "kueue", **KUEUE, "trigger": {"kind": "schedule", "schedule": "0 3 * * *"}})
    validate_all_core_objects(r)
    cron = children(r)["batch-cronjob"]
    assert cron.inputs["spec"]["jobTemplate"]["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert cron.inputs["spec"]["jobTemplate"]["spec"]["suspend"] is True


def test_kueue_bucket_trigger_is_an_argo_sensor_creating_one_job_per_object():
    r = one_job({"platform": "kueue", **KUEUE, "trigger": {"kind": "bucket-objects", "queue": "https://sqs.eu-west-1.amazonaws.com/123456789012/data-events", "suffix": ".jsonl"}})
    validate_all_core_objects(r)
    kids = children(r)
    for key in ("batch-eventbus", "batch-eventsource", "batch-sensor"):
        body = {"apiVersion": "argoproj.io/v1alpha1", "kind": kids[key].type.rsplit(":", 1)[-1], "metadata": kids[key].inputs["metadata"], "spec": kids[key].inputs["spec"]}
        assert custom_resource_problems(body) == [], key
    assert kids["batch-eventsource"].inputs["spec"]["sqs"]["new-object"] == {"region": "eu-west-1", "queue": "data-events", "queueAccountId": "123456789012",
                                                                          "waitTimeSeconds": 20, "jsonBody": True}
    sensor = kids["batch-sensor"].inputs["spec"]
    trig = sensor["triggers"][0]["template"]["k8s"]
    created = trig["source"]["resource"]
    validate_k8s({**created, "metadata": {**created["metadata"], "name": "x"}})
    env = created["spec"]["template"]["spec"]["containers"][0]["env"]
    uri_at = next(i for i, e in enumerate(env) if e["name"] == "GPUPLANE_OBJECT_URI")
    assert env[uri_at]["value"] == "s3://data/"
    params = {p["dest"]: p for p in trig["parameters"]}
    assert params[f"spec.template.spec.containers.0.env.{uri_at}.value"]["src"]["dataKey"] == "body.Records.0.s3.object.key"
    assert params[f"spec.template.spec.containers.0.env.{uri_at}.value"]["operation"] == "append"
    assert sensor["dependencies"][0]["filters"]["data"][0]["value"] == ["^in/.*\\.jsonl$"]
    assert kids["batch-sensor-role"].inputs["rules"] == [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]
    assert kids["batch-argo-events"].inputs["version"] == "2.4.22"


def test_s3_pattern_without_suffix_uses_a_prefix_match():
    from components.batch_job.spec import TriggerPlan

    assert json.loads(s3_event_pattern(TriggerPlan("bucket-objects", "s3", "b", "p", "")))["detail"]["object"]["key"] == [{"prefix": "p/"}]


def test_a_rejected_job_creates_nothing():
    def program() -> None:
        with pytest.raises(Exception, match="items_per_second"):
            BatchJob("batch", {**CLOUD_RUN, "items_per_second": 0})  # type: ignore[typeddict-item]

    r = run(program)
    assert r.resources == [] or all(x.type.startswith("pulumi:") for x in r.resources)


def test_outputs_are_registered():
    r = one_job(CLOUD_RUN)
    comp = r.one("gpuplane:index:BatchJob")
    assert comp.inputs["gpuplane"]["usdPerRun"] > 0
    assert {e["platform"] for e in comp.inputs["gpuplane"]["runEstimates"]} == {"cloud-run", "aws-batch", "sagemaker", "kueue"}


def _training_cluster() -> Any:
    from components.training import SpotTrainingCluster

    cluster = KubernetesCluster("sandbox", {"cloud": "existing"})
    return SpotTrainingCluster("train", {"cluster": cluster, "pools": [{"name": "l4", "accelerator": "L4", "max_nodes": 2, "node_vcpus": 4,  # type: ignore[typeddict-item]
                                                                          "node_memory_gib": 16}],
                                         "teams": [{"name": "batch"}], "checkpoint_bucket": {"url": "s3://ckpt"}})


def test_kueue_through_a_training_team_takes_its_queue_and_sizes_tasks_to_its_nodes():
    def program() -> None:
        tc = _training_cluster()
        BatchJob("batch", {"platform": "kueue", "training_cluster": tc, "team": "batch", "image": "img", "items": 1000, "items_per_second": 10.0, **S3})

    r = run(program)
    job = children(r)["batch-job"]
    team_queue = next(x for x in r.resources if x.type == "kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue")
    assert job.inputs["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == team_queue.inputs["metadata"]["name"]
    assert job.inputs["metadata"]["namespace"] == team_queue.inputs["metadata"]["namespace"] == "batch"
    assert team_queue.urn in job.dependencies
    limits = job.inputs["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "3", "memory": "12Gi", "nvidia.com/gpu": "1"}  # 85% / 80% of a 4 vCPU / 16 GiB node


def test_kueue_with_an_unknown_team_is_rejected():
    from components.errors import ComponentInputError

    def program() -> None:
        tc = _training_cluster()
        with pytest.raises(ComponentInputError, match="team = 'nope': is not a team of the training cluster"):
            BatchJob("batch", {"platform": "kueue", "training_cluster": tc, "team": "nope", "image": "img", "items": 10, "items_per_second": 1.0, **S3})

    run(program)
