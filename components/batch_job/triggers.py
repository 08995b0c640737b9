"""BatchJob's trigger routes, as pure functions the backends turn into resources.

Every route delivers at least once (EventBridge, Eventarc and Argo Events all retry), so a run may
start twice for one object. Exactly once comes from the workload's processed-objects manifest,
keyed by (object URI, object generation or etag, model version): the first run to commit an
object's output writes its key (create-if-absent); a second run finds it and does nothing.
How each route carries the key to the run:

- AWS Batch: EventBridge rule on the bucket's S3 ``Object Created`` events -> ``SubmitJob`` on the
  job queue, an input transformer sets ``GPUPLANE_OBJECT_URI`` = ``s3://<detail.bucket.name>/<detail.object.key>``
  and ``GPUPLANE_OBJECT_GENERATION`` = ``<detail.object.etag>`` through ``ContainerOverrides.Environment``
  (capitalised member names: https://docs.aws.amazon.com/batch/latest/userguide/batch-cwe-target.html).
- Cloud Run Jobs: Eventarc trigger on ``google.cloud.storage.object.v1.finalized`` for the bucket ->
  a Workflow that drops objects outside the prefix/suffix and calls the Cloud Run Admin API
  ``jobs.run`` with ``overrides.containerOverrides[0].env`` = ``gs://<data.bucket>/<data.name>`` and
  ``<data.generation>``.
- Kueue: Argo Events EventSource (``sqs`` for s3 notifications, ``pubSub`` for GCS notifications)
  -> a Sensor whose ``k8s`` trigger creates the Indexed Job with the two variables filled from the
  event (S3: ``Records.0.s3.object.key`` / ``eTag``; GCS: ``name`` / ``generation``).
- SageMaker: EventBridge rule -> SageMaker Pipeline execution. A rule target's pipeline parameters
  are static, so the run is not told which object arrived: it scans the prefix and the manifest
  skips every (object, generation, model version) already done, which gives the same result.

``GPUPLANE_MODEL_VERSION`` is fixed per deployment (the job's ``model_version``): a new version
deployed with ``reprocess_on_new_model_version`` makes every object a new key; without it the
workload matches keys on (object, generation) only.

Schedules: EventBridge ``cron(...)`` rule (AWS), Cloud Scheduler calling ``jobs.run`` (GCP), a
Kubernetes CronJob whose Jobs carry the queue label (Kueue). Creates nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from components.batch_job.spec import (
    ENV_MODEL_VERSION,
    ENV_OBJECT_GENERATION,
    ENV_OBJECT_URI,
    BatchJobPlan,
    TriggerPlan,
)

EVENT_NAME = "new-object"
_DOW_DIGIT = re.compile(r"\d")


def eventbridge_schedule(cron: str) -> str:
    """A five-field cron (minute hour day-of-month month day-of-week, Sunday = 0) as an EventBridge ``cron()``.

    EventBridge has six fields (a year), numbers days of the week 1-7 from Sunday, and wants ``?`` in
    one of day-of-month and day-of-week (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html).
    Raises ValueError when both day fields are restricted (EventBridge cannot express that)."""
    minute, hour, dom, month, dow = cron.split()
    if dom != "*" and dow != "*":
        raise ValueError(f"{cron!r} restricts both day-of-month and day-of-week; EventBridge accepts only one of them")
    if dow == "*":
        dow = "?"
    else:
        dom = "?"
        dow = _DOW_DIGIT.sub(lambda m: str(int(m.group()) % 7 + 1), dow)
    return f"cron({minute} {hour} {dom} {month} {dow} *)"


def s3_event_pattern(t: TriggerPlan) -> str:
    """EventBridge pattern for S3 ``Object Created`` events under the prefix (and suffix)."""
    prefix = f"{t.prefix}/" if t.prefix else ""
    if t.suffix:
        key: list[Any] = [{"wildcard": f"{prefix}*{t.suffix}"}]
    else:
        key = [{"prefix": prefix}]
    return json.dumps(
        {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [t.bucket]}, "object": {"key": key}}},
        sort_keys=True,
    )


S3_INPUT_PATHS = {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key", "etag": "$.detail.object.etag"}


def batch_input_template(plan: BatchJobPlan) -> str:
    """SubmitJob overrides from an S3 event: the object's URI and etag, and the model version (names capitalised)."""
    env = [
        {"Name": ENV_OBJECT_URI, "Value": "s3://<bucket>/<key>"},
        {"Name": ENV_OBJECT_GENERATION, "Value": "<etag>"},
        {"Name": ENV_MODEL_VERSION, "Value": plan.model_version},
    ]
    return json.dumps({"ContainerOverrides": {"Environment": env}})


def workflow_source(plan: BatchJobPlan, project: str, job_name: str) -> str:
    """Workflows YAML: filter the GCS CloudEvent by prefix/suffix, then run the Cloud Run job with the object as env."""
    t = plan.trigger
    prefix = f"{t.prefix}/" if t.prefix else ""
    pattern = "^" + re.escape(prefix) + ".*" + (re.escape(t.suffix) + "$" if t.suffix else "")
    region = plan.region
    lines = [
        "main:",
        "  params: [event]",
        "  steps:",
        "    - init:",
        "        assign:",
        "          - object: ${event.data}",
        "    - filter:",
        "        switch:",
        f"          - condition: ${{not text.match_regex(object.name, {json.dumps(pattern)})}}",
        '            return: "skipped: outside the watched prefix"',
        "    - run:",
        "        call: googleapis.run.v2.projects.locations.jobs.run",
        "        args:",
        f"          name: projects/{project}/locations/{region}/jobs/{job_name}",
        "          body:",
        "            overrides:",
        "              containerOverrides:",
        "                - env:",
        f"                    - name: {ENV_OBJECT_URI}",
        '                      value: ${"gs://" + object.bucket + "/" + object.name}',
        f"                    - name: {ENV_OBJECT_GENERATION}",
        "                      value: ${object.generation}",
        f"                    - name: {ENV_MODEL_VERSION}",
        f"                      value: {json.dumps(plan.model_version)}",
        "        result: execution",
        "    - done:",
        "        return: ${execution.name}",
    ]
    return "\n".join(lines) + "\n"


def cloud_run_run_uri(project: str, region: str, job_name: str) -> str:
    """The Cloud Run Admin API v2 ``jobs.run`` URL (Cloud Scheduler's HTTP target for a scheduled run)."""
    return f"https://run.googleapis.com/v2/projects/{project}/locations/{region}/jobs/{job_name}:run"


def argo_event_source(plan: BatchJobPlan, service_account: str) -> dict[str, Any]:
    """The Argo Events EventSource: the bucket's notification queue (sqs) or subscription (pubSub)."""
    t = plan.trigger
    if t.scheme == "s3":
        # A queue URL names its region (sqs.<region>.amazonaws.com); a bare name is in the cluster's region (checked at plan time).
        region = (t.queue or "").split(".")[1] if (t.queue or "").startswith("https://sqs.") else plan.region
        sqs: dict[str, Any] = {"region": region, "waitTimeSeconds": 20, "jsonBody": True}
        sqs["queue"] = (t.queue or "").rsplit("/", 1)[-1]
        if (t.queue or "").startswith("https://"):
            sqs["queueAccountId"] = (t.queue or "").split("/")[-2]
        source: dict[str, Any] = {"sqs": {EVENT_NAME: sqs}}
    else:
        source = {"pubSub": {EVENT_NAME: {"subscriptionID": t.queue, "jsonBody": True}}}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": plan.name, "namespace": plan.namespace, "labels": {"app.kubernetes.io/managed-by": "gpuplane"}},
        "spec": {"eventBusName": plan.name, "template": {"serviceAccountName": service_account}, **source},
    }


def argo_event_bus(plan: BatchJobPlan) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": plan.name, "namespace": plan.namespace, "labels": {"app.kubernetes.io/managed-by": "gpuplane"}},
        "spec": {"jetstream": {"version": "latest", "replicas": 3}},
    }


def object_data_keys(scheme: str | None) -> tuple[str, str]:
    """Where the object key and its generation/etag are in the event payload Argo Events delivers."""
    if scheme == "s3":
        return "body.Records.0.s3.object.key", "body.Records.0.s3.object.eTag"
    return "body.name", "body.generation"


def argo_sensor(plan: BatchJobPlan, job: dict[str, Any], service_account: str, env_index: dict[str, int]) -> dict[str, Any]:
    """A Sensor whose k8s trigger creates ``job`` per event, with the object's key and generation in its env.

    ``env_index``: position of GPUPLANE_OBJECT_URI / GPUPLANE_OBJECT_GENERATION in the container's env."""
    t = plan.trigger
    key_path, gen_path = object_data_keys(t.scheme)
    prefix = f"{t.scheme}://{t.bucket}/"
    env = "spec.template.spec.containers.0.env"
    parameters = [
        # "append": the event's key goes after the bucket URI the template's value already holds.
        {"src": {"dependencyName": EVENT_NAME, "dataKey": key_path}, "dest": f"{env}.{env_index[ENV_OBJECT_URI]}.value", "operation": "append"},
        {"src": {"dependencyName": EVENT_NAME, "dataKey": gen_path}, "dest": f"{env}.{env_index[ENV_OBJECT_GENERATION]}.value"},
    ]
    pattern = "^" + re.escape(f"{t.prefix}/" if t.prefix else "") + ".*" + (re.escape(t.suffix) + "$" if t.suffix else "")
    job_body = json.loads(json.dumps(job))
    job_body["metadata"].pop("name", None)
    job_body["metadata"]["generateName"] = f"{plan.name}-"
    job_body["spec"]["template"]["spec"]["containers"][0]["env"][env_index[ENV_OBJECT_URI]]["value"] = prefix
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": plan.name, "namespace": plan.namespace, "labels": {"app.kubernetes.io/managed-by": "gpuplane"}},
        "spec": {
            "eventBusName": plan.name,
            "template": {"serviceAccountName": service_account},
            "dependencies": [{"name": EVENT_NAME, "eventSourceName": plan.name, "eventName": EVENT_NAME,
                              "filters": {"data": [{"path": key_path, "type": "string", "value": [pattern]}]}}],
            "triggers": [{"template": {"name": "run", "k8s": {"operation": "create", "source": {"resource": job_body}, "parameters": parameters}},
                          "retryStrategy": {"steps": 3}}],
        },
    }


__all__ = [
    "EVENT_NAME",
    "S3_INPUT_PATHS",
    "argo_event_bus",
    "argo_event_source",
    "argo_sensor",
    "batch_input_template",
    "cloud_run_run_uri",
    "eventbridge_schedule",
    "object_data_keys",
    "s3_event_pattern",
    "workflow_source",
]
