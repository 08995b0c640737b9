"""ModelPipeline on any Kubernetes cluster: Argo Events + Argo Workflows objects.

Creates, as children of the pipeline: the Argo Workflows and Argo Events Helm releases (pinned
argo-helm charts, once per cluster), and in the team's namespace an EventBus (JetStream), the
EventSource (``sqs`` / ``pubSub`` / ``calendar``), a Sensor whose ``k8s`` trigger creates a
Workflow from the WorkflowTemplate, the WorkflowTemplate itself, and three service accounts with
the least RBAC each needs: the event source (reads the cloud queue through its identity), the
sensor (creates Workflows), the workflow (its pods: Argo's executor results, JobSets, and the
endpoint's Knative Service). The cloud side (queues, notifications, identities) is
components/model_pipeline/aws.py and components/model_pipeline/gcp.py; an existing cluster has
none (schedule triggers only).

Every manifest is built by a pure function here and validated in the tests against the upstream
schemas in gpuplane/schemas/argo-events-2.4.22 and argo-workflows-1.0.18.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.kubernetes.charts import chart_args
from components.kubernetes.storage import SYNC_IMAGES, sync_command
from components.model_pipeline.spec import (
    ARGO_API,
    ARGO_EVENTS_CHART,
    ARGO_EVENTS_VERSION,
    ARGO_HELM_REPO,
    ARGO_WORKFLOWS_CHART,
    ARGO_WORKFLOWS_VERSION,
    EVENT_NAME,
    RUN_PLACEHOLDER,
    CloudPart,
    ModelPipelinePlan,
    PipelineCloud,
)
from components.training import JOBSET_API
from components.training_job import jobset_manifest

if TYPE_CHECKING:
    from components.inference import InferenceEndpoint
    from components.model_pipeline.spec import ModelPipelineArgs

RUN = "{{workflow.name}}"
EXPORT_DIR = "/outputs"
MODEL_DIR = "/models"
"""Where the Knative server's fetch-model init container writes (components/inference/knative.py)."""
DECISION_FILE = "/tmp/decision.json"
FETCH = "python -c 'import sys, fsspec; fs, root = fsspec.core.url_to_fs(sys.argv[1]); fs.get(root, sys.argv[2], recursive=True)'"
"""Copy a bucket prefix into a local directory with the pod's workload identity (the training image has fsspec)."""
# Rank 0 exports to /outputs (an emptyDir); upload it next to the run's checkpoints so the
# evaluation step can read it. Exit codes pass through unchanged (75 = preempted, requeue).
TRAIN_WRAPPER = (
    'python -m workloads.training.launch "$@"; rc=$?; [ "$rc" -eq 0 ] || exit "$rc"; '
    "if [ -f /outputs/model.safetensors ]; then "
    "python -c 'import sys, fsspec; fs, root = fsspec.core.url_to_fs(sys.argv[2]); fs.put(sys.argv[1], root, recursive=True)' "
    '/outputs/ "$MODEL_EXPORT_URL" || exit 1; fi'
)


# ---------------------------------------------------------------------------------------------
# Pure manifests


def _meta(plan: ModelPipelinePlan, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": plan.namespace, "labels": {"app.kubernetes.io/managed-by": "gpuplane", "gpuplane.dev/pipeline": plan.name}}


def argo_workflows_values(plan: ModelPipelinePlan) -> dict[str, Any]:
    """Controller only (no UI server), full CRDs, finished runs kept a week."""
    return {
        "crds": {"install": True, "full": True},
        "server": {"enabled": False},
        "controller": {"workflowDefaults": {"spec": {"ttlStrategy": {"secondsAfterCompletion": 7 * 24 * 3600}}}},
    }


def event_bus(plan: ModelPipelinePlan) -> dict[str, Any]:
    return {"apiVersion": ARGO_API, "kind": "EventBus", "metadata": _meta(plan, plan.name), "spec": {"jetstream": {"version": "latest", "replicas": 3}}}


def event_source(plan: ModelPipelinePlan, source: dict[str, Any] | None) -> dict[str, Any]:
    """The EventSource: the cloud's queue (sqs / pubSub) or a calendar schedule."""
    spec: dict[str, Any] = {"eventBusName": plan.name, "template": {"serviceAccountName": plan.event_source_service_account}}
    if source is None:
        spec["calendar"] = {EVENT_NAME: {"schedule": plan.trigger.schedule or "0 3 * * *", "timezone": "UTC"}}
    else:
        spec.update(source)
    return {"apiVersion": ARGO_API, "kind": "EventSource", "metadata": _meta(plan, plan.name), "spec": spec}


def _new_object_key(plan: ModelPipelinePlan) -> str | None:
    """Where the new object's key is in the event payload (None for a schedule)."""
    if plan.trigger.kind != "bucket-events":
        return None
    return "body.Records.0.s3.object.key" if plan.trigger.scheme == "s3" else "body.name"


def workflow(plan: ModelPipelinePlan) -> dict[str, Any]:
    """The Workflow the Sensor creates for each event: the template, and the new object as a parameter."""
    return {
        "apiVersion": ARGO_API,
        "kind": "Workflow",
        "metadata": {"generateName": f"{plan.name}-", "namespace": plan.namespace, "labels": {"gpuplane.dev/pipeline": plan.name}},
        "spec": {"workflowTemplateRef": {"name": plan.name}, "arguments": {"parameters": [{"name": "new-object", "value": "scheduled"}]}},
    }


def sensor(plan: ModelPipelinePlan) -> dict[str, Any]:
    trigger: dict[str, Any] = {
        "template": {
            "name": "retrain",
            "k8s": {"operation": "create", "source": {"resource": workflow(plan)}},
        },
        "retryStrategy": {"steps": 3},
    }
    key = _new_object_key(plan)
    if key is not None:
        trigger["template"]["k8s"]["parameters"] = [{"src": {"dependencyName": EVENT_NAME, "dataKey": key}, "dest": "spec.arguments.parameters.0.value"}]
    dependency: dict[str, Any] = {"name": EVENT_NAME, "eventSourceName": plan.name, "eventName": EVENT_NAME}
    if key is not None and plan.trigger.suffix:
        # Only the object that marks a complete day starts a run (not every file of it).
        dependency["filters"] = {"data": [{"path": key, "type": "string", "value": [f".*{_regex_escape(plan.trigger.suffix)}$"]}]}
    return {
        "apiVersion": ARGO_API,
        "kind": "Sensor",
        "metadata": _meta(plan, plan.name),
        "spec": {
            "eventBusName": plan.name,
            "template": {"serviceAccountName": plan.sensor_service_account},
            "dependencies": [dependency],
            "triggers": [trigger],
        },
    }


def _regex_escape(text: str) -> str:
    import re

    return re.escape(text)


def export_url(checkpoint_url: str) -> str:
    return f"{checkpoint_url.rstrip('/')}/export"


def train_jobset(plan: ModelPipelinePlan, image: Any, checkpoint_url: str, extra_env: dict[str, str]) -> dict[str, Any]:
    """The TrainingJob's JobSet for one run (named after the run, in the team's Kueue queue)."""
    job = dataclasses.replace(plan.job, command=("sh", "-c", TRAIN_WRAPPER, "train"), env={**plan.job.env, "MODEL_EXPORT_URL": export_url(checkpoint_url)})
    manifest = jobset_manifest(job, image, checkpoint_url, extra_env=extra_env)
    text = json.dumps(manifest).replace(RUN_PLACEHOLDER, RUN)
    out: dict[str, Any] = json.loads(text)
    return out


def _container(image: Any, command: list[str]) -> dict[str, Any]:
    return {
        "image": image,
        "command": command,
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }


# Knative Serving 1.23's queue-proxy request metrics (pkg/queue/request_metric.go at knative-v1.23.0):
# the OpenTelemetry histogram ``kn.serving.invocation.duration`` in seconds with the attribute
# ``http.response.status_code``, exported for Prometheus (config-observability
# ``request-metrics-protocol: prometheus``, pkg/observability/config.go) on the queue-proxy's
# ``http-usermetric`` port 9091 as ``kn_serving_invocation_duration_seconds_{bucket,count,sum}``
# (otlptranslator UnderscoreEscapingWithSuffixes). The revision is a resource attribute (target_info
# only), so the queries select it by the pod label the ``gpuplane-knative-revisions`` PodMonitor copies.
KNATIVE_REQUESTS = "kn_serving_invocation_duration_seconds"
REVISION_LABEL = "serving_knative_dev_revision"


def promql(plan: ModelPipelinePlan, service: str, namespace: str) -> dict[str, str]:
    """The verify step's queries over Knative 1.23's queue-proxy metrics, for the challenger revision.

    ``error_rate``: 5xx replies over all replies (0 when the challenger answered and none failed;
    empty, which fails the check, when no request reached it). ``p99_seconds``: in seconds, as the
    histogram is.
    """
    assert plan.canary is not None
    window = f"{plan.canary.window_seconds}s"
    rev = f'namespace="{namespace}",{REVISION_LABEL}="{service}-{RUN}"'
    count = f"{KNATIVE_REQUESTS}_count"
    return {
        "error_rate": f'(sum(rate({count}{{{rev},http_response_status_code=~"5.."}}[{window}])) or vector(0))'
                      f" / sum(rate({count}{{{rev}}}[{window}]))",
        "p99_seconds": f"histogram_quantile(0.99, sum by (le) (rate({KNATIVE_REQUESTS}_bucket{{{rev}}}[{window}])))",
    }


def query_url(prometheus_url: str, query: str) -> str:
    """The instant-query URL with ``{{workflow.name}}`` left literal for Argo to substitute.

    Argo replaces only the literal ``{{...}}`` text in the HTTP template's URL; percent-encoded
    (``%7B%7B``) it would reach Prometheus as a revision name nobody has.
    """
    from urllib.parse import quote

    return f"{prometheus_url}/api/v1/query?query=" + RUN.join(quote(part, safe="") for part in query.split(RUN))


def _http_check(plan: ModelPipelinePlan, query: str, bound: float) -> dict[str, Any]:
    assert plan.canary is not None
    return {
        "url": query_url(plan.canary.prometheus_url, query),
        "method": "GET",
        "timeoutSeconds": 30,
        # The HTTP template's expression sees only request and response (workflow/executor/agent.go at
        # v4.0.6), so it parses the body with expr-lang's own builtins (fromJSON, float, len; expr v1.17).
        # No samples (no traffic reached the challenger) fails the check: no evidence, no promotion.
        "successCondition": (
            "response.statusCode == 200 && len(fromJSON(response.body).data.result) > 0 && "
            f"float(fromJSON(response.body).data.result[0].value[1]) <= {bound:g}"
        ),
    }


# The champion is the revision tagged "champion" in status.traffic; before the first rollout there is no
# tag and the latest ready revision (the one `pulumi up` created) is the champion. Never the latest ready
# revision after a rollout: after a rollback that is the rejected challenger. Argo runs this filter with
# gojq on `kubectl get -o json` (workflow/executor/resource.go, valueFrom.jqFilter, v4.0.6).
CHAMPION_JQ = '[.status.traffic[]? | select(.tag == "champion") | .revisionName][0] // .status.latestReadyRevisionName'


def _traffic(service: str, champion_percent: int, challenger_percent: int) -> list[dict[str, Any]]:
    return [
        {"tag": "champion", "revisionName": "{{steps.champion.outputs.parameters.revision}}", "percent": champion_percent},
        {"tag": "challenger", "revisionName": f"{service}-{RUN}", "percent": challenger_percent},
    ]


def _patch(service: str, namespace: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"action": "patch", "mergeStrategy": "json", "flags": ["services.serving.knative.dev", service, "-n", namespace], "manifest": yaml.safe_dump(ops, sort_keys=False)}


def workflow_template(
    plan: ModelPipelinePlan, image: Any, checkpoint_url: str, tracking_uri: str, extra_env: dict[str, str], endpoint: dict[str, str] | None
) -> dict[str, Any]:
    """The WorkflowTemplate: train -> evaluate -> promote (gate) [-> replicate to other clouds] [-> champion -> canary -> bake -> verify -> full | rollback]."""
    jobset = train_jobset(plan, image, checkpoint_url, extra_env)
    export = export_url(checkpoint_url).replace(RUN_PLACEHOLDER, RUN)
    steps: list[list[dict[str, Any]]] = [
        [{"name": "train", "template": "train"}],
        [{"name": "evaluate", "template": "evaluate"}],
        # Exit 3 is a decision (the champion stays), not an error: the run continues to its end.
        [{"name": "promote", "template": "promote", "continueOn": {"failed": True}}],
    ]
    templates: list[dict[str, Any]] = [
        {"name": "retrain", "steps": steps},
        {
            "name": "train",
            "resource": {
                "action": "create",
                "setOwnerReference": True,
                "successCondition": "status.terminalState == Completed",
                "failureCondition": "status.terminalState == Failed",
                "manifest": yaml.safe_dump(jobset, sort_keys=False),
            },
        },
        {
            "name": "evaluate",
            "container": {
                **_container(
                    image,
                    # The step CLI reads local directories: fetch the export and the data first (fsspec, the
                    # workload identity of the pod), then hand over with the original arguments.
                    ["sh", "-c", f"{FETCH} \"$MODEL_URI\" /tmp/model && {FETCH} \"$DATA_URI\" /tmp/data && exec python -m workloads.pipeline.evaluate \"$@\"", "evaluate",
                     "--model-dir", "/tmp/model", "--data", "/tmp/data", "--tracking-uri", tracking_uri, "--model-name", plan.model_name,
                     "--run-name", RUN, "--tag", "new_object={{workflow.parameters.new-object}}", "--output", "/tmp/evaluation.json"],
                ),
                "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "MODEL_URI", "value": export}, {"name": "DATA_URI", "value": plan.trigger.data_url}],
            },
            "outputs": {"parameters": [{"name": "evaluation", "valueFrom": {"path": "/tmp/evaluation.json", "default": "{}"}}]},
        },
        {
            "name": "promote",
            "container": _container(
                image,
                ["python", "-m", "workloads.pipeline.promote", "--tracking-uri", tracking_uri, "--model-name", plan.model_name,
                 "--metric", plan.metric, "--margin", f"{plan.min_improvement:g}", "--output", DECISION_FILE],
            ),
            "outputs": {"parameters": [{"name": "decision", "valueFrom": {"path": DECISION_FILE, "default": "{}"}}]},
        },
    ]
    if endpoint is not None and plan.canary is not None:
        c = plan.canary
        svc, ns, base = endpoint["service"], endpoint["namespace"], endpoint["model_uri"].rstrip("/")
        published = f"{base}/{RUN}"
        promoted = "{{steps.promote.exitCode}} == 0"
        steps += [
            [{"name": "publish", "template": "publish", "when": promoted}],
            [{"name": "champion", "template": "champion", "when": promoted}],
            [{"name": "canary", "template": "canary", "when": promoted}],
            [{"name": "bake", "template": "bake", "when": promoted}],
            [
                {"name": "verify-errors", "template": "verify-errors", "when": promoted, "continueOn": {"failed": True}},
                {"name": "verify-latency", "template": "verify-latency", "when": promoted, "continueOn": {"failed": True}},
            ],
            [
                {"name": "full", "template": "full", "when": f"{promoted} && {{{{steps.verify-errors.status}}}} == Succeeded && {{{{steps.verify-latency.status}}}} == Succeeded"},
                {"name": "rollback", "template": "rollback", "when": f"{promoted} && ({{{{steps.verify-errors.status}}}} != Succeeded || {{{{steps.verify-latency.status}}}} != Succeeded)"},
            ],
        ]
        queries = promql(plan, svc, ns)
        scheme = base.split("://", 1)[0]
        templates += [
            {"name": "publish", "container": {**_container(SYNC_IMAGES[scheme], sync_command(export, published)), "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}},
            {
                "name": "champion",
                "resource": {"action": "get", "manifest": yaml.safe_dump({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": svc, "namespace": ns}})},
                "outputs": {"parameters": [{"name": "revision", "valueFrom": {"jqFilter": CHAMPION_JQ}}]},
            },
            {
                "name": "canary",
                "resource": _patch(svc, ns, [
                    {"op": "add", "path": "/spec/template/metadata/name", "value": f"{svc}-{RUN}"},
                    {"op": "replace", "path": "/spec/template/spec/initContainers/0/command", "value": sync_command(published, MODEL_DIR)},
                    {"op": "add", "path": "/spec/traffic", "value": _traffic(svc, 100 - c.percent, c.percent)},
                ]),
            },
            {"name": "bake", "suspend": {"duration": f"{c.window_seconds}s"}},
            {"name": "verify-errors", "http": _http_check(plan, queries["error_rate"], c.max_error_rate)},
            {"name": "verify-latency", "http": _http_check(plan, queries["p99_seconds"], c.max_p99_ms / 1000.0)},
            # Promotion retags: the challenger becomes the champion, so the next run reads it from its tag.
            {"name": "full", "resource": _patch(svc, ns, [{"op": "add", "path": "/spec/traffic", "value": [
                {"tag": "champion", "revisionName": f"{svc}-{RUN}", "percent": 100}]}])},
            # Rollback keeps the champion's tag on the champion (the challenger stays tagged at 0 % for a look).
            {"name": "rollback", "resource": _patch(svc, ns, [{"op": "add", "path": "/spec/traffic", "value": _traffic(svc, 100, 0)}])},
        ]
    if plan.replicas:
        # Train here, serve there (replication.py): copy the promoted export to each serving cloud's bucket.
        at = next(i for i, group in enumerate(steps) if group[0]["name"] == "promote") + 1
        steps.insert(at, [{"name": f"replicate-{i}", "template": f"replicate-{i}", "when": "{{steps.promote.exitCode}} == 0"} for i in range(len(plan.replicas))])
        for i, r in enumerate(plan.replicas):
            command = ["python", "-m", "workloads.pipeline.replicate", "--src", export, "--dst", f"{r.url}/{RUN}", "--also", f"{r.url}/champion"]
            templates.append({"name": f"replicate-{i}", "container": {**_container(image, command), "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}})
    if plan.credentials_secret:
        for t in templates:
            if "container" in t:
                t["container"]["envFrom"] = [{"secretRef": {"name": plan.credentials_secret}}]
    return {
        "apiVersion": ARGO_API,
        "kind": "WorkflowTemplate",
        "metadata": _meta(plan, plan.name),
        "spec": {
            "entrypoint": "retrain",
            "serviceAccountName": plan.service_account,
            "arguments": {"parameters": [{"name": "new-object", "value": "scheduled"}]},
            # One run at a time: a second day arriving mid-run waits for the first.
            "synchronization": {"mutexes": [{"name": plan.name}]},
            "podGC": {"strategy": "OnPodSuccess"},
            "templates": templates,
        },
    }


def agent_token_secret(service_account: str) -> str:
    """The Secret Argo's controller mounts into the agent pod for ``service_account`` (discovery by name)."""
    return f"{service_account}.service-account-token"


def rbac(plan: ModelPipelinePlan, endpoint: dict[str, str] | None) -> list[tuple[str, dict[str, Any]]]:
    """(role suffix, Role body) per service account: the least each needs."""
    wf_rules: list[dict[str, Any]] = [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]},
        {"apiGroups": [JOBSET_API.split("/")[0]], "resources": ["jobsets"], "verbs": ["create", "get", "list", "watch", "patch", "delete"]},
    ]
    if endpoint is not None and plan.canary is not None:
        # The verify steps are HTTP templates, run by the Argo agent pod under the workflow's service
        # account; the agent lists and watches its WorkflowTaskSet and patches its status
        # (manifests/quick-start/base/agent-role.yaml at v4.0.6).
        wf_rules += [
            {"apiGroups": ["argoproj.io"], "resources": ["workflowtasksets"], "verbs": ["list", "watch"]},
            {"apiGroups": ["argoproj.io"], "resources": ["workflowtasksets/status"], "verbs": ["patch"]},
        ]
    out: list[tuple[str, dict[str, Any]]] = [
        ("sensor", {"rules": [{"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "get", "list"]}]}),
        ("workflow", {"rules": wf_rules}),
    ]
    if endpoint is not None:
        out.append(("rollout", {"namespace": endpoint["namespace"], "rules": [{"apiGroups": ["serving.knative.dev"], "resources": ["services"], "resourceNames": [endpoint["service"]], "verbs": ["get", "patch"]}]}))
    return out


# ---------------------------------------------------------------------------------------------
# Resources


def _custom(name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(name, api_version=body["apiVersion"], kind=body["kind"], metadata=body["metadata"], spec=body["spec"], opts=opts)


def _install_argo(component: pulumi.ComponentResource, name: str, plan: ModelPipelinePlan, cluster: Any) -> list[pulumi.Resource]:
    if "argo" in cluster.addons:
        return list(cluster.addons["argo"])
    opts = pulumi.ResourceOptions(parent=component, provider=cluster.k8s_provider)
    releases: list[pulumi.Resource] = [
        k8s.helm.v3.Release(
            f"{name}-argo-workflows",
            k8s.helm.v3.ReleaseArgs(**chart_args(cluster.chart_source, ARGO_WORKFLOWS_CHART, ARGO_WORKFLOWS_VERSION, ARGO_HELM_REPO),
                                    namespace="argo", create_namespace=True, values=argo_workflows_values(plan)),
            opts=opts,
        ),
        k8s.helm.v3.Release(
            f"{name}-argo-events",
            k8s.helm.v3.ReleaseArgs(**chart_args(cluster.chart_source, ARGO_EVENTS_CHART, ARGO_EVENTS_VERSION, ARGO_HELM_REPO),
                                    namespace="argo-events", create_namespace=True, values={"crds": {"install": True}}),
            opts=opts,
        ),
    ]
    cluster.addons["argo"] = releases
    return releases


def endpoint_facts(endpoint: InferenceEndpoint | None) -> dict[str, str] | None:
    if endpoint is None:
        return None
    return {"service": endpoint.plan.name, "namespace": endpoint.plan.namespace, "model_uri": endpoint.plan.model_uri or ""}


def create_pipeline(
    component: pulumi.ComponentResource, name: str, plan: ModelPipelinePlan, args: ModelPipelineArgs, create_cloud: CloudPart | None
) -> dict[str, Any]:
    """The Argo objects of the loop; ``create_cloud`` (aws.py or gcp.py) wires the cloud's event source first."""
    tc = args["training_cluster"]
    cluster = tc.cluster
    provider = cluster.k8s_provider
    endpoint = endpoint_facts(args.get("endpoint"))
    installed = _install_argo(component, name, plan, cluster) if plan.install_argo else []
    checkpoint = tc.checkpoint_url_for(plan.team or "", RUN_PLACEHOLDER)
    if create_cloud is not None:
        cloud = create_cloud(component, name, plan, tc, checkpoint, endpoint)
    else:
        cloud = PipelineCloud(event_source=None)  # an existing cluster: calendar only, no cloud wiring
    after = [*installed, *tc.ready, *cloud.depends_on]
    opts = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=after)
    labels = {"app.kubernetes.io/managed-by": "gpuplane", "gpuplane.dev/pipeline": name}
    accounts = {
        "events": (plan.event_source_service_account, cloud.event_source_annotations),
        "sensor": (plan.sensor_service_account, None),
        "workflow": (plan.service_account, cloud.workflow_annotations),
    }
    sas = {
        role: k8s.core.v1.ServiceAccount(
            f"{name}-{role}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=sa, namespace=plan.namespace, labels=labels, annotations=ann),
            automount_service_account_token=role != "events" or cloud.event_source is not None,
            opts=opts,
        )
        for role, (sa, ann) in accounts.items()
    }
    if endpoint is not None and plan.canary is not None:
        # The agent pod mounts the workflow service account's token from a Secret named
        # "<sa>.service-account-token" (workflow/controller/agent.go and serviceaccount.go at v4.0.6);
        # Kubernetes has not created such Secrets since 1.24, so without it the agent never starts.
        k8s.core.v1.Secret(
            f"{name}-workflow-sa-token",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=agent_token_secret(plan.service_account), namespace=plan.namespace, labels=labels,
                                                annotations={"kubernetes.io/service-account.name": plan.service_account}),
            type="kubernetes.io/service-account-token",
            opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[sas["workflow"], *after]),
        )
    for suffix, role in rbac(plan, endpoint):
        ns = role.get("namespace", plan.namespace)
        subject = plan.sensor_service_account if suffix == "sensor" else plan.service_account
        r = k8s.rbac.v1.Role(f"{name}-{suffix}-rbac-role", metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-{suffix}", namespace=ns, labels=labels), rules=role["rules"], opts=opts)
        k8s.rbac.v1.RoleBinding(
            f"{name}-{suffix}-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-{suffix}", namespace=ns, labels=labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=f"{name}-{suffix}"),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=subject, namespace=plan.namespace)],
            opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[r, *after]),
        )
    bus = _custom(f"{name}-eventbus", event_bus(plan), opts)
    es = _custom(f"{name}-eventsource", event_source(plan, cloud.event_source), pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[bus, sas["events"], *after]))
    image = args["image"]
    tracking = args["registry"].tracking_uri
    template_body = pulumi.Output.all(checkpoint, tracking, image).apply(
        lambda v: workflow_template(plan, v[2], str(v[0]), str(v[1]), dict(tc.cloud_env), endpoint)
    )
    template = k8s.apiextensions.CustomResource(
        f"{name}-workflow-template",
        api_version=ARGO_API,
        kind="WorkflowTemplate",
        metadata=_meta(plan, plan.name),
        spec=template_body.apply(lambda b: b["spec"]),
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[sas["workflow"], *after]),
    )
    _custom(f"{name}-sensor", sensor(plan), pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[bus, es, template, sas["sensor"], *after]))
    description = cloud.description if cloud.description is not None else f"calendar:{plan.trigger.schedule}"
    return {"workflow_template": plan.name, "event_source": description}
