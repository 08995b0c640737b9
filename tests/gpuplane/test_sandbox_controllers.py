"""`gpuplane sandbox up --controllers`: the pure parts (ports, command lines, Kueue's and JobSet's configuration,
the charts' webhook configurations and CRDs rewired to loopback) and the bad-input paths, which stop before
anything starts."""

from __future__ import annotations

import base64
import json
import os
import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from components.training.kueue import kueue_values
from gpuplane.cli import app
from gpuplane.sandbox import cluster, controllers, toolchain

runner = CliRunner()
CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _layout(tmp_path: Path) -> cluster.Layout:
    return cluster.Layout("c", 20000, tmp_path, controllers=True)


def test_a_sandbox_with_controllers_owns_twelve_consecutive_ports(tmp_path):
    layout = _layout(tmp_path)
    assert sorted(layout.ports.values()) == list(range(20000, 20012))
    assert {k: layout.ports[k] for k in ("kueue-webhook", "kueue", "jobset-webhook", "jobset")} == {
        "kueue-webhook": 20006, "kueue": 20007, "jobset-webhook": 20008, "jobset": 20009}
    assert layout.processes == (*cluster.START_ORDER, "kueue", "jobset", "karpenter")
    assert len(cluster.Layout("p", 20000, tmp_path).ports) == 6
    with pytest.raises(cluster.SandboxError, match=r"--port 65530 is out of range.*12 ports"):
        cluster.Layout("c", 65530, tmp_path, controllers=True)


def test_controllers_are_remembered_for_status_and_down(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "sandbox.json").write_text(json.dumps({"name": "c", "port": 20000, "controllers": True}))
    assert cluster.load_layout("c", root=tmp_path).controllers is True
    assert cluster.load_layout("c", root=tmp_path).ports["jobset"] == 20009
    (folder / "sandbox.json").write_text(json.dumps({"name": "c", "port": 20000}))  # written before --controllers existed
    assert cluster.load_layout("c", root=tmp_path).controllers is False


def test_kueue_runs_gpuplanes_configuration_on_loopback(tmp_path):
    layout = _layout(tmp_path)
    config = controllers.kueue_config(layout)
    ours = yaml.safe_load(kueue_values()["managerConfig"]["controllerManagerConfigYaml"])
    # What SpotTrainingCluster promises (gang admission, the integrations TrainingJob uses) is what runs.
    assert config["waitForPodsReady"] == ours["waitForPodsReady"] and config["waitForPodsReady"]["blockAdmission"]
    assert config["integrations"]["frameworks"] == ["batch/job", "jobset.x-k8s.io/jobset"]
    assert config["apiVersion"] == "config.kueue.x-k8s.io/v1beta2" and config["kind"] == "Configuration"
    assert config["webhook"] == {"host": "127.0.0.1", "port": 20006, "certDir": str(tmp_path / "c" / "pki" / "webhooks")}
    assert config["health"]["healthProbeBindAddress"] == "127.0.0.1:20007"
    assert config["metrics"] == {"bindAddress": "0"}
    assert config["leaderElection"] == {"leaderElect": False}
    assert config["internalCertManagement"] == {"enable": False}
    assert config["featureGates"]["VisibilityOnDemand"] is False


def test_jobset_runs_without_its_own_cert_management_on_loopback(tmp_path):
    config = controllers.jobset_config(_layout(tmp_path))
    assert config["apiVersion"] == "config.jobset.x-k8s.io/v1alpha1"
    assert config["webhook"]["host"] == "127.0.0.1" and config["webhook"]["port"] == 20008
    assert config["health"]["healthProbeBindAddress"] == "127.0.0.1:20009"
    assert config["internalCertManagement"] == {"enable": False} and config["leaderElection"] == {"leaderElect": False}
    assert config["metrics"]["bindAddress"] == "0"


def test_command_lines_use_the_sandbox_kubeconfig_and_config_files(tmp_path):
    layout = _layout(tmp_path)
    bindir = tmp_path / "bin"
    as_user = controllers.commands(layout, bindir, euid=1000)
    kueue = as_user["kueue"]
    # Kueue runs in a private mount namespace whose /etc is the sandbox's kueue-etc/ (its fixed cert path).
    assert kueue[:6] == ["unshare", "--mount", "--propagation", "private", "--user", "--map-root-user"]
    assert kueue[kueue.index("-c") + 2] == str(tmp_path / "c" / "kueue-etc")
    assert kueue[kueue.index("-c") + 3] == controllers.executable("kueue", bindir) == str(bindir / "kueue")
    assert f"--config={tmp_path / 'c' / 'kueue.yaml'}" in kueue and f"--kubeconfig={layout.kubeconfig}" in kueue
    assert "--user" not in controllers.commands(layout, bindir, euid=0)["kueue"]
    jobset = as_user["jobset"]
    assert jobset[0] == str(bindir / "jobset") and f"--config={tmp_path / 'c' / 'jobset.yaml'}" in jobset
    assert f"--kubeconfig={layout.kubeconfig}" in jobset


def _hooks():
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "kueue-validating-webhook-configuration", "namespace": "kueue-system",
                     "annotations": {"cert-manager.io/inject-ca-from": "x"}},
        "webhooks": [{
            "name": "vjobset.kb.io", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail", "sideEffects": "None",
            "clientConfig": {"service": {"name": "kueue-webhook-service", "namespace": "kueue-system",
                                         "path": "/validate-jobset-x-k8s-io-v1alpha2-jobset"}},
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                                        "values": ["kube-system", "kueue-system"]}]},
            "rules": [{"apiGroups": ["jobset.x-k8s.io"], "apiVersions": ["v1alpha2"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["jobsets"]}],
        }],
    }


def test_webhooks_call_loopback_with_the_sandbox_ca_and_keep_the_charts_rules():
    chart = _hooks()
    out = controllers.loopback_webhooks(chart, 20006, CA)
    hook = out["webhooks"][0]
    assert hook["clientConfig"] == {"url": "https://127.0.0.1:20006/validate-jobset-x-k8s-io-v1alpha2-jobset",
                                    "caBundle": base64.b64encode(CA).decode()}
    for key in ("rules", "namespaceSelector", "failurePolicy", "sideEffects", "name"):
        assert hook[key] == chart["webhooks"][0][key], key
    assert "namespace" not in out["metadata"] and "annotations" not in out["metadata"]
    assert chart["webhooks"][0]["clientConfig"]["service"]["name"] == "kueue-webhook-service"  # input untouched


def test_a_conversion_webhook_calls_loopback_and_other_crds_are_unchanged():
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "workloads.kueue.x-k8s.io", "annotations": {"cert-manager.io/inject-ca-from": "k/s",
                                                                            "controller-gen.kubebuilder.io/version": "v0.20.1"}},
           "spec": {"group": "kueue.x-k8s.io", "conversion": {"strategy": "Webhook", "webhook": {
               "clientConfig": {"service": {"name": "kueue-webhook-service", "namespace": "kueue-system", "path": "/convert"}},
               "conversionReviewVersions": ["v1"]}}}}
    out = controllers.loopback_crd(crd, 20006, CA)
    assert out["spec"]["conversion"]["webhook"]["clientConfig"]["url"] == "https://127.0.0.1:20006/convert"
    assert out["spec"]["conversion"]["webhook"]["conversionReviewVersions"] == ["v1"]
    assert out["metadata"]["annotations"] == {"controller-gen.kubebuilder.io/version": "v0.20.1"}
    plain = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
             "metadata": {"name": "jobsets.jobset.x-k8s.io"}, "spec": {"group": "jobset.x-k8s.io"}}
    assert controllers.loopback_crd(plain, 20008, CA)["spec"] == plain["spec"]


@pytest.mark.skipif(toolchain.missing(["helm"]) or controllers.charts_dir() is None, reason="needs helm and the charts")
def test_the_pinned_charts_give_every_webhook_a_loopback_url(tmp_path):
    layout = _layout(tmp_path)
    crds, hooks = controllers.sandbox_objects(layout, toolchain.bin_dir(), controllers.charts_dir(), CA)
    names = {c["metadata"]["name"] for c in crds}
    assert {"clusterqueues.kueue.x-k8s.io", "workloads.kueue.x-k8s.io", "jobsets.jobset.x-k8s.io"} <= names
    by_name = {h["metadata"]["name"]: h for h in hooks}
    assert set(by_name) == {"kueue-mutating-webhook-configuration", "kueue-validating-webhook-configuration",
                            "jobset-mutating-webhook-configuration", "jobset-validating-webhook-configuration"}
    for name, h in by_name.items():
        port = 20006 if name.startswith("kueue") else 20008
        for w in h["webhooks"]:
            assert w["clientConfig"]["url"].startswith(f"https://127.0.0.1:{port}/"), (name, w["name"])
    kueue_hooks = {w["name"] for w in by_name["kueue-mutating-webhook-configuration"]["webhooks"]}
    assert {"mjobset.kb.io", "mjob.kb.io", "mclusterqueue.kb.io"} <= kueue_hooks


# -- bad input: one line, exit 2, nothing started ------------------------------------------------------


@pytest.fixture
def homes(monkeypatch, tmp_path):
    monkeypatch.setenv("GPUPLANE_SANDBOX_HOME", str(tmp_path / "sandbox"))
    return tmp_path


def _free_base_port() -> int:
    for base in range(21000, 60000, 20):
        if all(cluster.port_free(p) for p in range(base, base + 12)):
            return base
    raise RuntimeError("no free ports")


def test_controllers_without_their_binaries_name_them_and_the_fix(homes, monkeypatch):
    monkeypatch.setenv("GPUPLANE_ENGINE_CACHE", str(homes / "engine"))
    bindir = toolchain.bin_dir()
    why = controllers.missing(bindir)
    assert why is not None and "kueue, jobset, helm not built" in why
    assert "python -m gpuplane.sandbox.toolchain kueue jobset helm" in why and "make engine" in why


@pytest.mark.skipif(bool(toolchain.missing(toolchain.SANDBOX_BINARIES)), reason="needs the base sandbox programs")
def test_up_controllers_with_a_controller_port_in_use_names_it_and_starts_nothing(homes):
    base = _free_base_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 8))
        s.listen()
        result = runner.invoke(app, ["sandbox", "up", "--name", "t", "--port", str(base), "--controllers", "--no-build"])
    assert result.exit_code == 2
    assert f"port {base + 8} (jobset-webhook) on 127.0.0.1 is in use" in result.stderr
    assert "N..N+11" in result.stderr
    assert not (homes / "sandbox" / "t" / "pids.json").exists()


def test_up_controllers_without_charts_says_where_it_looked(homes, monkeypatch):
    monkeypatch.setenv("GPUPLANE_CHARTS_DIR", str(homes / "no-charts"))
    if toolchain.missing([*controllers.NAMES, "helm"]):
        pytest.skip("needs the controllers built")
    why = controllers.missing(toolchain.bin_dir())
    assert why is not None and "kueue-0.19.2.tgz, jobset-0.12.0.tgz not found" in why and "GPUPLANE_CHARTS_DIR" in why
    assert os.environ["GPUPLANE_CHARTS_DIR"] in why


# -- `gpuplane sandbox jobs`: Kueue's verdict per job -------------------------------------------------


def _workload(name: str, conditions: list[dict], admission: dict | None = None) -> dict:
    wl = {"metadata": {"name": f"jobset-{name}-1a2b3", "namespace": "recs",
                       "ownerReferences": [{"kind": "JobSet", "name": name}]},
          "spec": {"queueName": "train"}, "status": {"conditions": conditions}}
    if admission:
        wl["status"]["admission"] = admission
    return wl


TOO_BIG = ("couldn't assign flavors to pod set worker: insufficient quota for nvidia.com/gpu in flavor train-l4-on-demand, "
           "previously considered podsets requests (0) + current podset request (3) > maximum capacity (2)")
WAITING = ("couldn't assign flavors to pod set worker: insufficient unused quota for nvidia.com/gpu in flavor "
           "train-l4-on-demand, 1 more needed")


def test_jobs_show_kueues_verdict_and_quote_its_message():
    from gpuplane.sandbox.jobs import format_rows, job_rows

    admitted = _workload("ok", [{"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved", "message": "Quota reserved"},
                                {"type": "Admitted", "status": "True", "reason": "Admitted", "message": "The workload is admitted"}],
                         {"clusterQueue": "train", "podSetAssignments": [{"name": "worker", "count": 2,
                                                                          "flavors": {"cpu": "train-l4-on-demand", "nvidia.com/gpu": "train-l4-on-demand"}}]})
    waiting = _workload("wait", [{"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": WAITING}])
    hopeless = _workload("big", [{"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": TOO_BIG}])
    preempted = _workload("pre", [{"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": WAITING},
                                  {"type": "Evicted", "status": "True", "reason": "Preempted", "message": "Preempted to accommodate a workload"}])
    rows = job_rows([admitted, waiting, hopeless, preempted])
    by_job = {r.job: r for r in rows}
    assert {j: r.state for j, r in by_job.items()} == {
        "JobSet/ok": "admitted", "JobSet/wait": "pending", "JobSet/big": "inadmissible", "JobSet/pre": "evicted"}
    assert by_job["JobSet/ok"].flavors["nvidia.com/gpu"] == "train-l4-on-demand" and by_job["JobSet/ok"].cluster_queue == "train"
    assert by_job["JobSet/big"].message == TOO_BIG
    lines = format_rows(rows)
    assert lines[0].split() == ["JOB", "QUEUE", "STATE", "FLAVORS"]
    assert any(line.split() == ["recs/JobSet/ok", "train", "admitted", "train-l4-on-demand"] for line in lines)
    assert f"recs/JobSet/big: inadmissible (Pending): {TOO_BIG}" in lines
    assert f"recs/JobSet/wait: pending (Pending): {WAITING}" in lines
    assert not any(line.startswith("recs/JobSet/ok:") for line in lines)  # admitted: no message to explain


def test_jobs_with_no_workloads_say_so():
    from gpuplane.sandbox.jobs import format_rows

    assert format_rows([]) == ["no Kueue workloads (no job was submitted to a queue)"]


def test_jobs_on_a_sandbox_that_is_not_running_says_how_to_start_it(homes):
    result = runner.invoke(app, ["sandbox", "jobs", "--name", "t"])
    assert result.exit_code == 2
    assert "sandbox 't' is not running" in result.stderr and "gpuplane sandbox up --controllers --name t" in result.stderr


def test_a_sandbox_started_without_controllers_removes_the_webhooks_an_earlier_run_wrote(tmp_path):
    calls = []
    controllers.remove_webhooks(_layout(tmp_path), lambda layout, method, path, **kw: calls.append((method, path)) or (200, {}))
    assert calls == [
        ("DELETE", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations?labelSelector=app.kubernetes.io/managed-by%3Dgpuplane-sandbox"),
        ("DELETE", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations?labelSelector=app.kubernetes.io/managed-by%3Dgpuplane-sandbox"),
    ]
    # ... and only those: what loopback_webhooks writes carries that label.
    assert controllers.loopback_webhooks(_hooks(), 20006, CA)["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "gpuplane-sandbox"}
