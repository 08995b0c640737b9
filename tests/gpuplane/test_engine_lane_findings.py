"""Defects the real-engine lane found (server-side dry run on the sandbox), each pinned by a fast test.

1. Helm release names: Pulumi autonames a Release ``<resource name>-<8 hex>`` and Helm refuses a
   name over 53 characters (multicloud's ``multicloud-train-a10g-on-demand-device-plugin``).
2. Names charts derive from the release name: the node-feature-discovery subchart of the NVIDIA
   device plugin names its Service ``<release>-node-feature-discovery``[:63]``-master`` and Kueue
   ``<release>-kueue-controller-manager-metrics-service``; over 63 characters the API server
   rejects the Service (aws-dev, multicloud).
3. The mock runtime left an RDS instance's ``address`` and a Cloud SQL instance's
   ``privateIpAddress`` empty, so the planned MLflow release had ``postgres.host: ""``, which the
   chart refuses to render ("postgres host must be specified"): the plan showed values no real run has.
4. The offline values check did not know the device plugin's vendored NFD subchart's keys, so it
   rejected ``nfd.fullnameOverride`` (the fix for 2).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from components.kubernetes.device_plugin import (
    DEVICE_PLUGIN_NAME_MAX,
    NFD_NAME_MAX,
    device_plugin_fullname,
    device_plugin_values,
    nfd_fullname,
    release_name,
)
from components.training.kueue import kueue_values
from gpuplane.engine.mock_outputs import computed_outputs
from gpuplane.engine.schemas import HELM_RELEASE_TYPE, load_index, release_name_problems, validate_schemas


def _release(resource: str, chart: str, values: dict, **inputs) -> SimpleNamespace:
    return SimpleNamespace(urn=f"urn:pulumi:s::p::{HELM_RELEASE_TYPE}::{resource}", type=HELM_RELEASE_TYPE,
                           name=resource, inputs={"chart": chart, "version": "0.17.4", "values": values, **inputs})


class _Pool:
    sharing = None
    sharing_replicas = 1
    scheduling = SimpleNamespace(node_selector={"gpuplane.dev/pool": "p"}, tolerations=[])


def test_an_autonamed_release_over_helms_53_characters_is_reported() -> None:
    problems = release_name_problems(_release("multicloud-train-a10g-on-demand-device-plugin", "dcgm-exporter", {}))
    assert len(problems) == 1 and "is 54 characters; Helm allows 53" in problems[0]
    assert release_name_problems(_release("g6-spot-device-plugin", "dcgm-exporter", {})) == []


def test_a_long_pool_gets_a_fixed_release_name_within_helms_limit() -> None:
    assert release_name("g6-spot-device-plugin") is None  # autonamed as before
    long_a = release_name("multicloud-train-a10g-on-demand-device-plugin")
    assert long_a == "multicloud-train-a10g-on-demand-device-plugin"
    cut = release_name("a-very-long-training-cluster-name-a10g-on-demand-device-plugin")
    assert cut is not None and len(cut) <= 53
    assert cut != release_name("a-very-long-training-cluster-name-a10g-on-demand-dcgm-exporter")
    fixed = _release("multicloud-train-a10g-on-demand-device-plugin", "dcgm-exporter", {}, name=long_a)
    assert release_name_problems(fixed) == []


def test_the_nfd_master_service_over_63_characters_is_reported_and_the_override_fixes_it() -> None:
    pool = "aws-dev-train-a10g-on-demand"
    without = {k: v for k, v in device_plugin_values(_Pool(), pool).items() if k != "nfd"}
    problems = release_name_problems(_release(f"{pool}-device-plugin", "nvidia-device-plugin", without))
    assert len(problems) == 1 and "-master" in problems[0] and "nfd.fullnameOverride" in problems[0]
    fixed = device_plugin_values(_Pool(), pool)
    assert release_name_problems(_release(f"{pool}-device-plugin", "nvidia-device-plugin", fixed)) == []


@pytest.mark.parametrize("pool", ["g6", "aws-dev-train-a10g-on-demand", "x" * 80, "a-" * 40])
def test_nfd_fullname_leaves_room_for_the_master_suffix(pool: str) -> None:
    name = nfd_fullname(pool)
    assert len(name) <= NFD_NAME_MAX and not name.startswith("-") and "--" not in name.replace("a--", "")
    assert nfd_fullname(pool) == name


@pytest.mark.parametrize("pool", ["g6", "batchtc-l4-on-demand", "aws-dev-train-a10g-on-demand", "x" * 80])
def test_the_device_plugin_daemonsets_keep_apart_names(pool: str) -> None:
    """The chart names its DaemonSets <fullname>, <fullname>-mps-control-daemon, <fullname>-gpu-feature-discovery,
    each cut to 63 (nvidia-device-plugin 0.17.4): a long release made the first two equal ("already exists")."""
    full = device_plugin_values(_Pool(), pool)["fullnameOverride"]
    assert full == device_plugin_fullname(pool) and len(full) <= DEVICE_PLUGIN_NAME_MAX
    names = {(full + suffix)[:63].rstrip("-") for suffix in ("", "-mps-control-daemon", "-gpu-feature-discovery")}
    assert len(names) == 3
    assert device_plugin_fullname(pool + "-b") != full


def test_kueue_objects_are_named_kueue_whatever_the_release_name() -> None:
    long_release = _release("multicloud-train-kueue", "oci://registry.k8s.io/kueue/charts/kueue", {})
    problems = release_name_problems(long_release)
    assert len(problems) == 1 and "controller-manager-metrics-service" in problems[0] and "fullnameOverride" in problems[0]
    long_release.inputs["values"] = kueue_values()
    assert release_name_problems(long_release) == []


def test_nfd_subchart_keys_are_known_to_the_offline_values_check() -> None:
    r = _release("g6-device-plugin", "nvidia-device-plugin", {"nfd": {"fullnameOverride": "g6-nfd"}},
                 repositoryOpts={"repo": "https://nvidia.github.io/k8s-device-plugin"})
    report = validate_schemas([r], load_index())
    assert report.helm_releases_checked == 1 and report.problems == []
    r.inputs["values"] = {"nfd": {"fullnameOverrid": "typo"}}
    assert len(validate_schemas([r], load_index()).problems) == 1


def test_mock_database_instances_have_the_address_their_clients_use() -> None:
    rds = computed_outputs("aws:rds/instance:Instance", "registry-db", {"identifier": "x"})
    assert rds["address"].endswith(".rds.amazonaws.com") and rds["endpoint"] == f"{rds['address']}:5432"
    sql = computed_outputs("gcp:sql/databaseInstance:DatabaseInstance", "registry-db", {"region": "europe-west4"})
    assert sql["privateIpAddress"] and sql["connectionName"].endswith(":europe-west4:registry-db")


def test_the_checked_in_package_schema_is_what_the_cli_reads_back() -> None:
    """5. `pulumi package get-schema` printed the schema without the ``description`` the SDK's analyzer
    copies into ``additionalProperties`` (37 places), with ``config: {}`` and without an empty
    ``dependencies``: provider/schema.json is now written in that form, so the two are equal."""
    from gpuplane.component_package import canonical

    spec = {"dependencies": [], "resources": {"r": {"properties": {
        "tags": {"type": "object", "description": "d", "additionalProperties": {"type": "string", "description": "d"}},
        "items": {"type": "array", "description": "kept", "items": {"type": "string", "description": "d"}},
        "resources": {"type": "object", "description": "kept", "additionalProperties": {"$ref": "x", "description": "d"}},
    }}}}
    out = canonical(spec)
    props = out["resources"]["r"]["properties"]
    assert props["tags"] == {"type": "object", "description": "d", "additionalProperties": {"type": "string"}}
    assert props["items"] == {"type": "array", "description": "kept", "items": {"type": "string"}}
    assert props["resources"]["additionalProperties"] == {"$ref": "x"} and props["resources"]["description"] == "kept"
    assert out["config"] == {} and "dependencies" not in out
    assert spec["dependencies"] == [] and "description" in spec["resources"]["r"]["properties"]["tags"]["additionalProperties"]


def test_recorded_urns_are_the_engines() -> None:
    """6. `pulumi preview` under the policy host reported the local stack's violations on
    ``urn:pulumi:local::gpuplane::gpuplane:index:InferenceEndpoint::recs``; `gpuplane plan` on
    ``...::pulumi:pulumi:Stack$gpuplane:index:InferenceEndpoint::recs`` (the SDK mock monitor's URN), and it
    cut grandchildren's type chains to their parent's last type, which the policies read ancestors from."""
    import pulumi

    from gpuplane.engine.runtime import run_program

    def program() -> None:
        outer = pulumi.ComponentResource("test:index:Outer", "outer")
        inner = pulumi.ComponentResource("test:index:Inner", "inner", opts=pulumi.ResourceOptions(parent=outer))
        pulumi.CustomResource("test:index:Leaf", "leaf", {}, opts=pulumi.ResourceOptions(parent=inner))

    run = run_program(program, project="proj", stack="dev")
    assert [r.urn for r in run.resources] == [
        "urn:pulumi:dev::proj::test:index:Outer::outer",
        "urn:pulumi:dev::proj::test:index:Outer$test:index:Inner::inner",
        "urn:pulumi:dev::proj::test:index:Outer$test:index:Inner$test:index:Leaf::leaf",
    ]


def test_the_knative_operator_namespace_is_a_resource_so_destroy_removes_it() -> None:
    """7. `pulumi destroy` of the local stack on the sandbox left the namespace ``knative-operator``: the
    release created it with ``createNamespace``, and Helm never deletes a namespace it created."""
    from gpuplane.engine.plan import plan_stack

    plan = plan_stack("local", validate=False)
    [release] = [r for r in plan.resources if r.type == HELM_RELEASE_TYPE and "knative-operator" in r.inputs["chart"]]
    assert not release.inputs.get("createNamespace") and release.inputs["namespace"] == "knative-operator"
    [ns] = [r for r in plan.resources if r.type == "kubernetes:core/v1:Namespace"
            and r.inputs["metadata"]["name"] == "knative-operator"]
    assert ns.urn in release.dependencies
