"""The component package under the real Pulumi CLI: `pulumi package get-schema` equals
provider/schema.json, and `pulumi package gen-sdk` writes TypeScript and Go SDKs that compile (`tsc`,
`go build`). The plugin is served through ``pulumi_lane.component_provider_shim`` (why: its docstring)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gpuplane.sandbox import toolchain
from tests.engine import pulumi_lane

pytestmark = pytest.mark.engine

REPO = pulumi_lane.REPO
NODE_CACHE = Path.home() / ".cache" / "gpuplane" / "node"
"""Where `typescript` and `@pulumi/pulumi` are installed with npm (outside the clone)."""


def _cli(sandbox, *args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    if toolchain.missing(["pulumi"]):
        why = "the pulumi CLI is not built; run `make engine`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    env = pulumi_lane.engine_env(sandbox.env)
    proc = subprocess.run([str(toolchain.bin_dir() / "pulumi"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"pulumi {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    return pulumi_lane.component_provider_shim(tmp_path_factory.mktemp("plugin"))


def test_get_schema_equals_the_checked_in_schema(sandbox, plugin: Path, tmp_path: Path) -> None:
    got = json.loads(_cli(sandbox, "package", "get-schema", str(plugin), cwd=tmp_path).stdout)
    want = json.loads((REPO / "provider" / "schema.json").read_text())
    assert got == want, sorted(set(got.get("resources", {})) ^ set(want.get("resources", {})))


def test_the_typescript_sdk_compiles(sandbox, plugin: Path, tmp_path: Path) -> None:
    _cli(sandbox, "package", "gen-sdk", str(plugin), "--language", "nodejs", "--out", str(tmp_path / "sdk"), cwd=tmp_path)
    sdk = tmp_path / "sdk" / "nodejs"
    tsc = NODE_CACHE / "node_modules" / ".bin" / "tsc"
    if not tsc.exists() or not (NODE_CACHE / "node_modules" / "@pulumi" / "pulumi").is_dir():
        pytest.skip(f"typescript and @pulumi/pulumi not installed in {NODE_CACHE} (npm install --prefix {NODE_CACHE} "
                    "typescript@5 @pulumi/pulumi@3)")
    (sdk / "node_modules").symlink_to(NODE_CACHE / "node_modules")
    proc = subprocess.run([str(tsc), "-p", str(sdk)], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_the_go_sdk_compiles(sandbox, plugin: Path, tmp_path: Path) -> None:
    _cli(sandbox, "package", "gen-sdk", str(plugin), "--language", "go", "--out", str(tmp_path / "sdk"), cwd=tmp_path)
    go = shutil.which("go")
    if go is None:
        pytest.skip("no go on PATH")
    root = tmp_path / "sdk" / "go"
    pkg = next(p.parent for p in root.rglob("*.go"))
    mod = root / "go.mod"
    if not mod.exists():
        mod.write_text("module example.com/gpuplane\n\ngo 1.22\n")
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    for cmd in ([go, "mod", "tidy"], [go, "build", "./..."]):
        proc = subprocess.run(cmd, cwd=mod.parent, env=env, capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, f"{' '.join(cmd)} in {pkg}:\n{proc.stderr[-4000:]}"
