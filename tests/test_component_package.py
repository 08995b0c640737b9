"""gpuplane as a Pulumi component package: schema, documentation, the YAML example, the plugin.

The schema is produced in-process by the SDK's analyzer (gpuplane/component_package.py), never by
the Pulumi CLI. provider/schema.json is a golden file: regenerate it with
``GPUPLANE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -n 0 tests/test_component_package.py``.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any, Literal, NotRequired, Required, TypedDict

import pulumi
import pytest
import yaml
from pulumi.runtime import rpc

from gpuplane import component_package as cp
from tests.helpers import golden, run

ROOT = Path(__file__).resolve().parents[1]
YAML_EXAMPLE = ROOT / "examples" / "yaml" / "Pulumi.yaml"
NAMED_COMPONENTS = {"KubernetesCluster", "GpuNodePool", "SpotTrainingCluster", "TrainingJob", "InferenceEndpoint", "FeatureStore"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return cp.schema()


def test_every_exported_component_is_a_resource_of_the_package(schema):
    exported = {c.__name__ for c in cp.component_classes()}
    assert exported >= NAMED_COMPONENTS
    assert set(schema["resources"]) == {f"gpuplane:index:{n}" for n in exported}
    assert schema["name"] == "gpuplane"
    assert schema["version"] == cp.package_version()


def test_every_component_input_output_and_type_has_a_description(schema):
    """Descriptions come from the component docstring, Args field docstrings and output attribute docstrings."""
    undocumented = []
    for token, resource in schema["resources"].items():
        if not resource.get("description"):
            undocumented.append(token)
        for kind, props in (("input", resource.get("inputProperties", {})), ("output", resource.get("properties", {}))):
            undocumented += [f"{token} {kind} {k}" for k, v in props.items() if not v.get("description")]
        assert resource.get("inputProperties"), f"{token} has no inputs"
        assert resource.get("properties"), f"{token} has no outputs"
    for token, typ in schema.get("types", {}).items():
        if not typ.get("description"):
            undocumented.append(token)
        undocumented += [f"{token} field {k}" for k, v in typ.get("properties", {}).items() if not v.get("description")]
    assert not undocumented, "give these a docstring:\n" + "\n".join(undocumented)


def test_no_component_input_is_silently_left_out(schema):
    missing = {d.path: d for d in cp.missing_inputs(schema)}
    unlisted = [f"{d.path}: {d.annotation} ({d.reason})" for p, d in missing.items() if p not in cp.NOT_EXPRESSIBLE]
    assert not unlisted, "inputs missing from the schema (make them expressible, or list them with a reason in NOT_EXPRESSIBLE):\n" + "\n".join(unlisted)
    stale = set(cp.NOT_EXPRESSIBLE) - set(missing)
    assert not stale, f"NOT_EXPRESSIBLE lists fields that are in the schema now: {sorted(stale)}"
    assert all(reason.strip() for reason in cp.NOT_EXPRESSIBLE.values())


def test_every_registered_output_is_a_declared_output(schema):
    undeclared = cp.undeclared_outputs()
    assert not undeclared, (
        "register_outputs keys without a `name: pulumi.Output[T]` class annotation (with a docstring) and a "
        f"`self.name = ...` attribute, so other languages cannot read them: {undeclared}"
    )
    for component in cp.component_classes():
        outputs = schema["resources"][cp.type_token(component)]["properties"]
        from pulumi.provider.experimental.util import camel_case

        assert {camel_case(k) for k in cp.registered_outputs(component)} <= set(outputs), component.__name__


def test_python_only_choices_become_enums_and_component_fields_become_references(schema):
    pool = schema["resources"]["gpuplane:index:GpuNodePool"]
    assert pool["inputProperties"]["cluster"]["$ref"] == "#/resources/gpuplane:index:KubernetesCluster"
    assert set(pool["requiredInputs"]) >= {"cluster", "accelerator"}
    capacity = schema["types"][pool["inputProperties"]["capacityType"]["$ref"].removeprefix("#/types/")]
    assert [e["value"] for e in capacity["enum"]] == ["on_demand", "spot"]
    endpoint = schema["resources"]["gpuplane:index:InferenceEndpoint"]["inputProperties"]
    assert endpoint["pool"]["$ref"] == "#/resources/gpuplane:index:GpuNodePool"
    job = schema["resources"]["gpuplane:index:TrainingJob"]["inputProperties"]
    assert job["trainingCluster"]["$ref"] == "#/resources/gpuplane:index:SpotTrainingCluster"
    # Plan-time inputs are plain (the planner needs their values before anything exists) ...
    assert pool["inputProperties"]["maxNodes"].get("plain") is True
    # ... while pulumi.Input[...] fields take outputs of other resources.
    cluster = schema["resources"]["gpuplane:index:KubernetesCluster"]["inputProperties"]
    assert "plain" not in cluster["kubeconfig"]


def test_schema_json_is_checked_in_and_current():
    golden(cp.SCHEMA_PATH, cp.schema_text())
    assert json.loads(cp.SCHEMA_PATH.read_text())["name"] == "gpuplane"


# --- the report of what cannot be expressed, on a component made to exercise it ----------------------


class _WidgetArgs(TypedDict, total=False):
    """Arguments of a test-only component."""

    size: Required[Literal["small", "large"]]
    """A choice (becomes an enum)."""
    either: Required[str | int]
    """A required union (cannot be expressed)."""
    by_number: dict[int, str]
    """Integer map keys (cannot be expressed)."""
    mixed: Literal["a", 1]
    """A Literal of mixed types (cannot be expressed)."""
    weights: NotRequired[list[float]]
    """Fine."""


class _Widget(pulumi.ComponentResource):
    """A test-only component."""

    size: pulumi.Output[str]
    """The size."""

    def __init__(self, name: str, args: _WidgetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpuplane:index:_Widget", name, {}, opts)
        self.size = pulumi.Output.from_input(args["size"])
        self.register_outputs({"size": self.size})


def test_fields_the_schema_cannot_express_are_reported_with_the_reason():
    provider = cp.GpuplaneProvider([_Widget], version="0.0.1")
    dropped = {d.path: d.reason for d in provider.not_expressible()}
    assert set(dropped) == {"_WidgetArgs.either", "_WidgetArgs.by_number", "_WidgetArgs.mixed"}
    assert "union" in dropped["_WidgetArgs.either"] and "required" in dropped["_WidgetArgs.either"]
    assert "required" not in dropped["_WidgetArgs.mixed"]
    assert "map keys must be strings" in dropped["_WidgetArgs.by_number"]
    assert "mixes value types" in dropped["_WidgetArgs.mixed"]
    inputs = provider.schema_dict["resources"]["gpuplane:index:_Widget"]["inputProperties"]
    assert set(inputs) == {"size", "weights"}
    assert provider.schema_dict["types"]["gpuplane:index:_WidgetSize"]["enum"][0]["value"] == "small"


# --- the YAML example ----------------------------------------------------------------------------


def test_yaml_example_uses_the_package_as_the_schema_says(schema):
    program = yaml.safe_load(YAML_EXAMPLE.read_text())
    assert program["runtime"] == "yaml"
    assert program["packages"]["gpuplane"] == "../../provider"
    assert (YAML_EXAMPLE.parent / program["packages"]["gpuplane"] / "PulumiPlugin.yaml").is_file()
    used = {r["type"] for r in program["resources"].values()}
    assert used >= {"gpuplane:index:KubernetesCluster", "gpuplane:index:GpuNodePool", "gpuplane:index:InferenceEndpoint"}
    assert cp.check_yaml_program(program, schema) == []


def test_yaml_checker_names_each_mistake(schema):
    program = yaml.safe_load(
        """
config: {image: {type: string}}
resources:
  c: {type: "gpuplane:index:KubernetesCluster", properties: {cloud: azure, zones: us-east-1a}}
  p: {type: "gpuplane:index:GpuNodePool", properties: {cluster: "${e}", acceleratr: L4, maxNodes: "2"}}
  e: {type: "gpuplane:index:InferenceEndpoint", properties: {platform: knative, image: "${image}", pool: "${c}"}}
  x: {type: "gpuplane:index:Nope"}
outputs: {u: "${e.urll}"}
"""
    )
    problems = cp.check_yaml_program(program, schema)
    expected = [
        "resources.c.properties.cloud: 'azure' is not one of ['aws', 'gcp', 'existing']",
        "resources.c.properties.zones: 'us-east-1a' is not of type array",
        "resources.p.properties.cluster: needs a gpuplane:index:KubernetesCluster, ${e} is a gpuplane:index:InferenceEndpoint",
        "resources.p.properties.acceleratr: not an input",
        "resources.p.properties.maxNodes: '2' is not of type integer",
        "resources.p.properties: required input 'accelerator' is missing",
        "resources.e.properties.pool: needs a gpuplane:index:GpuNodePool, ${c} is a gpuplane:index:KubernetesCluster",
        "resources.x: gpuplane:index:Nope is not a resource of the gpuplane package",
        "outputs.u: gpuplane:index:InferenceEndpoint has no output 'urll'",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in problems), f"{want!r} not in {problems}"
    assert len(problems) == len(expected), problems


# --- the plugin -------------------------------------------------------------------------------------


def test_plugin_manifest_and_entry_point():
    manifest = yaml.safe_load((cp.PROVIDER_DIR / "PulumiPlugin.yaml").read_text())
    runtime = manifest["runtime"]
    assert (runtime if isinstance(runtime, str) else runtime["name"]) == "python"
    requirements = [line for line in (cp.PROVIDER_DIR / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert requirements == [".."]  # gpuplane itself, from the repository root
    assert (cp.PROVIDER_DIR / ".." / "pyproject.toml").resolve() == ROOT / "pyproject.toml"


def test_entry_point_imports_without_starting_the_host(monkeypatch):
    started: list[list[str]] = []
    monkeypatch.setattr(cp, "serve", lambda argv: started.append(argv))
    spec = importlib.util.spec_from_file_location("gpuplane_provider_main", cp.PROVIDER_DIR / "__main__.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert started == []  # guarded by `if __name__ == "__main__"`
    module.main(["--logtostderr"])
    assert started == [["--logtostderr"]]


# --- construct, as the engine calls it for a TypeScript/Go/YAML program ------------------------------


def _reference(urn: str, token: str, name: str) -> Any:
    """A resource reference as the provider server deserializes it from the engine's request."""
    return rpc.deserialize_resource({"urn": urn, "type": token, "name": name})  # type: ignore[arg-type]


def test_construct_resolves_component_references_to_the_live_components():
    provider = cp.provider()
    states: dict[str, Any] = {}

    def program() -> None:
        cluster = provider.construct("local", "gpuplane:index:KubernetesCluster", {"cloud": "existing"}, pulumi.ResourceOptions())

        def pool_and_endpoint(cluster_urn: str) -> None:
            cluster_ref = _reference(cluster_urn, "gpuplane:index:KubernetesCluster", "local")
            inputs = {"cluster": cluster_ref, "accelerator": "L4", "maxNodes": 2.0, "role": "inference", "gpuSharing": {"strategy": "time-slicing", "replicas": 2.0}}
            pool = provider.construct("gpus", "gpuplane:index:GpuNodePool", inputs, pulumi.ResourceOptions())
            states["pool"] = pool.state

            def endpoint(pool_urn: str) -> None:
                pool_ref = _reference(pool_urn, "gpuplane:index:GpuNodePool", "gpus")
                inputs = {"platform": "knative", "cluster": cluster_ref, "pool": pool_ref, "image": "ghcr.io/example/gpuplane-serving:1.0", "maxScale": 4.0}
                states["endpoint"] = provider.construct("recs", "gpuplane:index:InferenceEndpoint", inputs, pulumi.ResourceOptions()).state

            pool.urn.apply(endpoint)

        cluster.urn.apply(pool_and_endpoint)

    result = run(program)
    pool = result.one("gpuplane:index:GpuNodePool", "gpus")
    # Enum members arrive as the plain strings Python users pass; wire floats as ints.
    summary = pool.inputs["gpuplane"]
    assert summary["role"] == "inference" and summary["maxNodes"] == 2
    assert str(result.one("kubernetes:serving.knative.dev/v1:Service").parent).endswith("gpuplane:index:InferenceEndpoint::recs")
    assert set(states["pool"]) >= {"implementation", "minNodes", "maxNodes", "capacityType", "nodeSelector"}
    assert set(states["endpoint"]) >= {"url", "coldStartBudgetSeconds", "implementation"}


def test_a_reference_this_provider_did_not_create_is_one_clear_error():
    from components.errors import ComponentInputError

    provider = cp.provider()
    ref = _reference("urn:pulumi:other::proj::gpuplane:index:KubernetesCluster::elsewhere", "gpuplane:index:KubernetesCluster", "elsewhere")
    with pytest.raises(ComponentInputError) as err:
        provider.construct("gpus", "gpuplane:index:GpuNodePool", {"cluster": ref, "accelerator": "L4"}, pulumi.ResourceOptions())
    assert "cluster" in str(err.value) and "same program" in str(err.value)


def test_the_plugin_serves_the_schema_over_grpc():
    """What `pulumi package add` does first: start provider/__main__.py and ask for the schema."""
    import subprocess
    import sys

    import grpc
    from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

    proc = subprocess.Popen([sys.executable, str(cp.PROVIDER_DIR / "__main__.py"), "127.0.0.1:1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            response = provider_pb2_grpc.ResourceProviderStub(channel).GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert json.loads(response.schema) == cp.schema()


# --- the schema's shape, checked with the rules of Pulumi's package metaschema ----------------------
# (pkg/codegen/schema/pulumi.json in pulumi/pulumi: token pattern, one kind per type reference,
# enums with a primitive type, required names that exist, local references that resolve)

TOKEN = re.compile(r"^[a-zA-Z][-a-zA-Z0-9_]*:([^0-9][a-zA-Z0-9._/-]*)?:[^0-9][a-zA-Z0-9._/-]*$")
PRIMITIVES = {"boolean", "integer", "number", "string"}


def _type_spec_problems(where: str, spec: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    problems = []
    ref, kind = spec.get("$ref"), spec.get("type")
    if ref is not None:
        if ref.startswith("#/types/") and ref.removeprefix("#/types/") not in doc.get("types", {}):
            problems.append(f"{where}: {ref} does not resolve")
        if ref.startswith("#/resources/") and ref.removeprefix("#/resources/") not in doc["resources"]:
            problems.append(f"{where}: {ref} does not resolve")
        if not (ref.startswith(("#/types/", "#/resources/", "pulumi.json#/", "/"))):
            problems.append(f"{where}: {ref} is not a reference Pulumi understands")
        if "items" in spec or "additionalProperties" in spec:
            problems.append(f"{where}: a named type has no items/additionalProperties")
    elif kind == "array":
        if "items" not in spec:
            problems.append(f"{where}: an array needs items")
        else:
            problems += _type_spec_problems(f"{where}.items", spec["items"], doc)
    elif kind == "object":
        if "items" in spec:
            problems.append(f"{where}: a map has no items")
        if "additionalProperties" in spec:
            problems += _type_spec_problems(f"{where}.additionalProperties", spec["additionalProperties"], doc)
    elif kind in PRIMITIVES:
        if {"items", "additionalProperties"} & set(spec):
            problems.append(f"{where}: a primitive has only a type")
    else:
        problems.append(f"{where}: no type and no $ref")
    if "plain" in spec and not isinstance(spec["plain"], bool):
        problems.append(f"{where}: plain must be a boolean")
    if "description" in spec and not isinstance(spec["description"], str):
        problems.append(f"{where}: description must be a string")
    return problems


def test_schema_follows_the_pulumi_package_metaschema_rules(schema):
    problems = []
    assert re.match(r"^[a-zA-Z][-a-zA-Z0-9_]*$", schema["name"])
    for section in ("resources", "types"):
        for token, spec in schema.get(section, {}).items():
            if not TOKEN.match(token):
                problems.append(f"{token}: not a valid token")
            if spec.get("enum") is not None:
                if spec.get("type") not in PRIMITIVES:
                    problems.append(f"{token}: an enum needs a primitive type")
                python_type: Any = {"string": str, "integer": int, "number": (int, float), "boolean": bool}[spec["type"]]
                problems += [f"{token}: {e} is not a {spec['type']}" for e in spec["enum"] if not isinstance(e.get("value"), python_type)]
                continue
            for group in ("inputProperties", "properties"):
                for name, prop in spec.get(group, {}).items():
                    problems += _type_spec_problems(f"{token}.{group}.{name}", prop, schema)
            problems += [f"{token}: required input {r} is not an input" for r in spec.get("requiredInputs", []) if r not in spec.get("inputProperties", {})]
            problems += [f"{token}: required {r} is not a property" for r in spec.get("required", []) if r not in spec.get("properties", {})]
            if section == "resources":
                assert spec.get("isComponent") is True, token
    assert not problems, "\n".join(problems)


def test_a_component_built_through_the_provider_equals_the_python_one():
    """The schema view changes nothing: same resources, names, parents and inputs as from Python."""
    from components import GpuNodePool, KubernetesCluster

    provider = cp.provider()

    def from_python() -> None:
        cluster = KubernetesCluster("local", {"cloud": "existing", "tags": {"team": "recs"}})
        GpuNodePool("gpus", {"cluster": cluster, "accelerator": "L4", "max_nodes": 2, "role": "inference", "taints": [{"key": "gpu", "effect": "NoSchedule"}], "gpu_sharing": {"strategy": "time-slicing", "replicas": 4}})

    def through_provider() -> None:
        cluster = provider.construct("local", "gpuplane:index:KubernetesCluster", {"cloud": "existing", "tags": {"team": "recs"}}, pulumi.ResourceOptions())

        def pool(urn: str) -> None:
            inputs = {
                "cluster": _reference(urn, "gpuplane:index:KubernetesCluster", "local"),
                "accelerator": "L4",
                "maxNodes": 2.0,
                "role": "inference",
                "taints": [{"key": "gpu", "effect": "NoSchedule"}],
                "gpuSharing": {"strategy": "time-slicing", "replicas": 4.0},
            }
            provider.construct("gpus", "gpuplane:index:GpuNodePool", inputs, pulumi.ResourceOptions())

        cluster.urn.apply(pool)

    def recorded(run_: Any) -> list[tuple[str, str, str | None, Any]]:
        return sorted((r.type, r.name, r.parent, json.dumps(r.inputs, sort_keys=True, default=str)) for r in run_.resources)

    direct, hosted = run(from_python), run(through_provider)
    assert len(direct.resources) >= 4
    assert recorded(hosted) == recorded(direct)


class _GadgetArgs(TypedDict, total=False):
    """Arguments of another test-only component."""

    widget: _WidgetArgs
    """A nested type (replaced below by one whose name clashes)."""


class _Gadget(pulumi.ComponentResource):
    """Another test-only component."""

    def __init__(self, name: str, args: _GadgetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpuplane:index:_Gadget", name, {}, opts)


def test_two_types_with_one_name_are_refused_with_both_places(monkeypatch):
    clash = TypedDict("_WidgetArgs", {"size": str})  # type: ignore[misc,name-match]  # noqa: UP013 - a second class of the same name
    clash.__module__ = "somewhere.else"
    monkeypatch.setitem(_GadgetArgs.__annotations__, "widget", clash)
    with pytest.raises(TypeError, match=r"gpuplane:index:_WidgetArgs: .*_WidgetArgs and somewhere\.else\._WidgetArgs; rename one"):
        cp.GpuplaneProvider([_Widget, _Gadget], version="0.0.1")
