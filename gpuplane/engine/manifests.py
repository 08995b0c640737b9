"""The Kubernetes objects a planned stack would send to an API server, as the API server receives them.

Used by the real-engine lane (tests/engine/test_server_dry_run.py) to apply every object of a
reference stack with server-side dry run to ``gpuplane sandbox``, and by anyone who wants the
manifests of a plan:

- ``recorded_objects(resources)``: every ``kubernetes:<group/version>:<Kind>`` resource the
  program registered (core objects and custom resources; not Helm releases, providers, ``*Patch``,
  ``*List`` or the ``yaml``/``kustomize`` helpers), with ``apiVersion``/``kind`` from its type
  token, numbers that are integers turned back into ints (the mock runtime records floats), and
  ``metadata.name`` filled with the resource name where the provider would autoname (the real
  provider appends a random suffix; a dry run does not care).
  The recorder keeps wire names, which for pulumi-kubernetes are the Kubernetes field names.
- ``release_objects(resource, charts_dir)``: a ``helm.sh/v3:Release`` rendered with ``helm template``
  from the chart archive in ``charts_dir`` (``<chart>-<version>.tgz``, with or without a ``v``) and
  the release's values, namespace and name, CRDs included.
- ``pinned_crds()``: a CustomResourceDefinition for every custom resource schema pinned under
  ``gpuplane/schemas/`` (``openAPIV3Schema`` files only): the CRDs no chart archive carries
  (Knative Serving's Service, installed by the operator at run time; Argo Workflows' full CRDs,
  which its chart's hook downloads).
- ``dropped_fields(sent, returned)``: the paths of what was sent and is missing from what the
  API server returned (pruned unknown fields).

Nothing here talks to a cluster; rendering needs the ``helm`` program (``make engine`` builds it).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpuplane.engine.schemas import HELM_RELEASE_TYPE, SCHEMA_ROOT, chart_short_name
from gpuplane.engine.validate import _ints

CORE_GROUP = "core"
_SKIP_GROUPS = frozenset({"helm.sh", "yaml", "kustomize"})
KUBERNETES_VERSION = "1.33.13"
"""The sandbox's Kubernetes (``gpuplane.sandbox.toolchain.KUBERNETES_VERSION``), for ``helm template``."""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1's ``=`` (the "value" tag) is a plain string to Kubernetes (Go's YAML reads it so)."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


@dataclass(frozen=True)
class KubeObject:
    """One object to send, and where it comes from."""

    source: str
    """The URN of the Pulumi resource (a Helm release's URN for the objects it renders)."""
    body: dict[str, Any]

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = (self.body.get("metadata") or {}).get("namespace")
        return str(ns) if ns else None

    def label(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name} ({self.api_version}) from {self.source}"


def api_version_of(type_token: str) -> tuple[str, str] | None:
    """``kubernetes:apps/v1:Deployment`` -> ``("apps/v1", "Deployment")``; None when not an object type."""
    parts = type_token.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    group, _, version = parts[1].rpartition("/")
    kind = parts[2]
    if group in _SKIP_GROUPS or kind.endswith(("List", "Patch")):
        return None
    return (version if group == CORE_GROUP else f"{group}/{version}"), kind


def recorded_objects(resources: Iterable[Any]) -> list[KubeObject]:
    """The objects a program registered through pulumi-kubernetes (see the module docstring)."""
    out = []
    for r in resources:
        gvk = api_version_of(r.type)
        if gvk is None:
            continue
        body = _ints({k: v for k, v in r.inputs.items() if k not in ("apiVersion", "kind")})
        body = {"apiVersion": gvk[0], "kind": gvk[1], **body}
        meta = dict(body.get("metadata") or {})
        meta.setdefault("name", autoname(r.name, r.urn))
        body["metadata"] = meta
        out.append(KubeObject(r.urn, body))
    return out


def autoname(name: str, urn: str) -> str:
    """What pulumi-kubernetes names an object or release given no name: ``<name>-<8 hex>`` (random
    there; a hash of the URN here, so a run is repeatable and the length is the real one)."""
    return f"{name}-{hashlib.sha256(urn.encode()).hexdigest()[:8]}"


def chart_archive(chart: str, version: str, charts_dir: Path) -> Path | None:
    """The archive of ``chart`` (a name, a repo URL, an ``oci://`` reference or an archive's path) at ``version``."""
    if chart.endswith(".tgz") and Path(chart).is_file():
        return Path(chart)
    name = chart_short_name(chart, version)
    bare = version.removeprefix("v")
    for candidate in (f"{name}-{version}.tgz", f"{name}-{bare}.tgz", f"{name}-v{bare}.tgz"):
        if (charts_dir / candidate).is_file():
            return charts_dir / candidate
    return None


def helm_command() -> str:
    """The ``helm`` on PATH, else the toolchain's (``make engine``)."""
    found = shutil.which("helm")
    if found:
        return found
    from gpuplane.sandbox import toolchain

    built = toolchain.bin_dir() / "helm"
    if built.is_file():
        return str(built)
    raise FileNotFoundError("`helm` is not on PATH and not built: run `make engine` (or eval $(gpuplane sandbox env))")


def render_chart(
    archive: Path,
    release: str,
    namespace: str,
    values: dict[str, Any],
    *,
    api_versions: Iterable[str] = (),
    kube_version: str = KUBERNETES_VERSION,
    helm: str | None = None,
) -> list[dict[str, Any]]:
    """``helm template`` of one release (CRDs and hooks included); every rendered object, in order."""
    cmd = [helm or helm_command(), "template", release, str(archive), "--namespace", namespace, "--include-crds",
           "--kube-version", kube_version, "--values", "-"]
    for av in sorted(set(api_versions)):
        cmd += ["--api-versions", av]
    proc = subprocess.run(cmd, input=json.dumps(values), capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"helm template {release} {archive.name} failed: {proc.stderr.strip()}")
    return [d for d in yaml.load_all(proc.stdout, Loader=_Loader) if isinstance(d, dict) and d.get("kind")]


def release_objects(
    resource: Any, charts_dir: Path, *, api_versions: Iterable[str] = (), helm: str | None = None
) -> list[KubeObject]:
    """What a recorded Helm release would apply, rendered from its archive in ``charts_dir``.

    FileNotFoundError naming the archive when the chart is not there."""
    if resource.type != HELM_RELEASE_TYPE:
        raise ValueError(f"{resource.urn} is not a Helm release")
    inputs = resource.inputs
    chart, version = str(inputs.get("chart", "")), str(inputs.get("version", ""))
    archive = chart_archive(chart, version, charts_dir)
    if archive is None:
        raise FileNotFoundError(f"{resource.urn}: no archive of chart {chart} {version} in {charts_dir}")
    namespace = str(inputs.get("namespace") or "default")
    release = str(inputs.get("name") or autoname(resource.name, resource.urn))
    objs = render_chart(archive, release, namespace, _ints(inputs.get("values") or {}), api_versions=api_versions,
                        helm=helm)
    out = []
    for body in objs:
        meta = dict(body.get("metadata") or {})
        if body.get("kind") != "CustomResourceDefinition" and "namespace" not in meta and not _cluster_scoped(body):
            meta["namespace"] = namespace  # helm install puts namespaced objects without one there
        body["metadata"] = meta
        out.append(KubeObject(resource.urn, body))
    return out


_CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "StorageClass", "PriorityClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "APIService", "CSIDriver", "IngressClass",
    "RuntimeClass", "VolumeAttachment", "FlowSchema", "PriorityLevelConfiguration",
})


def _cluster_scoped(body: dict[str, Any]) -> bool:
    return body.get("kind") in _CLUSTER_SCOPED_KINDS


def _plural_from_file(name: str) -> str:
    m = re.match(r"crd-([a-z0-9]+)\.", name)
    if not m:
        raise ValueError(f"unexpected pinned CRD file name {name}")
    return m.group(1)


def pinned_crds(root: Path = SCHEMA_ROOT) -> list[dict[str, Any]]:
    """A CRD for each pinned ``openAPIV3Schema`` under ``gpuplane/schemas/*/index.json`` (namespaced,
    one served and stored version, a status subresource), sorted by name."""
    crds: dict[str, dict[str, Any]] = {}
    for index_file in sorted(root.glob("*/index.json")):
        for key, file in json.loads(index_file.read_text()).get("crds", {}).items():
            data = json.loads((index_file.parent / file).read_text())
            schema = data.get("openAPIV3Schema")
            if not isinstance(schema, dict) or "definitions" in schema:
                continue  # Argo Events publishes a JSON schema, not a CRD schema; its chart's CRDs are schemaless
            group, version, kind = key.rsplit("/", 2)
            plural = _plural_from_file(file)
            crds[f"{plural}.{group}"] = {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.{group}"},
                "spec": {
                    "group": group,
                    "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                    "scope": "Namespaced",
                    "versions": [{"name": version, "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": schema}, "subresources": {"status": {}}}],
                },
            }
    return [crds[k] for k in sorted(crds)]


def without_conversion_webhook(crd: dict[str, Any]) -> dict[str, Any]:
    """A CRD whose conversion webhook (a service that does not run in a sandbox) is replaced by ``None``:
    versions then convert by changing ``apiVersion`` only. Returns a copy."""
    out = json.loads(json.dumps(crd))
    spec = out.setdefault("spec", {})
    if (spec.get("conversion") or {}).get("strategy") == "Webhook":
        spec["conversion"] = {"strategy": "None"}
    return out


def _empty(value: Any) -> bool:
    # Go's zero values: built-in types omit them when they serialise (`omitempty`), so a sent
    # `hostNetwork: false` or `value: ""` comes back absent without having been pruned.
    return value is None or value == {} or value == [] or value == "" or value is False or value == 0


# Fields the API server turns into others on purpose (not pruning): Secret.stringData is write-only.
_WRITE_ONLY = {("Secret", "stringData")}


def dropped_fields(sent: dict[str, Any], returned: dict[str, Any]) -> list[str]:
    """Paths of leaves present in ``sent`` but absent from ``returned`` (zero values are not counted:
    built-in types omit them). Keys containing dots are kept whole, as in a
    label ``gpuplane.dev/pool``: a path segment is looked up as a key first."""
    kind = str(sent.get("kind", ""))
    dropped = []
    for path, value in _paths(sent):
        if _empty(value) or (kind, path.split(".", 1)[0]) in _WRITE_ONLY:
            continue
        if not _present(returned, path):
            dropped.append(path)
    return dropped


def _paths(value: Any, trail: tuple[Any, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Leaves as (display path, value), carrying the exact key trail in the path's display form."""
    for keys, leaf in _trails(value, trail):
        yield _display(keys), leaf


def _trails(value: Any, trail: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _trails(v, (*trail, str(k)))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _trails(v, (*trail, i))
    else:
        yield trail, value


def _display(keys: tuple[Any, ...]) -> str:
    out = ""
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out


def _present(returned: Any, path: str) -> bool:
    # Re-walk with the real keys (labels and annotations hold dots and slashes).
    return _walk(returned, _split(path))


def _split(path: str) -> list[Any]:
    # Rebuild keys from the display form: "[i]" are list indexes, "." separates map keys. A key holding
    # a dot (an annotation) is ambiguous here, so _walk tries the longest key first.
    tokens: list[Any] = []
    for piece in re.split(r"(\[\d+\])", path):
        if not piece:
            continue
        if re.fullmatch(r"\[\d+\]", piece):
            tokens.append(int(piece[1:-1]))
        else:
            tokens.append(piece.lstrip("."))
    return tokens


def _walk(value: Any, tokens: list[Any]) -> bool:
    if not tokens:
        return True
    head, rest = tokens[0], tokens[1:]
    if isinstance(head, int):
        return isinstance(value, list) and head < len(value) and _walk(value[head], rest)
    if not isinstance(value, dict):
        return False
    parts = head.split(".")
    for cut in range(len(parts), 0, -1):  # longest key first: "gpuplane.dev/pool" before "gpuplane"
        key = ".".join(parts[:cut])
        if key in value:
            remainder = ".".join(parts[cut:])
            if _walk(value[key], ([remainder] if remainder else []) + rest):
                return True
    return False
