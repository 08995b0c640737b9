"""Check AWS enum values in a planned resource graph against botocore's service models.

The mock runtime accepts any string, but the EKS and EC2 APIs do not: ``AL2_x86_64_GPU`` after
its end of life, ``SPOT `` with a stray space, ``NoSchedule`` where EKS wants ``NO_SCHEDULE``, an
instance type that does not exist. botocore ships the same service models the AWS CLI uses, so
``check_aws_enums`` compares every enum-valued input we emit with the model's enum and returns
one line per mismatch (URN, property path, value, allowed values). The plan engine runs it on
every plan; it reads no network and no credentials.

``RULES`` maps a resource type to ``(property path, service, shape)``; ``[]`` in a path walks a
list. Karpenter NodePools are checked too: their ``node.kubernetes.io/instance-type``
requirement values must be EC2 instance types.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol


class _Resource(Protocol):
    urn: str
    type: str
    inputs: dict[str, Any]


RULES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "aws:eks/cluster:Cluster": (
        ("enabledClusterLogTypes[]", "eks", "LogType"),
        ("accessConfig.authenticationMode", "eks", "AuthenticationMode"),
    ),
    "aws:eks/nodeGroup:NodeGroup": (
        ("amiType", "eks", "AMITypes"),
        ("capacityType", "eks", "CapacityTypes"),
        ("taints[].effect", "eks", "TaintEffect"),
        ("instanceTypes[]", "ec2", "InstanceType"),
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": (
        ("instanceType", "ec2", "InstanceType"),
        ("metadataOptions.httpTokens", "ec2", "LaunchTemplateHttpTokensState"),
        ("metadataOptions.httpEndpoint", "ec2", "LaunchTemplateInstanceMetadataEndpointState"),
        ("blockDeviceMappings[].ebs.volumeType", "ec2", "VolumeType"),
        ("networkInterfaces[].interfaceType", "ec2", "NetworkInterfaceType"),
    ),
    "aws:ec2/placementGroup:PlacementGroup": (("strategy", "ec2", "PlacementStrategy"),),
    "aws:ec2/instance:Instance": (("instanceType", "ec2", "InstanceType"),),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        ("productionVariants[].instanceType", "sagemaker", "ProductionVariantInstanceType"),
    ),
    "aws:batch/computeEnvironment:ComputeEnvironment": (
        ("type", "batch", "CEType"),
        ("computeResources.type", "batch", "CRType"),
        ("computeResources.allocationStrategy", "batch", "CRAllocationStrategy"),
        ("computeResources.instanceTypes[]", "ec2", "InstanceType"),
    ),
    "aws:batch/jobQueue:JobQueue": (("state", "batch", "JQState"),),
    "aws:batch/jobDefinition:JobDefinition": (
        ("type", "batch", "JobDefinitionType"),
        ("platformCapabilities[]", "batch", "PlatformCapability"),
        ("retryStrategy.evaluateOnExits[].action", "batch", "RetryAction"),
    ),
}

_KARPENTER_NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
_INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"


@functools.cache
def allowed_values(service: str, shape: str) -> frozenset[str]:
    """The enum of ``shape`` in botocore's model of ``service`` (empty when it has no enum).

    Loading the service models (EC2's is several MB of JSON) costs a few tenths of a second per
    plan, so the enums of every ``RULES`` shape are kept in a cache file named after the
    installed botocore version (``$XDG_CACHE_HOME/gpuplane/aws-enums-<version>.json``): a new
    botocore means a new file, never a stale answer. A cache that cannot be read or written is
    skipped.
    """
    cached = _cached_enums().get(f"{service}/{shape}")
    if cached is not None:
        return frozenset(cached)
    return _model_enum(service, shape)


def _model_enum(service: str, shape: str) -> frozenset[str]:
    model = _session().get_service_model(service)
    return frozenset(model.shape_for(shape).enum or ())


def cache_path() -> Path:
    import botocore  # the package root is light; botocore.session is not

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gpuplane" / f"aws-enums-{botocore.__version__}.json"


@functools.lru_cache(maxsize=1)
def _cached_enums() -> dict[str, list[str]]:
    shapes = sorted({(svc, shape) for rules in RULES.values() for _, svc, shape in rules} | {("ec2", "InstanceType")})
    path = cache_path()
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and all(f"{svc}/{shape}" in data for svc, shape in shapes):
            return data
    except (OSError, ValueError):
        pass
    data = {f"{svc}/{shape}": sorted(_model_enum(svc, shape)) for svc, shape in shapes}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)  # atomic: concurrent plans never read half a file
    except OSError:
        pass
    return data


@functools.lru_cache(maxsize=1)
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


def _values(obj: Any, path: list[str]) -> Iterable[tuple[str, Any]]:
    """(concrete path, value) pairs at ``path`` inside ``obj``; missing keys yield nothing."""
    if not path:
        yield "", obj
        return
    head, rest = path[0], path[1:]
    is_list = head.endswith("[]")
    key = head[:-2] if is_list else head
    if not isinstance(obj, dict) or obj.get(key) is None:
        return
    value = obj[key]
    if is_list:
        if not isinstance(value, list):
            return
        for i, item in enumerate(value):
            for sub, v in _values(item, rest):
                yield f"{key}[{i}]{'.' + sub if sub else ''}", v
    else:
        for sub, v in _values(value, rest):
            yield f"{key}{'.' + sub if sub else ''}", v


def _problem(urn: str, path: str, value: Any, service: str, shape: str, allowed: frozenset[str]) -> str:
    near = sorted(
        a
        for a in allowed
        if a.lower().replace("_", "").replace("-", "") == str(value).lower().replace("_", "").replace("-", "").strip()
    )
    hint = (
        f" Did you mean {near[0]!r}?"
        if near
        else (f" Allowed: {', '.join(sorted(allowed))}." if len(allowed) <= 30 else "")
    )
    return f"{urn}: {path} = {value!r} is not a valid {service} {shape}.{hint}"


def check_aws_enums(resources: Iterable[_Resource]) -> list[str]:
    """One problem line per enum-valued AWS input that botocore's models do not allow.

    Values that are not strings (unknowns in a preview, numbers) are skipped: only what the
    program spelled out is checked.
    """
    problems: list[str] = []
    for r in resources:
        for path, service, shape in RULES.get(r.type, ()):
            allowed = allowed_values(service, shape)
            if not allowed:
                continue
            for concrete, value in _values(r.inputs, path.split(".")):
                if isinstance(value, str) and value not in allowed:
                    problems.append(_problem(r.urn, concrete, value, service, shape, allowed))
        if r.type == _KARPENTER_NODEPOOL:
            reqs = (((r.inputs.get("spec") or {}).get("template") or {}).get("spec") or {}).get("requirements") or []
            allowed = allowed_values("ec2", "InstanceType")
            for i, req in enumerate(reqs):
                if isinstance(req, dict) and req.get("key") == _INSTANCE_TYPE_LABEL:
                    for j, value in enumerate(req.get("values") or []):
                        if isinstance(value, str) and value not in allowed:
                            problems.append(
                                _problem(
                                    r.urn,
                                    f"spec.template.spec.requirements[{i}].values[{j}]",
                                    value,
                                    "ec2",
                                    "InstanceType",
                                    allowed,
                                )
                            )
    return problems


__all__ = ["RULES", "allowed_values", "check_aws_enums"]
