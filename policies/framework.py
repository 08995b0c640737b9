"""Rules as pure functions, wrapped into CrossGuard policies.

A ``ResourceRule`` is a name, a description, a config schema (JSON-schema properties, each with
a ``default``) and ``check(view, config) -> [message]``. A ``StackRule``'s check takes every
resource and returns ``[(urn or None, message)]``. ``to_policy`` turns either into a
``pulumi_policy`` policy that:

- builds plain ``ResourceView``s from CrossGuard's arguments (unknowns become ``UNKNOWN``);
- fills the config from the schema defaults under whatever the engine passed;
- honours per-resource exemptions (policies/exemptions.py) and says so through
  ``not_applicable`` — never silently;
- reports each remaining message (messages say what must change).

Nothing here has side effects at import time; the pack is built in ``policies/__main__.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies import exemptions
from policies.resources import ResourceView, plain

Config = Mapping[str, Any]
ResourceCheck = Callable[[ResourceView, Config], list[str]]
StackCheck = Callable[[list[ResourceView], Config], list[tuple[str | None, str]]]
Remediation = Callable[[ResourceView, Config], dict[str, Any] | None]


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    check: ResourceCheck
    schema: dict[str, dict[str, Any]] = field(default_factory=dict)
    enforcement: EnforcementLevel = EnforcementLevel.MANDATORY
    remediate: Remediation | None = None


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: StackCheck
    schema: dict[str, dict[str, Any]] = field(default_factory=dict)
    enforcement: EnforcementLevel = EnforcementLevel.MANDATORY


Rule = ResourceRule | StackRule


def defaults(schema: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {k: v["default"] for k, v in schema.items() if "default" in v}


def config_for(rule: Rule, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Schema defaults overlaid with the config the engine passed."""
    return {**defaults(rule.schema), **dict(given or {})}


def view_from_args(args: Any) -> ResourceView:
    """A ResourceView from CrossGuard's ResourceValidationArgs (or a PolicyResource)."""
    props = plain(args.props)
    provider = getattr(args, "provider", None)
    provider_props = plain(provider.props) if provider is not None else {}
    opts = getattr(args, "opts", None)
    deps = tuple(d.urn for d in getattr(args, "dependencies", []) or [])
    parent = getattr(args, "parent", None)
    return ResourceView(
        type=getattr(args, "resource_type", ""),
        props=props,
        urn=args.urn,
        name=args.name,
        protect=bool(getattr(opts, "protect", False)),
        provider_props=provider_props,
        dependencies=deps,
        parent=parent.urn if parent is not None else getattr(opts, "parent", None),
    )


def _schema(rule: Rule) -> PolicyConfigSchema | None:
    return PolicyConfigSchema(properties={k: dict(v) for k, v in rule.schema.items()}) if rule.schema else None


def _resource_validate(rule: ResourceRule) -> Callable[[ResourceValidationArgs, Callable[..., None]], None]:
    def validate(args: ResourceValidationArgs, report: Callable[..., None]) -> None:
        view = view_from_args(args)
        messages = rule.check(view, config_for(rule, args.get_config()))
        if not messages:
            return
        ex = exemptions.honoured(view, rule.name)
        if ex is not None:
            args.not_applicable("\n".join(exemptions.reason_line(ex, m) for m in messages))
        for m in messages:
            report(m, None)

    return validate


def _resource_remediate(rule: ResourceRule) -> Callable[[ResourceValidationArgs], dict[str, Any] | None]:
    assert rule.remediate is not None
    fix = rule.remediate

    def remediate(args: ResourceValidationArgs) -> dict[str, Any] | None:
        view = view_from_args(args)
        if exemptions.honoured(view, rule.name) is not None:
            return None
        return fix(view, config_for(rule, args.get_config()))

    return remediate


def _stack_validate(rule: StackRule) -> Callable[[StackValidationArgs, Callable[..., None]], None]:
    def validate(args: StackValidationArgs, report: Callable[..., None]) -> None:
        views = [view_from_args(r) for r in args.resources]
        findings = rule.check(views, config_for(rule, args.get_config()))
        by_urn = {v.urn: v for v in views}
        kept: list[tuple[str | None, str]] = []
        suppressed: list[str] = []
        for urn, msg in findings:
            view = by_urn.get(urn or "")
            ex = exemptions.honoured(view, rule.name) if view is not None else None
            if ex is not None:
                suppressed.append(exemptions.reason_line(ex, msg))
            else:
                kept.append((urn, msg))
        if suppressed and not kept:
            args.not_applicable("\n".join(suppressed))
        for i, (urn, msg) in enumerate(kept):
            # With findings left to report, the exempted ones ride along on the first message.
            extra = "\n" + "\n".join(suppressed) if i == 0 and suppressed else ""
            report(msg + extra, urn)

    return validate


def to_policy(rule: Rule) -> ResourceValidationPolicy | StackValidationPolicy:
    """The CrossGuard policy for a rule."""
    if isinstance(rule, StackRule):
        return StackValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=_stack_validate(rule),
            enforcement_level=rule.enforcement,
            config_schema=_schema(rule),
        )
    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=_resource_validate(rule),
        remediate=_resource_remediate(rule) if rule.remediate else None,  # type: ignore[arg-type]
        enforcement_level=rule.enforcement,
        config_schema=_schema(rule),
    )
