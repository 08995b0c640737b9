"""Fitness tests for the architecture rules (ARCHITECTURE.md, STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPONENT_FILES = sorted(p for p in (ROOT / "components").rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("path", COMPONENT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_components_read_no_config_and_no_environment(path):
    text = path.read_text()
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "Config" and isinstance(node.value, ast.Name) and node.value.id == "pulumi":
            pytest.fail(f"{path}:{node.lineno}: components must not read pulumi.Config")
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and isinstance(node.value, ast.Name) and node.value.id == "os":
            pytest.fail(f"{path}:{node.lineno}: components must not read the environment")
    assert "from os import environ" not in text and "from os import getenv" not in text


def _component_classes():
    """Every class under components/ that is a ComponentResource, directly or through another class there."""
    classes = [(path, node) for path in COMPONENT_FILES for node in ast.walk(_tree(path)) if isinstance(node, ast.ClassDef)]
    found = {"pulumi.ComponentResource", "ComponentResource"}
    while True:
        more = {n.name for _, n in classes if n.name not in found and any(ast.unparse(b).rsplit(".", 1)[-1] in found | {"ComponentResource"} for b in n.bases)}
        if not more:
            break
        found |= more
    return [(path, node) for path, node in classes if node.name in found]


def test_there_are_components_to_check():
    """The AST scan finds exactly the ComponentResource classes Python finds in the package."""
    import importlib
    import inspect
    import pkgutil

    import pulumi

    import components

    runtime = set()
    for info in pkgutil.walk_packages(components.__path__, "components."):
        module = importlib.import_module(info.name)
        runtime |= {c.__name__ for _, c in inspect.getmembers(module, inspect.isclass)
                    if issubclass(c, pulumi.ComponentResource) and c.__module__ == module.__name__}
    assert {n.name for _, n in _component_classes()} == runtime
    assert set(components.__all__) & runtime == runtime, "every component is exported by components/__init__.py"


@pytest.mark.parametrize(("path", "cls"), list(_component_classes()), ids=lambda x: getattr(x, "name", ""))
def test_every_component_ends_with_register_outputs(path, cls):
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    assert init is not None, f"{path}: {cls.name} has no __init__"
    last = init.body[-1]
    assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and ast.unparse(last.value.func) == "self.register_outputs", (
        f"{path}:{last.lineno}: {cls.name}.__init__ must end with self.register_outputs(...)"
    )
    source = ast.unparse(init)
    assert "TYPE_TOKEN" in source or "gpuplane:index:" in source, f"{cls.name} must use its gpuplane:index: type token"


def _args_classes():
    for path in COMPONENT_FILES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Args") and any("TypedDict" in ast.unparse(b) for b in node.bases):
                yield path, node


@pytest.mark.parametrize(("path", "cls"), list(_args_classes()), ids=lambda x: getattr(x, "name", ""))
def test_every_args_field_is_documented(path, cls):
    body = cls.body
    for i, stmt in enumerate(body):
        if isinstance(stmt, ast.AnnAssign):
            nxt = body[i + 1] if i + 1 < len(body) else None
            documented = isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str) and nxt.value.value.strip()
            assert documented, f"{path}:{stmt.lineno}: {cls.name}.{ast.unparse(stmt.target)} has no docstring"


def test_workloads_import_nothing_of_ours():
    for path in (ROOT / "workloads").rglob("*.py"):
        for node in ast.walk(_tree(path)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in ("components", "stacks", "policies", "gpuplane"), f"{path}:{node.lineno}: workloads must not import {name}"


def test_components_do_not_import_the_cli_or_stacks():
    for path in COMPONENT_FILES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    assert name.split(".")[0] not in ("stacks", "gpuplane", "policies"), f"{path}:{node.lineno}: components must not import {name}"
