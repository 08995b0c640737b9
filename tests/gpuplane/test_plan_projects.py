"""`gpuplane plan --cwd DIR` on Pulumi Python projects that live outside this repository.

Every project here is written into ``tmp_path`` the way a team would lay it out: its own
``Pulumi.yaml`` (name, runtime, main, stackConfigDir, project config), its own stack files
with bare keys in the project's namespace, its own helper modules next to ``__main__.py`` —
and, for the policy tests, its own CrossGuard pack.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpuplane.cli import app
from gpuplane.engine.plan import PlanError, find_project, load_project, plan_stack, read_stack_config

runner = CliRunner()
TAGS = '{"team": "ml", "cost-center": "cc-1"}'


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def components_project(root: Path) -> Path:
    """A project that builds its platform from gpuplane's components."""
    return write(
        root,
        {
            "Pulumi.yaml": """
                name: acme-ml
                runtime:
                  name: python
                  options:
                    virtualenv: venv
                main: infra/
                stackConfigDir: deploy
                config:
                  poolMax:
                    type: integer
                    default: 2
            """,
            "infra/__main__.py": f"""
                import pulumi
                from components import GpuNodePool, KubernetesCluster

                from naming import pool_name  # the project's own module, beside __main__.py

                config = pulumi.Config()  # namespace: the project's name, acme-ml
                tags = {TAGS}
                cluster = KubernetesCluster(
                    "acme", {{"cloud": "aws", "region": "us-east-1", "deletion_protection": True, "private_endpoint": True, "tags": tags}}
                )
                pool = GpuNodePool(
                    pool_name("l4"),
                    {{
                        "cluster": cluster,
                        "accelerator": "L4",
                        "capacity_type": "spot",
                        "min_nodes": 0,
                        "max_nodes": config.require_int("poolMax"),
                        "role": "inference",
                        "tags": tags,
                    }},
                )
                pulumi.export("pool", pool_name("l4"))
                pulumi.export("owner", config.require("owner"))
            """,
            "infra/naming.py": """
                def pool_name(accelerator: str) -> str:
                    return f"acme-{accelerator}"
            """,
            "deploy/Pulumi.dev.yaml": """
                config:
                  aws:region: us-east-1
                  owner: ml-platform
            """,
            "deploy/Pulumi.big.yaml": """
                config:
                  aws:region: us-east-1
                  acme-ml:owner: ml-platform
                  poolMax: 40
            """,
        },
    )


def provider_project(root: Path) -> Path:
    """A project with plain pulumi_aws / pulumi_gcp resources only (main: a file)."""
    return write(
        root,
        {
            "Pulumi.yaml": """
                name: raw-gpus
                runtime: python
                main: program.py
            """,
            "program.py": f"""
                import pulumi
                import pulumi_aws as aws
                import pulumi_gcp as gcp

                from naming import PREFIX

                tags = {TAGS}
                aws.ec2.Instance(f"{{PREFIX}}-trainer", ami="ami-0123456789abcdef0", instance_type="p5.48xlarge")
                aws.ec2.Instance(
                    f"{{PREFIX}}-bastion",
                    ami="ami-0123456789abcdef0",
                    instance_type="t3.micro",
                    metadata_options={{"http_tokens": "required"}},
                    tags=tags,
                )
                aws.s3.Bucket(f"{{PREFIX}}-data", tags=tags)
                gcp.container.NodePool(
                    f"{{PREFIX}}-a100",
                    cluster="gke-main",
                    location="us-central1-a",
                    node_config={{
                        "machine_type": "a2-highgpu-1g",
                        "guest_accelerators": [{{"type": "nvidia-tesla-a100", "count": 1}}],
                        "resource_labels": tags,
                    }},
                    autoscaling={{"min_node_count": 0, "max_node_count": 40}},
                )
                pulumi.export("prefix", PREFIX)
            """,
            "naming.py": """
                PREFIX = "raw"
            """,
            "Pulumi.dev.yaml": """
                config:
                  aws:region: us-east-1
                  gcp:project: raw-gpus
                  gcp:region: us-central1
            """,
        },
    )


def own_pack(root: Path) -> Path:
    """A team's own CrossGuard pack: PolicyPack(...) at module level, as `pulumi` runs it."""
    return write(
        root,
        {
            "PulumiPolicy.yaml": """
                description: Acme's own rules.
                runtime: python
                version: 2.3.4
            """,
            "__main__.py": """
                from pulumi_policy import EnforcementLevel, PolicyConfigSchema, PolicyPack, ResourceValidationPolicy

                from rules import no_reserved_instances  # the pack's own module

                PolicyPack(
                    name="acme-policies",
                    enforcement_level=EnforcementLevel.MANDATORY,
                    policies=[
                        ResourceValidationPolicy(
                            name="no-reserved-instances",
                            description="Checks whether EC2 instances avoid the families kept for research.",
                            validate=no_reserved_instances,
                            config_schema=PolicyConfigSchema(properties={"prefix": {"type": "string", "default": "p5."}}),
                        )
                    ],
                )
            """,
            "rules.py": """
                def no_reserved_instances(args, report_violation):
                    prefix = args.get_config()["prefix"]
                    if args.resource_type == "aws:ec2/instance:Instance" and args.props["instanceType"].startswith(prefix):
                        report_violation(f"{args.name} is a {args.props['instanceType']}; {prefix}* is kept for research. Use g5.")
            """,
        },
    )


def plan_json(*args: str) -> tuple[int, dict, str]:
    result = runner.invoke(app, ["plan", *args, "--format", "json"])
    assert "Traceback" not in result.output, result.output
    data = json.loads(result.stdout) if result.exit_code in (0, 1) else {}
    return result.exit_code, data, result.stderr


def violations(data: dict) -> set[tuple[str, str, str]]:
    """(policy, level, resource name) of every violation."""
    return {(v["policy"], v["level"], v["urn"].rsplit("::", 1)[-1]) for v in data["policy"]["violations"]}


# ---------------------------------------------------------------------------------------------
# Projects


def test_project_file_is_read_like_the_cli(tmp_path):
    project = load_project(components_project(tmp_path / "acme"))
    assert project.name == "acme-ml"
    assert project.program == tmp_path / "acme" / "infra" / "__main__.py"
    assert project.stacks() == ["big", "dev"]
    config = read_stack_config("dev", project=project)
    # Bare keys take the project's namespace; other namespaces stay; Pulumi.yaml's defaults apply.
    assert config == {"acme-ml:poolMax": 2, "aws:region": "us-east-1", "acme-ml:owner": "ml-platform"}
    assert read_stack_config("big", project=project)["acme-ml:poolMax"] == 40
    # The nearest Pulumi.yaml at or above a folder, as `pulumi -C` finds it.
    assert find_project(tmp_path / "acme" / "infra").dir == tmp_path / "acme"


def test_components_project_plans_from_its_own_folder(tmp_path):
    root = components_project(tmp_path / "acme")
    code, data, _ = plan_json("--cwd", str(root), "--stack", "dev")
    assert code == 0, data["policy"]["violations"]
    assert data["project"] == "acme-ml" and data["stack"] == "dev"
    pool = next(r for r in data["resources"] if r["type"] == "gpuplane:index:GpuNodePool")
    assert pool["name"] == "acme-l4" and pool["urn"].startswith("urn:pulumi:dev::acme-ml::")
    assert pool["inputs"]["gpuplane"]["maxNodes"] == 2  # Pulumi.yaml's default reached the program
    assert data["outputs"] == {"pool": "acme-l4", "owner": "ml-platform"}
    assert any(r["type"] == "aws:eks/nodeGroup:NodeGroup" for r in data["resources"])
    assert data["cost"]["monthly"]["max"] > 0  # the pool is priced from the catalog
    assert data["policy"]["pack"] == "gpuplane" and data["policy"]["config_file"] is None


def test_components_project_over_a_limit_exits_1(tmp_path):
    root = components_project(tmp_path / "acme")
    code, data, _ = plan_json("--cwd", str(root), "--stack", "big")
    assert code == 1
    assert ("gpu-pool-max-nodes", "mandatory", "acme-l4") in violations(data)
    message = next(v["message"] for v in data["policy"]["violations"] if v["policy"] == "gpu-pool-max-nodes")
    assert "40 nodes" in message and "limit of 16" in message


def test_provider_resources_are_judged_by_type_and_priced(tmp_path):
    root = provider_project(tmp_path / "raw")
    config = tmp_path / "policy.json"
    config.write_text(json.dumps({"gpu-types-allowed": {"allowedGpus": ["L4"]}}))
    code, data, _ = plan_json("--cwd", str(root), "--stack", "dev", "--policy-pack-config", str(config))
    assert code == 1
    found = violations(data)
    expected = {
        ("imdsv2-required", "mandatory", "raw-trainer"),
        ("required-tags", "mandatory", "raw-trainer"),
        ("gpu-types-allowed", "mandatory", "raw-trainer"),  # p5.48xlarge = 8 x H100
        ("gpu-types-allowed", "mandatory", "raw-a100"),
        ("gpu-pool-max-nodes", "mandatory", "raw-a100"),
        ("storage-not-public", "mandatory", "raw-data"),
        ("storage-encrypted", "mandatory", "raw-data"),
        ("stack-budget", "mandatory", "raw-gpus-dev"),  # p5 all month: over the default $50,000
    }
    assert expected <= found, found
    # Tagged, IMDSv2, no GPU: only the budget says it cannot price it (unknown, never $0).
    assert {v for v in found if v[2] == "raw-bastion"} == {("stack-budget", "mandatory", "raw-bastion")}
    by_name = {c["name"]: c for c in data["cost"]["by_resource"]}
    assert by_name["raw-trainer"]["hourly"]["expected"] == pytest.approx(55.04)  # p5.48xlarge on demand, us-east-1, after the June 2025 cut
    assert by_name["raw-a100"]["hourly"]["max"] > 0
    unknown = {c["name"]: c["reason"] for c in data["cost"]["unknown"]}
    assert "t3.micro" in unknown["raw-bastion"]  # not a GPU type: listed as unknown, never $0
    assert data["outputs"] == {"prefix": "raw"}
    assert data["policy"]["config_file"] == str(config)


def test_advisory_config_turns_the_exit_code_to_0(tmp_path):
    root = provider_project(tmp_path / "raw")
    config = tmp_path / "advisory.json"
    config.write_text('{"all": "advisory"}')
    code, data, _ = plan_json("--cwd", str(root), "--stack", "dev", "--policy-config", str(config))
    assert code == 0
    assert data["policy"]["mandatory"] == 0 and data["policy"]["advisory"] >= 6


def test_two_projects_with_the_same_module_name_do_not_leak(tmp_path):
    """Both projects import a module named ``naming``: each run must see its own."""
    acme = load_project(components_project(tmp_path / "acme"))
    raw = load_project(provider_project(tmp_path / "raw"))
    assert plan_stack("dev", project=acme, validate=False).run.outputs["pool"] == "acme-l4"
    assert plan_stack("dev", project=raw, validate=False).run.outputs == {"prefix": "raw"}
    assert plan_stack("dev", project=acme, validate=False).run.outputs["pool"] == "acme-l4"


def test_stacks_lists_a_projects_stacks(tmp_path):
    root = components_project(tmp_path / "acme")
    result = runner.invoke(app, ["stacks", "--cwd", str(root)])
    assert result.exit_code == 0 and result.stdout.split() == ["big", "dev"]


# ---------------------------------------------------------------------------------------------
# Another team's policy pack


def test_own_policy_pack_runs_in_process(tmp_path):
    root = provider_project(tmp_path / "raw")
    pack = own_pack(tmp_path / "pack")
    code, data, _ = plan_json("--cwd", str(root), "--stack", "dev", "--policy-pack", str(pack))
    assert code == 1
    assert data["policy"]["pack"] == "acme-policies" and data["policy"]["version"] == "2.3.4"
    assert violations(data) == {("no-reserved-instances", "mandatory", "raw-trainer")}
    assert data["policy"]["violations"][0]["message"].startswith("raw-trainer is a p5.48xlarge")


def test_own_policy_pack_takes_its_config(tmp_path):
    root = provider_project(tmp_path / "raw")
    pack = own_pack(tmp_path / "pack")
    config = tmp_path / "pack.json"
    config.write_text('{"no-reserved-instances": {"prefix": "t3."}}')
    code, data, _ = plan_json("--cwd", str(root), "--stack", "dev", "--policy-pack", str(pack), "--policy-pack-config", str(config))
    assert code == 1
    assert violations(data) == {("no-reserved-instances", "mandatory", "raw-bastion")}
    config.write_text('{"no-reserved-instances": "advisory"}')
    code, data, _ = plan_json("--cwd", str(root), "--stack", "dev", "--policy-pack", str(pack), "--policy-pack-config", str(config))
    assert code == 0 and violations(data) == {("no-reserved-instances", "advisory", "raw-trainer")}


# ---------------------------------------------------------------------------------------------
# Bad input: one line naming the path and the fix, exit 2, no traceback


def one_error_line(*args: str) -> str:
    result = runner.invoke(app, ["plan", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return " ".join(result.stderr.split())


def test_folder_without_pulumi_yaml(tmp_path):
    line = one_error_line("--cwd", str(tmp_path), "--stack", "dev")
    assert f"{tmp_path} has no Pulumi.yaml" in line and "--cwd" in line


def test_non_python_runtime(tmp_path):
    write(tmp_path, {"Pulumi.yaml": "name: web\nruntime: nodejs\n", "index.ts": "export {}\n"})
    line = one_error_line("--cwd", str(tmp_path), "--stack", "dev")
    assert str(tmp_path / "Pulumi.yaml") in line and "runtime is 'nodejs'" in line and "runtime: python" in line


def test_missing_stack_file(tmp_path):
    root = components_project(tmp_path / "acme")
    line = one_error_line("--cwd", str(root), "--stack", "prod")
    assert str(root / "deploy" / "Pulumi.prod.yaml") in line and "Stacks: big, dev" in line


def test_main_without_program(tmp_path):
    write(tmp_path, {"Pulumi.yaml": "name: p\nruntime: python\nmain: src/\n", "src/README": "x\n"})
    line = one_error_line("--cwd", str(tmp_path), "--stack", "dev")
    assert str(tmp_path / "src") in line and "__main__.py" in line


def test_pack_that_fails_to_load(tmp_path):
    root = provider_project(tmp_path / "raw")
    pack = own_pack(tmp_path / "pack")
    (pack / "rules.py").write_text("raise RuntimeError('rules are being rewritten')\n")
    line = one_error_line("--cwd", str(root), "--stack", "dev", "--policy-pack", str(pack))
    assert f"policy pack {pack / '__main__.py'} failed to load: RuntimeError: rules are being rewritten" in line
    assert f"{pack / 'rules.py'}:1" in line


def test_folder_that_is_not_a_pack(tmp_path):
    root = provider_project(tmp_path / "raw")
    line = one_error_line("--cwd", str(root), "--stack", "dev", "--policy-pack", str(tmp_path))
    assert f"{tmp_path} has no PulumiPolicy.yaml" in line


def test_pack_without_a_policy_pack_call(tmp_path):
    root = provider_project(tmp_path / "raw")
    pack = own_pack(tmp_path / "pack")
    (pack / "__main__.py").write_text("X = 1\n")
    line = one_error_line("--cwd", str(root), "--stack", "dev", "--policy-pack", str(pack))
    assert "created 0 PolicyPack objects" in line


def test_plan_error_is_raised_by_the_engine_too(tmp_path):
    with pytest.raises(PlanError, match=r"has no Pulumi\.yaml"):
        load_project(tmp_path)


# ---------------------------------------------------------------------------------------------
# Plain GPU VMs, judged and priced by type (no component around them)


def test_gce_and_ec2_gpu_instances_are_requests_with_prices():
    from components.catalog import load_catalog
    from policies.costmodel import Usage, price_resources
    from policies.placement import check_offered
    from policies.resources import ResourceView, gpu_requests

    catalog = load_catalog()
    gce = ResourceView(
        type="gcp:compute/instance:Instance",
        name="notebook",
        urn="urn:pulumi:dev::p::gcp:compute/instance:Instance::notebook",
        props={"machineType": "a2-highgpu-1g", "zone": "us-central1-b", "scheduling": {"provisioningModel": "SPOT"}},
    )
    (req,) = gpu_requests(gce, catalog)
    assert (req.accelerator, req.gpus_per_node, req.capacity, req.max_nodes) == ("A100-40GB", 1, "spot", 1.0)
    ec2 = ResourceView(
        type="aws:ec2/instance:Instance",
        name="box",
        urn="urn:pulumi:dev::p::aws:ec2/instance:Instance::box",
        props={"instanceType": "g5.xlarge", "instanceMarketOptions": {"marketType": "spot"}, "availabilityZone": "us-east-1e"},
        provider_props={"region": "us-east-1"},
    )
    (req,) = gpu_requests(ec2, catalog)
    assert (req.accelerator, req.capacity) == ("A10G", "spot")
    # us-east-1e does not offer g5.xlarge in the catalog.
    assert any("zones ['us-east-1e']" in m for m in check_offered(ec2, {}))
    report = price_resources([gce, ec2], Usage(), catalog)
    by_name = {c.name: c for c in report.items}
    spot = catalog.offering("gcp", "a2-highgpu-1g", "us-central1").price("spot")
    assert by_name["notebook"].hourly is not None and by_name["notebook"].hourly.expected == pytest.approx(spot)
    assert by_name["box"].hourly.expected == pytest.approx(catalog.offering("aws", "g5.xlarge", "us-east-1").price("spot"))


def test_secure_values_read_as_a_placeholder_secret(tmp_path):
    write(
        tmp_path,
        {
            "Pulumi.yaml": "name: sec\nruntime: python\n",
            "Pulumi.dev.yaml": "config:\n  sec:token:\n    secure: v1:AAAAbase64==\n  plain: x\n",
            "__main__.py": """
                import pulumi

                config = pulumi.Config()
                token = config.require_secret("token")
                pulumi.export("token", token)
                pulumi.export("plain", config.require("plain"))
            """,
        },
    )
    plan = plan_stack("dev", project=load_project(tmp_path), validate=False)
    assert plan.run.outputs == {"token": "[secret]", "plain": "x"}  # cannot be decrypted offline
    assert plan.config["sec:token"] == {"secure": "v1:AAAAbase64=="}
