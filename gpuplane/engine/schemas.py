"""Custom resources and Helm values against their upstream schemas, offline.

``gpuplane/schemas/<chart>-<version>/index.json`` (the layout of the shared schema audit; see
``gpuplane/schemas/README.md`` for every file's upstream repository, path, tag and commit) maps

- ``group/version/Kind`` to a CRD's ``openAPIV3Schema`` (as JSON), and
- a chart's names and version to its default ``values.yaml`` and the list of ``.Values.*`` paths
  its templates read.

Two checks, each as strict as the API server or the chart where we can make it so:

- **Custom resources** (``kubernetes:<group>/<version>:<Kind>`` registrations whose kind has a
  schema here) are validated against the CRD's structural schema, and every field the API server
  would *prune* is reported: an object schema with ``properties`` keeps only those properties
  unless it sets ``x-kubernetes-preserve-unknown-fields`` or ``additionalProperties``
  (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#field-pruning).
  ``metadata`` is ObjectMeta, checked by the core validator's rules, not the CRD's.
- **Helm values** (``kubernetes:helm.sh/v3:Release`` with a pinned chart and version found here)
  are checked key by key: a values path is read by the chart when a template reads it, a prefix
  of it (the template passes the whole map on, e.g. ``toYaml .Values.resources``) or a longer
  path below it, or when the chart's own ``values.yaml`` has it (subcharts read their section).
  Anything else is a key the chart silently ignores, which is reported.

Kinds and charts with no schema here are counted as unchecked, never as valid.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCHEMA_ROOT = Path(__file__).resolve().parents[1] / "schemas"
HELM_RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
# pulumi-kubernetes tokens whose "group" is not a custom resource's API group.
_NOT_CUSTOM_GROUPS = frozenset(
    {"helm.sh", "yaml", "kustomize", "apiextensions.k8s.io", "admissionregistration.k8s.io", "certificates.k8s.io",
     "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io", "node.k8s.io",
     "resource.k8s.io", "storagemigration.k8s.io", "apiregistration.k8s.io", "authentication.k8s.io",
     "authorization.k8s.io", "internal.apiserver.k8s.io"}
)


@dataclass(frozen=True)
class ChartSchema:
    names: tuple[str, ...]
    version: str
    values_file: Path
    template_paths: frozenset[str]
    folder: str

    @property
    def values(self) -> dict[str, Any]:
        """The chart's default values, parsed on first use (most plans use few charts)."""
        return _chart_values(self.values_file)


@functools.lru_cache(maxsize=64)
def _chart_values(path: Path) -> dict[str, Any]:
    # Some charts keep values.yaml as a release template (knative-operator: `tag: {{ tag }}`).
    text = re.sub(r"\{\{[^}]*\}\}", "templated", path.read_text())
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on large charts
    try:
        return yaml.load(text, Loader=loader) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: malformed chart values ({e}). To fix: restore it from the source in "
                         "gpuplane/schemas/README.md.") from e


def chart_short_name(chart: str, version: str = "") -> str:
    """A release's chart as a bare name: ``oci://.../kueue`` -> ``kueue``, and a packaged archive
    ``/charts/kueue-0.19.2.tgz`` (a cluster's ``chart_source`` folder) -> ``kueue``."""
    short = chart.rstrip("/").rsplit("/", 1)[-1]
    if short.endswith(".tgz"):
        short = short.removesuffix(".tgz")
        for v in (version, version.lstrip("v"), f"v{version.lstrip('v')}"):
            if v and short.endswith(f"-{v}"):
                return short.removesuffix(f"-{v}")
    return short


@dataclass
class SchemaIndex:
    crds: dict[str, Path] = field(default_factory=dict)
    """``group/version/Kind`` -> the CRD schema file."""
    charts: list[ChartSchema] = field(default_factory=list)

    def chart(self, name: str, version: str) -> ChartSchema | None:
        short = chart_short_name(name, version)
        for c in self.charts:
            if c.version.lstrip("v") == version.lstrip("v") and (name in c.names or short in c.names):
                return c
        return None


@functools.lru_cache(maxsize=4)
def load_index(root: Path = SCHEMA_ROOT) -> SchemaIndex:
    """Every ``index.json`` under ``root``; a malformed index fails loudly with its path."""
    index = SchemaIndex()
    for idx_path in sorted(root.glob("*/index.json")):
        folder = idx_path.parent
        try:
            data = json.loads(idx_path.read_text())
            for gvk, file in data.get("crds", {}).items():
                if gvk in index.crds:
                    raise ValueError(f"{gvk} is also indexed by {index.crds[gvk]}")
                index.crds[gvk] = folder / file
            for chart in data.get("charts", []):
                values_file = folder / chart["values"]
                if not values_file.is_file():
                    raise ValueError(f"missing {values_file.name}")
                paths = frozenset(
                    line.strip() for line in (folder / chart["template_paths"]).read_text().splitlines() if line.strip()
                )
                index.charts.append(ChartSchema(tuple(chart["names"]), str(chart["version"]), values_file, paths, folder.name))
        except (OSError, KeyError, ValueError, yaml.YAMLError) as e:
            raise ValueError(f"{idx_path}: malformed schema index ({e}). To fix: restore it from the source in gpuplane/schemas/README.md.") from e
    return index


# --- custom resources --------------------------------------------------------------------------


def _to_json_schema(node: Any) -> Any:
    """An openAPIV3Schema node as a JSON Schema that rejects pruned fields.

    OpenAPI v3 keywords used by CRDs are JSON Schema draft-4 keywords, plus ``nullable``,
    ``x-kubernetes-int-or-string`` and ``x-kubernetes-preserve-unknown-fields``.
    """
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: _to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = _to_json_schema(value)
        elif key in ("description", "format", "x-kubernetes-validations", "example", "externalDocs"):
            continue  # documentation, or CEL rules we cannot evaluate offline
        elif key == "pattern" and isinstance(value, str):
            # Go's RE2 takes inline flags anywhere ("^(?i)[a-z]..." in Kueue's AdmissionCheck CRD);
            # Python's re only at the start.
            out[key] = re.sub(r"^\^(\(\?[a-zA-Z]+\))", r"\1^", value)
        else:
            out[key] = copy.deepcopy(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [*out.get("anyOf", []), {"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=64)
def _crd_validator(path: Path) -> Any:
    import jsonschema

    raw = json.loads(path.read_text())["openAPIV3Schema"]
    schema = _to_json_schema(raw)
    # metadata is ObjectMeta: the API server checks it with the core rules, not the CRD's.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def custom_resource_problems(obj: dict[str, Any], index: SchemaIndex | None = None) -> list[str] | None:
    """Problems of one custom resource body, or None when no schema for its kind is held here."""
    index = index or load_index()
    gvk = f"{obj.get('apiVersion')}/{obj.get('kind')}"
    path = index.crds.get(gvk)
    if path is None:
        return None
    problems = []
    for error in sorted(_crd_validator(path).iter_errors(obj), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path) or "(root)"
        if error.validator == "additionalProperties" and error.validator_value is False:
            problems.append(f"{gvk} {where}: {error.message} — the API server would prune it")
        else:
            problems.append(f"{gvk} {where}: {error.message}")
    return problems


# --- Helm values -------------------------------------------------------------------------------


def _leaf_paths(values: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths to every leaf (a scalar, a list, or an empty map) of a values map."""
    if isinstance(values, dict) and values:
        for k, v in values.items():
            yield from _leaf_paths(v, f"{prefix}.{k}" if prefix else str(k))
    elif prefix:
        yield prefix


def _in_defaults(defaults: Any, path: str) -> bool:
    node = defaults
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _read_by_templates(paths: frozenset[str], path: str) -> bool:
    if path in paths:
        return True
    parts = path.split(".")
    # A template reading a prefix gets the whole map below it.
    if any(".".join(parts[:i]) in paths for i in range(1, len(parts))):
        return True
    # A template reading a longer path below this one (we set a map the chart walks).
    return any(p.startswith(path + ".") for p in paths)


def helm_values_problems(chart: ChartSchema, values: dict[str, Any]) -> list[str]:
    """Values keys the chart would ignore (neither read by a template nor among its defaults)."""
    problems = []
    for path in _leaf_paths(values):
        if _read_by_templates(chart.template_paths, path) or _in_defaults(chart.values, path):
            continue
        # The longest prefix the chart knows, to make the fix obvious.
        parts = path.split(".")
        known = next(
            (".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1) if _in_defaults(chart.values, ".".join(parts[:i]))),
            None,
        )
        hint = f" (the chart knows {known!r})" if known else ""
        problems.append(
            f"chart {chart.names[0]} {chart.version}: values key {path!r} is not read by any template nor in its "
            f"values.yaml{hint} — the chart would ignore it. To fix: use a key from gpuplane/schemas/{chart.folder}/."
        )
    return problems


HELM_RELEASE_NAME_MAX = 53
"""Helm's limit on a release name (``helm install`` refuses a longer one)."""
AUTONAME_SUFFIX = len("-0123abcd")
"""pulumi-kubernetes names a Release without ``name`` ``<resource name>-<8 random hex>``."""
DNS_LABEL_MAX = 63


def release_name(resource: Any) -> str:
    """The release name Helm will get: ``name``, else the resource name plus the autoname suffix
    (shown as ``-xxxxxxxx``)."""
    return str(resource.inputs.get("name") or f"{resource.name}-xxxxxxxx")


def _helm_fullname(release: str, chart_name: str, override: Any) -> str:
    # The "fullname" helper every `helm create` chart has: the override, else release-chart (the release
    # alone when it already contains the chart name), cut to 63 and stripped of a trailing '-'.
    if override:
        return str(override)[:DNS_LABEL_MAX].rstrip("-")
    full = release if chart_name in release else f"{release}-{chart_name}"
    return full[:DNS_LABEL_MAX].rstrip("-")


# Names a chart derives from its "fullname" (release-chart, or fullnameOverride) for objects whose
# name the API server limits to a DNS label: chart -> (values path of the subchart or "", the fullname
# helper's chart name, the longest suffix the templates append, values path that must be true or "").
_DERIVED_NAMES = {
    "nvidia-device-plugin": ("nfd", "node-feature-discovery", "-master", "gfd.enabled"),  # the NFD master Service
    "kueue": ("", "kueue", "-controller-manager-metrics-service", ""),  # a Service
}


def _get(values: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(values, dict):
            return None
        values = values.get(part)
    return values


def release_name_problems(resource: Any) -> list[str]:
    """Names Helm or the API server would refuse, derived from the release name: the release name
    itself (53), and the longest DNS-label name (63) a chart in ``_DERIVED_NAMES`` builds from it."""
    problems = []
    inputs = resource.inputs
    name = release_name(resource)
    if len(name) > HELM_RELEASE_NAME_MAX:
        problems.append(f"Helm release name {name!r} is {len(name)} characters; Helm allows {HELM_RELEASE_NAME_MAX}. "
                        "To fix: a shorter resource name, or set the release's name.")
    chart = chart_short_name(str(inputs.get("chart", "")), str(inputs.get("version", "")))
    if chart not in _DERIVED_NAMES:
        return problems
    sub, fullname_chart, suffix, condition = _DERIVED_NAMES[chart]
    values = inputs.get("values") or {}
    if condition and not (_get(values, condition) or (sub and _get(values, f"{sub}.enabled"))):
        return problems
    override_path = f"{sub}.fullnameOverride" if sub else "fullnameOverride"
    derived = _helm_fullname(name, fullname_chart, _get(values, override_path)) + suffix
    if len(derived) > DNS_LABEL_MAX:
        problems.append(
            f"chart {chart}: its templates name an object {derived!r} ({len(derived)} characters; the API server "
            f"allows {DNS_LABEL_MAX} for it) and would reject it. To fix: set {override_path} to at most "
            f"{DNS_LABEL_MAX - len(suffix)} characters."
        )
    return problems


# --- a whole plan ------------------------------------------------------------------------------


@dataclass
class SchemaReport:
    custom_resources_checked: int = 0
    helm_releases_checked: int = 0
    unchecked: list[str] = field(default_factory=list)
    """``group/version/Kind`` or ``chart version`` with no schema here (sorted, unique)."""
    problems: list[str] = field(default_factory=list)


def _custom_resource_body(resource: Any) -> dict[str, Any] | None:
    from gpuplane.engine.validate import (
        _CORE_GROUPS,
        _ints,  # numbers come back as floats from the mock runtime
    )

    parts = resource.type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    group = parts[1].rsplit("/", 1)[0]
    if "." not in group or group in _CORE_GROUPS or group in _NOT_CUSTOM_GROUPS:
        return None
    inputs = dict(resource.inputs)
    inputs.setdefault("apiVersion", parts[1])
    inputs.setdefault("kind", parts[2])
    return _ints(inputs)


def validate_schemas(resources: list[Any], index: SchemaIndex | None = None) -> SchemaReport:
    """Check every custom resource and Helm release of a recorded program run."""
    index = index or load_index()
    report = SchemaReport()
    unchecked: set[str] = set()
    for r in resources:
        if r.type == HELM_RELEASE_TYPE:
            chart_name, version = str(r.inputs.get("chart", "")), str(r.inputs.get("version", ""))
            chart = index.chart(chart_name, version)
            if chart is None:
                unchecked.add(f"chart {chart_name} {version or '(unpinned)'}")
                continue
            report.helm_releases_checked += 1
            report.problems += [f"{r.urn}: {p}" for p in helm_values_problems(chart, r.inputs.get("values") or {})]
            report.problems += [f"{r.urn}: {p}" for p in release_name_problems(r)]
            continue
        body = _custom_resource_body(r)
        if body is None:
            continue
        problems = custom_resource_problems(body, index)
        if problems is None:
            unchecked.add(f"{body['apiVersion']}/{body['kind']}")
            continue
        report.custom_resources_checked += 1
        report.problems += [f"{r.urn}: {p}" for p in problems]
    report.unchecked = sorted(unchecked)
    return report
