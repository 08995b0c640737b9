"""Installing gpuplane as a dependency of another project works from a wheel.

What ``pip install "gpuplane @ git+https://github.com/<org>/gpuplane@<ref>"`` does is build a
wheel from a clone and install it. This test does the same without a network: it copies the
sources a clone has into a temporary folder (so the build cannot see this checkout's stale
``*.egg-info`` or ``build/``), builds the wheel there (``pip wheel --no-deps
--no-build-isolation``: setuptools is already installed, nothing is downloaded), creates a new
virtualenv (``venv --without-pip``) and installs the wheel into it with this environment's pip
(``pip --python``), ``--no-deps``.

The third-party dependencies (pulumi, the provider SDKs, ...) are not downloaded again: the
new venv reaches them through ``PYTHONPATH`` pointing at this venv's site-packages. That keeps
the test offline and about 20 s long, and it stays honest about what matters here: PYTHONPATH
does not run ``.pth`` files, so this checkout's editable install is *not* active, and the test
asserts that ``components``, ``policies``, ``stacks`` and ``gpuplane`` resolve to the installed
wheel. It then runs the installed ``gpuplane`` entry point from a folder outside the repository
on a project of its own (``gpuplane plan --cwd``), which needs the catalog CSVs, the policy
pack's ``PulumiPolicy.yaml`` and configs and the schema data to be in the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.gpuplane.test_plan_projects import components_project

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("components", "stacks", "policies", "workloads", "gpuplane")
DATA_IN_WHEEL = (
    "components/catalog/data/accelerators.csv",
    "components/catalog/data/aws_prices.csv",
    "components/observability/dashboards/endpoints.json",
    "policies/PulumiPolicy.yaml",
    "policies/config/aws-dev.json",
    "workloads/features/templates/params.yaml",
)

pytestmark = pytest.mark.slow


def _copy_sources(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "venv", ".venv")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """(venv, environment for it, the built wheel)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src, wheels, venv = tmp / "src", tmp / "wheels", tmp / "venv"
    src.mkdir()
    _copy_sources(src)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(wheels), str(src)])
    (wheel,) = wheels.glob("gpuplane-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PULUMI_", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]  # third-party deps only (no .pth: no editable gpuplane)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv, env, wheel


def test_wheel_carries_the_data_files(installed):
    _, _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in DATA_IN_WHEEL if n not in names]
    assert not missing, f"not in {wheel.name}: {missing}. Add them to [tool.setuptools.package-data] in pyproject.toml."
    schema_root = ROOT / "gpuplane" / "schemas"
    if schema_root.is_dir():
        wanted = {str(p.relative_to(ROOT)) for p in schema_root.rglob("*") if p.is_file() and p.suffix in (".json", ".yaml", ".txt")}
        assert wanted <= names, f"schema files not in the wheel: {sorted(wanted - names)[:5]}"
    assert "gpuplane-0.1.0.dist-info/entry_points.txt" in names or any(n.endswith("entry_points.txt") for n in names)


def test_installed_packages_are_the_wheels_not_this_checkout(installed, tmp_path):
    venv, env, _ = installed
    code = (
        "import json, components, policies, stacks, gpuplane; "
        "from components import GpuNodePool; from components.catalog import load_catalog; "
        "from gpuplane.engine.policy import gpuplane_pack; "
        "print(json.dumps({'files': [m.__file__ for m in (components, policies, stacks, gpuplane)], "
        "'accelerators': len(load_catalog().accelerators), 'policies': len(gpuplane_pack().policies), "
        "'pool': GpuNodePool.__module__}))"
    )
    out = _run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=env)
    data = json.loads(out.stdout)
    site = str(venv / "lib")
    assert all(f.startswith(site) for f in data["files"]), data["files"]
    from components.catalog import load_catalog
    from gpuplane.engine.policy import gpuplane_pack

    expected = {"accelerators": len(load_catalog().accelerators), "policies": len(gpuplane_pack().policies)}
    assert {k: data[k] for k in expected} == expected and data["pool"] == "components.node_pool.component"


def test_installed_cli_plans_a_project_outside_the_repository(installed, tmp_path):
    venv, env, _ = installed
    project = components_project(tmp_path / "acme")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    proc = subprocess.run(
        [str(venv / "bin" / "gpuplane"), "plan", "--cwd", str(project), "--stack", "dev", "--format", "json"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert data["project"] == "acme-ml" and data["policy"]["pack"] == "gpuplane"
    assert any(r["type"] == "gpuplane:index:GpuNodePool" for r in data["resources"])
    assert data["cost"]["monthly"]["max"] > 0
    # Outside any project and without --cwd there is nothing to plan: one line, exit 2.
    proc = subprocess.run(
        [str(venv / "bin" / "gpuplane"), "plan", "--stack", "dev"], cwd=outside, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "has no Pulumi.yaml" in proc.stderr and "Traceback" not in proc.stderr
