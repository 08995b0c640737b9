"""`gpuplane plan` imports only what the planned program needs (the plan's speed budget).

Timing-free: a fresh process runs the CLI and reports which modules it imported. Each provider
SDK loads only the submodules a program's resources use, so a Kubernetes-only stack must not
touch the AWS or GCP SDK's resource modules, and nothing the plan does not need (the simulator's
numpy, matplotlib, Feast) may be imported on the way. benchmarks/plan_bench.py measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEVER = ("numpy", "matplotlib", "feast", "torch", "pandas", "mlflow", "gpuplane.simulate", "gpuplane.features", "gpuplane.offers", "gpuplane.pipeline")


def imported_by_plan(args: list[str], cwd: Path) -> set[str]:
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.argv = ["gpuplane", *{args!r}]
        from gpuplane import cli
        try:
            cli.main()
        except SystemExit as e:
            code = e.code
        else:
            code = 0
        # The SDKs register every submodule with importlib's LazyLoader: one still lazy was never loaded.
        loaded = sorted(n for n, m in list(sys.modules.items()) if type(m).__name__ != "_LazyModule")
        sys.stderr.write("\\nMODULES " + json.dumps({{"code": code, "modules": loaded}}) + "\\n")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES ")), None)
    assert line is not None, proc.stderr[-3000:]
    data = json.loads(line[len("MODULES ") :])
    assert data["code"] in (0, 1, None), proc.stderr[-3000:]
    return set(data["modules"])


def _services(modules: set[str], sdk: str) -> set[str]:
    """The SDK's service subpackages that were loaded (``ec2`` for ``pulumi_aws.ec2.instance``)."""
    return {m.split(".")[1] for m in modules if m.startswith(sdk + ".") and m.count(".") >= 2}


def _never(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in NEVER or m.startswith(NEVER)}


@pytest.mark.slow
def test_kubernetes_only_stack_loads_no_cloud_sdk_module():
    modules = imported_by_plan(["plan", "--stack", "local", "--format", "json", "--out", "/dev/null"], ROOT)
    assert _services(modules, "pulumi_aws") == set()
    assert _services(modules, "pulumi_gcp") == set()
    assert "botocore" not in modules  # AWS enums are checked only when there are AWS resources
    assert _never(modules) == set()


@pytest.mark.slow
def test_aws_only_program_loads_no_gcp_or_kubernetes_module(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: lean\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  aws:region: us-east-1\n")
    (tmp_path / "__main__.py").write_text(
        'import pulumi_aws as aws\n\naws.ec2.Instance("box", ami="ami-0123456789abcdef0", instance_type="g5.xlarge")\n'
    )
    modules = imported_by_plan(["plan", "--cwd", str(tmp_path), "--stack", "dev", "--format", "json", "--out", "/dev/null"], tmp_path)
    assert _services(modules, "pulumi_aws") == {"ec2"}
    assert not {m for m in modules if m.startswith(("pulumi_gcp", "pulumi_kubernetes"))}
    assert "kubernetes_validate" not in modules  # no Kubernetes objects to validate
    assert _never(modules) == set()
