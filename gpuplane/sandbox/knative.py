"""Knative Serving's controller in the sandbox, without its networking layer (``--knative``).

Contract:

- ``manifests()`` lists the upstream files the controller needs, read from the Go module cache of the
  pinned release (``knative.dev/serving`` v0.48.2 = Knative Serving v1.21.2, the newest that runs on the
  sandbox's Kubernetes 1.33 and the one gpuplane installs there; and the
  ``knative.dev/networking`` / ``knative.dev/caching`` versions its go.mod requires; the toolchain build put
  them there): the CRDs (Service, Configuration, Revision, Route,
  DomainMapping, PodAutoscaler, Metric; KIngress, ServerlessService, KCertificate, ClusterDomainClaim; Image)
  and the ``config-*`` ConfigMaps, applied in ``NAMESPACE``. Nothing is copied into the clone and nothing is
  fetched at run time.
- ``config_overrides()`` is what the sandbox changes in those ConfigMaps, and why: the queue-proxy image is a
  ``ko://`` reference in the source (the release build replaces it); tag-to-digest resolution is skipped for
  every registry because no registry is reachable from the sandbox (a real cluster resolves tags).
- ``start()`` applies the manifests and runs ``knative-serving-controller`` as a sandbox process (its log and
  pid beside the others, so ``gpuplane sandbox down`` stops it), with ``SYSTEM_NAMESPACE`` = ``NAMESPACE`` and
  the sandbox's admin kubeconfig. Upstream binds its health probes on ``:8080`` and profiling on ``:8008`` on
  every interface, with no host setting (knative.dev/pkg injection/sharedmain/main.go,
  injection/health_check.go, observability/runtime/pprof.go), so as root it runs in a network namespace of
  its own behind ``gpuplane.sandbox.netns`` (it reaches the kube-apiserver; nothing of it is reachable from
  outside, and two sandboxes never clash on 8080). Ready = its reconcilers have taken their leader leases
  in ``NAMESPACE``. Without root it runs directly (8080 must be free) and ``start`` says it is not
  loopback-only.
- What does not run: the webhook (its certificate controller rewrites webhook configurations to a Service
  reference that a sandbox without kube-proxy cannot route), the autoscaler and activator (they need pod
  IPs that answer), and any networking layer (Kourier/Istio/Contour): a Route never becomes Ready. The
  controller still reconciles Service -> Configuration -> Revision -> Deployment + PodAutoscaler, which is
  what carries the scale bounds.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpuplane.sandbox import cluster, toolchain

NAMESPACE = "knative-serving-sandbox"
"""The controller's own namespace (``SYSTEM_NAMESPACE``: its ConfigMaps and leases). Not ``knative-serving``, which
a stack installing Knative through the operator creates for its ``KnativeServing`` resource."""
PROCESS = "knative-serving-controller"
HEALTH_PORT = 8080
"""Fixed upstream (knative.dev/pkg ``injection.HealthCheckDefaultPort``), on every interface."""
LEASES = ("revision", "configuration", "service")
"""Reconcilers whose leader lease (``controller.knative.dev.serving.pkg.reconciler.<name>.reconciler.00-of-01``)
means the controller is reconciling."""
RECIPE = "knative-serving"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
QUEUE_IMAGE = "gcr.io/knative-releases/knative.dev/serving/cmd/queue:v1.23.0"
SKIP_TAG_RESOLVING = ("kind.local,ko.local,dev.local,index.docker.io,docker.io,ghcr.io,gcr.io,registry.k8s.io,"
                      "public.ecr.aws,nvcr.io,quay.io,us-docker.pkg.dev,europe-docker.pkg.dev")

_CRDS = {
    "knative.dev/serving": [f"config/core/300-resources/{n}.yaml" for n in (
        "service", "configuration", "revision", "route", "domain-mapping", "podautoscaler", "metric")],
    "knative.dev/networking": ["config/ingress.yaml", "config/serverlessservice.yaml", "config/certificate.yaml",
                               "config/domain-claim.yaml"],
    "knative.dev/caching": ["config/image.yaml"],
}
_CONFIGMAPS = {
    "knative.dev/serving": [f"config/core/configmaps/{n}.yaml" for n in (
        "autoscaler", "defaults", "deployment", "domain", "features", "gc", "leader-election", "logging",
        "observability", "tracing", "certmanager")],
    "knative.dev/networking": ["config/config-network.yaml"],
}


def config_overrides() -> dict[str, dict[str, str]]:
    """ConfigMap data the sandbox sets on top of upstream's (see the module docstring for why)."""
    return {"config-deployment": {"queue-sidecar-image": QUEUE_IMAGE,
                                  "registries-skipping-tag-resolving": SKIP_TAG_RESOLVING}}


def module_dirs(recipes: Path = toolchain.RECIPES) -> dict[str, Path]:
    """Where the pinned modules' sources are in the Go module cache (``go list -m`` in the recipe)."""
    go = toolchain.go_command()
    mods = sorted({*_CRDS, *_CONFIGMAPS})
    proc = subprocess.run([go, "list", "-m", "-f", "{{.Path}} {{.Dir}}", *mods], cwd=recipes / RECIPE,
                          capture_output=True, text=True, check=False)
    dirs = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    missing = [m for m in mods if not dirs.get(m) or not Path(dirs[m]).is_dir()]
    if proc.returncode != 0 or missing:
        raise cluster.SandboxError(
            f"the Knative sources ({', '.join(missing) or 'go list failed'}) are not in the Go module cache: "
            f"{proc.stderr.strip()[:200]}; run `python -m gpuplane.sandbox.toolchain {PROCESS}` first")
    return {m: Path(d) for m, d in dirs.items()}


def manifests(dirs: dict[str, Path]) -> list[Path]:
    """CRDs, then ConfigMaps, in apply order."""
    return [dirs[mod] / rel for table in (_CRDS, _CONFIGMAPS) for mod, rels in table.items() for rel in rels]


def documents(dirs: dict[str, Path]) -> list[dict[str, Any]]:
    """The objects to apply: ``NAMESPACE``, the CRDs, the ConfigMaps moved into ``NAMESPACE`` with
    ``config_overrides()`` on top."""
    import yaml

    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
    overrides = config_overrides()
    for f in manifests(dirs):
        for doc in yaml.safe_load_all(f.read_text()):
            if not doc:
                continue
            if doc["kind"] == "ConfigMap":
                doc["metadata"]["namespace"] = NAMESPACE
                doc["data"] = {**(doc.get("data") or {}), **overrides.get(doc["metadata"]["name"], {})}
            docs.append(doc)
    return docs


def command(layout: cluster.Layout, bindir: Path, jail: bool) -> list[str]:
    """The command line ``start`` runs: behind the network-namespace relay when ``jail``."""
    from gpuplane.sandbox import netns

    program = [str(bindir / PROCESS)]
    return netns.relay_argv(program, inward=[layout.port], outward=[]) if jail else program


def environment(layout: cluster.Layout) -> dict[str, str]:
    return {**os.environ, "SYSTEM_NAMESPACE": NAMESPACE, "KUBECONFIG": str(layout.kubeconfig),
            "POD_NAME": f"{PROCESS}-{layout.name}", "METRICS_DOMAIN": "knative.dev/serving"}


def _collection(doc: dict[str, Any]) -> str:
    """The API path of the collection ``doc`` belongs to (the kinds ``documents`` yields)."""
    kind = doc["kind"]
    if kind == "Namespace":
        return "/api/v1/namespaces"
    if kind == "CustomResourceDefinition":
        return CRDS
    if kind == "ConfigMap":
        return f"/api/v1/namespaces/{NAMESPACE}/configmaps"
    raise cluster.SandboxError(f"unexpected {kind} among Knative's manifests; the sandbox applies only CRDs and ConfigMaps")


def apply_manifests(layout: cluster.Layout, dirs: dict[str, Path], timeout_s: float = 60.0) -> None:
    """Server-side apply of ``documents(dirs)`` (the sandbox controllers' helper), then wait for the CRDs."""
    from gpuplane.sandbox.controllers import server_side_apply

    docs = documents(dirs)
    for doc in docs:
        code, body = server_side_apply(cluster.api, layout, _collection(doc), doc)
        if code not in (200, 201):
            raise cluster.SandboxError(f"applying {doc['kind']} {doc['metadata']['name']} failed ({code}): {str(body)[:300]}")
    crds = [d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"]

    def established() -> bool:
        for name in crds:
            code, body = cluster.api(layout, "GET", f"{CRDS}/{name}")
            conds = body.get("status", {}).get("conditions", []) if code == 200 and isinstance(body, dict) else []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                return False
        return True

    cluster._wait("Knative's CRDs Established", established, timeout_s, lambda: None)


def leases_held(layout: cluster.Layout) -> bool:
    code, body = cluster.api(layout, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases")
    names = {i["metadata"]["name"] for i in body.get("items", [])} if code == 200 and isinstance(body, dict) else set()
    return all(f"controller.knative.dev.serving.pkg.reconciler.{n}.reconciler.00-of-01" in names for n in LEASES)


def start(layout: cluster.Layout, bindir: Path, echo: Callable[[str], None] = print, timeout_s: float = 90.0) -> float:
    """Apply the manifests and start the controller on a running sandbox; returns seconds taken.
    Raises ``SandboxError`` (one line, with the fix) and leaves the controller stopped on failure."""
    from gpuplane.sandbox import netns

    begin = time.monotonic()
    if not toolchain.is_built(PROCESS, bindir):
        raise cluster.SandboxError(f"{PROCESS} is not built; run `python -m gpuplane.sandbox.toolchain {PROCESS}`")
    jail = netns.available()
    if not jail and not cluster.port_free(HEALTH_PORT, "0.0.0.0"):
        raise cluster.SandboxError(f"port {HEALTH_PORT} is in use; Knative's controller binds it (fixed upstream) when it "
                                   "cannot run in a network namespace of its own (that needs root): stop what holds it")
    apply_manifests(layout, module_dirs(), timeout_s)
    pids: dict[str, dict[str, Any]] = cluster._read_pids(layout)
    log = layout.path("logs", f"{PROCESS}.log").open("ab")
    argv = command(layout, bindir, jail)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=layout.dir, env=environment(layout))
    log.close()
    pids[PROCESS] = {"pid": proc.pid, "exe": argv[0], "port": None}
    cluster._write_pids(layout, pids)

    def dead() -> str | None:
        if proc.poll() is not None:
            return (f"{PROCESS} exited while starting (code {proc.returncode}): "
                    f"{cluster._last_log_line(layout, PROCESS)} (log: {layout.path('logs', PROCESS + '.log')})")
        return None

    try:
        cluster._wait(f"{PROCESS}'s leader leases in {NAMESPACE}", lambda: leases_held(layout), timeout_s, dead)
    except BaseException:
        cluster._stop({PROCESS: pids[PROCESS]})
        pids.pop(PROCESS, None)
        cluster._write_pids(layout, pids)
        raise
    seconds = time.monotonic() - begin
    echo(f"  Knative Serving {toolchain.KNATIVE_SERVING_VERSION} controller reconciling ({seconds:.1f} s)"
         + ("" if jail else f"; NOT loopback-only: without root it listens on :{HEALTH_PORT} and :8008 on every interface"))
    return seconds
