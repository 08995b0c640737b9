"""Offline strictness: Kubernetes objects against the OpenAPI schema, AWS enums against botocore.

The offline plan should be as strict as the real APIs where we can make it so. Core Kubernetes
objects (those pulumi-kubernetes registers with their full body) are validated strictly with
``kubernetes-validate`` for one current release; custom resources (JobSet, Kueue, Knative,
Karpenter, ...) and Helm values are checked against their upstream schemas by
``gpuplane.engine.schemas``.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from gpuplane.engine.runtime import ProgramRun, RecordedResource

KUBERNETES_VERSION = "1.33.0"
# pulumi-kubernetes token group -> apiVersion group for the core objects we validate.
_CORE_GROUPS = {
    "core": "",
    "apps": "apps",
    "batch": "batch",
    "rbac.authorization.k8s.io": "rbac.authorization.k8s.io",
    "policy": "policy",
    "networking.k8s.io": "networking.k8s.io",
    "scheduling.k8s.io": "scheduling.k8s.io",
    "autoscaling": "autoscaling",
    "storage.k8s.io": "storage.k8s.io",
}


def k8s_object(resource: RecordedResource) -> dict[str, Any] | None:
    """The object a pulumi-kubernetes core resource would apply, or None (CRDs, Helm, providers)."""
    parts = resource.type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        return None
    group_version, kind = parts[1], parts[2]
    group, _, version = group_version.rpartition("/")
    if group not in _CORE_GROUPS or kind.endswith(("List", "Patch")):
        return None
    obj = {k: v for k, v in resource.inputs.items() if k not in ("apiVersion", "kind")}
    obj["apiVersion"] = version if group == "core" else f"{_CORE_GROUPS[group]}/{version}"
    obj["kind"] = kind
    return _ints(obj)


def _ints(value: Any) -> Any:
    """The mock runtime turns every number into a float; the schema wants integers back."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


@functools.lru_cache(maxsize=128)
def _validator(version: str, api_version: str, kind: str) -> Any:
    """The strict schema validator of one kind, built once.

    ``kubernetes_validate.validate`` re-reads and re-parses the shared definitions file (several
    MB) on every call; this builds the same Draft 2020-12 validator from the same bundled schema
    files once per kind and version.
    """
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    schema_version = [v for v in utils.all_versions() if utils.major_minor(v) <= utils.major_minor(version)][-1]
    schema_dir = f"v{schema_version}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group}.json", version)
    except FileNotFoundError:
        raise utils.SchemaNotFoundError(version=utils.major_minor(version), kind=kind, api_version=api_version) from None
    definitions = _definitions(schema_dir, version)
    registry = Resource.from_contents(schema) @ (definitions @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.lru_cache(maxsize=4)
def _definitions(schema_dir: str, version: str) -> Any:
    from kubernetes_validate import utils
    from referencing import Resource

    return Resource.from_contents(utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", version))


def validate_object(obj: dict[str, Any], version: str = KUBERNETES_VERSION) -> None:
    """Strictly validate one object; raises ``kubernetes_validate.ValidationError`` or ``SchemaNotFoundError``."""
    import jsonschema
    from kubernetes_validate import utils

    try:
        _validator(version, obj["apiVersion"], obj["kind"]).validate(obj)
    except jsonschema.ValidationError as e:
        raise utils.ValidationError(e, version=utils.major_minor(version)) from None


def validate_kubernetes(run: ProgramRun, version: str = KUBERNETES_VERSION) -> tuple[int, list[str]]:
    """Validate every core Kubernetes object; returns (objects checked, problems)."""
    objects = [(r, obj) for r in run.resources if (obj := k8s_object(r)) is not None]
    if not objects:
        return 0, []  # a program without Kubernetes objects never imports the validator
    import kubernetes_validate

    checked, problems = 0, []
    for r, obj in objects:
        checked += 1
        try:
            validate_object(obj, version)
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{r.urn}: Kubernetes {version} schema: {str(e).splitlines()[0]}")
        except kubernetes_validate.SchemaNotFoundError as e:  # pragma: no cover - version/kind outside the bundle
            problems.append(f"{r.urn}: no Kubernetes {version} schema for {obj['apiVersion']}/{obj['kind']}: {e}")
    return checked, problems


def validate_aws_enums(run: ProgramRun) -> list[str]:
    """AWS enum values (instance types, AMI types, capacity types, ...) checked against botocore."""
    try:
        from gpuplane.engine.aws_enums import check_aws_enums
    except ImportError:  # pragma: no cover - the module ships with the package
        return []
    return list(check_aws_enums(run.resources))
