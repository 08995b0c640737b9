"""Evaluate the policy pack in-process, through the analyzer interface the Pulumi engine calls.

``evaluate_policies(run, policy_config, stack)`` does what ``pulumi preview --policy-pack
policies --policy-pack-config FILE`` does, without the CLI (REFERENCE.md §2):

1. builds ``pulumi_policy.policy._PolicyAnalyzerServicer`` from ``policies.__main__.RULES``
   (the same list the CLI serves) and asks it for ``GetAnalyzerInfo``;
2. reconciles the config as the engine does — each policy's schema defaults, then the pack's
   initial config, then the user's JSON file, in which ``"all"`` sets every policy's
   enforcement level and a policy's own entry overrides it — validates it against the schemas
   (unknown policies, unknown properties and wrong types fail with ``PolicyConfigError``),
   and sends it with ``Configure``;
3. for every recorded resource: ``Remediate`` (policies at level ``remediate``), then
   ``Analyze`` with the remediated properties; then ``AnalyzeStack`` on the whole graph with
   parents and dependencies;
4. returns a ``PolicyReport``: violations with their level, the counts, every declared
   exemption with what it suppressed (never silent), and the remediations applied.

``_PolicyAnalyzerServicer`` is private API: pulumi-policy is pinned to a minor version and
tests/gpuplane/test_policy_engine.py goes through it, so an upgrade that breaks it fails loudly.
``PULUMI_PROJECT`` / ``PULUMI_STACK`` / ``PULUMI_DRY_RUN`` are unset while evaluating (the
servicer would otherwise reconfigure the SDK runtime). Call from synchronous code.

Another team's pack (``gpuplane plan --policy-pack DIR``) runs the same way: ``load_policy_pack``
reads ``DIR/PulumiPolicy.yaml`` and runs ``DIR/__main__.py`` as the policy language host would
(``DIR`` first on ``sys.path``, ``__name__ == "__main__"``) with ``pulumi_policy.PolicyPack``
replaced by a recorder, so the pack's ``PolicyPack(...)`` call hands over its policies,
enforcement level and initial config instead of starting its gRPC server.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as pb
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer

from gpuplane.engine.runtime import ProgramRun, RecordedResource, _clean_pulumi_env
from gpuplane.engine.struct_memo import memoized_struct_to_dict
from policies import exemptions
from policies.framework import Rule, to_policy
from policies.resources import ResourceView

POLICIES_DIR = Path(__file__).resolve().parents[2] / "policies"
LEVELS = {pb.ADVISORY: "advisory", pb.MANDATORY: "mandatory", pb.DISABLED: "disabled", pb.REMEDIATE: "remediate"}
LEVEL_CODES = {v: k for k, v in LEVELS.items()}
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "number": (int, float),
    "integer": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


class PolicyConfigError(ValueError):
    """The policy config file is wrong; the message names the policy, the key and the fix."""


class PolicyPackError(ValueError):
    """A policy pack cannot be loaded; the message names the path and the fix (exit code 2)."""


@dataclass
class LoadedPack:
    """A CrossGuard pack ready to evaluate: what its ``PolicyPack(...)`` call was given."""

    name: str
    version: str
    policies: list[Any]
    """``pulumi_policy`` policies (ResourceValidationPolicy / StackValidationPolicy)."""
    enforcement_level: EnforcementLevel
    initial_config: dict[str, Any] | None = None
    directory: Path = POLICIES_DIR
    gpuplane: bool = False
    """True for gpuplane's own pack (its stack-budget takes the stack's usage profile)."""

    @property
    def descriptions(self) -> dict[str, str]:
        return {p.name: p.description for p in self.policies}


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    urn: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"policy": self.policy, "level": self.level, "urn": self.urn, "message": self.message}


@dataclass
class ExemptionRecord:
    """One resource's declared exemption, and what it suppressed in this evaluation."""

    urn: str
    key: str
    policies: list[str]
    reason: str | None
    honoured: bool
    problems: list[str] = field(default_factory=list)
    suppressed: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "tag": self.key,
            "policies": self.policies,
            "reason": self.reason,
            "honoured": self.honoured,
            "problems": self.problems,
            "suppressed": self.suppressed,
        }


@dataclass
class PolicyReport:
    pack: str
    version: str
    violations: list[Violation] = field(default_factory=list)
    exemptions: list[ExemptionRecord] = field(default_factory=list)
    remediations: list[dict[str, str]] = field(default_factory=list)
    levels: dict[str, str] = field(default_factory=dict)
    """The reconciled enforcement level of every policy."""

    @property
    def mandatory(self) -> int:
        return sum(1 for v in self.violations if v.level == "mandatory")

    @property
    def advisory(self) -> int:
        return sum(1 for v in self.violations if v.level == "advisory")

    @property
    def passed(self) -> bool:
        return self.mandatory == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "version": self.version,
            "violations": [v.to_json() for v in self.violations],
            "mandatory": self.mandatory,
            "advisory": self.advisory,
            "exemptions": [e.to_json() for e in self.exemptions],
            "remediations": self.remediations,
            "levels": self.levels,
        }

    def markdown(self) -> str:
        """Violations and exemptions as Markdown (part of the pull-request comment)."""
        lines = [f"#### Policy ({self.pack} {self.version}): {self.mandatory} mandatory, {self.advisory} advisory"]
        if self.violations:
            lines += ["", "| level | policy | resource | what must change |", "| --- | --- | --- | --- |"]
            for v in sorted(self.violations, key=lambda v: (v.level != "mandatory", v.policy, v.urn)):
                lines.append(
                    f"| {'🔴' if v.level == 'mandatory' else '🟡'} {v.level} | `{v.policy}` | `{_short_urn(v.urn)}` | {_cell(v.message)} |"
                )
        else:
            lines += ["", "No violations."]
        if self.exemptions:
            lines += [
                "",
                "**Exemptions** (declared by tags; listed so none is silent)",
                "",
                "| resource | policies | reason | honoured | suppressed |",
                "| --- | --- | --- | --- | ---: |",
            ]
            for e in self.exemptions:
                lines.append(
                    f"| `{_short_urn(e.urn)}` | {', '.join(e.policies) or '—'} | {_cell(e.reason or '(none)')} | {'yes' if e.honoured else 'no: ' + _cell('; '.join(e.problems))} | {len(e.suppressed)} |"
                )
        if self.remediations:
            lines += [
                "",
                "**Remediations applied**: "
                + ", ".join(f"`{r['policy']}` on `{_short_urn(r['urn'])}`" for r in self.remediations),
            ]
        return "\n".join(lines) + "\n"


def _short_urn(urn: str) -> str:
    parts = urn.split("::")
    return f"{parts[2].rsplit('$', 1)[-1]}::{parts[3]}" if len(parts) >= 4 else urn or "(stack)"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# ---------------------------------------------------------------------------------------------
# Config


def pack_version(policies_dir: Path = POLICIES_DIR) -> str:
    data = yaml.safe_load((policies_dir / "PulumiPolicy.yaml").read_text()) or {}
    return str(data.get("version", "0.0.1"))


def stack_policy_config_path(stack: str, policies_dir: Path = POLICIES_DIR) -> Path | None:
    """``policies/config/<stack>.json`` when it exists."""
    path = policies_dir / "config" / f"{stack}.json"
    return path if path.exists() else None


def load_policy_config(path: Path) -> dict[str, Any]:
    """A ``--policy-pack-config`` JSON file, or PolicyConfigError naming the file."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PolicyConfigError(f"policy config {path} does not exist.") from None
    except json.JSONDecodeError as e:
        raise PolicyConfigError(f"policy config {path} is not valid JSON: {e}.") from None
    if not isinstance(data, dict):
        raise PolicyConfigError(f"policy config {path} must be a JSON object of policy names.")
    return data


def _level(value: Any, where: str) -> str:
    if isinstance(value, EnforcementLevel):
        return value.value
    if value not in LEVEL_CODES:
        raise PolicyConfigError(f"{where}: enforcement level {value!r} is not one of {sorted(LEVEL_CODES)}.")
    return str(value)


def _check_props(policy: str, props: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    for key, value in props.items():
        spec = schema.get(key)
        if spec is None:
            known = sorted(schema) or "none"
            raise PolicyConfigError(f"policy '{policy}': unknown property '{key}'. Known properties: {known}.")
        want = spec.get("type")
        types = _JSON_TYPES.get(str(want))
        if types and (not isinstance(value, types) or (want in ("number", "integer") and isinstance(value, bool))):
            raise PolicyConfigError(f"policy '{policy}': '{key}' = {value!r} must be of type {want}.")
        if want == "integer" and isinstance(value, float) and not value.is_integer():
            raise PolicyConfigError(f"policy '{policy}': '{key}' = {value!r} must be a whole number.")
        if "enum" in spec and value not in spec["enum"]:
            raise PolicyConfigError(f"policy '{policy}': '{key}' = {value!r} is not one of {spec['enum']}.")
        if "minimum" in spec and isinstance(value, (int, float)) and value < spec["minimum"]:
            raise PolicyConfigError(f"policy '{policy}': '{key}' = {value!r} is below the minimum {spec['minimum']}.")
        item = (spec.get("items") or {}).get("enum") if want == "array" else None
        if item is not None:
            bad = [v for v in value if v not in item]
            if bad:
                raise PolicyConfigError(f"policy '{policy}': '{key}' has {bad}, not among {item}.")


def reconcile_config(info: Any, user: Mapping[str, Any] | None) -> dict[str, tuple[str, dict[str, Any]]]:
    """{policy: (level, properties)} from AnalyzerInfo (defaults, initial config) and the user's file."""
    result: dict[str, tuple[str, dict[str, Any]]] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for p in info.policies:
        schema = json_format.MessageToDict(p.configSchema.properties) if p.HasField("configSchema") else {}
        schemas[p.name] = schema
        result[p.name] = (LEVELS[p.enforcementLevel], {k: v["default"] for k, v in schema.items() if "default" in v})
    for name, cfg in info.initialConfig.items():
        if name in result:
            level, props = result[name]
            result[name] = (LEVELS[cfg.enforcementLevel], {**props, **json_format.MessageToDict(cfg.properties)})
    user = dict(user or {})
    if "all" in user:
        level_all = _level(user.pop("all"), "policy config 'all'")
        result = {n: (level_all, props) for n, (_, props) in result.items()}
    for name, cfg in user.items():
        if name not in result:
            raise PolicyConfigError(
                f"policy config names unknown policy '{name}'. Policies in the pack: {sorted(result)}."
            )
        level, props = result[name]
        if isinstance(cfg, str):
            result[name] = (_level(cfg, f"policy '{name}'"), props)
            continue
        if not isinstance(cfg, dict):
            raise PolicyConfigError(f"policy '{name}': config must be an enforcement level or an object, got {cfg!r}.")
        cfg = dict(cfg)
        if "enforcementLevel" in cfg:
            level = _level(cfg.pop("enforcementLevel"), f"policy '{name}'")
        _check_props(name, cfg, schemas[name])
        result[name] = (level, {**props, **cfg})
    return result


# ---------------------------------------------------------------------------------------------
# Packs


def gpuplane_pack() -> LoadedPack:
    """gpuplane's own pack (``policies/``), from the rule list ``policies/__main__.py`` serves."""
    from policies.__main__ import DEFAULT_ENFORCEMENT, PACK_NAME, RULES

    return LoadedPack(
        PACK_NAME, pack_version(), [to_policy(r) for r in RULES], DEFAULT_ENFORCEMENT, None, POLICIES_DIR, True
    )


@dataclass
class _Call:
    name: str
    policies: list[Any]
    enforcement_level: EnforcementLevel | None
    initial_config: dict[str, Any] | None


@contextlib.contextmanager
def _recording_policy_pack(calls: list[_Call]) -> Iterator[None]:
    """``pulumi_policy.PolicyPack`` records its arguments instead of serving them over gRPC."""
    import pulumi_policy
    import pulumi_policy.policy as policy_module

    real = pulumi_policy.PolicyPack

    class RecordingPolicyPack(real):  # type: ignore[misc, valid-type]
        def __init__(
            self,
            name: str,
            policies: list[Any],
            enforcement_level: EnforcementLevel | None = None,
            initial_config: dict[str, Any] | None = None,
            *args: Any,
            **kwargs: Any,
        ) -> None:
            calls.append(_Call(name, policies, enforcement_level, initial_config))

    pulumi_policy.PolicyPack = RecordingPolicyPack  # type: ignore[misc]
    policy_module.PolicyPack = RecordingPolicyPack  # type: ignore[misc]
    try:
        yield
    finally:
        pulumi_policy.PolicyPack = real  # type: ignore[misc]
        policy_module.PolicyPack = real  # type: ignore[misc]


def load_policy_pack(directory: Path) -> LoadedPack:
    """A CrossGuard Python pack from its folder, without its gRPC server (see the module docstring).

    ``PolicyPackError`` (one line naming the path and the fix) when the folder is not a Python
    pack, its ``__main__.py`` raises, or it creates no (or more than one) ``PolicyPack``.
    """
    from pulumi_policy import Policy

    folder = Path(directory).expanduser().resolve()
    if not folder.is_dir():
        raise PolicyPackError(f"policy pack {directory}: {folder} is not a folder. Pass --policy-pack with the folder that holds PulumiPolicy.yaml.")
    manifest = folder / "PulumiPolicy.yaml"
    if not manifest.is_file():
        raise PolicyPackError(
            f"policy pack {folder} has no PulumiPolicy.yaml, so it is not a CrossGuard pack. Pass --policy-pack with the folder that holds PulumiPolicy.yaml and __main__.py."
        )
    try:
        data = yaml.safe_load(manifest.read_text()) or {}
    except yaml.YAMLError as e:
        raise PolicyPackError(f"{manifest}: not valid YAML ({' '.join(str(e).split())}).") from None
    runtime = data.get("runtime") if isinstance(data, dict) else None
    runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if runtime_name != "python":
        raise PolicyPackError(
            f"{manifest}: runtime is {runtime_name!r}; gpuplane plan runs Python packs only (runtime: python). Run other packs with `pulumi preview --policy-pack`."
        )
    main = folder / "__main__.py"
    if not main.is_file():
        raise PolicyPackError(f"policy pack {folder} has no __main__.py. Put the PolicyPack(...) call in {main}.")
    calls: list[_Call] = []
    saved_path, before = list(sys.path), set(sys.modules)
    try:
        with _recording_policy_pack(calls), _clean_pulumi_env():
            runpy.run_path(str(folder), run_name="__main__")
    except SystemExit as e:
        raise PolicyPackError(f"policy pack {main} exited ({e.code}) while loading. Fix the pack so it only builds its PolicyPack.") from None
    except Exception as e:
        raise PolicyPackError(f"policy pack {main} failed to load: {type(e).__name__}: {_one_line(str(e))}{_where(e, folder)}. Fix the pack (run it with python {main} to see the traceback).") from None
    finally:
        sys.path[:] = saved_path
        prefix = str(folder) + os.sep
        for name in set(sys.modules) - before:
            if (getattr(sys.modules.get(name), "__file__", None) or "").startswith(prefix):
                del sys.modules[name]
    if len(calls) != 1:
        raise PolicyPackError(
            f"policy pack {main} created {len(calls)} PolicyPack objects; it must create exactly one (PolicyPack(name=..., policies=[...]))."
        )
    call = calls[0]
    bad = [p for p in call.policies or [] if not isinstance(p, Policy)]
    if not call.policies or bad:
        raise PolicyPackError(f"policy pack {main}: PolicyPack(policies=...) must be a non-empty list of ResourceValidationPolicy / StackValidationPolicy objects.")
    return LoadedPack(
        call.name,
        pack_version(folder),
        list(call.policies),
        call.enforcement_level or EnforcementLevel.ADVISORY,  # PolicyPack's own default
        call.initial_config,
        folder,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def _where(e: BaseException, folder: Path) -> str:
    """`` (at file.py:12)``: the innermost frame of the pack's own code."""
    tb, found = e.__traceback__, ""
    while tb is not None:
        file = tb.tb_frame.f_code.co_filename
        if file.startswith(str(folder)):
            found = f" (at {file}:{tb.tb_lineno})"
        tb = tb.tb_next
    return found


# ---------------------------------------------------------------------------------------------
# Resources


def provider_defaults_from_config(config: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Default provider inputs from stack config (``aws:region``, ``gcp:project``, ``gcp:region``...)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in (config or {}).items():
        ns, _, name = str(key).partition(":")
        if ns in ("aws", "gcp", "kubernetes") and name:
            out.setdefault(ns, {})[name] = value
    return out


def _provider_urn(ref: str | None) -> str | None:
    return ref.rsplit("::", 1)[0] if ref else None


def resource_views(
    resources: Iterable[RecordedResource], provider_defaults: Mapping[str, Mapping[str, Any]] | None = None
) -> list[ResourceView]:
    """ResourceViews of recorded registrations, with each one's provider inputs."""
    resources = list(resources)
    providers = {r.urn: r.inputs for r in resources if r.type.startswith("pulumi:providers:")}
    defaults = provider_defaults or {}
    out = []
    for r in resources:
        pkg = r.type.split(":", 1)[0]
        prov = providers.get(_provider_urn(r.provider) or "")
        out.append(
            ResourceView(
                type=r.type,
                props=r.inputs,
                urn=r.urn,
                name=r.name,
                protect=r.protect,
                provider_props=dict(prov if prov is not None else defaults.get(pkg, {})),
                dependencies=tuple(r.dependencies),
                parent=r.parent,
            )
        )
    return out


def _struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(json.loads(json.dumps(props, default=str)))
    return s


def _provider_message(
    r: RecordedResource, by_urn: Mapping[str, RecordedResource], defaults: Mapping[str, Mapping[str, Any]]
) -> pb.AnalyzerProviderResource | None:
    urn = _provider_urn(r.provider)
    prov = by_urn.get(urn or "")
    if prov is not None:
        return pb.AnalyzerProviderResource(
            type=prov.type, properties=_struct(prov.inputs), urn=prov.urn, name=prov.name
        )
    pkg = r.type.split(":", 1)[0]
    if pkg in defaults and not r.type.startswith("pulumi:"):
        return pb.AnalyzerProviderResource(
            type=f"pulumi:providers:{pkg}", properties=_struct(defaults[pkg]), urn=f"default-{pkg}", name="default"
        )
    return None


# ---------------------------------------------------------------------------------------------
# Evaluation


def _strip_description(message: str, description: str) -> str:
    return message[len(description) :].lstrip("\n") if message.startswith(description) else message


def evaluate_policies(
    run: ProgramRun,
    policy_config: Mapping[str, Any] | None = None,
    stack: str | None = None,
    *,
    usage: Mapping[str, Any] | None = None,
    provider_defaults: Mapping[str, Mapping[str, Any]] | None = None,
    rules: list[Rule] | None = None,
    pack: LoadedPack | None = None,
) -> PolicyReport:
    """Run the pack over a recorded program (see the module docstring).

    The pack is ``pack`` (``load_policy_pack``), else gpuplane's own rules ``rules`` (default:
    every rule of ``policies/__main__.py``). ``usage`` (the stack's ``gpuplane:usage``) becomes
    gpuplane's ``stack-budget`` usage profile unless the policy config sets one.
    ``provider_defaults`` (``provider_defaults_from_config``) stand in for the default providers
    the CLI would pass.
    """
    if pack is None:
        pack = (
            gpuplane_pack()
            if rules is None
            else LoadedPack(
                "gpuplane", pack_version(), [to_policy(r) for r in rules], EnforcementLevel.MANDATORY, None, POLICIES_DIR, True
            )
        )
    pack_name, version = pack.name, pack.version
    servicer = _PolicyAnalyzerServicer(pack_name, version, list(pack.policies), pack.enforcement_level, pack.initial_config)
    defaults = provider_defaults or {}
    with _clean_pulumi_env(), contextlib.ExitStack() as stack_ctx:
        info = servicer.GetAnalyzerInfo(None, None)
        reconciled = reconcile_config(info, policy_config)
        if usage is not None and pack.gpuplane and "stack-budget" in reconciled:
            user_sets_usage = (
                isinstance((policy_config or {}).get("stack-budget"), dict)
                and "usage" in (policy_config or {})["stack-budget"]
            )
            if not user_sets_usage:
                level, props = reconciled["stack-budget"]
                reconciled["stack-budget"] = (level, {**props, "usage": dict(usage)})
        servicer.Configure(
            pb.ConfigureAnalyzerRequest(
                policyConfig={
                    n: pb.PolicyConfig(enforcementLevel=LEVEL_CODES[lvl], properties=_struct(props))
                    for n, (lvl, props) in reconciled.items()
                }
            ),
            None,
        )
        servicer.ConfigureStack(
            pb.AnalyzerStackConfigureRequest(stack=stack or run.stack, project=run.project, dry_run=True), None
        )
        stack_ctx.enter_context(memoized_struct_to_dict())  # after Configure: see struct_memo
        report = PolicyReport(pack=pack_name, version=version, levels={n: lvl for n, (lvl, _) in reconciled.items()})
        descriptions = pack.descriptions
        by_urn = {r.urn: r for r in run.resources}
        not_applicable: list[tuple[str, str, str]] = []  # (policy, urn, reason)
        stack_resources: list[pb.AnalyzerResource] = []
        props_by_urn: dict[str, dict[str, Any]] = {}

        def collect(response: Any, urn: str) -> None:
            for d in response.diagnostics:
                message = _strip_description(d.message, descriptions.get(d.policyName, d.description))
                # A stack policy that reports other resources too carries its exempted findings
                # as reason lines on its first message (policies/framework.py): list them as such.
                lines = message.split("\n")
                kept = [line for line in lines if not exemptions.REASON_LINE.match(line)]
                if len(kept) < len(lines):
                    not_applicable.append((d.policyName, d.urn or urn, "\n".join(x for x in lines if x not in kept)))
                    message = "\n".join(kept)
                report.violations.append(
                    Violation(d.policyName, LEVELS.get(d.enforcementLevel, "advisory"), d.urn or urn, message)
                )
            for na in response.not_applicable:
                not_applicable.append((na.policy_name, urn, na.reason))

        for r in run.resources:
            if r.type == "pulumi:pulumi:Stack":
                continue
            options = pb.AnalyzerResourceOptions(
                protect=r.protect, ignoreChanges=list(r.ignore_changes), parent=r.parent or ""
            )
            provider = _provider_message(r, by_urn, defaults)
            props = r.inputs
            request = pb.AnalyzeRequest(
                type=r.type, properties=_struct(props), urn=r.urn, name=r.name, options=options, provider=provider
            )
            remediated = servicer.Remediate(request, None)
            for rem in remediated.remediations:
                if rem.HasField("properties") and rem.properties.fields:
                    props = json_format.MessageToDict(rem.properties)
                    report.remediations.append({"policy": rem.policyName, "urn": r.urn})
                    request = pb.AnalyzeRequest(
                        type=r.type,
                        properties=_struct(props),
                        urn=r.urn,
                        name=r.name,
                        options=options,
                        provider=provider,
                    )
            props_by_urn[r.urn] = props
            collect(servicer.Analyze(request, None), r.urn)
            stack_resources.append(
                pb.AnalyzerResource(
                    type=r.type,
                    properties=_struct(props),
                    urn=r.urn,
                    name=r.name,
                    options=options,
                    provider=provider,
                    parent=r.parent or "",
                    dependencies=list(r.dependencies),
                )
            )
        collect(servicer.AnalyzeStack(pb.AnalyzeStackRequest(resources=stack_resources), None), run.stack_urn or "")

    report.exemptions = _exemption_records(run.resources, props_by_urn, not_applicable, set(descriptions))
    return report


def _exemption_records(
    resources: list[RecordedResource],
    props_by_urn: Mapping[str, dict[str, Any]],
    not_applicable: list[tuple[str, str, str]],
    known: set[str],
) -> list[ExemptionRecord]:
    suppressed: dict[str, list[dict[str, str]]] = {}
    for policy, _urn, reason in not_applicable:
        for line in reason.splitlines():
            m = exemptions.REASON_LINE.match(line)
            if m:
                suppressed.setdefault(m.group("urn"), []).append({"policy": policy, "message": m.group("message")})
    out = []
    for r in resources:
        view = ResourceView(type=r.type, props=props_by_urn.get(r.urn, r.inputs), urn=r.urn, name=r.name)
        ex = exemptions.declared(view)
        if ex is None:
            continue
        problems = exemptions.problems(ex, known)
        out.append(
            ExemptionRecord(
                r.urn, ex.key, list(ex.policies), ex.reason, bool(ex.reason), problems, suppressed.get(r.urn, [])
            )
        )
    return out
