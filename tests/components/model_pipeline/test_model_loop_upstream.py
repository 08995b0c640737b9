"""The model loop's objects against the behaviour of the pinned upstream programs (issue 18).

Each test names the upstream file whose behaviour it encodes; every one of these objects was
well-formed before and failed only at run time on a real cluster.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from components.inference.knative import knative_serving_spec
from components.model_pipeline.argo import RUN, query_url
from components.observability.prometheus import pod_monitors
from gpuplane.engine.promql import check
from tests.components.model_pipeline.test_model_loop import _loop, _template


@pytest.fixture(scope="module")
def gcp_loop():
    return _loop("gcp")


def test_the_pubsub_event_source_names_the_subscription_only(gcp_loop) -> None:
    """argoproj/argo-events v1.9 pkg/eventsources/sources/gcppubsub/start.go: a subscription that exists and a
    topic that is given mean "verify topic", which calls Subscription.Config and needs pubsub.subscriptions.get;
    roles/pubsub.subscriber (granted on the subscription) has consume but not get. Without a topic an
    existing subscription needs nothing extra."""
    es = gcp_loop.one("kubernetes:argoproj.io/v1alpha1:EventSource", "recs-loop-eventsource").inputs["spec"]
    source = es["pubSub"]["new-data"]
    assert "topic" not in source and source["subscriptionID"]
    grant = gcp_loop.one("gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember").inputs
    assert grant["role"] == "roles/pubsub.subscriber"


@pytest.mark.parametrize("target", ["aws", "gcp", "kubernetes"])
def test_the_http_verify_steps_have_the_agents_token_secret_and_rbac(target: str) -> None:
    """argoproj/argo-workflows v4.0.6 workflow/controller/agent.go + serviceaccount.go: the agent pod runs under
    the workflow's service account with AutomountServiceAccountToken false and mounts the Secret
    ``<sa>.service-account-token`` (docs/service-account-secrets.md: not created since Kubernetes 1.24);
    manifests/quick-start/base/agent-role.yaml: list/watch workflowtasksets, patch workflowtasksets/status."""
    r = _loop(target)
    t = _template(r)
    assert "http" in t["verify-errors"], "the gate runs in the agent"
    sa = r.one("kubernetes:argoproj.io/v1alpha1:WorkflowTemplate").inputs["spec"]["serviceAccountName"]
    secret = r.one("kubernetes:core/v1:Secret", "recs-loop-workflow-sa-token").inputs
    assert secret["metadata"]["name"] == f"{sa}.service-account-token"
    assert secret["metadata"]["annotations"] == {"kubernetes.io/service-account.name": sa}
    assert secret["type"] == "kubernetes.io/service-account-token"
    rules = r.one("kubernetes:rbac.authorization.k8s.io/v1:Role", "recs-loop-workflow-rbac-role").inputs["rules"]
    granted = {(res, verb) for rule in rules for res in rule["resources"] for verb in rule["verbs"]}
    assert {("workflowtasksets", "list"), ("workflowtasksets", "watch"), ("workflowtasksets/status", "patch")} <= granted


def test_no_canary_no_agent_token() -> None:
    r = _loop("kubernetes", endpoint=False)
    assert not [x for x in r.by_type("kubernetes:core/v1:Secret") if x.name == "recs-loop-workflow-sa-token"]


def test_the_gate_reads_knative_1_23_request_metrics_in_seconds_for_the_challenger() -> None:
    """knative/serving knative-v1.23.0 pkg/queue/request_metric.go: queue-proxy records the OpenTelemetry
    histogram ``kn.serving.invocation.duration`` (unit s, attribute http.response.status_code); the Prometheus
    exporter (vendor/knative.dev/pkg/observability/metrics/prometheus_enabled.go, UnderscoreEscapingWithSuffixes)
    names it kn_serving_invocation_duration_seconds; the revision is a resource attribute
    (pkg/queue/sharedmain/otel.go), so the series carry it only through the PodMonitor's pod label."""
    r = _loop("aws")
    t = _template(r)
    for step, bound in (("verify-errors", "0.01"), ("verify-latency", "0.5")):
        http = t[step]["http"]
        query = parse_qs(urlsplit(http["url"].replace(RUN, "run-1")).query)["query"][0]
        assert check(query) == {"kn_serving_invocation_duration_seconds_count"} if step == "verify-errors" \
            else check(query) == {"kn_serving_invocation_duration_seconds_bucket"}
        assert 'serving_knative_dev_revision="recs-run-1"' in query and 'namespace="inference"' in query
        assert f"<= {bound}" in http["successCondition"]  # 500 ms as seconds, like the histogram
    errors = parse_qs(urlsplit(t["verify-errors"]["http"]["url"]).query)["query"][0]
    assert 'http_response_status_code=~"5.."' in errors and "or vector(0)" in errors, "no 5xx is a rate of 0, not no data"


def test_argo_sees_the_literal_workflow_name_placeholder_in_the_gate_url() -> None:
    """argoproj/argo-workflows v4.0.6 util/template: only the literal ``{{workflow.name}}`` is substituted."""
    url = query_url("http://prom:9090", f'x{{revision="svc-{RUN}"}}')
    assert "{{workflow.name}}" in url and "%7B%7B" not in url
    assert parse_qs(urlsplit(url.replace(RUN, "wf-1")).query)["query"][0] == 'x{revision="svc-wf-1"}'


def test_knative_turns_on_queue_proxy_request_metrics_and_they_are_scraped() -> None:
    """knative/serving knative-v1.23.0 pkg/observability/config.go: ``request-metrics-protocol`` defaults to none;
    pkg/reconciler/revision/resources/queue.go: port http-usermetric (9091) on every queue-proxy."""
    spec = knative_serving_spec(60, 600)
    assert spec["config"]["observability"]["request-metrics-protocol"] == "prometheus"
    monitors = _monitors()
    qp = monitors["knative"]["spec"]
    assert qp["podMetricsEndpoints"][0]["port"] == "http-usermetric"
    assert "serving.knative.dev/revision" in qp["podTargetLabels"]
    keys = {e["key"] for e in qp["selector"]["matchExpressions"]}
    assert "serving.knative.dev/revision" in keys


def _monitors() -> dict[str, dict]:
    from components.observability import plan_observability

    return pod_monitors(plan_observability("obs", {}, "aws"))  # type: ignore[arg-type]


def test_each_process_is_scraped_once_under_its_own_monitor() -> None:
    """knative/serving knative-v1.23.0 pkg/apis/serving/v1/revision_helpers.go: the user container's port is
    "user-port" whatever its number (8080 reference, 8000 vLLM); routers are not Knative revision pods."""
    from components.two_tier.router import router_deployment

    monitors = _monitors()
    serving = monitors["serving"]["spec"]
    assert serving["podMetricsEndpoints"][0] == {**serving["podMetricsEndpoints"][0], "port": "user-port"}
    assert "portNumber" not in serving["podMetricsEndpoints"][0]
    router_labels = router_deployment(_two_tier_plan(), "img", "sa", "cm", [])["template"]["metadata"]["labels"]

    def selects(spec: dict, labels: dict[str, str]) -> bool:  # a label selector, as Kubernetes evaluates it
        sel = spec["selector"]
        if any(labels.get(k) != v for k, v in sel.get("matchLabels", {}).items()):
            return False
        ops = {"Exists": lambda e: e["key"] in labels, "DoesNotExist": lambda e: e["key"] not in labels,
               "In": lambda e: labels.get(e["key"]) in e["values"],
               "NotIn": lambda e: labels.get(e["key"]) not in e["values"]}
        return all(ops[e["operator"]](e) for e in sel.get("matchExpressions", []))

    revision_pod = {"gpuplane.dev/endpoint": "recs", "serving.knative.dev/revision": "recs-00001"}
    chosen_router = [role for role, m in monitors.items() if selects(m["spec"], router_labels)]
    chosen_revision = [role for role, m in monitors.items() if selects(m["spec"], revision_pod)]
    assert chosen_router == ["router"], chosen_router
    assert sorted(chosen_revision) == ["knative", "serving"], chosen_revision  # two processes: server, queue-proxy


def _two_tier_plan() -> Any:
    from components.two_tier import plan_two_tier
    from tests.components.two_tier.test_two_tier import _aws_args

    return plan_two_tier("recs", _aws_args())


def _jq(filter_text: str, document: dict) -> str:
    import json
    import shutil
    import subprocess

    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (Argo runs the same filter with gojq)")
    return subprocess.run([jq, "-r", filter_text], input=json.dumps(document), capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_champion_is_the_revision_tagged_champion_never_a_rejected_challenger() -> None:
    """argoproj/argo-workflows v4.0.6 workflow/executor/resource.go: a resource template's valueFrom.jqFilter runs
    on `kubectl get -o json`; strings come out raw. The filter is evaluated here with jq on Knative Service
    statuses (knative/serving pkg/apis/serving/v1/service_types.go: status.traffic carries each target's tag)."""
    t = _template(_loop("kubernetes"))
    jq_filter = t["champion"]["outputs"]["parameters"][0]["valueFrom"]["jqFilter"]
    first_run = {"status": {"latestReadyRevisionName": "recs-00001", "traffic": [{"revisionName": "recs-00001", "percent": 100}]}}
    after_rollback = {"status": {"latestReadyRevisionName": "recs-wf-2", "traffic": [
        {"tag": "champion", "revisionName": "recs-00001", "percent": 100},
        {"tag": "challenger", "revisionName": "recs-wf-2", "percent": 0}]}}
    after_promotion = {"status": {"latestReadyRevisionName": "recs-wf-3", "traffic": [
        {"tag": "champion", "revisionName": "recs-wf-3", "percent": 100}]}}
    assert _jq(jq_filter, first_run) == "recs-00001"
    assert _jq(jq_filter, after_rollback) == "recs-00001", "the rejected challenger is the latest ready revision"
    assert _jq(jq_filter, after_promotion) == "recs-wf-3"
    assert _jq(jq_filter, {"status": {"latestReadyRevisionName": "recs-00001"}}) == "recs-00001"


def _pulumi_path(json_pointer: str) -> str:
    """``/spec/template/spec/initContainers/0/command`` -> ``spec.template.spec.initContainers[0].command``."""
    out = ""
    for part in json_pointer.strip("/").split("/"):
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def test_pulumi_leaves_every_path_the_pipelines_rollout_patches_to_the_pipeline() -> None:
    """pulumi/pulumi-kubernetes#2714 (fixed by #2828): with server-side apply, ignoreChanges paths are left out of
    Pulumi's apply and not taken back from the manager that set them. Every path the canary, full and rollback
    patches write is ignored on the Knative Service, so a later `pulumi up` keeps the promoted revision."""
    r = _loop("aws")
    t = _template(r)
    patched = {_pulumi_path(op["path"]) for step in ("canary", "full", "rollback")
               for op in yaml.safe_load(t[step]["resource"]["manifest"])}
    assert patched == {"spec.traffic", "spec.template.metadata.name", "spec.template.spec.initContainers[0].command"}
    service = r.one("kubernetes:serving.knative.dev/v1:Service")
    assert patched <= set(service.ignore_changes), service.ignore_changes


def test_a_canary_on_an_endpoint_the_program_still_owns_is_one_error_with_the_fix() -> None:
    from components.errors import ComponentInputError

    with pytest.raises(ComponentInputError) as err:
        _loop("kubernetes", endpoint_owner="iac")
    text = str(err.value)
    assert "rollout_managed_by='iac'" in text and "set rollout_managed_by='pipeline' on InferenceEndpoint 'recs'" in text


def test_an_endpoint_the_program_owns_ignores_nothing() -> None:
    from tests.components.inference.test_inference_runtimes import _knative

    result, _svc, _c = _knative({"image": "srv:1", "model_uri": "pvc://models/recs"})
    assert not result.one("kubernetes:serving.knative.dev/v1:Service").ignore_changes
