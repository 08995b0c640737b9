"""The environment a ``BatchJob`` (components/batch_job) gives every task, as the workload reads it.

Standard library only (read before torch loads). The component runs ``python -m workloads.batch``
(the ``task`` command is the default) with no flags; every input comes from these variables, and a
flag given on the command line wins over its variable:

| variable | ``task`` flag | meaning |
| --- | --- | --- |
| ``GPUPLANE_DATASET_URI`` | ``--data`` | the dataset: a folder / bucket prefix of ``*.parquet`` objects |
| ``GPUPLANE_OBJECT_URI`` | ``--data`` | a triggered run's one new object; when set (not empty) it replaces the dataset |
| ``GPUPLANE_OBJECT_GENERATION`` | — | that object's generation / ETag in the event (a replaced object is logged; the manifest keys on the generation listed when the run is planned) |
| ``GPUPLANE_OUTPUT_URI`` | ``--output`` | where shards and run plans go |
| ``GPUPLANE_MANIFEST_URI`` | ``--manifest`` | the processed-objects manifest (default ``<output>/_manifest``) |
| ``GPUPLANE_MODEL_URI`` | ``--model-dir`` | the training export (a path, ``file://``, ``s3://`` or ``gs://``; a bucket one is copied to a local cache first) |
| ``GPUPLANE_MODEL_VERSION`` | ``--model-version`` | the model version in the manifest key |
| ``GPUPLANE_REPROCESS_ON_NEW_MODEL_VERSION`` | ``--reprocess`` | ``true`` / ``false`` |
| ``GPUPLANE_TASK_COUNT`` | ``--task-count`` | tasks in the run (overrides the platform's count) |
| ``GPUPLANE_RUN_ID`` | ``--run-id`` | the run's id (Kubernetes: the Job's name, from the downward API) |
| ``GPUPLANE_CHECKPOINT_SECONDS`` | ``--checkpoint-seconds`` | the longest a chunk should take between commits (the planner's Young/Daly interval); a slower chunk is logged with the fix |

The task index is the platform's own variable (``taskenv.py``). ``CONTRACT_ENV`` is the list
``components.batch_job.spec.TASK_ENV`` must equal (tests/workloads/test_batch_contract.py).
"""

from __future__ import annotations

from collections.abc import Mapping

DATASET_URI = "GPUPLANE_DATASET_URI"
OBJECT_URI = "GPUPLANE_OBJECT_URI"
OBJECT_GENERATION = "GPUPLANE_OBJECT_GENERATION"
OUTPUT_URI = "GPUPLANE_OUTPUT_URI"
MANIFEST_URI = "GPUPLANE_MANIFEST_URI"
MODEL_URI = "GPUPLANE_MODEL_URI"
MODEL_VERSION = "GPUPLANE_MODEL_VERSION"
REPROCESS = "GPUPLANE_REPROCESS_ON_NEW_MODEL_VERSION"
TASK_COUNT = "GPUPLANE_TASK_COUNT"
RUN_ID = "GPUPLANE_RUN_ID"
CHECKPOINT_SECONDS = "GPUPLANE_CHECKPOINT_SECONDS"

CONTRACT_ENV = (DATASET_URI, OBJECT_URI, OBJECT_GENERATION, OUTPUT_URI, MANIFEST_URI, MODEL_URI, MODEL_VERSION,
                REPROCESS, TASK_COUNT, RUN_ID, CHECKPOINT_SECONDS)
"""Every variable of the contract the workload reads (the platforms' task-index variables aside)."""

FLAG_ENV = {"data": DATASET_URI, "output": OUTPUT_URI, "manifest": MANIFEST_URI, "model_dir": MODEL_URI,
            "model_version": MODEL_VERSION, "reprocess": REPROCESS, "checkpoint_seconds": CHECKPOINT_SECONDS}
"""``task`` argument -> the variable it defaults from (task count and run id: ``taskenv.resolve``)."""

_TRUE, _FALSE = ("1", "true", "yes"), ("", "0", "false", "no")


def get(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value, None when unset or empty (a Sensor's or a trigger's unfilled slot is empty)."""
    value = env.get(name, "")
    return value or None


def flag_defaults(env: Mapping[str, str]) -> tuple[dict[str, object], list[str]]:
    """The ``task`` arguments the environment gives (only those set), and a problem per bad value."""
    out: dict[str, object] = {}
    problems: list[str] = []
    for flag, name in FLAG_ENV.items():
        value = get(env, name)
        if value is None:
            continue
        if flag == "reprocess":
            if value.lower() not in _TRUE + _FALSE:
                problems.append(f"{name}={value!r} is not a boolean; use true or false (BatchJob's "
                                "reprocess_on_new_model_version sets it)")
                continue
            out[flag] = value.lower() in _TRUE
        elif flag == "checkpoint_seconds":
            try:
                out[flag] = float(value)
            except ValueError:
                problems.append(f"{name}={value!r} is not a number of seconds; unset it or pass --checkpoint-seconds")
        else:
            out[flag] = value
    if (obj := get(env, OBJECT_URI)) is not None:
        out["data"] = obj  # a triggered run processes the object that arrived, not the whole dataset
    return out, problems


__all__ = ["CONTRACT_ENV", "FLAG_ENV", "flag_defaults", "get"]
