"""Which task of how many this process is, and which run it belongs to, from the platform's environment.

Standard library only (read before torch loads). Each platform sets its own variables:

| platform (``--platform``) | task index | task count | run id (same for every task and retry of one run) |
| --- | --- | --- | --- |
| ``cloud-run`` (Cloud Run Jobs) | ``CLOUD_RUN_TASK_INDEX`` | ``CLOUD_RUN_TASK_COUNT`` | ``CLOUD_RUN_EXECUTION`` |
| ``aws-batch`` (array job child) | ``AWS_BATCH_JOB_ARRAY_INDEX`` | ``AWS_BATCH_JOB_ARRAY_SIZE`` | ``AWS_BATCH_JOB_ID`` without its ``:index`` |
| ``kubernetes`` (Indexed Job) | ``JOB_COMPLETION_INDEX`` | ``GPUPLANE_TASK_COUNT`` | ``GPUPLANE_RUN_ID`` |

Sources: Cloud Run container contract (jobs environment variables); AWS Batch user guide, "AWS
Batch job environment variables"; Kubernetes, "Indexed Job for parallel processing". A Kubernetes
Indexed Job sets only the index, so the Job's manifest (BatchJob's kueue backend) sets
``GPUPLANE_TASK_COUNT`` to its ``completions`` and ``GPUPLANE_RUN_ID`` from the pod label
``batch.kubernetes.io/job-name`` (downward API). ``GPUPLANE_RUN_ID`` and ``GPUPLANE_TASK_COUNT``
(``contract.py``; BatchJob sets the count on every platform) override the platform's value on
every platform; ``--task-index`` / ``--task-count`` / ``--run-id`` override everything.

SageMaker Processing sets no index variable: each instance is one task, and
``/opt/ml/config/resourceconfig.json`` names it (``current_host``, ``algo-1`` .. ``algo-N``) among
``hosts``; the run id is ``GPUPLANE_RUN_ID`` (BatchJob sets it to the pipeline execution id, shared
by the step's retries). It is used when no platform's index variable is set and the file exists.

``--platform auto`` picks the one platform whose index variable is set; none set, no SageMaker
file and no ``--task-index`` is a ``TaskEnvError`` naming the variables and the flag.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workloads.batch.contract import RUN_ID as RUN_ID_VAR
from workloads.batch.contract import TASK_COUNT as TASK_COUNT_VAR


class TaskEnvError(ValueError):
    """The task's index, count or run id cannot be determined; the message names the variable and the fix."""


@dataclass(frozen=True)
class Platform:
    name: str
    index_var: str
    count_var: str
    run_var: str


PLATFORMS: dict[str, Platform] = {
    "cloud-run": Platform("cloud-run", "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_COUNT", "CLOUD_RUN_EXECUTION"),
    "aws-batch": Platform("aws-batch", "AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE", "AWS_BATCH_JOB_ID"),
    "kubernetes": Platform("kubernetes", "JOB_COMPLETION_INDEX", TASK_COUNT_VAR, RUN_ID_VAR),
}
"""Every platform the workload knows, by ``--platform`` name."""


@dataclass(frozen=True)
class TaskIdentity:
    """This task's place in its run."""

    index: int
    """0-based task index, below ``count``."""
    count: int
    """Tasks in the run (array size, task count, completions)."""
    run_id: str
    """Identifies the run (execution): shared by its tasks and by their retries, new for a new run."""
    platform: str
    """The platform the values came from (``flags`` when all three came from flags)."""


def task_env(platform: str, index: int, count: int, run_id: str) -> dict[str, str]:
    """The environment ``platform`` would give task ``index`` of ``count`` in run ``run_id`` (local runner, tests)."""
    p = PLATFORMS[platform]
    env = {p.index_var: str(index), p.count_var: str(count)}
    if platform == "aws-batch":
        env[p.run_var] = f"{run_id}:{index}"  # an array child's job id is the parent's id and its index
    else:
        env[p.run_var] = run_id
    if platform == "kubernetes":
        env[TASK_COUNT_VAR] = str(count)
    return env


def _int(env: Mapping[str, str], var: str, what: str) -> int | None:
    raw = env.get(var)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise TaskEnvError(f"{var}={raw!r} is not an integer {what}; the platform sets it, or unset it and pass "
                           f"--task-index / --task-count") from None


def detect_platform(env: Mapping[str, str]) -> str | None:
    """The one platform whose task-index variable is set; None when none is; an error when several are."""
    found = [p.name for p in PLATFORMS.values() if env.get(p.index_var, "") != ""]
    if len(found) > 1:
        raise TaskEnvError(f"task index variables of several platforms are set ({', '.join(found)}); "
                           f"pass --platform to say which one this task runs on")
    return found[0] if found else None


SAGEMAKER_RESOURCE_CONFIG = "/opt/ml/config/resourceconfig.json"


def sagemaker_place(path: str | Path) -> tuple[int, int] | None:
    """(index, count) of this SageMaker Processing instance from its resource config; None without the file."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise TaskEnvError(f"{path}: not SageMaker's resource config ({err}); pass --task-index / --task-count") from None
    hosts = sorted(raw.get("hosts") or [], key=lambda h: (len(h), h))  # algo-1, algo-2, ..., algo-10
    current = raw.get("current_host")
    if current not in hosts:
        raise TaskEnvError(f"{path}: current_host {current!r} is not among hosts {hosts}; pass --task-index / --task-count")
    return hosts.index(current), len(hosts)


def resolve(env: Mapping[str, str], *, platform: str = "auto", index: int | None = None, count: int | None = None,
            run_id: str | None = None, sagemaker_config: str | Path = SAGEMAKER_RESOURCE_CONFIG) -> TaskIdentity:
    """This task's identity from flags (first), then the environment of ``platform`` (or the detected one),
    then SageMaker's resource config."""
    if platform != "auto" and platform not in PLATFORMS:
        raise TaskEnvError(f"--platform {platform!r} is unknown; use auto or one of {', '.join(PLATFORMS)}")
    name = detect_platform(env) if platform == "auto" else platform
    p = PLATFORMS.get(name) if name else None
    problems = []
    if index is None and p is None and (place := sagemaker_place(sagemaker_config)) is not None:
        index = place[0]
        count = count if count is not None else (_int(env, TASK_COUNT_VAR, "task count") or place[1])
        run_id = run_id or env.get(RUN_ID_VAR) or None
        if not run_id:
            raise TaskEnvError(f"no run id: SageMaker Processing, and {RUN_ID_VAR} is not set (BatchJob sets it to the "
                               "pipeline execution id); pass --run-id ID (the same for every task of one run and its retries)")
        if count < 1 or not 0 <= index < count:
            raise TaskEnvError(f"task index {index} of {count} tasks is out of range; the index must be in 0..count-1")
        return TaskIdentity(index=index, count=count, run_id=run_id, platform="sagemaker")
    if index is None:
        if p is None:
            names = ", ".join(q.index_var for q in PLATFORMS.values())
            raise TaskEnvError(f"no task index: none of {names} is set and there is no {SAGEMAKER_RESOURCE_CONFIG}; run "
                               f"this under Cloud Run Jobs, an AWS Batch array job, a Kubernetes Indexed Job or SageMaker "
                               f"Processing, or pass --task-index N --task-count M "
                               f"(python -m workloads.batch run --tasks M starts all M locally)")
        index = _int(env, p.index_var, "task index")
        if index is None:
            problems.append(f"--platform {p.name}: {p.index_var} is not set; pass --task-index N or run it there")
    if count is None:
        count = _int(env, TASK_COUNT_VAR, "task count")
        if count is None and p is not None:
            count = _int(env, p.count_var, "task count")
        if count is None:
            where = f"{p.count_var} or {TASK_COUNT_VAR}" if p is not None and p.count_var != TASK_COUNT_VAR else TASK_COUNT_VAR
            problems.append(f"no task count: {where} is not set; pass --task-count M (the array size / completions)")
    if run_id is None:
        run_id = env.get(RUN_ID_VAR) or (env.get(p.run_var) if p is not None else None) or None
        if run_id and p is not None and p.name == "aws-batch" and RUN_ID_VAR not in env:
            run_id = run_id.split(":", 1)[0]  # the parent array job's id: shared by every child
        if not run_id:
            where = f"{p.run_var} or {RUN_ID_VAR}" if p is not None and p.run_var != RUN_ID_VAR else RUN_ID_VAR
            problems.append(f"no run id: {where} is not set; pass --run-id ID (the same for every task of one run "
                            f"and its retries)")
    if problems:
        raise TaskEnvError("; ".join(problems))
    assert index is not None and count is not None and run_id is not None
    if count < 1 or not 0 <= index < count:
        raise TaskEnvError(f"task index {index} of {count} tasks is out of range; the index must be in 0..count-1 "
                           f"and the count at least 1")
    return TaskIdentity(index=index, count=count, run_id=run_id, platform=p.name if p is not None else "flags")
