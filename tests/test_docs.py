"""Docs that match the code: the README's capability tables are generated from the declarations."""

from __future__ import annotations

from pathlib import Path

from components.capabilities import markdown

ROOT = Path(__file__).resolve().parents[1]


def test_readme_capability_tables_match_the_code():
    text = (ROOT / "README.md").read_text()
    start, end = "<!-- capabilities:start -->\n", "<!-- capabilities:end -->"
    block = text[text.index(start) + len(start) : text.index(end)]
    assert block == markdown(), "README capability tables are stale: paste the output of `gpuplane capabilities`"


def test_readme_names_the_two_commands_and_ci_calls_the_test_command():
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_reference_stack_in_the_readme_exists():
    text = (ROOT / "README.md").read_text()
    for stack in ("aws-dev", "gcp-dev", "local"):
        assert f"`{stack}`" in text
        assert (ROOT / "stacks" / f"Pulumi.{stack}.yaml").exists()
