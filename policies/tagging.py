"""Tagging policies: ownership tags everywhere, and exemptions that say why.

- ``required-tags``: every taggable resource carries the ``requiredTags`` (default ``team`` and
  ``cost-center``) as AWS tags (own or the provider's ``defaultTags``), GCP labels (own or the
  provider's ``defaultLabels``), or a gpuplane component's ``tags``. Its remediation adds the
  configured ``defaults`` (run it with enforcement level ``remediate``). Kubernetes objects are
  checked only with ``includeKubernetes``.
- ``exemption-valid``: every ``gpuplane/exempt`` tag (label form ``gpuplane-exempt``) names known
  policies and has a reason; an exemption without one is not honoured
  (policies/exemptions.py). It is defined in policies/pack.py, beside the list of
  policies it checks names against, and cannot itself be exempted.
- ``exemption-scope`` (stack): an exemption is for one resource, not the stack. A policy exempted
  on every gpuplane component (the stack-wide ``gpuplane:tags`` reach every one) or on every
  taggable resource (two or more) is reported unless listed in ``stackWideAllowed`` (default
  none), so a stack-wide tag cannot switch the cost and GPU gates off. It cannot be exempted.
"""

from __future__ import annotations

import copy
from typing import Any

from policies import exemptions
from policies.framework import Config, ResourceRule, StackRule
from policies.resources import ResourceView, dig, label, tag_maps

# AWS resource types gpuplane makes or policies cover that take `tags` (checked in pulumi-aws 7).
AWS_TAGGABLE = frozenset(
    {
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:eks/addon:Addon",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/placementGroup:PlacementGroup",
        "aws:ec2/instance:Instance",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/eip:Eip",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:iam/role:Role",
        "aws:iam/policy:Policy",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:iam/instanceProfile:InstanceProfile",
        "aws:sagemaker/endpoint:Endpoint",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "aws:sagemaker/model:Model",
        "aws:sagemaker/featureGroup:FeatureGroup",
        "aws:dynamodb/table:Table",
        "aws:sqs/queue:Queue",
        "aws:kms/key:Key",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:ecr/repository:Repository",
    }
)

# GCP resource types and where their labels live.
GCP_LABEL_FIELD = {
    "gcp:storage/bucket:Bucket": "labels",
    "gcp:container/cluster:Cluster": "resourceLabels",
    "gcp:container/nodePool:NodePool": "nodeConfig.resourceLabels",
    "gcp:cloudrunv2/service:Service": "labels",
    "gcp:vertex/aiFeatureOnlineStore:AiFeatureOnlineStore": "labels",
    "gcp:vertex/aiFeatureOnlineStoreFeatureview:AiFeatureOnlineStoreFeatureview": "labels",
    "gcp:vertex/aiFeatureGroup:AiFeatureGroup": "labels",
    "gcp:vertex/aiEndpoint:AiEndpoint": "labels",
    "gcp:bigtable/instance:Instance": "labels",
    "gcp:compute/instance:Instance": "labels",
    "gcp:bigquery/dataset:Dataset": "labels",
}


def tag_field(view: ResourceView, include_kubernetes: bool) -> str | None:
    """Where a resource's tags/labels live (dotted path), or None if it is not taggable."""
    t = view.type
    if view.component:
        return "gpuplane.tags"
    if t.startswith("aws:"):
        return "tags" if t in AWS_TAGGABLE or "tags" in view.props else None
    if t.startswith("gcp:"):
        return GCP_LABEL_FIELD.get(t) or ("labels" if "labels" in view.props else None)
    if t.startswith("kubernetes:") and include_kubernetes and isinstance(view.props.get("metadata"), dict):
        return "metadata.labels"
    return None


def _present(view: ResourceView, path: str) -> dict[str, Any]:
    own = dig(view.props, path)
    merged: dict[str, Any] = {}
    if view.type.startswith("aws:"):
        merged.update(dig(view.provider_props, "defaultTags.tags") or {})
    elif view.type.startswith("gcp:"):
        merged.update(view.provider_props.get("defaultLabels") or {})
    if isinstance(own, dict):
        merged.update(own)
    return merged


def check_required_tags(view: ResourceView, cfg: Config) -> list[str]:
    path = tag_field(view, bool(cfg.get("includeKubernetes", False)))
    if path is None:
        return []
    present = _present(view, path)
    missing = [k for k in cfg.get("requiredTags") or [] if not present.get(k)]
    if not missing:
        return []
    kind = "labels" if view.type.startswith(("gcp:", "kubernetes:")) else "tags"
    return [
        f"{label(view)} lacks the {kind} {missing} (at {path}). Add them (stack config gpuplane:tags reaches every component), or set defaults in the required-tags config and run it at enforcement level remediate."
    ]


def remediate_required_tags(view: ResourceView, cfg: Config) -> dict[str, Any] | None:
    path = tag_field(view, bool(cfg.get("includeKubernetes", False)))
    defaults = {k: v for k, v in dict(cfg.get("defaults") or {}).items() if k in (cfg.get("requiredTags") or [])}
    if path is None or view.component or not defaults:
        return None
    present = _present(view, path)
    add = {k: v for k, v in defaults.items() if not present.get(k)}
    if not add:
        return None
    props = copy.deepcopy(dict(view.props))
    cur: dict[str, Any] = props
    parts = path.split(".")
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    existing = cur.get(parts[-1])
    cur[parts[-1]] = {**(existing if isinstance(existing, dict) else {}), **add}
    return props


REQUIRED_TAGS = ResourceRule(
    name="required-tags",
    description="Checks whether every taggable resource carries the team and cost-center tags or labels.",
    check=check_required_tags,
    remediate=remediate_required_tags,
    schema={
        "requiredTags": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["team", "cost-center"],
            "description": "Tag/label keys every taggable resource needs.",
        },
        "defaults": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "default": {},
            "description": "Values the remediation adds when a required tag is missing.",
        },
        "includeKubernetes": {
            "type": "boolean",
            "default": False,
            "description": "Also require the tags as labels on Kubernetes objects.",
        },
    },
)


def check_exemption_scope(views: list[ResourceView], cfg: Config) -> list[tuple[str | None, str]]:
    allowed = set(cfg.get("stackWideAllowed") or [])
    components = [v for v in views if v.component]
    taggable = [v for v in views if tag_maps(v)]
    declared = {v.urn: exemptions.declared(v) for v in taggable}
    out: list[tuple[str | None, str]] = []
    names = {p for ex in declared.values() if ex for p in ex.policies}
    for policy in sorted(names - allowed - exemptions.NOT_EXEMPTABLE):
        def covers(v: ResourceView, policy: str = policy) -> bool:
            ex = declared.get(v.urn)
            return bool(ex and ex.covers(policy))

        on_components = bool(components) and len(components) >= 2 and all(covers(v) for v in components)
        on_all = len(taggable) >= 2 and all(covers(v) for v in taggable)
        if on_components or on_all:
            scope = "every gpuplane component" if on_components else "every taggable resource"
            out.append(
                (
                    None,
                    f"The stack exempts {scope} from '{policy}' (a stack-wide gpuplane/exempt tag, e.g. in gpuplane:tags). Remove it from the stack-wide tags and tag only the resources that need it, or list '{policy}' in exemption-scope's stackWideAllowed.",
                )
            )
    return out


EXEMPTION_SCOPE = StackRule(
    name="exemption-scope",
    description="Checks whether policy exemptions are per resource, not stack-wide (a tag on every resource cannot switch a policy off).",
    check=check_exemption_scope,
    schema={
        "stackWideAllowed": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Policies that may be exempted on every resource of the stack at once.",
        }
    },
)
