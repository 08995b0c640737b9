"""Pod policies: the Pod Security Standards on every pod anywhere, Helm releases included, and
no static cloud keys reaching a container.

- ``no-privileged-pods``: every Kubernetes resource (any kind, custom resources included) and
  every Helm release's rendered chart meets the Pod Security Standards at ``level``
  (``baseline`` by default, ``restricted`` as an option), outside ``exemptNamespaces``
  (policies/podsecurity.py walks the object; nothing is found by kind). A release is named as
  the resource in violation, with the rendered object that breaks the standard.
- ``helm-release-rendered`` (advisory unless the config says mandatory): every Helm release
  outside ``exemptNamespaces`` / ``exemptCharts`` could be rendered (local chart archive and a
  helm binary, policies/helm.py). One that could not is reported as unchecked, never passed
  silently.
- ``workload-identity`` (stack): no long-lived cloud keys — ``aws.iam.AccessKey``,
  ``gcp.serviceaccount.Key``, static key variables or key-shaped values in a container's
  ``env`` or in a Helm release's values, and no container reaching a Kubernetes Secret or
  ConfigMap that holds cloud keys by ``env`` ``valueFrom``, ``envFrom`` or a mounted (or
  projected) volume. Use IRSA / EKS Pod
  Identity or GKE Workload Identity.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from pulumi_policy import EnforcementLevel

from policies import helm
from policies.framework import Config, ResourceRule, StackRule
from policies.podsecurity import LEVELS, as_list, containers_of, is_pod_spec, pss_findings, walk
from policies.resources import ResourceView, dig, label, namespace_of


def _exempt_namespace(ns: Any, cfg: Config) -> bool:
    return isinstance(ns, str) and ns in list(cfg.get("exemptNamespaces") or [])


# The node agents gpuplane's own components install, pinned to the versions they pin: they need
# the node (device plugins, DCGM, the termination handler, node-exporter) and break the baseline
# standard by design. Another version of one of these charts is rendered and checked.
NODE_AGENT_CHARTS = [
    "nvidia-device-plugin@0.17.4",
    "dcgm-exporter@4.4.1",
    "aws-efa-k8s-device-plugin@v0.5.7",
    "aws-node-termination-handler@0.27.6",
    "kube-prometheus-stack@88.5.3",
]


def _release_ns_and_chart(view: ResourceView) -> tuple[str, str]:
    _, chart, _, ns, _ = helm.release_facts(view)
    return ns, chart.rstrip("/").rsplit("/", 1)[-1]


def _exempt_chart(view: ResourceView, cfg: Config) -> bool:
    """The release's chart is listed in ``exemptCharts`` (``name`` for any version, ``name@version``)."""
    _, chart, version, _, _ = helm.release_facts(view)
    name = chart.rstrip("/").rsplit("/", 1)[-1]
    listed = [str(c) for c in cfg.get("exemptCharts") or []]
    return name in listed or f"{name}@{version}" in listed


def check_pod_security(view: ResourceView, cfg: Config) -> list[str]:
    if not view.type.startswith("kubernetes:"):
        return []
    level = str(cfg.get("level", "baseline"))
    if helm.is_release(view):
        ns, chart = _release_ns_and_chart(view)
        if _exempt_namespace(ns, cfg) or _exempt_chart(view, cfg):
            return []
        rendered = helm.render(view)
        out: list[str] = []
        for doc in rendered.manifests:
            doc_ns = dig(doc, "metadata.namespace") or ns
            if _exempt_namespace(doc_ns, cfg) or doc.get("kind") in ("Secret", "ConfigMap"):
                continue  # text, not pods (a chart's dashboards are megabytes of JSON)
            what = f"{doc.get('kind')} '{dig(doc, 'metadata.name')}'"
            out += [f"{label(view)} (chart {chart} renders {what}): {m}" for _, m in pss_findings(doc, level, cfg)]
        return list(dict.fromkeys(out))
    if _exempt_namespace(namespace_of(view), cfg) or view.type in (SECRET, CONFIG_MAP):
        return []  # a ConfigMap / Secret holds text, not a pod: its data is not a pod spec
    return list(dict.fromkeys(f"{label(view)}: {m}" for _, m in pss_findings(view.props, level, cfg)))


NO_PRIVILEGED_PODS = ResourceRule(
    name="no-privileged-pods",
    description="Checks whether every pod spec in any Kubernetes resource or rendered Helm release meets the Pod Security Standards (baseline, or restricted).",
    check=check_pod_security,
    schema={
        "level": {
            "type": "string",
            "enum": list(LEVELS),
            "default": "baseline",
            "description": "Pod Security Standards level: baseline (default) or restricted.",
        },
        "exemptNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Namespaces whose pods are not checked (none by default: a privileged pod in kube-system is still a privileged pod).",
        },
        "allowedHostPaths": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Host path prefixes that may be mounted ('..' is resolved first).",
        },
        "allowedHostPorts": {
            "type": "array",
            "items": {"type": "integer"},
            "default": [],
            "description": "Host ports that may be used.",
        },
        "exemptCharts": {
            "type": "array",
            "items": {"type": "string"},
            "default": NODE_AGENT_CHARTS,
            "description": "Helm charts whose rendered pods may break the standard: 'name@version' (that version) or 'name' (any). Default: the node agents gpuplane's components pin.",
        },
    },
)


def check_release_rendered(view: ResourceView, cfg: Config) -> list[str]:
    if not helm.is_release(view):
        return []
    ns, chart = _release_ns_and_chart(view)
    if _exempt_namespace(ns, cfg) or _exempt_chart(view, cfg):
        return []
    problem = helm.render(view).problem
    if problem is None:
        return []
    return [
        f"{label(view)} (chart {chart or 'unknown'}) was not checked for pod security: {problem}. Put helm on PATH and the chart archive in shared/charts, or list the chart in exemptCharts."
    ]


HELM_RELEASE_RENDERED = ResourceRule(
    name="helm-release-rendered",
    description="Checks whether every Helm release's chart could be rendered, so no-privileged-pods saw its pods.",
    check=check_release_rendered,
    # Advisory by default: a project without helm (or whose charts come from a registry) sees
    # every unchecked release listed on each plan; a stack that must not deploy unchecked pods
    # sets it mandatory in its policy config.
    enforcement=EnforcementLevel.ADVISORY,
    schema={
        "exemptNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Namespaces whose releases need no render (as no-privileged-pods' exemptNamespaces).",
        },
        "exemptCharts": {
            "type": "array",
            "items": {"type": "string"},
            "default": NODE_AGENT_CHARTS,
            "description": "Charts that need no render (as no-privileged-pods' exemptCharts).",
        },
    },
)


# -- static keys -------------------------------------------------------------------------------

STATIC_KEY_NAMES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_CREDENTIALS",
        "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
    }
)
_KEY_VALUE = re.compile(
    r"(?:AKIA|ASIA)[0-9A-Z]{16}|\"private_key\"\s*:|aws_secret_access_key\s*=|\"type\"\s*:\s*\"service_account\""
)
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def _decoded(value: Any, b64: bool) -> str:
    if not isinstance(value, str):
        return ""
    if not b64:
        return value
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return value


def _holds_keys(view: ResourceView) -> list[str]:
    """Keys of a Secret / ConfigMap that hold cloud credentials."""
    return _keys_of(view.props, view.type == SECRET)


def _keys_of(props: Any, secret: bool) -> list[str]:
    found: list[str] = []
    for field, b64 in (("data", secret), ("stringData", False), ("binaryData", True)):
        data = props.get(field) if isinstance(props, dict) else None
        if not isinstance(data, dict):
            continue
        for k, v in data.items():
            if str(k).upper() in STATIC_KEY_NAMES or _KEY_VALUE.search(_decoded(v, b64)):
                found.append(str(k))
    return found


def _refs(spec: dict[str, Any], cpath: str, c: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, name, how) of every Secret / ConfigMap one container reaches."""
    out: list[tuple[str, str, str]] = []
    for e in as_list(c.get("env")):
        if isinstance(e, dict):
            for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                n = dig(e, f"valueFrom.{key}.name")
                if isinstance(n, str):
                    out.append((kind, n, f"env {e.get('name')}"))
    for e in as_list(c.get("envFrom")):
        if isinstance(e, dict):
            for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                n = dig(e, f"{key}.name")
                if isinstance(n, str):
                    out.append((kind, n, "envFrom"))
    mounted = {m.get("name") for m in as_list(c.get("volumeMounts")) if isinstance(m, dict)}
    for vol in as_list(spec.get("volumes")):
        if not isinstance(vol, dict) or vol.get("name") not in mounted:
            continue
        if isinstance(dig(vol, "secret.secretName"), str):
            out.append(("Secret", dig(vol, "secret.secretName"), f"volume {vol.get('name')}"))
        if isinstance(dig(vol, "configMap.name"), str):
            out.append(("ConfigMap", dig(vol, "configMap.name"), f"volume {vol.get('name')}"))
        for src in as_list(dig(vol, "projected.sources")):
            for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                if isinstance(dig(src, f"{key}.name"), str):
                    out.append((kind, dig(src, f"{key}.name"), f"volume {vol.get('name')}"))
    return out


def _keys_in_values(obj: Any, path: str) -> list[str]:
    """Paths in Helm values that hold cloud keys (a key-named entry with a value, or a key-shaped string)."""
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if str(k).upper() in STATIC_KEY_NAMES and isinstance(v, str) and v:
                out.append(f"{path}.{k}")
            else:
                out += _keys_in_values(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            if isinstance(v, dict) and str(v.get("name", "")).upper() in STATIC_KEY_NAMES and v.get("value"):
                out.append(f"{path}[{i}]")
            else:
                out += _keys_in_values(v, f"{path}[{i}]")
    elif isinstance(obj, str) and _KEY_VALUE.search(obj):
        out.append(path)
    return out


def _pod_key_findings(obj: Any, ns: str, keyed: dict[tuple[str, str, str], list[str]]) -> list[str]:
    """What-is-wrong phrases for every container in ``obj`` that gets cloud keys (env, or a keyed Secret / ConfigMap)."""
    out: list[str] = []
    for path, spec in walk(obj):
        if not is_pod_spec(spec):
            continue
        for cpath, c in containers_of(spec, path):
            who = c.get("name") or cpath
            env = [e for e in as_list(c.get("env")) if isinstance(e, dict)]
            bad = [
                str(e.get("name"))
                for e in env
                if str(e.get("name")).upper() in STATIC_KEY_NAMES or _KEY_VALUE.search(str(e.get("value") or ""))
            ]
            if bad:
                out.append(f"passes static cloud credentials to container '{who}' ({', '.join(bad)}).")
            for kind, name, how in _refs(spec, cpath, c):
                held = keyed.get((kind, ns, name))
                if held:
                    out.append(f"gives container '{who}' the cloud keys {held} of {kind} '{name}' ({how}).")
    return out


def check_workload_identity(views: list[ResourceView], cfg: Config) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    keyed: dict[tuple[str, str, str], list[str]] = {}  # (kind, namespace, name) -> keys
    for v in views:
        if v.type in (SECRET, CONFIG_MAP):
            keys = _holds_keys(v)
            name = dig(v.props, "metadata.name") or v.name
            if keys:
                keyed[(v.type.rsplit(":", 1)[-1], namespace_of(v), str(name))] = keys
    fix = "Remove them and use workload identity (IRSA / Pod Identity, GKE Workload Identity)."
    for v in views:
        if v.type == "aws:iam/accessKey:AccessKey":
            out.append(
                (
                    v.urn,
                    f"{label(v)} creates a long-lived IAM access key. Remove it and give the workload an IAM role through IRSA / EKS Pod Identity.",
                )
            )
        elif v.type == "gcp:serviceaccount/key:Key":
            out.append(
                (
                    v.urn,
                    f"{label(v)} creates a service account key. Remove it and bind the Kubernetes service account through GKE Workload Identity.",
                )
            )
        if not v.type.startswith("kubernetes:") or v.type in (SECRET, CONFIG_MAP):
            continue
        if helm.is_release(v):
            found = _keys_in_values(v.props.get("values"), "values")
            if found:
                out.append(
                    (
                        v.urn,
                        f"{label(v)} passes static cloud credentials to its chart ({', '.join(sorted(found))}). {fix}",
                    )
                )
            ns = helm.release_facts(v)[3]
            docs = helm.render(v).manifests  # what its chart renders, when helm could render it
            chart_keyed = dict(keyed)
            for doc in docs:  # the chart's own Secrets / ConfigMaps that hold keys
                if doc.get("kind") in ("Secret", "ConfigMap") and (held := _keys_of(doc, doc.get("kind") == "Secret")):
                    chart_keyed[
                        (str(doc["kind"]), dig(doc, "metadata.namespace") or ns, str(dig(doc, "metadata.name")))
                    ] = held
            for doc in docs:
                if doc.get("kind") in ("Secret", "ConfigMap"):
                    continue
                what = f"(chart renders {doc.get('kind')} '{dig(doc, 'metadata.name')}')"
                doc_ns = dig(doc, "metadata.namespace") or ns
                out += [(v.urn, f"{label(v)} {what} {m} {fix}") for m in _pod_key_findings(doc, doc_ns, chart_keyed)]
            continue
        out += [(v.urn, f"{label(v)} {m} {fix}") for m in _pod_key_findings(v.props, namespace_of(v), keyed)]
    return out


WORKLOAD_IDENTITY = StackRule(
    name="workload-identity",
    description="Checks whether workloads use workload identity instead of static cloud keys (in env, envFrom or mounted Secrets and ConfigMaps).",
    check=check_workload_identity,
)
