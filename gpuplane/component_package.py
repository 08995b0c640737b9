"""gpuplane's components as a Pulumi component package, for TypeScript, Go, C#, Java and YAML.

``provider/__main__.py`` (next to ``provider/PulumiPlugin.yaml``) hosts the components through
the Python SDK's component provider (``pulumi.provider.experimental``); this module is what it
runs, and what the test suite uses to produce and check the package schema without the CLI.

The components are written for Python users: ``from __future__ import annotations`` (string
annotations), ``Literal`` choices and references to other components (``cluster:
KubernetesCluster``). The SDK's analyzer reads raw, unevaluated annotations and knows none of
those, so the package is built from a *schema view* of each component, derived here and never
written by hand:

- each Args ``TypedDict`` is resolved with ``typing.get_type_hints`` and cloned with schema-ready
  annotations (same name, module and qualified name, so the analyzer still finds the field
  docstrings in the component's source);
- ``Literal`` string (or integer) choices become schema enums named ``<Owner><Field>``; the value
  handed to the component is the plain string again, and the planner keeps validating it;
- a field typed as another gpuplane component becomes a resource reference
  (``#/resources/gpuplane:index:KubernetesCluster``); at construct time the reference is mapped
  back to the live component object this provider process created (components read plan-time
  ``facts`` from each other, which no wire format carries);
- outputs are the component class's ``pulumi.Output[T]`` annotations (with their docstrings);
- a field none of these rules can express (a union of two types, a callable, ...) is left out of
  the schema and *reported* by ``not_expressible()``; the test suite fails on any such field
  that is not listed in ``NOT_EXPRESSIBLE`` with its reason.

The list of components is ``components.__all__`` (``components/__init__.py``): every exported
``ComponentResource`` subclass is served, so a component added there is in the package.
"""

from __future__ import annotations

import enum
import functools
import inspect
import json
import re
import sys
import types
import typing
from collections import abc
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin

import pulumi
from pulumi.provider.experimental.analyzer import PropertyDefinition
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.experimental.schema import generate_schema

PACKAGE_NAME = "gpuplane"
REPO_ROOT = Path(__file__).resolve().parents[1]
PROVIDER_DIR = REPO_ROOT / "provider"
SCHEMA_PATH = PROVIDER_DIR / "schema.json"
RESOURCE_REF_PREFIX = "#/resources/"
# ``pulumi.Input[T]`` holds the forward reference ``'Output[T]'``; resolve it with these names.
_SDK_NAMES: dict[str, Any] = {"Output": pulumi.Output, "T": typing.TypeVar("T")}

# Fields the schema cannot express, with the reason; the test suite fails on any field that the
# conversion drops and that is not listed here ("Owner.field" -> reason).
NOT_EXPRESSIBLE: dict[str, str] = {}


def package_version() -> str:
    """The version in pyproject.toml (the package schema carries it; SDKs are generated for it)."""
    from importlib import metadata

    try:
        return metadata.version("gpuplane")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        text = (REPO_ROOT / "pyproject.toml").read_text()
        found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
        return found.group(1) if found else "0.0.0"


def component_classes() -> list[type[pulumi.ComponentResource]]:
    """Every ``ComponentResource`` exported by ``components`` (the one list of components)."""
    import components

    found = []
    for name in components.__all__:
        obj = getattr(components, name)
        if inspect.isclass(obj) and issubclass(obj, pulumi.ComponentResource):
            found.append(obj)
    return found


def type_token(component: type) -> str:
    return f"{PACKAGE_NAME}:index:{component.__name__}"


# --- converting Python annotations to schema-ready ones -------------------------------------------


class NotExpressible(Exception):
    """An annotation with no Pulumi schema type; the message is the reason."""


@dataclass(frozen=True)
class Dropped:
    """A component input (or nested field) left out of the schema."""

    path: str
    """``Owner.field`` (``Owner`` is the Args or nested TypedDict class)."""
    annotation: str
    reason: str


class _Converter:
    """Builds schema-ready clones of Args TypedDicts; remembers drops, enums and resource refs."""

    def __init__(self, components: list[type]):
        self.components = components
        self.dropped: list[Dropped] = []
        self.enums: dict[str, type[enum.Enum]] = {}
        self.clones: dict[type, type] = {}
        self.names: dict[str, object] = {n: f"the component {n}" for n in (c.__name__ for c in components)}
        # (owner class name, python field name) -> (resource token, where: "" | "items" | "values")
        self.resource_refs: dict[tuple[str, str], tuple[str, str]] = {}

    def clone_typeddict(self, td: type) -> type:
        if td in self.clones:
            return self.clones[td]
        self._claim(td.__name__, td)
        hints = typing.get_type_hints(td, localns=_SDK_NAMES, include_extras=True)
        fields: dict[str, Any] = {}
        for field_name, hint in hints.items():
            try:
                fields[field_name] = self.convert(hint, td, field_name)
            except NotExpressible as e:
                # (``__required_keys__`` misses ``Required[...]`` written as a string annotation)
                required = get_origin(hint) is Required or (bool(getattr(td, "__total__", True)) and get_origin(hint) is not NotRequired)
                reason = f"{e} (required: other languages cannot create the component without it)" if required else str(e)
                self.dropped.append(Dropped(f"{td.__name__}.{field_name}", _show(hint), reason))
        clone = typing.TypedDict(td.__name__, fields, total=td.__total__)  # type: ignore[misc,attr-defined]
        clone.__module__ = td.__module__  # the analyzer reads field docstrings from this source
        clone.__qualname__ = td.__qualname__
        clone.__doc__ = td.__doc__
        self.clones[td] = clone
        return clone

    def convert(self, hint: Any, owner: type, field_name: str, where: str = "") -> Any:
        origin = get_origin(hint)
        if origin in (Required, NotRequired):
            return origin[self.convert(get_args(hint)[0], owner, field_name, where)]
        if _is_input(hint):
            inner = _input_inner(hint)
            converted = self.convert(inner, owner, field_name, where)
            return converted if (owner.__name__, field_name) in self.resource_refs else pulumi.Input[converted]  # type: ignore[valid-type,misc]
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(hint) if a is not type(None)]
            if len(members) == 1:
                return self.convert(members[0], owner, field_name, where) | None
            raise NotExpressible(
                f"a union of {', '.join(_show(m) for m in members)} has no single schema type; "
                "split it into separate inputs or pick one type"
            )
        if origin is Literal:
            return self._enum(hint, owner, field_name)
        if hint in (str, int, float, bool) or hint is Any:
            return hint
        if origin in (list, abc.Sequence, typing.List):  # noqa: UP006
            (item,) = get_args(hint) or (None,)
            if item is None:
                raise NotExpressible("a list without an item type")
            return list[self._contained(item, owner, field_name, "items")]  # type: ignore[misc]
        if origin in (dict, abc.Mapping, typing.Dict):  # noqa: UP006
            key, value = get_args(hint) or (None, None)
            if key is not str:
                raise NotExpressible(f"map keys must be strings in a schema, got {_show(key)}")
            return dict[str, self._contained(value, owner, field_name, "values")]  # type: ignore[misc]
        if inspect.isclass(hint) and typing.is_typeddict(hint):
            return self.clone_typeddict(hint)
        if inspect.isclass(hint) and hint in self.components:
            # ``Any`` for the analyzer; GpuplaneProvider turns it into a resource reference.
            self.resource_refs[(owner.__name__, field_name)] = (type_token(hint), where)
            return Any
        if inspect.isclass(hint) and issubclass(hint, pulumi.Resource):
            if getattr(hint, "pulumi_type", None):
                return hint  # a provider resource: the analyzer refers to its package's schema
            raise NotExpressible(f"{_show(hint)} is a resource that is not part of this package")
        if inspect.isclass(hint) and issubclass(hint, enum.Enum):
            return hint
        raise NotExpressible(f"{_show(hint)} has no Pulumi schema type")

    def _claim(self, name: str, owner: object) -> None:
        """Types of a Pulumi package share one namespace (``gpuplane:index:<Name>``): one owner per name."""
        taken = self.names.setdefault(name, owner)
        if taken is not owner and taken != owner:
            where = lambda o: f"{o.__module__}.{o.__qualname__}" if inspect.isclass(o) else str(o)  # noqa: E731
            raise TypeError(
                f"two schema types would be named gpuplane:index:{name}: {where(taken)} and {where(owner)}; "
                "rename one of them (every type of the package shares the index module)"
            )

    def _contained(self, hint: Any, owner: type, field_name: str, where: str) -> Any:
        return self.convert(hint, owner, field_name, where)

    def _enum(self, hint: Any, owner: type, field_name: str) -> type[enum.Enum]:
        values = get_args(hint)
        if all(isinstance(v, str) for v in values):
            base: type = str
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            base = int
        else:
            raise NotExpressible(f"Literal{list(values)} mixes value types; a schema enum has one")
        stem = owner.__name__.removesuffix("Args")
        name = stem + "".join(part.capitalize() for part in field_name.split("_"))
        existing = self.enums.get(name)
        if existing is not None and [m.value for m in existing] == list(values):
            return existing
        self._claim(name, f"the enum of {owner.__module__}.{owner.__qualname__}.{field_name}")
        members = {_member_name(v): v for v in values}
        made = enum.Enum(name, members, type=base)  # type: ignore[misc]
        made.__doc__ = f"Values of ``{owner.__name__}.{field_name}``."
        made.__module__ = __name__
        self.enums[name] = made
        return made


def _member_name(value: object) -> str:
    """``on_demand`` -> ``OnDemand``, ``time-slicing`` -> ``TimeSlicing``, ``NoSchedule`` kept."""
    text = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", str(value)) if part)
    return text if text and not text[0].isdigit() else f"Value{text}"


def _is_input(hint: Any) -> bool:
    if get_origin(hint) not in (Union, types.UnionType):
        return False
    args = get_args(hint)
    return any(get_origin(a) is Awaitable for a in args) and any(get_origin(a) is pulumi.Output for a in args)


def _input_inner(hint: Any) -> Any:
    for a in get_args(hint):
        if get_origin(a) is Awaitable:
            return get_args(a)[0]
    raise AssertionError(hint)


def _show(hint: Any) -> str:
    if inspect.isclass(hint) and not get_args(hint):
        return hint.__name__
    return repr(hint).replace("typing.", "").replace("pulumi.output.", "")


# --- the schema view of each component ---------------------------------------------------------------


def _output_annotations(component: type, converter: _Converter) -> dict[str, Any]:
    """The component's ``pulumi.Output[T]`` (or ``pulumi.Output[T] | None``) class annotations.

    Other attributes (plan-time ``facts``, providers, child handles) are Python-only and are not
    outputs. An output whose ``T`` has no schema type is reported like an input.
    """
    outputs: dict[str, Any] = {}
    for cls in reversed(component.__mro__):
        if cls in (object, pulumi.Resource, pulumi.ComponentResource):
            continue
        module_globals = vars(sys.modules[cls.__module__])
        for attr, raw in inspect.get_annotations(cls).items():
            if attr.startswith("_"):
                continue
            hint = eval(raw, module_globals) if isinstance(raw, str) else raw  # our own annotations
            members = [a for a in get_args(hint) if a is not type(None)] if get_origin(hint) in (Union, types.UnionType) else [hint]
            if len(members) != 1 or get_origin(members[0]) is not pulumi.Output:
                continue
            (inner,) = get_args(members[0])
            optional = members[0] is not hint
            try:
                converted = converter.convert(inner, component, attr)
            except NotExpressible as e:
                converter.dropped.append(Dropped(f"{component.__name__}.{attr}", _show(hint), str(e)))
                continue
            if isinstance(converted, type) and issubclass(converted, enum.Enum):
                converted = str  # an output is read back as its value, never as an enum member
            outputs[attr] = pulumi.Output[converted | None if optional else converted]  # type: ignore[misc]
    return outputs


def _schema_view(component: type, converter: _Converter) -> type:
    """A class the SDK's analyzer can read: same name/docstring, resolved args and outputs.

    Constructing it builds the real component (``__new__`` returns the component instance), so
    the SDK's ``construct`` gets the object whose outputs it reads.
    """
    args_hint = typing.get_type_hints(component.__init__, localns=_SDK_NAMES).get("args")  # type: ignore[misc]
    if args_hint is None or not typing.is_typeddict(args_hint):
        raise TypeError(f"{component.__name__}.__init__ needs an 'args' parameter typed with a TypedDict")
    args_clone = converter.clone_typeddict(args_hint)

    def __new__(cls: type, name: str, args: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> Any:
        return component(name, _plain(args, args_hint), opts)

    def __init__(self: Any, name: str, args: Any, opts: pulumi.ResourceOptions | None = None) -> None:  # pragma: no cover - never called
        raise AssertionError("the schema view builds the component in __new__")

    __init__.__annotations__ = {"name": str, "args": args_clone, "opts": pulumi.ResourceOptions | None}
    namespace: dict[str, Any] = {
        "__new__": __new__,
        "__init__": __init__,
        "__doc__": _description(component),
        "__module__": component.__module__,
        "__qualname__": component.__qualname__,
        "__annotations__": _output_annotations(component, converter),
        "component": component,
    }
    return type(component.__name__, (pulumi.ComponentResource,), namespace)


def _description(component: type) -> str:
    """The class docstring; where it points to "the module docstring", that text follows it
    (users of other languages have the schema, not the Python module)."""
    doc = inspect.cleandoc(component.__doc__ or "")
    module_doc = inspect.cleandoc(sys.modules[component.__module__].__doc__ or "")
    if "module docstring" in doc and module_doc:
        doc = f"{doc}\n\n{module_doc}"
    return doc


def _plain(value: Any, hint: Any = None) -> Any:
    """Inputs as Python users pass them, guided by the component's own annotation ``hint``.

    Enum members go back to their values. Whole-number floats become ``int`` where the field is
    an ``int``: numbers travel as floats, and the SDK's own integer conversion (pulumi 3.2xx,
    ``map_input_properties``) is overwritten by the raw value before it returns.
    """
    hint = _unwrap(hint)
    if isinstance(value, enum.Enum):
        return value.value
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        if inspect.isclass(hint) and typing.is_typeddict(hint):
            fields = typing.get_type_hints(hint, localns=_SDK_NAMES, include_extras=True)
            return {k: _plain(v, fields.get(k)) for k, v in value.items()}
        value_hint = get_args(hint)[1] if get_origin(hint) in (dict, abc.Mapping) and len(get_args(hint)) == 2 else None
        return {k: _plain(v, value_hint) for k, v in value.items()}
    if isinstance(value, list):
        item_hint = get_args(hint)[0] if get_origin(hint) in (list, abc.Sequence) and get_args(hint) else None
        return [_plain(v, item_hint) for v in value]
    return value


def _unwrap(hint: Any) -> Any:
    """``Required[X]``, ``NotRequired[X]``, ``X | None`` and ``pulumi.Input[X]`` -> ``X``."""
    while True:
        origin = get_origin(hint)
        if origin in (Required, NotRequired):
            hint = get_args(hint)[0]
        elif _is_input(hint):
            hint = _input_inner(hint)
        elif origin in (Union, types.UnionType) and len([a for a in get_args(hint) if a is not type(None)]) == 1:
            hint = next(a for a in get_args(hint) if a is not type(None))
        else:
            return hint


def registered_outputs(component: type) -> list[str]:
    """Keys of the dict literal the component passes to ``self.register_outputs`` (from its source)."""
    import ast
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(component)))
    keys: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "register_outputs"
            and node.args
            and isinstance(node.args[0], ast.Dict)
        ):
            keys += [k.value for k in node.args[0].keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    return keys


def undeclared_outputs() -> dict[str, list[str]]:
    """Registered outputs with no ``pulumi.Output[T]`` annotation, per component (not in the schema)."""
    missing: dict[str, list[str]] = {}
    for component in component_classes():
        declared = _output_annotations(component, _Converter([]))
        gaps = [k for k in registered_outputs(component) if k not in declared]
        if gaps:
            missing[component.__name__] = gaps
    return missing


# --- the provider -------------------------------------------------------------------------------


_LIVE: dict[str, pulumi.ComponentResource] = {}
"""Components this provider process constructed, by URN (resource references resolve to them)."""


class _LiveComponents(pulumi.runtime.ResourceModule):
    """Rehydrates ``gpuplane:index:*`` resource references to the live component objects."""

    def version(self) -> Any:
        return None

    def construct(self, name: str, typ: str, urn: str) -> pulumi.Resource:
        # A reference this process did not create stays its URN, as without this module (the
        # SDK's default); construct() then names the input that needed a component.
        return _LIVE.get(urn) or typing.cast(pulumi.Resource, urn)


@functools.cache
def _register_live_components() -> None:
    """Once per process: ``gpuplane:index:*`` references deserialize through ``_LiveComponents``."""
    pulumi.runtime.register_resource_module(PACKAGE_NAME, "index", _LiveComponents())


class GpuplaneProvider(ComponentProvider):
    """The SDK's ``ComponentProvider`` over the schema views, plus component references.

    The SDK's ``component_provider_host`` cannot express a reference from one component of the
    package to another (its analyzer only refers to other packages' resources), so the host
    (provider/__main__.py) runs this subclass with ``pulumi.provider.main``, exactly as the SDK
    host does with its own class.
    """

    def __init__(self, components: list[type[pulumi.ComponentResource]] | None = None, version: str | None = None):
        from pulumi.provider.provider import Provider

        self.hosted = components if components is not None else component_classes()
        self.converter = _Converter(self.hosted)
        views = [_schema_view(c, self.converter) for c in self.hosted]
        self._name = PACKAGE_NAME
        self.analyzer = __import__("pulumi.provider.experimental.analyzer", fromlist=["Analyzer"]).Analyzer(PACKAGE_NAME)
        result = self.analyzer.analyze(views)  # type: ignore[arg-type]
        self._components = {v.__name__: v for v in views}  # type: ignore[misc]
        self._component_defs = result["component_definitions"]
        self._type_defs = result["type_definitions"]
        self._external_enum_types = result["external_enum_types"]
        self._dependencies = sorted(result["dependencies"], key=lambda d: f"{d.name}{d.version}")
        self._patch_resource_refs()
        version = version or package_version()
        self.schema_dict = generate_schema(
            PACKAGE_NAME, version, None, self._component_defs, self._type_defs, self._dependencies
        ).to_json()
        _describe_package(self.schema_dict)
        self.schema_dict = canonical(_camel_case_names(_tidy(self.schema_dict)))
        Provider.__init__(self, version, json.dumps(self.schema_dict))
        _register_live_components()

    def _patch_resource_refs(self) -> None:
        owners: dict[str, dict[str, PropertyDefinition]] = {}
        mappings: dict[str, dict[str, str]] = {}
        for c in self._component_defs.values():
            real = self._components[c.name].component  # type: ignore[attr-defined]
            args_name = typing.get_type_hints(real.__init__, localns=_SDK_NAMES)["args"].__name__
            owners[args_name], mappings[args_name] = c.inputs, c.inputs_mapping
        for t in self._type_defs.values():
            owners[t.name], mappings[t.name] = t.properties, t.properties_mapping
        for (owner, field_name), (token, where) in self.converter.resource_refs.items():
            props, mapping = owners[owner], mappings[owner]
            schema_name = next(k for k, v in mapping.items() if v == field_name)
            prop = props[schema_name]
            target = prop.items if where == "items" else prop.additional_properties if where == "values" else prop
            assert target is not None
            target.ref, target.type, target.plain = RESOURCE_REF_PREFIX + token, None, None

    def get_type_definition(self, prop: PropertyDefinition) -> Any:
        if prop.ref and prop.ref.startswith(RESOURCE_REF_PREFIX):
            return None  # a component reference: passed through, rehydrated by _LiveComponents
        return super().get_type_definition(prop)

    def construct(self, name: str, resource_type: str, inputs: Any, options: pulumi.ResourceOptions | None = None) -> Any:
        """The SDK's construct, plus: references checked first, the new component remembered."""
        from pulumi.provider.provider import ConstructResult
        from pulumi.provider.server import ComponentInitError

        self.validate_resource_type(self._name, resource_type)
        component_name = resource_type.rsplit(":", 1)[-1]
        definition = self._component_defs[component_name]
        _check_references(component_name, name, inputs, definition)
        mapped = self.map_inputs(inputs, definition)
        try:
            instance = self._components[component_name](name, mapped, options)  # type: ignore[arg-type]
        except Exception as e:  # the SDK reports errors in component code this way
            raise ComponentInitError(e) from e
        state = self.get_state(instance, definition)

        def remember(urn: str) -> str:
            # The engine hands this URN to the program only once it resolved, so a later
            # component's reference to this one always finds the live object.
            _LIVE[urn] = instance
            return urn

        return ConstructResult(instance.urn.apply(remember), state)

    def not_expressible(self) -> list[Dropped]:
        return list(self.converter.dropped)


def _check_references(component_name: str, name: str, inputs: Any, definition: Any) -> None:
    """One clear error for a component reference this process cannot resolve to a live component."""
    for key, prop in definition.inputs.items():
        value = (inputs or {}).get(key)
        if prop.ref and prop.ref.startswith(RESOURCE_REF_PREFIX) and value is not None and not isinstance(value, pulumi.ComponentResource):
            from components.errors import ComponentInputError, Problem

            wanted = prop.ref.removeprefix(RESOURCE_REF_PREFIX)
            raise ComponentInputError(
                component_name,
                name,
                [
                    Problem(
                        key,
                        value,
                        f"is not a {wanted} this gpuplane provider created in this deployment.",
                        f"pass a {wanted} created in the same program (component references do not cross stacks or providers).",
                    )
                ],
            )


def _tidy(value: Any, key: str = "") -> Any:
    """Drop ``null`` fields; descriptions dedented, reST ````code```` as Markdown ```code```."""
    if isinstance(value, dict):
        return {k: _tidy(v, k) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    if isinstance(value, str) and key == "description":
        return inspect.cleandoc(value).replace("``", "`")
    return value


def _camel_case_names(doc: dict[str, Any]) -> dict[str, Any]:
    """In descriptions, ```max_nodes``` -> ```maxNodes``` where that is a property name of the package."""
    from pulumi.provider.experimental.util import camel_case

    names: set[str] = set()
    for section in ("resources", "types"):
        for spec in doc.get(section, {}).values():
            names |= set(spec.get("inputProperties", {})) | set(spec.get("properties", {}))
    pattern = re.compile(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`")

    def fix(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: fix(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, str) and key == "description":
            return pattern.sub(lambda m: f"`{camel_case(m.group(1))}`" if camel_case(m.group(1)) in names else m.group(0), value)
        return value

    return typing.cast(dict[str, Any], fix(doc))


def _describe_package(schema: dict[str, Any]) -> None:
    schema.setdefault("displayName", "gpuplane")
    schema.setdefault(
        "description",
        "GPU node pools, spot training clusters, scale-to-zero inference endpoints and feature stores "
        "on EKS, GKE or any Kubernetes cluster, with plan-time checks.",
    )
    schema.setdefault("license", "Apache-2.0")
    schema.setdefault("keywords", ["category/cloud", "kind/component", "gpu", "kubernetes", "ml"])
    # Pulumi's Go generator marks an object type as an input (and writes its `...Args` struct) only once a
    # plain object property came earlier in the same property list (pkg/codegen/go/gen.go,
    # populateDetailsForPropertyTypes sets `input = true` for the rest of the loop): a plain array of objects
    # listed first (EdgeDeployment.groups, every TrainingFederation list) referenced `EdgeSiteGroupArgsArgs`
    # that was never written, and the Go SDK did not compile. Extra input types are written for every type.
    schema.setdefault("language", {}).setdefault("go", {})["generateExtraInputTypes"] = True


@functools.cache
def provider() -> GpuplaneProvider:
    """The provider over every component (cached: the analysis imports every cloud SDK)."""
    return GpuplaneProvider()


def schema() -> dict[str, Any]:
    return provider().schema_dict


def canonical(spec: dict[str, Any]) -> dict[str, Any]:
    """The schema as the Pulumi CLI reads it back (``pulumi package get-schema`` prints this): a type
    nested under ``items`` or ``additionalProperties`` is a bare type spec there, so a ``description``
    the SDK's analyzer copies into it is dropped (the property keeps its own); ``config`` is an empty
    object and an empty ``dependencies`` list is absent. Returns a copy."""

    names = ("properties", "inputProperties", "resources", "types", "functions", "language")

    def strip(node: Any, nested_type: bool = False, keyed_by_name: bool = False) -> Any:
        if isinstance(node, dict):
            out = {k: strip(v, not keyed_by_name and k in ("items", "additionalProperties"),
                            not keyed_by_name and k in names)
                   for k, v in node.items()}
            if nested_type:
                out.pop("description", None)
            return out
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    out = strip(spec)
    out.setdefault("config", {})
    if not out.get("dependencies"):
        out.pop("dependencies", None)
    return out


def schema_text() -> str:
    """The schema as checked in at ``provider/schema.json`` (stable key order, trailing newline)."""
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


def not_expressible() -> list[Dropped]:
    """Every component input (or nested field) the schema leaves out, with the reason."""
    return provider().not_expressible()


def serve(argv: list[str]) -> None:
    """Run the provider over gRPC for the Pulumi engine (what ``pulumi package add`` starts)."""
    from pulumi.provider import main

    main(provider(), argv)


# --- checks over the schema (used by the tests; no Pulumi CLI needed) ----------------------------------


def missing_inputs(schema_doc: dict[str, Any] | None = None) -> list[Dropped]:
    """Every Args field (and nested TypedDict field) that has no property in the schema, with why.

    Walks the components' own Args (``typing.get_type_hints``), independently of the conversion,
    so a field the SDK's analyzer leaves out without saying so is caught too.
    """
    from pulumi.provider.experimental.util import camel_case

    doc = schema_doc if schema_doc is not None else schema()
    reasons = {d.path: d.reason for d in not_expressible()}
    found: list[Dropped] = []
    seen: set[type] = set()

    def walk(td: type, properties: dict[str, Any]) -> None:
        if td in seen:
            return
        seen.add(td)
        for field_name, hint in typing.get_type_hints(td, localns=_SDK_NAMES, include_extras=True).items():
            path = f"{td.__name__}.{field_name}"
            if camel_case(field_name) not in properties:
                found.append(Dropped(path, _show(hint), reasons.get(path, "left out of the schema by the SDK's analyzer")))
                continue
            for nested in _nested_typeddicts(hint):
                nested_type = doc.get("types", {}).get(f"{PACKAGE_NAME}:index:{nested.__name__}")
                walk(nested, (nested_type or {}).get("properties", {}))

    for component in component_classes():
        args = typing.get_type_hints(component.__init__, localns=_SDK_NAMES)["args"]  # type: ignore[misc]
        resource = doc.get("resources", {}).get(type_token(component), {})
        walk(args, resource.get("inputProperties", {}))
    return found


def _nested_typeddicts(hint: Any) -> list[type]:
    if inspect.isclass(hint) and typing.is_typeddict(hint):
        return [hint]
    return [t for a in get_args(hint) for t in _nested_typeddicts(a)]


_INTERPOLATION = re.compile(r"^\$\{([^}]+)\}$")


def check_yaml_program(program: dict[str, Any], schema_doc: dict[str, Any] | None = None) -> list[str]:
    """Problems of a Pulumi YAML program's use of gpuplane resources, checked against the schema.

    Every ``gpuplane:*`` resource type must exist; every property must be an input of that type
    with a compatible JSON type (string, number, boolean, array, object, enum value, resource
    reference); required inputs must be present; ``${res.prop}`` must name an output of ``res``.
    Resources of other packages are not checked here.
    """
    doc = schema_doc if schema_doc is not None else schema()
    resources = program.get("resources") or {}
    config = program.get("config") or {}
    problems: list[str] = []
    types_of = {name: (r or {}).get("type", "") for name, r in resources.items()}

    def resolve_type(ref: str) -> dict[str, Any] | None:
        if ref.startswith("#/types/"):
            return doc.get("types", {}).get(ref.removeprefix("#/types/"))
        return None

    def check_value(where: str, value: Any, spec: dict[str, Any]) -> None:
        if isinstance(value, str) and (m := _INTERPOLATION.match(value)):
            check_reference(where, m.group(1), spec)
            return
        ref = spec.get("$ref")
        if ref and ref.startswith(RESOURCE_REF_PREFIX):
            problems.append(f"{where}: needs a reference to a {ref.removeprefix(RESOURCE_REF_PREFIX)} (${{name}}), got {value!r}")
            return
        target = resolve_type(ref) if ref else spec
        if ref and target is None:
            return  # pulumi.json#/Any and other packages' types take anything
        assert target is not None
        if "enum" in target:
            allowed = [e["value"] for e in target["enum"]]
            if value not in allowed:
                problems.append(f"{where}: {value!r} is not one of {allowed}")
            return
        kind = target.get("type")
        ok = {
            "string": isinstance(value, str),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "array": isinstance(value, list),
            "object": isinstance(value, dict),
        }.get(kind or "", True)
        if not ok:
            problems.append(f"{where}: {value!r} is not of type {kind}")
            return
        if kind == "array":
            for i, item in enumerate(value):
                check_value(f"{where}[{i}]", item, spec.get("items") or target.get("items") or {})
        elif kind == "object" and "properties" in target:
            check_object(where, value, target.get("properties", {}), target.get("required", []))
        elif kind == "object":
            for k, v in value.items():
                check_value(f"{where}.{k}", v, target.get("additionalProperties") or {})

    def check_reference(where: str, expr: str, spec: dict[str, Any]) -> None:
        head, _, attr = expr.partition(".")
        ref = spec.get("$ref", "")
        if head in resources:
            token = types_of[head]
            if not attr:
                if ref.startswith(RESOURCE_REF_PREFIX) and ref.removeprefix(RESOURCE_REF_PREFIX) != token:
                    problems.append(f"{where}: needs a {ref.removeprefix(RESOURCE_REF_PREFIX)}, ${{{head}}} is a {token}")
                elif not ref.startswith(RESOURCE_REF_PREFIX):
                    problems.append(f"{where}: ${{{head}}} is a resource; this input takes a {spec.get('type') or ref}")
                return
            check_output(where, head, attr)
        elif head in config:
            if ref.startswith(RESOURCE_REF_PREFIX):
                problems.append(f"{where}: needs a resource reference, ${{{head}}} is config")
        elif head not in ("pulumi",):
            problems.append(f"{where}: ${{{expr}}} names neither a resource nor a config value")

    def check_output(where: str, resource: str, attr: str) -> None:
        token = types_of.get(resource, "")
        if not token.startswith(f"{PACKAGE_NAME}:"):
            return
        outputs = doc.get("resources", {}).get(token, {}).get("properties", {})
        name = attr.split(".", 1)[0].split("[", 1)[0]
        if name not in outputs:
            problems.append(f"{where}: {token} has no output {name!r} (outputs: {sorted(outputs)})")

    def check_object(where: str, value: dict[str, Any], properties: dict[str, Any], required: list[str]) -> None:
        for key, v in value.items():
            if key not in properties:
                problems.append(f"{where}.{key}: not an input (inputs: {sorted(properties)})")
            else:
                check_value(f"{where}.{key}", v, properties[key])
        for key in required:
            if key not in value:
                problems.append(f"{where}: required input {key!r} is missing")

    for name, resource in resources.items():
        token = (resource or {}).get("type", "")
        if not token.startswith(f"{PACKAGE_NAME}:"):
            continue
        spec = doc.get("resources", {}).get(token)
        if spec is None:
            problems.append(f"resources.{name}: {token} is not a resource of the {PACKAGE_NAME} package")
            continue
        check_object(f"resources.{name}.properties", (resource or {}).get("properties") or {}, spec.get("inputProperties", {}), spec.get("requiredInputs", []))
    for key, value in (program.get("outputs") or {}).items():
        if isinstance(value, str) and (m := _INTERPOLATION.match(value)):
            head, _, attr = m.group(1).partition(".")
            if head in resources and attr:
                check_output(f"outputs.{key}", head, attr)
            elif head not in resources and head not in config:
                problems.append(f"outputs.{key}: ${{{m.group(1)}}} names neither a resource nor a config value")
    return problems


def main(argv: list[str] | None = None) -> int:
    """``python -m gpuplane.component_package [--write|--check]``: print, rewrite or check provider/schema.json."""
    args = sys.argv[1:] if argv is None else argv
    text = schema_text()
    if "--write" in args:
        SCHEMA_PATH.write_text(text)
        print(f"wrote {SCHEMA_PATH.relative_to(REPO_ROOT)}")
    elif "--check" in args:
        if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text() != text:
            print(f"{SCHEMA_PATH.relative_to(REPO_ROOT)} is stale: run python -m gpuplane.component_package --write", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    for dropped in missing_inputs():
        if dropped.path not in NOT_EXPRESSIBLE:
            print(f"not in the schema: {dropped.path} ({dropped.annotation}): {dropped.reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
