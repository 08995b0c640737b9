"""The batch task's identity from each platform's environment (workloads/batch/taskenv.py)."""

from __future__ import annotations

import json

import pytest

from workloads.batch.taskenv import PLATFORMS, TaskEnvError, detect_platform, resolve, task_env


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_each_platform_environment_gives_index_count_and_run_id(platform: str):
    env = task_env(platform, 2, 5, "exec-7")
    who = resolve(env)
    assert (who.index, who.count, who.run_id, who.platform) == (2, 5, "exec-7", platform)
    assert resolve(env, platform=platform) == who


def test_the_variables_are_the_platforms_own():
    assert task_env("cloud-run", 1, 3, "r") == {"CLOUD_RUN_TASK_INDEX": "1", "CLOUD_RUN_TASK_COUNT": "3",
                                                "CLOUD_RUN_EXECUTION": "r"}
    assert task_env("aws-batch", 1, 3, "r") == {"AWS_BATCH_JOB_ARRAY_INDEX": "1", "AWS_BATCH_JOB_ARRAY_SIZE": "3",
                                                "AWS_BATCH_JOB_ID": "r:1"}
    assert task_env("kubernetes", 1, 3, "r") == {"JOB_COMPLETION_INDEX": "1", "GPUPLANE_TASK_COUNT": "3",
                                                 "GPUPLANE_RUN_ID": "r"}


def test_aws_batch_children_share_the_parent_job_id_as_run_id():
    ids = {resolve({"AWS_BATCH_JOB_ARRAY_INDEX": str(i), "AWS_BATCH_JOB_ARRAY_SIZE": "4",
                    "AWS_BATCH_JOB_ID": f"4f1c-9a:{i}"}).run_id for i in range(4)}
    assert ids == {"4f1c-9a"}


def test_flags_override_the_environment():
    who = resolve(task_env("cloud-run", 1, 3, "r"), index=0, count=2, run_id="mine")
    assert (who.index, who.count, who.run_id) == (0, 2, "mine")
    assert resolve({}, index=0, count=1, run_id="x").platform == "flags"


def test_no_index_anywhere_names_every_variable_and_the_flag():
    with pytest.raises(TaskEnvError) as err:
        resolve({"HOME": "/root"})
    text = str(err.value)
    for needle in ("CLOUD_RUN_TASK_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX", "--task-index",
                   "--task-count", "run --tasks"):
        assert needle in text, text


def test_kubernetes_without_a_task_count_names_the_variable_and_the_flag():
    with pytest.raises(TaskEnvError, match=r"GPUPLANE_TASK_COUNT is not set; pass --task-count"):
        resolve({"JOB_COMPLETION_INDEX": "0", "GPUPLANE_RUN_ID": "job-1"})


def test_kubernetes_without_a_run_id_names_the_variable_and_the_flag():
    with pytest.raises(TaskEnvError, match=r"GPUPLANE_RUN_ID is not set; pass --run-id"):
        resolve({"JOB_COMPLETION_INDEX": "0", "GPUPLANE_TASK_COUNT": "2"})


def test_a_chosen_platform_without_its_index_variable_is_named():
    with pytest.raises(TaskEnvError, match=r"--platform aws-batch: AWS_BATCH_JOB_ARRAY_INDEX is not set"):
        resolve(task_env("cloud-run", 0, 2, "r"), platform="aws-batch")


def test_two_platforms_at_once_ask_for_platform():
    env = {**task_env("cloud-run", 0, 2, "r"), **task_env("kubernetes", 1, 2, "r")}
    with pytest.raises(TaskEnvError, match=r"several platforms .*cloud-run, kubernetes.*pass --platform"):
        detect_platform(env)
    assert resolve(env, platform="kubernetes").index == 1


@pytest.mark.parametrize(("env", "needle"), [
    ({"CLOUD_RUN_TASK_INDEX": "x", "CLOUD_RUN_TASK_COUNT": "2", "CLOUD_RUN_EXECUTION": "e"},
     "CLOUD_RUN_TASK_INDEX='x' is not an integer"),
    ({"CLOUD_RUN_TASK_INDEX": "2", "CLOUD_RUN_TASK_COUNT": "2", "CLOUD_RUN_EXECUTION": "e"},
     "task index 2 of 2 tasks is out of range"),
])
def test_bad_values_are_named(env: dict[str, str], needle: str):
    with pytest.raises(TaskEnvError, match=needle):
        resolve(env)


def test_unknown_platform_lists_the_known_ones():
    with pytest.raises(TaskEnvError, match=r"--platform 'lambda' is unknown; use auto or one of cloud-run"):
        resolve({}, platform="lambda")


def test_a_sagemaker_processing_instance_is_placed_by_its_resource_config(tmp_path):
    config = tmp_path / "resourceconfig.json"
    hosts = [f"algo-{n}" for n in range(1, 12)]  # algo-10 sorts after algo-9, not after algo-1
    config.write_text(json.dumps({"current_host": "algo-10", "hosts": sorted(hosts)}))
    who = resolve({"GPUPLANE_RUN_ID": "exec-1"}, sagemaker_config=config)
    assert (who.index, who.count, who.run_id, who.platform) == (9, 11, "exec-1", "sagemaker")
    assert resolve({"GPUPLANE_RUN_ID": "exec-1", "GPUPLANE_TASK_COUNT": "11"}, sagemaker_config=config).count == 11
    with pytest.raises(TaskEnvError, match=r"SageMaker Processing, and GPUPLANE_RUN_ID is not set"):
        resolve({}, sagemaker_config=config)
    # A platform's index variable wins over the file (a local run on a SageMaker notebook, say).
    assert resolve(task_env("cloud-run", 1, 3, "r"), sagemaker_config=config).platform == "cloud-run"


def test_without_the_sagemaker_file_the_no_index_message_names_it(tmp_path):
    with pytest.raises(TaskEnvError, match=r"no task index: .* and there is no /opt/ml/config/resourceconfig.json"):
        resolve({}, sagemaker_config=tmp_path / "absent.json")
