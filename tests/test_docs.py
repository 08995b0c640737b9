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


# --- the README read against the code: names, commands, step numbers taken from the README itself ---

import re  # noqa: E402

import typer  # noqa: E402

README = (ROOT / "README.md").read_text()


def _readme_command_lines() -> list[str]:
    """`gpuplane ...` as the README writes it: in inline code and on code-block lines."""
    out = re.findall(r"`(gpuplane [^`]+)`", README)
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip().removeprefix(".venv/bin/")
            if line.startswith("gpuplane "):
                out.append(line)
    return out


def test_readme_stack_list_is_the_stacks_folder():
    from gpuplane.engine.plan import available_stacks

    listed = re.search(r"gpuplane stacks +# (.+)", README)
    assert listed, "the README's `gpuplane stacks` line lists the reference stacks in a comment"
    assert [s.strip() for s in listed.group(1).split(",")] == available_stacks()
    described = re.findall(r"`([a-z0-9-]+)` \((?:EKS|GKE|an existing cluster)", README) + re.findall(r"and `([a-z0-9-]+)`, the online retailer", README)
    assert sorted(described) == available_stacks(), described


def test_every_gpuplane_command_and_option_in_the_readme_exists():
    from gpuplane.cli import app

    root = typer.main.get_command(app)  # typer's own (vendored) click objects: duck-typed below
    lines = _readme_command_lines()
    assert len(lines) > 20
    problems = []
    for line in lines:
        words = line.split()[1:]
        cmd = root
        path = ["gpuplane"]
        while getattr(cmd, "commands", None) is not None and words and not words[0].startswith("-"):
            sub = cmd.commands.get(words[0])
            if sub is None:
                problems.append(f"{line!r}: `{' '.join(path)}` has no command {words[0]!r}")
                break
            path.append(words.pop(0))
            cmd = sub
        options = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
        problems += [f"{line!r}: `{' '.join(path)}` has no option {w}" for w in words
                     if w.startswith("--") and w.split("=")[0] not in options]
    assert not problems, "\n".join(problems)


def test_readme_step_number_of_the_model_loop_is_the_demos():
    from gpuplane.demo import STEPS

    found = re.findall(r"\(step (\d+); `--quick` skips it\)", README)
    assert found, "the README says which demo step is the model loop"
    for number in found:
        assert STEPS[int(number) - 1][0] == "loop", (number, [k for k, _, _ in STEPS])


def test_readme_demo_output_list_is_what_the_demo_writes():
    from gpuplane.demo import OUTPUT_NAMES

    sentence = README[README.index("writes everything to\n`demo-output/`:") if "writes everything to\n`demo-output/`:" in README
                      else README.index("writes everything to `demo-output/`:"):]
    sentence = sentence[: sentence.index(". ")]
    listed = {name.split("/")[0] for name in re.findall(r"`([^`]+)`", sentence)} - {"demo-output"}
    assert listed == set(OUTPUT_NAMES), (sorted(listed - set(OUTPUT_NAMES)), sorted(set(OUTPUT_NAMES) - listed))


def test_readme_make_targets_exist():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    mentioned = set(re.findall(r"`make ([a-z][a-z-]*)`", README.replace("`make\n", "`make ")))
    assert mentioned and mentioned <= targets, sorted(mentioned - targets)


def test_readme_policy_count_and_the_policies_without_options():
    from gpuplane.engine.policy import gpuplane_pack

    pack = gpuplane_pack().policies
    m = re.search(r"\(`policies/`, (\d+) policies; (\d+) take options", README)
    assert m, "the README states how many policies there are and how many take options"
    empty = sorted(p.name for p in pack if not (p.config_schema and p.config_schema.properties))
    assert (int(m.group(1)), int(m.group(2))) == (len(pack), len(pack) - len(empty))
    words = {"One": 1, "Two": 2, "Three": 3, "Four": 4, "Five": 5, "Six": 6, "Seven": 7, "Eight": 8}
    n = re.search(r"(\w+) takes? no option beyond", README)
    assert n and words.get(n.group(1)) == len(empty), (n and n.group(1), empty)
    paragraph = README[n.start():][:600].split("\n\n")[0]
    assert sorted(re.findall(r"`([a-z0-9-]+)`", paragraph)) == empty


def test_readme_image_table_names_every_dockerfile():
    rows = re.findall(r"^\| (gpuplane-[a-z]+) \| `([^`]+)`", README, re.M)
    assert sorted(d for _, d in rows) == sorted(str(p.relative_to(ROOT)) for p in (ROOT / "workloads").rglob("Dockerfile"))
