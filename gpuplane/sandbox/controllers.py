"""The real Kueue and JobSet controller managers in the sandbox (``gpuplane sandbox up --controllers``).

Contract:

- Programs: ``kueue`` (sigs.k8s.io/kueue v0.19.2) and ``jobset`` (sigs.k8s.io/jobset v0.12.0), built by the
  toolchain (``CONTROLLER_BINARIES``) into its bin folder. Each runs as a sandbox process (``pids.json``,
  ``logs/<name>.log``; ``down`` stops it), with the sandbox's admin kubeconfig, leader election off, its
  health/readiness server on ``127.0.0.1`` (``Layout.ports``: ``kueue`` base+7, ``jobset`` base+9), its
  metrics server off, and its webhook server on ``127.0.0.1`` (``kueue-webhook`` base+6, ``jobset-webhook``
  base+8) with one serving certificate the sandbox CA issues for 127.0.0.1 (``pki/webhooks/``).
- Objects: the CRDs and the Mutating/ValidatingWebhookConfigurations come from the pinned chart archives
  (``kueue-0.19.2.tgz``, ``jobset-0.12.0.tgz``; ``$GPUPLANE_CHARTS_DIR`` or a ``shared/charts`` folder beside
  or above the clone), rendered with the toolchain's ``helm template``; nothing is fetched. No Service routes
  to a process on loopback, so every ``clientConfig.service`` (webhooks and Kueue's CRD conversion webhook)
  becomes ``clientConfig.url: https://127.0.0.1:<port><path>`` with the sandbox CA as ``caBundle``; the
  rules, selectors and failure policies are the chart's. The charts' Deployments, RBAC and Services are not
  applied (the managers run as processes with the admin identity).
- Kueue's configuration is gpuplane's own (``components.training.kueue.kueue_values()``: waitForPodsReady,
  integrations ``batch/job`` and ``jobset.x-k8s.io/jobset``) with the sandbox's addresses, leader election off,
  ``internalCertManagement.enable: false`` and the ``VisibilityOnDemand`` gate off (its API server would read
  certificates from the fixed path ``/visibility``); a ``kueue-overrides.yaml`` mapping in the sandbox folder
  replaces top-level keys (a MultiKueue manager's ``multiKueue``). With its own cert management off, Kueue also reads a
  metrics certificate from the fixed path ``/etc/kueue/metrics/certs`` (cmd/kueue/main.go), even with metrics
  off; so it runs in a private mount namespace (``unshare``; a user namespace too when not root) whose
  ``/etc`` is the sandbox folder ``kueue-etc/`` holding that certificate. Nothing outside the state folder
  is written.
- Ready: both readiness endpoints answer 200, then a server-side dry-run create of a ClusterQueue comes back
  with Kueue's finalizer and of a JobSet with Kueue's ``suspend`` and JobSet's defaulted ``startupPolicy``:
  proof that the apiserver called both webhook servers.
- Pure parts (``commands``, ``kueue_config``, ``jobset_config``, ``loopback_webhooks``, ``loopback_crd``) are
  unit-tested; ``start`` talks to the sandbox.
"""

from __future__ import annotations

import base64
import copy
import os
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpuplane.sandbox import toolchain

HOST = "127.0.0.1"
KUEUE_NAMESPACE = "kueue-system"
JOBSET_NAMESPACE = "jobset-system"
KUEUE_METRICS_CERT_DIR = "/etc/kueue/metrics/certs"
"""Where Kueue v0.19.2 reads its metrics certificate when its internal cert management is off (fixed in its main.go)."""


class ControllerError(RuntimeError):
    """A problem the user fixes before the controllers can start (one line: cause and fix)."""


@dataclass(frozen=True)
class Controller:
    """One controller manager the sandbox runs."""

    name: str
    """Program (``toolchain`` binary) and process name in ``pids.json``."""
    chart: str
    """Chart archive its CRDs and webhook configurations come from."""
    namespace: str
    """The namespace its chart installs into (its webhooks' namespace selectors leave it out)."""


CONTROLLERS: tuple[Controller, ...] = (
    Controller("kueue", f"kueue-{toolchain.KUEUE_VERSION.lstrip('v')}.tgz", KUEUE_NAMESPACE),
    Controller("jobset", f"jobset-{toolchain.JOBSET_VERSION.lstrip('v')}.tgz", JOBSET_NAMESPACE),
)
NAMES = tuple(c.name for c in CONTROLLERS)

REPO = Path(__file__).resolve().parents[2]

# kwok's default pod stages make every pod a Job owns succeed as soon as it runs, so a JobSet would finish at
# once and nothing would hold quota. With the controllers, kwok gets these two stages instead (kwok's Stage API,
# https://kwok.sigs.k8s.io/docs/user/stages-configuration/): a bound pod becomes Running and Ready and stays so,
# as a training process does, until it is deleted; a deleted pod goes away.
KWOK_POD_STAGES = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: gpuplane-pod-running
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - {key: .status.podIP, operator: DoesNotExist}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: Ready, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: ContainersReady, status: "True", lastTransitionTime: {{ $now | Quote }}}
      containerStatuses:
      {{ range .spec.containers }}
      - {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, restartCount: 0, started: true,
         state: {running: {startedAt: {{ $now | Quote }}}}}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, restartCount: 0,
         state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: gpuplane-pod-delete
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: Exists}
  next:
    finalizers: {empty: true}
    delete: true
"""


def charts_dir() -> Path | None:
    """``$GPUPLANE_CHARTS_DIR``, else the first ``shared/charts`` beside the clone or above it."""
    if os.environ.get("GPUPLANE_CHARTS_DIR"):
        return Path(os.environ["GPUPLANE_CHARTS_DIR"]).expanduser()
    for parent in REPO.parents:
        if (parent / "shared" / "charts").is_dir():
            return parent / "shared" / "charts"
    return None


# -- pure: configuration and command lines ---------------------------------------------------------


def cert_dir(layout: Any) -> Path:
    """The webhook serving certificate (``tls.crt``/``tls.key``) both managers use."""
    return Path(layout.path("pki", "webhooks"))


def kueue_config(layout: Any) -> dict[str, Any]:
    """gpuplane's Kueue configuration (what ``SpotTrainingCluster`` installs) with the sandbox's addresses."""
    from components.training.kueue import kueue_values

    config = yaml.safe_load(kueue_values()["managerConfig"]["controllerManagerConfigYaml"])
    ports = layout.ports
    config.update(
        namespace=KUEUE_NAMESPACE,
        health={"healthProbeBindAddress": f"{HOST}:{ports['kueue']}"},  # /readyz, /healthz
        metrics={"bindAddress": "0"},
        webhook={"host": HOST, "port": ports["kueue-webhook"], "certDir": str(cert_dir(layout))},
        leaderElection={"leaderElect": False},
        internalCertManagement={"enable": False},
        # Its on-demand visibility API server reads certificates from the fixed path /visibility.
        featureGates={**config.get("featureGates", {}), "VisibilityOnDemand": False},
    )
    # A MultiKueue manager needs its own sections (``multiKueue.dispatcherName``): a mapping in
    # <sandbox>/kueue-overrides.yaml, written before ``up``, replaces top-level keys (featureGates merge).
    overrides = Path(layout.path("kueue-overrides.yaml"))
    if overrides.is_file():
        extra = yaml.safe_load(overrides.read_text()) or {}
        if not isinstance(extra, dict):
            raise ControllerError(f"{overrides} is not a YAML mapping; write top-level Kueue Configuration keys, e.g. multiKueue: {{dispatcherName: ...}}")
        config.update({k: v for k, v in extra.items() if k != "featureGates"})
        config["featureGates"] = {**config["featureGates"], **(extra.get("featureGates") or {})}
    return config


def jobset_config(layout: Any) -> dict[str, Any]:
    """JobSet's configuration (config.jobset.x-k8s.io/v1alpha1) for the sandbox."""
    ports = layout.ports
    return {
        "apiVersion": "config.jobset.x-k8s.io/v1alpha1",
        "kind": "Configuration",
        "health": {"healthProbeBindAddress": f"{HOST}:{ports['jobset']}"},  # /readyz, /healthz
        "metrics": {"bindAddress": "0", "certDir": str(cert_dir(layout))},
        "webhook": {"host": HOST, "port": ports["jobset-webhook"], "certDir": str(cert_dir(layout))},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
    }


def commands(layout: Any, bindir: Path, euid: int | None = None) -> dict[str, list[str]]:
    """Each manager's command line (pure; ``euid`` decides whether Kueue's namespace needs a user namespace)."""
    kc = f"--kubeconfig={layout.kubeconfig}"
    # A private mount namespace whose /etc is the sandbox's kueue-etc/ (see the module docstring).
    unshare = unshare_prefix(euid)
    return {
        "kueue": [*unshare, "/bin/sh", "-c", 'mount --bind "$0" /etc && exec "$@"', str(layout.path("kueue-etc")),
                  str(bindir / "kueue"), f"--config={layout.path('kueue.yaml')}", kc, "--zap-log-level=info"],
        "jobset": [str(bindir / "jobset"), f"--config={layout.path('jobset.yaml')}", kc, "--zap-devel=false",
                   "--zap-log-level=info"],
    }


def unshare_prefix(euid: int | None = None) -> list[str]:
    """``unshare`` for a private mount namespace (and a user namespace mapping the user to root when not root)."""
    euid = os.geteuid() if euid is None else euid
    return ["unshare", "--mount", "--propagation", "private"] + ([] if euid == 0 else ["--user", "--map-root-user"])


def executable(name: str, bindir: Path) -> str:
    """What ``/proc/<pid>/cmdline`` starts with once the manager runs (Kueue's wrapper execs it)."""
    return str(bindir / name)


# -- pure: the charts' objects, rewired to loopback ------------------------------------------------


def _url(port: int, path: str | None) -> str:
    return f"https://{HOST}:{port}{path or ''}"


def loopback_webhooks(obj: dict[str, Any], port: int, ca_pem: bytes) -> dict[str, Any]:
    """A chart's Mutating/ValidatingWebhookConfiguration with each ``clientConfig.service`` replaced by a URL on
    ``127.0.0.1:port`` (same path) and the sandbox CA; rules, selectors and policies unchanged."""
    out = copy.deepcopy(obj)
    out["metadata"] = {"name": obj["metadata"]["name"], "labels": {"app.kubernetes.io/managed-by": "gpuplane-sandbox"}}
    bundle = base64.b64encode(ca_pem).decode()
    for hook in out.get("webhooks", []):
        service = hook["clientConfig"].get("service") or {}
        hook["clientConfig"] = {"url": _url(port, service.get("path")), "caBundle": bundle}
    return out


def loopback_crd(obj: dict[str, Any], port: int, ca_pem: bytes) -> dict[str, Any]:
    """A chart's CRD; a conversion webhook's service becomes a URL on ``127.0.0.1:port`` with the sandbox CA."""
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    out["metadata"] = {"name": meta["name"], "labels": {"app.kubernetes.io/managed-by": "gpuplane-sandbox"},
                       "annotations": {k: v for k, v in (meta.get("annotations") or {}).items()
                                       if not k.startswith("cert-manager.io/")}}
    conversion = out["spec"].get("conversion") or {}
    if conversion.get("strategy") == "Webhook":
        service = conversion["webhook"]["clientConfig"].get("service") or {}
        conversion["webhook"]["clientConfig"] = {"url": _url(port, service.get("path")),
                                                 "caBundle": base64.b64encode(ca_pem).decode()}
    return out


def render_chart(helm: Path, archive: Path, namespace: str) -> list[dict[str, Any]]:
    """``helm template`` of a chart archive with its default values (CRDs included)."""
    release = archive.name.rsplit("-", 1)[0]
    proc = subprocess.run([str(helm), "template", release, str(archive), "--namespace", namespace, "--include-crds"],
                          capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise ControllerError(f"`helm template {archive}` failed: {proc.stderr.strip().splitlines()[-1:]}")
    return [d for d in yaml.safe_load_all(proc.stdout) if isinstance(d, dict)]


def sandbox_objects(layout: Any, bindir: Path, charts: Path, ca_pem: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(CRDs, webhook configurations) of every controller, rewired to loopback."""
    crds: list[dict[str, Any]] = []
    hooks: list[dict[str, Any]] = []
    for c in CONTROLLERS:
        port = layout.ports[f"{c.name}-webhook"]
        for doc in render_chart(bindir / "helm", charts / c.chart, c.namespace):
            if doc.get("kind") == "CustomResourceDefinition":
                crds.append(loopback_crd(doc, port, ca_pem))
            elif doc.get("kind") in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
                hooks.append(loopback_webhooks(doc, port, ca_pem))
    return crds, hooks


# -- checks and start ----------------------------------------------------------------------------


def missing(bindir: Path) -> str | None:
    """Why the controllers cannot start (one line with the fix), or None."""
    gone = toolchain.missing([*NAMES, "helm"], bindir)
    if gone:
        return (f"{', '.join(gone)} not built (looked in {bindir}); run `make engine` "
                f"(or `python -m gpuplane.sandbox.toolchain {' '.join(gone)}`)")
    charts = charts_dir()
    absent = [c.chart for c in CONTROLLERS if charts is None or not (charts / c.chart).is_file()]
    if absent:
        return (f"chart archive(s) {', '.join(absent)} not found (looked in {charts or 'no shared/charts folder'}); "
                "put them in a folder and set GPUPLANE_CHARTS_DIR to it")
    try:
        probe = subprocess.run([*unshare_prefix(), "true"], capture_output=True, text=True, timeout=10, check=False)
    except FileNotFoundError:
        return ("`unshare` (util-linux) is not on PATH: Kueue runs in a private mount namespace for its fixed "
                f"certificate path {KUEUE_METRICS_CERT_DIR}; install util-linux")
    if probe.returncode != 0:
        return (f"`unshare` cannot make a private mount namespace here ({probe.stderr.strip() or probe.returncode}); "
                f"Kueue needs one for its fixed certificate path {KUEUE_METRICS_CERT_DIR}: allow unprivileged user "
                "namespaces (sysctl kernel.unprivileged_userns_clone=1, kernel.apparmor_restrict_unprivileged_userns=0) "
                "or run the sandbox as root")
    return None


def prepare(layout: Any) -> None:
    """Serving certificate, Kueue's private /etc and both configuration files (idempotent)."""
    from gpuplane.sandbox.certs import write_serving_cert

    crt, key = write_serving_cert(cert_dir(layout), Path(layout.path("pki")))
    certs = Path(layout.path("kueue-etc")) / KUEUE_METRICS_CERT_DIR.removeprefix("/etc/")
    certs.mkdir(parents=True, exist_ok=True)
    for src, dst in ((crt, "tls.crt"), (key, "tls.key")):
        (certs / dst).write_bytes(src.read_bytes())
        (certs / dst).chmod(0o600)
    Path(layout.path("kueue.yaml")).write_text(yaml.safe_dump(kueue_config(layout), sort_keys=False))
    Path(layout.path("jobset.yaml")).write_text(yaml.safe_dump(jobset_config(layout), sort_keys=False))


Api = Callable[..., tuple[int, Any]]
"""``cluster.api``: one request to the sandbox's API server (passed in: this module does not import cluster.py)."""


def server_side_apply(api: Api, layout: Any, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """Server-side apply of ``body`` under ``path`` (created or brought up to date)."""
    return api(layout, "PATCH", f"{path}/{body['metadata']['name']}?fieldManager=gpuplane-sandbox&force=true", body,
               timeout=60, content_type="application/apply-patch+yaml")


_CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
_HOOKS = {"MutatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
          "ValidatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"}

MANAGED_BY = "app.kubernetes.io/managed-by=gpuplane-sandbox"


def remove_webhooks(layout: Any, api: Api) -> None:
    """Delete the webhook configurations an earlier ``up --controllers`` of this state folder wrote: started
    without the controllers, their ``failurePolicy: Fail`` webhooks would refuse every pod and JobSet."""
    for path in _HOOKS.values():
        api(layout, "DELETE", f"{path}?labelSelector={MANAGED_BY.replace('=', '%3D')}", timeout=15)


PROBE_CLUSTER_QUEUE: dict[str, Any] = {
    "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "gpuplane-sandbox-probe"},
    "spec": {"resourceGroups": []},
}
PROBE_JOBSET: dict[str, Any] = {
    "apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet",
    "metadata": {"name": "gpuplane-sandbox-probe", "namespace": "default",
                 "labels": {"kueue.x-k8s.io/queue-name": "gpuplane-sandbox-probe"}},
    "spec": {"replicatedJobs": [{"name": "w", "replicas": 1, "template": {"spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}]},
}


def webhooks_answer(layout: Any, api: Api) -> str | None:
    """None when dry-run creates show both managers' webhooks acted; else what is missing."""
    code, cq = api(layout, "POST", "/apis/kueue.x-k8s.io/v1beta2/clusterqueues?dryRun=All", PROBE_CLUSTER_QUEUE, timeout=10)
    if code != 201 or "kueue.x-k8s.io/resource-in-use" not in (cq.get("metadata", {}).get("finalizers") or []):
        return f"a dry-run ClusterQueue was not defaulted by Kueue's webhook ({code}: {str(cq)[:200]})"
    code, js = api(layout, "POST", "/apis/jobset.x-k8s.io/v1alpha2/namespaces/default/jobsets?dryRun=All", PROBE_JOBSET, timeout=10)
    spec = js.get("spec", {}) if isinstance(js, dict) else {}
    if code != 201 or spec.get("suspend") is not True or "startupPolicy" not in spec:
        return f"a dry-run JobSet was not defaulted by Kueue's and JobSet's webhooks ({code}: {str(js)[:200]})"
    return None


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=2) as r:
        return bool(r.status == 200)


def start(
    layout: Any,
    bindir: Path,
    api: Api,
    launch: Callable[[str, list[str], str], None],
    wait: Callable[[str, Callable[[], bool]], None],
    step: Callable[[str], None],
) -> None:
    """Install the CRDs, start both managers (``launch(name, argv, exe)``), write the webhook configurations
    and wait until the webhooks answer. ``wait(what, check)`` raises when a started process dies or time runs
    out; a problem of this module's own is a ``ControllerError``."""
    why = missing(bindir)
    if why:
        raise ControllerError(why)
    charts = charts_dir()
    if charts is None:  # missing() found them a moment ago
        raise ControllerError("the chart archives' folder went away; set GPUPLANE_CHARTS_DIR")
    prepare(layout)
    ca = Path(layout.path("pki", "ca.crt")).read_bytes()
    crds, hooks = sandbox_objects(layout, bindir, charts, ca)
    for crd in crds:
        code, body = server_side_apply(api, layout, _CRDS, crd)
        if code not in (200, 201):
            raise ControllerError(f"installing CRD {crd['metadata']['name']} failed ({code}): {str(body)[:300]}")

    def established() -> bool:
        for crd in crds:
            code, body = api(layout, "GET", f"{_CRDS}/{crd['metadata']['name']}")
            conds = ((body.get("status") or {}).get("conditions") or []) if code == 200 and isinstance(body, dict) else []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                return False
        return True

    wait("the controllers' CRDs Established", established)
    step(f"{len(crds)} CRDs from {', '.join(c.chart for c in CONTROLLERS)} established")
    argv = commands(layout, bindir)
    for c in CONTROLLERS:
        launch(c.name, argv[c.name], executable(c.name, bindir))
    for c in CONTROLLERS:
        port = int(layout.ports[c.name])

        def ready(port: int = port) -> bool:
            return _ready(port)

        wait(f"{c.name} /readyz on {HOST}:{port}", ready)
        step(f"{c.name} ready (webhooks on {HOST}:{layout.ports[c.name + '-webhook']})")
    for hook in hooks:
        code, body = server_side_apply(api, layout, _HOOKS[hook["kind"]], hook)
        if code not in (200, 201):
            raise ControllerError(f"writing {hook['kind']} {hook['metadata']['name']} failed ({code}): {str(body)[:300]}")
    last: list[str | None] = [None]

    def answered() -> bool:
        last[0] = webhooks_answer(layout, api)
        return last[0] is None

    try:
        wait("the controllers' webhooks", answered)
    except Exception as e:
        if "timed out" not in str(e):
            raise
        raise ControllerError(f"{e}: {last[0]}") from None
    step("Kueue and JobSet webhooks answer")

