"""gpuplane.engine.sdk_code: provider SDK modules compiled with postponed annotations, cached.

Each check runs in a fresh interpreter (the test process has the SDKs imported already) with
its own cache folder. What matters is that a program registers the same thing either way; the
speed is measured by benchmarks/plan_bench.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = textwrap.dedent(
    """
    import json, sys, typing
    from gpuplane.engine import sdk_code
    active = sdk_code.install()
    from gpuplane.engine.runtime import run_program
    import pulumi_random
    import pulumi_kubernetes.meta.v1 as meta

    def program():
        pulumi_random.RandomPassword("pw", length=24, special=False, keepers={"team": "ml"})
        pulumi_random.RandomPet("pet", prefix="gpu", length=2)
        import pulumi_kubernetes.core.v1 as core  # a TypedDict input and a nested Args class
        core.ConfigMap("cm", metadata={"name": "cm", "labels": {"a": "b"}}, data={"k": "v"})
        core.Namespace("ns", metadata=meta.ObjectMetaArgs(name="ns", annotations={"x": "y"}))

    run = run_program(program, project="p", stack="s")
    annotation = pulumi_random.RandomPet._internal_init.__annotations__.get("length")
    # evaluates the (lazy) forward references, with the locals pulumi._types passes
    import pulumi
    hints = typing.get_type_hints(meta.ConditionArgsDict, localns={"Output": pulumi.Output, "T": type(None)})
    print(json.dumps({
        "typeddict": typing.is_typeddict(meta.ConditionArgsDict),
        "hints": {k: repr(v) for k, v in sorted(hints.items())},
        "active": active,
        "annotation_is_str": isinstance(annotation, str),
        "resources": sorted((r.to_json() for r in run.resources), key=lambda r: r["urn"]),  # order varies
        "file": pulumi_random.random_pet.__spec__.cached,
    }))
    """
)


def run(tmp_path: Path, **env: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), **env},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_same_registrations_with_and_without_and_from_the_cache(tmp_path):
    off = run(tmp_path, GPUPLANE_SDK_CODE_CACHE="0")
    first = run(tmp_path)  # compiles and writes the cache
    second = run(tmp_path)  # reads it
    assert off["active"] is False and off["annotation_is_str"] is False
    assert first["active"] is True and first["annotation_is_str"] is True
    assert second["annotation_is_str"] is True
    assert len(off["resources"]) == 4 and first["resources"] == off["resources"] == second["resources"]
    assert off["typeddict"] and first["typeddict"] and second["typeddict"]
    assert off["hints"] and first["hints"] == off["hints"] == second["hints"]
    assert "Awaitable[str]" in off["hints"]["last_transition_time"]
    cached = Path(first["file"])
    assert cached.is_file() and cached.is_relative_to(tmp_path / "cache" / "gpuplane" / "sdk-code")


def test_a_stale_or_torn_cache_file_is_recompiled(tmp_path):
    first = run(tmp_path)
    cached = Path(first["file"])
    cached.write_bytes(cached.read_bytes()[:40])  # torn: right header, truncated code
    assert run(tmp_path)["resources"] == first["resources"]
    assert len(cached.read_bytes()) > 40, "the torn file was not rewritten"
    cached.write_bytes(b"not a header" + cached.read_bytes())  # stale: header does not match
    assert run(tmp_path)["resources"] == first["resources"]
    assert not cached.read_bytes().startswith(b"not a header")


def test_unwritable_cache_folder_means_the_ordinary_import(tmp_path):
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    out = run(tmp_path)
    assert out["active"] is False and out["annotation_is_str"] is False and out["resources"]


def test_the_fast_empty_function_check_answers_as_the_sdks_own():
    from pulumi import _utils

    from gpuplane.engine import sdk_code

    sdk_code._fast_empty_function_check()
    fast = _utils.is_empty_function
    assert getattr(fast, "_gpuplane_fast", False)
    original = fast.__closure__[next(i for i, n in enumerate(fast.__code__.co_freevars) if n == "original")].cell_contents

    def empty(self): ...

    def empty_doc(self):
        """Doc."""

    def body(self):
        return 1

    def lam(self):
        return None

    import pulumi_random

    getters = [
        p.fget for cls in vars(pulumi_random).values() if isinstance(cls, type) for p in vars(cls).values() if isinstance(p, property)
    ]
    candidates = [empty, empty_doc, body, lam, *getters]
    assert len(getters) > 20
    assert [fast(f) for f in candidates] == [original(f) for f in candidates]
    assert fast(empty) and fast(empty_doc) and not fast(body)
