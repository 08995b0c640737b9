"""BatchJob (components/batch_job) and the batch workload (workloads/batch) agree on one contract.

Both sides name the variables once (``spec.TASK_ENV``, ``contract.CONTRACT_ENV``); here the two
lists must be equal, and every container the reference stacks plan for a BatchJob (AWS Batch in
aws-dev, Cloud Run in gcp-dev, the Kueue Indexed Job in batch, and a SageMaker Processing step) is
run through the workload's own argument handling with the env that container would get: no
problem may come out, and each input must be the one the stack configured.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.batch_job import spec
from components.batch_job.kueue import JOB_NAME_LABEL
from gpuplane.engine.plan import plan_stack, read_stack_config
from workloads.batch import contract, taskenv
from workloads.batch.__main__ import _problems, apply_env, parse_args


@pytest.fixture(autouse=True)
def locations_by_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    """A location is checked by its scheme in fsspec's registry, without loading its filesystem: gcsfs's
    google.rpc protos clash with those already loaded by Pulumi in this process ("duplicate symbol
    'google.rpc.Status'"); a task process has no Pulumi (tests/workloads/test_batch_cli.py loads them)."""
    from fsspec.implementations.local import LocalFileSystem
    from fsspec.registry import known_implementations

    from workloads.batch.store import StoreError

    def by_scheme(uri: str, field: str) -> tuple[Any, str]:
        scheme, _, rest = uri.partition("://") if "://" in uri else ("file", "", uri)
        if scheme not in known_implementations:
            raise StoreError(f"{field}={uri!r}: the scheme {scheme!r} is unknown")
        return (LocalFileSystem() if scheme == "file" else object()), rest

    monkeypatch.setattr("workloads.batch.__main__.open_location", by_scheme)


WORKLOAD_PLATFORM = {"cloud-run": "cloud-run", "aws-batch": "aws-batch", "kueue": "kubernetes"}
"""BatchJob's platform -> the workload's ``--platform`` name for the same task-index variables."""


def test_both_sides_name_the_same_variables():
    assert sorted(spec.TASK_ENV) == sorted(contract.CONTRACT_ENV)
    assert len(set(spec.TASK_ENV)) == len(spec.TASK_ENV)
    assert set(contract.FLAG_ENV.values()) <= set(contract.CONTRACT_ENV)
    assert {taskenv.TASK_COUNT_VAR, taskenv.RUN_ID_VAR} <= set(contract.CONTRACT_ENV)
    assert set(contract.CONTRACT_ENV) <= spec.RESERVED_ENV, "a job's env may not override the contract"


def test_the_task_index_comes_from_where_the_workload_reads_it():
    for platform, name in WORKLOAD_PLATFORM.items():
        assert spec.TASK_INDEX_ENV[platform] == taskenv.PLATFORMS[name].index_var, platform
    assert spec.TASK_INDEX_ENV["sagemaker"] == f"{taskenv.SAGEMAKER_RESOURCE_CONFIG}:current_host"
    assert set(spec.TASK_INDEX_ENV) == set(spec.PLATFORMS)


@dataclass(frozen=True)
class Container:
    where: str
    platform: str
    argv: list[str]
    env: dict[str, str]
    """As the task sees it, with the platform's own variables for task 0."""
    tasks: int
    run_id: str
    config: dict[str, Any]
    """The stack's batchJobs entry (camelCase keys)."""


def _platform_env(platform: str, tasks: int, run_id: str) -> dict[str, str]:
    return taskenv.task_env(WORKLOAD_PLATFORM[platform], 0, tasks, run_id)


def _downward(value_from: dict[str, Any], labels: dict[str, str]) -> str:
    path = value_from["fieldRef"]["fieldPath"]
    m = re.fullmatch(r"metadata\.labels\['([^']+)'\]", path)
    assert m, f"unsupported downward API field {path}"
    return labels[m.group(1)]


@functools.cache
def stack_containers() -> tuple[Container, ...]:
    out = []
    for stack in ("aws-dev", "gcp-dev", "batch"):
        [cfg] = read_stack_config(stack)["gpuplane:batchJobs"]
        resources = plan_stack(stack).resources
        component = next(r for r in resources if r.type == spec.TYPE_TOKEN)
        tasks = int(component.inputs["gpuplane"]["tasks"])
        for r in resources:
            if r.type == "aws:batch/jobDefinition:JobDefinition":
                props = json.loads(r.inputs["containerProperties"])
                env = {e["name"]: e["value"] for e in props["environment"]}
                run_id = "4f1c-9a"
                out.append(Container(f"{stack} {r.name}", "aws-batch", props["command"],
                                     {**env, **_platform_env("aws-batch", tasks, run_id)}, tasks, run_id, cfg))
            elif r.type == "gcp:cloudrunv2/job:Job":
                c = r.inputs["template"]["template"]["containers"][0]
                env = {e["name"]: e["value"] for e in c["envs"]}
                assert r.inputs["template"]["taskCount"] == tasks
                out.append(Container(f"{stack} {r.name}", "cloud-run", [*c["commands"], *(c.get("args") or [])],
                                     {**env, **_platform_env("cloud-run", tasks, "recs-scores-x7k2q")}, tasks,
                                     "recs-scores-x7k2q", cfg))
            elif r.type == "kubernetes:batch/v1:Job":
                job_name = r.inputs["metadata"]["name"]
                labels = {JOB_NAME_LABEL: job_name}  # the Job controller labels every pod with its Job's name
                c = r.inputs["spec"]["template"]["spec"]["containers"][0]
                env = {e["name"]: e["value"] if "value" in e else _downward(e["valueFrom"], labels) for e in c["env"]}
                assert r.inputs["spec"]["completions"] == tasks
                # No GPUPLANE_RUN_ID from the platform here: the Job's env must carry it.
                out.append(Container(f"{stack} {r.name}", "kueue", [*c["command"], *(c.get("args") or [])],
                                     {**env, "JOB_COMPLETION_INDEX": "0"}, tasks, job_name, cfg))
    assert {c.platform for c in out} == {"aws-batch", "cloud-run", "kueue"}, [c.where for c in out]
    return tuple(out)


def workload_args(argv: list[str], env: dict[str, str]) -> tuple[Any, list[str]]:
    """The workload's arguments for a container argv and env, and its problems (nothing is run)."""
    assert argv[:3] == list(spec.REFERENCE_COMMAND), argv
    args = parse_args(argv[3:])
    problems = apply_env(args, env)
    return args, problems + _problems(args)


@pytest.mark.parametrize("i", range(3))
def test_each_planned_container_is_a_complete_task_for_the_workload(i: int):
    c = stack_containers()[i]
    args, problems = workload_args(c.argv, c.env)
    assert not problems, f"{c.where}: {problems}"
    cfg = c.config
    output = cfg["outputUri"].rstrip("/")
    assert args.command == "task"
    assert (args.data, args.output, args.model_dir) == (cfg["datasetUri"], output, cfg["modelUri"]), c.where
    assert args.manifest == cfg.get("manifestUri", f"{output}/_manifest"), c.where
    assert args.model_version == str(cfg.get("modelVersion", "1")), c.where
    assert args.reprocess is bool(cfg.get("reprocessOnNewModelVersion", False)), c.where
    assert args.checkpoint_seconds > 0, c.where
    who = taskenv.resolve(c.env)
    assert (who.index, who.count, who.run_id) == (0, c.tasks, c.run_id), c.where


def test_a_kueue_job_without_the_count_and_run_id_would_not_start():
    """The check can fail: without the Job's GPUPLANE_TASK_COUNT / GPUPLANE_RUN_ID, an Indexed Job's pod
    has only its index, and without GPUPLANE_MODEL_URI the workload has no model."""
    c = next(c for c in stack_containers() if c.platform == "kueue")
    env = {k: v for k, v in c.env.items() if k not in (contract.TASK_COUNT, contract.RUN_ID, contract.MODEL_URI)}
    _, problems = workload_args(c.argv, env)
    assert problems == ["--model-dir is not given and $GPUPLANE_MODEL_URI is not set; pass --model-dir (a BatchJob "
                        "sets the variable)"]
    with pytest.raises(taskenv.TaskEnvError, match=r"GPUPLANE_TASK_COUNT is not set.*GPUPLANE_RUN_ID is not set"):
        taskenv.resolve(env)


def test_an_s3_event_replaces_the_dataset_with_its_object():
    """aws-dev's EventBridge target overrides the env with the new object (triggers.batch_input_template)."""
    c = next(c for c in stack_containers() if c.platform == "aws-batch")
    target = next(r for r in plan_stack("aws-dev").resources if r.type == "aws:cloudwatch/eventTarget:EventTarget"
                  and r.name.startswith("recs-scores"))
    template = target.inputs["inputTransformer"]["inputTemplate"]
    for key, value in {"bucket": "gpuplane-aws-dev-scoring", "key": "requests/2026-12-06/_SUCCESS", "etag": "9b2cf5"}.items():
        template = template.replace(f"<{key}>", value)
    overrides = {e["Name"]: e["Value"] for e in json.loads(template)["ContainerOverrides"]["Environment"]}
    args, problems = workload_args(c.argv, {**c.env, **overrides})
    assert not problems
    assert args.data == "s3://gpuplane-aws-dev-scoring/requests/2026-12-06/_SUCCESS"
    assert overrides[contract.OBJECT_GENERATION] == "9b2cf5"


def test_a_sagemaker_processing_instance_finds_its_task_and_run(tmp_path: Path):
    from components.batch_job.planner import plan_batch_job
    from components.batch_job.sagemaker import processing_arguments

    plan = plan_batch_job("recs", {"platform": "sagemaker", "image": "img", "region": "us-east-1", "items": 400_000,
                                   "items_per_second": 50.0, "dataset_uri": "s3://d/in", "output_uri": "s3://d/out",
                                   "model_uri": "s3://d/model", "model_version": "4"})
    request = processing_arguments(plan, "img", "arn:aws:iam::1:role/r")
    pipeline = {"Parameters.ModelVersion": "4", "Execution.PipelineExecutionId": "exec-8x2"}
    env = {k: pipeline[v["Get"]] if isinstance(v, dict) else v for k, v in request["Environment"].items()}
    hosts = [f"algo-{n}" for n in range(1, plan.sizing.tasks + 1)]
    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": hosts[-1], "hosts": hosts}))
    args, problems = workload_args(request["AppSpecification"]["ContainerEntrypoint"], env)
    assert not problems
    assert (args.data, args.output, args.model_dir, args.model_version) == ("s3://d/in", "s3://d/out", "s3://d/model", "4")
    who = taskenv.resolve(env, sagemaker_config=config)
    assert (who.index, who.count, who.run_id, who.platform) == (len(hosts) - 1, len(hosts), "exec-8x2", "sagemaker")
